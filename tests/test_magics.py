"""%%mistral through a real IPython shell against the in-process emulator: every option of
issue 3 and what the emulator received for it, binding, interpolation, conversations, tools,
schema output, the notebook display protocol (commit pattern) and the %mistral commands."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest

from mistral_magic.session import ChatResult

# -- helpers ------------------------------------------------------------------------------------


def run(shell: Any, source: str) -> Any:
    """Run a cell; fail the test if it raised. Returns the cell's result (execute_result)."""
    result = shell.run_cell(source, store_history=False)
    if result.error_before_exec or result.error_in_exec:
        raise AssertionError(f"cell failed: {result.error_before_exec or result.error_in_exec!r}")
    return result.result


def chat_bodies(emulator: Any) -> list[dict[str, Any]]:
    return [r["body"] for r in emulator.requests if r["method"] == "POST"]


def last_body(emulator: Any) -> dict[str, Any]:
    bodies = chat_bodies(emulator)
    assert bodies, "nothing was sent"
    return bodies[-1]


# -- one cell, end to end -----------------------------------------------------------------------


def test_streamed_cell_binds_result_and_returns_it(ipshell: Any, emulator: Any) -> None:
    out = run(ipshell, "%%mistral -o ans\nSay hello")
    ans = ipshell.user_ns["ans"]
    assert out is ans
    assert ipshell.user_ns["_mistral"] is ans
    assert isinstance(ans, ChatResult)
    assert ans.finish_reason == "stop"
    assert ans.text and str(ans) == ans.text
    assert ans.usage.completion_tokens > 0
    assert ans.choices[0].message.role == "assistant"
    body = last_body(emulator)
    assert body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "Say hello"}]
    assert body["model"] == "mistral-small-2503"  # default alias on Vertex (no API key)
    assert emulator.requests[-1]["path"].endswith("mistral-small-2503:streamRawPredict")


def test_no_stream_gives_the_same_shape(ipshell: Any, emulator: Any) -> None:
    run(ipshell, "%%mistral -o a --seed 7\nSay hello")
    streamed = ipshell.user_ns["a"]
    run(ipshell, "%%mistral --no-stream -o b --seed 7\nSay hello")
    whole = ipshell.user_ns["b"]
    assert last_body(emulator)["stream"] is False
    assert emulator.requests[-1]["path"].endswith(":rawPredict")
    assert whole.text == streamed.text
    assert whole.finish_reason == streamed.finish_reason == "stop"
    assert whole.usage.completion_tokens == streamed.usage.completion_tokens
    assert type(whole) is type(streamed)


def test_commit_pattern_first_and_final_display_are_blank(ipshell: Any, emulator: Any) -> None:
    emulator.set_token_delay(0.002)
    result = run(ipshell, "%%mistral --min-tokens 200 --max-tokens 200\nWrite a paragraph")
    rec = ipshell.recorder
    first = rec.first_outputs()
    assert first, "no live display"
    # nbval sees only the first state of each display: blank text/plain
    assert all(m["data"] == {"text/plain": ""} for m in first)
    # the saved notebook keeps the last state: blank as well
    assert all(m["data"] == {"text/plain": ""} for m in rec.final_outputs())
    # live updates carried Markdown, with an empty text/plain (no duplicate of the answer)
    updates = [m for m in rec.messages if m.get("update") and "text/markdown" in m["data"]]
    assert updates
    assert all(m["data"]["text/plain"] == "" for m in updates)
    assert result.text.startswith(updates[0]["data"]["text/markdown"][:5])
    # the cell's result is the answer with provenance metadata
    data, metadata = ipshell.display_formatter.format(result)
    assert data["text/plain"].startswith(result.text)  # plus "[finish_reason: length]"
    assert result.text in data["text/markdown"]
    prov = metadata["mistral_magic"]
    assert prov["model"] == "mistral-small-2503"
    assert prov["backend"] == "vertex"
    assert prov["region"] == "europe-west4"
    assert prov["request_id"]
    assert prov["usage"]["completion_tokens"] == 200
    assert "seed" in prov


