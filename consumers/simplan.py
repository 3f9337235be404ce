"""What a simulated collection agency does with its cases on one business day: pure and seeded.

Given the same seed, work orders and days, the same results come out, whatever the timing:
each case's day draws from its own generator, seeded by (seed, agency, work order, date).
Results are in JSON form (SPEC §1), ready for ``POST /results`` or an inbox CSV.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = dt.UTC
SIM_NAMESPACE = uuid.UUID("0b7f3c7e-2d55-5b0e-8f6c-6a1c2f9e4d10")

#: Contact outcomes of a compliant call and how often an agency sees them.
CALL_OUTCOMES: tuple[tuple[str, float], ...] = (
    ("NO_ANSWER", 0.42),
    ("LEFT_MESSAGE", 0.10),
    ("RIGHT_PARTY_CONTACT", 0.20),
    ("CALLBACK_REQUESTED", 0.08),
    ("REFUSED_TO_PAY", 0.07),
    ("WRONG_PARTY", 0.03),
    ("PROMISE_TO_PAY", 0.10),
)
UNCONNECTED = frozenset({"NO_ANSWER", "LEFT_MESSAGE"})
VIOLATION_KINDS = ("QUIET_HOURS", "ATTEMPT_LIMIT", "THIRD_PARTY_CONTACT")


@dataclass(frozen=True)
class SimProfile:
    """How the simulated agency behaves; rates are per case and business day."""

    violation_rate: float = 0.05  # share of case-days with one rule-breaking contact
    keep_rate: float = 0.6  # share of promises kept (paid in full on the promised date)
    self_cure_rate: float = 0.02  # debtor pays everything without a promise
    dispute_rate: float = 0.004
    complaint_rate: float = 0.003
    cease_rate: float = 0.003
    return_rate: float = 0.002  # the agency gives the case back (unreachable)
    max_calls_per_day: int = 3
    # SPEC §10: share of conversations on a case whose work order allows a discount (the late
    # buckets) that end in a settlement proposal, and share of settlements the debtor pays by pay_by.
    settlement_rate: float = 0.0
    settlement_keep_rate: float = 0.7


@dataclass(frozen=True)
class Promise:
    amount: int
    due: dt.date
    keep: bool


@dataclass(frozen=True)
class Settlement:
    """A settlement the agency proposed: the debtor pays *amount* on *pay_on* (None: never)."""

    amount: int
    pay_by: dt.date
    pay_on: dt.date | None


@dataclass(frozen=True)
class CaseFile:
    """What the agency knows of one work order (from WorkOrderIssued, kept up by WorkOrderUpdated)."""

    work_order_id: str
    case_id: str
    loan_id: str
    currency: str
    overdue_amount: int
    timezone: str
    policy: Mapping[str, Any]
    promise: Promise | None = None
    stopped: bool = False  # disputed, complained, ceased or returned: the agency stops working it
    paid_pending: int = 0  # paid through the agency since the last balance the lender sent
    call_days: tuple[dt.date, ...] = ()  # one entry per call attempt
    last_conversation: dt.date | None = None
    settlement_policy: Mapping[str, Any] | None = None  # SPEC §10: the work order's limits
    settlement: Settlement | None = None

    @property
    def remaining(self) -> int:
        return max(0, self.overdue_amount - self.paid_pending)


class CaseBook:
    """The agency's active work orders, built from work-order events in JSON form."""

    def __init__(self) -> None:
        self.cases: dict[str, CaseFile] = {}
        self._seen: set[str] = set()
        self.cancelled: dict[str, str] = {}  # work_order_id -> reason

    def apply(self, obj: Mapping[str, Any]) -> bool:
        """Apply one event; False if its event_id was seen before (a re-delivery)."""
        event_id = str(obj["event_id"])
        if event_id in self._seen:
            return False
        self._seen.add(event_id)
        kind, wo = obj["type"], str(obj["work_order_id"])
        if kind == "WorkOrderIssued":
            if wo not in self.cancelled:
                debtor = obj["debtor"]
                self.cases[wo] = CaseFile(
                    work_order_id=wo,
                    case_id=obj["case_id"],
                    loan_id=obj["loan_id"],
                    currency=obj["currency"],
                    overdue_amount=int(obj["overdue_amount"]),
                    timezone=debtor["timezone"],
                    policy=dict(obj["contact_policy"]),
                    settlement_policy=obj.get("settlement_policy"),
                )
        elif kind == "WorkOrderUpdated":
            case = self.cases.get(wo)
            if case is not None:
                self.cases[wo] = replace(case, overdue_amount=int(obj["overdue_amount"]), paid_pending=0,
                                         settlement_policy=obj.get("settlement_policy"))
        elif kind == "WorkOrderCancelled":
            self.cases.pop(wo, None)
            self.cancelled[wo] = str(obj["reason"])
        return True

    def active(self) -> list[CaseFile]:
        return [self.cases[k] for k in sorted(self.cases) if not self.cases[k].stopped]

    def update(self, case: CaseFile) -> None:
        """Store a case's new state, unless it was cancelled meanwhile."""
        if case.work_order_id in self.cases:
            self.cases[case.work_order_id] = case


