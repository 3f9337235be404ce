"""The worker's ops page at ``GET /`` in a real headless browser (Debian's chromium, driven by Playwright).

A small run: one worker with API tokens, an agency, three loans of which two fall behind. The page
must sign in from a link carrying a token (and drop it from the address bar), show the portfolio's
numbers (two open cases, their overdue total, the agency's assignments) and, on a case lookup,
render the case's timeline and its debtor masked; a wrong token is refused, a ``pii`` token sees
the debtor whole. Set ARREARS_SKIP_BROWSER=1 on a machine without chromium to skip this test
knowingly, or ARREARS_BROWSER=/path to use another Chrome; `make test` installs Debian's chromium
when it may (scripts/ensure-test-tools), so CI runs it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import env_for
from kafkatools import read_topic
from processes import WorkerProcess, get_json, run_cli, wait_until
from prometheus_client.parser import text_string_to_metric_families

from arrears.broker import free_port
from arrears.kafka import create_topics
from producers.publisher import LoanEventPublisher
from streams.app import internal_topic_specs

pytestmark = [pytest.mark.slow, pytest.mark.broker]
READER = "ops-page-reader-6b1f0c"
AUDITOR = "ops-page-auditor-2d9e4a"
API = {"tokens": [{"name": "ops", "token_env": "OPS_PAGE_READ", "scopes": ["read"]},
                  {"name": "compliance", "token_env": "OPS_PAGE_PII", "scopes": ["read", "pii"]}]}


# This machine's network is closed: without these, chromium keeps trying to reach Google's hosts.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _browser() -> str:
    """ARREARS_BROWSER when set, else chromium on PATH (scripts/ensure-test-tools looks the same way)."""
    named = os.environ.get("ARREARS_BROWSER")
    if named:
        if not (os.path.isfile(named) and os.access(named, os.X_OK)):
            pytest.fail(f"ARREARS_BROWSER={named} is not an executable file")
        return named
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("ARREARS_SKIP_BROWSER") == "1":
        pytest.skip("ARREARS_SKIP_BROWSER=1 and no chromium on this machine")
    pytest.fail("no chromium on this machine: `make test` installs Debian's chromium when it runs as root or with "
                "password-less sudo; otherwise `apt-get install chromium`, set ARREARS_BROWSER=/path/to/chrome, "
                "or set ARREARS_SKIP_BROWSER=1")


def _book(publisher: LoanEventPublisher) -> None:
    for n, paid in ((1, 0), (2, 10_000), (3, 30_000)):
        loan = f"OPS-L{n}"
        publisher.publish("LoanOpened", {
            "loan_id": loan, "customer_id": f"OC{n}", "product_code": "CASH", "currency": "CNY",
            "principal": 30_000, "opened_on": "2026-02-01",
            "customer": {"name": "测试", "phone": "13700000000", "national_id": "110101198001010000",
                         "province": "浙江省", "city": "杭州市", "timezone": "Asia/Shanghai"}})
        publisher.publish("InstallmentScheduled", {
            "loan_id": loan, "installment_no": 1, "due_date": "2026-03-01", "principal_due": 30_000,
            "interest_due": 0, "fee_due": 0, "currency": "CNY"})
        if paid:
            publisher.publish("RepaymentReceived", {
                "loan_id": loan, "payment_id": f"OPS-P{n}", "amount": paid, "currency": "CNY",
                "value_date": "2026-02-28", "channel": "APP", "reference": ""})
    publisher.flush()
    for day in ("2026-03-01", "2026-03-02", "2026-03-03"):
        publisher.end_of_day(day)


def _assert_metrics(url: str) -> None:
    """The worker's Prometheus page: open cases by bucket, consumer lag per input partition, latency."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    assert samples["arrears_open_cases{bucket=M1}"] == 2
    lag = {k: v for k, v in samples.items() if k.startswith("arrears_consumer_lag{")}
    assert len(lag) >= 6 and all(v == 0 for v in lag.values()), lag  # caught up: every partition at its end
    assert samples["arrears_processing_latency_seconds_count{}"] > 0
    assert samples["arrears_events_total{type=LoanOpened}"] == 3


def _assert_report(env: dict[str, str], out: Path) -> None:
    """``arrears report`` over the same topics: the two cases opened, both still open, in M1."""
    done = run_cli(["report", "--out", str(out), "--param", "run=ops page test"], env)
    assert done.returncode == 0, done.stderr
    html = out.read_text(encoding="utf-8")
    assert "<b>2</b><span>cases opened</span>" in html
    assert "<b>2</b><span>open now</span>" in html
    assert "ops page test" in html and "OPS-L1" not in html  # figures and parameters, no case list


