"""Pydantic wire models for Mistral chat completions (names as in the official SDK).

Request models are strict (unknown keys rejected, ranges from the OpenAPI spec) and
serialise with :meth:`WireModel.to_wire` to exactly the JSON body the official SDK
3.7.0 sends: unset optional fields are omitted, an explicit ``None`` on a nullable
field is sent as ``null``, non-null defaults (``stream``, assistant ``prefix``,
``type: "function"``, tool-call ``id``/``index``) are always sent.

Response models are tolerant (unknown keys kept, unknown ``finish_reason`` strings and
chunk types accepted). Parse one SSE ``data:`` payload with
``CompletionChunk.model_validate_json(data)``: the chunk models carry no Python
validators so this stays close to the cost of ``json.loads``.

:func:`build_request` turns SDK-style keyword arguments into a request model and
reports problems as :class:`~mistral_magic.errors.RequestValidationError` with one
short line per problem.
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationError,
    model_serializer,
    model_validator,
)

from .errors import RequestValidationError

__all__ = [
    "UNSET",
    "AssistantMessage",
    "ChatCompletionChoice",
    "ChatCompletionRequest",
    "ChatCompletionResponse",
    "ChatCompletionStreamRequest",
    "CompletionChunk",
    "CompletionEvent",
    "CompletionResponseStreamChoice",
    "ContentChunk",
    "DeltaMessage",
    "Function",
    "FunctionCall",
    "FunctionName",
    "ImageURL",
    "ImageURLChunk",
    "JSONSchema",
    "Messages",
    "ModelCapabilities",
    "ModelCard",
    "ModelList",
    "Prediction",
    "ResponseFormat",
    "SystemMessage",
    "TextChunk",
    "Tool",
    "ToolCall",
    "ToolChoice",
    "ToolMessage",
    "UsageInfo",
    "UserMessage",
    "build_request",
]


class _Unset:
    """Sentinel type for "argument not passed" (distinct from an explicit ``None``)."""

    _instance: ClassVar[_Unset | None] = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()
"""Default for keyword arguments that must be omitted from the body when not passed.

