"""The delinquency processor's plumbing: decode, sequence, apply the pure rules, send, persist.

Per batch of Faust events: each message is queued in its partition's sequencer; what the
sequencer releases is decoded and applied to the partition's :class:`LoanBook`; the outputs
are sent and acknowledged; then the changed loans and the sequencer state go to the table's
changelog; only then are the source messages acked (so Faust commits their offsets).
A crash anywhere re-delivers what was not committed, and the rules' idempotence turns the
replay into identical outputs or nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from arrears.dlq import CONTRACT_VIOLATION, UNEXPECTED_TYPE, dlq_headers
from arrears.domain import events as ev
from arrears.domain.book import LoanBook
from arrears.domain.loan import LoanState, Rules
from arrears.kafka import OffsetReader
from arrears.settings import Settings
from arrears.topics import loan_id_of_case
from schemas import CodecError, event_type_headers, get_codec

from . import metrics
from .markers import decode_marker
from .records import INPUT_TYPES, to_domain, to_record
from .sequencer import Held, PartitionSequencer, Release, SequencerState
from .store import PartitionStore, StateCache, decode_wake, partition_of, scan

log = logging.getLogger(__name__)

OPEN_CASE_WAKE = dt.date.min


@dataclass(frozen=True)
class CaseView:
    """What the query API and metrics need about an open case, without decoding the loan."""

    case_id: str
    status: str
    bucket: str
    dpd: int
    overdue_amount: int
    currency: str
    agency_id: str | None


@dataclass
class Outbox:
    """Records to send and source events to ack once the batch is durable."""

    records: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]], int]] = field(default_factory=list)
    acks: list[Any] = field(default_factory=list)


class PartitionWork:
    """One partition's sequencer, loan book and open-case registry on this worker."""

    def __init__(self, partition: int, topics: Sequence[str], store: PartitionStore, rules: Rules,
                 state: SequencerState | None) -> None:
        self.partition = partition
        self.store = store
        self.sequencer = PartitionSequencer(topics, state)
        self.book = LoanBook(store, rules, self.sequencer.state.business_date)
        self.open_cases: dict[str, CaseView] = {}
        self.changed = False
        self.pending_since: float | None = None

    def track(self, state: LoanState) -> None:
        case = state.open_case
        if case is None:
            self.open_cases.pop(state.loan_id, None)
            return
        assert state.account is not None
        self.open_cases[state.loan_id] = CaseView(
            case.case_id, case.status, case.bucket, case.dpd, case.overdue_amount, state.account.currency,
            case.assignment.agency_id if case.assignment else None,
        )


