"""Cost of consuming a 10,000-chunk stream: raw httpx (the floor), our client, the official SDK.

    python bench/bench_stream.py [--chunks 10000] [--repeat 7]

A subprocess serves one prebuilt SSE body on loopback, so the time measured is the client's:
CPU seconds of this process (``time.process_time``) and wall seconds, median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from mistral_magic import MistralGCP

MODEL = "mistral-small-2503"
MESSAGES = [{"role": "user", "content": "Who is the best French painter? Answer in one sentence."}]


PATH = f"/v1/projects/p/locations/europe-west4/publishers/mistralai/models/{MODEL}:streamRawPredict"


def floor(client: httpx.Client, url: str) -> int:
    """Raw httpx line iteration with json.loads: the least any client can do."""
    count = 0
    with client.stream(
        "POST", url + PATH, json={"model": MODEL, "messages": MESSAGES, "stream": True},
        headers={"Authorization": "Bearer t", "Accept": "text/event-stream"},
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                data = line[6:]
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if chunk["choices"][0]["delta"].get("content") is not None:
                    count += 1
    return count


def ours(client: MistralGCP, url: str) -> int:
    count = 0
    with client.chat.stream(model=MODEL, messages=MESSAGES) as stream:
        for event in stream:
            if event.data.choices[0].delta.content is not None:
                count += 1
    return count


def official(client: Any, url: str) -> int:
    count = 0
    with client.chat.stream(model=MODEL, messages=MESSAGES) as stream:
        for event in stream:
            if event.data.choices[0].delta.content is not None:
                count += 1
    return count


Way = tuple[str, Callable[[Any, str], int], Any]


def measure(
    ways: list[Way], url: str, expected: int, repeat: int
) -> dict[str, tuple[float, float]]:
    """Median CPU and wall seconds per way; runs are interleaved so that load hits all alike."""
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in ways}
    wall: dict[str, list[float]] = {name: [] for name, _, _ in ways}
    for _, fn, client in ways:  # warm up imports, pools and connections
        fn(client, url)
    for _ in range(repeat):
        for name, fn, client in ways:
            c0, w0 = time.process_time(), time.perf_counter()
            got = fn(client, url)
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
            if got != expected:
                raise SystemExit(f"{name}: read {got} content chunks, expected {expected}")
    return {name: (statistics.median(cpu[name]), statistics.median(wall[name])) for name in cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_sse_server.py")), str(args.chunks)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        expected = args.chunks + 2  # the empty role chunk and the final "." chunk count too
        ways: list[Way] = [
            ("raw httpx + json.loads (floor)", floor, httpx.Client()),
            ("mistral_magic chat.stream", ours,
             MistralGCP(project_id="p", access_token="t", server_url=url)),
        ]
        try:
            from mistralai.gcp.client import MistralGCP as OfficialGCP

            ways.append(("official mistralai SDK", official,
                         OfficialGCP(project_id="p", access_token="t", server_url=url)))
        except ImportError:
            print("official SDK not installed: pip install 'mistralai[gcp]' to compare")
        results = measure(ways, url, expected, args.repeat)
        base_cpu, base_wall = results[ways[0][0]]
        print(f"{args.chunks} chunks, median of {args.repeat} runs")
        print(f"{'way':<34}{'CPU s':>8}{'wall s':>9}{'CPU x floor':>13}{'wall x floor':>14}")
        for name, (cpu, wall) in results.items():
            ratios = f"{cpu / base_cpu:>13.2f}{wall / base_wall:>14.2f}"
            print(f"{name:<34}{cpu:>8.3f}{wall:>9.3f}{ratios}")
    finally:
        server.kill()


if __name__ == "__main__":
    main()