:func:`build_request` drops every keyword whose value is ``UNSET``; any other value,
including ``None``, counts as set (``None`` is then sent as ``null`` where nullable).
"""


# --------------------------------------------------------------------------- base classes


class WireModel(BaseModel):
    """Base of every model that can be sent: SDK-exact serialisation via :meth:`to_wire`.

    A field is written when its value is not ``None``; a ``None`` is written as ``null``
    only for required fields and for nullable fields the caller set explicitly.
    Extra keys (kept by tolerant models) are never written.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    #: Fields whose explicit ``None`` is sent as ``null`` (the SDK's "nullable" set).
    _nullable: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _serialize_wire(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        out: dict[str, Any] = {}
        fields_set = self.model_fields_set
        for name, info in type(self).model_fields.items():
            key = info.alias or name
            if key in data:
                value = data[key]
            elif name in data:
                value = data[name]
            else:
                continue
            if value is not None:
                out[key] = value
            elif info.is_required() or (name in self._nullable and name in fields_set):
                out[key] = None
        return out

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON-ready dict the official SDK would send for this object."""
        return self.model_dump(mode="json", by_alias=True)


class _SharedWireModel(WireModel):
    """Wire model that also appears in responses: keeps unknown keys when parsing.

    :func:`build_request` still rejects unknown keys in these models (it validates with
    ``extra="forbid"``), and :meth:`to_wire` never sends them.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class _Tolerant(BaseModel):
    """Base of response-only models: unknown keys are kept, not rejected."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class _StreamTolerant(BaseModel):
    """Base of the per-chunk stream models: unknown keys are ignored, not rejected.

    Ignoring rather than keeping them saves an extra dict per object on the hottest path
    (thousands of chunks per answer), which matters for speed and for the garbage collector.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# --------------------------------------------------------------------------- content chunks


class ImageURL(_SharedWireModel):
    """An image reference with an optional detail level."""

    _nullable: ClassVar[frozenset[str]] = frozenset({"detail"})

    url: str
    """``https://`` URL or ``data:image/...;base64,`` URI."""
    detail: Literal["low", "auto", "high"] | None = None
    """Requested resolution; omitted when not set."""


class TextChunk(_SharedWireModel):
    """A piece of text content: ``{"type": "text", "text": ...}``."""

    text: str
    """The text."""
    type: Literal["text"] = "text"
    """Always ``"text"``."""


class ImageURLChunk(_SharedWireModel):
    """An image content part: ``{"type": "image_url", "image_url": str | ImageURL}``."""

    image_url: ImageURL | str
    """Plain URL string or an :class:`ImageURL` object."""
    type: Literal["image_url"] = "image_url"
    """Always ``"image_url"``."""


def _chunk_tag(value: Any) -> str:
    """Pick the chunk model by ``type``; unknown types stay plain dicts."""
    kind = value.get("type", "text") if isinstance(value, dict) else getattr(value, "type", None)
    if kind == "text":
        return "text"
    return "image_url" if kind == "image_url" else "other"


ContentChunk = Annotated[
    Annotated[TextChunk, Tag("text")]
    | Annotated[ImageURLChunk, Tag("image_url")]
    | Annotated[dict[str, Any], Tag("other")],
    Discriminator(_chunk_tag),
]
"""A content part: :class:`TextChunk`, :class:`ImageURLChunk`, or any other chunk as a dict."""

Content = str | list[ContentChunk]


# --------------------------------------------------------------------------- tools


class FunctionCall(_SharedWireModel):
    """Name and arguments of a function the model wants called."""

    name: str
    """Function name."""
    arguments: dict[str, Any] | str
    """JSON-encoded string (what the API returns) or an already-decoded object."""


class ToolCall(_SharedWireModel):
    """One tool call in an assistant message or a stream delta."""

    function: FunctionCall
    """The function and its arguments."""
    id: str | None = "null"
    """Call id (9 alphanumerics from Mistral); the SDK default is the string ``"null"``."""
    type: str | None = "function"
    """Always ``"function"`` today."""
    index: int | None = 0
    """Position of the call; stream deltas are keyed by it."""


class Function(WireModel):
    """A function the model may call (JSON-schema ``parameters``)."""

    name: str
    """Function name, as the model will refer to it."""
    parameters: dict[str, Any]
    """JSON schema of the arguments object."""
    description: str | None = None
    """What the function does."""
    strict: bool | None = None
    """Ask the model to follow the schema strictly."""


class Tool(WireModel):
    """A tool definition: ``{"type": "function", "function": {...}}``."""

    function: Function
    """The function definition."""
    type: Literal["function"] = "function"
    """Always ``"function"``."""


class FunctionName(WireModel):
    """Names the function a :class:`ToolChoice` forces."""

    name: str
    """Function name."""


class ToolChoice(WireModel):
    """Force a specific function: ``{"type": "function", "function": {"name": ...}}``."""

    function: FunctionName
    """The function to call."""
    type: Literal["function"] = "function"
    """Always ``"function"``."""


# --------------------------------------------------------------------------- messages


class SystemMessage(WireModel):
    """System prompt."""

    content: Content
    """Text or a list of chunks; not nullable."""
    role: Literal["system"] = "system"
    """Always ``"system"``."""


class UserMessage(WireModel):
    """A user turn."""

    content: Content | None
    """Text, ``None`` or a list of chunks (the key is required)."""
    role: Literal["user"] = "user"
    """Always ``"user"``."""


class AssistantMessage(_SharedWireModel):
    """An assistant turn (also the ``message`` of a response choice)."""

    _nullable: ClassVar[frozenset[str]] = frozenset({"content", "tool_calls"})

    role: Literal["assistant"] = "assistant"
    """Always ``"assistant"``."""
    content: Content | None = None
    """Text, ``None`` or a list of chunks."""
    tool_calls: list[ToolCall] | None = None
    """Tool calls made in this turn."""
    prefix: bool | None = False
    """``True`` to make this (last) message a prefix the model continues."""


class ToolMessage(WireModel):
    """The result of a tool call."""

    _nullable: ClassVar[frozenset[str]] = frozenset({"tool_call_id", "name"})

    content: Content | None
    """Tool output (the key is required)."""
    role: Literal["tool"] = "tool"
    """Always ``"tool"``."""
    tool_call_id: str | None = None
    """Id of the :class:`ToolCall` this answers."""
    name: str | None = None
    """Name of the function that was called."""


Messages = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage,
    Field(discriminator="role"),
]
"""Any chat message, discriminated by ``role``."""


