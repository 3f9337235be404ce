"""Properties of the rules: figures do not depend on arrival order, duplicates change nothing."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st
from test_loan_rules import DictStore

from arrears.domain import events as ev
from arrears.domain.book import LoanBook
from arrears.domain.loan import Rules

START = dt.date(2026, 1, 1)


@st.composite
def loan_events(draw: st.DrawFn) -> list[ev.InputEvent]:
    n_inst = draw(st.integers(1, 6))
    events: list[ev.InputEvent] = []
    for no in range(1, n_inst + 1):
        due = START + dt.timedelta(days=draw(st.integers(0, 90)))
        events.append(ev.InstallmentScheduled(f"i{no}", 0, "L1", no, due, draw(st.integers(0, 50_000)),
                                              draw(st.integers(0, 5_000)), draw(st.integers(0, 500)), "CNY"))
    for p in range(draw(st.integers(0, 5))):
        events.append(ev.RepaymentReceived(f"p{p}", 0, "L1", f"P{p}", draw(st.integers(1, 40_000)), "CNY", START,
                                           "BANK"))
        if draw(st.booleans()):
            events.append(ev.RepaymentReversed(f"r{p}", 0, "L1", f"P{p}", "NSF"))
    if draw(st.booleans()):  # a revision of installment 1
        events.append(ev.InstallmentScheduled("rev1", 0, "L1", 1, START + dt.timedelta(days=draw(st.integers(0, 90))),
                                              draw(st.integers(0, 50_000)), 0, 0, "CNY"))
    return events


OPENED = ev.LoanOpened("open", 0, "L1", "C1", "CASH", "CNY", 100_000, START)


def final_figures(events: list[ev.InputEvent], date: dt.date) -> tuple[int, int, str, bool]:
    book = LoanBook(DictStore(), Rules())
    book.apply("L1", OPENED)
    book.tick(ev.Tick("t0", 0, START))
    for event in events:
        book.apply("L1", event)
    book.tick(ev.Tick("t1", 0, date))
    state = book.store.get("L1")
    assert state is not None
    fig = state.figures(date, book.rules.buckets)
    return fig.overdue_amount, fig.dpd, fig.bucket, state.open_case is not None


@settings(max_examples=200, deadline=None)
@given(loan_events(), st.randoms(use_true_random=False), st.integers(1, 200))
def test_figures_do_not_depend_on_arrival_order(events, rnd, days) -> None:
    date = START + dt.timedelta(days=days)
    # A revision must stay after the installment it revises: both carry the same number.
    shuffled = list(events)
    rnd.shuffle(shuffled)
    shuffled.sort(key=lambda e: e.event_id == "rev1")
    assert final_figures(shuffled, date) == final_figures(sorted(events, key=lambda e: e.event_id == "rev1"), date)


@settings(max_examples=200, deadline=None)
@given(loan_events(), st.integers(1, 200))
def test_duplicated_events_change_nothing(events, days) -> None:
    date = START + dt.timedelta(days=days)

    def outputs(sequence: list[ev.InputEvent]) -> list[ev.Output]:
        book = LoanBook(DictStore(), Rules())
        out = book.apply("L1", OPENED) + book.tick(ev.Tick("t0", 0, START + dt.timedelta(days=days // 2)))
        for event in sequence:
            out += book.apply("L1", event)
        return out + book.tick(ev.Tick("t1", 0, date))

    doubled = [e for event in events for e in (event, event)]
    assert outputs(doubled) == outputs(events)


@st.composite
def pauses(draw: st.DrawFn) -> list[ev.InputEvent]:
    """SPEC §10: a few pauses, overlapping or not, open-ended or not, backdated or not."""
    out: list[ev.InputEvent] = []
    for n in range(draw(st.integers(0, 3))):
        first = START + dt.timedelta(days=draw(st.integers(0, 120)))
        last = None if draw(st.booleans()) else first + dt.timedelta(days=draw(st.integers(0, 40)))
        out.append(ev.PauseDelinquency(f"pause{n}", 0, "L1", first, last, "hardship", "ops"))
    return out


@settings(max_examples=200, deadline=None)
@given(loan_events(), pauses(), st.randoms(use_true_random=False), st.integers(1, 200))
def test_figures_with_pauses_do_not_depend_on_arrival_order(events, paused, rnd, days) -> None:
    date = START + dt.timedelta(days=days)
    shuffled = [*events, *paused]
    rnd.shuffle(shuffled)
    shuffled.sort(key=lambda e: e.event_id == "rev1")
    ordered = sorted([*events, *paused], key=lambda e: e.event_id == "rev1")
    assert final_figures(shuffled, date) == final_figures(ordered, date)
