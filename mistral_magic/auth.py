"""As whom we talk: bearer tokens for api.mistral.ai (API key) and Vertex AI (google-auth).

google-auth is imported only when Application Default Credentials are actually needed, and its
token refresh runs over our own httpx-based transport (sharing nothing with the request path).
google-auth's own detection of Compute Engine credentials (Vertex AI Workbench, Colab
Enterprise) needs ``requests``, hence the ``google-auth[requests]`` dependency. The async path
refreshes in a worker thread so that an event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from . import _redact
from .backends import CLOUD_PLATFORM_SCOPE
from .errors import ConfigError

VERTEX_AUTH_HELP = (
    "authenticate with `gcloud auth application-default login` (or set "
    "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or GOOGLE_OAUTH_ACCESS_TOKEN "
    "to an access token)"
)
MISTRAL_AUTH_HELP = (
    "set the MISTRAL_API_KEY environment variable (create a key at https://console.mistral.ai/)"
)


def bearer(token: str) -> str:
    """``Authorization`` header value; a token that already starts with ``Bearer`` is kept."""
    return token if token[:7].lower() == "bearer " else f"Bearer {token}"


class TokenSource(Protocol):
    """Something that yields the bearer token for the next request."""

    def token(self) -> str: ...

    async def token_async(self) -> str: ...

    def can_refresh(self) -> bool: ...

    def invalidate(self, rejected: str | None = None) -> None: ...


class StaticToken:
    """A fixed API key or access token, never refreshed."""

    def __init__(self, value: str) -> None:
        self._value = value
        _redact.register_secret(value)

    def token(self) -> str:
        return self._value

    async def token_async(self) -> str:
        return self._value

    def can_refresh(self) -> bool:
        return False

    def invalidate(self, rejected: str | None = None) -> None:
        """Nothing to do: a static token cannot be renewed."""

    def __repr__(self) -> str:
        return "StaticToken(***)"


class _HttpxGoogleResponse:
    """Adapts an httpx response to google-auth's transport ``Response`` interface."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.headers = dict(response.headers)
        self.data = response.content


class HttpxGoogleRequest:
    """google-auth transport ``Request`` implemented with httpx (used for token refresh)."""

    def __init__(self, client: httpx.Client | None = None) -> None:
        self._client = client or httpx.Client(timeout=30.0)

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _HttpxGoogleResponse:
        from google.auth import exceptions as google_exceptions

        try:
            response = self._client.request(
                method, url, content=body, headers=dict(headers or {}), timeout=timeout or 30.0
            )
        except httpx.HTTPError as exc:
            raise google_exceptions.TransportError(  # type: ignore[no-untyped-call]
                _redact.redact(str(exc))
            ) from exc
        return _HttpxGoogleResponse(response)


class GoogleCredentialsToken:
    """Token from google-auth credentials, refreshed only when it is no longer valid.

    Thread-safe: concurrent callers wait for one refresh instead of each doing their own.
    """

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials
        self._lock = threading.Lock()
        self._request: HttpxGoogleRequest | None = None

    def _refresh_if_needed(self) -> str:
        with self._lock:
            creds = self._credentials
            if not creds.valid:
                if self._request is None:
                    self._request = HttpxGoogleRequest()
                try:
                    creds.refresh(self._request)
                except Exception as exc:  # google-auth raises several unrelated types
                    raise ConfigError(
                        "could not get a Google access token "
                        f"({type(exc).__name__}: {_redact.redact(str(exc))}); {VERTEX_AUTH_HELP}"
                    ) from None
            token = str(creds.token)
            _redact.register_secret(token)
            return token

    def token(self) -> str:
        return self._refresh_if_needed()

    async def token_async(self) -> str:
        creds = self._credentials
        if creds.valid:
            return str(creds.token)
        # google-auth refreshes with blocking I/O: keep it off the event loop.
        return await asyncio.to_thread(self._refresh_if_needed)

    def can_refresh(self) -> bool:
        """False for credentials that cannot renew themselves (a bare token, no refresh token)."""
        creds = self._credentials
        if hasattr(creds, "refresh_token") and hasattr(creds, "refresh_handler"):
            # google.oauth2.credentials.Credentials: renewable only with one of these
            return bool(creds.refresh_token or creds.refresh_handler)
        return True

    def invalidate(self, rejected: str | None = None) -> None:
        """Forget the token the service rejected (after a 401) so the next call refreshes.

        When another caller already replaced ``rejected``, the new token is kept.
        """
        with self._lock:
            creds = self._credentials
            if rejected is None or creds.token == rejected:
                creds.token = None
                creds.expiry = None

    def __repr__(self) -> str:
        return f"GoogleCredentialsToken({type(self._credentials).__name__})"


def api_key_token(api_key: str | None) -> StaticToken:
    """Token source for api.mistral.ai from the argument or ``MISTRAL_API_KEY``."""
    key = api_key if api_key is not None else os.environ.get("MISTRAL_API_KEY")
    if not key:
        raise ConfigError(f"no Mistral API key: {MISTRAL_AUTH_HELP}")
    return StaticToken(key)


def vertex_token_and_project(
    access_token: str | None, project_id: str | None, credentials: Any = None
) -> tuple[TokenSource, str]:
    """Token source and project for Vertex AI.

    A static token (argument or ``GOOGLE_OAUTH_ACCESS_TOKEN``) skips Application Default
    Credentials; the project then comes from the argument or ``GOOGLE_CLOUD_PROJECT``.
    """
    project = project_id or os.environ.get("GOOGLE_CLOUD_PROJECT") or None
    token = access_token or os.environ.get("GOOGLE_OAUTH_ACCESS_TOKEN") or None
    if token:
        if not project:
            raise ConfigError(
                "project_id must be provided: pass project_id= or set GOOGLE_CLOUD_PROJECT"
            )
        return StaticToken(token), project
    if credentials is None:
        credentials, adc_project = _application_default_credentials()
        project = project or adc_project
    if not project:
        raise ConfigError(
            "project_id must be provided or available from default credentials: pass "
            "project_id= or set GOOGLE_CLOUD_PROJECT"
        )
    return GoogleCredentialsToken(credentials), project


def _application_default_credentials() -> tuple[Any, str | None]:
    try:
        import google.auth
        from google.auth import exceptions as google_exceptions
    except ImportError as exc:  # pragma: no cover - google-auth is a declared dependency
        raise ConfigError("google-auth is required for Vertex AI: pip install google-auth") from exc
    try:
        credentials, project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except google_exceptions.DefaultCredentialsError:
        raise ConfigError(f"no Google Cloud credentials found: {VERTEX_AUTH_HELP}") from None
    return credentials, project