# --------------------------------------------------------------------------- request options


class JSONSchema(WireModel):
    """A named JSON schema for ``response_format={"type": "json_schema", ...}``."""

    _nullable: ClassVar[frozenset[str]] = frozenset({"description"})

    name: str
    """Schema name."""
    schema_definition: dict[str, Any] = Field(alias="schema")
    """The JSON schema (sent as ``"schema"``)."""
    description: str | None = None
    """What the schema describes."""
    strict: bool | None = None
    """Require exact schema adherence."""


class ResponseFormat(WireModel):
    """Output format: ``text``, ``json_object`` or ``json_schema``."""

    _nullable: ClassVar[frozenset[str]] = frozenset({"json_schema"})

    type: Literal["text", "json_object", "json_schema"] | None = None
    """Format kind."""
    json_schema: JSONSchema | None = None
    """Required when ``type`` is ``"json_schema"``."""

    @model_validator(mode="after")
    def _schema_needed(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("json_schema is required when type is 'json_schema'")
        return self


class Prediction(WireModel):
    """Expected completion, to speed up generation: ``{"type": "content", "content": ...}``."""

    type: Literal["content"] = "content"
    """Always ``"content"``."""
    content: str = ""
    """The predicted text."""


ToolChoiceEnum = Literal["auto", "none", "any", "required"]
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]


class ChatCompletionRequest(WireModel):
    """Body of a chat completion call (``stream`` defaults to ``False``)."""

    _nullable: ClassVar[frozenset[str]] = frozenset(
        {
            "temperature",
            "top_p",
            "max_tokens",
            "stop",
            "random_seed",
            "metadata",
            "tools",
            "presence_penalty",
            "frequency_penalty",
            "min_tokens",
            "n",
            "reasoning_effort",
            "prompt_mode",
        }
    )

    model: str
    """Model id, e.g. ``mistral-small-2503`` (Vertex) or ``mistral-small-latest``."""
    messages: list[Messages]
    """The conversation so far."""
    temperature: float | None = Field(default=None, ge=0, le=1.5)
    """Sampling temperature, 0 to 1.5 (default depends on the model)."""
    top_p: float | None = Field(default=None, ge=0, le=1)
    """Nucleus sampling mass, 0 to 1."""
    max_tokens: int | None = Field(default=None, ge=0)
    """Maximum number of generated tokens."""
    stream: bool | None = False
    """Stream partial results as server-sent events; always sent."""
    stop: str | list[str] | None = None
    """Stop sequence(s)."""
    random_seed: int | None = Field(default=None, ge=0)
    """Seed for deterministic sampling."""
    metadata: dict[str, Any] | None = None
    """Free-form metadata."""
    response_format: ResponseFormat | None = None
    """Output format (text, JSON object, JSON schema)."""
    tools: list[Tool] | None = None
    """Functions the model may call."""
    tool_choice: ToolChoiceEnum | ToolChoice | None = None
    """``auto``, ``none``, ``any``, ``required`` or a :class:`ToolChoice`."""
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    """Penalty for tokens already present, -2 to 2."""
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    """Penalty proportional to token frequency, -2 to 2."""
    min_tokens: int | None = Field(default=None, ge=0)
    """Minimum number of generated tokens."""
    n: int | None = Field(default=None, ge=1)
    """Number of completions to return."""
    prediction: Prediction | None = None
    """Expected output, to speed up generation."""
    parallel_tool_calls: bool | None = None
    """Allow several tool calls in one turn."""
    reasoning_effort: ReasoningEffort | None = None
    """Reasoning budget for reasoning models."""
    prompt_mode: Literal["reasoning"] | None = None
    """``"reasoning"`` selects the reasoning system prompt."""
    safe_prompt: bool | None = None
    """api.mistral.ai only: prepend the safety prompt (Vertex rejects it)."""


