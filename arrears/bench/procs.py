"""The processes a benchmark run starts: ``arrears worker`` subprocesses, read over HTTP and /proc."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from arrears.broker import die_with_parent
from arrears.errors import ArrearsError

PYTHON_ARREARS = [sys.executable, "-m", "arrears"]


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own worker
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def metric_values(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text -> {sample name: [(labels, value)]}."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def metric_sum(values: Mapping[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for lab, v in values.get(name, []) if all(lab.get(k) == w for k, w in labels.items()))


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (VmRSS), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ArrearsError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (from /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


class Worker:
    """One ``arrears worker --web-port N`` with its log file."""

    def __init__(self, env: Mapping[str, str], port: int, log_path: Path) -> None:
        self.env = dict(env)
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.hung = False  # /metrics did not answer: the worker's event loop is blocked

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ArrearsError("worker not started")
        return self.proc.pid

    def start(self) -> Worker:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*PYTHON_ARREARS, "worker", "--web-port", str(self.port)],
                env=self.env, stdout=log, stderr=log, start_new_session=True,
                preexec_fn=die_with_parent,  # a killed bench leaves no worker behind
            )
        return self

    def health(self) -> tuple[int, dict[str, Any]]:
        status, body = get(f"{self.url}/health", timeout=2)
        try:
            return status, json.loads(body) if body else {}
        except ValueError:
            return status, {}

    def metrics(self, timeout: float = 5.0) -> dict[str, list[tuple[dict[str, str], float]]]:
        """The worker's /metrics; {} when it does not answer (then the worker is marked hung).

        The bench reads it only from a worker it is about to stop: it follows runs from the
        broker's side (watch.py), so a worker whose /metrics misbehaves cannot stall a measurement.
        """
        status, body = get(f"{self.url}/metrics", timeout=timeout)
        if status != 200:
            self.hung = self.hung or status == 0
            return {}
        return metric_values(body.decode())

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ArrearsError(f"worker exited ({self.proc.returncode}); see {self.log_path}")
            if self.health()[0] == 200:
                return
            time.sleep(0.2)
        raise ArrearsError(f"worker on port {self.port} not ready after {timeout:.0f}s; see {self.log_path}")

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def stop(self, timeout: float = 20.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        if self.hung:  # a blocked event loop does not answer SIGTERM either
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)


def shared(workers: Sequence[Worker], partitions: int) -> bool:
    """Every worker ready and the partitions shared out among them, each exactly once."""
    owned: list[set[int]] = []
    for worker in workers:
        status, body = worker.health()
        if status != 200:
            return False
        owned.append(set(body.get("partitions", [])))
    return all(owned) and sum(len(o) for o in owned) == partitions == len(set().union(*owned))


def first_ready(workers: Sequence[Worker], timeout: float = 120.0) -> float:
    """The moment (monotonic) the first of *workers* reports ready: when it starts reading its partitions."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            if worker.proc is not None and worker.proc.poll() is not None:
                raise ArrearsError(f"worker exited ({worker.proc.returncode}); see {worker.log_path}")
            if worker.health()[0] == 200:
                return time.monotonic()
        time.sleep(0.05)
    raise ArrearsError(f"no worker ready after {timeout:.0f}s; see {workers[0].log_path}")


def business_dates(workers: Sequence[Worker]) -> dict[str, str | None]:
    """Each partition's business date, from whichever worker holds it now."""
    dates: dict[str, str | None] = {}
    for worker in workers:
        status, body = worker.health()
        if status == 200:
            dates.update(body.get("business_dates", {}))
    return dates


def held_messages(workers: Sequence[Worker]) -> int:
    return sum(int(w.health()[1].get("held_messages", 1)) for w in workers)


def wait_all_ready(workers: list[Worker], partitions: int, timeout: float = 120.0) -> None:
    """Every worker ready and the partitions shared out (so no rebalance happens mid-measure)."""
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.wait_ready(max(1.0, deadline - time.monotonic()))
    while time.monotonic() < deadline:
        held = [w.health() for w in workers]
        owned = [set(body.get("partitions", [])) for status, body in held if status == 200]
        if len(owned) == len(workers) and all(owned) and sum(len(o) for o in owned) == partitions:
            return
        time.sleep(0.3)
    raise ArrearsError(f"{len(workers)} workers did not share {partitions} partitions within {timeout:.0f}s")