def test_seed_in_provenance(ipshell: Any, emulator: Any) -> None:
    result = run(ipshell, "%%mistral --seed 42\nhi")
    assert last_body(emulator)["random_seed"] == 42
    assert result.provenance()["seed"] == 42


def test_footer_in_markdown_and_can_be_turned_off(ipshell: Any, emulator: Any) -> None:
    result = run(ipshell, "%%mistral\nhi")
    md = result._repr_mimebundle_()[0]["text/markdown"]
    assert "mistral-small-2503 · vertex europe-west4" in md
    assert " in / " in md and "first token" in md and "tok/s" in md
    ipshell.run_line_magic("config", "MistralMagics.footer = False")
    result = run(ipshell, "%%mistral\nhi")
    md = result._repr_mimebundle_()[0]["text/markdown"]
    assert "first token" not in md


def test_terminal_mode_writes_tokens_to_stdout(
    ipshell: Any, emulator: Any, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setattr(ipshell.display_formatter, "active_types", ["text/plain"])
    assert ipshell.mistral_magics.is_terminal()
    out = ipshell.run_cell("%%mistral -o ans\nSay hello", store_history=False).result
    assert out is None  # nothing more to print: the tokens went out already
    printed = capsys.readouterr().out
    ans = ipshell.user_ns["ans"]
    assert ans.text in printed
    assert "mistral-small-2503" in printed  # footer line
    assert ipshell.recorder.messages == []


def test_stream_mode_trait(ipshell: Any, emulator: Any, capsys: Any) -> None:
    ipshell.run_line_magic("config", "MistralMagics.stream_mode = 'stdout'")
    run(ipshell, "%%mistral -o ans\nhi")
    assert ipshell.user_ns["ans"].text in capsys.readouterr().out
    ipshell.run_line_magic("config", "MistralMagics.stream_mode = 'display'")
    assert not ipshell.mistral_magics.is_terminal()


# -- options -> request body --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("-t 0.3", {"temperature": 0.3}),
        ("--temperature 1.5", {"temperature": 1.5}),
        ("--top-p 0.9", {"top_p": 0.9}),
        ("--max-tokens 12", {"max_tokens": 12}),
        ("--min-tokens 5 --max-tokens 9", {"min_tokens": 5, "max_tokens": 9}),
        ("--stop END", {"stop": "END"}),
        ("--stop END --stop '###'", {"stop": ["END", "###"]}),
        ("--seed 3", {"random_seed": 3}),
        ("--json", {"response_format": {"type": "json_object"}}),
        ("--tool-choice none --tools t_add", {"tool_choice": "none"}),
    ],
)
def test_option_reaches_the_request(
    ipshell: Any, emulator: Any, line: str, expected: dict[str, Any]
) -> None:
    def t_add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    ipshell.user_ns["t_add"] = t_add
    run(ipshell, f"%%mistral {line}\nReturn something")
    body = last_body(emulator)
    for key, value in expected.items():
        assert body[key] == value


def test_max_tokens_limits_answer(ipshell: Any, emulator: Any) -> None:
    result = run(ipshell, "%%mistral --max-tokens 5\nWrite a long essay")
    assert result.usage.completion_tokens <= 5
    assert result.finish_reason == "length"


def test_system_prompt_first(ipshell: Any, emulator: Any) -> None:
    run(ipshell, "%%mistral --system 'You are terse.'\nhi")
    assert last_body(emulator)["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi"},
    ]


