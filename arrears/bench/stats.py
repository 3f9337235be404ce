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
    """The quality bars of issue 7 (pursued, reported, never asserted in tests)."""

    ingest_vs_faust_noop: float = 3.0
    tick_seconds_per_million: float = 10.0
    p99_ms: float = 100.0
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
    """The table: every figure with its ratio to both ceilings and its target."""
    f = flatten(doc)
    rdk = float(f.get("ceilings.librdkafka_loop_eps", 0))
    noop = float(f.get("ceilings.faust_noop_eps", 0))

    def both(value: float) -> str:
        return f"{ratio_text(value, rdk)} of librdkafka, {ratio_text(value, noop)} of Faust no-op"

    ingest1 = float(f.get("ingest.eps_1_worker", 0))
    ingest2 = float(f.get("ingest.eps_2_workers", 0))
    loans = int(f.get("tick.loans", 0))
    tick_s = float(f.get("tick.seconds", 0))
    tick_lps = float(f.get("tick.loans_per_second", 0))
    per_million = tick_seconds_per_million(tick_s, loans)
    p50 = float(f.get("latency.p50_ms", 0))
    p99 = float(f.get("latency.p99_ms", 0))
    mem = float(f.get("memory.bytes_per_loan_memory", 0))
    rocks = float(f.get("memory.bytes_per_loan_rocksdb", 0))
    ingest_goal = targets.ingest_vs_faust_noop * noop
    return [
        Row("ceiling: librdkafka consume→produce", rdk, "events/s", "1.00x", "", None),
        Row("ceiling: Faust no-op agent", noop, "events/s", ratio_text(noop, rdk) + " of librdkafka", "", None),
        Row("ingest, 1 worker", ingest1, "events/s", both(ingest1),
            f"≥ {targets.ingest_vs_faust_noop:g}x Faust no-op", ingest1 >= ingest_goal > 0),
        Row("ingest, 2 workers", ingest2, "events/s", both(ingest2),
            f"≥ {targets.ingest_vs_faust_noop:g}x Faust no-op", ingest2 >= ingest_goal > 0),
        Row(f"tick over {loans:,} loans", tick_s, "s", f"{tick_lps:,.0f} loans/s; {per_million:.1f} s per 1M",
            f"≤ {targets.tick_seconds_per_million:g} s per 1M loans",
            0 < per_million <= targets.tick_seconds_per_million),
        Row("latency repayment→CaseClosed p50", p50, "ms", "", "", None),
        Row("latency repayment→CaseClosed p99", p99, "ms", "", f"≤ {targets.p99_ms:g} ms",
            0 < p99 <= targets.p99_ms),
        Row("resident per loan, memory store", mem, "bytes", "", "", None),
        Row("resident per loan, RocksDB", rocks, "bytes", "", f"≤ {targets.bytes_per_loan_rocksdb:g} bytes",
            0 < rocks <= targets.bytes_per_loan_rocksdb),
    ]
