"""A scripted agency session through an adapter's /results, end to end on the embedded broker.

The agency holding a case calls (once inside and once outside the contact hours), texts a
third party, takes a promise the debtor keeps, then reports a dispute; a late call after the
hold is unauthorized; the lender releases the case with ``arrears release``. The case events,
the compliance records and the final CaseState must be exactly these.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import env_for
from kafkatools import read_topic
from processes import WorkerProcess, get_json, wait_until

from arrears.broker import free_port
from arrears.kafka import create_topics
from consumers.adapter import Adapter
from consumers.signing import sign
from consumers.simagency import HttpAgency
from producers.publisher import LoanEventPublisher
from streams.app import internal_topic_specs

pytestmark = [pytest.mark.slow, pytest.mark.broker]
SECRET = "ag1-results-e2e"
LOAN = "RES-L1"
CASE = f"{LOAN}:1"


def utc(text: str) -> str:
    return text + "Z"


def post(adapter: Adapter, results: list[dict[str, Any]]) -> httpx.Response:
    body = json.dumps(results).encode()
    return httpx.post(f"{adapter.url}/results", content=body, timeout=30,
                      headers={"Content-Type": "application/json",
                               "X-Arrears-Signature": sign(SECRET, body, int(time.time()))})


def contact(n: int, work_order: str, at: str, **fields: str) -> dict[str, Any]:
    return {"type": "ContactAttempted", "event_id": f"contact-{n}", "occurred_at": utc(at), "agency_id": "AG1",
            "case_id": CASE, "work_order_id": work_order, "attempted_at": utc(at), "channel": "CALL",
            "party": "DEBTOR", "outcome": "NO_ANSWER", **fields}


def test_a_scripted_agency_session_yields_exactly_the_expected_records(
    make_settings: Any, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AG1_SECRET", SECRET)
    agency_port = free_port()
    settings = make_settings({"agencies": [{
        "id": "AG1", "buckets": ["M1", "M2"], "capacity": 10, "assignment_days": 30,
        "transport": {"type": "webhook", "url": f"http://127.0.0.1:{agency_port}/wo",
                      "allow_insecure_http": True, "secret_env": "AG1_SECRET"},
    }]}, arrears_app_id=f"resapp-{unique}")
    create_topics(settings, settings.topics.specs(6, ["AG1"]) + internal_topic_specs(settings))
    env = env_for(settings, ARREARS_APP_ID=settings.arrears_app_id, ARREARS_DATA_DIR=str(tmp_path / "d"),
                  AG1_SECRET=SECRET)
    worker = WorkerProcess(env, free_port(), tmp_path).start()
    agency = HttpAgency("AG1", SECRET, port=agency_port, path="/wo").start()
    adapter = Adapter(settings, "AG1", port=free_port()).start()
    publisher = LoanEventPublisher(settings)
    try:
        worker.wait_ready()
        adapter.wait_ready(30)
        publisher.publish("LoanOpened", {
            "loan_id": LOAN, "customer_id": "RC1", "product_code": "CASH", "currency": "CNY", "principal": 50_000,
            "opened_on": "2026-02-01", "customer": {"name": "王五", "phone": "13700000001",
                                                     "national_id": "110101198001011234", "province": "北京市",
                                                     "city": "北京市", "timezone": "Asia/Shanghai"},
        })
        publisher.publish("InstallmentScheduled", {
            "loan_id": LOAN, "installment_no": 1, "due_date": "2026-03-01", "principal_due": 50_000,
            "interest_due": 0, "fee_due": 0, "currency": "CNY"})
        for day in ("2026-03-01", "2026-03-02"):
            publisher.end_of_day(day, occurred_at=f"{day}T00:00:00Z")  # at the start of its day
        assert agency.wait_for(lambda a: len(a.accepted()) == 1, 60), "no work order reached the agency"
        (work_order,) = [json.loads(b[0]) for b in agency.accepted().values()]
        wo = work_order["work_order_id"]
        assert work_order["case_id"] == CASE and work_order["debtor"]["national_id_masked"].endswith("1234")

        response = post(adapter, [
            contact(1, wo, "2026-03-02T02:00:00"),  # 10:00 in Beijing: fine
            contact(2, wo, "2026-03-02T15:00:00", outcome="RIGHT_PARTY_CONTACT"),  # 23:00: quiet hours
            contact(3, wo, "2026-03-02T03:00:00", channel="SMS", party="THIRD_PARTY", outcome="LEFT_MESSAGE"),
            {"type": "PromiseToPay", "event_id": "promise-1", "occurred_at": utc("2026-03-02T15:05:00"),
             "agency_id": "AG1", "case_id": CASE, "work_order_id": wo, "promised_amount": 20_000,
             "promised_date": "2026-03-05"},
        ])
        assert response.status_code == 202, response.text
        publisher.publish("RepaymentReceived", {
            "loan_id": LOAN, "payment_id": "AGENCY-PAY-1", "amount": 20_000, "currency": "CNY",
            "value_date": "2026-03-04", "channel": "AGENCY", "reference": wo}, wait=True)
        for day in ("2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06"):
            publisher.end_of_day(day, occurred_at=f"{day}T00:00:00Z")  # at the start of its day
        response = post(adapter, [{"type": "DisputeRaised", "event_id": "dispute-1",
                                   "occurred_at": utc("2026-03-06T03:00:00"), "agency_id": "AG1", "case_id": CASE,
                                   "work_order_id": wo, "details": "debtor disputes the fee"}])
        assert response.status_code == 202, response.text
        wait_until(lambda: get_json(f"{worker.url}/cases/{CASE}")[1].get("status") == "HOLD", 30, message="HOLD")
        late = post(adapter, [contact(4, wo, "2026-03-06T04:00:00", outcome="RIGHT_PARTY_CONTACT")])
        assert late.status_code == 202  # made after the hold recalled the case: recorded, and a violation

        release = [sys.executable, "-m", "arrears", "release", CASE, "--reason", "fee explained",
                   "--url", worker.url]
        done = subprocess.run(release, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        wait_until(lambda: get_json(f"{worker.url}/cases/{CASE}")[1].get("status") == "OPEN", 30,
                   message="the case released")
        # Placement sees the whole book at each tick (SPEC §5): the case goes back out at the next one.
        publisher.end_of_day("2026-03-07", occurred_at="2026-03-07T00:00:00Z")
        wait_until(lambda: get_json(f"{worker.url}/cases/{CASE}")[1].get("status") == "ASSIGNED", 30,
                   message="the case back with the agency")
        again = subprocess.run(release, env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 2 and "not on hold" in again.stderr

        cases = [r for r in read_topic(settings, settings.topics.cases, min_count=9, idle=1.5)
                 if r.data["case_id"] == CASE]
        assert [(r.name, r.data["business_date"].isoformat()) for r in cases] == [
            ("CaseOpened", "2026-03-02"), ("CaseAssigned", "2026-03-02"), ("CaseBalanceChanged", "2026-03-02"),
            ("PromiseKept", "2026-03-06"), ("CaseHeld", "2026-03-06"), ("CaseRecalled", "2026-03-06"),
            ("CaseReleased", "2026-03-06"), ("CaseAssigned", "2026-03-07"),
        ]
        kept = cases[3].data
        assert (kept["promised_amount"], kept["paid_amount"], kept["promised_date"]) == (20_000, 20_000,
                                                                                         dt.date(2026, 3, 5))
        assert (cases[5].data["reason"], cases[6].data["hold_reason"]) == ("HOLD", "DISPUTE")
        assert cases[7].data["work_order_id"] == f"WO-{CASE}-2"

        violations = read_topic(settings, settings.topics.compliance, min_count=4, idle=1.5)
        assert [(v.data["source_event_id"], v.data["rule"]) for v in violations] == [
            ("contact-2", "QUIET_HOURS"), ("contact-3", "THIRD_PARTY_CONTACT"),
            ("contact-4", "CONTACT_ON_HOLD"), ("contact-4", "UNAUTHORIZED_CONTACT"),
        ]
        # AG1 held the work order named by contact-4 (until the dispute): the contact is recorded
        # against the case and judged by its time, not dead-lettered (SPEC §4).
        dlq = read_topic(settings, settings.topics.dlq(settings.topics.agency_results), idle=1.0, decode=False)
        assert dlq == []

        status, state = get_json(f"{worker.url}/cases/{CASE}")
        assert status == 200
        assert {k: state[k] for k in ("status", "agency_id", "work_order_id", "hold_reason", "promise",
                                      "contact_attempts", "violations", "overdue_amount", "last_contact_at")} == {
            "status": "ASSIGNED", "agency_id": "AG1", "work_order_id": f"WO-{CASE}-2", "hold_reason": None,
            "promise": None, "contact_attempts": 4, "violations": 4, "overdue_amount": 30_000,
            "last_contact_at": "2026-03-06T04:00:00.000Z",
        }
        status, timeline = get_json(f"{worker.url}/cases/{CASE}/timeline")
        types = [e["type"] for e in timeline["events"]]
        assert types[:4] == ["CaseOpened", "CaseAssigned", "WorkOrderIssued", "ContactAttempted"]
        assert "ReleaseCase" in types and "DisputeRaised" in types and "PromiseKept" in types
        kpis = get_json(f"{worker.url}/agencies/AG1/kpis")[1]
        assert (kpis["contact_attempts"], kpis["promises_kept"], kpis["amount_recovered"], kpis["violations"]) == (
            4, 1, 20_000, 4)
    finally:
        publisher.close()
        adapter.stop()
        agency.stop()
        worker.stop()
