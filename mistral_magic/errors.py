"""Exceptions raised by mistral_magic, and their translation from HTTP responses.

::

    MistralError
    ├── ConfigError                        missing credentials/project, bad settings
    ├── RequestValidationError(ValueError) rejected locally before sending
    ├── APIError                           .message, .hint
    │   ├── SDKError                       .status_code, .body, .headers, .raw_response, .attempts
    │   │   └── HTTPValidationError        422; .data.detail = [{loc, msg, type, ...}]
    │   ├── ResponseValidationError        a body or chunk that does not parse
    │   └── StreamError                    error object inside the stream, malformed chunk
    └── APIConnectionError                 transport failure, also a connection dropped mid-stream
        └── APITimeoutError

``str(exc)`` is one human line (status, the service's own message, how to fix it) and,
like ``repr(exc)``, always passes through :func:`mistral_magic._redact.redact`.
:func:`error_from_response` understands Mistral bodies (``{"detail": [...]}``,
``{"object": "error", "message": ...}``) and Google bodies (``{"error": {...}}``, also
wrapped in a one-element array as ``streamRawPredict`` sends them).
"""

from __future__ import annotations

import http
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ._redact import redact
from ._retry import parse_retry_after

if TYPE_CHECKING:
    import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "ConfigError",
    "HTTPValidationError",
    "HTTPValidationErrorData",
    "MistralError",
    "RequestValidationError",
    "ResponseValidationError",
    "SDKError",
    "StreamError",
    "ValidationErrorDetail",
    "connection_error",
    "error_from_response",
    "malformed_chunk_error",
    "stream_error",
    "timeout_error",
]

Backend = Literal["vertex", "mistral"]

_VERTEX_ALIASES = "small, medium, large, codestral"
_MAX_SERVICE_MESSAGE = 300


class MistralError(Exception):
    """Root of every exception raised by mistral_magic."""

    message: str
    hint: str | None
    #: What a stream delivered before failing (a ``ChatCompletionResponse``), if anything.
    partial_response: Any = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        # Attributes are redacted too: callers read .message and .hint directly.
        self.message = redact(message)
        self.hint = redact(hint) if hint else hint

    def __str__(self) -> str:
        text = self.message
        if self.hint:
            text = f"{text} — {self.hint}"
        return redact(text)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ConfigError(MistralError):
    """Missing credentials or project, or an invalid setting; the message says how to fix it."""


