"""The large book: its history through one worker (book load), resident memory per loan as a
slope between two book sizes, and the tick over the whole book.

1. The first part of the book's history (``Plan.book_first`` loans) is published, then a
   memory-store worker reads it from the start alone: **book load**, events/s. Its resident
   memory is read once it is done.
2. A RocksDB worker (an app id of its own) reads the same backlog alone: the book load with
   RocksDB, and its resident memory.
3. The rest of the book is published while both run (this part is not timed), and both read
   it; resident memory again. **Memory per loan** is the growth between the two reads divided
   by the loans added, so what a worker holds whatever its book (the interpreter, Faust,
   librdkafka's buffers, RocksDB's memtables and cache) cancels out.
4. The RocksDB worker stops and the memory-store worker applies a tick at the book's business
   date: about 3% of the loans are behind, so a case opens (and goes to AG1) for each. The
   tick is timed from its markers reaching the worker's ticks topic (the worker has read the
   tick and fanned it out to its partitions) to the last case opened and every partition at
   the new date; the time from publishing the tick is reported beside it.
5. The memory-store worker stops and a fresh one (same app id, empty data directory) starts:
   the time until it is ready is the **restore** of the whole book from its changelog.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from producers.publisher import LoanEventPublisher
from streams.app import ticks_topic_name

from . import dataset
from .context import Context, wait_for
from .feed import publish_first_tick, publish_records
from .procs import Worker, business_dates, first_ready, held_messages, metric_sum
from .profiling import sampled
from .stats import bytes_per_item, rate
from .watch import Positions, TopicWatcher, follow

Progress = Callable[[int], None]


@dataclass
class BookFigures:
    loans: int
    loans_first: int
    events: int  # the whole book's history
    events_first: int  # the part whose load is timed
    delinquent: int
    load_eps: float  # memory store
    load_eps_rocksdb: float
    tick_seconds: float  # from the tick's markers reaching the ticks topic to the last case opened
    tick_seconds_from_publish: float  # from the tick published to the last case opened
    tick_compute_seconds: float | None  # from the worker's arrears_tick_seconds, when /metrics answers
    cases_opened: int
    rss_memory: tuple[int, int]
    rss_rocksdb: tuple[int, int]
    restore_seconds: float  # a fresh memory-store worker, from start to ready (its changelog read back)
    recovery_seconds: float | None  # of which Faust's reading of the changelog (from its log)

    @property
    def bytes_per_loan_memory(self) -> float:
        return bytes_per_item(self.rss_memory[0], self.rss_memory[1], self.loans - self.loans_first)

    @property
    def bytes_per_loan_rocksdb(self) -> float:
        return bytes_per_item(self.rss_rocksdb[0], self.rss_rocksdb[1], self.loans - self.loans_first)


def _load(positions: Positions, worker: Worker, progress: Progress | None) -> float:
    """Follow a just-started *worker* through the backlog: events/s from the moment it reports
    ready (it starts reading then) to the moment its committed positions reach the end."""
    started = first_ready([worker], 300)
    samples = follow(positions, 4 * 3600, progress, interval=0.1)
    return rate(positions.target, samples[-1].at - started)


def recovery_span(log_path: Path) -> float | None:
    """Seconds between Faust's "Restoring state from changelog topics" and "Restore complete!" in a worker's log."""
    begun = ended = None
    for line in log_path.read_text(errors="replace").splitlines():
        if "Restoring state from changelog topics" not in line and "Restore complete" not in line:
            continue
        try:
            at = dt.datetime.fromisoformat(json.loads(line)["ts"])
        except (ValueError, KeyError, TypeError):
            continue
        if "Restoring state" in line and begun is None:
            begun = at
        elif "Restore complete" in line and begun is not None:
            ended = at
    return (ended - begun).total_seconds() if begun and ended else None


def _settled_rss(worker: Worker) -> int:
    wait_for(lambda: held_messages([worker]) == 0, 300, "nothing held after the load")
    time.sleep(2.0)  # let the last changelog writes and commits settle before reading RSS
    return worker.rss()


def run(ctx: Context, progress: Progress | None = None, status: Callable[[str], None] = lambda _t: None) -> BookFigures:
    settings = ctx.settings("book")
    whole = dataset.book(ctx.run, ctx.plan.book_loans)
    first = whole.part(0, ctx.plan.book_first)
    rest = whole.part(ctx.plan.book_first, whole.loans)
    status(f"publishing the history of {first.loans:,} loans")
    publish_first_tick(settings, whole.tick_date - dt.timedelta(days=400))  # before any loan opened
    backlog = publish_records(settings, first.records())
    events_first = backlog.events
    memory_settings = ctx.reader(settings, "book-memory")
    rocks_settings = ctx.reader(settings, "book-rocksdb", arrears_store="rocksdb")
    memory_positions = Positions(memory_settings, backlog.input_ends)
    rocks_positions = Positions(rocks_settings, backlog.input_ends)
    try:
        memory = ctx.worker(memory_settings, "book-memory")
        status(f"book load: {events_first:,} events through one memory-store worker")
        profile = ctx.plan.profile_dir / "book-load-worker.txt" if ctx.plan.profile_dir else None
        with sampled(memory.pid, profile):
            load_eps = _load(memory_positions, memory, progress)
        memory_first = _settled_rss(memory)

        rocks = ctx.worker(rocks_settings, "book-rocksdb")
        status(f"book load: {events_first:,} events through one RocksDB worker")
        load_eps_rocks = _load(rocks_positions, rocks, progress)
        rocks_first = _settled_rss(rocks)

        status(f"publishing {rest.loans:,} more loans while both workers read them")
        publish_records(settings, rest.records(), into=backlog)
        for positions in (memory_positions, rocks_positions):
            positions.extend(backlog.input_ends)
        follow(memory_positions, 4 * 3600, None, interval=0.5)
        follow(rocks_positions, 4 * 3600, None, interval=0.5)
        memory_after = _settled_rss(memory)
        rocks_after = _settled_rss(rocks)
        rocks.stop()

        status(f"ticking {whole.loans:,} loans ({whole.delinquent:,} delinquent)")
        watcher = TopicWatcher(settings, settings.topics.cases, settings.arrears_partitions, ["CaseOpened"]).start()
        markers = TopicWatcher(memory_settings, ticks_topic_name(memory_settings), settings.arrears_partitions,
                               []).start()
        profile = ctx.plan.profile_dir / "tick-worker.txt" if ctx.plan.profile_dir else None
        tick_date = whole.tick_date.isoformat()
        try:
            with sampled(memory.pid, profile), LoanEventPublisher(settings) as publisher:
                publisher.end_of_day(whole.tick_date)
                published = time.monotonic()

                def ticked() -> bool:
                    if watcher.seen["CaseOpened"].count < whole.delinquent:
                        return False
                    dates = business_dates([memory])
                    return len(dates) == settings.arrears_partitions and all(d == tick_date for d in dates.values())

                wait_for(ticked, 1800, "the tick in every partition", interval=0.05)
                done = time.monotonic()
        finally:
            watcher.stop()
            markers.stop()
        # (an old marker read first, were the broker to report an end short, cannot start the clock early)
        tick_seconds = done - max(markers.seen["*"].first_at, published)
        tick_seconds_from_publish = done - published
        opened = watcher.seen["CaseOpened"].count
        values = memory.metrics(timeout=3)  # the worker stops next: a hung /metrics costs nothing here
        compute = metric_sum(values, "arrears_tick_seconds_sum") if values else None
        memory.stop()

        status("restoring the memory-store worker's state from its changelog in a fresh worker")
        started = time.monotonic()
        restored = ctx.worker(memory_settings, "book-restore")
        restored.wait_ready(1800)
        restore_seconds = time.monotonic() - started
        recovery_seconds = recovery_span(restored.log_path)
    finally:
        ctx.stop_workers()
        memory_positions.close()
        rocks_positions.close()
    return BookFigures(
        loans=whole.loans, loans_first=first.loans, events=backlog.events, events_first=events_first,
        delinquent=whole.delinquent, load_eps=load_eps, load_eps_rocksdb=load_eps_rocks,
        tick_seconds=tick_seconds, tick_seconds_from_publish=tick_seconds_from_publish,
        tick_compute_seconds=compute, cases_opened=opened, recovery_seconds=recovery_seconds,
        rss_memory=(memory_first, memory_after), rss_rocksdb=(rocks_first, rocks_after),
        restore_seconds=restore_seconds,
    )
