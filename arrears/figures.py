"""Portfolio and agency figures folded from the output topics: pure, for the report and the live view.

:class:`Figures` takes records one at a time (``add(record_name, value)``), in any interleaving
of topics and partitions as long as each case's own events come in their topic order (one
partition per loan guarantees it). It reads:

- ``collections.cases``: openings, bucket changes, balances, closures, assignments, holds, promises;
- ``collections.case-state``: the latest snapshot per case (its status at the end);
- ``collections.compliance``: violations by rule and agency;
- ``agency.results``: contacts, promises, disputes and returns, by agency;
- ``collections.recoveries``: repayments attributed to agencies and their commission (SPEC §10);
- ``calendar.business-date``: the business dates of the run.

``collections.cases`` also carries the treatments of SPEC §10: pauses and settlements.

Nothing here reads a clock or a topic. Values are decoded records (dates as ``dt.date``) or their
JSON form (dates as strings); both are accepted.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_BUCKETS = ("M0", "M1", "M2", "M3", "M4", "M5", "M6", "M7+")
#: outcomes of a contact that reached the debtor (with party DEBTOR: a right-party contact)
RIGHT_PARTY = frozenset({"RIGHT_PARTY_CONTACT", "PROMISE_TO_PAY", "REFUSED_TO_PAY", "CALLBACK_REQUESTED"})
#: outcomes of a contact that reached someone (the query API's contact rate counts the same)
REACHED = RIGHT_PARTY | {"WRONG_PARTY"}
HOLD_RESULTS = ("DisputeRaised", "ComplaintReceived", "CeaseContactRequested")
STILL_OPEN = "still open"


def as_date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


@dataclass
class CaseTrack:
    """What the figures keep of one case."""

    case_id: str
    opened_on: dt.date | None
    bucket: str
    overdue: int
    currency: str
    agency: str | None = None
    held: bool = False
    customer: str = ""  # the debtor (one debtor, one agency: SPEC §5)
    close_reason: str | None = None
    closed_on: dt.date | None = None
    #: (business date, bucket or None once closed, overdue amount): the case's state after each event
    history: list[tuple[dt.date, str | None, int]] = field(default_factory=list)
    #: (bucket, how the case left it: a bucket, a close reason, or None while it is still there)
    episodes: list[list[str | None]] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.close_reason is None


@dataclass
class AgencyStats:
    """Counters of one agency, from cases, results and compliance."""

    assigned: int = 0
    active: int = 0
    recalled: Counter[str] = field(default_factory=Counter)
    contacts: int = 0
    reached: int = 0
    right_party_contacts: int = 0
    promises: int = 0
    kept: int = 0
    broken: int = 0
    recovered: int = 0
    cured: int = 0
    holds: Counter[str] = field(default_factory=Counter)
    returns: int = 0
    violations: int = 0
    debtors: set[str] = field(default_factory=set)  # every debtor the agency was ever given
    attributed: int = 0  # §10: net repayments attributed to the agency (collections.recoveries)
    commission: int = 0  # §10: net commission on them
    attributions: int = 0  # repayments attributed (reversals not subtracted)


@dataclass
class SettlementTrack:
    """What the figures keep of one settlement (SPEC §10)."""

    agency: str
    amount: int
    discount: float
    outcome: str = "PROPOSED"  # PENDING, APPROVED, REJECTED, FULFILLED, BROKEN
    approved: bool = False
    pending: bool = False


@dataclass(frozen=True)
class SettlementSummary:
    """Settlements over the run: how many reached each stage, and the discount the lender gave."""

    proposed: int
    pending: int  # waited for a person at some point
    approved: int
    rejected: int
    fulfilled: int
    broken: int
    open: int  # approved or pending, neither fulfilled nor broken yet
    average_discount: float | None  # over approved settlements
    fulfilled_amount: int


@dataclass(frozen=True)
class AgencyKpis:
    """One agency's KPIs (rates are shares, 0–1; money in minor units)."""

    agency_id: str
    cases_assigned: int
    cases_held: int
    contacts: int  # contact attempts reported
    contact_rate: float  # attempts that reached someone / attempts
    right_party_contact_rate: float  # attempts that reached the debtor / attempts
    promises: int
    promise_rate: float  # promises to pay / right-party contacts
    promise_kept_rate: float | None  # kept / (kept + broken); None until a promise was judged
    promises_kept: int
    promises_broken: int
    amount_recovered: int  # drop in overdue amount while the case was assigned to the agency
    cure_rate: float  # cases cured while assigned / cases assigned
    holds: int  # disputes, complaints and cease-contact requests
    returns: int
    violations: int
    violations_per_100_contacts: float
    debtors_assigned: int = 0  # distinct debtors ever given to the agency
    debtors_held: int = 0  # distinct debtors whose open cases the agency holds now
    recoveries_attributed: int = 0  # §10: net of reversals, from collections.recoveries
    commission: int = 0  # §10: net of reversals


