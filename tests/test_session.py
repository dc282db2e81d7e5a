"""Conversations and one turn: history, replace-a-rerun, interrupt and errors keep the partial
answer (driven against the in-process emulator with the real client)."""

from __future__ import annotations

from typing import Any

import pytest

from mistral_magic.client import MistralGCP
from mistral_magic.render import LiveWindowView, NullView
from mistral_magic.session import (
    ChatResult,
    Conversation,
    TurnFailed,
    TurnInterrupted,
    TurnRequest,
    run_turn,
    turn_key,
)


def test_conversation_record_replaces_same_key() -> None:
    c = Conversation("x", system="sys")
    c.record("a", [{"role": "user", "content": "1"}, {"role": "assistant", "content": "r1"}])
    c.record("b", [{"role": "user", "content": "2"}, {"role": "assistant", "content": "r2"}])
    c.record("a", [{"role": "user", "content": "1b"}, {"role": "assistant", "content": "r1b"}])
    assert [t.key for t in c.turns] == ["a", "b"]
    assert c.messages()[0] == {"role": "system", "content": "sys"}
    assert [m["content"] for m in c.messages()[1:]] == ["1b", "r1b", "2", "r2"]
    assert c.history_before("b") == c.turns[0].messages
    assert c.history_before("a") == []
    assert len(c.history_before("new")) == 4


def test_turn_key() -> None:
    assert turn_key("abc", "src") == "cell:abc"
    assert turn_key(None, "src") == turn_key(None, "src") != turn_key(None, "other")
    assert turn_key(None, "bad \ud800").startswith("src:")


@pytest.fixture
def client(emulator: Any) -> Any:
    with MistralGCP(project_id="p", access_token="t", server_url=emulator.url) as c:
        yield c


def request(**params: Any) -> TurnRequest:
    return TurnRequest(user_content="Tell me a story", params={"model": "mistral-small-2503",
                                                               **params})


def test_run_turn_result(client: Any) -> None:
    result = run_turn(client, request(), NullView())
    assert isinstance(result, ChatResult)
    assert result.finish_reason == "stop" and result.text
    assert [m["role"] for m in result.messages] == ["user", "assistant"]


class _Interrupting(NullView):
    def __init__(self, after: int) -> None:
        self.after = after
        self.seen = 0

    def delta(self, text: str) -> None:
        self.seen += 1
        if self.seen == self.after:
            raise KeyboardInterrupt


def test_interrupt_keeps_partial(client: Any) -> None:
    with pytest.raises(TurnInterrupted) as info:
        run_turn(client, request(min_tokens=100, max_tokens=100), _Interrupting(5))
    result = info.value.result
    assert result.finish_reason == "interrupted" and result.interrupted
    assert result.text
    # the pooled connection is usable afterwards
    assert run_turn(client, request(), NullView()).finish_reason == "stop"


def test_stream_fault_keeps_partial(client: Any, emulator: Any) -> None:
    emulator.inject("drop", after_chunks=4)
    from mistral_magic.utils import BackoffStrategy, RetryConfig

    retries = RetryConfig("backoff", BackoffStrategy(1, 1, 1.0, 10), False, max_attempts=1)
    with pytest.raises(TurnFailed) as info:
        run_turn(client, request(min_tokens=50, retries=retries), NullView())
    assert info.value.result.text
    assert info.value.result.finish_reason == "connection_lost"
    assert info.value.result.error


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_live_window_first_delta_at_once_then_paced() -> None:
    shown: list[str] = []
    clock = Clock()
    view = LiveWindowView(shown.append, interval=0.1, clock=clock)
    view.delta("Hello")
    assert shown == ["Hello"] and view.messages == 2  # created blank, then updated
    for i in range(100):
        clock.now += 0.001
        view.delta(f" w{i}")
    assert len(shown) == 1  # coalesced
    clock.now += 1.0
    view.delta(" end")
    assert shown[-1].endswith("end")
    view.clear()
    assert shown[-1] == ""


def test_live_window_bytes_stay_linear_and_messages_bounded() -> None:
    shown: list[str] = []
    clock = Clock()
    view = LiveWindowView(shown.append, interval=0.1, clock=clock)
    paragraph = "word " * 100 + "\n\n"
    total = 0
    for _ in range(400):  # ~200 KB, one paragraph every 10 ms
        clock.now += 0.01
        view.delta(paragraph)
        total += len(paragraph)
    view.clear()
    assert view.bytes_published < 2 * total
    assert max(len(s) for s in shown) < 10_000  # the window, not the whole answer
    assert view.messages <= 3 + 4.0 / 0.1  # burst + one per interval over 4 s
    assert "characters above" in shown[-2]


def test_live_window_closes_open_fence() -> None:
    shown: list[str] = []
    view = LiveWindowView(shown.append, clock=Clock())
    view.delta("Code:\n```python\nx = 1\n")
    assert shown[-1].rstrip().endswith("```")
