"""Markdown and plain text of a turn: footers, provenance, tool-call cards, transcripts.

Pure text functions, below the views: the bound ``ChatResult`` (session) uses them for its
notebook reprs, and ``render`` uses them while drawing a stream. Nothing here imports IPython.

* :func:`close_open_markdown` makes a *displayed copy* of a partial answer render sensibly.
* :func:`footer_text` and :func:`provenance` describe a turn from its metadata.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from .tools import ToolResult

_FENCE_OPEN = re.compile(r"^([ \t]*)(`{3,}|~{3,})(.*)$")
_DELIMITER_ROW = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_ROLES = {"system": "System", "user": "You", "assistant": "Mistral", "tool": "Tool"}


class MetaLike(Protocol):
    """Anything shaped like :class:`TurnMeta` (read-only), e.g. the session's own record."""

    @property
    def model(self) -> str | None: ...
    @property
    def backend(self) -> str | None: ...
    @property
    def region(self) -> str | None: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def seed(self) -> int | None: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def first_token_at(self) -> float | None: ...
    @property
    def finished_at(self) -> float | None: ...
    @property
    def prompt_tokens(self) -> int | None: ...
    @property
    def completion_tokens(self) -> int | None: ...
    @property
    def finish_reason(self) -> str | None: ...


class HasMeta(Protocol):
    """A turn result that carries its metadata (the session's ``ChatResult``)."""

    @property
    def meta(self) -> MetaLike: ...


def _meta_of(obj: object) -> Any:
    """The metadata of a result, or the object itself when it already is metadata."""
    meta = getattr(obj, "meta", None)
    return meta if meta is not None and not callable(meta) else obj


def _field(meta: object, name: str) -> Any:
    return getattr(meta, name, None)


def footer_text(meta: MetaLike | HasMeta | None) -> str:
    """One line such as ``model · vertex europe-west4 · 12 in / 340 out · first token 0.21 s ·
    3.4 s · 98 tok/s``; unknown parts are left out (a result with ``.meta`` is accepted too)."""
    m = _meta_of(meta)
    parts: list[str] = []
    if _field(m, "model"):
        parts.append(str(m.model))
    where = " ".join(str(x) for x in (_field(m, "backend"), _field(m, "region")) if x)
    if where:
        parts.append(where)
    p_tok, c_tok = _field(m, "prompt_tokens"), _field(m, "completion_tokens")
    if p_tok or c_tok:
        parts.append(f"{p_tok or 0} in / {c_tok or 0} out")
    start, first, end = (
        _field(m, "started_at"),
        _field(m, "first_token_at"),
        _field(m, "finished_at"),
    )
    if start is not None and first is not None:
        parts.append(f"first token {max(first - start, 0.0):.2f} s")
    if start is not None and end is not None:
        parts.append(f"{max(end - start, 0.0):.1f} s")
    if c_tok and first is not None and end is not None and end - first > 0:
        parts.append(f"{c_tok / (end - first):.0f} tok/s")
    reason = _field(m, "finish_reason")
    if reason and reason not in ("stop", "tool_calls"):
        parts.append(f"finish: {reason}")
    return " · ".join(parts)


def provenance(meta: MetaLike | HasMeta | None) -> dict[str, Any]:
    """Output metadata for a turn: model, backend, region, request_id, usage, seed,
    finish_reason (plain JSON types; timings are left out so saved notebooks stay stable)."""
    m = _meta_of(meta)

    def plain(value: Any, kind: type | tuple[type, ...]) -> Any:
        return value if isinstance(value, kind) and not isinstance(value, bool) else None

    p_tok = plain(_field(m, "prompt_tokens"), int)
    c_tok = plain(_field(m, "completion_tokens"), int)
    usage = None
    if p_tok is not None or c_tok is not None:
        usage = {
            "prompt_tokens": p_tok or 0,
            "completion_tokens": c_tok or 0,
            "total_tokens": (p_tok or 0) + (c_tok or 0),
        }
    return {
        "model": plain(_field(m, "model"), str),
        "backend": plain(_field(m, "backend"), str),
        "region": plain(_field(m, "region"), str),
        "request_id": plain(_field(m, "request_id"), str),
        "usage": usage,
        "seed": plain(_field(m, "seed"), int),
        "finish_reason": plain(_field(m, "finish_reason"), str),
    }


@dataclass(frozen=True)
class _Fence:
    indent: str
    marker: str  # the run of backticks or tildes that opened it
    line: str  # the opening line, info string included, without its newline

    @property
    def closer(self) -> str:
        return self.indent + self.marker


def _fence_open(line: str) -> _Fence | None:
    m = _FENCE_OPEN.match(line.rstrip("\n"))
    if m is None or (m.group(2)[0] == "`" and "`" in m.group(3)):
        return None
    return _Fence(m.group(1), m.group(2), line.rstrip("\n"))


def _fence_closes(fence: _Fence, line: str) -> bool:
    s = line.strip()
    return len(s) >= len(fence.marker) and s[0] == fence.marker[0] and set(s) == {fence.marker[0]}


def _cells(row: str) -> int:
    s = row.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    return len(re.split(r"(?<!\\)\|", s))


def _scan_state(lines: list[str]) -> tuple[_Fence | None, bool]:
    """Fence still open at the end of ``lines``, and whether a ``$$`` block is open."""
    fence: _Fence | None = None
    math = False
    for line in lines:
        if fence is not None:
            if _fence_closes(fence, line):
                fence = None
            continue
        opened = _fence_open(line)
        if opened is not None:
            fence = opened
        elif line.count("$$") % 2:
            math = not math
    return fence, math


