"""The tick fan-out: every calendar message becomes one marker in each partition of the ticks topic.

It runs on the worker that owns the calendar topic's one partition. A tick gets its place in
every input partition: the offset its ``barrier`` names, or, for a partition the barrier does
not list, that partition's end offset now (when the processor reads the tick). The marker
records the places, so a replay applies the tick at the same place (SPEC §3).

Calendar messages that are not ticks to apply (another calendar, a date not after the last
one, bad bytes, an invalid barrier) become skip markers, so each partition knows it has seen
every calendar offset; the ignored ones are logged and counted, bad ones dead-lettered. When
the consumer reports the calendar's end past the last message (a transaction marker there),
a skip marker covers that offset too, or partitions would wait for it forever.

Broker errors are retried here (reading end offsets, sending markers); nothing stops the
worker.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from arrears.dlq import INVALID_BARRIER, UNEXPECTED_TYPE, dlq_headers
from arrears.kafka import OffsetReader
from arrears.settings import Settings
from schemas import CodecError, get_codec

from . import metrics
from .markers import decode_marker, encode_marker
from .records import millis
from .retrying import retry_blocking
from .sequencer import TickMarker
from .sink import Sink

log = logging.getLogger(__name__)


class InvalidBarrier(ValueError):
    """A barrier naming something that does not exist (SPEC §3)."""


class CalendarFanout:
    def __init__(self, settings: Settings, ticks_topic: str, sink: Sink, offsets: OffsetReader) -> None:
        self.settings = settings
        self.topics = settings.topics
        self.ticks_topic = ticks_topic
        self.partitions = settings.arrears_partitions
        self.calendar = settings.config.calendar
        self.codec = get_codec(settings.schema_registry_url)
        self.sink = sink
        self.offsets = offsets
        self.done_next: int | None = None  # calendar offsets below this are fanned out
        self.latest: dt.date | None = None  # the latest business date fanned out as a tick
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> int:
        """Find where to resume (read from the markers themselves) and start fanning out."""
        resume = await retry_blocking(self._resume_point, "read the last tick markers")
        self.done_next = resume
        self._task = asyncio.get_running_loop().create_task(self._run(), name="calendar-fanout")
        log.info("fan-out resumes at calendar offset %d", resume)
        return resume

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._queue = asyncio.Queue()

    def offer(self, message: Any) -> None:
        self._queue.put_nowait(("message", message))

    def offer_end(self, end: int) -> None:
        self._queue.put_nowait(("end", end))

    def _resume_point(self) -> int:
        """The first calendar offset not yet in every partition of the ticks topic.

        Read from the markers, not from a committed offset: the markers are the fan-out's
        durable state, and a crash between partitions is repaired by sending that calendar
        message again (partitions drop what they have seen).
        """
        last = self.offsets.last_values(self.ticks_topic, self.partitions)
        if any(value is None for value in last.values()):
            return 0
        markers = [decode_marker(value) for value in last.values() if value is not None]
        resume = min(m.calendar_offset for m in markers) + 1
        # The latest date as of the resume point: partitions a crash left one marker ahead carry
        # the date of the tick that is about to be sent again, which must not look stale.
        self.latest = max((m.latest for m in markers if m.calendar_offset == resume - 1 and m.latest is not None),
                          default=None)
        return resume

    # ------------------------------------------------------------------ the work
    async def _run(self) -> None:
        while True:
            kind, item = await self._queue.get()
            assert self.done_next is not None
            if kind == "end":
                if item > self.done_next:
                    # Offsets up to the end that were never delivered are transaction markers.
                    await self._send([TickMarker(item - 1, None, latest=self.latest)] * self.partitions)
                    self.done_next = item
                continue
            message = item
            if message.offset() < self.done_next:
                continue
            markers = await self._markers(message)
            await self._send(markers)
            self.done_next = message.offset() + 1

    async def _send(self, markers: list[TickMarker]) -> None:
        group = self.sink.group()
        for partition, marker in enumerate(markers):
            group.send(self.ticks_topic, b"", encode_marker(marker), partition=partition)
        await group.close()

    async def _markers(self, message: Any) -> list[TickMarker]:
        offset = message.offset()
        skip = [TickMarker(offset, None, latest=self.latest)] * self.partitions
        try:
            decoded = self.codec.decode(message.value())
        except CodecError as exc:
            await self._dead_letter(message, exc.reason, str(exc))
            return skip
        if decoded.name != "BusinessDateChanged":
            await self._dead_letter(message, UNEXPECTED_TYPE, f"{decoded.name} does not belong on {message.topic()}")
            return skip
        tick = decoded.value
        if tick["calendar"] != self.calendar:
            metrics.IGNORED_TICKS.labels("other_calendar").inc()
            log.info("ignoring tick %s of calendar %s (this deployment follows %s)",
                     tick["event_id"], tick["calendar"], self.calendar)
            return skip
        date: dt.date = tick["business_date"]
        if self.latest is not None and date <= self.latest:
            metrics.IGNORED_TICKS.labels("stale").inc()
            log.info("ignoring tick %s for %s: the business date is already %s (dates only move forward)",
                     tick["event_id"], date.isoformat(), self.latest.isoformat(),
                     extra={"business_date": date.isoformat()})
            return skip
        try:
            places = await retry_blocking(lambda: self._places(tick["barrier"]),
                                          "read the input partitions' end offsets", passthrough=(InvalidBarrier,))
        except InvalidBarrier as exc:
            metrics.IGNORED_TICKS.labels("invalid_barrier").inc()
            await self._dead_letter(message, INVALID_BARRIER, str(exc))
            return skip
        self.latest = date
        log.info("fanning out tick %s (%s) at calendar offset %d", tick["event_id"], date.isoformat(), offset,
                 extra={"business_date": date.isoformat()})
        return [
            TickMarker(
                calendar_offset=offset,
                tick_id=tick["event_id"],
                business_date=date,
                occurred_at=millis(tick["occurred_at"]),
                places={t: places[(t, p)] for t in self.topics.inputs},
                latest=date,
            )
            for p in range(self.partitions)
        ]

    def _places(self, barrier: list[dict[str, Any]]) -> dict[tuple[str, int], int]:
        """Each input partition's place: the barrier's offset, checked, or the end offset now."""
        inputs = set(self.topics.inputs)
        named: dict[tuple[str, int], int] = {}
        problems = []
        for entry in barrier:
            topic = self.topics.resolve(entry["topic"])
            key = (topic, int(entry["partition"]))
            if topic not in inputs:
                problems.append(f"{entry['topic']} is not an input topic of this deployment")
            elif not 0 <= key[1] < self.partitions:
                problems.append(f"{topic} has no partition {key[1]} (it has {self.partitions})")
            elif int(entry["offset"]) < 0:
                problems.append(f"{topic}[{key[1]}]: offset {entry['offset']} is negative")
            else:
                named[key] = int(entry["offset"])
        if problems:
            raise InvalidBarrier("; ".join(problems))
        ends = self.offsets.end_offsets(self.topics.inputs, self.partitions, reaching=named)  # named: only checked
        beyond = [f"{t}[{p}]: offset {o} is beyond the end {ends[(t, p)]}" for (t, p), o in sorted(named.items())
                  if o > ends[(t, p)]]
        if beyond:
            raise InvalidBarrier("; ".join(beyond))
        return {key: named.get(key, end) for key, end in ends.items()}

    async def _dead_letter(self, message: Any, reason: str, error: str) -> None:
        log.warning("dead-lettering %s[%d]@%d: %s (%s)", message.topic(), message.partition(), message.offset(),
                    reason, error, extra={"topic": message.topic(), "partition": message.partition(),
                                          "offset": message.offset(), "reason": reason})
        headers = dlq_headers(reason, error, message.topic(), message.partition(), message.offset(),
                              list(message.headers() or []))
        group = self.sink.group()
        group.send(self.topics.dlq(message.topic()), message.key(), message.value(), headers)
        await group.close()
        metrics.DLQ.labels(message.topic(), reason).inc()

