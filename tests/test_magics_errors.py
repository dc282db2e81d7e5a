"""%%mistral when things go wrong: user mistakes (one line, nothing sent), API errors (one line
with status, message and hint; a traceback only with --debug), mid-stream faults and interrupts
(partial answer kept on screen and bound, the next cell works), secrets never shown."""

from __future__ import annotations

import _thread
import json
import threading
from typing import Any

import pytest
from IPython.core.error import UsageError

from mistral_magic.magics import CellError, GenerationInterrupted


def run_err(shell: Any, source: str) -> BaseException:
    result = shell.run_cell(source, store_history=False)
    error = result.error_before_exec or result.error_in_exec
    assert error is not None, "the cell should have failed"
    return error


def sent(emulator: Any) -> list[dict[str, Any]]:
    return [r for r in emulator.requests if r["method"] == "POST"]


# -- user mistakes: one line, nothing sent ------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "fragment"),
    [
        ("%%mistral --bogus\nhi", "unrecognized arguments: --bogus"),
        ("%%mistral -t 3\nhi", "temperature"),
        ("%%mistral -t -0.5\nhi", "temperature"),
        ("%%mistral -t abc\nhi", "invalid float value: 'abc'"),
        ("%%mistral --top-p 2\nhi", "top_p"),
        ("%%mistral --max-tokens 1.5\nhi", "invalid int value"),
        ("%%mistral --max-tokens -3\nhi", "max_tokens"),
        ("%%mistral --min-tokens x\nhi", "invalid int value"),
        ("%%mistral --seed x\nhi", "invalid int value"),
        ("%%mistral --retries -1\nhi", "--retries"),
        ("%%mistral --backend azure\nhi", "invalid choice: 'azure'"),
        ("%%mistral --tool-choice banana\nhi", "--tool-choice 'banana'"),
        ("%%mistral --json --schema t_schema\nhi", "either --json or --schema"),
        ("%%mistral --system 'unterminated\nhi", "cannot parse the magic line"),
        ("%%mistral hello there\nhi", "unexpected argument 'hello'"),
        ("%%mistral\nTell me about {t_missing}", "t_missing"),
        ("%%mistral\nTell me about {t_obj.nope}", "nope"),
        ("%%mistral --schema t_missing\nhi", "--schema t_missing: no variable"),
        ("%%mistral --schema t_number\nhi", "expected a pydantic model class or a JSON-schema"),
        ("%%mistral --schema t_plain_dict\nhi", "expected a pydantic model class or a JSON-schema"),
        ("%%mistral --tools t_number\nhi", "--tools t_number: not a function"),
        ("%%mistral --tools t_missing\nhi", "--tools t_missing: no variable"),
        ("%%mistral --tools 'print(1)'\nhi", "expected a variable name"),
        ("%%mistral -o 1abc\nhi", "variable name"),
        ("%%mistral -o a.b\nhi", "variable name"),
        ("%%mistral -o class\nhi", "variable name"),
        ("%%mistral\n", "empty"),
        ("%%mistral\n   \n\n", "the cell is empty"),
        ("%%mistral\nbad \ud800 text", "lone surrogate"),
        ("%%mistral --system 'x\ud800'\nhi", "lone surrogate"),
        ("%%mistral --api-key abc\nhi", "refusing a credential"),
        ("%%mistral --token ya29.abcdefghijkl\nhi", "refusing a credential"),
        ("%%mistral -m small api_key=sk-12345678\nhi", "refusing a credential"),
        ("%%mistral -m abcdefghijklmnopqrstuvwxyz012345\nhi", "refusing a credential"),
        ("%mistral frobnicate", "unknown command 'frobnicate'"),
        ("%mistral config model", "expected key=value"),
        ("%mistral emulator pause", "emulator start|stop"),
    ],
)
def test_user_mistake_is_one_line_and_sends_nothing(
    ipshell: Any, emulator: Any, capsys: Any, cell: str, fragment: str
) -> None:
    ipshell.user_ns.update(t_number=5, t_obj=object(), t_plain_dict={"a": 1}, t_schema={})
    error = run_err(ipshell, cell)
    assert isinstance(error, UsageError), repr(error)
    message = str(error)
    assert fragment in message
    assert "\n" not in message
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert sent(emulator) == []
    assert "_mistral" not in ipshell.user_ns


def test_key_on_line_says_where_to_put_it(ipshell: Any, emulator: Any) -> None:
    error = run_err(ipshell, "%%mistral --api-key sk-abcdefghijklmnopqrst\nhi")
    assert "MISTRAL_API_KEY" in str(error)
    assert "sk-abcdefghijklmnopqrst" not in str(error)


