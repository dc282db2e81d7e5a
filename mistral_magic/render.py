"""Drawing an answer while it streams: throttled, Markdown-aware, linear in cost.

Nothing here imports IPython: a view gets plain callables (``write`` for a terminal, ``publish``
for notebook display handles), so the magic and the panel decide where the text goes.

* :class:`Pacer` decides when a live view may send (time, message and byte budgets; a resend
  is paid for by new text), so the bytes sent grow linearly with the answer at any token rate.
* :class:`View` is what a turn tells a front end; :class:`TerminalView` writes tokens straight
  through; :class:`MarkdownBlocksView` (the panel) freezes finished Markdown blocks and
  re-publishes only the open display; :class:`LiveWindowView` (the magic) keeps ONE display
  showing the open block.
* The text functions (:func:`close_open_markdown`, :func:`footer_text`, :func:`provenance`,
  tool-call cards, transcripts) live in ``_markdown`` and are re-exported here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from ._markdown import (
    _DELIMITER_ROW,
    HasMeta,
    MetaLike,
    _cells,
    _Fence,
    _fence_closes,
    _fence_open,
    close_open_markdown,
    conversation_markdown,
    footer_text,
    provenance,
    result_markdown,
    result_plain,
    tool_call_markdown,
    tool_call_summary,
)
from .session import TurnMeta
from .tools import ToolResult

__all__ = [
    "LiveWindowView",
    "MarkdownBlocksView",
    "MetaLike",
    "NullView",
    "Pacer",
    "TerminalView",
    "TurnMeta",
    "View",
    "close_open_markdown",
    "conversation_markdown",
    "footer_text",
    "provenance",
    "result_markdown",
    "result_plain",
    "tool_call_markdown",
    "tool_call_summary",
]


# -- turn metadata ----------------------------------------------------------------------------


# -- Markdown of a partial answer ---------------------------------------------------------------



# -- throttling -------------------------------------------------------------------------------


# -- views ------------------------------------------------------------------------------------


@runtime_checkable
class View(Protocol):
    """What a turn tells a front end, in order: ``start``, then ``delta``/``tool_call``/
    ``retrying``/``error`` any number of times, then ``done`` (also after an error or an
    interrupt, with the partial result)."""

    def start(self, meta: MetaLike) -> None: ...

    def delta(self, text: str) -> None: ...

    def tool_call(self, result: ToolResult) -> None: ...

    def retrying(self, attempt: int, delay: float, reason: str) -> None: ...

    def error(self, message: str) -> None: ...

    def done(self, result: MetaLike | HasMeta | None) -> None: ...


class NullView:
    """A view that draws nothing (``--no-stream`` without display, tests)."""

    def start(self, meta: MetaLike) -> None:
        pass

    def delta(self, text: str) -> None:
        pass

    def tool_call(self, result: ToolResult) -> None:
        pass

    def retrying(self, attempt: int, delay: float, reason: str) -> None:
        pass

    def error(self, message: str) -> None:
        pass

    def done(self, result: MetaLike | HasMeta | None) -> None:
        pass


class TerminalView:
    """Terminal IPython: tokens written straight through, then a newline and a footer line."""

    def __init__(self, write: Callable[[str], None], *, footer: bool = True) -> None:
        self._write = write
        self._footer = footer
        self._meta: Any = None
        self._line_start = True

    def _out(self, text: str) -> None:
        if text:
            self._write(text)
            self._line_start = text.endswith("\n")

    def _newline(self) -> None:
        if not self._line_start:
            self._out("\n")

    def start(self, meta: MetaLike) -> None:
        self._meta = meta
        self._line_start = True

    def delta(self, text: str) -> None:
        self._out(text)

    def tool_call(self, result: ToolResult) -> None:
        self._newline()
        self._out(f"[tool] {tool_call_summary(result)}\n")

    def retrying(self, attempt: int, delay: float, reason: str) -> None:
        self._newline()
        self._out(f"[{reason}: retrying in {delay:.1f} s, attempt {attempt}]\n")

    def error(self, message: str) -> None:
        self._newline()
        self._out(f"[error] {message}\n")

    def done(self, result: MetaLike | HasMeta | None) -> None:
        self._newline()
        if self._footer:
            text = footer_text(result if result is not None else self._meta)
            if text:
                self._out(f"[{text}]\n")


class _Blocks:
    """Cuts a growing Markdown text into blocks, deterministically from the text alone.

    A block ends at a blank line outside code fences and ``$$`` math once it holds at least
    ``min_block`` characters; a block that reaches ``max_block`` characters is cut at the next
    line end (a line longer than that at a space, or hard at twice that), closing an open
    fence or math block and reopening it (same fence and info string; a table's header is
    repeated) in the next block. The open block therefore stays small whatever the content.
    """

    def __init__(
        self, min_block: int, max_block: int, *, growth: int = 1, cap: int | None = None
    ) -> None:
        self._base = (min_block, max_block)
        self.growth = max(growth, 1)
        self.cap = cap
        self.frozen = 0
        self._size()
        self._reset()

    def _size(self) -> None:
        # Block k may be growth**k times larger than the first (up to ``cap``): a long answer
        # then needs few displays, while a short one still updates in small, cheap blocks.
        factor = self.growth ** min(self.frozen, 32)
        low, high = self._base[0] * factor, self._base[1] * factor
        if self.cap is not None and high > self.cap:
            low, high = min(low, self.cap // 2), max(self.cap, self._base[1])
        self.min_block, self.max_block = low, high

    def _reset(self) -> None:
        self._lines: list[str] = []
        self._len = 0
        self._content = False
        self._partial = ""
        self._fence: _Fence | None = None
        self._math = False
        self._table: list[str] | None = None  # header and delimiter rows of an open table
        self._prev = ""  # the previous line ("" after a blank one): a table header candidate

    @property
    def tail(self) -> str:
        """The open block as written so far ("" while it holds only reopened fences/headers)."""
        return "".join(self._lines) + self._partial if self.has_content else ""

    @property
    def has_content(self) -> bool:
        return self._content or bool(self._partial.strip())

    def feed(self, text: str) -> list[str]:
        """Add text; return the blocks it finished (Markdown, in order)."""
        done: list[str] = []
        data = self._partial + text
        start = 0
        while True:
            end = data.find("\n", start)
            if end < 0:
                break
            self._line(data[start : end + 1], done)
            start = end + 1
        self._partial = ""
        self._long_line(data[start:], done, complete=False)
        return done

    def cut(self, *, final: bool = False) -> str:
        """Close the open block now (before a tool call, an error, or at the end)."""
        md = close_open_markdown(self.tail, drop_partial_row=not final).rstrip("\n")
        self._reset()
        return md if md.strip() else ""

    def _append(self, line: str) -> None:
        self._lines.append(line)
        self._len += len(line)
        if line.strip():
            self._content = True

    def _freeze(self, done: list[str], *, carry: bool = True) -> None:
        text = "".join(self._lines).rstrip("\n")
        closer = ""
        if self._fence is not None:
            closer = self._fence.closer
        elif self._math:
            closer = "$$"
        if text.strip():
            done.append(f"{text}\n{closer}" if closer else text)
            self.frozen += 1
            self._size()
        fence, math, table, prev = self._fence, self._math, self._table, self._prev
        self._lines, self._len, self._content = [], 0, False
        reopen: list[str] = []
        if carry and fence is not None:
            reopen = [fence.line + "\n"]
        elif carry and math:
            reopen = ["$$\n"]
        elif carry and table is not None:
            reopen = list(table)
        if sum(map(len, reopen)) < self.max_block // 2:  # always leave room to progress
            for line in reopen:
                self._append(line)
            self._content = False
        else:
            fence, math, table = None, False, None
        self._fence, self._math, self._table, self._prev = fence, math, table, prev

    def _long_line(self, line: str, done: list[str], *, complete: bool) -> str:
        """Cut a line longer than ``max_block`` into pieces; return (or keep) the rest."""
        limit = self.max_block
        while len(line) > limit:
            space = line.find(" ", limit, 2 * limit)
            if space < 0 and len(line) < 2 * limit + (1 if complete else 0):
                break
            cut = space + 1 if space >= 0 else 2 * limit
            self._append(line[:cut] + "\n")
            self._freeze(done)
            line = line[cut:]
        if not complete:
            self._partial = line
        return line

    def _line(self, line: str, done: list[str]) -> None:
        line = self._long_line(line, done, complete=True)
        if not line:
            return
        fence = self._fence
        if fence is not None:
            if _fence_closes(fence, line):
                self._fence = None
            self._append(line)
        elif not line.strip():
            self._table, self._prev = None, ""
            if self._math:
                self._append(line)
            elif self._content and self._len >= self.min_block:
                self._freeze(done, carry=False)
            elif self._content:
                self._append(line)
            return  # blank lines at the start of a block are dropped
        else:
            opened = _fence_open(line)
            if opened is not None:
                self._fence, self._table = opened, None
            elif line.count("$$") % 2:
                self._math = not self._math
            elif self._table is None:
                s = line.strip()
                if "|" in s and _DELIMITER_ROW.match(s) and _cells(s) == _cells(self._prev):
                    self._table = [self._prev, line]
            elif "|" not in line:
                self._table = None
            self._append(line)
        self._prev = line
        if self._len >= self.max_block:
            self._freeze(done)


class Pacer:
    """When a live view may send: the one pacing rule shared by the notebook and the panel.

    Three budgets, all deterministic functions of the clock and the text received:

    * **time**: the first send is at once; after that at most one send per ``interval``;
    * **messages**: at most ``burst + elapsed / interval`` messages since the first send,
      keeping ``reserve`` of them for what the end will cost (blanking, the result);
    * **bytes**: each send is charged its bytes plus ``overhead`` per message (the envelope
      of a display message), against a credit of ``byte_burst`` plus ``per_char`` bytes per
      character received. A resend is therefore paid for by text that has arrived since
      (geometric pacing: re-sending a block of ``n`` characters waits for about
      ``n / per_char`` new ones), so the bytes sent are at most ``per_char`` times the answer
      plus a constant, whatever the token rate or the answer's shape.

    ``stall``: a send that the byte budget holds back is let through anyway once no text has
    arrived for that many seconds (a paused model; see :meth:`stalled`), within the message
    budget. That costs at most one resend per stall.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 0.1,
        *,
        burst: int = 3,
        per_char: float = 2.0,
        overhead: int = 160,
        byte_burst: int = 1024,
        stall: float = 1.0,
    ) -> None:
        self.clock = clock
        self.interval = interval
        self.burst = burst
        self.per_char = per_char
        self.overhead = overhead
        self.byte_burst = byte_burst
        self.stall = stall
        self.t0: float | None = None
        self.received = 0
        """Characters received so far."""
        self.messages = 0
        """Messages charged so far."""
        self.bytes = 0
        """Bytes charged so far (content only, without the overhead)."""
        self._charged = 0.0
        self._due = 0.0
        self._last_text = 0.0

    def receive(self, chars: int) -> float:
        """Note ``chars`` new characters; return the time now."""
        now = self.clock()
        if self.t0 is None:
            self.t0 = now
        self.received += chars
        self._last_text = now
        return now

    @property
    def started(self) -> bool:
        """Whether anything was sent yet."""
        return self.messages > 0

    def due(self, now: float) -> bool:
        """The interval since the last send has passed (always true before the first)."""
        return not self.started or now >= self._due

    def messages_left(self, now: float, reserve: int = 0) -> float:
        """Messages that may be sent now, keeping ``reserve`` for the end."""
        start = self.t0 if self.t0 is not None else now
        return self.burst + (now - start) / self.interval - self.messages - reserve

    def bytes_left(self) -> float:
        return self.byte_burst + self.per_char * self.received - self._charged

    def stalled(self, now: float) -> bool:
        """No text for ``stall`` seconds."""
        return self.t0 is not None and now - self._last_text >= self.stall

    def allows(self, now: float, messages: int, nbytes: int, reserve: int = 0) -> bool:
        """Whether a send of ``messages`` messages carrying ``nbytes`` bytes fits now."""
        if not self.started:
            return True
        if not self.due(now) or self.messages_left(now, reserve) < messages:
            return False
        return nbytes + self.overhead * messages <= self.bytes_left() or self.stalled(now)

    def charge(self, now: float, messages: int, nbytes: int) -> None:
        """Record a send (also one that had to happen whatever the budgets)."""
        self.messages += messages
        self.bytes += nbytes
        self._charged += nbytes + self.overhead * messages
        self._due = now + self.interval


