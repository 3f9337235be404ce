"""Pausing delinquency (SPEC §10): which days of a loan are paused, and DPD without them. Pure.

A pause covers the days ``from_date`` to ``until_date`` (inclusive; open-ended without an
``until_date``), cut short by a resume: ``ResumeDelinquency(on_date)`` ends every pause that
reaches ``on_date`` the day before it. Pauses may overlap; a day is paused when any pause
covers it. Every function here is a function of the pauses and dates it is given, so the
figures stay a pure function of the ledger, the pauses and the business date D, whatever
order the loan's events came in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace

#: The last day of an open-ended pause, as CaseState.paused_until shows it.
OPEN_ENDED = dt.date(9999, 12, 31)
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Pause:
    """One PauseDelinquency as the loan keeps it (and the resume that ended it early, if any)."""

    pause_id: str  # the command's event id
    from_date: dt.date
    until_date: dt.date | None  # None: open-ended
    reason: str
    requested_by: str
    resumed_on: dt.date | None = None  # a ResumeDelinquency: the pause ends the day before

    @property
    def last_day(self) -> dt.date:
        """The last paused day (OPEN_ENDED while nothing ends it)."""
        last = self.until_date or OPEN_ENDED
        if self.resumed_on is not None:
            last = min(last, self.resumed_on - _DAY)
        return last

    @property
    def is_void(self) -> bool:
        """Resumed before it began: it pauses no day."""
        return self.last_day < self.from_date


def _after(day: dt.date) -> dt.date | None:
    """The day after *day*, or None after the end of time (an open-ended pause never ends)."""
    return None if day >= OPEN_ENDED else day + _DAY


def intervals(pauses: Iterable[Pause]) -> list[tuple[dt.date, dt.date]]:
    """The paused days as disjoint (first, last) ranges, inclusive, in date order."""
    spans = sorted((p.from_date, p.last_day) for p in pauses if not p.is_void)
    merged: list[tuple[dt.date, dt.date]] = []
    for first, last in spans:
        if merged:
            prev_first, prev_last = merged[-1]
            next_day = _after(prev_last)
            if next_day is None or first <= next_day:
                merged[-1] = (prev_first, max(prev_last, last))
                continue
        merged.append((first, last))
    return merged


def paused_days(pauses: Iterable[Pause], start: dt.date, end: dt.date) -> int:
    """How many days d with start <= d < end are paused."""
    if end <= start:
        return 0
    total = 0
    for first, last in intervals(pauses):
        lo = max(first, start)
        hi_excl = min(_after(last) or end, end)
        if hi_excl > lo:
            total += (hi_excl - lo).days
    return total


def paused_until(pauses: Iterable[Pause], day: dt.date | None) -> dt.date | None:
    """The last day of the paused range that covers *day* (OPEN_ENDED if it never ends), else None."""
    if day is None:
        return None
    for first, last in intervals(pauses):
        if first <= day <= last:
            return last
    return None


def resume(pauses: tuple[Pause, ...], on_date: dt.date) -> tuple[Pause, ...] | None:
    """The pauses with every one that reaches *on_date* ended the day before; None if none does."""
    changed = False
    out = []
    for pause in pauses:
        if not pause.is_void and pause.last_day >= on_date:
            ended = on_date if pause.resumed_on is None else min(pause.resumed_on, on_date)
            pause = replace(pause, resumed_on=ended)
            changed = True
        out.append(pause)
    return tuple(out) if changed else None


def first_unpaused_on_or_after(pauses: Iterable[Pause], day: dt.date) -> dt.date | None:
    """*day* if it is not paused, else the day after its paused range (None: paused for good)."""
    end = paused_until(pauses, day)
    return day if end is None else _after(end)


def day_counted(pauses: Iterable[Pause], start: dt.date, count: int) -> dt.date | None:
    """The first business date D at which *count* unpaused days d with start <= d < D have passed
    and D itself is not paused (None: an open-ended pause stops the count for good).

    It is when a loan whose oldest unpaid installment fell due on *start* first reaches
    DPD = *count* outside a pause: a tick earlier cannot open its case.
    """
    spans = intervals(pauses)
    day, remaining = start, count
    for first, last in spans:
        if last < day:
            continue
        if first > day:
            gap = (first - day).days
            if gap >= remaining:
                day, remaining = day + dt.timedelta(days=remaining), 0
                break
            remaining -= gap
        after = _after(last)
        if after is None:
            return None
        day = after
    candidate = day + dt.timedelta(days=remaining)
    return first_unpaused_on_or_after(spans_as_pauses(spans), candidate)


def spans_as_pauses(spans: Iterable[tuple[dt.date, dt.date]]) -> list[Pause]:
    """Ranges as pauses (for the helpers above)."""
    return [Pause("", first, None if last >= OPEN_ENDED else last, "", "") for first, last in spans]
