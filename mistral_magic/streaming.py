"""Event streams of a chat completion, and the accumulator that folds chunks into one response.

``EventStream`` (sync) and ``AsyncEventStream`` are iterators and context managers of
``CompletionEvent``, as the official SDK's; they close the HTTP response on exit, on ``break``
(through ``close``) and on any error. Whatever arrived before a failure stays available as
``stream.response`` (a partial ``ChatCompletionResponse`` whose finish_reason says what happened)
and on the raised exception as ``exc.partial_response``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Sequence
from types import TracebackType
from typing import Any, Generic, TypeVar

import httpx
import pydantic

from . import _redact
from ._sse import SSEDecoder
from .errors import (
    APIConnectionError,
    APITimeoutError,
    MistralError,
    StreamError,
    malformed_chunk_error,
    stream_error,
)
from .models import (
    AssistantMessage,
    ChatCompletionChoice,
    ChatCompletionResponse,
    CompletionChunk,
    CompletionEvent,
    FunctionCall,
    ToolCall,
    UsageInfo,
)

R = TypeVar("R", bound=ChatCompletionResponse)

DONE = "[DONE]"

#: finish_reason values we set ourselves when a stream does not end normally.
FINISH_INTERRUPTED = "interrupted"
FINISH_CONNECTION_LOST = "connection_lost"
FINISH_TIMEOUT = "timeout"
FINISH_ERROR = "error"


class _ToolCallParts:
    __slots__ = ("arguments", "id", "index", "name", "type")

    def __init__(self, index: int) -> None:
        self.index = index
        self.id: str | None = None
        self.type = "function"
        self.name = ""
        self.arguments: list[str] = []


class ResponseAccumulator(Generic[R]):
    """Folds ``CompletionChunk`` objects into one ``ChatCompletionResponse``, partial or whole."""

    def __init__(self, response_class: type[R] = ChatCompletionResponse) -> None:  # type: ignore[assignment]
        self.response_class = response_class
        self.id = ""
        self.model = ""
        self.created = 0
        self.usage: UsageInfo | None = None
        self.chunks = 0
        self._content: dict[int, list[str]] = {}
        self._thinking: dict[int, list[str]] = {}
        self._finish: dict[int, str | None] = {}
        self._tools: dict[int, dict[int, _ToolCallParts]] = {}

    def add_events(self, events: list[CompletionEvent]) -> None:
        """Fold a batch of events in; the common text-only chunk takes a short path."""
        if not events:
            return
        if not self.id:
            self.add(events[0].data)
            events = events[1:]
        self._finish.setdefault(0, None)
        append = self._content.setdefault(0, []).append
        add = self.add
        fast = 0
        for event in events:
            chunk = event.data
            if chunk.usage is None:
                choices = chunk.choices
                if len(choices) == 1:
                    choice = choices[0]
                    if choice.finish_reason is None:
                        delta = choice.delta
                        content = delta.content
                        if (
                            content.__class__ is str
                            and delta.tool_calls is None
                            and choice.index == 0
                        ):
                            fast += 1
                            append(content)
                            continue
            add(chunk)
        self.chunks += fast

    def add(self, chunk: CompletionChunk) -> str:
        """Fold one chunk in; return the text it added to the first choice."""
        self.chunks += 1
        if not self.id:
            self.id = chunk.id
            self.model = chunk.model
            self.created = chunk.created or 0
        if chunk.usage is not None:
            self.usage = chunk.usage
        added = ""
        for choice in chunk.choices:
            index = choice.index
            delta = choice.delta
            content = delta.content
            if content:
                text = content if content.__class__ is str else self._chunk_text(index, content)  # type: ignore[arg-type]
                if text:
                    parts = self._content.get(index)
                    if parts is None:
                        parts = self._content[index] = []
                    parts.append(text)
                    if index == 0:
                        added = text
            if delta.tool_calls:
                self._add_tool_calls(index, delta.tool_calls)
            if choice.finish_reason is not None or index not in self._finish:
                self._finish[index] = choice.finish_reason
        return added

    def _chunk_text(self, index: int, content: list[Any]) -> str:
        parts: list[str] = []
        for item in content:
            kind = _field(item, "type")
            if kind == "text":
                parts.append(str(_field(item, "text") or ""))
            elif kind == "thinking":
                for sub in _field(item, "thinking") or []:
                    if _field(sub, "type") == "text":
                        self._thinking.setdefault(index, []).append(str(_field(sub, "text") or ""))
        return "".join(parts)

    def _add_tool_calls(self, index: int, calls: list[ToolCall]) -> None:
        slots = self._tools.setdefault(index, {})
        for position, call in enumerate(calls):
            key = call.index if call.index is not None else position
            parts = slots.get(key)
            if parts is None:
                parts = slots[key] = _ToolCallParts(key)
            if call.id and call.id != "null":
                parts.id = call.id
            if call.type:
                parts.type = str(call.type)
            if call.function.name:
                parts.name = call.function.name
            arguments = call.function.arguments
            parts.arguments.append(
                arguments if isinstance(arguments, str) else json.dumps(arguments)
            )

    @property
    def text(self) -> str:
        """Text of the first choice so far."""
        return "".join(self._content.get(0, ()))

    @property
    def thinking(self) -> str:
        """Reasoning text of the first choice so far (from ``thinking`` chunks)."""
        return "".join(self._thinking.get(0, ()))

    @property
    def finish_reason(self) -> str | None:
        return self._finish.get(0)

    def response(self, finish_reason: str | None = None) -> R:
        """The response assembled so far; ``finish_reason`` fills in choices that never finished."""
        indexes = sorted(set(self._finish) | set(self._content) | set(self._tools)) or [0]
        choices = []
        for index in indexes:
            tool_calls = [
                ToolCall(
                    id=parts.id or "null",
                    type=parts.type,
                    function=FunctionCall(name=parts.name, arguments="".join(parts.arguments)),
                    index=parts.index,
                )
                for _, parts in sorted(self._tools.get(index, {}).items())
            ]
            message = AssistantMessage(
                content="".join(self._content.get(index, ())),
                tool_calls=tool_calls or None,
            )
            reason = self._finish.get(index) or finish_reason or FINISH_INTERRUPTED
            choices.append(ChatCompletionChoice(index=index, message=message, finish_reason=reason))
        usage = self.usage or UsageInfo(prompt_tokens=0, completion_tokens=0, total_tokens=0)
        return self.response_class(
            id=self.id,
            object="chat.completion",
            model=self.model,
            created=self.created or int(time.time()),
            usage=usage,
            choices=choices,
        )


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


#: events validated per call on the fast path
_BATCH = 16
#: bytes read after [DONE] at most, to reach the end of the body and keep the connection
_DRAIN_LIMIT = 65536
_EVENT_BATCH = pydantic.TypeAdapter(list[CompletionEvent])


def parse_event_data(data: str) -> CompletionEvent:
    """Validate one SSE data payload; an error object or bad JSON becomes ``StreamError``."""
    try:
        return CompletionEvent.model_validate_json('{"data":' + data + "}")
    except (pydantic.ValidationError, ValueError) as exc:
        raise _stream_error(data, exc) from None


def _stream_error(data: str, exc: Exception) -> StreamError:
    """An error object sent inside the stream, or a chunk that does not parse."""
    data = _redact.redact(data)  # an echoed key must not reach .message / .data
    try:
        payload = json.loads(data)
    except ValueError:
        return malformed_chunk_error(data, exc)
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    if isinstance(payload, dict) and (
        payload.get("object") == "error" or "error" in payload or "message" in payload
    ):
        return stream_error(payload)
    return malformed_chunk_error(data, exc)


def parse_event_batch(payloads: list[str]) -> list[CompletionEvent]:
    """Validate the payloads of one network read in a single call (the hot path).

    Falls back to one payload at a time when the batch does not validate, so that the events
    before a bad one are still delivered and the bad one is named precisely.
    """
    if len(payloads) > 1:
        try:
            return _EVENT_BATCH.validate_json('[{"data":' + '},{"data":'.join(payloads) + "}]")
        except (pydantic.ValidationError, ValueError):
            pass
    return [parse_event_data(data) for data in payloads]


class _StreamBase(Generic[R]):
    def __init__(
        self,
        response: httpx.Response,
        *,
        response_class: type[R],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._response = response
        self._decoder = SSEDecoder()
        self._fast = True
        self._tail = b""
        self._finished = False
        self._closed = False
        self._end_reason: str | None = None
        self._on_close = on_close
        self.accumulator: ResponseAccumulator[R] = ResponseAccumulator(response_class)
        self.first_byte_at: float | None = None
        self.http_response = response

    @property
    def response(self) -> R:
        """Everything received so far, as one ``ChatCompletionResponse``."""
        return self.accumulator.response(self._end_reason)

    @property
    def request_id(self) -> str | None:
        headers = self._response.headers
        return (
            headers.get("x-request-id")
            or headers.get("mistral-correlation-id")
            or headers.get("x-kong-request-id")
            or None
        )

    def _decode(self, data: bytes, *, eof: bool = False) -> Sequence[bytes | list[str]]:
        """Split one network read into pieces to validate: JSON-array batches or payload lists."""
        if self.first_byte_at is None:
            self.first_byte_at = time.monotonic()
        if self._fast:
            if not eof:
                batches = self._fast_batch(data)
                if batches is not None:
                    return batches
            # The fast path gave up (or the stream ended): the bytes it buffered, which
            # already include ``data``, go to the general decoder.
            data, self._tail = self._tail, b""
        sse = self._decoder.feed(data) if data else []
        if eof:
            sse += self._decoder.flush()
        payloads = []
        for event in sse:
            if event.data == DONE:
                self._finished = True
                break
            payloads.append(event.data)
        return [payloads] if payloads else []

    def _check(self, piece: bytes | list[str]) -> tuple[list[CompletionEvent], MistralError | None]:
        """Validate one piece; the events, and the error that stops the stream, if any."""
        if isinstance(piece, bytes):
            return self._validate_batch(piece)
        return self._validate(piece)

    def _fast_batch(self, data: bytes) -> list[bytes] | None:
        """The JSON array of this read's events when the stream has the plain shape.

        Mistral sends ``data: <one-line JSON>`` events separated by blank lines, so the events
        completed by a read can be turned into one JSON array with two bytes operations and
        validated in a single call. Anything else (CR line ends, comments, other fields,
        multi-line data) switches this stream to the general SSE decoder for good.
        """
        buffer = self._tail + data if self._tail else data
        end = buffer.rfind(b"\n\n")
        if end < 0:
            self._tail = buffer
            if b"\r" in data:  # CR or CRLF line ends never produce "\n\n": decode generally
                self._fast = False
                return None
            return []
        head, self._tail = buffer[: end + 2], buffer[end + 2 :]
        if head.endswith(b"data: [DONE]\n\n"):
            head = head[: -len(b"data: [DONE]\n\n")]
            self._finished = True
        if not head:
            return []
        body = head[6:-2]
        events = body.count(b"\n\ndata: ") + 1
        if (
            not head.startswith(b"data: ")
            or body.count(b"\n") != 2 * (events - 1)
            or b"\r" in body
            or b"[DONE]" in body
        ):
            self._fast = False
            self._finished = False
            self._tail = buffer
            return None
        if events <= _BATCH:
            return [b'[{"data":' + body.replace(b"\n\ndata: ", b'},{"data":') + b"}]"]
        # Small batches keep few objects alive at once, which keeps the garbage collector cheap.
        parts = body.split(b"\n\ndata: ")
        return [
            b'[{"data":' + b'},{"data":'.join(parts[i : i + _BATCH]) + b"}]"
            for i in range(0, len(parts), _BATCH)
        ]

    def _validate_batch(
        self, batch: bytes
    ) -> tuple[list[CompletionEvent], MistralError | None]:
        try:
            events = _EVENT_BATCH.validate_json(batch)
        except (pydantic.ValidationError, ValueError):
            payloads = batch[len(b'[{"data":') : -len(b"}]")].split(b'},{"data":')
            return self._validate([p.decode("utf-8", "replace") for p in payloads])
        self._add_all(events)
        return events, None

    def _validate(
        self, payloads: list[str]
    ) -> tuple[list[CompletionEvent], MistralError | None]:
        if not payloads:
            return [], None
        try:
            events = parse_event_batch(payloads)
        except StreamError:
            # Deliver what came before the bad payload, then fail.
            events = []
            for data in payloads:
                try:
                    events.append(parse_event_data(data))
                except StreamError as exc:
                    self._add_all(events)
                    self._end_reason = FINISH_ERROR
                    return events, self._fail(exc)
        self._add_all(events)
        return events, None

    def _add_all(self, events: list[CompletionEvent]) -> None:
        self.accumulator.add_events(events)

    def _eof_error(self) -> MistralError | None:
        """A stream that ends with neither [DONE] nor a finish_reason was cut short."""
        if self._finished or self.accumulator.finish_reason is not None:
            self._finished = True
            return None
        self._finished = True
        return self._fail(
            APIConnectionError(
                "the connection closed before the model finished its answer "
                f"(after {self.accumulator.chunks} chunks); the partial answer is kept"
            )
        )

    def _fail(self, exc: BaseException) -> MistralError:
        """Translate a failure mid-stream, remembering why the answer stopped."""
        error: MistralError
        if isinstance(exc, MistralError):
            error = exc
            if self._end_reason is None:
                self._end_reason = (
                    FINISH_CONNECTION_LOST if isinstance(exc, APIConnectionError) else FINISH_ERROR
                )
        elif isinstance(exc, httpx.TimeoutException):
            self._end_reason = FINISH_TIMEOUT
            error = APITimeoutError(
                "no data from the service within the read timeout "
                f"(after {self.accumulator.chunks} chunks); the partial answer is kept"
            )
        else:
            self._end_reason = FINISH_CONNECTION_LOST
            error = APIConnectionError(
                f"the connection broke mid-stream ({type(exc).__name__}: "
                f"{_redact.redact(str(exc))}) after {self.accumulator.chunks} chunks; "
                "the partial answer is kept"
            )
        error.partial_response = self.response
        return error

    def mark_interrupted(self, reason: str = FINISH_INTERRUPTED) -> None:
        """Record that the caller stopped reading (interrupt, Stop button)."""
        if self._end_reason is None and self.accumulator.finish_reason is None:
            self._end_reason = reason


class EventStream(_StreamBase[R]):
    """Iterator and context manager of ``CompletionEvent`` over one HTTP response."""

    def __init__(
        self,
        response: httpx.Response,
        *,
        response_class: type[R],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(response, response_class=response_class, on_close=on_close)
        self._events = self._generate()

    def _generate(self) -> Generator[CompletionEvent, None, None]:
        try:
            drained = 0
            for data in self._response.iter_bytes():
                if self._finished:
                    # After [DONE]: read the end of the body (the last chunk marker) so that
                    # the connection goes back to the pool instead of being dropped.
                    drained += len(data)
                    if drained > _DRAIN_LIMIT:
                        break
                    continue
                for piece in self._decode(data):
                    events, error = self._check(piece)
                    yield from events
                    if error is not None:
                        raise error
            if self._finished:
                return
            for piece in self._decode(b"", eof=True):
                events, error = self._check(piece)
                yield from events
                if error is not None:
                    raise error
            error = self._eof_error()
            if error is not None:
                raise error
        except httpx.TransportError as exc:
            raise self._fail(exc) from None
        finally:
            self.close()

    def __iter__(self) -> Iterator[CompletionEvent]:
        return self._events

    def __del__(self) -> None:
        # A stream dropped without being read to the end or closed must not keep its
        # connection checked out of the pool forever.
        try:
            if not self._closed:
                self._response.close()
        except Exception:  # nothing sensible to do while being collected
            pass

    def __next__(self) -> CompletionEvent:
        return next(self._events)

    def close(self) -> None:
        """Close the HTTP response (idempotent); iterating afterwards just ends."""
        if not self._closed:
            self._closed = True
            if not self._finished:
                self.mark_interrupted()
            self._response.close()
            if not getattr(self._events, "gi_running", False):  # not from its own cleanup
                self._events.close()
            if self._on_close is not None:
                self._on_close()

    def __enter__(self) -> EventStream[R]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def until_done(self) -> R:
        """Consume the rest of the stream and return the assembled response."""
        for _ in self._events:
            pass
        return self.response


class AsyncEventStream(_StreamBase[R]):
    """Async iterator and async context manager of ``CompletionEvent``."""

    def __init__(
        self,
        response: httpx.Response,
        *,
        response_class: type[R],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(response, response_class=response_class, on_close=on_close)
        self._events = self._generate()

    async def _generate(self) -> AsyncGenerator[CompletionEvent, None]:
        try:
            drained = 0
            async for data in self._response.aiter_bytes():
                if self._finished:  # after [DONE]: drain so the connection is reused
                    drained += len(data)
                    if drained > _DRAIN_LIMIT:
                        break
                    continue
                for piece in self._decode(data):
                    events, error = self._check(piece)
                    for event in events:
                        yield event
                    if error is not None:
                        raise error
            if self._finished:
                return
            for piece in self._decode(b"", eof=True):
                events, error = self._check(piece)
                for event in events:
                    yield event
                if error is not None:
                    raise error
            error = self._eof_error()
            if error is not None:
                raise error
        except httpx.TransportError as exc:
            raise self._fail(exc) from None
        finally:
            await self.aclose()

    def __aiter__(self) -> AsyncIterator[CompletionEvent]:
        return self._events

    async def __anext__(self) -> CompletionEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Close the HTTP response (idempotent); iterating afterwards just ends."""
        if not self._closed:
            self._closed = True
            if not self._finished:
                self.mark_interrupted()
            try:
                await self._response.aclose()
            finally:
                if not getattr(self._events, "ag_running", False):  # not from its cleanup
                    await self._events.aclose()
                if self._on_close is not None:
                    self._on_close()

    async def __aenter__(self) -> AsyncEventStream[R]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def until_done(self) -> R:
        """Consume the rest of the stream and return the assembled response."""
        async for _ in self._events:
            pass
        return self.response
