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
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from arrears.dlq import CONTRACT_VIOLATION, UNEXPECTED_TYPE, dlq_headers
from arrears.domain import events as ev
from arrears.domain.book import LoanBook, counts_in_portfolio
from arrears.domain.loan import LoanState, Rules
from arrears.kafka import OffsetReader
from arrears.settings import Settings
from arrears.topics import loan_id_of_case
from schemas import CodecError, event_type_headers, get_codec, to_json

from . import metrics
from .gaps import GapKeeper
from .markers import decode_marker
from .records import INPUT_TYPES, to_domain, to_record
from .sequencer import Held, PartitionSequencer, Release, SequencerState
from .state_codec import decode_state
from .store import PartitionStore, StateCache, decode_header, partition_of, scan

log = logging.getLogger(__name__)

@dataclass
class Outbox:
    """Records to send before the batch's state may be written."""

    records: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]], int]] = field(default_factory=list)


class PartitionWork:
    """One partition's sequencer and loan book on this worker."""

    def __init__(self, partition: int, topics: Sequence[str], store: PartitionStore, rules: Rules,
                 state: SequencerState | None, held: Sequence[Held]) -> None:
        self.partition = partition
        self.store = store
        self.sequencer = PartitionSequencer(topics, state, held)
        self.book = LoanBook(store, rules, self.sequencer.state.business_date, partition)
        self.changed = False
        self.released: list[Held] = []  # persisted messages released since the last commit
        self.pending_since: float | None = None
        self.durable: dict[str, int] = {}  # per topic: offsets below this are applied or durably held
        self._note_durable()

    def _note_durable(self) -> None:
        state = self.sequencer.state
        self.durable = {**state.next_seen, "": state.markers_next}


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
        self.rules = settings.config.rules(settings.arrears_partitions)
        self.codec = get_codec(settings.schema_registry_url)
        self.cache = StateCache(50_000)
        self.works: dict[int, PartitionWork] = {}
        self.lock = asyncio.Lock()
        self._offsets: OffsetReader | None = None
        self.last_calendar_end = 0
        self._calendar_asked_at = 0.0
        self._skew = settings.arrears_clock_skew_ms / 1000.0
        self.gaps = GapKeeper(app.consumer)
        self._writes: set[asyncio.Future[Any]] = set()
        self.failed: BaseException | None = None

    # ---------------------------------------------------------------- lifecycle
    async def reset(self) -> None:
        """Forget everything in memory (at every rebalance); it is rebuilt from the table.

        Waits for a batch being committed: its changes must reach the changelog first.
        """
        async with self.lock:
            await self.drain_writes()
            self.works.clear()
            self.cache.clear()
            self.gaps.forget()

    def _offset_reader(self) -> OffsetReader:
        if self._offsets is None:
            self._offsets = OffsetReader(self.settings)
        return self._offsets

    async def calendar_end(self, published_before: float) -> int:
        """An end offset of the calendar topic that covers every tick published before the
        messages at hand (their newest Kafka timestamp is *published_before*).

        A query started after a message was published sees every tick published before it.
        While messages are older than the last query (catching up), that answer serves; fresh
        messages need a fresh query. Producer clocks may lag this worker's by up to
        ``ARREARS_CLOCK_SKEW_MS``. Ticks are published one at a time and acknowledged, so the
        broker's reported end offset is exact.
        """
        if published_before + self._skew < self._calendar_asked_at:
            return self.last_calendar_end
        asked_at = time.time()
        reader = self._offset_reader()
        topic = self.topics.business_date
        ends = await asyncio.get_running_loop().run_in_executor(None, reader.reported_end_offsets, [topic], 1)
        self.last_calendar_end = ends[(topic, 0)]
        self._calendar_asked_at = asked_at
        return self.last_calendar_end

    def _work(self, partition: int) -> PartitionWork:
        work = self.works.get(partition)
        if work is None:
            self._init_partitions({partition} | self._assigned_partitions())
            work = self.works[partition]
        return work

    async def ensure_partitions(self) -> None:
        """Load every assigned partition (after a rebalance), so health and queries see them at once."""
        async with self.lock:
            assigned = self._assigned_partitions()
            if assigned - self.works.keys():
                self._init_partitions(assigned)

    def _assigned_partitions(self) -> set[int]:
        try:
            assignment = self.app.consumer.assignment()
        except Exception:  # not started yet
            return set()
        return {tp.partition for tp in assignment if tp.topic in self.input_topics}

    def _init_partitions(self, partitions: set[int]) -> None:
        """Load sequencer states, held messages and tick indexes for new partitions (one table scan)."""
        started = time.monotonic()
        new = {p for p in partitions if p not in self.works}
        loans: dict[int, list[tuple[str, bytes]]] = {p: [] for p in new}
        held: dict[int, list[Held]] = {p: [] for p in new}
        for p, loan_id, raw in scan(self.table, new, self.partitions):
            if loan_id is None:
                message = decode_state(raw)
                message.persisted = True
                held[p].append(message)
            else:
                loans[p].append((loan_id, raw))
        for p in new:
            store = PartitionStore(self.table, p, self.cache, self._header)
            work = PartitionWork(p, self.input_topics, store, self.rules, store.load_sequencer(), held[p])
            self.works[p] = work
            for loan_id, raw in loans[p]:
                wake, counts = decode_header(raw)
                if counts:  # only loans with cases or agency tallies are decoded
                    work.book.track(decode_state(raw))
                else:
                    work.book.index.set(loan_id, wake)
            # Held messages the state does not vouch for were saved by a batch that never finished.
            kept = {id(h) for h in work.sequencer.held_messages()}
            work.released.extend(h for h in held[p] if id(h) not in kept)
        log.info("partitions %s ready: %d loans indexed, %d messages held, in %.2fs", sorted(new),
                 sum(len(w) for w in loans.values()), sum(len(h) for h in held.values()), time.monotonic() - started)

    def _header(self, state: LoanState) -> tuple[dt.date | None, bool]:
        return state.wake_date(self.rules.grace_days), counts_in_portfolio(state)

    # ---------------------------------------------------------------- batches
    async def handle(self, events: Sequence[Any]) -> None:
        """Queue a batch of Faust events and apply whatever can be applied."""
        if self.failed is not None:
            raise self.failed
        newest = max((e.message.timestamp or 0.0) for e in events) if events else 0.0
        calendar_end = await self.calendar_end(newest or time.time())
        async with self.lock:
            touched: set[int] = set()
            for event in events:
                message = event.message
                work = self._work(message.partition)
                expected = (work.sequencer.state.markers_next if message.topic == self.ticks_topic
                            else work.sequencer.next_seen[message.topic])
                if not await self.gaps.admit(message.tp, message.offset, expected):
                    continue
                touched.add(message.partition)
                if message.topic == self.ticks_topic:
                    work.sequencer.offer_marker(decode_marker(message.value), message.offset)
                else:
                    work.sequencer.offer(Held(
                        message.topic, message.offset, message.timestamp or 0.0, calendar_end, message.key,
                        message.value, tuple(message.headers or ()),
                    ))
                work.changed = True  # even a redelivery moves the position to persist
            # Faust acks the batch when this returns: by then everything is applied or persisted.
            await self._run(touched)

    async def tick_timer(self) -> None:
        """Release what waited on time (the merge's patience) or on messages that came meanwhile."""
        if self.failed is not None:
            raise self.failed
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
                    extra={"tick_id": work.sequencer.pending[0].tick_id, "partition": work.partition},
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
                if release.held is not None and release.held.persisted:
                    work.released.append(release.held)
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
            return
        if release.marker is not None:
            marker = release.marker
            assert marker.tick_id is not None and marker.business_date is not None
            started = time.monotonic()
            outputs = work.book.tick(ev.Tick(marker.tick_id, marker.occurred_at, marker.business_date))
            metrics.TICK_SECONDS.observe(time.monotonic() - started)
            self._journal(work, outputs)
            metrics.BUSINESS_DATE.labels(str(work.partition)).set(marker.business_date.toordinal())
            self._emit(outputs, outbox)
            log.info("tick %s applied in partition %d: %d outputs",
                     marker.business_date.isoformat(), work.partition, len(outputs),
                     extra={"business_date": marker.business_date.isoformat(), "partition": work.partition})
            return
        message = release.held
        assert message is not None
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
        metrics.EVENTS.labels(decoded.name).inc()
        outputs = work.book.apply(loan_id, domain_event)
        self._emit(outputs, outbox, message, work.partition, domain_event.event_id)
        self._journal(work, outputs, (decoded.name, decoded.value, loan_id, domain_event))

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
            if isinstance(output, (ev.CaseState, ev.Rejected)):
                continue
            name, value = to_record(output)
            loan = value.get("loan_id") or loan_id_of_case(value["case_id"])
            by_loan.setdefault(loan, []).append((value["case_id"], to_json(catalog, name, value)))
        if cause is not None:
            name, value, loan, event = cause
            rejected = any(isinstance(o, ev.Rejected) and o.event.event_id == event.event_id for o in outputs)
            cases = sorted({case for case, _ in by_loan.get(loan, [])})
            if not cases and hasattr(event, "case_id") and not rejected:
                cases = [event.case_id]  # type: ignore[union-attr]
            if cases:
                by_loan.setdefault(loan, []).insert(0, (",".join(cases), to_json(catalog, name, value)))
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

    def _dead_letter(self, message: Held, partition: int, reason: str, error: str, outbox: Outbox) -> None:
        log.warning("dead-lettering %s[%d]@%d: %s (%s)", message.topic, partition, message.offset, reason, error,
                    extra={"topic": message.topic, "partition": partition, "offset": message.offset, "reason": reason})
        headers = dlq_headers(reason, error, message.topic, partition, message.offset, list(message.headers))
        timestamp_ms = int((message.timestamp or 0.0) * 1000)
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
        for work in self.works.values():
            if work.changed:
                newly_held = [h for h in work.sequencer.take_fresh_held() if not h.persisted]
                snapshot = work.sequencer.snapshot()
                durable = {**snapshot.next_seen, "": snapshot.markers_next}
                writes = work.store.write(snapshot, newly_held, work.released)
                work.released = []
                work.changed = False
                # The next batch need not wait for the changelog: Faust commits only the positions
                # this write vouches for, once it is acknowledged (see durable_position).
                done = asyncio.gather(*writes)
                self._writes.add(done)
                done.add_done_callback(lambda f, w=work, d=durable: self._written(f, w, d))

    def _written(self, future: asyncio.Future[Any], work: PartitionWork, durable: dict[str, int]) -> None:
        self._writes.discard(future)
        if future.cancelled() or future.exception() is not None:
            # A lost changelog write cannot be repaired in place: stop, and let a restart replay.
            self.failed = future.exception() or RuntimeError("changelog write cancelled")
            log.critical("a changelog write failed: %r", self.failed)
            return
        if self.works.get(work.partition) is work:
            for topic, offset in durable.items():
                work.durable[topic] = max(work.durable.get(topic, -1), offset)

    async def drain_writes(self) -> None:
        """Wait for every changelog write in flight (before a rebalance gives partitions away)."""
        if self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    def durable_position(self, topic: str, partition: int) -> int | None:
        """The offset Faust may commit for an input or ticks partition (see faust_fixes.guard_commits)."""
        if topic == self.ticks_topic:
            topic = ""
        elif topic not in self.input_topics:
            return None
        work = self.works.get(partition)
        if work is None:
            return -1
        return work.durable.get(topic, -1)


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
