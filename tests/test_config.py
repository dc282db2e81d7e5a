"""Settings resolution: flag > session > config > env > default, sources, secrets masked."""

from __future__ import annotations

import pytest

from mistral_magic import config
from mistral_magic.errors import ConfigError


def test_precedence_and_sources() -> None:
    env = {"MISTRAL_MAGIC_MODEL": "env-model", "GOOGLE_CLOUD_REGION": "us-central1"}
    s = config.resolve(env=env)
    assert (s["model"], s.source("model")) == ("env-model", "env")
    assert (s["region"], s.source("region")) == ("us-central1", "env")
    s = config.resolve(config={"model": "cfg"}, env=env)
    assert (s["model"], s.source("model")) == ("cfg", "config")
    s = config.resolve(session={"model": "sess"}, config={"model": "cfg"}, env=env)
    assert (s["model"], s.source("model")) == ("sess", "session")
    s = config.resolve(flags={"model": "flag"}, session={"model": "sess"}, env=env)
    assert (s["model"], s.source("model")) == ("flag", "flag")
    s = config.resolve(env={})
    assert (s["model"], s.source("model")) == ("small", "default")
    assert s["region"] == "europe-west4"


def test_empty_values_fall_through() -> None:
    s = config.resolve(flags={"model": None}, session={"model": ""}, config={"model": ""},
                       env={"MISTRAL_MAGIC_MODEL": "m"})
    assert s.source("model") == "env"


def test_backend_auto_choice() -> None:
    s = config.resolve(env={"MISTRAL_API_KEY": "k" * 32})
    assert s.backend == "mistral" and s.source("backend").startswith("auto")
    s = config.resolve(env={})
    assert s.backend == "vertex" and s.source("backend") == "auto: no API key"
    s = config.resolve(flags={"backend": "vertex"}, env={"MISTRAL_API_KEY": "k" * 32})
    assert s.backend == "vertex" and s.source("backend") == "flag"
    with pytest.raises(ConfigError, match="unknown backend"):
        config.resolve(session={"backend": "azure"}, env={})


def test_secrets_masked_in_table_and_repr() -> None:
    key = "sk-abcdefghijklmnopqrstuvwxyz"
    s = config.resolve(env={"MISTRAL_API_KEY": key, "GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.x" * 5})
    shown = repr(s) + str(s.table())
    assert key not in shown and "ya29.xya29" not in shown
    assert dict((n, v) for n, v, _ in s.table())["api_key"].endswith("wxyz")


@pytest.mark.parametrize(
    ("url", "local"),
    [("http://127.0.0.1:8000", True), ("http://localhost:1", True), ("http://[::1]:5", True),
     ("https://api.mistral.ai", False), (None, False), ("http://10.0.0.1", False)],
)
def test_loopback_detection(url: str | None, local: bool) -> None:
    assert config.is_loopback_url(url) is local


def test_env_names() -> None:
    assert set(config.ENV_VARS.values()) == {
        "MISTRAL_MAGIC_BACKEND", "MISTRAL_MAGIC_MODEL", "MISTRAL_MAGIC_SERVER_URL",
        "MISTRAL_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_REGION",
        "GOOGLE_OAUTH_ACCESS_TOKEN",
    }
