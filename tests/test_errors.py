"""Error tree and translation of HTTP error responses into one-line messages."""

from __future__ import annotations

import json
import socket
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from mistral_magic import _redact
from mistral_magic import errors as e

GOOGLE_429 = {
    "error": {
        "code": 429,
        "message": "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per"
        "_base_model with base model: mistral-small-2503.",
        "status": "RESOURCE_EXHAUSTED",
    }
}
DETAIL = [
    {"type": "extra_forbidden", "loc": ["body", "max_completion_tokens"],
     "msg": "Extra inputs are not permitted", "input": 32000},
    {"type": "less_than_equal", "loc": ["body", "temperature"],
     "msg": "Input should be less than or equal to 1.5", "input": 3},
]


@pytest.fixture(autouse=True)
def _no_secrets() -> Any:
    _redact.clear_secrets()
    yield
    _redact.clear_secrets()


def _err(status: int, body: Any, *, backend: str = "vertex", headers: dict[str, str] | None = None,
         attempts: int = 1, **kw: Any) -> e.SDKError:
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return e.error_from_response(
        status, headers or {"content-type": "application/json"},
        raw.encode() if isinstance(raw, str) else raw,
        backend=backend, model=kw.pop("model", "mistral-small-2503"),
        region=kw.pop("region", "europe-west4"), attempts=attempts, **kw,
    )


def test_tree() -> None:
    assert issubclass(e.ConfigError, e.MistralError)
    assert issubclass(e.RequestValidationError, e.MistralError)
    assert issubclass(e.RequestValidationError, ValueError)
    assert issubclass(e.SDKError, e.APIError)
    assert issubclass(e.HTTPValidationError, e.SDKError)
    assert issubclass(e.ResponseValidationError, e.APIError)
    assert issubclass(e.StreamError, e.APIError)
    assert issubclass(e.APIConnectionError, e.MistralError)
    assert not issubclass(e.APIConnectionError, e.APIError)
    assert issubclass(e.APITimeoutError, e.APIConnectionError)
    doc = e.__doc__ or ""
    for name in ("MistralError", "ConfigError", "RequestValidationError", "APIError", "SDKError",
                 "HTTPValidationError", "ResponseValidationError", "StreamError",
                 "APIConnectionError", "APITimeoutError"):
        assert name in doc


def test_google_quota_429() -> None:
    exc = _err(429, GOOGLE_429, headers={"retry-after": "12"})
    text = str(exc)
    assert type(exc) is e.SDKError
    assert text.startswith("429 Too Many Requests from Vertex AI: Quota exceeded")
    assert "rate-limited" in text and "quota" in exc.hint.lower()  # type: ignore[union-attr]
    assert "retry in 12 s" in text
    assert "europe-west4" in text and "mistral-small-2503" in text
    assert "\n" not in text
    assert exc.status_code == 429 and exc.retry_after == 12
    assert json.loads(exc.body) == GOOGLE_429
    assert exc.message.startswith("429") and exc.message in text


def test_google_error_wrapped_in_array_from_stream_raw_predict() -> None:
    exc = _err(429, [GOOGLE_429])
    assert "Quota exceeded" in str(exc) and "quota" in str(exc)
    assert "wait a little and retry" in str(exc)


def test_mistral_rate_limit_with_retry_after_ms() -> None:
    body = {"object": "error", "message": "Requests rate limit exceeded", "type": "rate_limited",
            "param": None, "code": "1300"}
    exc = _err(429, body, backend="mistral", headers={"retry-after-ms": "2500"})
    assert str(exc) == (
        "429 Too Many Requests from Mistral API: Requests rate limit exceeded — "
        "rate-limited; retry in 3 s"
    )


def test_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    exc = _err(429, {"message": "slow down"}, backend="mistral",
               headers={"Retry-After": formatdate(now + 30, usegmt=True)}, now=now)
    assert "retry in 30 s" in str(exc)
    assert exc.service_message == "slow down"


def test_429_after_retries_says_so() -> None:
    exc = _err(429, {"message": "slow"}, backend="mistral", attempts=3)
    assert "gave up after 3 attempts" in str(exc) and exc.attempts == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx(status: int) -> None:
    one = _err(status, {"error": {"code": status, "message": "backend error", "status": "X"}})
    assert "the service failed" in str(one) and "attempts" not in str(one)
    four = _err(status, "upstream connect error", attempts=4)
    assert "gave up after 4 attempts" in str(four)
    assert "upstream connect error" in str(four)


