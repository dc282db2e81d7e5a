"""Keep credentials out of every text the package emits.

``register_secret`` records a value (API key, access token) to hide; ``redact`` replaces
registered values and well-known credential shapes (``Bearer <token>``, ``ya29.`` OAuth
tokens, PEM private keys, a JSON ``"private_key"`` field) with ``***``; ``mask`` renders a
credential for display (``…abcd``). Thread-safe; ``redact`` is a few substring checks when
the text holds nothing sensitive.
"""

from __future__ import annotations

import re
import threading

__all__ = ["MASK", "clear_secrets", "mask", "redact", "register_secret"]

MASK = "***"
"""Replacement text for anything redacted."""

_MIN_SECRET_LEN = 8  # shorter values would mangle ordinary words

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()
_secret_re: re.Pattern[str] | None = None

# Cheap substring triggers for the patterns; the regex only runs when one is present.
_TRIGGERS = ("earer", "EARER", "ya29.", "PRIVATE KEY", "private_key")

_PATTERN = re.compile(
    # A bearer token: 8+ token chars with a digit or punctuation, so prose ("bearer of
    # good news", "bearer authentication") is left alone.
    r"(?P<bearer>\b[Bb][Ee][Aa][Rr][Ee][Rr]\s+)"
    r"(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,}"
    r"|ya29\.[A-Za-z0-9._~+/-]+"
    r"|-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)"
    r'|(?P<pk>"private_key"\s*:\s*)"(?:[^"\\]|\\.)*"',
    re.DOTALL,
)


def _replace(match: re.Match[str]) -> str:
    if match.group("bearer"):
        return match.group("bearer") + MASK
    if match.group("pk"):
        return f'{match.group("pk")}"{MASK}"'
    return MASK


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that :func:`redact` hides it (values under 8 chars are ignored)."""
    global _secrets, _secret_re
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    value = value.strip()
    if len(value) < _MIN_SECRET_LEN:
        return
    with _lock:
        if value in _secrets:
            return
        secrets = _secrets | {value}
        # Longest first so a secret that contains another is replaced whole.
        ordered = sorted(secrets, key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(s) for s in ordered))
        _secrets, _secret_re = secrets, pattern


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    global _secrets, _secret_re
    with _lock:
        _secrets, _secret_re = frozenset(), None


def redact(text: str) -> str:
    """Return ``text`` with registered secrets and credential patterns replaced by ``***``."""
    secret_re = _secret_re  # one read: consistent even if another thread registers
    if secret_re is not None:
        text = secret_re.sub(MASK, text)
    if any(t in text for t in _TRIGGERS):
        text = _PATTERN.sub(_replace, text)
    return text


def mask(value: str | None) -> str:
    """Render a credential for display: ``…abcd`` (last 4 chars) if 20+ chars long, else ``***``.

    Recognised public type prefixes (``sk-``, ``ya29.``) are kept: ``ya29.…abcd``.
    """
    if not value or len(value) < 20:
        return MASK
    prefix = next((p for p in ("sk-", "ya29.") if value.startswith(p)), "")
    return f"{prefix}…{value[-4:]}"
