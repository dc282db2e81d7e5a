"""%%mistral through a real kernel (jupyter_client, a kernel of this interpreter as with
``--nbval-current-env``) against the emulator running in this process on loopback.

One kernel for the whole module. Covers the IOPub protocol of a streamed cell (display, updates,
execute_result with Markdown, text and provenance), notebook detection, the cell id of
``--chat`` turns, a kernel interrupt mid-stream, and the issue-6 soak: 50 interrupted requests in
a row without leaking file descriptors or threads.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from ipykernel.kernelspec import get_kernel_dict
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import KernelManager

pytestmark = pytest.mark.slow

DISPLAY_TYPES = ("display_data", "update_display_data", "execute_result")


class Kernel:
    """A started kernel and a blocking client, with small helpers."""

    def __init__(self, env: dict[str, str]) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.km._kernel_spec = KernelSpec(resource_dir="", **get_kernel_dict())
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def stop(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    def collect(self, msg_id: str, timeout: float = 60) -> list[dict[str, Any]]:
        """IOPub messages of one request, until the kernel is idle again."""
        messages = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(deadline - time.monotonic(), 0.1))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            messages.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return messages

    def execute(self, code: str, *, metadata: dict[str, Any] | None = None) -> str:
        if metadata is None:
            return str(self.kc.execute(code, store_history=False))
        content = {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        msg = self.kc.session.msg("execute_request", content, metadata=metadata)
        self.kc.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])

    def run(self, code: str, **kw: Any) -> list[dict[str, Any]]:
        msg_id = self.execute(code, **kw)
        messages = self.collect(msg_id)
        self.kc.get_shell_msg(timeout=30)
        return messages

    def value(self, expression: str) -> Any:
        """Evaluate ``expression`` in the kernel; it must produce JSON."""
        messages = self.run(f"import json as _j; print(_j.dumps({expression}))")
        errors = [m for m in messages if m["msg_type"] == "error"]
        assert not errors, errors[0]["content"]["evalue"]
        out = "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")
        return json.loads(out)


def errors_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["content"] for m in messages if m["msg_type"] == "error"]


@pytest.fixture(scope="module")
def kernel(emulator_server: Any) -> Iterator[Kernel]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MISTRAL_", "GOOGLE_"))}
    env["MISTRAL_MAGIC_SERVER_URL"] = emulator_server.url
    k = Kernel(env)
    try:
        assert not errors_of(k.run("%load_ext mistral_magic"))
        yield k
    finally:
        k.stop()


def test_streamed_cell_protocol(kernel: Kernel, emulator: Any) -> None:
    emulator.set_token_delay(0.002)
    messages = kernel.run("%%mistral -o ans --seed 5 --min-tokens 150 --max-tokens 150\nExplain")
    assert not errors_of(messages)
    kinds = [m["msg_type"] for m in messages if m["msg_type"] in DISPLAY_TYPES]
    assert kinds[0] == "display_data"
    assert "update_display_data" in kinds
    assert kinds[-1] == "execute_result"
    first = next(m for m in messages if m["msg_type"] == "display_data")
    assert first["content"]["data"] == {"text/plain": ""}  # what nbval sees
    display_id = first["content"]["transient"]["display_id"]
    updates = [m for m in messages if m["msg_type"] == "update_display_data"]
    assert all(u["content"]["transient"]["display_id"] == display_id for u in updates)
    assert any("text/markdown" in u["content"]["data"] for u in updates)
    assert updates[-1]["content"]["data"] == {"text/plain": ""}  # blanked at the end
    result = next(m for m in messages if m["msg_type"] == "execute_result")["content"]
    text = kernel.value("ans.text")
    assert result["data"]["text/plain"].startswith(text)
    assert text in result["data"]["text/markdown"]
    prov = result["metadata"]["mistral_magic"]
    assert prov["model"] == "mistral-small-2503"
    assert prov["backend"] == "vertex"
    assert prov["region"] == "europe-west4"
    assert prov["seed"] == 5
    assert prov["request_id"]
    assert prov["usage"]["completion_tokens"] == 150
    # few messages: throttled updates, not one per token
    assert len(kinds) < 150


def test_kernel_is_a_notebook_not_a_terminal(kernel: Kernel) -> None:
    assert kernel.value("get_ipython().magics_manager.registry['MistralMagics'].is_terminal()") \
        is False


def test_chat_turn_uses_the_cell_id(kernel: Kernel, emulator: Any) -> None:
    kernel.run("%mistral reset")
    meta = {"cellId": "9f1c-cell"}
    assert not errors_of(kernel.run("%%mistral --chat k\nFirst", metadata=meta))
    assert not errors_of(kernel.run("%%mistral --chat k\nFirst, edited", metadata=meta))
    keys = kernel.value(
        "[t.key for t in __import__('mistral_magic.session').session.conversations.get('k').turns]"
    )
    assert keys == ["cell:9f1c-cell"]
    # without a cell id (nbclient, jupyter_client) the source hash is the key
    kernel.run("%%mistral --chat k\nSecond")
    kernel.run("%%mistral --chat k\nSecond")
    keys = kernel.value(
        "[t.key for t in __import__('mistral_magic.session').session.conversations.get('k').turns]"
    )
    assert len(keys) == 2 and keys[1].startswith("src:")


def interrupt_stream(kernel: Kernel) -> list[dict[str, Any]]:
    """Start a slow stream, interrupt it once text is on screen, return the cell's messages."""
    msg_id = kernel.execute("%%mistral -o ans --min-tokens 2000 --max-tokens 2000\nA long story")
    messages = []
    while True:
        msg = kernel.kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "update_display_data" and "text/markdown" in msg["content"]["data"]:
            break
        assert msg["msg_type"] != "status" or msg["content"]["execution_state"] != "idle"
    kernel.km.interrupt_kernel()
    messages += kernel.collect(msg_id)
    kernel.kc.get_shell_msg(timeout=30)
    return messages


