"""Thin helpers around confluent-kafka clients: configs, topic creation, end offsets."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, IsolationLevel, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from .errors import BrokerError
from .settings import Settings
from .topics import TopicSpec

log = logging.getLogger(__name__)
_rdkafka_log = logging.getLogger("rdkafka")


def client_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    return {**settings.kafka_config(), "logger": _rdkafka_log, **extra}


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Idempotent, acks=all, and murmur2 partitioning so keys land where Faust and Java put them."""
    return client_config(
        settings,
        **{
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
            "linger.ms": 5,
            "message.timeout.ms": 120_000,
            **extra,
        },
    )


def make_producer(settings: Settings, **extra: Any) -> Producer:
    return Producer(producer_config(settings, **extra))


def make_admin(settings: Settings) -> AdminClient:
    return AdminClient(client_config(settings))


def existing_topics(admin: AdminClient, timeout: float = 10.0) -> dict[str, int]:
    """{topic: partition count} of what the broker has."""
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerError(f"cannot list topics: {exc}") from exc
    return {name: len(meta.partitions) for name, meta in metadata.topics.items() if not meta.error}


def create_topics(settings: Settings, specs: Iterable[TopicSpec], timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; return the names created (idempotent).

    Topic configs the broker refuses (the embedded broker knows no compaction or retention
    settings) are dropped with a warning rather than failing the command.
    """
    admin = make_admin(settings)
    have = existing_topics(admin)
    wanted = [s for s in specs if s.name not in have]
    for spec in specs:
        if spec.name in have and have[spec.name] != spec.partitions:
            log.warning("topic %s has %d partitions, expected %d", spec.name, have[spec.name], spec.partitions)
    created: list[str] = []
    for spec in wanted:
        for config in ({**spec.optional_config, **spec.config}, dict(spec.config)):
            futures = admin.create_topics(
                [NewTopic(spec.name, num_partitions=spec.partitions, replication_factor=-1, config=config)],
                operation_timeout=timeout,
            )
            try:
                futures[spec.name].result(timeout)
            except KafkaException as exc:
                code = exc.args[0].name() if exc.args and hasattr(exc.args[0], "name") else ""
                if code == "TOPIC_ALREADY_EXISTS":
                    break
                if config and config != spec.config:
                    log.warning("broker refused configs %s for %s (%s); creating without them", config, spec.name, code)
                    continue
                raise BrokerError(f"cannot create topic {spec.name}: {exc}") from exc
            created.append(spec.name)
            break
    return created


class OffsetReader:
    """Reads partitions' end offsets (the places of a tick's barrier)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._admin = make_admin(settings)
        self._consumer: Consumer | None = None

    def reported_end_offsets(
        self, topics: Iterable[str], partitions: int, timeout: float = 10.0, *, committed: bool = False
    ) -> dict[tuple[str, int], int]:
        """End offsets as the broker reports them (one ListOffsets request); with *committed*,
        the last stable offset (what a read_committed consumer can reach)."""
        return self._list_offsets([(t, p) for t in topics for p in range(partitions)], timeout, committed=committed)

    def _list_offsets(self, pairs: list[tuple[str, int]], timeout: float, *,
                      committed: bool = False) -> dict[tuple[str, int], int]:
        request = {TopicPartition(t, p): OffsetSpec.latest() for t, p in pairs}
        isolation = IsolationLevel.READ_COMMITTED if committed else IsolationLevel.READ_UNCOMMITTED
        try:
            futures = self._admin.list_offsets(request, request_timeout=timeout, isolation_level=isolation)
            return {(tp.topic, tp.partition): future.result(timeout).offset for tp, future in futures.items()}
        except KafkaException as exc:
            topics = ", ".join(sorted({t for t, _ in pairs}))
            raise BrokerError(f"cannot read end offsets of {topics}: {exc}") from exc

    def end_offsets(self, topics: Iterable[str], partitions: int, timeout: float = 10.0) -> dict[tuple[str, int], int]:
        """The offset after the last record of each partition of *topics*."""
        return self.end_offsets_of([(t, p) for t in topics for p in range(partitions)], timeout)

    def end_offsets_of(self, pairs: Iterable[tuple[str, int]], timeout: float = 10.0) -> dict[tuple[str, int], int]:
        """The offset after the last record of each (topic, partition).

        The embedded broker (Tansu 0.6) reports the last *batch's* base offset + 1 as the end,
        too low when that batch holds several records. So the last batch is read back: the
        true end is one past the last offset found (on Kafka the read finds nothing more).
        """
        ends = self._list_offsets(list(pairs), timeout)
        to_check = {key: end for key, end in ends.items() if end > 0}
        if not to_check:
            return ends
        consumer = self._verifier()
        consumer.assign([TopicPartition(t, p, end - 1) for (t, p), end in to_check.items()])
        remaining = set(to_check)
        deadline = time.monotonic() + timeout
        try:
            while remaining and time.monotonic() < deadline:
                for message in consumer.consume(1000, 0.02):
                    key = (message.topic(), message.partition())
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            remaining.discard(key)
                        continue
                    ends[key] = max(ends[key], message.offset() + 1)
        finally:
            consumer.unassign()
        if remaining:
            raise BrokerError(f"cannot confirm the end offsets of {sorted(remaining)} within {timeout:.0f}s")
        return ends

    def last_values(self, topic: str, partitions: int, timeout: float = 10.0) -> dict[int, bytes | None]:
        """The value of the last record of each partition of *topic* (None when it is empty)."""
        ends = self.end_offsets([topic], partitions, timeout)
        last: dict[int, bytes | None] = {p: None for p in range(partitions)}
        wanted = {(topic, p): end - 1 for (_, p), end in ends.items() if end > 0}
        if not wanted:
            return last
        consumer = self._verifier()
        consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in wanted.items()])
        deadline = time.monotonic() + timeout
        try:
            while wanted and time.monotonic() < deadline:
                for message in consumer.consume(1000, 0.02):
                    if message.error() is None and message.offset() == wanted.get((topic, message.partition())):
                        last[message.partition()] = message.value()
                        del wanted[(topic, message.partition())]
        finally:
            consumer.unassign()
        if wanted:
            raise BrokerError(f"cannot read the last records of {topic} within {timeout:.0f}s")
        return last

    def _verifier(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(client_config(self._settings, **{
                "group.id": "arrears-offset-reader",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "fetch.wait.max.ms": 10,
            }))
        return self._consumer

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
