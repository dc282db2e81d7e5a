"""The fake model: deterministic prose, JSON, schema instances and tool calls.

Everything here works on plain dicts (the validated request body) and is a pure function of
the request and its ``random_seed``: the same body gives the same answer, a different seed a
different one.  Tokens are word pieces: a run of non-space characters (at most 16) together
with the whitespace before it, so joining the tokens gives back the text exactly.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

_TOKEN_RE = re.compile(r"\s*\S{1,16}|\s+")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9_'\-]*")
_CAPS_RE = re.compile(r"\b[A-Z][a-zA-Z\-]+(?:\s+[A-Z][a-zA-Z\-]+)*")
_NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
_EXPR_RE = re.compile(r"[\d(][\d\s+\-*/().^%]*[\d)]")
_CODE_RE = re.compile(
    r"\b(code|python|function|script|program|snippet|implement|def|class|algorithm)\b", re.I
)

_STOP_TEXT = """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its
    itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    please tell give show explain describe write make let lets know like want need also use
    using used get gets set list fetch call calls tool tools return returns given current value
    values data information specified provided based find s t don doesn isn what's whats i'm hi
    hello thanks thank ok okay yes one two many much
"""
STOPWORDS = frozenset(_STOP_TEXT.split())

_OPENERS = (
    'You asked: "{q}".',
    'Here is a short answer to "{q}".',
    'Good question: "{q}".',
    'Let me address "{q}".',
    'Regarding "{q}", here is what matters.',
    'You want to know about "{q}".',
)
_GREETINGS = (
    "Hello! How can I help you today?",
    "Hi there! What would you like to talk about?",
    "Hello! Ask me anything, and I will do my best to answer.",
)
_SENTENCES = (
    "The key idea behind {kw} is that small, well-defined steps are easier to reason about.",
    "In practice, {kw} works best when you start from a concrete example.",
    "A common pitfall with {kw} is to ignore the edge cases.",
    "Most people find that {kw} and {kw2} are closely related.",
    "It helps to measure {kw} before trying to improve it.",
    "There is no single right answer, but {kw} usually comes down to trade-offs.",
    "Think of {kw} as a tool: useful when it fits, harmful when forced.",
    "The documentation on {kw} is a good place to check the details.",
    "When {kw} grows, keeping things simple pays off.",
    "{Kw} has a long history, and the basics have not changed much.",
    "You can usually check {kw} with a few quick experiments.",
    "Many practitioners would say that {kw} matters more than {kw2}.",
    "If in doubt, write down what you expect from {kw} first.",
    "A short checklist makes {kw} much easier to review.",
    "Looking at {kw} from the point of view of {kw2} often clarifies things.",
    "The trade-off between {kw} and {kw2} is worth making explicit.",
)
_BULLETS = (
    "start with the simplest case",
    "check the assumptions",
    "compare it with {kw2}",
    "keep an eye on the cost",
    "write a small test",
    "read the official notes",
    "ask for a second opinion",
    "measure before and after",
)
_CLOSERS = (
    "In short, {kw} is worth a careful look.",
    "I hope this helps with {kw}.",
    "Let me know if you want more detail on {kw}.",
    "That should be enough to get started with {kw}.",
)
_CODE_TEMPLATES = (
    'def {fn}(values: list[int]) -> int:\n    """Return the sum of the {kw} values."""\n'
    "    total = 0\n    for value in values:\n        total += value\n    return total\n\n\n"
    "print({fn}([1, 2, 3]))",
    'def {fn}(text: str) -> dict[str, int]:\n    """Count the words of a {kw} text."""\n'
    "    counts: dict[str, int] = {{}}\n    for word in text.split():\n"
    "        counts[word] = counts.get(word, 0) + 1\n    return counts\n\n\n"
    'print({fn}("a b a"))',
    "def {fn}(items: list[str]) -> list[str]:\n"
    '    """Return the {kw} items sorted and deduplicated."""\n'
    "    return sorted(set(items))\n\n\n"
    'print({fn}(["b", "a", "b"]))',
)
_PROPER_KEYS = (
    "city", "country", "location", "place", "town", "capital", "region", "state", "destination",
    "origin", "name", "person", "author", "company", "brand", "team", "username", "user",
    "organization", "organisation", "artist", "title",
)  # fmt: skip
_TEXT_KEYS = (
    "query", "q", "text", "question", "prompt", "topic", "search", "input", "message", "content",
    "keyword", "term", "subject", "description", "summary", "sentence", "expression", "formula",
)  # fmt: skip
_FALLBACK_PROPER = ("Paris", "Lyon", "Berlin", "Madrid", "Rome", "Lisbon", "Vienna")


def tokenize(text: str) -> list[str]:
    """Split text into word-piece tokens; ``"".join(tokenize(t)) == t``."""
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    """Number of tokens in ``text`` (same rule as :func:`tokenize`)."""
    return len(_TOKEN_RE.findall(text))


def content_text(content: Any) -> str:
    """Plain text of a message ``content`` (string, None or list of chunks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for chunk in content:
            if isinstance(chunk, dict):
                if isinstance(chunk.get("text"), str):
                    parts.append(chunk["text"])
                elif isinstance(chunk.get("thinking"), list):
                    parts.append(content_text(chunk["thinking"]))
        return " ".join(parts)
    return ""


@dataclass
class Choice:
    """One generated choice: text or tool calls, as the payload builders need it."""

    content: str
    tokens: list[str]
    finish_reason: str
    tool_calls: list[dict[str, Any]] | None = None
    completion_tokens: int = 0


@dataclass
class Completion:
    """The model's whole answer to one request."""

    choices: list[Choice]
    prompt_tokens: int
    completion_tokens: int = field(init=False)

    def __post_init__(self) -> None:
        self.completion_tokens = sum(c.completion_tokens for c in self.choices)


# --------------------------------------------------------------------------------------------
# context extracted from the conversation


@dataclass
class _Context:
    rng: random.Random
    question: str
    keywords: list[str]
    proper: list[str]
    numbers: list[float]
    used: dict[str, int] = field(default_factory=dict)

    def next_proper(self, key: str) -> str | None:
        """The next capitalised word of the user message (per key, so arrays vary)."""
        if not self.proper:
            return None
        i = self.used.get(key, 0)
        self.used[key] = i + 1
        return self.proper[i % len(self.proper)]


def _keywords(text: str) -> list[str]:
    """Content words of ``text`` in order, case kept for proper nouns, lower-cased otherwise."""
    seen: list[str] = []
    lows: set[str] = set()
    for i, word in enumerate(_WORD_RE.findall(text)):
        word = word.strip("'-")
        low = word.lower()
        if len(low) >= 3 and low not in STOPWORDS and low not in lows:
            lows.add(low)
            acronym = len(word) >= 2 and word.isupper()
            keep = acronym or (i > 0 and word[:1].isupper())
            seen.append(word if keep else low)
    return seen


def _proper_nouns(text: str) -> list[str]:
    """Capitalised names in ``text``; sentence-initial words only if nothing else qualifies."""
    inner: list[str] = []
    initial: list[str] = []
    for match in _CAPS_RE.finditer(text):
        words = match.group(0).split()
        while words and words[0].lower() in STOPWORDS:
            words.pop(0)
        while words and words[-1].lower() in STOPWORDS:
            words.pop()
        name = " ".join(words)
        before = text[: match.start()].rstrip()
        at_start = (not before or before[-1] in ".!?:\n") and words == match.group(0).split()
        target = initial if at_start and len(words) == 1 else inner
        if name and name not in target:
            target.append(name)
    return inner or initial


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split()).replace('"', "'")
    if len(text) <= limit:
        return text
    cut = text[: limit - 3].rsplit(" ", 1)[0]
    return cut + "…"


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


