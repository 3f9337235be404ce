"""The case lifecycle of SPEC §4 on small, hand-made loans (pure rules, no Kafka)."""

from __future__ import annotations

import datetime as dt

from builders import closed, installment, opened, repayment, reversal, tick

from arrears.domain import events as ev
from arrears.domain.book import LoanBook
from arrears.domain.loan import LoanState, Rules


class DictStore(dict[str, LoanState]):
    def get(self, loan_id: str) -> LoanState | None:  # type: ignore[override]
        return dict.get(self, loan_id)

    def put(self, state: LoanState) -> None:
        self[state.loan_id] = state


def make_book(grace_days: int = 0) -> LoanBook:
    return LoanBook(DictStore(), Rules(grace_days=grace_days))


def case_events(outputs: list[ev.Output]) -> list[ev.Output]:
    return [o for o in outputs if not isinstance(o, (ev.CaseState, ev.Rejected))]


def names(outputs: list[ev.Output]) -> list[str]:
    return [type(o).__name__ for o in case_events(outputs)]


def run(book: LoanBook, *steps: object) -> list[ev.Output]:
    out: list[ev.Output] = []
    for step in steps:
        if isinstance(step, ev.Tick):
            out += book.tick(step)
        else:
            out += book.apply(step.loan_id, step)  # type: ignore[attr-defined]
    return out


def test_installment_due_on_the_business_date_is_not_overdue() -> None:
    book = make_book()
    out = run(book, opened(), installment(1, "2026-01-10"), tick("2026-01-10"))
    assert names(out) == []
    assert names(run(book, tick("2026-01-11"))) == ["CaseOpened"]


def test_case_opens_at_the_tick_after_a_missed_installment_with_its_figures() -> None:
    book = make_book()
    out = run(book, opened(), installment(1, "2026-01-10", 10_000, 500, 100), tick("2026-01-12"))
    (case,) = case_events(out)
    assert isinstance(case, ev.CaseOpened)
    assert (case.case_id, case.dpd, case.bucket, case.overdue_amount, case.oldest_due_date, case.business_date) == (
        "L1:1", 2, "M1", 10_600, dt.date(2026, 1, 10), dt.date(2026, 1, 12))
    assert (case.customer_id, case.currency) == ("C1", "CNY")


def test_grace_days_delay_the_opening() -> None:
    book = make_book(grace_days=3)
    assert names(run(book, opened(), installment(1, "2026-01-10"), tick("2026-01-13"))) == []
    assert names(run(book, tick("2026-01-14"))) == ["CaseOpened"]


def test_no_case_opens_before_the_first_tick() -> None:
    book = make_book()
    out = run(book, opened(), installment(1, "2025-12-01"), repayment("P1", 1))
    assert names(out) == []


def test_partial_payment_keeps_case_open_and_lowers_overdue() -> None:
    book = make_book()
    run(book, opened(), installment(1, "2026-01-10"), tick("2026-01-12"))
    out = run(book, repayment("P1", 4_000))
    (change,) = case_events(out)
    assert isinstance(change, ev.CaseBalanceChanged)
    assert (change.overdue_amount, change.previous_overdue_amount, change.payment_id, change.dpd) == (
        6_000, 10_000, "P1", 2)


def test_full_payment_cures_the_case_at_once() -> None:
    book = make_book()
    run(book, opened(), installment(1, "2026-01-10"), tick("2026-01-12"))
    out = run(book, repayment("P1", 10_000))
    (close,) = case_events(out)
    assert isinstance(close, ev.CaseClosed) and close.reason == "CURED"
    assert close.business_date == dt.date(2026, 1, 12)


def test_previous_overdue_includes_ticks_since_the_last_report() -> None:
    book = make_book()
    run(book, opened(), installment(1, "2026-01-10"), installment(2, "2026-01-20"), tick("2026-01-12"))
    run(book, tick("2026-01-25"))  # installment 2 fell due meanwhile: overdue is 20 000 now
    (change,) = case_events(run(book, repayment("P1", 1_000)))
    assert isinstance(change, ev.CaseBalanceChanged)
    assert (change.previous_overdue_amount, change.overdue_amount) == (20_000, 19_000)


