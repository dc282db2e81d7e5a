"""A chat as the user sees it: conversations, and one turn from request to final response.

One turn = build the messages (system prompt first, then the conversation's history, then the
user's message), stream or complete, run any tool calls the model asks for and send their results
back, until a final answer. Observers (the magic's output area, the terminal, the panel) are told
about each delta, tool call, retry and error; the turn's result is a ``ChatResult``, a
``ChatCompletionResponse`` with conveniences, bound in the notebook.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pydantic

from ._markdown import result_markdown, result_plain
from ._redact import redact
from .errors import APIConnectionError, MistralError
from .models import ChatCompletionResponse
from .streaming import FINISH_INTERRUPTED, AsyncEventStream, EventStream
from .tools import ToolRegistry, ToolResult, tool_message

MAX_TOOL_ROUNDS = 8


@dataclass
class TurnMeta:
    """Provenance and timings of one turn (plain data; shown in footers and output metadata)."""

    model: str = ""
    backend: str = ""
    region: str | None = None
    request_id: str | None = None
    seed: int | None = None
    started_at: float = 0.0
    first_token_at: float | None = None
    finished_at: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    attempts: int = 1

    @property
    def elapsed(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at

    @property
    def time_to_first_token(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.started_at

    @property
    def tokens_per_second(self) -> float | None:
        if self.first_token_at is None or self.finished_at is None or not self.completion_tokens:
            return None
        span = self.finished_at - self.first_token_at
        return self.completion_tokens / span if span > 0 else None


class TurnObserver(Protocol):
    """What a view is told during a turn (render.py implements it for each front end)."""

    def start(self, meta: TurnMeta) -> None: ...

    def delta(self, text: str) -> None: ...

    def tool_call(self, result: ToolResult) -> None: ...

    def retrying(self, attempt: int, delay: float, reason: str) -> None: ...

    def error(self, message: str) -> None: ...

    def done(self, result: ChatResult) -> None: ...


class ChatResult(ChatCompletionResponse):
    """The response of one turn as bound in the notebook: ``.text``, ``.parsed``, provenance."""

    _meta: TurnMeta = pydantic.PrivateAttr(default_factory=TurnMeta)
    _parsed: Any = pydantic.PrivateAttr(default=None)
    _parse_error: str | None = pydantic.PrivateAttr(default=None)
    _tool_results: list[ToolResult] = pydantic.PrivateAttr(default_factory=list)
    _messages: list[dict[str, Any]] = pydantic.PrivateAttr(default_factory=list)
    _error: str | None = pydantic.PrivateAttr(default=None)
    _show_footer: bool = pydantic.PrivateAttr(default=True)

    @property
    def text(self) -> str:
        """The answer's text (first choice)."""
        if not self.choices or self.choices[0].message is None:
            return ""
        return content_text(self.choices[0].message.content)

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason if self.choices else None

    @property
    def parsed(self) -> Any:
        """The JSON value (``--json``) or schema instance (``--schema``); None otherwise."""
        return self._parsed

    @property
    def parse_error(self) -> str | None:
        """Why ``parsed`` is None although JSON output was asked for."""
        return self._parse_error

    @property
    def meta(self) -> TurnMeta:
        return self._meta

    @property
    def tool_results(self) -> list[ToolResult]:
        """Every tool call made during the turn, with its result."""
        return list(self._tool_results)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The messages of this turn: the user's, then assistant and tool messages."""
        return [dict(m) for m in self._messages]

    @property
    def interrupted(self) -> bool:
        return self.finish_reason in {FINISH_INTERRUPTED, "stopped"}

    @property
    def error(self) -> str | None:
        """The error that ended the turn early, if any."""
        return self._error

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return redact(super().__repr__())

    def provenance(self) -> dict[str, Any]:
        """Plain-JSON provenance for output metadata."""
        meta = self._meta
        return {
            "model": self.model or meta.model,
            "backend": meta.backend,
            "region": meta.region,
            "request_id": meta.request_id or self.id or None,
            "seed": meta.seed,
            "finish_reason": self.finish_reason,
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
                "total_tokens": self.usage.total_tokens,
            },
        }

    def _repr_markdown_(self) -> str:
        return redact(result_markdown(self, footer=self._show_footer))

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """Markdown and plain text of the answer; provenance in the output metadata."""
        return (
            {
                "text/markdown": redact(result_markdown(self, footer=self._show_footer)),
                "text/plain": redact(result_plain(self)),
            },
            {"mistral_magic": self.provenance()},
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("ChatResult(...)" if cycle else redact(result_plain(self)))


def schema_response_format(value: Any, name: str) -> dict[str, Any]:
    """The ``json_schema`` response format for a pydantic model class or a JSON-schema dict.

    Raises ``TypeError`` for anything else; ``name`` titles a dict without a ``title``.
    """
    if isinstance(value, type) and issubclass(value, pydantic.BaseModel):
        schema, title = value.model_json_schema(), value.__name__
    elif isinstance(value, dict) and (
        "type" in value or "properties" in value or "$defs" in value or "anyOf" in value
    ):
        schema, title = value, str(value.get("title") or name)
    else:
        raise TypeError(
            f"expected a pydantic model class or a JSON-schema dict, got {type(value).__name__}"
        )
    safe = re.sub(r"[^a-zA-Z0-9_-]", "_", title)[:64] or "schema"
    return {"type": "json_schema", "json_schema": {"name": safe, "schema": schema, "strict": True}}


def content_text(content: Any) -> str:
    """Text of a message content: a string, or the text chunks of a chunk list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for item in content:
        kind = item.get("type") if isinstance(item, dict) else getattr(item, "type", None)
        if kind == "text":
            text = item.get("text") if isinstance(item, dict) else getattr(item, "text", "")
            parts.append(str(text or ""))
    return "".join(parts)


# -- conversations -----------------------------------------------------------------------------


@dataclass
class Turn:
    """One exchange: its key (cell id or source hash) and the messages it added."""

    key: str
    messages: list[dict[str, Any]]


@dataclass
class Conversation:
    """A named multi-turn chat shared by the magic (``--chat NAME``) and the panel."""

    name: str
    system: str | None = None
    turns: list[Turn] = field(default_factory=list)

    def history_before(self, key: str | None) -> list[dict[str, Any]]:
        """Messages of the turns before ``key`` (all turns when ``key`` is new)."""
        messages: list[dict[str, Any]] = []
        for turn in self.turns:
            if key is not None and turn.key == key:
                break
            messages.extend(turn.messages)
        return messages

    def record(self, key: str, messages: list[dict[str, Any]]) -> None:
        """Store a turn; a turn with the same key (a re-run cell) is replaced in place."""
        for index, turn in enumerate(self.turns):
            if turn.key == key:
                self.turns[index] = Turn(key, messages)
                return
        self.turns.append(Turn(key, messages))

    def messages(self) -> list[dict[str, Any]]:
        """Every message, system prompt first."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.history_before(None)

    def reset(self) -> None:
        self.turns.clear()


class ConversationStore:
    """Conversations by name; the magic and the panel share the process-wide ``conversations``."""

    def __init__(self) -> None:
        self._items: dict[str, Conversation] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Conversation:
        with self._lock:
            if name not in self._items:
                self._items[name] = Conversation(name)
            return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[Conversation]:
        return iter(list(self._items.values()))

    def reset(self, name: str | None = None) -> None:
        with self._lock:
            if name is None:
                self._items.clear()
            else:
                self._items.pop(name, None)


conversations = ConversationStore()


def turn_key(cell_id: str | None, source: str) -> str:
    """Key of a turn: the notebook cell id when known, else a hash of the cell's source."""
    if cell_id:
        return f"cell:{cell_id}"
    return "src:" + hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# -- one turn ----------------------------------------------------------------------------------


@dataclass
class TurnRequest:
    """Everything a turn needs besides the client: messages and request parameters."""

    user_content: Any
    params: dict[str, Any]
    system: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    tools: ToolRegistry | None = None
    stream: bool = True
    schema: Any = None
    want_json: bool = False
    max_tool_rounds: int = MAX_TOOL_ROUNDS
    backend: str = ""
    region: str | None = None

    def initial_messages(self) -> list[dict[str, Any]]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return [*head, *self.history, {"role": "user", "content": self.user_content}]


class TurnInterrupted(MistralError):
    """The user interrupted the turn; the partial result is on ``.result``."""

    def __init__(self, result: ChatResult) -> None:
        super().__init__("generation interrupted; the partial answer is kept")
        self.result = result


class TurnFailed(MistralError):
    """An error ended the turn; what arrived before is on ``.result``."""

    def __init__(self, error: MistralError, result: ChatResult) -> None:
        super().__init__(str(error))
        self.error = error
        self.result = result


class _TurnState:
    """The bookkeeping shared by the sync and async drivers."""

    def __init__(self, request: TurnRequest, observer: TurnObserver) -> None:
        self.request = request
        self.observer = observer
        self.messages = request.initial_messages()
        self.turn_start = len(self.messages) - 1
        self.meta = TurnMeta(
            model=str(request.params.get("model", "")),
            backend=request.backend,
            region=request.region,
            seed=request.params.get("random_seed"),
            started_at=time.monotonic(),
        )
        self.tool_results: list[ToolResult] = []
        self.rounds = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def call_params(self) -> dict[str, Any]:
        params = dict(self.request.params)
        params["messages"] = self.messages
        if self.request.tools is not None and self.request.tools.specs:
            params["tools"] = self.request.tools.specs
            choice = params.get("tool_choice")
            forced = isinstance(choice, dict) or choice in ("any", "required")
            if self.rounds > 0 and forced:
                # Forcing a call again after the results came back would loop for ever.
                params["tool_choice"] = "auto"
        params["on_retry"] = self.on_retry
        return params

    def on_retry(self, attempt: int, delay: float, reason: str) -> None:
        self.meta.attempts = attempt
        self.observer.retrying(attempt, delay, reason)

    def first_token(self) -> None:
        if self.meta.first_token_at is None:
            self.meta.first_token_at = time.monotonic()

    def absorb(self, response: ChatCompletionResponse, request_id: str | None) -> bool:
        """Record one model response; True when the model asked for tools to run."""
        self.meta.request_id = request_id or self.meta.request_id
        self.meta.model = response.model or self.meta.model
        self.prompt_tokens += response.usage.prompt_tokens
        self.completion_tokens += response.usage.completion_tokens
        choice = response.choices[0] if response.choices else None
        message = choice.message if choice is not None else None
        tool_calls = message.tool_calls if message is not None else None
        if message is not None:
            content = content_text(message.content)
            assistant: dict[str, Any] = {"role": "assistant", "content": content}
            if tool_calls:
                assistant["tool_calls"] = [call.model_dump(mode="json") for call in tool_calls]
            self.messages.append(assistant)
        wants_tools = bool(
            tool_calls
            and self.request.tools is not None
            and choice is not None
            and choice.finish_reason == "tool_calls"
        )
        return wants_tools and self.rounds < self.request.max_tool_rounds

    def pending_calls(self, response: ChatCompletionResponse) -> list[tuple[str, str, Any]]:
        message = response.choices[0].message
        assert message is not None and message.tool_calls
        return [
            (call.function.name, call.id or "", call.function.arguments)
            for call in message.tool_calls
        ]

    def on_event(self, event: Any) -> None:
        """Pass the text of one stream event (first choice) to the observer."""
        choices = event.data.choices
        if choices and choices[0].index == 0:
            content = choices[0].delta.content
            if content:
                piece = content if isinstance(content, str) else content_text(content)
                if piece:
                    self.first_token()
                    self.observer.delta(piece)

    def on_complete(self, response: ChatCompletionResponse) -> None:
        """Pass the text of a whole (non-streamed) response to the observer."""
        self.first_token()
        if response.choices and response.choices[0].message is not None:
            text = content_text(response.choices[0].message.content)
            if text:
                self.observer.delta(text)

    def interrupted(self, stream: Any, reason: str) -> ChatResult:
        """The partial result after an interrupt or Stop, already shown to the observer."""
        partial = _partial(stream, self, reason=reason)
        self.keep_partial(partial)
        result = self.finish(partial)
        self.observer.done(result)
        return result

    def failed(self, exc: MistralError, stream: Any) -> ChatResult:
        """The partial result after an error, already shown to the observer."""
        partial = getattr(exc, "partial_response", None) or _partial(stream, self)
        result = self.finish(partial, error=str(exc))
        self.observer.error(str(exc))
        self.observer.done(result)
        return result

    def tool_calls_to_run(
        self, response: ChatCompletionResponse, request_id: str | None
    ) -> list[tuple[str, str, Any]]:
        """Record a model response; the tool calls to run before the next round (or none)."""
        if not self.absorb(response, request_id):
            return []
        self.rounds += 1
        return self.pending_calls(response)

    def done(self, response: ChatCompletionResponse) -> ChatResult:
        """The final result, shown to the observer."""
        result = self.finish(response)
        self.observer.done(result)
        return result

    def keep_partial(self, response: ChatCompletionResponse) -> None:
        """Put the partial answer the user saw into the turn's messages (history)."""
        choice = response.choices[0] if response.choices else None
        text = content_text(choice.message.content) if choice and choice.message else ""
        if text:
            self.messages.append({"role": "assistant", "content": text})

    def add_tool_result(self, result: ToolResult) -> None:
        self.tool_results.append(result)
        self.messages.append(tool_message(result))
        self.observer.tool_call(result)

    def finish(self, response: ChatCompletionResponse, error: str | None = None) -> ChatResult:
        meta = self.meta
        meta.finished_at = time.monotonic()
        meta.prompt_tokens = self.prompt_tokens
        meta.completion_tokens = self.completion_tokens
        data = response.model_dump()
        data["usage"] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        result = ChatResult.model_validate(data)
        meta.finish_reason = result.finish_reason
        result._meta = meta
        result._tool_results = list(self.tool_results)
        result._messages = self.messages[self.turn_start :]
        result._error = error
        self._parse(result)
        return result

    def _parse(self, result: ChatResult) -> None:
        request = self.request
        if not (request.want_json or request.schema is not None) or result.interrupted:
            return
        text = result.text
        try:
            if isinstance(request.schema, type) and issubclass(request.schema, pydantic.BaseModel):
                result._parsed = request.schema.model_validate_json(text)
            else:
                result._parsed = json.loads(text)
        except (ValueError, pydantic.ValidationError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            what = "for the schema" if request.schema is not None else "JSON"
            result._parse_error = f"the answer is not valid {what}: {first}"


def run_turn(
    client: Any,
    request: TurnRequest,
    observer: TurnObserver,
    *,
    on_stream: Callable[[EventStream[Any] | None], None] | None = None,
) -> ChatResult:
    """Run one turn synchronously (the magic). Interrupts and errors keep the partial answer."""
    state = _TurnState(request, observer)
    observer.start(state.meta)
    while True:
        stream: EventStream[Any] | None = None
        try:
            if request.stream:
                stream = client.chat.stream(**state.call_params())
                if on_stream is not None:
                    on_stream(stream)
                for event in stream:
                    state.on_event(event)
                response, request_id = stream.response, stream.request_id
            else:
                response, request_id = client.chat.complete(**state.call_params()), None
                state.on_complete(response)
        except KeyboardInterrupt:
            raise TurnInterrupted(state.interrupted(stream, FINISH_INTERRUPTED)) from None
        except MistralError as exc:
            raise TurnFailed(exc, state.failed(exc, stream)) from None
        finally:
            if stream is not None:
                stream.close()
                if on_stream is not None:
                    on_stream(None)
        calls = state.tool_calls_to_run(response, request_id)
        if not calls:
            return state.done(response)
        assert request.tools is not None
        for name, call_id, arguments in calls:
            state.add_tool_result(request.tools.run(name, arguments, call_id=call_id))


async def run_turn_async(
    client: Any,
    request: TurnRequest,
    observer: TurnObserver,
) -> ChatResult:
    """Async twin of ``run_turn`` (the panel); cancellation keeps the partial answer."""
    import asyncio

    state = _TurnState(request, observer)
    observer.start(state.meta)
    while True:
        stream: AsyncEventStream[Any] | None = None
        try:
            if request.stream:
                stream = await client.chat.stream_async(**state.call_params())
                async for event in stream:
                    state.on_event(event)
                response, request_id = stream.response, stream.request_id
            else:
                response = await client.chat.complete_async(**state.call_params())
                request_id = None
                state.on_complete(response)
        except (asyncio.CancelledError, KeyboardInterrupt):
            if stream is not None:
                stream.mark_interrupted("stopped")
                await stream.aclose()
            raise TurnInterrupted(state.interrupted(stream, "stopped")) from None
        except MistralError as exc:
            raise TurnFailed(exc, state.failed(exc, stream)) from None
        finally:
            if stream is not None:
                await stream.aclose()
        calls = state.tool_calls_to_run(response, request_id)
        if not calls:
            return state.done(response)
        assert request.tools is not None
        for name, call_id, arguments in calls:
            state.add_tool_result(await request.tools.run_async(name, arguments, call_id=call_id))


def _partial(
    stream: EventStream[Any] | AsyncEventStream[Any] | None,
    state: _TurnState,
    reason: str = FINISH_INTERRUPTED,
) -> ChatCompletionResponse:
    if stream is not None:
        stream.mark_interrupted(reason)
        response: ChatCompletionResponse = stream.response
        for choice in response.choices:
            # The stream may already have recorded a plain interruption when it was closed.
            if choice.finish_reason == FINISH_INTERRUPTED:
                choice.finish_reason = reason
        return response
    return ChatCompletionResponse.model_validate(
        {
            "id": "",
            "object": "chat.completion",
            "model": state.meta.model,
            "created": int(time.time()),
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": ""},
                    "finish_reason": reason,
                }
            ],
        }
    )


__all__ = [
    "APIConnectionError",
    "ChatResult",
    "Conversation",
    "ConversationStore",
    "TurnFailed",
    "TurnInterrupted",
    "TurnMeta",
    "TurnObserver",
    "TurnRequest",
    "conversations",
    "run_turn",
    "run_turn_async",
    "turn_key",
]
_unused = (Mapping, Sequence)
