"""The foundation's commands as real processes: broker, topics, clock and publish."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from conftest import env_for
from kafkatools import read_topic

from arrears.broker import broker_binary, free_port
from arrears.cli import build_parser
from arrears.kafka import make_producer
from arrears.settings import Settings
from producers.publisher import LoanEventPublisher

ARREARS = [sys.executable, "-m", "arrears"]
INPUT_BASES = ("loan.accounts", "loan.schedules", "loan.repayments", "agency.results", "collections.commands")


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ARREARS, *args], env=env, capture_output=True, text=True, timeout=timeout)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


# --------------------------------------------------------------------------- help
def test_help_lists_the_foundation_commands_and_every_registered_one() -> None:
    result = run(["--help"], dict(os.environ))

    assert result.returncode == 0
    # argparse lists each subcommand at a four-space indent; wrapped help text is indented further.
    listed = set(re.findall(r"^    (\S+)", result.stdout, flags=re.MULTILINE))
    assert {"broker", "topics", "clock", "publish"} <= listed
    registered = set(next(a for a in build_parser()._actions if a.dest == "command").choices)  # noqa: SLF001
    assert registered <= listed


# --------------------------------------------------------------------------- broker
def process_state(pid: int) -> str | None:
    """The kernel's state letter for *pid*, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def alive(pid: int) -> bool:
    return process_state(pid) not in (None, "Z", "X")


def tansu_pids(port: int) -> list[int]:
    """Live processes running the Tansu binary that listen on *port*."""
    binary = broker_binary()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].decode(errors="replace") == binary and any(
            arg.endswith(f":{port}".encode()) for arg in argv
        ) and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not selector.select(timeout):
            raise AssertionError(f"no output within {timeout}s")
        return proc.stdout.readline().strip()
    finally:
        selector.close()


