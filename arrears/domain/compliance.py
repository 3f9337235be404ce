"""The compliance rules for reported contact attempts (SPEC §6), as pure functions.

Two kinds of rule, judged by two functions:

* :func:`judge_contact` — rules about one attempt and the case it was made on, judged at the
  attempt's own time: quiet hours, who was contacted (emergency contacts; third parties under
  profiles that forbid them outright), visits, contact while the case was on hold or after a
  cease-contact request, contact by an agency that did not hold the work order at that time.
* :func:`budget_findings` — rules about the debtor's contact budget (one debtor, one budget:
  every agency, every loan): the daily and weekly limits, calls after a conversation, and the
  CBA rule for third parties. Each is decided by *rank*: attempts are ordered by
  ``attempted_at`` (ties by event id), and an attempt breaks a count limit when its rank in its
  window exceeds the limit. The findings are a function of the *set* of attempts known, not of
  the order they were reported in, so a live run and a replay agree; for the count limits a late
  report can only add findings (to itself or to later attempts), and the caller emits each
  finding once. The CBA rule is not monotone (a late unanswered call can clear a third-party
  contact), so the caller decides it once, over a set every run agrees on
  (:func:`third_party_finding`; the debtor stage uses the set counted before a barrier tick).

Nothing here reads a clock, a broker or a file other than the tz database that :mod:`zoneinfo`
loads. Counting semantics are explained in docs/compliance.md:

* Times are judged in the debtor's local time (IANA zone; an unknown zone falls back to the
  profile's ``default_timezone``); days are local calendar days.
* Call counters are per *party*, the ``ContactParty`` value (DEBTOR, EMERGENCY_CONTACT,
  THIRD_PARTY); the daily connected-call limit counts connected calls to the DEBTOR only.
* A finding's details hold only what every ordering agrees on: the rule, the numbers of the
  policy, the attempt's local time and day — never a count that a later report could change.
"""

from __future__ import annotations

import datetime as dt
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
UNREACHABLE = frozenset({"NO_ANSWER", "WRONG_PARTY"})  # the CBA rule: the debtor was not reached
WEEK_DAYS = 7  # Reg F §1006.14(b)(2)(i): "within a period of seven consecutive days"
# The CBA rule looks at the debtor's latest calls within this many local days before a
# third-party contact (older attempts say nothing about whether the debtor is reachable now).
UNREACHABLE_WINDOW_DAYS = 7

