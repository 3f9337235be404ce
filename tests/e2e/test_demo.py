"""``arrears demo`` end to end: it runs to the end, writes the report, stops every process it
started (at the end and on Ctrl-C), and no log line of any of its processes holds personal data.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from producers.simbook import make_book

pytestmark = [pytest.mark.slow]

ARREARS = [sys.executable, "-m", "arrears"]


def _processes_with(marker: str) -> list[str]:
    """Command lines of live processes whose environment carries *marker* (the demo's children inherit it)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def _demo_env(marker: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ARREARS_"))}
    env.update(ARREARS_TEST_MARKER=marker, PYTHONUNBUFFERED="1", **extra)
    return env


def _personal_data(seed: str, loans: int, start: dt.date, days: int) -> set[str]:
    values: set[str] = set()
    book = make_book(seed, loans, start, days)
    for events in book.events.values():
        for event in events:
            if event.record == "LoanOpened":
                customer = event.value["customer"]
                values.update((customer["name"], customer["phone"], customer["national_id"]))
                for contact in customer.get("emergency_contacts", []):
                    values.update((contact["name"], contact["phone"]))
    return values


def test_the_demo_runs_to_the_end_writes_the_report_leaves_nothing_running_and_logs_no_personal_data(
    tmp_path: Path,
) -> None:
    marker = uuid.uuid4().hex
    seed, loans, days = "pii-check", 300, 25
    args = [*ARREARS, "demo", "--loans", str(loans), "--days", str(days), "--seed", seed, "--no-live",
            "--report", str(tmp_path / "report.html")]
    done = subprocess.run(args, cwd=tmp_path, env=_demo_env(marker, ARREARS_LOG_LEVEL="INFO",
                                                          ARREARS_LOG_FORMAT="json"),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"day {days}/{days}" in done.stdout and "Open cases by bucket" in done.stdout
    assert f"report: {tmp_path / 'report.html'}" in done.stdout
    # the workers' KPIs (query API) against an independent count from the topics
    assert "cross-check: the query API and the topics agree on" in done.stdout, done.stdout[-2000:]
    assert "recoveries_attributed, commission" in done.stdout  # SPEC §10: collections.recoveries summed
    assert not _processes_with(marker), "the demo left processes behind"

    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    for heading in ("Delinquency by bucket over business dates", "Roll rates", "Agencies side by side",
                    "Recoveries and commission", "Settlements and pauses", "violations by rule", "Case outcomes",
                    "Run parameters"):
        assert heading.lower() in report.lower(), heading
    assert "<svg" in report, "charts are inline SVG"
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", report), "the report loads nothing from outside"

    pii = _personal_data(seed, loans, dt.date(2026, 1, 1), days)
    assert len(pii) > 3 * loans
    (run_dir,) = tmp_path.glob("arrears-demo-*")
    logs = sorted((run_dir / "logs").glob("*.log"))
    assert {p.name.split("-")[0].split(".")[0] for p in logs} >= {"demo", "broker", "worker", "adapter"}
    lines = 0
    for path in logs:
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            lines += 1
            leaked = [value for value in pii if value in line]
            assert not leaked, f"{path.name}:{n} logs personal data"
    assert lines > 50, f"only {lines} log lines: the check would prove nothing"


BOX = re.compile(r"[\u2500-\u257f]")  # the live view's box drawing: every line of a view has some


@pytest.mark.parametrize("target", ["process group", "demo alone"])
def test_ctrl_c_stops_every_process_the_demo_started_within_15_seconds_with_one_line(
    tmp_path: Path, target: str
) -> None:
    """A terminal's Ctrl-C signals the whole foreground process group; ``kill -INT`` the demo alone."""
    marker = uuid.uuid4().hex
    proc = subprocess.Popen([*ARREARS, "demo", "--loans", "300", "--days", "200", "--no-live", "--days-per-second",
                             "2"], cwd=tmp_path, env=_demo_env(marker), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # a group of its own, as a shell gives a foreground job
    assert proc.stdout is not None
    seen = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            if line.startswith("ready after") or not line:
                break
        assert any(s.startswith("ready after") for s in seen), "".join(seen)
        time.sleep(5)
        running = _processes_with(marker)
        assert len(running) >= 6, running  # the demo, a broker, two workers, three adapters
        signalled = time.monotonic()
        if target == "process group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        took = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    output = "".join(seen) + rest
    assert proc.returncode == 130, output
    assert took < 15, f"the demo took {took:.1f}s to stop"
    assert "Traceback" not in output and "error" not in rest.lower(), rest
    after_views = [line for line in rest.splitlines() if line.strip() and not BOX.search(line)
                   and not line.startswith("  sign in as")]
    assert len(after_views) == 1, rest  # besides the views printed before the signal: one line
    (last,) = after_views
    assert re.fullmatch(r"stopped after \d+ of 200 business days \(\d+s\); partial report: .+\.html", last), last
    assert (tmp_path / "arrears-report.html").exists()
    assert not _processes_with(marker), "Ctrl-C left processes behind"
