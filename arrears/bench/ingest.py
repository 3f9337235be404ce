"""Ingest: the production-like mix, from a pre-loaded backlog, through 1, 2 and 4 workers.

Each run starts its workers together on the same backlog under an app id of its own (its own
consumer group, changelog and ticks topic). Workers started together join the group in one
generation, so the partitions are shared out once, before anything is read. A run's rate is
the backlog's records divided by the time from the moment the first worker reports ready (it
starts reading then) to the moment every record is durably applied (the workers' committed
positions reach the backlog's end) and every partition has applied the last tick. The time the
group took to settle is reported beside it (``ingest.scale_out_join_seconds``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from .context import AGENCIES, Context
from .feed import Backlog
from .procs import business_dates, cpu_seconds, first_ready, machine_busy_seconds, shared
from .profiling import sampled
from .stats import Sample, rate
from .watch import Positions, count_types, end_offsets, follow

Progress = Callable[[int], None]


@dataclass
class IngestRun:
    workers: int
    events: int
    seconds: float  # first worker ready -> the whole backlog durably applied
    join_seconds: float  # first worker ready -> the partitions shared by all of them
    cpu_seconds: float  # of all the run's workers, over the same time
    broker_cpu_seconds: float  # of the embedded broker over the same time (0 for an outside broker)
    machine_busy_share: float  # of every core of the machine over the same time (other tenants included)
    output_records: int  # records the run wrote to the output topics
    outputs: Counter[str] = field(default_factory=Counter)  # by type (when asked for)

    @property
    def events_per_second(self) -> float:
        return rate(self.events, self.seconds)

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds * 1e6 / self.events if self.events else 0.0

    @property
    def broker_cpu_us_per_event(self) -> float:
        return self.broker_cpu_seconds * 1e6 / self.events if self.events else 0.0


def output_topics(backlog: Backlog) -> dict[str, int]:
    """The topics a worker writes for the mix, with their partition counts."""
    topics = backlog.settings.topics
    p = backlog.settings.arrears_partitions
    out = {topics.cases: p, topics.compliance: p, topics.case_state: p,
           **{topics.work_orders(a["id"]): p for a in AGENCIES}}
    out.update({topics.dlq(t): p for t in topics.inputs})
    return out


def run(ctx: Context, backlog: Backlog, n_workers: int, progress: Progress | None = None,
        count_outputs: bool = False) -> IngestRun:
    settings = ctx.reader(backlog.settings, f"ingest{n_workers}")
    outputs_at_start = end_offsets(settings, output_topics(backlog), settings.arrears_partitions)
    positions = Positions(settings, backlog.input_ends)
    workers = [ctx.worker(settings, f"ingest{n_workers}-{i}") for i in range(n_workers)]
    joined: list[float] = []

    def on_sample(sample: Sample) -> None:
        if not joined and shared(workers, settings.arrears_partitions):
            joined.append(sample.at)

    def finished() -> bool:
        dates = business_dates(workers)
        return (len(dates) == settings.arrears_partitions
                and all(d == backlog.last_tick for d in dates.values()))

    try:
        profile = ctx.plan.profile_dir / "ingest-worker.txt" if ctx.plan.profile_dir and n_workers == 1 else None
        started = first_ready(workers)
        cpu_start = [w.cpu_seconds() for w in workers]
        broker_start = cpu_seconds(ctx.broker_pid) if ctx.broker_pid else 0.0
        busy_start = machine_busy_seconds()
        with sampled(workers[0].pid, profile):
            samples = follow(positions, 1800, progress, interval=0.1, also=finished, on_sample=on_sample)
        cpu = sum(w.cpu_seconds() for w in workers) - sum(cpu_start)
        broker_cpu = cpu_seconds(ctx.broker_pid) - broker_start if ctx.broker_pid else 0.0
        busy_end = machine_busy_seconds()
        busy = (busy_end[0] - busy_start[0]) / max(1e-9, busy_end[1] - busy_start[1])
    finally:
        ctx.stop_workers()
        positions.close()
    done_at = samples[-1].at
    outputs_at_end = end_offsets(settings, output_topics(backlog), settings.arrears_partitions)
    written = sum(outputs_at_end.values()) - sum(outputs_at_start.values())
    counts = count_types(settings, output_topics(backlog), outputs_at_start) if count_outputs else Counter()
    join = (joined[0] if joined else done_at) - started
    return IngestRun(n_workers, positions.target, done_at - started, join, cpu, broker_cpu, busy, written, counts)


def mix_figures(backlog: Backlog, history_counts: Counter[str], outcome: dict[str, int],
                outputs: Counter[str]) -> dict[str, int]:
    """``ingest.mix``: what the backlog holds, and what the processor made of it in the first run."""
    return {
        **{name: history_counts[name] for name in sorted(history_counts)},
        **outcome,
        "events": backlog.events,
        "ticks": backlog.ticks,
        "agencies": len(AGENCIES),
        "cases_opened": outputs["CaseOpened"],
        "escalations": outputs["CaseDelinquencyChanged"],
        "cures": outputs["CaseClosed"],
        "assignments": outputs["CaseAssigned"],
        "work_orders": outputs["WorkOrderIssued"],
        "recalls": outputs["CaseRecalled"],
        "compliance_violations": outputs["ComplianceViolation"],
        "promises_kept": outputs["PromiseKept"],
        "promises_broken": outputs["PromiseBroken"],
        "results_not_assigned": outputs["dlq:NOT_ASSIGNED"],
        "dead_letters": sum(v for k, v in outputs.items() if k.startswith("dlq:")),
    }
