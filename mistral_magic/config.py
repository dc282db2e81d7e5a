"""Settings of the magic and the panel, and where each value came from.

Resolution order, first that has a value wins: a magic flag, the session (``%mistral config``),
IPython configuration (``%config MistralMagics.x`` or ``ipython_config.py``), the environment,
then built-in defaults. Secrets (API key, access token) come only from the environment or the
session and are masked whenever settings are shown.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from . import _redact
from .backends import BACKENDS, DEFAULT_MODEL_ALIAS, DEFAULT_REGION, Backend

if TYPE_CHECKING:
    pass

SOURCES: Final = ("flag", "session", "config", "env", "default")

#: setting -> environment variable
ENV_VARS: Final[dict[str, str]] = {
    "backend": "MISTRAL_MAGIC_BACKEND",
    "model": "MISTRAL_MAGIC_MODEL",
    "server_url": "MISTRAL_MAGIC_SERVER_URL",
    "api_key": "MISTRAL_API_KEY",
    "project": "GOOGLE_CLOUD_PROJECT",
    "region": "GOOGLE_CLOUD_REGION",
    "access_token": "GOOGLE_OAUTH_ACCESS_TOKEN",
}
SECRETS: Final = frozenset({"api_key", "access_token"})

#: settings shown by ``%mistral config``, with their help text (all but the secrets may be set
#: with ``key=value``; a secret on a magic line is refused before it can be saved)
SETTINGS_HELP: Final[dict[str, str]] = {
    "backend": "vertex, mistral or auto (auto: an API key means api.mistral.ai, else Vertex AI)",
    "model": "model id or alias (small, medium, large, codestral)",
    "region": "Vertex AI region",
    "project": "Google Cloud project id",
    "server_url": "replace the service's scheme and host (e.g. the emulator's URL)",
    "api_key": "api.mistral.ai key: from MISTRAL_API_KEY only, never typed in a notebook",
    "access_token": "static Google access token: from GOOGLE_OAUTH_ACCESS_TOKEN only",
}
DEFAULTS: Final[dict[str, str | None]] = {
    "backend": "auto",
    "model": DEFAULT_MODEL_ALIAS,
    "region": DEFAULT_REGION,
    "project": None,
    "server_url": None,
    "api_key": None,
    "access_token": None,
}

#: every response of the magic and the panel is also bound to this notebook variable
RESULT_VAR: Final = "_mistral"
#: the tool_choice strings both front doors offer (besides a tool's name)
TOOL_CHOICES: Final = ("auto", "none", "any", "required")

EMULATOR_TOKEN: Final = "emulator-token"
EMULATOR_PROJECT: Final = "emulator-project"


@dataclass(frozen=True)
class Setting:
    """One resolved value and where it came from."""

    value: str | None
    source: str

    def shown(self, name: str) -> str:
        if self.value is None:
            return "(not set)"
        return _redact.mask(self.value) if name in SECRETS else self.value


@dataclass(frozen=True)
class Settings:
    """The effective endpoint settings."""

    values: Mapping[str, Setting] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str | None:
        return self.values[name].value

    def source(self, name: str) -> str:
        return self.values[name].source

    @property
    def backend(self) -> Backend:
        value = self["backend"]
        assert value in BACKENDS
        return value

    @property
    def uses_local_server(self) -> bool:
        """True when server_url points at this machine (the emulator): placeholder credentials."""
        return is_loopback_url(self["server_url"])

    def table(self) -> list[tuple[str, str, str]]:
        """(name, shown value, source) rows with secrets masked."""
        return [(name, s.shown(name), s.source) for name, s in self.values.items()]

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={v!r}" for n, v, _ in self.table())
        return f"Settings({inner})"


def is_loopback_url(url: str | None) -> bool:
    if not url:
        return False
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve(
    *,
    flags: Mapping[str, Any] | None = None,
    session: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every endpoint setting from the four layers, then choose the backend."""
    env = os.environ if env is None else env
    layers: list[tuple[str, Mapping[str, Any]]] = [
        ("flag", flags or {}),
        ("session", session or {}),
        ("config", config or {}),
        ("env", {name: env.get(var) for name, var in ENV_VARS.items()}),
        ("default", DEFAULTS),
    ]
    values: dict[str, Setting] = {}
    for name in DEFAULTS:
        for source, layer in layers:
            value = layer.get(name)
            if value is not None and value != "":
                values[name] = Setting(str(value), source)
                break
        else:
            values[name] = Setting(None, "default")
    backend = (values["backend"].value or "auto").lower()
    if backend not in (*BACKENDS, "auto"):
        from .errors import ConfigError  # imported late: pydantic is heavy at extension load

        raise ConfigError(f"unknown backend {backend!r}: use vertex, mistral or auto")
    if backend == "auto":
        chosen = "mistral" if values["api_key"].value else "vertex"
        why = "auto: MISTRAL_API_KEY set" if chosen == "mistral" else "auto: no API key"
        values["backend"] = Setting(chosen, why)
    for secret in SECRETS:
        if values[secret].value:
            _redact.register_secret(values[secret].value or "")
    return Settings(values)


NO_CREDENTIALS_HELP: Final = (
    "no credentials for Mistral: set MISTRAL_API_KEY for api.mistral.ai, or for Vertex AI run "
    "`gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS or "
    "GOOGLE_OAUTH_ACCESS_TOKEN) and set GOOGLE_CLOUD_PROJECT; `%mistral emulator` runs "
    "everything offline"
)
