"""Thin helpers around confluent-kafka clients: configs, topic creation, end offsets."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, IsolationLevel, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

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


def create_topics(settings: Settings, specs: Iterable[TopicSpec], timeout: float = 30.0, *,
                  allow_finite_retention: bool = False) -> list[str]:
    """Create the topics that do not exist yet, with their configs; return the names created (idempotent).

    A config the broker refuses stops the command with the topic and setting named, unless
    *allow_finite_retention*: then the topic is created without it and a warning says so
    (for brokers that cannot keep everything; :func:`check_topics` reports it afterwards).
    """
    admin = make_admin(settings)
    have = existing_topics(admin)
    specs = list(specs)
    for spec in specs:
        if spec.name in have and have[spec.name] != spec.partitions:
            log.warning("topic %s has %d partitions, expected %d", spec.name, have[spec.name], spec.partitions)
    created: list[str] = []
    for spec in (s for s in specs if s.name not in have):
        attempts = [dict(spec.config), {}] if allow_finite_retention and spec.config else [dict(spec.config)]
        for config in attempts:
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
                if config and config is not attempts[-1]:
                    log.warning("broker refused %s for topic %s (%s); creating it without them because "
                                "--allow-finite-retention was given", _settings_text(config), spec.name, code)
                    continue
                raise BrokerError(f"cannot create topic {spec.name} with {_settings_text(config)}: {exc}") from exc
            created.append(spec.name)
            break
    return created


@dataclass(frozen=True)
class TopicProblem:
    """A topic whose configuration differs from what Arrears needs."""

    topic: str
    setting: str
    wanted: str
    actual: str | None

    def __str__(self) -> str:
        found = "missing" if self.actual is None else f"{self.actual!r}"
        why = " (the topic must keep everything: a rebuild replays it)" if self.wanted == "-1" else ""
        return f"{self.topic}: {self.setting} is {found}, expected {self.wanted!r}{why}"


def describe_topic_configs(settings: Settings, names: Iterable[str],
                           timeout: float = 30.0) -> dict[str, dict[str, str]]:
    """{topic: {setting: value}} as the broker reports them."""
    admin = make_admin(settings)
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    if not resources:
        return {}
    try:
        futures = admin.describe_configs(resources, request_timeout=timeout)
        return {resource.name: {k: v.value for k, v in future.result(timeout).items()}
                for resource, future in futures.items()}
    except KafkaException as exc:
        raise BrokerError(f"cannot read topic configs: {exc}") from exc


def check_topics(settings: Settings, specs: Iterable[TopicSpec], timeout: float = 30.0) -> list[TopicProblem]:
    """Read every topic's configs back and report each setting that differs from its spec.

    A topic that does not exist is reported as a missing ``partitions`` setting.
    """
    specs = list(specs)
    have = existing_topics(make_admin(settings))
    problems = [TopicProblem(s.name, "partitions", str(s.partitions), None) for s in specs if s.name not in have]
    present = [s for s in specs if s.name in have]
    configs = describe_topic_configs(settings, [s.name for s in present if s.config], timeout)
    for spec in present:
        if have[spec.name] != spec.partitions:
            problems.append(TopicProblem(spec.name, "partitions", str(spec.partitions), str(have[spec.name])))
        actual = configs.get(spec.name, {})
        for setting, wanted in spec.config.items():
            if actual.get(setting) != wanted:
                problems.append(TopicProblem(spec.name, setting, wanted, actual.get(setting)))
    return problems


def align_topics(settings: Settings, problems: Iterable[TopicProblem], timeout: float = 30.0) -> list[TopicProblem]:
    """Set the differing configs of existing topics (partition counts are never changed); return those set."""
    by_topic: dict[str, list[TopicProblem]] = {}
    for problem in problems:
        if problem.setting != "partitions":
            by_topic.setdefault(problem.topic, []).append(problem)
    if not by_topic:
        return []
    admin = make_admin(settings)
    resources = [
        ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
            ConfigEntry(p.setting, p.wanted, incremental_operation=AlterConfigOpType.SET) for p in items])
        for topic, items in by_topic.items()
    ]
    done: list[TopicProblem] = []
    for resource, future in admin.incremental_alter_configs(resources, request_timeout=timeout).items():
        try:
            future.result(timeout)
            done.extend(by_topic[resource.name])
        except KafkaException as exc:
            log.warning("broker refused to set %s on %s: %s",
                        ", ".join(p.setting for p in by_topic[resource.name]), resource.name, exc)
    return done


def _settings_text(config: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(config.items())) or "no settings"


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

    def end_offsets(self, topics: Iterable[str], partitions: int, timeout: float = 10.0, *,
                    reaching: Mapping[tuple[str, int], int] | None = None) -> dict[tuple[str, int], int]:
        """The offset after the last record of each partition of *topics* (*reaching*: see :meth:`end_offsets_of`)."""
        return self.end_offsets_of([(t, p) for t in topics for p in range(partitions)], timeout, reaching=reaching)

    def end_offsets_of(self, pairs: Iterable[tuple[str, int]], timeout: float = 10.0, *,
                       reaching: Mapping[tuple[str, int], int] | None = None) -> dict[tuple[str, int], int]:
        """The offset after the last record of each (topic, partition).

        The embedded broker (Tansu 0.6) reports the last *batch's* base offset + 1 as the end,
        too low when that batch holds several records. So the last batch is read back: the
        true end is one past the last offset found (on Kafka the read finds nothing more).

        *reaching* is for a caller that only wants to know whether the end reaches an offset
        (a tick's barrier is checked so): a partition whose reported end already reaches its
        offset there is not read back, and its reported end is returned, which may then be
        below the true end. Reading back a large backlog's last batches takes a tenth of a second.
        """
        ends = self._list_offsets(list(pairs), timeout)
        reaching = reaching or {}
        to_check = {key: end for key, end in ends.items() if end > 0 and (key not in reaching or end < reaching[key])}
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
