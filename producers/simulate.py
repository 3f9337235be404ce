"""``arrears simulate``: publish the synthetic loan book of :mod:`producers.simbook` day by day.

The plumbing around the pure book: the history before the start date is published first, then
for every business day D of the period: the tick D (with its barrier, through
:meth:`LoanEventPublisher.end_of_day`), a wait until the pipeline applied it and the agencies
received the day's work orders (:class:`PipelineSync`), a day of work for each simulated agency,
and the book's events of day D (repayments valued D, new loans, closures), so they precede
tick D+1. The agencies' own repayments (kept promises) are published by the agencies.

Only ids and counts are logged: the book's customers are fake, but they are shaped like
personal data and are treated as such.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from arrears.errors import ArrearsError
from arrears.settings import Settings

from .publisher import LoanEventPublisher
from .simbook import Book, SimEvent, SimRates, business_days, make_book, tick_id, tick_time

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulationOptions:
    """What ``arrears simulate`` and ``arrears demo`` were asked to simulate."""

    loans: int = 2000
    days: int = 120
    seed: str = "arrears"
    start: dt.date = dt.date(2026, 1, 1)
    days_per_second: float = 0.0  # at most this many business days a second; 0: as fast as the pipeline
    rates: SimRates = field(default_factory=SimRates)
    # SPEC §10: share of conversations on late-bucket cases (work orders with a settlement_policy)
    # that end in a settlement proposal
    settlement_rate: float = 0.15

    def parameters(self) -> dict[str, str]:
        """The run's parameters, for the report."""
        return {
            "seed": self.seed,
            "loans": str(self.loans),
            "business days": str(self.days),
            "first business date": self.start.isoformat(),
            "last business date": (self.start + dt.timedelta(days=self.days - 1)).isoformat(),
            "payer mix": ", ".join(f"{k} {v:.0%}" for k, v in self.rates.payer_mix.items()),
            "cure probability by bucket": ", ".join(f"{k} {v:.0%}" for k, v in self.rates.cure.items()),
            "write-off": f"at {self.rates.write_off_dpd} days past due",
            "hardship pauses": f"{self.rates.hardship_share:.0%} of defaulting loans, learned of 2-10 days late",
            "settlement proposals": f"{self.settlement_rate:.0%} of conversations on cases that allow them",
        }


class Agency(Protocol):
    """What the simulator needs of a simulated agency (consumers.simagency's classes)."""

    agency_id: str

    def work_day(self, day: dt.date) -> Any: ...


@dataclass
class Progress:
    """Where the run is; handed to the progress callback after every step."""

    phase: str  # "history", "days", "done"
    days_done: int = 0
    days_total: int = 0
    business_date: dt.date | None = None
    published: int = 0
    agency_results: Counter[str] = field(default_factory=Counter)
    agency_repayments: int = 0
    agency_errors: int = 0


class DaySync(Protocol):
    def wait_for(self, day: dt.date) -> None:
        """Return once the pipeline applied tick *day* and delivered its work orders (or gave up)."""