@dataclass
class DayPlan:
    """One case's day: results to report, repayments to publish, rule breaks injected on purpose."""

    results: list[dict[str, Any]] = field(default_factory=list)
    repayments: list[dict[str, Any]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Shanghai")


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _iso(instant: dt.datetime) -> str:
    instant = instant.astimezone(UTC)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


class _Day:
    """Builds one case's results on one day; ids derive from the seed, so re-runs repeat them."""

    def __init__(self, case: CaseFile, day: dt.date, agency_id: str, seed: str) -> None:
        self.case, self.day, self.agency_id, self.seed = case, day, agency_id, seed
        self.tz = _zone(case.timezone)
        self.plan = DayPlan()
        self.calls = 0
        self._n = 0
        quiet_start = _minutes(str(case.policy.get("quiet_hours_start") or "22:00"))
        quiet_end = _minutes(str(case.policy.get("quiet_hours_end") or "08:00"))
        self.quiet = (quiet_start, quiet_end)
        day_end = quiet_start if quiet_start > quiet_end else 24 * 60
        self.window = (
            quiet_end + 15,
            max(quiet_end + 16, day_end - 45),
        )  # minutes safely outside quiet hours

    def _id(self, what: str) -> str:
        self._n += 1
        key = (
            f"{self.seed}|{self.agency_id}|{self.case.work_order_id}|{self.day.isoformat()}|{what}|{self._n}"
        )
        return str(uuid.uuid5(SIM_NAMESPACE, key))

    def at(self, minute: int) -> dt.datetime:
        local = dt.datetime.combine(self.day, dt.time(minute // 60 % 24, minute % 60), tzinfo=self.tz)
        return local.astimezone(UTC)

    def _base(self, kind: str, when: dt.datetime) -> dict[str, Any]:
        return {
            "type": kind,
            "event_id": self._id(kind),
            "occurred_at": _iso(when),
            "agency_id": self.agency_id,
            "case_id": self.case.case_id,
            "work_order_id": self.case.work_order_id,
        }

    def contact(self, minute: int, channel: str, party: str, outcome: str) -> dt.datetime:
        when = self.at(minute)
        self.plan.results.append(
            {
                **self._base("ContactAttempted", when),
                "attempted_at": _iso(when),
                "channel": channel,
                "party": party,
                "outcome": outcome,
            }
        )
        if channel == "CALL":
            self.calls += 1
        return when

    def note(self, kind: str, when: dt.datetime, **fields: Any) -> None:
        self.plan.results.append({**self._base(kind, when + dt.timedelta(minutes=2)), **fields})

    def repay(self, amount: int, minute: int = 15 * 60) -> None:
        when = self.at(minute)
        pay_id = self._id("payment")
        self.plan.repayments.append(
            {
                "event_id": self._id("RepaymentReceived"),
                "occurred_at": _iso(when),
                "loan_id": self.case.loan_id,
                "payment_id": f"{self.agency_id}-{uuid.UUID(pay_id).hex[:20]}",
                "amount": amount,
                "currency": self.case.currency,
                "value_date": self.day.isoformat(),
                "channel": "AGENCY",
                "reference": self.case.work_order_id,
            }
        )


def _times(rng: random.Random, count: int, window: tuple[int, int]) -> list[int]:
    low, high = window
    return sorted(rng.randint(low, high) for _ in range(count))


def plan_day(
    case: CaseFile, day: dt.date, *, agency_id: str, seed: str, profile: SimProfile = SimProfile()
) -> tuple[DayPlan, CaseFile]:
    """One business day of work on *case*: (what to report and pay, the case's new state)."""
    if case.stopped or case.remaining <= 0:
        return DayPlan(), case
    rng = random.Random(f"{seed}|{agency_id}|{case.work_order_id}|{day.isoformat()}")
    d = _Day(case, day, agency_id, seed)
    state = case

    if state.settlement is not None:
        return _settlement_day(d, state)

    if state.promise is not None:
        promise = state.promise
        if day >= promise.due:
            state = replace(state, promise=None)
            if promise.keep:
                d.repay(min(promise.amount, state.remaining))
                return d.plan, replace(
                    state, paid_pending=state.paid_pending + min(promise.amount, state.remaining)
                )
        else:
            if day == promise.due - dt.timedelta(days=1):
                d.contact(10 * 60, "SMS", "DEBTOR", "LEFT_MESSAGE")  # a reminder, not a call
            return d.plan, state

    if rng.random() < profile.self_cure_rate:
        d.repay(state.remaining, rng.randint(*d.window))
        return d.plan, replace(state, paid_pending=state.paid_pending + state.remaining)

    policy = case.policy
    budget = profile.max_calls_per_day
    if policy.get("max_attempts_per_day") is not None:
        budget = min(budget, int(policy["max_attempts_per_day"]))
    if policy.get("max_attempts_per_week") is not None:
        week = sum(1 for c in state.call_days if day - dt.timedelta(days=6) <= c < day)
        budget = min(budget, max(0, int(policy["max_attempts_per_week"]) - week))
    if (
        policy.get("profile") == "US_REG_F"
        and state.last_conversation is not None
        and (day - state.last_conversation).days <= 7
    ):
        budget = 0  # Reg F: no call within 7 days after a conversation; write instead
    connected_cap = policy.get("max_connected_calls_per_day")
    calls = rng.randint(0, budget) if budget else 0
    connected = 0
    spoke_at: dt.datetime | None = None
    names, weights = zip(*CALL_OUTCOMES, strict=True)
    for minute in _times(rng, calls, d.window):
        if connected_cap is not None and connected >= int(connected_cap):
            break
        outcome = rng.choices(names, weights)[0]
        when = d.contact(minute, "CALL", "DEBTOR", outcome)
        if outcome in UNCONNECTED:
            continue
        connected += 1
        spoke_at = when
        if profile.settlement_rate > 0 and _offers_settlement(state) and rng.random() < profile.settlement_rate:
            state = _propose_settlement(d, state, rng, when, profile)
            break
        if outcome == "PROMISE_TO_PAY":
            amount = state.remaining if rng.random() < 0.7 else max(1, state.remaining // 2)
            due = day + dt.timedelta(days=rng.randint(1, 7))
            d.note("PromiseToPay", when, promised_amount=amount, promised_date=due.isoformat())
            state = replace(state, promise=Promise(amount, due, rng.random() < profile.keep_rate))
            break
    if budget == 0 and rng.random() < 0.5:
        d.contact(rng.randint(*d.window), "EMAIL", "DEBTOR", "LEFT_MESSAGE")
    if spoke_at is not None:
        state = replace(state, last_conversation=day)
        roll = rng.random()
        holds = (
            ("DisputeRaised", profile.dispute_rate, "debtor disputes the overdue amount"),
            ("ComplaintReceived", profile.complaint_rate, "debtor complained about the collector's tone"),
            ("CeaseContactRequested", profile.cease_rate, "debtor asked for contact in writing only"),
        )
        for kind, rate, details in holds:
            # Rates are per case-day; only days with a conversation can raise one, so scale up.
            if roll < rate * 2.5:
                d.note(kind, spoke_at, details=details)
                state = replace(state, stopped=True)
                break
            roll -= rate * 2.5

    if not state.stopped and rng.random() < profile.return_rate:
        d.note("CaseReturned", d.at(d.window[1]), reason="UNREACHABLE: no working phone number")
        state = replace(state, stopped=True)

    if rng.random() < profile.violation_rate:
        kind = rng.choice(VIOLATION_KINDS)
        if kind == "QUIET_HOURS":
            start, end = d.quiet
            length = (end - start) % (24 * 60)
            d.contact(start + rng.randint(10, max(11, length - 10)), "CALL", "DEBTOR", "NO_ANSWER")
            d.plan.violations.append("QUIET_HOURS")
        elif kind == "ATTEMPT_LIMIT":
            limit = policy.get("max_attempts_per_day") or policy.get("max_attempts_per_week") or 7
            for minute in _times(rng, max(1, int(limit) + 1 - d.calls), d.window):
                d.contact(minute, "CALL", "DEBTOR", "NO_ANSWER")
            rule = "DAILY_ATTEMPT_LIMIT" if policy.get("max_attempts_per_day") else "WEEKLY_ATTEMPT_LIMIT"
            d.plan.violations.append(rule)
        else:
            d.contact(rng.randint(*d.window), "CALL", "THIRD_PARTY", "LEFT_MESSAGE")
            d.plan.violations.append("THIRD_PARTY_CONTACT")

    d.plan.results.sort(key=lambda r: (r.get("attempted_at") or r["occurred_at"], r["type"]))
    state = replace(
        state, call_days=tuple(c for c in state.call_days if (day - c).days < 7) + (day,) * d.calls
    )
    return d.plan, state


def _offers_settlement(case: CaseFile) -> bool:
    terms = case.settlement_policy
    return bool(terms) and float(terms["max_discount"]) > 0  # type: ignore[index]


def _propose_settlement(d: _Day, case: CaseFile, rng: random.Random, when: dt.datetime,
                        profile: SimProfile) -> CaseFile:
    """The debtor agrees to a discounted payoff: most near the limit, a few beyond it (rejected), some
    above the approval threshold (a person at the lender decides)."""
    terms = case.settlement_policy
    assert terms is not None
    limit = float(terms["max_discount"])
    discount = limit * rng.uniform(0.3, 1.12)
    amount = max(1, math.ceil(int(terms["outstanding_amount"]) * (1 - discount)))
    pay_by = d.day + dt.timedelta(days=rng.randint(5, 15))
    pay_on = d.day + dt.timedelta(days=rng.randint(1, (pay_by - d.day).days)) \
        if rng.random() < profile.settlement_keep_rate else None
    d.note("SettlementProposed", when, amount=amount, pay_by=pay_by.isoformat())
    return replace(case, settlement=Settlement(amount, pay_by, pay_on), promise=None)


def _settlement_day(d: _Day, case: CaseFile) -> tuple[DayPlan, CaseFile]:
    """While a settlement runs the agency only waits for the money (or for pay_by to pass)."""
    settlement = case.settlement
    assert settlement is not None
    if settlement.pay_on == d.day:
        d.repay(settlement.amount)
        return d.plan, replace(case, settlement=None, paid_pending=case.paid_pending + settlement.amount,
                               stopped=True)
    if d.day > settlement.pay_by:
        return d.plan, replace(case, settlement=None)
    return d.plan, case


def plan_book(
    cases: Iterable[CaseFile], day: dt.date, *, agency_id: str, seed: str, profile: SimProfile = SimProfile()
) -> tuple[DayPlan, list[CaseFile]]:
    """Every case's day, merged (cases in work-order order)."""
    total, updated = DayPlan(), []
    for case in sorted(cases, key=lambda c: c.work_order_id):
        plan, new = plan_day(case, day, agency_id=agency_id, seed=seed, profile=profile)
        total.results += plan.results
        total.repayments += plan.repayments
        total.violations += plan.violations
        updated.append(new)
    return total, updated
