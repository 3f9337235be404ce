"""The arithmetic and the synthetic data of ``arrears bench`` (no broker, no processes)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

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
    sizing,
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


def test_the_table_gives_ratios_to_the_ceilings_and_judges_each_target() -> None:
    doc = nested({
        "ceilings.librdkafka_loop_eps": 10_000, "ceilings.faust_noop_eps": 2_000,
        "ingest.scale_out": {"1": 6_000, "2": 9_000, "4": 9_500},
        "book.events_per_second": 12_000, "book.events_per_second_rocksdb": 8_000,
        "tick.loans": 50_000, "tick.seconds": 0.2, "tick.loans_per_second": 250_000,
        "latency.p50_ms": 20, "latency.p99_ms": 150, "latency.background_eps": 3_300,
        "latency.background_share": 0.55,
        "memory.bytes_per_loan_memory": 3000, "memory.bytes_per_loan_rocksdb": 900,
    })
    by_name = {r.figure: r for r in rows(doc)}
    assert by_name["ingest, 1 worker"].ratio == "3.00x of Faust no-op, 0.60x of librdkafka"
    assert by_name["ingest, 1 worker"].met is True
    assert by_name["ingest, 2 workers"].ratio.startswith("1.50x of 1 worker")
    assert by_name["ingest, 4 workers"].met is None
    assert by_name["book load, 1 worker (memory store)"].met is True
    assert by_name["tick over 50,000 loans"].met is True  # 4 s per 1M
    assert by_name["latency repayment→CaseClosed p99"].met is False
    assert "55% of 1-worker ingest" in by_name["latency repayment→CaseClosed p99"].ratio
    assert by_name["resident per loan, RocksDB"].met is True
    assert by_name["resident per loan, memory store"].met is None


def test_sizing_is_arithmetic_on_the_run_figures() -> None:
    doc = nested({
        "book.events_per_loan": 20.0, "book.events_per_second": 10_000.0, "book.events_per_second_rocksdb": 5_000.0,
        "book.restore_loans_per_second": 50_000.0, "tick.seconds_per_million_loans": 4.0,
        "memory.loans_first": 1000, "memory.bytes_per_loan_rocksdb": 1000.0, "memory.bytes_per_loan_memory": 2000.0,
        "memory.rss_rocksdb_before": 101_000_000, "memory.rss_memory_before": 102_000_000,
        "ingest.events": 25_000, "ingest.loans": 1000,
    })
    plan = sizing(doc, loans=5_000_000, workers=(1, 10))
    assert plan["history_events"] == 100_000_000
    assert plan["daily_events"] == pytest.approx(5_000_000 * 25 / 365)
    one, ten = plan["by_workers"]["1"], plan["by_workers"]["10"]
    assert one["load_hours_memory_store"] == pytest.approx(100_000_000 / 10_000 / 3600)
    assert ten["load_hours_rocksdb"] == pytest.approx(100_000_000 / 5_000 / 10 / 3600)
    assert ten["restore_hours"] == pytest.approx(5_000_000 / 500_000 / 3600)
    assert one["tick_seconds"] == pytest.approx(20.0)
    # fixed cost 100 MB (101 MB at 1,000 loans of 1,000 bytes) + 500,000 loans of 1,000 bytes
    assert ten["resident_gb_per_worker_rocksdb"] == pytest.approx(0.6)


def test_a_book_has_about_three_percent_delinquent_loans_behind_on_their_latest_installment() -> None:
    tick = dt.date(2026, 3, 2)
    book = dataset.book("r", 10_000, tick)
    assert 0.029 < book.delinquent / book.loans < 0.032
    records = list(book.records())
    assert len(records) == book.events()
    by_type = Counter(name for name, _ in records)
    assert by_type["LoanOpened"] == book.loans
    assert by_type["InstallmentScheduled"] == 12 * book.loans
    assert 4 * book.loans < by_type["RepaymentReceived"] < 8 * book.loans  # opened over the past year
    due: dict[str, list[dt.date]] = {}
    paid: Counter[str] = Counter()
    for name, value in records:
        if name == "InstallmentScheduled" and value["due_date"] < tick:
            due.setdefault(value["loan_id"], []).append(value["due_date"])
        elif name == "RepaymentReceived":
            paid[value["loan_id"]] += value["amount"]
    behind = [loan for loan, days in due.items() if paid[loan] < len(days) * dataset.INSTALLMENT_DUE]
    assert len(behind) == book.delinquent
    parts = book.part(0, 4_000), book.part(4_000, 10_000)
    assert parts[0].events() + parts[1].events() == book.events()


def test_the_mix_tells_every_story_and_cuts_it_by_ticks_in_time_order() -> None:
    history = dataset.mix("r", 200)
    assert len(history.ticks) == 12 and len(history.segments) == 13
    assert history.events == sum(len(s) for s in history.segments)
    assert set(history.counts) == {"LoanOpened", "InstallmentScheduled", "RepaymentReceived", "ContactAttempted",
                                   "PromiseToPay"}
    assert history.counts["InstallmentScheduled"] == 12 * 200
    outcome = dataset.mix_outcome(200)
    assert outcome == {"loans_cured_in_m1": 6, "loans_escalated_then_cured": 4, "loans_never_paid": 2,
                       "loans_on_time": 188}
    for i, segment in enumerate(history.segments):
        times = [_time(v) for _, v in segment]
        assert times == sorted(times)
        if i < len(history.ticks):
            assert max(times) < history.ticks[i].occurred_at
        if i:
            assert min(times) >= history.ticks[i - 1].occurred_at
    # a result names the work order of the agency that holds the case at its time: AG1 (M1) before
    # the second tick, AG2 (M2 and later) from it on
    second = history.ticks[1].occurred_at
    for name, value in (r for s in history.segments for r in s):
        if name in ("ContactAttempted", "PromiseToPay"):
            assert value["work_order_id"] == f"WO-{value['case_id']}-{1 if value['agency_id'] == 'AG1' else 2}"
            assert (value["agency_id"] == "AG1") == (_time(value) < second)


def _time(value: dict[str, object]) -> int:
    return int(value.get("attempted_at") or value["occurred_at"])  # type: ignore[call-overload]


def test_every_synthetic_record_is_valid_avro_of_its_contract_type() -> None:
    codec = get_codec()
    history = dataset.mix("r", 100)
    records = [r for s in history.segments for r in s] + list(dataset.book("b", 40).records())
    records += dataset.delinquent_loan("l", 0, dt.date(2026, 3, 2))
    records += dataset.background("l", 0, 1, 10, 1_700_000_000_000, dt.date(2026, 3, 2))
    for name, value in records:
        decoded = codec.decode(codec.encode_single_object(name, value))
        assert decoded.name == name
    assert len({v["event_id"] for _, v in records}) == len(records)


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
