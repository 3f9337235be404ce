"""The partition sequencer: ticks as barriers, no overlooked tick, publish order between ticks."""

from __future__ import annotations

import copy
import datetime as dt

from streams.sequencer import Held, PartitionSequencer, SequencerState, TickMarker

TOPICS = ("accounts", "schedules", "repayments")


def held(topic: str, offset: int, ts: float = 0.0, cal: int = 0) -> Held:
    return Held(topic, offset, ts, cal, value=f"{topic}@{offset}".encode())


def tick(cal: int, date: str, **places: int) -> TickMarker:
    full = {t: places.get(t, 0) for t in TOPICS}
    return TickMarker(cal, f"tick-{date}", dt.date.fromisoformat(date), 0, full)


def caught_up(seq: PartitionSequencer):
    return lambda topic: seq.next_seen[topic]


def drain(seq: PartitionSequencer, highwater=None, now: float = 0.0) -> list[str]:
    out = []
    for release in seq.drain(highwater or caught_up(seq), now):
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
    assert drain(seq) == ["repayments@0", "repayments@1", "tick@0", "repayments@2", "repayments@3"]


def test_tick_waits_for_every_message_before_its_place_in_every_topic() -> None:
    seq = PartitionSequencer(TOPICS)
    seq.offer_marker(tick(0, "2026-01-02", accounts=1, repayments=1))
    seq.offer(held("repayments", 0, ts=0.0, cal=1))
    seq.offer(held("repayments", 1, ts=1.0, cal=1))
    hw = {"accounts": 1, "schedules": 0, "repayments": 2}.get
    assert drain(seq, hw) == []  # accounts@0 has not arrived: it may be older, and the tick needs it
    seq.offer(held("accounts", 0, ts=0.5, cal=1))
    assert drain(seq, hw) == ["repayments@0", "accounts@0", "tick@0", "repayments@1"]


def test_a_message_read_after_a_tick_was_published_waits_for_that_tick() -> None:
    seq = PartitionSequencer(TOPICS)
    # The calendar had 1 message when this was read, but the marker has not arrived yet.
    seq.offer(held("repayments", 0, cal=1))
    assert drain(seq) == []
    seq.offer_marker(tick(0, "2026-01-02", repayments=0))
    assert drain(seq) == ["tick@0", "repayments@0"]


def test_messages_of_different_topics_merge_by_timestamp_each_keeping_offset_order() -> None:
    seq = PartitionSequencer(TOPICS)
    seq.offer(held("repayments", 0, ts=3.0))
    seq.offer(held("repayments", 1, ts=5.0))
    seq.offer(held("schedules", 0, ts=4.0))
    seq.offer(held("accounts", 0, ts=1.0))
    assert drain(seq) == ["accounts@0", "repayments@0", "schedules@0", "repayments@1"]


def test_merge_waits_for_a_topic_that_is_not_caught_up_until_patience_runs_out() -> None:
    seq = PartitionSequencer(TOPICS, patience_seconds=2.0)
    seq.offer(held("repayments", 0, ts=5.0))
    behind = {"accounts": 3, "schedules": 0, "repayments": 1}.get  # accounts has 3 unseen messages
    assert drain(seq, behind, now=0.0) == []
    assert drain(seq, behind, now=1.0) == []
    assert drain(seq, behind, now=2.5) == ["repayments@0"]


def test_redelivered_messages_and_markers_are_dropped() -> None:
    seq = PartitionSequencer(TOPICS)
    assert seq.offer(held("accounts", 0))
    assert not seq.offer(held("accounts", 0))
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


def test_restart_resumes_from_the_persisted_state_and_held_messages() -> None:
    first = PartitionSequencer(TOPICS)
    for offset in range(3):
        first.offer(held("accounts", offset, cal=1 if offset < 2 else 2))
    first.offer_marker(tick(0, "2026-01-02", accounts=2))
    assert drain(first) == ["accounts@0", "accounts@1", "tick@0"]  # accounts@2 waits for calendar offset 1
    first.offer_marker(tick(1, "2026-01-03", accounts=5))
    saved = copy.deepcopy(first.snapshot())
    stored = copy.deepcopy(first.held_messages())
    second = PartitionSequencer(TOPICS, saved, stored)
    assert not second.offer(held("accounts", 1))  # applied before the restart
    assert not second.offer(held("accounts", 2))  # held and saved before the restart
    assert not second.offer_marker(tick(1, "2026-01-03", accounts=5))
    for offset in (3, 4):
        assert second.offer(held("accounts", offset, cal=2))
    assert drain(second) == ["accounts@2", "accounts@3", "accounts@4", "tick@1"]


def test_held_messages_saved_by_an_unfinished_batch_are_not_restored() -> None:
    state = SequencerState(released_next={"accounts": 2}, next_seen={"accounts": 4})
    stored = [held("accounts", 1), held("accounts", 2), held("accounts", 3), held("accounts", 4)]
    seq = PartitionSequencer(TOPICS, state, stored)
    assert [h.offset for h in seq.held_messages()] == [2, 3]


def test_a_pending_tick_is_reported_with_what_blocks_it() -> None:
    seq = PartitionSequencer(TOPICS)
    seq.offer_marker(tick(0, "2026-01-02", schedules=5))
    assert seq.blocking_topics() == [("schedules", 0, 5)]


def test_fresh_held_messages_are_those_offered_since_the_last_take_and_still_held() -> None:
    seq = PartitionSequencer(TOPICS)
    seq.offer_marker(tick(0, "2026-01-02", accounts=1, repayments=1))
    for offset in range(3):
        seq.offer(held("repayments", offset, ts=offset, cal=1))
    seq.offer(held("repayments", 1, ts=1, cal=1))  # a redelivery: not fresh
    hw = {"accounts": 1, "schedules": 0, "repayments": 3}.get
    assert drain(seq, hw) == []  # accounts@0 has not arrived
    assert [h.offset for h in seq.take_fresh_held()] == [0, 1, 2]
    assert seq.take_fresh_held() == []
    seq.offer(held("accounts", 0, ts=0.5, cal=1))
    assert drain(seq, hw) == ["repayments@0", "accounts@0", "tick@0", "repayments@1", "repayments@2"]
    assert seq.take_fresh_held() == []  # offered and released within the same batch: nothing to persist
    seq.offer(held("repayments", 3, ts=3, cal=1))
    seq.offer(held("repayments", 4, ts=4, cal=2))  # read after a second tick was published: waits for it
    assert drain(seq, {"accounts": 1, "schedules": 0, "repayments": 5}.get) == ["repayments@3"]
    assert [h.offset for h in seq.take_fresh_held()] == [4]
    assert [h.offset for h in seq.held_messages()] == [4]
