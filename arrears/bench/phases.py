"""The processor's figures: ingest, the tick over a loan book with memory per loan, latency."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from arrears.errors import ArrearsError
from arrears.kafka import client_config, make_producer
from arrears.settings import Settings
from producers.publisher import LoanEventPublisher
from schemas import get_codec

from . import dataset
from .context import Context, wait_for
from .feed import Encoded, Feeder, encode
from .procs import Worker, metric_sum, wait_all_ready
from .profiling import sampled
from .stats import Sample, bytes_per_item, percentile, rate, span_of_progress

Progress = Callable[[int], None]
TICK_DATE = dt.date(2026, 3, 2)


def applied(workers: Sequence[Worker]) -> float:
    return sum(metric_sum(w.metrics(), "arrears_events_total") for w in workers)


def follow(workers: Sequence[Worker], target: float, timeout: float, progress: Progress | None = None,
           interval: float = 0.2) -> list[Sample]:
    """Sample the workers' applied-events counter until it reaches *target*."""
    samples: list[Sample] = []
    deadline = time.monotonic() + timeout
    last = 0.0
    while time.monotonic() < deadline:
        value = applied(workers)
        samples.append(Sample(time.monotonic(), value))
        if progress is not None and value > last:
            progress(int(value - last))
            last = value
        if value >= target:
            return samples
        time.sleep(interval)
    raise ArrearsError(f"workers applied {last:.0f} of {target:.0f} events within {timeout:.0f}s")


# --------------------------------------------------------------------------- ingest
def ingest(ctx: Context, data: Sequence[Encoded], n_workers: int, progress: Progress | None = None) -> float:
    """Events/s applied by *n_workers* workers, from the first event applied to the last."""
    settings = ctx.settings(f"ingest{n_workers}")
    workers = [ctx.worker(settings, f"ingest{n_workers}") for _ in range(n_workers)]
    try:
        wait_all_ready(workers, settings.arrears_partitions)
        profile = ctx.plan.profile_dir / "ingest-worker.txt" if ctx.plan.profile_dir and n_workers == 1 else None
        with sampled(workers[0].pid, profile):
            feeder = threading.Thread(target=Feeder(settings).send_all, args=(data,), daemon=True)
            feeder.start()
            samples = follow(workers, len(data), 900, progress)
            feeder.join(60)
    finally:
        ctx.stop_workers()
    span = span_of_progress(samples, 0, len(data))
    if span is None:
        raise ArrearsError("ingest never completed")
    return rate(len(data), span[1] - span[0])


# --------------------------------------------------------------------------- book, tick, memory
@dataclass
class BookFigures:
    loans: int
    delinquent: int
    load_eps: float
    tick_seconds: float
    tick_compute_seconds: float
    cases_opened: int
    bytes_per_loan_memory: float
    bytes_per_loan_rocksdb: float
    rss_memory: tuple[int, int]
    rss_rocksdb: tuple[int, int]


