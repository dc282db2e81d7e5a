"""Incremental SSE decoding: line ends, fields, comments, splits across reads, BOM, EOF."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mistral_magic._sse import DONE, ServerSentEvent, SSEDecoder, is_done


def decode(reads: Iterable[bytes], *, flush: bool = True) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for read in reads:
        events.extend(decoder.feed(read))
    if flush:
        events.extend(decoder.flush())
    return events


def datas(events: list[ServerSentEvent]) -> list[str]:
    return [event.data for event in events]


def test_common_case() -> None:
    stream = b'data: {"a":1}\n\ndata: {"a":2}\n\ndata: [DONE]\n\n'
    events = decode([stream], flush=False)
    assert datas(events) == ['{"a":1}', '{"a":2}', "[DONE]"]
    assert events[0] == ServerSentEvent('{"a":1}')
    assert events[0].event == "message" and events[0].id is None and events[0].retry is None
    assert is_done(events[2]) and not is_done(events[0])
    assert DONE == "[DONE]"


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_line_endings(eol: bytes) -> None:
    stream = eol.join([b"data: one", b"", b"data: two", b"data: lines", b"", b""])
    assert datas(decode([stream], flush=False)) == ["one", "two\nlines"]


def test_mixed_line_endings() -> None:
    stream = b"data: a\r\n\ndata: b\n\r\ndata: c\r\rdata: d\r\n\r\n"
    assert datas(decode([stream], flush=False)) == ["a", "b", "c", "d"]


def test_crlf_split_across_reads_is_one_line_end() -> None:
    # CR at the end of one read, LF at the start of the next: no spurious blank line,
    # so the two data lines still belong to one event.
    reads = [b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]
    events = decode(reads, flush=False)
    assert datas(events) == ["a\nb"]


def test_lone_cr_at_end_of_read_then_data() -> None:
    reads = [b"data: a\r", b"\r", b"data: b\r\r"]
    assert datas(decode(reads, flush=False)) == ["a", "b"]


def test_cr_then_empty_read_then_lf() -> None:
    reads = [b"data: a\r", b"", b"\n", b"\n"]
    assert datas(decode(reads, flush=False)) == ["a"]


def test_comments_and_keepalives() -> None:
    stream = b": keep-alive\n\n:ping\ndata: x\n: in the middle\ndata: y\n\n"
    assert datas(decode([stream], flush=False)) == ["x\ny"]


def test_space_after_colon_stripped_once() -> None:
    stream = b"data:no-space\n\ndata:  two-spaces\n\ndata: \n\n"
    assert datas(decode([stream], flush=False)) == ["no-space", " two-spaces", ""]


def test_field_without_colon() -> None:
    # "data" alone is a data line with an empty value; other bare names are ignored.
    stream = b"data\ndata\n\nevent\ndata: x\n\nfoo\ndata: y\n\n"
    events = decode([stream], flush=False)
    assert datas(events) == ["\n", "x", "y"]
    assert events[1].event == "message"


def test_event_id_retry_fields() -> None:
    stream = (
        b"event: completion\nid: 7\nretry: 1500\ndata: a\n\n"
        b"data: b\n\n"
        b"id: 8\0x\nretry: soon\nunknown: z\ndata: c\n\n"
        b"id\ndata: d\n\n"
    )
    a, b, c, d = decode([stream], flush=False)
    assert (a.event, a.id, a.retry, a.data) == ("completion", "7", 1500, "a")
    assert (b.event, b.id, b.retry) == ("message", "7", None)  # id persists, type does not
    assert (c.id, c.retry) == ("7", None)  # id with NUL ignored, non-digit retry ignored
    assert d.id == ""  # bare "id" resets the last event id


def test_data_less_events_are_skipped_with_their_type() -> None:
    stream = b"event: ping\n\nid: 3\n\nretry: 10\n\ndata: real\n\n"
    events = decode([stream], flush=False)
    assert datas(events) == ["real"]
    assert events[0].event == "message" and events[0].id == "3" and events[0].retry is None


def test_bom_is_stripped_even_when_split() -> None:
    bom = b"\xef\xbb\xbf"
    assert datas(decode([bom + b"data: a\n\n"], flush=False)) == ["a"]
    assert datas(decode([bom[:1], bom[1:2], bom[2:] + b"data: a\n\n"], flush=False)) == ["a"]


def test_bom_only_at_start() -> None:
    bom = b"\xef\xbb\xbf"
    events = decode([b"data: a\n\n" + bom + b"data: b\n\n"], flush=False)
    # "\ufeffdata" is not the field name "data", so that line is ignored.
    assert datas(events) == ["a"]


def test_utf8_split_inside_a_character() -> None:
    payload = "data: café ☕ 日本\n\n".encode()
    for cut in range(1, len(payload)):
        assert datas(decode([payload[:cut], payload[cut:]], flush=False)) == ["café ☕ 日本"]
    assert datas(decode([bytes([b]) for b in payload], flush=False)) == ["café ☕ 日本"]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert datas(decode([b"data: \xff\xfe\n\n"], flush=False)) == ["\ufffd\ufffd"]


def test_flush_parses_last_block_without_blank_line() -> None:
    assert datas(decode([b"data: a\n\ndata: last"], flush=False)) == ["a"]
    assert datas(decode([b"data: a\n\ndata: last"])) == ["a", "last"]
    assert datas(decode([b"data: a\n\ndata: last\n"])) == ["a", "last"]
    assert datas(decode([b"data: last\r"])) == ["last"]
    assert decode([b""]) == [] and decode([]) == []
    assert decode([b": only a comment"]) == []


def test_flush_resets_for_reuse() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: x")
    assert datas(decoder.flush()) == ["x"]
    assert decoder.flush() == []
    assert datas(decoder.feed(b"data: y\n\n")) == ["y"]


def test_split_everywhere_common_stream() -> None:
    stream = b"".join(f"data: {{\"i\":{i}}}\n\n".encode() for i in range(50)) + b"data: [DONE]\n\n"
    expected = [f'{{"i":{i}}}' for i in range(50)] + ["[DONE]"]
    for size in (1, 2, 3, 7, 64, 4096):
        reads = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert datas(decode(reads)) == expected


def test_last_event_id_property_and_repr() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: 42\ndata: x\n\n")
    assert decoder.last_event_id == "42"
    assert "42" in repr(ServerSentEvent("x", id="42"))
    assert ServerSentEvent("x") != "x"


# ------------------------------------------------------------------ property test

_line_value = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=12
)
_field_line = st.one_of(
    _line_value.map(lambda v: "data: " + v),
    _line_value.map(lambda v: "data:" + v),
    st.just("data"),
    _line_value.map(lambda v: ": " + v),
    st.sampled_from(["event: x", "event: y", "id: 1", "id: 2", "retry: 100", "retry: x"]),
    _line_value.map(lambda v: "other: " + v),
)
_events = st.lists(st.lists(_field_line, min_size=0, max_size=4), min_size=0, max_size=6)


def _canonical(events: list[ServerSentEvent]) -> list[tuple[str, str, str | None, int | None]]:
    return [(e.data, e.event, e.id, e.retry) for e in events]


def _spec_reference(stream: str) -> list[tuple[str, str, str | None, int | None]]:
    """Independent, obviously-correct decoder of a whole stream (WHATWG rules + EOF flush)."""
    stream = stream.removeprefix("\ufeff")
    out: list[tuple[str, str, str | None, int | None]] = []
    data: list[str] = []
    event, last_id, retry = "", None, None
    for line in [*re.split(r"\r\n|\r|\n", stream), ""]:
        if line == "":
            if data:
                out.append(("\n".join(data), event or "message", last_id, retry))
            data, event, retry = [], "", None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and value.isdigit():
            retry = int(value)
    return out


@settings(max_examples=300, deadline=None)
@given(
    blocks=_events,
    eols=st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    bom=st.booleans(),
    trailing_blank=st.booleans(),
)
def test_any_split_and_line_ending_decodes_the_same(
    blocks: list[list[str]], eols: list[str], cuts: list[int], bom: bool, trailing_blank: bool
) -> None:
    # Reference: the stream with LF line ends, decoded in one read.
    lines: list[str] = []
    for block in blocks:
        lines.extend(block)
        lines.append("")
    if not trailing_blank and lines:
        lines.pop()  # the last event lacks its blank line: flush must still emit it
    reference = "".join(line + "\n" for line in lines).encode()
    expected = _canonical(decode([reference]))

    # Same lines, line ends chosen from LF/CRLF/CR, cut into arbitrary reads.
    parts = []
    prev = ""
    for i, line in enumerate(lines):
        eol = eols[i % len(eols)]
        if prev == "\r" and not line and eol == "\n":
            eol = "\r\n"  # CR then LF would be one CRLF line end, not a blank line
        parts.append(line + eol)
        prev = eol
    stream = ("\ufeff" if bom else "").encode() + "".join(parts).encode()
    points = sorted({c % (len(stream) + 1) for c in cuts})
    reads = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert _canonical(decode(reads)) == expected
    assert expected == _spec_reference(reference.decode())
