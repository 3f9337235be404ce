"""The internal per-partition tick record (topic ``<app id>-ticks``): one per calendar message.

It is the processor's own business (JSON, not part of the contract): the calendar offset it
stands for, and for a tick the places it takes in that partition's input topics. The first
marker a partition receives for a calendar offset wins, so the places recorded there are
the ones a replay of the same deployment uses.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from .sequencer import TickMarker


def encode_marker(marker: TickMarker) -> bytes:
    body: dict[str, Any] = {"c": marker.calendar_offset}
    if marker.latest is not None:
        body["latest"] = marker.latest.isoformat()
    if marker.tick_id is not None:
        assert marker.business_date is not None
        body.update(
            id=marker.tick_id,
            date=marker.business_date.isoformat(),
            at=marker.occurred_at,
            places=marker.places,
        )
    return json.dumps(body, separators=(",", ":")).encode()


def decode_marker(data: bytes) -> TickMarker:
    body = json.loads(data)
    latest = dt.date.fromisoformat(body["latest"]) if body.get("latest") else None
    if "id" not in body:
        return TickMarker(calendar_offset=int(body["c"]), tick_id=None, latest=latest)
    return TickMarker(
        calendar_offset=int(body["c"]),
        tick_id=str(body["id"]),
        business_date=dt.date.fromisoformat(body["date"]),
        occurred_at=int(body["at"]),
        places={str(k): int(v) for k, v in body["places"].items()},
        latest=latest,
    )