def test_401_vertex_and_mistral_hints() -> None:
    v = _err(401, {"error": {"code": 401, "message": "Request had invalid authentication "
                             "credentials.", "status": "UNAUTHENTICATED"}})
    assert "gcloud auth application-default login" in str(v)
    assert "GOOGLE_OAUTH_ACCESS_TOKEN" in str(v)
    mi = _err(401, {"message": "Unauthorized", "request_id": "x"}, backend="mistral")
    assert "MISTRAL_API_KEY" in str(mi) and "console.mistral.ai" in str(mi)
    assert str(mi).startswith("401 Unauthorized from Mistral API: Unauthorized")


def test_403_vertex_mentions_role_and_model_garden() -> None:
    exc = _err(403, {"error": {"code": 403, "message": "Permission denied", "status":
                               "PERMISSION_DENIED"}})
    assert "roles/aiplatform.user" in str(exc) and "Model Garden" in str(exc)
    api_off = _err(403, {"error": {"code": 403, "message": "Vertex AI API has not been used in "
                                   "project 1 before or it is disabled.", "status": "X"}})
    assert "aiplatform.googleapis.com" in str(api_off)


def test_404_names_model_region_and_alternatives() -> None:
    exc = _err(404, {"error": {"code": 404, "message": "Publisher Model not found.",
                               "status": "NOT_FOUND"}}, model="mistral-huge", region="us-east1",
               known_models=["mistral-small-2503", "codestral-2501"])
    text = str(exc)
    assert "'mistral-huge'" in text and "us-east1" in text
    assert "mistral-small-2503" in text and "aliases" in text and "Model Garden" in text
    assert "aliases" in str(_err(404, "", model="x"))
    custom = _err(404, "", model="x", known_models=["only-this"])
    assert "only-this" in str(custom) and "mistral-small-2503" not in str(custom)
    mi = _err(404, {"object": "error", "message": "Invalid model: nope"}, backend="mistral",
              model="nope")
    assert "client.models.list()" in str(mi) and "'nope'" in str(mi)


def test_422_detail_becomes_http_validation_error() -> None:
    exc = _err(422, {"detail": DETAIL}, backend="mistral")
    assert isinstance(exc, e.HTTPValidationError)
    assert exc.data.detail is not None and len(exc.data.detail) == 2
    assert exc.data.detail[0].loc == ["body", "max_completion_tokens"]
    assert exc.data.detail[0].msg == "Extra inputs are not permitted"
    text = str(exc)
    assert "max_completion_tokens: Extra inputs are not permitted" in text
    assert "temperature: Input should be less than or equal to 1.5" in text
    assert "\n" not in text


def test_422_wrapped_in_object_error() -> None:
    body = {"object": "error", "message": {"detail": DETAIL}, "type": "invalid_request_error",
            "param": None, "code": None}
    exc = _err(422, body, backend="mistral")
    assert isinstance(exc, e.HTTPValidationError)
    assert exc.data.detail is not None and exc.data.detail[1].loc[-1] == "temperature"
    assert "max_completion_tokens" in str(exc)


def test_422_odd_shapes_do_not_crash() -> None:
    odd = _err(422, {"detail": [{"loc": "nowhere", "msg": {"nested": 1}}, "plain"]})
    assert isinstance(odd, e.HTTPValidationError)
    assert "plain" in str(odd)
    text = _err(422, "not json at all")
    assert isinstance(text, e.HTTPValidationError) and text.data.detail is None


def test_400_mistral_message_and_nested_message() -> None:
    plain = _err(400, {"object": "error", "message": "Assistant message must have either "
                       "content or tool_calls, but not none.", "type": "invalid_request_error"},
                 backend="mistral")
    assert str(plain) == ("400 Bad Request from Mistral API: Assistant message must have either "
                          "content or tool_calls, but not none.")
    nested = _err(400, {"object": "error", "message": {"message": "inner text"}})
    assert "inner text" in str(nested)
    obj = _err(400, {"object": "error", "message": {"weird": [1, 2]}})
    assert '{"weird":[1,2]}' in str(obj)