def test_the_ops_page_shows_the_portfolio_and_a_case_timeline(
    make_settings: Any, unique: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = _browser()
    settings = make_settings({"api": API, "agencies": [{
        "id": "AG1", "buckets": ["M1", "M2"], "capacity": 10, "assignment_days": 30,
        "transport": {"type": "files", "outbox": str(tmp_path / "out"), "inbox": str(tmp_path / "in")},
    }]}, arrears_app_id=f"opsapp-{unique}")
    create_topics(settings, settings.topics.specs(6, ["AG1"]) + internal_topic_specs(settings))
    env = env_for(settings, ARREARS_APP_ID=settings.arrears_app_id, ARREARS_DATA_DIR=str(tmp_path / "d"),
                  OPS_PAGE_READ=READER, OPS_PAGE_PII=AUDITOR)
    worker = WorkerProcess(env, free_port(), tmp_path).start()
    publisher = LoanEventPublisher(settings)
    try:
        worker.wait_ready()
        _book(publisher)
        wait_until(lambda: get_json(f"{worker.url}/portfolio", token=READER)[1].get("open_cases") == 2, 60,
                   message="two open cases in the portfolio")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                # Without a token the page asks for one and shows no data.
                page.goto(worker.url + "/")
                expect(page).to_have_title("Arrears ops")
                expect(page.locator("#signin")).to_be_visible(timeout=15_000)
                expect(page.locator("#main")).to_be_hidden()
                page.fill("#token", "not-a-token-of-ours")
                page.locator("#signin-form").evaluate("form => form.requestSubmit()")
                expect(page.locator("#signin-error")).to_contain_text("unknown token", timeout=15_000)

                # The link the demo prints signs in; the token leaves the address bar at once.
                page.goto(f"{worker.url}/#token={READER}&case=OPS-L2:1")
                expect(page.locator("#signed-in")).to_have_text("signed in as ops (read)", timeout=15_000)
                assert READER not in page.url
                assert page.evaluate("sessionStorage.getItem('arrears.token')") == READER
                expect(page.locator("#business-date")).to_have_text("2026-03-03", timeout=15_000)
                expect(page.locator("#open-cases")).to_have_text("2", timeout=15_000)
                # 30,000 + 20,000 minor units overdue = ¥500.00
                expect(page.locator("#overdue-total")).to_contain_text("500.00")
                expect(page.locator("#agencies")).to_contain_text("AG1")
                expect(page.locator("#buckets")).to_contain_text("M1")

                # The case named in the link is looked up: its timeline, and its debtor masked.
                timeline = page.locator("#timeline li")
                expect(timeline.first).to_be_visible(timeout=15_000)
                text = page.locator("#timeline").inner_text()
                assert "CaseOpened" in text and "CaseAssigned" in text, text
                expect(page.locator("#case")).to_contain_text("OPS-L2")
                expect(page.locator("#debtor-table")).to_contain_text("测*", timeout=15_000)
                expect(page.locator("#debtor-table")).to_contain_text("137****0000")
                expect(page.locator("#debtor-table")).to_contain_text("**************0000")
                assert "测试" not in page.content() and "13700000000" not in page.content()

                # Reloading keeps the session; signing out forgets the token.
                page.reload()
                expect(page.locator("#signed-in")).to_have_text("signed in as ops (read)", timeout=15_000)
                page.click("#sign-out")
                expect(page.locator("#signin")).to_be_visible()
                assert page.evaluate("sessionStorage.getItem('arrears.token')") is None

                # A pii token sees the debtor whole (and the worker audits it).
                page.fill("#token", AUDITOR)
                page.locator("#signin-form").evaluate("form => form.requestSubmit()")
                expect(page.locator("#signed-in")).to_contain_text("compliance", timeout=15_000)
                page.fill("#case-id", "OPS-L2:1")
                page.locator("#lookup-form").evaluate("form => form.requestSubmit()")
                expect(page.locator("#debtor-table")).to_contain_text("测试", timeout=15_000)
                expect(page.locator("#debtor-table")).to_contain_text("110101198001010000")
                assert not errors, errors
            finally:
                browser.close()
        audited = read_topic(settings, settings.topics.audit, min_count=1, timeout=15)
        assert {(r.data["token_name"], r.data["loan_id"]) for r in audited} == {("compliance", "OPS-L2")}
        _assert_metrics(worker.url)
        _assert_report(env, tmp_path / "report.html")
    finally:
        publisher.close()
        worker.stop()
