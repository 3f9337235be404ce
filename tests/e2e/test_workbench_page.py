"""The ops page as a collections supervisor's workbench, in a real headless browser (Debian's chromium).

One worker with three tokens (``ops``: read; ``compliance``: read and pii; ``supervisor``: read
and act) and a scripted story of three loans: WB-L1's promise breaks and its agency calls at
midnight (a violation), WB-L2 is disputed (on hold), WB-L3 sits in M4 whose only agency is full
(waiting for an agency). The page must show each in its queue, draw the charts and redraw them
after a tick, find a case, a loan and a customer (with the debtor's contacts over all its loans;
and, for ``pii``, a phone: audited), refuse the
release to a token without ``act`` (403) and, for ``supervisor``, publish ReleaseCase on
``collections.commands`` naming the token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import env_for
from kafkatools import read_topic
from processes import WorkerProcess, get_json, wait_until
from test_ops_page import CHROMIUM_ARGS, _browser

from arrears.broker import free_port
from arrears.kafka import create_topics
from producers.publisher import LoanEventPublisher
from streams.app import internal_topic_specs

pytestmark = [pytest.mark.slow, pytest.mark.broker]
READER = "workbench-reader-7c2e91"
AUDITOR = "workbench-auditor-4b8d10"
SUPERVISOR = "workbench-supervisor-a3f5e2"
API = {"tokens": [{"name": "ops", "token_env": "WB_READ", "scopes": ["read"]},
                  {"name": "compliance", "token_env": "WB_PII", "scopes": ["read", "pii"]},
                  {"name": "supervisor", "token_env": "WB_ACT", "scopes": ["read", "act"]}]}
AGENCIES = [
    {"id": "AG1", "buckets": ["M2", "M3"], "capacity": 10, "assignment_days": 30},
    {"id": "AG2", "buckets": ["M4"], "capacity": 0, "assignment_days": 30},  # always full
]
PHONE = "13911112222"


def _ticks(publisher: LoanEventPublisher, *days: str) -> None:
    for day in days:
        publisher.end_of_day(day, occurred_at=f"{day}T00:00:00Z")


def _story(publisher: LoanEventPublisher, worker: WorkerProcess) -> None:
    for loan, customer, due in (("WB-L1", "WC1", "2026-01-10"), ("WB-L2", "WC2", "2026-01-10"),
                                ("WB-L3", "WC1", "2025-11-10")):
        publisher.publish("LoanOpened", {
            "loan_id": loan, "customer_id": customer, "product_code": "CASH", "currency": "CNY",
            "principal": 40_000, "opened_on": "2025-10-01", "occurred_at": "2025-10-01T00:00:00Z",
            "customer": {"name": "赵六" if customer == "WC1" else "钱七", "phone": PHONE if customer == "WC1"
                         else "13933334444", "national_id": "110101198001014321", "province": "江苏省",
                         "city": "南京市", "timezone": "Asia/Shanghai"}})
        publisher.publish("InstallmentScheduled", {
            "loan_id": loan, "installment_no": 1, "due_date": due, "principal_due": 20_000, "interest_due": 0,
            "fee_due": 0, "currency": "CNY", "occurred_at": "2025-10-01T00:00:01Z"})
    publisher.flush()
    _ticks(publisher, "2026-02-14")
    orders = {}
    for loan in ("WB-L1", "WB-L2"):
        orders[loan] = wait_until(lambda loan=loan: get_json(f"{worker.url}/cases/{loan}:1", token=READER)[1]
                                  .get("work_order_id"), 60, message=f"{loan} assigned")
    publisher.publish("PromiseToPay", {
        "agency_id": "AG1", "case_id": "WB-L1:1", "work_order_id": orders["WB-L1"], "promised_amount": 20_000,
        "promised_date": "2026-02-16", "occurred_at": "2026-02-14T03:00:00Z"})
    publisher.publish("DisputeRaised", {
        "agency_id": "AG1", "case_id": "WB-L2:1", "work_order_id": orders["WB-L2"], "details": "not my loan",
        "occurred_at": "2026-02-14T04:00:00Z"})
    publisher.flush()
    _ticks(publisher, "2026-02-15", "2026-02-16", "2026-02-17")
    wait_until(lambda: get_json(f"{worker.url}/portfolio", token=READER)[1].get("business_date") == "2026-02-17", 60,
               message="business date 2026-02-17")
    publisher.publish("ContactAttempted", {  # 00:00 in Nanjing: inside the quiet hours
        "agency_id": "AG1", "case_id": "WB-L1:1", "work_order_id": orders["WB-L1"],
        "attempted_at": "2026-02-17T16:00:00Z", "channel": "CALL", "party": "DEBTOR",
        "outcome": "RIGHT_PARTY_CONTACT", "occurred_at": "2026-02-17T16:00:05Z"}, wait=True)


def _queues(worker: WorkerProcess) -> dict[str, Any]:
    return get_json(f"{worker.url}/workbench/queues", token=READER)[1]["queues"]


def test_the_workbench_shows_the_queues_draws_the_charts_searches_and_releases_a_hold(
    make_settings: Any, unique: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = _browser()
    agencies = [{**a, "transport": {"type": "files", "outbox": str(tmp_path / a["id"] / "out"),
                                    "inbox": str(tmp_path / a["id"] / "in")}} for a in AGENCIES]
    settings = make_settings({"api": API, "agencies": agencies}, arrears_app_id=f"wbapp-{unique}")
    create_topics(settings, settings.topics.specs(6, ["AG1", "AG2"]) + internal_topic_specs(settings))
    env = env_for(settings, ARREARS_APP_ID=settings.arrears_app_id, ARREARS_DATA_DIR=str(tmp_path / "d"),
                  WB_READ=READER, WB_PII=AUDITOR, WB_ACT=SUPERVISOR)
    worker = WorkerProcess(env, free_port(), tmp_path).start()
    publisher = LoanEventPublisher(settings)
    try:
        worker.wait_ready()
        _story(publisher, worker)
        wait_until(lambda: all(_queues(worker)[q]["count"] == 1
                               for q in ("broken_promises", "violations", "unassigned", "held")), 60,
                   message="one case in each queue")

        # Actions need the act scope: 403 for read and pii tokens, whatever the case.
        for token in (READER, AUDITOR):
            refused = httpx.post(f"{worker.url}/cases/WB-L2:1/release", json={"reason": "x"},
                                 headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert refused.status_code == 403 and "'act' scope" in refused.json()["error"], refused.text

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"{worker.url}/#token={READER}")
                expect(page.locator("#signed-in")).to_have_text("signed in as ops (read)", timeout=15_000)

                # The queues, each with its count and links to the case.
                broken = page.locator("#queue-broken_promises")
                expect(broken.locator(".count")).to_have_text("1", timeout=15_000)
                expect(broken).to_contain_text("WB-L1:1")
                expect(broken).to_contain_text("2026-02-17")
                violations = page.locator("#queue-violations")
                expect(violations).to_contain_text("QUIET_HOURS")
                expect(violations.locator("table").first).to_contain_text("AG1")
                expect(page.locator("#queue-unassigned")).to_contain_text("WB-L3:1")
                expect(page.locator("#queue-unassigned")).to_contain_text("every agency serving M4 is at capacity")
                held = page.locator("#queue-held")
                expect(held).to_contain_text("WB-L2:1")
                expect(held).to_contain_text("DISPUTE")
                expect(held.locator("button")).to_have_count(0)  # no act scope, no release button
                expect(page.locator("#act-note")).to_have_text("actions need a token with the act scope")
                expect(page.locator("#queue-settlements .count")).to_have_text("0")  # none proposed in this story

                # A link in a queue opens the case.
                broken.locator("a.case", has_text="WB-L1:1").click()
                expect(page.locator("#case")).to_contain_text("ASSIGNED", timeout=15_000)

                # Charts: inline SVG, redrawn after a tick without reloading the page.
                chart = page.locator("#chart-cases svg")
                expect(chart).to_have_attribute("data-last-date", "2026-02-17", timeout=15_000)
                expect(chart.locator("path[data-series=M2]")).to_have_count(1)
                expect(page.locator("#chart-rolls svg rect").first).to_be_visible()
                expect(page.locator("#chart-agencies svg path[data-series=AG1]")).to_have_count(1)
                page.evaluate("document.body.dataset.marker = 'not reloaded'")
                _ticks(publisher, "2026-02-18")
                expect(chart).to_have_attribute("data-last-date", "2026-02-18", timeout=20_000)
                assert page.evaluate("document.body.dataset.marker") == "not reloaded"

                # Search: a customer id gives the debtor view with all the debtor's cases; a loan id
                # its customer's; a case id the case. Personal data stays masked for "read".
                page.fill("#case-id", "WC1")
                page.locator("#lookup-form").evaluate("form => form.requestSubmit()")
                debtor = page.locator("#debtor-cases")
                expect(debtor).to_contain_text("WB-L1:1", timeout=15_000)
                expect(debtor).to_contain_text("WB-L3:1")
                expect(page.locator("#debtor-view #debtor-table")).to_contain_text("赵*")
                # ...with the debtor's agency and every contact about any of its loans, judged.
                expect(page.locator("#debtor-view")).to_contain_text("worked by AG1")
                contacts = page.locator("#debtor-contacts")
                expect(contacts).to_contain_text("QUIET_HOURS")
                expect(contacts).to_contain_text("WB-L1:1")
                assert PHONE not in page.content()
                page.fill("#case-id", "WB-L2")
                page.locator("#lookup-form").evaluate("form => form.requestSubmit()")
                expect(page.locator("#debtor-view")).to_contain_text("Debtor WC2", timeout=15_000)
                page.fill("#case-id", "WB-L3:1")
                page.locator("#lookup-form").evaluate("form => form.requestSubmit()")
                expect(page.locator("#case")).to_contain_text("M4", timeout=15_000)
                assert page.locator("#search-by option[value=phone]").is_disabled()

                # A pii token searches by phone: the debtor whole, and the access audited.
                page.click("#sign-out")
                page.goto(f"{worker.url}/#token={AUDITOR}")
                expect(page.locator("#signed-in")).to_contain_text("compliance", timeout=15_000)
                page.select_option("#search-by", "phone")
                page.fill("#case-id", "139 1111 2222")
                page.locator("#lookup-form").evaluate("form => form.requestSubmit()")
                expect(page.locator("#debtor-view #debtor-table")).to_contain_text(PHONE, timeout=15_000)
                expect(page.locator("#debtor-cases")).to_contain_text("WB-L3:1")

                # The supervisor releases the hold from the page.
                page.click("#sign-out")
                page.goto(f"{worker.url}/#token={SUPERVISOR}")
                expect(page.locator("#signed-in")).to_have_text("signed in as supervisor (act, read)",
                                                                timeout=15_000)
                held.locator("button", has_text="release").click()
                held.locator("input.release-reason").fill("fee explained to the debtor")
                held.locator("button.release-confirm").click()
                status = page.locator("#action-status")
                expect(status).to_contain_text("ReleaseCase published for WB-L2:1", timeout=20_000)
                expect(status).to_contain_text("by supervisor")
                expect(held.locator(".count")).to_have_text("0", timeout=20_000)
                page.screenshot(path=str(tmp_path / "workbench.png"), full_page=True)
                assert not errors, errors
            finally:
                browser.close()

        debtor = get_json(f"{worker.url}/customers/WC1", token=READER)[1]
        assert (debtor["open_cases"], debtor["agencies"]) == (2, ["AG1"])
        (call,) = debtor["contacts"]
        assert (call["case_id"], call["loan_id"], call["violations"], call["in_budget"]) == (
            "WB-L1:1", "WB-L1", ["QUIET_HOURS"], True)
        commands = read_topic(settings, settings.topics.commands, min_count=1, timeout=15)
        assert [(r.name, r.data["case_id"], r.data["requested_by"], r.data["reason"]) for r in commands] == [
            ("ReleaseCase", "WB-L2:1", "supervisor", "fee explained to the debtor")]
        audited = read_topic(settings, settings.topics.audit, min_count=2, timeout=15)
        assert {(r.data["token_name"], r.data["customer_id"]) for r in audited} == {("compliance", "WC1")}
        assert any(r.data["endpoint"] == "GET /search?by=phone" for r in audited)
        wait_until(lambda: get_json(f"{worker.url}/cases/WB-L2:1", token=READER)[1]["status"] != "HOLD", 30,
                   message="the hold lifted")
        act = {"Authorization": f"Bearer {SUPERVISOR}"}
        again = httpx.post(f"{worker.url}/cases/WB-L2:1/release", json={"reason": "again"}, headers=act, timeout=10)
        assert again.status_code == 409 and "not on hold" in again.json()["error"], again.text
        no_reason = httpx.post(f"{worker.url}/cases/WB-L3:1/release", json={}, headers=act, timeout=10)
        assert no_reason.status_code == 400 and "reason" in no_reason.json()["error"]
    finally:
        publisher.close()
        worker.stop()
