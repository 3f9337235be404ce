"""The tick fan-out: every calendar message becomes one marker in each partition of the ticks topic.

A tick gets its place in every input partition: the offset its ``barrier`` names, or, for a
partition the barrier does not list, that partition's end offset now (when the processor
reads the tick). Calendar messages that are not ticks of this deployment (another calendar,
bad bytes) become skip markers, so each partition knows it has seen every calendar offset.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from arrears.dlq import UNEXPECTED_TYPE, dlq_headers
from arrears.kafka import OffsetReader
from arrears.settings import Settings
from schemas import CodecError, get_codec

from . import metrics
from .gaps import GapKeeper
from .markers import decode_marker, encode_marker
from .records import millis
from .sequencer import TickMarker

log = logging.getLogger(__name__)


class CalendarFanout:
    def __init__(self, app: Any, settings: Settings, ticks_topic: str) -> None:
        self.app = app
        self.settings = settings
        self.topics = settings.topics
        self.ticks_topic = ticks_topic
        self.partitions = settings.arrears_partitions
        self.calendar = settings.config.calendar
        self.codec = get_codec(settings.schema_registry_url)
        self._offsets: OffsetReader | None = None
        self._done_next: int | None = None  # calendar offsets below this are fanned out
        self.gaps = GapKeeper(app.consumer)

    def durable_position(self) -> int:
        """The calendar offset Faust may commit: every message below it is fanned out."""
        return -1 if self._done_next is None else self._done_next

    async def _resume_point(self) -> int:
        """The first calendar offset not yet in every partition of the ticks topic.

        Read from the markers themselves, not from Faust's committed offset: the markers are
        the fan-out's durable state, and a crash between partitions is repaired by sending
        that calendar message again (partitions drop what they have seen).
        """
        if self._offsets is None:
            self._offsets = OffsetReader(self.settings)
        last = await asyncio.get_running_loop().run_in_executor(
            None, self._offsets.last_values, self.ticks_topic, self.partitions
        )
        if any(value is None for value in last.values()):
            return 0
        return min(decode_marker(value).calendar_offset for value in last.values() if value is not None) + 1

    async def handle(self, event: Any) -> None:
        message = event.message
        if self._done_next is None:
            self._done_next = await self._resume_point()
            log.info("fan-out resumes at calendar offset %d", self._done_next)
        if not await self.gaps.admit(message.tp, message.offset, self._done_next):
            return
        markers = await self._markers(message)
        sends = [
            await self.app.producer.send(self.ticks_topic, b"", encode_marker(m), p, None, None)
            for p, m in enumerate(markers)
        ]
        await asyncio.gather(*sends)
        self._done_next = message.offset + 1

    async def _markers(self, message: Any) -> list[TickMarker]:
        offset = message.offset
        skip = [TickMarker(offset, None) for _ in range(self.partitions)]
        try:
            decoded = self.codec.decode(message.value)
        except CodecError as exc:
            await self._dead_letter(message, exc.reason, str(exc))
            return skip
        if decoded.name != "BusinessDateChanged":
            await self._dead_letter(message, UNEXPECTED_TYPE, f"{decoded.name} does not belong on {message.topic}")
            return skip
        tick = decoded.value
        if tick["calendar"] != self.calendar:
            metrics.IGNORED_TICKS.labels("other_calendar").inc()
            log.info("ignoring tick %s of calendar %s (this deployment follows %s)",
                     tick["event_id"], tick["calendar"], self.calendar)
            return skip
        places = await self._places(tick["barrier"])
        log.info("fanning out tick %s (%s) at calendar offset %d", tick["event_id"],
                 tick["business_date"].isoformat(), offset)
        return [
            TickMarker(
                calendar_offset=offset,
                tick_id=tick["event_id"],
                business_date=tick["business_date"],
                occurred_at=millis(tick["occurred_at"]),
                places={t: places[(t, p)] for t in self.topics.inputs},
            )
            for p in range(self.partitions)
        ]

    async def _places(self, barrier: list[dict[str, Any]]) -> dict[tuple[str, int], int]:
        inputs = set(self.topics.inputs)
        places: dict[tuple[str, int], int] = {}
        for entry in barrier:
            topic = self.topics.resolve(entry["topic"])
            if topic in inputs and 0 <= entry["partition"] < self.partitions:
                places[(topic, entry["partition"])] = int(entry["offset"])
        missing = [t for t in self.topics.inputs if any((t, p) not in places for p in range(self.partitions))]
        if missing:
            if self._offsets is None:
                self._offsets = OffsetReader(self.settings)
            ends = await asyncio.get_running_loop().run_in_executor(
                None, self._offsets.end_offsets, missing, self.partitions
            )
            for key, end in ends.items():
                places.setdefault(key, end)
        return places

    async def _dead_letter(self, message: Any, reason: str, error: str) -> None:
        log.warning("dead-lettering %s[%d]@%d: %s (%s)", message.topic, message.partition, message.offset,
                    reason, error)
        headers = dlq_headers(reason, error, message.topic, message.partition, message.offset,
                              list(message.headers or []))
        fut = await self.app.producer.send(self.topics.dlq(message.topic), message.key, message.value, None, None,
                                           headers)
        await fut
        metrics.DLQ.labels(message.topic, reason).inc()