class BrokerCommand:
    """``arrears broker --port N`` as a child process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [*ARREARS, "broker", "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )

    def ready(self) -> str:
        return read_line(self.proc, 30)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for pid in tansu_pids(self.port):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def broker_command() -> Any:
    command = BrokerCommand()
    try:
        yield command
    finally:
        command.cleanup()


def assert_accepts_kafka_clients(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"hello-{uuid.uuid4().hex[:6]}"
    admin.create_topics([NewTopic(topic, 2)])[topic].result(10)
    assert len(admin.list_topics(timeout=10).topics[topic].partitions) == 2


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_broker_prints_its_address_serves_kafka_and_stops_cleanly_on_a_signal(
    broker_command: BrokerCommand, sig: signal.Signals
) -> None:
    address = broker_command.ready()

    assert address == f"127.0.0.1:{broker_command.port}"
    assert_accepts_kafka_clients(address)
    [tansu] = tansu_pids(broker_command.port)
    assert parent_of(tansu) == broker_command.proc.pid

    broker_command.proc.send_signal(sig)

    assert broker_command.proc.wait(15) == 0
    assert broker_command.proc.stderr is not None
    assert "Traceback" not in broker_command.proc.stderr.read()
    wait_until(lambda: not alive(tansu), 5, f"tansu (pid {tansu}) exits")
    assert tansu_pids(broker_command.port) == []


@pytest.mark.slow
def test_killing_the_broker_command_takes_the_broker_down_with_it(broker_command: BrokerCommand) -> None:
    broker_command.ready()
    [tansu] = tansu_pids(broker_command.port)

    broker_command.proc.kill()  # SIGKILL: no handler runs; only PR_SET_PDEATHSIG can stop the child
    broker_command.proc.wait(10)

    wait_until(lambda: not alive(tansu), 5, f"orphaned tansu (pid {tansu}) exits")


@pytest.mark.slow
def test_broker_on_a_busy_port_fails_with_a_message(broker_command: BrokerCommand) -> None:
    broker_command.ready()

    result = run(["broker", "--port", str(broker_command.port)], dict(os.environ), timeout=60)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{broker_command.port}" in result.stderr


# --------------------------------------------------------------------------- topics
def expected_topics(prefix: str, partitions: int, agencies: list[str]) -> dict[str, int]:
    """SPEC §2: every topic and its partition count."""
    topics = {f"{prefix}{base}": partitions for base in INPUT_BASES}
    topics |= {f"{prefix}collections.{t}": partitions for t in ("cases", "case-state", "compliance")}
    topics |= {f"{prefix}agency.{agency}.work-orders": partitions for agency in agencies}
    topics[f"{prefix}calendar.business-date"] = 1
    topics |= {f"{prefix}{base}.dlq": partitions for base in INPUT_BASES}
    return topics


@pytest.mark.slow
def test_topics_creates_every_topic_with_prefix_partitions_and_agencies_and_is_idempotent(
    make_settings: Callable[..., Settings], topic_prefix: str
) -> None:
    agencies = [
        {"id": "AG1", "buckets": ["M2"], "capacity": 10,
         "transport": {"type": "webhook", "url": "https://ag1.example/r", "secret_env": "AG1_SECRET"}},
        {"id": "AG_2", "buckets": ["M3"], "capacity": 10,
         "transport": {"type": "files", "outbox": "/tmp/out", "inbox": "/tmp/in"}},
    ]
    settings = make_settings({"agencies": agencies}, arrears_app_id=f"topics-{topic_prefix.strip('.')}")
    env = env_for(settings, ARREARS_PARTITIONS="3", ARREARS_APP_ID=settings.arrears_app_id)

    first = run(["topics"], env)

    assert first.returncode == 0, first.stderr
    have = {
        name: len(meta.partitions)
        for name, meta in AdminClient(settings.kafka_config()).list_topics(timeout=10).topics.items()
        if name.startswith(topic_prefix)
    }
    expected = expected_topics(topic_prefix, 3, ["AG1", "AG_2"])
    assert {name: have.get(name) for name in expected} == expected
    created = [line.split()[1] for line in first.stdout.splitlines() if line.startswith("created")]
    internal = [f"{settings.arrears_app_id}-{name}" for name in
                ("ticks", "loans-changelog", "contacts", "verdicts", "placement", "placements")]
    assert sorted(created) == sorted([*have, *internal])
    assert first.stdout.splitlines()[-1] == f"{len(created)} created, 0 already there, 0 differ"

    second = run(["topics"], env)

    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[-1] == f"0 created, {len(created)} already there, 0 differ"


def test_topics_keeps_every_state_bearing_topic_forever_and_work_orders_for_their_days(
    make_settings: Callable[..., Settings], topic_prefix: str, unique: str
) -> None:
    from arrears.kafka import describe_topic_configs

    agencies = [{"id": "AG1", "buckets": ["M2"], "capacity": 10,
                 "transport": {"type": "files", "outbox": "/tmp/out", "inbox": "/tmp/in"}}]
    settings = make_settings({"agencies": agencies, "work_order_retention_days": 14},
                             arrears_app_id=f"app-{unique}")
    env = env_for(settings, ARREARS_APP_ID=settings.arrears_app_id, ARREARS_PARTITIONS="2")
    admin = AdminClient(settings.kafka_config())
    # An existing deployment made with the broker's defaults: a week's retention on results.
    results = f"{topic_prefix}agency.results"
    admin.create_topics([NewTopic(results, 2, config={"retention.ms": "604800000"})])[results].result(10)

    check = run(["topics", "--check"], env)
    assert check.returncode == 1
    assert f"{results}: retention.ms is '604800000', expected '-1'" in check.stderr

    fixed = run(["topics"], env)
    assert fixed.returncode == 0, fixed.stderr
    assert f"set      {results}: retention.ms=-1 (was 604800000)" in fixed.stdout
    assert run(["topics", "--check"], env).returncode == 0

    forever = [f"{topic_prefix}{base}" for base in (*INPUT_BASES, "calendar.business-date")]
    forever += [f"{settings.arrears_app_id}-ticks", f"{settings.arrears_app_id}-loans-changelog"]
    configs = describe_topic_configs(settings, [*forever, f"{topic_prefix}agency.AG1.work-orders"])
    for topic in forever:
        assert configs[topic]["retention.ms"] == "-1", topic
    assert configs[f"{settings.arrears_app_id}-loans-changelog"]["cleanup.policy"] == "compact"
    assert configs[f"{topic_prefix}agency.AG1.work-orders"]["retention.ms"] == str(14 * 86_400_000)


# --------------------------------------------------------------------------- clock and publish
def true_end_offsets(settings: Settings, counts: Counter[str]) -> Counter[tuple[str, int]]:
    """Each input partition's end offset, from the records themselves (*counts*: how many per topic)."""
    ends: Counter[tuple[str, int]] = Counter()
    for topic in settings.topics.inputs:
        for rec in read_topic(settings, topic, min_count=counts[topic], idle=0.3):
            ends[(rec.topic, rec.partition)] = max(ends[(rec.topic, rec.partition)], rec.offset + 1)
    return ends


