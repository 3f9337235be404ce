"""The delinquency processor's plumbing: read, sequence, apply the pure rules, send, persist.

One loop per worker takes batches from the :class:`~streams.intake.Intake` (the worker's own
read_committed consumer of the partitions Faust assigned it). Per batch:

1. each message is queued in its partition's sequencer, tagged with the calendar topic's end
   as asked after the batch was read (so no earlier tick is overlooked);
2. what the sequencers release is decoded and applied to the partition's
   :class:`~arrears.domain.book.LoanBook`;
3. the outputs are produced and **acknowledged**;
4. then the changed loans, journal entries and sequencer states (which name the positions
   reached) go to the table's changelog; once that is acknowledged they are written to the
   local store and become the partition's durable position.

A crash anywhere re-reads from the durable position, and the rules' idempotence turns the
replay into identical outputs or nothing. The next batch does not wait for step 4.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from arrears.dlq import CONTRACT_VIOLATION, FUTURE_TIME, UNEXPECTED_TYPE, dlq_headers
from arrears.domain import events as ev
from arrears.domain.book import LoanBook, counts_in_portfolio
from arrears.domain.debtor import DebtorBook
from arrears.domain.loan import LoanState, Rules
from arrears.domain.placement import Decision
from arrears.domain.results import future_time_problem
from arrears.kafka import OffsetReader
from arrears.privacy import mask_record
from arrears.settings import Settings
from arrears.topics import InternalTopics, loan_id_of_case
from schemas import CodecError, event_type_headers, get_codec, to_json

from . import lag, metrics
from .calendar_watch import CalendarWatch
from .coordinator import PlacementCoordinator, decode_placement
from .fanout import CalendarFanout
from .intake import TP, Batch, Intake
from .markers import decode_marker
from .records import INPUT_TYPES, to_domain, to_record
from .sequencer import Held, PartitionSequencer, Release
from .sink import Sink
from .state_codec import decode_header, decode_state, encode_state
from .store import LocalStore, PartitionStore, StateCache, partition_of
from .workbench import Workbench

log = logging.getLogger(__name__)

MARKERS = ""  # the sequencer's name for the ticks topic in positions
PAUSE_ABOVE = 20_000  # held messages of one topic in one partition before its reading pauses
RESUME_BELOW = 5_000


class OutRecord(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp_ms: int
    partition: int | None = None  # None: by murmur2 of the key


@dataclass
class Outbox:
    """Records to send before the batch's state may be written."""

    records: list[OutRecord] = field(default_factory=list)

    def add(self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]],
            timestamp_ms: int, partition: int | None = None) -> None:
        self.records.append(OutRecord(topic, key, value, headers, timestamp_ms, partition))


class PartitionWork:
    """One partition on this worker: its loans (sequencer, loan book) and its debtors' budgets."""

    def __init__(self, partition: int, topics: Sequence[str], store: PartitionStore, rules: Rules,
                 side_topics: Sequence[str] = ()) -> None:
        self.partition = partition
        self.store = store
        self.side_topics = tuple(side_topics)  # read on arrival, outside the merge (placements, contacts, verdicts)
        self.sequencer = PartitionSequencer(topics, store.load_sequencer())
        self.book = LoanBook(store, rules, self.sequencer.state.business_date, partition)
        self.debtors = DebtorBook(store.debtor_store(), rules, rules.allocation.partitions)
        self.changed = False
        self.pending_since: float | None = None
        self.paused: set[str] = set()
        # Per topic (MARKERS for the ticks topic): offsets below this are applied and durable.
        self.durable: dict[str, int] = self._positions()
        self.timestamps: list[float] = []  # Kafka timestamps of messages applied since the last flush

    def _positions(self) -> dict[str, int]:
        state = self.sequencer.state
        sides = {t: state.released_next.get(t, 0) for t in self.side_topics}
        return {**self.sequencer.positions(), **sides, MARKERS: state.markers_next}


