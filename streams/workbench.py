"""What a collections supervisor looks at first: the ops page's work queues, its charts' history, and
the index its debtor search reads. Small sums per partition, kept in the worker's memory.

The processor feeds a :class:`Workbench` every output it emits (:meth:`Workbench.observe`) and
every tick it applies (:meth:`Workbench.ticked`), and drops a partition's share when it gives the
partition up (:meth:`Workbench.drop`). Nothing here is read on the processing path, and nothing
scans the partition's loans there: a tick walks the open cases the partition's
:class:`~arrears.domain.book.Portfolio` already holds in memory (a tick visits each of them anyway).

What is kept, per partition:

* **broken promises** and **compliance violations**, each with the business date it came at
  (the last :data:`KEEP_ITEMS` of each);
* **cases waiting for an agency**: open, not on hold, unassigned, in a bucket some agency works,
  with the tick at which this worker first saw them so (:data:`WAIT_TICKS` ticks later they are
  in the queue);
* **history**: at every business date, open cases and overdue amount by bucket and every
  agency's tallies (the last :data:`KEEP_DATES` dates), for the charts;
* **customers**: the loans with cases of each customer id, for the debtor view and search.

Cases on hold are read from the portfolio itself when asked (it is exact at every moment).

The memory is the worker's own: it starts empty when the worker starts or takes a partition over
(the queues and the history fill again from the next tick; the customer index is rebuilt from the
partition's stored loans on the first search that needs it, :meth:`Workbench.index_states`).

New queues register in :data:`QUEUES`; a queue of items that open and close by record type (a
settlement pending approval, a paused loan) needs one :class:`OpenItems` entry there.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from arrears.domain import events as ev
from arrears.domain.book import LoanBook
from arrears.domain.loan import LoanState, Rules
from arrears.domain.state import AgencyTally
from arrears.topics import loan_id_of_case

from .store import partition_of

log = logging.getLogger(__name__)
KEEP_ITEMS = 1000  # broken promises and violations kept per partition
KEEP_DATES = 400  # business dates of history kept per partition
WAIT_TICKS = 2  # a case unassigned for more than this many ticks waits for an agency
TALLY_FIELDS = tuple(f.name for f in fields(AgencyTally) if f.name != "agency_id")


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _plain(value: Any) -> Any:
    """A record field as JSON has it (dates as ISO strings)."""
    return value.isoformat() if isinstance(value, dt.date) else value


# --------------------------------------------------------------------------- queue registry
@dataclass(frozen=True)
class QueueSpec:
    """One work queue of the ops page: its title, what a row links to, what a supervisor can do on it."""

    name: str
    title: str
    available: bool = True
    actions: tuple[str, ...] = ()  # endpoints the page offers on each row (they need the ``act`` scope)
    note: str = ""


@dataclass(frozen=True)
class OpenItems:
    """A queue of items that one record type opens and others close, keyed by a field of the record.

    E.g. settlements pending approval: ``OpenItems("settlement_id", opens=("SettlementPending",),
    closes=("SettlementApproved", "SettlementRejected"))``.
    """

    key: str
    opens: tuple[str, ...]
    closes: tuple[str, ...]
    fields: tuple[str, ...] = ("case_id", "loan_id", "agency_id")


QUEUES: dict[str, QueueSpec] = {q.name: q for q in (
    QueueSpec("broken_promises", "Promises broken"),
    QueueSpec("violations", "Contact-rule violations"),
    QueueSpec("unassigned", "Waiting for an agency", note=f"open and unassigned for more than {WAIT_TICKS} ticks"),
    QueueSpec("held", "On hold", actions=("release",)),
    QueueSpec("settlements", "Settlements pending approval", actions=("approve", "reject"),
              note="discounts above approval_above wait for a person (SPEC §10)"),
    QueueSpec("paused", "Paused loans", note="delinquency paused (SPEC §10): no escalation, no agency"),
)}

#: queues kept by :class:`OpenItems`: a settlement waits from SettlementPending to its decision
#: (or its end), a loan is paused from DelinquencyPaused to DelinquencyResumed
OPEN_ITEMS: dict[str, OpenItems] = {
    "settlements": OpenItems("settlement_id", opens=("SettlementPending",),
                             closes=("SettlementApproved", "SettlementRejected"),
                             fields=("case_id", "loan_id", "agency_id", "settlement_id", "amount", "discount",
                                     "pay_by")),
    "paused": OpenItems("loan_id", opens=("DelinquencyPaused",), closes=("DelinquencyResumed",),
                        fields=("case_id", "loan_id", "from_date", "until_date", "dpd", "bucket", "requested_by")),
}
_OPEN_ITEM_RECORDS = frozenset(r for spec in OPEN_ITEMS.values() for r in (*spec.opens, *spec.closes))
_OBSERVED = (ev.PromiseBroken, ev.ComplianceViolation, ev.CaseHeld, ev.CaseReleased, ev.CaseClosed, ev.CaseOpened)


# --------------------------------------------------------------------------- one partition
@dataclass
class Share:
    """One partition's part of the workbench."""

    ticks: int = 0
    dates: deque[dt.date] = field(default_factory=lambda: deque(maxlen=KEEP_DATES))  # ticked, oldest first
    broken: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEEP_ITEMS))
    violations: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEEP_ITEMS))
    waiting: dict[str, tuple[int, dt.date, str]] = field(default_factory=dict)  # case id -> (tick, date, loan id)
    held_since: dict[str, dt.date] = field(default_factory=dict)  # case id -> business date of its CaseHeld
    history: dict[dt.date, dict[str, Any]] = field(default_factory=dict)
    open_items: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # queue -> key -> item
    customers: dict[str, set[str]] = field(default_factory=dict)  # customer id -> loan ids with cases
    people: dict[str, set[str]] = field(default_factory=dict)  # "phone:<digits>" / "name:<name>" -> loan ids
    unresolved: set[str] = field(default_factory=set)  # loans with a case whose person is not indexed yet
    indexed: bool = False  # the stored loans were read into customers and people once

    def window_start(self, days: int) -> dt.date | None:
        """The earliest business date of the last *days* ticked (None: keep everything)."""
        if not self.dates or days <= 0:
            return None
        return self.dates[-min(days, len(self.dates))]


