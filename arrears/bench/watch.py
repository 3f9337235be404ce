"""Watching a run from the broker's side: durable positions, and what the workers wrote.

The bench learns how far a worker has got from Kafka, not from the worker's ``/metrics``:
the processor records its durable positions (every record below them applied, its outputs
and state acknowledged) under the consumer group ``<app id>-inputs`` (``streams/intake.py``),
so the sum of those committed offsets over the backlog's partitions is the number of records
a worker has durably done. Reading them costs the worker nothing.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from arrears.errors import ArrearsError
from arrears.kafka import OffsetReader, client_config
from arrears.settings import Settings

from .stats import Sample

TP = tuple[str, int]
INTAKE_GROUP_SUFFIX = "-inputs"  # the processor's positions, for lag tooling (streams/intake.py)


def intake_group(settings: Settings) -> str:
    return f"{settings.arrears_app_id}{INTAKE_GROUP_SUFFIX}"


class Positions:
    """The committed offsets of a worker group over a backlog's partitions."""

    def __init__(self, settings: Settings, ends: Mapping[TP, int]) -> None:
        self.ends = dict(ends)
        self._consumer = Consumer(client_config(settings, **{
            "group.id": intake_group(settings), "enable.auto.commit": False,
        }))

    @property
    def target(self) -> int:
        return sum(self.ends.values())

    def extend(self, ends: Mapping[TP, int]) -> None:
        self.ends.update(ends)

    def done(self) -> int:
        """Records durably applied (each partition counted up to the backlog's end)."""
        try:
            committed = self._consumer.committed([TopicPartition(t, p) for t, p in self.ends], timeout=10)
        except Exception:  # noqa: BLE001 - the coordinator may be busy; the next sample will tell
            return -1
        return sum(min(max(tp.offset, 0), self.ends[(tp.topic, tp.partition)]) for tp in committed)

    def close(self) -> None:
        self._consumer.close()


def follow(positions: Positions, timeout: float, progress: Callable[[int], None] | None = None,
           interval: float = 0.2, also: Callable[[], bool] = lambda: True,
           on_sample: Callable[[Sample], None] | None = None) -> list[Sample]:
    """Sample *positions* until every record is done and *also* holds; the samples, in order."""
    samples: list[Sample] = []
    deadline = time.monotonic() + timeout
    last = 0
    target = positions.target
    while time.monotonic() < deadline:
        value = positions.done()
        if value < 0:
            time.sleep(interval)
            continue
        sample = Sample(time.monotonic(), value)
        samples.append(sample)
        if on_sample is not None:
            on_sample(sample)
        if progress is not None and value > last:
            progress(value - last)
            last = value
        if value >= target and also():
            return samples
        time.sleep(interval)
    raise ArrearsError(f"the workers did {last} of {target} records within {timeout:.0f}s")


def end_offsets(settings: Settings, topics: Iterable[str], partitions: int) -> dict[TP, int]:
    return OffsetReader(settings).end_offsets(list(topics), partitions)


def count_types(settings: Settings, topics: Mapping[str, int], since: Mapping[TP, int] | None = None,
                timeout: float = 120.0) -> Counter[str]:
    """Records on *topics* ({name: partitions}) by their ``event_type`` header (dead letters by
    ``dlq:<reason>``), from *since* (or the beginning) to the ends as they are now."""
    reader = OffsetReader(settings)
    ends: dict[TP, int] = {}
    for topic, partitions in topics.items():
        ends.update(reader.end_offsets([topic], partitions))
    starts = {tp: (since or {}).get(tp, 0) for tp in ends}
    todo = {tp for tp, end in ends.items() if end > starts[tp]}
    counts: Counter[str] = Counter()
    if not todo:
        return counts
    consumer = Consumer(client_config(settings, **{
        "group.id": f"{settings.arrears_app_id}-bench-count", "enable.auto.commit": False,
        "enable.partition.eof": False, "isolation.level": "read_uncommitted",
    }))
    consumer.assign([TopicPartition(t, p, starts[(t, p)] or OFFSET_BEGINNING) for t, p in todo])
    deadline = time.monotonic() + timeout
    try:
        while todo and time.monotonic() < deadline:
            for msg in consumer.consume(5000, 0.5):
                if msg.error() is not None:
                    continue
                tp = (msg.topic(), msg.partition())
                if tp not in todo or msg.offset() >= ends[tp]:
                    continue
                headers = dict(msg.headers() or [])
                reason = headers.get("dlq.reason")
                if reason is not None:
                    counts[f"dlq:{reason.decode()}"] += 1
                else:
                    counts[(headers.get("event_type") or b"?").decode()] += 1
                if msg.offset() + 1 >= ends[tp]:
                    todo.discard(tp)
    finally:
        consumer.close()
    if todo:
        raise ArrearsError(f"could not read {len(todo)} output partitions to their end within {timeout:.0f}s")
    return counts


@dataclass
class Seen:
    count: int = 0
    first_at: float = 0.0
    last_at: float = 0.0


class TopicWatcher:
    """Notes, from the end of a topic on, when records of chosen types appear (a plain consumer).

    ``keys[type]`` maps each record key (the loan id on ``collections.cases``) to when its
    first record of that type was seen; ``seen[type]`` counts them. With no types, every
    record counts, under ``"*"``.
    """

    def __init__(self, settings: Settings, topic: str, partitions: int, types: Iterable[str],
                 keep_keys: bool = False) -> None:
        self.settings = settings
        self.topic = topic
        self.partitions = partitions
        self.types = {t.encode(): t for t in types}
        self.every = not self.types
        if self.every:
            self.types = {b"*": "*"}
        self.keep_keys = keep_keys
        self.seen: dict[str, Seen] = {t: Seen() for t in self.types.values()}
        self.keys: dict[str, dict[bytes, float]] = {t: {} for t in self.types.values()}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TopicWatcher:
        self._thread.start()
        if not self._ready.wait(30):
            raise ArrearsError(f"the watcher could not assign {self.topic}")
        return self

    def _run(self) -> None:
        consumer = Consumer(client_config(self.settings, **{
            "group.id": f"{self.settings.arrears_app_id}-bench-watch", "enable.auto.commit": False,
            # The embedded broker answers a fetch only when its wait ends: keep the wait short.
            "fetch.wait.max.ms": 5, "fetch.min.bytes": 1,
        }))
        # Assigned at the ends as they are now (explicit offsets: an OFFSET_END assignment of an
        # idle partition has no position until something arrives, so "ready" could not be told).
        ends = OffsetReader(self.settings).end_offsets([self.topic], self.partitions)
        consumer.assign([TopicPartition(self.topic, p, ends[(self.topic, p)]) for p in range(self.partitions)])
        self._ready.set()
        try:
            while not self._stop.is_set():
                for msg in consumer.consume(1000, 0.05):
                    if msg.error() is not None:
                        continue
                    now = time.monotonic()
                    kind = "*" if self.every else self.types.get(dict(msg.headers() or []).get("event_type", b""))
                    if kind is None:
                        continue
                    seen = self.seen[kind]
                    seen.count += 1
                    seen.first_at = seen.first_at or now
                    seen.last_at = now
                    if self.keep_keys:
                        self.keys[kind].setdefault(msg.key() or b"", now)
        finally:
            consumer.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
