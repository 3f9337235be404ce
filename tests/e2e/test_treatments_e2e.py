"""Treatments and agency economics (SPEC §10) end to end on the embedded broker, through the CLI.

An agency holding three cases reports through its adapter's ``/results``: one settlement within
policy, paid and so fulfilled (the case closes PAID_OFF); one above the approval threshold,
approved by the lender's ``arrears settlement approve`` (never by the agency) and then broken.
The lender pauses the third loan backdated with ``arrears pause`` (its case is recalled) and
resumes it with ``arrears resume`` (the case goes back to an agency). Repayments valued while the
agency held the cases are its recoveries, one reversal takes one back, and ``arrears statement``
writes the month from ``collections.recoveries``: the same sums as the query API's KPIs. Finally a
fresh deployment replaying the same topics emits the same records.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from conftest import env_for
from kafkatools import read_topic
from processes import WorkerProcess, get_json, run_cli, wait_until

from arrears.broker import free_port
from arrears.settings import Settings
from consumers.adapter import Adapter
from consumers.signing import sign
from consumers.simagency import HttpAgency
from producers.publisher import LoanEventPublisher
from schemas import default_catalog, to_json

pytestmark = [pytest.mark.slow, pytest.mark.broker]
SECRET = "ag1-treatments-e2e"
PARTITIONS = 6
CONFIG_TEMPLATE: dict[str, Any] = {
    "internal_buckets": [],
    "settlements": {"max_discount": {"M1": 0.30, "M2": 0.40}, "approval_above": 0.05},
}
LOANS = {"TRT-L1": 100_000, "TRT-L2": 50_000, "TRT-L3": 30_000}


def config(agency_port: int) -> dict[str, Any]:
    return {**CONFIG_TEMPLATE, "agencies": [{
        "id": "AG1", "buckets": ["M1", "M2"], "capacity": 10, "assignment_days": 60,
        "commission": {"M1": 0.15, "M2": 0.2},
        "transport": {"type": "webhook", "url": f"http://127.0.0.1:{agency_port}/wo", "allow_insecure_http": True,
                      "secret_env": "AG1_SECRET"},
    }]}


def post(adapter: Adapter, results: list[dict[str, Any]]) -> httpx.Response:
    body = json.dumps(results).encode()
    return httpx.post(f"{adapter.url}/results", content=body, timeout=30,
                      headers={"Content-Type": "application/json",
                               "X-Arrears-Signature": sign(SECRET, body, int(time.time()))})


def proposal(n: int, work_order: dict[str, Any], amount: int, pay_by: str) -> dict[str, Any]:
    # Made now: the work order began when the worker applied its tick, which was published now.
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {"type": "SettlementProposed", "event_id": f"settle-{n}", "occurred_at": now,
            "agency_id": "AG1", "case_id": work_order["case_id"], "work_order_id": work_order["work_order_id"],
            "amount": amount, "pay_by": pay_by}


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "arrears", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def treatments(worker: WorkerProcess, case_id: str) -> dict[str, Any]:
    status, body = get_json(f"{worker.url}/cases/{case_id}/treatments")
    assert status == 200, body
    return dict(body)


def records(settings: Settings, base: str, min_count: int = 1, since: dict[int, int] | None = None
            ) -> list[dict[str, Any]]:
    """The topic's records in JSON form (only those at or after *since*, per partition, when given)."""
    catalog = default_catalog()
    return [to_json(catalog, r.name, r.data)
            for r in read_topic(settings, settings.topics.name(base), min_count=min_count, idle=2.0)
            if since is None or r.offset >= since.get(r.partition, 0)]


