"""Many requests at once through one client object: no deadlock, every answer intact."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from conftest import ACCESS_TOKEN, API_KEY, PROJECT
from mistral_magic.client import Mistral, MistralGCP
from mistral_magic.emulator import EmulatorHandle

pytestmark = pytest.mark.usefixtures("loopback_only")

VMODEL = "mistral-small-2503"
MMODEL = "mistral-small-latest"


def params(i: int, model: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"Question {i}: tell me about painter #{i}."}],
        "random_seed": i,
        "max_tokens": 24 + i % 17,
    }


def test_100_concurrent_async_streams_one_client(emulator: EmulatorHandle) -> None:
    emulator.set_token_delay(0.002)
    client = MistralGCP(project_id=PROJECT, access_token=ACCESS_TOKEN, server_url=emulator.url)
    n = 100

    async def one_stream(i: int) -> tuple[str, str | None]:
        stream = await client.chat.stream_async(**params(i, VMODEL))
        async with stream:
            text = "".join([e.data.choices[0].delta.content or "" async for e in stream])
        return text, stream.response.choices[0].finish_reason

    async def main() -> tuple[list[tuple[str, str | None]], list[Any]]:
        http = client.async_http
        streamed = await asyncio.wait_for(
            asyncio.gather(*(one_stream(i) for i in range(n))), timeout=240
        )
        whole = await asyncio.wait_for(
            asyncio.gather(*(client.chat.complete_async(**params(i, VMODEL)) for i in range(n))),
            timeout=240,
        )
        assert client.async_http is http  # one pool for everything
        await client.aclose()
        return streamed, whole

    streamed, whole = asyncio.run(main())
    assert len(streamed) == n
    for i, ((text, reason), response) in enumerate(zip(streamed, whole, strict=True)):
        assert text, i
        assert text == response.choices[0].message.content, i
        assert reason == response.choices[0].finish_reason, i
    assert len(emulator.requests) == 2 * n
    # the answers really differ per request (so a mix-up would have been seen)
    assert len({text for text, _ in streamed}) > n // 2


def test_20_threads_share_one_sync_client(emulator: EmulatorHandle) -> None:
    emulator.set_token_delay(0.001)
    client = Mistral(api_key=API_KEY, server_url=emulator.url)
    barrier = threading.Barrier(20)
    pools: set[int] = set()

    def work(i: int) -> tuple[str, str]:
        barrier.wait(timeout=60)  # start together: the lazily created pool is contended
        pools.add(id(client.http))
        with client.chat.stream(**params(i, MMODEL)) as stream:
            text = "".join(e.data.choices[0].delta.content or "" for e in stream)
        whole = client.chat.complete(**params(i, MMODEL))
        return text, str(whole.choices[0].message.content)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(work, range(20), timeout=240))
    assert len(pools) == 1
    for i, (streamed, whole) in enumerate(results):
        assert streamed and streamed == whole, i
    assert len(emulator.requests) == 40
    client.close()


def test_mixed_sync_and_async_on_one_client(emulator: EmulatorHandle) -> None:
    """A worker thread using the sync API while the event loop streams: both finish."""
    emulator.set_token_delay(0.002)
    client = Mistral(api_key=API_KEY, server_url=emulator.url)

    async def main() -> tuple[list[str], list[str]]:
        sync_results: list[str] = []

        def sync_side() -> None:
            for i in range(5):
                sync_results.append(
                    str(client.chat.complete(**params(i, MMODEL)).choices[0].message.content)
                )

        async def async_side(i: int) -> str:
            stream = await client.chat.stream_async(**params(i, MMODEL))
            return "".join([e.data.choices[0].delta.content or "" async for e in stream])

        thread_done = asyncio.to_thread(sync_side)
        streamed = await asyncio.wait_for(
            asyncio.gather(thread_done, *(async_side(i) for i in range(5))), timeout=120
        )
        await client.aclose()
        return sync_results, list(streamed[1:])

    sync_results, async_results = asyncio.run(main())
    assert sync_results == async_results


def test_tools_calling_the_model_share_a_one_connection_pool(emulator: EmulatorHandle) -> None:
    """A tool that itself asks the model, through the same client whose pool holds ONE
    connection: the turn's stream is closed before tools run, so nothing waits for itself."""
    import httpx

    from mistral_magic.render import NullView
    from mistral_magic.session import TurnRequest, run_turn
    from mistral_magic.tools import ToolRegistry

    http = httpx.Client(limits=httpx.Limits(max_connections=1), timeout=10.0)
    client = MistralGCP(
        project_id=PROJECT, access_token=ACCESS_TOKEN, server_url=emulator.url, client=http
    )

    def ask_expert(question: str) -> str:
        """Ask an expert model a question."""
        inner = client.chat.complete(model=VMODEL, messages=[{"role": "user", "content": question}])
        return str(inner.choices[0].message.content)

    request = TurnRequest(
        user_content="Ask the expert about Monet.",
        params={"model": VMODEL, "tool_choice": "any"},
        tools=ToolRegistry([ask_expert]),
        backend="vertex",
    )
    done = threading.Event()
    result: list[Any] = []

    def run() -> None:
        result.append(run_turn(client, request, NullView()))
        done.set()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    assert done.wait(30), "the turn deadlocked on the connection pool"
    turn = result[0]
    assert turn.tool_results and turn.tool_results[0].ok
    assert turn.finish_reason == "stop" and "ask_expert" in turn.text
    # outer stream, the tool's own request, then the answer that uses the tool's result
    assert [r["body"]["stream"] for r in emulator.requests] == [True, False, True]
    http.close()


def test_emulator_binds_to_loopback_by_default() -> None:
    from mistral_magic.emulator import serve

    with serve() as handle:
        assert handle.url.startswith("http://127.0.0.1:")