def book_tick_memory(ctx: Context, progress: Progress | None = None,
                     status: Callable[[str], None] = lambda _t: None) -> BookFigures:
    """Load a book into a memory-store worker and a RocksDB worker at once; tick the memory one.

    Both read the same topics (each its own app id), so the book is published once. Resident
    memory is read before and after the load; the RocksDB worker is stopped before the tick so
    the tick has the machine to itself.
    """
    settings = ctx.settings("book")
    book = dataset.book(ctx.run, ctx.plan.book_loans, TICK_DATE)
    memory = ctx.worker(settings, "book-memory")
    rocks_settings = settings.model_copy(update={"arrears_app_id": f"{settings.arrears_app_id}-rocks"})
    rocks = ctx.worker(rocks_settings, "book-rocksdb", ARREARS_STORE="rocksdb",
                       ARREARS_APP_ID=rocks_settings.arrears_app_id)
    try:
        memory.wait_ready()
        rocks.wait_ready()
        before = (memory.rss(), rocks.rss())
        total = 2 * book.loans
        status(f"loading {book.loans:,} loans ({total:,} events) into a memory-store and a RocksDB worker")
        feeder = threading.Thread(target=Feeder(settings).send_all, args=(encode(book.records()),), daemon=True)
        feeder.start()
        samples = follow([memory], total, 3 * 3600, progress, interval=0.5)
        follow([rocks], total, 3 * 3600, None, interval=0.5)
        feeder.join(600)
        wait_for(lambda: all(w.health()[1].get("held_messages", 1) == 0 for w in (memory, rocks)), 300,
                 "nothing held after the load")
        time.sleep(2.0)  # let the last changelog writes and commits settle before reading RSS
        after = (memory.rss(), rocks.rss())
        rocks.stop()
        span = span_of_progress(samples, 0, total)
        load_eps = rate(total, span[1] - span[0]) if span else 0.0

        status(f"ticking {book.loans:,} loans ({book.delinquent:,} delinquent)")
        compute_before = metric_sum(memory.metrics(), "arrears_tick_seconds_sum")
        profile = ctx.plan.profile_dir / "tick-worker.txt" if ctx.plan.profile_dir else None
        with sampled(memory.pid, profile), LoanEventPublisher(settings) as publisher:
            publisher.end_of_day(TICK_DATE)
            started = time.monotonic()

            def ticked() -> bool:
                status_code, health = memory.health()
                dates = health.get("business_dates", {})
                opened = metric_sum(memory.metrics(), "arrears_outputs_total", type="CaseOpened")
                return (status_code == 200 and len(dates) == settings.arrears_partitions
                        and all(d == TICK_DATE.isoformat() for d in dates.values())
                        and opened >= book.delinquent)

            wait_for(ticked, 1800, "the tick in every partition", interval=0.05)
            tick_seconds = time.monotonic() - started
        values = memory.metrics()
        compute = metric_sum(values, "arrears_tick_seconds_sum") - compute_before
        opened = int(metric_sum(values, "arrears_outputs_total", type="CaseOpened"))
    finally:
        ctx.stop_workers()
    return BookFigures(
        loans=book.loans, delinquent=book.delinquent, load_eps=load_eps, tick_seconds=tick_seconds,
        tick_compute_seconds=compute, cases_opened=opened,
        bytes_per_loan_memory=bytes_per_item(before[0], after[0], book.loans),
        bytes_per_loan_rocksdb=bytes_per_item(before[1], after[1], book.loans),
        rss_memory=(before[0], after[0]), rss_rocksdb=(before[1], after[1]),
    )


