"""Errors and retries against the emulator's fault injection, for both backends."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from conftest import ACCESS_TOKEN, API_KEY, PROJECT, REGION
from mistral_magic.client import Mistral, MistralGCP
from mistral_magic.emulator import EmulatorHandle
from mistral_magic.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ConfigError,
    HTTPValidationError,
    MistralError,
    RequestValidationError,
    ResponseValidationError,
    SDKError,
    StreamError,
)
from mistral_magic.utils import BackoffStrategy, RetryConfig

pytestmark = pytest.mark.usefixtures("loopback_only")
MSGS = [{"role": "user", "content": "Tell me about Monet."}]
VMODEL = "mistral-small-2503"
MMODEL = "mistral-small-latest"
MODELS = {"vertex": VMODEL, "mistral": MMODEL}
BACKENDS = ["vertex", "mistral"]


def fast(max_attempts: int | None = 5, *, budget_ms: int = 20_000) -> RetryConfig:
    """Retries without waiting long: 1 ms doubling to 10 ms, no jitter."""
    return RetryConfig(
        "backoff",
        BackoffStrategy(1, 10, 2.0, budget_ms, jitter_ms=0),
        True,
        max_attempts=max_attempts,
    )


NO_RETRY = RetryConfig("none", BackoffStrategy(1, 1, 1.0, 1), False)


@pytest.fixture
def client(request: pytest.FixtureRequest, vertex: MistralGCP, mistral: Mistral) -> Any:
    return vertex if request.param == "vertex" else mistral


def model_of(client: Any) -> str:
    return VMODEL if isinstance(client, MistralGCP) else MMODEL


def complete(client: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("model", model_of(client))
    kwargs.setdefault("messages", MSGS)
    return client.chat.complete(**kwargs)


def stream(client: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("model", model_of(client))
    kwargs.setdefault("messages", MSGS)
    return client.chat.stream(**kwargs)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- the error tree


def test_error_tree() -> None:
    assert issubclass(HTTPValidationError, SDKError)
    assert issubclass(SDKError, APIError) and issubclass(StreamError, APIError)
    assert issubclass(ResponseValidationError, APIError)
    assert issubclass(APITimeoutError, APIConnectionError)
    assert issubclass(RequestValidationError, ValueError)
    for cls in (ConfigError, RequestValidationError, APIError, APIConnectionError):
        assert issubclass(cls, MistralError)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="MISTRAL_API_KEY"):
        Mistral().chat.complete(model=MMODEL, messages=MSGS)
    with pytest.raises(ConfigError, match="project_id"):
        MistralGCP(access_token=ACCESS_TOKEN).chat.complete(model=VMODEL, messages=MSGS)


# --------------------------------------------------------------------------- HTTP errors


@pytest.mark.parametrize("client", BACKENDS, indirect=True)
def test_422_is_http_validation_error(client: Any, emulator: EmulatorHandle) -> None:
    """A field the service rejects (our own validation bypassed by editing the body)."""
    endpoint = client._endpoint(
        {"model": model_of(client), "messages": MSGS},
        stream=False,
        server_url=None,
        http_headers=None,
    )
    endpoint.body = endpoint.body[:-1] + b',"max_completion_tokens":32}'
    with pytest.raises(HTTPValidationError) as info:
        client.send(endpoint, retries=fast())
    exc = info.value
    assert exc.status_code == 422
    assert exc.data.detail
    assert exc.data.detail[0].loc[-1] == "max_completion_tokens"
    assert "max_completion_tokens" in str(exc)
    assert len(emulator.requests) == 1  # not retried


@pytest.mark.parametrize(
    ("backend", "status", "needles"),
    [
        ("vertex", 401, ["401", "gcloud auth application-default login"]),
        ("mistral", 401, ["401", "MISTRAL_API_KEY"]),
        ("vertex", 403, ["403", "roles/aiplatform.user", VMODEL]),
        ("mistral", 403, ["403", "console.mistral.ai"]),
        ("vertex", 429, ["429", "rate-limited", "quota"]),
        ("mistral", 429, ["429", "rate-limited"]),
        ("vertex", 500, ["500", "service failed"]),
        ("mistral", 503, ["503", "service failed"]),
    ],
)
def test_status_messages(
    backend: str,
    status: int,
    needles: list[str],
    vertex: MistralGCP,
    mistral: Mistral,
    emulator: EmulatorHandle,
) -> None:
    client = vertex if backend == "vertex" else mistral
    emulator.inject("status", status=status)
    with pytest.raises(SDKError) as info:
        complete(client, retries=NO_RETRY)
    text = str(info.value)
    assert "\n" not in text
    for needle in needles:
        assert needle in text, (needle, text)
    assert info.value.status_code == status
    assert info.value.body and info.value.headers
    assert info.value.raw_response is not None


def test_404_names_model_and_region(vertex: MistralGCP, mistral: Mistral) -> None:
    with pytest.raises(SDKError) as info:
        vertex.chat.complete(model="mistral-huge-2999", messages=MSGS)
    text = str(info.value)
    assert info.value.status_code == 404
    assert "mistral-huge-2999" in text and REGION in text and "mistral-small-2503" in text
    with pytest.raises(SDKError) as info:
        mistral.chat.stream(model="mistral-huge-latest", messages=MSGS)
    text = str(info.value)
    assert info.value.status_code == 404 and "mistral-huge-latest" in text
    assert "models.list()" in text


@pytest.mark.parametrize("status", [401, 403, 404, 422])
@pytest.mark.parametrize("client", BACKENDS, indirect=True)
def test_client_errors_are_not_retried(client: Any, status: int, emulator: EmulatorHandle) -> None:
    emulator.inject("status", times=3, status=status)
    with pytest.raises(SDKError) as info:
        complete(client, retries=fast())
    assert info.value.status_code == status
    assert info.value.attempts == 1
    assert len(emulator.requests) == 1


# --------------------------------------------------------------------------- retries


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
@pytest.mark.parametrize("client", BACKENDS, indirect=True)
def test_retryable_status_then_success(client: Any, status: int, emulator: EmulatorHandle) -> None:
    emulator.inject("status", status=status)
    assert complete(client, retries=fast()).choices[0].message.content
    emulator.inject("status", status=status)
    assert list(stream(client, retries=fast()))
    assert len(emulator.requests) == 4


@pytest.mark.parametrize(
    ("params", "low", "high"),
    [
        ({"retry_after": 1}, 1.0, 1.0),
        ({"retry_after_ms": 150}, 0.15, 0.15),
        ({"retry_after": 2, "retry_after_date": True}, 0.5, 2.0),
    ],
    ids=["seconds", "ms", "http-date"],
)
@pytest.mark.parametrize("client", BACKENDS, indirect=True)
def test_429_retry_after_honoured(
    client: Any, params: dict[str, Any], low: float, high: float, emulator: EmulatorHandle
) -> None:
    emulator.inject("status", status=429, **params)
    waits: list[float] = []
    started = time.monotonic()
    response = complete(client, retries=fast(), on_retry=lambda n, d, why: waits.append(d))
    elapsed = time.monotonic() - started
    assert response.choices[0].message.content
    assert len(emulator.requests) == 2
    (wait,) = waits
    assert low - 0.01 <= wait <= high + 0.01
    assert elapsed >= wait - 0.01  # the sleep really happened (a lower bound cannot flake)
    assert elapsed < wait + 30


def test_429_retry_after_beyond_budget_gives_up(mistral: Mistral, emulator: EmulatorHandle) -> None:
    emulator.inject("status", status=429, retry_after=120)
    with pytest.raises(SDKError) as info:
        complete(mistral, retries=fast())
    assert len(emulator.requests) == 1
    assert "retry in 120 s" in str(info.value)


@pytest.mark.parametrize("client", BACKENDS, indirect=True)
def test_persistent_5xx_gives_up_with_attempt_count(client: Any, emulator: EmulatorHandle) -> None:
    emulator.inject("status", times=10, status=503)
    with pytest.raises(SDKError) as info:
        complete(client, retries=fast(max_attempts=3))
    assert len(emulator.requests) == 3
    assert info.value.attempts == 3
    assert "gave up after 3 attempts" in str(info.value)


def test_persistent_5xx_elapsed_budget(mistral: Mistral, emulator: EmulatorHandle) -> None:
    emulator.inject("status", times=1000, status=500)
    config = RetryConfig("backoff", BackoffStrategy(50, 50, 1.0, 1000, jitter_ms=0), False)
    with pytest.raises(SDKError) as info:
        complete(mistral, retries=config)
    attempts = len(emulator.requests)
    assert 1 <= attempts <= 25  # 50 ms apart within a 1 s budget (>1 unless very loaded)
    assert info.value.attempts == attempts
    if attempts > 1:
        assert f"gave up after {attempts} attempts" in str(info.value)
    emulator.clear_faults()


def test_default_retry_config_retries(emulator: EmulatorHandle) -> None:
    """Without any retry config a transient 503 is still retried (our default)."""
    client = Mistral(api_key=API_KEY, server_url=emulator.url)
    emulator.inject("status", status=503, retry_after_ms=1)
    assert complete(client).choices
    assert len(emulator.requests) == 2
    client.close()


def test_async_retries(mistral: Mistral, emulator: EmulatorHandle) -> None:
    emulator.inject("status", status=429, retry_after_ms=10)
    emulator.inject("status", status=502)

    async def main() -> tuple[Any, list[Any]]:
        response = await mistral.chat.complete_async(model=MMODEL, messages=MSGS, retries=fast())
        emulator.inject("status", status=504)
        s = await mistral.chat.stream_async(model=MMODEL, messages=MSGS, retries=fast())
        events = [e async for e in s]
        emulator.inject("status", times=5, status=500)
        with pytest.raises(SDKError, match="gave up after 2 attempts"):
            await mistral.chat.complete_async(model=MMODEL, messages=MSGS, retries=fast(2))
        await mistral.aclose()
        return response, events

    response, events = asyncio.run(main())
    assert response.choices and events
    assert len(emulator.requests) == 3 + 2 + 2


# --------------------------------------------------------------------------- transport failures


@pytest.mark.parametrize("backend", BACKENDS)
def test_connection_refused(backend: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    client: Any = (
        MistralGCP(project_id=PROJECT, access_token=ACCESS_TOKEN, server_url=url)
        if backend == "vertex"
        else Mistral(api_key=API_KEY, server_url=url)
    )
    with pytest.raises(APIConnectionError) as info:
        complete(client, retries=NO_RETRY)
    assert not isinstance(info.value, APITimeoutError)
    assert "127.0.0.1" in str(info.value)
    with pytest.raises(APIConnectionError, match="gave up after 3 attempts"):
        stream(client, retries=fast(3))
    client.close()


def test_connection_refused_async() -> None:
    client = Mistral(api_key=API_KEY, server_url=f"http://127.0.0.1:{closed_port()}")

    async def main() -> None:
        with pytest.raises(APIConnectionError):
            await client.chat.complete_async(model=MMODEL, messages=MSGS, retries=NO_RETRY)
        await client.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("client", BACKENDS, indirect=True)
def test_read_timeout_before_first_byte(client: Any, emulator: EmulatorHandle) -> None:
    emulator.inject("slow_first_byte", delay=1.0)
    with pytest.raises(APITimeoutError):
        complete(client, timeout_ms=100, retries=NO_RETRY)
    emulator.inject("slow_first_byte", delay=1.0)
    with pytest.raises(APITimeoutError):
        stream(client, timeout_ms=100, retries=NO_RETRY)
    # never retried, even when connection errors are: the service may already be generating
    emulator.inject("slow_first_byte", delay=2.0)
    with pytest.raises(APITimeoutError):
        complete(client, timeout_ms=300, retries=fast())
    assert len(emulator.requests) == 3


def test_read_timeout_async(mistral: Mistral, emulator: EmulatorHandle) -> None:
    emulator.inject("slow_first_byte", delay=1.0)

    async def main() -> None:
        with pytest.raises(APITimeoutError):
            await mistral.chat.complete_async(
                model=MMODEL, messages=MSGS, timeout_ms=100, retries=NO_RETRY
            )
        await mistral.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("client", BACKENDS, indirect=True)
def test_read_timeout_between_chunks_keeps_partial(client: Any, emulator: EmulatorHandle) -> None:
    emulator.inject("stall", after_chunks=3, delay=2.5)
    s = stream(client, timeout_ms=500, retries=fast())
    got = []
    with pytest.raises(APITimeoutError) as info:
        for event in s:
            got.append(event.data.choices[0].delta.content or "")
    assert len(got) == 3
    partial = info.value.partial_response
    assert partial.choices[0].message.content == "".join(got)
    assert partial.choices[0].finish_reason == "timeout"
    assert s.response.choices[0].finish_reason == "timeout"
    assert len(emulator.requests) == 1  # never retried mid-stream


@pytest.mark.parametrize("client", BACKENDS, indirect=True)
def test_drop_mid_stream_is_not_retried(client: Any, emulator: EmulatorHandle) -> None:
    emulator.inject("drop", after_chunks=4)
    s = stream(client, retries=fast())
    got = []
    with pytest.raises(APIConnectionError) as info:
        for event in s:
            got.append(event.data.choices[0].delta.content or "")
    assert not isinstance(info.value, APITimeoutError)
    assert len(got) == 4
    assert info.value.partial_response.choices[0].message.content == "".join(got)
    assert s.response.choices[0].finish_reason == "connection_lost"
    assert s.http_response.is_closed
    assert len(emulator.requests) == 1
    # the next request works
    assert complete(client).choices


def test_drop_mid_stream_async(mistral: Mistral, emulator: EmulatorHandle) -> None:
    emulator.inject("drop", after_chunks=2)

    async def main() -> Any:
        s = await mistral.chat.stream_async(model=MMODEL, messages=MSGS, retries=fast())
        with pytest.raises(APIConnectionError):
            async for _ in s:
                pass
        await mistral.aclose()
        return s

    s = asyncio.run(main())
    assert s.response.choices[0].finish_reason == "connection_lost"
    assert s.http_response.is_closed
    assert len(emulator.requests) == 1


def test_drop_before_response_is_retried(mistral: Mistral, emulator: EmulatorHandle) -> None:
    """A non-streamed request whose connection is cut before any answer is retried."""
    emulator.inject("drop")
    assert complete(mistral, retries=fast()).choices
    assert len(emulator.requests) == 2
    emulator.inject("drop")
    with pytest.raises(APIConnectionError):
        complete(mistral, retries=NO_RETRY)


@pytest.mark.parametrize("client", BACKENDS, indirect=True)
def test_malformed_json_chunk(client: Any, emulator: EmulatorHandle) -> None:
    emulator.inject("malformed", after_chunks=3, variant="bad_json")
    s = stream(client, retries=fast())
    with pytest.raises(StreamError) as info:
        list(s)
    partial = info.value.partial_response
    assert partial.choices[0].finish_reason == "error"
    assert s.response.choices[0].message.content == partial.choices[0].message.content
    assert len(emulator.requests) == 1


@pytest.mark.parametrize("client", BACKENDS, indirect=True)
def test_garbage_sse_line_is_ignored(client: Any, emulator: EmulatorHandle) -> None:
    """A line that is not ``field: value`` is an unknown field per the SSE rules: skipped."""
    whole = complete(client)
    emulator.inject("malformed", after_chunks=3, variant="bad_line")
    s = stream(client)
    assert "".join(e.data.choices[0].delta.content or "" for e in s) == (
        whole.choices[0].message.content
    )
    assert s.response.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("client", BACKENDS, indirect=True)
def test_error_object_mid_stream(client: Any, emulator: EmulatorHandle) -> None:
    emulator.inject("stream_error", after_chunks=3, message="GPU melted")
    s = stream(client)
    with pytest.raises(StreamError, match="GPU melted") as info:
        list(s)
    assert info.value.partial_response.choices[0].finish_reason == "error"
    assert s.response.choices[0].message.content
    assert s.http_response.is_closed


def test_malformed_whole_body(mistral: Mistral, emulator: EmulatorHandle) -> None:
    emulator.inject("malformed")
    with pytest.raises(ResponseValidationError) as info:
        complete(mistral, retries=fast())
    assert info.value.status_code == 200
    assert len(emulator.requests) == 1


@pytest.mark.parametrize("client", BACKENDS, indirect=True)
def test_wrong_content_type(client: Any, emulator: EmulatorHandle) -> None:
    emulator.inject("wrong_content_type")
    with pytest.raises(SDKError, match="Unexpected response") as info:
        complete(client, retries=fast())
    assert info.value.status_code == 200
    assert "text/html" in str(info.value)
    assert "<html>" in info.value.body
    emulator.inject("wrong_content_type")
    with pytest.raises(SDKError, match="Unexpected response"):
        stream(client, retries=fast())
    assert len(emulator.requests) == 2


def test_wrong_content_type_async(mistral: Mistral, emulator: EmulatorHandle) -> None:
    emulator.inject("wrong_content_type", times=2)

    async def main() -> None:
        with pytest.raises(SDKError, match="Unexpected response"):
            await mistral.chat.complete_async(model=MMODEL, messages=MSGS)
        with pytest.raises(SDKError, match="Unexpected response"):
            await mistral.chat.stream_async(model=MMODEL, messages=MSGS)
        await mistral.aclose()

    asyncio.run(main())


def test_static_token_401_is_not_refreshed(vertex: MistralGCP, emulator: EmulatorHandle) -> None:
    emulator.inject("reject_token", token=ACCESS_TOKEN)
    with pytest.raises(SDKError) as info:
        complete(vertex, retries=fast())
    assert info.value.status_code == 401
    assert len(emulator.requests) == 1
    assert emulator.token_requests == []
