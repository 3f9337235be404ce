"""What a dead-letter topic holds, and republishing chosen records once their cause is fixed (SPEC §8).

A dead letter is the original record (key, bytes, headers) plus the ``dlq.*`` headers that say
why and where it came from (:mod:`arrears.dlq`). Replaying sends the original key, bytes and
headers (without the ``dlq.*`` ones) back to the source topic, partitioned by the key as every
producer must: the record keeps its event_id, and the processor applies it because a record
that broke the contract was never recorded as applied (SPEC §4).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from .errors import ArrearsError, BrokerError
from .kafka import client_config, make_producer
from .settings import Settings
from .topics import DLQ_SUFFIX


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = field(default=())

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace") if value is not None else None
        return None

    @property
    def reason(self) -> str:
        return self.header("dlq.reason") or "?"

    @property
    def error(self) -> str:
        return self.header("dlq.error") or ""

    @property
    def source_topic(self) -> str | None:
        return self.header("dlq.source.topic")

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if not k.startswith("dlq.")]


def dlq_topic_of(settings: Settings, topic: str) -> str:
    """The dead-letter topic for *topic*, given as ``agency.results`` or ``agency.results.dlq``, prefixed or not."""
    name = settings.topics.resolve(topic)
    return name if name.endswith(DLQ_SUFFIX) else settings.topics.dlq(name)


def read_dead_letters(settings: Settings, dlq_topic: str, *, timeout: float = 30.0) -> list[DeadLetter]:
    """Every record of *dlq_topic*, partition by partition in offset order."""
    consumer = Consumer(client_config(settings, **{
        "group.id": f"arrears-dlq-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
    }))
    try:
        try:
            metadata = consumer.list_topics(dlq_topic, timeout=10)
        except KafkaException as exc:
            raise BrokerError(f"cannot read {dlq_topic}: {exc}") from exc
        meta = metadata.topics.get(dlq_topic)
        if meta is None or meta.error is not None:
            raise ArrearsError(f"there is no topic {dlq_topic} (run `arrears topics`, or check the name and "
                               "ARREARS_TOPIC_PREFIX)")
        partitions = sorted(meta.partitions)
        consumer.assign([TopicPartition(dlq_topic, p, 0) for p in partitions])
        open_partitions = set(partitions)
        letters: list[DeadLetter] = []
        deadline = time.monotonic() + timeout
        while open_partitions and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.2):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        open_partitions.discard(message.partition())
                    continue
                letters.append(DeadLetter(message.partition(), message.offset(), message.key(), message.value(),
                                          tuple(message.headers() or ())))
        if open_partitions:
            raise BrokerError(f"could not read {dlq_topic} to its end within {timeout:.0f}s")
        return sorted(letters, key=lambda d: (d.partition, d.offset))
    finally:
        consumer.close()


def by_reason(letters: Iterable[DeadLetter]) -> Counter[str]:
    return Counter(letter.reason for letter in letters)


def choose(letters: Sequence[DeadLetter], *, offsets: Sequence[int] = (), partition: int | None = None,
           reason: str | None = None, everything: bool = False) -> list[DeadLetter]:
    """The dead letters an operator picked: by offset (within a partition when given), by reason, or all."""
    chosen = [d for d in letters if partition is None or d.partition == partition]
    if offsets:
        wanted = set(offsets)
        chosen = [d for d in chosen if d.offset in wanted]
        missing = wanted - {d.offset for d in chosen}
        if missing:
            raise ArrearsError(f"no dead letter at offset {', '.join(map(str, sorted(missing)))}"
                               + (f" in partition {partition}" if partition is not None else ""))
    if reason is not None:
        chosen = [d for d in chosen if d.reason == reason]
    if not (offsets or reason is not None or everything):
        raise ArrearsError("say which records to replay: --offset N, --reason REASON or --all")
    return chosen


def replay(settings: Settings, letters: Sequence[DeadLetter], *,
           timeout: float = 60.0) -> list[tuple[DeadLetter, str, int, int]]:
    """Republish each record to its source topic; (letter, topic, partition, offset) once acknowledged."""
    producer = make_producer(settings)
    landed: list[tuple[DeadLetter, str, int, int]] = []
    failures: list[str] = []

    def delivered(letter: DeadLetter) -> Any:
        def report(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                failures.append(f"partition {letter.partition} offset {letter.offset}: {err}")
            else:
                landed.append((letter, msg.topic(), msg.partition(), msg.offset()))
        return report

    for letter in letters:
        source = letter.source_topic
        if not source:
            failures.append(f"partition {letter.partition} offset {letter.offset}: no dlq.source.topic header")
            continue
        producer.produce(source, letter.value, letter.key, headers=letter.original_headers,
                         on_delivery=delivered(letter))
    remaining = producer.flush(timeout)
    if remaining:
        failures.append(f"{remaining} records not acknowledged within {timeout:.0f}s")
    if failures:
        raise BrokerError("replay incomplete: " + "; ".join(failures))
    return sorted(landed, key=lambda item: (item[0].partition, item[0].offset))


def describe(letter: DeadLetter, codec: Any, catalog: Any) -> dict[str, Any]:
    """One dead letter as JSON: where, why, the headers, and the record in JSON form when it decodes."""
    from schemas import CodecError, to_json

    body: dict[str, Any] = {
        "partition": letter.partition, "offset": letter.offset,
        "key": letter.key.decode("utf-8", "replace") if letter.key is not None else None,
        "headers": {k: (v.decode("utf-8", "replace") if v is not None else None) for k, v in letter.headers},
    }
    try:
        decoded = codec.decode(letter.value)
        body["record"] = to_json(catalog, decoded.name, decoded.value)
    except CodecError as exc:
        body["record"] = None
        body["undecodable"] = f"{exc.reason}: {exc}"
    return body