_DAY_MS = 86_400_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_PARTY_TEXT = {DEBTOR: "the debtor", EMERGENCY: "emergency contacts", THIRD_PARTY: "third parties"}


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """One contact attempt made to a debtor (by any agency, about any of the debtor's loans)."""

    event_id: str
    agency_id: str
    attempted_at: int  # epoch millis, UTC
    channel: str  # ContactChannel symbol
    party: str  # ContactParty symbol
    outcome: str  # ContactOutcome symbol
    case_id: str = ""  # the case the attempt was reported on (a violation names it)
    occurred_at: int = 0  # the report's occurred_at (a violation carries it)
    work_order_id: str = ""
    loan_id: str = ""  # the loan of that case (the debtor's budget spans the debtor's loans)
    recorded: bool = True  # recorded against its case (False: a work order the agency never held)
    # The business date of the loan's partition when the attempt was counted (None: before its
    # first tick): a barrier tick D judges with exactly the attempts counted before D.
    counted_on: dt.date | None = None

    @classmethod
    def from_event(cls, event: ContactAttempted) -> ContactRecord:
        return cls(
            event.event_id, event.agency_id, event.attempted_at, event.channel, event.party, event.outcome,
            event.case_id, event.occurred_at, event.work_order_id,
        )

    @property
    def is_call(self) -> bool:
        return self.channel == CALL

    @property
    def connected(self) -> bool:
        """A CALL that reached someone: a telephone conversation in Reg F's words."""
        return self.channel == CALL and self.outcome not in NOT_CONNECTED

    @property
    def key(self) -> tuple[int, str]:
        """Its place in time order: attempted_at, ties by event id."""
        return (self.attempted_at, self.event_id)


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule an attempt broke, with a sentence for the auditor (numbers and local time only)."""

    rule: str
    details: str


def judge_contact(
    attempt: ContactRecord,
    policy: ContactPolicy,
    timezone: str,
    *,
    authorized: bool = True,
    on_hold: bool = False,
    ceased: bool = False,
) -> list[Finding]:
    """The rules about this attempt alone, in the order of :data:`RULES`.

    *authorized* is False when the reporting agency did not hold the case's work order at the
    attempt's time (or the case was closed by then); *on_hold* / *ceased* describe the case
    at the attempt's time.
    """
    view = _View.of(attempt, (), timezone, policy)
    case = _Case(authorized, on_hold, ceased)
    findings = []
    for rule in _ATTEMPT_CHECKS:
        finding = rule(view, policy, case)
        if finding is not None:
            findings.append(finding)
    return findings


def budget_findings(
    attempts: Sequence[ContactRecord], policy: ContactPolicy, timezone: str, *, third_party: bool = True
) -> dict[str, list[Finding]]:
    """Every attempt's budget findings given this set of the debtor's attempts (by event id).

    Duplicates (same event id) count once. Attempts without findings are left out. With
    *third_party* False the CBA rule is left out: the count rules only ever add findings as
    attempts become known, but the CBA rule can also lose one (a late unanswered call), so the
    debtor stage judges it once, at a barrier (:func:`third_party_finding`).
    """
    known = _known(attempts, exclude=None)
    zone, fell_back = _resolve_zone(timezone, policy.default_timezone)
    checks = _BUDGET_CHECKS if third_party else _COUNT_CHECKS
    out: dict[str, list[Finding]] = {}
    for attempt in known:
        view = _View(attempt, known, zone, fell_back)
        found = [f for rule in checks if (f := rule(view, policy, _NO_CASE)) is not None]
        if found:
            out[attempt.event_id] = found
    return out


def judged_at_barrier(attempt: ContactRecord, policy: ContactPolicy) -> bool:
    """Whether *attempt* falls under the CBA rule, whose verdict waits for a barrier (SPEC §6)."""
    return attempt.party == THIRD_PARTY and policy.third_party_after_unreachable is not None


def third_party_finding(
    attempt: ContactRecord, attempts: Sequence[ContactRecord], policy: ContactPolicy, timezone: str
) -> Finding | None:
    """The CBA rule for one third-party contact given this set of the debtor's attempts."""
    return _third_party_unreachable(_View.of(attempt, _known(attempts, exclude=None), timezone, policy),
                                    policy, _NO_CASE)


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
    """Every rule *attempt* breaks given the debtor's other known attempts, in the order of :data:`RULES`."""
    found = judge_contact(attempt, policy, timezone, authorized=authorized, on_hold=on_hold, ceased=ceased)
    found += budget_findings((*history, attempt), policy, timezone).get(attempt.event_id, [])
    order = {rule: i for i, rule in enumerate(RULES)}
    return sorted(found, key=lambda f: order[f.rule])


def prune(history: Sequence[ContactRecord], now_ms: int, policy: ContactPolicy) -> tuple[ContactRecord, ...]:
    """The part of *history* a later check can still need, deduplicated, in time order.

    *now_ms* is the earliest ``attempted_at`` a later check will be asked about: to judge reports
    that arrive up to X late, pass the current time minus X. Budget rules count CALLs and judge
    contacts with third parties, so other attempts are dropped, and so is everything before the
    longest look-back (in local days, plus a day of slack for time-zone offsets and
    daylight-saving days).
    """
    horizon = now_ms - (_lookback_days(policy) + 1) * _DAY_MS
    return tuple(r for r in _known(history, exclude=None)
                 if (r.is_call or r.party == THIRD_PARTY) and r.attempted_at >= horizon)


