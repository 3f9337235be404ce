"""Run ``arrears`` subcommands as real processes in tests, and wait for them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ARREARS = [sys.executable, "-m", "arrears"]


def run_cli(args: Sequence[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*ARREARS, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"arrears {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def get_json(url: str, timeout: float = 5, token: str | None = None) -> tuple[int, Any]:
    """GET *url*, with ``Authorization: Bearer <token>`` when a token is given: (status, JSON)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


class WorkerProcess:
    """One ``arrears worker`` with its log file."""

    def __init__(self, env: dict[str, str], port: int, log_dir: Path, name: str = "worker") -> None:
        self.env = env
        self.port = port
        self.log_path = log_dir / f"{name}-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WorkerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed when the process ends
        self.proc = subprocess.Popen([*ARREARS, "worker", "--web-port", str(self.port)], env=self.env, stdout=log,
                                     stderr=log, start_new_session=True)
        log.close()
        return self

    def health(self) -> tuple[int, Any]:
        try:
            return get_json(f"{self.url}/health", timeout=2)
        except (urllib.error.URLError, OSError, ValueError):
            return 0, None

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"worker exited ({self.proc.returncode}); log:\n{self.log_tail()}")
            status, _ = self.health()
            if status == 200:
                return
            time.sleep(0.3)
        raise AssertionError(f"worker on {self.port} not ready after {timeout}s; log:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def workers(env: dict[str, str], ports: Sequence[int], log_dir: Path) -> Iterator[list[WorkerProcess]]:
    procs = [WorkerProcess(env, port, log_dir).start() for port in ports]
    try:
        for proc in procs:
            proc.wait_ready()
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def wait_until(predicate: Any, timeout: float = 60, interval: float = 0.3, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
