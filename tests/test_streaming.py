"""Event streams fed raw bytes through an injected httpx transport: SSE edge cases, mid-stream
failures, tool-call accumulation, and the fast path against the general decoder."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mistral_magic.client import Mistral
from mistral_magic.errors import APIConnectionError, APITimeoutError, StreamError
from mistral_magic.models import ChatCompletionResponse
from mistral_magic.streaming import AsyncEventStream, EventStream, ResponseAccumulator

pytestmark = pytest.mark.usefixtures("loopback_only")
MSGS = [{"role": "user", "content": "hi"}]
Read = bytes | BaseException  # a network read, or a transport failure raised at that point


def chunk(
    content: str | None = None,
    *,
    finish: str | None = None,
    role: str | None = None,
    usage: dict[str, int] | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    minimal: bool = False,
    index: int = 0,
) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role is not None or minimal:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    body: dict[str, Any] = {
        "id": "cmpl-1",
        "model": "mistral-small-latest",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }
    if not minimal:
        body.update(object="chat.completion.chunk", created=1700000000, usage=usage)
    return body


def sse(*events: dict[str, Any] | str, done: bool = True, eol: bytes = b"\n") -> bytes:
    out = []
    for event in events:
        data = event if isinstance(event, str) else json.dumps(event)
        out.append(b"data: " + data.encode() + eol + eol)
    if done:
        out.append(b"data: [DONE]" + eol + eol)
    return b"".join(out)


TEXTS = ["Hel", "lo, ", "wörld ", "🎨", "!"]
PLAIN = [
    chunk("", role="assistant"),
    *(chunk(t) for t in TEXTS[:-1]),
    chunk(
        TEXTS[-1],
        finish="stop",
        usage={"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
    ),
]
PLAIN_TEXT = "".join(TEXTS)


class _Reads(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, reads: Sequence[Read]) -> None:
        self.reads = list(reads)
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for read in self.reads:
            if isinstance(read, BaseException):
                raise read
            yield read

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for read in self.reads:
            if isinstance(read, BaseException):
                raise read
            yield read

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def client_for(reads: Sequence[Read], content_type: str = "text/event-stream") -> Mistral:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": content_type}, stream=_Reads(reads))

    transport = httpx.MockTransport(handler)
    return Mistral(
        api_key="sk-test-key-123456789",
        server_url="http://stream.test",
        client=httpx.Client(transport=transport),
        async_client=httpx.AsyncClient(transport=transport),
    )


def open_stream(reads: Sequence[Read], *, fast: bool = True) -> EventStream[ChatCompletionResponse]:
    stream = client_for(reads).chat.stream(model="mistral-small-latest", messages=MSGS)
    stream._fast = fast  # False: the general SSE decoder from the first byte
    return stream


def run(reads: Sequence[Read], *, fast: bool = True) -> tuple[list[Any], Any]:
    stream = open_stream(reads, fast=fast)
    events = [e.data.model_dump() for e in stream]
    return events, stream.response


def texts(events: list[Any]) -> str:
    return "".join((c["delta"].get("content") or "") for e in events for c in e["choices"])


# --------------------------------------------------------------------------- line ends, fields


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "general"])
def test_line_ends(eol: bytes, fast: bool) -> None:
    events, response = run([sse(*PLAIN, eol=eol)], fast=fast)
    assert len(events) == len(PLAIN)
    assert texts(events) == PLAIN_TEXT
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.total_tokens == 8


def test_crlf_stream_is_delivered_read_by_read() -> None:
    """A CRLF stream is decoded as it arrives, not buffered until the end."""
    reads = [sse(c, done=False, eol=b"\r\n") for c in PLAIN] + [b"data: [DONE]\r\n\r\n"]
    stream = open_stream(reads)
    first = next(stream)
    assert first.data.choices[0].delta.role == "assistant"
    assert stream._fast is False
    assert texts([e.data.model_dump() for e in stream]) == PLAIN_TEXT


def test_mixed_line_ends_and_fields() -> None:
    raw = (
        b": keep-alive\n\n"
        b"event: message\r\nid: 7\r\nretry: 100\r\n"
        + b"data: "
        + json.dumps(PLAIN[0]).encode()
        + b"\r\n\r\n"
        b":comment inside\n"
        b"data: " + json.dumps(PLAIN[1]).encode() + b"\r\r"
        b"unknown-field: x\ndata:" + json.dumps(PLAIN[2]).encode() + b"\n\n" + sse(*PLAIN[3:])
    )
    events, response = run([raw])
    assert texts(events) == PLAIN_TEXT
    assert response.choices[0].finish_reason == "stop"


def test_comments_between_plain_events() -> None:
    reads = [
        sse(PLAIN[0], done=False),
        b": ping\n\n" + sse(PLAIN[1], done=False)[:20],
        sse(PLAIN[1], done=False)[20:],
        sse(*PLAIN[2:]),
    ]
    events, _ = run(reads)
    assert texts(events) == PLAIN_TEXT
    assert len(events) == len(PLAIN)


def test_multi_line_data() -> None:
    first = json.dumps(PLAIN[1], indent=1)  # JSON over several lines: several data: lines
    raw = (
        sse(PLAIN[0], done=False)
        + b"".join(b"data: " + line.encode() + b"\n" for line in first.splitlines())
        + b"\n"
        + sse(*PLAIN[2:])
    )
    events, _ = run([raw])
    assert texts(events) == PLAIN_TEXT


def test_bom_at_start() -> None:
    raw = sse(*PLAIN)
    events, _ = run([b"\xef\xbb", b"\xbf" + raw])
    assert texts(events) == PLAIN_TEXT


def test_done_stops_and_ignores_what_follows() -> None:
    raw = sse(*PLAIN) + sse(chunk("AFTER"), done=False)
    events, response = run([raw])
    assert "AFTER" not in texts(events)
    events, _ = run([sse(*PLAIN), sse(chunk("AFTER"), done=False)])
    assert "AFTER" not in texts(events)
    assert response.choices[0].message.content == PLAIN_TEXT


def test_done_without_finish_reason_is_not_an_error() -> None:
    events, response = run([sse(chunk("a"), chunk("b"))])
    assert texts(events) == "ab"
    assert response.choices[0].message.content == "ab"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "general"])
def test_every_split_offset(fast: bool) -> None:
    raw = sse(*PLAIN)
    expected, _ = run([raw], fast=fast)
    for cut in range(1, len(raw)):
        events, response = run([raw[:cut], raw[cut:]], fast=fast)
        assert events == expected, cut
        assert response.choices[0].message.content == PLAIN_TEXT


def test_byte_by_byte() -> None:
    raw = sse(*PLAIN)
    events, _ = run([raw[i : i + 1] for i in range(len(raw))])
    assert texts(events) == PLAIN_TEXT


@pytest.mark.parametrize("tail", [b"\n", b""], ids=["one-newline", "none"])
def test_no_trailing_blank_line(tail: bytes) -> None:
    raw = sse(*PLAIN, done=False)[:-2] + tail
    events, response = run([raw])
    assert texts(events) == PLAIN_TEXT
    assert response.choices[0].finish_reason == "stop"
    raw = sse(*PLAIN)[:-2]  # "data: [DONE]" without its blank line
    events, _ = run([raw])
    assert texts(events) == PLAIN_TEXT


def test_tolerated_shapes() -> None:
    usage_only = {
        "id": "cmpl-1",
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    raw = sse(
        chunk("Hi", minimal=True),  # role null, no object/created
        chunk(" there", finish="stop"),
        usage_only,
    )
    events, response = run([raw])
    assert events[0]["choices"][0]["delta"]["role"] is None
    assert events[2]["choices"] == []
    assert response.choices[0].message.content == "Hi there"
    assert response.usage.total_tokens == 3


def test_unknown_finish_reason_and_extra_keys() -> None:
    odd = chunk("x", finish="model_length")
    odd["choices"][0]["delta"]["surprise"] = 1
    odd["brand_new"] = {"a": 1}
    _, response = run([sse(odd)])
    assert response.choices[0].finish_reason == "model_length"


# --------------------------------------------------------------------------- failures mid-stream


@pytest.mark.parametrize(
    "error",
    [
        {
            "object": "error",
            "message": "Model overloaded, try later",
            "type": "service_unavailable",
        },
        [
            {
                "error": {
                    "code": 503,
                    "message": "Model overloaded, try later",
                    "status": "UNAVAILABLE",
                }
            }
        ],
    ],
    ids=["mistral", "google"],
)
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "general"])
def test_error_object_mid_stream(error: Any, fast: bool) -> None:
    raw = sse(PLAIN[0], PLAIN[1], PLAIN[2], json.dumps(error), PLAIN[3], done=True)
    stream = open_stream([raw], fast=fast)
    received = []
    with pytest.raises(StreamError, match="Model overloaded") as info:
        for event in stream:
            received.append(event.data.choices[0].delta.content)
    assert received == ["", "Hel", "lo, "]
    for partial in (info.value.partial_response, stream.response):
        assert partial.choices[0].message.content == "Hello, "
        assert partial.choices[0].finish_reason == "error"
    assert stream.http_response.is_closed


@pytest.mark.parametrize("bad", ['{"id": ', "not json at all", '{"id": "x"}', "[1, 2]"])
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "general"])
def test_malformed_chunk(bad: str, fast: bool) -> None:
    raw = sse(PLAIN[0], PLAIN[1], bad, PLAIN[2])
    stream = open_stream([raw], fast=fast)
    with pytest.raises(StreamError) as info:
        list(stream)
    assert info.value.partial_response.choices[0].message.content == "Hel"
    assert stream.response.choices[0].finish_reason == "error"


def test_cut_without_done_or_finish_reason() -> None:
    raw = sse(*PLAIN[:3], done=False)
    stream = open_stream([raw])
    with pytest.raises(APIConnectionError) as info:
        list(stream)
    assert not isinstance(info.value, APITimeoutError)
    partial = info.value.partial_response
    assert partial.choices[0].message.content == "Hello, "
    assert partial.choices[0].finish_reason == "connection_lost"
    assert stream.response.choices[0].finish_reason == "connection_lost"


def test_cut_without_done_but_finished_is_fine() -> None:
    events, response = run([sse(*PLAIN, done=False)])
    assert texts(events) == PLAIN_TEXT
    assert response.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("failure", "kind", "reason"),
    [
        (httpx.ReadError("connection reset by peer"), APIConnectionError, "connection_lost"),
        (
            httpx.RemoteProtocolError("peer closed connection"),
            APIConnectionError,
            "connection_lost",
        ),
        (httpx.ReadTimeout("timed out"), APITimeoutError, "timeout"),
    ],
)
def test_transport_failure_mid_stream(failure: Exception, kind: type, reason: str) -> None:
    reads: list[Read] = [sse(*PLAIN[:3], done=False), failure]
    stream = open_stream(reads)
    got = []
    with pytest.raises(kind) as info:
        for event in stream:
            got.append(event)
    assert len(got) == 3
    assert info.value.partial_response.choices[0].message.content == "Hello, "
    assert stream.response.choices[0].finish_reason == reason
    assert stream.http_response.is_closed


def test_async_transport_failure_mid_stream() -> None:
    client = client_for([sse(*PLAIN[:3], done=False), httpx.ReadError("reset")])

    async def main() -> AsyncEventStream[Any]:
        stream = await client.chat.stream_async(model="mistral-small-latest", messages=MSGS)
        with pytest.raises(APIConnectionError):
            async for _ in stream:
                pass
        return stream

    stream = asyncio.run(main())
    assert stream.response.choices[0].message.content == "Hello, "
    assert stream.response.choices[0].finish_reason == "connection_lost"


def test_async_stream_edge_cases_match_sync() -> None:
    raw = sse(*PLAIN, eol=b"\r\n")
    client = client_for([raw[:7], raw[7:50], raw[50:]])

    async def main() -> list[Any]:
        stream = await client.chat.stream_async(model="mistral-small-latest", messages=MSGS)
        return [e.data.model_dump() async for e in stream]

    assert asyncio.run(main()) == run([raw])[0]


# --------------------------------------------------------------------------- tool calls


def test_tool_calls_split_across_deltas_accumulate_by_index() -> None:
    raw = sse(
        chunk("", role="assistant"),
        chunk(
            tool_calls=[
                {
                    "id": "abcDEF123",
                    "index": 0,
                    "function": {"name": "get_weather", "arguments": '{"ci'},
                }
            ]
        ),
        chunk(
            tool_calls=[
                {"index": 1, "id": "xyzXYZ987", "function": {"name": "get_time", "arguments": "{}"}}
            ]
        ),
        chunk(
            tool_calls=[{"index": 0, "function": {"name": "", "arguments": 'ty": "Paris"}'}}],
            finish="tool_calls",
        ),
    )
    _, response = run([raw])
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 2
    assert calls[0].id == "abcDEF123" and calls[0].function.name == "get_weather"
    assert json.loads(str(calls[0].function.arguments)) == {"city": "Paris"}
    assert calls[1].id == "xyzXYZ987" and calls[1].function.name == "get_time"


def test_tool_call_in_one_piece_with_object_arguments() -> None:
    raw = sse(
        chunk(
            tool_calls=[{"id": "a1b2c3d4e", "function": {"name": "f", "arguments": {"x": 1}}}],
            finish="tool_calls",
        )
    )
    _, response = run([raw])
    (call,) = response.choices[0].message.tool_calls or []
    assert json.loads(str(call.function.arguments)) == {"x": 1}


def test_accumulator_directly() -> None:
    from mistral_magic.models import CompletionChunk

    acc: ResponseAccumulator[ChatCompletionResponse] = ResponseAccumulator()
    for body in PLAIN:
        acc.add(CompletionChunk.model_validate(body))
    assert acc.text == PLAIN_TEXT and acc.finish_reason == "stop"
    assert acc.response().choices[0].message.content == PLAIN_TEXT


# --------------------------------------------------------------------------- fast path == decoder

_TEXT = st.lists(
    st.one_of(
        st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=4),
        st.sampled_from(["\n", "\r\n", "\r", '"', "\\", "[DONE]", '},{"data":', "data: ", "🎨"]),
    ),
    max_size=6,
).map("".join)


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[int], list[str]]:
    contents = draw(st.lists(_TEXT, min_size=1, max_size=8))
    ascii_only = draw(st.booleans())
    eol = draw(st.sampled_from([b"\n", b"\n", b"\r\n", b"\r"]))
    parts = []
    for i, text in enumerate(contents):
        body = chunk(text, finish="stop" if i == len(contents) - 1 else None)
        parts.append(b"data: " + json.dumps(body, ensure_ascii=ascii_only).encode() + eol + eol)
        if draw(st.integers(0, 9)) == 0:
            parts.append(b": keep-alive" + eol + eol)
    parts.append(b"data: [DONE]" + eol + eol)
    raw = b"".join(parts)
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(raw) - 1)), max_size=6)))
    return raw, cuts, contents


def _split(raw: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *cuts, len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_fast_path_equals_general_decoder(case: tuple[bytes, list[int], list[str]]) -> None:
    raw, cuts, contents = case
    reads = _split(raw, cuts)
    fast_events, fast_response = run(reads, fast=True)
    slow_events, slow_response = run(reads, fast=False)
    whole_events, _ = run([raw], fast=False)
    assert fast_events == slow_events == whole_events
    assert [e["choices"][0]["delta"]["content"] for e in fast_events] == contents
    assert fast_response.model_dump(exclude={"created"}) == slow_response.model_dump(
        exclude={"created"}
    )
    assert fast_response.choices[0].message.content == "".join(contents)


def test_keyboard_interrupt_inside_a_read_keeps_partial() -> None:
    reads: list[Read] = [sse(*PLAIN[:3], done=False), KeyboardInterrupt()]
    stream = open_stream(reads)
    got = []
    with pytest.raises(KeyboardInterrupt):
        for event in stream:
            got.append(event)
    assert len(got) == 3
    assert stream.http_response.is_closed
    assert stream.response.choices[0].message.content == "Hello, "
    assert stream.response.choices[0].finish_reason == "interrupted"
