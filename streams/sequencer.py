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
  timestamp (ties by topic order), each topic keeping its own offset order. A message is
  released only when every other topic either offers a later one, is done up to the pending
  tick's place, or has delivered everything the broker had (the consumer reached the end of
  that partition): no wall clock decides, only what the logs hold.
* **Offsets need not be contiguous.** Transaction markers and compaction leave holes; the
  consumer's end-of-partition notices ("everything below E was delivered") close them, so a
  tick whose place lands just past a marker is released.

Nothing here touches Kafka: the processor feeds messages, end notices and markers in and
applies what :meth:`PartitionSequencer.drain` releases. What it holds is not persisted: the
positions it saves are those of released messages, so after a restart everything held is
read again.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TickMarker:
    """What the fan-out delivers to a partition for one message of the calendar topic."""

    calendar_offset: int
    tick_id: str | None  # None: not a tick for this deployment (other calendar, bad bytes, stale, invalid)
    business_date: dt.date | None = None
    occurred_at: int = 0
    places: dict[str, int] = field(default_factory=dict)  # topic -> offset in this partition
    latest: dt.date | None = None  # the latest business date fanned out so far (resumes the fan-out)


@dataclass
class Held:
    """An input message waiting for its turn (with everything needed to apply or dead-letter it)."""

    topic: str
    offset: int
    timestamp: float
    calendar_end: int  # the calendar topic's end offset asked after this message was read
    key: bytes | None = None
    value: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    persisted: bool = field(default=False, compare=False)  # unused; kept so stored values still decode


@dataclass
class SequencerState:
    """Everything about a partition's order that must survive a restart."""

    released_next: dict[str, int] = field(default_factory=dict)  # per topic: offset after the last released
    calendar_done: int = 0  # calendar offsets below this are applied or skipped
    business_date: dt.date | None = None
    last_tick_id: str | None = None
    next_seen: dict[str, int] = field(default_factory=dict)  # unused since held messages are re-read
    calendar_seen: int = 0  # markers below this calendar offset were received
    pending: tuple[TickMarker, ...] = ()  # ticks waiting for their places, in calendar order
    skipped: tuple[TickMarker, ...] = ()  # markers to release once every marker before them is done
    markers_next: int = 0  # offset after the last marker taken from this partition of the ticks topic
    awaiting: TickMarker | None = None  # a tick applied whose placement has not come back yet
    placements_next: int = 0  # unused (side topics' positions are in released_next)


@dataclass(frozen=True)
class PlacementMarker:
    """Placement's decisions for this partition after one tick (pairs of case id and agency id)."""

    tick_id: str
    decisions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Release:
    """One step, in order: apply a message (``held``), a tick, a tick's placement, or ack a skipped marker."""

    held: Held | None = None
    marker: TickMarker | None = None
    skip: bool = False
    placement: PlacementMarker | None = None
    placement_offset: int = -1  # where *placement* was read (its topic's position moves past it once applied)


