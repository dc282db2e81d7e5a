"""Shared fixtures: a loopback emulator and a clean environment for every test."""

from __future__ import annotations

import copy
import os

# Before anything imports google.auth (it reads this once): never probe the GCE metadata server.
os.environ["NO_GCE_CHECK"] = "true"

import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from mistral_magic.emulator import EmulatorHandle, serve

_ENV_PREFIXES = ("MISTRAL_", "GOOGLE_")  # MISTRAL_ also covers MISTRAL_MAGIC_*
_ENV_NAMES = ("CLOUD_ML_REGION", "GCLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT")
# An empty gcloud config directory: the developer's own ADC file is never found.
_EMPTY_GCLOUD_CONFIG = tempfile.mkdtemp(prefix="mm-gcloud-")


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's credentials and settings out of every test."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) or name in _ENV_NAMES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", _EMPTY_GCLOUD_CONFIG)
    monkeypatch.setenv("NO_GCE_CHECK", "true")


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorHandle]:
    """One emulator on a free loopback port for the whole session."""
    with serve() as handle:
        yield handle


@pytest.fixture
def emulator(emulator_server: EmulatorHandle) -> Iterator[EmulatorHandle]:
    """The session emulator with no faults, empty request logs and no delays."""
    emulator_server.clear_faults()
    emulator_server.clear_requests()
    emulator_server.clear_token_requests()
    emulator_server.set_token_delay(0)
    emulator_server.set_oauth(delay=0, expires_in=3600)
    yield emulator_server
    emulator_server.clear_faults()
    emulator_server.set_token_delay(0)
    emulator_server.set_oauth(delay=0, expires_in=3600)


# --------------------------------------------------------------------------- client fixtures

ACCESS_TOKEN = "ya29.test-access-token-0123456789"
API_KEY = "mk-test-api-key-0123456789abcdef"
PROJECT = "test-project"
REGION = "europe-west4"


@pytest.fixture
def vertex(emulator: EmulatorHandle) -> Iterator[Any]:
    """A ``MistralGCP`` with a static token, pointed at the emulator."""
    from mistral_magic.client import MistralGCP

    client = MistralGCP(
        region=REGION, project_id=PROJECT, access_token=ACCESS_TOKEN, server_url=emulator.url
    )
    yield client
    client.close()


@pytest.fixture
def mistral(emulator: EmulatorHandle) -> Iterator[Any]:
    """A ``Mistral`` client with an API key, pointed at the emulator."""
    from mistral_magic.client import Mistral

    client = Mistral(api_key=API_KEY, server_url=emulator.url)
    yield client
    client.close()


# -- IPython shell with the magic loaded (tests/test_magics*.py) ---------------------------------


from IPython.core.displaypub import DisplayPublisher  # noqa: E402


class DisplayRecorder(DisplayPublisher):  # type: ignore[misc]
    """Stands in for the shell's display publisher: records every display and update."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.messages: list[dict[str, object]] = []

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kw):  # type: ignore[no-untyped-def]
        self.messages.append(
            {"data": dict(data), "metadata": metadata or {}, "transient": transient or {},
             "update": update}
        )

    def clear_output(self, wait=False):  # type: ignore[no-untyped-def]
        self.messages.append({"clear": True})

    def final_outputs(self) -> list[dict[str, object]]:
        """What a notebook would save: each display in its last state, in creation order."""
        order: list[str] = []
        state: dict[str, dict[str, object]] = {}
        plain: list[dict[str, object]] = []
        for m in self.messages:
            display_id = (m.get("transient") or {}).get("display_id")  # type: ignore[union-attr]
            if display_id is None:
                plain.append(m)
                order.append(f"#{len(plain) - 1}")
                continue
            if display_id not in state:
                order.append(display_id)
            state[display_id] = m
        return [plain[int(k[1:])] if k.startswith("#") else state[k] for k in order]

    def first_outputs(self) -> list[dict[str, object]]:
        """What nbval sees: display_data messages only (updates ignored)."""
        return [m for m in self.messages if not m.get("update") and "data" in m]


@pytest.fixture
def ipshell(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A notebook-like IPython shell (rich display) with ``%load_ext mistral_magic`` done,
    pointed at the in-process emulator; ``ipshell.recorder`` holds the displays."""
    from IPython.core.interactiveshell import InteractiveShell

    from mistral_magic.session import conversations

    monkeypatch.setenv("MISTRAL_MAGIC_SERVER_URL", emulator.url)
    shell = InteractiveShell.instance()
    recorder = DisplayRecorder(shell=shell)
    monkeypatch.setattr(shell, "display_pub", recorder)
    shell.run_line_magic("load_ext", "mistral_magic")
    magics = shell.magics_manager.registry["MistralMagics"]
    defaults = {name: trait.default() for name, trait in magics.traits(config=True).items()}

    def reset() -> None:
        magics.session_settings.clear()
        magics.usage.clear()
        for trait, value in defaults.items():
            setattr(magics, trait, value)
        conversations.reset()

    reset()
    for name in [n for n in shell.user_ns if n in ("_mistral", "ans") or n.startswith("t_")]:
        del shell.user_ns[name]
    before = set(shell.user_ns)
    # %config writes into the shell's config too, which later MistralMagics instances read.
    saved_config = copy.deepcopy(shell.config.MistralMagics)
    shell.recorder = recorder
    shell.mistral_magics = magics
    yield shell
    # The shell is a process-wide singleton: leave it as we found it for later tests.
    for name in set(shell.user_ns) - before:
        del shell.user_ns[name]
    shell.config["MistralMagics"] = saved_config
    reset()


# --------------------------------------------------------------------------- network guard

_LOOPBACK_NAMES = frozenset({"127.0.0.1", "::1", "localhost", "localhost.localdomain", ""})


def _is_loopback_host(host: object) -> bool:
    import ipaddress

    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any name lookup or connection that is not to the loopback interface."""
    import socket

    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback_host(host):
            raise socket.gaierror(socket.EAI_NONAME, f"test network guard: lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback_host(address[0]):
            raise ConnectionRefusedError(f"test network guard: connect to {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
