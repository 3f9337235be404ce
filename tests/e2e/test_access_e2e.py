"""The query API's access model on a real worker (SPEC §7): tokens, scopes, masking, audit, binding.

One worker with three tokens (``read``; ``read`` + ``pii``; ``act`` only) over a small book whose
customers have made-up personal data, and one worker without tokens, which must listen on the
loopback address only. Listening addresses are read from ``/proc/net/tcp``: no traffic leaves
the machine to find out.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import env_for
from kafkatools import read_topic
from processes import WorkerProcess, get_json, wait_until

from arrears.broker import free_port
from arrears.kafka import create_topics
from producers.publisher import LoanEventPublisher
from schemas import get_codec, to_json
from streams.app import internal_topic_specs

pytestmark = [pytest.mark.slow, pytest.mark.broker]

READER = "reader-token-4f1c9a0e7b2d"
AUDITOR = "auditor-token-8e2b7c1d5a90"
ACTOR = "actor-token-1a2b3c4d5e6f"
TOKENS = {"ARREARS_T_READ": READER, "ARREARS_T_PII": AUDITOR, "ARREARS_T_ACT": ACTOR}
API = {"tokens": [
    {"name": "ops", "token_env": "ARREARS_T_READ", "scopes": ["read"]},
    {"name": "compliance", "token_env": "ARREARS_T_PII", "scopes": ["read", "pii"]},
    {"name": "release-bot", "token_env": "ARREARS_T_ACT", "scopes": ["act"]},
]}
NAME, PHONE, NATIONAL_ID = "欧阳测试", "13712345678", "11010119800101123X"
CONTACT = ("李测试", "13900001111")


def listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses a socket LISTENs on at *port*, from /proc/net/tcp (this machine only)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, state = fields[1], fields[3]
        host, port_hex = address.split(":")
        if state == "0A" and int(port_hex, 16) == port:
            found.add(".".join(str(int(host[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def _book(publisher: LoanEventPublisher) -> None:
    for n in (1, 2):
        publisher.publish("LoanOpened", {
            "loan_id": f"ACC-L{n}", "customer_id": f"ACC-C{n}", "product_code": "CASH", "currency": "CNY",
            "principal": 30_000, "opened_on": "2026-02-01",
            "customer": {"name": NAME, "phone": PHONE, "national_id": NATIONAL_ID, "province": "北京市",
                         "city": "北京市", "timezone": "Asia/Shanghai",
                         "emergency_contacts": [{"name": CONTACT[0], "phone": CONTACT[1], "relation": "spouse"}]}})
        publisher.publish("InstallmentScheduled", {
            "loan_id": f"ACC-L{n}", "installment_no": 1, "due_date": "2026-03-01", "principal_due": 30_000,
            "interest_due": 0, "fee_due": 0, "currency": "CNY"})
    publisher.flush()
    for day in ("2026-03-01", "2026-03-02", "2026-03-03"):
        publisher.end_of_day(day)


@pytest.fixture
def secured(make_settings: Any, unique: str, tmp_path: Path) -> Any:
    settings = make_settings({"api": API, "agencies": [{
        "id": "AG1", "buckets": ["M1"], "capacity": 10, "assignment_days": 30,
        "transport": {"type": "files", "outbox": str(tmp_path / "out"), "inbox": str(tmp_path / "in")},
    }]}, arrears_app_id=f"accapp-{unique}")
    create_topics(settings, settings.topics.specs(6, ["AG1"]) + internal_topic_specs(settings))
    env = env_for(settings, ARREARS_APP_ID=settings.arrears_app_id, ARREARS_DATA_DIR=str(tmp_path / "d"), **TOKENS)
    worker = WorkerProcess(env, free_port(), tmp_path).start()
    other = WorkerProcess(env, free_port(), tmp_path, name="other").start()
    publisher = LoanEventPublisher(settings)
    try:
        worker.wait_ready()
        other.wait_ready()
        wait_until(lambda: all(w.health()[0] == 200 and w.health()[1]["partitions"] for w in (worker, other)), 60,
                   message="the partitions shared by the two workers")
        _book(publisher)
        wait_until(lambda: get_json(f"{worker.url}/portfolio", token=READER)[1].get("open_cases") == 2, 60,
                   message="two open cases")
        yield settings, env, worker, other
    finally:
        publisher.close()
        other.stop()
        worker.stop()


def test_tokens_scopes_masking_and_the_audit_of_unmasked_answers(secured: Any) -> None:
    settings, env, worker, other = secured
    url = worker.url
    assert listening_addresses(worker.port) == {"0.0.0.0"}  # tokens protect it: every interface

    # /health and /metrics stay open and carry no personal data
    assert get_json(f"{url}/health")[0] == 200
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert "arrears_open_cases" in metrics
    assert not any(value in metrics for value in (NAME, PHONE, NATIONAL_ID, *CONTACT))

    # refusals: no token, an unknown one (401), a token without the read scope (403)
    for path in ("/portfolio", "/loans/ACC-L1", "/cases/ACC-L1:1", "/cases/ACC-L1:1/timeline", "/agencies/AG1/kpis",
                 "/agencies/AG1/cases", "/agencies"):
        assert get_json(url + path)[0] == 401, path
        assert get_json(url + path, token="not-a-token-of-ours")[0] == 401, path
        status, body = get_json(url + path, token=ACTOR)
        assert (status, body["error"]) == (403, "forbidden: token 'release-bot' does not have the 'read' scope")
    assert get_json(f"{url}/portfolio")[1] == {"error": "unauthorized: send Authorization: Bearer <token>"}

    # read: masked; nothing audited
    status, loan = get_json(f"{url}/loans/ACC-L1", token=READER)
    assert status == 200
    assert loan["customer"] == {"name": "欧*", "phone": "137****5678", "national_id": "**************123X",
                                "province": "北京市", "city": "北京市", "timezone": "Asia/Shanghai",
                                "emergency_contacts": [{"name": "李*", "phone": "139****1111", "relation": "spouse"}]}
    # the timeline never shows personal data, to any token
    for token in (READER, AUDITOR):
        status, timeline = get_json(f"{url}/cases/ACC-L1:1/timeline", token=token)
        assert status == 200 and timeline["events"][0]["type"] == "CaseOpened"
        assert not any(value in str(timeline) for value in (NAME, PHONE, NATIONAL_ID, *CONTACT))

    # pii: whole, and each such answer audited (after it is on record)
    status, loan = get_json(f"{url}/loans/ACC-L2", token=AUDITOR)  # (routed or not: one audit record)
    assert status == 200
    assert (loan["customer"]["name"], loan["customer"]["phone"], loan["customer"]["national_id"]) == (
        NAME, PHONE, NATIONAL_ID)
    assert loan["customer"]["emergency_contacts"][0]["name"] == CONTACT[0]
    (record,) = read_topic(settings, settings.topics.audit, min_count=1, timeout=15)
    assert record.key == b"ACC-C2"
    assert {k: record.data[k] for k in ("token_name", "endpoint", "case_id", "loan_id", "customer_id")} == {
        "token_name": "compliance", "endpoint": "GET /loans/ACC-L2", "case_id": None, "loan_id": "ACC-L2",
        "customer_id": "ACC-C2"}

    # Either worker answers for any case: a request forwarded to the owner carries the caller's token.
    for case_id in ("ACC-L1:1", "ACC-L2:1"):
        answers = [get_json(f"{base}/cases/{case_id}", token=READER) for base in (url, other.url)]
        assert answers[0] == answers[1] and answers[0][0] == 200, answers
        assert get_json(f"{other.url}/cases/{case_id}", token=ACTOR)[0] == 403
    status, portfolio = get_json(f"{other.url}/portfolio", token=READER)
    assert (status, portfolio["open_cases"], portfolio["unreachable_workers"]) == (200, 2, 0)

    # GET /cases/{id}: CaseState exactly in JSON form, no internal fields
    status, case = get_json(f"{url}/cases/ACC-L1:1", token=READER)
    fields = [f["name"] for f in get_codec().catalog.record("CaseState").expanded["fields"]]
    assert status == 200 and case["type"] == "CaseState"
    assert set(case) == {"type", *fields}
    assert case["case_id"] == "ACC-L1:1" and case["version"] >= 1
    assert case["event_id"] is not None and case["occurred_at"] is not None
    published = [to_json(get_codec().catalog, r.name, r.data)
                 for r in read_topic(settings, settings.topics.case_state, min_count=1, timeout=10)
                 if r.data and r.data["case_id"] == "ACC-L1:1"]
    assert max(published, key=lambda r: r["version"]) == case  # exactly the last record on collections.case-state

    # the CLI passes the token on; without one it says how to give it
    done = subprocess.run([sys.executable, "-m", "arrears", "case", "ACC-L1:1", "--url", url],
                          env={**env, "ARREARS_API_TOKEN": READER}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ACC-L1:1" in done.stdout and "reported_bucket" not in done.stdout
    loan_view = subprocess.run([sys.executable, "-m", "arrears", "case", "ACC-L1", "--loan", "--url", url,
                                "--token", READER], env=env, capture_output=True, text=True, timeout=60)
    assert loan_view.returncode == 0 and "欧*" in loan_view.stdout and NAME not in loan_view.stdout
    refused = subprocess.run([sys.executable, "-m", "arrears", "case", "ACC-L1:1", "--url", url],
                             env={k: v for k, v in env.items() if k != "ARREARS_API_TOKEN"},
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "--token or ARREARS_API_TOKEN" in refused.stderr
    assert len(read_topic(settings, settings.topics.audit, timeout=2)) == 1  # read answers were not audited


def test_without_tokens_the_query_api_listens_on_the_loopback_address_only(
    make_settings: Any, unique: str, tmp_path: Path
) -> None:
    settings = make_settings({}, arrears_app_id=f"loopapp-{unique}")
    create_topics(settings, settings.topics.specs(6) + internal_topic_specs(settings))
    env = env_for(settings, ARREARS_APP_ID=settings.arrears_app_id, ARREARS_DATA_DIR=str(tmp_path / "d"))
    env = {k: v for k, v in env.items() if k not in TOKENS}
    worker = WorkerProcess(env, free_port(), tmp_path).start()
    try:
        worker.wait_ready()
        assert listening_addresses(worker.port) == {"127.0.0.1"}
        assert get_json(f"{worker.url}/portfolio")[0] == 200  # development: no token needed, data masked
    finally:
        worker.stop()
    assert "listen on 127.0.0.1 only" in worker.log_tail(20_000)
