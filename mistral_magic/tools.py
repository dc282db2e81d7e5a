"""Python functions as Mistral tools: describe them, run the model's calls, report the results.

:func:`function_to_tool` turns a function into a tool spec from its signature, type hints and
docstring (Google ``Args:``, NumPy ``Parameters`` or Sphinx ``:param x:``). :class:`ToolRegistry`
holds the tools of a turn and runs a call: the JSON arguments are parsed and converted to the
annotated types, the function is called, and its return value (or its exception) becomes the
content sent back to the model, so a failing tool never ends the conversation.

Plain dicts are used for tool specs and tool messages, shaped as the API expects::

    {"type": "function", "function": {"name": ..., "description": ..., "parameters": {...}}}
    {"role": "tool", "content": ..., "tool_call_id": ..., "name": ...}
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import enum
import functools
import inspect
import json
import re
import sys
import time
import types
import typing
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union, cast

import pydantic
import pydantic_core

__all__ = [
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "ToolSpec",
    "function_to_tool",
    "mistral_tool",
    "parse_docstring",
    "serialize_result",
    "tool_message",
]

ToolSpec = dict[str, Any]
"""A tool as sent in the request's ``tools`` list."""

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_TOOL_ATTR = "__mistral_tool__"
_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}

F = TypeVar("F", bound=Callable[..., Any])


class ToolError(ValueError):
    """A function or dict that cannot be used as a tool (the message says why)."""


# -- describing a function ------------------------------------------------------------------


@typing.overload
def mistral_tool(fn: F, /) -> F: ...
@typing.overload
def mistral_tool(
    *, name: str | None = None, description: str | None = None
) -> Callable[[F], F]: ...
def mistral_tool(
    fn: F | None = None, /, *, name: str | None = None, description: str | None = None
) -> F | Callable[[F], F]:
    """Decorator that sets the tool name and/or description used for ``fn``.

    Usable bare (``@mistral_tool``) or with arguments (``@mistral_tool(name="lookup")``); the
    function itself is returned unchanged apart from one attribute.
    """

    if name is not None and not NAME_PATTERN.match(name):
        raise ToolError(f"invalid tool name {name!r}: use 1-64 letters, digits, '_' or '-'")

    def mark(f: F) -> F:
        setattr(f, _TOOL_ATTR, {"name": name, "description": description})
        return f

    return mark(fn) if fn is not None else mark


_GOOGLE_HEADER = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Other Parameters):\s*$"
)
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?::.*)?$")
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?\*{0,2}(\w+)\s*:\s*(.*)$")
_SECTION_START = re.compile(r"^(?:[A-Z][A-Za-z ]*:\s*$|:\w+)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _is_dashes(line: str) -> bool:
    s = line.strip()
    return len(s) >= 3 and set(s) == {"-"}


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Return (description, {parameter: description}) from a docstring.

    The description is the first paragraph, lines joined with spaces; parameter descriptions
    come from a Google ``Args:`` section, a NumPy ``Parameters`` section or ``:param x:`` fields.
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    summary: list[str] = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if not line.strip() or _SECTION_START.match(line.strip()) or _is_dashes(nxt):
            break
        summary.append(line.strip())
    params: dict[str, str] = {}

    def add(name: str, text: list[str]) -> None:
        desc = " ".join(t.strip() for t in text if t.strip())
        if desc and name not in params:
            params[name] = desc

    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if _GOOGLE_HEADER.match(stripped):
            base = _indent(line)
            i += 1
            entry_indent: int | None = None
            current: tuple[str, list[str]] | None = None
            while i < len(lines):
                row = lines[i]
                if row.strip():
                    ind = _indent(row)
                    if ind <= base:
                        break
                    if entry_indent is None:
                        entry_indent = ind
                    m = _GOOGLE_ENTRY.match(row.strip())
                    if ind <= entry_indent and m:
                        if current:
                            add(*current)
                        current = (m.group(1), [m.group(2)])
                    elif current:
                        current[1].append(row)
                i += 1
            if current:
                add(*current)
            continue
        if stripped in ("Parameters", "Other Parameters", "Arguments") and _is_dashes(nxt):
            base = _indent(line)
            i += 2
            current = None
            while i < len(lines):
                row = lines[i]
                after = lines[i + 1] if i + 1 < len(lines) else ""
                if row.strip() and _indent(row) <= base and _is_dashes(after):
                    break  # the next NumPy section
                if row.strip():
                    m = _NUMPY_ENTRY.match(row.strip())
                    if _indent(row) <= base and m:
                        if current:
                            add(*current)
                        current = (m.group(1), [])
                    elif current:
                        current[1].append(row)
                i += 1
            if current:
                add(*current)
            continue
        m = _SPHINX_PARAM.match(stripped)
        if m:
            base = _indent(line)
            text = [m.group(2)]
            i += 1
            while i < len(lines) and lines[i].strip() and _indent(lines[i]) > base:
                text.append(lines[i])
                i += 1
            add(m.group(1), text)
            continue
        i += 1
    return " ".join(summary), params


_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "propertyNames", "if", "then")
_SCHEMA_LIST = ("anyOf", "oneOf", "allOf", "prefixItems")


