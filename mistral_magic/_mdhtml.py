"""Markdown to HTML for the chat panel's transcript, with everything escaped.

The common subset an answer uses (paragraphs, headings, lists, quotes, fenced code, tables,
links, emphasis). All text is HTML-escaped and only this module's own tags come out; links keep
only http(s) and mailto URLs. No dependency: the panel must not run scripts or trust the model.
"""

from __future__ import annotations

import html
import re

__all__ = ["markdown_html", "neutralize_html"]


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_HR = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_LIST = re.compile(r"^([ \t]*)([-*+]|\d{1,9}[.)])([ \t]+|$)")
_QUOTE = re.compile(r"^ {0,3}> ?")
_DELIM = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.S)
_LINK = re.compile(r"(!?)\[([^\]\n]+)\]\(\s*([^)\s]+)(?:\s+&quot;[^\n]*?&quot;)?\s*\)")
_AUTOLINK = re.compile(r"&lt;((?:https?|mailto):[^\s&]+)&gt;")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EM_STAR = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")
_EM_UNDER = re.compile(r"(?<![\w_])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![\w_])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_TOKEN = re.compile("\x00(\\d+)\x00")
_SAFE_SCHEMES = ("http://", "https://", "mailto:")


def markdown_html(text: str) -> str:
    """Render Markdown (the common subset: paragraphs, headings, lists, quotes, code, tables,
    links, emphasis) to HTML. All text is escaped; links keep only http(s)/mailto URLs."""
    return "".join(_blocks(text.replace("\x00", "\ufffd").replace("\r\n", "\n").split("\n")))


def _indent(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip(" "))


def _cells(row: str) -> list[str]:
    s = row.strip()
    s = s[1:] if s.startswith("|") else s
    s = s[:-1] if s.endswith("|") and not s.endswith("\\|") else s
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", s)]


def _block_start(line: str) -> bool:
    return bool(
        _FENCE.match(line)
        or _HEADING.match(line)
        or _HR.match(line)
        or _QUOTE.match(line)
        or _LIST.match(line)
    )


def _blocks(lines: list[str]) -> list[str]:
    out: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append("<p>" + "<br>".join(_inline(p.strip()) for p in para) + "</p>")
            para.clear()

    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if not line.strip():
            flush()
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            flush()
            marker, info = fence.group(1), fence.group(2)
            body: list[str] = []
            i += 1
            while i < n:
                s = lines[i].strip()
                if s and set(s) == {marker[0]} and len(s) >= len(marker):
                    i += 1
                    break
                body.append(lines[i])
                i += 1
            lang = re.sub(r"[^\w+#.-]", "", info)[:32]
            cls = f' class="language-{lang}"' if lang else ""
            out.append(
                f'<pre class="mm-code"><code{cls}>{html.escape(chr(10).join(body))}</code></pre>'
            )
            continue
        if line.strip() == "$$":
            flush()
            body = []
            i += 1
            while i < n and lines[i].strip() != "$$":
                body.append(lines[i])
                i += 1
            i += 1
            out.append(f'<pre class="mm-math">$$\n{html.escape(chr(10).join(body))}\n$$</pre>')
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
            i += 1
            continue
        if _HR.match(line) and not (para and line.strip().startswith("-")):
            flush()
            out.append("<hr>")
            i += 1
            continue
        if _QUOTE.match(line):
            flush()
            quoted: list[str] = []
            while i < n and _QUOTE.match(lines[i]):
                quoted.append(_QUOTE.sub("", lines[i], count=1))
                i += 1
            out.append("<blockquote>" + "".join(_blocks(quoted)) + "</blockquote>")
            continue
        if (
            "|" in line
            and i + 1 < n
            and _DELIM.match(lines[i + 1])
            and "-" in lines[i + 1]
            and len(_cells(line)) == len(_cells(lines[i + 1]))
        ):
            flush()
            rows: list[str] = []
            header, aligns = _cells(line), _cells(lines[i + 1])
            i += 2
            while i < n and "|" in lines[i] and lines[i].strip():
                rows.append(lines[i])
                i += 1
            out.append(_table(header, aligns, rows))
            continue
        if _LIST.match(line) and (not para or _LIST.match(line)):
            flush()
            html_list, i = _list(lines, i)
            out.append(html_list)
            continue
        para.append(line)
        i += 1
    flush()
    return out


def _table(header: list[str], aligns: list[str], rows: list[str]) -> str:
    styles = []
    for spec in aligns:
        left, right = spec.startswith(":"), spec.endswith(":")
        align = "center" if left and right else "right" if right else "left" if left else ""
        styles.append(f' style="text-align:{align}"' if align else "")

    def row(cells: list[str], tag: str) -> str:
        cells = (cells + [""] * len(styles))[: len(styles)]
        return (
            "<tr>"
            + "".join(
                f"<{tag}{style}>{_inline(c)}</{tag}>"
                for c, style in zip(cells, styles, strict=True)
            )
            + "</tr>"
        )

    body = "".join(row(_cells(r), "td") for r in rows)
    return (
        f'<table class="mm-table"><thead>{row(header, "th")}</thead><tbody>{body}</tbody></table>'
    )


def _list(lines: list[str], i: int) -> tuple[str, int]:
    first = _LIST.match(lines[i])
    assert first is not None
    base = _indent(first.group(1))
    ordered = first.group(2)[0].isdigit()
    start = int(first.group(2)[:-1]) if ordered else 1
    items: list[list[str]] = []
    n = len(lines)
    while i < n:
        line = lines[i]
        m = _LIST.match(line)
        if m and _indent(m.group(1)) <= base + 1 and m.group(2)[0].isdigit() == ordered:
            width = len(m.group(0).expandtabs(4)) if m.group(3) else len(m.group(0)) + 1
            items.append([line.expandtabs(4)[width:]])
            i += 1
            continue
        if not line.strip():
            j = i
            while j < n and not lines[j].strip():
                j += 1
            if j < n and (
                _indent(lines[j]) > base
                or (
                    (mm := _LIST.match(lines[j])) is not None
                    and mm.group(2)[0].isdigit() == ordered
                )
            ):
                items[-1].extend([""] * (j - i))
                i = j
                continue
            break
        if _indent(line) > base:
            items[-1].append(line.expandtabs(4)[min(_indent(line), base + 2) :])
        elif not _block_start(line) and items[-1] and items[-1][-1].strip():
            items[-1].append(line.strip())  # a lazy continuation of the item's paragraph
        else:
            break
        i += 1
    parts = []
    for item in items:
        blocks = _blocks(item)
        if blocks and blocks[0].startswith("<p>"):
            blocks[0] = blocks[0][3:-4]
        parts.append("<li>" + "".join(blocks) + "</li>")
    tag = "ol" if ordered else "ul"
    attr = f' start="{start}"' if ordered and start != 1 else ""
    return f"<{tag}{attr}>" + "".join(parts) + f"</{tag}>", i


def _inline(text: str) -> str:
    tokens: list[str] = []

    def keep(fragment: str) -> str:
        tokens.append(fragment)
        return f"\x00{len(tokens) - 1}\x00"

    pieces: list[str] = []
    pos = 0
    for m in _CODE_SPAN.finditer(text):
        pieces.append(html.escape(text[pos : m.start()]))
        code = m.group(2)
        code = code[1:-1] if code.startswith(" ") and code.endswith(" ") and code.strip() else code
        pieces.append(keep(f"<code>{html.escape(code)}</code>"))
        pos = m.end()
    pieces.append(html.escape(text[pos:]))
    escaped = "".join(pieces)

    def link(m: re.Match[str]) -> str:
        image, label, url = m.group(1), m.group(2), m.group(3)
        label = _emphasis(label)
        if not html.unescape(url).lower().startswith(_SAFE_SCHEMES):
            return keep(label)
        shown = f"🖼 {label}" if image else label
        return keep(f'<a href="{url}" target="_blank" rel="noopener noreferrer">{shown}</a>')

    escaped = _LINK.sub(link, escaped)
    escaped = _AUTOLINK.sub(
        lambda m: keep(
            f'<a href="{m.group(1)}" target="_blank" rel="noopener noreferrer">{m.group(1)}</a>'
        ),
        escaped,
    )
    escaped = _emphasis(escaped)
    for _ in range(3):  # a link label may hold a code span
        if "\x00" not in escaped:
            break
        escaped = _TOKEN.sub(lambda m: tokens[int(m.group(1))], escaped)
    return escaped


def _emphasis(text: str) -> str:
    text = _STRONG.sub(r"<strong>\2</strong>", text)
    text = _EM_STAR.sub(r"<em>\1</em>", text)
    text = _EM_UNDER.sub(r"<em>\1</em>", text)
    return _STRIKE.sub(r"<del>\1</del>", text)


def neutralize_html(markdown: str) -> str:
    """Escape ``<`` and ``&`` outside code, so raw HTML in a message shows as text when the
    static Markdown transcript is rendered."""
    out: list[str] = []
    fence: str | None = None
    for line in markdown.split("\n"):
        m = _FENCE.match(line)
        if fence is not None:
            s = line.strip()
            if s and set(s) == {fence[0]} and len(s) >= len(fence):
                fence = None
            out.append(line)
            continue
        if m:
            fence = m.group(1)
            out.append(line)
            continue
        parts, pos = [], 0
        for span in _CODE_SPAN.finditer(line):
            parts.append(_escape_lt(line[pos : span.start()]))
            parts.append(span.group(0))
            pos = span.end()
        parts.append(_escape_lt(line[pos:]))
        out.append("".join(parts))
    return "\n".join(out)


def _escape_lt(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")
