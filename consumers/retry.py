"""When to retry a webhook delivery, how long to wait, and when to pause the whole agency.

The retry loop itself is tenacity's (:func:`retrying`); this module says what its decisions are
for our HTTP answers:

- ``2xx`` delivered;
- ``5xx``, ``408``, ``429``, timeouts and connection errors are transient: retried with
  exponential backoff and jitter, honouring ``Retry-After``, up to ``max_attempts``;
- an answer that says our requests as a whole are wrong (``401``, ``403``, ``404``, ``405``,
  ``407``, ``410``, ``421``, redirects) pauses delivery to the agency: a rotated secret or a moved
  URL must not dead-letter the whole stream, cancellations included;
- any other ``4xx`` (``400``, ``409``, ``413``, ``422``, ...) refuses this one event, which is
  dead-lettered; several in a row pause the agency as above (see :mod:`consumers.pause`).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tenacity
from tenacity.wait import wait_base

from .delivery import DeliveryInterrupted


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"  # transient: the agency is down, overloaded or slow
    REFUSED = "refused"  # the agency refused this event; sending it again will not help
    PAUSE = "pause"  # the agency refuses our requests as a whole (credentials, URL): stop sending


# 408 is the server's own "you were too slow" and 429 its "slow down": both are transient.
_TRANSIENT_4XX = frozenset({408, 429})
# Answers about the endpoint or our credentials, not about the event in the body.
_ENDPOINT_4XX = frozenset({401, 403, 404, 405, 407, 410, 421})


def classify(status: int) -> Verdict:
    """What an HTTP status means for a work-order delivery (see the module's docstring)."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status >= 500 or status in _TRANSIENT_4XX:
        return Verdict.RETRY
    if status in _ENDPOINT_4XX or status < 200 or 300 <= status < 400:
        return Verdict.PAUSE  # a signed POST is never replayed to another URL: a redirect is a wrong URL
    return Verdict.REFUSED


@dataclass(frozen=True)
class Outcome:
    """One delivery attempt: the verdict, what to log (never the agency's body), Retry-After."""

    verdict: Verdict
    error: str = ""  # "HTTP 503", "timeout after 10s (ReadTimeout)", ...
    cause: str = ""  # the retry metric's label: the status code, "timeout" or "connection"
    status: int | None = None
    retry_after: float | None = None
    attempt: int = 1


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


def backoff(initial: float, maximum: float) -> wait_base:
    """Exponential backoff with "equal jitter", from tenacity's waits.

    The step doubles from *initial* up to *maximum*; half of it is waited for sure and the other
    half at random, so retries from many adapters spread out while each wait still grows.
    """
    half_initial, half_max = initial / 2.0, maximum / 2.0
    return tenacity.wait_exponential(multiplier=half_initial, max=half_max) + tenacity.wait_random_exponential(
        multiplier=half_initial, max=half_max
    )


class wait_retry_after(wait_base):  # noqa: N801 - named like tenacity's own waits
    """The agency's ``Retry-After`` when its last answer carried one (capped), else *fallback*.

    The cap is ``backoff_max_seconds``, so a huge Retry-After cannot stall a case's deliveries
    for longer than the configured maximum.
    """

    def __init__(self, fallback: wait_base, maximum: float) -> None:
        self.fallback = fallback
        self.maximum = maximum

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        if outcome is not None and not outcome.failed:
            result = outcome.result()
            if isinstance(result, Outcome) and result.retry_after is not None:
                return min(result.retry_after, self.maximum)
        return float(self.fallback(retry_state))


def interruptible_sleep(abort: threading.Event, what: str) -> Callable[[float], None]:
    """tenacity's sleep, ended early (with :class:`DeliveryInterrupted`) when *abort* is set."""

    def sleep(seconds: float) -> None:
        if abort.wait(seconds):
            raise DeliveryInterrupted(what)

    return sleep


def retrying(
    *,
    max_attempts: int,
    initial: float,
    maximum: float,
    abort: threading.Event,
    what: str,
    before_sleep: Callable[[tenacity.RetryCallState], Any] | None = None,
) -> tenacity.Retrying:
    """A tenacity loop over a function returning :class:`Outcome`: transient outcomes are retried.

    When the budget is spent, the last outcome is returned (not raised): the caller dead-letters.
    """
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max_attempts),
        wait=wait_retry_after(backoff(initial, maximum), maximum),
        retry=tenacity.retry_if_result(lambda outcome: outcome.verdict is Verdict.RETRY),
        sleep=interruptible_sleep(abort, what),
        before_sleep=before_sleep,
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        reraise=True,
    )


def worst_case_seconds(max_attempts: int, timeout: float, maximum: float) -> float:
    """The longest one event can take through its whole retry budget."""
    return max_attempts * timeout + (max_attempts - 1) * maximum