def test_html_and_empty_bodies() -> None:
    html = _err(502, "<html><head><title>502 Bad Gateway</title></head><body>x</body></html>")
    assert "502 Bad Gateway from Vertex AI: 502 Bad Gateway" in str(html)
    empty = _err(503, b"")
    assert str(empty).startswith("503 Service Unavailable from Vertex AI —")
    long = _err(400, "x" * 5000)
    assert len(str(long)) < 500


def test_secrets_never_in_str_or_repr() -> None:
    key = "abcdefghijklmnopqrstuvwxyz123456"
    _redact.register_secret(key)
    exc = _err(401, {"message": f"bad key {key}; header Bearer ya29.a0AfB_secret"},
               backend="mistral")
    for text in (str(exc), repr(exc)):
        assert key not in text and "ya29.a0AfB_secret" not in text
        assert "***" in text
    assert repr(exc).startswith("SDKError(")


def test_sdk_compatible_attributes() -> None:
    response = httpx.Response(500, headers={"x": "1"}, text="boom")
    exc = e.error_from_response(500, response.headers, response.content, backend="mistral",
                                model="m", region=None, raw_response=response)
    assert exc.raw_response is response and exc.headers["x"] == "1"
    assert exc.body == "boom" and exc.status_code == 500 and exc.attempts == 1
    assert exc.message == "500 Internal Server Error from Mistral API: boom"
    assert exc.hint is not None


def test_unknown_status() -> None:
    exc = _err(599, {"message": "odd"})
    assert str(exc).startswith("599 HTTP error from Vertex AI: odd")
    assert _err(418, "").hint is None


def test_stream_error_helpers() -> None:
    err = e.stream_error('{"object":"error","message":"Service overloaded","type":"x"}')
    assert isinstance(err, e.StreamError)
    assert str(err) == "The stream reported an error: Service overloaded"
    google = e.stream_error({"error": {"code": 500, "message": "Internal", "status": "INTERNAL"}})
    assert "Internal" in str(google)
    bad = e.malformed_chunk_error("{not json", ValueError("Expecting property name"))
    assert isinstance(bad, e.StreamError) and "Malformed stream chunk" in str(bad)
    assert bad.data == "{not json"


def test_connection_error_translation() -> None:
    refused = e.connection_error(httpx.ConnectError("[Errno 111] Connection refused"),
                                 url_host="127.0.0.1:8000")
    assert type(refused) is e.APIConnectionError
    assert "Could not connect to 127.0.0.1:8000" in str(refused)
    assert "emulator" in str(refused)
    remote = e.connection_error(httpx.ConnectError("nope"), url_host="api.mistral.ai")
    assert "server_url" in str(remote)
    dropped = e.connection_error(
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        url_host="api.mistral.ai", attempts=2,
    )
    assert "closed before the response was complete" in str(dropped)
    assert "gave up after 2 attempts" in str(dropped) and dropped.attempts == 2
    dns = e.connection_error(socket.gaierror("Name or service not known"), url_host="x.invalid")
    assert "Could not connect" in str(dns)
    other = e.connection_error(OSError("weird"), url_host="h")
    assert "Network error talking to h" in str(other)


def test_timeouts() -> None:
    read = e.connection_error(httpx.ReadTimeout("timed out"), url_host="h")
    assert isinstance(read, e.APITimeoutError)
    assert "waiting for data" in str(read) and "timeout_ms" in str(read)
    conn = e.timeout_error(httpx.ConnectTimeout("x"), url_host="h", timeout_s=5, attempts=3)
    assert str(conn).startswith("Timed out talking to h after 5 s (while connecting)")
    assert "gave up after 3 attempts" in str(conn)
    bare = e.timeout_error(url_host="h")
    assert str(bare).startswith("Timed out talking to h —")


def test_request_validation_error_problems() -> None:
    exc = e.RequestValidationError("a; b", problems=["a", "b"])
    assert exc.problems == ["a", "b"] and str(exc) == "a; b"
    assert e.RequestValidationError("only").problems == ["only"]


def test_partial_response_defaults_to_none() -> None:
    exc = e.StreamError("x")
    assert exc.partial_response is None
    exc.partial_response = {"a": 1}
    assert exc.partial_response == {"a": 1}