def close_open_markdown(text: str, *, drop_partial_row: bool = True) -> str:
    """Make a partial answer render sensibly; complete Markdown comes back unchanged.

    Closes an unterminated code fence (same marker and length) or ``$$`` block, and drops a
    half-written last table row (a last line, without newline, that starts with ``|`` and
    either does not end with one or has fewer cells than the row above, or a delimiter row that
    does not yet match its header), so the table above it still renders. Meant for the
    *displayed copy* only; ``drop_partial_row=False`` keeps the last line (a final answer).
    """
    if not text:
        return text
    lines = text.splitlines(keepends=True)
    fence, math = _scan_state(lines)
    if fence is not None:
        return text + ("" if text.endswith("\n") else "\n") + fence.closer
    last = lines[-1]
    if drop_partial_row and not math and not last.endswith(("\n", "\r")):
        s = last.strip()
        half_row = s.startswith("|") and (s == "|" or not s.endswith("|"))
        if not half_row and len(lines) > 1 and "|" in s and "|" in lines[-2]:
            # a delimiter row, or a body row, that has fewer cells than the row above so far
            if _DELIMITER_ROW.match(s):
                half_row = _cells(s) != _cells(lines[-2])
            elif s.startswith("|"):
                half_row = _cells(s) < _cells(lines[-2])
        if half_row:
            text = text[: len(text) - len(last)]
    if math:
        return text + ("" if text.endswith("\n") else "\n") + "$$"
    return text


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _call_signature(result: ToolResult) -> str:
    args = ", ".join(
        f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in result.arguments.items()
    )
    return f"{result.name}({args})"


def tool_call_summary(result: ToolResult, width: int = 160) -> str:
    """One line: ``name(a=1) -> content (0.01 s)`` or ``... -> error: message``."""
    outcome = result.content if result.ok else f"error: {result.error or result.content}"
    line = f"{_call_signature(result)} -> {_shorten(outcome, width)} ({result.duration_s:.2f} s)"
    return _shorten(line, width + 40)


def _code_block(text: str, info: str = "") -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def tool_call_markdown(result: ToolResult, max_chars: int = 2000) -> str:
    """A collapsible card for one tool call: call and outcome in the summary, details inside."""
    mark = "🔧" if result.ok else "⚠️"
    outcome = "ok" if result.ok else "error"
    summary = (
        f"{mark} <code>{html.escape(_shorten(_call_signature(result), 120))}</code> → "
        f"{outcome} · {result.duration_s:.2f} s"
    )
    args = json.dumps(result.arguments, ensure_ascii=False, indent=2)
    body = result.content if len(result.content) <= max_chars else result.content[:max_chars] + "…"
    return (
        f"<details><summary>{summary}</summary>\n\n"
        f"{_code_block(args, 'json')}\n\n{_code_block(body)}\n\n</details>"
    )


def _status_note(result: object) -> str:
    error = getattr(result, "error", None)
    if isinstance(error, str) and error:
        return f"error: {error}"
    if getattr(result, "interrupted", False) is True:
        return "interrupted"
    reason = getattr(result, "finish_reason", None)
    if isinstance(reason, str) and reason not in ("stop", "tool_calls"):
        return f"finish_reason: {reason}"
    return ""


def result_markdown(result: object, *, footer: bool = False) -> str:
    """Markdown for a turn result (``.text``, ``.tool_results``, ``.error``/``.interrupted``):
    tool-call cards, the answer, a note when it is partial, and optionally the footer."""
    parts: list[str] = [tool_call_markdown(r) for r in getattr(result, "tool_results", None) or []]
    text = getattr(result, "text", "")
    if isinstance(text, str) and text:
        parts.append(close_open_markdown(text, drop_partial_row=False))
    note = _status_note(result)
    if note:
        parts.append(f"*[{note}]*")
    if footer:
        line = footer_text(cast(HasMeta, result))
        if line:
            parts.append(f"*{line}*")
    return "\n\n".join(parts)


def result_plain(result: object) -> str:
    """Plain text for a turn result: the answer, and a note when it is partial."""
    text = getattr(result, "text", "")
    text = text if isinstance(text, str) else str(text)
    note = _status_note(result)
    return f"{text}\n[{note}]" if note and text else (f"[{note}]" if note else text)


def _content_text(content: object) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for chunk in content:
            kind = chunk.get("type") if isinstance(chunk, dict) else getattr(chunk, "type", None)
            get = chunk.get if isinstance(chunk, dict) else lambda k, c=chunk: getattr(c, k, None)
            if kind == "text":
                parts.append(str(get("text") or ""))
            elif kind == "image_url":
                parts.append("*[image]*")
        return "".join(parts)
    return str(content)


_ROLES = {"system": "System", "user": "You", "assistant": "Mistral", "tool": "Tool"}


def conversation_markdown(messages: Iterable[Mapping[str, Any]]) -> str:
    """A static Markdown transcript of chat messages (dicts as sent to the API)."""
    out: list[str] = []
    for message in messages:
        role = str(message.get("role", ""))
        text = _content_text(message.get("content"))
        if role == "tool":
            name = html.escape(str(message.get("name") or "tool"))
            out.append(
                f"<details><summary>🔧 result of <code>{name}</code></summary>\n\n"
                f"{_code_block(text)}\n\n</details>"
            )
            continue
        lines = [f"**{_ROLES.get(role, role.title() or 'Message')}:**"]
        if text:
            lines.append(close_open_markdown(text, drop_partial_row=False))
        for call in message.get("tool_calls") or []:
            function = call.get("function", {}) if isinstance(call, Mapping) else {}
            args = function.get("arguments", "")
            if not isinstance(args, str):
                args = json.dumps(args, ensure_ascii=False)
            lines.append(f"🔧 `{function.get('name', '?')}({_shorten(args, 200)})`")
        out.append("\n\n".join(lines))
    return "\n\n---\n\n".join(out)
