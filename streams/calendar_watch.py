"""How far the calendar topic reached, asked after a given moment (SPEC §3: ticks are barriers).

A message must not be applied before a tick that was published before it: that tick's place
in the message's partition is at or before the message. So every batch the intake reads at
wall time *t* waits for an answer to "what is the calendar topic's end?" that was *asked
after t*: every tick published before the batch's messages were read is below that end, and
the sequencer holds the messages until the markers of all those ticks have arrived.

The question is asked here, off the processing path: one request at a time, shared by every
batch waiting, repeated at most every ``min_interval`` seconds while batches wait, and retried
(with a warning now and then) when the broker does not answer. Nothing depends on producers'
clocks; only this worker's clock orders "read" before "asked".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

EndOffset = Callable[[], int]


class CalendarWatch:
    def __init__(self, end_offset: EndOffset, *, min_interval: float = 0.01,
                 clock: Callable[[], float] = time.time) -> None:
        self._end_offset = end_offset  # blocking; run in a thread
        self._min_interval = min_interval
        self._clock = clock
        self._answer: tuple[float, int] | None = None  # (asked at, end offset)
        self._changed = asyncio.Event()
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failures = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="calendar-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    @property
    def last(self) -> tuple[float, int] | None:
        return self._answer

    async def end_after(self, moment: float) -> int:
        """The calendar's end offset as answered by a request sent after *moment*."""
        while True:
            answer = self._answer
            if answer is not None and answer[0] >= moment:
                return answer[1]
            self._changed.clear()
            self._wanted.set()
            await self._changed.wait()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            asked_at = self._clock()
            try:
                end = await loop.run_in_executor(None, self._end_offset)
            except Exception as exc:  # noqa: BLE001 - the broker may be away: ask again
                self._failures += 1
                if self._failures in (1, 10) or self._failures % 100 == 0:
                    log.warning("cannot read the calendar topic's end offset (attempt %d): %s", self._failures, exc)
                self._wanted.set()
                await asyncio.sleep(min(2.0, 0.05 * self._failures))
                continue
            if self._failures:
                log.info("calendar topic answers again after %d failed attempts", self._failures)
            self._failures = 0
            if self._answer is None or asked_at >= self._answer[0]:
                self._answer = (asked_at, end)
            self._changed.set()
            await asyncio.sleep(self._min_interval)