# --------------------------------------------------------------------------- internals
@dataclass(frozen=True, slots=True)
class _Case:
    authorized: bool
    on_hold: bool
    ceased: bool


_NO_CASE = _Case(True, False, False)


class _View:
    """The attempt and the debtor's known attempts (time order), with local times computed once."""

    __slots__ = ("attempt", "known", "zone", "fell_back", "local", "day", "_days")

    def __init__(
        self, attempt: ContactRecord, known: tuple[ContactRecord, ...], zone: ZoneInfo, fell_back: bool
    ) -> None:
        self.attempt = attempt
        self.known = known
        self.zone = zone
        self.fell_back = fell_back
        self.local = self.local_time(attempt)
        self.day = self.local.date()
        self._days: dict[str, dt.date] = {}

    @classmethod
    def of(cls, attempt: ContactRecord, known: tuple[ContactRecord, ...], timezone: str,
           policy: ContactPolicy) -> _View:
        zone, fell_back = _resolve_zone(timezone, policy.default_timezone)
        return cls(attempt, known, zone, fell_back)

    def local_time(self, record: ContactRecord) -> dt.datetime:
        return (_EPOCH + dt.timedelta(milliseconds=record.attempted_at)).astimezone(self.zone)

    def local_day(self, record: ContactRecord) -> dt.date:
        return self.local_time(record).date()

    def calls_to_same_party(self) -> Iterable[ContactRecord]:
        """The debtor's other calls to the attempt's party, in time order."""
        me = self.attempt.event_id
        party = self.attempt.party
        return (r for r in self.known if r.is_call and r.party == party and r.event_id != me)

    def before(self, record: ContactRecord) -> bool:
        return record.key < self.attempt.key

    def when(self) -> str:
        """The attempt's local time for a sentence: ``2026-03-08 21:00 America/New_York (UTC-04:00)``."""
        offset = self.local.strftime("%z")
        note = ""
        if self.fell_back:
            # The unknown value itself is not echoed: it is customer data of unknown content.
            note = "; the profile's default zone, the debtor's timezone not being a known IANA name"
        return f"{self.local:%Y-%m-%d %H:%M} {self.zone.key} (UTC{offset[:3]}:{offset[3:]}{note})"


def _known(history: Iterable[ContactRecord], exclude: str | None) -> tuple[ContactRecord, ...]:
    """*history* in time order (ties by event_id), one record per event_id, without *exclude*."""
    seen: set[str] = set()
    kept = []
    for record in sorted(history, key=lambda r: r.key):
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
    days = 1
    if policy.third_party_after_unreachable is not None:
        days = UNREACHABLE_WINDOW_DAYS
    if policy.max_attempts_per_week is not None:
        days = max(days, WEEK_DAYS)
    if policy.call_after_conversation_days is not None:
        days = max(days, policy.call_after_conversation_days)
    return days


def _party(party: str) -> str:
    return _PARTY_TEXT.get(party, f"party {party}")


# --------------------------------------------------------------------------- rules about one attempt
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


def _third_party_banned(view: _View, policy: ContactPolicy, case: _Case) -> Finding | None:
    if view.attempt.party != THIRD_PARTY or policy.third_party_after_unreachable is not None:
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
        reasons.append("the case was on hold")
    if case.ceased:
        reasons.append("the debtor had asked to cease contact")
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
        f"which did not hold the case's work order at that time",
    )


# --------------------------------------------------------------------------- budget rules (by rank)
def _daily_connected(view: _View, policy: ContactPolicy, case: _Case) -> Finding | None:
    limit = policy.max_connected_calls_per_day
    if limit is None or not view.attempt.connected or view.attempt.party != DEBTOR:
        return None
    rank = 1 + sum(1 for r in view.calls_to_same_party()
                   if r.connected and view.before(r) and view.local_day(r) == view.day)
    if rank <= limit:
        return None
    return Finding(
        DAILY_CONNECTED_LIMIT,
        f"connected call at {view.when()} comes after the {limit} connected calls to the debtor "
        f"allowed on local day {view.day} (counted in time order across all agencies and loans)",
    )


