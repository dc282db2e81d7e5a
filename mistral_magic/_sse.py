"""Incremental Server-Sent Events decoder: bytes in, events out, no I/O.

Follows the WHATWG event-stream rules: LF, CRLF and CR line ends (also mixed, also a CRLF
split across two reads), ``:`` comment lines, ``field: value`` with one leading space
stripped, lines without a colon as a field with an empty value, several ``data`` lines
joined with ``"\\n"``, a leading UTF-8 BOM ignored, events without data skipped. Input may
be cut anywhere, including inside a multi-byte UTF-8 character: only complete lines are
decoded. :meth:`SSEDecoder.flush` at end of input also emits a last event that lacks its
trailing blank line (as the official SDK does).

The common case (LF only, one ``data:`` line per event) costs one ``bytes.split`` plus a
few comparisons per line.
"""

from __future__ import annotations

__all__ = ["DONE", "SSEDecoder", "ServerSentEvent", "is_done"]

DONE = "[DONE]"
"""Data of the sentinel event that ends a Mistral stream."""

_BOM = b"\xef\xbb\xbf"


class ServerSentEvent:
    """One dispatched event."""

    __slots__ = ("data", "event", "id", "retry")

    def __init__(
        self,
        data: str,
        event: str = "message",
        id: str | None = None,
        retry: int | None = None,
    ) -> None:
        self.data = data
        """Joined ``data`` lines."""
        self.event = event
        """Event type (``"message"`` unless an ``event:`` field said otherwise)."""
        self.id = id
        """Last event id seen on the stream so far, if any."""
        self.retry = retry
        """Reconnection time in ms from a ``retry:`` field of this event, if any."""

    def __repr__(self) -> str:
        return (
            f"ServerSentEvent(data={self.data!r}, event={self.event!r}, id={self.id!r}, "
            f"retry={self.retry!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        return (self.data, self.event, self.id, self.retry) == (
            other.data,
            other.event,
            other.id,
            other.retry,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable


def is_done(event: ServerSentEvent) -> bool:
    """Whether ``event`` is the ``[DONE]`` sentinel."""
    return event.data == DONE or event.data.strip() == DONE


class SSEDecoder:
    """Feed raw bytes as they arrive; get back the events they complete."""

    __slots__ = ("_data", "_event", "_last_id", "_pending", "_retry", "_skip_lf", "_started")

    def __init__(self) -> None:
        # Bytes of the unfinished event (LF-normalised), kept as parts so that a long event
        # arriving in many reads is joined once, not re-copied on every read.
        self._pending: list[bytes] = []
        self._data: list[bytes] = []
        self._event: str | None = None
        self._retry: int | None = None
        self._last_id: str | None = None
        self._skip_lf = False  # previous read ended with CR: a leading LF belongs to it
        self._started = False  # BOM check done

    @property
    def last_event_id(self) -> str | None:
        """The last ``id`` field seen."""
        return self._last_id

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Decode ``data``; return the events completed by it (possibly none)."""
        if self._skip_lf and data:  # an empty read must not clear the flag
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        if not self._started:
            data = self._strip_bom(data)
        if not data:
            return []
        if b"\r" in data:
            # Line ends are normalised per read; a CRLF split across reads is caught by
            # _skip_lf, so the CR at the end of this read already counts as a line end.
            if data[-1:] == b"\r":
                self._skip_lf = True
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        pending = self._pending
        if b"\n" not in data:
            pending.append(data)  # no complete line yet
            return []
        if pending:
            pending.append(data)
            data = b"".join(pending)
            pending.clear()
        lines = data.split(b"\n")
        tail = lines.pop()
        if tail:
            pending.append(tail)
        events: list[ServerSentEvent] = []
        self._process(lines, events)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """End of input: dispatch the last event even without its trailing blank line."""
        events: list[ServerSentEvent] = []
        if not self._started and self._pending:
            self._pending = [b"".join(self._pending)]
            self._started = True
            if self._pending[0].startswith(_BOM):
                self._pending = [self._pending[0][3:]]
        rest = b"".join(self._pending)
        self._pending.clear()
        self._skip_lf = False
        self._process([rest, b""] if rest else [b""], events)
        return events

    def _strip_bom(self, data: bytes) -> bytes:
        """Drop a UTF-8 BOM at the very start of the stream (it may arrive split)."""
        head = b"".join(self._pending) + data if self._pending else data
        if len(head) < 3 and _BOM.startswith(head):
            self._pending = [head]  # still undecided; wait for more bytes
            return b""
        self._started = True
        self._pending.clear()
        return head[3:] if head.startswith(_BOM) else head

    def _process(self, lines: list[bytes], events: list[ServerSentEvent]) -> None:
        """Interpret complete lines; a blank line dispatches the event collected so far."""
        data = self._data
        add = data.append
        for line in lines:
            if line[:6] == b"data: ":  # the common case first
                add(line[6:])
            elif not line:
                if data:
                    raw = data[0] if len(data) == 1 else b"\n".join(data)
                    data.clear()
                    events.append(
                        ServerSentEvent(
                            raw.decode("utf-8", "replace"),
                            self._event or "message",
                            self._last_id,
                            self._retry,
                        )
                    )
                # Type and retry belong to one event; a data-less event is dropped whole.
                self._event = None
                self._retry = None
            elif line[:5] == b"data:":
                add(line[5:])
            elif line[:1] != b":":  # ":" starts a comment / keep-alive
                self._field(line)

    def _field(self, line: bytes) -> None:
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":  # "data" with no colon: an empty data line
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", errors="replace")
        elif name == b"id":
            if b"\0" not in value:
                self._last_id = value.decode("utf-8", errors="replace")
        elif name == b"retry" and value.isdigit():
            self._retry = int(value)
        # any other field name is ignored, as the spec requires
