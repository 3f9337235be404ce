"""The guarantees at the edges (SPEC §3, §4, §9; issue 12), end to end on a real broker.

* A live run and a replay of the same logs into a fresh deployment emit the same set of
  records on ``collections.cases`` and ``collections.compliance`` and the same final CaseState,
  with results and repayments interleaved across topics (some results reach the broker after
  the repayment that followed them), repayments in committed and aborted transactions
  (transaction markers leave holes in the offsets), a record corrected under the same event
  id, a result timed in 2099, a tick with an invalid barrier and a stale tick.
* Workers with the RocksDB store, killed with SIGKILL at random points and restarted on the
  same data directory, on an empty one, or not at all (another worker takes over, from its
  standby replica), lose nothing and apply nothing twice.
* A rebalance moves only the partitions that change owner.

Both are compared with what the pure rules say the story must give (tests/story.py).
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from conftest import env_for
from kafkatools import read_topic
from processes import WorkerProcess, run_cli, wait_until
from story import CONFIG, LAST_DAY, Expected, Record, expected, story

from arrears.broker import free_port
from arrears.kafka import make_producer, producer_config
from arrears.settings import Settings
from arrears.topics import record_key
from producers.publisher import LoanEventPublisher
from schemas import default_catalog, event_type_headers, get_codec, to_json

pytestmark = [pytest.mark.slow, pytest.mark.broker]
PARTITIONS = 6


@pytest.fixture
def deployment(make_settings: Any, unique: str, tmp_path: Path) -> tuple[Settings, dict[str, str]]:
    settings = make_settings(CONFIG, arrears_app_id=f"edge-{unique}")
    env = env_for(settings, ARREARS_APP_ID=settings.arrears_app_id, ARREARS_DATA_DIR=str(tmp_path / "data"),
                  ARREARS_LOG_LEVEL="INFO", AG1_SECRET="s3cret")
    run_cli(["topics"], env)
    return settings, env


class StoryPublisher:
    """Publishes the story's records one at a time, each acknowledged before the next.

    Kafka timestamps are set explicitly (a millisecond apart), so that a record can be
    *backdated*: a result that reaches the broker after a repayment but carries an earlier
    timestamp is read after it by a live worker and before it by a replay.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.publisher = LoanEventPublisher(settings, producer=make_producer(settings, **{"linger.ms": 0}))
        self.codec = get_codec(settings.schema_registry_url)
        self.transactional = Producer(producer_config(settings, **{
            "transactional.id": f"story-{os.getpid()}-{time.monotonic_ns()}", "message.timeout.ms": 60_000}))
        self.transactional.init_transactions(30)
        self.clock = itertools.count(int(time.time() * 1000) - 600_000, 3)
        self.recent: list[int] = []

    def publish(self, record: Record) -> None:
        name = record.type
        body = {k: v for k, v in record.body.items() if k != "type"}
        stamp = next(self.clock)
        if record.via == "backdated" or "backdated" in record.notes:
            stamp = self.recent[-2] - 1
        self.recent.append(stamp)
        if name == "BusinessDateChanged":
            barrier = self.publisher.barrier()
            if record.via == "bad-barrier":
                barrier = [{**barrier[0], "offset": barrier[0]["offset"] + 1_000_000}]
            body["barrier"] = barrier
        value = self.publisher.prepare(name, body)
        topic = self.settings.topics.for_record(name)
        payload = self.codec.encode(name, value, topic=topic)
        key = record_key(name, value).encode()
        if record.via in ("tx", "tx-abort"):
            producer = self.transactional
            producer.begin_transaction()
            producer.produce(topic, payload, key, headers=event_type_headers(name), timestamp=stamp)
            if record.via == "tx":
                producer.commit_transaction(30)
            else:
                producer.flush(30)
                producer.abort_transaction(30)
            return
        errors: list[Any] = []
        producer = self.publisher._producer
        producer.produce(topic, payload, key, headers=event_type_headers(name), timestamp=stamp,
                         on_delivery=lambda err, _msg: err and errors.append(err))
        assert producer.flush(30) == 0 and not errors, errors

    def close(self) -> None:
        self.publisher.close()
        self.transactional.flush(10)


