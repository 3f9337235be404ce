"""The corrections to faust-streaming that the worker depends on, each with its reason.

faust-streaming is pinned exactly (pyproject.toml) because these reach into its internals;
``tests/unit/test_faust_fixes.py`` fails loudly when a patched internal changes shape.

Most of what earlier versions corrected here is gone: the input topics are no longer read
through Faust's consumer and stream (see streams/intake.py), so Faust's commit bookkeeping,
its seeks after a rebalance and its skipped fetch positions cannot lose input records. Faust
still reads the table's changelog (recovery, standby replicas) and two tiny membership
topics, and for those two things matter:
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from faust.tables import recovery as faust_recovery
from faust.transport.drivers import aiokafka as faust_aiokafka

_applied: dict[str, Any] = {}


def limit_fetch_wait(max_wait_ms: int) -> None:
    """Cap how long a fetch waits for data (Faust hard-codes ``fetch_max_wait_ms=1500``).

    A Kafka broker answers a waiting fetch as soon as data arrives; the embedded broker
    (Tansu) only at the end of the wait, so table recovery and rebalances would crawl at one
    fetch per 1.5 s. A short wait costs a few idle fetch requests a second. Upstream: the
    value is a literal in ``AIOKafkaConsumerThread._create_worker_consumer`` (no setting).
    """
    thread_cls = faust_aiokafka.AIOKafkaConsumerThread
    original = _applied.setdefault("create", thread_cls._create_worker_consumer)

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = max_wait_ms
        return consumer

    thread_cls._create_worker_consumer = create


EndOffsets = Callable[[Iterable[tuple[str, int]]], dict[tuple[str, int], int]]


def recover_to_the_true_end(end_offsets: EndOffsets) -> None:
    """Read changelogs to their real end when recovering tables.

    Recovery stops at each changelog partition's high watermark as ListOffsets reports it.
    The embedded broker reports the last *batch's* first offset + 1, so the rest of that
    batch (the last loans and sequencer state written) would be silently left out of the
    recovered table while the positions they vouch for are already durable. Each end offset
    is confirmed by reading the last batch back (:class:`arrears.kafka.OffsetReader`).
    On Apache Kafka the read finds nothing more and this changes nothing. Upstream:
    ``Recovery._build_highwaters``.
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


def apply(fetch_max_wait_ms: int, end_offsets: EndOffsets) -> None:
    limit_fetch_wait(fetch_max_wait_ms)
    recover_to_the_true_end(end_offsets)
