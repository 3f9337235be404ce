"""Orders one partition's input messages and ticks into a single stream (SPEC §3: ticks are barriers).

Faust reads a partition of each input topic concurrently. This sequencer receives those
messages in whatever order they arrive and releases them in one order that is a function of
the logs alone, so that live processing and a replay agree:

* **Ticks are barriers.** A tick has a *place* in every input topic of the partition (an
  offset). Messages before the place are released before the tick, messages at or after it
  only after the tick. A tick is released once every message before its places has been.
* **No tick is overlooked.** Each message is tagged with the calendar topic's end offset when
  it was read; it is not released until the tick markers up to that offset have arrived, so a
  tick published before a message was read is always known before the message is applied.
* **Between ticks, publish order.** Messages of different topics are merged by their Kafka
  timestamp (ties by topic order), each topic keeping its own offset order, and a message is
  released only when every other topic either offers a later one or has nothing more to give
  (caught up to its high watermark, or done up to the tick's place), as Kafka Streams does.

Nothing here touches Kafka: the processor feeds messages and markers in and applies what
:meth:`PartitionSequencer.drain` releases. Whatever it holds is persisted by the processor
(messages one table key each, markers in :class:`SequencerState`), so every message can be
acked at once: a crash loses or reorders nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TickMarker:
    """What the fan-out delivers to a partition for one message of the calendar topic."""

    calendar_offset: int
    tick_id: str | None  # None: not a tick for this deployment (other calendar, bad bytes)
    business_date: dt.date | None = None
    occurred_at: int = 0
    places: dict[str, int] = field(default_factory=dict)  # topic -> offset in this partition


@dataclass
class Held:
    """An input message waiting for its turn (with everything needed to apply or dead-letter it)."""

    topic: str
    offset: int
    timestamp: float
    calendar_end: int  # the calendar topic's end offset when this message was read
    key: bytes | None = None
    value: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    persisted: bool = field(default=False, compare=False)  # stored in the table by the processor


@dataclass
class SequencerState:
    """Everything about a partition's order that must survive a restart, except held messages."""

    released_next: dict[str, int] = field(default_factory=dict)  # per topic: offset after the last released
    calendar_done: int = 0  # calendar offsets below this are applied or skipped
    business_date: dt.date | None = None
    last_tick_id: str | None = None
    next_seen: dict[str, int] = field(default_factory=dict)  # per topic: offset after the last queued
    calendar_seen: int = 0  # markers below this calendar offset were received
    pending: tuple[TickMarker, ...] = ()  # ticks waiting for their places, in calendar order
    skipped: tuple[TickMarker, ...] = ()  # markers to release once every marker before them is done
    markers_next: int = 0  # offset after the last marker taken from this partition of the ticks topic


@dataclass(frozen=True)
class Release:
    """One step, in order: apply a message (``held``), apply a tick, or just ack a skipped marker."""

    held: Held | None = None
    marker: TickMarker | None = None
    skip: bool = False