class Processor:
    """Everything the ledger agent does, behind two entry points: :meth:`handle` and :meth:`tick_timer`."""

    def __init__(self, app: Any, settings: Settings, table: Any, ticks_topic: str) -> None:
        self.app = app
        self.settings = settings
        self.table = table
        self.topics = settings.topics
        self.ticks_topic = ticks_topic
        self.input_topics = settings.topics.inputs
        self.partitions = settings.arrears_partitions
        config = settings.config
        self.rules = Rules(buckets=config.bucket_scheme(), grace_days=config.grace_days)
        self.codec = get_codec(settings.schema_registry_url)
        self.cache = StateCache(50_000)
        self.works: dict[int, PartitionWork] = {}
        self.lock = asyncio.Lock()
        self._offsets: OffsetReader | None = None
        self.last_calendar_end = 0

    # ---------------------------------------------------------------- lifecycle
    def reset(self) -> None:
        """Forget everything in memory (at every rebalance); it is rebuilt from the table."""
        self.works.clear()
        self.cache.clear()

    def _offset_reader(self) -> OffsetReader:
        if self._offsets is None:
            self._offsets = OffsetReader(self.settings)
        return self._offsets

    async def calendar_end(self) -> int:
        """The calendar topic's end offset now (a message read after this knows every earlier tick)."""
        reader = self._offset_reader()
        topic = self.topics.business_date
        ends = await asyncio.get_running_loop().run_in_executor(None, reader.end_offsets, [topic], 1)
        self.last_calendar_end = ends[(topic, 0)]
        return self.last_calendar_end

    def _work(self, partition: int, event: Any) -> PartitionWork:
        work = self.works.get(partition)
        if work is None:
            self._init_partitions({partition} | self._assigned_partitions(), event)
            work = self.works[partition]
        work.store.event = event
        return work

    def _assigned_partitions(self) -> set[int]:
        try:
            assignment = self.app.consumer.assignment()
        except Exception:  # not started yet
            return set()
        return {tp.partition for tp in assignment if tp.topic in self.input_topics}

    def _init_partitions(self, partitions: set[int], event: Any) -> None:
        """Load sequencer states and rebuild tick indexes for new partitions with one table scan."""
        started = time.monotonic()
        new = {p for p in partitions if p not in self.works}
        for p in new:
            work: PartitionWork | None = None

            def on_put(state: LoanState, _p: int = p) -> None:
                self.works[_p].track(state)

            store = PartitionStore(self.table, p, self.cache, self._wake, on_put)
            store.event = event
            work = PartitionWork(p, self.input_topics, store, self.rules, store.load_sequencer())
            self.works[p] = work
        loans = 0
        for p, loan_id, raw in scan(self.table, new, self.partitions):
            work = self.works[p]
            wake = decode_wake(raw)
            work.book.index.set(loan_id, wake)
            if wake == OPEN_CASE_WAKE:
                state = work.store.get(loan_id)
                if state is not None:
                    work.track(state)
            loans += 1
        log.info("partitions %s ready: %d loans indexed in %.2fs", sorted(new), loans, time.monotonic() - started)

    def _wake(self, state: LoanState) -> dt.date | None:
        return state.wake_date(self.rules.grace_days)

    # ---------------------------------------------------------------- batches
    async def handle(self, events: Sequence[Any]) -> None:
        """Queue a batch of Faust events and apply whatever can be applied."""
        calendar_end = await self.calendar_end()
        async with self.lock:
            touched: set[int] = set()
            for event in events:
                message = event.message
                work = self._work(message.partition, event)
                touched.add(message.partition)
                if message.topic == self.ticks_topic:
                    accepted = work.sequencer.offer_marker(decode_marker(message.value, event))
                else:
                    accepted = work.sequencer.offer(
                        Held(message.topic, message.offset, message.timestamp or 0.0, calendar_end, event)
                    )
                if accepted:
                    message.incref()  # held: Faust must not commit it until we have applied it
            await self._run(touched)

    async def tick_timer(self) -> None:
        """Release what waited on time (the merge's patience) or on messages that came meanwhile."""
        if not self.works:
            return
        async with self.lock:
            waiting = {p for p, w in self.works.items() if w.sequencer.held_count() or w.sequencer.pending}
            if waiting:
                await self._run(waiting)
            self._warn_stalled()

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
                )
                work.pending_since = now

    async def _run(self, partitions: Iterable[int]) -> None:
        outbox = Outbox()
        now = time.monotonic()
        for p in sorted(partitions):
            work = self.works.get(p)
            if work is None:
                continue
            highwater = self._highwater_lookup(p)
            for release in work.sequencer.drain(highwater, now):
                self._apply(work, release, outbox)
                work.changed = True
        await self._commit(outbox)

    def _highwater_lookup(self, partition: int) -> Any:
        from faust.types import TP

        consumer = self.app.consumer

        def highwater(topic: str) -> int | None:
            try:
                value = consumer.highwater(TP(topic, partition))
            except Exception:
                return None
            return int(value) if value is not None else None

        return highwater

    # ---------------------------------------------------------------- applying
    def _apply(self, work: PartitionWork, release: Release, outbox: Outbox) -> None:
        if release.skip:
            assert release.marker is not None
            outbox.acks.append(release.marker.item)
            return
        if release.marker is not None:
            marker = release.marker
            assert marker.tick_id is not None and marker.business_date is not None
            started = time.monotonic()
            outputs = work.book.tick(ev.Tick(marker.tick_id, marker.occurred_at, marker.business_date))
            metrics.TICK_SECONDS.observe(time.monotonic() - started)
            metrics.BUSINESS_DATE.labels(str(work.partition)).set(marker.business_date.toordinal())
            self._emit(outputs, None, None, outbox)
            outbox.acks.append(marker.item)
            log.info("tick %s applied in partition %d: %d outputs",
                     marker.business_date.isoformat(), work.partition, len(outputs))
            return
        held = release.held
        assert held is not None
        event = held.item
        outbox.acks.append(event)
        message = event.message
        try:
            decoded = self.codec.decode(message.value)
        except CodecError as exc:
            self._dead_letter(message, exc.reason, str(exc), outbox)
            return
        if decoded.name not in INPUT_TYPES or self.topics.for_record(decoded.name) != held.topic:
            self._dead_letter(message, UNEXPECTED_TYPE, f"{decoded.name} does not belong on {held.topic}", outbox)
            return
        domain_event = to_domain(decoded.name, decoded.value)
        loan_id = _loan_id(domain_event)
        if loan_id is None:
            self._dead_letter(message, CONTRACT_VIOLATION, "case_id is not of the form <loan_id>:<n>", outbox)
            return
        expected = partition_of(loan_id.encode(), self.partitions)
        if expected != work.partition:
            self._dead_letter(
                message, CONTRACT_VIOLATION,
                f"loan {loan_id} belongs in partition {expected} (murmur2 of its id), not {work.partition}: "
                "producers must partition with murmur2 (librdkafka: partitioner=murmur2_random)", outbox,
            )
            return
        metrics.EVENTS.labels(decoded.name).inc()
        outputs = work.book.apply(loan_id, domain_event)
        self._emit(outputs, message, domain_event.event_id, outbox)

    def _emit(self, outputs: Iterable[ev.Output], source: Any, source_event_id: str | None, outbox: Outbox) -> None:
        for output in outputs:
            if isinstance(output, ev.Rejected):
                if source is not None and output.event.event_id == source_event_id:
                    self._dead_letter(source, output.reason, output.detail, outbox)
                else:
                    self._reject_kept(output, outbox)
                continue
            name, value = to_record(output)
            topic, key = self._route(output)
            payload = self.codec.encode(name, value, topic=topic)
            outbox.records.append((topic, key.encode(), payload, event_type_headers(name), output.occurred_at))
            metrics.OUTPUTS.labels(name).inc()

    def _route(self, output: Any) -> tuple[str, str]:
        if isinstance(output, ev.CaseState):
            return self.topics.case_state, output.case_id
        if isinstance(output, ev.ComplianceViolation):
            return self.topics.compliance, output.case_id
        if isinstance(output, (ev.WorkOrderIssued, ev.WorkOrderUpdated, ev.WorkOrderCancelled)):
            return self.topics.work_orders(output.agency_id), output.case_id
        return self.topics.cases, output.loan_id

    def _reject_kept(self, rejected: ev.Rejected, outbox: Outbox) -> None:
        """Dead-letter an event kept until its loan was known: its bytes are gone, so re-encode it."""
        event = rejected.event
        name, value = to_record(event)
        topic = self.topics.for_record(name)
        headers = dlq_headers(rejected.reason, rejected.detail, topic, -1, -1, event_type_headers(name))
        key = (_loan_id(event) or "").encode()
        outbox.records.append((self.topics.dlq(topic), key, self.codec.encode(name, value, topic=topic), headers,
                               event.occurred_at))
        metrics.DLQ.labels(topic, rejected.reason).inc()

    def _dead_letter(self, message: Any, reason: str, error: str, outbox: Outbox) -> None:
        log.warning("dead-lettering %s[%d]@%d: %s (%s)", message.topic, message.partition, message.offset, reason,
                    error)
        headers = dlq_headers(reason, error, message.topic, message.partition, message.offset,
                              list(message.headers or []))
        timestamp_ms = int((message.timestamp or time.time()) * 1000)
        outbox.records.append((self.topics.dlq(message.topic), message.key, message.value, headers, timestamp_ms))
        metrics.DLQ.labels(message.topic, reason).inc()

    # ---------------------------------------------------------------- durability
    async def _commit(self, outbox: Outbox) -> None:
        """Outputs acknowledged, then state to the changelog, then source offsets acked."""
        producer = self.app.producer
        if outbox.records:
            sends = [
                await producer.send(topic, key, value, None, (timestamp_ms + 0.5) / 1000.0, headers)
                for topic, key, value, headers, timestamp_ms in outbox.records
            ]
            await asyncio.gather(*sends)
        writes: list[asyncio.Future[Any]] = []
        for work in self.works.values():
            if work.changed:
                writes.extend(work.store.write(work.sequencer.state))
                work.changed = False
        if writes:
            await asyncio.gather(*writes)
        for event in outbox.acks:
            event.ack()


def _loan_id(event: ev.InputEvent) -> str | None:
    loan_id = getattr(event, "loan_id", None)
    if loan_id is not None:
        return str(loan_id)
    try:
        return loan_id_of_case(event.case_id)  # type: ignore[union-attr]
    except ValueError:
        return None
