"""Retry decisions: Retry-After parsing, backoff with jitter, budget and attempt caps."""

from __future__ import annotations

import random
from email.utils import formatdate

import httpx
import pytest

from mistral_magic import _retry as r
from mistral_magic.errors import APIConnectionError, APITimeoutError
from mistral_magic.utils import BackoffStrategy, RetryConfig

NOW = 1_700_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class FixedRandom:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def config(
    initial: int = 100,
    max_interval: int = 1000,
    exponent: float = 2.0,
    elapsed: int = 10_000,
    jitter_ms: int | None = 0,
    connection: bool = True,
    max_attempts: int | None = None,
    override: list[str] | None = None,
) -> RetryConfig:
    return RetryConfig(
        "backoff",
        BackoffStrategy(initial, max_interval, exponent, elapsed, jitter_ms=jitter_ms),
        connection,
        status_codes_override=override,
        max_attempts=max_attempts,
    )


# ------------------------------------------------------------------ utils shapes


def test_config_shapes_match_the_sdk() -> None:
    from mistralai.gcp.client import utils as sdk_utils

    ours = RetryConfig("backoff", BackoffStrategy(1, 50, 1.1, 100), False)
    theirs = sdk_utils.RetryConfig("backoff", sdk_utils.BackoffStrategy(1, 50, 1.1, 100), False)
    for attr in ("strategy", "retry_connection_errors", "status_codes_override"):
        assert getattr(ours, attr) == getattr(theirs, attr)
    for attr in ("initial_interval", "max_interval", "exponent", "max_elapsed_time", "jitter_ms"):
        assert getattr(ours.backoff, attr) == getattr(theirs.backoff, attr)
    assert ours.max_attempts is None
    assert ours == RetryConfig("backoff", BackoffStrategy(1, 50, 1.1, 100), False)
    assert "BackoffStrategy(initial_interval=1" in repr(ours)
    with pytest.raises(ValueError, match="jitter_ms"):
        BackoffStrategy(1, 2, 2, 3, jitter_ms=-1)
    with pytest.raises(ValueError, match="max_attempts"):
        RetryConfig("backoff", BackoffStrategy(1, 2, 2, 3), True, max_attempts=0)


def test_default_config() -> None:
    c = r.DEFAULT_RETRY_CONFIG
    assert c.strategy == "backoff" and c.retry_connection_errors is True
    assert (c.backoff.initial_interval, c.backoff.max_interval, c.backoff.exponent,
            c.backoff.max_elapsed_time) == (500, 8000, 2.0, 60000)
    assert c.max_attempts == 5
    assert r.RETRYABLE_STATUSES == (429, 500, 502, 503, 504)