class SettleSync:
    """Without a way to look inside the pipeline: wait a fixed time after each tick."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def wait_for(self, day: dt.date) -> None:
        time.sleep(self.seconds)


class PipelineSync:
    """Wait until the workers applied a tick and the adapters delivered the work orders it caused.

    Workers: every partition's business date on ``/health`` is the tick's and nothing is held.
    Adapters: each agency's consumer group committed its work-order topic up to the end (the
    adapters commit only after delivery). HTTP agencies then get a short quiet period, so the
    last delivery's answer reached them. Timing-based at the edges, which is fine for a demo.
    """

    def __init__(
        self,
        settings: Settings,
        worker_urls: Sequence[str],
        agency_ids: Sequence[str] = (),
        *,
        idle: Callable[[], None] = lambda: None,
        timeout: float = 120.0,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.worker_urls = list(worker_urls)
        self.agency_ids = list(agency_ids)
        self.idle = idle
        self.timeout = timeout
        self.stop = stop or threading.Event()
        self._lag: Any = None

    def wait_for(self, day: dt.date) -> None:
        deadline = time.monotonic() + self.timeout
        if self.worker_urls and not self._poll(lambda: self._workers_at(day), deadline):
            log.warning("workers did not report business date %s within %.0fs; going on", day, self.timeout)
            return
        if self.agency_ids:
            if not self._poll(self._adapters_caught_up, deadline, settle=2):
                log.warning("adapters still had work orders to deliver after %.0fs; going on", self.timeout)
            self.idle()

    def _poll(self, check: Callable[[], bool], deadline: float, settle: int = 1) -> bool:
        """True once *check* held *settle* times in a row (a few ms apart)."""
        streak = 0
        while time.monotonic() < deadline and not self.stop.is_set():
            streak = streak + 1 if check() else 0
            if streak >= settle:
                return True
            time.sleep(0.05)
        return False

    def _workers_at(self, day: dt.date) -> bool:
        dates: dict[str, str] = {}
        for url in self.worker_urls:
            body = health(url)
            if body is None or body.get("status") != "ready" or body.get("held_messages", 0):
                return False
            dates.update(body.get("business_dates") or {})
        want = day.isoformat()
        return len(dates) == self.settings.arrears_partitions and all(d == want for d in dates.values())

    def _adapters_caught_up(self) -> bool:
        from arrears.lag import GroupLag

        if self._lag is None:
            self._lag = GroupLag(self.settings)
        topics = self.settings.topics
        return all(
            self._lag.lag(adapter_group(self.settings, a), [topics.work_orders(a)]) == 0 for a in self.agency_ids
        )

    def close(self) -> None:
        if self._lag is not None:
            self._lag.close()
            self._lag = None


def adapter_group(settings: Settings, agency_id: str) -> str:
    from consumers.adapter import group_id

    return group_id(settings, agency_id)


def health(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """A worker's ``/health`` body (also when it answers 503), or None when it does not answer."""
    import json

    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as response:  # noqa: S310
            return dict(json.load(response))
    except urllib.error.HTTPError as exc:
        try:
            return dict(json.load(exc))
        except ValueError:
            return None
    except (urllib.error.URLError, OSError, ValueError):
        return None


