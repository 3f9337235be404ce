"""Publishing benchmark records fast: pre-encoded Avro, one librdkafka producer, murmur2 keys."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, Message

from arrears.errors import PublishError
from arrears.kafka import create_topics, make_producer
from arrears.settings import Settings
from arrears.topics import INPUT_ROUTES, record_key
from producers.publisher import LoanEventPublisher
from schemas import event_type_headers, get_codec

from .dataset import History, Record

TP = tuple[str, int]


@dataclass(frozen=True)
class Encoded:
    """A record ready to send: its topic (without prefix), key, Avro bytes and headers."""

    base_topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def encode(records: Iterable[Record]) -> Iterable[Encoded]:
    codec = get_codec()
    headers = {name: tuple(event_type_headers(name)) for name in INPUT_ROUTES}
    for name, value in records:
        yield Encoded(INPUT_ROUTES[name], record_key(name, value).encode(),
                      codec.encode_single_object(name, value), headers[name])


class Feeder:
    """Sends encoded records under one topic prefix and waits for every acknowledgement.

    It also notes, per partition, the offset after the last record it delivered there: what a
    consumer of the backlog must have reached to have read all of it.
    """

    def __init__(self, settings: Settings, **producer_config: object) -> None:
        self.settings = settings
        # Batching as a bulk loader would; linger keeps requests large without slowing the tail.
        self.producer = make_producer(settings, **{"linger.ms": 20, "batch.num.messages": 10_000,
                                                   "queue.buffering.max.messages": 500_000,
                                                   **producer_config})
        self.failed: list[str] = []
        self.ends: dict[TP, int] = {}
        self._lock = threading.Lock()
        self.sent = 0

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.failed.append(err.str())
            return
        tp = (msg.topic(), msg.partition())
        with self._lock:
            if msg.offset() + 1 > self.ends.get(tp, 0):
                self.ends[tp] = msg.offset() + 1

    def send(self, item: Encoded) -> None:
        topic = self.settings.topics.name(item.base_topic)
        while True:
            try:
                self.producer.produce(topic, item.value, item.key, headers=list(item.headers),
                                      on_delivery=self._on_delivery)
                break
            except BufferError:
                self.producer.poll(0.05)
        self.sent += 1
        if self.sent % 1000 == 0:
            self.producer.poll(0)

    def send_all(self, items: Iterable[Encoded], progress: Callable[[int], None] | None = None) -> float:
        """Send everything, wait for the broker; return the seconds it took."""
        started = time.monotonic()
        n = 0
        for n, item in enumerate(items, 1):
            self.send(item)
            if progress is not None and n % 5000 == 0:
                progress(5000)
        if progress is not None:
            progress(n % 5000)
        self.flush()
        return time.monotonic() - started

    def flush(self, timeout: float = 300.0) -> None:
        remaining = self.producer.flush(timeout)
        if remaining or self.failed:
            raise PublishError(f"bench records not delivered: {remaining} pending, failures {self.failed[:3]}")


@dataclass
class Backlog:
    """A history published under one prefix, ready for any number of consumers to read from the start."""

    settings: Settings
    ends: dict[TP, int]  # per input partition, the offset after the last record of the history
    events: int  # input records (the ticks are on the calendar topic, not counted here)
    ticks: int
    last_tick: str | None = None  # the last business date, ISO
    seconds: float = 0.0  # how long publishing took
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def input_ends(self) -> dict[TP, int]:
        inputs = set(self.settings.topics.inputs)
        return {tp: end for tp, end in self.ends.items() if tp[0] in inputs}


def create_contract_topics(settings: Settings) -> None:
    """Every topic of the contract under the settings' prefix (a backlog is published before any worker runs)."""
    agencies = [a.id for a in settings.config.agencies]
    create_topics(settings, settings.topics.specs(settings.arrears_partitions, agencies))


def publish_history(settings: Settings, history: History, progress: Callable[[int], None] | None = None) -> Backlog:
    """Publish *history* segment by segment, each tick after the records before it are acknowledged.

    The ticks go through the publisher library, which gives each its barrier (the end offsets
    of every input partition at that moment), so a consumer reading the whole backlog later
    applies each record on the side of the tick it was published on.
    """
    started = time.monotonic()
    create_contract_topics(settings)
    feeder = Feeder(settings)
    with LoanEventPublisher(settings) as publisher:
        for i, segment in enumerate(history.segments):
            feeder.send_all(encode(segment), progress)
            if i < len(history.ticks):
                tick = history.ticks[i]
                publisher.end_of_day(tick.business_date, event_id=tick.event_id, occurred_at=tick.occurred_at)
    last = history.ticks[-1].business_date.isoformat() if history.ticks else None
    return Backlog(settings, dict(feeder.ends), history.events, len(history.ticks), last,
                   time.monotonic() - started)


def publish_first_tick(settings: Settings, business_date: dt.date) -> None:
    """A tick before anything else, at a date that changes nothing.

    A worker that starts on an empty calendar topic was seen to notice the first tick
    published later only after ~20 s (on the embedded broker); a lender's calendar is never
    empty for long, so the bench does not measure that: its phases start with a tick on record.
    """
    create_contract_topics(settings)
    with LoanEventPublisher(settings) as publisher:
        publisher.end_of_day(business_date)


def publish_records(settings: Settings, records: Iterable[Record], into: Backlog | None = None) -> Backlog:
    """Publish records without ticks; with *into*, add them to an existing backlog's counts."""
    started = time.monotonic()
    if into is None:
        create_contract_topics(settings)
    feeder = Feeder(settings)
    count = 0

    def counted() -> Iterable[Record]:
        nonlocal count
        for record in records:
            count += 1
            yield record

    feeder.send_all(encode(counted()))
    if into is None:
        return Backlog(settings, dict(feeder.ends), count, 0, seconds=time.monotonic() - started)
    into.ends.update(feeder.ends)  # later offsets of the same partitions replace earlier ones
    into.events += count
    into.seconds += time.monotonic() - started
    return into
