"""The client's call surface against the emulator: sync/async, complete/stream, per-call options,
pooling, injected clients, and the seed documentation's two examples."""

from __future__ import annotations

import asyncio
import collections.abc
import socket
import time
from typing import Any

import httpx
import pytest

from conftest import ACCESS_TOKEN, API_KEY, PROJECT, REGION
from mistral_magic.client import Mistral, MistralGCP
from mistral_magic.emulator import EmulatorHandle
from mistral_magic.errors import (
    APIConnectionError,
    APITimeoutError,
    RequestValidationError,
    SDKError,
)
from mistral_magic.models import ChatCompletionResponse, CompletionEvent, ModelList
from mistral_magic.utils import BackoffStrategy, RetryConfig

pytestmark = pytest.mark.usefixtures("loopback_only")
MSGS = [{"role": "user", "content": "Say something about Paris."}]
VMODEL = "mistral-small-2503"
MMODEL = "mistral-small-latest"
FAST = RetryConfig("backoff", BackoffStrategy(1, 10, 1.5, 10_000, jitter_ms=0), True)
NO_RETRY = RetryConfig("none", BackoffStrategy(1, 10, 1.5, 10_000), False)


def vertex_path(model: str, method: str) -> str:
    return f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/mistralai/models/{model}:{method}"


def closed_port() -> int:
    """A loopback port with nothing listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    """Poll ``predicate`` (generous bound; only for server-side effects that lag a little)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


# --------------------------------------------------------------------------- seed examples


def test_seed_stream_example(emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]) -> None:
    s = MistralGCP(
        region="europe-west4",
        project_id="my-project",
        access_token=ACCESS_TOKEN,
        server_url=emulator.url,
    )
    res = s.chat.stream(
        model="mistral-small-2503",
        messages=[
            {
                "role": "user",
                "content": "Who is the best French painter? Answer in one short sentence.",
            }
        ],
    )
    if res is not None:
        for chunk in res:
            print(chunk.data.choices[0].delta.content)
    out = capsys.readouterr().out
    assert len(out.splitlines()) > 3
    assert "French" in out
    (request,) = emulator.requests
    assert request["path"].endswith("/models/mistral-small-2503:streamRawPredict")
    assert "/projects/my-project/locations/europe-west4/" in request["path"]
    s.close()


