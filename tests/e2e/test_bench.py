"""``arrears bench --quick`` end to end: it runs on its own embedded broker, prints the table and
writes every figure the contract names. The figures themselves are measured, not asserted (targets
belong to the bench, not to timed tests); only their presence and consistency are checked here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from arrears.bench.context import Plan
from arrears.bench.stats import REQUIRED_KEYS, flatten

pytestmark = [pytest.mark.slow]


def test_the_quick_bench_prints_its_table_and_writes_every_required_figure(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ARREARS_"))}
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "arrears", "bench", "--quick", "--json", str(out)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    plan = Plan.make(True)
    printed = done.stdout + done.stderr
    for row in ("ceiling: librdkafka consume→produce", "ceiling: Faust no-op agent", "ingest, 1 worker",
                "ingest, 2 workers", "ingest, 4 workers", "book load, 1 worker (memory store)",
                f"tick over {plan.book_loans:,} loans", "p99", "resident per loan, RocksDB", "conditions:"):
        assert row in printed, row

    doc = json.loads(out.read_text())
    flat = flatten(doc)
    for key in REQUIRED_KEYS:
        assert isinstance(flat[key], (int, float)) and flat[key] > 0, (key, flat.get(key))
    assert doc["quick"] is True

    # ingest: one backlog, read by 1, 2 and 4 workers; the old keys are the scale-out's figures
    ingest = doc["ingest"]
    assert set(ingest["scale_out"]) == {"1", "2", "4"} and all(v > 0 for v in ingest["scale_out"].values())
    assert ingest["eps_1_worker"] == ingest["scale_out"]["1"] and ingest["eps_2_workers"] == ingest["scale_out"]["2"]
    mix = ingest["mix"]
    assert mix["agencies"] == 2 and mix["ticks"] == 12 and mix["LoanOpened"] == plan.ingest_loans
    assert mix["InstallmentScheduled"] == 12 * plan.ingest_loans
    types = ("LoanOpened", "InstallmentScheduled", "RepaymentReceived", "ContactAttempted", "PromiseToPay")
    assert mix["events"] == ingest["events"] == sum(mix[t] for t in types)
    # the mix went through the whole path: cases opened, escalated, assigned to both agencies, cured
    for figure in ("cases_opened", "escalations", "cures", "assignments", "work_orders", "recalls",
                   "compliance_violations"):
        assert mix[figure] > 0, figure
    assert mix["cases_opened"] >= mix["cures"] and mix["work_orders"] == mix["assignments"] > mix["cases_opened"]
    assert mix["results_not_assigned"] >= 0 and mix["dead_letters"] >= mix["results_not_assigned"]
    assert all(n > 0 for n in ingest["output_records"].values())

    # the book: timed on its first part, memory as a slope between the two sizes, tick over the whole
    book, memory, tick = doc["book"], doc["memory"], doc["tick"]
    assert book["loans"] == tick["loans"] == memory["loans"] == plan.book_loans
    assert memory["loans_first"] == book["loans_timed"] == plan.book_first < plan.book_loans
    assert book["events_timed"] < book["events"] and book["events_per_second_rocksdb"] > 0
    # about 3% of the book is delinquent, and the tick opened a case for each of them
    assert 0.02 * plan.book_loans < tick["delinquent_loans"] == tick["cases_opened"] < 0.04 * plan.book_loans
    assert 0 < tick["seconds"] <= tick["seconds_from_publish"]
    assert book["restore_seconds"] > 0

    latency = doc["latency"]
    assert latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert latency["samples"] == plan.latency_samples and latency["background_eps"] > 0

    sizing = doc["sizing"]
    assert sizing["loans"] == 5_000_000 and sizing["history_events"] > 0
    assert set(sizing["by_workers"]) == {"1", "6", "12", "24"}
