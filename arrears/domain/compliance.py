"""The compliance rules for reported contact attempts (SPEC §6), as pure functions.

The stream processor keeps, per debtor, the recent contact attempts of every agency (one debtor,
one budget), asks :func:`check_contact` about each newly reported attempt, and keeps the state
small with :func:`prune`. Nothing here reads a clock, a broker or a file other than the tz
database that :mod:`zoneinfo` loads.

Counting semantics (docs/compliance.md explains them at length):

* Times are judged in the debtor's local time (IANA zone; an unknown zone falls back to the
  profile's ``default_timezone``); days are local calendar days.
* An attempt is judged against every attempt known for the debtor, earlier or later in time:
  agencies report late and out of order, and a breach is reported on the report that completes
  it. Reported in time order, that is exactly the Nth call; in any order, a day with N calls over
  a limit of L yields N - L findings. The result never depends on the order of ``history``.
* Call counters are per *party*, the ``ContactParty`` value (DEBTOR, EMERGENCY_CONTACT,
  THIRD_PARTY); the daily connected-call limit counts connected calls to the DEBTOR only.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .compliance_profiles import ContactPolicy
from .events import ContactAttempted

# Rule names, in the order findings are returned (the order of SPEC §6's table).
QUIET_HOURS = "QUIET_HOURS"
DAILY_CONNECTED_LIMIT = "DAILY_CONNECTED_LIMIT"
DAILY_ATTEMPT_LIMIT = "DAILY_ATTEMPT_LIMIT"
WEEKLY_ATTEMPT_LIMIT = "WEEKLY_ATTEMPT_LIMIT"
CALL_AFTER_CONVERSATION = "CALL_AFTER_CONVERSATION"
THIRD_PARTY_CONTACT = "THIRD_PARTY_CONTACT"
EMERGENCY_CONTACT = "EMERGENCY_CONTACT"
VISIT_WITHOUT_CONSENT = "VISIT_WITHOUT_CONSENT"
CONTACT_ON_HOLD = "CONTACT_ON_HOLD"
UNAUTHORIZED_CONTACT = "UNAUTHORIZED_CONTACT"
RULES: tuple[str, ...] = (
    QUIET_HOURS,
    DAILY_CONNECTED_LIMIT,
    DAILY_ATTEMPT_LIMIT,
    WEEKLY_ATTEMPT_LIMIT,
    CALL_AFTER_CONVERSATION,
    THIRD_PARTY_CONTACT,
    EMERGENCY_CONTACT,
    VISIT_WITHOUT_CONSENT,
    CONTACT_ON_HOLD,
    UNAUTHORIZED_CONTACT,
)

CALL = "CALL"
VISIT = "VISIT"
DEBTOR = "DEBTOR"
EMERGENCY = "EMERGENCY_CONTACT"
THIRD_PARTY = "THIRD_PARTY"
QUIET_HOURS_CHANNELS = frozenset({"CALL", "SMS", "VISIT", "APP"})  # LETTER and EMAIL never are
NOT_CONNECTED = frozenset({"NO_ANSWER", "LEFT_MESSAGE"})
WEEK_DAYS = 7  # Reg F §1006.14(b)(2)(i): "within a period of seven consecutive days"

_DAY_MS = 86_400_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_PARTY_TEXT = {DEBTOR: "the debtor", EMERGENCY: "emergency contacts", THIRD_PARTY: "third parties"}


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """One contact attempt made to a debtor (by any agency), as the rules need it."""

    event_id: str
    agency_id: str
    attempted_at: int  # epoch millis, UTC
    channel: str  # ContactChannel symbol
    party: str  # ContactParty symbol
    outcome: str  # ContactOutcome symbol

    @classmethod
    def from_event(cls, event: ContactAttempted) -> ContactRecord:
        return cls(
            event.event_id, event.agency_id, event.attempted_at, event.channel, event.party, event.outcome
        )

    @property
    def is_call(self) -> bool:
        return self.channel == CALL

    @property
    def connected(self) -> bool:
        """A CALL that reached someone: a telephone conversation in Reg F's words."""
        return self.channel == CALL and self.outcome not in NOT_CONNECTED


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule an attempt broke, with a sentence for the auditor (numbers and local time only)."""

    rule: str
    details: str


def check_contact(
    attempt: ContactRecord,
    history: Sequence[ContactRecord],
    policy: ContactPolicy,
    timezone: str,
    *,
    authorized: bool = True,
    on_hold: bool = False,
    ceased: bool = False,
) -> list[Finding]:
    """Every rule *attempt* breaks, in the order of :data:`RULES`; empty when it is compliant.

    *history* is the debtor's known attempts by every agency (any order; duplicates and the
    attempt itself are ignored by event_id). *authorized* is False when the reporting agency does
    not hold the case's active work order; *on_hold* / *ceased* describe the case when the attempt
    was reported.
    """
    zone, fell_back = _resolve_zone(timezone, policy.default_timezone)
    view = _View(attempt, _known(history, exclude=attempt.event_id), zone, fell_back)
    case = _Case(authorized, on_hold, ceased)
    findings = []
    for rule in _CHECKS:
        finding = rule(view, policy, case)
        if finding is not None:
            findings.append(finding)
    return findings


def prune(history: Sequence[ContactRecord], now_ms: int, policy: ContactPolicy) -> tuple[ContactRecord, ...]:
    """The part of *history* a later check can still need, deduplicated, in time order.

    *now_ms* is the earliest ``attempted_at`` a later check will be asked about: to judge reports
    that arrive up to X late, pass the current time minus X. Only CALLs are counted by any rule,
    so other channels are dropped, and so is everything before the longest look-back (in local
    days, plus a day of slack for time-zone offsets and daylight-saving days).
    """
    horizon = now_ms - (_lookback_days(policy) + 1) * _DAY_MS
    return tuple(r for r in _known(history, exclude=None) if r.is_call and r.attempted_at >= horizon)


# --------------------------------------------------------------------------- internals
@dataclass(frozen=True, slots=True)
class _Case:
    authorized: bool
    on_hold: bool
    ceased: bool


class _View:
    """The attempt and the other known attempts, with local times computed once."""

    __slots__ = ("attempt", "others", "zone", "fell_back", "local", "day")

    def __init__(
        self, attempt: ContactRecord, others: tuple[ContactRecord, ...], zone: ZoneInfo, fell_back: bool
    ) -> None:
        self.attempt = attempt
        self.others = others
        self.zone = zone
        self.fell_back = fell_back
        self.local = self.local_time(attempt)
        self.day = self.local.date()

    def local_time(self, record: ContactRecord) -> dt.datetime:
        return (_EPOCH + dt.timedelta(milliseconds=record.attempted_at)).astimezone(self.zone)

    def local_day(self, record: ContactRecord) -> dt.date:
        return self.local_time(record).date()

    def calls_to_same_party(self) -> Iterable[ContactRecord]:
        return (r for r in self.others if r.is_call and r.party == self.attempt.party)

    def when(self) -> str:
        """The attempt's local time for a sentence: ``2026-03-08 21:00 America/New_York (UTC-04:00)``."""
        offset = self.local.strftime("%z")
        note = ""
        if self.fell_back:
            # The unknown value itself is not echoed: it is customer data of unknown content.
            note = "; the profile's default zone, the debtor's timezone not being a known IANA name"
        return f"{self.local:%Y-%m-%d %H:%M} {self.zone.key} (UTC{offset[:3]}:{offset[3:]}{note})"


