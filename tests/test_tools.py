"""Python functions as Mistral tools (mistral_magic.tools)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import functools
import json
import threading
import typing
from typing import Annotated, Any, Literal, Optional, Union

import pytest
import typing_extensions
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from mistral_magic.tools import (
    ToolError,
    ToolRegistry,
    ToolResult,
    function_to_tool,
    mistral_tool,
    tool_message,
)


def params(fn: Any) -> dict[str, Any]:
    return function_to_tool(fn)["function"]["parameters"]  # type: ignore[no-any-return]


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    """A postal address."""

    city: str
    zip: str | None = None


class Options(typing.TypedDict, total=False):
    verbose: bool
    depth: int


class Strict(typing_extensions.TypedDict):
    name: str
    size: typing_extensions.NotRequired[int]


@dataclasses.dataclass
class Point:
    x: int
    y: int


# -- schemas ----------------------------------------------------------------------------------


def test_basic_spec_shape() -> None:
    def get_weather(city: str, days: int = 1) -> str:
        """Get the weather for a city."""
        return city

    spec = function_to_tool(get_weather)
    assert spec == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer", "default": 1},
                },
                "required": ["city"],
            },
        },
    }
    json.dumps(spec)


def test_scalar_and_container_types() -> None:
    def f(
        s: str,
        i: int,
        x: float,
        b: bool,
        li: list[int],
        d: dict,  # type: ignore[type-arg]
        ds: dict[str, float],
        anything,  # type: ignore[no-untyped-def]
    ) -> None:
        pass

    p = params(f)["properties"]
    assert p["s"] == {"type": "string"}
    assert p["i"] == {"type": "integer"}
    assert p["x"] == {"type": "number"}
    assert p["b"] == {"type": "boolean"}
    assert p["li"] == {"type": "array", "items": {"type": "integer"}}
    assert p["d"]["type"] == "object"
    assert p["ds"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert p["anything"] == {}
    assert params(f)["required"] == ["s", "i", "x", "b", "li", "d", "ds", "anything"]


def test_optional_union_literal_enum() -> None:
    def f(
        a: Optional[int] = None,  # noqa: UP045 - the old spelling on purpose
        b: int | None = None,
        c: Union[int, str] = 0,  # noqa: UP007
        unit: Literal["c", "f"] = "c",
        color: Color = Color.RED,
    ) -> None:
        pass

    p = params(f)["properties"]
    assert p["a"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}
    assert p["b"] == p["a"]
    assert p["c"] == {"anyOf": [{"type": "integer"}, {"type": "string"}], "default": 0}
    assert p["unit"] == {"enum": ["c", "f"], "type": "string", "default": "c"}
    assert p["color"] == {"enum": ["red", "blue"], "type": "string", "default": "red"}
    assert "required" not in params(f)


def test_pydantic_model_parameter_is_inlined_without_titles() -> None:
    def ship(to: Address, items: list[Address] | None = None) -> None:
        pass

    p = params(ship)
    text = json.dumps(p)
    assert "$ref" not in text and "$defs" not in text and '"title"' not in text
    assert p["properties"]["to"] == {
        "description": "A postal address.",
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "zip": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        "required": ["city"],
    }
    assert p["properties"]["items"]["anyOf"][0]["items"] == p["properties"]["to"]


class Book(BaseModel):
    title: str


class Node(BaseModel):
    value: int
    children: list[Node] = []


class Opaque:
    pass


class Thing:
    def __repr__(self) -> str:
        return "<Thing 7>"


def test_a_property_named_title_is_kept() -> None:
    def add(book: Book, title: str) -> None:
        pass

    p = params(add)
    assert p["properties"]["title"] == {"type": "string"}
    assert p["properties"]["book"]["properties"] == {"title": {"type": "string"}}


def test_recursive_model_keeps_its_definitions() -> None:
    def walk(tree: Node) -> None:
        pass

    p = params(walk)
    assert p["properties"]["tree"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert "Node" in p["$defs"]


def test_typeddicts() -> None:
    def f(opts: Options, strict: Strict | None = None) -> None:
        pass

    p = params(f)["properties"]
    assert p["opts"] == {
        "type": "object",
        "properties": {"verbose": {"type": "boolean"}, "depth": {"type": "integer"}},
    }
    strict = p["strict"]["anyOf"][0]
    assert strict["required"] == ["name"]
    assert set(strict["properties"]) == {"name", "size"}


def test_annotated_field_description_wins_over_docstring() -> None:
    def f(n: Annotated[int, Field(description="How many.", ge=1)]) -> None:
        """Do it.

        Args:
            n: ignored because the annotation says it.
        """

    assert params(f)["properties"]["n"] == {
        "type": "integer",
        "description": "How many.",
        "minimum": 1,
    }


def test_google_docstring() -> None:
    def f(city: str, days: int = 1, *, unit: str = "c") -> None:
        """Get the weather.

        A second paragraph that is not part of the description.

        Args:
            city: The city,
                in full.
            days (int): How many days.
            unit (str, optional): c or f.

        Returns:
            Something: not a parameter.
        """

    spec = function_to_tool(f)["function"]
    assert spec["description"] == "Get the weather."
    props = spec["parameters"]["properties"]
    assert props["city"]["description"] == "The city, in full."
    assert props["days"]["description"] == "How many days."
    assert props["unit"]["description"] == "c or f."


def test_numpy_docstring() -> None:
    def f(city: str, days: int = 1) -> None:
        """Get the weather
        for a city.

        Parameters
        ----------
        city : str
            The city
            name.
        days : int, optional
            How many days.

        Returns
        -------
        str
            The forecast.
        """

    spec = function_to_tool(f)["function"]
    assert spec["description"] == "Get the weather for a city."
    props = spec["parameters"]["properties"]
    assert props["city"]["description"] == "The city name."
    assert props["days"]["description"] == "How many days."
    assert "str" not in props  # the Returns section is not parameters


def test_sphinx_docstring() -> None:
    def f(city: str, days: int = 1) -> None:
        """Get the weather.
        :param city: The city
            name.
        :param int days: How many days.
        :returns: the forecast
        """

    spec = function_to_tool(f)["function"]
    assert spec["description"] == "Get the weather."
    props = spec["parameters"]["properties"]
    assert props["city"]["description"] == "The city name."
    assert props["days"]["description"] == "How many days."


def test_no_docstring_gives_empty_description() -> None:
    def f() -> None:
        pass

    assert function_to_tool(f)["function"] == {
        "name": "f",
        "description": "",
        "parameters": {"type": "object", "properties": {}},
    }


def test_star_args_are_rejected() -> None:
    def f(*args: int) -> None:
        pass

    def g(a: int, **kwargs: int) -> None:
        pass

    with pytest.raises(ToolError, match=r"\*args"):
        function_to_tool(f)
    with pytest.raises(ToolError, match=r"\*\*kwargs"):
        function_to_tool(g)


def test_unsupported_type_is_a_tool_error() -> None:
    def f(x: Opaque) -> None:
        pass

    with pytest.raises(ToolError, match="parameter x: type Opaque cannot be described"):
        function_to_tool(f)


def test_unresolvable_hint_is_a_tool_error() -> None:
    def f(x: DoesNotExist) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    def g(x: int) -> DoesNotExist:  # type: ignore[name-defined]  # noqa: F821
        return x

    with pytest.raises(ToolError, match="tool f: cannot resolve its type hints"):
        function_to_tool(f)
    assert params(g)["properties"] == {"x": {"type": "integer"}}  # the return type is not needed


def test_names_and_the_decorator() -> None:
    with pytest.raises(ToolError, match="invalid tool name '<lambda>'"):
        function_to_tool(lambda: None)
    named = mistral_tool(name="noop")(lambda: None)
    assert function_to_tool(named)["function"]["name"] == "noop"

    @mistral_tool(description="Shout it.")
    def shout(text: str) -> str:
        """Ignored docstring."""
        return text.upper()

    assert function_to_tool(shout)["function"]["description"] == "Shout it."

    @mistral_tool
    def plain(text: str) -> str:
        """Plain."""
        return text

    assert function_to_tool(plain)["function"]["name"] == "plain"
    assert function_to_tool(shout, name="yell")["function"]["name"] == "yell"
    with pytest.raises(ToolError):
        mistral_tool(name="has space")


def test_methods_partials_and_callable_objects() -> None:
    class Shop:
        def price(self, item: str, qty: int = 1) -> float:
            """Price of an item."""
            return 2.0 * qty

    class Counter:
        def __call__(self, step: int) -> int:
            """Count."""
            return step

    def scale(x: float, factor: float) -> float:
        """Scale x."""
        return x * factor

    assert params(Shop().price)["required"] == ["item"]
    assert function_to_tool(Counter())["function"]["name"] == "Counter"
    assert params(Counter())["properties"] == {"step": {"type": "integer"}}
    double = functools.partial(scale, factor=2.0)
    spec = function_to_tool(double)["function"]
    assert spec["name"] == "scale" and spec["description"] == "Scale x."
    reg = ToolRegistry([Shop().price, double])
    assert reg.run("price", {"item": "a", "qty": 3}).content == "6.0"
    assert reg.run("scale", {"x": 2}).content == "4.0"


def test_tool_dict_passes_through_validated() -> None:
    spec = {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look it up.",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            "strict": True,
        },
    }
    out = function_to_tool(spec)
    assert out == spec and out is not spec
    out["function"]["name"] = "changed"
    assert spec["function"]["name"] == "lookup"
    minimal = function_to_tool({"type": "function", "function": {"name": "m"}})
    assert minimal["function"]["parameters"] == {"type": "object", "properties": {}}
    assert minimal["function"]["description"] == ""


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "function"},
        {"type": "retrieval", "function": {"name": "x"}},
        {"type": "function", "function": {"name": "bad name"}},
        {"type": "function", "function": {"name": "x" * 65}},
        {"type": "function", "function": {"name": "x", "parameters": "nope"}},
        {"type": "function", "function": {"name": "x", "description": 3}},
        {"type": "function", "function": {"name": "x", "parameters": {"d": object()}}},
    ],
)
def test_invalid_tool_dicts(bad: dict[str, Any]) -> None:
    with pytest.raises(ToolError):
        function_to_tool(bad)


# -- the registry -----------------------------------------------------------------------------


def add(a: int, b: int = 2) -> int:
    """Add two numbers."""
    return a + b


def fail(message: str) -> str:
    """Always fails."""
    raise ValueError(message)


def test_registry_specs_and_names() -> None:
    reg = ToolRegistry([add, {"type": "function", "function": {"name": "remote"}}])
    assert reg.names == ["add", "remote"]
    assert [s["function"]["name"] for s in reg.specs] == ["add", "remote"]
    assert "add" in reg and "nope" not in reg and len(reg) == 2
    assert list(reg) == ["add", "remote"]
    reg.specs[0]["function"]["name"] = "mutated"
    assert reg.names == ["add", "remote"] and reg.specs[0]["function"]["name"] == "add"
    assert "add" in repr(reg)
    assert ToolRegistry().specs == []


def test_registry_rejects_bad_tools() -> None:
    with pytest.raises(ToolError, match="not int"):
        ToolRegistry([add, 3])  # type: ignore[list-item]
    with pytest.raises(ToolError, match="two tools are named add"):
        ToolRegistry([add, add])
    with pytest.raises(ToolError, match="invalid tool name"):
        ToolRegistry([{"type": "function", "function": {"name": "no/slash"}}])
    assert issubclass(ToolError, ValueError)


def test_run_converts_arguments_and_serialises() -> None:
    reg = ToolRegistry([add])
    r = reg.run("add", '{"a": "3", "b": 4}', call_id="abc123XYZ")
    assert r == ToolResult("add", "abc123XYZ", {"a": "3", "b": 4}, "7", True, None, r.duration_s)
    assert r.value == 7 and r.duration_s >= 0
    assert reg.run("add", {"a": 1}).content == "3"
    assert reg.run("add", json.dumps({"a": 1.0})).content == "3"


def test_run_models_enums_and_lists() -> None:
    seen: dict[str, Any] = {}

    def f(to: Address, color: Color, tags: list[int], when: datetime.date) -> dict[str, Any]:
        seen.update(to=to, color=color, tags=tags, when=when)
        return {"ok": True}

    reg = ToolRegistry([f])
    r = reg.run(
        "f", {"to": {"city": "Paris"}, "color": "blue", "tags": ["1", 2], "when": "2025-01-02"}
    )
    assert r.ok, r.error
    assert seen == {
        "to": Address(city="Paris"),
        "color": Color.BLUE,
        "tags": [1, 2],
        "when": datetime.date(2025, 1, 2),
    }


def test_typed_dict_arguments_pass_through() -> None:
    def f(opts: Options) -> Any:
        return opts

    assert ToolRegistry([f]).run("f", {"opts": {"depth": 2}}).content == '{"depth": 2}'


def test_positional_only_and_keyword_only() -> None:
    def f(a: int, /, b: int, *, c: int = 0) -> list[int]:
        return [a, b, c]

    assert ToolRegistry([f]).run("f", {"a": 1, "b": 2, "c": 3}).content == "[1, 2, 3]"


@pytest.mark.parametrize(
    ("value", "content"),
    [
        ("plain text", "plain text"),
        ({"a": [1, 2]}, '{"a": [1, 2]}'),
        ([1, "é"], '[1, "é"]'),
        (3, "3"),
        (2.5, "2.5"),
        (True, "true"),
        (None, "null"),
        (Address(city="Oslo"), '{"city": "Oslo", "zip": null}'),
        (Point(1, 2), '{"x": 1, "y": 2}'),
        (datetime.date(2024, 5, 6), '"2024-05-06"'),
        (Color.RED, "red"),
        ((1, 2), "[1, 2]"),
    ],
)
def test_results_are_serialised(value: object, content: str) -> None:
    def f() -> object:
        return value

    r = ToolRegistry([f]).run("f", "")
    assert r.ok and r.content == content


def test_unserialisable_result_uses_repr_with_a_note() -> None:
    def f() -> Thing:
        return Thing()

    r = ToolRegistry([f]).run("f", "{}")
    assert r.ok
    assert r.content.startswith("<Thing 7>\n") and "not JSON-serializable" in r.content


def test_exception_becomes_an_error_result() -> None:
    r = ToolRegistry([fail]).run("fail", {"message": "boom"}, call_id="c1")
    assert not r.ok
    assert json.loads(r.content) == {"error": "ValueError: boom"}
    assert r.error == "ValueError: boom"
    assert r.call_id == "c1" and r.arguments == {"message": "boom"}


def test_keyboard_interrupt_is_not_swallowed() -> None:
    def stop() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ToolRegistry([stop]).run("stop")


@pytest.mark.parametrize(
    ("name", "arguments", "fragment"),
    [
        ("add", "{bad json", "invalid JSON arguments"),
        ("add", "[1, 2]", "arguments must be a JSON object, not list"),
        ("add", '"text"', "not str"),
        ("nope", "{}", "unknown tool 'nope' (tools: add, remote)"),
        ("remote", "{}", "tool 'remote' has no Python implementation"),
        ("add", "{}", "missing required argument 'a'"),
        ("add", '{"a": 1, "z": 2}', "unexpected argument(s): z"),
        ("add", '{"a": "x"}', "invalid argument a: Input should be a valid integer"),
    ],
)
def test_bad_calls_become_error_results(name: str, arguments: str, fragment: str) -> None:
    reg = ToolRegistry([add, {"type": "function", "function": {"name": "remote"}}])
    r = reg.run(name, arguments, call_id="id1")
    assert not r.ok and r.call_id == "id1" and r.name == name
    assert fragment in (r.error or "")
    assert json.loads(r.content) == {"error": r.error}


@given(
    st.one_of(
        st.text(max_size=40),
        st.dictionaries(
            st.sampled_from(["a", "b", "c", "message"]),
            st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers())),
        ).map(json.dumps),
    ),
    st.sampled_from(["add", "fail", "remote", "unknown"]),
)
def test_run_never_raises(arguments: str, name: str) -> None:
    reg = ToolRegistry([add, fail, {"type": "function", "function": {"name": "remote"}}])
    r = reg.run(name, arguments)
    assert isinstance(r, ToolResult) and isinstance(r.content, str)
    assert r.ok == (r.error is None)


def test_tool_message() -> None:
    r = ToolRegistry([add]).run("add", {"a": 1}, call_id="D681PevKs")
    assert tool_message(r) == {
        "role": "tool",
        "content": "3",
        "tool_call_id": "D681PevKs",
        "name": "add",
    }


# -- async ------------------------------------------------------------------------------------


async def slow_double(x: int) -> int:
    """Double x, slowly."""
    await asyncio.sleep(0)
    return 2 * x


async def async_fail() -> None:
    raise RuntimeError("async boom")


def test_run_async_awaits_coroutines_and_threads_sync_functions() -> None:
    main_thread = threading.get_ident()
    threads: list[int] = []

    def where() -> str:
        threads.append(threading.get_ident())
        return "here"

    reg = ToolRegistry([slow_double, where, async_fail])
    assert function_to_tool(slow_double)["function"]["description"] == "Double x, slowly."

    async def main() -> list[ToolResult]:
        return [
            await reg.run_async("slow_double", '{"x": 4}', call_id="a"),
            await reg.run_async("where", None),
            await reg.run_async("async_fail"),
            await reg.run_async("nope"),
        ]

    doubled, here, failed, unknown = asyncio.run(main())
    assert doubled.content == "8" and doubled.call_id == "a"
    assert here.content == "here" and threads and threads[0] != main_thread
    assert json.loads(failed.content) == {"error": "RuntimeError: async boom"}
    assert not unknown.ok


def test_sync_run_of_a_coroutine_function() -> None:
    reg = ToolRegistry([slow_double])
    assert reg.run("slow_double", {"x": 2}).content == "4"

    async def inside_a_running_loop() -> ToolResult:
        return reg.run("slow_double", {"x": 5})  # as in a kernel: a loop is running

    assert asyncio.run(inside_a_running_loop()).content == "10"
