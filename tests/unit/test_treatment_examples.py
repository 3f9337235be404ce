"""The README's worked examples of SPEC §10 (pauses, settlements, commission) are what the rules do."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from arrears.config import parse_config
from arrears.domain import events as ev
from arrears.domain.pipeline import Pipeline
from arrears.statement import build_statement, render_csv
from streams.records import to_record

D = dt.date.fromisoformat
README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
FILES = {"type": "files", "outbox": "out", "inbox": "in"}
CONFIG = {
    "agencies": [
        {"id": "AG1", "buckets": ["M1", "M2", "M3"], "capacity": 100, "commission": {"M2": 0.10, "M3": 0.15},
         "transport": FILES},
        {"id": "AG2", "buckets": ["M4", "M5", "M6", "M7+"], "capacity": 100, "commission": {"M4": 0.20, "M6": 0.30},
         "transport": FILES},
    ],
    "settlements": {"max_discount": {"M2": 0.0, "M3": 0.10, "M4": 0.20, "M5": 0.30, "M6": 0.40, "M7+": 0.60},
                    "approval_above": 0.30},
}
CUSTOMER = ev.Customer("x", "1", "123456789", "p", "c")


def book() -> Pipeline:
    """Every stage of the rules (placement included) over one partition."""
    return Pipeline(parse_config(CONFIG).rules(6))


def run(b: Pipeline, *steps: object) -> list[ev.Output]:
    out: list[ev.Output] = []
    for step in steps:
        if isinstance(step, ev.Tick):
            out += b.tick(step)
        else:
            out += b.apply(getattr(step, "loan_id", None) or step.case_id.rsplit(":", 1)[0], step)
    return out


def tick(day: str) -> ev.Tick:
    return ev.Tick(f"tick-{day}", 0, D(day))


def only(outputs: list[ev.Output], cls: type) -> Any:
    (found,) = [o for o in outputs if isinstance(o, cls)]
    return found


def test_the_pause_example() -> None:
    b = book()
    run(b, ev.LoanOpened("o7", 0, "L-7", "C7", "CASH", "CNY", 100_000, D("2026-01-01"), CUSTOMER),
        ev.InstallmentScheduled("i7", 0, "L-7", 1, D("2026-03-01"), 100_000, 0, 0, "CNY"))
    assert only(run(b, tick("2026-04-10")), ev.CaseOpened).dpd == 40
    out = run(b, ev.PauseDelinquency("p7", 0, "L-7", D("2026-03-20"), D("2026-04-30"), "hospital stay",
                                     "hardship-desk"))
    paused = only(out, ev.DelinquencyPaused)
    assert (paused.dpd, paused.bucket) == (19, "M1")
    assert only(out, ev.CaseRecalled).reason == "HOLD"
    state = [o for o in out if isinstance(o, ev.CaseState)][-1]
    assert (state.status, state.paused_until) == ("OPEN", D("2026-04-30"))
    assert [o for o in run(b, tick("2026-04-20"), tick("2026-04-30")) if not isinstance(o, ev.CaseState)] == []
    out = run(b, tick("2026-05-01"))
    resumed = only(out, ev.DelinquencyResumed)
    assert (resumed.on_date, resumed.dpd, resumed.requested_by) == (D("2026-05-01"), 19, None)
    assert only(out, ev.CaseAssigned)
    changed = only(run(b, tick("2026-05-13")), ev.CaseDelinquencyChanged)
    assert (changed.previous_bucket, changed.bucket, changed.dpd) == ("M1", "M2", 31)
    assert "dpd 19, bucket M1" in README and "reached M3 on 05-01" in README


def test_the_settlement_and_commission_example_and_its_statement() -> None:
    b = book()
    run(b, ev.LoanOpened("o9", 0, "L-9", "C9", "CASH", "CNY", 300_000, D("2025-12-01"), CUSTOMER),
        *[ev.InstallmentScheduled(f"i9{n}", 0, "L-9", n, D(f"2026-0{n}-01"), 50_000, 0, 0, "CNY") for n in range(1, 7)])
    out = run(b, tick("2026-04-11"))
    order = only(out, ev.WorkOrderIssued)
    assert (order.agency_id, order.bucket, only(out, ev.CaseOpened).dpd) == ("AG2", "M4", 100)
    assert order.settlement_policy == ev.SettlementPolicyTerms(0.2, 0.3, 300_000, 240_000)
    approved = only(run(b, ev.SettlementProposed("s9", 0, "AG2", "L-9:1", order.work_order_id, 240_000,
                                                 D("2026-04-30"))), ev.SettlementApproved)
    assert (approved.settlement_id, approved.discount, approved.approved_by) == (
        "L-9:1:S1", 0.2, "policy")
    run(b, tick("2026-04-20"))
    out = run(b, ev.RepaymentReceived("r92", 0, "L-9", "PAY-92", 240_000, "CNY", D("2026-04-20"), "AGENCY"))
    assert only(out, ev.SettlementFulfilled).paid_amount == 240_000
    closed = only(out, ev.CaseClosed)
    assert (closed.reason, closed.settlement_id) == ("PAID_OFF", "L-9:1:S1")
    recovery = only(run(b, tick("2026-04-21")), ev.RecoveryAttributed)
    assert (recovery.amount, recovery.bucket, recovery.rate, recovery.commission, recovery.business_date) == (
        240_000, "M4", 0.2, 48_000, D("2026-04-20"))
    assert not [o for o in run(b, tick("2026-05-02"), tick("2026-06-02")) if isinstance(o, ev.CaseOpened)]
    # The statement the README prints (its event id is this run's: the README's comes from its own ticks).
    csv_text = render_csv(build_statement([to_record(recovery)], "AG2", "2026-04")).replace("\r\n", "\n")
    (documented,) = re.findall(r"```csv\n(business_date,kind.*?)```", README, re.S)
    strip = re.compile(r",[0-9a-f-]{36}$", re.M)
    assert strip.sub(",<id>", csv_text) == strip.sub(",<id>", documented)
