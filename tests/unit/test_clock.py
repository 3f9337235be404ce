"""The clock's local-midnight arithmetic (``producers.clock.next_midnight``) across zones and DST."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from arrears.errors import ConfigError
from producers.clock import next_midnight, zone

UTC = dt.UTC
NEW_YORK = ZoneInfo("America/New_York")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now_utc", "tz", "expected_utc", "expected_local_date"),
    [
        # Asia/Shanghai is UTC+8 all year: local midnight is 16:00 UTC the day before.
        (utc(2026, 3, 1, 15, 59, 59), SHANGHAI, dt.datetime(2026, 3, 1, 16, 0, tzinfo=UTC),
         dt.date(2026, 3, 2)),
        (dt.datetime(2026, 3, 1, 16, 0, 0, tzinfo=UTC), SHANGHAI, dt.datetime(2026, 3, 2, 16, 0, tzinfo=UTC),
         dt.date(2026, 3, 3)),  # exactly at midnight: the next one, never the same instant
        (dt.datetime(2026, 12, 31, 20, 0, tzinfo=UTC), SHANGHAI, dt.datetime(2027, 1, 1, 16, 0, tzinfo=UTC),
         dt.date(2027, 1, 2)),
        # New York, spring forward on 2026-03-08 (02:00 EST -> 03:00 EDT): midnight still exists.
        (dt.datetime(2026, 3, 7, 17, 0, tzinfo=UTC), NEW_YORK, dt.datetime(2026, 3, 8, 5, 0, tzinfo=UTC),
         dt.date(2026, 3, 8)),
        (dt.datetime(2026, 3, 8, 12, 0, tzinfo=UTC), NEW_YORK, dt.datetime(2026, 3, 9, 4, 0, tzinfo=UTC),
         dt.date(2026, 3, 9)),
        # New York, fall back on 2026-11-01 (02:00 EDT -> 01:00 EST).
        (dt.datetime(2026, 10, 31, 12, 0, tzinfo=UTC), NEW_YORK, dt.datetime(2026, 11, 1, 4, 0, tzinfo=UTC),
         dt.date(2026, 11, 1)),
        (dt.datetime(2026, 11, 1, 12, 0, tzinfo=UTC), NEW_YORK, dt.datetime(2026, 11, 2, 5, 0, tzinfo=UTC),
         dt.date(2026, 11, 2)),
        # Late evening local time is already the next UTC day.
        (dt.datetime(2026, 3, 9, 3, 30, tzinfo=UTC), NEW_YORK, dt.datetime(2026, 3, 9, 4, 0, tzinfo=UTC),
         dt.date(2026, 3, 9)),
    ],
)
def test_next_midnight_is_the_next_local_midnight_as_an_instant(
    now_utc: dt.datetime, tz: ZoneInfo, expected_utc: dt.datetime, expected_local_date: dt.date
) -> None:
    wake = next_midnight(now_utc, tz)

    assert wake.astimezone(UTC) == expected_utc
    assert wake > now_utc
    assert wake.date() == expected_local_date
    assert wake.astimezone(tz).time() == dt.time(0, 0)


def test_days_around_dst_changes_last_23_and_25_hours_in_new_york() -> None:
    def day_length(first: dt.datetime) -> dt.timedelta:
        start = next_midnight(first, NEW_YORK)
        return next_midnight(start, NEW_YORK).astimezone(UTC) - start.astimezone(UTC)

    assert day_length(dt.datetime(2026, 3, 7, 12, tzinfo=UTC)) == dt.timedelta(hours=23)
    assert day_length(dt.datetime(2026, 10, 31, 12, tzinfo=UTC)) == dt.timedelta(hours=25)
    assert day_length(dt.datetime(2026, 3, 7, 12, tzinfo=UTC).replace(month=6)) == dt.timedelta(hours=24)


def test_a_year_of_shanghai_midnights_gives_every_date_once() -> None:
    now = dt.datetime(2025, 12, 31, 16, 0, tzinfo=UTC)  # 2026-01-01 00:00 in Shanghai
    dates = []
    for _ in range(365):
        now = next_midnight(now, SHANGHAI)
        dates.append(now.date())
    assert dates[0] == dt.date(2026, 1, 2) and dates[-1] == dt.date(2027, 1, 1)
    assert len(set(dates)) == 365


def test_an_unknown_timezone_is_a_config_error_naming_the_option() -> None:
    with pytest.raises(ConfigError, match="--timezone.*Mars/Olympus"):
        zone("Mars/Olympus")
    assert zone("Asia/Shanghai") == SHANGHAI
