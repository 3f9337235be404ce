"""An agency's monthly statement (SPEC §10) from collections.recoveries records: pure, no Kafka."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random

import pytest

from arrears.statement import build_statement, check_month, render_csv, render_html


def record(kind: str, event_id: str, day: str, amount: int, commission: int, *, agency: str = "AG1",
           payment: str = "P1", case: str = "L1:1", bucket: str = "M3", rate: float = 0.15) -> tuple[str, dict]:
    return kind, {
        "event_id": event_id, "occurred_at": dt.datetime(2026, 3, 1, tzinfo=dt.UTC), "case_id": case,
        "loan_id": case.split(":")[0], "agency_id": agency, "work_order_id": f"WO-{case}-1", "payment_id": payment,
        "amount": amount, "bucket": bucket, "rate": rate, "commission": commission,
        "business_date": dt.date.fromisoformat(day), "currency": "CNY",
    }


RECORDS = [
    record("RecoveryAttributed", "e1", "2026-03-02", 10_000, 1_500, payment="P1"),
    record("RecoveryAttributed", "e2", "2026-03-31", 333, 50, payment="P2", case="L2:1"),
    record("RecoveryAttributed", "e3", "2026-03-15", 20_000, 5_000, payment="P3", case="L3:1", bucket="M5",
           rate=0.25),
    record("RecoveryReversed", "e4", "2026-03-20", -10_000, -1_500, payment="P1"),
    record("RecoveryAttributed", "e1", "2026-03-02", 10_000, 1_500, payment="P1"),  # delivered twice
    record("RecoveryAttributed", "e5", "2026-04-01", 7_000, 1_050, payment="P5"),  # next month
    record("RecoveryAttributed", "e6", "2026-03-05", 9_000, 1_800, agency="AG2", payment="P6"),  # another agency
]


def test_the_statement_lists_the_agency_s_repayments_and_reversals_of_the_month_with_totals() -> None:
    statement = build_statement(RECORDS, "AG1", "2026-03")
    assert [(line.business_date.day, line.kind, line.payment_id) for line in statement.lines] == [
        (2, "recovery", "P1"), (15, "recovery", "P3"), (20, "reversal", "P1"), (31, "recovery", "P2")]
    assert statement.totals() == {"CNY": (20_333, 5_050)}
    assert [(s.bucket, s.rate, s.repayments, s.reversals, s.amount, s.commission) for s in statement.subtotals()] == [
        ("M3", 0.15, 2, 1, 333, 50), ("M5", 0.25, 1, 0, 20_000, 5_000)]
    assert (statement.first_day, statement.last_day) == (dt.date(2026, 3, 1), dt.date(2026, 3, 31))


def test_the_same_records_in_any_order_give_the_same_statement_byte_for_byte() -> None:
    shuffled = list(RECORDS)
    random.Random(7).shuffle(shuffled)
    first, second = build_statement(RECORDS, "AG1", "2026-03"), build_statement(shuffled, "AG1", "2026-03")
    assert render_csv(first) == render_csv(second)
    assert render_html(first) == render_html(second)


def test_the_csv_has_one_row_per_line_in_minor_units_and_a_total_row() -> None:
    rows = list(csv.reader(io.StringIO(render_csv(build_statement(RECORDS, "AG1", "2026-03")))))
    assert rows[0][:3] == ["business_date", "kind", "case_id"]
    assert rows[3][1:3] == ["reversal", "L1:1"] and rows[3][8:10] == ["-10000", "-1500"]
    assert rows[-1][0] == "TOTAL" and rows[-1][8:11] == ["20333", "5050", "CNY"]
    assert len(rows) == 1 + 4 + 1


def test_the_html_statement_is_a_readable_page_with_money_formatted_and_text_escaped() -> None:
    page = render_html(build_statement(RECORDS, "AG1", "2026-03"))
    assert "Commission statement: AG1, 2026-03" in page
    assert "¥203.33" in page and "¥50.50" in page and "-¥100.00" in page
    assert "2026-03-01 to 2026-03-31" in page and "rounded half to even" in page
    hostile = build_statement([record("RecoveryAttributed", "x", "2026-03-02", 1, 0, agency="<b>AG</b>")],
                              "<b>AG</b>", "2026-03")
    assert "<b>AG</b>" not in render_html(hostile) and "&lt;b&gt;AG&lt;/b&gt;" in render_html(hostile)
    assert "No repayment was attributed" in render_html(build_statement([], "AG1", "2026-02"))


@pytest.mark.parametrize("text", ["2026-3", "2026-13", "March", "2026-03-01"])
def test_a_month_is_yyyy_mm(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        check_month(text)
