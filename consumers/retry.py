"""When to retry a webhook delivery and how long to wait: pure functions, no clock, no I/O."""

from __future__ import annotations

import datetime as dt
import email.utils
import enum


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"  # transient: the agency is down, overloaded or slow
    PERMANENT = "permanent"  # the agency refused this request; sending it again will not help


# 408 is the server's own "you were too slow" and 429 its "slow down": both are transient.
_TRANSIENT_4XX = frozenset({408, 429})


def classify(status: int) -> Verdict:
    """What an HTTP status means for a work-order delivery.

    2xx delivered; 5xx, 408 and 429 transient; everything else (other 4xx, and 1xx/3xx,
    since a signed POST is never replayed to another URL) permanent.
    """
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status >= 500 or status in _TRANSIENT_4XX:
        return Verdict.RETRY
    return Verdict.PERMANENT


def backoff_delay(attempt: int, initial: float, maximum: float, jitter: float) -> float:
    """Seconds to wait after failed attempt number *attempt* (1-based).

    Exponential (``initial * 2**(attempt-1)``, capped at *maximum*) with "equal jitter":
    *jitter* in [0, 1) picks a point in the upper half of the step, so retries from many
    adapters spread out while each wait still grows.
    """
    if attempt < 1:
        raise ValueError("attempt numbers start at 1")
    step = min(maximum, initial * 2.0 ** min(attempt - 1, 62))
    return step / 2.0 + step / 2.0 * min(max(jitter, 0.0), 1.0)


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date); None if absent/bad."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def retry_wait(
    attempt: int, initial: float, maximum: float, jitter: float, retry_after: float | None = None
) -> float:
    """The wait before the next attempt: the agency's Retry-After when it sent one, else backoff.

    Either is capped at *maximum*, so a huge Retry-After cannot stall the partition's
    deliveries for longer than the configured ``backoff_max_seconds``.
    """
    if retry_after is not None:
        return min(retry_after, maximum)
    return backoff_delay(attempt, initial, maximum, jitter)


def worst_case_seconds(max_attempts: int, timeout: float, maximum: float) -> float:
    """The longest one event can take through its whole retry budget."""
    return max_attempts * timeout + (max_attempts - 1) * maximum