_UNSEEDED = frozenset({"stream", "random_seed", "max_tokens", "min_tokens", "stop", "n"})


def seed_material(body: dict[str, Any]) -> str:
    """Hash of the request and its seed: the root of all randomness."""
    # Fields that only cut, pad or multiply the answer stay out: max_tokens=5 gives the first
    # five tokens of the very answer the request without it gets.
    canon = {k: v for k, v in body.items() if k not in _UNSEEDED}
    text = json.dumps(canon, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(f"{text}|{body.get('random_seed')}".encode()).hexdigest()


def _context(body: dict[str, Any], material: str, index: int) -> _Context:
    question = _last_user_text(body["messages"])
    return _Context(
        rng=random.Random(f"{material}:{index}"),
        question=question,
        keywords=_keywords(question),
        proper=_proper_nouns(question),
        numbers=[float(n) for n in _NUMBER_RE.findall(question)],
    )


# --------------------------------------------------------------------------------------------
# prose


def _fill(template: str, ctx: _Context) -> str:
    kws = ctx.keywords or ["this topic", "the question"]
    kw = ctx.rng.choice(kws)
    others = [k for k in kws if k != kw] or ["the context"]
    kw2 = ctx.rng.choice(others)
    return template.format(kw=kw, kw2=kw2, Kw=kw[:1].upper() + kw[1:])


def _paragraph(ctx: _Context, sentences: int) -> str:
    return " ".join(_fill(t, ctx) for t in ctx.rng.sample(_SENTENCES, sentences))


def _prose(ctx: _Context, wants_code: bool) -> str:
    rng = ctx.rng
    parts: list[str] = []
    if not ctx.keywords:
        return rng.choice(_GREETINGS)
    opener = rng.choice(_OPENERS).format(q=_short(ctx.question))
    opener = re.sub(r'([.?!…])"\.', r'\1"', opener)  # no '?".' after a quoted question
    parts.append(f"{opener} {_paragraph(ctx, rng.randint(1, 2))}")
    parts.append(_paragraph(ctx, rng.randint(2, 3)))
    if rng.random() < 0.5:
        items = rng.sample(_BULLETS, 3)
        bullets = [_fill(b, ctx) for b in items]
        parts.append("\n".join(f"- {b[:1].upper()}{b[1:]}" for b in bullets))
    if wants_code:
        names = [k for k in ctx.keywords if k not in ("code", "python", "function", "script")]
        base = re.sub(r"\W+", "_", names[0] if names else "example").strip("_") or "example"
        fn = f"process_{base}".lower()
        code = rng.choice(_CODE_TEMPLATES).format(fn=fn, kw=base)
        parts.append(f"Here is a small Python example:\n\n```python\n{code}\n```")
    parts.append(_fill(rng.choice(_CLOSERS), ctx))
    return "\n\n".join(parts)


def _pad(text: str, ctx: _Context, min_tokens: int) -> str:
    """Append paragraphs until the text has at least ``min_tokens`` tokens."""
    have = count_tokens(text)
    if have >= min_tokens:
        return text
    parts = [text]
    while have < min_tokens:
        para = _paragraph(ctx, 3)
        parts.append(para)
        have += count_tokens(para)  # "\n\n" joins into the next token: counts add up
    return "\n\n".join(parts)


def _tool_name_for(messages: list[dict[str, Any]], message: dict[str, Any]) -> str:
    if isinstance(message.get("name"), str) and message["name"]:
        return str(message["name"])
    call_id = message.get("tool_call_id")
    for earlier in messages:
        for call in earlier.get("tool_calls") or []:
            if isinstance(call, dict) and call.get("id") == call_id:
                return str((call.get("function") or {}).get("name", "the tool"))
    return "the tool"


def _tool_followup(body: dict[str, Any], ctx: _Context) -> str:
    messages = body["messages"]
    trailing: list[dict[str, Any]] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        trailing.insert(0, message)
    lines = []
    for message in trailing:
        name = _tool_name_for(messages, message)
        result = content_text(message.get("content")).strip()
        if len(result) > 600:
            result = result[:597] + "…"
        lines.append(f"According to {name}: {result}")
    answer = "\n\n".join(lines)
    if ctx.question.strip():
        answer += (
            f'\n\nSo, to answer "{_short(ctx.question)}": the result above comes from the tool.'
        )
    return answer + " " + _fill(ctx.rng.choice(_CLOSERS), ctx)


# --------------------------------------------------------------------------------------------
# JSON and schema instances


def _json_object(ctx: _Context) -> dict[str, Any]:
    kws = ctx.keywords or ["answer"]
    return {
        "question": _short(ctx.question, 120),
        "answer": _fill(ctx.rng.choice(_SENTENCES), ctx),
        "keywords": kws[:3],
        "confidence": round(ctx.rng.uniform(0.6, 0.99), 2),
    }


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` (``#``, ``#/$defs/X``, ``#/definitions/X`` or any local pointer)."""
    seen = 0
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < 32:
        ref: str = schema["$ref"]
        target: Any = root
        if ref.startswith("#"):
            for part in ref[1:].split("/"):
                if part:
                    part = part.replace("~1", "/").replace("~0", "~")
                    target = target.get(part, {}) if isinstance(target, dict) else {}
        else:
            target = {}
        extra = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **extra} if isinstance(target, dict) else extra
        seen += 1
    return schema


def _string_value(schema: dict[str, Any], ctx: _Context, key: str) -> str:
    fmt = schema.get("format")
    rng = ctx.rng
    year, month, day = rng.randint(2020, 2025), rng.randint(1, 12), rng.randint(1, 28)
    low = key.lower()
    if not isinstance(fmt, str) and isinstance(schema.get("type", "string"), str):
        if low in ("date", "day", "birthday") or low.endswith("_date"):
            fmt = "date"
        elif low.endswith("_at") or low in ("datetime", "timestamp"):
            fmt = "date-time"
        elif "email" in low:
            fmt = "email"
        elif low in ("url", "uri", "link", "website"):
            fmt = "uri"
    hour, minute = rng.randint(0, 23), rng.randint(0, 59)
    if fmt == "date":
        value = f"{year:04d}-{month:02d}-{day:02d}"
    elif fmt == "date-time":
        value = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00Z"
    elif fmt == "time":
        value = f"{hour:02d}:{minute:02d}:00"
    elif fmt in ("email", "idn-email"):
        value = f"user{rng.randint(1, 999)}@example.com"
    elif fmt in ("uri", "url", "iri"):
        value = f"https://example.com/{rng.choice(ctx.keywords or ['page'])}"
    elif fmt == "uuid":
        bits = [rng.getrandbits(n) for n in (32, 16, 12, 12, 48)]
        value = f"{bits[0]:08x}-{bits[1]:04x}-4{bits[2]:03x}-8{bits[3]:03x}-{bits[4]:012x}"
    elif fmt == "ipv4":
        value = f"192.0.2.{rng.randint(1, 254)}"
    elif low in ("unit", "units"):
        value = "celsius"
    elif low in ("currency",):
        value = "EUR"
    elif low in ("lang", "language", "locale"):
        value = "en"
    elif any(low == k or low.endswith("_" + k) for k in _PROPER_KEYS):
        value = ctx.next_proper(low) or rng.choice(_FALLBACK_PROPER)
    elif low in ("expression", "formula"):
        match = _EXPR_RE.search(ctx.question)
        value = match.group(0).strip() if match else _short(ctx.question, 100) or "1 + 1"
    elif any(low == k or low.endswith("_" + k) for k in _TEXT_KEYS):
        value = _short(ctx.question, 100) or " ".join(ctx.keywords[:3]) or "example"
    else:
        kws = ctx.keywords or ["sample", "example", "value"]
        value = rng.choice(kws)
    min_len = schema.get("minLength")
    max_len = schema.get("maxLength")
    if isinstance(min_len, int) and len(value) < min_len:
        value = value + "x" * (min_len - len(value))
    if isinstance(max_len, int) and len(value) > max_len:
        value = value[:max_len]
    return value


def _bounds(schema: dict[str, Any], integer: bool) -> tuple[float, float]:
    step = 1 if integer else 0.01
    lo: float | None = schema.get("minimum")
    hi: float | None = schema.get("maximum")
    lo = lo if isinstance(lo, (int, float)) else None
    hi = hi if isinstance(hi, (int, float)) else None
    if isinstance(schema.get("exclusiveMinimum"), (int, float)):
        lo = schema["exclusiveMinimum"] + step
    if isinstance(schema.get("exclusiveMaximum"), (int, float)):
        hi = schema["exclusiveMaximum"] - step
    if lo is None and hi is None:
        lo, hi = 1, 100
    elif lo is None and hi is not None:
        lo = hi - 100
    elif hi is None and lo is not None:
        hi = lo + 100
    assert lo is not None and hi is not None
    return float(lo), float(hi)


def _number_value(schema: dict[str, Any], ctx: _Context, key: str, integer: bool) -> float | int:
    lo, hi = _bounds(schema, integer)
    if integer:
        ilo, ihi = int(-(-lo // 1)), int(hi // 1)
        for n in ctx.numbers:
            if n == int(n) and ilo <= n <= ihi and key:
                return int(n)
        return ctx.rng.randint(ilo, max(ilo, ihi))
    for n in ctx.numbers:
        if lo <= n <= hi and key:
            return n
    value = round(ctx.rng.uniform(lo, hi), 2)
    return min(max(value, lo), hi)


def instance(
    schema: Any,
    root: dict[str, Any],
    ctx: _Context,
    key: str = "",
    depth: int = 0,
    required_only: bool = False,
) -> Any:
    """A value valid against ``schema`` (the subset of JSON Schema that pydantic emits)."""
    if not isinstance(schema, dict):
        return "example" if schema is not False else None
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return ctx.rng.choice(schema["enum"])
    for combo in ("anyOf", "oneOf"):
        options = schema.get(combo)
        if isinstance(options, list) and options:
            resolved = [_resolve(o, root) if isinstance(o, dict) else o for o in options]
            non_null = [
                o for o in resolved if not (isinstance(o, dict) and o.get("type") == "null")
            ]
            if depth > 6 and len(non_null) < len(resolved):
                return None  # cut recursive structures through their nullable branch
            chosen = non_null[0] if non_null else resolved[0]
            return instance(chosen, root, ctx, key, depth + 1, required_only)
    if isinstance(schema.get("allOf"), list):
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = _resolve(part, root) if isinstance(part, dict) else {}
            props = {**merged.get("properties", {}), **part.get("properties", {})}
            req = list(merged.get("required", [])) + list(part.get("required", []))
            merged = {**merged, **part, "properties": props, "required": req}
        if not merged["properties"]:
            merged.pop("properties")
        return instance(merged, root, ctx, key, depth + 1, required_only)
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if kinds else "null"
    if kind is None:
        if "properties" in schema:
            kind = "object"
        elif "items" in schema or "prefixItems" in schema:
            kind = "array"
        else:
            kind = "string"
    if kind == "object":
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        required = schema.get("required") or []
        names = [p for p in props if p in required] if required_only and required else list(props)
        if depth > 8:
            names = [p for p in props if p in required]
        return {name: instance(props[name], root, ctx, name, depth + 1) for name in names}
    if kind == "array":
        return _array(schema, root, ctx, key, depth)
    if kind == "string":
        return _string_value(schema, ctx, key)
    if kind == "integer":
        return _number_value(schema, ctx, key, integer=True)
    if kind == "number":
        return _number_value(schema, ctx, key, integer=False)
    if kind == "boolean":
        return ctx.rng.random() < 0.5
    return None


def _array(
    schema: dict[str, Any], root: dict[str, Any], ctx: _Context, key: str, depth: int
) -> Any:
    lo = schema.get("minItems", 0)
    hi = schema.get("maxItems")
    count = max(lo, 2 if depth <= 6 else 0)
    if isinstance(hi, int):
        count = min(count, hi)
    prefix = schema.get("prefixItems")
    singular = key[:-1] if key.endswith("s") else key
    values: list[Any] = []
    if isinstance(prefix, list):
        values = [instance(p, root, ctx, singular, depth + 1) for p in prefix]
        count = max(count, len(values))
    items = schema.get("items", {})
    item_schema = _resolve(items, root) if isinstance(items, dict) else {}
    enum = item_schema.get("enum") if isinstance(item_schema, dict) else None
    while len(values) < count:
        if isinstance(enum, list) and enum and schema.get("uniqueItems"):
            if len(values) >= len(enum):
                break
            values.append(enum[len(values)])
            continue
        value = instance(items, root, ctx, singular, depth + 1)
        if schema.get("uniqueItems") and value in values:
            if isinstance(value, str):
                value = f"{value} {len(values) + 1}"
            elif isinstance(value, int) and not isinstance(value, bool):
                value = value + len(values)
            else:
                break
        values.append(value)
    return values


# --------------------------------------------------------------------------------------------
# tools


def _tool_vocabulary(tool: dict[str, Any]) -> tuple[str, set[str]]:
    function = tool.get("function") or {}
    name = str(function.get("name", ""))
    parts = re.split(r"[_\-\s.]+|(?<=[a-z])(?=[A-Z])", name)
    words = {p.lower() for p in parts if len(p) >= 3 and p.lower() not in STOPWORDS}
    words.update(k.lower() for k in _keywords(str(function.get("description") or "")))
    return name.lower(), words


def _mentioned_tools(tools: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Tools whose name, or a word of whose name/description, the text mentions (best first)."""
    low = text.lower()
    words = {k.lower() for k in _keywords(text)}
    scored: list[tuple[int, int, dict[str, Any]]] = []
    for i, tool in enumerate(tools):
        name, vocab = _tool_vocabulary(tool)
        score = (10 if name and name in low else 0) + len(vocab & words)
        if score:
            scored.append((-score, i, tool))
    return [t for _, _, t in sorted(scored, key=lambda s: (s[0], s[1]))]


def _call_id(rng: random.Random) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(rng.choice(alphabet) for _ in range(9))


def _arguments(tool: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    params = (tool.get("function") or {}).get("parameters") or {}
    value = instance(params, params, ctx, "", 0, required_only=True)
    return value if isinstance(value, dict) else {"input": value}


def _proper_params(tool: dict[str, Any]) -> list[str]:
    params = (tool.get("function") or {}).get("parameters") or {}
    props = params.get("properties") or {}
    required = params.get("required") or list(props)
    out = []
    for name in required:
        spec = _resolve(props.get(name) or {}, params)
        low = str(name).lower()
        if (
            spec.get("type") == "string"
            and "enum" not in spec
            and any(low == k or low.endswith("_" + k) for k in _PROPER_KEYS)
        ):
            out.append(str(name))
    return out


def _tool_calls(
    body: dict[str, Any], ctx: _Context, forced: str | None
) -> list[dict[str, Any]] | None:
    """The tool calls to make for this request, or None for a prose answer."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    if not tools:
        return None
    choice = body.get("tool_choice", "auto")
    messages = body["messages"]
    if messages[-1].get("role") == "tool":
        return None  # answer with the tool results instead of looping
    if choice == "none":
        return None
    mentioned = _mentioned_tools(tools, ctx.question)
    if forced is not None:
        chosen = [t for t in tools if (t.get("function") or {}).get("name") == forced][:1]
    elif choice in ("any", "required"):
        chosen = mentioned or tools[:1]
    else:
        chosen = mentioned
    if not chosen:
        return None
    parallel = body.get("parallel_tool_calls", True) is not False
    chosen = chosen[:3] if parallel else chosen[:1]
    plans: list[dict[str, Any]] = []
    for tool in chosen:
        proper = _proper_params(tool)
        if parallel and len(chosen) == 1 and len(proper) == 1 and len(ctx.proper) > 1:
            for _ in ctx.proper[:3]:
                plans.append(tool)  # one call per named entity ("Paris and London")
        else:
            plans.append(tool)
    calls = []
    for index, tool in enumerate(plans):
        name = str((tool.get("function") or {}).get("name"))
        args = json.dumps(_arguments(tool, ctx), ensure_ascii=False)
        calls.append(
            {
                "id": _call_id(ctx.rng),
                "type": "function",
                "function": {"name": name, "arguments": args},
                "index": index,
            }
        )
    return calls


# --------------------------------------------------------------------------------------------
# entry point


def _cut(text: str, body: dict[str, Any]) -> tuple[list[str], str]:
    finish = "stop"
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str)]
    cut_at = min((text.find(s) for s in stops if s and s in text), default=-1)
    if cut_at >= 0:
        text = text[:cut_at]
    tokens = tokenize(text)
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and len(tokens) > max_tokens:
        tokens = tokens[:max_tokens]
        finish = "length"
    return tokens, finish


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Prompt size: tokens over all message contents."""
    return sum(count_tokens(content_text(m.get("content"))) for m in messages)


def generate(body: dict[str, Any]) -> Completion:
    """Answer a validated chat request deterministically."""
    material = seed_material(body)
    n = body.get("n") or 1
    choice_opt = body.get("tool_choice")
    forced = None
    if isinstance(choice_opt, dict):
        forced = str((choice_opt.get("function") or {}).get("name"))
    fmt = body.get("response_format") or {}
    fmt_type = fmt.get("type", "text") if isinstance(fmt, dict) else "text"
    messages: list[dict[str, Any]] = body["messages"]
    last = messages[-1]
    prefix = ""
    if last.get("role") == "assistant" and last.get("prefix"):
        prefix = content_text(last.get("content"))
    choices: list[Choice] = []
    for index in range(n):
        ctx = _context(body, material, index)
        calls = _tool_calls(body, ctx, forced)
        if calls:
            used = sum(
                count_tokens(c["function"]["name"] + " " + c["function"]["arguments"])
                for c in calls
            )
            choices.append(Choice("", [], "tool_calls", calls, used))
            continue
        if last.get("role") == "tool":
            text = _tool_followup(body, ctx)
        elif fmt_type == "json_object":
            text = json.dumps(_json_object(ctx), ensure_ascii=False)
        elif fmt_type == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema") or {}
            text = json.dumps(instance(schema, schema, ctx), ensure_ascii=False)
        else:
            text = _prose(ctx, bool(_CODE_RE.search(ctx.question)))
            min_tokens = body.get("min_tokens")
            if isinstance(min_tokens, int) and min_tokens > 0:
                text = _pad(text, ctx, min_tokens - count_tokens(prefix))
        if prefix:
            text = prefix + ("" if prefix[-1:].isspace() else " ") + text
        tokens, finish = _cut(text, body)
        choices.append(Choice("".join(tokens), tokens, finish, None, len(tokens)))
    return Completion(choices, prompt_tokens(messages))
