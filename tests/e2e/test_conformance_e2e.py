"""The conformance scenarios end to end through the CLI: arrears topics, arrears worker, arrears publish.

Every bucket is internal and grace is 0 (conformance/README.md); events are published one at a
time, each acknowledged before the next, ticks with their barrier (or once without, pausing
after each tick); ``collections.cases`` must match the expected events exactly.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFORMANCE_DIR, env_for
from kafkatools import read_topic
from processes import WorkerProcess, run_cli, wait_until, workers

from arrears.broker import free_port
from schemas import default_catalog, to_json

pytestmark = [pytest.mark.slow, pytest.mark.broker]

INTERNAL = {"internal_buckets": ["M1", "M2", "M3", "M4", "M5", "M6", "M7+"], "grace_days": 0}


def scenario_file(name: str) -> Path:
    return CONFORMANCE_DIR / f"{name}.events.jsonl"


def last_business_date(path: Path) -> str:
    dates = [json.loads(line)["business_date"] for line in path.read_text().splitlines() if "business_date" in line]
    return max(dates)


@pytest.fixture
def deployment(make_settings: Any, unique: str, tmp_path: Path) -> Any:
    settings = make_settings(INTERNAL, arrears_app_id=f"app-{unique}")
    env = env_for(settings, ARREARS_APP_ID=f"app-{unique}", ARREARS_DATA_DIR=str(tmp_path / "data"),
                  ARREARS_LOG_LEVEL="INFO")
    run_cli(["topics"], env)
    return settings, env


def wait_caught_up(procs: list[WorkerProcess], date: str, partitions: int, timeout: float = 120) -> None:
    def caught_up() -> bool:
        dates: dict[str, str] = {}
        held = 0
        for proc in procs:
            status, body = proc.health()
            if status != 200:
                return False
            dates.update(body["business_dates"])
            held += body["held_messages"]
        return len(dates) == partitions and all(d == date for d in dates.values()) and held == 0

    wait_until(caught_up, timeout, message=f"every partition at {date} with nothing held")


def case_events(settings: Any, timeout: float = 30) -> dict[str, list[dict[str, Any]]]:
    catalog = default_catalog()
    by_loan: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in read_topic(settings, settings.topics.cases, min_count=1, timeout=timeout, idle=2.0):
        by_loan[record.data["loan_id"]].append(to_json(catalog, record.name, record.data))
    return dict(by_loan)


def assert_matches(scenario: str, actual: dict[str, list[dict[str, Any]]], *, allow_duplicates: bool = False) -> None:
    expected = json.loads((CONFORMANCE_DIR / f"{scenario}.expected.json").read_text())
    for loan_id, events in expected.items():
        got = actual.get(loan_id, [])
        if allow_duplicates:
            got = _without_identical_duplicates(got)
        projected = [{k: g.get(k) for k in e} for g, e in zip(got, events, strict=False)]
        assert len(got) == len(events), (
            f"{loan_id}: {len(got)} case events, expected {len(events)}:\n"
            + "\n".join(f"  got {g['type']} {g.get('business_date')} {g.get('dpd')}" for g in got)
            + "\n" + "\n".join(f"  exp {e['type']} {e.get('business_date')} {e.get('dpd')}" for e in events)
        )
        assert projected == events, loan_id
    assert set(actual) <= set(expected), f"unexpected case events for {sorted(set(actual) - set(expected))}"


def _without_identical_duplicates(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    out = []
    for event in events:
        previous = seen.get(event["event_id"])
        if previous is not None:
            assert previous == event, f"event {event['event_id']} emitted twice with different fields"
            continue
        seen[event["event_id"]] = event
        out.append(event)
    return out


@pytest.mark.parametrize("scenario", ["scenario-101", "scenario-202"])
@pytest.mark.parametrize("n_workers", [1, 2])
def test_conformance_scenario_through_the_cli(deployment: Any, tmp_path: Path, scenario: str, n_workers: int) -> None:
    settings, env = deployment
    with workers(env, [free_port() for _ in range(n_workers)], tmp_path) as procs:
        run_cli(["publish", str(scenario_file(scenario))], env)
        wait_caught_up(procs, last_business_date(scenario_file(scenario)), settings.arrears_partitions)
        assert_matches(scenario, case_events(settings))


def test_ticks_without_barrier_apply_at_the_end_offsets_when_read(deployment: Any, tmp_path: Path) -> None:
    settings, env = deployment
    scenario = "scenario-101"
    with workers(env, [free_port()], tmp_path) as procs:
        run_cli(["publish", str(scenario_file(scenario)), "--no-barrier", "--pause-after-tick", "0.15"], env)
        wait_caught_up(procs, last_business_date(scenario_file(scenario)), settings.arrears_partitions)
        assert_matches(scenario, case_events(settings))


def test_replay_into_a_fresh_deployment_yields_byte_identical_records(
    make_settings: Any, kafka_bootstrap: str, tmp_path: Path
) -> None:
    scenario = scenario_file("scenario-101")
    runs = []
    for run in ("first", "replay"):
        settings = make_settings(INTERNAL, arrears_topic_prefix=f"replay-{tmp_path.name}-{run}.",
                                 arrears_app_id=f"replay-{tmp_path.name}-{run}")
        env = env_for(settings, ARREARS_APP_ID=settings.arrears_app_id, ARREARS_DATA_DIR=str(tmp_path / run))
        run_cli(["topics"], env)
        with workers(env, [free_port()], tmp_path) as procs:
            run_cli(["publish", str(scenario)], env)
            wait_caught_up(procs, last_business_date(scenario), settings.arrears_partitions)
        records = {}
        for base in ("collections.cases", "collections.case-state"):
            # Per key, in order: keys of different loans' partitions may share an output partition,
            # and how those interleave depends on timing; each key's own sequence must not.
            by_key: dict[bytes | None, list[bytes | None]] = defaultdict(list)
            for r in read_topic(settings, settings.topics.name(base), min_count=1, idle=2.0, decode=False):
                by_key[r.key].append(r.value)
            records[base] = dict(by_key)
        runs.append(records)
    first, replay = runs
    for base in first:
        assert first[base] == replay[base], f"{base} differs between the run and its replay"
    assert sum(len(v) for v in first["collections.cases"].values()) == 64