class Simulation:
    """Publishes a book and drives the agencies, one business day at a time."""

    def __init__(
        self,
        settings: Settings,
        options: SimulationOptions,
        *,
        agencies: Sequence[Agency] = (),
        sync: DaySync | None = None,
        on_progress: Callable[[Progress], None] = lambda p: None,
        stop: threading.Event | None = None,
        publisher: LoanEventPublisher | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.agencies = list(agencies)
        self.sync = sync or SettleSync(0.0)
        self.on_progress = on_progress
        self.stop = stop or threading.Event()
        self._publisher = publisher
        self.book: Book | None = None
        self.progress = Progress("history", days_total=options.days)

    def build(self) -> Book:
        if self.book is None:
            o = self.options
            self.book = make_book(o.seed, o.loans, o.start, o.days, o.rates)
        return self.book

    def run(self) -> Progress:
        """Publish everything; returns early (between two days) when *stop* is set."""
        book = self.build()
        publisher = self._publisher or LoanEventPublisher(self.settings)
        try:
            self._publish(publisher, book.history())
            self.on_progress(self.progress)
            previous: dt.date | None = None
            for day in business_days(book.start, book.days):
                if self.stop.is_set():
                    break
                began = time.monotonic()
                if previous is not None:
                    self._publish(publisher, book.on(previous))
                self._day(publisher, day)
                previous = day
                self._pace(began)
            self.progress.phase = "done" if not self.stop.is_set() else "stopped"
            self.on_progress(self.progress)
        finally:
            if self._publisher is None:
                publisher.close()
        return self.progress

    def _publish(self, publisher: LoanEventPublisher, events: Iterable[SimEvent]) -> None:
        n = 0
        for event in events:
            if n % 1000 == 0 and self.stop.is_set():
                break  # a large history takes a while: a stop must not wait for all of it
            publisher.publish(event.record, event.value)
            n += 1
            if n % 5000 == 0:
                self.progress.published += 5000
                n = 0
                self.on_progress(self.progress)
        self.progress.published += n
        publisher.flush()

    def _day(self, publisher: LoanEventPublisher, day: dt.date) -> None:
        seed = self.options.seed
        publisher.end_of_day(day, event_id=tick_id(seed, day), occurred_at=tick_time(day))
        self.progress.phase, self.progress.business_date = "days", day
        self.progress.published += 1
        self.sync.wait_for(day)
        for agency in self.agencies:
            if self.stop.is_set():
                return
            try:
                report = agency.work_day(day)
            except ArrearsError as exc:
                # One agency failing a day (its adapter down, say) must not stop the whole run.
                self.progress.agency_errors += 1
                log.warning("agency %s could not report %s: %s", agency.agency_id, day, exc)
                continue
            self.progress.agency_results.update(report.results)
            self.progress.agency_repayments += report.repayments
        self.progress.days_done += 1
        self.on_progress(self.progress)

    def _pace(self, began: float) -> None:
        if self.options.days_per_second > 0:
            remaining = 1.0 / self.options.days_per_second - (time.monotonic() - began)
            if remaining > 0:
                self.stop.wait(remaining)


def agency_profiles(agency_ids: Sequence[str], violation_rate: float, settlement_rate: float = 0.0
                    ) -> Mapping[str, Any]:
    """Per-agency behaviour: the demo's agencies differ a little, so their KPIs differ."""
    from consumers.simplan import SimProfile

    # Left at simplan's defaults (2% of debtors a day pay everything unprompted, 60% of promises
    # kept) an agency cures most of its cases within weeks; these are closer to what lenders see.
    styles = (
        {"keep_rate": 0.45, "self_cure_rate": 0.004, "violation_rate": violation_rate * 0.5},
        {"keep_rate": 0.35, "self_cure_rate": 0.003, "violation_rate": violation_rate * 1.6},
        {"keep_rate": 0.30, "self_cure_rate": 0.002, "violation_rate": violation_rate, "return_rate": 0.004},
    )
    return {a: SimProfile(**styles[i % len(styles)], settlement_rate=settlement_rate) for i, a in enumerate(agency_ids)}


def start_agencies(
    settings: Settings, adapters: Mapping[str, str | None], options: SimulationOptions, violation_rate: float
) -> list[Any]:
    """Build and start the simulated agencies of the config named in *adapters* (id -> adapter URL)."""
    from consumers.simagency import HttpAgency, make_agency

    profiles = agency_profiles(list(adapters), violation_rate, options.settlement_rate)
    started: list[Any] = []
    try:
        if options.settlement_rate > 0 and settings.config.settlements.approval_above is not None:
            from .simdesk import SettlementDesk

            # Someone at the lender must decide the settlements above the approval threshold.
            started.append(SettlementDesk(settings, seed=options.seed).start())
        for agency_id, adapter_url in adapters.items():
            agency = make_agency(settings, agency_id, adapter_url=adapter_url, seed=options.seed,
                                 profile=profiles[agency_id])
            if isinstance(agency, HttpAgency):
                if adapter_url is None:
                    raise ArrearsError(f"--agency {agency_id}: a webhook agency needs its adapter's URL "
                                       f"({agency_id}=http://HOST:PORT)")
                agency.start()
            started.append(agency)
    except BaseException:
        stop_agencies(started)
        raise
    return started


def stop_agencies(agencies: Iterable[Any]) -> None:
    from consumers.simagency import HttpAgency

    for agency in agencies:
        try:
            if isinstance(agency, HttpAgency):
                agency.stop()
            else:
                agency.close()
        except Exception:  # noqa: BLE001 - stopping the others matters more
            log.exception("agency %s did not stop cleanly", agency.agency_id)


def idle_http(agencies: Iterable[Any], quiet: float = 0.2) -> Callable[[], None]:
    """A wait until no webhook delivery reached any HTTP agency for *quiet* seconds."""
    from consumers.simagency import HttpAgency

    http = [a for a in agencies if isinstance(a, HttpAgency)]

    def wait() -> None:
        for agency in http:
            agency.wait_idle(quiet=quiet, timeout=30.0)

    return wait


def run_simulate(
    settings: Settings,
    options: SimulationOptions,
    *,
    agencies: Mapping[str, str | None],
    worker_urls: Sequence[str],
    violation_rate: float,
    settle: float,
    progress: bool,
) -> int:
    """``arrears simulate``: until the period is published, or SIGINT/SIGTERM (between two days)."""
    import signal

    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    started = start_agencies(settings, agencies, options, violation_rate)
    sync: DaySync
    if worker_urls:
        sync = PipelineSync(settings, worker_urls, list(agencies), idle=idle_http(started), stop=stop)
    else:
        sync = SettleSync(settle)
    bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
              TimeRemainingColumn(), disable=not progress)
    task = bar.add_task("publishing the book's history", total=options.days)

    def show(p: Progress) -> None:
        if p.phase == "history":
            bar.update(task, description=f"history: {p.published} records")
        else:
            bar.update(task, completed=p.days_done,
                       description=f"business date {p.business_date} ({p.published} records)")

    simulation = Simulation(settings, options, agencies=started, sync=sync, on_progress=show, stop=stop)
    try:
        with bar:
            result = simulation.run()
    finally:
        stop_agencies(started)
        if isinstance(sync, PipelineSync):
            sync.close()
    print(f"{result.phase}: {result.days_done} business days, {result.published} records published, "
          f"{sum(result.agency_results.values())} agency results, {result.agency_repayments} agency repayments")
    return 0 if result.phase == "done" else 130
