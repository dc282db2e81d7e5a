"""Property test: no magic line crashes ``%%mistral`` with anything but the package's own errors.

Every line is run with ``--dry-run`` appended, so nothing can be sent; the emulator's request log
proves it.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

from mistral_magic.errors import MistralError
from mistral_magic.magics import CellError

OPTIONS = [
    "-m", "--model", "-t", "--temperature", "--top-p", "--max-tokens", "--min-tokens", "--stop",
    "--seed", "--json", "--schema", "--tools", "--tool-choice", "--system", "-o", "--out",
    "--no-stream", "--chat", "--backend", "--retries", "--no-interpolate", "--debug",
]
VALUES = st.one_of(
    st.sampled_from(["0", "1.5", "-1", "2", "nan", "inf", "1e9", "small", "vertex", "mistral",
                     "auto", "any", "none", "x", "'a b'", '"q"', "{x}", "len", "print", "''"]),
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)
LINES = st.one_of(
    st.text(max_size=60),
    st.lists(st.one_of(st.sampled_from(OPTIONS), VALUES), max_size=8).map(" ".join),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(line=LINES)
def test_any_line_fails_only_with_our_errors(ipshell: Any, emulator: Any, line: str) -> None:
    with contextlib.suppress(UsageError, CellError, MistralError):
        ipshell.run_cell_magic("mistral", f"{line} --dry-run", "Hello")
    assert not [r for r in emulator.requests if r["path"] != "/_emulator/health"]
