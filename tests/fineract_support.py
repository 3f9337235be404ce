"""Shared helpers of the Fineract bridge tests: the Java-encoded fixtures and what they map to."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from producers.fineract.mapping import MappedRecord, wanted
from producers.fineract.messages import decode_message
from producers.fineract.planner import Planner
from producers.fineract.schemas import FineractSchemas
from schemas import default_catalog, from_json, to_json

# As in tests/conftest.py (not imported: tests/unit has a conftest module of its own).
SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"
FINERACT_AVRO_DIR = SHARED_DIR / "fineract-avro"
FINERACT_FIXTURES_DIR = SHARED_DIR / "fineract-fixtures"


@dataclass(frozen=True)
class Fixture:
    seq: int
    index: dict[str, Any]  # its line of messages.jsonl
    expected: dict[str, Any]  # its entry of expected.json
    value: bytes  # the Kafka value, as Fineract's Java producer wrote it
    key: bytes  # the Kafka key: the loan id, 8-byte big-endian long

    @property
    def name(self) -> str:
        return str(self.index["value"])


@cache
def fineract_schemas() -> FineractSchemas:
    return FineractSchemas.load(FINERACT_AVRO_DIR)


@cache
def fixtures() -> tuple[Fixture, ...]:
    lines = (FINERACT_FIXTURES_DIR / "messages.jsonl").read_text(encoding="utf-8").splitlines()
    index = [json.loads(line) for line in lines if line.strip()]
    messages = json.loads((FINERACT_FIXTURES_DIR / "expected.json").read_text(encoding="utf-8"))["messages"]
    expected = {m["seq"]: m for m in messages}
    return tuple(
        Fixture(
            seq=entry["seq"],
            index=entry,
            expected=expected[entry["seq"]],
            value=(FINERACT_FIXTURES_DIR / entry["value"]).read_bytes(),
            key=(FINERACT_FIXTURES_DIR / entry["keyFile"]).read_bytes(),
        )
        for entry in sorted(index, key=lambda e: e["seq"])
    )


def fixture(seq: int) -> Fixture:
    return next(f for f in fixtures() if f.seq == seq)


@dataclass(frozen=True)
class Planned:
    """What the pure rules say the bridge publishes for one fixture."""

    fixture: Fixture
    business_date: dt.date
    tick: MappedRecord | None
    records: list[MappedRecord]


def plan_fixtures(values: list[bytes] | None = None, calendar: str = "CN") -> list[Planned]:
    """Run the fixtures (or *values*) through decode + planner, as the bridge does, without Kafka."""
    planner = Planner(calendar)
    out = []
    for fx, value in zip(fixtures(), values or [f.value for f in fixtures()], strict=False):
        plan = planner.plan(decode_message(fineract_schemas(), value, wanted))
        assert plan.error is None, plan.error
        out.append(Planned(fx, dt.date.fromisoformat(plan.envelope.business_date), plan.tick, plan.records))
    return out


def avro_ready(record: MappedRecord) -> dict[str, Any]:
    """The record as the publisher validates it (schema defaults filled in)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return from_json(default_catalog(), {"type": record.record, **plain(record.value)})[1]


def json_form(name: str, value: dict[str, Any]) -> dict[str, Any]:
    """A comparable form of a record, whether decoded from Kafka or just mapped."""
    return to_json(default_catalog(), name, value)


def fixture_path(name: str) -> Path:
    return FINERACT_FIXTURES_DIR / name