def _walk(schema: Any, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    """Apply ``fn`` to every sub-schema of ``schema`` (bottom-up), leaving values alone."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: _walk(v, fn) for k, v in value.items()}
        elif key in (*_SCHEMA_ONE, "else") and isinstance(value, dict):
            out[key] = _walk(value, fn)
        elif key in _SCHEMA_LIST and isinstance(value, list):
            out[key] = [_walk(v, fn) for v in value]
        else:
            out[key] = value
    return fn(out)


def _drop_title(schema: dict[str, Any]) -> dict[str, Any]:
    # pydantic titles ("Title": "X") repeat the names and only cost tokens.
    schema.pop("title", None)
    return schema


def _ref_name(ref: object) -> str | None:
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return ref[len("#/$defs/") :]
    return None


def _inline_refs(schema: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """Inline ``$ref``s to ``defs`` (simpler for the model); recursive ones stay as refs."""
    kept: set[str] = set()

    def resolve(node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [resolve(v, stack) for v in node]
        if not isinstance(node, dict):
            return node
        name = _ref_name(node.get("$ref"))
        if name is not None and name in defs:
            if name in stack:
                kept.add(name)
                return dict(node)
            rest = {k: v for k, v in node.items() if k != "$ref"}
            target = resolve(defs[name], (*stack, name))
            return {**target, **rest}
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("enum", "const", "default", "examples"):
                out[key] = value  # values, not schemas
            else:
                out[key] = resolve(value, stack)
        return out

    result = resolve(schema, ())
    # Definitions referenced from kept (recursive) definitions must stay available too.
    pending, seen = list(kept), set(kept)
    while pending:
        for sub in re.findall(r'"#/\$defs/([^"]+)"', json.dumps(defs[pending.pop()])):
            if sub not in seen and sub in defs:
                seen.add(sub)
                pending.append(sub)
    return result, seen


def _is_typeddict(tp: object) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def _type_schema(tp: Any, defs: dict[str, Any], where: str) -> dict[str, Any]:
    """JSON schema of one annotation; model definitions are collected into ``defs``."""
    try:
        schema = pydantic.TypeAdapter(tp).json_schema()
    except pydantic.PydanticSchemaGenerationError:
        name = getattr(tp, "__name__", repr(tp))
        raise ToolError(
            f"{where}: type {name} cannot be described as JSON (use str, int, float, bool, "
            "list, dict, Literal, Enum, a pydantic model or a TypedDict)"
        ) from None
    except pydantic.PydanticUserError:
        # typing.TypedDict before Python 3.12 is refused by pydantic: describe it by hand.
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if _is_typeddict(tp):
            hints = typing.get_type_hints(tp)
            out: dict[str, Any] = {
                "type": "object",
                "properties": {k: _type_schema(v, defs, where) for k, v in hints.items()},
            }
            required = [k for k in hints if k in tp.__required_keys__]
            if required:
                out["required"] = required
            return out
        if origin in (list, set, frozenset, tuple) and args:
            return {"type": "array", "items": _type_schema(args[0], defs, where)}
        if origin in (Union, types.UnionType):
            return {"anyOf": [_type_schema(a, defs, where) for a in args]}
        raise ToolError(f"{where}: pydantic cannot describe {tp!r}") from None
    for name, definition in schema.pop("$defs", {}).items():
        if name in defs and defs[name] != definition:
            raise ToolError(f"{where}: two different types are named {name}")
        defs[name] = definition
    return schema


def _target(fn: Callable[..., Any]) -> Any:
    """The object whose type hints describe ``fn``'s parameters."""
    if isinstance(fn, functools.partial):
        return _target(fn.func)
    if inspect.isroutine(fn) or inspect.isclass(fn):
        return fn
    return type(fn).__call__  # a callable instance


def _json_value(value: object) -> tuple[bool, Any]:
    try:
        plain = pydantic_core.to_jsonable_python(value)
        json.dumps(plain)
    except (pydantic_core.PydanticSerializationError, TypeError, ValueError):
        return False, None
    return True, plain


def _parameter_hints(fn: Callable[..., Any], sig: inspect.Signature, tool: str) -> dict[str, Any]:
    """Evaluated type hints of the parameters (the return annotation is not needed)."""
    annotations = {
        p.name: p.annotation for p in sig.parameters.values() if p.annotation is not p.empty
    }
    target = inspect.unwrap(_target(fn))
    globalns = getattr(target, "__globals__", None)
    if globalns is None:
        module = sys.modules.get(getattr(target, "__module__", "") or "")
        globalns = vars(module) if module is not None else {}
    holder = types.SimpleNamespace(__annotations__=annotations)
    try:
        return typing.get_type_hints(holder, globalns=globalns, include_extras=True)
    except Exception as exc:
        raise ToolError(f"tool {tool}: cannot resolve its type hints ({exc})") from None


@dataclass(frozen=True)
class _Param:
    name: str
    positional_only: bool
    required: bool
    adapter: pydantic.TypeAdapter[Any] | None  # None: no annotation, or pydantic cannot check it


def _describe(
    fn: Callable[..., Any], name: str | None, description: str | None
) -> tuple[ToolSpec, list[_Param]]:
    marks: Mapping[str, Any] = getattr(fn, _TOOL_ATTR, None) or {}
    base = fn.func if isinstance(fn, functools.partial) else fn
    tool_name = name or marks.get("name") or getattr(base, "__name__", None) or type(fn).__name__
    if not NAME_PATTERN.match(tool_name):
        raise ToolError(
            f"invalid tool name {tool_name!r}: use 1-64 letters, digits, '_' or '-' "
            "(name it with @mistral_tool(name=...))"
        )
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ToolError(f"tool {tool_name}: cannot read its signature ({exc})") from None
    hints = _parameter_hints(fn, sig, tool_name)
    summary, param_docs = parse_docstring(inspect.getdoc(base))
    text = description or marks.get("description") or summary
    defs: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    params: list[_Param] = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            star = "*" if p.kind is p.VAR_POSITIONAL else "**"
            raise ToolError(
                f"tool {tool_name}: {star}{p.name} is not supported "
                "(the model passes named arguments only; list each parameter)"
            )
        where = f"tool {tool_name}, parameter {p.name}"
        tp = hints.get(p.name, Any)
        prop = _type_schema(tp, defs, where)
        if p.name in param_docs and "description" not in prop:
            prop["description"] = param_docs[p.name]
        if p.default is not p.empty:
            ok, plain = _json_value(p.default)
            if ok:
                prop["default"] = plain
        else:
            required.append(p.name)
        properties[p.name] = prop
        adapter: pydantic.TypeAdapter[Any] | None = None
        if p.name in hints:
            try:
                adapter = pydantic.TypeAdapter(tp)
            except pydantic.PydanticUserError:
                adapter = None  # e.g. typing.TypedDict on Python < 3.12: passed through as is
        params.append(_Param(p.name, p.kind is p.POSITIONAL_ONLY, p.default is p.empty, adapter))
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    defs = {k: _walk(v, _drop_title) for k, v in defs.items()}
    parameters, kept = _inline_refs(_walk(parameters, _drop_title), defs)
    if kept:
        parameters["$defs"] = {k: defs[k] for k in sorted(kept)}
    spec: ToolSpec = {
        "type": "function",
        "function": {"name": tool_name, "description": text, "parameters": parameters},
    }
    return spec, params


def _validate_spec(spec: Mapping[str, Any]) -> ToolSpec:
    kind = spec.get("type", "function")
    fn = spec.get("function")
    if kind != "function" or not isinstance(fn, Mapping):
        raise ToolError(
            'a tool dict must look like {"type": "function", "function": {"name": ..., '
            '"description": ..., "parameters": {...}}}'
        )
    name = fn.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ToolError(f"invalid tool name {name!r}: use 1-64 letters, digits, '_' or '-'")
    parameters = fn.get("parameters", _EMPTY_PARAMETERS)
    if not isinstance(parameters, Mapping):
        raise ToolError(f"tool {name}: 'parameters' must be a JSON schema object")
    description = fn.get("description", "")
    if not isinstance(description, str):
        raise ToolError(f"tool {name}: 'description' must be a string")
    out = {**fn, "name": name, "description": description, "parameters": parameters}
    try:
        function = json.loads(json.dumps(out))
    except (TypeError, ValueError) as exc:
        raise ToolError(f"tool {name}: the spec is not plain JSON ({exc})") from None
    return {"type": "function", "function": function}


def function_to_tool(
    fn: Callable[..., Any] | Mapping[str, Any],
    *,
    name: str | None = None,
    description: str | None = None,
) -> ToolSpec:
    """Describe ``fn`` as a tool spec; a tool-spec dict is validated and returned as a copy.

    Raises :class:`ToolError` for ``*args``/``**kwargs``, an invalid name, or a parameter type
    that cannot be expressed in JSON.
    """
    if isinstance(fn, Mapping):
        return _validate_spec(fn)
    if not callable(fn):
        raise ToolError(f"a tool must be a function or a tool dict, not {type(fn).__name__}")
    return _describe(fn, name, description)[0]


# -- running calls --------------------------------------------------------------------------


@dataclass
class ToolResult:
    """One tool call and its outcome; ``content`` is what goes back to the model."""

    name: str
    call_id: str
    arguments: dict[str, Any]
    content: str
    ok: bool
    error: str | None = None
    duration_s: float = 0.0
    value: Any = field(default=None, repr=False, compare=False)
    """The Python return value (None on error)."""


def tool_message(result: ToolResult) -> dict[str, Any]:
    """The ``tool`` message that carries ``result`` back to the model."""
    return {
        "role": "tool",
        "content": result.content,
        "tool_call_id": result.call_id,
        "name": result.name,
    }


def _error_content(message: str) -> str:
    return json.dumps({"error": message}, ensure_ascii=False)


def _exception_text(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def serialize_result(value: object) -> str:
    """A tool's return value as text: str as is, JSON when possible, else ``repr()`` with a note."""
    if isinstance(value, str):
        return value
    if isinstance(value, enum.Enum) and isinstance(value.value, str):
        return value.value
    ok, plain = _json_value(value)
    if ok:
        return json.dumps(plain, ensure_ascii=False)
    return f"{value!r}\n(note: a {type(value).__name__} is not JSON-serializable; this is its repr)"


@dataclass
class _Entry:
    spec: ToolSpec
    fn: Callable[..., Any] | None
    params: list[_Param]


@dataclass
class _Call:
    entry: _Entry
    fn: Callable[..., Any]
    name: str
    call_id: str
    arguments: dict[str, Any]
    args: list[Any]
    kwargs: dict[str, Any]


def _run_coroutine(awaitable: Awaitable[Any]) -> Any:
    """Wait for ``awaitable`` from sync code, even when this thread already runs an event loop."""

    async def wrapper() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wrapper())
    # The kernel's loop is running in this thread: give the coroutine a loop of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, wrapper()).result()


class ToolRegistry:
    """The tools of a turn: their specs for the request, and their implementations to run."""

    def __init__(self, tools: Iterable[Callable[..., Any] | Mapping[str, Any]] = ()) -> None:
        self._entries: dict[str, _Entry] = {}
        for tool in tools:
            self.add(tool)

    def add(self, tool: Callable[..., Any] | Mapping[str, Any], *, name: str | None = None) -> str:
        """Register a function or a tool dict; return its tool name."""
        if isinstance(tool, Mapping):
            entry = _Entry(_validate_spec(tool), None, [])
        elif callable(tool):
            spec, params = _describe(tool, name, None)
            entry = _Entry(spec, tool, params)
        else:
            raise ToolError(f"a tool must be a function or a tool dict, not {type(tool).__name__}")
        tool_name: str = entry.spec["function"]["name"]
        if tool_name in self._entries:
            raise ToolError(f"two tools are named {tool_name}")
        self._entries[tool_name] = entry
        return tool_name

    @property
    def specs(self) -> list[ToolSpec]:
        """The tool specs for the request's ``tools`` field (copies)."""
        return [copy.deepcopy(e.spec) for e in self._entries.values()]

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __repr__(self) -> str:
        return f"ToolRegistry({', '.join(self._entries)})"

    def _fail(self, name: str, call_id: str, arguments: dict[str, Any], message: str) -> ToolResult:
        return ToolResult(name, call_id, arguments, _error_content(message), False, message)

    def _prepare(
        self, name: str, arguments: str | Mapping[str, Any] | None, call_id: str
    ) -> _Call | ToolResult:
        raw: object = arguments
        if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
            raw = {}
        elif isinstance(arguments, str):
            try:
                raw = json.loads(arguments)
            except ValueError as exc:
                return self._fail(name, call_id, {}, f"invalid JSON arguments: {exc}")
        if not isinstance(raw, Mapping):
            return self._fail(
                name, call_id, {}, f"arguments must be a JSON object, not {type(raw).__name__}"
            )
        given = dict(raw)
        entry = self._entries.get(name)
        if entry is None:
            available = ", ".join(self._entries) or "none"
            return self._fail(name, call_id, given, f"unknown tool {name!r} (tools: {available})")
        if entry.fn is None:
            return self._fail(
                name, call_id, given, f"tool {name!r} has no Python implementation to run"
            )
        known = {p.name for p in entry.params}
        extra = [k for k in given if k not in known]
        if extra:
            return self._fail(name, call_id, given, f"unexpected argument(s): {', '.join(extra)}")
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for p in entry.params:
            if p.name not in given:
                if p.required:
                    return self._fail(name, call_id, given, f"missing required argument {p.name!r}")
                continue
            value = given[p.name]
            if p.adapter is not None:
                try:
                    value = p.adapter.validate_python(value)
                except pydantic.ValidationError as exc:
                    problems = "; ".join(
                        f"{'.'.join(str(x) for x in (p.name, *e['loc']))}: {e['msg']}"
                        for e in exc.errors()
                    )
                    return self._fail(name, call_id, given, f"invalid argument {problems}")
            if p.positional_only:
                args.append(value)
            else:
                kwargs[p.name] = value
        return _Call(entry, entry.fn, name, call_id, given, args, kwargs)

    @staticmethod
    def _done(call: _Call, value: object, started: float) -> ToolResult:
        duration = time.perf_counter() - started
        try:
            content = serialize_result(value)
        except Exception as exc:  # a broken __repr__, say
            message = f"could not serialise the result: {_exception_text(exc)}"
            return ToolResult(
                call.name,
                call.call_id,
                call.arguments,
                _error_content(message),
                False,
                message,
                duration,
            )
        return ToolResult(
            call.name, call.call_id, call.arguments, content, True, None, duration, value
        )

    @staticmethod
    def _raised(call: _Call, exc: Exception, started: float) -> ToolResult:
        message = _exception_text(exc)
        return ToolResult(
            call.name,
            call.call_id,
            call.arguments,
            _error_content(message),
            False,
            message,
            time.perf_counter() - started,
        )

    def run(
        self, name: str, arguments: str | Mapping[str, Any] | None = None, *, call_id: str = ""
    ) -> ToolResult:
        """Run one call. Never raises for a bad call or a failing tool: see ``ToolResult.ok``."""
        call = self._prepare(name, arguments, call_id)
        if isinstance(call, ToolResult):
            return call
        started = time.perf_counter()
        try:
            value = call.fn(*call.args, **call.kwargs)
            if inspect.isawaitable(value):
                value = _run_coroutine(value)
        except Exception as exc:
            return self._raised(call, exc, started)
        return self._done(call, value, started)

    async def run_async(
        self, name: str, arguments: str | Mapping[str, Any] | None = None, *, call_id: str = ""
    ) -> ToolResult:
        """Like :meth:`run`; awaits coroutine functions, runs sync ones in a worker thread."""
        call = self._prepare(name, arguments, call_id)
        if isinstance(call, ToolResult):
            return call
        started = time.perf_counter()
        fn = call.fn
        try:
            if inspect.iscoroutinefunction(_target(fn)) or inspect.iscoroutinefunction(fn):
                value = await cast(Awaitable[Any], fn(*call.args, **call.kwargs))
            else:
                value = await asyncio.to_thread(fn, *call.args, **call.kwargs)
                if inspect.isawaitable(value):
                    value = await value
        except Exception as exc:
            return self._raised(call, exc, started)
        return self._done(call, value, started)
