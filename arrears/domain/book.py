"""The loans of one partition: apply events and ticks, and keep what the partition knows about them.

* :class:`WakeIndex` makes a tick cost in proportion to the loans it can change (open cases,
  loans whose oldest unpaid installment fell due, promises coming due), not the whole book.
* :class:`Portfolio` sums what the loans say (open cases by bucket, each agency's active
  assignments and tallies, bucket transitions). It is derived from the loan states alone, so
  after a restart it is rebuilt from the stored loans and is exact under replay.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Protocol

from . import events as ev
from . import placement
from .loan import Context, LoanState, Rules, apply_event, apply_placement, apply_tick
from .state import AgencyTally


class LoanStore(Protocol):
    """Where loan states live (a dict in tests, a Faust table in the processor)."""

    def get(self, loan_id: str) -> LoanState | None: ...

    def put(self, state: LoanState) -> None: ...


class WakeIndex:
    """Loans by the first business date a tick can change them.

    Each loan sits in exactly one date's set, moved when its wake date changes: a tick visits
    only the loans due, and the index holds one entry per loan however often wake dates move
    between ticks (a heap with lazy deletion kept one per change: ~19 per loan after loading a
    book's history, all popped by the next tick).
    """

    def __init__(self) -> None:
        self._wake: dict[str, dt.date] = {}
        self._by_date: dict[dt.date, set[str]] = {}
        self._dates: dict[dt.date, dt.date] = {}  # one date object per date, shared by its loans' entries

    def __len__(self) -> int:
        return len(self._wake)

    def set(self, loan_id: str, wake: dt.date | None) -> None:
        old = self._wake.get(loan_id)
        if old == wake:
            return
        if old is not None:
            previous = self._by_date[old]
            previous.discard(loan_id)
            if not previous:
                del self._by_date[old], self._dates[old]
        if wake is None:
            del self._wake[loan_id]
            return
        members = self._by_date.get(wake)
        if members is None:
            members = self._by_date[wake] = set()
            self._dates[wake] = wake
        members.add(loan_id)
        self._wake[loan_id] = self._dates[wake]

    def due(self, business_date: dt.date) -> list[str]:
        """Take out every loan whose wake date is on or before *business_date*, in loan-id order."""
        found: list[str] = []
        for date in [d for d in self._by_date if d <= business_date]:
            del self._dates[date]
            for loan_id in self._by_date.pop(date):
                del self._wake[loan_id]
                found.append(loan_id)
        return sorted(found)


@dataclass(frozen=True, slots=True)
class OpenCase:
    """An open case as the portfolio views and placement need it."""

    case_id: str
    status: str
    bucket: str
    dpd: int
    overdue_amount: int
    currency: str
    agency_id: str | None
    hold_reason: str | None
    customer_id: str = ""
    past_agencies: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Contribution:
    open_case: OpenCase | None
    tallies: tuple[AgencyTally, ...]
    entered: tuple[str, ...]  # buckets entered, one per entry
    moves: tuple[tuple[str, str], ...]  # (from, to); to may be a close reason


_TALLY_FIELDS = [f.name for f in fields(AgencyTally) if f.name != "agency_id"]


def _contribution(state: LoanState) -> _Contribution | None:
    case = state.open_case
    open_case = None
    if case is not None and state.account is not None:
        open_case = OpenCase(case.case_id, case.status, case.bucket, case.dpd, case.overdue_amount,
                             state.account.currency, case.assignment.agency_id if case.assignment else None,
                             case.hold_reason, state.account.customer_id, case.past_agencies)
    paths: list[tuple[tuple[str, ...], str | None]] = [(h.path, h.close_reason) for h in state.history]
    if state.case is not None:
        paths.append((state.case.path, state.case.close_reason))
    entered: list[str] = []
    moves: list[tuple[str, str]] = []
    for path, closed in paths:
        entered.extend(path)
        moves.extend(zip(path, path[1:], strict=False))
        if closed is not None and path:
            moves.append((path[-1], closed))
    if open_case is None and not state.tallies and not entered:
        return None
    return _Contribution(open_case, state.tallies, tuple(entered), tuple(moves))


def counts_in_portfolio(state: LoanState) -> bool:
    """Whether the loan adds anything to its partition's portfolio (it must be read at restart)."""
    return _contribution(state) is not None


class Portfolio:
    """Sums over the partition's loans, kept current loan by loan."""

    def __init__(self) -> None:
        self._by_loan: dict[str, _Contribution] = {}
        self.open_cases: dict[str, OpenCase] = {}  # by loan id
        self.load: Counter[str] = Counter()  # active assignments per agency
        self.tallies: dict[str, Counter[str]] = {}
        self.entered: Counter[str] = Counter()
        self.moves: Counter[tuple[str, str]] = Counter()

    def update(self, state: LoanState) -> None:
        new = _contribution(state)
        old = self._by_loan.pop(state.loan_id, None)
        if old is not None:
            self._apply(state.loan_id, old, -1)
        if new is not None:
            self._by_loan[state.loan_id] = new
            self._apply(state.loan_id, new, +1)

    def _apply(self, loan_id: str, c: _Contribution, sign: int) -> None:
        if c.open_case is not None:
            if sign > 0:
                self.open_cases[loan_id] = c.open_case
            else:
                self.open_cases.pop(loan_id, None)
            if c.open_case.agency_id is not None:
                self.load[c.open_case.agency_id] += sign
        for tally in c.tallies:
            counter = self.tallies.setdefault(tally.agency_id, Counter())
            for name in _TALLY_FIELDS:
                counter[name] += sign * getattr(tally, name)
        for bucket in c.entered:
            self.entered[bucket] += sign
        for move in c.moves:
            self.moves[move] += sign


class LoanBook:
    """Applies one partition's events and ticks to its loans, in the order it is given them."""

    def __init__(self, store: LoanStore, rules: Rules, business_date: dt.date | None = None,
                 partition: int = 0) -> None:
        self.store = store
        self.rules = rules
        self.business_date = business_date
        self.partition = partition
        self.index = WakeIndex()
        self.portfolio = Portfolio()

    @property
    def context(self) -> Context:
        return Context(self.business_date, self.rules, self.partition)

    def track(self, state: LoanState) -> None:
        self.index.set(state.loan_id, state.wake_date(self.rules.grace_days))
        self.portfolio.update(state)

    def rebuild(self, states: Iterable[LoanState]) -> None:
        self.index = WakeIndex()
        self.portfolio = Portfolio()
        for state in states:
            self.track(state)

    def apply(self, loan_id: str, event: ev.InputEvent) -> list[ev.Output]:
        stored = self.store.get(loan_id)
        state = stored or LoanState(loan_id)
        new_state, outputs = apply_event(state, event, self.context)
        if stored is None and new_state.account is None and not new_state.waiting:
            return outputs  # only rejections about a loan nobody opened: nothing to keep
        if new_state is not state:
            self.store.put(new_state)
            self.track(new_state)
        return outputs

    def report(self, tick_id: str) -> placement.Report:
        """What placement needs after a tick: the cases waiting for an agency and those with one."""
        requests = []
        held = []
        eligible = self.rules.allocation.eligible
        for view in self.portfolio.open_cases.values():
            if view.agency_id is not None:
                held.append(placement.Held(view.case_id, view.customer_id, view.agency_id))
            elif view.hold_reason is None and eligible(view.bucket):
                requests.append(placement.Request(view.case_id, view.customer_id, view.bucket, view.dpd,
                                                  view.past_agencies))
        return placement.Report(self.partition, tick_id, tuple(sorted(requests, key=lambda r: r.case_id)),
                                tuple(sorted(held, key=lambda h: h.case_id)), self.business_date)

    def place(self, decisions: Iterable[placement.Decision], tick: ev.Tick) -> list[ev.Output]:
        """Apply placement's decisions for this partition at *tick*."""
        outputs: list[ev.Output] = []
        for decision in decisions:
            loan_id = decision.case_id.rsplit(":", 1)[0]
            state = self.store.get(loan_id)
            if state is None:
                continue
            new_state, produced = apply_placement(state, decision.case_id, decision.agency_id, tick, self.context)
            if new_state is not state:
                self.store.put(new_state)
                self.track(new_state)
            outputs.extend(produced)
        return outputs

    def tick(self, tick: ev.Tick) -> list[ev.Output]:
        """Apply a tick to every loan it can change; a tick not after the current date is ignored."""
        if self.business_date is not None and tick.business_date <= self.business_date:
            return []
        self.business_date = tick.business_date
        outputs: list[ev.Output] = []
        for loan_id in self.index.due(tick.business_date):
            state = self.store.get(loan_id)
            if state is None:
                continue
            # The context is rebuilt per loan: each assignment changes the agencies' load.
            new_state, produced = apply_tick(state, tick, self.context)
            if new_state is not state:
                self.store.put(new_state)
            self.track(new_state)
            outputs.extend(produced)
        return outputs
