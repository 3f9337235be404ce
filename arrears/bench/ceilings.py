"""The two ceilings on the same broker: a plain librdkafka loop and a do-nothing Faust agent."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from arrears.errors import ArrearsError
from arrears.kafka import client_config, create_topics, make_producer
from arrears.topics import TopicSpec

from .context import Context
from .feed import Encoded, Feeder
from .stats import rate


def librdkafka_loop(ctx: Context, data: Sequence[Encoded]) -> float:
    """Events/s of consume -> produce (acks=all) over the inputs, from a backlog, no group join.

    Assigned rather than subscribed, so the figure is the loop's and not the group protocol's;
    offsets are committed per batch as a real loop would.
    """
    settings = ctx.settings("rdk")
    sink = settings.topics.name("sink")
    specs = [TopicSpec(t, settings.arrears_partitions) for t in settings.topics.inputs]
    create_topics(settings, [*specs, TopicSpec(sink, settings.arrears_partitions)])
    Feeder(settings).send_all(data)
    consumer = Consumer(client_config(settings, **{
        "group.id": f"{settings.arrears_app_id}-loop", "enable.auto.commit": False,
        "fetch.wait.max.ms": settings.arrears_fetch_max_wait_ms,
    }))
    producer = make_producer(settings)
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in settings.topics.inputs
                     for p in range(settings.arrears_partitions)])
    total = len(data)
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


def faust_noop(ctx: Context, data: Sequence[Encoded]) -> float:
    """Events/s of a Faust agent that does nothing, with the worker's settings (a subprocess).

    From a backlog, like the librdkafka loop: the group join is not what is measured.
    """
    settings = ctx.settings("noop")
    specs = [TopicSpec(t, settings.arrears_partitions) for t in settings.topics.inputs]
    create_topics(settings, specs)
    Feeder(settings).send_all(data)
    log = (ctx.workdir / "faust-noop.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "arrears.bench.noop", "--expect", str(len(data))],
        env=ctx.env(settings), stdout=subprocess.PIPE, stderr=log, start_new_session=True,
    )
    lines: list[dict[str, float]] = []
    reader = threading.Thread(target=_read_lines, args=(proc, lines), daemon=True)
    reader.start()
    try:
        done = _wait_line(proc, lines, "count", 600)
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
               timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in lines:
            if key in line:
                return line
        if proc.poll() is not None:
            raise ArrearsError(f"the Faust no-op agent exited ({proc.returncode}) before '{key}'")
        time.sleep(0.05)
    raise ArrearsError(f"the Faust no-op agent did not report '{key}' within {timeout:.0f}s")
