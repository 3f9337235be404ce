"""``arrears bench --quick`` end to end: it runs on its own embedded broker, prints the table and
writes every figure the contract names. The figures themselves are measured, not asserted (targets
belong to the bench, not to timed tests); only their consistency is checked here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from arrears.bench.stats import REQUIRED_KEYS, flatten

pytestmark = [pytest.mark.slow]


def test_the_quick_bench_prints_its_table_and_writes_every_required_figure(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ARREARS_"))}
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "arrears", "bench", "--quick", "--json", str(out)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    printed = done.stdout + done.stderr
    for row in ("ceiling: librdkafka consume→produce", "ceiling: Faust no-op agent", "ingest, 1 worker",
                "ingest, 2 workers", "tick over 50,000 loans", "p99", "resident per loan, RocksDB"):
        assert row in printed, row

    doc = json.loads(out.read_text())
    flat = flatten(doc)
    for key in REQUIRED_KEYS:
        assert isinstance(flat[key], (int, float)) and flat[key] > 0, (key, flat.get(key))
    assert doc["quick"] is True and flat["tick.loans"] == 50_000
    # about 3% of the book is delinquent, and the tick opened a case for each of them
    assert 0.02 * 50_000 < flat["tick.delinquent_loans"] == flat["tick.cases_opened"] < 0.04 * 50_000
    assert flat["latency.p50_ms"] <= flat["latency.p99_ms"] <= flat["latency.max_ms"]
    assert flat["ingest.events"] == 33_000
