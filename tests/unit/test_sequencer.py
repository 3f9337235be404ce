"""The partition sequencer: ticks as barriers, no overlooked tick, publish order between ticks,
offsets that are not contiguous (transaction markers), nothing decided by the wall clock."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.sequencer import Held, PartitionSequencer, Release, SequencerState, TickMarker

TOPICS = ("accounts", "schedules", "repayments")


def held(topic: str, offset: int, ts: float = 0.0, cal: int = 0) -> Held:
    return Held(topic, offset, ts, cal, value=f"{topic}@{offset}".encode())


def tick(cal: int, date: str, **places: int) -> TickMarker:
    full = {t: places.get(t, 0) for t in TOPICS}
    return TickMarker(cal, f"tick-{date}", dt.date.fromisoformat(date), 0, full)


def at_end(seq: PartitionSequencer, **ends: int) -> PartitionSequencer:
    """The consumer reported the end of each topic: where given, else right after what it delivered."""
    for topic in TOPICS:
        seq.note_end(topic, ends.get(topic, seq.next_seen[topic]))
    return seq


def drain(seq: PartitionSequencer, now: float = 0.0) -> list[str]:
    out = []
    for release in seq.drain(now):
        if release.held is not None:
            out.append(release.held.value.decode())
        elif release.skip:
            out.append(f"skip@{release.marker.calendar_offset}")
        else:
            out.append(f"tick@{release.marker.calendar_offset}")
    return out


def test_messages_before_the_place_come_before_the_tick_and_after_it_after() -> None:
    seq = PartitionSequencer(TOPICS)
    seq.offer_marker(tick(0, "2026-01-02", repayments=2))
    for offset in range(4):
        seq.offer(held("repayments", offset, ts=offset, cal=1))
    assert drain(at_end(seq)) == ["repayments@0", "repayments@1", "tick@0", "repayments@2", "repayments@3"]


def test_tick_waits_for_every_message_before_its_place_in_every_topic() -> None:
    seq = PartitionSequencer(TOPICS)
    seq.offer_marker(tick(0, "2026-01-02", accounts=1, repayments=1))
    seq.offer(held("repayments", 0, ts=0.0, cal=1))
    seq.offer(held("repayments", 1, ts=1.0, cal=1))
    seq.note_end("repayments", 2)
    seq.note_end("schedules", 0)  # accounts has not reported its end: a message may be on its way
    assert drain(seq) == []  # accounts@0 may be older, and the tick needs it
    seq.offer(held("accounts", 0, ts=0.5, cal=1))
    assert drain(at_end(seq)) == ["repayments@0", "accounts@0", "tick@0", "repayments@1"]


def test_a_place_just_past_a_transaction_marker_is_reached_through_the_consumers_end_notice() -> None:
    seq = PartitionSequencer(TOPICS)
    # repayments@0 and @1 were committed in a transaction; its marker took offset 2, so the
    # tick published after it names 3. Offset 2 is never delivered.
    seq.offer_marker(tick(0, "2026-01-02", repayments=3))
    seq.offer(held("repayments", 0, cal=1))
    seq.offer(held("repayments", 1, cal=1))
    seq.note_end("accounts", 0)
    seq.note_end("schedules", 0)
    assert drain(seq) == ["repayments@0", "repayments@1"]  # the tick waits: offset 2 is not accounted for
    assert seq.blocking_topics() == [("repayments", 2, 3)]
    seq.note_end("repayments", 3)  # everything below 3 was delivered
    assert drain(seq) == ["tick@0"]
    seq.offer(held("repayments", 4, cal=1))  # the next record, after another marker
    assert drain(at_end(seq)) == ["repayments@4"]


def test_a_message_read_after_a_tick_was_published_waits_for_that_tick() -> None:
    seq = PartitionSequencer(TOPICS)
    # The calendar had 1 message when this was read, but the marker has not arrived yet.
    seq.offer(held("repayments", 0, cal=1))
    assert drain(at_end(seq)) == []
    seq.offer_marker(tick(0, "2026-01-02", repayments=0))
    assert drain(seq) == ["tick@0", "repayments@0"]


def test_messages_of_different_topics_merge_by_timestamp_each_keeping_offset_order() -> None:
    seq = PartitionSequencer(TOPICS)
    seq.offer(held("repayments", 0, ts=3.0))
    seq.offer(held("repayments", 1, ts=5.0))
    seq.offer(held("schedules", 0, ts=4.0))
    seq.offer(held("accounts", 0, ts=1.0))
    assert drain(at_end(seq)) == ["accounts@0", "repayments@0", "schedules@0", "repayments@1"]


def test_merge_waits_for_a_topic_whose_end_the_consumer_has_not_reported_whatever_the_clock_says() -> None:
    seq = PartitionSequencer(TOPICS, patience_seconds=30.0)
    seq.offer(held("repayments", 0, ts=5.0))
    seq.note_end("repayments", 1)
    seq.note_end("schedules", 0)  # accounts has not reached its end yet: an older message may come
    assert drain(seq, now=0.0) == []
    assert drain(seq, now=10.0) == []
    seq.offer(held("accounts", 0, ts=4.0))
    assert drain(seq, now=10.0) == ["accounts@0"]  # accounts@1 may still be older than repayments@0
    seq.offer(held("accounts", 1, ts=6.0))
    assert drain(seq, now=10.0) == ["repayments@0", "accounts@1"]


def test_the_safety_valve_releases_after_long_silence_and_says_so() -> None:
    seq = PartitionSequencer(TOPICS, patience_seconds=30.0)
    seq.offer(held("repayments", 0, ts=5.0))
    seq.note_end("repayments", 1)
    seq.note_end("schedules", 0)  # accounts never reported an end
    assert drain(seq, now=0.0) == []
    assert not seq.impatient
    assert drain(seq, now=31.0) == ["repayments@0"]
    assert seq.impatient


def test_redelivered_messages_and_markers_are_dropped() -> None:
    seq = PartitionSequencer(TOPICS)
    assert seq.offer(held("accounts", 0))
    assert not seq.offer(held("accounts", 0))
    assert seq.offer(held("accounts", 5))  # a hole (markers, compaction) is not a redelivery
    assert not seq.offer(held("accounts", 3))
    assert seq.offer_marker(tick(0, "2026-01-02"))
    assert not seq.offer_marker(tick(0, "2026-01-02"))


def test_stale_ticks_become_skips_and_the_date_only_moves_forward() -> None:
    seq = PartitionSequencer(TOPICS)
    seq.offer_marker(tick(0, "2026-01-05"))
    seq.offer_marker(tick(1, "2026-01-04"))
    seq.offer_marker(TickMarker(2, None))
    assert drain(seq) == ["tick@0", "skip@1", "skip@2"]
    assert seq.state.business_date == dt.date(2026, 1, 5)
    assert seq.state.calendar_done == 3


def test_restart_reads_again_from_what_was_released_and_keeps_pending_ticks() -> None:
    first = PartitionSequencer(TOPICS)
    for offset in range(3):
        first.offer(held("accounts", offset, cal=1 if offset < 2 else 2))
    first.offer_marker(tick(0, "2026-01-02", accounts=2))
    assert drain(at_end(first)) == ["accounts@0", "accounts@1", "tick@0"]  # accounts@2 waits for calendar offset 1
    first.offer_marker(tick(1, "2026-01-03", accounts=5))
    saved = copy.deepcopy(first.snapshot())
    second = PartitionSequencer(TOPICS, saved)
    assert second.positions() == {"accounts": 2, "schedules": 0, "repayments": 0}  # held messages come again
    assert not second.offer(held("accounts", 1))  # applied before the restart
    assert not second.offer_marker(tick(1, "2026-01-03", accounts=5))  # pending: saved with the state
    for offset in (2, 3, 4):
        assert second.offer(held("accounts", offset, cal=2))
    assert drain(at_end(second)) == ["accounts@2", "accounts@3", "accounts@4", "tick@1"]


def test_a_state_saved_by_an_older_version_resumes_from_its_released_positions() -> None:
    state = SequencerState(released_next={"accounts": 2}, next_seen={"accounts": 4})
    seq = PartitionSequencer(TOPICS, state)
    assert seq.positions()["accounts"] == 2


def test_a_pending_tick_is_reported_with_what_blocks_it() -> None:
    seq = PartitionSequencer(TOPICS)
    seq.offer_marker(tick(0, "2026-01-02", schedules=5))
    assert seq.blocking_topics() == [("schedules", 0, 5)]


class _OneAtATime(PartitionSequencer):
    """The merge choosing every message through the whole loop (what the quick run must equal)."""

    def _release_run(self, topic: str, candidates: list[str], tick: TickMarker | None) -> Iterator[Release]:
        return iter(())


_step = st.one_of(
    st.tuples(st.just("msg"), st.sampled_from(TOPICS), st.integers(0, 6), st.integers(0, 3)),
    st.tuples(st.just("tick"), st.integers(0, 12), st.integers(0, 12), st.integers(0, 12)),
    st.tuples(st.just("end"), st.sampled_from(TOPICS), st.integers(0, 3), st.just(0)),
    st.tuples(st.just("drain"), st.integers(0, 40), st.just(0), st.just(0)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_step, max_size=60))
def test_releasing_a_topic_s_run_of_messages_at_once_is_the_same_merge(script: list[tuple[Any, ...]]) -> None:
    quick, slow = PartitionSequencer(TOPICS, patience_seconds=30), _OneAtATime(TOPICS, patience_seconds=30)
    offsets = dict.fromkeys(TOPICS, 0)
    calendar, day = 0, 0

    def run(seq: PartitionSequencer, now: float) -> list[tuple[Any, ...]]:
        return [(r.held.topic, r.held.offset) if r.held else (r.skip, r.marker and r.marker.calendar_offset)
                for r in seq.drain(now)] + [("impatient", seq.impatient)]

    for kind, a, b, c in script:
        if kind == "msg":
            offsets[a] += 1 + (c == 3)  # now and then a hole (a transaction marker)
            for seq in (quick, slow):
                seq.offer(Held(a, offsets[a] - 1, float(b), max(0, calendar + c - 2)))  # some wait for a tick
        elif kind == "tick":
            day += 1
            marker = TickMarker(calendar, f"t{calendar}", dt.date(2026, 1, 1) + dt.timedelta(days=day), 0,
                                {"accounts": a, "schedules": b, "repayments": c})
            calendar += 1
            for seq in (quick, slow):
                seq.offer_marker(copy.deepcopy(marker))
        elif kind == "end":
            for seq in (quick, slow):
                seq.note_end(a, offsets[a] + b)
        else:
            assert run(quick, float(a)) == run(slow, float(a))
            assert quick.snapshot() == slow.snapshot()
    assert run(quick, 100.0) == run(slow, 100.0)
    assert quick.snapshot() == slow.snapshot()


def _releases(seq: PartitionSequencer) -> list[Release]:
    return list(seq.drain(0.0))


def test_placement_that_arrives_before_its_tick_is_applied_again_is_kept_for_it() -> None:
    """A worker killed after its report reached placement but before its state reached the
    changelog applies the tick again after the restart, and may read the decisions first."""
    from streams.sequencer import PlacementMarker

    seq = at_end(PartitionSequencer(TOPICS))
    decided = PlacementMarker("tick-2026-01-02", (("L1:1", "AG1"),))
    assert seq.offer_placement(decided, dt.date(2026, 1, 2), offset=7)  # before the tick: kept
    assert seq.placements_held_from() == 7  # not read yet: a crash now reads it again
    seq.offer_marker(tick(0, "2026-01-02"))
    first = _releases(seq)
    assert [r.marker.tick_id for r in first] == ["tick-2026-01-02"] and first[0].placement is None
    seq.await_placement(first[0].marker)  # the processor applied the tick and reported it
    (placed,) = _releases(seq)
    assert (placed.placement, placed.placement_offset) == (decided, 7)
    assert seq.state.awaiting is None and seq.placements_held_from() is None


def test_placement_repeated_for_a_tick_already_placed_is_not_kept() -> None:
    from streams.sequencer import PlacementMarker

    seq = at_end(PartitionSequencer(TOPICS))
    seq.offer_marker(tick(0, "2026-01-02"))
    (applied,) = _releases(seq)
    seq.await_placement(applied.marker)
    decided = PlacementMarker("tick-2026-01-02")
    assert seq.offer_placement(decided, dt.date(2026, 1, 2), offset=3)
    assert [r.placement for r in _releases(seq)] == [decided]
    assert not seq.offer_placement(decided, dt.date(2026, 1, 2), offset=4)  # the coordinator decided it again
    assert seq.placements_held_from() is None and _releases(seq) == []