class Processor:
    """Everything the worker does with its partitions, behind :meth:`suspend`, :meth:`resume` and :meth:`run`."""

    def __init__(self, settings: Settings, table: Any, ticks_topic: str) -> None:
        self.settings = settings
        self.table = table
        self.topics = settings.topics
        self.ticks_topic = ticks_topic
        self.calendar_topic = settings.topics.business_date
        self.input_topics = settings.topics.inputs
        self.partitions = settings.arrears_partitions
        self.rules = settings.config.rules(settings.arrears_partitions)
        self.codec = get_codec(settings.schema_registry_url)
        self.skew_ms = settings.arrears_clock_skew_ms
        self.internal = InternalTopics(settings.arrears_app_id)
        # Placement is a round trip after every tick; without agencies there is nothing to place.
        self.placing = bool(self.rules.allocation.agencies)
        self.side_topics = (self.internal.placements, self.internal.contacts, self.internal.verdicts)
        self.owns_reports = False
        self.coordinator: PlacementCoordinator | None = None
        self.local = LocalStore(table, self.partitions)
        self.cache = StateCache(50_000)
        self.works: dict[int, PartitionWork] = {}
        self.workbench = Workbench(self.rules, self.partitions, self.works)  # the ops page's queues and history
        self.epochs: dict[TP, int] = {}
        self.lock = asyncio.Lock()
        self.failed: BaseException | None = None
        self.ready = asyncio.Event()  # set while the worker holds its partitions and may process
        self.owns_calendar = False
        self._flushes: dict[int, asyncio.Task[None]] = {}
        self.intake: Intake | None = None
        self.sink: Sink | None = None
        self.offsets: OffsetReader | None = None
        self.calendar: CalendarWatch | None = None
        self.fanout: CalendarFanout | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def changelog_topic(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Create the consumer, producer and helpers (once; a rebalance may come before the app's task)."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self.offsets = OffsetReader(self.settings)
        self.intake = Intake(self.settings, fetch_max_wait_ms=self.settings.arrears_fetch_max_wait_ms)
        self.intake.start(loop)
        self.sink = Sink(self.settings, loop)
        offsets, calendar = self.offsets, self.calendar_topic
        self.calendar = CalendarWatch(
            lambda: offsets.reported_end_offsets([calendar], 1, committed=True)[(calendar, 0)])
        self.calendar.start()
        self.fanout = CalendarFanout(self.settings, self.ticks_topic, self.sink, self.offsets)
        self.coordinator = PlacementCoordinator(self.internal.reports, self.internal.placements, self.partitions,
                                                self.rules.allocation, self.sink, self.offsets)
        self._tasks = [loop.create_task(self._loop(), name="processor"),
                       loop.create_task(self._timer(), name="processor-timer")]

    async def wait(self) -> None:
        """Until the processing stops; raises what stopped it."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)  # stopping anyway
        await self.drain_writes()
        if self.fanout is not None:
            await self.fanout.stop()
        if self.coordinator is not None:
            await self.coordinator.stop()
        if self.calendar is not None:
            await self.calendar.stop()
        if self.intake is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.intake.stop)
        if self.sink is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.sink.close)

    async def suspend(self) -> None:
        """Stop processing (a rebalance began): finish the batch at hand and make everything durable.

        Nothing is forgotten: partitions this worker keeps go on from where they are when
        :meth:`resume` says which ones those are.
        """
        self.ready.clear()
        async with self.lock:
            await self.drain_writes()

    async def resume(self, owned: set[int], owns_calendar: bool, owns_reports: bool = False) -> None:
        """The rebalance is complete and the tables recovered: take up exactly what moved."""
        await self.start()
        assert self.intake is not None and self.fanout is not None and self.coordinator is not None
        async with self.lock:
            dropped = set(self.works) - owned
            new = owned - set(self.works)
            if dropped:
                gone = [(t, p) for p in dropped for t in (*self.input_topics, self.ticks_topic, *self.side_topics)]
                self.epochs.update(await self.intake.unassign(gone))
                for p in dropped:
                    del self.works[p]
                    self.workbench.drop(p)
                self.cache.clear()  # cheap to refill; states of given-up partitions must not linger
            if new:
                positions = self._init_partitions(new)
                self.epochs.update(await self.intake.assign(positions))
            if owns_calendar and not self.owns_calendar:
                resume = await self.fanout.start()
                self.epochs.update(await self.intake.assign({(self.calendar_topic, 0): resume}))
            elif not owns_calendar and self.owns_calendar:
                await self.fanout.stop()
                self.epochs.update(await self.intake.unassign([(self.calendar_topic, 0)]))
            self.owns_calendar = owns_calendar
            if owns_reports and not self.owns_reports:
                resume = await self.coordinator.start()
                self.epochs.update(await self.intake.assign({(self.internal.reports, 0): resume}))
            elif not owns_reports and self.owns_reports:
                await self.coordinator.stop()
                self.epochs.update(await self.intake.unassign([(self.internal.reports, 0)]))
            self.owns_reports = owns_reports
            log.info("partitions %s ready (%s kept, %s new, %s given up)%s", sorted(owned),
                     sorted(owned - new), sorted(new), sorted(dropped), "; fanning out the calendar"
                     if owns_calendar else "")
        self.ready.set()

    def _init_partitions(self, partitions: set[int]) -> dict[TP, int]:
        """Load sequencer states and tick indexes of newly owned partitions (one scan each)."""
        started = time.monotonic()
        positions: dict[TP, int] = {}
        loans = 0
        for p in sorted(partitions):
            store = PartitionStore(self.local, p, self.cache, self._header)
            work = PartitionWork(p, self.input_topics, store, self.rules, self.side_topics)
            self.works[p] = work
            for loan_id, raw in store.scan():
                loans += 1
                wake, counts = decode_header(raw)
                if counts:  # only loans with cases or agency tallies are decoded
                    work.book.track(decode_state(raw))
                else:
                    work.book.index.set(loan_id, wake)
            for topic, offset in work.durable.items():
                positions[(topic or self.ticks_topic, p)] = offset
        log.info("partitions %s loaded: %d loans indexed in %.2fs", sorted(partitions), loans,
                 time.monotonic() - started)
        return positions

    def _header(self, state: LoanState) -> tuple[dt.date | None, bool]:
        return state.wake_date(self.rules.grace_days), counts_in_portfolio(state)

    # ---------------------------------------------------------------- the loop
    async def _loop(self) -> None:
        assert self.intake is not None
        while True:
            batch = await self.intake.get()
            if self.intake.failed is not None:
                self.failed = self.intake.failed
            if self.failed is not None:
                raise self.failed
            await self.ready.wait()
            async with self.lock:
                await self.handle(batch)

    async def _timer(self) -> None:
        """Release what waited on the merge's safety valve, warn about stalled ticks, keep lag fresh."""
        while True:
            await asyncio.sleep(1.0)
            if self.failed is not None or not self.ready.is_set():
                continue
            async with self.lock:
                waiting = {p for p, w in self.works.items() if w.sequencer.held_count() or w.sequencer.pending}
                if waiting:
                    await self._run(waiting)
                self._warn_stalled()

    async def handle(self, batch: Batch) -> None:
        """Queue a batch's messages in their sequencers and apply whatever can be applied."""
        assert self.calendar is not None and self.fanout is not None
        assert self.coordinator is not None
        started = time.monotonic()
        touched: set[int] = set()
        outbox = Outbox()
        calendar_end: int | None = None
        for message in batch.records:
            topic, partition = message.topic(), message.partition()
            if batch.epochs.get((topic, partition)) != self.epochs.get((topic, partition)):
                continue  # read before the partition was (re)assigned: it comes again
            if topic == self.calendar_topic:
                self.fanout.offer(message)
                continue
            if topic == self.internal.reports:
                self.coordinator.offer(message)
                continue
            work = self.works.get(partition)
            if work is None:
                continue
            touched.add(partition)
            if topic == self.ticks_topic:
                work.sequencer.offer_marker(decode_marker(message.value()), message.offset())
                work.changed = True
                continue
            if topic in self.side_topics:
                self._side(work, topic, message, outbox)
                continue
            if calendar_end is None:
                calendar_end = await self.calendar.end_after(batch.read_at)
            _, timestamp = message.timestamp()
            work.sequencer.offer(Held(
                topic, message.offset(), timestamp / 1000.0 if timestamp > 0 else 0.0, calendar_end,
                message.key(), message.value(), tuple(message.headers() or ()),
            ))
        # End notices come after the records they follow (a notice says everything before it
        # was delivered: applied before those records, it would skip them).
        for topic, partition, end in batch.ends:
            if batch.epochs.get((topic, partition)) != self.epochs.get((topic, partition)):
                continue
            if topic == self.calendar_topic:
                self.fanout.offer_end(end)
            elif topic != self.ticks_topic and partition in self.works:
                self.works[partition].sequencer.note_end(topic, end)
                touched.add(partition)
        lag.BATCH_SIZE.observe(len(batch.records))
        await self._run(touched, outbox)
        metrics.BATCH_SECONDS.observe(time.monotonic() - started)

    def _placements_read(self, work: PartitionWork, offset: int) -> None:
        """Placement messages up to *offset* are done with, short of one still kept for its tick."""
        state = work.sequencer.state
        held = work.sequencer.placements_held_from()
        upto = offset + 1 if held is None else min(offset + 1, held)
        topic = self.internal.placements
        if upto > state.released_next.get(topic, 0):
            state.released_next[topic] = upto
            work.changed = True

    def _side(self, work: PartitionWork, topic: str, message: Any, outbox: Outbox) -> None:
        """Records applied on arrival, outside the merge of the input topics.

        Placement's decisions wait in the sequencer for the tick they follow; a contact is
        counted in its debtor's budget (this partition of the debtor stage), and word that a loan
        partition applied a tick may complete a barrier for the third-party contacts held there;
        a verdict of the budget is counted on the loan it names. Counting commutes with
        everything else the loan does, so when it arrives does not change the final state.
        """
        state = work.sequencer.state
        offset = message.offset()
        if offset < state.released_next.get(topic, 0):
            return  # a repeat
        if topic == self.internal.placements:
            marker, business_date, _ = decode_placement(message.value())
            if not work.sequencer.offer_placement(marker, business_date, offset):
                self._placements_read(work, offset)  # a repeat for a tick already placed here
            return  # kept for its tick: read once it is applied (a crash before then reads it again)
        state.released_next[topic] = offset + 1
        work.changed = True
        if topic == self.internal.contacts:
            counted: ev.ContactCounted | ev.TickApplied = decode_state(message.value())
            budget = (work.debtors.count(counted) if isinstance(counted, ev.ContactCounted)
                      else work.debtors.tick_applied(counted))
            for output in budget:
                if isinstance(output, ev.BudgetVerdict):
                    outbox.add(self.internal.verdicts, output.loan_id.encode(), encode_state(output), [],
                               output.occurred_at)
                else:
                    self._emit([output], outbox)
            return
        verdict: ev.BudgetVerdict = decode_state(message.value())
        self._emit(work.book.apply(verdict.loan_id, verdict), outbox)

    async def _run(self, partitions: Iterable[int], outbox: Outbox | None = None) -> None:
        outbox = outbox or Outbox()
        now = time.monotonic()
        for p in sorted(partitions):
            work = self.works.get(p)
            if work is None:
                continue
            for release in work.sequencer.drain(now):
                self._apply(work, release, outbox)
                work.changed = True
            if work.sequencer.impatient:
                log.warning("partition %d: released a message without word from every topic for %.0fs "
                            "(the consumer reported no end); publish order may not be kept", p,
                            work.sequencer.patience_seconds, extra={"partition": p})
            self._backpressure(work)
        metrics.EVENTS_TALLY.flush()
        await self._commit(outbox)

    def _backpressure(self, work: PartitionWork) -> None:
        assert self.intake is not None
        for topic in self.input_topics:
            n = work.sequencer.queue_length(topic)
            if n > PAUSE_ABOVE and topic not in work.paused:
                work.paused.add(topic)
                self.intake.pause([(topic, work.partition)])
            elif n < RESUME_BELOW and topic in work.paused:
                work.paused.discard(topic)
                self.intake.resume([(topic, work.partition)])

    def _warn_stalled(self) -> None:
        now = time.monotonic()
        for work in self.works.values():
            blocking = work.sequencer.blocking_topics()
            if not blocking:
                work.pending_since = None
                continue
            work.pending_since = work.pending_since or now
            if now - work.pending_since > 60:
                log.warning(
                    "tick %s pending in partition %d for %.0fs: waiting on %s",
                    work.sequencer.pending[0].tick_id, work.partition, now - work.pending_since,
                    ", ".join(f"{t} (at {f}, place {p})" for t, f, p in blocking),
                    extra={"tick_id": work.sequencer.pending[0].tick_id, "partition": work.partition},
                )
                work.pending_since = now

    # ---------------------------------------------------------------- applying
    def _apply(self, work: PartitionWork, release: Release, outbox: Outbox) -> None:
        if release.skip:
            return
        if release.marker is not None:
            marker = release.marker
            assert marker.tick_id is not None and marker.business_date is not None
            tick = ev.Tick(marker.tick_id, marker.occurred_at, marker.business_date)
            if release.placement is not None:
                self._placements_read(work, release.placement_offset)
                decisions = [Decision(case_id, agency_id) for case_id, agency_id in release.placement.decisions]
                outputs = work.book.place(decisions, tick)
                self._journal(work, outputs)
                self._emit(outputs, outbox)
                return
            started = time.monotonic()
            outputs = work.book.tick(tick)
            metrics.TICK_SECONDS.observe(time.monotonic() - started)
            self._journal(work, outputs)
            metrics.BUSINESS_DATE.labels(str(work.partition)).set(marker.business_date.toordinal())
            self._emit(outputs, outbox)
            self._tell_budgets(work.partition, marker.business_date, marker.occurred_at, outbox)
            self.workbench.ticked(work.partition, work.book)
            if self.placing:
                # Placement sees the whole book: report, and hold everything after the tick until
                # its decisions come back (SPEC §5).
                report = work.book.report(marker.tick_id)
                outbox.add(self.internal.reports, str(work.partition).encode(), encode_state(report), [],
                           marker.occurred_at, partition=0)
                work.sequencer.await_placement(marker)
            log.info("tick %s applied in partition %d: %d outputs",
                     marker.business_date.isoformat(), work.partition, len(outputs),
                     extra={"business_date": marker.business_date.isoformat(), "partition": work.partition})
            return
        message = release.held
        assert message is not None
        work.timestamps.append(message.timestamp)
        held_topic = message.topic
        try:
            decoded = self.codec.decode(message.value)
        except CodecError as exc:
            self._dead_letter(message, work.partition, exc.reason, str(exc), outbox)
            return
        if decoded.name not in INPUT_TYPES or self.topics.for_record(decoded.name) != held_topic:
            reason = f"{decoded.name} does not belong on {held_topic}"
            self._dead_letter(message, work.partition, UNEXPECTED_TYPE, reason, outbox)
            return
        domain_event = to_domain(decoded.name, decoded.value)
        loan_id = _loan_id(domain_event)
        if loan_id is None:
            reason = "case_id is not of the form <loan_id>:<n>"
            self._dead_letter(message, work.partition, CONTRACT_VIOLATION, reason, outbox)
            return
        expected = partition_of(loan_id.encode(), self.partitions)
        if expected != work.partition:
            self._dead_letter(
                message, work.partition, CONTRACT_VIOLATION,
                f"loan {loan_id} belongs in partition {expected} (murmur2 of its id), not {work.partition}: "
                "producers must partition with murmur2 (librdkafka: partitioner=murmur2_random)", outbox,
            )
            return
        problem = future_time_problem(domain_event, int(message.timestamp * 1000), self.skew_ms)
        if problem is not None:
            self._dead_letter(message, work.partition, FUTURE_TIME, problem, outbox)
            return
        metrics.EVENTS_TALLY.add(decoded.name)
        outputs = work.book.apply(loan_id, domain_event)
        self._emit(outputs, outbox, message, work.partition, domain_event.event_id)
        self._journal(work, outputs, (decoded.name, decoded.value, loan_id, domain_event))

    def _tell_budgets(self, partition: int, business_date: dt.date, occurred_at: int, outbox: Outbox) -> None:
        """Every partition of the debtor stage hears that this loan partition applied the tick.

        Same producer, same topic: each budget partition receives this after every contact this
        loan partition counted before the tick (the CBA rule's barrier, SPEC §6).
        """
        applied = encode_state(ev.TickApplied(business_date, partition, occurred_at))
        key = str(partition).encode()
        for budget in range(self.partitions):
            outbox.add(self.internal.contacts, key, applied, [], occurred_at, partition=budget)

    def _journal(self, work: PartitionWork, outputs: list[ev.Output],
                 cause: tuple[str, dict[str, Any], str, ev.InputEvent] | None = None) -> None:
        """Keep every record that touched a case, in order, for its timeline (SPEC §7 queries).

        Each entry is ``{"case_ids": [...], "record": <JSON form>}``: the input that caused
        case outputs is kept too, under the cases it touched.
        """
        if not self.settings.arrears_journal:
            return
        catalog = self.codec.catalog
        by_loan: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for output in outputs:
            if isinstance(output, (ev.CaseState, ev.Rejected, ev.ContactCounted)):
                continue
            name, value = to_record(output)
            if value.get("case_id") is None:
                continue  # SPEC §10: a pause of a loan without a case belongs to no case's timeline
            loan = value.get("loan_id") or loan_id_of_case(value["case_id"])
            # The timeline never stores personal data: work orders are kept with the debtor masked.
            by_loan.setdefault(loan, []).append((value["case_id"], mask_record(to_json(catalog, name, value))))
        if cause is not None:
            name, value, loan, event = cause
            rejected = any(isinstance(o, ev.Rejected) and o.event.event_id == event.event_id for o in outputs)
            cases = sorted({case for case, _ in by_loan.get(loan, [])})
            if not cases and hasattr(event, "case_id") and not rejected:
                cases = [event.case_id]  # type: ignore[union-attr]
            if cases:
                by_loan.setdefault(loan, []).insert(0, (",".join(cases), mask_record(to_json(catalog, name, value))))
        for loan, entries in by_loan.items():
            work.store.journal(loan, [
                _json_bytes({"case_ids": case.split(","), "record": record}) for case, record in entries
            ])

    def _emit(self, outputs: Iterable[ev.Output], outbox: Outbox, source: Held | None = None, partition: int = -1,
              source_event_id: str | None = None) -> None:
        for output in outputs:
            if isinstance(output, ev.Rejected):
                if source is not None and output.event.event_id == source_event_id:
                    self._dead_letter(source, partition, output.reason, output.detail, outbox)
                else:
                    self._reject_kept(output, outbox)
                continue
            if isinstance(output, ev.ContactCounted):  # to the debtor's budget (the debtor stage)
                outbox.add(self.internal.contacts, output.customer_id.encode(), encode_state(output), [],
                           output.occurred_at)
                continue
            self.workbench.observe(output)
            name, value = to_record(output)
            topic, key = self._route(output)
            payload = self.codec.encode(name, value, topic=topic)
            outbox.add(topic, key.encode(), payload, event_type_headers(name), output.occurred_at)
            metrics.OUTPUTS_BY_TYPE[name].inc()

    def _route(self, output: Any) -> tuple[str, str]:
        if isinstance(output, ev.CaseState):
            return self.topics.case_state, output.case_id
        if isinstance(output, ev.ComplianceViolation):
            return self.topics.compliance, output.case_id
        if isinstance(output, (ev.WorkOrderIssued, ev.WorkOrderUpdated, ev.WorkOrderCancelled)):
            return self.topics.work_orders(output.agency_id), output.case_id
        if isinstance(output, (ev.RecoveryAttributed, ev.RecoveryReversed)):  # SPEC §10
            return self.topics.recoveries, output.loan_id
        return self.topics.cases, output.loan_id

    def _reject_kept(self, rejected: ev.Rejected, outbox: Outbox) -> None:
        """Dead-letter an event kept until its loan was known: its bytes are gone, so re-encode it."""
        event = rejected.event
        name, value = to_record(event)
        topic = self.topics.for_record(name)
        headers = dlq_headers(rejected.reason, rejected.detail, topic, -1, -1, event_type_headers(name))
        key = (_loan_id(event) or "").encode()
        outbox.add(self.topics.dlq(topic), key, self.codec.encode(name, value, topic=topic), headers,
                   event.occurred_at)
        metrics.DLQ.labels(topic, rejected.reason).inc()

    def _dead_letter(self, message: Held, partition: int, reason: str, error: str, outbox: Outbox) -> None:
        log.warning("dead-lettering %s[%d]@%d: %s (%s)", message.topic, partition, message.offset, reason, error,
                    extra={"topic": message.topic, "partition": partition, "offset": message.offset, "reason": reason})
        headers = dlq_headers(reason, error, message.topic, partition, message.offset, list(message.headers))
        timestamp_ms = int((message.timestamp or 0.0) * 1000)
        outbox.add(self.topics.dlq(message.topic), message.key, message.value, headers, timestamp_ms)
        metrics.DLQ.labels(message.topic, reason).inc()

    # ---------------------------------------------------------------- durability
    async def _commit(self, outbox: Outbox) -> None:
        """Outputs acknowledged, then state to the changelog; local store and positions once that is."""
        assert self.sink is not None
        if outbox.records:
            group = self.sink.group()
            for record in outbox.records:
                group.send(record.topic, record.key, record.value, record.headers, record.timestamp_ms,
                           record.partition)
            await group.close()
        changelog = self.changelog_topic
        for work in self.works.values():
            if not work.changed:
                continue
            work.changed = False
            state = work.sequencer.snapshot()
            positions = {**{t: state.released_next.get(t, 0) for t in (*self.input_topics, *self.side_topics)},
                         MARKERS: state.markers_next}
            seq, writes = work.store.collect(state)
            group = self.sink.group()
            for key, value in writes.items():
                group.send(changelog, key, value, partition=work.partition)
            acked = group.close()
            timestamps, work.timestamps = work.timestamps, []
            previous = self._flushes.get(work.partition)
            self._flushes[work.partition] = asyncio.get_running_loop().create_task(
                self._flushed(work, previous, acked, seq, writes, positions, timestamps))

    async def _flushed(self, work: PartitionWork, previous: asyncio.Task[None] | None,
                       acked: asyncio.Future[dict[tuple[str, int], int]], seq: int,
                       writes: dict[bytes, bytes | None], positions: dict[str, int], timestamps: list[float]) -> None:
        """Once the changelog holds the batch (and every batch before it): local store, positions."""
        try:
            if previous is not None:
                await previous
            offsets = await acked
        except BaseException as exc:  # a lost changelog write cannot be repaired in place
            if self.failed is None:
                self.failed = exc if isinstance(exc, Exception) else RuntimeError(repr(exc))
                log.critical("a changelog write failed; stopping so that a restart replays: %r", exc)
            raise
        offset = offsets.get((self.changelog_topic, work.partition), -1)
        work.store.flushed(seq, writes, offset)
        work.durable = positions
        now = time.time()
        for age in lag.ages(timestamps, now):
            lag.PROCESSING_LATENCY.observe(age)
        if self._flushes.get(work.partition) is asyncio.current_task():
            del self._flushes[work.partition]
            if self.intake is not None:
                self.intake.commit({(t, work.partition): o for t, o in positions.items() if t})

    async def drain_writes(self) -> None:
        """Wait until every changelog write in flight is acknowledged and local (before a rebalance)."""
        while self._flushes:
            await asyncio.gather(*list(self._flushes.values()), return_exceptions=True)
            self._flushes = {p: t for p, t in self._flushes.items() if not t.done()}

    # ---------------------------------------------------------------- queries
    def loan_state(self, loan_id: str) -> LoanState | None:
        """A loan as the worker sees it now (including writes not yet in the local store)."""
        work = self.works.get(partition_of(loan_id.encode(), self.partitions))
        if work is not None:
            return work.store.get(loan_id)
        raw = self.local.get(partition_of(loan_id.encode(), self.partitions), loan_id.encode())
        return decode_state(raw) if raw is not None else None

    def lags(self) -> dict[tuple[str, int], int]:
        """Per owned input partition: records between the durable position and the end the consumer saw."""
        if self.intake is None:
            return {}
        highwaters = self.intake.highwaters([(t, p) for p in self.works for t in self.input_topics])
        durable = {(t, p): w.durable.get(t) for p, w in self.works.items() for t in self.input_topics}
        return lag.lags(highwaters, durable)


def _json_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _loan_id(event: ev.InputEvent) -> str | None:
    loan_id = getattr(event, "loan_id", None)
    if loan_id is not None:
        return str(loan_id)
    try:
        return loan_id_of_case(event.case_id)  # type: ignore[union-attr]
    except ValueError:
        return None
