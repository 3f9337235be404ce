"""``collections.audit``: a PiiAccessed record for every answer that shows personal data unmasked.

The record is acknowledged by the broker before the answer leaves the worker: if the audit
cannot be written, the personal data is not shown (503). The producer is created on first use,
so building the app connects nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import uuid
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from arrears.errors import ArrearsError
from arrears.kafka import make_producer
from arrears.settings import Settings
from schemas import Codec, event_type_headers

RECORD = "PiiAccessed"
ACK_TIMEOUT_SECONDS = 10.0


class AuditError(ArrearsError):
    """The access could not be recorded; the answer must not be given."""


def pii_accessed(token_name: str, endpoint: str, customer_id: str, *, loan_id: str | None = None,
                 case_id: str | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """The PiiAccessed record (decoded form: occurred_at a datetime)."""
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at": now or dt.datetime.now(dt.UTC),
        "token_name": token_name,
        "endpoint": endpoint,
        "case_id": case_id,
        "loan_id": loan_id,
        "customer_id": customer_id,
    }


class AuditLog:
    """Appends PiiAccessed to ``collections.audit`` (key customer_id), waiting for the broker's ack."""

    def __init__(self, settings: Settings, codec: Codec, ack_timeout: float = ACK_TIMEOUT_SECONDS) -> None:
        self.settings = settings
        self.codec = codec
        self.ack_timeout = ack_timeout
        self.topic = settings.topics.audit
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    def _client(self) -> Producer:
        with self._lock:
            if self._producer is None:
                self._producer = make_producer(self.settings, **{"message.timeout.ms": int(self.ack_timeout * 1000)})
            return self._producer

    def append(self, record: dict[str, Any]) -> None:
        """Send one record and block until the broker acknowledged it (raises :class:`AuditError`)."""
        payload = self.codec.encode(RECORD, record, topic=self.topic)
        done = threading.Event()
        outcome: list[str] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                outcome.append(err.str())
            done.set()

        producer = self._client()
        try:
            producer.produce(self.topic, payload, record["customer_id"].encode(), headers=event_type_headers(RECORD),
                             on_delivery=on_delivery)
        except (BufferError, KafkaError, ValueError) as exc:
            raise AuditError(f"{self.topic}: {exc}") from exc
        producer.flush(self.ack_timeout + 1.0)
        if not done.is_set():
            raise AuditError(f"{self.topic}: no acknowledgement within {self.ack_timeout:.0f}s")
        if outcome:
            raise AuditError(f"{self.topic}: {outcome[0]}")

    async def record(self, token_name: str, endpoint: str, customer_id: str, *, loan_id: str | None = None,
                     case_id: str | None = None) -> dict[str, Any]:
        """Append a PiiAccessed off the event loop; the record written."""
        record = pii_accessed(token_name, endpoint, customer_id, loan_id=loan_id, case_id=case_id)
        await asyncio.get_running_loop().run_in_executor(None, self.append, record)
        return record

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.flush(self.ack_timeout)
                self._producer = None