def _daily_attempts(view: _View, policy: ContactPolicy, case: _Case) -> Finding | None:
    limit = policy.max_attempts_per_day
    if limit is None or not view.attempt.is_call:
        return None
    rank = 1 + sum(1 for r in view.calls_to_same_party() if view.before(r) and view.local_day(r) == view.day)
    if rank <= limit:
        return None
    return Finding(
        DAILY_ATTEMPT_LIMIT,
        f"call at {view.when()} comes after the {limit} call attempts to {_party(view.attempt.party)} "
        f"allowed on local day {view.day} (counted in time order across all agencies and loans)",
    )


def _weekly_attempts(view: _View, policy: ContactPolicy, case: _Case) -> Finding | None:
    limit = policy.max_attempts_per_week
    if limit is None or not view.attempt.is_call:
        return None
    start = view.day - dt.timedelta(days=WEEK_DAYS - 1)
    rank = 1 + sum(1 for r in view.calls_to_same_party() if view.before(r) and start <= view.local_day(r))
    if rank <= limit:
        return None
    return Finding(
        WEEKLY_ATTEMPT_LIMIT,
        f"call at {view.when()} comes after the {limit} call attempts to {_party(view.attempt.party)} "
        f"allowed in the {WEEK_DAYS} local days {start} to {view.day} "
        f"(counted in time order across all agencies and loans)",
    )


def _call_after_conversation(view: _View, policy: ContactPolicy, case: _Case) -> Finding | None:
    days = policy.call_after_conversation_days
    if days is None or days <= 0 or not view.attempt.is_call:
        return None
    # The conversation's local day is day 1 of the quiet period: calls on days 1..N break it.
    if not any(r.connected and view.before(r) and 0 <= (view.day - view.local_day(r)).days < days
               for r in view.calls_to_same_party()):
        return None
    return Finding(
        CALL_AFTER_CONVERSATION,
        f"call at {view.when()} comes within {days} days of a telephone conversation with "
        f"{_party(view.attempt.party)} (no calls for {days} days counting the conversation's day)",
    )


def _third_party_unreachable(view: _View, policy: ContactPolicy, case: _Case) -> Finding | None:
    needed = policy.third_party_after_unreachable
    if view.attempt.party != THIRD_PARTY or needed is None:
        return None
    calls = [r for r in view.known if r.is_call and r.party == DEBTOR and view.before(r)
             and (view.day - view.local_day(r)).days < UNREACHABLE_WINDOW_DAYS]
    latest = calls[-needed:] if needed > 0 else []
    if len(latest) == needed and all(r.outcome in UNREACHABLE for r in latest):
        return None
    return Finding(
        THIRD_PARTY_CONTACT,
        f"{view.attempt.channel} to a third party at {view.when()}, before the debtor's {needed} latest "
        f"call attempts (in the {UNREACHABLE_WINDOW_DAYS} local days before it) had all ended NO_ANSWER or "
        f"WRONG_PARTY (third parties only once the debtor was unreachable {needed} times in a row)",
    )


_ATTEMPT_CHECKS: tuple[_Check, ...] = (
    _quiet_hours,
    _third_party_banned,
    _emergency_contact,
    _visit,
    _on_hold,
    _unauthorized,
)
_COUNT_CHECKS: tuple[_Check, ...] = (
    _daily_connected,
    _daily_attempts,
    _weekly_attempts,
    _call_after_conversation,
)
_BUDGET_CHECKS: tuple[_Check, ...] = (*_COUNT_CHECKS, _third_party_unreachable)