def phone_key(phone: str) -> str:
    """A phone number as the index keys it: its digits only (``138-1234 8000`` finds ``13812348000``)."""
    return "phone:" + "".join(c for c in phone if c.isdigit())


def name_key(name: str) -> str:
    return "name:" + " ".join(name.split()).casefold()


class Workbench:
    """The work queues and the history of the partitions this worker holds."""

    def __init__(self, rules: Rules, partitions: int, books: Mapping[int, Any]) -> None:
        """*books*: partition -> the processor's work for it (anything with a ``.book``: the current date)."""
        self.rules = rules
        self.partitions = partitions
        self._works = books
        self.shares: dict[int, Share] = {}
        # buckets some agency works (not in-house): an unassigned case there waits for an agency
        self._served = frozenset(b for b in rules.buckets.names if rules.allocation.eligible(b))

    def share(self, partition: int) -> Share:
        share = self.shares.get(partition)
        if share is None:
            share = self.shares[partition] = Share()
        return share

    def _date(self, partition: int) -> dt.date | None:
        work = self._works.get(partition)
        return getattr(getattr(work, "book", None), "business_date", None)

    # ------------------------------------------------------------------ feeding
    def observe(self, output: Any) -> None:
        """One output of the processor (its partition follows from the loan id); never raises.

        Most outputs (CaseState, work orders, balance changes) concern no queue: they cost one
        type check. A fault here is logged and skipped: the ops page must never stop processing.
        """
        if not isinstance(output, _OBSERVED) and getattr(output, "record", "") not in _OPEN_ITEM_RECORDS:
            return
        try:
            self._observe(output)
        except Exception:  # noqa: BLE001 - see above
            log.exception("workbench: %s not recorded", type(output).__name__)

    def _observe(self, output: Any) -> None:
        loan_id = getattr(output, "loan_id", None) or _loan_of(getattr(output, "case_id", ""))
        if not loan_id:
            return
        partition = partition_of(loan_id.encode(), self.partitions)
        share = self.share(partition)
        name = getattr(output, "record", "")
        if isinstance(output, ev.PromiseBroken):
            share.broken.append({
                "case_id": output.case_id, "loan_id": output.loan_id, "agency_id": output.agency_id,
                "promised_amount": output.promised_amount, "promised_date": output.promised_date.isoformat(),
                "paid_amount": output.paid_amount, "business_date": output.business_date.isoformat(),
            })
        elif isinstance(output, ev.ComplianceViolation):
            date = self._date(partition)
            share.violations.append({
                "case_id": output.case_id, "loan_id": output.loan_id, "agency_id": output.agency_id,
                "rule": output.rule, "details": output.details, "business_date": _iso(date),
                "occurred_at": output.occurred_at,
            })
        elif isinstance(output, ev.CaseHeld):
            share.held_since[output.case_id] = output.business_date
        elif isinstance(output, (ev.CaseReleased, ev.CaseClosed)):
            share.held_since.pop(output.case_id, None)
        elif isinstance(output, ev.CaseOpened):
            loans = share.customers.setdefault(output.customer_id, set())
            if loan_id not in loans:
                loans.add(loan_id)
                share.unresolved.add(loan_id)
        for queue, spec in OPEN_ITEMS.items():
            if name in spec.opens:
                item = {f: _plain(getattr(output, f, None)) for f in spec.fields}
                item["since"] = _iso(getattr(output, "business_date", None) or self._date(partition))
                share.open_items.setdefault(queue, {})[str(getattr(output, spec.key))] = item
            elif name in spec.closes:
                share.open_items.get(queue, {}).pop(str(getattr(output, spec.key)), None)

    def ticked(self, partition: int, book: LoanBook) -> None:
        """The partition applied a tick: note who waits for an agency and the day's figures (never raises)."""
        try:
            self._ticked(partition, book)
        except Exception:  # noqa: BLE001 - the ops page must never stop processing
            log.exception("workbench: the tick of partition %d not recorded", partition)

    def _ticked(self, partition: int, book: LoanBook) -> None:
        date = book.business_date
        if date is None:
            return
        share = self.share(partition)
        if not share.dates or share.dates[-1] != date:
            share.ticks += 1
            share.dates.append(date)
        buckets: dict[str, list[int]] = {}
        waiting: dict[str, tuple[int, dt.date, str]] = {}
        served = self._served
        for loan_id, case in book.portfolio.open_cases.items():
            entry = buckets.setdefault(f"{case.bucket}|{case.currency}", [0, 0])
            entry[0] += 1
            entry[1] += case.overdue_amount
            if case.agency_id is None and case.hold_reason is None and case.bucket in served:
                waiting[case.case_id] = share.waiting.get(case.case_id) or (share.ticks, date, loan_id)
        share.waiting = waiting
        agencies: dict[str, dict[str, int]] = {}
        for agency_id, tally in book.portfolio.tallies.items():
            agencies[agency_id] = {name: int(tally.get(name, 0)) for name in TALLY_FIELDS}
        for agency_id, load in book.portfolio.load.items():
            agencies.setdefault(agency_id, dict.fromkeys(TALLY_FIELDS, 0))["holding"] = load
        share.history[date] = {"buckets": buckets, "agencies": agencies}
        while len(share.history) > KEEP_DATES:
            del share.history[min(share.history)]

    def drop(self, partition: int) -> None:
        """The worker gave the partition up: forget its share (the new owner starts its own)."""
        self.shares.pop(partition, None)

    # ------------------------------------------------------------------ the customer index
    def needs_index(self, partition: int) -> bool:
        return not self.share(partition).indexed

    def index_states(self, partition: int, states: Iterable[LoanState], done: bool = True) -> None:
        """Add the customers and persons of *states* (the partition's stored loans with cases)."""
        share = self.share(partition)
        for state in states:
            if state.account is None or state.case is None:
                continue
            share.customers.setdefault(state.account.customer_id, set()).add(state.loan_id)
            self._index_person(share, state)
            share.unresolved.discard(state.loan_id)
        if done:
            share.indexed = True

    def resolve(self, partition: int, load: Callable[[str], LoanState | None]) -> None:
        """Index the persons of loans whose first case came after the index was built."""
        share = self.share(partition)
        pending, share.unresolved = share.unresolved, set()
        for loan_id in pending:
            state = load(loan_id)
            if state is not None and state.account is not None:
                self._index_person(share, state)

    @staticmethod
    def _index_person(share: Share, state: LoanState) -> None:
        assert state.account is not None
        person = state.account.customer
        for key in (phone_key(person.phone) if person.phone else None, name_key(person.name) if person.name else None):
            if key is not None and key not in ("phone:", "name:"):
                share.people.setdefault(key, set()).add(state.loan_id)

    def loans_of_customer(self, customer_id: str) -> list[str]:
        return sorted({loan for share in self.shares.values() for loan in share.customers.get(customer_id, ())})

    def loans_of_person(self, key: str) -> list[str]:
        return sorted({loan for share in self.shares.values() for loan in share.people.get(key, ())})

    # ------------------------------------------------------------------ this worker's view
    def local_queues(self, books: Mapping[int, LoanBook], days: int = 1) -> dict[str, Any]:
        """This worker's queues (every partition it holds); :func:`merge_queues` adds the workers up.

        *days*: broken promises and violations of the last *days* business dates each partition
        ticked (1: since the last tick).
        """
        broken: list[dict[str, Any]] = []
        violations: list[dict[str, Any]] = []
        unassigned: list[dict[str, Any]] = []
        held: list[dict[str, Any]] = []
        open_items: dict[str, list[dict[str, Any]]] = {}
        dates: dict[str, str | None] = {}
        for partition, book in sorted(books.items()):
            share = self.share(partition)
            dates[str(partition)] = _iso(book.business_date)
            start = share.window_start(days)
            broken.extend(b for b in share.broken if start is None or b["business_date"] >= start.isoformat())
            violations.extend(v for v in share.violations
                              if start is None or (v["business_date"] or "") >= start.isoformat())
            for case_id, (tick, since, loan_id) in share.waiting.items():
                case = book.portfolio.open_cases.get(loan_id)
                if case is None or share.ticks - tick <= WAIT_TICKS:
                    continue
                if case.case_id != case_id or case.agency_id is not None or case.hold_reason is not None:
                    continue  # closed, assigned or held since the last tick
                unassigned.append({**_case_item(loan_id, case), "since": since.isoformat(),
                                   "ticks_waiting": share.ticks - tick, "why": self._why(case, book)})
            for loan_id, case in book.portfolio.open_cases.items():
                if case.hold_reason is not None:
                    held.append({**_case_item(loan_id, case), "hold_reason": case.hold_reason,
                                 "since": _iso(share.held_since.get(case.case_id))})
            for queue, items in share.open_items.items():
                open_items.setdefault(queue, []).extend(items.values())
        return {"broken_promises": broken, "violations": violations, "unassigned": unassigned, "held": held,
                "open_items": open_items, "business_dates": dates}

    def _why(self, case: Any, book: LoanBook) -> str:
        from arrears.domain.allocation import choose_agency

        choice = choose_agency(case.case_id, case.bucket, self.rules.allocation, book.portfolio.load, book.partition)
        return choice.reason if choice.agency is None else "to be assigned at the next tick"

    def local_history(self) -> dict[str, Any]:
        """Per business date: this worker's sums over its partitions, and how many partitions they cover."""
        days: dict[str, dict[str, Any]] = {}
        for share in self.shares.values():
            for date, snapshot in share.history.items():
                add_snapshot(days.setdefault(date.isoformat(), {"partitions": 0, "buckets": {}, "agencies": {}}),
                              snapshot, 1)
        return {"days": days}


