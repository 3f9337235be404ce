"""One benchmark run: start (or use) the broker, run every phase in order, assemble the document.

Like for like: every ingest figure and every ceiling reads the **same pre-loaded backlog** (the
production-like mix, published once before anything reads it) from its start, each consumer
under its own group or app id, with nothing else running; the book load reads a pre-loaded
backlog too. Only the latency phase has traffic arriving while it measures (that is its point).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import book as book_phase
from . import ceilings, dataset
from . import ingest as ingest_phase
from . import latency as latency_phase
from .context import Context, Plan
from .feed import publish_history
from .report import machine
from .stats import nested, sizing, tick_seconds_per_million


@contextlib.contextmanager
def broker() -> Iterator[tuple[str, str, int | None]]:
    """(bootstrap, description, process id when the broker runs here): KAFKA_BOOTSTRAP_SERVERS when
    set, else an embedded broker of our own."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured, f"KAFKA_BOOTSTRAP_SERVERS={configured}", None
        return
    from arrears.broker import EmbeddedBroker

    with EmbeddedBroker() as embedded:
        pid = embedded.process.pid if embedded.process is not None else None
        yield embedded.bootstrap_servers, "embedded Tansu (memory storage), started by the bench", pid


def run(plan: Plan, console: Console | None = None, workdir: Path | None = None) -> dict[str, Any]:
    console = console or Console(stderr=True)
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="arrears-bench-")))
        workdir.mkdir(parents=True, exist_ok=True)
        bootstrap, described, broker_pid = stack.enter_context(broker())
        progress = stack.enter_context(Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=False,
        ))
        steps = 3 + len(plan.scale_out) + 2
        overall = progress.add_task("arrears bench", total=steps)
        ctx = Context(bootstrap, workdir, plan, status=lambda text: progress.console.log(text), broker_pid=broker_pid)
        stack.callback(ctx.stop_workers)
        started = time.monotonic()
        figures: dict[str, Any] = {"conditions": (
            "ingest and ceilings: one pre-loaded backlog of the production-like mix, read from its start "
            "by each consumer alone; book load: a pre-loaded backlog through one worker alone; "
            "latency: under background traffic"
        )}

        def step(name: str, total: int | None) -> Any:
            task = progress.add_task(name, total=total)
            return task, (lambda n: progress.advance(task, n))

        # ---- the backlog every ingest figure and ceiling reads
        history = dataset.mix(ctx.run, plan.ingest_loans)
        task, advance = step(f"publishing the mix ({plan.ingest_loans:,} loans, {history.events:,} events)",
                             history.events)
        backlog = publish_history(ctx.settings("mix"), history, advance)
        progress.advance(overall)

        task, _ = step("ceiling: librdkafka consume→produce", None)
        figures["ceilings.librdkafka_loop_eps"] = ceilings.librdkafka_loop(ctx, backlog)
        progress.update(task, total=1, completed=1)
        task, _ = step("ceiling: Faust no-op agent", None)
        figures["ceilings.faust_noop_eps"] = ceilings.faust_noop(ctx, backlog)
        progress.update(task, total=1, completed=1)
        progress.advance(overall)

        runs: dict[int, ingest_phase.IngestRun] = {}
        for n in plan.scale_out:
            task, advance = step(f"ingest, {n} worker{'s' if n > 1 else ''}", backlog.events)
            runs[n] = ingest_phase.run(ctx, backlog, n, advance, count_outputs=not runs)
            progress.advance(overall)
        first = runs[plan.scale_out[0]]
        figures.update({
            "ingest.events": backlog.events,
            "ingest.loans": plan.ingest_loans,
            "ingest.mix": ingest_phase.mix_figures(backlog, history.counts, dataset.mix_outcome(plan.ingest_loans),
                                                   first.outputs),
            "ingest.outputs": dict(sorted(first.outputs.items())),
            "ingest.scale_out": {str(n): r.events_per_second for n, r in runs.items()},
            "ingest.scale_out_seconds": {str(n): r.seconds for n, r in runs.items()},
            "ingest.scale_out_join_seconds": {str(n): r.join_seconds for n, r in runs.items()},
            "ingest.cpu_us_per_event": {str(n): r.cpu_us_per_event for n, r in runs.items()},
            "ingest.broker_cpu_us_per_event": {str(n): r.broker_cpu_us_per_event for n, r in runs.items()},
            "ingest.machine_busy_share": {str(n): r.machine_busy_share for n, r in runs.items()},
            "ingest.output_records": {str(n): r.output_records for n, r in runs.items()},
            "ingest.publish_seconds": backlog.seconds,
        })
        if 1 in runs:
            figures["ingest.eps_1_worker"] = runs[1].events_per_second
        if 2 in runs:
            figures["ingest.eps_2_workers"] = runs[2].events_per_second
        if 4 in runs:
            figures["ingest.eps_4_workers"] = runs[4].events_per_second

        total_book = 2 * dataset.book(ctx.run, plan.book_first).events()
        task, advance = step(f"book of {plan.book_loans:,} loans: load, memory, tick, restore", total_book)
        book = book_phase.run(ctx, advance, ctx.status)
        per_loan = book.events / book.loans if book.loans else 0.0
        figures.update({
            "book.loans": book.loans,
            "book.events": book.events,
            "book.events_per_loan": per_loan,
            "book.loans_timed": book.loans_first,
            "book.events_timed": book.events_first,
            "book.events_per_second": book.load_eps,
            "book.events_per_second_rocksdb": book.load_eps_rocksdb,
            "book.restore_seconds": book.restore_seconds,
            "book.recovery_seconds": book.recovery_seconds,
            "book.restore_loans_per_second": (book.loans / (book.recovery_seconds or book.restore_seconds)
                                              if (book.recovery_seconds or book.restore_seconds) else 0.0),
            "tick.loans": book.loans,
            "tick.seconds": book.tick_seconds,
            "tick.seconds_from_publish": book.tick_seconds_from_publish,
            "tick.loans_per_second": book.loans / book.tick_seconds if book.tick_seconds else 0.0,
            "tick.seconds_per_million_loans": tick_seconds_per_million(book.tick_seconds, book.loans),
            "tick.compute_seconds": book.tick_compute_seconds,
            "tick.delinquent_loans": book.delinquent,
            "tick.cases_opened": book.cases_opened,
            "tick.load_eps": book.load_eps,
            "memory.loans": book.loans,
            "memory.loans_first": book.loans_first,
            "memory.method": f"RSS growth from {book.loans_first:,} to {book.loans:,} loans / the loans added",
            "memory.bytes_per_loan_memory": book.bytes_per_loan_memory,
            "memory.bytes_per_loan_rocksdb": book.bytes_per_loan_rocksdb,
            "memory.rss_memory_before": book.rss_memory[0],
            "memory.rss_memory_after": book.rss_memory[1],
            "memory.rss_rocksdb_before": book.rss_rocksdb[0],
            "memory.rss_rocksdb_after": book.rss_rocksdb[1],
        })
        progress.advance(overall)

        capacity = first.events_per_second
        task, advance = step("latency repayment → CaseClosed", plan.latency_samples)
        lat = latency_phase.run(ctx, capacity, advance, ctx.status)
        figures.update({
            "latency.p50_ms": lat.p50,
            "latency.p99_ms": lat.p99,
            "latency.max_ms": max(lat.samples),
            "latency.samples": len(lat.samples),
            "latency.background_eps": lat.background_eps,
            "latency.background_target_eps": lat.background_target_eps,
            "latency.background_share": lat.background_eps / capacity if capacity else 0.0,
        })
        progress.advance(overall)
        figures["seconds"] = time.monotonic() - started
    doc = nested(figures)
    doc["sizing"] = sizing(doc)
    doc["quick"] = plan.quick
    doc["broker"] = described
    doc["machine"] = machine()
    return doc
