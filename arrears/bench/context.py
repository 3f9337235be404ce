"""What every phase of a benchmark run shares: the broker, a work directory, settings per phase."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from arrears.broker import free_port
from arrears.settings import Settings, load_settings

from .procs import Worker

#: The agencies of every phase: AG1 works M1, AG2 everything later, so a case that escalates
#: from M1 to M2 is recalled from AG1 and reallocated to AG2 (a second work order). Capacities
#: are large (the bench measures the processor, not a full agency) and AG2's term outlasts the
#: mix's year, so which work order an agency holds is known in advance (see dataset.py).
AGENCIES = (
    {"id": "AG1", "buckets": ["M1"], "capacity": 10_000_000, "weight": 1, "assignment_days": 60},
    {"id": "AG2", "buckets": ["M2", "M3", "M4", "M5", "M6", "M7+"], "capacity": 10_000_000, "weight": 1,
     "assignment_days": 400},
)


@dataclass(frozen=True)
class Plan:
    """How big each phase is (``--quick`` is CI-sized)."""

    quick: bool
    partitions: int = 6
    ingest_loans: int = 10_000  # the production-like mix: ~25 events per loan over a year, 12 ticks
    scale_out: tuple[int, ...] = (1, 2, 4)  # workers per ingest run
    book_loans: int = 200_000  # the large book's history (the book load, memory slope and tick)
    book_first_share: float = 0.5  # RSS is read at this share of the book and at all of it
    latency_samples: int = 1_000
    latency_interval: float = 0.05  # seconds between probes
    latency_loans: int = 5_000  # loans with open cases the background traffic works on
    background_share: float = 0.55  # of the 1-worker ingest rate (the issue asks for at least half)
    profile_dir: Path | None = None

    @staticmethod
    def make(quick: bool, profile_dir: Path | None = None, *, ingest_loans: int | None = None,
             book_loans: int | None = None) -> Plan:
        if quick:
            plan = Plan(True, ingest_loans=1_000, book_loans=2_000, latency_samples=150, latency_loans=600,
                        profile_dir=profile_dir)
        else:
            plan = Plan(False, profile_dir=profile_dir)
        if ingest_loans:
            plan = replace(plan, ingest_loans=ingest_loans)
        if book_loans:
            plan = replace(plan, book_loans=book_loans)
        return plan

    @property
    def book_first(self) -> int:
        """Loans in the book when resident memory is first read (the slope's lower end)."""
        return max(1, int(self.book_loans * self.book_first_share))


def bench_config(workdir: Path) -> dict[str, Any]:
    """The agency configuration the bench's workers run with (SPEC §5 shape)."""
    ag1, ag2 = AGENCIES
    return {
        "grace_days": 0,
        "internal_buckets": [],
        "agencies": [
            # Transports are never started: the bench measures the processor, not delivery.
            {**ag1, "transport": {"type": "webhook", "url": "http://127.0.0.1:9/work-orders",
                                  "allow_insecure_http": True, "secret_env": "ARREARS_BENCH_AG1_SECRET"}},
            {**ag2, "transport": {"type": "files", "outbox": str(workdir / "AG2" / "out"),
                                  "inbox": str(workdir / "AG2" / "in")}},
        ],
        "policy": {"profile": "CN"},
    }


@dataclass
class Context:
    bootstrap: str
    workdir: Path
    plan: Plan
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    status: Callable[[str], None] = lambda _text: None
    workers: list[Worker] = field(default_factory=list)
    config_path: Path | None = None
    broker_pid: int | None = None  # the embedded broker's process, when the bench started one

    def __post_init__(self) -> None:
        self.config_path = self.workdir / "bench-config.yaml"
        self.config_path.write_text(yaml.safe_dump(bench_config(self.workdir), sort_keys=False))

    def prefix(self, phase: str) -> str:
        return f"bench-{self.run}-{phase}."

    def settings(self, phase: str, app: str | None = None, **overrides: Any) -> Settings:
        """Settings of *phase*'s topics (its own prefix); *app* names a consumer of them (its own app id).

        Several consumers of one backlog share its prefix and differ by app id, so each reads
        the same records from the start with a group, changelog and ticks topic of its own.
        """
        return load_settings(
            kafka_bootstrap_servers=self.bootstrap,
            arrears_topic_prefix=self.prefix(phase),
            arrears_partitions=self.plan.partitions,
            arrears_app_id=f"bench-{self.run}-{app or phase}",
            arrears_config=self.config_path,
            arrears_data_dir=self.workdir / "data",
            **overrides,
        )

    def reader(self, settings: Settings, app: str, **overrides: Any) -> Settings:
        """*settings*' topics, read by a consumer of its own (app id ``bench-<run>-<app>``)."""
        return settings.model_copy(update={"arrears_app_id": f"bench-{self.run}-{app}", **overrides})

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