def end_offsets(settings: Settings, base: str) -> dict[int, int]:
    topic = settings.topics.name(base)
    consumer = Consumer({**settings.kafka_config(), "group.id": f"trt-ends-{time.monotonic_ns()}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()


def by_id(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for record in found:
        assert out.setdefault(record["event_id"], record) == record, record["type"]
    return out


def last_states(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    last: dict[str, dict[str, Any]] = {}
    for record in by_id(found).values():
        if record["case_id"] not in last or last[record["case_id"]]["version"] < record["version"]:
            last[record["case_id"]] = record
    return last


def caught_up(worker: WorkerProcess, day: str) -> bool:
    status, body = worker.health()
    return status == 200 and len(body["business_dates"]) == PARTITIONS and body["held_messages"] == 0 and all(
        d == day for d in body["business_dates"].values())


def test_settlements_pauses_and_commission_through_the_cli_and_a_replay_gives_the_same_records(
    make_settings: Any, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AG1_SECRET", SECRET)
    agency_port = free_port()
    settings = make_settings(config(agency_port), arrears_app_id=f"trt-{unique}")
    env = env_for(settings, ARREARS_APP_ID=settings.arrears_app_id, ARREARS_DATA_DIR=str(tmp_path / "d"),
                  AG1_SECRET=SECRET)
    run_cli(["topics"], env)
    worker = WorkerProcess(env, free_port(), tmp_path).start()
    agency = HttpAgency("AG1", SECRET, port=agency_port, path="/wo").start()
    adapter = Adapter(settings, "AG1", port=free_port()).start()
    publisher = LoanEventPublisher(settings)
    url = ["--url", worker.url]
    try:
        worker.wait_ready()
        adapter.wait_ready(30)
        for i, (loan, amount) in enumerate(LOANS.items()):
            publisher.publish("LoanOpened", {
                "loan_id": loan, "customer_id": f"TRT-C{i}", "product_code": "CASH", "currency": "CNY",
                "principal": amount, "opened_on": "2026-02-01",
                "customer": {"name": "赵六", "phone": "13700000002", "national_id": "110101198001015678",
                             "province": "北京市", "city": "北京市", "timezone": "Asia/Shanghai"}})
            publisher.publish("InstallmentScheduled", {
                "loan_id": loan, "installment_no": 1, "due_date": "2026-03-01", "principal_due": amount,
                "interest_due": 0, "fee_due": 0, "currency": "CNY"})
        for day in ("2026-03-01", "2026-03-02"):
            publisher.end_of_day(day)
        assert agency.wait_for(lambda a: len(a.accepted()) == 3, 60), "three work orders expected"
        orders = {o["loan_id"]: o for o in (json.loads(b[0]) for b in agency.accepted().values())}
        assert orders["TRT-L1"]["settlement_policy"] == {"max_discount": 0.3, "approval_above": 0.05,
                                                         "outstanding_amount": 100_000, "min_amount": 70_000}

        # A repayment valued while the agency held the case: its recovery once its day is over.
        publisher.publish("RepaymentReceived", {"loan_id": "TRT-L1", "payment_id": "TRT-P1", "amount": 10_000,
                                                "currency": "CNY", "value_date": "2026-03-02",
                                                "channel": "BANK_TRANSFER"})
        publisher.end_of_day("2026-03-03")

        # Settlements through the adapter: 5% (policy approves) and 20% (a person must decide).
        answer = post(adapter, [proposal(1, orders["TRT-L1"], 85_500, "2026-03-10"),
                                proposal(2, orders["TRT-L2"], 40_000, "2026-03-06")])
        assert answer.status_code == 202, answer.text
        wait_until(lambda: (treatments(worker, "TRT-L2:1")["settlement"] or {}).get("status") == "PENDING", 30,
                   message="TRT-L2's settlement pending")
        assert treatments(worker, "TRT-L1:1")["settlement"]["status"] == "APPROVED"

        # Maker-checker: the agency cannot approve its own proposal, a person can.
        refused = cli(["settlement", "approve", "TRT-L2:1", "--by", "AG1", *url], env)
        assert refused.returncode == 2 and "cannot decide its own proposal" in refused.stderr
        publisher.publish("ApproveSettlement", {"loan_id": "TRT-L2", "case_id": "TRT-L2:1",
                                                "settlement_id": "TRT-L2:1:S1", "decided_by": "AG1"}, wait=True)
        approved = cli(["settlement", "approve", "TRT-L2:1", "--by", "credit-officer", *url], env)
        assert approved.returncode == 0, approved.stderr
        wait_until(lambda: treatments(worker, "TRT-L2:1")["settlement"]["approved_by"] == "credit-officer", 30,
                   message="TRT-L2's settlement approved")

        # The debtor pays TRT-L1's settlement: fulfilled, the case closes PAID_OFF.
        publisher.publish("RepaymentReceived", {"loan_id": "TRT-L1", "payment_id": "TRT-P2", "amount": 85_500,
                                                "currency": "CNY", "value_date": "2026-03-03",
                                                "channel": "AGENCY"}, wait=True)

        # A hardship the lender learned of late: paused from the due date, recalled at once; then resumed.
        paused = cli(["pause", "TRT-L3", "--from", "2026-03-01", "--reason", "hospital stay", "--by", "hardship-desk"],
                     env)
        assert paused.returncode == 0, paused.stderr
        wait_until(lambda: treatments(worker, "TRT-L3:1")["paused_until"] == "9999-12-31", 30, message="paused")
        assert get_json(f"{worker.url}/cases/TRT-L3:1")[1]["status"] == "OPEN"
        publisher.end_of_day("2026-03-05")
        assert cli(["resume", "TRT-L3", "--on", "2026-03-04", "--by", "hardship-desk"], env).returncode == 0
        wait_until(lambda: treatments(worker, "TRT-L3:1")["paused_until"] is None, 30, message="resumed")

        # The first repayment bounces; TRT-L2's pay_by passes unpaid.
        publisher.publish("RepaymentReversed", {"loan_id": "TRT-L1", "payment_id": "TRT-P1", "reason": "NSF"})
        publisher.end_of_day("2026-03-07")
        wait_until(lambda: caught_up(worker, "2026-03-07"), 60, message="every partition at 2026-03-07")
        # placement gives the resumed case back to an agency at the next tick (SPEC §5)
        wait_until(lambda: get_json(f"{worker.url}/cases/TRT-L3:1")[1]["status"] == "ASSIGNED", 30,
                   message="TRT-L3 back with the agency")

        cases = records(settings, "collections.cases", min_count=20)
        kinds = [(r["type"], r.get("case_id")) for r in cases]
        assert ("SettlementApproved", "TRT-L1:1") in kinds and ("SettlementFulfilled", "TRT-L1:1") in kinds
        (closed,) = [r for r in cases if r["type"] == "CaseClosed"]
        assert (closed["case_id"], closed["reason"], closed["settlement_id"]) == ("TRT-L1:1", "PAID_OFF",
                                                                                 "TRT-L1:1:S1")
        (broken,) = [r for r in cases if r["type"] == "SettlementBroken"]
        assert (broken["case_id"], broken["paid_amount"], broken["business_date"]) == ("TRT-L2:1", 0, "2026-03-07")
        (paused_record,) = [r for r in cases if r["type"] == "DelinquencyPaused"]
        assert (paused_record["case_id"], paused_record["dpd"], paused_record["requested_by"]) == (
            "TRT-L3:1", 0, "hardship-desk")
        (resumed,) = [r for r in cases if r["type"] == "DelinquencyResumed"]
        assert (resumed["on_date"], resumed["dpd"]) == ("2026-03-04", 1)  # 2026-03-04 counts again
        recall = [r for r in cases if r["type"] == "CaseRecalled" and r["case_id"] == "TRT-L3:1"]
        assert [r["reason"] for r in recall] == ["HOLD"]
        dead = read_topic(settings, settings.topics.dlq(settings.topics.commands), min_count=1, idle=1.0,
                          decode=False)
        assert [r.headers["dlq.reason"] for r in dead] == [b"MAKER_CHECKER"]

        recoveries = records(settings, "collections.recoveries", min_count=3)
        assert sorted((r["type"], r["payment_id"], r["amount"], r["commission"]) for r in recoveries) == [
            ("RecoveryAttributed", "TRT-P1", 10_000, 1_500), ("RecoveryAttributed", "TRT-P2", 85_500, 12_825),
            ("RecoveryReversed", "TRT-P1", -10_000, -1_500)]

        # The statement: the same sums as the topic and the workers' KPIs.
        out = tmp_path / "AG1-2026-03.csv"
        done = cli(["statement", "--agency", "AG1", "--month", "2026-03", "--output", str(out)], env)
        assert done.returncode == 0, done.stderr
        rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
        assert [(r["kind"], r["payment_id"]) for r in rows[:-1]] == [
            ("recovery", "TRT-P1"), ("recovery", "TRT-P2"), ("reversal", "TRT-P1")]
        total = rows[-1]
        kpis = get_json(f"{worker.url}/agencies/AG1/kpis")[1]
        assert (int(total["amount"]), int(total["commission"])) == (85_500, 12_825) == (
            kpis["recoveries_attributed"], kpis["commission"])
        page = tmp_path / "AG1-2026-03.html"
        assert cli(["statement", "--agency", "AG1", "--month", "2026-03", "--format", "html", "--output",
                    str(page)], env).returncode == 0
        assert "¥855.00" in page.read_text(encoding="utf-8") and "¥128.25" in page.read_text(encoding="utf-8")
        again = cli(["statement", "--agency", "AG1", "--month", "2026-03"], env)
        assert again.stdout == out.read_text(encoding="utf-8")  # the same topic, the same statement
    finally:
        publisher.close()
        adapter.stop()
        agency.stop()
        worker.stop()

    # A fresh deployment replays the same logs: the same records, the same final case states.
    bases = ("collections.cases", "collections.recoveries", "collections.case-state")
    live = {base: by_id(records(settings, base)) for base in bases}
    marks = {base: end_offsets(settings, base) for base in bases}
    replay_env = {**env, "ARREARS_APP_ID": f"{settings.arrears_app_id}-replay",
                  "ARREARS_DATA_DIR": str(tmp_path / "replay")}
    run_cli(["topics"], replay_env)
    replay = WorkerProcess(replay_env, free_port(), tmp_path, name="replay").start()
    try:
        replay.wait_ready()
        wait_until(lambda: caught_up(replay, "2026-03-07"), 120, message="the replay at 2026-03-07")
        time.sleep(2)
    finally:
        replay.stop()
    for base in ("collections.cases", "collections.recoveries"):
        assert by_id(records(settings, base, since=marks[base])) == live[base], base
    assert last_states(records(settings, "collections.case-state", since=marks["collections.case-state"])) == \
        last_states(list(live["collections.case-state"].values()))
