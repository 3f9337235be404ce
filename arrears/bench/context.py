"""What every phase of a benchmark run shares: the broker, a work directory, settings per phase."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from arrears.broker import free_port
from arrears.settings import Settings, load_settings

from .procs import Worker

ALL_BUCKETS = ["M1", "M2", "M3", "M4", "M5", "M6", "M7+"]


@dataclass(frozen=True)
class Plan:
    """How big each phase is (``--quick`` is CI-sized)."""

    quick: bool
    partitions: int = 6
    ingest_loans: int = 10_000  # x11 events each
    book_loans: int = 1_000_000
    latency_samples: int = 1_000
    latency_interval: float = 0.05  # seconds between probes
    background_eps: float = 500.0
    profile_dir: Path | None = None

    @staticmethod
    def make(quick: bool, profile_dir: Path | None = None) -> Plan:
        if quick:
            return Plan(True, ingest_loans=3_000, book_loans=50_000, latency_samples=150,
                        background_eps=300.0, profile_dir=profile_dir)
        return Plan(False, profile_dir=profile_dir)


@dataclass
class Context:
    bootstrap: str
    workdir: Path
    plan: Plan
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    status: Callable[[str], None] = lambda _text: None
    workers: list[Worker] = field(default_factory=list)
    config_path: Path | None = None

    def __post_init__(self) -> None:
        # Every bucket worked in-house: the figures are the processor's, not an agency's.
        self.config_path = self.workdir / "bench-config.yaml"
        self.config_path.write_text(yaml.safe_dump({"grace_days": 0, "internal_buckets": ALL_BUCKETS}))

    def prefix(self, phase: str) -> str:
        return f"bench-{self.run}-{phase}."

    def settings(self, phase: str, **overrides: Any) -> Settings:
        return load_settings(
            kafka_bootstrap_servers=self.bootstrap,
            arrears_topic_prefix=self.prefix(phase),
            arrears_partitions=self.plan.partitions,
            arrears_app_id=f"bench-{self.run}-{phase}",
            arrears_config=self.config_path,
            arrears_data_dir=self.workdir / "data",
            **overrides,
        )

    def env(self, settings: Settings, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
            ARREARS_TOPIC_PREFIX=settings.arrears_topic_prefix,
            ARREARS_PARTITIONS=str(settings.arrears_partitions),
            ARREARS_APP_ID=settings.arrears_app_id,
            ARREARS_CONFIG=str(self.config_path),
            ARREARS_DATA_DIR=str(settings.arrears_data_dir),
            ARREARS_SESSION_TIMEOUT_MS=str(settings.arrears_session_timeout_ms),
            ARREARS_LOG_FORMAT="json",
            ARREARS_LOG_LEVEL="INFO",
            ARREARS_STORE=settings.arrears_store,
        )
        env.update(extra)
        return env

    def worker(self, settings: Settings, name: str, **extra_env: str) -> Worker:
        port = free_port()
        worker = Worker(self.env(settings, **extra_env), port, self.workdir / f"{name}-{port}.log").start()
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        while self.workers:
            self.workers.pop().stop()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    from arrears.errors import ArrearsError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise ArrearsError(f"timed out after {timeout:.0f}s waiting for {what}")
