"""The processor's rules end to end, without Kafka: loan partitions, debtors' budgets, placement. Pure.

The stream processor runs these same pieces in several places (each loan partition, each
partition of the debtor stage, placement on one worker) and connects them with internal
topics. This class connects them directly, in the order the processor guarantees:

* an input event is applied to its loan's partition; a contact it records goes to its
  debtor's budget, and the budget's verdicts come back to the loans they name;
* a tick is applied to every partition; then every partition's report goes to placement, and
  its decisions are applied in each partition before anything that follows the tick; every
  partition that applied the tick tells every budget so, and the budgets judge the
  third-party contacts that waited for it (the CBA rule's barrier).

Tests and the conformance scenarios run through it; the expected output of an end-to-end
scenario is what it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import events as ev
from .book import LoanBook, LoanStore, Portfolio
from .debtor import DebtorBook, DebtorState, TickBarrier
from .loan import LoanState
from .placement import place
from .state import Rules


class _Dict:
    def __init__(self) -> None:
        self.items: dict[str, object] = {}

    def get(self, key: str) -> object:
        return self.items.get(key)

    def put(self, state: object) -> None:
        key = state.loan_id if isinstance(state, LoanState) else state.customer_id  # type: ignore[attr-defined]
        self.items[key] = state

    def values(self) -> list[object]:
        return list(self.items.values())


class _Debtors(_Dict):
    barrier: TickBarrier | None = None

    def get_barrier(self) -> TickBarrier | None:
        return self.barrier

    def put_barrier(self, barrier: TickBarrier) -> None:
        self.barrier = barrier


class Pipeline:
    """Every stage of the processor over in-memory stores, for a book of *partitions* partitions."""

    def __init__(self, rules: Rules, partitions: int = 1,
                 partition_of: Callable[[str], int] = lambda key: 0,
                 stores: Sequence[LoanStore] | None = None) -> None:
        self.rules = rules
        self.partitions = partitions
        self.partition_of = partition_of
        loan_stores = stores or [_Dict() for _ in range(partitions)]  # type: ignore[misc]
        self.books = [LoanBook(loan_stores[p], rules, None, p) for p in range(partitions)]
        self.debtors = [DebtorBook(_Debtors(), rules, partitions) for _ in range(partitions)]  # type: ignore[arg-type]

    def book_of(self, loan_id: str) -> LoanBook:
        return self.books[self.partition_of(loan_id)]

    def loan(self, loan_id: str) -> LoanState | None:
        return self.book_of(loan_id).store.get(loan_id)

    def debtor(self, customer_id: str) -> DebtorState | None:
        return self.debtors[self.partition_of(customer_id)].store.get(customer_id)

    def apply(self, loan_id: str, event: ev.InputEvent) -> list[ev.Output]:
        return self._follow(self.book_of(loan_id).apply(loan_id, event))

    def tick(self, tick: ev.Tick) -> list[ev.Output]:
        outputs: list[ev.Output] = []
        applied = []
        for book in self.books:
            before = book.business_date
            outputs += book.tick(tick)
            if book.business_date != before:
                applied.append(ev.TickApplied(tick.business_date, book.partition, tick.occurred_at))
        if applied and self.rules.allocation.agencies:
            placement = place([book.report(tick.event_id) for book in self.books], self.rules.allocation)
            for book in self.books:
                outputs += book.place(placement.decisions.get(book.partition, ()), tick)
        published = self._follow(outputs)
        for debtors in self.debtors:
            for message in applied:
                published += self._verdicts(debtors.tick_applied(message))
        return published

    def _follow(self, outputs: list[ev.Output]) -> list[ev.Output]:
        """The outputs to publish, with every internal message delivered to its stage in turn."""
        published: list[ev.Output] = []
        for output in outputs:
            if isinstance(output, ev.ContactCounted):
                published += self._verdicts(self.debtors[self.partition_of(output.customer_id)].count(output))
                continue
            published.append(output)
        return published

    def _verdicts(self, outputs: list[ev.Output | ev.BudgetVerdict]) -> list[ev.Output]:
        """A budget's outputs to publish, each verdict applied to the loan it names."""
        published: list[ev.Output] = []
        for output in outputs:
            if isinstance(output, ev.BudgetVerdict):
                published += self.apply(output.loan_id, output)
            else:
                published.append(output)
        return published

    # A one-partition pipeline reads like one LoanBook (the tests of the rules use either).
    @property
    def store(self) -> _Loans:
        return _Loans(self)

    @property
    def portfolio(self) -> Portfolio:
        assert self.partitions == 1, "the portfolio of one partition"
        return self.books[0].portfolio


class _Loans:
    """Loan states by id, whatever partition holds them."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    def get(self, loan_id: str) -> LoanState | None:
        return self._pipeline.loan(loan_id)
