"""Pure retry decisions: which failures to retry, how long to wait, when to give up.

No I/O and no sleeping: the client asks a :class:`RetryState` for the next delay after
each failed attempt and sleeps itself. Clock and random source are injectable.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Protocol

from .utils import BackoffStrategy, RetryConfig

__all__ = [
    "DEFAULT_RETRY_CONFIG",
    "RETRYABLE_STATUSES",
    "RetryPolicy",
    "RetryState",
    "backoff_delay",
    "is_retryable_exception",
    "is_retryable_status",
    "parse_retry_after",
]

RETRYABLE_STATUSES: tuple[int, ...] = (429, 500, 502, 503, 504)
"""Statuses retried by default (as the SDK does for chat)."""

DEFAULT_JITTER_MS = 1000
"""Jitter bound when ``BackoffStrategy.jitter_ms`` is ``None`` (the SDK's ``U(0, 1 s)``)."""

DEFAULT_RETRY_CONFIG = RetryConfig(
    "backoff",
    BackoffStrategy(
        initial_interval=500, max_interval=8000, exponent=2.0, max_elapsed_time=60000
    ),
    retry_connection_errors=True,
    max_attempts=5,
)
"""Our default: 0.5 s, 1 s, 2 s, 4 s (+ jitter, at most 8 s), up to 5 attempts within 60 s."""

# Exception classes (matched by name, so httpx and httpx2 both work) that are transport
# failures worth retrying when ``retry_connection_errors`` is set. Unlike the SDK we also
# retry RemoteProtocolError: it is what a stale keep-alive connection closed by the server
# raises before any response byte (the client never retries once a stream has started).
_TRANSPORT_NAMES = frozenset(
    {
        "NetworkError",
        "TimeoutException",
        "RemoteProtocolError",
        "APIConnectionError",
        "ConnectionError",
        "TimeoutError",
    }
)


class _Random(Protocol):
    def random(self) -> float: ...


def _get_header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, val in headers.items():  # plain dicts are case-sensitive
        if key.lower() == name:
            return val
    return None


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait as requested by the server, or ``None``.

    ``retry-after-ms`` (milliseconds) wins over ``Retry-After`` (seconds or an HTTP date,
    compared with the wall-clock ``now``; a date in the past gives ``0.0``). Garbage,
    negative and non-finite values are ignored.
    """
    raw_ms = _get_header(headers, "retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms.strip())
        except ValueError:
            ms = math.nan
        if math.isfinite(ms) and ms >= 0:
            return ms / 1000
    raw = _get_header(headers, "retry-after")
    if raw is None or not raw.strip():
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        from datetime import timezone

        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def backoff_delay(attempt: int, backoff: BackoffStrategy, rng: _Random) -> float:
    """Seconds to sleep before retry number ``attempt`` (0-based), with jitter, capped."""
    cap = backoff.max_interval / 1000
    try:
        base = (backoff.initial_interval / 1000) * backoff.exponent**attempt
    except OverflowError:
        base = cap
    jitter_ms = DEFAULT_JITTER_MS if backoff.jitter_ms is None else backoff.jitter_ms
    delay = min(base, cap) + rng.random() * (jitter_ms / 1000)
    return max(0.0, min(delay, cap))


def is_retryable_status(status: int, override: list[str] | None = None) -> bool:
    """Whether ``status`` is retried: the defaults, or ``override`` (``"429"``, ``"5XX"``)."""
    if not override:
        return status in RETRYABLE_STATUSES
    for code in override:
        code = code.strip().upper()
        if "X" in code:
            if code[:1].isdigit() and status // 100 == int(code[0]):
                return True
        elif code.isdigit() and int(code) == status:
            return True
    return False


#: A read timeout means the request reached the service and it may be generating (and billing)
#: an answer: sending it again could pay twice, so it is reported, not retried.
_NOT_RETRIED_NAMES = frozenset({"ReadTimeout"})


def is_retryable_exception(exc: BaseException) -> bool:
    """Whether ``exc`` is a connection failure or timeout (httpx, httpx2, OS or ours).

    Read timeouts are excluded: the request may already be running on the service.
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & _TRANSPORT_NAMES) and not (names & _NOT_RETRIED_NAMES)


class RetryState:
    """Retry bookkeeping for one call: attempts made, elapsed time, next delay.

    After each failed attempt call :meth:`next_delay`; sleep the returned seconds and
    try again, or stop when it returns ``None``. ``attempts`` counts the attempts made
    so far (for messages such as "gave up after 4 attempts").
    """

    def __init__(
        self,
        config: RetryConfig | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: _Random | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng: _Random = rng if rng is not None else random.Random()
        self._start = clock()
        self.attempts = 0
        self.last_delay: float | None = None

    @property
    def elapsed(self) -> float:
        """Seconds since the state was created (the first attempt)."""
        return self._clock() - self._start

    def next_delay(
        self,
        status: int | None = None,
        exc: BaseException | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> float | None:
        """Record a failed attempt; return seconds to wait before the next one, or ``None``.

        ``None`` means give up: no backoff config, the failure is not retryable, the
        ``max_attempts`` cap is reached, the ``max_elapsed_time`` budget is spent, or
        the server's ``Retry-After`` would end past the budget.
        """
        self.attempts += 1
        self.last_delay = None
        config = self.config
        if config is None or config.strategy != "backoff":
            return None
        if status is not None:
            if not is_retryable_status(status, config.status_codes_override):
                return None
        elif exc is not None:
            if not (config.retry_connection_errors and is_retryable_exception(exc)):
                return None
        else:
            return None
        if config.max_attempts is not None and self.attempts >= config.max_attempts:
            return None
        backoff = config.backoff
        remaining = backoff.max_elapsed_time / 1000 - self.elapsed
        if remaining <= 0:
            return None
        server_wait = None
        if status is not None and headers:
            server_wait = parse_retry_after(headers, self._wall_clock())
        if server_wait is not None and server_wait > 0:
            if server_wait > remaining:
                return None  # the server asks us to come back after the budget ends
            delay = server_wait
        else:
            # Backoff never sleeps past the budget: clip to what is left.
            delay = min(backoff_delay(self.attempts - 1, backoff, self._rng), remaining)
        self.last_delay = delay
        return delay


RetryPolicy = RetryState
"""Alias of :class:`RetryState`."""
