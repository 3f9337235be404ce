"""Publishing benchmark records fast: pre-encoded Avro, one librdkafka producer, murmur2 keys."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message

from arrears.errors import PublishError
from arrears.kafka import make_producer
from arrears.settings import Settings
from arrears.topics import INPUT_ROUTES, record_key
from schemas import event_type_headers, get_codec

from .dataset import Record


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
    """Sends encoded records under one topic prefix and waits for every acknowledgement."""

    def __init__(self, settings: Settings, **producer_config: object) -> None:
        self.settings = settings
        # Batching as a bulk loader would; linger keeps requests large without slowing the tail.
        self.producer = make_producer(settings, **{"linger.ms": 20, "batch.num.messages": 10_000,
                                                   "queue.buffering.max.messages": 500_000,
                                                   **producer_config})
        self.failed: list[str] = []
        self.sent = 0

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self.failed.append(err.str())

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
        for n, item in enumerate(items, 1):
            self.send(item)
            if progress is not None and n % 5000 == 0:
                progress(5000)
        self.flush()
        return time.monotonic() - started

    def flush(self, timeout: float = 300.0) -> None:
        remaining = self.producer.flush(timeout)
        if remaining or self.failed:
            raise PublishError(f"bench records not delivered: {remaining} pending, failures {self.failed[:3]}")
