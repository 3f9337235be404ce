"""The demo's live terminal view: a snapshot of the run in, a rich renderable out (pure).

:class:`Monitor` gathers the snapshot in the background: the output topics folded into
:class:`~arrears.figures.Figures`, the workers' ``/metrics`` and ``/health``, and consumer lag.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from arrears.figures import BucketRow, Figures, SettlementSummary
from arrears.report import money
from arrears.settings import Settings

log = logging.getLogger(__name__)


def prometheus_sum(text: str, metric: str) -> float:
    """The sum of every sample of *metric* in Prometheus text format (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(metric):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name != metric:
            continue  # e.g. arrears_events_created for arrears_events_total's prefix
        try:
            total += float(line.rsplit(" ", 1)[1])
        except (IndexError, ValueError):
            continue
    return total


@dataclass
class Pipeline:
    """What the monitor saw of the processes (not of the topics)."""

    events_per_second: float = 0.0
    processor_lag: int | None = None
    adapter_lag: dict[str, int | None] = field(default_factory=dict)
    worker_dates: list[str] = field(default_factory=list)  # the oldest business date per worker
    workers_up: int = 0
    workers: int = 0


@dataclass(frozen=True)
class Snapshot:
    """Everything the live view shows, copied out of the monitor under its lock."""

    business_date: dt.date | None
    day: int
    days: int
    elapsed: float
    buckets: Sequence[BucketRow]
    currency: str
    cases_opened: int
    outcomes: Mapping[str, int]
    assignments: Mapping[str, int]
    issued: Mapping[str, int]
    promises: Mapping[str, tuple[int, int]]  # agency -> (kept, broken)
    contacts: Mapping[str, int]
    violations: Mapping[str, int]  # by rule
    pipeline: Pipeline
    status: str = ""
    commission: Mapping[str, int] = field(default_factory=dict)  # SPEC §10, by agency
    settlements: SettlementSummary | None = None
    paused_loans: int = 0


def snapshot(figures: Figures, pipeline: Pipeline, *, business_date: dt.date | None, day: int, days: int,
             elapsed: float, agencies: Sequence[str], status: str = "") -> Snapshot:
    """Copy what the view needs out of the figures (call it under the lock that guards them)."""
    stats = figures.agencies
    ids = sorted({*agencies, *(a for a in stats if a != "?")})
    return Snapshot(
        business_date=business_date,
        day=day,
        days=days,
        elapsed=elapsed,
        buckets=figures.open_by_bucket(),
        currency=figures.currency,
        cases_opened=len(figures.cases),
        outcomes=figures.outcomes(),
        assignments={a: stats[a].active if a in stats else 0 for a in ids},
        issued={a: stats[a].assigned if a in stats else 0 for a in ids},
        promises={a: (stats[a].kept, stats[a].broken) if a in stats else (0, 0) for a in ids},
        contacts={a: stats[a].contacts if a in stats else 0 for a in ids},
        violations=figures.violations_by_rule(),
        pipeline=Pipeline(**vars(pipeline)),
        status=status,
        commission={a: stats[a].commission if a in stats else 0 for a in ids},
        settlements=figures.settlement_summary(),
        paused_loans=len(figures.paused_loans),
    )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def render(snap: Snapshot, progress: RenderableType | None = None) -> RenderableType:
    """The live view of one snapshot."""
    date = snap.business_date.isoformat() if snap.business_date else "—"
    title = f"Arrears demo · business date [bold]{date}[/] · day {snap.day}/{snap.days} · {_clock(snap.elapsed)}"

    portfolio = Table(title="Open cases by bucket", title_justify="left", expand=True)
    portfolio.add_column("bucket")
    portfolio.add_column("cases", justify="right")
    portfolio.add_column("overdue", justify="right")
    for row in snap.buckets:
        portfolio.add_row(row.bucket, f"{row.open_cases:,}", money(row.overdue_amount, snap.currency))
    portfolio.add_row("[bold]total[/]", f"[bold]{sum(r.open_cases for r in snap.buckets):,}[/]",
                      f"[bold]{money(sum(r.overdue_amount for r in snap.buckets), snap.currency)}[/]")

    agencies = Table(title="Agencies", title_justify="left", expand=True)
    for name in ("agency", "holding", "assigned", "contacts", "kept", "broken", "commission"):
        agencies.add_column(name, justify="left" if name == "agency" else "right")
    for agency in snap.assignments:
        kept, broken = snap.promises.get(agency, (0, 0))
        agencies.add_row(agency, f"{snap.assignments[agency]:,}", f"{snap.issued.get(agency, 0):,}",
                         f"{snap.contacts.get(agency, 0):,}", f"[green]{kept:,}[/]", f"[red]{broken:,}[/]",
                         money(snap.commission.get(agency, 0), snap.currency))

    violations = Table(title="Violations by rule", title_justify="left", expand=True)
    violations.add_column("rule")
    violations.add_column("count", justify="right")
    for rule, n in snap.violations.items():
        violations.add_row(rule, f"{n:,}")
    if not snap.violations:
        violations.add_row("[dim]none yet[/]", "")

    outcomes = Table(title="Cases", title_justify="left", expand=True)
    outcomes.add_column("outcome")
    outcomes.add_column("cases", justify="right")
    outcomes.add_row("opened", f"{snap.cases_opened:,}")
    for outcome, n in snap.outcomes.items():
        outcomes.add_row(outcome.replace("_", " ").lower(), f"{n:,}")
    if snap.settlements is not None and snap.settlements.proposed:
        s = snap.settlements
        outcomes.add_row("settlements approved / proposed", f"{s.approved:,} / {s.proposed:,}")
        outcomes.add_row("settlements fulfilled / broken", f"{s.fulfilled:,} / {s.broken:,}")
    if snap.paused_loans:
        outcomes.add_row("loans paused (hardship)", f"{snap.paused_loans:,}")

    p = snap.pipeline
    pipe = Table(title="Pipeline", title_justify="left", expand=True, show_header=False)
    pipe.add_column("what")
    pipe.add_column("value", justify="right")
    pipe.add_row("workers ready", f"{p.workers_up}/{p.workers}")
    pipe.add_row("events/s (processor)", f"{p.events_per_second:,.0f}")
    pipe.add_row("processor lag", "—" if p.processor_lag is None else f"{p.processor_lag:,}")
    for agency, lag in sorted(p.adapter_lag.items()):
        pipe.add_row(f"adapter {agency} lag", "—" if lag is None else f"{lag:,}")
    if p.worker_dates:
        pipe.add_row("workers at", ", ".join(p.worker_dates))

    grid = Table.grid(expand=True, padding=(0, 2))
    for _ in range(3):
        grid.add_column(ratio=1)
    grid.add_row(portfolio, agencies, pipe)
    grid.add_row(outcomes, violations, Text(snap.status, style="dim"))
    body: list[RenderableType] = [grid]
    if progress is not None:
        body.append(progress)
    return Panel(Group(*body), title=title, title_align="left", border_style="blue")


def fetch_text(url: str, timeout: float = 2.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own workers
            return str(response.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError):
        return None


class Monitor:
    """Folds the output topics and polls the workers and lag, for the live view (background threads)."""

    def __init__(self, settings: Settings, worker_urls: Sequence[str], agencies: Sequence[str]) -> None:
        from arrears.report import report_topics
        from arrears.tail import TopicTail

        self.settings = settings
        self.worker_urls = list(worker_urls)
        self.agencies = list(agencies)
        self.lock = threading.Lock()
        self.figures = Figures(settings.config.bucket_scheme().names)
        self.pipeline = Pipeline(workers=len(self.worker_urls))
        self.tail = TopicTail(settings, report_topics(settings), self._add)
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="monitor", daemon=True)

    def _add(self, _topic: str, name: str, value: dict[str, Any]) -> None:
        with self.lock:
            self.figures.add(name, value)

    def start(self) -> Monitor:
        self.tail.start()
        self._poller.start()
        return self

    def _poll(self) -> None:
        from arrears.lag import GroupLag
        from arrears.topics import inputs_group
        from consumers.adapter import group_id

        lag = GroupLag(self.settings)
        topics = self.settings.topics
        last: tuple[float, float] | None = None
        try:
            while not self._stop.wait(1.0):
                events, up, dates = 0.0, 0, []
                for url in self.worker_urls:
                    text = fetch_text(f"{url}/metrics")
                    if text is not None:
                        up += 1
                        events += prometheus_sum(text, "arrears_events_total")
                    body = fetch_text(f"{url}/health")
                    if body:
                        import json

                        known = [d for d in json.loads(body).get("business_dates", {}).values() if d]
                        if known:
                            dates.append(min(known))
                now = time.monotonic()
                rate = (events - last[1]) / (now - last[0]) if last and now > last[0] else 0.0
                last = (now, events)
                try:
                    processor = lag.lag(inputs_group(self.settings.arrears_app_id), topics.inputs)
                    adapters = {a: lag.lag(group_id(self.settings, a), [topics.work_orders(a)]) for a in self.agencies}
                except Exception:  # noqa: BLE001 - a missed reading shows as "—"; the view goes on
                    processor, adapters = None, {a: None for a in self.agencies}
                with self.lock:
                    self.pipeline = Pipeline(max(0.0, rate), processor, dict(adapters), dates, up,
                                             len(self.worker_urls))
        finally:
            lag.close()

    def snapshot(self, **kwargs: Any) -> Snapshot:
        with self.lock:
            return snapshot(self.figures, self.pipeline, agencies=self.agencies, **kwargs)

    def stop(self) -> None:
        self._stop.set()
        self.tail.stop()
        self._poller.join(10)