def test_model_alias_per_backend(ipshell: Any, emulator: Any) -> None:
    run(ipshell, "%%mistral -m large\nhi")
    assert last_body(emulator)["model"] == "mistral-large-2411"
    assert "/models/mistral-large-2411:streamRawPredict" in emulator.requests[-1]["path"]
    run(ipshell, "%%mistral -m large --backend mistral\nhi")
    assert last_body(emulator)["model"] == "mistral-large-latest"
    assert emulator.requests[-1]["path"] == "/v1/chat/completions"
    run(ipshell, "%%mistral --model codestral --backend mistral\nhi")
    assert last_body(emulator)["model"] == "codestral-latest"
    run(ipshell, "%%mistral --model mistral-medium-3\nhi")
    assert last_body(emulator)["model"] == "mistral-medium-3"


def test_backend_mistral_and_vertex(ipshell: Any, emulator: Any) -> None:
    run(ipshell, "%%mistral --backend mistral -o ans\nhi")
    request = emulator.requests[-1]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"].startswith("Bearer ")
    assert ipshell.user_ns["ans"].provenance()["backend"] == "mistral"
    assert ipshell.user_ns["ans"].provenance()["region"] is None
    run(ipshell, "%%mistral --backend vertex -o ans\nhi")
    assert "/locations/europe-west4/publishers/mistralai/" in emulator.requests[-1]["path"]
    assert ipshell.user_ns["ans"].provenance()["backend"] == "vertex"


def test_json_output_parsed(ipshell: Any, emulator: Any) -> None:
    result = run(ipshell, "%%mistral --json\nGive me a JSON object about cats")
    assert last_body(emulator)["response_format"] == {"type": "json_object"}
    assert isinstance(result.parsed, dict)
    assert result.parsed == json.loads(result.text)


class Person(pydantic.BaseModel):
    name: str
    age: int


def test_schema_with_pydantic_model(ipshell: Any, emulator: Any) -> None:
    ipshell.user_ns["Person"] = Person
    result = run(ipshell, "%%mistral --schema Person -o ans\nInvent a person")
    fmt = last_body(emulator)["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Person"
    assert fmt["json_schema"]["schema"]["properties"].keys() == {"name", "age"}
    assert isinstance(result.parsed, Person)
    assert result.parsed == Person.model_validate_json(result.text)


def test_schema_with_json_schema_dict(ipshell: Any, emulator: Any) -> None:
    schema = {
        "title": "City",
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
    }
    ipshell.user_ns["city_schema"] = schema
    result = run(ipshell, "%%mistral --schema city_schema\nName a city")
    fmt = last_body(emulator)["response_format"]
    assert fmt["json_schema"]["schema"] == schema
    assert fmt["json_schema"]["name"] == "City"
    assert set(result.parsed) == {"city", "population"}
    assert isinstance(result.parsed["population"], int)


def test_tools_function_called_and_answer_uses_result(ipshell: Any, emulator: Any) -> None:
    calls: list[tuple[str, str]] = []

    def t_weather(city: str, unit: str = "celsius") -> dict[str, Any]:
        """Current weather in a city.

        Args:
            city: the city name
            unit: celsius or fahrenheit
        """
        calls.append((city, unit))
        return {"city": city, "temperature": 21, "unit": unit}

    ipshell.user_ns["t_weather"] = t_weather
    result = run(ipshell, "%%mistral --tools t_weather -o ans\nWhat is the weather in Paris?")
    bodies = chat_bodies(emulator)
    assert len(bodies) == 2  # the call, then the answer with the tool's result
    spec = bodies[0]["tools"][0]
    assert spec["type"] == "function"
    assert spec["function"]["name"] == "t_weather"
    assert spec["function"]["description"].startswith("Current weather")
    assert spec["function"]["parameters"]["properties"]["city"]["type"] == "string"
    assert calls
    second = bodies[1]["messages"]
    assert second[1]["role"] == "assistant" and second[1]["tool_calls"]
    tool_msg = second[2]
    assert tool_msg["role"] == "tool"
    assert json.loads(tool_msg["content"])["temperature"] == 21
    assert tool_msg["tool_call_id"] == second[1]["tool_calls"][0]["id"]
    assert result.finish_reason == "stop"
    assert result.tool_results and result.tool_results[0].ok
    # each call is shown: a tool card in the live view and in the result
    live = [m["data"].get("text/markdown", "") for m in ipshell.recorder.messages]
    assert any("t_weather" in md for md in live)
    assert "t_weather" in result._repr_mimebundle_()[0]["text/markdown"]


def test_tools_dict_spec(ipshell: Any, emulator: Any) -> None:
    spec = {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look a word up",
            "parameters": {
                "type": "object",
                "properties": {"word": {"type": "string"}},
                "required": ["word"],
            },
        },
    }
    ipshell.user_ns["t_lookup"] = spec
    run(ipshell, "%%mistral --tools t_lookup --tool-choice none\nDefine 'cat'")
    assert last_body(emulator)["tools"] == [spec]
    assert last_body(emulator)["tool_choice"] == "none"


