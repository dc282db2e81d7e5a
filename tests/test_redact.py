"""Secrets never leave the package as text."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from mistral_magic import _redact
from mistral_magic._redact import mask, redact, register_secret

KEY = "Zq3vPa9Lm2Xr7Tb5Nc8Wd1Ye4Uf6Gh0J"  # shaped like a Mistral API key


@pytest.fixture(autouse=True)
def _fresh() -> Any:
    _redact.clear_secrets()
    yield
    _redact.clear_secrets()


def test_plain_text_untouched() -> None:
    text = "Nothing secret here: bearer of good news, Bearer t, ya29 and a private key talk."
    assert redact(text) == text


def test_registered_secret_replaced_everywhere() -> None:
    register_secret(KEY)
    assert redact(f"key={KEY} again {KEY}.") == "key=*** again ***."


def test_short_and_empty_values_ignored() -> None:
    register_secret("")
    register_secret(None)
    register_secret("short")
    register_secret("  1234567 ")
    assert redact("short 1234567 text") == "short 1234567 text"


def test_longest_secret_wins() -> None:
    register_secret("abcdefgh")
    register_secret("abcdefgh-ijklmnop")
    assert redact("x abcdefgh-ijklmnop y") == "x *** y"


def test_secret_with_regex_characters() -> None:
    register_secret("a.b*c+d?e(f)")
    assert redact("a.b*c+d?e(f) vs aXbbcd") == "*** vs aXbbcd"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.DEF-123_~+/=", "Authorization: Bearer ***"),
        ("authorization: bearer xyz12345", "authorization: bearer ***"),
        ("BEARER   tok.tok.tok", "BEARER   ***"),
        ("use bearer authentication", "use bearer authentication"),
        ("token ya29.a0AfH6SMBx-y_z.Q", "token ***"),
        ('{"access_token": "ya29.c.b0Aaek"}', '{"access_token": "***"}'),
        ('{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE\\n'
         '-----END PRIVATE KEY-----\\n", "client_email": "x"}',
         '{"type": "service_account", "private_key": "***", "client_email": "x"}'),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc\n-----END RSA PRIVATE KEY-----\ntail",
         "***\ntail"),
        ("-----BEGIN PRIVATE KEY-----\nMIIE truncated", "***"),
        ("'private_key':'x'", "'private_key':'x'"),
    ],
)
def test_patterns(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_is_idempotent() -> None:
    register_secret(KEY)
    once = redact(f"Bearer {KEY} and ya29.abc")
    assert redact(once) == once


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "***"),
        ("", "***"),
        ("short-key", "***"),
        ("x" * 19, "***"),
        (KEY, "…Gh0J"),
        ("sk-" + "a" * 30 + "wxyz", "sk-…wxyz"),
        ("ya29." + "b" * 40 + "1234", "ya29.…1234"),
    ],
)
def test_mask(value: str | None, expected: str) -> None:
    assert mask(value) == expected
    if value and len(value) >= 20:
        assert value[:-4] not in mask(value)


def test_thread_safety() -> None:
    secrets = [f"secret-value-{i:04d}-padding" for i in range(200)]
    errors: list[BaseException] = []

    def worker(chunk: list[str]) -> None:
        try:
            for s in chunk:
                register_secret(s)
                assert s not in redact(f"x {s} y")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(secrets[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    text = " ".join(secrets)
    assert redact(text) == " ".join(["***"] * len(secrets))
