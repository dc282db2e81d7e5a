"""Retry configuration shaped like the official SDK's ``mistralai...utils`` (3.x).

``RetryConfig("backoff", BackoffStrategy(initial_interval, max_interval, exponent,
max_elapsed_time, jitter_ms=None), retry_connection_errors, status_codes_override=None)``
works as with the SDK; ``max_attempts`` is our optional extra cap on the number of
attempts. All intervals are in milliseconds.
"""

from __future__ import annotations

__all__ = ["BackoffStrategy", "RetryConfig"]


class BackoffStrategy:
    """Exponential backoff parameters (milliseconds).

    Sleep before retry ``n`` (0-based) is ``min(initial_interval * exponent**n, max_interval)``
    plus a jitter drawn from ``[0, jitter_ms]`` (``[0, 1000]`` when ``jitter_ms`` is
    ``None``), capped at ``max_interval``. Retries stop once ``max_elapsed_time`` has passed.
    """

    initial_interval: int
    max_interval: int
    exponent: float
    max_elapsed_time: int
    jitter_ms: int | None

    def __init__(
        self,
        initial_interval: int,
        max_interval: int,
        exponent: float,
        max_elapsed_time: int,
        jitter_ms: int | None = None,
    ) -> None:
        if jitter_ms is not None and jitter_ms < 0:
            raise ValueError("jitter_ms must be >= 0")
        self.initial_interval = initial_interval
        self.max_interval = max_interval
        self.exponent = exponent
        self.max_elapsed_time = max_elapsed_time
        self.jitter_ms = jitter_ms

    def __repr__(self) -> str:
        return (
            f"BackoffStrategy(initial_interval={self.initial_interval}, "
            f"max_interval={self.max_interval}, exponent={self.exponent}, "
            f"max_elapsed_time={self.max_elapsed_time}, jitter_ms={self.jitter_ms})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BackoffStrategy):
            return NotImplemented
        return vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value


class RetryConfig:
    """How a call is retried.

    ``strategy``: only ``"backoff"`` retries (anything else means a single attempt).
    ``retry_connection_errors``: also retry connection failures and timeouts.
    ``status_codes_override``: retryable statuses as strings (``"429"``, ``"5XX"``),
    replacing the default 429/500/502/503/504 when non-empty.
    ``max_attempts``: optional cap on the total number of attempts (ours, not the SDK's).
    """

    strategy: str
    backoff: BackoffStrategy
    retry_connection_errors: bool
    status_codes_override: list[str] | None
    max_attempts: int | None

    def __init__(
        self,
        strategy: str,
        backoff: BackoffStrategy,
        retry_connection_errors: bool,
        status_codes_override: list[str] | None = None,
        max_attempts: int | None = None,
    ) -> None:
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.strategy = strategy
        self.backoff = backoff
        self.retry_connection_errors = retry_connection_errors
        self.status_codes_override = status_codes_override
        self.max_attempts = max_attempts

    def __repr__(self) -> str:
        return (
            f"RetryConfig(strategy={self.strategy!r}, backoff={self.backoff!r}, "
            f"retry_connection_errors={self.retry_connection_errors}, "
            f"status_codes_override={self.status_codes_override!r}, "
            f"max_attempts={self.max_attempts})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RetryConfig):
            return NotImplemented
        return vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value
