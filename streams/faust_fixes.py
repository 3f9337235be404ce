"""Two corrections to faust-streaming 0.15 that at-least-once processing depends on.

Both are applied by :func:`apply` when the worker builds its app; each says why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from faust.tables import recovery as faust_recovery
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

_applied: dict[str, Any] = {}


def limit_fetch_wait(max_wait_ms: int) -> None:
    """Cap how long a fetch waits for data (Faust hard-codes 1500 ms).

    A Kafka broker answers a waiting fetch as soon as data arrives; the embedded broker only
    at the end of the wait, so every message would sit there up to 1.5 s. A short wait costs
    a few idle fetch requests a second and keeps latency in milliseconds on both.
    """
    thread_cls = faust_aiokafka.AIOKafkaConsumerThread
    original = _applied.setdefault("create", thread_cls._create_worker_consumer)

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = max_wait_ms
        return consumer

    thread_cls._create_worker_consumer = create


NOT_GUARDED = None
UNKNOWN = -1
Positions = Callable[[str, int], int | None]


def guard_commits(position: Positions) -> None:
    """Commit, for the topics we guard, exactly the position our durable state vouches for.

    Faust commits the first run of consecutive *acked* offsets; messages it skips during a
    rebalance are acked unprocessed, and a run may start past an unprocessed offset. For our
    agents the truth is simpler: the processor knows, per partition, the offset below which
    every message is applied or durably held (written to the changelog). That is what is
    committed; ``position`` returns it, ``UNKNOWN`` to commit nothing, ``None`` for topics
    Faust should handle as usual.
    """
    consumer_cls = faust_consumer.Consumer
    original = _applied.setdefault("new_offset", consumer_cls._new_offset)

    def new_offset(self: Any, tp: Any) -> int | None:
        durable = position(tp.topic, tp.partition)
        if durable is NOT_GUARDED:
            return original(self, tp)  # type: ignore[no-any-return]
        acked = self._acked[tp]
        if acked:  # forget acks the durable position covers; they are never needed again
            covered = [o for o in acked if o < max(durable, 0)]
            if covered:
                acked[:] = [o for o in acked if o >= durable]
                self._acked_index[tp].difference_update(covered)
        committed = self._committed_offset[tp]
        if durable == UNKNOWN or (committed is not None and durable <= committed):
            return None
        return durable

    consumer_cls._new_offset = new_offset


def seek_to_durable_positions(position: Positions) -> None:
    """After a rebalance, resume our partitions exactly where our durable state says.

    Faust seeks to the committed offsets; where nothing was committed yet it leaves the
    fetch position wherever the fetcher had got to, and records fetched before the seek
    but not yet delivered are dropped: they would never be seen. So every partition we
    guard is sought to its durable position, or to its beginning when that is unknown and
    nothing was committed (re-reading is harmless: redeliveries are recognised).
    """
    consumer_cls = faust_consumer.Consumer
    original = _applied.setdefault("perform_seek", consumer_cls.perform_seek)

    async def perform_seek(self: Any) -> None:
        await original(self)
        targets = {}
        from_start = []
        for tp in self.assignment():
            durable = position(tp.topic, tp.partition)
            if durable is NOT_GUARDED:
                continue
            if durable >= 0:
                targets[tp] = durable
            elif self._committed_offset.get(tp) is None:
                from_start.append(tp)
        if targets:
            await self.seek_wait(targets)
            for tp, offset in targets.items():
                self._read_offset[tp] = offset or None
        if from_start:
            earliest = await self.earliest_offsets(*from_start)
            await self.seek_wait({tp: earliest.get(tp) or 0 for tp in from_start})

    consumer_cls.perform_seek = perform_seek


def ignore_stale_acks() -> None:
    """Do not count acks of messages fetched before the last rebalance.

    After a rebalance Faust skips such messages and seeks back to the committed offsets, so
    they come again. But it also *acks* them, and its commit logic takes the first run of
    consecutive acked offsets even when it starts one past the committed offset (or when
    nothing was committed yet): a skipped message one past an unprocessed one would commit
    that one away. Counting only the current generation's acks keeps every ack contiguous
    from the committed offset.
    """
    consumer_cls = faust_consumer.Consumer
    original = _applied.setdefault("ack", consumer_cls.ack)

    def ack(self: Any, message: Any) -> bool:
        generation = getattr(message, "generation_id", None)
        if generation is not None and generation != self.app.consumer_generation_id:
            message.acked = True  # never again, and never counted
            return False
        return bool(original(self, message))

    consumer_cls.ack = ack


EndOffsets = Callable[[Iterable[tuple[str, int]]], dict[tuple[str, int], int]]


def recover_to_the_true_end(end_offsets: EndOffsets) -> None:
    """Read changelogs to their real end when recovering tables.

    Recovery stops at each changelog partition's high watermark as the broker reports it.
    The embedded broker reports the last batch's first offset + 1, so the rest of that
    batch (the last loans and sequencer state written) would be silently left out of the
    recovered table, while their source offsets are already committed. Each end offset is
    confirmed by reading the last batch back (see :class:`arrears.kafka.OffsetReader`).
    """
    recovery_cls = faust_recovery.Recovery
    original = _applied.setdefault("highwaters", recovery_cls._build_highwaters)

    async def build(self: Any, consumer: Any, tps: Any, destination: Any, title: str) -> None:
        await original(self, consumer, tps, destination, title)
        if not tps:
            return
        pairs = [(tp.topic, tp.partition) for tp in tps]
        ends = await asyncio.get_running_loop().run_in_executor(None, end_offsets, pairs)
        for tp in tps:
            destination[tp] = max(destination[tp], ends[(tp.topic, tp.partition)] - 1)

    recovery_cls._build_highwaters = build


def apply(fetch_max_wait_ms: int, end_offsets: EndOffsets, positions: Positions) -> None:
    limit_fetch_wait(fetch_max_wait_ms)
    ignore_stale_acks()
    recover_to_the_true_end(end_offsets)
    guard_commits(positions)
    seek_to_durable_positions(positions)