class RequestValidationError(MistralError, ValueError):
    """The request was rejected locally, before anything was sent.

    ``problems`` holds one short line per problem; the pydantic error is on ``__cause__``.
    """

    problems: list[str]

    def __init__(
        self, message: str, *, problems: Sequence[str] | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems = list(problems) if problems is not None else [message]


class APIError(MistralError):
    """The service answered, but not with what was asked for."""


class SDKError(APIError):
    """An HTTP error status (SDK-compatible attributes)."""

    status_code: int
    body: str
    headers: Mapping[str, str]
    raw_response: httpx.Response | None
    attempts: int
    service_message: str | None
    retry_after: float | None

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: str = "",
        headers: Mapping[str, str] | None = None,
        raw_response: httpx.Response | None = None,
        hint: str | None = None,
        attempts: int = 1,
        service_message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status_code = status_code
        self.body = redact(body)
        self.headers = headers if headers is not None else {}
        self.raw_response = raw_response
        self.attempts = attempts
        self.service_message = service_message
        self.retry_after = retry_after


class ValidationErrorDetail(BaseModel):
    """One item of a 422 ``detail`` list (tolerant: ``msg`` may be any JSON)."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int] = []
    msg: Any = ""
    type: str = ""
    input: Any = None
    ctx: dict[str, Any] | None = None


class HTTPValidationErrorData(BaseModel):
    """Parsed 422 body: ``{"detail": [...]}`` (``detail`` is ``None`` if absent)."""

    model_config = ConfigDict(extra="allow")

    detail: list[ValidationErrorDetail] | None = None


class HTTPValidationError(SDKError):
    """422: the service rejected fields of the request; see ``.data.detail``."""

    data: HTTPValidationErrorData

    def __init__(self, message: str, *, data: HTTPValidationErrorData, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.data = data


class ResponseValidationError(APIError):
    """A response body or chunk that does not match the expected shape."""

    body: str
    status_code: int | None
    raw_response: httpx.Response | None

    def __init__(
        self,
        message: str,
        *,
        body: str = "",
        status_code: int | None = None,
        raw_response: httpx.Response | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.body = body
        self.status_code = status_code
        self.raw_response = raw_response


class StreamError(APIError):
    """An error reported inside an event stream, or a chunk that cannot be decoded."""

    data: str | None

    def __init__(self, message: str, *, data: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.data = redact(data) if data else data


class APIConnectionError(MistralError):
    """The request could not be completed at the transport level."""

    url_host: str | None
    attempts: int

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        url_host: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, hint=hint)
        self.url_host = url_host
        self.attempts = attempts


class APITimeoutError(APIConnectionError):
    """The request timed out (connect, read, write or pool)."""


# --------------------------------------------------------------------------- body parsing


def _one_line(text: str, limit: int = _MAX_SERVICE_MESSAGE) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _fmt_detail_item(item: Any) -> str:
    if not isinstance(item, Mapping):
        return _one_line(item if isinstance(item, str) else json.dumps(item), 120)
    loc = item.get("loc")
    parts = [str(p) for p in loc] if isinstance(loc, list) else []
    if parts and parts[0] == "body":
        parts = parts[1:]
    where = ".".join(parts)
    msg = item.get("msg", item.get("message", ""))
    if not isinstance(msg, str):
        msg = json.dumps(msg, separators=(",", ":"))
    msg = _one_line(msg, 120)
    return f"{where}: {msg}" if where else msg


def _fmt_detail(detail: Any) -> str:
    if isinstance(detail, str):
        return _one_line(detail)
    if not isinstance(detail, list):
        return _one_line(json.dumps(detail, separators=(",", ":")))
    shown = [_fmt_detail_item(d) for d in detail[:5]]
    if len(detail) > 5:
        shown.append(f"+{len(detail) - 5} more")
    return "; ".join(shown)


class _Parsed:
    """What could be understood of an error body."""

    __slots__ = ("detail", "google_status", "message")

    def __init__(self) -> None:
        self.message: str | None = None
        self.google_status: str | None = None
        self.detail: list[Any] | None = None


def _message_of(value: Any, parsed: _Parsed) -> str | None:
    """Text of a Mistral ``message`` field, which may itself be an object."""
    if value is None:
        return None
    if isinstance(value, str):
        return _one_line(value)
    if isinstance(value, Mapping):
        if "detail" in value:
            if isinstance(value["detail"], list):
                parsed.detail = list(value["detail"])
            return _fmt_detail(value["detail"])
        if "message" in value:
            return _message_of(value["message"], parsed)
    if isinstance(value, list):
        return "; ".join(_fmt_detail_item(v) for v in value[:5])
    return _one_line(json.dumps(value, separators=(",", ":")))


def _parse_body(body: bytes | str) -> _Parsed:
    parsed = _Parsed()
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    stripped = text.strip()
    if not stripped:
        return parsed
    try:
        obj: Any = json.loads(stripped)
    except ValueError:
        if stripped.startswith("<"):
            title = re.search(r"<title[^>]*>(.*?)</title>", stripped, re.I | re.S)
            parsed.message = _one_line(title.group(1)) if title else "(HTML error page)"
        else:
            parsed.message = _one_line(stripped)
        return parsed
    if isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    if not isinstance(obj, Mapping):
        parsed.message = _one_line(stripped)
        return parsed
    error = obj.get("error")
    if isinstance(error, Mapping):  # Google front end
        parsed.google_status = error.get("status") if isinstance(error.get("status"), str) else None
        parsed.message = _message_of(error.get("message"), parsed)
        return parsed
    if "detail" in obj:
        if isinstance(obj["detail"], list):
            parsed.detail = list(obj["detail"])
        parsed.message = _fmt_detail(obj["detail"])
        return parsed
    if "message" in obj:
        parsed.message = _message_of(obj["message"], parsed)
        return parsed
    if isinstance(error, str):
        parsed.message = _one_line(error)
        return parsed
    parsed.message = _one_line(stripped)
    return parsed


# --------------------------------------------------------------------------- hints


def _fmt_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{math.ceil(seconds - 1e-9)} s"
    return f"{max(seconds, 0.1):.1f} s"


def _label(backend: str) -> str:
    return "Vertex AI" if backend == "vertex" else "Mistral API"


def _hint(
    status: int,
    parsed: _Parsed,
    *,
    backend: str,
    model: str | None,
    region: str | None,
    attempts: int,
    retry_after: float | None,
    known_models: Sequence[str] | None,
) -> str | None:
    vertex = backend == "vertex"
    model_txt = f"'{model}'" if model else "the model"
    where = f" in region '{region}'" if vertex and region else ""
    gave_up = f"gave up after {attempts} attempts" if attempts > 1 else ""
    if status == 401:
        if vertex:
            return (
                "authenticate with `gcloud auth application-default login`, or set "
                "GOOGLE_OAUTH_ACCESS_TOKEN / pass access_token= (access tokens expire after "
                "about an hour)"
            )
        return (
            "set MISTRAL_API_KEY (or pass api_key=) to a valid key; check your keys at "
            "https://console.mistral.ai/api-keys"
        )
    if status == 403:
        if vertex:
            api_off = "has not been used" in (parsed.message or "") or "is disabled" in (
                parsed.message or ""
            )
            if api_off:
                return "enable the Vertex AI API (aiplatform.googleapis.com) for this project"
            return (
                "grant your account roles/aiplatform.user on the project and enable "
                f"{model_txt} in Model Garden{where}"
            )
        return "this key may not use this model or endpoint; check it at https://console.mistral.ai"
    if status == 404:
        if vertex:
            models = f"available ids: {', '.join(known_models)}" if known_models else "model ids"
            return (
                f"model {model_txt} is not available{where} or not enabled in Model Garden; "
                f"{models} (aliases: {_VERTEX_ALIASES})"
            )
        return f"model {model_txt} was not found; list the available ids with client.models.list()"
    if status == 422:
        return "fix or remove the fields listed"
    if status == 429:
        quota = parsed.google_status == "RESOURCE_EXHAUSTED" or "quota" in (
            parsed.message or ""
        ).lower()
        when = f"retry in {_fmt_seconds(retry_after)}" if retry_after is not None else (
            "wait a little and retry"
        )
        if gave_up:
            when = f"{gave_up}; {when}"
        if vertex and quota:
            return (
                f"rate-limited: the Vertex AI quota for {model_txt}{where} is exhausted; {when}, "
                "or request more quota (Cloud console > IAM & Admin > Quotas)"
            )
        return f"rate-limited; {when}"
    if status >= 500:
        if gave_up:
            return f"the service failed; {gave_up}"
        return "the service failed; try again shortly (or configure retries)"
    return None


def error_from_response(
    status: int,
    headers: Mapping[str, str] | None,
    body: bytes | str,
    *,
    backend: Backend | str,
    model: str | None = None,
    region: str | None = None,
    attempts: int = 1,
    raw_response: httpx.Response | None = None,
    known_models: Sequence[str] | None = None,
    now: float | None = None,
) -> SDKError:
    """Build the :class:`SDKError` (or :class:`HTTPValidationError` for 422) for a response.

    ``known_models`` lists the ids to suggest after a Vertex 404 (defaults to the
    current Vertex Mistral models). ``now`` is the wall clock used for an HTTP-date
    ``Retry-After``.
    """
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    parsed = _parse_body(text)
    retry_after = parse_retry_after(headers or {}, time.time() if now is None else now)
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "HTTP error"
    head = f"{status} {phrase} from {_label(str(backend))}"
    if status == 422 and parsed.detail:
        message = f"{head}: invalid fields: {_fmt_detail(parsed.detail)}"
    elif parsed.message:
        message = f"{head}: {parsed.message}"
    else:
        message = head
    hint = _hint(
        status,
        parsed,
        backend=str(backend),
        model=model,
        region=region,
        attempts=attempts,
        retry_after=retry_after,
        known_models=known_models,
    )
    common: dict[str, Any] = {
        "status_code": status,
        "body": text,
        "headers": headers if headers is not None else {},
        "raw_response": raw_response,
        "hint": hint,
        "attempts": attempts,
        "service_message": parsed.message,
        "retry_after": retry_after,
    }
    if status == 422:
        try:
            data = HTTPValidationErrorData.model_validate({"detail": parsed.detail})
        except ValidationError:
            data = HTTPValidationErrorData()
        return HTTPValidationError(message, data=data, **common)
    return SDKError(message, **common)


# --------------------------------------------------------------------------- stream errors


def stream_error(payload: Mapping[str, Any] | str | bytes) -> StreamError:
    """Error for an error object sent inside an event stream (Mistral or Google shape)."""
    raw = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    parsed = _parse_body(text)
    message = "The stream reported an error"
    if parsed.message:
        message += f": {parsed.message}"
    return StreamError(message, data=text)


def malformed_chunk_error(data: str | bytes, exc: BaseException | None = None) -> StreamError:
    """Error for a stream chunk that is not valid JSON or not a completion chunk."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    reason = ""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0] if exc.error_count() else None
        if first is not None:
            loc = ".".join(str(p) for p in first["loc"])
            reason = f" ({loc}: {first['msg']})" if loc else f" ({first['msg']})"
    elif isinstance(exc, ValueError):
        reason = f" ({_one_line(str(exc), 80)})"
    return StreamError(
        f"Malformed stream chunk{reason}: {_one_line(text, 120)}",
        data=text,
        hint="the stream was cut short; retry the request",
    )


# --------------------------------------------------------------------------- transport errors


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def _is_loopback(host: str) -> bool:
    return host.split(":")[0] in _LOOPBACK or host.startswith(_LOOPBACK)


def _gave_up(attempts: int) -> str:
    return f" (gave up after {attempts} attempts)" if attempts > 1 else ""


def connection_error(
    exc: BaseException, *, url_host: str, attempts: int = 1
) -> APIConnectionError:
    """Translate a transport exception (httpx or OS) into :class:`APIConnectionError`.

    Timeouts become :class:`APITimeoutError` via :func:`timeout_error`.
    """
    names = _class_names(exc)
    if names & {"TimeoutException", "TimeoutError", "APITimeoutError"}:
        return timeout_error(exc, url_host=url_host, attempts=attempts)
    reason = _one_line(str(exc) or type(exc).__name__, 160)
    if names & {"RemoteProtocolError", "ReadError", "StreamError"} and "ConnectError" not in names:
        message = (
            f"Connection to {url_host} closed before the response was complete: {reason}"
            f"{_gave_up(attempts)}"
        )
        hint = "the server or a proxy dropped the connection; retry the request"
    elif names & {"ConnectError", "ConnectionRefusedError", "gaierror"}:
        message = f"Could not connect to {url_host}: {reason}{_gave_up(attempts)}"
        if _is_loopback(url_host):
            hint = "is the emulator running? start it with `python -m mistral_magic.emulator`"
        else:
            hint = "check the network connection, proxy settings and server_url"
    else:
        message = f"Network error talking to {url_host}: {reason}{_gave_up(attempts)}"
        hint = "check the network connection and retry"
    return APIConnectionError(message, hint=hint, url_host=url_host, attempts=attempts)


_TIMEOUT_PHASES = {
    "ConnectTimeout": "while connecting",
    "ReadTimeout": "waiting for data",
    "WriteTimeout": "while sending",
    "PoolTimeout": "waiting for a free connection",
}


def timeout_error(
    exc: BaseException | None = None,
    *,
    url_host: str,
    timeout_s: float | None = None,
    attempts: int = 1,
) -> APITimeoutError:
    """An :class:`APITimeoutError` naming the host, the phase and the timeout."""
    phase = ""
    if exc is not None:
        phase = next((p for n, p in _TIMEOUT_PHASES.items() if n in _class_names(exc)), "")
    message = f"Timed out talking to {url_host}"
    if timeout_s is not None:
        message += f" after {timeout_s:g} s"
    if phase:
        message += f" ({phase})"
    message += _gave_up(attempts)
    return APITimeoutError(
        message,
        hint="raise timeout_ms= (per call or on the client) or check the connection",
        url_host=url_host,
        attempts=attempts,
    )