def test_seed_complete_example(
    emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    s = MistralGCP(
        region="europe-west4",
        project_id="my-project",
        access_token=ACCESS_TOKEN,
        server_url=emulator.url,
    )
    res = s.chat.complete(
        model="mistral-small-2503",
        messages=[
            {
                "role": "user",
                "content": "Who is the best French painter? Answer in one short sentence.",
            }
        ],
    )
    if res is not None:
        print(res.choices[0].message.content)
    out = capsys.readouterr().out
    assert "French" in out
    (request,) = emulator.requests
    assert request["path"].endswith("/models/mistral-small-2503:rawPredict")
    s.close()


# --------------------------------------------------------------------------- the four calls


@pytest.mark.parametrize("backend", ["vertex", "mistral"])
def test_complete_and_stream_agree(
    backend: str, vertex: MistralGCP, mistral: Mistral, emulator: EmulatorHandle
) -> None:
    client, model = (vertex, VMODEL) if backend == "vertex" else (mistral, MMODEL)
    whole = client.chat.complete(model=model, messages=MSGS, max_tokens=40, random_seed=3)
    assert isinstance(whole, ChatCompletionResponse)
    text = whole.choices[0].message.content
    assert isinstance(text, str) and text
    stream = client.chat.stream(model=model, messages=MSGS, max_tokens=40, random_seed=3)
    assert isinstance(stream, collections.abc.Iterator)
    pieces = []
    for event in stream:
        assert isinstance(event, CompletionEvent)
        pieces.append(event.data.choices[0].delta.content or "")
    assert "".join(pieces) == text
    assert stream.response.choices[0].message.content == text
    assert stream.response.choices[0].finish_reason == whole.choices[0].finish_reason
    assert stream.response.usage.total_tokens == whole.usage.total_tokens
    assert stream.http_response.is_closed
    first, second = emulator.requests
    assert first["headers"]["accept"] == "application/json"
    assert second["headers"]["accept"] == "text/event-stream"
    assert first["body"]["stream"] is False and second["body"]["stream"] is True
    if backend == "mistral":
        assert first["path"] == second["path"] == "/v1/chat/completions"
    else:
        assert first["path"] == vertex_path(VMODEL, "rawPredict")
        assert second["path"] == vertex_path(VMODEL, "streamRawPredict")


@pytest.mark.parametrize("backend", ["vertex", "mistral"])
def test_async_complete_and_stream(
    backend: str, vertex: MistralGCP, mistral: Mistral, emulator: EmulatorHandle
) -> None:
    client, model = (vertex, VMODEL) if backend == "vertex" else (mistral, MMODEL)

    async def main() -> tuple[str, str, bool]:
        whole = await client.chat.complete_async(model=model, messages=MSGS, max_tokens=30)
        stream = await client.chat.stream_async(model=model, messages=MSGS, max_tokens=30)
        pieces = [e.data.choices[0].delta.content or "" async for e in stream]
        closed = stream.http_response.is_closed
        await client.aclose()
        return str(whole.choices[0].message.content), "".join(pieces), closed

    whole, streamed, closed = asyncio.run(main())
    assert whole and whole == streamed
    assert closed
    assert len(emulator.requests) == 2


def test_stream_context_manager_break_closes(vertex: MistralGCP, emulator: EmulatorHandle) -> None:
    emulator.set_token_delay(0.005)
    before = emulator.open_connections
    with vertex.chat.stream(model=VMODEL, messages=MSGS) as stream:
        for _event in stream:
            break
        assert not stream.http_response.is_closed
    assert stream.http_response.is_closed
    assert stream.response.choices[0].finish_reason == "interrupted"
    # iterating a closed stream just ends
    assert list(stream) == []
    # the half-read connection is not reused: the emulator sees it go away
    assert wait_for(lambda: emulator.open_connections <= before)
    # and the client keeps working
    again = vertex.chat.complete(model=VMODEL, messages=MSGS)
    assert again.choices[0].message.content


def test_stream_close_without_context_manager(mistral: Mistral) -> None:
    stream = mistral.chat.stream(model=MMODEL, messages=MSGS)
    first = next(stream)
    assert first.data.id
    stream.close()
    stream.close()  # idempotent
    assert stream.http_response.is_closed
    with pytest.raises(StopIteration):
        next(stream)


def test_async_stream_break_and_exit_closes(mistral: Mistral, emulator: EmulatorHandle) -> None:
    emulator.set_token_delay(0.005)

    async def main() -> Any:
        async with await mistral.chat.stream_async(model=MMODEL, messages=MSGS) as stream:
            async for _event in stream:
                break
        assert stream.http_response.is_closed
        assert [e async for e in stream] == []
        await mistral.aclose()
        return stream

    stream = asyncio.run(main())
    assert stream.response.choices[0].finish_reason == "interrupted"


def test_async_cancellation_closes_response(mistral: Mistral, emulator: EmulatorHandle) -> None:
    emulator.set_token_delay(0.05)

    async def main() -> Any:
        stream = await mistral.chat.stream_async(model=MMODEL, messages=MSGS)
        started = asyncio.Event()

        async def consume() -> None:
            async for _event in stream:
                started.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(started.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await mistral.aclose()
        return stream

    stream = asyncio.run(main())
    assert stream.http_response.is_closed
    partial = stream.response
    assert partial.choices[0].finish_reason == "interrupted"


def test_until_done(mistral: Mistral) -> None:
    stream = mistral.chat.stream(model=MMODEL, messages=MSGS, max_tokens=5)
    response = stream.until_done()
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens == 5


def test_legacy_vertex_model_keeps_at_sign(vertex: MistralGCP, emulator: EmulatorHandle) -> None:
    vertex.chat.complete(model="mistral-large@2407", messages=MSGS)
    (request,) = emulator.requests
    assert request["path"] == vertex_path("mistral-large@2407", "rawPredict")
    assert request["body"]["model"] == "mistral-large@2407"


def test_invalid_request_sends_nothing(vertex: MistralGCP, emulator: EmulatorHandle) -> None:
    with pytest.raises(RequestValidationError, match="temperature"):
        vertex.chat.complete(model=VMODEL, messages=MSGS, temperature=7)
    with pytest.raises(RequestValidationError, match="safe_prompt"):
        vertex.chat.stream(model=VMODEL, messages=MSGS, safe_prompt=True)
    assert emulator.requests == []


# --------------------------------------------------------------------------- per-call options


def test_per_call_retries(mistral: Mistral, emulator: EmulatorHandle) -> None:
    emulator.inject("status", status=503)
    response = mistral.chat.complete(model=MMODEL, messages=MSGS, retries=FAST)
    assert response.choices[0].message.content
    assert len(emulator.requests) == 2
    emulator.clear_requests()
    emulator.inject("status", status=503)
    with pytest.raises(SDKError) as info:
        mistral.chat.complete(model=MMODEL, messages=MSGS, retries=NO_RETRY)
    assert info.value.status_code == 503
    assert len(emulator.requests) == 1


def test_constructor_retry_config(emulator: EmulatorHandle) -> None:
    client = Mistral(api_key=API_KEY, server_url=emulator.url, retry_config=FAST)
    emulator.inject("status", times=2, status=502)
    assert client.chat.complete(model=MMODEL, messages=MSGS).choices
    assert len(emulator.requests) == 3
    client.close()


def test_per_call_server_url(emulator: EmulatorHandle) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    v = MistralGCP(project_id=PROJECT, access_token=ACCESS_TOKEN, server_url=dead)
    m = Mistral(api_key=API_KEY, server_url=dead)
    assert v.chat.complete(model=VMODEL, messages=MSGS, server_url=emulator.url).choices
    assert m.chat.complete(model=MMODEL, messages=MSGS, server_url=emulator.url).choices
    assert list(m.chat.stream(model=MMODEL, messages=MSGS, server_url=emulator.url))
    assert m.models.list(server_url=emulator.url).data
    assert len(emulator.requests) == 4
    with pytest.raises(APIConnectionError):
        m.chat.complete(model=MMODEL, messages=MSGS, retries=NO_RETRY)
    v.close()
    m.close()


def test_vertex_server_url_replaces_only_scheme_and_host(emulator: EmulatorHandle) -> None:
    client = MistralGCP(
        project_id=PROJECT, access_token=ACCESS_TOKEN, server_url=emulator.url + "/ignored/path/"
    )
    client.chat.complete(model=VMODEL, messages=MSGS)
    assert emulator.requests[0]["path"] == vertex_path(VMODEL, "rawPredict")
    client.close()


def test_per_call_timeout_ms(mistral: Mistral, emulator: EmulatorHandle) -> None:
    emulator.inject("slow_first_byte", delay=1.0)
    with pytest.raises(APITimeoutError):
        mistral.chat.complete(model=MMODEL, messages=MSGS, timeout_ms=100, retries=NO_RETRY)
    emulator.inject("slow_first_byte", delay=0.2)
    assert mistral.chat.complete(model=MMODEL, messages=MSGS, timeout_ms=30_000).choices


def test_constructor_timeout_ms(emulator: EmulatorHandle) -> None:
    client = Mistral(api_key=API_KEY, server_url=emulator.url, timeout_ms=100)
    emulator.inject("slow_first_byte", delay=1.0)
    with pytest.raises(APITimeoutError):
        client.chat.complete(model=MMODEL, messages=MSGS, retries=NO_RETRY)
    client.close()


def test_per_call_http_headers(vertex: MistralGCP, emulator: EmulatorHandle) -> None:
    vertex.chat.complete(
        model=VMODEL, messages=MSGS, http_headers={"X-Trace": "abc", "User-Agent": "mine/1.0"}
    )
    headers = emulator.requests[0]["headers"]
    assert headers["x-trace"] == "abc"
    assert headers["user-agent"] == "mine/1.0"
    assert headers["authorization"] == f"Bearer {ACCESS_TOKEN}"


def test_on_retry_callback(mistral: Mistral, emulator: EmulatorHandle) -> None:
    calls: list[tuple[int, float, str]] = []
    emulator.inject("status", status=429, retry_after_ms=5)
    mistral.chat.complete(
        model=MMODEL, messages=MSGS, retries=FAST, on_retry=lambda *a: calls.append(a)
    )
    assert len(calls) == 1
    attempt, delay, why = calls[0]
    assert attempt == 2 and why == "HTTP 429" and delay == pytest.approx(0.005)


# --------------------------------------------------------------------------- models.list


def test_models_list(mistral: Mistral, emulator: EmulatorHandle) -> None:
    models = mistral.models.list()
    assert isinstance(models, ModelList)
    ids = {card.id for card in models.data}
    assert {"mistral-small-latest", "mistral-large-latest"} <= ids
    (request,) = emulator.requests
    assert request["method"] == "GET" and request["path"] == "/v1/models"
    assert request["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert request["body"] is None

    async def main() -> ModelList:
        try:
            return await mistral.models.list_async()
        finally:
            await mistral.aclose()

    assert {c.id for c in asyncio.run(main()).data} == ids


def test_models_list_retries_and_errors(mistral: Mistral, emulator: EmulatorHandle) -> None:
    emulator.inject("status", status=503)
    assert mistral.models.list(retries=FAST).data
    assert len(emulator.requests) == 2
    emulator.inject("status", status=401)
    with pytest.raises(SDKError) as info:
        mistral.models.list(retries=FAST)
    assert info.value.status_code == 401
    emulator.inject("wrong_content_type")
    with pytest.raises(SDKError, match="Unexpected response"):
        mistral.models.list(retries=FAST)


# --------------------------------------------------------------------------- pooling


def test_one_pooled_client_keeps_connections_alive(
    vertex: MistralGCP, emulator: EmulatorHandle
) -> None:
    http = vertex.http
    before = emulator.connections_accepted
    for _ in range(5):
        vertex.chat.complete(model=VMODEL, messages=MSGS, max_tokens=5)
        list(vertex.chat.stream(model=VMODEL, messages=MSGS, max_tokens=5))
    assert vertex.http is http
    assert emulator.connections_accepted - before == 1
    assert len(emulator.requests) == 10


def test_async_pool_keeps_connections_alive(mistral: Mistral, emulator: EmulatorHandle) -> None:
    async def main() -> int:
        before = emulator.connections_accepted
        http = mistral.async_http
        for _ in range(5):
            await mistral.chat.complete_async(model=MMODEL, messages=MSGS, max_tokens=5)
            stream = await mistral.chat.stream_async(model=MMODEL, messages=MSGS, max_tokens=5)
            await stream.until_done()
        assert mistral.async_http is http
        await mistral.aclose()
        return emulator.connections_accepted - before

    assert asyncio.run(main()) == 1


def test_async_client_survives_a_new_event_loop(mistral: Mistral) -> None:
    """``asyncio.run`` twice: the pool of the first (closed) loop must not be reused."""
    for _ in range(2):
        response = asyncio.run(mistral.chat.complete_async(model=MMODEL, messages=MSGS))
        assert response.choices[0].message.content


def test_injected_clients_are_used_and_not_closed(emulator: EmulatorHandle) -> None:
    seen: list[httpx.Request] = []
    http = httpx.Client(timeout=httpx.Timeout(42.0), event_hooks={"request": [seen.append]})
    ahttp = httpx.AsyncClient(timeout=httpx.Timeout(43.0))
    with MistralGCP(
        project_id=PROJECT,
        access_token=ACCESS_TOKEN,
        server_url=emulator.url,
        client=http,
        async_client=ahttp,
    ) as client:
        assert client.http is http
        client.chat.complete(model=VMODEL, messages=MSGS)
        list(client.chat.stream(model=VMODEL, messages=MSGS))

        async def main() -> None:
            assert client.async_http is ahttp
            await client.chat.complete_async(model=VMODEL, messages=MSGS)
            await client.aclose()

        asyncio.run(main())
    assert len(seen) == 2
    # no timeout_ms anywhere: the injected client's own timeout applies
    assert seen[0].extensions["timeout"]["read"] == 42.0
    assert not http.is_closed and not ahttp.is_closed
    assert len(emulator.requests) == 3
    http.close()


def test_owned_client_closed_and_recreated(vertex: MistralGCP) -> None:
    http = vertex.http
    vertex.close()
    assert http.is_closed
    assert vertex.chat.complete(model=VMODEL, messages=MSGS).choices  # a fresh pool
    assert vertex.http is not http


def test_default_timeout_is_not_httpx_default(vertex: MistralGCP) -> None:
    timeout = vertex.http.timeout
    assert timeout.read is not None and timeout.read >= 60
    assert timeout.connect is not None and timeout.connect >= 5


def test_response_class(mistral: Mistral) -> None:
    class Mine(ChatCompletionResponse):
        pass

    assert isinstance(mistral.chat.complete(model=MMODEL, messages=MSGS, response_class=Mine), Mine)
    stream = mistral.chat.stream(model=MMODEL, messages=MSGS, response_class=Mine)
    assert isinstance(stream.until_done(), Mine)


def test_abandoned_stream_releases_its_connection(emulator: EmulatorHandle) -> None:
    """Streams opened and dropped unread must not exhaust the pool."""
    import gc

    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    http = httpx.Client(limits=limits, timeout=httpx.Timeout(10.0, pool=2.0))
    client = Mistral(api_key=API_KEY, server_url=emulator.url, client=http)
    for _ in range(4):
        client.chat.stream(model=MMODEL, messages=MSGS)  # never read, never closed
        gc.collect()
    assert client.chat.complete(model=MMODEL, messages=MSGS).choices
    http.close()


def test_timeout_message_names_the_limit(mistral: Mistral, emulator: EmulatorHandle) -> None:
    emulator.inject("slow_first_byte", delay=1.0)
    with pytest.raises(APITimeoutError) as info:
        mistral.chat.complete(model=MMODEL, messages=MSGS, timeout_ms=150, retries=NO_RETRY)
    assert "0.15 s" in str(info.value) and "timeout_ms" in str(info.value)


def test_50_interrupted_streams_leak_nothing(vertex: MistralGCP, emulator: EmulatorHandle) -> None:
    """KeyboardInterrupt mid-stream, 50 times: partial kept, response closed, no fd/thread left."""
    import os
    import threading

    emulator.set_token_delay(0.002)
    vertex.chat.complete(model=VMODEL, messages=MSGS)  # warm the pool
    fds_before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    threads_before = threading.active_count()
    for i in range(50):
        stream = vertex.chat.stream(model=VMODEL, messages=MSGS, random_seed=i)
        with pytest.raises(KeyboardInterrupt), stream:
            for n, _event in enumerate(stream):
                if n == 2:
                    raise KeyboardInterrupt
        assert stream.http_response.is_closed
        partial = stream.response.choices[0]
        assert partial.finish_reason == "interrupted" and partial.message.content
    assert vertex.chat.complete(model=VMODEL, messages=MSGS).choices  # next request works
    assert wait_for(lambda: threading.active_count() <= threads_before + 1)
    if fds_before is not None:
        assert len(os.listdir("/proc/self/fd")) <= fds_before + 2
