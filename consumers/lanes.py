"""Deliveries in parallel, each case's events in order, offsets committed behind the slowest.

A slow or retrying delivery must not hold up the other cases' work orders, so an adapter keeps
up to ``max_in_flight`` deliveries going at once. Work-order topics are keyed by case id, and
one *lane* per key runs that case's events one after the other, in offset order; different
lanes run side by side on a bounded pool of threads.

Offsets are committed only below the lowest event not yet finished (delivered or
dead-lettered) in each partition, so a crash or a rebalance re-delivers what was in flight
(the agency sees the same Idempotency-Key again) and never skips anything.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .delivery import DeliveryFailure, DeliveryInterrupted, WorkOrder

log = logging.getLogger(__name__)


class OffsetTracker:
    """Per partition: the offsets taken but not finished, and the position safe to commit."""

    def __init__(self) -> None:
        self._pending: dict[int, set[int]] = {}
        self._next: dict[int, int] = {}  # one past the highest offset taken
        self._committed: dict[int, int] = {}
        self._generation: dict[int, int] = {}

    def assign(self, partition: int) -> int:
        """Start tracking *partition* afresh (after an assignment); returns its new generation."""
        self._pending[partition] = set()
        self._next.pop(partition, None)
        self._committed.pop(partition, None)
        self._generation[partition] = self._generation.get(partition, 0) + 1
        return self._generation[partition]

    def forget(self, partition: int) -> None:
        """Stop tracking *partition* (revoked): late completions for it are ignored."""
        self._pending.pop(partition, None)
        self._next.pop(partition, None)
        self._committed.pop(partition, None)
        self._generation[partition] = self._generation.get(partition, 0) + 1

    def generation(self, partition: int) -> int:
        return self._generation.get(partition, 0)

    def tracks(self, partition: int, generation: int) -> bool:
        return partition in self._pending and self._generation.get(partition) == generation

    def take(self, partition: int, offset: int) -> None:
        if partition not in self._pending:
            self.assign(partition)
        self._pending[partition].add(offset)
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

    def finish(self, partition: int, offset: int, generation: int) -> None:
        if self.tracks(partition, generation):
            self._pending[partition].discard(offset)

    def position(self, partition: int) -> int | None:
        """The offset to commit: the lowest unfinished one, else one past the highest taken."""
        pending = self._pending.get(partition)
        if pending is None:
            return None
        if pending:
            return min(pending)
        return self._next.get(partition)

    def committable(self, partitions: set[int] | None = None) -> dict[int, int]:
        """Positions that moved since the last :meth:`committed`."""
        out: dict[int, int] = {}
        for partition in list(self._pending) if partitions is None else partitions:
            position = self.position(partition)
            if position is not None and position > self._committed.get(partition, -1):
                out[partition] = position
        return out

    def committed(self, positions: dict[int, int]) -> None:
        for partition, position in positions.items():
            if partition in self._pending:
                self._committed[partition] = position

    def backlog(self) -> int:
        """Events taken and not finished, over every partition."""
        return sum(len(p) for p in self._pending.values())


@dataclass(frozen=True)
class Job:
    """One work-order event to deliver, with what the loop needs to finish it."""

    key: str  # the message key: the case id (one lane per case)
    partition: int
    offset: int
    generation: int
    order: WorkOrder
    abort: threading.Event  # set when the adapter stops or the partition is revoked
    source: Any = None  # the consumed message (its bytes go to the dead-letter topic as they came)


@dataclass(frozen=True)
class Completion:
    job: Job
    failure: DeliveryFailure | None = None  # None: delivered
    interrupted: bool = False  # neither delivered nor failed: re-delivered by whoever owns it next
    error: BaseException | None = None  # a bug in delivery: the adapter stops


class Lanes:
    """One lane per key, at most *max_in_flight* deliveries at once; completions on a queue."""

    def __init__(self, post: Callable[[WorkOrder, threading.Event], DeliveryFailure | None], max_in_flight: int,
                 on_in_flight: Callable[[int], None] = lambda _n: None, name: str = "lanes") -> None:
        self._post = post
        self._executor = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix=name)
        self._queues: dict[str, deque[Job]] = {}
        self._lock = threading.Lock()
        self._running = 0
        self._on_in_flight = on_in_flight
        self.completions: queue.Queue[Completion] = queue.Queue()

    def submit(self, job: Job) -> None:
        with self._lock:
            waiting = self._queues.get(job.key)
            if waiting is not None:  # the case has an event in flight: this one goes after it
                waiting.append(job)
                return
            self._queues[job.key] = deque()
        self._executor.submit(self._run, job)

    def _run(self, job: Job) -> None:
        with self._lock:
            self._running += 1
            self._on_in_flight(self._running)
        try:
            if job.abort.is_set():
                done = Completion(job, interrupted=True)
            else:
                done = Completion(job, failure=self._post(job.order, job.abort))
        except DeliveryInterrupted:
            done = Completion(job, interrupted=True)
        except BaseException as exc:  # handed to the loop, which stops the adapter with it
            log.exception("delivery of %s failed unexpectedly", job.order.ids)
            done = Completion(job, error=exc)
        self.completions.put(done)
        with self._lock:
            self._running -= 1
            self._on_in_flight(self._running)
            waiting = self._queues[job.key]
            following = waiting.popleft() if waiting else None
            if following is None:
                del self._queues[job.key]
        if following is not None:
            try:
                self._executor.submit(self._run, following)
            except RuntimeError:  # closing: the lane's remaining events are left for the next owner
                self._abandon(following)

    def _abandon(self, job: Job) -> None:
        with self._lock:
            rest = list(self._queues.pop(job.key, ()))
        for left in (job, *rest):
            self.completions.put(Completion(left, interrupted=True))

    def drain(self) -> list[Completion]:
        """What finished since the last call."""
        out: list[Completion] = []
        while True:
            try:
                out.append(self.completions.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        """Wait for the lanes to end (set every job's abort first to end them quickly)."""
        self._executor.shutdown(wait=True)