def test_interrupt_keeps_partial_answer(kernel: Kernel, emulator: Any) -> None:
    emulator.set_token_delay(0.01)
    messages = interrupt_stream(kernel)
    errors = errors_of(messages)
    assert len(errors) == 1
    assert errors[0]["ename"] == "GenerationInterrupted"
    assert len(errors[0]["traceback"]) == 1  # one line, no Python traceback
    state = kernel.value("[ans.finish_reason, len(ans.text), ans.usage.completion_tokens]")
    assert state[0] == "interrupted"
    assert state[1] > 0
    # the partial answer stays on screen, as a display of the bound result
    shown = [m for m in messages if m["msg_type"] == "display_data"
             and "text/markdown" in m["content"]["data"]]
    assert shown and "interrupted" in shown[-1]["content"]["data"]["text/markdown"]
    assert shown[-1]["content"]["metadata"]["mistral_magic"]["finish_reason"] == "interrupted"
    # the next cell and the next request work
    emulator.set_token_delay(0)
    assert not errors_of(kernel.run("%%mistral -o ans\nhi"))
    assert kernel.value("ans.finish_reason") == "stop"


PROBE = (
    "[len(__import__('os').listdir('/proc/self/fd')), __import__('threading').active_count()]"
)


def test_soak_fifty_interrupts_leak_nothing(kernel: Kernel, emulator: Any) -> None:
    emulator.set_token_delay(0)
    assert not errors_of(kernel.run("%%mistral\nwarm up"))  # pool and threads in place
    fds_before, threads_before = kernel.value(PROBE)
    emulator.set_token_delay(0.01)
    for _ in range(50):
        messages = interrupt_stream(kernel)
        assert [e["ename"] for e in errors_of(messages)] == ["GenerationInterrupted"]
        assert kernel.value("ans.finish_reason") == "interrupted"
    emulator.set_token_delay(0)
    assert not errors_of(kernel.run("%%mistral -o ans\nhi"))
    assert kernel.value("ans.finish_reason") == "stop"
    fds_after, threads_after = kernel.value(PROBE)
    assert fds_after <= fds_before + 2, (fds_before, fds_after)
    assert threads_after <= threads_before + 1, (threads_before, threads_after)