def test_escalation_emits_one_change_even_when_a_skipped_day_jumps_buckets() -> None:
    book = make_book()
    run(book, opened(), installment(1, "2026-01-10"), tick("2026-01-12"))
    out = run(book, tick("2026-04-15"))  # 95 days late: M1 -> M4 in one go
    (change,) = case_events(out)
    assert isinstance(change, ev.CaseDelinquencyChanged)
    assert (change.previous_bucket, change.bucket, change.dpd) == ("M1", "M4", 95)


def test_tick_within_the_same_bucket_emits_no_case_event_but_a_new_snapshot() -> None:
    book = make_book()
    run(book, opened(), installment(1, "2026-01-10"), tick("2026-01-12"))
    out = run(book, tick("2026-01-13"))
    assert names(out) == []
    (snapshot,) = [o for o in out if isinstance(o, ev.CaseState)]
    assert (snapshot.dpd, snapshot.version) == (3, 2)


def test_a_balance_change_that_moves_the_bucket_resets_what_was_reported() -> None:
    book = make_book()
    run(book, opened(), installment(1, "2026-01-01"), installment(2, "2026-02-01"), tick("2026-01-20"))
    assert names(run(book, tick("2026-02-12"))) == ["CaseDelinquencyChanged"]  # dpd 42: M2
    (change,) = case_events(run(book, repayment("P1", 10_000)))  # oldest paid: dpd 11, M1
    assert isinstance(change, ev.CaseBalanceChanged) and change.bucket == "M1"
    assert names(run(book, tick("2026-02-13"))) == []  # M1 was reported by the balance change


def test_stale_and_repeated_ticks_are_ignored() -> None:
    book = make_book()
    run(book, opened(), installment(1, "2026-01-10"), tick("2026-01-12"))
    assert run(book, tick("2026-01-12")) == []
    assert run(book, tick("2026-01-11")) == []
    assert book.business_date == dt.date(2026, 1, 12)


def test_reversal_after_cure_opens_a_new_case_only_at_the_next_tick() -> None:
    book = make_book()
    run(book, opened(), installment(1, "2026-01-10"), tick("2026-01-12"), repayment("P1", 10_000))
    assert names(run(book, reversal("P1"))) == []  # the closed case never reopens
    out = run(book, tick("2026-01-13"))
    (case,) = case_events(out)
    assert isinstance(case, ev.CaseOpened) and case.case_id == "L1:2" and case.dpd == 3


def test_schedule_revision_can_cure() -> None:
    book = make_book()
    run(book, opened(), installment(1, "2026-01-10"), tick("2026-01-12"))
    (close,) = case_events(run(book, installment(1, "2026-02-10")))  # restructured: due later
    assert isinstance(close, ev.CaseClosed) and close.reason == "CURED"


def test_schedule_revision_can_worsen_the_balance() -> None:
    book = make_book()
    run(book, opened(), installment(1, "2026-01-10"), tick("2026-01-12"))
    (change,) = case_events(run(book, installment(1, "2026-01-10", principal=15_000)))
    assert isinstance(change, ev.CaseBalanceChanged)
    assert (change.previous_overdue_amount, change.overdue_amount, change.payment_id) == (10_000, 15_000, None)


def test_overpayment_credit_pays_installments_scheduled_later() -> None:
    book = make_book()
    run(book, opened(), installment(1, "2026-01-10"), repayment("P1", 25_000), tick("2026-01-12"))
    out = run(book, installment(2, "2026-01-11"), tick("2026-01-13"))
    assert names(out) == []  # the credit covers installment 2


def test_duplicate_event_ids_and_redelivered_payments_change_nothing() -> None:
    book = make_book()
    run(book, opened(), installment(1, "2026-01-10"), tick("2026-01-12"))
    pay = repayment("P1", 4_000, event_id="E-pay")
    assert names(run(book, pay)) == ["CaseBalanceChanged"]
    assert run(book, pay) == []  # same event id
    assert run(book, repayment("P1", 4_000)) == []  # same payment id, new event id: a re-delivery


def test_reversal_before_its_payment_takes_effect_when_the_payment_arrives() -> None:
    book = make_book()
    run(book, opened(), installment(1, "2026-01-10"), tick("2026-01-12"))
    assert run(book, reversal("P1")) == []
    assert names(run(book, repayment("P1", 10_000))) == []  # arrives already reversed: no cure
    assert run(book, reversal("P1")) == []  # a second reversal changes nothing