class ChatCompletionStreamRequest(ChatCompletionRequest):
    """Body of a streaming chat completion call (``stream`` defaults to ``True``)."""

    stream: bool | None = True
    """Always sent; ``True`` for streaming."""


# --------------------------------------------------------------------------- responses


def _none_to_zero(value: Any) -> Any:
    return 0 if value is None else value


_Count = Annotated[int, BeforeValidator(_none_to_zero)]


class UsageInfo(_Tolerant):
    """Token accounting; unknown keys (``num_cached_tokens``, ...) are kept as extras."""

    prompt_tokens: _Count = 0
    """Tokens in the prompt."""
    completion_tokens: _Count = 0
    """Tokens generated."""
    total_tokens: _Count = 0
    """Sum of the two (``null`` and missing counts read as 0)."""
    prompt_audio_seconds: int | None = None
    """Audio input length, if any."""


class ChatCompletionChoice(_Tolerant):
    """One choice of a non-streamed completion."""

    index: int
    """Choice position."""
    finish_reason: str | None = None
    """``stop``, ``length``, ``model_length``, ``error``, ``tool_calls`` or another string."""
    message: AssistantMessage | None = None
    """The generated assistant message."""


class ChatCompletionResponse(_Tolerant):
    """A non-streamed completion."""

    id: str
    """Completion id."""
    object: str
    """``"chat.completion"``."""
    model: str
    """Model that answered."""
    usage: UsageInfo
    """Token accounting."""
    created: int
    """Unix timestamp."""
    choices: list[ChatCompletionChoice]
    """Generated choices."""


class DeltaMessage(_StreamTolerant):
    """The increment carried by one stream chunk."""

    role: str | None = None
    """``"assistant"`` on the first chunk, otherwise usually absent or ``None``."""
    content: Content | None = None
    """New text (or chunks)."""
    tool_calls: list[ToolCall] | None = None
    """Complete tool calls, keyed by ``index``."""


class CompletionResponseStreamChoice(_StreamTolerant):
    """One choice inside a stream chunk."""

    index: int
    """Choice position."""
    delta: DeltaMessage
    """What this chunk adds."""
    finish_reason: str | None = None
    """Set on the last chunk of the choice."""


class CompletionChunk(_StreamTolerant):
    """One SSE ``data:`` payload of a streamed completion."""

    id: str
    """Completion id (same on every chunk)."""
    model: str
    """Model that answers."""
    choices: list[CompletionResponseStreamChoice]
    """Usually one; may be empty."""
    object: str | None = None
    """``"chat.completion.chunk"`` (older servers omit it)."""
    created: int | None = None
    """Unix timestamp (older servers omit it)."""
    usage: UsageInfo | None = None
    """Present on the last content chunk."""


class CompletionEvent(_StreamTolerant):
    """What a stream yields, as in the SDK: ``event.data.choices[0].delta.content``."""

    data: CompletionChunk
    """The decoded chunk."""


class ModelCapabilities(_Tolerant):
    """What a model can do (``GET /v1/models``)."""

    completion_chat: bool | None = False
    function_calling: bool | None = False
    reasoning: bool | None = False
    completion_fim: bool | None = False
    fine_tuning: bool | None = False
    vision: bool | None = False
    ocr: bool | None = False
    classification: bool | None = False
    moderation: bool | None = False
    audio: bool | None = False
    audio_transcription: bool | None = False


