"""Reading output topics from the beginning, decoded: once to their end (the report), or following them.

Plain assigned consumers that never join or commit to a group, so reading never disturbs the
pipeline. Undecodable messages are skipped and counted (the processor dead-letters inputs; the
outputs are ours, so a failure here would be a bug worth seeing in the count, not a crash).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from schemas import CodecError, get_codec

from .errors import BrokerError
from .kafka import OffsetReader, client_config
from .settings import Settings

log = logging.getLogger(__name__)

Sink = Callable[[str, str, dict[str, Any]], None]  # (topic, record name, value)


def _consumer(settings: Settings) -> Consumer:
    return Consumer(client_config(settings, **{
        "group.id": f"arrears-reader-{uuid.uuid4().hex[:8]}",  # never joined: assign() only
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 50,
    }))


def partition_counts(consumer: Consumer, topics: Iterable[str], timeout: float = 10.0) -> dict[str, int]:
    """{topic: partitions} of the topics that exist."""
    try:
        metadata = consumer.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerError(f"cannot list topics: {exc}") from exc
    return {t: len(metadata.topics[t].partitions) for t in topics
            if t in metadata.topics and not metadata.topics[t].error}


def read_records(settings: Settings, topics: Iterable[str], timeout: float = 120.0
                 ) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every record of *topics* from the beginning to their end now: (topic, name, value).

    Each partition's records come in offset order; partitions interleave.
    """
    codec = get_codec(settings.schema_registry_url)
    consumer = _consumer(settings)
    reader = OffsetReader(settings)
    try:
        counts = partition_counts(consumer, topics)
        ends: dict[tuple[str, int], int] = {}
        for topic, n in counts.items():
            ends.update(reader.end_offsets([topic], n))
        remaining = {key: end for key, end in ends.items() if end > 0}
        if not remaining:
            return
        consumer.assign([TopicPartition(t, p, 0) for t, p in remaining])
        deadline = time.monotonic() + timeout
        skipped = 0
        while remaining:
            if time.monotonic() > deadline:
                raise BrokerError(f"could not read {sorted(counts)} to their end within {timeout:.0f}s")
            for message in consumer.consume(1000, 0.2):
                if message.error() is not None:
                    continue
                key = (message.topic(), message.partition())
                end = remaining.get(key)
                if end is None:
                    continue
                if message.offset() + 1 >= end:
                    del remaining[key]
                if message.value() is None:
                    continue
                try:
                    decoded = codec.decode(message.value())
                except CodecError:
                    skipped += 1
                    continue
                yield key[0], decoded.name, decoded.value
        if skipped:
            log.warning("%d undecodable messages skipped while reading %s", skipped, ", ".join(sorted(counts)))
    finally:
        consumer.close()
        reader.close()


class TopicTail:
    """A background thread that hands every record of *topics*, from the beginning on, to *sink*."""

    def __init__(self, settings: Settings, topics: Iterable[str], sink: Sink) -> None:
        self.settings = settings
        self.topics = list(topics)
        self.sink = sink
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="topic-tail", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> TopicTail:
        self.thread.start()
        return self

    def _run(self) -> None:
        codec = get_codec(self.settings.schema_registry_url)
        consumer = _consumer(self.settings)
        try:
            assigned: set[str] = set()
            next_lookup = 0.0
            while not self.stop_event.is_set():
                if len(assigned) < len(self.topics) and time.monotonic() >= next_lookup:
                    # Topics may appear after we start (a worker creates some): look again now and then.
                    counts = partition_counts(consumer, [t for t in self.topics if t not in assigned])
                    new = [TopicPartition(t, p, 0) for t, n in counts.items() for p in range(n)]
                    if new:
                        consumer.incremental_assign(new)
                        assigned.update(counts)
                    next_lookup = time.monotonic() + 2.0
                if not assigned:
                    self.stop_event.wait(0.2)
                    continue
                for message in consumer.consume(500, 0.2):
                    if message.error() is not None or message.value() is None:
                        continue
                    try:
                        decoded = codec.decode(message.value())
                    except CodecError:
                        continue
                    self.sink(str(message.topic()), decoded.name, decoded.value)
        except BaseException as exc:  # noqa: BLE001 - reported by the owner, which decides
            self.error = exc
            log.exception("reading %s stopped", ", ".join(self.topics))
        finally:
            consumer.close()

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)
