"""The ceilings on the same broker, over the same backlog as the workers: a plain librdkafka
consume→produce loop and a do-nothing Faust agent."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from arrears.broker import die_with_parent
from arrears.errors import ArrearsError
from arrears.kafka import client_config, create_topics, make_producer
from arrears.settings import Settings
from arrears.topics import TopicSpec

from .context import Context
from .feed import Backlog
from .stats import rate


def librdkafka_loop(ctx: Context, backlog: Backlog) -> float:
    """Events/s of consume -> produce (acks=all) over the backlog, read from the start, no group join.

    Assigned rather than subscribed, so the figure is the loop's and not the group protocol's;
    offsets are committed per batch as a real loop would.
    """
    settings = backlog.settings
    sink = settings.topics.name(f"sink-{ctx.run}")
    create_topics(settings, [TopicSpec(sink, settings.arrears_partitions)])
    consumer = Consumer(client_config(settings, **{
        "group.id": f"bench-{ctx.run}-loop", "enable.auto.commit": False,
        "fetch.wait.max.ms": settings.arrears_fetch_max_wait_ms,
    }))
    producer = make_producer(settings)
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in backlog.input_ends])
    total = backlog.events
    count = 0
    first = 0.0
    deadline = time.monotonic() + 600
    try:
        while count < total and time.monotonic() < deadline:
            batch = consumer.consume(2000, 0.5)
            if not batch:
                continue
            if not first:
                first = time.monotonic()
            for msg in batch:
                if msg.error() is not None:
                    continue
                while True:
                    try:
                        producer.produce(sink, msg.value(), msg.key(), headers=msg.headers())
                        break
                    except BufferError:
                        producer.poll(0.01)
                count += 1
            producer.poll(0)
            consumer.commit(asynchronous=True)
        if producer.flush(60):
            raise ArrearsError("the librdkafka loop's output was not acknowledged")
        seconds = time.monotonic() - first
    finally:
        consumer.close()
    if count < total:
        raise ArrearsError(f"the librdkafka loop saw {count} of {total} events")
    return rate(count, seconds)


def faust_noop(ctx: Context, backlog: Backlog) -> float:
    """Events/s of a Faust agent that does nothing, with the worker's settings (a subprocess).

    It reads the backlog from the start under an app id (consumer group) of its own.
    """
    settings = ctx.reader(backlog.settings, "noop")
    return _counting_subprocess(ctx, settings, "arrears.bench.noop", backlog.events, "Faust no-op agent")


def _counting_subprocess(ctx: Context, settings: Settings, module: str, expect: int, what: str) -> float:
    log = (ctx.workdir / f"{module.rsplit('.', 1)[-1]}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--expect", str(expect)],
        env=ctx.env(settings), stdout=subprocess.PIPE, stderr=log, start_new_session=True,
        preexec_fn=die_with_parent,
    )
    lines: list[dict[str, float]] = []
    reader = threading.Thread(target=_read_lines, args=(proc, lines), daemon=True)
    reader.start()
    try:
        done = _wait_line(proc, lines, "count", 600, what)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
    return rate(int(done["count"]), float(done["seconds"]))


def _read_lines(proc: subprocess.Popen[bytes], into: list[dict[str, float]]) -> None:
    assert proc.stdout is not None
    for raw in proc.stdout:
        # mode's worker writes terminal control bytes to stdout, sometimes on our line
        start = raw.find(b"{")
        if start < 0:
            continue
        try:
            into.append(json.loads(raw[start:]))
        except ValueError:
            continue


def _wait_line(proc: subprocess.Popen[bytes], lines: list[dict[str, float]], key: str,
               timeout: float, what: str) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in lines:
            if key in line:
                return line
        if proc.poll() is not None:
            raise ArrearsError(f"the {what} exited ({proc.returncode}) before '{key}'")
        time.sleep(0.05)
    raise ArrearsError(f"the {what} did not report '{key}' within {timeout:.0f}s")
