"""The chat panel driven from Python against the loopback emulator (and once through a kernel)."""

from __future__ import annotations

import asyncio
import os
import queue
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pydantic
import pytest

from mistral_magic._mdhtml import markdown_html, neutralize_html
from mistral_magic.emulator import EmulatorHandle
from mistral_magic.panel import ChatPanel
from mistral_magic.session import conversations

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    """Drive one test body on a fresh event loop (pytest-asyncio is not used here)."""

    async def main() -> T:
        return await coro

    return asyncio.run(main())


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def chat_requests(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    return [r for r in emulator.requests if r["method"] == "POST" and "/_emulator" not in r["path"]]


class City(pydantic.BaseModel):
    name: str
    population: int


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"sunny in {city}"


@pytest.fixture
def shell(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An IPython shell with the extension loaded, pointed at the emulator."""
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setenv("MISTRAL_MAGIC_SERVER_URL", emulator.url)
    ip = InteractiveShell.instance()
    ip.extension_manager.load_extension("mistral_magic")
    conversations.reset()
    yield ip
    conversations.reset()
    for name in ("ans", "_mistral", "City", "get_weather"):
        ip.user_ns.pop(name, None)


@pytest.fixture
def make_panel(shell: Any) -> Iterator[Callable[..., ChatPanel]]:
    """Panels with their own ``MistralMagics`` (so each event loop gets fresh HTTP clients)."""
    from mistral_magic.magics import MistralMagics

    made: list[Any] = []

    def factory(**kwargs: Any) -> ChatPanel:
        magics = MistralMagics(shell=shell)
        made.append(magics)
        return ChatPanel(magics=magics, **kwargs)

    yield factory
    for magics in made:
        for client in magics._clients.values():
            client.close()


def test_send_binds_result_and_renders_transcript(
    make_panel: Callable[..., ChatPanel], shell: Any, emulator: EmulatorHandle
) -> None:
    async def body() -> None:
        panel = make_panel()
        panel.temperature_w.value = "0.3"
        panel.top_p_w.value = "0.9"
        panel.max_tokens_w.value = "300"
        panel.min_tokens_w.value = "1"
        panel.seed_w.value = "7"
        panel.stop_w.value = "END\n\\n\\n"
        panel.system_w.value = "Be brief."
        panel.bind_w.value = "ans"
        assert panel.invalid_message == ""
        panel.prompt_w.value = "Explain markdown tables and code"
        panel.send_w.click()
        assert panel.busy and panel.send_w.disabled and not panel.stop_button.disabled
        result = await panel.wait()
        assert result is not None and result.text
        assert shell.user_ns["ans"] is result and shell.user_ns["_mistral"] is result
        assert not panel.busy and not panel.send_w.disabled and panel.stop_button.disabled
        assert panel.status_w.value == "done → ans"
        assert panel.prompt_w.value == ""

        (request,) = chat_requests(emulator)
        sent = request["body"]
        assert sent["temperature"] == 0.3 and sent["top_p"] == 0.9
        assert sent["max_tokens"] == 300 and sent["min_tokens"] == 1
        assert sent["random_seed"] == 7 and sent["stop"] == ["END", "\n\n"]
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}

        html = panel.transcript_html
        for cls in ("mm-turn", "mm-user", "mm-answer", "mm-usage"):
            assert f'class="{cls}' in html or f" {cls}" in html, cls
        assert "Explain markdown tables and code" in html
        assert '<div class="mm-md"><p>' in html  # the answer, rendered from Markdown
        assert "tok/s" in html and " in / " in html and "first token" in html
        roles = [m["role"] for m in panel.messages]
        assert roles == ["system", "user", "assistant"]
        assert panel.messages[-1]["content"] == result.text
        assert conversations.get("default").messages() == panel.messages

        # a second turn carries the history
        await panel.run("And in one sentence?")
        second = chat_requests(emulator)[-1]["body"]["messages"]
        assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]

    run(body())


def test_user_text_is_escaped(make_panel: Callable[..., ChatPanel]) -> None:
    async def body() -> None:
        panel = make_panel()
        evil = "<script>alert(1)</script> <img src=x onerror=alert(2)> & done"
        result = await panel.run(evil)
        assert result is not None and "<script>" in result.text  # the emulator echoes it back
        html = panel.transcript_html
        assert "<script" not in html and "<img" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "&lt;img src=x onerror=alert(2)&gt;" in html
        mirror = panel._mirror_bundle()["text/markdown"]
        assert "<script" not in mirror and "<img" not in mirror

    run(body())


def test_markdown_converter_emits_only_its_own_tags() -> None:
    html = markdown_html(
        "# Title\n\nSome **bold**, *it*, `<b>code</b>` and [link](https://example.com/a_b_c).\n\n"
        "[bad](javascript:alert(1)) <b onclick=x>raw</b>\n\n"
        "- one\n- two\n  - nested\n\n1. first\n2. second\n\n"
        "| a | b |\n|:--|--:|\n| 1 | <i>2</i> |\n\n"
        "```python\nif a < b:\n    print('<x>')\n```\n\n> quoted\n"
    )
    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html and "<em>it</em>" in html
    assert "<code>&lt;b&gt;code&lt;/b&gt;</code>" in html
    assert '<a href="https://example.com/a_b_c" target="_blank"' in html
    assert "javascript:" not in html.replace("bad", "")  # the label stays, the URL goes
    assert "&lt;b onclick=x&gt;raw&lt;/b&gt;" in html
    assert "<ul><li>one</li><li>two<ul><li>nested</li></ul></li></ul>" in html
    assert "<ol><li>first</li><li>second</li></ol>" in html
    assert '<th style="text-align:left">a</th>' in html and "&lt;i&gt;2&lt;/i&gt;" in html
    assert '<code class="language-python">if a &lt; b:' in html
    assert "<blockquote><p>quoted</p></blockquote>" in html
    assert "onclick=" not in html.replace("&lt;b onclick=x&gt;", "")
    assert neutralize_html("a <b> `<c>`\n```\n<d>\n```") == "a &lt;b> `<c>`\n```\n<d>\n```"


def test_stop_keeps_partial_and_closes_the_stream(
    make_panel: Callable[..., ChatPanel], emulator: EmulatorHandle
) -> None:
    prompt = "Write a long essay about the history of Rome"

    async def body() -> tuple[str, float]:
        panel = make_panel()
        emulator.set_token_delay(0.05)
        panel.prompt_w.value = prompt
        panel.send_w.click()
        await until(lambda: "Rome" in panel.transcript_html.split("mm-answer", 1)[-1])
        assert panel.busy
        open_before = len(emulator._server.connections)
        assert open_before >= 1
        started = time.monotonic()
        panel.stop_button.click()
        result = await panel.wait()
        elapsed = time.monotonic() - started
        assert result is not None and result.interrupted
        assert "■ stopped" in panel.transcript_html and "mm-stopped" in panel.transcript_html
        assert panel.status_w.value == "stopped" and not panel.busy
        assert not panel.send_w.disabled
        # the emulator sees the connection go away (it notices at its next write)
        await until(lambda: len(emulator._server.connections) < open_before, timeout=5)
        return result.text, elapsed

    partial, elapsed = run(body())
    assert elapsed < 0.5, f"Stop took {elapsed:.2f} s"
    emulator.set_token_delay(0)
    # the same request (deterministic emulator) gives the whole answer: ours is a strict prefix
    full = run(make_panel(conversation="other").run(prompt))
    assert full is not None and full.text.startswith(partial) and len(partial) < len(full.text)
    assert conversations.get("default").messages()[-1]["content"] == partial


def test_double_send_starts_one_request(
    make_panel: Callable[..., ChatPanel], emulator: EmulatorHandle
) -> None:
    async def body() -> None:
        panel = make_panel()
        emulator.set_token_delay(0.01)
        panel.prompt_w.value = "Hello there"
        panel.send_w.click()
        panel.prompt_w.value = "Hello again"
        panel.send_w.click()
        panel.prompt_w._handle_custom_msg({"event": "submit"}, [])  # Enter in the prompt box
        assert "already running" in panel.invalid_message
        await panel.wait()
        assert len(chat_requests(emulator)) == 1
        assert panel.transcript_html.count('class="mm-turn"') == 1

    run(body())


@pytest.mark.parametrize(
    ("control", "value", "message"),
    [
        ("temperature_w", "9", "temperature must be between 0 and 1.5"),
        ("temperature_w", "warm", "temperature: 'warm' is not a number"),
        ("top_p_w", "2", "top_p"),
        ("max_tokens_w", "1.5", "max_tokens: '1.5' is not an integer"),
        ("max_tokens_w", "-3", "max_tokens"),
        ("seed_w", "x", "random_seed"),
        ("model_w", "", "model: choose or type a model id"),
        ("bind_w", "1st answer", "not a valid variable name"),
        ("bind_w", "class", "not a valid variable name"),
    ],
)
def test_invalid_values_show_a_message_and_send_nothing(
    make_panel: Callable[..., ChatPanel],
    emulator: EmulatorHandle,
    control: str,
    value: str,
    message: str,
) -> None:
    async def body() -> None:
        panel = make_panel()
        getattr(panel, control).value = value
        assert message in panel.invalid_message  # shown as soon as the value changes
        assert "mm-invalid" in panel.message_w.value
        panel.prompt_w.value = "Hello"
        panel.send_w.click()
        assert not panel.busy and message in panel.invalid_message
        await asyncio.sleep(0.05)
        assert chat_requests(emulator) == []
        assert panel.prompt_w.value == "Hello"  # kept for the user to send once fixed

    run(body())


def test_empty_prompt_is_refused(make_panel: Callable[..., ChatPanel]) -> None:
    async def body() -> None:
        panel = make_panel()
        assert panel.submit("   ") is None
        assert panel.invalid_message == "write a prompt first"

    run(body())


def test_tools_schema_and_json_from_the_namespace(
    make_panel: Callable[..., ChatPanel], shell: Any, emulator: EmulatorHandle
) -> None:
    shell.user_ns.update(City=City, get_weather=get_weather)

    async def body() -> None:
        panel = make_panel()
        assert "schema: City" in panel.format_w.options
        assert panel.tools_w.options == ("get_weather",)  # IPython's own `open` etc. are not
        panel.tools_w.value = ("get_weather",)
        assert "get_weather" in [v for _, v in panel.tool_choice_w.options]
        panel.tool_choice_w.value = "get_weather"
        result = await panel.run("What is the weather in Paris?")
        assert result is not None and result.tool_results[0].content == "sunny in Paris"
        sent = chat_requests(emulator)[0]["body"]
        assert sent["tools"][0]["function"]["name"] == "get_weather"
        assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
        html = panel.transcript_html
        assert 'class="mm-tool"' in html and "get_weather(city=&quot;Paris&quot;)" in html
        assert "sunny in Paris" in html

        panel.tools_w.value = ()
        assert panel.tool_choice_w.value == ""
        panel.format_w.value = "schema: City"
        result = await panel.run("Give me a city")
        assert result is not None and isinstance(result.parsed, City)
        assert chat_requests(emulator)[-1]["body"]["response_format"]["type"] == "json_schema"

        panel.format_w.value = "JSON object"
        result = await panel.run("Give me a JSON object about a city")
        assert result is not None and isinstance(result.parsed, dict)

    run(body())


def test_error_with_hint_and_panel_stays_usable(
    make_panel: Callable[..., ChatPanel], emulator: EmulatorHandle
) -> None:
    async def body() -> None:
        panel = make_panel()
        emulator.inject("status", status=404)
        result = await panel.run("Hello")
        assert result is not None and result.error
        html = panel.transcript_html
        assert 'class="mm-error"' in html and "404" in html
        assert 'class="mm-hint"' in html and "Model Garden" in html
        assert panel.status_w.value == "error" and not panel.busy
        assert conversations.get("default").messages() == []  # a failed turn is not history
        again = await panel.run("Hello")
        assert again is not None and again.text and not again.error

    run(body())


def test_conversations_are_shared_with_the_magic(
    make_panel: Callable[..., ChatPanel], shell: Any, emulator: EmulatorHandle
) -> None:
    shell.run_cell_magic("mistral", "--chat team", "Hello from the magic")
    assert "team" in conversations

    async def body() -> None:
        panel = make_panel()
        assert "team" in panel.conversation_w.options
        panel.conversation_w.value = "team"
        assert "Hello from the magic" in panel.transcript_html
        await panel.run("Follow-up from the panel")
        messages = chat_requests(emulator)[-1]["body"]["messages"]
        assert [m["content"] for m in messages if m["role"] == "user"] == [
            "Hello from the magic",
            "Follow-up from the panel",
        ]
        assert len(conversations.get("team").messages()) == 4
        panel.clear_w.click()
        assert (
            conversations.get("team").messages() == []
            and panel.transcript_html.count("mm-turn") == 0
        )

    run(body())


def test_backend_switch_loads_the_model_list(
    make_panel: Callable[..., ChatPanel], emulator: EmulatorHandle
) -> None:
    async def body() -> None:
        panel = make_panel()
        assert panel.backend_w.value == "vertex" and panel.model_w.value == "mistral-small-2503"
        assert "codestral-2501" in panel.model_w.options
        panel.backend_w.value = "mistral"
        assert panel.model_w.value == "mistral-small-latest"  # the alias follows the backend
        assert panel._models_task is not None
        await panel._models_task
        assert "magistral-medium-latest" in panel.model_w.options  # from GET /v1/models
        panel.model_w.value = "my-custom-model"  # a Combobox: any id may be typed
        assert panel.invalid_message == ""

    run(body())


def test_repr_display_and_static_transcript(
    make_panel: Callable[..., ChatPanel], shell: Any
) -> None:
    from IPython.utils.capture import capture_output

    panel_from_magic = shell.run_line_magic("mistral", "panel")
    assert isinstance(panel_from_magic, ChatPanel)

    async def body() -> None:
        panel = make_panel()
        bundle = panel._repr_mimebundle_()
        assert bundle["text/plain"] == (
            "MistralChatPanel(model='mistral-small-2503', conversation='default')"
        )
        assert "application/vnd.jupyter.widget-view+json" in bundle
        with capture_output() as captured:
            panel._ipython_display_()
            await panel.run("Hello")
        widget, mirror, *updates = captured.outputs
        assert widget.data["text/plain"] == bundle["text/plain"]
        assert "(no messages yet)" in mirror.data["text/markdown"]
        assert updates and "**You:**" in updates[-1].data["text/markdown"]
        assert "Hello" in updates[-1].data["text/plain"]

    run(body())


def test_multiline_prompt_keeps_the_text(make_panel: Callable[..., ChatPanel]) -> None:
    panel = make_panel()
    panel.prompt_w.value = "first line"
    panel.multiline_w.value = True
    assert panel.prompt_area_w.value == "first line"
    panel.prompt_area_w.value = "first line\nsecond line"
    assert panel.prompt == "first line\nsecond line"
    panel.multiline_w.value = False
    assert panel.prompt_w.value == "first line\nsecond line"


def test_send_without_a_running_loop_says_so(make_panel: Callable[..., ChatPanel]) -> None:
    panel = make_panel()
    assert panel.submit("Hello") is None
    assert "no running event loop" in panel.invalid_message


# -- through a real kernel ------------------------------------------------------------------


@pytest.fixture
def kernel(emulator: EmulatorHandle) -> Iterator[Any]:
    from jupyter_client.manager import start_new_kernel

    env = dict(os.environ, MISTRAL_MAGIC_SERVER_URL=emulator.url)
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _execute(kc: Any, code: str, timeout: float = 60) -> tuple[dict[str, Any], list[Any], float]:
    """Run ``code``; return its reply, its own iopub outputs and when the reply arrived."""
    msg_id = kc.execute(code)
    reply = kc.get_shell_msg(timeout=timeout)
    arrived = time.monotonic()
    assert reply["parent_header"]["msg_id"] == msg_id
    outputs = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] in ("stream", "display_data", "update_display_data",
                               "execute_result", "error"):  # fmt: skip
            outputs.append((msg["msg_type"], msg["content"]))
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    return reply["content"], outputs, arrived


@pytest.mark.slow
def test_kernel_cells_run_while_the_panel_streams(
    kernel: tuple[Any, Any], emulator: EmulatorHandle
) -> None:
    km, kc = kernel
    reply, _, _ = _execute(kc, "%load_ext mistral_magic\nimport time\np = %mistral panel")
    assert reply["status"] == "ok"
    emulator.set_token_delay(0.05)
    sent = time.monotonic()
    reply, out, _ = _execute(kc, "p.submit('Write a long essay about the history of Rome')")
    assert reply["status"] == "ok"
    reply, out, quick = _execute(kc, "1+1")
    assert reply["status"] == "ok"
    assert out == [("execute_result", {"data": {"text/plain": "2"}, "metadata": {},
                                       "execution_count": reply["execution_count"]})]  # fmt: skip
    reply, out, _ = _execute(kc, "r = await p.wait(); print(r.finish_reason, len(r.text))")
    done = time.monotonic()
    assert reply["status"] == "ok" and out[0][1]["text"].startswith("stop ")
    # `1+1` came back while the stream still had most of its way to go
    assert quick - sent < (done - sent) / 2, (quick - sent, done - sent)

    # an interrupt while a cell awaits the panel stops the turn and leaves the panel usable
    msg_id = kc.execute("p.submit('Write a long essay about the history of Rome'); "
                        "await p.wait()")  # fmt: skip
    deadline = time.monotonic() + 10
    while True:  # until the stream is under way
        msg = kc.get_iopub_msg(timeout=10)
        if msg["msg_type"] == "status" and msg["parent_header"].get("msg_id") == msg_id:
            break
        assert time.monotonic() < deadline
    time.sleep(0.5)
    km.interrupt_kernel()
    while True:
        msg = kc.get_shell_msg(timeout=10)
        if msg["parent_header"]["msg_id"] == msg_id:
            break
    emulator.set_token_delay(0)
    code = "print(p.busy, p.send_w.disabled, p.status_w.value, p.last_result.interrupted)"
    reply, out, _ = _execute(kc, code)
    assert out[0][1]["text"].split() == ["False", "False", "stopped", "True"], out
    reply, out, _ = _execute(kc, "r = await p.run('Hello'); print(bool(r.text), r.error)")
    assert out[0][1]["text"].split() == ["True", "None"]
    _ = queue  # jupyter_client raises queue.Empty on timeouts