# ------------------------------------------------------------------ Retry-After


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "12"}, 12.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"Retry-After": " 0 "}, 0.0),
        ({"retry-after-ms": "2500"}, 2.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "junk", "retry-after": "9"}, 9.0),
        ({"retry-after-ms": "-5", "retry-after": "9"}, 9.0),
        ({"Retry-After": "-3"}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": ""}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "inf"}, None),
        ({"retry-after-ms": "inf"}, None),
        ({"Retry-After": formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"Retry-After": formatdate(NOW - 30, usegmt=True)}, 0.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
        ({"Retry-After": "Wed, 99 Foo 2015 07:28:00 GMT"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    got = r.parse_retry_after(headers, NOW)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-6)


def test_parse_retry_after_with_httpx_headers_and_naive_date() -> None:
    headers = httpx.Headers({"RETRY-AFTER": formatdate(NOW + 5, usegmt=True)})
    assert r.parse_retry_after(headers, NOW) == pytest.approx(5)
    naive = formatdate(NOW + 7, usegmt=True).replace("GMT", "-0000")
    assert r.parse_retry_after({"Retry-After": naive}, NOW) == pytest.approx(7)


# ------------------------------------------------------------------ backoff


def test_backoff_growth_and_cap_without_jitter() -> None:
    b = BackoffStrategy(500, 8000, 2.0, 60000, jitter_ms=0)
    rng = FixedRandom(0.999)
    assert [r.backoff_delay(n, b, rng) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert r.backoff_delay(10_000, b, rng) == 8.0  # no OverflowError


@pytest.mark.parametrize("jitter_ms", [None, 0, 250])
def test_backoff_jitter_bounds(jitter_ms: int | None) -> None:
    b = BackoffStrategy(100, 60_000, 1.5, 60000, jitter_ms=jitter_ms)
    bound = (1000 if jitter_ms is None else jitter_ms) / 1000
    rng = random.Random(1234)
    for n in range(5):
        base = 0.1 * 1.5**n
        delays = [r.backoff_delay(n, b, rng) for _ in range(500)]
        assert all(base <= d <= base + bound for d in delays)
        if bound:
            assert max(delays) - min(delays) > bound * 0.8  # really spread over the range
    assert r.backoff_delay(0, b, FixedRandom(0.0)) == pytest.approx(0.1)
    assert r.backoff_delay(0, b, FixedRandom(1.0)) == pytest.approx(0.1 + bound)


def test_jitter_never_exceeds_max_interval() -> None:
    b = BackoffStrategy(900, 1000, 2.0, 60000)
    assert r.backoff_delay(0, b, FixedRandom(1.0)) == 1.0


# ------------------------------------------------------------------ status / exception classes


def test_retryable_statuses_and_override() -> None:
    assert all(r.is_retryable_status(s) for s in (429, 500, 502, 503, 504))
    assert not any(r.is_retryable_status(s) for s in (400, 401, 403, 404, 422, 501))
    assert r.is_retryable_status(501, ["5XX"]) and not r.is_retryable_status(429, ["5xx"])
    assert r.is_retryable_status(408, ["408", "junk"]) and not r.is_retryable_status(500, ["408"])


def test_retryable_exceptions() -> None:
    request = httpx.Request("POST", "http://x")
    assert r.is_retryable_exception(httpx.ConnectError("x", request=request))
    # the request may be running on the service: never sent twice
    assert not r.is_retryable_exception(httpx.ReadTimeout("x", request=request))
    assert r.is_retryable_exception(httpx.ConnectTimeout("x", request=request))
    assert r.is_retryable_exception(httpx.RemoteProtocolError("x", request=request))
    assert r.is_retryable_exception(APIConnectionError("x"))
    assert r.is_retryable_exception(APITimeoutError("x"))
    assert r.is_retryable_exception(ConnectionResetError())
    assert not r.is_retryable_exception(ValueError("x"))
    assert not r.is_retryable_exception(httpx.UnsupportedProtocol("x"))


# ------------------------------------------------------------------ RetryState


def state(c: RetryConfig | None, clock: FakeClock | None = None) -> r.RetryState:
    return r.RetryState(c, clock=clock or FakeClock(), wall_clock=lambda: NOW,
                        rng=FixedRandom(0.0))


def test_no_config_or_other_strategy_never_retries() -> None:
    s = state(None)
    assert s.next_delay(status=503) is None and s.attempts == 1
    none = RetryConfig("none", BackoffStrategy(1, 2, 2, 1000), True)
    assert state(none).next_delay(status=503) is None


def test_retries_retryable_status_with_backoff() -> None:
    s = state(config(initial=100, max_interval=1000))
    assert s.next_delay(status=503) == pytest.approx(0.1)
    assert s.next_delay(status=500) == pytest.approx(0.2)
    assert s.next_delay(status=429) == pytest.approx(0.4)
    assert s.attempts == 3 and s.last_delay == pytest.approx(0.4)


def test_non_retryable_status_gives_up() -> None:
    s = state(config())
    assert s.next_delay(status=400) is None
    assert s.attempts == 1 and s.last_delay is None


def test_override_replaces_defaults() -> None:
    s = state(config(override=["408"]))
    assert s.next_delay(status=503) is None
    assert state(config(override=["408"])).next_delay(status=408) is not None


def test_connection_errors_only_when_enabled() -> None:
    err = httpx.ConnectError("refused")
    assert state(config(connection=True)).next_delay(exc=err) == pytest.approx(0.1)
    assert state(config(connection=False)).next_delay(exc=err) is None
    assert state(config()).next_delay(exc=KeyError("bug")) is None
    assert state(config()).next_delay() is None


def test_retry_after_is_honoured() -> None:
    s = state(config())
    assert s.next_delay(status=429, headers={"Retry-After": "3"}) == 3.0
    assert s.next_delay(status=429, headers={"retry-after-ms": "1200"}) == 1.2
    # zero or garbage falls back to backoff
    assert s.next_delay(status=503, headers={"Retry-After": "0"}) == pytest.approx(0.4)
    assert s.next_delay(status=503, headers={"Retry-After": "x"}) == pytest.approx(0.8)


def test_retry_after_beyond_budget_gives_up_at_once() -> None:
    clock = FakeClock()
    s = state(config(elapsed=10_000), clock)
    clock.t += 8  # 2 s of budget left
    assert s.next_delay(status=429, headers={"Retry-After": "5"}) is None
    assert s.next_delay(status=429, headers={"Retry-After": "1"}) == 1.0


def test_backoff_is_clipped_to_remaining_budget() -> None:
    clock = FakeClock()
    s = state(config(initial=5000, max_interval=5000, elapsed=10_000), clock)
    clock.t += 9.5
    assert s.next_delay(status=503) == pytest.approx(0.5)


def test_elapsed_budget_exhausted() -> None:
    clock = FakeClock()
    s = state(config(elapsed=1000), clock)
    assert s.next_delay(status=503) is not None
    clock.t += 1.0
    assert s.next_delay(status=503) is None
    assert s.attempts == 2 and s.elapsed == pytest.approx(1.0)


def test_max_attempts() -> None:
    s = state(config(max_attempts=3))
    assert s.next_delay(status=503) is not None  # after attempt 1
    assert s.next_delay(status=503) is not None  # after attempt 2
    assert s.next_delay(status=503) is None  # attempt 3 was the last allowed
    assert s.attempts == 3
    single = state(config(max_attempts=1))
    assert single.next_delay(status=503) is None


def test_default_policy_sequence() -> None:
    s = r.RetryPolicy(r.DEFAULT_RETRY_CONFIG, clock=FakeClock(), rng=FixedRandom(0.0))
    delays = [s.next_delay(status=503) for _ in range(5)]
    assert delays == [0.5, 1.0, 2.0, 4.0, None]
    assert s.attempts == 5


def test_real_clock_and_rng_defaults() -> None:
    s = r.RetryState(config(jitter_ms=None))
    delay = s.next_delay(status=503)
    assert delay is not None and 0.1 <= delay <= 1.0
