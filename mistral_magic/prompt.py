r"""Brace-safe ``{name}`` interpolation of notebook variables into a prompt.

Only a brace pair whose *whole* content is a variable reference counts as a placeholder::

    {doc}   {df.shape[0]}   {cfg["key"]}   {items[-1]}   {obj.attr.sub['k'][2]}

A reference is an identifier (not a keyword) followed by any number of ``.attr`` and ``[index]``
accesses, where an index is an int literal or a quoted string literal; no whitespace inside. Nothing
else is evaluated: no calls, operators, format specs or conversions, so ``{x!r}``, ``{x:>10}``,
``{x: 1 for x in y}``, ``{"a": 1}`` and ``x^{2}`` stay exactly as written.

Because a notebook prompt is often code or maths, a reference is also left alone where it is
almost certainly not meant as a variable: right after ``\``, ``$``, ``^`` or ``_`` (``\{x\}``,
``${HOME}``, ``x^{n}``, ``a_{i}``), right after a LaTeX command or a literal ``}`` (``\frac{a}{b}``,
``\mathbf{v}``), and inside a Python f-string literal (``f"Hello {name}"``).

Escapes: ``{{`` gives a literal ``{``. ``}}`` gives a literal ``}`` unless its first brace closes a
plain ``{`` opened earlier, so nested JSON and LaTeX such as ``{"a": {"b": 1}}`` or
``\sqrt{\frac{a}{b}}`` keep their ``}}`` while ``{{name}}`` still gives ``{name}``, and a text whose
braces were all doubled (``s.replace("{", "{{").replace("}", "}}")``) comes back exactly as ``s``.

A placeholder whose root variable is missing, or whose attribute/index access fails, raises
:class:`PromptError` with a one-line message. Values are inserted with ``str()``, untruncated.
"""

from __future__ import annotations

import ast
import keyword
import operator
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["PromptError", "find_placeholders", "interpolate"]


class PromptError(ValueError):
    """A ``{name}`` placeholder that cannot be filled (the message is one line).

    ``placeholder`` is the text between the braces and ``name`` its root variable.
    """

    def __init__(self, message: str, *, placeholder: str, name: str) -> None:
        super().__init__(message)
        self.placeholder = placeholder
        self.name = name


_IDENT = r"[^\W\d]\w*"
# String keys are capped in length so a stray `{x["` cannot make scanning quadratic.
_STRING = r"""(?:"(?:[^"\\\n]|\\.){0,256}"|'(?:[^'\\\n]|\\.){0,256}')"""
_ACCESS = rf"(?:\.{_IDENT}|\[(?:-?\d+|{_STRING})\])"
_PLACEHOLDER = re.compile(rf"\{{({_IDENT}{_ACCESS}*)\}}")
_BRACE = re.compile(r"[{}]")
_STEP = re.compile(rf"\.({_IDENT})|\[(-?\d+|{_STRING})\]")


@dataclass(frozen=True)
class _Ref:
    text: str  # the reference as written between the braces
    root: str
    steps: tuple[tuple[str, str | int], ...]  # ("attr", name) or ("item", key)


def _parse_ref(text: str) -> _Ref | None:
    """Split a syntactically matched reference into root and access steps (None: not a ref)."""
    root = re.match(_IDENT, text)
    if root is None or not root.group().isidentifier() or keyword.iskeyword(root.group()):
        return None
    steps: list[tuple[str, str | int]] = []
    pos = root.end()
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:  # pragma: no cover - the outer regex guarantees a full match
            return None
        if m.group(1) is not None:
            if not m.group(1).isidentifier():
                return None
            steps.append(("attr", m.group(1)))
        else:
            raw = m.group(2)
            try:
                with warnings.catch_warnings():  # e.g. "invalid escape sequence" in the key
                    warnings.simplefilter("ignore")
                    key: object = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                return None
            if not isinstance(key, (int, str)):  # pragma: no cover - grammar allows only these
                return None
            steps.append(("item", key))
        pos = m.end()
    return _Ref(text, root.group(), tuple(steps))


# Python f-string literals (prefix f, rf or fr in any case): `f"{x}"` in pasted code stays as is.
_FSTRING = re.compile(
    r"(?<!\w)(?:[rR][fF]|[fF][rR]?)"
    r"""(?:\"\"\"[\s\S]*?(?:\"\"\"|\Z)|'''[\s\S]*?(?:'''|\Z)"""
    r"""|"(?:[^"\\\n]|\\.)*(?:"|$)|'(?:[^'\\\n]|\\.)*(?:'|$))""",
    re.MULTILINE,
)


