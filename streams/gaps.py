"""Refuse to skip: notice when Faust delivers a partition with a hole in it, and read it again.

Around rebalances Faust may move a partition's fetch position past messages it had fetched
but not yet delivered (it drops its buffers, or delivers during recovery and then seeks).
Our input, ticks and calendar topics have no legitimate holes (no transactions, no
compaction, unlimited retention), so the agents know the next offset they must see. A
message beyond it means something was skipped: drop it and seek back to the expected offset.
Only a log that no longer starts that early (retention) is accepted as a real hole.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from faust.types import TP

log = logging.getLogger(__name__)

RESEEK_AFTER = 2.0  # seconds without the expected message before asking again


class GapKeeper:
    def __init__(self, consumer: Any) -> None:
        self._consumer = consumer
        self._asked: dict[TP, tuple[int, float]] = {}  # tp -> (offset sought, when)

    async def admit(self, tp: TP, offset: int, expected: int) -> bool:
        """True when *offset* may be processed; False when it is a duplicate or beyond a hole."""
        if offset < expected:
            return False  # a redelivery
        if offset > expected:
            earliest = await self._earliest(tp)
            if expected < earliest:
                log.warning("%s[%d]: offsets %d to %d are no longer in the log (retention); going on from %d",
                            tp.topic, tp.partition, expected, earliest - 1, earliest)
                expected = earliest
        if offset == expected:
            self._asked.pop(tp, None)
            return True
        asked = self._asked.get(tp)
        now = time.monotonic()
        if asked is None or asked[0] != expected or now - asked[1] > RESEEK_AFTER:
            log.warning("%s[%d]: got offset %d while expecting %d; reading again from %d",
                        tp.topic, tp.partition, offset, expected, expected)
            self._asked[tp] = (expected, now)
            await self._consumer.seek_wait({tp: expected})  # in the consumer thread, unlike seek()
            log.info("%s[%d]: now reading from %d", tp.topic, tp.partition, expected)
        return False

    async def _earliest(self, tp: TP) -> int:
        try:
            offsets = await self._consumer.earliest_offsets(tp)
        except Exception:  # the broker will answer next time; assume the log is whole
            return 0
        return int(offsets.get(tp) or 0)

    def forget(self) -> None:
        self._asked.clear()
