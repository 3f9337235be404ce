"""Thin helpers around confluent-kafka clients: configs, topic creation, end offsets."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

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
        self._consumer = Consumer(
            client_config(settings, **{"group.id": "arrears-offset-reader", "enable.auto.commit": False})
        )

    def end_offsets(self, topics: Iterable[str], partitions: int, timeout: float = 10.0) -> dict[tuple[str, int], int]:
        result: dict[tuple[str, int], int] = {}
        for topic in topics:
            for partition in range(partitions):
                try:
                    _low, high = self._consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=timeout, cached=False
                    )
                except KafkaException as exc:
                    raise BrokerError(f"cannot read the end offset of {topic}[{partition}]: {exc}") from exc
                result[(topic, partition)] = high
        return result

    def close(self) -> None:
        self._consumer.close()