class PartitionSequencer:
    def __init__(
        self,
        topics: Sequence[str],
        state: SequencerState | None = None,
        held: Sequence[Held] = (),
        *,
        patience_seconds: float = 2.0,
    ) -> None:
        self.topics = tuple(topics)
        self._rank = {t: i for i, t in enumerate(self.topics)}
        self.state = state or SequencerState()
        self.queues: dict[str, deque[Held]] = {t: deque() for t in self.topics}
        released = self.state.released_next
        self.next_seen: dict[str, int] = {
            t: max(self.state.next_seen.get(t, 0), released.get(t, 0)) for t in self.topics
        }
        for message in sorted(held, key=lambda h: (h.topic, h.offset)):
            # Only what was held when the state was saved; the rest is redelivered or released.
            if message.topic in self.queues and released.get(message.topic, 0) <= message.offset < self.next_seen[
                message.topic
            ]:
                self.queues[message.topic].append(message)
        self.pending: list[TickMarker] = list(self.state.pending)
        self.calendar_seen = max(self.state.calendar_seen, self.state.calendar_done)
        self.patience_seconds = patience_seconds
        self._waiting_since: float | None = None
        self._skipped: list[TickMarker] = list(self.state.skipped)
        self._fresh: list[Held] = []  # offered since the last take_fresh_held()

    # ------------------------------------------------------------------ input
    def offer(self, held: Held) -> bool:
        """Queue a message; False when it was already seen (a redelivery): drop it."""
        if held.offset < self.next_seen[held.topic]:
            return False
        self.next_seen[held.topic] = held.offset + 1
        self.queues[held.topic].append(held)
        self._fresh.append(held)
        return True

    def offer_marker(self, marker: TickMarker, offset: int | None = None) -> bool:
        """Take a calendar marker (found at *offset* of the ticks topic); False for a redelivery.

        Stale ticks become skips.
        """
        if offset is not None:
            self.state.markers_next = max(self.state.markers_next, offset + 1)
        if marker.calendar_offset < self.calendar_seen:
            return False
        self.calendar_seen = marker.calendar_offset + 1
        if marker.tick_id is not None and not self._is_stale(marker):
            self.pending.append(marker)
        else:
            self._skipped.append(marker)
        return True

    def _is_stale(self, marker: TickMarker) -> bool:
        latest = self.pending[-1].business_date if self.pending else self.state.business_date
        return latest is not None and marker.business_date is not None and marker.business_date <= latest

    def snapshot(self) -> SequencerState:
        """The state to persist now (held messages are persisted one by one by the caller)."""
        self.state.next_seen = dict(self.next_seen)
        self.state.calendar_seen = self.calendar_seen
        self.state.pending = tuple(self.pending)
        self.state.skipped = tuple(self._skipped)
        return self.state

    def held_messages(self) -> list[Held]:
        return [h for q in self.queues.values() for h in q]

    def take_fresh_held(self) -> list[Held]:
        """Messages offered since the last call that are still held: what the caller must persist.

        Costs what was offered since, not what is held (a partition can hold tens of thousands
        of messages while a tick waits). A topic's queue is a suffix of what was offered to it,
        so a message is still held exactly when its offset is at or past the topic's frontier.
        """
        fresh = [h for h in self._fresh if h.offset >= self.frontier(h.topic)]
        self._fresh = []
        return fresh

    # ------------------------------------------------------------------ output
    def held_count(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def frontier(self, topic: str) -> int:
        """Offsets below this are released (or not in the log)."""
        queue = self.queues[topic]
        return queue[0].offset if queue else self.next_seen[topic]

    def blocking_topics(self) -> list[tuple[str, int, int]]:
        """For the first pending tick: (topic, frontier, place) still short of its place."""
        if not self.pending:
            return []
        tick = self.pending[0]
        return [(t, self.frontier(t), tick.places.get(t, 0)) for t in self.topics
                if self.frontier(t) < tick.places.get(t, 0)]

    def drain(self, highwater: Callable[[str], int | None], now: float) -> Iterator[Release]:
        """Release, in order, everything that may be applied now."""
        while True:
            yield from self._release_skips()
            tick = self.pending[0] if self.pending else None
            if tick is not None and not self.blocking_topics():
                self.pending.pop(0)
                self.state.business_date = tick.business_date
                self.state.last_tick_id = tick.tick_id
                self._update_calendar_done()
                self._waiting_since = None
                yield Release(marker=tick)
                continue
            if any(q and q[0].calendar_end > self.calendar_seen for q in self.queues.values()):
                return  # a tick published before these messages has not reached us yet
            candidates = [
                t for t, q in self.queues.items()
                if q and (tick is None or q[0].offset < tick.places.get(t, 0))
            ]
            if not candidates:
                return
            if self._others_may_supply_earlier(tick, highwater):
                if self._waiting_since is None:
                    self._waiting_since = now
                if now - self._waiting_since < self.patience_seconds:
                    return
            self._waiting_since = None
            topic = min(candidates, key=lambda t: (self.queues[t][0].timestamp, self._rank[t]))
            held = self.queues[topic].popleft()
            self.state.released_next[topic] = held.offset + 1
            yield Release(held=held)

    def _others_may_supply_earlier(self, tick: TickMarker | None, highwater: Callable[[str], int | None]) -> bool:
        for topic, queue in self.queues.items():
            if queue:
                continue
            seen = self.next_seen[topic]
            if tick is not None and seen >= tick.places.get(topic, 0):
                continue  # nothing more from this topic before the tick
            hw = highwater(topic)
            if hw is None or seen < hw:
                return True
        return False

    def _release_skips(self) -> Iterator[Release]:
        first_pending = self.pending[0].calendar_offset if self.pending else None
        keep = []
        for marker in self._skipped:
            if first_pending is None or marker.calendar_offset < first_pending:
                yield Release(marker=marker, skip=True)
            else:
                keep.append(marker)
        self._skipped[:] = keep
        self._update_calendar_done()

    def _update_calendar_done(self) -> None:
        waiting = [m.calendar_offset for m in self.pending] + [m.calendar_offset for m in self._skipped]
        self.state.calendar_done = min(waiting) if waiting else self.calendar_seen
