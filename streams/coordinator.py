"""Placement for the whole book (SPEC §5), on the worker that owns the reports topic's one partition.

After applying a tick, every loan partition reports the cases waiting for an agency and those
with one, and waits. Once every partition's report for the tick is in, the coordinator decides
with :func:`arrears.domain.placement.place` — global capacity, one debtor one agency — and
writes each partition its decisions on ``<app id>-placements``; the partition applies them
before anything after the tick. The decisions are a function of the reports alone, so a replay
decides the same.

The coordinator keeps no state of its own: its markers say which reports they consumed
(``through``) and for which business date, so after a crash it reads the reports again from
the earliest point any partition's marker does not cover, and decides that tick again (a
partition that has its decisions already drops the repeat). Reports for a date already decided
(a partition that applied a tick again after a crash) are ignored. Broker errors are waited out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from typing import Any

from arrears.domain.allocation import AllocationRules
from arrears.domain.placement import Report, place
from arrears.kafka import OffsetReader

from .retrying import retry_blocking
from .sequencer import PlacementMarker
from .sink import Sink
from .state_codec import decode_state

log = logging.getLogger(__name__)


def encode_placement(marker: PlacementMarker, business_date: dt.date | None, through: int) -> bytes:
    return json.dumps({"tick": marker.tick_id, "date": business_date.isoformat() if business_date else None,
                       "through": through, "decisions": [list(d) for d in marker.decisions]},
                      separators=(",", ":")).encode()


def decode_placement(data: bytes) -> tuple[PlacementMarker, dt.date | None, int]:
    body = json.loads(data)
    date = dt.date.fromisoformat(body["date"]) if body.get("date") else None
    return (PlacementMarker(str(body["tick"]), tuple((str(c), str(a)) for c, a in body["decisions"])), date,
            int(body["through"]))


class PlacementCoordinator:
    def __init__(self, reports_topic: str, placements_topic: str, partitions: int, rules: AllocationRules,
                 sink: Sink, offsets: OffsetReader) -> None:
        self.reports_topic = reports_topic
        self.placements_topic = placements_topic
        self.partitions = partitions
        self.rules = rules
        self.sink = sink
        self.offsets = offsets
        self.pending: dict[str, dict[int, Report]] = {}
        self.last_decided: dt.date | None = None
        self.done_next = 0
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        resume = await retry_blocking(self._resume_point, "read the last placements")
        self.done_next = resume
        self._task = asyncio.get_running_loop().create_task(self._run(), name="placement")
        log.info("placement resumes at report offset %d (last business date placed: %s)", resume,
                 self.last_decided.isoformat() if self.last_decided else "none")
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
        self.pending.clear()

    def offer(self, message: Any) -> None:
        self._queue.put_nowait(message)

    def _resume_point(self) -> int:
        last = self.offsets.last_values(self.placements_topic, self.partitions)
        if any(value is None for value in last.values()):
            self.last_decided = None
            return 0
        markers = [decode_placement(value) for value in last.values() if value is not None]
        resume = min(through for _, _, through in markers)
        self.last_decided = max((d for _, d, through in markers if through == resume and d), default=None)
        return resume

    async def _run(self) -> None:
        while True:
            message = await self._queue.get()
            offset = message.offset()
            if offset < self.done_next:
                continue
            report: Report = decode_state(message.value())
            if self.last_decided is not None and report.business_date is not None \
                    and report.business_date <= self.last_decided:
                continue  # a partition reported a tick again after a crash: already placed
            self.pending.setdefault(report.tick_id, {})[report.partition] = report
            reports = self.pending[report.tick_id]
            if len(reports) < self.partitions:
                continue
            decided = place(reports.values(), self.rules)
            group = self.sink.group()
            for partition in range(self.partitions):
                marker = PlacementMarker(decided.tick_id, tuple((d.case_id, d.agency_id)
                                                                for d in decided.decisions.get(partition, ())))
                group.send(self.placements_topic, str(partition).encode(),
                           encode_placement(marker, report.business_date, offset + 1), partition=partition)
            await group.close()
            placed = sum(len(d) for d in decided.decisions.values())
            waiting = sum(len(r.requests) for r in reports.values()) - placed
            log.info("placed %d case(s) at %s (%d still waiting); agencies' load %s", placed,
                     report.business_date.isoformat() if report.business_date else "?", waiting,
                     dict(sorted(decided.load.items())), extra={"business_date": str(report.business_date)})
            del self.pending[report.tick_id]
            self.last_decided = report.business_date
            self.done_next = offset + 1
