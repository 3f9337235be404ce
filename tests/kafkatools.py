"""Test helpers that read topics back (a plain consumer, no group commits)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from arrears.settings import Settings
from schemas import get_codec


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    name: str | None = None
    data: dict[str, Any] | None = None


def read_topic(
    settings: Settings,
    topic: str,
    *,
    min_count: int = 0,
    timeout: float = 30.0,
    idle: float = 1.0,
    decode: bool = True,
) -> list[Record]:
    """Read *topic* from the beginning until *min_count* records arrived and it stayed idle."""
    consumer = Consumer({
        **settings.kafka_config(),
        "group.id": f"test-reader-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    meta = consumer.list_topics(topic, timeout=10)
    partitions = meta.topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    codec = get_codec(settings.schema_registry_url)
    out: list[Record] = []
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            now = time.monotonic()
            if msg is None:
                if len(out) >= min_count and now - last >= idle:
                    break
                continue
            if msg.error():
                continue
            last = now
            rec = Record(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(),
                         {k: v for k, v in (msg.headers() or [])})
            if decode and msg.value() is not None:
                decoded = codec.decode(msg.value())
                rec.name, rec.data = decoded.name, decoded.value
            out.append(rec)
    finally:
        consumer.close()
    return out