def test_no_credentials_message(ipshell: Any, monkeypatch: Any, tmp_path: Any) -> None:
    monkeypatch.delenv("MISTRAL_MAGIC_SERVER_URL")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    error = run_err(ipshell, "%%mistral\nhi")
    assert isinstance(error, UsageError)
    message = str(error)
    assert "MISTRAL_API_KEY" in message
    assert "%mistral emulator" in message
    assert message.count("gcloud auth application-default login") == 1  # one message, not two


def test_chosen_backend_without_its_credentials(ipshell: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("MISTRAL_MAGIC_SERVER_URL")
    error = run_err(ipshell, "%%mistral --backend mistral\nhi")
    assert isinstance(error, UsageError)
    assert "MISTRAL_API_KEY" in str(error) and "%mistral emulator" in str(error)
    assert not ipshell.recorder.messages  # nothing drawn, nothing sent


# -- API errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "backend", "fragments"),
    [
        (401, "mistral", ["401"]),
        (401, "vertex", ["401"]),
        (403, "vertex", ["403"]),
        (404, "vertex", ["404"]),
        (500, "mistral", ["500"]),
    ],
)
def test_api_error_is_one_line_with_status_and_hint(
    ipshell: Any, emulator: Any, capsys: Any, status: int, backend: str, fragments: list[str]
) -> None:
    emulator.inject("status", status=status, times=5)
    capsys.readouterr()
    error = run_err(ipshell, f"%%mistral --backend {backend} --retries 0\nhi")
    assert isinstance(error, CellError)
    rendered = error._render_traceback_()
    assert len(rendered) == 1
    for fragment in fragments:
        assert fragment in rendered[0]
    assert "\n" not in error.message
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert error.message in captured.out + captured.err
    # nothing arrived: the live display was never filled and nothing partial is displayed
    assert all(m["data"] == {"text/plain": ""} for m in ipshell.recorder.final_outputs())
    result = ipshell.user_ns["_mistral"]
    assert result.error and result.text == ""


def test_api_error_message_comes_from_the_service(ipshell: Any, emulator: Any) -> None:
    emulator.inject("status", status=404, times=1)
    error = run_err(ipshell, "%%mistral -m mistral-tiny-9999\nhi")
    assert isinstance(error, CellError)
    assert "404" in error.message
    assert len(error.message) > 20  # the service's words and a hint, not just a code


def test_read_timeout_before_the_first_byte(ipshell: Any, emulator: Any) -> None:
    ipshell.run_line_magic("config", "MistralMagics.timeout = 0.3")
    emulator.inject("slow_first_byte", delay=1.5)
    error = run_err(ipshell, "%%mistral -o ans\nhi")
    assert isinstance(error, CellError)
    assert "Timed out" in error.message and "timeout" in error.message
    assert len(sent(emulator)) == 1  # never sent twice: the service may be generating already


def test_wrong_content_type(ipshell: Any, emulator: Any) -> None:
    emulator.inject("wrong_content_type")
    error = run_err(ipshell, "%%mistral --retries 0\nhi")
    assert isinstance(error, CellError)
    assert "Unexpected response" in error.message and "text/html" in error.message


def test_429_after_retries_gives_up_with_attempts(ipshell: Any, emulator: Any) -> None:
    emulator.inject("status", status=429, times=5, retry_after=0)
    error = run_err(ipshell, "%%mistral --retries 1\nhi")
    assert isinstance(error, CellError)
    assert "429" in error.message
    assert "2 attempts" in error.message or "attempts" in error.message
    assert len(sent(emulator)) == 2


def test_debug_shows_the_traceback(ipshell: Any, emulator: Any) -> None:
    from mistral_magic.errors import SDKError

    emulator.inject("status", status=500, times=5)
    error = run_err(ipshell, "%%mistral --debug --retries 0\nhi")
    assert isinstance(error, SDKError)
    assert error.status_code == 500


def test_next_cell_works_after_an_error(ipshell: Any, emulator: Any) -> None:
    emulator.inject("status", status=500, times=1)
    run_err(ipshell, "%%mistral --retries 0\nhi")
    result = ipshell.run_cell("%%mistral -o ans\nhi", store_history=False)
    assert result.error_in_exec is None
    assert ipshell.user_ns["ans"].finish_reason == "stop"