def _key(record: ContactRecord) -> tuple[int, str, str, str, str, str]:
    r = record
    return (r.attempted_at, r.event_id, r.agency_id, r.channel, r.party, r.outcome)


def _known(history: Iterable[ContactRecord], exclude: str | None) -> tuple[ContactRecord, ...]:
    """*history* in time order (ties by event_id), one record per event_id, without *exclude*."""
    seen: set[str] = set()
    kept = []
    for record in sorted(history, key=_key):
        if record.event_id != exclude and record.event_id not in seen:
            seen.add(record.event_id)
            kept.append(record)
    return tuple(kept)


@lru_cache(maxsize=512)
def _resolve_zone(name: str, default: str) -> tuple[ZoneInfo, bool]:
    """The debtor's zone, or the profile's default (then UTC) when *name* is no IANA zone."""
    for candidate, fell_back in ((name, False), (default, True)):
        try:
            return ZoneInfo(candidate), fell_back
        except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):
            continue
    return ZoneInfo("UTC"), True


@lru_cache(maxsize=64)
def _clock(hhmm: str) -> dt.time:
    hours, _, minutes = hhmm.partition(":")
    try:
        return dt.time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"quiet hours: expected local time HH:MM, got {hhmm!r}") from None


def _lookback_days(policy: ContactPolicy) -> int:
    days = 0
    if policy.max_connected_calls_per_day is not None or policy.max_attempts_per_day is not None:
        days = 1
    if policy.max_attempts_per_week is not None:
        days = max(days, WEEK_DAYS)
    if policy.call_after_conversation_days is not None:
        days = max(days, policy.call_after_conversation_days)
    return days


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --------------------------------------------------------------------------- the rules
_Check = Callable[[_View, ContactPolicy, _Case], Finding | None]