PublishFn = Callable[[int, str, bool], None]
"""``publish(block_index, markdown, final)``: show block ``block_index``; ``final`` means it will
never be sent again."""


def _utf8(text: str) -> int:
    return len(text.encode())


class MarkdownBlocksView:
    """The panel's strategy: one display per group of Markdown blocks, frozen ones never resent.

    The answer is cut into blocks by :class:`_Blocks` (at blank lines outside fences, long ones
    at line ends with fences reopened), from the text alone. The open display shows the
    finished blocks not frozen yet and the open block (through :func:`close_open_markdown`);
    it is re-published with ``final=False`` when the :class:`Pacer` allows (first delta at
    once, then at most one update per ``interval``, each resend paid for by new text). Finished
    blocks are frozen (published once with ``final=True``, then never again; the next display
    opens) when the message budget allows: a slow stream gets one display per block, a fast
    one merges several blocks into one display. So the front end gets at most about
    ``1 / interval`` messages a second plus ``burst``, and the bytes published are at most
    about ``1 + per_char`` times the answer plus a constant, whatever the rate or the shape.

    The number of displays depends on timing; the text does not: joined with blank lines, the
    frozen blocks are the same answer whatever the token arrival pattern.
    """

    def __init__(
        self,
        publish: PublishFn,
        interval: float = 0.05,
        *,
        clock: Callable[[], float] = time.monotonic,
        min_block: int = 128,
        max_block: int = 512,
        per_char: float = 3.0,
        overhead: int = 160,
        byte_burst: int = 1024,
        burst: int = 3,
        footer: bool = False,
    ) -> None:
        self._publish_fn = publish
        self.pacer = Pacer(
            clock,
            interval,
            burst=burst,
            per_char=per_char,
            overhead=overhead,
            byte_burst=byte_burst,
        )
        self._blocks = _Blocks(min_block, max_block)
        self._footer = footer
        self._meta: Any = None
        self._parts: list[str] = []
        self._unfed: list[str] = []
        self._merged: list[str] = []  # finished blocks shown in the open display, not frozen
        self._index = 0
        self._shown: str | None = None  # what the open display shows now
        self.publishes = 0
        self.bytes_published = 0

    @property
    def interval(self) -> float:
        return self.pacer.interval

    @property
    def text(self) -> str:
        """The answer's text so far."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    @property
    def blocks(self) -> int:
        """How many displays have been used so far."""
        return self._index + (self._shown is not None)

    def _publish(self, markdown: str, final: bool) -> None:
        self._publish_fn(self._index, markdown, final)
        size = _utf8(markdown)
        self.publishes += 1
        self.bytes_published += size
        self.pacer.charge(self.pacer.clock(), 1, size)
        if final:
            self._index += 1
            self._shown = None
        else:
            self._shown = markdown

    def _feed(self) -> None:
        if self._unfed:
            text = "".join(self._unfed)
            self._unfed.clear()
            self._merged.extend(self._blocks.feed(text))

    def _open_markdown(self) -> str:
        parts = list(self._merged)
        tail = self._blocks.tail
        if tail.strip():
            parts.append(close_open_markdown(tail))
        return "\n\n".join(parts)

    def _flush(self, now: float, *, force: bool = False) -> None:
        self._feed()
        pacer = self.pacer
        # Freeze the finished blocks when the message budget can pay for it (keeping one
        # message for the next display and one for the end): each in its own display when it
        # can, else all in one; when it cannot they stay merged in the open display for now.
        left = pacer.messages_left(now, reserve=2)
        if self._merged and (force or left >= 1):
            groups = self._merged if left >= len(self._merged) else ["\n\n".join(self._merged)]
            self._merged = []
            for block in groups:
                self._publish(block, True)
        md = self._open_markdown()
        fits = force or pacer.allows(now, 1, _utf8(md), reserve=1)
        if md.strip() and md != self._shown and fits:
            self._publish(md, False)

    def _close_block(self, *, final: bool = False) -> None:
        self._feed()
        cut = self._blocks.cut(final=final)
        parts = [*self._merged, cut] if cut else self._merged
        self._merged = []
        md = "\n\n".join(parts)
        if md or self._shown is not None:
            self._publish(md, True)

    def poll(self) -> bool:
        """Publish pending text when the budgets allow (for a timer, when the stream stalls)."""
        now = self.pacer.clock()
        if self._unfed and self.pacer.due(now):
            self._flush(now)
            return True
        return False

    def start(self, meta: MetaLike) -> None:
        self._meta = meta

    def delta(self, text: str) -> None:
        if not text:
            return
        self._parts.append(text)
        self._unfed.append(text)
        now = self.pacer.receive(len(text))
        if self.pacer.due(now):
            self._flush(now)

    def tool_call(self, result: ToolResult) -> None:
        self._close_block()
        self._publish(tool_call_markdown(result), True)

    def retrying(self, attempt: int, delay: float, reason: str) -> None:
        self._feed()
        note = f"*{reason}: retrying in {delay:.1f} s (attempt {attempt})…*"
        md = self._open_markdown()
        self._publish(f"{md}\n\n{note}" if md.strip() else note, False)

    def error(self, message: str) -> None:
        self._close_block()
        self._publish(f"> ⚠️ **error**: {message}", True)

    def done(self, result: MetaLike | HasMeta | None = None) -> None:
        self._close_block(final=True)
        if self._footer:
            text = footer_text(result if result is not None else self._meta)
            if text:
                self._publish(f"*{text}*", True)


#: the magic's live view keeps the previous block on screen until the new one is this long
_CONTEXT_CHARS = 160


class LiveWindowView:
    """The notebook's live view: ONE display showing the open part of a streaming answer.

    Why one display: the saved notebook and nbval must agree (the display is created blank and
    blanked again at the end; the final answer is the cell's result), and one display per cell
    keeps the saved outputs the same on every run whatever the token rate (a display per block
    would make their number depend on timing, since a fast stream cannot afford a display per
    block). Why a window: an update replaces the whole display, so it carries only the open
    Markdown block (fences closed, at most about ``max_block`` characters) and up to
    ``window`` characters of finished blocks above it, under a one-line note of how much came
    before; the whole answer appears when it is complete.

    Pacing is the :class:`Pacer`'s: the first delta is published at once; after that at most
    one update per ``interval`` within a message budget (``burst`` + one per ``interval``,
    keeping room for the final blanking and the result), and each update is paid for by new
    text (``per_char`` bytes per character received, ``overhead`` charged per message), so
    the bytes sent are at most about ``per_char`` times the answer whatever the token rate.

    ``publish(markdown)`` shows the window ("" blanks it); the first call creates the display,
    which costs two messages (created blank, then updated).
    """

    def __init__(
        self,
        publish: Callable[[str], None],
        interval: float = 0.1,
        *,
        clock: Callable[[], float] = time.monotonic,
        window: int = 0,
        min_block: int = 256,
        max_block: int = 768,
        per_char: float = 2.0,
        overhead: int = 160,
        byte_burst: int = 1024,
        burst: int = 3,
    ) -> None:
        self._publish_fn = publish
        self.pacer = Pacer(
            clock,
            interval,
            burst=burst,
            per_char=per_char,
            overhead=overhead,
            byte_burst=byte_burst,
        )
        self.window = window
        self._blocks = _Blocks(min_block, max_block)
        self._shown_blocks: list[str] = []
        self._shown_len = 0
        self._last_block = ""  # the latest finished block (shown while the open one is empty)
        self._hidden = 0  # characters of finished blocks that are out of the window
        self._parts: list[str] = []
        self._unfed: list[str] = []
        self._created = False
        self.filled = False
        self.updates = 0
        self.bytes_published = 0
        self._last = ""

    @property
    def interval(self) -> float:
        return self.pacer.interval

    @property
    def messages(self) -> int:
        """Display messages sent so far (the creation counts two)."""
        return self.pacer.messages

    @property
    def text(self) -> str:
        """The answer's text so far."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def _push_block(self, block: str) -> None:
        self._last_block = block
        self._shown_blocks.append(block)
        self._shown_len += len(block)
        while self._shown_blocks and self._shown_len > self.window:
            dropped = self._shown_blocks.pop(0)
            self._shown_len -= len(dropped)
            self._hidden += len(dropped)

    def _feed(self) -> None:
        # Blocks are cut only when something may be shown: the cost stays per update, not
        # per token.
        if self._unfed:
            text = "".join(self._unfed)
            self._unfed.clear()
            for block in self._blocks.feed(text):
                self._push_block(block)

    def _markdown(self) -> str:
        self._feed()
        parts = list(self._shown_blocks)
        hidden = self._hidden
        tail = self._blocks.tail
        if not parts and self._last_block and len(tail.strip()) < _CONTEXT_CHARS:
            # A paragraph has barely begun: keep the one before it on screen for context.
            parts.append(self._last_block)
            hidden -= len(self._last_block)
        if tail.strip():
            parts.append(close_open_markdown(tail))
        if hidden > 0:
            parts.insert(
                0, f"*… {hidden:,} characters above (the whole answer is shown when done)*"
            )
        return "\n\n".join(parts)

    def _flush(self, now: float, *, force: bool = False) -> None:
        md = self._markdown()
        if md == self._last:
            return
        cost = 1 if self._created else 2
        # keep two messages for the end: blanking this display, and the result
        if force or self.pacer.allows(now, cost, _utf8(md), reserve=2):
            self._send(md)

    def _send(self, md: str) -> None:
        self.pacer.charge(self.pacer.clock(), 1 if self._created else 2, _utf8(md))
        self._created = True
        self.updates += 1
        self.bytes_published += _utf8(md)
        self._last = md
        self.filled = bool(md)
        self._publish_fn(md)

    def start(self, meta: MetaLike) -> None:
        pass

    def delta(self, text: str) -> None:
        if not text:
            return
        self._parts.append(text)
        self._unfed.append(text)
        now = self.pacer.receive(len(text))
        if self.pacer.due(now):
            self._flush(now)

    def poll(self) -> bool:
        """Publish pending text when the budgets allow (for a timer while the stream stalls)."""
        now = self.pacer.clock()
        if self._unfed and self.pacer.due(now):
            sent = self.updates
            self._flush(now)
            return self.updates > sent
        return False

    def tool_call(self, result: ToolResult) -> None:
        self._feed()
        cut = self._blocks.cut()
        if cut:
            self._push_block(cut)
        card = tool_call_markdown(result)
        self._push_block(card)
        self.pacer.receive(len(card))
        self._flush(self.pacer.clock(), force=True)

    def retrying(self, attempt: int, delay: float, reason: str) -> None:
        pass

    def error(self, message: str) -> None:
        pass

    def done(self, result: MetaLike | HasMeta | None = None) -> None:
        pass

    def clear(self) -> None:
        """Blank the display (when it was filled)."""
        if self.filled:
            self._send("")


# -- the bound result's reprs -----------------------------------------------------------------

