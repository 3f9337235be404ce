"""Consumer lag and processing latency of a worker, for ``GET /metrics``, without touching the processor.

Two hooks, each one line:

* in the ``/metrics`` view (streams/web.py), before ``generate_latest()``::

      lag.refresh(worker.app.consumer, worker.settings.topics.inputs)

* in ``build_app`` (streams/app.py), after the processor is built::

      lag.instrument(processor)

Lag is measured against the *committed* offset, which for the guarded input topics is the
processor's durable position (see ``faust_fixes.guard_commits``): it counts messages held
in a sequencer as well as unread ones, which is what an operator must wait for after a restart.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import Gauge, Histogram

CONSUMER_LAG = Gauge(
    "arrears_consumer_lag",
    "Messages between the committed offset and the high watermark, per input partition on this worker",
    ["topic", "partition"],
)
PROCESSING_LATENCY = Histogram(
    "arrears_processing_latency_seconds",
    "From a message's Kafka timestamp to the durable commit of the batch that took it",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
BATCH_SIZE = Histogram(
    "arrears_batch_events", "Events per batch taken by the ledger agent",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000),
)

TopicPartition = tuple[str, int]


def lags(highwaters: Mapping[TopicPartition, int | None],
         committed: Mapping[TopicPartition, int | None]) -> dict[TopicPartition, int]:
    """Lag per partition: high watermark minus committed offset, never negative.

    A partition with no committed offset yet lags by its whole high watermark (everything in
    it is still to be processed, as far as a restart is concerned); one whose high watermark
    is unknown (no fetch answered yet) is left out rather than reported as 0.
    The embedded broker may report a high watermark a little short (the last batch's base
    offset + 1), hence the clamp.
    """
    out: dict[TopicPartition, int] = {}
    for tp, high in highwaters.items():
        if high is None:
            continue
        done = committed.get(tp) or 0
        out[tp] = max(0, int(high) - int(done))
    return out


def read_consumer(consumer: Any, topics: Iterable[str]) -> tuple[dict[TopicPartition, int | None],
                                                                  dict[TopicPartition, int | None]]:
    """(highwaters, committed offsets) of the consumer's assigned partitions of *topics*."""
    wanted = set(topics)
    highwaters: dict[TopicPartition, int | None] = {}
    committed: dict[TopicPartition, int | None] = {}
    try:
        assignment = consumer.assignment()
    except Exception:  # the consumer is not started yet: nothing to report
        return highwaters, committed
    offsets = getattr(consumer, "_committed_offset", {})
    for tp in assignment:
        if tp.topic not in wanted:
            continue
        key = (tp.topic, tp.partition)
        try:
            high = consumer.highwater(tp)
        except Exception:  # no fetch answered for this partition yet
            high = None
        highwaters[key] = int(high) if high is not None else None
        value = offsets.get(tp)
        committed[key] = int(value) if value is not None else None
    return highwaters, committed


def refresh(consumer: Any, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """Set ``arrears_consumer_lag`` from the Faust consumer (call it from the /metrics view)."""
    current = lags(*read_consumer(consumer, topics))
    CONSUMER_LAG.clear()  # partitions revoked since the last scrape must not linger
    for (topic, partition), value in current.items():
        CONSUMER_LAG.labels(topic, str(partition)).set(value)
    return current


def ages(timestamps: Sequence[float | None], now: float) -> list[float]:
    """Seconds since each Kafka timestamp (seconds since the epoch); unknown ones are skipped."""
    return [max(0.0, now - t) for t in timestamps if t]


def instrument(processor: Any, clock: Callable[[], float] = time.time) -> None:
    """Observe batch sizes and processing latency around ``processor.handle`` (wraps the bound method)."""
    original: Callable[[Sequence[Any]], Awaitable[None]] = processor.handle

    async def handle(events: Sequence[Any]) -> None:
        await original(events)
        # handle returns once the batch's outputs and state are durable (the processor's order)
        BATCH_SIZE.observe(len(events))
        for age in ages([getattr(e.message, "timestamp", None) for e in events], clock()):
            PROCESSING_LATENCY.observe(age)

    processor.handle = handle
