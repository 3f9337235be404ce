"""Consumer lag, processing latency and per-batch counts of a worker (streams/lag.py, metrics.py), no broker."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from streams import lag


@pytest.mark.parametrize(
    ("high", "committed", "expected"),
    [
        (100, 40, 60),
        (100, 100, 0),
        (100, None, 100),  # nothing committed yet: all of it is still to do
        (99, 100, 0),  # the embedded broker's short high watermark never makes lag negative
    ],
)
def test_lag_is_the_high_watermark_minus_the_durable_position(high: int, committed: int | None,
                                                              expected: int) -> None:
    assert lag.lags({("t", 0): high}, {("t", 0): committed}) == {("t", 0): expected}


def test_a_partition_without_a_known_high_watermark_is_left_out_rather_than_reported_caught_up() -> None:
    assert lag.lags({("t", 0): None, ("t", 1): 5}, {}) == {("t", 1): 5}


def test_refresh_reports_what_the_processor_measures_and_forgets_revoked_partitions() -> None:
    class Processor:
        def __init__(self, lags: dict[tuple[str, int], int]) -> None:
            self._lags = lags

        def lags(self) -> dict[tuple[str, int], int]:
            return self._lags

    assert lag.refresh(Processor({("in", 0): 6, ("in", 1): 7})) == {("in", 0): 6, ("in", 1): 7}
    assert REGISTRY.get_sample_value("arrears_consumer_lag", {"topic": "in", "partition": "0"}) == 6
    lag.refresh(Processor({("in", 1): 0}))
    assert REGISTRY.get_sample_value("arrears_consumer_lag", {"topic": "in", "partition": "0"}) is None
    assert REGISTRY.get_sample_value("arrears_consumer_lag", {"topic": "in", "partition": "1"}) == 0


def test_ages_skip_messages_without_a_timestamp() -> None:
    assert lag.ages([100.0, None, 0.0, 99.5, 101.0], now=100.0) == [0.0, 0.5, 0.0]


def test_a_tally_adds_its_counts_to_the_counter_once_per_flush() -> None:
    from prometheus_client import CollectorRegistry, Counter

    from streams.metrics import ByLabel, Tally

    registry = CollectorRegistry()
    counter = Counter("tally_test_total", "test", ["type"], registry=registry)
    tally = Tally(ByLabel(counter))
    for name in ("LoanOpened", "RepaymentReceived", "LoanOpened"):
        tally.add(name)
    assert registry.get_sample_value("tally_test_total", {"type": "LoanOpened"}) is None
    tally.flush()
    tally.flush()  # nothing pending: adds nothing
    assert registry.get_sample_value("tally_test_total", {"type": "LoanOpened"}) == 2
    assert registry.get_sample_value("tally_test_total", {"type": "RepaymentReceived"}) == 1
