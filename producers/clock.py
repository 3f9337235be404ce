"""The business-date clock: one BusinessDateChanged now, or one at every local midnight."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from arrears.errors import ConfigError
from arrears.settings import Settings

from .publisher import LoanEventPublisher

log = logging.getLogger(__name__)
DEFAULT_TIMEZONE = "Asia/Shanghai"  # whose midnight `arrears clock --daemon` follows unless told


def publish_tick(settings: Settings, business_date: dt.date, calendar: str | None = None) -> dict[str, Any]:
    """Publish one tick with its barrier and wait for the broker's acknowledgement."""
    with LoanEventPublisher(settings) as publisher:
        return publisher.end_of_day(business_date, calendar=calendar)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"--timezone: unknown IANA timezone {name!r} (e.g. Asia/Shanghai)") from None


def next_midnight(now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The next local midnight after *now* (aware), as an aware datetime."""
    local = now.astimezone(tz)
    tomorrow = local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(tomorrow, dt.time(0, 0), tzinfo=tz)


def run_daemon(
    settings: Settings,
    tz_name: str,
    *,
    calendar: str | None = None,
    stop: threading.Event | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> None:
    """Publish the new local date at each local midnight until *stop* is set."""
    tz = zone(tz_name)
    stop = stop or threading.Event()
    with LoanEventPublisher(settings) as publisher:
        while not stop.is_set():
            wake = next_midnight(now(), tz)
            log.info("clock: next business date %s at %s", wake.date(), wake.isoformat())
            while not stop.is_set():
                remaining = (wake - now()).total_seconds()
                if remaining <= 0:
                    break
                stop.wait(min(remaining, 60.0))
            if stop.is_set():
                break
            tick = publisher.end_of_day(wake.date(), calendar=calendar)
            log.info("clock: published business date %s (event %s)", wake.date(), tick["event_id"])
