"""The calendar fan-out resumes where its markers say, without mistaking a re-sent tick for a stale one."""

from __future__ import annotations

import datetime as dt

from arrears.settings import Settings
from streams.fanout import CalendarFanout
from streams.markers import encode_marker
from streams.sequencer import TickMarker

D = dt.date.fromisoformat


class Markers:
    """Stands in for the offset reader: the last marker of each ticks partition."""

    def __init__(self, last: dict[int, TickMarker | None]) -> None:
        self.last = {p: (encode_marker(m) if m is not None else None) for p, m in last.items()}

    def last_values(self, topic: str, partitions: int) -> dict[int, bytes | None]:
        return self.last


def fanout(last: dict[int, TickMarker | None]) -> CalendarFanout:
    settings = Settings(arrears_partitions=3)
    return CalendarFanout(settings, "app-ticks", sink=None, offsets=Markers(last))  # type: ignore[arg-type]


def tick(offset: int, day: str, latest: str | None = None) -> TickMarker:
    return TickMarker(offset, f"t{offset}", D(day), 0, {}, latest=D(latest or day))


def test_a_crash_between_partitions_resumes_at_the_tick_some_partitions_lack_and_it_is_not_stale() -> None:
    # Tick 7 (2026-03-08) reached partitions 0 and 1 before the crash, not partition 2.
    f = fanout({0: tick(7, "2026-03-08"), 1: tick(7, "2026-03-08"), 2: tick(6, "2026-03-07")})
    assert f._resume_point() == 7
    assert f.latest == D("2026-03-07")  # so tick 7 is sent again as a tick, not as a stale skip


def test_resume_after_every_partition_has_the_last_marker_and_the_latest_date_is_kept() -> None:
    skip = TickMarker(9, None, latest=D("2026-03-08"))  # an ignored message after the last tick
    f = fanout({0: skip, 1: skip, 2: skip})
    assert f._resume_point() == 10 and f.latest == D("2026-03-08")


def test_a_partition_without_any_marker_makes_the_fan_out_start_from_the_beginning() -> None:
    f = fanout({0: tick(0, "2026-03-01"), 1: None, 2: None})
    assert f._resume_point() == 0 and f.latest is None