def barrier_map(tick: dict[str, Any]) -> dict[tuple[str, int], int]:
    return {(o["topic"], o["partition"]): o["offset"] for o in tick["barrier"]}


def every_input_partition(settings: Settings) -> set[tuple[str, int]]:
    return {(f"{settings.arrears_topic_prefix}{base}", p) for base in INPUT_BASES
            for p in range(settings.arrears_partitions)}


def opened(loan_id: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()), "occurred_at": "2026-02-27T09:00:00Z", "loan_id": loan_id,
        "customer_id": f"C-{loan_id}", "product_code": "CASH", "currency": "CNY", "principal": 100000,
        "opened_on": "2026-01-01",
    }


def repayment(loan_id: str, payment_id: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()), "occurred_at": "2026-02-28T09:00:00Z", "loan_id": loan_id,
        "payment_id": payment_id, "amount": 5000, "currency": "CNY", "value_date": "2026-02-28",
        "channel": "COUNTER",
    }


@pytest.mark.slow
def test_clock_date_publishes_one_tick_with_a_barrier_over_every_input_partition(topics: Settings) -> None:
    # One record per produce request keeps the embedded broker's end offsets exact (see test_publisher).
    with LoanEventPublisher(topics, producer=make_producer(topics, **{"batch.num.messages": 1})) as publisher:
        for i in range(8):
            publisher.publish("LoanOpened", opened(f"CLK-{i}"))
            publisher.publish("RepaymentReceived", repayment(f"CLK-{i}", f"P-{i}"))

    result = run(["clock", "--date", "2026-03-01"], env_for(topics))

    assert result.returncode == 0, result.stderr
    assert "barrier over 30 partitions" in result.stdout
    [tick] = read_topic(topics, topics.topics.business_date, min_count=1, idle=0.5)
    assert (tick.name, tick.key, tick.headers["event_type"]) == (
        "BusinessDateChanged", b"CN", b"BusinessDateChanged",
    )
    assert tick.data is not None
    assert tick.data["business_date"] == dt.date(2026, 3, 1) and tick.data["calendar"] == "CN"
    barrier = barrier_map(tick.data)
    assert set(barrier) == every_input_partition(topics) and len(tick.data["barrier"]) == 30
    names = topics.topics
    ends = true_end_offsets(topics, Counter({names.loan_accounts: 8, names.loan_repayments: 8}))
    assert barrier == {key: ends[key] for key in barrier}
    assert sum(barrier.values()) == 16


def test_clock_daemon_with_an_unknown_timezone_exits_2_naming_the_option() -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}  # it must stop before connecting

    result = run(["clock", "--daemon", "--timezone", "Mars/Olympus_Mons"], env, timeout=30)

    assert result.returncode == 2
    assert "--timezone" in result.stderr and "Mars/Olympus_Mons" in result.stderr
    assert "Traceback" not in result.stderr


def test_clock_requires_date_or_daemon() -> None:
    result = run(["clock"], dict(os.environ))
    assert result.returncode == 2 and "--date" in result.stderr and "--daemon" in result.stderr


