"""Brace-safe {name} interpolation (mistral_magic.prompt)."""

from __future__ import annotations

import json
import keyword
import string
import subprocess
import sys
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mistral_magic.prompt import PromptError, find_placeholders, interpolate


class Frame:
    shape = (3, 4)
    name = "sales"


NS: dict[str, object] = {
    "doc": "the document",
    "df": Frame(),
    "cfg": {"key": "value", "a}b": "brace key", "n": {"deep": [10, 20]}},
    "items": [1, 2, 9],
    "n": 42,
    "obj": SimpleNamespace(attr=SimpleNamespace(sub={"k": ["x", "y", "z"]})),
    "café": "unicode ok",
}


# -- placeholders ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Summarise {doc}", "Summarise the document"),
        ("{df.shape[0]} rows", "3 rows"),
        ("{df.shape}", "(3, 4)"),
        ('{cfg["key"]}', "value"),
        ("{cfg['key']}", "value"),
        ('{cfg["a}b"]}', "brace key"),
        ('{cfg["n"]["deep"][-1]}', "20"),
        ("{items[-1]}", "9"),
        ("{items[0]}{items[1]}", "12"),
        ("{obj.attr.sub['k'][2]}", "z"),
        ("n={n}.", "n=42."),
        ("{café}", "unicode ok"),
        ("{doc}{n}", "the document42"),
        ("{{{doc}}}", "{the document}"),
        ("", ""),
    ],
)
def test_placeholders_are_filled(text: str, expected: str) -> None:
    assert interpolate(text, NS) == expected


def test_values_are_inserted_with_str_untruncated() -> None:
    class Custom:
        def __str__(self) -> str:
            return "custom!"

        def __repr__(self) -> str:
            return "REPR"

    big = "x" * 200_000
    assert interpolate("{c} {big}", {"c": Custom(), "big": big}) == "custom! " + big


def test_a_value_is_not_interpolated_again() -> None:
    assert interpolate("{a}", {"a": "{b}", "b": "no"}) == "{b}"


@pytest.mark.parametrize(
    "text",
    [
        "def f(): return {x: 1 for x in y}",
        '{"a": 1, "b": [1, 2]}',
        '{"a": {"b": {"c": 1}}}',
        "x = {1, 2, 3}",
        "{}",
        "{ doc }",
        "{doc!r}",
        "{doc:>10}",
        "{doc()}",
        "{doc + n}",
        "{doc.upper()}",
        "{__import__('os').system('echo hi')}",
        "{items[n]}",
        "{items[1:2]}",
        "{None} {True} {lambda}",
        "{1}",
        "{0x10}",
        r"\frac{a}{b} + x^{2} + x^{n} + a_{i} + \sqrt{\frac{a}{b}}",
        r"\mathbf{v} \section*{doc} \begin{align} \end{align}",
        r"\left\{ doc \right\} and \{doc\}",
        "echo ${doc} ${HOME}",
        'print(f"Hello {doc} and {n!r}")',
        "rf'{doc}' F\"{doc}\" fr'{doc}'",
        'f"""\n{doc}\n"""',
        "function f() { return {a: 1}; }",
        "<div style='{color: red}'>",
    ],
)
def test_other_braces_stay_exactly_as_written(text: str) -> None:
    assert interpolate(text, NS) == text
    assert find_placeholders(text) == []


def test_placeholders_after_an_fstring_are_filled() -> None:
    assert interpolate('f"{x}" then {doc}', NS) == 'f"{x}" then the document'
    assert interpolate('"{doc}"', NS) == '"the document"'


def test_escapes() -> None:
    assert interpolate("{{doc}}", NS) == "{doc}"
    assert interpolate("{{", NS) == "{"
    assert interpolate("}}", NS) == "}"
    assert interpolate("a }} b {{ c", NS) == "a } b { c"
    # `}}` that closes plain braces opened earlier is JSON or LaTeX, not an escape
    assert interpolate('{"a": {"b": 1}}', NS) == '{"a": {"b": 1}}'
    assert interpolate(r"\sqrt{\frac{a}{b}}", NS) == r"\sqrt{\frac{a}{b}}"
    # an escaped outer brace around JSON
    assert interpolate('{{"a": {"b": 1}}}', NS) == '{"a": {"b": 1}}'
    assert interpolate("{{{{x}}}}", NS) == "{{x}}"


def test_unknown_variable_is_one_line_prompt_error() -> None:
    with pytest.raises(PromptError) as info:
        interpolate("Summarise {nope} please", NS)
    assert str(info.value) == (
        "unknown variable {nope} in the prompt (define it, write {{nope}} for literal braces,"
        " or use --no-interpolate)"
    )
    assert isinstance(info.value, ValueError)
    assert info.value.name == "nope" and info.value.placeholder == "nope"


