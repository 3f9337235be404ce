"""The worker's own consumer of the partitions it owns: librdkafka, read_committed, batches.

Faust decides which partitions a worker owns (its consumer group, tables and rebalancing);
the records themselves are read here, off Faust's per-event stream, by a confluent-kafka
consumer that is assigned exactly those partitions at the positions the worker's durable
state names. That gives the processor what Faust's stream cannot:

* **Committed records only** (``isolation.level=read_committed``): an aborted transaction's
  records are never applied (SPEC §9).
* **Holes are normal.** Transaction markers (and compaction) take offsets that are never
  delivered. The consumer's *end-of-partition* events say "every record below offset E has
  been delivered", which is how a barrier that points just past a marker is satisfied
  (SPEC §3) and how the sequencer knows a topic has nothing more to offer right now.
* **Batches**: one read returns up to thousands of records (as soon as one is there) for a few
  microseconds each; nothing walks a per-event queue.
* **No skipped records**: positions change only when the processor says so (assignment),
  and every (re)assignment of a partition starts a new *epoch*; records of an older epoch
  still in flight are dropped by the processor, so a partition's records reach it in offset
  order, from the position it asked for, exactly once per epoch.
* **Broker trouble waits**: librdkafka retries connections and fetches by itself; errors are
  logged (rate-limited) and the worker goes on when the broker is back.

The consumer lives in a thread of its own (librdkafka calls block); batches cross to the
event loop through an ``asyncio.Queue``, at most a few at a time (backpressure).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from arrears.kafka import client_config
from arrears.settings import Settings
from arrears.topics import inputs_group

log = logging.getLogger(__name__)

TP = tuple[str, int]
OFFSET_BEGINNING = -2  # librdkafka's logical offset "from the beginning"


@dataclass
class Batch:
    """What one read of the consumer returned, with the wall-clock time it returned."""

    read_at: float
    records: list[Any] = field(default_factory=list)  # confluent_kafka.Message, data only
    ends: list[tuple[str, int, int]] = field(default_factory=list)  # (topic, partition, end offset)
    epochs: dict[TP, int] = field(default_factory=dict)  # the epoch of each partition in this batch


class Intake:
    """A librdkafka consumer of explicitly assigned partitions, feeding the event loop."""

    def __init__(self, settings: Settings, *, fetch_max_wait_ms: int, max_batch: int = 2000,
                 max_outstanding: int = 4, group_id: str | None = None) -> None:
        self._settings = settings
        self._config = client_config(settings, **{
            # A group id of its own: offsets committed under it are for operators' lag tooling
            # only (the positions that matter live in the worker's state); no one joins it.
            "group.id": group_id or inputs_group(settings.arrears_app_id),
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": fetch_max_wait_ms,
            "fetch.error.backoff.ms": 100,
            "queued.max.messages.kbytes": 65536,
            "reconnect.backoff.max.ms": 2000,
            "topic.metadata.refresh.interval.ms": 10_000,
        })
        self._max_batch = max_batch
        self._commands: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._slots = threading.Semaphore(max_outstanding)
        self._batches: asyncio.Queue[Batch] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._epochs: dict[TP, int] = {}  # owned by the thread; copied into each batch
        self._assigned: set[TP] = set()
        self._last_error_log = 0.0
        self._highwaters: dict[TP, int | None] = {}
        self._highwaters_at = 0.0
        self.failed: BaseException | None = None

    # ------------------------------------------------------------------ control (event loop side)
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._batches = asyncio.Queue()
        self._thread = threading.Thread(target=self._run, name="arrears-intake", daemon=True)
        self._thread.start()

    def assign(self, positions: Mapping[TP, int]) -> asyncio.Future[dict[TP, int]]:
        """Start reading these partitions at these offsets; resolves to their new epochs."""
        return self._command("assign", dict(positions))

    def unassign(self, partitions: Iterable[TP]) -> asyncio.Future[dict[TP, int]]:
        """Stop reading these partitions (records of theirs still queued are stale from now on)."""
        return self._command("unassign", set(partitions))

    def pause(self, partitions: Iterable[TP]) -> None:
        self._commands.put(("pause", set(partitions)))

    def resume(self, partitions: Iterable[TP]) -> None:
        self._commands.put(("resume", set(partitions)))

    def commit(self, offsets: Mapping[TP, int]) -> None:
        """Record positions under the intake's group id, for lag tooling (best effort)."""
        self._commands.put(("commit", dict(offsets)))

    def highwaters(self, partitions: Iterable[TP]) -> dict[TP, int | None]:
        """The end of each partition as the latest fetch saw it (None before any fetch).

        Read from a copy the consumer's thread refreshes every second: a librdkafka consumer
        is only ever called from its own thread.
        """
        known = self._highwaters
        return {tp: known.get(tp) for tp in partitions}

    def _refresh_highwaters(self, consumer: Consumer) -> None:
        now = time.monotonic()
        if now - self._highwaters_at < 1.0:
            return
        self._highwaters_at = now
        fresh: dict[TP, int | None] = {}
        for topic, partition in self._assigned:
            try:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            except Exception:  # noqa: BLE001 - not fetched yet
                high = None
            fresh[(topic, partition)] = high if high is not None and high >= 0 else None
        self._highwaters = fresh

    def _command(self, name: str, arg: Any) -> asyncio.Future[dict[TP, int]]:
        assert self._loop is not None
        future: asyncio.Future[dict[TP, int]] = self._loop.create_future()
        self._commands.put((name, (arg, future)))
        return future

    async def get(self) -> Batch:
        assert self._batches is not None
        batch = await self._batches.get()
        self._slots.release()
        return batch

    def stop(self) -> None:
        self._stop.set()
        self._slots.release()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        consumer = Consumer(self._config)
        try:
            while not self._stop.is_set():
                self._serve_commands(consumer)
                if not self._assigned:
                    time.sleep(0.02)
                    continue
                messages = self._take(consumer)
                self._refresh_highwaters(consumer)
                if not messages:
                    continue
                batch = Batch(time.time(), epochs=dict(self._epochs))
                for message in messages:
                    error = message.error()
                    if error is None:
                        batch.records.append(message)
                    elif error.code() == KafkaError._PARTITION_EOF:
                        batch.ends.append((message.topic(), message.partition(), message.offset()))
                    else:
                        self._log_error(error)
                if batch.records or batch.ends:
                    self._hand_over(consumer, batch)
        except BaseException as exc:  # pragma: no cover - a bug: make the worker stop loudly
            log.critical("the intake consumer failed", exc_info=exc)
            self.failed = exc
        finally:
            consumer.close()

    def _take(self, consumer: Consumer) -> list[Any]:
        """Whatever is ready, as soon as anything is: one ``poll`` that waits, then what is queued.

        ``consume(n, timeout)`` returns only once *n* messages are there or the timeout has passed,
        so under light traffic every batch waited the whole timeout (50 ms of latency per hop).
        """
        first = consumer.poll(0.05)
        if first is None:
            return []
        return [first, *consumer.consume(self._max_batch - 1, 0)]

    def _hand_over(self, consumer: Consumer, batch: Batch) -> None:
        """Queue *batch* for the event loop once there is room, answering commands meanwhile.

        A rebalance must not wait behind a full queue; a batch whose partitions were
        unassigned while it waited carries their old epochs, so the processor drops it.
        """
        while not self._slots.acquire(timeout=0.05):
            if self._stop.is_set():
                return
            self._serve_commands(consumer)
        assert self._loop is not None and self._batches is not None
        self._loop.call_soon_threadsafe(self._batches.put_nowait, batch)

    def _serve_commands(self, consumer: Consumer) -> None:
        while True:
            try:
                name, arg = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                if name == "assign":
                    positions, future = arg
                    self._do_assign(consumer, positions)
                    self._resolve(future, {tp: self._epochs[tp] for tp in positions})
                elif name == "unassign":
                    tps, future = arg
                    self._do_unassign(consumer, tps)
                    self._resolve(future, {tp: self._epochs.get(tp, 0) for tp in tps})
                elif name == "pause":
                    owned = [TopicPartition(t, p) for t, p in arg if (t, p) in self._assigned]
                    if owned:
                        consumer.pause(owned)
                elif name == "resume":
                    owned = [TopicPartition(t, p) for t, p in arg if (t, p) in self._assigned]
                    if owned:
                        consumer.resume(owned)
                elif name == "commit":
                    owned = [TopicPartition(t, p, o) for (t, p), o in arg.items() if (t, p) in self._assigned]
                    if owned:
                        consumer.commit(offsets=owned, asynchronous=True)
            except Exception as exc:  # noqa: BLE001 - reported to the caller or logged, never fatal here
                if name in ("assign", "unassign"):
                    self._fail(arg[1], exc)
                else:
                    log.warning("intake %s failed: %s", name, exc)

    def _do_assign(self, consumer: Consumer, positions: Mapping[TP, int]) -> None:
        again = [tp for tp in positions if tp in self._assigned]
        if again:
            consumer.incremental_unassign([TopicPartition(t, p) for t, p in again])
        consumer.incremental_assign([
            TopicPartition(t, p, offset if offset >= 0 else OFFSET_BEGINNING) for (t, p), offset in positions.items()
        ])
        for tp in positions:
            self._epochs[tp] = self._epochs.get(tp, 0) + 1
            self._assigned.add(tp)

    def _do_unassign(self, consumer: Consumer, tps: set[TP]) -> None:
        owned = [tp for tp in tps if tp in self._assigned]
        if owned:
            consumer.incremental_unassign([TopicPartition(t, p) for t, p in owned])
        for tp in owned:
            self._assigned.discard(tp)
            self._epochs[tp] = self._epochs.get(tp, 0) + 1

    def _resolve(self, future: asyncio.Future[dict[TP, int]], value: dict[TP, int]) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(lambda: future.done() or future.set_result(value))

    def _fail(self, future: asyncio.Future[dict[TP, int]], exc: BaseException) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(lambda: future.done() or future.set_exception(exc))

    def _log_error(self, error: KafkaError) -> None:
        now = time.monotonic()
        if error.fatal():
            log.critical("intake consumer: fatal error %s", error)
            raise RuntimeError(f"fatal consumer error: {error}")
        if now - self._last_error_log > 10:
            self._last_error_log = now
            log.warning("intake consumer: %s (librdkafka retries by itself)", error)