@pytest.mark.slow
def test_publish_sends_a_json_lines_file_in_order_and_gives_ticks_barriers(
    topics: Settings, tmp_path: Path
) -> None:
    lines: list[dict[str, Any]] = [
        {"type": "LoanOpened", **opened("PUB-1")},
        {"type": "InstallmentScheduled", "event_id": "i-1", "occurred_at": "2026-01-01T00:00:00Z",
         "loan_id": "PUB-1", "installment_no": 1, "due_date": "2026-02-01", "principal_due": 9000,
         "interest_due": 900, "fee_due": 100, "currency": "CNY"},
        {"type": "RepaymentReceived", **repayment("PUB-1", "P-1")},
        {"type": "BusinessDateChanged", "event_id": "tick-1", "occurred_at": "2026-03-01T16:00:00Z",
         "business_date": "2026-03-01"},
        {"type": "RepaymentReceived", **repayment("PUB-1", "P-2")},
        {"type": "BusinessDateChanged", "event_id": "tick-2", "occurred_at": "2026-03-02T16:00:00Z",
         "business_date": "2026-03-02"},
    ]
    path = tmp_path / "book.jsonl"
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    path.write_text(text + "\n\n", encoding="utf-8")  # a blank line is skipped

    result = run(["publish", str(path)], env_for(topics))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "published 6 records"
    read = read_topic(topics, topics.topics.business_date, min_count=2, idle=0.3)
    ticks = {t.data["event_id"]: t.data for t in read if t.data is not None}
    assert set(ticks) == {"tick-1", "tick-2"}
    # A replayed file must republish identical ticks: their outputs carry the tick's occurred_at.
    assert ticks["tick-1"]["occurred_at"] == dt.datetime(2026, 3, 1, 16, 0, tzinfo=dt.UTC)
    assert ticks["tick-2"]["occurred_at"] == dt.datetime(2026, 3, 2, 16, 0, tzinfo=dt.UTC)
    for tick_id, before in (("tick-1", 3), ("tick-2", 4)):
        barrier = barrier_map(ticks[tick_id])
        assert set(barrier) == every_input_partition(topics)
        assert sum(barrier.values()) == before  # every record above the tick, none below it
    names = topics.topics
    loan_topics = {names.loan_accounts: 1, names.loan_schedules: 1, names.loan_repayments: 2}
    loan_records = [r for t, n in loan_topics.items() for r in read_topic(topics, t, min_count=n, idle=0.3)]
    assert sorted(r.name or "" for r in loan_records) == [
        "InstallmentScheduled", "LoanOpened", "RepaymentReceived", "RepaymentReceived",
    ]
    assert {r.key for r in loan_records} == {b"PUB-1"}
    installment = next(r.data for r in loan_records if r.name == "InstallmentScheduled")
    assert installment is not None and installment["due_date"] == dt.date(2026, 2, 1)
    assert installment["occurred_at"] == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_publish_stops_at_a_record_that_breaks_its_schema_naming_line_and_field(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "bad.jsonl"
    bad = {"type": "RepaymentReceived", **repayment("BAD-1", "P-1"), "amount": "fifty"}
    path.write_text(json.dumps(bad) + "\n", encoding="utf-8")

    result = run(["publish", str(path)], env_for(settings))

    assert result.returncode == 2
    assert "amount" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_publish_is_all_or_nothing_and_running_the_file_again_republishes_the_same_ids(
    topics: Settings, tmp_path: Path
) -> None:
    from producers.jsonlines import derived_event_id, file_digest

    def no_id(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k != "event_id"}

    lines = [
        {"type": "LoanOpened", **no_id(opened("AON-1"))},
        {"type": "RepaymentReceived", **no_id(repayment("AON-1", "P-1")), "amount": "fifty"},
        {"type": "RepaymentReceived", **no_id(repayment("AON-1", "P-2"))},
    ]
    path = tmp_path / "mixed.jsonl"
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    path.write_bytes(data)
    env = env_for(topics)
    names = topics.topics

    refused = run(["publish", str(path)], env)

    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "nothing published" in refused.stderr
    assert f"{path}:2: RepaymentReceived: amount" in refused.stderr  # the line, not a generated id
    assert read_topic(topics, names.loan_accounts, idle=0.5, timeout=3) == []

    for _ in range(2):  # the second run: the same file again, e.g. after a broker failure
        partial = run(["publish", "--continue-on-error", str(path)], env)
        assert partial.returncode == 1, partial.stderr
        assert partial.stdout.strip() == "published 2 records"
        assert f"{path}:2: RepaymentReceived: amount" in partial.stderr

    published = [r.data["event_id"] for t in (names.loan_accounts, names.loan_repayments)  # type: ignore[index]
                 for r in read_topic(topics, t, min_count=2, idle=0.5)]
    digest = file_digest(data)
    assert sorted(published) == sorted([derived_event_id(digest, 1), derived_event_id(digest, 3)] * 2)