# --------------------------------------------------------------------------- latency
class CaseWatcher:
    """Notes when each loan's CaseClosed appears on collections.cases (a plain consumer, from the end)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.closed_at: dict[str, float] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> CaseWatcher:
        self._thread.start()
        if not self._ready.wait(30):
            raise ArrearsError("the case watcher could not assign collections.cases")
        return self

    def _run(self) -> None:
        codec = get_codec()
        topic = self.settings.topics.cases
        consumer = Consumer(client_config(self.settings, **{
            "group.id": f"{self.settings.arrears_app_id}-watch", "enable.auto.commit": False,
            # The embedded broker answers a fetch only when its wait ends: keep the wait short.
            "fetch.wait.max.ms": 5, "fetch.min.bytes": 1,
        }))
        consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in range(self.settings.arrears_partitions)])
        self._ready.set()
        try:
            while not self._stop.is_set():
                msg = consumer.poll(0.05)
                if msg is None or msg.error() is not None:
                    continue
                now = time.monotonic()
                headers = dict(msg.headers() or [])
                if headers.get("event_type") != b"CaseClosed":
                    continue
                loan_id = codec.decode(msg.value()).value["loan_id"]
                self.closed_at.setdefault(loan_id, now)
        finally:
            consumer.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


class Background:
    """Steady upstream traffic at a fixed rate: repayments and agency results for other loans."""

    def __init__(self, settings: Settings, run: str, loans: int, eps: float) -> None:
        self.feeder = Feeder(settings, **{"linger.ms": 5})
        self.run = run
        self.loans = loans
        self.eps = eps
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.sent = 0

    def start(self) -> Background:
        self._thread.start()
        return self

    def _loop(self) -> None:
        started = time.monotonic()
        n = 0
        while not self._stop.is_set():
            due = int((time.monotonic() - started) * self.eps)
            records = []
            while n < due:
                loan = self.loans + n % self.loans  # the background loans follow the probed ones
                if n % 4 == 3:
                    records.append(dataset.contact(self.run, loan, n))
                else:
                    records.append(dataset.repayment(self.run, loan, f"bg{n}", 100, TICK_DATE, at=n))
                n += 1
            for item in encode(records):
                self.feeder.send(item)
            self.feeder.producer.poll(0)
            self.sent = n
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.feeder.flush()


@dataclass
class LatencyFigures:
    samples: list[float]  # milliseconds
    background_eps: float

    @property
    def p50(self) -> float:
        return percentile(self.samples, 50)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)


def latency(ctx: Context, progress: Progress | None = None,
            status: Callable[[str], None] = lambda _t: None) -> LatencyFigures:
    """Repayment -> CaseClosed, one probe at a time, under steady background traffic."""
    settings = ctx.settings("latency")
    probes = ctx.plan.latency_samples
    worker = ctx.worker(settings, "latency")
    try:
        worker.wait_ready()
        # Probed loans have one installment past due at the tick (a case opens); background loans do not.
        records: list[dataset.Record] = []
        for n in range(probes):
            records += [dataset.loan_opened(ctx.run, n),
                        dataset.installment(ctx.run, n, 1, TICK_DATE - dt.timedelta(days=3))]
        for n in range(probes, 2 * probes):
            records += [dataset.loan_opened(ctx.run, n),
                        dataset.installment(ctx.run, n, 1, TICK_DATE + dt.timedelta(days=30), 10_000_000)]
        Feeder(settings).send_all(list(encode(records)))
        with LoanEventPublisher(settings) as publisher:
            publisher.end_of_day(TICK_DATE)
        status(f"opening {probes} cases")
        wait_for(lambda: metric_sum(worker.metrics(), "arrears_outputs_total", type="CaseOpened") >= probes,
                 300, f"{probes} cases to open")
        watcher = CaseWatcher(settings).start()
        background = Background(settings, ctx.run, probes, ctx.plan.background_eps).start()
        probe = make_producer(settings, **{"linger.ms": 0})
        codec = get_codec()
        sent_at: dict[str, float] = {}
        status(f"probing repayment → CaseClosed under {ctx.plan.background_eps:g} events/s")
        try:
            time.sleep(2.0)  # let the background load reach its pace
            started = time.monotonic()
            for n in range(probes):
                name, value = dataset.repayment(ctx.run, n, "cure", 104_500, TICK_DATE, at=10**9)
                lid = value["loan_id"]
                payload = codec.encode_single_object(name, value)
                sent_at[lid] = time.monotonic()
                probe.produce(settings.topics.loan_repayments, payload, lid.encode(),
                              headers=[("event_type", name.encode())])
                probe.poll(0)
                if progress is not None:
                    progress(1)
                time.sleep(ctx.plan.latency_interval)
            probe.flush(30)
            wait_for(lambda: len(watcher.closed_at) >= probes, 120, "every probe's CaseClosed")
            elapsed = time.monotonic() - started
        finally:
            background.stop()
            watcher.stop()
        background_eps = rate(background.sent, elapsed)
        samples = [(watcher.closed_at[lid] - at) * 1000 for lid, at in sent_at.items()]
    finally:
        ctx.stop_workers()
    return LatencyFigures(samples, background_eps)