@pytest.mark.parametrize("choice", ["auto", "none", "any", "required"])
def test_tool_choice_values(ipshell: Any, emulator: Any, choice: str) -> None:
    def t_now() -> str:
        """The time."""
        return "12:00"

    ipshell.user_ns["t_now"] = t_now
    run(ipshell, f"%%mistral --tools t_now --tool-choice {choice}\nWhat time is it?")
    assert chat_bodies(emulator)[0]["tool_choice"] == choice
    if choice in ("any", "required"):
        # the forced call happened, then the follow-up is not forced again
        assert len(chat_bodies(emulator)) == 2
        assert chat_bodies(emulator)[1]["tool_choice"] == "auto"


def test_tool_choice_by_name(ipshell: Any, emulator: Any) -> None:
    def t_now() -> str:
        """The time."""
        return "12:00"

    ipshell.user_ns["t_now"] = t_now
    run(ipshell, "%%mistral --tools t_now --tool-choice t_now\nWhat time is it?")
    assert chat_bodies(emulator)[0]["tool_choice"] == {
        "type": "function",
        "function": {"name": "t_now"},
    }


def test_tool_that_raises_goes_back_to_the_model(ipshell: Any, emulator: Any) -> None:
    def t_fail(x: int) -> int:
        """Always fails."""
        raise RuntimeError("database is down")

    ipshell.user_ns["t_fail"] = t_fail
    result = run(ipshell, "%%mistral --tools t_fail --tool-choice any -o ans\nUse the tool")
    bodies = chat_bodies(emulator)
    assert len(bodies) == 2
    tool_msg = bodies[1]["messages"][-1]
    assert tool_msg["role"] == "tool"
    assert "RuntimeError: database is down" in tool_msg["content"]
    assert result.finish_reason == "stop" and result.text
    assert not result.tool_results[0].ok


def test_tool_returning_non_json_value(ipshell: Any, emulator: Any) -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<Thing 7>"

    def t_thing() -> Any:
        """Return a thing."""
        return Thing()

    ipshell.user_ns["t_thing"] = t_thing
    result = run(ipshell, "%%mistral --tools t_thing --tool-choice any\nUse the tool")
    tool_msg = chat_bodies(emulator)[1]["messages"][-1]
    assert "<Thing 7>" in tool_msg["content"]
    assert "not JSON-serializable" in tool_msg["content"]
    assert result.finish_reason == "stop"


def test_out_binds_variable_and_mimebundle(ipshell: Any, emulator: Any) -> None:
    run(ipshell, "%%mistral -o ans\nhi")
    ans = ipshell.user_ns["ans"]
    data, metadata = ans._repr_mimebundle_()
    assert set(data) == {"text/markdown", "text/plain"}
    assert data["text/plain"] == ans.text
    assert metadata["mistral_magic"]["finish_reason"] == "stop"
    assert ans._repr_markdown_() == data["text/markdown"]


# -- interpolation ------------------------------------------------------------------------------


