"""Cases go out to agencies and come back, end to end on the embedded broker.

A small loan book falls behind; a worker assigns its cases to two webhook agencies and one
file-drop agency through real adapters. Checked: one active assignment per case at a time,
capacities honoured, internal buckets kept in-house, each work order delivered once per
Idempotency-Key, and no work order carries more personal data than SPEC §5 allows.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import env_for
from kafkatools import read_topic
from piicheck import assert_minimal_pii
from processes import WorkerProcess, wait_until

from arrears.broker import free_port
from arrears.kafka import create_topics
from arrears.settings import Settings
from consumers.adapter import Adapter
from consumers.simagency import HttpAgency
from producers.publisher import LoanEventPublisher
from streams.app import internal_topic_specs

pytestmark = [pytest.mark.slow, pytest.mark.broker]
SECRETS = {"AG1_SECRET": "ag1-secret", "AG2_SECRET": "ag2-secret", "AG3_SECRET": "ag3-secret"}
START = dt.date(2026, 1, 1)
LAST_DAY = dt.date(2026, 4, 20)


def customer(i: int) -> dict[str, Any]:
    return {
        "name": f"测试客户{i:02d}", "phone": f"1390000{i:04d}", "national_id": f"33010619900101{i:04d}",
        "province": "浙江省", "city": "杭州市", "timezone": "Asia/Shanghai",
        "emergency_contacts": [{"name": f"紧急联系人{i:02d}", "phone": f"1380000{i:04d}", "relation": "SPOUSE"}],
    }


def publish_book(publisher: LoanEventPublisher, loans: int) -> None:
    """Every loan has four monthly installments; a third pay everything, the rest stop paying."""
    for i in range(loans):
        loan = f"AGL-{i:02d}"
        publisher.publish("LoanOpened", {
            "loan_id": loan, "customer_id": f"CUST-{i:04d}", "product_code": "CASH", "currency": "CNY",
            "principal": 400_000, "opened_on": START, "customer": customer(i),
        })
        for n in range(1, 5):
            publisher.publish("InstallmentScheduled", {
                "loan_id": loan, "installment_no": n, "due_date": START + dt.timedelta(days=4 + 30 * (n - 1) + i % 5),
                "principal_due": 100_000, "interest_due": 2_000, "fee_due": 0, "currency": "CNY",
            })
        if i % 3 == 0:
            publisher.publish("RepaymentReceived", {
                "loan_id": loan, "payment_id": f"PAY-{i}", "amount": 408_000, "currency": "CNY",
                "value_date": START, "channel": "AUTO_DEBIT",
            })
    publisher.flush()


def config(tmp_path: Path, ports: dict[str, int]) -> dict[str, Any]:
    def webhook(agency: str) -> dict[str, Any]:
        return {"type": "webhook", "url": f"http://127.0.0.1:{ports[agency]}/work-orders", "allow_insecure_http": True,
                "secret_env": f"{agency}_SECRET", "max_attempts": 3, "backoff_initial_seconds": 0.1}

    return {
        "internal_buckets": ["M1"],
        "agencies": [
            {"id": "AG1", "buckets": ["M2", "M3"], "capacity": 6, "weight": 2, "assignment_days": 20,
             "transport": webhook("AG1")},
            {"id": "AG2", "buckets": ["M2", "M3", "M4"], "capacity": 12, "weight": 1, "assignment_days": 30,
             "transport": webhook("AG2")},
            {"id": "AG3", "buckets": ["M3", "M4"], "capacity": 12, "weight": 1, "assignment_days": 30,
             "transport": {"type": "files", "outbox": str(tmp_path / "ag3" / "out"),
                           "inbox": str(tmp_path / "ag3" / "in"), "poll_seconds": 0.5}},
        ],
    }


def test_cases_go_to_one_agency_at_a_time_within_capacity_with_minimal_personal_data(
    make_settings: Any, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    ports = {"AG1": free_port(), "AG2": free_port()}
    settings: Settings = make_settings(config(tmp_path, ports), arrears_app_id=f"agapp-{unique}")
    create_topics(settings, settings.topics.specs(6, ["AG1", "AG2", "AG3"]) + internal_topic_specs(settings))
    env = env_for(settings, ARREARS_APP_ID=settings.arrears_app_id, ARREARS_DATA_DIR=str(tmp_path / "data"), **SECRETS)
    worker = WorkerProcess(env, free_port(), tmp_path).start()
    agencies = {a: HttpAgency(a, SECRETS[f"{a}_SECRET"], port=ports[a]).start() for a in ("AG1", "AG2")}
    adapters = [Adapter(settings, a, port=free_port()).start() for a in ("AG1", "AG2", "AG3")]
    try:
        worker.wait_ready()
        for adapter in adapters:
            adapter.wait_ready(30)
        loans = 24
        with LoanEventPublisher(settings) as publisher:
            publish_book(publisher, loans)
            day = START
            while day <= LAST_DAY:
                publisher.end_of_day(day)
                day += dt.timedelta(days=1)
        wait_until(lambda: worker.health()[1] and all(
            d == LAST_DAY.isoformat() for d in worker.health()[1]["business_dates"].values()
        ) and len(worker.health()[1]["business_dates"]) == 6, 120, message="the worker at the last day")

        cases = read_topic(settings, settings.topics.cases, min_count=1, idle=2.0)
        orders = {a: read_topic(settings, settings.topics.work_orders(a), min_count=1, idle=1.0)
                  for a in ("AG1", "AG2", "AG3")}

        # One active assignment per case at a time; capacity bounds the agencies' load over the whole
        # book at every moment. Assignments are made at ticks, after the tick's recalls, so events
        # ordered by time (recalls first on a tie) replay the load exactly.
        active: dict[str, str] = {}
        load: Counter[str] = Counter()
        peak: Counter[str] = Counter()
        moves = sorted((r for r in cases if r.name in ("CaseAssigned", "CaseRecalled")),
                       key=lambda r: (r.data["occurred_at"], r.name == "CaseAssigned", r.data["case_id"]))
        for record in moves:
            data, case_id = record.data, record.data["case_id"]
            if record.name == "CaseAssigned":
                assert case_id not in active, f"{case_id} assigned to {data['agency_id']} while held elsewhere"
                active[case_id] = data["agency_id"]
                load[data["agency_id"]] += 1
                peak[data["agency_id"]] = max(peak[data["agency_id"]], load[data["agency_id"]])
            else:
                assert active.pop(case_id) == data["agency_id"]
                load[data["agency_id"]] -= 1
        rules = settings.config.rules(6).allocation
        for agency, n in peak.items():
            assert n <= rules.terms(agency).capacity, (agency, n)
        assert peak["AG1"] == rules.terms("AG1").capacity  # filled to capacity, across partitions
        assert any(r.name == "CaseAssigned" for r in cases)
        assert {r.data["agency_id"] for r in cases if r.name == "CaseAssigned"} >= {"AG2", "AG3"}

        # Every open case outside M1 and not held is with an agency, unless every eligible one is full.
        snapshots = {r.key: r.data for r in read_topic(settings, settings.topics.case_state, min_count=1, idle=1.0)}
        for state in snapshots.values():
            if state["status"] == "CLOSED" or state["bucket"] == "M1":
                assert state["status"] != "ASSIGNED" or state["bucket"] != "M1"
                continue
            eligible = rules.eligible(state["bucket"])
            room = any(load[a.agency_id] < a.capacity for a in eligible)
            if eligible and room:
                assert state["status"] == "ASSIGNED", state
        for agency_orders in orders.values():
            assert all(r.data.get("bucket") != "M1" for r in agency_orders)

        # Delivered exactly once per Idempotency-Key, as the agencies saw it.
        for agency_id, agency in agencies.items():
            expected = {r.data["event_id"] for r in orders[agency_id]}
            agency.wait_for(lambda a, e=expected: set(a.accepted()) >= e, timeout=60)
            accepted = agency.accepted()
            assert set(accepted) == expected
            assert all(len(bodies) == 1 for bodies in accepted.values())
        wait_until(lambda: _csv_event_ids(tmp_path / "ag3" / "out") >= {r.data["event_id"] for r in orders["AG3"]},
                   60, message="AG3's outbox holding every work order")
        rows = _csv_event_ids(tmp_path / "ag3" / "out", keep_duplicates=True)
        assert len(rows) == len(set(rows))

        # No more personal data than the contract allows, in the bytes and in the webhook bodies.
        national_ids = {customer(i)["national_id"] for i in range(loans)}
        customer_ids = {f"CUST-{i:04d}" for i in range(loans)}
        contacts = [(customer(i)["emergency_contacts"][0]["name"], customer(i)["emergency_contacts"][0]["phone"])
                    for i in range(loans)]
        for agency_orders in orders.values():
            for record in agency_orders:
                assert_minimal_pii(record.value, national_ids=national_ids, customer_ids=customer_ids,
                                   emergency_contacts=contacts)
        for agency in agencies.values():
            for bodies in agency.accepted().values():
                assert_minimal_pii(bodies[0], national_ids=national_ids, customer_ids=customer_ids,
                                   emergency_contacts=contacts)
    finally:
        for adapter in adapters:
            adapter.stop()
        for agency in agencies.values():
            agency.stop()
        worker.stop()


def _csv_event_ids(outbox: Path, keep_duplicates: bool = False) -> Any:
    ids = []
    for path in sorted(outbox.glob("work-orders-*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            ids.extend(row["event_id"] for row in csv.DictReader(handle))
    return ids if keep_duplicates else set(ids)
