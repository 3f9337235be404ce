"""Consumer lag and processing latency of a worker (streams/lag.py), without a broker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import REGISTRY

from streams import lag


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


class FakeConsumer:
    """Stands in for Faust's consumer: an assignment, high watermarks and committed offsets."""

    def __init__(self, highwaters: dict[TP, int | None], committed: dict[TP, int]) -> None:
        self._highwaters = highwaters
        self._committed_offset = committed

    def assignment(self) -> set[TP]:
        return set(self._highwaters)

    def highwater(self, tp: TP) -> int | None:
        return self._highwaters[tp]


@pytest.mark.parametrize(
    ("high", "committed", "expected"),
    [
        (100, 40, 60),
        (100, 100, 0),
        (100, None, 100),  # nothing committed yet: all of it is still to do
        (99, 100, 0),  # the embedded broker's short high watermark never makes lag negative
    ],
)
def test_lag_is_the_high_watermark_minus_the_committed_offset(high: int, committed: int | None,
                                                              expected: int) -> None:
    assert lag.lags({("t", 0): high}, {("t", 0): committed}) == {("t", 0): expected}


def test_a_partition_without_a_known_high_watermark_is_left_out_rather_than_reported_caught_up() -> None:
    assert lag.lags({("t", 0): None, ("t", 1): 5}, {}) == {("t", 1): 5}


def test_refresh_reports_only_the_input_topics_and_forgets_revoked_partitions() -> None:
    consumer = FakeConsumer({TP("in", 0): 10, TP("in", 1): 7, TP("ticks", 0): 3}, {TP("in", 0): 4})
    assert lag.refresh(consumer, ["in"]) == {("in", 0): 6, ("in", 1): 7}
    assert REGISTRY.get_sample_value("arrears_consumer_lag", {"topic": "in", "partition": "0"}) == 6
    assert REGISTRY.get_sample_value("arrears_consumer_lag", {"topic": "ticks", "partition": "0"}) is None
    lag.refresh(FakeConsumer({TP("in", 1): 7}, {TP("in", 1): 7}), ["in"])
    assert REGISTRY.get_sample_value("arrears_consumer_lag", {"topic": "in", "partition": "0"}) is None
    assert REGISTRY.get_sample_value("arrears_consumer_lag", {"topic": "in", "partition": "1"}) == 0


def test_refresh_before_the_consumer_started_reports_nothing() -> None:
    class NotStarted:
        def assignment(self) -> set[Any]:
            raise RuntimeError("not started")

    assert lag.refresh(NotStarted(), ["in"]) == {}


def test_ages_skip_messages_without_a_timestamp() -> None:
    assert lag.ages([100.0, None, 0.0, 99.5, 101.0], now=100.0) == [0.0, 0.5, 0.0]


def test_instrument_observes_each_event_after_the_batch_is_handled() -> None:
    @dataclass
    class Message:
        timestamp: float

    @dataclass
    class Event:
        message: Message

    handled: list[int] = []

    class Processor:
        async def handle(self, events: list[Event]) -> None:
            handled.append(len(events))

    processor = Processor()
    before = REGISTRY.get_sample_value("arrears_processing_latency_seconds_count") or 0.0
    lag.instrument(processor, clock=lambda: 1000.0)
    asyncio.run(processor.handle([Event(Message(999.99)), Event(Message(998.0))]))
    assert handled == [2]
    assert REGISTRY.get_sample_value("arrears_processing_latency_seconds_count") == before + 2
    assert REGISTRY.get_sample_value("arrears_processing_latency_seconds_bucket", {"le": "0.01"}) >= 1
