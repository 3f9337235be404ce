"""The arithmetic of ``arrears bench``: rates, percentiles, ratios and the result document.

Pure functions over numbers the runner measured; nothing here touches a process or a clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The keys the JSON document always has (SPEC §9 and the CI check), as dotted paths.
REQUIRED_KEYS = (
    "ceilings.librdkafka_loop_eps",
    "ceilings.faust_noop_eps",
    "ingest.eps_1_worker",
    "ingest.eps_2_workers",
    "tick.loans",
    "tick.seconds",
    "latency.p50_ms",
    "latency.p99_ms",
    "memory.bytes_per_loan_memory",
    "memory.bytes_per_loan_rocksdb",
    "book.events_per_second",
)


def rate(count: int, seconds: float) -> float:
    """Events per second; 0 when nothing was measured (never a division by zero)."""
    if count <= 0 or seconds <= 0:
        return 0.0
    return count / seconds


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return float(ordered[low])
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


@dataclass(frozen=True)
class Sample:
    """A counter read at a moment (seconds on a monotonic clock)."""

    at: float
    value: float


def span_of_progress(samples: Sequence[Sample], start: float, target: float) -> tuple[float, float] | None:
    """When a counter first moved past *start* and when it reached *target*, from periodic samples.

    Sampling adds up to one interval of error at each end. The start is taken as the last
    sample still at *start* (so a run is never made shorter than it was); the end is
    interpolated inside the interval in which the counter crossed *target*. None when the
    counter never reached *target*.
    """
    first: float | None = None
    previous: Sample | None = None
    for sample in samples:
        if first is None and sample.value > start:
            if previous is None:
                first = sample.at
            else:
                first = previous.at
        if sample.value >= target:
            if first is None:
                return None
            end = sample.at
            if previous is not None and sample.value > previous.value and previous.value < target:
                # interpolate inside the last interval: the target was crossed part-way through it
                share = (target - previous.value) / (sample.value - previous.value)
                end = previous.at + share * (sample.at - previous.at)
            return first, end
        previous = sample
    return None


def bytes_per_item(before: int, after: int, items: int) -> float:
    """Resident bytes each item added (never negative: the allocator may give memory back)."""
    if items <= 0:
        return 0.0
    return max(0.0, (after - before) / items)


def nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}`` (the JSON document is nested objects)."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def missing_keys(doc: Mapping[str, Any]) -> list[str]:
    """Required keys absent from *doc* or not numbers."""
    flat = flatten(doc)
    return [k for k in REQUIRED_KEYS if not isinstance(flat.get(k), (int, float)) or isinstance(flat.get(k), bool)]


@dataclass(frozen=True)
class Row:
    """One line of the printed table."""

    figure: str
    value: float
    unit: str
    ratio: str  # versus the ceilings, or "" where none applies
    target: str
    met: bool | None  # None: no target


@dataclass(frozen=True)
class Targets:
    """The quality bars of issue 15, per worker on the project's machine (pursued, reported, never
    asserted in tests)."""

    ingest_vs_faust_noop: float = 1.0  # the moonshot is 3x
    book_events_per_second: float = 10_000.0
    tick_seconds_per_million: float = 5.0
    p99_ms: float = 50.0
    bytes_per_loan_rocksdb: float = 1024.0


def ratio_text(value: float, ceiling: float) -> str:
    if ceiling <= 0:
        return "n/a"
    return f"{value / ceiling:.2f}x"


def tick_seconds_per_million(seconds: float, loans: int) -> float:
    """The tick time scaled to a 1,000,000-loan book (linear: a tick visits loans, not the book)."""
    if loans <= 0:
        return 0.0
    return seconds * 1_000_000 / loans


def rows(doc: Mapping[str, Any], targets: Targets = Targets()) -> list[Row]:
    """The table: every figure with its ratio to the ceilings and its target."""
    f = flatten(doc)
    rdk = float(f.get("ceilings.librdkafka_loop_eps", 0))
    noop = float(f.get("ceilings.faust_noop_eps", 0))

    def both(value: float) -> str:
        return f"{ratio_text(value, noop)} of Faust no-op, {ratio_text(value, rdk)} of librdkafka"

    ingest_goal = targets.ingest_vs_faust_noop * noop
    out = [
        Row("ceiling: librdkafka consume→produce", rdk, "events/s", "1.00x", "", None),
        Row("ceiling: Faust no-op agent", noop, "events/s", ratio_text(noop, rdk) + " of librdkafka", "", None),
    ]
    scale = doc.get("ingest", {}).get("scale_out", {}) if isinstance(doc.get("ingest"), Mapping) else {}
    for n in sorted(scale, key=int):
        eps = float(scale[n])
        label = f"ingest, {n} worker{'s' if int(n) > 1 else ''}"
        if int(n) == 1:
            out.append(Row(label, eps, "events/s", both(eps), f"≥ {targets.ingest_vs_faust_noop:g}x Faust no-op",
                           eps >= ingest_goal > 0))
        else:
            one = float(scale.get("1", 0))
            out.append(Row(label, eps, "events/s", f"{ratio_text(eps, one)} of 1 worker; {both(eps)}", "", None))
    book = float(f.get("book.events_per_second", 0))
    book_rocks = float(f.get("book.events_per_second_rocksdb", 0))
    out += [
        Row("book load, 1 worker (memory store)", book, "events/s", both(book),
            f"≥ {targets.book_events_per_second:,.0f} events/s", book >= targets.book_events_per_second),
        Row("book load, 1 worker (RocksDB)", book_rocks, "events/s", both(book_rocks), "", None),
    ]
    loans = int(f.get("tick.loans", 0))
    tick_s = float(f.get("tick.seconds", 0))
    per_million = tick_seconds_per_million(tick_s, loans)
    out.append(Row(f"tick over {loans:,} loans", tick_s, "s", f"{per_million:.1f} s per 1M loans (scaled)",
                   f"≤ {targets.tick_seconds_per_million:g} s per 1M loans",
                   0 < per_million <= targets.tick_seconds_per_million))
    p50 = float(f.get("latency.p50_ms", 0))
    p99 = float(f.get("latency.p99_ms", 0))
    background = float(f.get("latency.background_eps", 0))
    share = float(f.get("latency.background_share", 0))
    under = f"under {background:,.0f} events/s ({share:.0%} of 1-worker ingest)"
    out += [
        Row("latency repayment→CaseClosed p50", p50, "ms", under, "", None),
        Row("latency repayment→CaseClosed p99", p99, "ms", under, f"≤ {targets.p99_ms:g} ms",
            0 < p99 <= targets.p99_ms),
        Row("resident per loan, memory store", float(f.get("memory.bytes_per_loan_memory", 0)), "bytes",
            "slope between two book sizes", "", None),
    ]
    rocks = float(f.get("memory.bytes_per_loan_rocksdb", 0))
    out.append(Row("resident per loan, RocksDB", rocks, "bytes", "slope between two book sizes",
                   f"≤ {targets.bytes_per_loan_rocksdb:g} bytes", 0 < rocks <= targets.bytes_per_loan_rocksdb))
    return out


def sizing(doc: Mapping[str, Any], loans: int = 5_000_000, workers: Sequence[int] = (1, 6, 12, 24)) -> dict[str, Any]:
    """What a lender with *loans* loans needs, by arithmetic on this run's figures.

    Assumes what a deployment on a machine with a core per worker would see: the per-worker
    figures of this run (book load, restore, tick) divide by the number of workers (partitions
    share the book evenly; at least one partition per worker), and memory per loan is the
    run's slope plus each worker's fixed cost (its resident memory minus the slope's share at
    the first book size). Daily traffic is the mix's: its events per loan spread over a year.
    """
    f = flatten(doc)
    per_loan = float(f.get("book.events_per_loan", 0))
    book_eps = float(f.get("book.events_per_second", 0))
    book_eps_rocks = float(f.get("book.events_per_second_rocksdb", 0))
    restore = float(f.get("book.restore_loans_per_second", 0))
    tick_per_million = float(f.get("tick.seconds_per_million_loans", 0))
    first = int(f.get("memory.loans_first", 0))

    def fixed(rss_key: str, slope: float) -> float:
        return max(0.0, float(f.get(rss_key, 0)) - slope * first)

    slope_rocks = float(f.get("memory.bytes_per_loan_rocksdb", 0))
    slope_memory = float(f.get("memory.bytes_per_loan_memory", 0))
    mix_events = float(f.get("ingest.events", 0))
    mix_loans = int(f.get("ingest.loans", 0))
    history = loans * per_loan

    def hours(eps: float, w: int) -> float:
        return history / (eps * w) / 3600 if eps > 0 else 0.0

    return {
        "loans": loans,
        "history_events": history,
        "daily_events": loans * (mix_events / mix_loans) / 365 if mix_loans else 0.0,
        "by_workers": {
            str(w): {
                "load_hours_memory_store": hours(book_eps, w),
                "load_hours_rocksdb": hours(book_eps_rocks, w),
                "restore_hours": loans / (restore * w) / 3600 if restore > 0 else 0.0,
                "tick_seconds": tick_per_million * loans / 1_000_000 / w,
                "resident_gb_per_worker_rocksdb": (fixed("memory.rss_rocksdb_before", slope_rocks)
                                                   + slope_rocks * loans / w) / 1e9,
                "resident_gb_per_worker_memory_store": (fixed("memory.rss_memory_before", slope_memory)
                                                        + slope_memory * loans / w) / 1e9,
            }
            for w in workers
        },
    }