def test_interpolation_of_names_attributes_and_indexes(ipshell: Any, emulator: Any) -> None:
    class Doc:
        title = "Dune"

    ipshell.user_ns.update(t_doc=Doc(), t_items=[1, 2, 3], t_cfg={"k": "v"}, t_n=5)
    run(ipshell, "%%mistral\nA {t_doc.title}, {t_items[-1]}, {t_cfg['k']}, {t_n}")
    assert last_body(emulator)["messages"][-1]["content"] == "A Dune, 3, v, 5"


def test_other_braces_stay_as_written(ipshell: Any, emulator: Any) -> None:
    ipshell.user_ns["t_name"] = "Ada"
    body = (
        'Hi {t_name}. Code: def f(): return {"a": {"b": 1}}\n'
        "Set: {1, 2}. LaTeX: $\\frac{a}{b}$ and x^{2}. Literal: {{t_name}}. f'{x}'"
    )
    run(ipshell, "%%mistral\n" + body)
    sent = last_body(emulator)["messages"][-1]["content"]
    assert sent == (
        'Hi Ada. Code: def f(): return {"a": {"b": 1}}\n'
        "Set: {1, 2}. LaTeX: $\\frac{a}{b}$ and x^{2}. Literal: {t_name}. f'{x}'"
    )


def test_no_interpolate(ipshell: Any, emulator: Any) -> None:
    run(ipshell, "%%mistral --no-interpolate\nKeep {undefined_thing} and {{x}}")
    assert last_body(emulator)["messages"][-1]["content"] == "Keep {undefined_thing} and {{x}}"


def test_dry_run_shows_interpolated_json_and_sends_nothing(ipshell: Any, emulator: Any) -> None:
    ipshell.user_ns["t_topic"] = "owls"
    out = run(ipshell, "%%mistral --dry-run -t 0.5 --system sys\nAbout {t_topic}")
    assert out is None
    assert chat_bodies(emulator) == []
    shown = ipshell.recorder.messages[-1]["data"]
    plain = shown["text/plain"]
    assert plain.startswith("POST ")
    payload = json.loads(plain.split("\n\n", 1)[1])
    assert payload["messages"][-1]["content"] == "About owls"
    assert payload["temperature"] == 0.5
    assert payload["stream"] is True
    assert "Bearer ***" in plain
    assert "```" in shown["text/markdown"]


def test_dry_run_redacts_secrets(ipshell: Any, emulator: Any, monkeypatch: Any) -> None:
    secret = "sk-test-0123456789abcdefghijklmnop"
    monkeypatch.setenv("MISTRAL_API_KEY", secret)
    ipshell.user_ns["t_leak"] = f"my key is {secret}"
    run(ipshell, "%%mistral --dry-run\nPlease use {t_leak}")
    assert chat_bodies(emulator) == []
    text = json.dumps(ipshell.recorder.messages)
    assert secret not in text
    assert "***" in text
    assert "/v1/chat/completions" in text  # API key present: api.mistral.ai backend


# -- conversations ------------------------------------------------------------------------------


def test_chat_history_system_first_and_rerun_replaces(ipshell: Any, emulator: Any) -> None:
    run(ipshell, "%%mistral --chat trip --system 'You plan trips.'\nFirst question")
    first_answer = ipshell.user_ns["_mistral"].text
    run(ipshell, "%%mistral --chat trip\nSecond question")
    body = last_body(emulator)
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][0]["content"] == "You plan trips."
    assert body["messages"][2]["content"] == first_answer
    # re-running the second cell replaces its turn instead of appending a duplicate
    run(ipshell, "%%mistral --chat trip\nSecond question")
    assert [m["role"] for m in last_body(emulator)["messages"]] == [
        "system", "user", "assistant", "user",
    ]
    from mistral_magic.session import conversations

    assert len(conversations.get("trip").turns) == 2
    # a new cell appends
    run(ipshell, "%%mistral --chat trip\nThird question")
    assert len(last_body(emulator)["messages"]) == 6
    # without --chat a cell is independent
    run(ipshell, "%%mistral\nAlone")
    assert last_body(emulator)["messages"] == [{"role": "user", "content": "Alone"}]


