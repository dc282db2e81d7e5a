"""Shared fixtures: a loopback emulator and a clean environment for every test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from mistral_magic.emulator import EmulatorHandle, serve

_ENV_PREFIXES = ("MISTRAL_", "GOOGLE_")  # MISTRAL_ also covers MISTRAL_MAGIC_*
_ENV_NAMES = ("CLOUD_ML_REGION",)


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's credentials and settings out of every test."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) or name in _ENV_NAMES:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorHandle]:
    """One emulator on a free loopback port for the whole session."""
    with serve() as handle:
        yield handle


@pytest.fixture
def emulator(emulator_server: EmulatorHandle) -> Iterator[EmulatorHandle]:
    """The session emulator with no faults, an empty request log and no token delay."""
    emulator_server.clear_faults()
    emulator_server.clear_requests()
    emulator_server.set_token_delay(0)
    yield emulator_server
    emulator_server.clear_faults()
    emulator_server.set_token_delay(0)
