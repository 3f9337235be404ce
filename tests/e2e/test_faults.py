"""Fault injection end to end (SPEC §9): kills, poison, a broker stopped for a minute, fuzzed result posts.

The adapter killed mid-delivery is tested beside the other webhook tests:
tests/integration/test_webhook_adapter.py::
test_no_work_order_is_lost_when_the_adapter_is_killed_mid_delivery_and_restarted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import KafkaError, Message, Producer
from conftest import env_for
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from kafkatools import read_topic
from processes import WorkerProcess, run_cli, wait_until, workers
from test_conformance_e2e import (
    INTERNAL,
    assert_matches,
    case_events,
    last_business_date,
    scenario_file,
    wait_caught_up,
)
from workorders import issued, publish_work_orders

from arrears.broker import EmbeddedBroker, free_port
from arrears.domain.book import LoanBook
from arrears.domain.loan import LoanState, Rules
from arrears.kafka import create_topics, producer_config
from arrears.settings import Settings
from consumers.httpserver import BackgroundServer
from consumers.metrics import AdapterMetrics
from consumers.results import ResultSink
from consumers.results_api import make_app
from consumers.signing import sign
from consumers.simagency import HttpAgency
from producers.publisher import LoanEventPublisher
from schemas import default_catalog, from_json, get_codec, to_json
from streams.records import to_domain, to_record, to_tick

pytestmark = [pytest.mark.slow, pytest.mark.broker]
TICK = dt.date(2026, 3, 2)
ARREARS = [sys.executable, "-m", "arrears"]


@pytest.fixture
def deployment(make_settings: Any, unique: str, tmp_path: Path) -> tuple[Settings, dict[str, str]]:
    settings = make_settings(INTERNAL, arrears_app_id=f"app-{unique}")
    env = env_for(settings, ARREARS_APP_ID=f"app-{unique}", ARREARS_DATA_DIR=str(tmp_path / "data"),
                  ARREARS_LOG_LEVEL="INFO")
    run_cli(["topics"], env)
    return settings, env


# --------------------------------------------------------------------------- kills
class DictStore:
    def __init__(self) -> None:
        self.states: dict[str, LoanState] = {}

    def get(self, loan_id: str) -> LoanState | None:
        return self.states.get(loan_id)

    def put(self, state: LoanState) -> None:
        self.states[state.loan_id] = state


def expected_case_states(scenario: str) -> dict[str, dict[str, Any]]:
    """The last CaseState of every case, from the pure rules over the scenario (no Kafka)."""
    catalog = default_catalog()
    book = LoanBook(DictStore(), Rules())
    last: dict[str, dict[str, Any]] = {}
    for line in scenario_file(scenario).read_text().splitlines():
        name, value = from_json(catalog, json.loads(line))
        if name == "BusinessDateChanged":
            outputs = book.tick(to_tick(value))
        else:
            outputs = book.apply(value["loan_id"], to_domain(name, value))
        for output in outputs:
            record_name, record = to_record(output)
            if record_name == "CaseState":
                last[record["case_id"]] = to_json(catalog, record_name, record)
    return last


def last_case_states(settings: Settings) -> dict[str, dict[str, Any]]:
    """The last CaseState per case_id on collections.case-state; same event_id means same record."""
    catalog = default_catalog()
    last: dict[str, dict[str, Any]] = {}
    by_event: dict[str, dict[str, Any]] = {}
    for record in read_topic(settings, settings.topics.case_state, min_count=1, idle=2.0):
        body = to_json(catalog, record.name, record.data)
        seen = by_event.setdefault(body["event_id"], body)
        assert seen == body, f"CaseState {body['event_id']} emitted twice with different fields"
        if seen is not body:
            continue  # a repeat after a crash: consumers de-duplicate by event_id
        previous = last.get(body["case_id"])
        assert previous is None or previous["version"] <= body["version"], (
            f"{body['case_id']}: version {body['version']} after {previous['version']}")
        last[body["case_id"]] = body
    return last


def test_a_worker_killed_at_three_random_points_ends_in_the_expected_state_with_only_identical_repeats(
    deployment: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    settings, env = deployment
    scenario = "scenario-202"
    port = free_port()
    worker = WorkerProcess(env, port, tmp_path).start()
    worker.wait_ready()
    publisher = threading.Thread(target=run_cli, args=(["publish", str(scenario_file(scenario))], env))
    publisher.start()
    rnd = random.Random()  # a new schedule of kills every run; printed so a failure can be replayed
    delays = [rnd.uniform(0.3, 3.0) for _ in range(3)]
    print(f"killing after {', '.join(f'{d:.2f}s' for d in delays)} of processing")
    try:
        for n, delay in enumerate(delays):
            time.sleep(delay)
            worker.kill()
            worker = WorkerProcess(env, port, tmp_path, name=f"restart{n + 1}").start()
            worker.wait_ready()
        publisher.join(180)
        wait_caught_up([worker], last_business_date(scenario_file(scenario)), settings.arrears_partitions)
        assert_matches(scenario, case_events(settings), allow_duplicates=True)
        actual = last_case_states(settings)
        expected = expected_case_states(scenario)
        assert sorted(actual) == sorted(expected)
        for case_id, state in expected.items():
            assert actual[case_id] == state, case_id
        for case_id in list(expected)[:5]:  # and the query API agrees
            status, body = worker_case(worker, case_id)
            assert status == 200 and body["status"] == expected[case_id]["status"], case_id
    finally:
        worker.stop()
        publisher.join(5)


def worker_case(worker: WorkerProcess, case_id: str) -> tuple[int, Any]:
    from processes import get_json

    return get_json(f"{worker.url}/cases/{case_id}")


# --------------------------------------------------------------------------- poison
class RawProducer:
    """Sends exact bytes and remembers where each landed."""

    def __init__(self, settings: Settings) -> None:
        self.producer = Producer(producer_config(settings))
        self.where: list[tuple[int, int]] = []

    def send(self, topic: str, key: bytes, value: bytes, event_type: str | None = None) -> tuple[int, int]:
        landed: list[tuple[int, int]] = []

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            assert err is None, err
            landed.append((int(msg.partition() or 0), int(msg.offset() or 0)))

        headers = [("event_type", event_type.encode())] if event_type else None
        self.producer.produce(topic, value, key, headers=headers, on_delivery=on_delivery)
        assert self.producer.flush(30) == 0
        return landed[0]


def bad_enum(name: str, value: dict[str, Any]) -> bytes:
    """Valid bytes of *name* but for its last field, an enum, given an index past its symbols."""
    codec = get_codec()
    good = codec.encode_single_object(name, value)
    assert good[-1] == 0, "the last field must be an enum at its first symbol"
    return good[:-1] + bytes([2 * 57])  # zigzag varint of index 57


def good_loan(n: int) -> list[tuple[str, dict[str, Any]]]:
    loan_id = f"GOOD-{n}"
    return [
        ("LoanOpened", {"loan_id": loan_id, "customer_id": f"C-{n}", "product_code": "CASH", "currency": "CNY",
                        "principal": 300_000, "opened_on": "2026-01-01"}),
        ("InstallmentScheduled", {"loan_id": loan_id, "installment_no": 1, "due_date": "2026-02-25",
                                  "principal_due": 100_000, "interest_due": 0, "fee_due": 0, "currency": "CNY"}),
    ]


def cure(n: int) -> tuple[str, dict[str, Any]]:
    return "RepaymentReceived", {"loan_id": f"GOOD-{n}", "payment_id": f"CURE-{n}", "amount": 100_000,
                                 "currency": "CNY", "value_date": "2026-03-02", "channel": "BANK_TRANSFER"}


def poison_for(settings: Settings, topic_base: str, round_no: int) -> list[tuple[str, bytes, str]]:
    """(kind, bytes, expected dlq.reason) of every poison that applies to *topic_base*.

    Event ids differ per round: an event id already applied is ignored, not dead-lettered again.
    """
    codec = get_codec()
    catalog = codec.catalog
    topic = settings.topics.name(topic_base)
    out = [
        ("garbage", b"this is not an Avro message \xff\xfe", "DECODE_ERROR"),
        ("unknown fingerprint", b"\xc3\x01" + os.urandom(8) + b"\x02x", "UNKNOWN_SCHEMA"),
    ]
    if topic_base == "agency.results":
        _, contact = from_json(catalog, {
            "type": "ContactAttempted", "event_id": f"bad-enum-result-{round_no}",
            "occurred_at": "2026-03-02T02:00:00Z", "agency_id": "AG1", "case_id": "GOOD-0:1", "work_order_id": "WO-1",
            "attempted_at": "2026-03-02T02:00:00Z", "channel": "CALL", "party": "DEBTOR", "outcome": "NO_ANSWER"})
        out.append(("unknown enum", bad_enum("ContactAttempted", contact), "SCHEMA_VIOLATION"))
        _, promise = from_json(catalog, {
            "type": "PromiseToPay", "event_id": f"negative-promise-{round_no}", "occurred_at": "2026-03-02T02:00:00Z",
            "agency_id": "AG1", "case_id": "GOOD-0:1", "work_order_id": "WO-1", "promised_amount": -100,
            "promised_date": "2026-03-09"})
        out.append(("negative amount", codec.encode_single_object("PromiseToPay", promise), "CONTRACT_VIOLATION"))
    else:
        _, closed = from_json(catalog, {"type": "LoanClosed", "event_id": f"bad-enum-{topic}-{round_no}",
                                        "occurred_at": "2026-03-02T02:00:00Z", "loan_id": "GOOD-0",
                                        "reason": "PAID_OFF"})
        out.append(("unknown enum", bad_enum("LoanClosed", closed), "SCHEMA_VIOLATION"))
    if topic_base in ("loan.repayments", "loan.schedules"):
        name, value = cure(0) if topic_base == "loan.repayments" else good_loan(0)[1]
        amount_field = "amount" if topic_base == "loan.repayments" else "principal_due"
        for kind, change in (("negative amount", {amount_field: -500}), ("wrong currency", {"currency": "USD"})):
            payment = {"payment_id": f"P-{kind}-{round_no}"} if name == "RepaymentReceived" else {}
            _, bad = from_json(catalog, {"type": name, **value, "event_id": f"{kind}-{topic}-{round_no}",
                                         "occurred_at": "2026-03-02T02:00:00Z", **payment, **change})
            out.append((kind, codec.encode_single_object(name, bad), "CONTRACT_VIOLATION"))
    return out


POISONED = ("loan.accounts", "loan.schedules", "loan.repayments", "agency.results", "collections.commands",
            "calendar.business-date")


def test_poison_on_every_input_topic_is_dead_lettered_with_its_reason_while_good_traffic_goes_on(
    deployment: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    settings, env = deployment
    raw = RawProducer(settings)
    sent: dict[tuple[str, str], tuple[int, int, bytes, str]] = {}

    def poison(round_no: int) -> None:
        for base in POISONED:
            for kind, value, reason in poison_for(settings, base, round_no):
                if round_no == 1 and kind in ("wrong currency",):
                    continue  # needs the loan known first: sent in the second round only
                topic = settings.topics.name(base)
                partition, offset = raw.send(topic, b"GOOD-0", value)
                sent[(base, f"{kind} #{round_no}")] = (partition, offset, value, reason)

    good = 12
    with workers(env, [free_port()], tmp_path) as procs, LoanEventPublisher(settings) as publisher:
        poison(1)
        for n in range(good):
            for name, value in good_loan(n):
                publisher.publish(name, value)
        publisher.flush()
        poison(2)
        publisher.end_of_day(TICK)
        started = time.monotonic()
        for n in range(0, good, 2):
            publisher.publish(*cure(n))
        publisher.flush()
        poison(3)
        publisher.end_of_day(TICK + dt.timedelta(days=1))
        wait_caught_up(procs, (TICK + dt.timedelta(days=1)).isoformat(), settings.arrears_partitions)
        caught_up = time.monotonic() - started
    cases = case_events(settings)
    opened = {lid for lid, evs in cases.items() if any(e["type"] == "CaseOpened" for e in evs)}
    closed = {lid for lid, evs in cases.items() if any(e["type"] == "CaseClosed" for e in evs)}
    assert opened == {f"GOOD-{n}" for n in range(good)}
    assert closed == {f"GOOD-{n}" for n in range(0, good, 2)}
    assert caught_up < 30, f"good traffic took {caught_up:.1f}s to get through the poison"

    for base in POISONED:
        expected = {key: v for key, v in sent.items() if key[0] == base}
        dead = read_topic(settings, settings.topics.dlq(settings.topics.name(base)), min_count=len(expected),
                          decode=False, timeout=30)
        by_place = {(d.partition, int(d.headers["dlq.source.offset"])): d for d in dead}
        for (_, kind), (partition, offset, value, reason) in expected.items():
            record = by_place.get((partition, offset))
            assert record is not None, f"{base}: {kind} at {partition}@{offset} not dead-lettered"
            assert record.value == value, f"{base}: {kind}: the dead letter is not the original bytes"
            headers = record.headers
            assert headers["dlq.reason"].decode() == reason, f"{base}: {kind}: {headers['dlq.reason']!r}"
            assert headers["dlq.error"], f"{base}: {kind}: no dlq.error"
            assert headers["dlq.source.topic"] == settings.topics.name(base).encode()
            assert headers["dlq.source.partition"] == str(partition).encode()


# --------------------------------------------------------------------------- broker frozen
def test_a_broker_stopped_for_a_minute_loses_nothing_and_everyone_recovers_alone(
    make_settings: Any, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "pause-secret"
    monkeypatch.setenv("AG1_SECRET", secret)
    with EmbeddedBroker() as broker, HttpAgency("AG1", secret) as agency:
        config = {**INTERNAL, "agencies": [{
            "id": "AG1", "buckets": ["M2"], "capacity": 100,
            "transport": {"type": "webhook", "url": agency.webhook_url, "allow_insecure_http": True,
                          "secret_env": "AG1_SECRET",
                          "timeout_seconds": 2, "max_attempts": 30, "backoff_initial_seconds": 0.2,
                          "backoff_max_seconds": 2}}]}
        config["internal_buckets"] = [b for b in INTERNAL["internal_buckets"] if b != "M2"]
        settings = make_settings(config, kafka_bootstrap_servers=broker.bootstrap_servers,
                                 arrears_app_id=f"pause-{unique}")
        env = env_for(settings, ARREARS_APP_ID=settings.arrears_app_id, ARREARS_DATA_DIR=str(tmp_path / "data"),
                      AG1_SECRET=secret)
        run_cli(["topics"], env)
        adapter_port = free_port()
        adapter = _start(env, ["adapter", "--agency", "AG1", "--port", str(adapter_port), "--host", "127.0.0.1"],
                         tmp_path / "adapter.log")
        try:
            with workers(env, [free_port()], tmp_path) as procs, LoanEventPublisher(settings) as publisher:
                wait_until(lambda: _ready(adapter_port), 60, message="adapter ready")
                orders = [issued(f"WO{i}:1") for i in range(9)]
                results: list[dict[str, Any]] = []
                # before: loans, a tick that opens their cases, work orders, results
                for n in range(6):
                    for name, value in good_loan(n):
                        publisher.publish(name, value)
                publisher.end_of_day(TICK)
                publish_work_orders(settings, "AG1", orders[:3])
                results += _post_results(adapter_port, secret, 0, 3)

                broker.pause()
                paused_at = time.monotonic()
                try:
                    # during: the publisher buffers; a result post waits for the broker
                    for n in (0, 1):
                        publisher.publish(*cure(n))
                    for n in range(6, 9):
                        for name, value in good_loan(n):
                            publisher.publish(name, value)
                    during = threading.Thread(target=lambda: results.extend(
                        _post_results(adapter_port, secret, 3, 6, timeout=150)))
                    during.start()
                    time.sleep(max(0.0, 60 - (time.monotonic() - paused_at)))
                    # a broker away for a minute makes the worker wait, never exit (SPEC §9)
                    assert all(p.proc is not None and p.proc.poll() is None for p in procs), procs[0].log_tail()
                finally:
                    broker.resume()
                # after: everything buffered goes out; more of everything
                publisher.flush(120)
                publish_work_orders(settings, "AG1", orders[3:])
                for n in (2, 6):
                    publisher.publish(*cure(n))
                publisher.end_of_day(TICK + dt.timedelta(days=1))
                during.join(180)
                results += _post_results(adapter_port, secret, 6, 9)
                wait_caught_up(procs, (TICK + dt.timedelta(days=1)).isoformat(), settings.arrears_partitions,
                               timeout=180)
                assert agency.wait_for(lambda a: len(a.accepted()) >= len(orders), timeout=120), (
                    (tmp_path / "adapter.log").read_text()[-3000:])
        finally:
            adapter.send_signal(signal.SIGTERM)
            adapter.wait(20)
        assert set(agency.accepted()) == {o["event_id"] for o in orders}
        cases = case_events(settings)
        opened = {lid for lid, evs in cases.items() if any(e["type"] == "CaseOpened" for e in evs)}
        closed = {lid for lid, evs in cases.items() if any(e["type"] == "CaseClosed" for e in evs)}
        # GOOD-6 was paid in full before the tick that would have opened its case
        assert opened == {f"GOOD-{n}" for n in (0, 1, 2, 3, 4, 5, 7, 8)}
        assert closed == {"GOOD-0", "GOOD-1", "GOOD-2"}
        published = {r.data["event_id"] for r in read_topic(settings, settings.topics.agency_results,
                                                              min_count=len(results))}
        assert published == {r["event_id"] for r in results}


def _start(env: dict[str, str], args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen([*ARREARS, *args], env=env, stdout=log, stderr=subprocess.STDOUT)


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _result(n: int) -> dict[str, Any]:
    return {"type": "ContactAttempted", "event_id": f"res-{n}", "occurred_at": "2026-03-02T02:15:00Z",
            "agency_id": "AG1", "case_id": f"GOOD-{n}:1", "work_order_id": f"WO-{n}",
            "attempted_at": "2026-03-02T02:15:00Z", "channel": "CALL", "party": "DEBTOR", "outcome": "NO_ANSWER"}


def _post_results(port: int, secret: str, start: int, stop: int, timeout: float = 30) -> list[dict[str, Any]]:
    """POST results one at a time until each is accepted (202), as an agency retrying would."""
    accepted = []
    for n in range(start, stop):
        body = json.dumps(_result(n)).encode()
        deadline = time.monotonic() + timeout
        while True:
            try:
                response = httpx.post(f"http://127.0.0.1:{port}/results", content=body, timeout=timeout,
                                      headers={"X-Arrears-Signature": sign(secret, body, int(time.time()))})
                if response.status_code == 202:
                    break
                assert response.status_code == 503, response.text
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"result {n} not accepted within {timeout}s"
            time.sleep(0.5)
        accepted.append(_result(n))
    return accepted


def test_a_worker_asked_to_stop_after_its_broker_is_gone_exits_within_its_stop_timeout(
    make_settings: Any, unique: str, tmp_path: Path
) -> None:
    """A demo stopped hard, a host shutting down: SIGTERM reaches a worker whose broker is gone.
    Stopping waits for the broker, so without a deadline the process would never go away."""
    with EmbeddedBroker() as broker:
        settings = make_settings({}, kafka_bootstrap_servers=broker.bootstrap_servers, arrears_app_id=f"stop-{unique}")
        env = env_for(settings, ARREARS_APP_ID=settings.arrears_app_id, ARREARS_DATA_DIR=str(tmp_path / "data"),
                      ARREARS_STOP_TIMEOUT_SECONDS="5")
        run_cli(["topics"], env)
        worker = WorkerProcess(env, free_port(), tmp_path).start()
        try:
            worker.wait_ready()
            broker.stop()
            assert worker.proc is not None
            os.killpg(worker.proc.pid, signal.SIGTERM)
            started = time.monotonic()
            code = worker.proc.wait(30)
            assert time.monotonic() - started < 20 and code == 1, worker.log_tail()
            assert "stopping took more than 5 s" in worker.log_tail(20_000)
        finally:
            worker.kill()



# --------------------------------------------------------------------------- fuzzed results
SECRET = "fuzz-secret"


@pytest.fixture(scope="module")
def results_endpoint(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    from arrears.settings import load_settings

    settings = load_settings(kafka_bootstrap_servers=kafka_bootstrap,
                             arrears_topic_prefix=f"fuzz{os.getpid()}{int(time.time())}.", arrears_partitions=3)
    create_topics(settings, settings.topics.specs(3))
    publisher = LoanEventPublisher(settings)
    catalog = get_codec().catalog
    server = BackgroundServer(lambda: make_app(agency_id="AG1", secrets=[SECRET], catalog=catalog,
                                               sink=ResultSink(publisher), metrics=AdapterMetrics("AG1"),
                                               health=lambda: (200, {})))
    server.start()
    try:
        yield server.url, settings
    finally:
        server.stop()
        publisher.close()


_text = st.text(max_size=12)
_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False), _text)
_json = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
                     max_leaves=8)
_FIELDS = {
    "type": st.sampled_from(["ContactAttempted", "PromiseToPay", "DisputeRaised", "CaseReturned", "CaseOpened",
                             "Nope", ""]),
    "event_id": st.one_of(_text, st.uuids().map(str)),
    "occurred_at": st.sampled_from(["2026-03-02T02:15:00Z", "2026-03-02", "yesterday", "", "9999-99-99T00:00Z"]),
    "agency_id": st.sampled_from(["AG1", "AG2", "", "ag1"]),
    "case_id": st.sampled_from(["L1:1", "L1", ":1", "L:x", "A:B:3"]),
    "work_order_id": _text,
    "attempted_at": st.sampled_from(["2026-03-02T02:15:00Z", "02:15", ""]),
    "channel": st.sampled_from(["CALL", "SMS", "FAX", "call"]),
    "party": st.sampled_from(["DEBTOR", "THIRD_PARTY", "NEIGHBOUR"]),
    "outcome": st.sampled_from(["NO_ANSWER", "PROMISE_TO_PAY", "SHRUG"]),
    "promised_amount": st.one_of(st.integers(-10, 2**64), st.floats(allow_nan=False), _text),
    "promised_date": st.sampled_from(["2026-03-09", "2026-02-30", "", "tomorrow"]),
    "details": _text,
    "reason": _text,
}
_forged_signature = st.one_of(  # what a header can carry (printable ASCII), and near-misses of the scheme
    st.from_regex(r"[!-~]([ -~]{0,78}[!-~])?", fullmatch=True),  # h11 refuses surrounding spaces
    st.builds(lambda t, digest: f"t={t},sha256={digest}", st.integers(-10**15, 10**15),
              st.text(alphabet="0123456789abcdefABCDEF", max_size=70)),
)
_near_valid = st.fixed_dictionaries({}, optional={k: v | _json for k, v in _FIELDS.items()})
_body = st.one_of(
    st.binary(max_size=64),
    _json.map(lambda v: json.dumps(v).encode()),
    _near_valid.map(lambda v: json.dumps(v).encode()),
    st.lists(_near_valid, max_size=3).map(lambda v: json.dumps(v).encode()),
    st.builds(lambda n: json.dumps(_result(n)).encode(), st.integers(0, 10**9)),  # valid, to be accepted
)


def test_ten_thousand_fuzzed_result_posts_never_fail_with_5xx_and_publish_only_what_was_accepted(
    results_endpoint: tuple[str, Settings],
) -> None:
    url, settings = results_endpoint
    accepted: list[str] = []
    statuses: defaultdict[int, int] = defaultdict(int)
    client = httpx.Client(timeout=30)

    @settings_for_fuzz
    @given(body=_body, signed=st.booleans() | st.just(True), forged=st.none() | _forged_signature)
    def post(body: bytes, signed: bool, forged: str | None) -> None:
        headers = {"X-Arrears-Signature": sign(SECRET, body, int(time.time()))} if signed else {}
        if forged is not None and not signed:
            headers["X-Arrears-Signature"] = forged  # any header text: a 401, never a 500
        response = client.post(f"{url}/results", content=body, headers=headers)
        statuses[response.status_code] += 1
        assert response.status_code < 500, (response.status_code, body[:200], response.text[:300])
        if response.status_code == 202:
            doc = json.loads(body)
            items = doc if isinstance(doc, list) else [doc]
            accepted.extend(item["event_id"] for item in items)
            assert response.json() == {"accepted": len(items)}
        else:
            assert response.status_code in (400, 401), response.status_code

    try:
        post()
    finally:
        client.close()
    print(dict(statuses))
    assert sum(statuses.values()) >= 10_000
    assert statuses[202] > 0 and statuses[400] > 0 and statuses[401] > 0
    published = read_topic(settings, settings.topics.agency_results, min_count=len(accepted), timeout=60)
    assert sorted(r.data["event_id"] for r in published) == sorted(accepted)


settings_for_fuzz = hypothesis_settings(max_examples=10_000, deadline=None, database=None, derandomize=True,
                             suppress_health_check=list(HealthCheck))