def test_events_before_loan_opened_are_kept_and_applied_when_it_arrives() -> None:
    book = make_book()
    run(book, installment(1, "2026-01-10"), repayment("P1", 2_000), tick("2026-01-12"))
    assert names(run(book, tick("2026-01-13"))) == []  # the loan is not known: no case
    run(book, opened())
    (case,) = case_events(run(book, tick("2026-01-14")))
    assert isinstance(case, ev.CaseOpened) and case.overdue_amount == 8_000


def test_kept_events_that_break_the_contract_are_rejected_when_the_loan_arrives() -> None:
    book = make_book()
    run(book, repayment("P1", 2_000, currency="USD"))
    out = run(book, opened())
    (rejected,) = [o for o in out if isinstance(o, ev.Rejected)]
    assert rejected.reason == "CONTRACT_VIOLATION" and "USD" in rejected.detail


def test_loan_closed_closes_an_open_case_with_the_loan_reason_and_no_case_opens_after() -> None:
    book = make_book()
    run(book, opened(), installment(1, "2026-01-10"), tick("2026-01-12"))
    (close,) = case_events(run(book, closed("SOLD")))
    assert isinstance(close, ev.CaseClosed) and close.reason == "SOLD"
    assert names(run(book, tick("2026-03-01"))) == []


def test_contract_violations_are_rejected_and_change_nothing() -> None:
    book = make_book()
    run(book, opened(), installment(1, "2026-01-10"), tick("2026-01-12"))
    out = run(book, repayment("P1", 0), repayment("P2", 5_000, currency="USD"), installment(2, "2026-02-01",
                                                                                         currency="USD"))
    assert [o.reason for o in out if isinstance(o, ev.Rejected)] == ["CONTRACT_VIOLATION"] * 3
    assert names(out) == []


def test_output_ids_and_fields_are_deterministic() -> None:
    def scenario() -> list[ev.Output]:
        book = make_book()
        return run(book, opened(event_id="o"), installment(1, "2026-01-10", event_id="i"), tick("2026-01-12"),
                   repayment("P1", 3_000, event_id="p"))

    assert scenario() == scenario()


def test_case_state_snapshots_count_versions() -> None:
    book = make_book()
    out = run(book, opened(), installment(1, "2026-01-10"), tick("2026-01-12"), repayment("P1", 1),
              repayment("P2", 9_999))
    snapshots = [o for o in out if isinstance(o, ev.CaseState)]
    assert [(s.version, s.status) for s in snapshots] == [(1, "OPEN"), (2, "OPEN"), (3, "CLOSED")]
    assert snapshots[-1].close_reason == "CURED" and snapshots[-1].closed_on == dt.date(2026, 1, 12)


def test_a_tick_visits_only_loans_it_can_change() -> None:
    book = make_book()
    run(book, opened("A"), installment(1, "2026-01-10", loan_id="A"),
        opened("B"), installment(1, "2026-06-10", loan_id="B"))
    assert len(book.index.due(dt.date(2026, 1, 11))) == 1  # only A; B wakes in June


def test_a_tick_replayed_after_a_restart_does_not_move_a_loan_back_in_time() -> None:
    book = make_book()
    run(book, opened(), installment(1, "2026-01-10"), tick("2026-01-11"), tick("2026-02-15"))
    # A restart replays from an older partition state: the loan already saw 2026-02-15.
    book.business_date = dt.date(2026, 1, 11)
    assert case_events(run(book, tick("2026-01-20"))) == []
    assert case_events(run(book, tick("2026-02-15"))) == []


def test_a_tick_replayed_after_an_event_of_its_own_day_changes_nothing() -> None:
    book = make_book()
    run(book, opened(), tick("2026-01-11"), tick("2026-01-20"), installment(1, "2026-01-12"))
    book.business_date = dt.date(2026, 1, 11)  # the restart: 2026-01-20 is replayed
    assert run(book, tick("2026-01-20")) == []
    assert names(run(book, tick("2026-01-21"))) == ["CaseOpened"]