def test_chat_rerun_by_cell_id(ipshell: Any, emulator: Any) -> None:
    from mistral_magic.session import conversations

    def cell(source: str, cell_id: str) -> None:
        result = ipshell.run_cell(source, store_history=False, cell_id=cell_id)
        assert result.error_in_exec is None

    cell("%%mistral --chat c\nOne", "cell-1")
    cell("%%mistral --chat c\nTwo", "cell-2")
    cell("%%mistral --chat c\nTwo, edited", "cell-2")  # same cell, edited: replaced
    turns = conversations.get("c").turns
    assert [t.key for t in turns] == ["cell:cell-1", "cell:cell-2"]
    assert turns[1].messages[0]["content"] == "Two, edited"


def test_history_and_reset_commands(ipshell: Any, emulator: Any, capsys: Any) -> None:
    run(ipshell, "%%mistral --chat notes --system 'Be brief'\nRemember 42")
    ipshell.recorder.messages.clear()
    ipshell.run_line_magic("mistral", "history notes")
    md = ipshell.recorder.messages[-1]["data"]["text/markdown"]
    assert "Remember 42" in md and "Be brief" in md
    ipshell.run_line_magic("mistral", "reset notes")
    assert "reset" in capsys.readouterr().out
    result = ipshell.run_cell("%mistral history notes", store_history=False)
    assert "no conversation named 'notes'" in str(result.error_in_exec)


# -- configuration ------------------------------------------------------------------------------


def config_rows(shell: Any) -> dict[str, tuple[str, str]]:
    shell.recorder.messages.clear()
    shell.run_line_magic("mistral", "config")
    plain = shell.recorder.messages[-1]["data"]["text/plain"]
    rows = {}
    for line in plain.splitlines():
        name, rest = line[:13].strip(), line[13:]
        value, _, source = rest.rpartition("(")
        rows[name] = (value.strip(), source.rstrip(")"))
    return rows


def test_config_precedence(ipshell: Any, emulator: Any, monkeypatch: Any) -> None:
    assert config_rows(ipshell)["model"] == ("small", "default")
    monkeypatch.setenv("MISTRAL_MAGIC_MODEL", "medium")
    assert config_rows(ipshell)["model"] == ("medium", "env")
    ipshell.run_line_magic("config", "MistralMagics.model = 'large'")
    assert config_rows(ipshell)["model"] == ("large", "config")
    ipshell.run_line_magic("mistral", "config model=codestral")
    assert config_rows(ipshell)["model"] == ("codestral", "session")
    run(ipshell, "%%mistral\nhi")
    assert last_body(emulator)["model"] == "codestral-2501"
    run(ipshell, "%%mistral -m mistral-nemo-2407\nhi")  # flag wins
    assert last_body(emulator)["model"] == "mistral-nemo-2407"
    ipshell.run_line_magic("mistral", "config model=")  # unset the session value
    assert config_rows(ipshell)["model"] == ("large", "config")


def test_config_masks_secrets_and_shows_sources(ipshell: Any, monkeypatch: Any) -> None:
    key = "abcdefghijklmnopqrstuvwxyz012345"
    monkeypatch.setenv("MISTRAL_API_KEY", key)
    rows = config_rows(ipshell)
    assert rows["backend"] == ("mistral", "auto: MISTRAL_API_KEY set")
    assert rows["api_key"][1] == "env"
    assert key not in json.dumps(ipshell.recorder.messages)
    assert rows["server_url"][1] == "env"
    assert rows["model id"][0] == "mistral-small-latest"


