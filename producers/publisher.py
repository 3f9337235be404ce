"""The library a loan system (or an agency adapter, or our tooling) publishes contract records with.

Each record is validated against its schema before it is sent, keyed by its loan id and
partitioned with murmur2 (so Faust and Java clients agree on its partition), sent by an
idempotent producer with ``acks=all``, and every delivery failure is surfaced: ``flush`` raises
:class:`~arrears.errors.PublishError` naming the failed events.

    with LoanEventPublisher(load_settings()) as pub:
        pub.publish("RepaymentReceived", {"loan_id": "L1", "payment_id": "P1", "amount": 120000,
                                          "currency": "CNY", "value_date": "2026-03-01",
                                          "channel": "BANK_TRANSFER"})
        pub.end_of_day("2026-03-01")   # BusinessDateChanged with its barrier
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from arrears.errors import PublishError
from arrears.kafka import OffsetReader, make_producer
from arrears.settings import Settings, load_settings
from arrears.topics import INPUT_ROUTES, record_key
from schemas import Catalog, Codec, CodecError, event_type_headers, from_json, get_codec
from schemas.jsonform import format_instant

log = logging.getLogger(__name__)


def _to_json_value(value: Any) -> Any:
    """Let callers pass dates and datetimes; the JSON-form reader validates everything else."""
    if isinstance(value, dt.datetime):
        return format_instant(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json_value(v) for v in value]
    return value


def now_millis() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


def prepare_record(catalog: Catalog, record_name: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """An input record made Avro-ready: event_id (a new UUID) and occurred_at (now) filled when absent.

    Raises :class:`~schemas.CodecError` (the schema) or :class:`ValueError` (the key), naming the field.
    """
    if record_name not in INPUT_ROUTES:
        raise ValueError(f"type: {record_name!r} is not an input record (one of {', '.join(sorted(INPUT_ROUTES))})")
    data = dict(value)
    data.setdefault("event_id", str(uuid.uuid4()))
    data.setdefault("occurred_at", now_millis())
    _, record = from_json(catalog, {"type": record_name, **_to_json_value(data)})
    record_key(record_name, record)  # a case id that names no loan, ...
    return record


class LoanEventPublisher:
    """Validated, keyed, acknowledged publishing of contract input records."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        codec: Codec | None = None,
        producer: Producer | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.topics = self.settings.topics
        self.codec = codec or get_codec(self.settings.schema_registry_url)
        self._producer = producer or make_producer(self.settings)
        self._failures: list[str] = []
        self._lock = threading.Lock()
        self._offsets: OffsetReader | None = None

    # ------------------------------------------------------------------ records
    def prepare(self, record_name: str, value: Mapping[str, Any]) -> dict[str, Any]:
        """Fill event_id/occurred_at when absent and validate; return the Avro-ready value."""
        try:
            return prepare_record(self.codec.catalog, record_name, value)
        except (CodecError, ValueError) as exc:
            # Name the caller's event id; one generated here would only confuse.
            given = f" {value['event_id']}" if value.get("event_id") else ""
            raise PublishError(f"{record_name}{given}: {exc}") from exc

    def publish(self, record_name: str, value: Mapping[str, Any], *, wait: bool = False) -> dict[str, Any]:
        """Validate and send one record; with ``wait=True`` return only once the broker acknowledged it."""
        record = self.prepare(record_name, value)
        topic = self.topics.for_record(record_name)
        key = record_key(record_name, record)  # checked by prepare
        payload = self.codec.encode(record_name, record, topic=topic)
        self._send(topic, key, payload, record_name, record["event_id"])
        if wait:
            self.flush()
        return record

    def _send(self, topic: str, key: str, payload: bytes, record_name: str, event_id: str) -> None:
        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                with self._lock:
                    self._failures.append(f"{record_name} {event_id} to {topic}: {err.str()}")

        while True:
            try:
                self._producer.produce(
                    topic, payload, key.encode(), headers=event_type_headers(record_name), on_delivery=on_delivery
                )
                break
            except BufferError:
                self._producer.poll(0.1)  # local queue full: wait for deliveries, then retry
        self._producer.poll(0)

    # --------------------------------------------------------------- ticks
    def barrier(self) -> list[dict[str, Any]]:
        """The input partitions' end offsets now: the exact place of a tick published next."""
        if self._offsets is None:
            self._offsets = OffsetReader(self.settings)
        ends = self._offsets.end_offsets(self.topics.inputs, self.settings.arrears_partitions)
        return [{"topic": t, "partition": p, "offset": o} for (t, p), o in sorted(ends.items())]

    def end_of_day(
        self,
        business_date: dt.date | str,
        *,
        calendar: str | None = None,
        event_id: str | None = None,
        occurred_at: dt.datetime | int | str | None = None,
    ) -> dict[str, Any]:
        """Publish "the business date is now D" after everything sent so far was acknowledged.

        The tick carries its barrier, so the processor applies it exactly after every event
        published before this call and before every event published after it. Pass the
        ``event_id`` and ``occurred_at`` of a recorded tick to republish it identically (the
        outputs a tick causes carry its ``occurred_at``); both default to new values.
        """
        self.flush()
        value: dict[str, Any] = {
            "calendar": calendar or self.settings.config.calendar,
            "business_date": business_date,
            "barrier": self.barrier(),
        }
        if event_id:
            value["event_id"] = event_id
        if occurred_at is not None:
            value["occurred_at"] = occurred_at
        return self.publish("BusinessDateChanged", value, wait=True)

    # ------------------------------------------------------------------ life
    def flush(self, timeout: float = 60.0) -> None:
        """Wait for every send; raise :class:`PublishError` if any failed or did not finish."""
        remaining = self._producer.flush(timeout)
        with self._lock:
            failures, self._failures = self._failures, []
        if remaining:
            failures.append(f"{remaining} records still unacknowledged after {timeout:.0f}s")
        if failures:
            raise PublishError(f"{len(failures)} record(s) not delivered: " + "; ".join(failures[:5]))

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._offsets is not None:
                self._offsets.close()
                self._offsets = None

    def __enter__(self) -> LoanEventPublisher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            try:
                self.close()
            except PublishError:
                log.exception("publisher closed after an error; some records were not delivered")
