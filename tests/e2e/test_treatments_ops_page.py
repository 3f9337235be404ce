"""The ops page shows a case's pause and settlement (SPEC §10) in a real headless browser.

One worker; two loans fall behind and go to an agency. The agency proposes a settlement on one
(above the approval threshold: pending) and the lender pauses the other, open-ended. Looking each
case up on the ops page shows its settlement, or that it is paused until resumed; the work queues
list the pending settlement and the paused loan, and a supervisor (``act``) approves the
settlement from the page (ApproveSettlement on ``collections.commands``, decided by the token).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import env_for
from kafkatools import read_topic
from processes import WorkerProcess, get_json, run_cli, wait_until
from test_ops_page import CHROMIUM_ARGS, _browser

from arrears.broker import free_port
from producers.publisher import LoanEventPublisher

pytestmark = [pytest.mark.slow, pytest.mark.broker]
READER = "treatments-page-reader-41c7"
SUPERVISOR = "treatments-page-supervisor-9e02"


def test_the_ops_page_shows_a_case_s_settlement_and_pause(make_settings: Any, unique: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = _browser()
    settings = make_settings({
        "api": {"tokens": [{"name": "ops", "token_env": "TRT_PAGE_READ", "scopes": ["read"]},
                           {"name": "supervisor", "token_env": "TRT_PAGE_ACT", "scopes": ["read", "act"]}]},
        "settlements": {"max_discount": {"M1": 0.5}, "approval_above": 0.1},
        "agencies": [{"id": "AG1", "buckets": ["M1"], "capacity": 10,
                      "transport": {"type": "files", "outbox": str(tmp_path / "out"), "inbox": str(tmp_path / "in")}}],
    }, arrears_app_id=f"trtpage-{unique}")
    env = env_for(settings, ARREARS_APP_ID=settings.arrears_app_id, ARREARS_DATA_DIR=str(tmp_path / "d"),
                  TRT_PAGE_READ=READER, TRT_PAGE_ACT=SUPERVISOR)
    run_cli(["topics"], env)
    worker = WorkerProcess(env, free_port(), tmp_path).start()
    publisher = LoanEventPublisher(settings)
    try:
        worker.wait_ready()
        for loan in ("TP-L1", "TP-L2"):
            publisher.publish("LoanOpened", {
                "loan_id": loan, "customer_id": f"C-{loan}", "product_code": "CASH", "currency": "CNY",
                "principal": 40_000, "opened_on": "2026-02-01",
                "customer": {"name": "测试", "phone": "13700000000", "national_id": "110101198001010000",
                             "province": "浙江省", "city": "杭州市", "timezone": "Asia/Shanghai"}})
            publisher.publish("InstallmentScheduled", {
                "loan_id": loan, "installment_no": 1, "due_date": "2026-03-01", "principal_due": 40_000,
                "interest_due": 0, "fee_due": 0, "currency": "CNY"})
        for day in ("2026-03-01", "2026-03-02"):
            publisher.end_of_day(day)
        wait_until(lambda: get_json(f"{worker.url}/cases/TP-L1:1", token=READER)[1].get("status") == "ASSIGNED",
                   60, message="TP-L1's case with the agency")
        case = get_json(f"{worker.url}/cases/TP-L1:1", token=READER)[1]
        publisher.publish("SettlementProposed", {
            "agency_id": "AG1", "case_id": "TP-L1:1", "work_order_id": case["work_order_id"], "amount": 30_000,
            "pay_by": "2026-03-20", "occurred_at": dt.datetime.now(dt.UTC)}, wait=True)
        run_cli(["pause", "TP-L2", "--from", "2026-03-01", "--reason", "flood", "--by", "relief-desk"], env)
        wait_until(lambda: get_json(f"{worker.url}/cases/TP-L2:1/treatments", token=READER)[1]["paused_until"]
                   == "9999-12-31", 30, message="TP-L2 paused")
        wait_until(lambda: (get_json(f"{worker.url}/cases/TP-L1:1/treatments", token=READER)[1]["settlement"]
                            or {}).get("status") == "PENDING", 30, message="TP-L1's settlement pending")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"{worker.url}/#token={READER}&case=TP-L1:1")
                table = page.locator("#treatments-table")
                expect(table).to_contain_text("TP-L1:1:S1 PENDING", timeout=15_000)
                expect(table).to_contain_text("¥300.00 by 2026-03-20")
                expect(table).to_contain_text("25.0%")  # 1 - 30,000 / 40,000
                expect(table).to_contain_text("no")  # not paused
                page.fill("#case-id", "TP-L2:1")
                page.locator("#lookup-form").evaluate("form => form.requestSubmit()")
                expect(table).to_contain_text("yes, until resumed", timeout=15_000)
                assert "TP-L1:1:S1" not in table.inner_text()
                # The work queues: the settlement waits for a person, the loan is paused.
                settlements = page.locator("#queue-settlements")
                expect(settlements).to_contain_text("TP-L1:1:S1", timeout=15_000)
                expect(settlements).to_contain_text("25.0%")
                expect(settlements.locator("button")).to_have_count(0)  # "read" cannot decide
                paused = page.locator("#queue-paused")
                expect(paused).to_contain_text("TP-L2")
                expect(paused).to_contain_text("until resumed")
                # The supervisor (act) approves it from the page: the token's name decided.
                page.click("#sign-out")
                page.goto(f"{worker.url}/#token={SUPERVISOR}")
                expect(page.locator("#signed-in")).to_contain_text("supervisor", timeout=15_000)
                settlements.locator("button.settlement-approve").click()
                status = page.locator("#action-status")
                expect(status).to_contain_text("ApproveSettlement published for TP-L1:1:S1 by supervisor",
                                               timeout=20_000)
                expect(settlements.locator(".count")).to_have_text("0", timeout=20_000)
                assert not errors, errors
            finally:
                browser.close()
        commands = read_topic(settings, settings.topics.commands, min_count=2, timeout=15)
        approvals = [(r.data["settlement_id"], r.data["decided_by"]) for r in commands if r.name == "ApproveSettlement"]
        assert approvals == [("TP-L1:1:S1", "supervisor")]
        wait_until(lambda: get_json(f"{worker.url}/cases/TP-L1:1/treatments", token=READER)[1]["settlement"]
                   ["status"] == "APPROVED", 30, message="TP-L1's settlement approved")
        act = {"Authorization": f"Bearer {SUPERVISOR}"}
        again = httpx.post(f"{worker.url}/cases/TP-L1:1/settlement/reject", headers=act, timeout=10)
        assert again.status_code == 409 and "no settlement pending" in again.json()["error"], again.text
        read_only = httpx.post(f"{worker.url}/cases/TP-L1:1/settlement/approve",
                               headers={"Authorization": f"Bearer {READER}"}, timeout=10)
        assert read_only.status_code == 403, read_only.text
    finally:
        publisher.close()
        worker.stop()