@dataclass(frozen=True)
class BucketRow:
    bucket: str
    open_cases: int
    overdue_amount: int


@dataclass(frozen=True)
class RollMatrix:
    """For cases that entered each bucket: how many left it for each destination.

    ``columns`` are buckets, then close reasons (CURED, WRITTEN_OFF, ...), then ``still open``.
    """

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    counts: Mapping[str, Mapping[str, int]]

    def entered(self, bucket: str) -> int:
        return sum(self.counts.get(bucket, {}).values())

    def rate(self, origin: str, destination: str) -> float:
        entered = self.entered(origin)
        return self.counts.get(origin, {}).get(destination, 0) / entered if entered else 0.0

    def flat(self) -> list[dict[str, Any]]:
        """The shape of the query API's ``roll_rates``: one entry per non-empty cell."""
        return [
            {"from": r, "to": c, "count": n, "rate": round(self.rate(r, c), 4)}
            for r in self.rows for c in self.columns if (n := self.counts.get(r, {}).get(c, 0))
        ]


@dataclass(frozen=True)
class BucketSeries:
    """Open cases and overdue amount by bucket at the end of each business date."""

    dates: tuple[dt.date, ...]
    buckets: tuple[str, ...]
    cases: Mapping[str, tuple[int, ...]]
    amounts: Mapping[str, tuple[int, ...]]


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


