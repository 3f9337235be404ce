"""The arithmetic and the synthetic data of ``arrears bench`` (no broker, no processes)."""

from __future__ import annotations

import datetime as dt

import pytest

from arrears.bench import dataset
from arrears.bench.profiling import hot_spots
from arrears.bench.stats import (
    REQUIRED_KEYS,
    Sample,
    bytes_per_item,
    flatten,
    missing_keys,
    nested,
    percentile,
    rate,
    rows,
    span_of_progress,
    tick_seconds_per_million,
)
from schemas import get_codec


@pytest.mark.parametrize(("values", "q", "expected"), [
    ([5.0], 99, 5.0),
    ([1, 2, 3, 4], 50, 2.5),
    ([1, 2, 3, 4], 0, 1.0),
    ([1, 2, 3, 4], 100, 4.0),
    (list(range(1, 101)), 99, 99.01),
    ([3, 1, 2], 50, 2.0),  # unsorted input
])
def test_percentile_interpolates_between_closest_ranks(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing_or_out_of_range_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_rate_is_zero_rather_than_a_division_by_zero() -> None:
    assert rate(1000, 2.0) == 500.0
    assert rate(0, 2.0) == 0.0
    assert rate(10, 0.0) == 0.0


def test_progress_span_starts_at_the_last_idle_sample_and_interpolates_the_end() -> None:
    samples = [Sample(0.0, 0), Sample(1.0, 0), Sample(2.0, 400), Sample(3.0, 800), Sample(4.0, 1200)]
    assert span_of_progress(samples, 0, 1000) == (1.0, pytest.approx(3.5))


def test_progress_span_of_a_counter_that_never_gets_there_is_none() -> None:
    assert span_of_progress([Sample(0.0, 0), Sample(1.0, 10)], 0, 100) is None
    assert span_of_progress([], 0, 1) is None


def test_progress_already_done_at_the_first_sample_spans_nothing() -> None:
    assert span_of_progress([Sample(5.0, 100)], 0, 100) == (5.0, 5.0)


def test_bytes_per_item_never_goes_negative() -> None:
    assert bytes_per_item(1000, 3000, 10) == 200.0
    assert bytes_per_item(3000, 1000, 10) == 0.0
    assert bytes_per_item(0, 1000, 0) == 0.0


def test_tick_time_scales_to_a_million_loans() -> None:
    assert tick_seconds_per_million(0.5, 50_000) == pytest.approx(10.0)
    assert tick_seconds_per_million(1.0, 0) == 0.0


def test_nested_and_flatten_are_inverse_and_the_required_keys_are_checked() -> None:
    flat = {k: 1.5 for k in REQUIRED_KEYS}
    doc = nested(flat)
    assert doc["ceilings"]["faust_noop_eps"] == 1.5
    assert flatten(doc) == flat
    assert missing_keys(doc) == []
    doc["tick"]["loans"] = "many"
    del doc["latency"]["p99_ms"]
    assert missing_keys(doc) == ["tick.loans", "latency.p99_ms"]


def test_the_table_gives_ratios_to_both_ceilings_and_judges_each_target() -> None:
    doc = nested({
        "ceilings.librdkafka_loop_eps": 10_000, "ceilings.faust_noop_eps": 2_000,
        "ingest.eps_1_worker": 6_000, "ingest.eps_2_workers": 5_000,
        "tick.loans": 50_000, "tick.seconds": 0.4, "tick.loans_per_second": 125_000,
        "latency.p50_ms": 20, "latency.p99_ms": 150,
        "memory.bytes_per_loan_memory": 3000, "memory.bytes_per_loan_rocksdb": 900,
    })
    by_name = {r.figure: r for r in rows(doc)}
    assert by_name["ingest, 1 worker"].ratio == "0.60x of librdkafka, 3.00x of Faust no-op"
    assert by_name["ingest, 1 worker"].met is True
    assert by_name["ingest, 2 workers"].met is False
    assert by_name["tick over 50,000 loans"].met is True  # 8 s per 1M
    assert by_name["latency repayment→CaseClosed p99"].met is False
    assert by_name["resident per loan, RocksDB"].met is True
    assert by_name["resident per loan, memory store"].met is None


def test_a_book_has_about_three_percent_delinquent_loans_due_before_the_tick() -> None:
    tick = dt.date(2026, 3, 2)
    book = dataset.book("r", 10_000, tick)
    assert 0.029 < book.delinquent / book.loans < 0.031
    records = list(book.records())
    assert len(records) == 2 * book.loans
    late = [v for name, v in records if name == "InstallmentScheduled" and v["due_date"] < tick]
    assert len(late) == book.delinquent


def test_every_synthetic_record_is_valid_avro_of_its_contract_type() -> None:
    codec = get_codec()
    records = list(dataset.mixed("r", 3)) + list(dataset.book("r", 3, dt.date(2026, 3, 2)).records())
    assert len(list(dataset.mixed("r", 3))) == 3 * dataset.EVENTS_PER_MIXED_LOAN
    for name, value in records:
        decoded = codec.decode(codec.encode_single_object(name, value))
        assert decoded.name == name
    assert len({v["event_id"] for _, v in records}) == len(records) - 6  # the book repeats mixed's loans 0..2


def test_hot_spots_rank_frames_by_own_and_by_total_samples() -> None:
    collapsed = [
        "main;loop;decode 30",
        "main;loop;apply;figures 50",
        "main;loop;apply 10",
        "main;idle 10",
        "garbage line",
    ]
    own, total = hot_spots(collapsed, top=2)
    assert own == [("figures", 0.5), ("decode", 0.3)]
    assert total[0] == ("main", 1.0)
    assert total[1] == ("loop", 0.9)