def test_unknown_root_of_a_dotted_reference() -> None:
    with pytest.raises(PromptError) as info:
        interpolate("{nope.shape[0]}", NS)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("unknown variable {nope.shape[0]} in the prompt (define nope,")
    assert "{{nope.shape[0]}}" in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{df.nope}", "AttributeError"),
        ('{cfg["zz"]}', "KeyError"),
        ("{items[7]}", "IndexError"),
        ("{n[0]}", "TypeError"),
        ("{doc.x.y}", "AttributeError"),
    ],
)
def test_failing_access_is_one_line_prompt_error(text: str, fragment: str) -> None:
    with pytest.raises(PromptError) as info:
        interpolate(text, NS)
    message = str(info.value)
    assert message.startswith(f"cannot evaluate {text} in the prompt: {fragment}")
    assert "\n" not in message


def test_failing_str_and_properties_become_prompt_errors() -> None:
    class Bad:
        @property
        def boom(self) -> str:
            raise RuntimeError("line one\nline two")

        def __str__(self) -> str:
            raise RuntimeError("no str")

    with pytest.raises(PromptError, match="RuntimeError: line one line two"):
        interpolate("{b.boom}", {"b": Bad()})
    with pytest.raises(PromptError, match="no str"):
        interpolate("{b}", {"b": Bad()})


def test_namespace_can_be_any_mapping() -> None:
    from types import MappingProxyType

    assert interpolate("{a}", MappingProxyType({"a": 1})) == "1"


def test_find_placeholders_unique_in_order() -> None:
    text = "{b.c} {a} {{d}} {a} {items[0]} \\frac{x}{y} {e!r}"
    assert find_placeholders(text) == ["b.c", "a", "items[0]"]


def test_pathological_inputs_are_handled_quickly() -> None:
    # would be quadratic with a naive rescan; these must simply finish
    for text in ('{x["' * 20_000, "}" * 100_000, "{" * 100_000, "{a" * 50_000, "f'" * 50_000):
        interpolate(text, {"x": {}, "a": 1})


def test_module_does_not_import_ipython() -> None:
    code = (
        "import sys, mistral_magic.prompt, mistral_magic.tools, mistral_magic.render;"
        "bad = [m for m in ('IPython', 'ipywidgets') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- properties ---------------------------------------------------------------------------------

brace_heavy = st.text(
    alphabet=st.sampled_from([*"{}{}[]().\"'!:_-$^\\ fabxn01", "\n", "é"]), max_size=60
)
any_text = st.one_of(st.text(max_size=80), brace_heavy)
identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
    lambda s: not keyword.iskeyword(s)
)


@given(any_text)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_random_text_only_ever_raises_prompt_error(text: str) -> None:
    for ns in ({}, {"a": 1, "b": {"x": [1]}, "x": "X", "f": "F"}):
        try:
            out = interpolate(text, ns)
        except PromptError as exc:
            assert "\n" not in str(exc)
        else:
            assert isinstance(out, str)


def _strip_braces(s: str) -> str:
    return s.replace("{", "").replace("}", "")


@given(any_text)
@settings(max_examples=400)
def test_text_without_placeholders_is_unchanged_except_collapsed_escapes(text: str) -> None:
    if find_placeholders(text):
        return
    out = interpolate(text, {})
    if "{{" not in text and "}}" not in text:
        assert out == text
    assert _strip_braces(out) == _strip_braces(text)
    assert len(text) - len(out) <= text.count("{{") + text.count("}}")


@given(any_text)
@settings(max_examples=400)
def test_fully_escaped_text_round_trips(text: str) -> None:
    escaped = text.replace("{", "{{").replace("}", "}}")
    assert find_placeholders(escaped) == []
    assert interpolate(escaped, {}) == text
    assert interpolate(escaped, {"a": 1, "x": 2, "f": 3}) == text


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(alphabet=string.ascii_letters + " :,[]", max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet=string.ascii_letters, max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values, st.sampled_from([None, 2]))
def test_json_documents_stay_exactly_as_written(value: object, indent: int | None) -> None:
    text = json.dumps(value, indent=indent)
    assert interpolate(text, NS) == text


@given(identifiers, st.text(alphabet=string.ascii_letters + " .,\n", max_size=20))
def test_placeholders_are_filled_anywhere(name: str, around: str) -> None:
    text = f"{around} {{{name}}} {around}"
    assert interpolate(text, {name: "VALUE"}) == f"{around} VALUE {around}"
    assert find_placeholders(text) == [name]
    with pytest.raises(PromptError):
        interpolate(text, {})