def _loan_of(case_id: str) -> str | None:
    try:
        return loan_id_of_case(case_id) if case_id else None
    except ValueError:
        return None


def _case_item(loan_id: str, case: Any) -> dict[str, Any]:
    return {"case_id": case.case_id, "loan_id": loan_id, "status": case.status, "bucket": case.bucket,
            "dpd": case.dpd, "overdue_amount": case.overdue_amount, "currency": case.currency,
            "agency_id": case.agency_id}


def add_snapshot(into: dict[str, Any], snapshot: Mapping[str, Any], partitions: int) -> None:
    into["partitions"] += partitions
    for key, (count, amount) in snapshot["buckets"].items():
        entry = into["buckets"].setdefault(key, [0, 0])
        entry[0] += count
        entry[1] += amount
    for agency_id, tallies in snapshot["agencies"].items():
        total = into["agencies"].setdefault(agency_id, {})
        for name, n in tallies.items():
            total[name] = total.get(name, 0) + n


# --------------------------------------------------------------------------- the debtor's contacts
def journaled_contacts(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The contact attempts in one loan's journal, each with the rules it was found to break.

    A violation may be journaled long after its attempt (the debtor's budget decided it on a
    later report): it is matched to the attempt by ``source_event_id``, wherever it sits.
    """
    contacts: dict[str, dict[str, Any]] = {}
    rules: dict[str, set[str]] = {}
    for entry in entries:
        record = entry.get("record", {})
        if record.get("type") == "ContactAttempted":
            contacts.setdefault(record["event_id"], contact_item(record, True))
        elif record.get("type") == "ComplianceViolation":
            rules.setdefault(record.get("source_event_id") or "", set()).add(record["rule"])
    for event_id, item in contacts.items():
        item["violations"] = sorted(rules.get(event_id, ()))
    return list(contacts.values())


def contact_item(record: Mapping[str, Any], on_case: bool) -> dict[str, Any]:
    """What the debtor view shows of one attempt (no personal data: a contact names no one)."""
    return {"event_id": record["event_id"], "attempted_at": record["attempted_at"], "agency_id": record["agency_id"],
            "case_id": record.get("case_id", ""), "loan_id": _loan_of(record.get("case_id", "")) or "",
            "channel": record["channel"], "party": record["party"], "outcome": record["outcome"],
            "on_case": on_case, "violations": []}


def budget_contacts(records: Iterable[Any], awaiting: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """The attempts the debtor stage still counts (:class:`~arrears.domain.compliance.ContactRecord`);
    *awaiting*: the third-party contacts whose CBA verdict waits for the next tick."""
    return [{**contact_item({"event_id": r.event_id, "attempted_at": r.attempted_at, "agency_id": r.agency_id,
                             "case_id": r.case_id, "channel": r.channel, "party": r.party, "outcome": r.outcome},
                            r.recorded), "loan_id": r.loan_id, "awaiting_verdict": r.event_id in awaiting}
            for r in records]


def merge_contacts(journaled: Iterable[dict[str, Any]], budget: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One debtor's contact history over every loan and agency, oldest first.

    The journals hold every attempt recorded on a case (with its violations); the debtor
    stage's budget also holds the recent attempts that were not (an agency that did not hold the
    work order reached the debtor all the same), and marks which attempts still count.
    """
    merged: dict[str, dict[str, Any]] = {}
    for item in journaled:
        merged[item["event_id"]] = {**item, "in_budget": False, "awaiting_verdict": False}
    for item in budget:
        if item["event_id"] in merged:
            merged[item["event_id"]].update(in_budget=True, awaiting_verdict=item.get("awaiting_verdict", False))
        else:
            merged[item["event_id"]] = {**item, "in_budget": True}
    return sorted(merged.values(), key=lambda c: (c["attempted_at"], c["event_id"]))
