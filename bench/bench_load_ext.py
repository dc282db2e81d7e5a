"""How much ``%load_ext mistral_magic`` adds to a fresh IPython start.

Each sample is a new interpreter (``python -c``) that creates an IPython shell, with and without
loading the extension; runs alternate so machine load affects both alike. The figure is the
difference of the medians. Target (issue 3): less than 150 ms.

Command (from the repository root)::

    python bench/bench_load_ext.py            # 21 runs of each
    python bench/bench_load_ext.py --runs 41
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

BASE = (
    "from IPython.core.interactiveshell import InteractiveShell\n"
    "ip = InteractiveShell.instance()\n"
)
WITH_EXT = BASE + "ip.run_line_magic('load_ext', 'mistral_magic')\n"
# What the extension costs inside the process, measured there (no interpreter start noise).
INNER = (
    BASE
    + "import time\nt = time.perf_counter()\n"
    + "ip.run_line_magic('load_ext', 'mistral_magic')\n"
    + "print(time.perf_counter() - t)\n"
)


def sample(code: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MISTRAL_", "GOOGLE_"))}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    opts = parser.parse_args()
    sample(WITH_EXT)  # warm the file cache and bytecode
    without, with_ext, inner = [], [], []
    for _ in range(opts.runs):
        without.append(sample(BASE))
        with_ext.append(sample(WITH_EXT))
        out = subprocess.run([sys.executable, "-c", INNER], check=True, capture_output=True,
                             text=True).stdout
        inner.append(float(out.strip().splitlines()[-1]))
    a, b = statistics.median(without), statistics.median(with_ext)
    c = statistics.median(inner)
    print(f"{'start':<36} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
    print("-" * 65)
    print(f"{'IPython shell':<36} {a * 1000:>10.0f} {min(without) * 1000:>8.0f} "
          f"{max(without) * 1000:>8.0f}")
    print(f"{'IPython shell + %load_ext':<36} {b * 1000:>10.0f} {min(with_ext) * 1000:>8.0f} "
          f"{max(with_ext) * 1000:>8.0f}")
    print(f"{'%load_ext alone (in process)':<36} {c * 1000:>10.0f} {min(inner) * 1000:>8.0f} "
          f"{max(inner) * 1000:>8.0f}")
    added = b - a
    print(f"added by %load_ext mistral_magic: {added * 1000:.0f} ms (median of {opts.runs} "
          f"runs; target < 150 ms)")
    return 0 if added < 0.150 else 2


if __name__ == "__main__":
    sys.exit(main())
