"""The report's and live view's figures of SPEC §10: recoveries and commission, settlements, pauses."""

from __future__ import annotations

import datetime as dt

from arrears.figures import Figures
from arrears.report import render_html

D = dt.date.fromisoformat


def case_record(kind: str, event_id: str, case_id: str, day: str, **fields: object) -> tuple[str, dict]:
    return kind, {"event_id": event_id, "case_id": case_id, "loan_id": case_id.split(":")[0],
                  "business_date": D(day), **fields}


def settlement(kind: str, event_id: str, sid: str, amount: int, discount: float = 0.0, **fields: object
               ) -> tuple[str, dict]:
    case_id = sid.rsplit(":", 1)[0]
    return case_record(kind, event_id, case_id, "2026-03-02", settlement_id=sid, agency_id="AG2", amount=amount,
                       discount=discount, **fields)


RECORDS = [
    ("RecoveryAttributed", {"event_id": "r1", "agency_id": "AG1", "amount": 10_000, "commission": 1_500}),
    ("RecoveryAttributed", {"event_id": "r2", "agency_id": "AG1", "amount": 5_000, "commission": 750}),
    ("RecoveryReversed", {"event_id": "r3", "agency_id": "AG1", "amount": -5_000, "commission": -750}),
    ("RecoveryAttributed", {"event_id": "r1", "agency_id": "AG1", "amount": 10_000, "commission": 1_500}),  # again
    ("RecoveryAttributed", {"event_id": "r4", "agency_id": "AG2", "amount": 24_000, "commission": 4_800}),
    settlement("SettlementApproved", "s1", "L1:1:S1", 24_000, 0.2),
    settlement("SettlementFulfilled", "s2", "L1:1:S1", 24_000, paid_amount=24_000),
    settlement("SettlementPending", "s3", "L2:1:S1", 6_000, 0.4),
    settlement("SettlementApproved", "s4", "L2:1:S1", 6_000, 0.4),
    settlement("SettlementBroken", "s5", "L2:1:S1", 6_000, paid_amount=100),
    settlement("SettlementRejected", "s6", "L3:1:S1", 1_000, 0.9, reason="ABOVE_MAX_DISCOUNT"),
    settlement("SettlementPending", "s7", "L4:1:S1", 7_000, 0.35),
    case_record("DelinquencyPaused", "p1", "L5:1", "2026-03-02", until_date=None),
    case_record("DelinquencyPaused", "p2", "L6:1", "2026-03-02", until_date=D("2026-03-03")),
    case_record("DelinquencyPaused", "p3", "L7:1", "2026-03-02", until_date=None),
    case_record("DelinquencyResumed", "p4", "L7:1", "2026-03-04"),
    ("BusinessDateChanged", {"event_id": "t", "business_date": D("2026-03-05")}),
]


def test_recoveries_and_commission_per_agency_are_the_topic_s_sums_net_of_reversals() -> None:
    kpis = {k.agency_id: k for k in Figures().add_all(RECORDS).agency_kpis()}
    assert (kpis["AG1"].recoveries_attributed, kpis["AG1"].commission) == (10_000, 1_500)
    assert (kpis["AG2"].recoveries_attributed, kpis["AG2"].commission) == (24_000, 4_800)


def test_settlements_are_counted_by_how_far_they_got_with_the_average_discount_approved() -> None:
    s = Figures().add_all(RECORDS).settlement_summary()
    assert (s.proposed, s.pending, s.approved, s.rejected, s.fulfilled, s.broken, s.open) == (4, 2, 2, 1, 1, 1, 1)
    assert s.average_discount is not None and abs(s.average_discount - 0.3) < 1e-9
    assert s.fulfilled_amount == 24_000


def test_loans_paused_during_the_run_and_still_paused_at_its_last_date() -> None:
    figures = Figures().add_all(RECORDS)
    assert (len(figures.paused_loans), figures.paused_now()) == (3, 1)  # L6's pause ran out, L7 resumed


def test_the_report_shows_recoveries_settlements_and_pauses() -> None:
    page = render_html(Figures().add_all(RECORDS), {"run": "test"}, ["AG1", "AG2"])
    for text in ("Recoveries and commission", "Settlements and pauses", "¥100.00", "¥15.00",
                 "<b>4</b><span>settlements proposed</span>", "<b>30.0%</b><span>average discount approved</span>",
                 "<b>1</b><span>paused now</span>"):
        assert text in page, text
