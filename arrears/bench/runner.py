"""One benchmark run: start (or use) the broker, run every phase in order, assemble the document."""

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

from . import ceilings, dataset, phases
from .context import Context, Plan
from .feed import encode
from .report import machine
from .stats import nested, tick_seconds_per_million


@contextlib.contextmanager
def broker() -> Iterator[tuple[str, str]]:
    """(bootstrap, description): KAFKA_BOOTSTRAP_SERVERS when set, else an embedded broker of our own."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured, f"KAFKA_BOOTSTRAP_SERVERS={configured}"
        return
    from arrears.broker import EmbeddedBroker

    with EmbeddedBroker() as embedded:
        yield embedded.bootstrap_servers, "embedded Tansu (memory storage), started by the bench"


def run(plan: Plan, console: Console | None = None, workdir: Path | None = None) -> dict[str, Any]:
    console = console or Console(stderr=True)
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="arrears-bench-")))
        workdir.mkdir(parents=True, exist_ok=True)
        bootstrap, described = stack.enter_context(broker())
        progress = stack.enter_context(Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=False,
        ))
        overall = progress.add_task("arrears bench", total=6)
        ctx = Context(bootstrap, workdir, plan, status=lambda text: progress.console.log(text))
        stack.callback(ctx.stop_workers)
        started = time.monotonic()
        data = list(encode(dataset.mixed(ctx.run, plan.ingest_loans)))
        figures: dict[str, Any] = {}

        def step(name: str, total: int | None) -> Any:
            task = progress.add_task(name, total=total)
            return task, (lambda n: progress.advance(task, n))

        task, _ = step("ceiling: librdkafka consume→produce", None)
        figures["ceilings.librdkafka_loop_eps"] = ceilings.librdkafka_loop(ctx, data)
        progress.update(task, total=1, completed=1)
        progress.advance(overall)

        task, _ = step("ceiling: Faust no-op agent", None)
        figures["ceilings.faust_noop_eps"] = ceilings.faust_noop(ctx, data)
        progress.update(task, total=1, completed=1)
        progress.advance(overall)

        for n_workers, key in ((1, "ingest.eps_1_worker"), (2, "ingest.eps_2_workers")):
            task, advance = step(f"ingest, {n_workers} worker{'s' if n_workers > 1 else ''}", len(data))
            figures[key] = phases.ingest(ctx, data, n_workers, advance)
            progress.advance(overall)
        figures["ingest.events"] = len(data)
        figures["ingest.mix"] = {"LoanOpened": 1, "InstallmentScheduled": dataset.INSTALLMENTS,
                                 "RepaymentReceived": dataset.REPAYMENTS, "ContactAttempted": dataset.CONTACTS}

        task, advance = step(f"book of {plan.book_loans:,} loans: load, memory, tick", 2 * plan.book_loans)
        book = phases.book_tick_memory(ctx, advance, ctx.status)
        figures.update({
            "tick.loans": book.loans,
            "tick.seconds": book.tick_seconds,
            "tick.loans_per_second": book.loans / book.tick_seconds if book.tick_seconds else 0.0,
            "tick.seconds_per_million_loans": tick_seconds_per_million(book.tick_seconds, book.loans),
            "tick.compute_seconds": book.tick_compute_seconds,
            "tick.delinquent_loans": book.delinquent,
            "tick.cases_opened": book.cases_opened,
            "tick.load_eps": book.load_eps,
            "memory.loans": book.loans,
            "memory.bytes_per_loan_memory": book.bytes_per_loan_memory,
            "memory.bytes_per_loan_rocksdb": book.bytes_per_loan_rocksdb,
            "memory.rss_memory_before": book.rss_memory[0],
            "memory.rss_memory_after": book.rss_memory[1],
            "memory.rss_rocksdb_before": book.rss_rocksdb[0],
            "memory.rss_rocksdb_after": book.rss_rocksdb[1],
        })
        progress.advance(overall)

        task, advance = step("latency repayment → CaseClosed", plan.latency_samples)
        lat = phases.latency(ctx, advance, ctx.status)
        figures.update({
            "latency.p50_ms": lat.p50,
            "latency.p99_ms": lat.p99,
            "latency.max_ms": max(lat.samples),
            "latency.samples": len(lat.samples),
            "latency.background_eps": lat.background_eps,
        })
        progress.advance(overall)
        figures["seconds"] = time.monotonic() - started
    doc = nested(figures)
    doc["quick"] = plan.quick
    doc["broker"] = described
    doc["machine"] = machine()
    return doc