def test_config_server_url_session(ipshell: Any, emulator: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("MISTRAL_MAGIC_SERVER_URL")
    ipshell.run_line_magic("mistral", f"config server_url={emulator.url} backend=mistral")
    run(ipshell, "%%mistral\nhi")
    assert emulator.requests[-1]["path"] == "/v1/chat/completions"


def test_config_rejects_unknown_settings(ipshell: Any) -> None:
    result = ipshell.run_cell("%mistral config colour=blue", store_history=False)
    assert "unknown setting 'colour'" in str(result.error_in_exec)
    result = ipshell.run_cell("%mistral config backend=azure", store_history=False)
    assert "backend must be" in str(result.error_in_exec)


def test_models_command(ipshell: Any, emulator: Any) -> None:
    ipshell.run_line_magic("mistral", "models")
    plain = ipshell.recorder.messages[-1]["data"]["text/plain"]
    assert "Models on vertex" in plain and "mistral-small-2503  (alias: small)" in plain
    ipshell.run_line_magic("mistral", "config backend=mistral")
    ipshell.run_line_magic("mistral", "models")
    plain = ipshell.recorder.messages[-1]["data"]["text/plain"]
    assert "mistral-large-latest  (alias: large)" in plain
    assert emulator.requests[-1]["path"] == "/v1/models"


def test_usage_command(ipshell: Any, emulator: Any) -> None:
    run(ipshell, "%%mistral\nhi")
    run(ipshell, "%%mistral\nhello")
    ipshell.recorder.messages.clear()
    ipshell.run_line_magic("mistral", "usage")
    plain = ipshell.recorder.messages[-1]["data"]["text/plain"]
    assert plain.startswith("mistral-small-2503 (vertex): 2 calls")


def test_emulator_command(ipshell: Any, monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.delenv("MISTRAL_MAGIC_SERVER_URL")
    magics = ipshell.mistral_magics
    try:
        ipshell.run_line_magic("mistral", "emulator start")
        url = magics.emulator.url
        assert magics.session_settings["server_url"] == url
        result = run(ipshell, "%%mistral -o ans\nhi")
        assert result.text
        assert magics.emulator.requests
    finally:
        ipshell.run_line_magic("mistral", "emulator stop")
    assert magics.emulator is None
    assert "server_url" not in magics.session_settings


def test_help_is_generated_from_options(ipshell: Any) -> None:
    doc = ipshell.find_cell_magic("mistral").__doc__
    for flag in ("--model", "--temperature", "--top-p", "--max-tokens", "--min-tokens",
                 "--stop", "--seed", "--json", "--schema", "--tools", "--tool-choice",
                 "--system", "--out", "--no-stream", "--chat", "--backend", "--dry-run",
                 "--retries", "--no-interpolate", "--debug"):
        assert flag in doc


def test_retries_with_503(ipshell: Any, emulator: Any) -> None:
    emulator.inject("status", status=503, times=1, retry_after=0)
    result = run(ipshell, "%%mistral --retries 2 -o ans\nhi")
    assert result.finish_reason == "stop" and result.text
    assert len(chat_bodies(emulator)) == 2
    # the status line ("retrying") was shown, then blanked
    rec = ipshell.recorder
    notes = [m for m in rec.messages if "retrying" in m["data"].get("text/markdown", "")]
    assert notes
    assert all(m["data"] == {"text/plain": ""} for m in rec.final_outputs())
    assert all(m["data"] == {"text/plain": ""} for m in rec.first_outputs())


def test_quoted_values_and_unicode(ipshell: Any, emulator: Any) -> None:
    run(ipshell, "%%mistral --system \"Réponds en français, s'il te plaît\"\nBonjour 👋 ça va ?")
    body = last_body(emulator)
    assert body["messages"][0]["content"] == "Réponds en français, s'il te plaît"
    assert body["messages"][1]["content"] == "Bonjour 👋 ça va ?"


def test_one_megabyte_cell(ipshell: Any, emulator: Any) -> None:
    big = ("lorem ipsum dolor sit amet " * 40000)[:1_000_000]
    result = run(ipshell, "%%mistral --max-tokens 5\n" + big)
    assert len(last_body(emulator)["messages"][-1]["content"]) == len(big.strip("\n"))
    assert result.finish_reason in ("stop", "length")