# -- mid-stream faults --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params", "reason"),
    [
        ("drop", {"after_chunks": 6}, "connection_lost"),
        ("stream_error", {"after_chunks": 6, "message": "model overloaded"}, "error"),
        ("malformed", {"after_chunks": 6, "variant": "bad_json"}, "error"),
        ("stall", {"after_chunks": 6, "delay": 2.0}, "timeout"),
    ],
)
def test_mid_stream_fault_keeps_partial_answer(
    ipshell: Any, emulator: Any, kind: str, params: dict[str, Any], reason: str
) -> None:
    if kind == "stall":  # a read timeout between chunks
        ipshell.run_line_magic("config", "MistralMagics.timeout = 0.5")
    emulator.inject(kind, **params)
    error = run_err(ipshell, "%%mistral -o ans --retries 0 --min-tokens 60\nWrite a story")
    assert isinstance(error, CellError)
    assert "partial answer is kept in ans" in error.message
    ans = ipshell.user_ns["ans"]
    assert ans is ipshell.user_ns["_mistral"]
    assert ans.text  # what arrived is kept
    assert ans.finish_reason == reason
    assert ans.error
    # on screen: the live display is blanked and the partial result displayed in its place
    final = ipshell.recorder.final_outputs()
    shown = [m for m in final if "text/markdown" in m["data"]]
    assert len(shown) == 1
    assert ans.text[:20] in shown[0]["data"]["text/markdown"]
    assert shown[0]["data"]["text/plain"].startswith(ans.text)
    assert shown[0]["metadata"]["mistral_magic"]["finish_reason"] == reason
    # the next cell works
    assert ipshell.run_cell("%%mistral\nhi", store_history=False).error_in_exec is None


def test_interrupt_keeps_partial_answer_and_next_cell_works(ipshell: Any, emulator: Any) -> None:
    emulator.set_token_delay(0.02)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    try:
        error = run_err(ipshell, "%%mistral -o ans --min-tokens 400 --max-tokens 400\nLong story")
    finally:
        timer.cancel()
    assert isinstance(error, GenerationInterrupted)
    assert "kept in ans" in error._render_traceback_()[0]
    ans = ipshell.user_ns["ans"]
    assert ans.finish_reason == "interrupted"
    assert ans.interrupted
    assert 0 < ans.usage.completion_tokens < 400 or ans.text
    shown = [m for m in ipshell.recorder.final_outputs() if "text/markdown" in m["data"]]
    assert shown and "interrupted" in shown[0]["data"]["text/markdown"]
    emulator.set_token_delay(0)
    result = ipshell.run_cell("%%mistral -o ans\nhi", store_history=False)
    assert result.error_in_exec is None
    assert ipshell.user_ns["ans"].finish_reason == "stop"


def test_interrupt_in_terminal_mode(
    ipshell: Any, emulator: Any, capsys: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(ipshell.display_formatter, "active_types", ["text/plain"])
    emulator.set_token_delay(0.02)
    timer = threading.Timer(0.4, _thread.interrupt_main)
    timer.start()
    try:
        error = run_err(ipshell, "%%mistral -o ans --min-tokens 400 --max-tokens 400\nStory")
    finally:
        timer.cancel()
    assert isinstance(error, GenerationInterrupted)
    ans = ipshell.user_ns["ans"]
    assert ans.finish_reason == "interrupted"
    assert ans.text and ans.text in capsys.readouterr().out


# -- secrets ------------------------------------------------------------------------------------


def test_secrets_never_displayed(
    ipshell: Any, emulator: Any, monkeypatch: Any, capsys: Any
) -> None:
    key = "sk-secret-0123456789abcdefghij"
    monkeypatch.setenv("MISTRAL_API_KEY", key)

    def t_echo(text: str) -> str:
        """Echo the text."""
        return f"{text} and Bearer {key}"

    ipshell.user_ns["t_echo"] = t_echo
    ipshell.user_ns["t_key"] = key
    ipshell.run_cell("%%mistral -o ans --tools t_echo --tool-choice any\nEcho {t_key}",
                     store_history=False)
    ipshell.run_line_magic("mistral", "config")
    emulator.inject("status", status=401, times=1)
    run_err(ipshell, "%%mistral --retries 0\nhi")
    ans = ipshell.user_ns["ans"]
    shown = json.dumps(ipshell.recorder.messages) + json.dumps(ans._repr_mimebundle_())
    captured = capsys.readouterr()
    shown += captured.out + captured.err + repr(ans) + str(ans._repr_markdown_())
    assert key not in shown
    # the key itself was sent to the service (as the bearer), of course
    assert emulator.requests[0]["headers"]["authorization"] == f"Bearer {key}"