def _quiet_hours(view: _View, policy: ContactPolicy, case: _Case) -> Finding | None:
    if view.attempt.channel not in QUIET_HOURS_CHANNELS:
        return None
    start, end = _clock(policy.quiet_hours_start), _clock(policy.quiet_hours_end)
    now = view.local.time()
    # start == end means no quiet hours; start > end wraps midnight (22:00-08:00).
    inside = start <= now < end if start <= end else (now >= start or now < end)
    if not inside:
        return None
    return Finding(
        QUIET_HOURS,
        f"{view.attempt.channel} at {view.when()}, inside the quiet hours "
        f"{policy.quiet_hours_start}-{policy.quiet_hours_end} local time",
    )


def _daily_connected(view: _View, policy: ContactPolicy, case: _Case) -> Finding | None:
    limit = policy.max_connected_calls_per_day
    if limit is None or not view.attempt.connected or view.attempt.party != DEBTOR:
        return None
    count = 1 + sum(1 for r in view.calls_to_same_party() if r.connected and view.local_day(r) == view.day)
    if count <= limit:
        return None
    return Finding(
        DAILY_CONNECTED_LIMIT,
        f"connected call at {view.when()} is one of {count} connected calls to the debtor "
        f"on local day {view.day} across all agencies; the limit is {limit} a day",
    )


def _daily_attempts(view: _View, policy: ContactPolicy, case: _Case) -> Finding | None:
    limit = policy.max_attempts_per_day
    if limit is None or not view.attempt.is_call:
        return None
    count = 1 + sum(1 for r in view.calls_to_same_party() if view.local_day(r) == view.day)
    if count <= limit:
        return None
    return Finding(
        DAILY_ATTEMPT_LIMIT,
        f"call at {view.when()} is one of {count} call attempts to {_party(view.attempt.party)} "
        f"on local day {view.day} across all agencies; the limit is {limit} a day to one party",
    )


def _weekly_attempts(view: _View, policy: ContactPolicy, case: _Case) -> Finding | None:
    limit = policy.max_attempts_per_week
    if limit is None or not view.attempt.is_call:
        return None
    span = dt.timedelta(days=WEEK_DAYS - 1)
    per_day = Counter(
        day for r in view.calls_to_same_party() if abs((day := view.local_day(r)) - view.day) <= span
    )
    per_day[view.day] += 1
    # Every window of 7 consecutive local days that contains the attempt's day; the fullest
    # (earliest on a tie) is reported. Reported in time order, that is the window ending today.
    best_start, best_count = view.day, -1
    for back in range(WEEK_DAYS - 1, -1, -1):
        start = view.day - dt.timedelta(days=back)
        count = sum(per_day[start + dt.timedelta(days=i)] for i in range(WEEK_DAYS))
        if count > best_count:
            best_start, best_count = start, count
    if best_count <= limit:
        return None
    return Finding(
        WEEKLY_ATTEMPT_LIMIT,
        f"call at {view.when()} is one of {best_count} call attempts to {_party(view.attempt.party)} "
        f"in the {WEEK_DAYS} local days {best_start} to {best_start + span} across all agencies; "
        f"the limit is {limit} in {WEEK_DAYS} consecutive days",
    )