def _fstring_spans(text: str) -> list[tuple[int, int]]:
    if "f" not in text and "F" not in text:
        return []
    return [m.span() for m in _FSTRING.finditer(text)]


def _latex_command_before(text: str, i: int) -> bool:
    r"""True when ``text[:i]`` ends with a LaTeX command such as ``\frac`` or ``\section*``."""
    j = i - 1 if i > 0 and text[i - 1] == "*" else i
    k = j
    while k > 0 and j - k < 40 and text[k - 1].isascii() and text[k - 1].isalpha():
        k -= 1
    return 0 < k < j and text[k - 1] == "\\"


def _scan(text: str) -> list[str | _Ref]:
    """Tokenise ``text`` into literal pieces and references, applying the escape rules."""
    out: list[str | _Ref] = []
    buf: list[str] = []
    # Open braces still waiting for their `}`: True for a plain `{`, False for an escaped `{{`.
    opens: list[bool] = []
    spans = _fstring_spans(text)
    span_i = 0
    ref_end = -1  # index just after the last placeholder
    i, n = 0, len(text)
    while i < n:
        brace = _BRACE.search(text, i)
        j = brace.start() if brace else n
        if j > i:
            buf.append(text[i:j])
            i = j
            continue
        nxt = text[i + 1] if i + 1 < n else ""
        if text[i] == "{":
            if nxt == "{":
                buf.append("{")
                opens.append(False)
                i += 2
                continue
            while span_i < len(spans) and spans[span_i][1] <= i:
                span_i += 1
            prev = text[i - 1] if i > 0 else ""
            candidate = not (
                prev in ("\\", "$", "^", "_")  # \{ escaped, ${shell}, x^{2}, x_{i}
                or (prev == "}" and i != ref_end)  # LaTeX arguments: \frac{a}{b}
                or _latex_command_before(text, i)
                or (span_i < len(spans) and spans[span_i][0] < i)  # inside an f-string
            )
            m = _PLACEHOLDER.match(text, i) if candidate else None
            ref = _parse_ref(m.group(1)) if m else None
            if m is not None and ref is not None:
                if buf:
                    out.append("".join(buf))
                    buf.clear()
                out.append(ref)
                i = ref_end = m.end()
                continue
            buf.append("{")
            opens.append(True)
            i += 1
            continue
        # a closing brace
        if opens and opens[-1]:
            opens.pop()  # closes a plain `{`: literal, even if another `}` follows
            buf.append("}")
            i += 1
        elif nxt == "}":
            if opens:
                opens.pop()
            buf.append("}")
            i += 2
        else:
            buf.append("}")
            i += 1
    if buf:
        out.append("".join(buf))
    return out


def find_placeholders(text: str) -> list[str]:
    """Return the placeholders of ``text`` (text between the braces), unique, in order."""
    seen: dict[str, None] = {}
    for piece in _scan(text):
        if isinstance(piece, _Ref):
            seen.setdefault(piece.text, None)
    return list(seen)


def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _resolve(ref: _Ref, namespace: Mapping[str, object]) -> str:
    if ref.root not in namespace:
        define = "it" if ref.text == ref.root else ref.root
        raise PromptError(
            f"unknown variable {{{ref.text}}} in the prompt (define {define}, write "
            f"{{{{{ref.text}}}}} for literal braces, or use --no-interpolate)",
            placeholder=ref.text,
            name=ref.root,
        )
    value: object = namespace[ref.root]
    try:
        for kind, key in ref.steps:
            if kind == "attr":
                assert isinstance(key, str)
                value = getattr(value, key)
            else:
                value = operator.getitem(value, key)  # type: ignore[call-overload]
        return str(value)
    except Exception as exc:
        raise PromptError(
            f"cannot evaluate {{{ref.text}}} in the prompt: {_one_line(exc)}",
            placeholder=ref.text,
            name=ref.root,
        ) from exc


def interpolate(text: str, namespace: Mapping[str, object]) -> str:
    """Fill the ``{name}`` placeholders of ``text`` from ``namespace``; see the module docs.

    Raises :class:`PromptError` (a ``ValueError``) for an unknown variable or a failing access.
    """
    parts: list[str] = []
    for piece in _scan(text):
        parts.append(_resolve(piece, namespace) if isinstance(piece, _Ref) else piece)
    return "".join(parts)
