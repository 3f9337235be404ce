"""Latency: repayment → CaseClosed, one probe at a time, under a background of at least half the
measured capacity.

Setup: probe loans and loans for the background, each one installment behind, are loaded into
one worker and a tick opens a case for every one of them (all M1, assigned to AG1). Then a
background in the ingest mix's proportions (new loans with their schedules, repayments, and
agency contacts and part-payments on the open cases) runs at ``Plan.background_share`` of the
1-worker ingest rate measured earlier in the run, while each probe's cure repayment is sent
and the time to its ``CaseClosed`` on ``collections.cases`` is noted.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from arrears.kafka import make_producer
from producers.publisher import LoanEventPublisher
from schemas import event_type_headers, get_codec

from . import dataset
from .context import Context, wait_for
from .feed import Encoded, Feeder, encode, publish_first_tick, publish_records
from .stats import percentile, rate
from .watch import Positions, TopicWatcher, follow

Progress = Callable[[int], None]


class Background:
    """Sends pre-encoded records at a steady rate until stopped (or until they run out)."""

    def __init__(self, feeder: Feeder, records: Sequence[Encoded], eps: float) -> None:
        self.feeder = feeder
        self.records = records
        self.eps = eps
        self.sent = 0
        self.started = 0.0
        self.stopped = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Background:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def _loop(self) -> None:
        n = 0
        while not self._stop.is_set() and n < len(self.records):
            due = min(len(self.records), int((time.monotonic() - self.started) * self.eps))
            while n < due:
                self.feeder.send(self.records[n])
                n += 1
            self.feeder.producer.poll(0)
            self.sent = n
            time.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.stopped = time.monotonic()
        self.feeder.flush()

    @property
    def achieved_eps(self) -> float:
        return rate(self.sent, (self.stopped or time.monotonic()) - self.started)


@dataclass
class LatencyFigures:
    samples: list[float]  # milliseconds
    background_eps: float
    background_target_eps: float

    @property
    def p50(self) -> float:
        return percentile(self.samples, 50)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)


def run(ctx: Context, capacity_eps: float, progress: Progress | None = None,
        status: Callable[[str], None] = lambda _t: None) -> LatencyFigures:
    settings = ctx.settings("latency")
    plan = ctx.plan
    probes, loans = plan.latency_samples, plan.latency_loans
    tick_date = dataset.TICK_DATE
    records: list[dataset.Record] = []
    for n in range(probes + loans):
        records += dataset.delinquent_loan(ctx.run, n, tick_date)
    publish_first_tick(settings, tick_date - dt.timedelta(days=60))  # before any loan opened
    backlog = publish_records(settings, records)
    worker = ctx.worker(settings, "latency")
    positions = Positions(settings, backlog.input_ends)
    try:
        worker.wait_ready()
        follow(positions, 600)
        status(f"opening {probes + loans:,} cases")
        opened = TopicWatcher(settings, settings.topics.cases, settings.arrears_partitions, ["CaseOpened"]).start()
        try:
            with LoanEventPublisher(settings) as publisher:
                publisher.end_of_day(tick_date)
            wait_for(lambda: opened.seen["CaseOpened"].count >= probes + loans, 300, "every case to open")
        finally:
            opened.stop()

        target = plan.background_share * capacity_eps
        duration = probes * plan.latency_interval + 15  # more than the probes need: the pacer stops first
        now_ms = int(time.time() * 1000)
        traffic = list(encode(dataset.background(ctx.run, probes, loans, int(target * duration), now_ms, tick_date)))
        watcher = TopicWatcher(settings, settings.topics.cases, settings.arrears_partitions, ["CaseClosed"],
                               keep_keys=True).start()
        background = Background(Feeder(settings, **{"linger.ms": 5}), traffic, target).start()
        probe = make_producer(settings, **{"linger.ms": 0})
        codec = get_codec()
        headers = event_type_headers("RepaymentReceived")
        sent_at: dict[bytes, float] = {}
        status(f"probing repayment → CaseClosed under {target:,.0f} events/s of background")
        try:
            time.sleep(2.0)  # let the background reach its pace
            for n in range(probes):
                name, value = dataset.repayment(ctx.run, n, "cure", dataset.INSTALLMENT_DUE, tick_date,
                                                int(time.time() * 1000))
                key = value["loan_id"].encode()
                payload = codec.encode_single_object(name, value)
                sent_at[key] = time.monotonic()
                probe.produce(settings.topics.loan_repayments, payload, key, headers=headers)
                probe.poll(0)
                if progress is not None:
                    progress(1)
                time.sleep(plan.latency_interval)
            probe.flush(30)
            wait_for(lambda: all(k in watcher.keys["CaseClosed"] for k in sent_at), 120, "every probe's CaseClosed")
        finally:
            background.stop()
            watcher.stop()
        closed = watcher.keys["CaseClosed"]
        samples = [(closed[key] - at) * 1000 for key, at in sent_at.items()]
    finally:
        ctx.stop_workers()
        positions.close()
    return LatencyFigures(samples, background.achieved_eps, target)