class PartitionSequencer:
    def __init__(
        self,
        topics: Sequence[str],
        state: SequencerState | None = None,
        *,
        patience_seconds: float = 30.0,
    ) -> None:
        self.topics = tuple(topics)
        self._rank = {t: i for i, t in enumerate(self.topics)}
        self.state = state or SequencerState()
        self.queues: dict[str, deque[Held]] = {t: deque() for t in self.topics}
        released = self.state.released_next
        # Held messages are not persisted: reading resumes right after the last released one.
        self.next_seen: dict[str, int] = {t: released.get(t, 0) for t in self.topics}
        self.ends: dict[str, int] = {}  # per topic: every record below this was delivered (latest notice)
        self.pending: list[TickMarker] = list(self.state.pending)
        self.calendar_seen = max(self.state.calendar_seen, self.state.calendar_done)
        # Only a safety valve: a topic whose end the consumer has not reported for this long
        # stops holding the merge back (logged by the processor). Normally ends decide.
        self.patience_seconds = patience_seconds
        self._waiting_since: float | None = None
        self._skipped: list[TickMarker] = list(self.state.skipped)
        self.impatient = False  # the last drain released a message because patience ran out
        self._placements: dict[str, tuple[PlacementMarker, int]] = {}  # arrived, by tick id, with their offsets

    # ------------------------------------------------------------------ input
    def positions(self) -> dict[str, int]:
        """Where to (re)start reading each topic: right after what was released."""
        return dict(self.next_seen)

    def offer(self, held: Held) -> bool:
        """Queue a message; False when it was already seen (a redelivery): drop it."""
        if held.offset < self.next_seen[held.topic]:
            return False
        self.next_seen[held.topic] = held.offset + 1
        self.queues[held.topic].append(held)
        return True

    def note_end(self, topic: str, end: int) -> None:
        """The consumer delivered every record of *topic* below *end* (an end-of-partition notice)."""
        if end > self.ends.get(topic, -1):
            self.ends[topic] = end

    def offer_marker(self, marker: TickMarker, offset: int | None = None) -> bool:
        """Take a calendar marker (found at *offset* of the ticks topic); False for a redelivery.

        Stale ticks become skips.
        """
        if offset is not None:
            self.state.markers_next = max(self.state.markers_next, offset + 1)
        if marker.calendar_offset < self.calendar_seen:
            return False
        self.calendar_seen = marker.calendar_offset + 1
        if marker.tick_id is not None and not self.is_stale(marker):
            self.pending.append(marker)
        else:
            self._skipped.append(marker)
        return True

    def await_placement(self, tick: TickMarker) -> None:
        """Hold everything after *tick* until placement's decisions for it arrive (SPEC §5)."""
        self.state.awaiting = tick

    def offer_placement(self, marker: PlacementMarker, business_date: dt.date | None, offset: int) -> bool:
        """Take placement's decisions for a tick (read at *offset*); False for a repeat of a tick
        already placed here, which nothing waits for.

        Decisions can arrive before their tick is applied: a worker killed after its report
        reached placement, but before its own state reached the changelog, applies the tick again
        after the restart, and reads the decisions (outside the merge) first. They are kept for
        that tick; until they are released the caller must not count them read (see
        :meth:`placements_held_from`), so that a crash in between reads them again.
        """
        awaiting = self.state.awaiting
        latest = self.state.business_date
        if (awaiting is not None and marker.tick_id == awaiting.tick_id) or (
                business_date is not None and (latest is None or business_date > latest)):
            self._placements.setdefault(marker.tick_id, (marker, offset))
            return True
        return False

    def placements_held_from(self) -> int | None:
        """The offset of the earliest placement message kept for a tick not applied yet, if any."""
        return min((offset for _, offset in self._placements.values()), default=None)

    def is_stale(self, marker: TickMarker) -> bool:
        """A tick for a date not after the latest one applied or pending (ignored: dates only move forward)."""
        latest = self.pending[-1].business_date if self.pending else self.state.business_date
        return latest is not None and marker.business_date is not None and marker.business_date <= latest

    def snapshot(self) -> SequencerState:
        """The state to persist now."""
        self.state.next_seen = {}
        self.state.calendar_seen = self.calendar_seen
        self.state.pending = tuple(self.pending)
        self.state.skipped = tuple(self._skipped)
        return self.state

    def held_messages(self) -> list[Held]:
        return [h for q in self.queues.values() for h in q]

    # ------------------------------------------------------------------ output
    def held_count(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def queue_length(self, topic: str) -> int:
        return len(self.queues[topic])

    def frontier(self, topic: str) -> int:
        """Offsets below this are released (or not in the log)."""
        queue = self.queues[topic]
        if queue:
            return queue[0].offset
        return max(self.next_seen[topic], self.ends.get(topic, 0))

    def caught_up(self, topic: str) -> bool:
        """Nothing more of *topic* was in the log at the consumer's latest end notice."""
        end = self.ends.get(topic)
        return end is not None and end >= self.next_seen[topic] and not self.queues[topic]

    def blocking_topics(self) -> list[tuple[str, int, int]]:
        """For the first pending tick: (topic, frontier, place) still short of its place."""
        if self.state.awaiting is not None:
            return [("placement", 0, 1)]
        if not self.pending:
            return []
        tick = self.pending[0]
        return [(t, self.frontier(t), tick.places.get(t, 0)) for t in self.topics
                if self.frontier(t) < tick.places.get(t, 0)]

    def waiting_on_calendar(self) -> bool:
        return any(q and q[0].calendar_end > self.calendar_seen for q in self.queues.values())

    def drain(self, now: float) -> Iterator[Release]:
        """Release, in order, everything that may be applied now."""
        self.impatient = False
        while True:
            awaiting = self.state.awaiting
            if awaiting is not None:
                kept = self._placements.pop(awaiting.tick_id, None)
                if kept is None:
                    return  # nothing after a tick is applied before its placement
                self.state.awaiting = None
                yield Release(marker=awaiting, placement=kept[0], placement_offset=kept[1])
                continue
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
            if self.waiting_on_calendar():
                return  # a tick published before these messages has not reached us yet
            candidates = [
                t for t, q in self.queues.items()
                if q and (tick is None or q[0].offset < tick.places.get(t, 0))
            ]
            if not candidates:
                return
            if self._others_may_supply_earlier(tick):
                if self._waiting_since is None:
                    self._waiting_since = now
                if now - self._waiting_since < self.patience_seconds:
                    return
                self.impatient = True
            self._waiting_since = None
            topic = min(candidates, key=lambda t: (self.queues[t][0].timestamp, self._rank[t]))
            held = self.queues[topic].popleft()
            self.state.released_next[topic] = held.offset + 1
            yield Release(held=held)
            if not self.impatient:
                yield from self._release_run(topic, candidates, tick)

    def _release_run(self, topic: str, candidates: list[str], tick: TickMarker | None) -> Iterator[Release]:
        """Go on releasing *topic*'s messages while the loop above would choose each of them next.

        Only *topic*'s queue changed since the loop looked: the other topics' first messages,
        the ticks and the ends are as they were, so its next message is released exactly when it
        is still before the tick's place, waits for no tick, and is earlier than every other
        candidate's first message (the loop's choice, without the loop's work per message).
        """
        queue = self.queues[topic]
        rank = self._rank[topic]
        rival = min(((self.queues[t][0].timestamp, self._rank[t]) for t in candidates if t != topic and self.queues[t]),
                    default=None)
        place = tick.places.get(topic, 0) if tick is not None else None
        released = self.state.released_next
        while queue and self.state.awaiting is None:
            head = queue[0]
            if place is not None and head.offset >= place:
                return
            if head.calendar_end > self.calendar_seen:
                return
            if rival is not None and (head.timestamp, rank) >= rival:
                return
            queue.popleft()
            released[topic] = head.offset + 1
            yield Release(held=head)

    def _others_may_supply_earlier(self, tick: TickMarker | None) -> bool:
        for topic, queue in self.queues.items():
            if queue:
                continue
            if tick is not None and self.frontier(topic) >= tick.places.get(topic, 0):
                continue  # nothing more from this topic before the tick
            if not self.caught_up(topic):
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
