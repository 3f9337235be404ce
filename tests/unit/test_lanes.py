"""Parallel deliveries: each case in order, a slow case never blocks the others, commits never skip."""

from __future__ import annotations

import threading
import time

from consumers.delivery import DeliveryFailure, DeliveryInterrupted, WorkOrder
from consumers.lanes import Completion, Job, Lanes, OffsetTracker


def order(case: str, n: int) -> WorkOrder:
    return WorkOrder("agency.AG1.work-orders", 0, n, "WorkOrderUpdated", {"event_id": f"{case}-{n}", "case_id": case})


def job(case: str, offset: int, abort: threading.Event | None = None, partition: int = 0) -> Job:
    return Job(case, partition, offset, 1, order(case, offset), abort or threading.Event())


def wait_for(lanes: Lanes, count: int, timeout: float = 5.0) -> list[Completion]:
    done: list[Completion] = []
    deadline = time.monotonic() + timeout
    while len(done) < count and time.monotonic() < deadline:
        done += lanes.drain()
        time.sleep(0.005)
    return done


def test_the_offset_to_commit_stays_below_the_lowest_unfinished_event() -> None:
    tracker = OffsetTracker()
    generation = tracker.assign(3)
    for offset in (10, 11, 12):
        tracker.take(3, offset)
    assert tracker.committable() == {3: 10}
    tracker.finish(3, 11, generation)  # a later event finished first
    assert tracker.position(3) == 10
    tracker.finish(3, 10, generation)
    assert tracker.committable() == {3: 12}
    tracker.committed({3: 12})
    assert tracker.committable() == {}  # nothing new to commit
    tracker.finish(3, 12, generation)
    assert tracker.committable() == {3: 13} and tracker.backlog() == 0


def test_a_revoked_partition_ignores_late_completions_even_once_it_is_assigned_again() -> None:
    tracker = OffsetTracker()
    old = tracker.assign(1)
    tracker.take(1, 5)
    tracker.forget(1)
    new = tracker.assign(1)
    tracker.take(1, 5)
    tracker.finish(1, 5, old)  # the lane of the old assignment finished after the revoke
    assert tracker.position(1) == 5
    tracker.finish(1, 5, new)
    assert tracker.position(1) == 6


def test_a_slow_case_does_not_hold_up_other_cases_and_each_case_keeps_its_order() -> None:
    started: list[str] = []
    release_slow = threading.Event()
    lock = threading.Lock()

    def post(wo: WorkOrder, abort: threading.Event) -> DeliveryFailure | None:
        with lock:
            started.append(wo.event_id)
        if wo.value["case_id"] == "SLOW":
            release_slow.wait(5)
        else:
            time.sleep(0.01)
        return None

    lanes = Lanes(post, max_in_flight=3)
    try:
        lanes.submit(job("SLOW", 0))
        lanes.submit(job("SLOW", 1))
        for offset in range(2, 8):
            lanes.submit(job("A" if offset % 2 else "B", offset))
        others = wait_for(lanes, 6)
        assert sorted(c.job.offset for c in others) == [2, 3, 4, 5, 6, 7]  # all done while SLOW hangs
        assert "SLOW-1" not in started  # SLOW's second event waits for its first
        release_slow.set()
        slow = wait_for(lanes, 2)
    finally:
        lanes.close()
    assert [c.job.offset for c in slow] == [0, 1]
    for case in ("A", "B", "SLOW"):
        mine = [e for e in started if e.startswith(case + "-")]
        assert mine == sorted(mine, key=lambda e: int(e.split("-")[1])), mine


def test_no_more_than_max_in_flight_deliveries_run_at_once() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def post(wo: WorkOrder, abort: threading.Event) -> DeliveryFailure | None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return None

    lanes = Lanes(post, max_in_flight=4)
    try:
        for n in range(40):
            lanes.submit(job(f"C{n}", n))
        assert len(wait_for(lanes, 40)) == 40
    finally:
        lanes.close()
    assert peak == 4


def test_an_aborted_partition_ends_its_lanes_without_a_verdict() -> None:
    abort = threading.Event()

    def post(wo: WorkOrder, stop: threading.Event) -> DeliveryFailure | None:
        if stop.wait(5):
            raise DeliveryInterrupted(wo.event_id)
        return None

    lanes = Lanes(post, max_in_flight=2)
    try:
        lanes.submit(job("X", 0, abort))
        lanes.submit(job("X", 1, abort))
        abort.set()
        done = wait_for(lanes, 2)
    finally:
        lanes.close()
    assert [(c.job.offset, c.interrupted, c.failure) for c in done] == [(0, True, None), (1, True, None)]


def test_a_failure_is_handed_back_for_the_dead_letter_topic() -> None:
    lanes = Lanes(lambda wo, abort: DeliveryFailure("DELIVERY_FAILED", "HTTP 422 (permanent, attempt 1)"), 1)
    try:
        lanes.submit(job("F", 9))
        (done,) = wait_for(lanes, 1)
    finally:
        lanes.close()
    assert done.failure is not None and done.failure.error.startswith("HTTP 422")
