"""Clients for Mistral's chat API on Vertex AI (``MistralGCP``) and api.mistral.ai (``Mistral``).

The call surface is the official SDK's: ``client.chat.complete(...)``, ``client.chat.stream(...)``
and their ``*_async`` twins, with per-call ``retries=``, ``server_url=``, ``timeout_ms=`` and
``http_headers=``. Each client object owns one pooled ``httpx.Client`` (and one
``httpx.AsyncClient``), created on first use.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

import httpx
from pydantic import BaseModel

from . import _redact
from ._retry import DEFAULT_RETRY_CONFIG, RetryPolicy
from ._version import __version__
from .auth import TokenSource, api_key_token, bearer, vertex_token_and_project
from .backends import (
    CHAT_COMPLETIONS_PATH,
    CURRENT_VERTEX_MODELS,
    DEFAULT_REGION,
    MODELS_PATH,
    Backend,
    mistral_base_url,
    vertex_base_url,
    vertex_path,
)
from .errors import (
    APIConnectionError,
    ConfigError,
    ResponseValidationError,
    SDKError,
    connection_error,
    error_from_response,
    timeout_error,
)
from .models import ChatCompletionResponse, ModelList, build_request
from .streaming import AsyncEventStream, EventStream
from .utils import RetryConfig

if TYPE_CHECKING:
    from typing_extensions import NotRequired, Required, TypedDict, Unpack

    class ChatParams(TypedDict, total=False):
        """Keyword arguments of ``chat.complete`` / ``chat.stream`` (the SDK's names)."""

        model: Required[str]
        messages: Required[Sequence[Any]]
        temperature: float | None
        top_p: float | None
        max_tokens: int | None
        min_tokens: int | None
        stop: str | Sequence[str] | None
        random_seed: int | None
        metadata: Mapping[str, Any] | None
        response_format: Any
        tools: Sequence[Any] | None
        tool_choice: Any
        presence_penalty: float | None
        frequency_penalty: float | None
        n: int | None
        prediction: Any
        parallel_tool_calls: bool
        prompt_mode: str | None
        safe_prompt: bool
        retries: NotRequired[RetryConfig | None]
        server_url: NotRequired[str | None]
        timeout_ms: NotRequired[int | None]
        http_headers: NotRequired[Mapping[str, str] | None]
        on_retry: NotRequired[RetryCallback | None]

logger = logging.getLogger("mistral_magic")

R = TypeVar("R", bound=ChatCompletionResponse)

#: connect/write/pool limits, and a read timeout long enough for a long non-streamed answer;
#: for streams the read timeout is the longest silence allowed between two reads.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=60.0, pool=60.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
USER_AGENT = f"mistral-magic/{__version__}"

#: Called before each retry sleep: (attempt about to be made, seconds to wait, reason).
RetryCallback = Callable[[int, float, str], None]


def _timeout(timeout_ms: int | None) -> Any:
    """The per-request timeout; without ``timeout_ms`` the pooled client's own (an injected
    client keeps the timeout it was built with)."""
    if timeout_ms is not None:
        return httpx.Timeout(timeout_ms / 1000)
    return httpx.USE_CLIENT_DEFAULT


class _Endpoint:
    """What one call needs to reach the service: URL, headers, and context for error messages."""

    __slots__ = ("backend", "body", "headers", "method", "model", "region", "stream", "url")

    def __init__(
        self,
        *,
        url: str,
        body: bytes | None,
        headers: dict[str, str],
        backend: Backend,
        model: str,
        region: str | None,
        stream: bool,
        method: str = "POST",
    ) -> None:
        self.method = method
        self.url = url
        self.body = body
        self.headers = headers
        self.backend: Backend = backend
        self.model = model
        self.region = region
        self.stream = stream


class _BaseClient:
    backend: Backend

    def __init__(
        self,
        *,
        server_url: str | None,
        retry_config: RetryConfig | None,
        timeout_ms: int | None,
        client: httpx.Client | None,
        async_client: httpx.AsyncClient | None,
    ) -> None:
        self.server_url = server_url
        self.retry_config = retry_config
        self.timeout_ms = timeout_ms
        self._client = client
        self._async_client = async_client
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._owns_client = client is None
        self._owns_async_client = async_client is None
        self._token_source: TokenSource | None = None
        # Threads share one client object: its pools and credentials are created once.
        self._lock = threading.RLock()
        self.chat = Chat(self)

    # -- plumbing shared by both backends -------------------------------------------------

    @property
    def http(self) -> httpx.Client:
        """The pooled sync client (created on first use)."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(timeout=DEFAULT_TIMEOUT, limits=DEFAULT_LIMITS)
                client = self._client
        return client

    @property
    def async_http(self) -> httpx.AsyncClient:
        """The pooled async client (created on first use, per event loop).

        An ``httpx.AsyncClient``'s connections belong to the event loop they were opened in;
        when a later call runs in another loop (``asyncio.run`` twice in a script) the old
        pool is unusable, so an owned client is replaced.
        """
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        client = self._async_client
        if client is not None and (not self._owns_async_client or self._async_loop is loop):
            return client
        with self._lock:
            if self._async_client is None or (
                self._owns_async_client and self._async_loop is not loop
            ):
                self._async_client = httpx.AsyncClient(
                    timeout=DEFAULT_TIMEOUT, limits=DEFAULT_LIMITS
                )
                self._async_loop = loop
            return self._async_client

    def _tokens(self) -> TokenSource:
        raise NotImplementedError

    async def _tokens_async(self) -> TokenSource:
        """``_tokens`` without blocking the event loop (ADC lookup reads files, may probe)."""
        if self._token_source is not None:
            return self._token_source
        return await asyncio.to_thread(self._tokens)

    def _url(self, model: str, *, stream: bool, server_url: str | None) -> str:
        raise NotImplementedError

    @property
    def region(self) -> str | None:
        return None

    def _endpoint(
        self,
        params: Mapping[str, Any],
        *,
        stream: bool,
        server_url: str | None,
        http_headers: Mapping[str, str] | None,
    ) -> _Endpoint:
        request = build_request(stream=stream, backend=self.backend, **params)
        body = json.dumps(request.to_wire(), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
            "User-Agent": USER_AGENT,
        }
        if http_headers:
            headers.update(http_headers)
        return _Endpoint(
            url=self._url(request.model, stream=stream, server_url=server_url),
            body=body,
            headers=headers,
            backend=self.backend,
            model=request.model,
            region=self.region,
            stream=stream,
        )

    def _policy(self, retries: RetryConfig | None) -> RetryPolicy:
        config = retries or self.retry_config or DEFAULT_RETRY_CONFIG
        return RetryPolicy(config, rng=random.Random())

    @staticmethod
    def _wrong_media(endpoint: _Endpoint, response: httpx.Response) -> bool:
        """A 200 whose media type is not the one asked for (parameters ignored, as the SDK)."""
        media = str(response.headers.get("content-type", "")).split(";")[0].strip().lower()
        return media != ("text/event-stream" if endpoint.stream else "application/json")

    @staticmethod
    def _unexpected(endpoint: _Endpoint, response: httpx.Response) -> SDKError:
        """Error for a 200 of the wrong media type (its body has been read)."""
        media = response.headers.get("content-type", "").split(";")[0].strip().lower()
        wanted = "text/event-stream" if endpoint.stream else "application/json"
        return SDKError(
            f"Unexpected response received: status 200 with content type {media or 'none'!r}"
            f" where {wanted} was expected",
            hint="is server_url pointing at a Mistral endpoint (or a proxy's error page)?",
            status_code=200,
            body=_redact.redact(response.text[:10_000]),
            headers=response.headers,
            raw_response=response,
        )

    def _failure(
        self, endpoint: _Endpoint, response: httpx.Response, attempts: int
    ) -> SDKError:
        return error_from_response(
            response.status_code,
            response.headers,
            _redact.redact(response.text),
            backend=endpoint.backend,
            model=endpoint.model or None,
            region=endpoint.region,
            attempts=attempts,
            raw_response=response,
            known_models=CURRENT_VERTEX_MODELS if endpoint.backend == "vertex" else None,
        )

    @staticmethod
    def _transport_error(
        exc: BaseException,
        endpoint: _Endpoint,
        attempts: int,
        http: httpx.Client | httpx.AsyncClient,
        timeout: Any,
    ) -> APIConnectionError:
        url = httpx.URL(endpoint.url)
        host = f"{url.host}:{url.port}" if url.port else url.host
        if isinstance(exc, httpx.TimeoutException):
            limits = timeout if isinstance(timeout, httpx.Timeout) else http.timeout
            phase = {
                httpx.ConnectTimeout: limits.connect,
                httpx.WriteTimeout: limits.write,
                httpx.PoolTimeout: limits.pool,
            }.get(type(exc), limits.read)
            return timeout_error(exc, url_host=host, timeout_s=phase, attempts=attempts)
        return connection_error(exc, url_host=host, attempts=attempts)

    def _request(self, http: httpx.Client | httpx.AsyncClient, endpoint: _Endpoint,
                 token: str, timeout: Any) -> httpx.Request:  # fmt: skip
        headers = dict(endpoint.headers)
        headers["Authorization"] = bearer(token)
        return http.build_request(
            endpoint.method, endpoint.url, content=endpoint.body, headers=headers, timeout=timeout
        )

    # -- sync send with retries -------------------------------------------------------------

    def send(
        self,
        endpoint: _Endpoint,
        *,
        retries: RetryConfig | None = None,
        timeout_ms: int | None = None,
        on_retry: RetryCallback | None = None,
    ) -> httpx.Response:
        """Send the request, retrying what may be retried; return a 200 of the right type.

        A stream's body is left unread (nothing is retried once its bytes reach the caller);
        any other body is read here, so that a connection lost while reading it is retried.
        The response is closed on every path that does not return it.
        """
        policy = self._policy(retries)
        timeout = _timeout(timeout_ms if timeout_ms is not None else self.timeout_ms)
        tokens = self._tokens()
        refreshed = False
        http = self.http
        while True:
            token = tokens.token()
            request = self._request(http, endpoint, token, timeout)
            logger.debug("%s %s (attempt %d)", endpoint.method, endpoint.url, policy.attempts + 1)
            try:
                response = http.send(request, stream=True)
                try:
                    ok = response.status_code == 200
                    if not (ok and endpoint.stream and not self._wrong_media(endpoint, response)):
                        response.read()
                except BaseException:
                    response.close()
                    raise
            except httpx.TransportError as exc:
                delay = policy.next_delay(exc=exc)
                if delay is None:
                    raise self._transport_error(
                        exc, endpoint, policy.attempts, http, timeout
                    ) from None
                self._before_retry(on_retry, policy.attempts + 1, delay, type(exc).__name__)
                time.sleep(delay)
                continue
            if ok:
                if not self._wrong_media(endpoint, response):
                    return response
                response.close()
                raise self._unexpected(endpoint, response)
            response.close()
            if response.status_code == 401 and not refreshed and tokens.can_refresh():
                refreshed = True
                logger.info("401 from %s: refreshing the access token once", endpoint.url)
                tokens.invalidate(token)
                try:
                    tokens.token()
                except ConfigError:
                    raise self._failure(endpoint, response, policy.attempts + 1) from None
                continue
            delay = policy.next_delay(status=response.status_code, headers=response.headers)
            if delay is None:
                raise self._failure(endpoint, response, policy.attempts) from None
            self._before_retry(on_retry, policy.attempts + 1, delay, f"HTTP {response.status_code}")
            time.sleep(delay)

    async def send_async(
        self,
        endpoint: _Endpoint,
        *,
        retries: RetryConfig | None = None,
        timeout_ms: int | None = None,
        on_retry: RetryCallback | None = None,
    ) -> httpx.Response:
        """Async twin of ``send`` (token refreshes run in a worker thread)."""
        policy = self._policy(retries)
        timeout = _timeout(timeout_ms if timeout_ms is not None else self.timeout_ms)
        tokens = await self._tokens_async()
        refreshed = False
        http = self.async_http
        while True:
            token = await tokens.token_async()
            request = self._request(http, endpoint, token, timeout)
            logger.debug("%s %s (attempt %d)", endpoint.method, endpoint.url, policy.attempts + 1)
            try:
                response = await http.send(request, stream=True)
                try:
                    ok = response.status_code == 200
                    if not (ok and endpoint.stream and not self._wrong_media(endpoint, response)):
                        await response.aread()
                except BaseException:  # also cancellation: never leave the response open
                    await response.aclose()
                    raise
            except httpx.TransportError as exc:
                delay = policy.next_delay(exc=exc)
                if delay is None:
                    raise self._transport_error(
                        exc, endpoint, policy.attempts, http, timeout
                    ) from None
                self._before_retry(on_retry, policy.attempts + 1, delay, type(exc).__name__)
                await asyncio.sleep(delay)
                continue
            if ok:
                if not self._wrong_media(endpoint, response):
                    return response
                await response.aclose()
                raise self._unexpected(endpoint, response)
            await response.aclose()
            if response.status_code == 401 and not refreshed and tokens.can_refresh():
                refreshed = True
                logger.info("401 from %s: refreshing the access token once", endpoint.url)
                tokens.invalidate(token)
                try:
                    await tokens.token_async()
                except ConfigError:
                    raise self._failure(endpoint, response, policy.attempts + 1) from None
                continue
            delay = policy.next_delay(status=response.status_code, headers=response.headers)
            if delay is None:
                raise self._failure(endpoint, response, policy.attempts) from None
            self._before_retry(on_retry, policy.attempts + 1, delay, f"HTTP {response.status_code}")
            await asyncio.sleep(delay)

    @staticmethod
    def _before_retry(callback: RetryCallback | None, attempt: int, delay: float, why: str) -> None:
        logger.info("retrying (attempt %d) in %.2f s after %s", attempt, delay, why)
        if callback is not None:
            callback(attempt, delay, why)

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the pooled sync client if this object created it (an injected one is not)."""
        if not self._owns_client:
            return
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close both pooled clients if this object created them."""
        self.close()
        if not self._owns_async_client:
            return
        with self._lock:
            client, self._async_client = self._async_client, None
            loop, self._async_loop = self._async_loop, None
        # A pool opened in another (likely closed) event loop cannot be closed from this one.
        if client is not None and loop in (None, asyncio.get_running_loop()):
            await client.aclose()

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self: _C) -> _C:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


_C = TypeVar("_C", bound=_BaseClient)


_M = TypeVar("_M", bound=BaseModel)


def _parse_completion(response: httpx.Response, response_class: type[_M]) -> _M:
    """Validate a 200 body; a body of the wrong shape becomes ``ResponseValidationError``."""
    try:
        return response_class.model_validate_json(response.content)
    except ValueError as exc:
        what = "a model list" if issubclass(response_class, ModelList) else "a chat completion"
        raise ResponseValidationError(
            f"the service answered 200 with a body that is not {what}: "
            + _redact.redact(str(exc).splitlines()[0]),
            body=_redact.redact(response.text[:10_000]),
            status_code=response.status_code,
            raw_response=response,
        ) from None


class Chat:
    """``client.chat``: complete and stream, sync and async."""

    def __init__(self, owner: _BaseClient) -> None:
        self._owner = owner

    def _prepare(self, params: dict[str, Any], stream: bool) -> tuple[_Endpoint, dict[str, Any]]:
        control: dict[str, Any] = {
            key: params.pop(key)
            for key in ("retries", "timeout_ms", "on_retry")
            if key in params
        }
        server_url = params.pop("server_url", None)
        http_headers = params.pop("http_headers", None)
        params.pop("stream", None)
        endpoint = self._owner._endpoint(
            params, stream=stream, server_url=server_url, http_headers=http_headers
        )
        return endpoint, control

    @overload
    def complete(self, **params: Unpack[ChatParams]) -> ChatCompletionResponse: ...
    @overload
    def complete(self, *, response_class: type[R], **params: Unpack[ChatParams]) -> R: ...

    def complete(self, *, response_class: type[Any] = ChatCompletionResponse, **params: Any) -> Any:
        """Send a chat completion and return the whole ``ChatCompletionResponse``."""
        endpoint, control = self._prepare(dict(params), stream=False)
        response = self._owner.send(endpoint, **control)
        return _parse_completion(response, response_class)

    @overload
    def stream(self, **params: Unpack[ChatParams]) -> EventStream[ChatCompletionResponse]: ...
    @overload
    def stream(
        self, *, response_class: type[R], **params: Unpack[ChatParams]
    ) -> EventStream[R]: ...

    def stream(
        self, *, response_class: type[Any] = ChatCompletionResponse, **params: Any
    ) -> EventStream[Any]:
        """Start a streamed completion: an iterator and context manager of ``CompletionEvent``."""
        endpoint, control = self._prepare(dict(params), stream=True)
        response = self._owner.send(endpoint, **control)
        return EventStream(response, response_class=response_class)

    @overload
    async def complete_async(self, **params: Unpack[ChatParams]) -> ChatCompletionResponse: ...
    @overload
    async def complete_async(
        self, *, response_class: type[R], **params: Unpack[ChatParams]
    ) -> R: ...

    async def complete_async(
        self, *, response_class: type[Any] = ChatCompletionResponse, **params: Any
    ) -> Any:
        """Async twin of ``complete``."""
        await self._owner._tokens_async()  # resolve credentials off the event loop
        endpoint, control = self._prepare(dict(params), stream=False)
        response = await self._owner.send_async(endpoint, **control)
        return _parse_completion(response, response_class)

    @overload
    async def stream_async(
        self, **params: Unpack[ChatParams]
    ) -> AsyncEventStream[ChatCompletionResponse]: ...
    @overload
    async def stream_async(
        self, *, response_class: type[R], **params: Unpack[ChatParams]
    ) -> AsyncEventStream[R]: ...

    async def stream_async(
        self, *, response_class: type[Any] = ChatCompletionResponse, **params: Any
    ) -> AsyncEventStream[Any]:
        """Async twin of ``stream``: ``async for event in await client.chat.stream_async(...)``."""
        await self._owner._tokens_async()
        endpoint, control = self._prepare(dict(params), stream=True)
        response = await self._owner.send_async(endpoint, **control)
        return AsyncEventStream(response, response_class=response_class)


class MistralGCP(_BaseClient):
    """Mistral models on Google Cloud Vertex AI.

    Credentials come from Application Default Credentials (scope cloud-platform), or from a
    static ``access_token`` / ``GOOGLE_OAUTH_ACCESS_TOKEN`` which skips ADC. The project comes
    from ``project_id``, ``GOOGLE_CLOUD_PROJECT`` or ADC. Credentials are looked up on the first
    request, not in the constructor.
    """

    backend: Backend = "vertex"

    def __init__(
        self,
        *,
        region: str = DEFAULT_REGION,
        project_id: str | None = None,
        access_token: str | None = None,
        server_url: str | None = None,
        retry_config: RetryConfig | None = None,
        timeout_ms: int | None = None,
        client: httpx.Client | None = None,
        async_client: httpx.AsyncClient | None = None,
        credentials: Any = None,
    ) -> None:
        super().__init__(
            server_url=server_url,
            retry_config=retry_config,
            timeout_ms=timeout_ms,
            client=client,
            async_client=async_client,
        )
        self._region = region
        self._project_id = project_id
        self._access_token = access_token
        self._credentials = credentials
        if access_token:
            _redact.register_secret(access_token)

    @property
    def region(self) -> str:
        return self._region

    @property
    def project_id(self) -> str:
        """The Google Cloud project (resolved on first use)."""
        self._tokens()
        assert self._project_id is not None
        return self._project_id

    def _tokens(self) -> TokenSource:
        source = self._token_source
        if source is None:
            with self._lock:
                if self._token_source is None:
                    self._token_source, self._project_id = vertex_token_and_project(
                        self._access_token, self._project_id, self._credentials
                    )
                source = self._token_source
        return source

    def _url(self, model: str, *, stream: bool, server_url: str | None) -> str:
        base = vertex_base_url(self._region, server_url or self.server_url)
        return base + vertex_path(self.project_id, self._region, model, stream=stream)

    def __repr__(self) -> str:
        return f"MistralGCP(region={self._region!r}, project_id={self._project_id!r})"


class Models:
    """``client.models`` of api.mistral.ai."""

    def __init__(self, owner: Mistral) -> None:
        self._owner = owner

    def _endpoint(
        self, server_url: str | None, http_headers: Mapping[str, str] | None
    ) -> _Endpoint:
        base = mistral_base_url(server_url or self._owner.server_url)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if http_headers:
            headers.update(http_headers)
        return _Endpoint(
            url=base + MODELS_PATH,
            body=None,
            headers=headers,
            backend="mistral",
            model="",
            region=None,
            stream=False,
            method="GET",
        )

    def list(
        self,
        *,
        retries: RetryConfig | None = None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> ModelList:
        """``GET /v1/models``: the models this API key can use."""
        endpoint = self._endpoint(server_url, http_headers)
        response = self._owner.send(endpoint, retries=retries, timeout_ms=timeout_ms)
        return _parse_completion(response, ModelList)

    async def list_async(
        self,
        *,
        retries: RetryConfig | None = None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> ModelList:
        """Async twin of ``list``."""
        endpoint = self._endpoint(server_url, http_headers)
        response = await self._owner.send_async(endpoint, retries=retries, timeout_ms=timeout_ms)
        return _parse_completion(response, ModelList)


class Mistral(_BaseClient):
    """Mistral's own API (api.mistral.ai); the key comes from ``api_key`` or ``MISTRAL_API_KEY``."""

    backend: Backend = "mistral"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        server_url: str | None = None,
        retry_config: RetryConfig | None = None,
        timeout_ms: int | None = None,
        client: httpx.Client | None = None,
        async_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            server_url=server_url,
            retry_config=retry_config,
            timeout_ms=timeout_ms,
            client=client,
            async_client=async_client,
        )
        self._api_key = api_key
        if api_key:
            _redact.register_secret(api_key)
        self.models = Models(self)

    def _tokens(self) -> TokenSource:
        source = self._token_source
        if source is None:
            with self._lock:
                if self._token_source is None:
                    self._token_source = api_key_token(self._api_key)
                source = self._token_source
        return source

    async def _tokens_async(self) -> TokenSource:
        return self._tokens()  # no I/O: an argument or an environment variable

    def _url(self, model: str, *, stream: bool, server_url: str | None) -> str:
        return mistral_base_url(server_url or self.server_url) + CHAT_COMPLETIONS_PATH

    def __repr__(self) -> str:
        return f"Mistral(server_url={mistral_base_url(self.server_url)!r})"


Client = MistralGCP | Mistral
__all__ = ["Chat", "Client", "Mistral", "MistralGCP", "Models"]