class ModelCard(_Tolerant):
    """One entry of ``GET /v1/models`` (base or fine-tuned)."""

    id: str
    """Model id or alias usable in requests."""
    capabilities: ModelCapabilities = Field(default_factory=ModelCapabilities)
    """Capability flags."""
    object: str | None = "model"
    created: int | None = None
    owned_by: str | None = "mistralai"
    name: str | None = None
    description: str | None = None
    max_context_length: int | None = None
    aliases: list[str] | None = None
    deprecation: str | None = None
    """Deprecation date (ISO 8601) if scheduled."""
    deprecation_replacement_model: str | None = None
    default_model_temperature: float | None = None
    type: str | None = "base"
    """``"base"`` or ``"fine-tuned"``."""


class ModelList(_Tolerant):
    """Response of ``GET /v1/models``."""

    object: str | None = "list"
    data: list[ModelCard] = Field(default_factory=list)
    """The models."""


# --------------------------------------------------------------------------- build_request

_REQUEST_FIELDS = frozenset(ChatCompletionRequest.model_fields)

#: Whether this pydantic accepts ``extra=`` per validation call (2.11+); with it the
#: shared models (which keep unknown keys in responses) also reject them in requests.
_HAS_EXTRA_OVERRIDE = "extra" in inspect.signature(BaseModel.model_validate).parameters

_RANGES: dict[str, tuple[float | None, float | None]] = {
    "temperature": (0, 1.5),
    "top_p": (0, 1),
    "presence_penalty": (-2, 2),
    "frequency_penalty": (-2, 2),
    "max_tokens": (0, None),
    "min_tokens": (0, None),
    "random_seed": (0, None),
    "n": (1, None),
}

_FIELD_EXPECT: dict[str, str] = {
    "stop": "a string or a list of strings",
    "tool_choice": (
        "'auto', 'none', 'any', 'required' or "
        "{'type': 'function', 'function': {'name': ...}}"
    ),
    "content": "a string, None or a list of content chunks",
    "image_url": "a URL string or {'url': ...}",
    "arguments": "a JSON string or an object",
    "messages": "a list of messages",
    "tools": "a list of tools",
}

_TYPE_EXPECT: dict[str, str] = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "none_required": "None",
}


def _normalize_item(value: Any) -> Any:
    """Turn a foreign pydantic model (e.g. an official SDK message) into a plain dict."""
    if isinstance(value, BaseModel) and not isinstance(value, WireModel):
        return value.model_dump(mode="json", by_alias=True)
    return value


