"""Consumer lag and processing latency of a worker, for ``GET /metrics``.

Lag is measured from the processor's *durable* position (what its saved state vouches for)
to the end of the partition as its consumer last saw it: it counts messages held in a
sequencer as well as unread ones, which is what an operator must wait for after a restart.
The processor observes batch sizes and latency (a message's Kafka timestamp to the durable
commit of its batch) itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def refresh(processor: Any) -> dict[TopicPartition, int]:
    """Set ``arrears_consumer_lag`` from the processor (call it from the /metrics view)."""
    current = processor.lags()
    CONSUMER_LAG.clear()  # partitions revoked since the last scrape must not linger
    for (topic, partition), value in current.items():
        CONSUMER_LAG.labels(topic, str(partition)).set(value)
    return dict(current)


def ages(timestamps: Sequence[float | None], now: float) -> list[float]:
    """Seconds since each Kafka timestamp (seconds since the epoch); unknown ones are skipped."""
    return [max(0.0, now - t) for t in timestamps if t]