def _call_after_conversation(view: _View, policy: ContactPolicy, case: _Case) -> Finding | None:
    days = policy.call_after_conversation_days
    if days is None or days <= 0 or not view.attempt.is_call:
        return None
    # The conversation's local day is day 1 of the quiet period: calls on days 1..N break it.
    me = _key(view.attempt)
    calls = tuple(view.calls_to_same_party())
    before = [
        r for r in calls if r.connected and _key(r) < me and 0 <= (view.day - view.local_day(r)).days < days
    ]
    if before:
        talk = before[-1]
        gap = (view.day - view.local_day(talk)).days
        return Finding(
            CALL_AFTER_CONVERSATION,
            f"call at {view.when()} comes {_plural(gap, 'day')} after a telephone conversation with "
            f"{_party(view.attempt.party)} on local day {view.local_day(talk)} (event {talk.event_id}); "
            f"no calls for {days} days counting the conversation's day",
        )
    if not view.attempt.connected:
        return None
    # A conversation reported after calls that followed it: the breach is complete only now.
    after = [r for r in calls if _key(r) > me and 0 <= (view.local_day(r) - view.day).days < days]
    if not after:
        return None
    call = after[0]
    gap = (view.local_day(call) - view.day).days
    return Finding(
        CALL_AFTER_CONVERSATION,
        f"telephone conversation at {view.when()}, reported late, was followed "
        f"{_plural(gap, 'day')} later by a call to {_party(view.attempt.party)} on local day "
        f"{view.local_day(call)} (event {call.event_id}); no calls for {days} days counting the "
        f"conversation's day",
    )


def _third_party(view: _View, policy: ContactPolicy, case: _Case) -> Finding | None:
    if view.attempt.party != THIRD_PARTY:
        return None
    return Finding(
        THIRD_PARTY_CONTACT,
        f"{view.attempt.channel} to a third party at {view.when()}; the {policy.profile} profile "
        f"does not allow contacting third parties",
    )


def _emergency_contact(view: _View, policy: ContactPolicy, case: _Case) -> Finding | None:
    if view.attempt.party != EMERGENCY or policy.emergency_contacts_allowed:
        return None
    return Finding(
        EMERGENCY_CONTACT,
        f"{view.attempt.channel} to an emergency contact at {view.when()}; the policy does not "
        f"allow contacting emergency contacts",
    )


def _visit(view: _View, policy: ContactPolicy, case: _Case) -> Finding | None:
    if view.attempt.channel != VISIT or policy.visits_allowed:
        return None
    return Finding(
        VISIT_WITHOUT_CONSENT,
        f"VISIT at {view.when()}; the {policy.profile} profile allows no visits in this flow "
        f"(home visits need the lender's approval)",
    )


def _on_hold(view: _View, policy: ContactPolicy, case: _Case) -> Finding | None:
    reasons = []
    if case.on_hold:
        reasons.append("the case is on hold")
    if case.ceased:
        reasons.append("the debtor has asked to cease contact")
    if not reasons:
        return None
    return Finding(
        CONTACT_ON_HOLD,
        f"{view.attempt.channel} at {view.when()} while {' and '.join(reasons)}",
    )


def _unauthorized(view: _View, policy: ContactPolicy, case: _Case) -> Finding | None:
    if case.authorized:
        return None
    return Finding(
        UNAUTHORIZED_CONTACT,
        f"{view.attempt.channel} at {view.when()} by agency {view.attempt.agency_id}, "
        f"which does not hold the case's active work order",
    )


def _party(party: str) -> str:
    return _PARTY_TEXT.get(party, f"party {party}")


_CHECKS: tuple[_Check, ...] = (
    _quiet_hours,
    _daily_connected,
    _daily_attempts,
    _weekly_attempts,
    _call_after_conversation,
    _third_party,
    _emergency_contact,
    _visit,
    _on_hold,
    _unauthorized,
)