def _normalize(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Apply the SDK's argument conveniences before validation."""
    data = {k: v for k, v in kwargs.items() if v is not UNSET}
    messages = data.get("messages")
    if isinstance(messages, Iterable) and not isinstance(messages, (str, bytes, Mapping)):
        data["messages"] = [_normalize_item(m) for m in messages]
    tools = data.get("tools")
    if isinstance(tools, Iterable) and not isinstance(tools, (str, bytes, Mapping)):
        data["tools"] = [_normalize_item(t) for t in tools]
    fmt = data.get("response_format")
    if isinstance(fmt, str):
        data["response_format"] = {"type": fmt}
    elif fmt is not None:
        data["response_format"] = _normalize_item(fmt)
    prediction = data.get("prediction")
    if isinstance(prediction, str):
        data["prediction"] = {"type": "content", "content": prediction}
    elif prediction is not None:
        data["prediction"] = _normalize_item(prediction)
    if "tool_choice" in data:
        data["tool_choice"] = _normalize_item(data["tool_choice"])
    return data


def build_request(
    *, stream: bool, backend: Literal["vertex", "mistral"], **kwargs: Any
) -> ChatCompletionRequest:
    """Validate SDK-style keyword arguments into a request model.

    ``stream=True`` returns a :class:`ChatCompletionStreamRequest`. Keywords whose value
    is :data:`UNSET` are dropped; ``None`` counts as set. Raises
    :class:`~mistral_magic.errors.RequestValidationError` (one line per problem, the
    pydantic error on ``__cause__``).
    """
    if backend == "vertex" and kwargs.get("safe_prompt", UNSET) not in (UNSET, None):
        raise RequestValidationError(
            "safe_prompt is not accepted by Vertex AI (api.mistral.ai only); remove it",
            problems=["safe_prompt is not accepted by Vertex AI (api.mistral.ai only)"],
        )
    data = _normalize(kwargs)
    data["stream"] = stream
    cls: type[ChatCompletionRequest] = (
        ChatCompletionStreamRequest if stream else ChatCompletionRequest
    )
    try:
        if _HAS_EXTRA_OVERRIDE:
            return cls.model_validate(data, extra="forbid")
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = describe_validation_error(exc, cls)
        raise RequestValidationError(
            "; ".join(problems) if len(problems) <= 3 else
            f"{len(problems)} problems: " + "; ".join(problems),
            problems=problems,
        ) from exc


# --------------------------------------------------------------------------- error humanizer


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and a single ``None`` member from a type."""
    while True:
        if typing.get_origin(tp) is Annotated:
            tp = typing.get_args(tp)[0]
            continue
        origin = typing.get_origin(tp)
        if origin is Union or origin is types.UnionType:
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
        return tp


def _union_member(members: list[Any], label: str) -> Any:
    """Find the union member pydantic names ``label`` in an error location."""
    for member in members:
        meta = typing.get_args(member)[1:] if typing.get_origin(member) is Annotated else ()
        if any(isinstance(m, Tag) and m.tag == label for m in meta):
            return member
        inner = _unwrap(member)
        if isinstance(inner, type) and inner.__name__ == label:
            return inner
        origin = typing.get_origin(inner)
        if origin is not None and label.startswith(getattr(origin, "__name__", "?") + "["):
            return inner
    for member in members:  # discriminated unions label members by their tag value
        inner = _unwrap(member)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            for info in inner.model_fields.values():
                if typing.get_args(info.annotation) == (label,):
                    return inner
    return Any


class _Loc:
    """An error location with pydantic's union-member labels removed."""

    __slots__ = ("items", "owner", "via_union")

    def __init__(self) -> None:
        self.items: list[int | str] = []
        self.via_union = False  # the last step went through a union member label
        self.owner: type[BaseModel] | None = None  # model holding the last field


def _clean_loc(root: type[BaseModel], loc: tuple[int | str, ...]) -> _Loc:
    """Walk ``loc`` through the model types, dropping union labels; keep wire names."""
    result = _Loc()
    out = result.items
    tp: Any = root
    via_union = False
    for item in loc:
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            fields = tp.model_fields
            name = item if isinstance(item, str) and item in fields else None
            if name is None and isinstance(item, str):
                name = next((n for n, f in fields.items() if f.alias == item), None)
            out.append((fields[name].alias or name) if name else item)
            result.owner = tp
            tp = fields[name].annotation if name else Any
            via_union = False
        elif origin is list:
            out.append(item)
            tp = typing.get_args(tp)[0]
            via_union = False
        elif origin is dict:
            out.append(item)
            tp = typing.get_args(tp)[1]
            via_union = False
        elif origin is Union or origin is types.UnionType:
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = _union_member(members, str(item))
            via_union = True
        else:
            out.append(item)
            tp = Any
            via_union = False
    result.via_union = via_union
    return result


def _fmt_loc(loc: list[int | str]) -> str:
    text = ""
    for item in loc:
        if isinstance(item, int):
            text += f"[{item}]"
        else:
            text += f".{item}" if text else str(item)
    return text or "request"


def _got(value: Any) -> str:
    from ._redact import redact

    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f" (got {redact(text)})"


def _range_text(lo: float | None, hi: float | None) -> str:
    def num(v: float) -> str:
        return str(int(v)) if float(v).is_integer() else str(v)

    if lo is not None and hi is not None:
        return f"must be between {num(lo)} and {num(hi)}"
    if lo is not None:
        return f"must be >= {num(lo)}"
    return f"must be <= {num(hi)}" if hi is not None else "is out of range"


_OPENAI_NAMES: dict[str, str] = {
    "max_completion_tokens": "max_tokens",
    "seed": "random_seed",
    "stream_options": "",
    "logit_bias": "",
    "user": "",
    "store": "",
}


def _extra_field_problem(where: str, loc: _Loc) -> str:
    field = str(loc.items[-1]) if loc.items else "?"
    if len(loc.items) == 1:
        if field in _OPENAI_NAMES:
            ours = _OPENAI_NAMES[field]
            alt = f" (use {ours})" if ours else ""
            return f"{field} is an OpenAI parameter the Mistral API does not accept{alt}"
        known: list[str] = [
            (f.alias or n) for n, f in ChatCompletionRequest.model_fields.items()
        ]
        msg = f"{field} is not a parameter of the chat API"
    else:
        owner = loc.owner
        known = [(f.alias or n) for n, f in owner.model_fields.items()] if owner else []
        msg = f"{where} is not an accepted field"
    close = difflib.get_close_matches(field, known, n=1, cutoff=0.7)
    return msg + (f" (did you mean {close[0]}?)" if close else "")


def _one_problem(loc: _Loc, err: Mapping[str, Any]) -> str:
    """One short line for one pydantic error."""
    kind = str(err.get("type", ""))
    items = loc.items
    where = _fmt_loc(items)
    last = next((x for x in reversed(items) if isinstance(x, str)), "")
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind == "missing":
        return f"{where} is required"
    if kind == "extra_forbidden":
        return _extra_field_problem(where, loc)
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        if len(items) == 1 and last in _RANGES:
            return f"{where} {_range_text(*_RANGES[last])}{_got(value)}"
        op = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">",
              "less_than": "<"}[kind]
        bound = ctx.get({">=": "ge", "<=": "le", ">": "gt", "<": "lt"}[op])
        return f"{where} must be {op} {bound}{_got(value)}"
    if kind == "literal_error":
        if last == "role":
            return f"{where} must be one of 'system', 'user', 'assistant', 'tool'{_got(value)}"
        return f"{where} must be {ctx.get('expected', 'one of the allowed values')}{_got(value)}"
    if kind == "union_tag_not_found":
        if "messages" in items:
            return f"{where}.role is required (one of 'system', 'user', 'assistant', 'tool')"
        return f"{where} needs a {ctx.get('discriminator', 'type')!s} key"
    if kind == "union_tag_invalid":
        return (
            f"{where}.role must be one of 'system', 'user', 'assistant', 'tool'"
            f"{_got(ctx.get('tag'))}"
        )
    if kind == "value_error":
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        return f"{where}: {msg}"
    expect = _FIELD_EXPECT.get(str(last)) or _TYPE_EXPECT.get(kind)
    if expect:
        return f"{where} must be {expect}{_got(value)}"
    return f"{where}: {err.get('msg', 'invalid value')}"


_MISMATCH = frozenset(
    {"literal_error", "union_tag_invalid", "is_instance_of", "model_type",
     "model_attributes_type", *(_TYPE_EXPECT)}
)


def describe_validation_error(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """Condense a pydantic error into one short line per problem (union noise removed)."""
    found = [(_clean_loc(root, tuple(err["loc"])), err) for err in exc.errors()]
    problems: list[str] = []
    seen: set[str] = set()
    for loc, err in found:
        mismatch = err["type"] in _MISMATCH
        if loc.via_union or mismatch:
            # A type mismatch on one union member is noise when another member got further.
            n = len(loc.items)
            if any(len(o.items) > n and o.items[:n] == loc.items for o, _ in found):
                continue
        key = _fmt_loc(loc.items)
        if loc.via_union and mismatch:
            if key in seen:
                continue
            seen.add(key)
            last = next((x for x in reversed(loc.items) if isinstance(x, str)), "")
            expect = _FIELD_EXPECT.get(str(last))
            if expect:
                problems.append(f"{key} must be {expect}{_got(err.get('input'))}")
                continue
        line = _one_problem(loc, err)
        if line not in problems:
            problems.append(line)
    return problems