def aborted_records_visible(settings: Settings) -> bool:
    """Whether the broker shows an aborted transaction's records to read_committed consumers.

    Apache Kafka hides them; the embedded Tansu 0.6 does not (its documented limit). The
    expected outputs follow the broker, so the same tests hold on both.
    """
    topic = settings.topics.name("probe.aborted")
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(settings.kafka_config())
    admin.create_topics([NewTopic(topic, 1)])[topic].result(10)
    producer = Producer(producer_config(settings, **{"transactional.id": f"probe-{time.monotonic_ns()}",
                                                     "message.timeout.ms": 60_000}))
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b"aborted", b"k")
    producer.flush(30)
    producer.abort_transaction(30)
    consumer = Consumer({**settings.kafka_config(), "group.id": "probe", "isolation.level": "read_committed",
                         "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, 0, 0)])
    seen = False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error():
            if message.error().code() == KafkaError._PARTITION_EOF:
                break
            continue
        seen = True
    consumer.close()
    return seen


def backdate_results_reported_after_repayments(records: list[Record]) -> list[Record]:
    """Mark the contacts reported after the repayment that followed them as backdated in Kafka."""
    out = []
    for i, record in enumerate(records):
        late_call = (record.type == "ContactAttempted" and record.body["attempted_at"] < record.body["occurred_at"]
                     and i > 0 and records[i - 1].type == "RepaymentReceived")
        out.append(Record(record.body, record.via, record.applies, [*record.notes, "backdated"] if late_call
                          else record.notes))
    return out


def publish_story(settings: Settings, records: list[Record], pause: float = 0.0) -> None:
    publisher = StoryPublisher(settings)
    try:
        for record in records:
            publisher.publish(record)
            if pause and record.type == "BusinessDateChanged":
                time.sleep(pause)
    finally:
        publisher.close()


# --------------------------------------------------------------------------- reading the outputs
def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    consumer = Consumer({**settings.kafka_config(), "group.id": "edge-ends"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()


def outputs(settings: Settings, base: str, since: dict[int, int] | None = None) -> list[dict[str, Any]]:
    """Every record of an output topic (from *since* per partition), in JSON form, in partition order."""
    catalog = default_catalog()
    topic = settings.topics.name(base)
    records = [r for r in read_topic(settings, topic, min_count=1, idle=2.0)
               if since is None or r.offset >= since.get(r.partition, 0)]
    return [to_json(catalog, r.name, r.data) for r in records]


def distinct(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """By event id; a repeated id must repeat the same record (at-least-once delivery)."""
    seen: dict[str, dict[str, Any]] = {}
    for record in records:
        first = seen.setdefault(record["event_id"], record)
        assert first == record, f"{record['type']} {record['event_id']} emitted twice with different fields"
    return seen


def last_states(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    last: dict[str, dict[str, Any]] = {}
    for record in distinct(records).values():
        previous = last.get(record["case_id"])
        if previous is None or previous["version"] < record["version"]:
            last[record["case_id"]] = record
    return last


def assert_as_expected(settings: Settings, want: Expected, since: dict[str, dict[int, int]] | None = None) -> None:
    since = since or {}
    cases = distinct(outputs(settings, "collections.cases", since.get("cases")))
    compliance = distinct(outputs(settings, "collections.compliance", since.get("compliance")))
    states = last_states(outputs(settings, "collections.case-state", since.get("states")))
    missing = sorted(set(want.cases) - set(cases))
    extra = sorted(set(cases) - set(want.cases))
    assert not missing and not extra, (
        f"case records missing: {[want.cases[e]['type'] + ' ' + want.cases[e]['case_id'] for e in missing]}; "
        f"unexpected: {[cases[e]['type'] + ' ' + cases[e]['case_id'] for e in extra]}")
    for event_id, record in want.cases.items():
        assert cases[event_id] == record, record["type"]
    assert compliance == want.compliance, (
        f"violations: got {sorted((v['case_id'], v['rule']) for v in compliance.values())}, "
        f"expected {sorted((v['case_id'], v['rule']) for v in want.compliance.values())}")
    assert sorted(states) == sorted(want.case_states)
    for case_id, state in want.case_states.items():
        assert states[case_id] == state, case_id
    recoveries = distinct(outputs(settings, "collections.recoveries", since.get("recoveries")))
    assert recoveries == want.recoveries, (  # SPEC §10: repayments attributed to agencies, commission
        f"recoveries: got {sorted(r['payment_id'] for r in recoveries.values())}, "
        f"expected {sorted(r['payment_id'] for r in want.recoveries.values())}")


def wait_caught_up(procs: list[WorkerProcess], timeout: float = 180) -> None:
    def caught_up() -> bool:
        dates: dict[str, str] = {}
        held = 0
        for proc in procs:
            status, body = proc.health()
            if status != 200:
                return False
            dates.update(body["business_dates"])
            held += body["held_messages"]
        return len(dates) == PARTITIONS and all(d == LAST_DAY.isoformat() for d in dates.values()) and held == 0

    wait_until(caught_up, timeout, message=f"every partition at {LAST_DAY} with nothing held")


def dead_letters(settings: Settings, base: str) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for record in read_topic(settings, settings.topics.dlq(settings.topics.name(base)), idle=1.0, decode=False):
        counts[record.headers["dlq.reason"].decode()] += 1
    return dict(counts)


# --------------------------------------------------------------------------- the tests
def test_a_live_run_and_a_replay_into_a_fresh_deployment_emit_the_same_records(
    deployment: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    settings, env = deployment
    records = backdate_results_reported_after_repayments(story())
    assert any("backdated" in r.notes for r in records)
    want = expected(records, PARTITIONS, aborted_visible=aborted_records_visible(settings))
    assert {v["rule"] for v in want.compliance.values()} >= {
        "UNAUTHORIZED_CONTACT", "CONTACT_ON_HOLD", "DAILY_CONNECTED_LIMIT", "QUIET_HOURS", "THIRD_PARTY_CONTACT"}

    live = WorkerProcess(env, free_port(), tmp_path, name="live").start()
    try:
        live.wait_ready()
        publish_story(settings, records, pause=0.02)
        wait_caught_up([live])
    finally:
        live.stop()
    assert_as_expected(settings, want)
    assert want.dead_letters["loan.repayments"] == {"CONTRACT_VIOLATION": 1}
    assert want.dead_letters["calendar.business-date"] == {"INVALID_BARRIER": 1}
    assert want.dead_letters["agency.results"]["FUTURE_TIME"] == 1
    for base, counts in want.dead_letters.items():
        assert dead_letters(settings, base) == counts, base

    # A fresh deployment replays the same logs, everything already published.
    marks = {name: end_offsets(settings, settings.topics.name(base)) for name, base in
             (("cases", "collections.cases"), ("compliance", "collections.compliance"),
              ("states", "collections.case-state"), ("recoveries", "collections.recoveries"))}
    replay_env = {**env, "ARREARS_APP_ID": f"{settings.arrears_app_id}-replay",
                  "ARREARS_DATA_DIR": str(tmp_path / "replay")}
    run_cli(["topics"], replay_env)
    replay = WorkerProcess(replay_env, free_port(), tmp_path, name="replay").start()
    try:
        replay.wait_ready()
        wait_caught_up([replay])
    finally:
        replay.stop()
    assert_as_expected(settings, want, marks)


def test_rocksdb_workers_killed_at_random_points_and_restarted_three_ways_lose_nothing(
    deployment: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    settings, env = deployment
    records = story()
    want = expected(records, PARTITIONS, aborted_visible=aborted_records_visible(settings))
    env = {**env, "ARREARS_STORE": "rocksdb", "ARREARS_STANDBY_REPLICAS": "1"}
    ports = [free_port(), free_port()]
    procs = [WorkerProcess(env, port, tmp_path, name=f"w{n}").start() for n, port in enumerate(ports)]
    for proc in procs:
        proc.wait_ready()
    publisher = threading.Thread(target=publish_story, args=(settings, records, 0.05), daemon=True)
    publisher.start()
    rnd = random.Random()  # a new schedule every run; printed so that a failure can be replayed
    delays = [rnd.uniform(0.5, 3.0) for _ in range(3)]
    print(f"killing after {', '.join(f'{d:.2f}s' for d in delays)}")
    try:
        # 1: worker 0 dies and comes back on the same data directory.
        time.sleep(delays[0])
        procs[0].kill()
        procs[0] = WorkerProcess(env, ports[0], tmp_path, name="w0-same-dir").start()
        procs[0].wait_ready()
        # 2: worker 1 dies and comes back on an empty data directory.
        time.sleep(delays[1])
        procs[1].kill()
        shutil.rmtree(Path(env["ARREARS_DATA_DIR"]) / f"{settings.arrears_app_id}-{ports[1]}", ignore_errors=True)
        procs[1] = WorkerProcess(env, ports[1], tmp_path, name="w1-empty-dir").start()
        procs[1].wait_ready()
        # 3: worker 0 dies for good; worker 1 takes over its partitions.
        time.sleep(delays[2])
        procs[0].kill()
        publisher.join(300)
        assert not publisher.is_alive()
        wait_caught_up([procs[1]], timeout=240)
        # Exact, the CBA third-party verdicts included: a partition held back by a kill delays
        # the barrier tick that judges them, it does not change what they are judged against.
        assert_as_expected(settings, want)
    finally:
        for proc in procs:
            proc.stop()


def test_a_rebalance_moves_only_the_partitions_that_change_owner(
    deployment: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    settings, env = deployment
    first = WorkerProcess(env, free_port(), tmp_path, name="first").start()
    second: WorkerProcess | None = None
    try:
        first.wait_ready()
        publish_story(settings, [r for r in story() if r.type in ("LoanOpened", "InstallmentScheduled")])
        second = WorkerProcess(env, free_port(), tmp_path, name="second").start()
        second.wait_ready()

        def split() -> bool:
            a, b = first.health(), second.health()  # type: ignore[union-attr]
            return a[0] == b[0] == 200 and len(a[1]["partitions"]) == len(b[1]["partitions"]) == PARTITIONS // 2

        wait_until(split, 60, message="the partitions split between the two workers")
        log = first.log_tail(200_000)
        line = [x for x in log.splitlines() if "ready (" in x and "given up" in x][-1]
        kept = sorted(first.health()[1]["partitions"])
        assert f"({kept} kept, [] new, " in line, line  # the ones it keeps were not loaded again
        assert log.count("partitions [0, 1, 2, 3, 4, 5] loaded") == 1
    finally:
        if second is not None:
            second.stop()
        first.stop()


def test_consumers_read_committed_records_only_and_skip_transaction_markers(
    deployment: tuple[Settings, dict[str, str]]
) -> None:
    """The story's transactional repayments land at offsets with holes (markers) between them."""
    settings, _ = deployment
    hidden = not aborted_records_visible(settings)
    publisher = StoryPublisher(settings)
    try:
        tx = [r for r in story() if r.via in ("tx", "tx-abort")]
        for record in tx:
            publisher.publish(record)
    finally:
        publisher.close()
    topic = settings.topics.loan_repayments
    consumer = Consumer({**settings.kafka_config(), "group.id": "edge-tx", "isolation.level": "read_committed",
                         "auto.offset.reset": "earliest", "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    offsets, ends = [], {}
    deadline = time.monotonic() + 20
    while len(ends) < PARTITIONS and time.monotonic() < deadline:
        for message in consumer.consume(100, 0.2):
            if message.error() and message.error().code() == KafkaError._PARTITION_EOF:
                ends[message.partition()] = message.offset()
            elif not message.error():
                offsets.append((message.partition(), message.offset()))
    consumer.close()
    committed = [r for r in tx if r.via == "tx"]
    aborted = [r for r in tx if r.via == "tx-abort"]
    assert len(offsets) == len(committed) + (0 if hidden else len(aborted))
    assert sum(ends.values()) > len(offsets)  # markers took offsets that are never delivered
