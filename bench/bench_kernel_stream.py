"""Stream a 20,000-token answer through a real kernel and measure what goes over IOPub.

The emulator runs in this process on loopback with no token delay; a kernel of this
interpreter (``python -m ipykernel_launcher``) runs ``%%mistral --min-tokens 20000
--max-tokens 20000``. Every IOPub message of that cell is received here and counted:

* display messages (``display_data`` + ``update_display_data`` + ``execute_result``) and their
  rate over the cell's run time (execute request sent -> kernel idle again);
* bytes of message *content* (JSON) on IOPub, all message types, against the answer's size
  (UTF-8 bytes of the final text).

Targets (issue 3): at most 20 display messages per second, at most 5x the answer's bytes.

Command (from the repository root)::

    python bench/bench_kernel_stream.py            # 3 runs, median
    python bench/bench_kernel_stream.py --runs 5 --tokens 20000
    python bench/bench_kernel_stream.py --tokens 1000 --token-delay 0.01   # ~100 tokens/s

``--token-delay`` makes the emulator pause between chunks (a realistic rate instead of a
loopback burst), where resending the shown text on every update would be quadratic.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

from ipykernel.kernelspec import get_kernel_dict
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import KernelManager

from mistral_magic.emulator import serve

DISPLAY_TYPES = ("display_data", "update_display_data", "execute_result")


def start_kernel(env: dict[str, str]) -> tuple[KernelManager, Any]:
    """A kernel of this very interpreter (like ``--nbval-current-env``) and a blocking client."""
    km = KernelManager(kernel_name="python3")
    km._kernel_spec = KernelSpec(resource_dir="", **get_kernel_dict())
    km.start_kernel(env=env)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc


def run_cell(kc: Any, code: str, timeout: float = 300) -> tuple[list[dict[str, Any]], float]:
    """Execute ``code``; return its IOPub messages (until idle) and the wall time."""
    started = time.perf_counter()
    msg_id = kc.execute(code, store_history=False)
    messages: list[dict[str, Any]] = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    elapsed = time.perf_counter() - started
    kc.get_shell_msg(timeout=timeout)
    return messages, elapsed


def clean_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MISTRAL_", "GOOGLE_"))}
    env["MISTRAL_MAGIC_SERVER_URL"] = url
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--token-delay", type=float, default=0.0, help="seconds between streamed chunks"
    )
    opts = parser.parse_args()

    with serve() as emulator:
        emulator.set_token_delay(opts.token_delay)
        km, kc = start_kernel(clean_env(emulator.url))
        try:
            run_cell(kc, "%load_ext mistral_magic")
            cell = (
                f"%%mistral -o ans --min-tokens {opts.tokens} --max-tokens {opts.tokens}\n"
                "Write a very long essay about streaming, with code and lists."
            )
            rows = []
            for _ in range(opts.runs):
                messages, elapsed = run_cell(kc, cell)
                errors = [m for m in messages if m["msg_type"] == "error"]
                if errors:
                    print("cell failed:", errors[0]["content"]["evalue"], file=sys.stderr)
                    return 1
                counts = {t: sum(m["msg_type"] == t for m in messages) for t in DISPLAY_TYPES}
                content_bytes = sum(len(json.dumps(m["content"]).encode()) for m in messages)
                check, _ = run_cell(
                    kc, "print(len(ans.text.encode()), ans.usage.completion_tokens, "
                    "ans.finish_reason)"
                )
                out = "".join(m["content"].get("text", "") for m in check
                              if m["msg_type"] == "stream")
                answer_bytes, tokens, reason = out.split()
                shown = sum(counts.values())
                rows.append(
                    {
                        "tokens": int(tokens),
                        "answer_bytes": int(answer_bytes),
                        "finish": reason,
                        "seconds": elapsed,
                        **counts,
                        "display_msgs": shown,
                        "msgs_per_s": shown / elapsed,
                        "iopub_bytes": content_bytes,
                        "ratio": content_bytes / int(answer_bytes),
                    }
                )
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)

    head = (
        f"{'run':>3} {'tokens':>7} {'answer B':>9} {'time s':>7} {'display':>7} {'update':>6} "
        f"{'result':>6} {'msgs/s':>7} {'IOPub B':>9} {'x answer':>8}"
    )
    print(head)
    print("-" * len(head))
    for i, r in enumerate(rows, 1):
        print(
            f"{i:>3} {r['tokens']:>7} {r['answer_bytes']:>9} {r['seconds']:>7.2f} "
            f"{r['display_data']:>7} {r['update_display_data']:>6} {r['execute_result']:>6} "
            f"{r['msgs_per_s']:>7.1f} {r['iopub_bytes']:>9} {r['ratio']:>8.2f}"
        )
    print(f"token delay: {opts.token_delay:g} s")
    rate = statistics.median(r["msgs_per_s"] for r in rows)
    ratio = statistics.median(r["ratio"] for r in rows)
    print(
        f"median: {rate:.1f} display messages/s (target <= 20), "
        f"{ratio:.2f}x the answer's bytes (target <= 5)"
    )
    return 0 if rate <= 20 and ratio <= 5 else 2


if __name__ == "__main__":
    sys.exit(main())
