"""Everything the worker writes, through one librdkafka producer: outputs, changelog, markers.

Records are produced in *groups*: :meth:`Sink.group` opens one, :meth:`Group.send` adds a
record, :meth:`Group.close` returns a future that resolves when every record in it is
acknowledged by the broker (acks=all,
idempotent, so per-partition order survives retries). The processor's durability order is
built from these futures: a batch's outputs are acknowledged before its state goes to the
changelog, and its state is acknowledged before the local store and the committed positions
move (see :mod:`streams.processor`).

A broker that is down makes the futures wait, not fail: deliveries have no timeout
(``message.timeout.ms=0``) and librdkafka retries. Only a permanent error (a record too
large, a topic that does not exist, a fatal idempotence error) fails a group; the processor
then stops the worker, and a restart replays from what is durable.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from confluent_kafka import KafkaException, Producer

from arrears.kafka import producer_config
from arrears.settings import Settings

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]]
_ANY_PARTITION = -1  # librdkafka's RD_KAFKA_PARTITION_UA: the partitioner (murmur2 of the key) chooses


class Group:
    """Records whose acknowledgement is awaited together."""

    __slots__ = ("sink", "sent", "acked", "future", "closed", "error", "offsets", "on_delivery")

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        # Sends are counted by the event loop's thread alone, acknowledgements by the poller
        # under the sink's lock; the poller reads the sends only once the group is closed.
        self.sent = 0
        self.acked = 0
        self.future: asyncio.Future[dict[tuple[str, int], int]] = sink._loop.create_future()
        self.closed = False
        self.error: BaseException | None = None
        self.offsets: dict[tuple[str, int], int] = {}  # highest acknowledged offset per partition
        self.on_delivery = partial(sink._delivered, self)

    def send(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None,
             timestamp_ms: int | None = None, partition: int | None = None) -> None:
        """Queue one record (partitioned by murmur2 of the key unless *partition* is given)."""
        self.sink._produce(self, topic, key, value, headers, timestamp_ms, partition)

    def close(self) -> asyncio.Future[dict[tuple[str, int], int]]:
        """No more records; the future resolves to the highest offsets acknowledged per partition."""
        sink = self.sink
        with sink._lock:
            self.closed = True
            done = self.acked == self.sent
        if done:
            sink._finish(self)
        return self.future


class Sink:
    """An idempotent librdkafka producer whose deliveries resolve asyncio futures by group."""

    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop, **extra: Any) -> None:
        self._loop = loop
        self._producer = Producer(producer_config(settings, **{
            "message.timeout.ms": 0,  # wait for the broker however long it is away
            "linger.ms": 2,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            # No compression: Faust's table recovery (aiokafka) and many consumers of the
            # outputs cannot read lz4 or zstd without extra libraries.
            "compression.type": "none",
            **extra,
        }))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="arrears-sink", daemon=True)
        self._poller.start()

    def group(self) -> Group:
        return Group(self)

    def _produce(self, group: Group, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None,
                 timestamp_ms: int | None, partition: int | None) -> None:
        # One call per record of every batch (outputs and changelog): no per-record lock or closure.
        group.sent += 1
        if headers and type(headers) is not list:
            headers = list(headers)
        while True:
            try:
                self._producer.produce(
                    topic, value, key,
                    partition=_ANY_PARTITION if partition is None else partition,
                    on_delivery=group.on_delivery,
                    timestamp=timestamp_ms if timestamp_ms is not None and timestamp_ms > 0 else 0,  # 0: now
                    headers=headers or None,
                )
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.05)
            except KafkaException as exc:
                group.sent -= 1
                raise RuntimeError(f"cannot produce to {topic}: {exc}") from exc

    def _delivered(self, group: Group, err: Any, msg: Any) -> None:
        with self._lock:
            group.acked += 1
            if err is not None and group.error is None:
                group.error = RuntimeError(f"delivery to {msg.topic()}[{msg.partition()}] failed: {err}")
            elif err is None:
                key = (msg.topic(), msg.partition())
                offset = msg.offset()
                if offset > group.offsets.get(key, -1):
                    group.offsets[key] = offset
            done = group.closed and group.acked == group.sent
        if done:
            self._loop.call_soon_threadsafe(self._finish, group)

    @staticmethod
    def _finish(group: Group) -> None:
        if group.future.done():
            return
        if group.error is not None:
            group.future.set_exception(group.error)
        else:
            group.future.set_result(group.offsets)

    def _poll(self) -> None:
        last_log = 0.0
        while not self._stop.is_set():
            try:
                self._producer.poll(0.05)
            except Exception as exc:  # noqa: BLE001 - keep serving deliveries
                now = time.monotonic()
                if now - last_log > 10:
                    last_log = now
                    log.warning("producer poll failed: %s", exc)

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout)
        self._stop.set()
        self._poller.join(timeout=2)
