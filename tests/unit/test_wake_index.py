"""The wake index: which loans a tick must look at, however often their wake dates moved."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from arrears.domain.book import WakeIndex

DAY0 = dt.date(2026, 1, 1)
loan_ids = st.sampled_from([f"L{i}" for i in range(12)])
wakes = st.one_of(st.none(), st.integers(0, 30).map(lambda d: DAY0 + dt.timedelta(days=d)), st.just(dt.date.min))
steps = st.lists(st.one_of(st.tuples(st.just("set"), loan_ids, wakes),
                           st.tuples(st.just("tick"), st.integers(0, 30), st.none())), max_size=80)


@given(steps)
def test_a_tick_takes_exactly_the_loans_whose_latest_wake_date_has_come(
        script: list[tuple[str, object, object]]) -> None:
    index = WakeIndex()
    model: dict[str, dt.date] = {}
    for op, a, b in script:
        if op == "set":
            assert isinstance(a, str)
            index.set(a, b)  # type: ignore[arg-type]
            if b is None:
                model.pop(a, None)
            else:
                model[a] = b  # type: ignore[assignment]
        else:
            date = DAY0 + dt.timedelta(days=a)  # type: ignore[operator]
            due = sorted(loan for loan, wake in model.items() if wake <= date)
            assert index.due(date) == due
            for loan in due:
                del model[loan]
        assert len(index) == len(model)


def test_the_index_keeps_one_entry_per_loan_however_often_its_wake_date_moves() -> None:
    index = WakeIndex()
    for day in range(1, 400):
        index.set("L1", DAY0 + dt.timedelta(days=day))
        index.set("L2", DAY0 + dt.timedelta(days=day))
    assert len(index) == 2
    assert sum(len(m) for m in index._by_date.values()) == 2
    assert index._wake["L1"] is index._wake["L2"]  # one date object per date
    assert index.due(DAY0 + dt.timedelta(days=398)) == []
    assert index.due(DAY0 + dt.timedelta(days=399)) == ["L1", "L2"]
    assert len(index) == 0 and not index._by_date
