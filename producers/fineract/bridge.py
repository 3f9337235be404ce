"""The consume -> map -> publish loop behind ``arrears fineract-bridge``.

Reads Fineract's external-event topic with a plain confluent-kafka consumer, decodes and plans
each message with the pure :mod:`mapping` / :mod:`planner` rules, and publishes the records
through :class:`~producers.publisher.LoanEventPublisher` (validated, keyed by loan id, murmur2,
idempotent). Delivery guarantees:

* offsets are committed only after every record mapped from the messages before them (and every
  dead letter) was acknowledged, so a crash re-delivers and never loses; re-delivered events map
  to the same event ids, which the processor applies once;
* a new business date's tick is published after every earlier record was acknowledged, with
  its barrier (SPEC §3), so the processor places it exactly after them;
* a message that does not decode or map goes, bytes unchanged, to ``<prefix><topic>.dlq``
  with the SPEC §2 headers, and the bridge goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from arrears import dlq
from arrears.errors import BrokerError, PublishError
from arrears.kafka import (
    client_config,
    create_topics,
    existing_topics,
    make_admin,
    make_producer,
    producer_config,
)
from arrears.settings import Settings
from arrears.topics import TopicSpec
from producers.publisher import LoanEventPublisher
from schemas import CodecError, get_codec

from .errors import FineractError
from .mapping import MappingOptions, wanted
from .messages import decode_envelope, decode_payloads
from .planner import Plan, Planner
from .schemas import FineractSchemas

log = logging.getLogger(__name__)

DEFAULT_TOPIC = "external-events"  # Fineract's default (FINERACT_EXTERNAL_EVENTS_KAFKA_TOPIC_NAME)
#: how far back the calendar topic is read at startup for the last tick (one tick a day: years)
TAIL_SCAN = 5000


@dataclass(frozen=True)
class BridgeConfig:
    """What the ``fineract-bridge`` command was asked to do."""

    schema_dirs: tuple[Path, ...]
    topic: str = DEFAULT_TOPIC
    group_id: str | None = None  # default: <prefix>arrears-fineract-bridge
    tenant: str | None = None
    options: MappingOptions = field(default_factory=MappingOptions)
    commit_every: int = 500  # messages between commits under load
    commit_interval: float = 2.0  # seconds between commits otherwise


@dataclass
class BridgeStats:
    """Counters of one run; logged periodically and at exit (ids and counts only)."""

    messages: int = 0
    published: Counter[str] = field(default_factory=Counter)  # by contract record
    skipped: Counter[str] = field(default_factory=Counter)  # by Fineract event type
    dead_lettered: Counter[str] = field(default_factory=Counter)  # by reason
    ticks: int = 0
    duplicates: int = 0
    other_tenant: int = 0

    def summary(self) -> str:
        def fmt(counter: Counter[str]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"

        return (f"{self.messages} messages; published: {fmt(self.published)}; ticks {self.ticks}; "
                f"skipped: {fmt(self.skipped)}; dead-lettered: {fmt(self.dead_lettered)}; "
                f"re-sends {self.duplicates}; other tenants {self.other_tenant}")


def dlq_topic(settings: Settings, topic: str) -> str:
    """``<prefix><topic>.dlq``: prefixed like every Arrears topic, without repeating the prefix."""
    return settings.topics.dlq(settings.topics.resolve(topic))


def default_group(settings: Settings) -> str:
    return f"{settings.arrears_topic_prefix}arrears-fineract-bridge"


def ensure_topics(settings: Settings, topic: str) -> None:
    """Create what the bridge reads and writes, if missing (idempotent).

    Fineract's topic is created with one partition when absent, which keeps Fineract's message
    order (and so the ticks' places) end to end; its DLQ gets the source's partition count.
    """
    have = existing_topics(make_admin(settings))
    needed = {*settings.topics.inputs, settings.topics.business_date}
    specs = [s for s in settings.topics.specs(settings.arrears_partitions) if s.name in needed]
    if topic not in have:
        specs.append(TopicSpec(topic, 1))
    specs.append(TopicSpec(dlq_topic(settings, topic), have.get(topic, 1)))
    created = create_topics(settings, specs)
    if created:
        log.info("created topics %s", ", ".join(created))


def last_business_date(settings: Settings, calendar: str, timeout: float = 15.0) -> dt.date | None:
    """The latest business date already ticked for *calendar*, read from the tail of the calendar topic."""
    topic = settings.topics.business_date
    consumer = Consumer(client_config(settings, **{
        "group.id": f"{default_group(settings)}-tail",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    }))
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=timeout, cached=False)
        if high <= low:
            return None
        consumer.assign([TopicPartition(topic, 0, max(low, high - TAIL_SCAN))])
        codec = get_codec(settings.schema_registry_url)
        latest: dt.date | None = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return latest
                continue
            try:
                decoded = codec.decode(msg.value())
            except CodecError:
                continue  # the processor dead-letters it; it moved no date
            if decoded.name == "BusinessDateChanged" and decoded.value.get("calendar") == calendar:
                date = decoded.value["business_date"]
                latest = date if latest is None or date > latest else latest
            if _coordinates(msg)[2] >= high - 1:
                return latest
        raise BrokerError(f"timed out reading the last business date from {topic}")
    except KafkaException as exc:
        raise BrokerError(f"cannot read the last business date from {topic}: {exc}") from exc
    finally:
        consumer.close()


class AckTrackingProducer(Producer):
    """A producer that remembers, per partition, the offset after the last record the broker acknowledged.

    A tick's barrier must place it after every record published before it. The barrier comes
    from the partitions' end offsets, and an end offset is not always an upper bound on what
    was acknowledged (the embedded broker reports the last batch's base offset + 1), so the
    bridge also raises each barrier entry to what it saw acknowledged itself.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.acknowledged: dict[tuple[str, int], int] = {}  # next offset after the last acknowledged

    def produce(self, *args: Any, **kwargs: Any) -> None:
        callback = kwargs.pop("on_delivery", None) or kwargs.pop("callback", None)

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                topic, partition, offset = _coordinates(msg)
                place = (topic, partition)
                self.acknowledged[place] = max(self.acknowledged.get(place, 0), offset + 1)
            if callback is not None:
                callback(err, msg)

        kwargs["on_delivery"] = on_delivery
        super().produce(*args, **kwargs)

    def raise_barrier(self, barrier: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """*barrier* with each offset at least past what this producer saw acknowledged there."""
        seen = self.acknowledged
        return [{**entry, "offset": max(entry["offset"], seen.get((entry["topic"], entry["partition"]), 0))}
                for entry in barrier]


def _coordinates(msg: Message) -> tuple[str, int, int]:
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    assert topic is not None and partition is not None and offset is not None  # set on every consumed record
    return topic, partition, offset


class FineractBridge:
    """One bridge process: consume Fineract's topic, publish contract records, commit after acks."""

    def __init__(self, settings: Settings, schemas: FineractSchemas, config: BridgeConfig) -> None:
        self.settings = settings
        self.schemas = schemas
        self.config = config
        self.topic = config.topic
        self.dlq_topic = dlq_topic(settings, config.topic)
        self.stats = BridgeStats()
        self._pending: dict[tuple[str, int], int] = {}  # next offset to commit, per partition
        self._dlq_failures: list[str] = []
        self._last_commit = time.monotonic()
        self._since_commit = 0
        self._consumer: Consumer | None = None
        self._publisher: LoanEventPublisher | None = None
        self._producer: AckTrackingProducer | None = None
        self._dlq_producer: Producer | None = None

    # ------------------------------------------------------------------ loop
    def run(self, stop: threading.Event | None = None) -> BridgeStats:
        """Bridge until *stop* is set; commit what was acknowledged and return the counters."""
        stop = stop or threading.Event()
        settings = self.settings
        ensure_topics(settings, self.topic)
        calendar = settings.config.calendar
        last = last_business_date(settings, calendar)
        planner = Planner(calendar, self.config.options, tenant=self.config.tenant, last_business_date=last)
        group = self.config.group_id or default_group(settings)
        log.info("bridging %s -> Arrears topics (prefix %r), last business date %s, group %s",
                 self.topic, settings.arrears_topic_prefix, last, group)
        self._consumer = Consumer(client_config(settings, **{
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": settings.arrears_session_timeout_ms,
        }))
        dlq_producer = self._dlq_producer = make_producer(settings)
        next_report = time.monotonic() + 60
        self._producer = AckTrackingProducer(producer_config(settings))
        with LoanEventPublisher(settings, producer=self._producer) as publisher:
            self._publisher = publisher
            try:
                self._consumer.subscribe([self.topic], on_revoke=self._on_revoke)
                while not stop.is_set():
                    msg = self._consumer.poll(0.5)
                    if msg is not None:
                        self._receive(msg, planner)
                    self._commit_if_due(idle=msg is None)
                    if time.monotonic() >= next_report:
                        log.info("fineract bridge: %s", self.stats.summary())
                        next_report = time.monotonic() + 60
                self._commit()
            finally:
                self._consumer.close()  # leaves the group; uncommitted offsets are re-delivered
                dlq_producer.flush(10)
        log.info("fineract bridge stopped: %s", self.stats.summary())
        return self.stats

    def _receive(self, msg: Message, planner: Planner) -> None:
        error = msg.error()
        if error is not None:
            if error.fatal():
                raise BrokerError(f"consumer failed: {error.str()}")
            log.warning("consumer: %s", error.str())
            return
        self.stats.messages += 1
        try:
            envelope, payload = decode_envelope(self.schemas, msg.value())
        except FineractError as exc:
            self._dead_letter(msg, exc.reason, str(exc))
        else:
            try:
                plan = planner.plan(decode_payloads(self.schemas, envelope, payload, wanted))
            except FineractError as exc:
                plan = planner.failed(envelope, exc)  # the envelope's business date still counts
            self._execute(msg, plan)
        topic, partition, offset = _coordinates(msg)
        self._pending[(topic, partition)] = offset + 1
        self._since_commit += 1

    def _execute(self, msg: Message, plan: Plan) -> None:
        """Publish a plan: its tick once everything before it is acknowledged, then its records."""
        assert self._publisher is not None and self._producer is not None
        if plan.other_tenant:
            self.stats.other_tenant += 1
            return
        if plan.tick is not None:
            self._commit()  # every record of the earlier business dates acknowledged (and committed)
            tick = {**plan.tick.value, "barrier": self._producer.raise_barrier(self._publisher.barrier())}
            self._publisher.publish(plan.tick.record, tick, wait=True)
            self.stats.ticks += 1
            log.info("business date %s (from Fineract message %d)", tick["business_date"], plan.envelope.id)
        if plan.error is not None:
            self._dead_letter(msg, plan.error.reason, str(plan.error))
            return
        if plan.duplicate:
            self.stats.duplicates += 1
            log.debug("re-sent Fineract message %d (%s) already bridged",
                      plan.envelope.id, plan.envelope.type)
            return
        records = plan.records
        try:
            # Validate all before sending any: a message is bridged whole or dead-lettered whole.
            for record in records:
                self._publisher.prepare(record.record, record.value)
        except PublishError as exc:
            self._dead_letter(msg, dlq.MAPPING_ERROR, f"mapped record breaks the contract: {exc}")
            return
        for record in records:
            self._publisher.publish(record.record, record.value)
            self.stats.published[record.record] += 1
        for result in plan.results:
            if result.skipped is not None:
                self.stats.skipped[result.event_type] += 1
                log.debug("skipped %s of Fineract message %d: %s", result.event_type, plan.envelope.id,
                          result.skipped)

    def _dead_letter(self, msg: Message, reason: str, error: str) -> None:
        assert self._dlq_producer is not None
        topic, partition, offset = _coordinates(msg)
        # Errors name fields, ids and amounts, never a customer's personal data.
        log.warning("dead-lettering %s[%d]@%d: %s: %s", topic, partition, offset, reason, error)
        raw = msg.headers() or []
        pairs = list(raw.items()) if isinstance(raw, dict) else raw
        original = [(k, v if isinstance(v, bytes) else (v or "").encode()) for k, v in pairs]
        headers: list[tuple[str, str | bytes | None]] = [
            *dlq.dlq_headers(reason, error, topic, partition, offset, original)
        ]

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                self._dlq_failures.append(f"{topic}[{partition}]@{offset}: {err.str()}")

        while True:
            try:
                self._dlq_producer.produce(self.dlq_topic, msg.value(), msg.key(), headers=headers,
                                           on_delivery=on_delivery)
                break
            except BufferError:
                self._dlq_producer.poll(0.1)
        self._dlq_producer.poll(0)
        self.stats.dead_lettered[reason] += 1

    # ------------------------------------------------------------------ commits
    def _commit_if_due(self, idle: bool) -> None:
        if not self._pending:
            return
        due = time.monotonic() - self._last_commit >= self.config.commit_interval
        if idle or due or self._since_commit >= self.config.commit_every:
            self._commit()

    def _commit(self) -> None:
        """Wait for every publish and dead letter, then commit the offsets after them."""
        assert self._publisher is not None and self._consumer is not None and self._dlq_producer is not None
        self._publisher.flush()
        remaining = self._dlq_producer.flush(60)
        if remaining or self._dlq_failures:
            failures, self._dlq_failures = self._dlq_failures, []
            raise PublishError(f"dead letters not delivered to {self.dlq_topic}: "
                               + "; ".join(failures[:5] or [f"{remaining} unacknowledged"]))
        if self._pending:
            offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(self._pending.items())]
            try:
                self._consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                # Typically a rebalance took the partitions: their next owner re-delivers (same ids).
                log.warning("offset commit failed (%s); those messages will be re-delivered", exc)
            self._pending.clear()
        self._last_commit = time.monotonic()
        self._since_commit = 0

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._pending:
            self._commit()


def serve(config: BridgeConfig, settings: Settings | None = None) -> int:
    """Run the bridge in the foreground until SIGINT/SIGTERM (the CLI entry point)."""
    from arrears.logs import setup_logging
    from arrears.settings import load_settings

    settings = settings or load_settings()
    setup_logging("fineract-bridge", settings.arrears_log_format, settings.arrears_log_level)
    schemas = FineractSchemas.load(*config.schema_dirs)  # a bad directory stops here, before connecting
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stats = FineractBridge(settings, schemas, config).run(stop)
    print(f"fineract-bridge: {stats.summary()}", flush=True)
    return 0