class Figures:
    """The fold of every output record into the report's and the live view's figures."""

    def __init__(self, buckets: Sequence[str] = DEFAULT_BUCKETS) -> None:
        self.buckets = tuple(buckets)
        self.cases: dict[str, CaseTrack] = {}
        self.agencies: defaultdict[str, AgencyStats] = defaultdict(AgencyStats)
        self.violations: Counter[tuple[str, str]] = Counter()  # (rule, agency) -> count
        self.states: dict[str, Mapping[str, Any]] = {}  # case_id -> latest CaseState
        self.dates: set[dt.date] = set()
        self.records: Counter[str] = Counter()
        self.currency = "CNY"
        self._seen: set[Any] = set()
        self.settlements: dict[str, SettlementTrack] = {}  # §10, by settlement id
        self.pauses: dict[str, tuple[str, dt.date | None]] = {}  # §10: loan -> ("PAUSED"/"RESUMED", until)
        self.paused_loans: set[str] = set()  # loans paused at some point of the run

    # ------------------------------------------------------------------ folding
    def add(self, name: str, value: Mapping[str, Any]) -> None:
        # Delivery is at-least-once: a record seen again (same event_id) is the same record.
        event_id = value.get("event_id")
        if event_id is not None:
            if event_id in self._seen:
                return
            self._seen.add(event_id)
        self.records[name] += 1
        handler = getattr(self, f"_on_{name}", None)
        if handler is not None:
            handler(value)

    def add_all(self, records: Iterable[tuple[str, Mapping[str, Any]]]) -> Figures:
        for name, value in records:
            self.add(name, value)
        return self

    def _note(self, case: CaseTrack, value: Mapping[str, Any], bucket: str | None, overdue: int) -> None:
        date = as_date(value.get("business_date")) or case.opened_on
        if date is not None:
            self.dates.add(date)
            case.history.append((date, bucket, overdue))

    def _move(self, case: CaseTrack, bucket: str) -> None:
        """The case left its bucket for *bucket* (a no-op when it did not change)."""
        if bucket == case.bucket:
            return
        if case.episodes and case.episodes[-1][1] is None:
            case.episodes[-1][1] = bucket
        case.episodes.append([bucket, None])
        case.bucket = bucket

    def _case(self, value: Mapping[str, Any]) -> CaseTrack | None:
        return self.cases.get(str(value["case_id"]))

    def _on_CaseOpened(self, v: Mapping[str, Any]) -> None:
        case_id = str(v["case_id"])
        if case_id in self.cases:
            return  # a redelivered output: the first one stands
        opened = as_date(v.get("business_date"))
        case = CaseTrack(case_id, opened, str(v["bucket"]), int(v["overdue_amount"]), str(v["currency"]),
                         customer=str(v.get("customer_id") or ""))
        case.episodes.append([case.bucket, None])
        self.currency = case.currency
        self.cases[case_id] = case
        self._note(case, v, case.bucket, case.overdue)

    def _on_CaseDelinquencyChanged(self, v: Mapping[str, Any]) -> None:
        case = self._case(v)
        if case is None or not case.is_open:
            return
        self._move(case, str(v["bucket"]))
        case.overdue = int(v["overdue_amount"])
        self._note(case, v, case.bucket, case.overdue)

    def _on_CaseBalanceChanged(self, v: Mapping[str, Any]) -> None:
        case = self._case(v)
        if case is None or not case.is_open:
            return
        new, previous = int(v["overdue_amount"]), int(v["previous_overdue_amount"])
        if case.agency is not None and new < previous:
            self.agencies[case.agency].recovered += previous - new
        self._move(case, str(v["bucket"]))
        case.overdue = new
        self._note(case, v, case.bucket, new)

    def _on_CaseClosed(self, v: Mapping[str, Any]) -> None:
        case = self._case(v)
        if case is None or not case.is_open:
            return
        reason = str(v["reason"])
        if case.agency is not None and reason == "CURED":
            stats = self.agencies[case.agency]
            stats.recovered += case.overdue  # the payment that cured it paid what was overdue
            stats.cured += 1
        if case.episodes and case.episodes[-1][1] is None:
            case.episodes[-1][1] = reason
        case.close_reason = reason
        case.closed_on = as_date(v.get("business_date"))
        self._note(case, v, None, 0)

    def _on_CaseAssigned(self, v: Mapping[str, Any]) -> None:
        agency = str(v["agency_id"])
        stats = self.agencies[agency]
        stats.assigned += 1
        stats.active += 1
        case = self._case(v)
        if case is not None:
            case.agency = agency
            stats.debtors.add(case.customer)

    def _on_CaseRecalled(self, v: Mapping[str, Any]) -> None:
        agency = str(v["agency_id"])
        stats = self.agencies[agency]
        stats.active = max(0, stats.active - 1)
        stats.recalled[str(v["reason"])] += 1
        case = self._case(v)
        if case is not None and case.agency == agency:
            case.agency = None

    def _on_CaseHeld(self, v: Mapping[str, Any]) -> None:
        case = self._case(v)
        if case is not None:
            case.held = True

    def _on_CaseReleased(self, v: Mapping[str, Any]) -> None:
        case = self._case(v)
        if case is not None:
            case.held = False

    def _on_PromiseKept(self, v: Mapping[str, Any]) -> None:
        self.agencies[str(v["agency_id"])].kept += 1

    def _on_PromiseBroken(self, v: Mapping[str, Any]) -> None:
        self.agencies[str(v["agency_id"])].broken += 1

    def _on_ComplianceViolation(self, v: Mapping[str, Any]) -> None:
        agency = str(v.get("agency_id") or "?")
        self.violations[(str(v["rule"]), agency)] += 1
        self.agencies[agency].violations += 1

    def _on_ContactAttempted(self, v: Mapping[str, Any]) -> None:
        stats = self.agencies[str(v["agency_id"])]
        stats.contacts += 1
        if v.get("outcome") in REACHED:
            stats.reached += 1
        if v.get("party") == "DEBTOR" and v.get("outcome") in RIGHT_PARTY:
            stats.right_party_contacts += 1

    def _on_PromiseToPay(self, v: Mapping[str, Any]) -> None:
        self.agencies[str(v["agency_id"])].promises += 1

    def _on_DisputeRaised(self, v: Mapping[str, Any]) -> None:
        self.agencies[str(v["agency_id"])].holds["DisputeRaised"] += 1

    def _on_ComplaintReceived(self, v: Mapping[str, Any]) -> None:
        self.agencies[str(v["agency_id"])].holds["ComplaintReceived"] += 1

    def _on_CeaseContactRequested(self, v: Mapping[str, Any]) -> None:
        self.agencies[str(v["agency_id"])].holds["CeaseContactRequested"] += 1

    def _on_CaseReturned(self, v: Mapping[str, Any]) -> None:
        self.agencies[str(v["agency_id"])].returns += 1

    # ---- §10 treatments and agency economics
    def _on_RecoveryAttributed(self, v: Mapping[str, Any]) -> None:
        stats = self.agencies[str(v["agency_id"])]
        stats.attributed += int(v["amount"])
        stats.commission += int(v["commission"])
        stats.attributions += 1

    def _on_RecoveryReversed(self, v: Mapping[str, Any]) -> None:
        stats = self.agencies[str(v["agency_id"])]
        stats.attributed += int(v["amount"])  # negative
        stats.commission += int(v["commission"])

    def _settlement(self, v: Mapping[str, Any]) -> SettlementTrack:
        return self.settlements.setdefault(str(v["settlement_id"]), SettlementTrack(
            str(v["agency_id"]), int(v["amount"]), float(v.get("discount") or 0.0)))

    def _on_SettlementApproved(self, v: Mapping[str, Any]) -> None:
        track = self._settlement(v)
        track.outcome, track.approved = "APPROVED", True

    def _on_SettlementPending(self, v: Mapping[str, Any]) -> None:
        track = self._settlement(v)
        track.outcome, track.pending = "PENDING", True

    def _on_SettlementRejected(self, v: Mapping[str, Any]) -> None:
        self._settlement(v).outcome = "REJECTED"

    def _on_SettlementFulfilled(self, v: Mapping[str, Any]) -> None:
        self._settlement(v).outcome = "FULFILLED"

    def _on_SettlementBroken(self, v: Mapping[str, Any]) -> None:
        self._settlement(v).outcome = "BROKEN"

    def _on_DelinquencyPaused(self, v: Mapping[str, Any]) -> None:
        loan = str(v["loan_id"])
        self.paused_loans.add(loan)
        self.pauses[loan] = ("PAUSED", as_date(v.get("until_date")))

    def _on_DelinquencyResumed(self, v: Mapping[str, Any]) -> None:
        self.pauses[str(v["loan_id"])] = ("RESUMED", None)

    def _on_CaseState(self, v: Mapping[str, Any]) -> None:
        case_id = str(v["case_id"])
        known = self.states.get(case_id)
        if known is None or int(v.get("version", 0)) >= int(known.get("version", 0)):
            self.states[case_id] = v

    def _on_BusinessDateChanged(self, v: Mapping[str, Any]) -> None:
        date = as_date(v.get("business_date"))
        if date is not None:
            self.dates.add(date)

    # ------------------------------------------------------------------ views
    @property
    def business_date(self) -> dt.date | None:
        return max(self.dates) if self.dates else None

    def _bucket_order(self, seen: Iterable[str]) -> tuple[str, ...]:
        extra = sorted(set(seen) - set(self.buckets))
        return tuple(b for b in self.buckets if b in set(seen)) + tuple(extra)

    def open_by_bucket(self) -> list[BucketRow]:
        """Open cases and their overdue amount per bucket, now."""
        counts: Counter[str] = Counter()
        amounts: Counter[str] = Counter()
        for case in self.cases.values():
            if case.is_open:
                counts[case.bucket] += 1
                amounts[case.bucket] += case.overdue
        return [BucketRow(b, counts[b], amounts[b]) for b in self._bucket_order(counts)]

    def status_counts(self) -> Counter[str]:
        """Cases by status now: OPEN, ASSIGNED, HOLD or CLOSED (from the case-state snapshots if any)."""
        out: Counter[str] = Counter()
        for case_id, case in self.cases.items():
            state = self.states.get(case_id)
            if state is not None:
                out[str(state["status"])] += 1
            elif not case.is_open:
                out["CLOSED"] += 1
            elif case.held:
                out["HOLD"] += 1
            else:
                out["ASSIGNED" if case.agency else "OPEN"] += 1
        return out

    def outcomes(self) -> dict[str, int]:
        """Every case by how it ended: a close reason (CURED, WRITTEN_OFF, ...) or still open."""
        out: Counter[str] = Counter()
        for case_id, case in self.cases.items():
            state = self.states.get(case_id)
            reason = case.close_reason or (state.get("close_reason") if state else None)
            out[str(reason) if reason else STILL_OPEN] += 1
        order = ["CURED", "PAID_OFF", "WRITTEN_OFF", "SOLD", "CANCELLED"]
        keys = [k for k in order if k in out] + sorted(k for k in out if k not in order and k != STILL_OPEN)
        return {k: out[k] for k in [*keys, STILL_OPEN] if k in out}

    def assignments(self) -> dict[str, int]:
        """Active assignments per agency now."""
        return {a: s.active for a, s in sorted(self.agencies.items()) if s.assigned or s.active}

    def promises(self) -> tuple[int, int]:
        """(kept, broken) over every agency."""
        return sum(s.kept for s in self.agencies.values()), sum(s.broken for s in self.agencies.values())

    def violations_by_rule(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (rule, _), n in self.violations.items():
            out[rule] += n
        return dict(out.most_common())

    def violations_by_rule_and_agency(self) -> dict[str, dict[str, int]]:
        out: defaultdict[str, dict[str, int]] = defaultdict(dict)
        for (rule, agency), n in sorted(self.violations.items()):
            out[rule][agency] = n
        return dict(out)

    def agency_kpis(self, agency_ids: Iterable[str] = ()) -> list[AgencyKpis]:
        """KPIs of every agency seen, plus those named (configured agencies with nothing yet)."""
        held = Counter(c.agency for c in self.cases.values() if c.is_open and c.agency)
        debtors_held: defaultdict[str, set[str]] = defaultdict(set)
        for c in self.cases.values():
            if c.is_open and c.agency:
                debtors_held[c.agency].add(c.customer)
        ids = sorted({*agency_ids, *(a for a in self.agencies if a != "?")})
        out = []
        for agency_id in ids:
            s = self.agencies[agency_id] if agency_id in self.agencies else AgencyStats()
            holds = sum(s.holds.values())
            out.append(AgencyKpis(
                agency_id=agency_id,
                cases_assigned=s.assigned,
                cases_held=held.get(agency_id, 0),
                contacts=s.contacts,
                contact_rate=_ratio(s.reached, s.contacts),
                right_party_contact_rate=_ratio(s.right_party_contacts, s.contacts),
                promises=s.promises,
                promise_rate=_ratio(s.promises, s.right_party_contacts),
                promise_kept_rate=s.kept / (s.kept + s.broken) if s.kept + s.broken else None,
                promises_kept=s.kept,
                promises_broken=s.broken,
                amount_recovered=s.recovered,
                cure_rate=_ratio(s.cured, s.assigned),
                holds=holds,
                returns=s.returns,
                violations=s.violations,
                violations_per_100_contacts=100 * _ratio(s.violations, s.contacts),
                debtors_assigned=len(s.debtors),
                debtors_held=len(debtors_held.get(agency_id, ())),
                recoveries_attributed=s.attributed,
                commission=s.commission,
            ))
        return out

    def settlement_summary(self) -> SettlementSummary:
        tracks = list(self.settlements.values())
        approved = [t for t in tracks if t.approved]
        return SettlementSummary(
            proposed=len(tracks),
            pending=sum(t.pending for t in tracks),
            approved=len(approved),
            rejected=sum(t.outcome == "REJECTED" for t in tracks),
            fulfilled=sum(t.outcome == "FULFILLED" for t in tracks),
            broken=sum(t.outcome == "BROKEN" for t in tracks),
            open=sum(t.outcome in ("APPROVED", "PENDING") for t in tracks),
            average_discount=sum(t.discount for t in approved) / len(approved) if approved else None,
            fulfilled_amount=sum(t.amount for t in tracks if t.outcome == "FULFILLED"),
        )

    def paused_now(self) -> int:
        """Loans whose last pause record says paused, and not past its until_date at the run's last date."""
        today = self.business_date
        return sum(1 for state, until in self.pauses.values()
                   if state == "PAUSED" and (until is None or today is None or until >= today))

    def roll_matrix(self) -> RollMatrix:
        counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for case in self.cases.values():
            for origin, destination in case.episodes:
                assert origin is not None
                counts[origin][destination or STILL_OPEN] += 1
        rows = self._bucket_order(counts)
        seen = {d for c in counts.values() for d in c}
        bucket_cols = self._bucket_order(seen & ({*self.buckets} | set(rows)))
        closes = [d for d in ("CURED", "PAID_OFF", "WRITTEN_OFF", "SOLD", "CANCELLED") if d in seen]
        closes += sorted(seen - set(bucket_cols) - set(closes) - {STILL_OPEN})
        columns = (*bucket_cols, *closes, *((STILL_OPEN,) if STILL_OPEN in seen else ()))
        return RollMatrix(rows, columns, {r: dict(counts[r]) for r in rows})

    def bucket_series(self) -> BucketSeries:
        """Open cases and amounts per bucket at the end of each business date of the run."""
        dates = tuple(sorted(self.dates))
        if not dates:
            return BucketSeries((), (), {}, {})
        index = {d: i for i, d in enumerate(dates)}
        seen = {b for c in self.cases.values() for _, b, _ in c.history if b is not None}
        buckets = self._bucket_order(seen)
        cases = {b: [0] * len(dates) for b in buckets}
        amounts = {b: [0] * len(dates) for b in buckets}
        for case in self.cases.values():
            # The state at the end of a date is the last event on or before it; it holds until the next.
            points = sorted(case.history, key=lambda h: h[0])  # stable: same-date events keep their order
            for i, (date, bucket, overdue) in enumerate(points):
                until = points[i + 1][0] if i + 1 < len(points) else None
                if until is not None and until == date:
                    continue  # superseded the same day
                if bucket is None:
                    continue
                start = index.get(date)
                if start is None:
                    continue
                stop = index[until] if until is not None and until in index else len(dates)
                for j in range(start, stop):
                    cases[bucket][j] += 1
                    amounts[bucket][j] += overdue
        return BucketSeries(dates, buckets, {b: tuple(v) for b, v in cases.items()},
                            {b: tuple(v) for b, v in amounts.items()})

    def summary(self) -> dict[str, Any]:
        """Headline numbers for the live view and the report's first table."""
        rows = self.open_by_bucket()
        kept, broken = self.promises()
        return {
            "business_date": self.business_date,
            "cases_opened": len(self.cases),
            "open_cases": sum(r.open_cases for r in rows),
            "overdue_amount": sum(r.overdue_amount for r in rows),
            "currency": self.currency,
            "promises_kept": kept,
            "promises_broken": broken,
            "violations": sum(self.violations.values()),
            "contacts": sum(s.contacts for s in self.agencies.values()),
        }
