"""Files of input records in JSON form, one a line (``arrears publish``): checked whole, then published.

Every line is checked before anything is sent, so a bad line costs nothing but a message naming
it. A record without an ``event_id`` gets one derived from the file's content and its line
number: publishing the same file again republishes the same ids, which the processor applies
once (SPEC §4), so a run cut short by the broker is finished by running it again.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from arrears.errors import PublishError
from schemas import Catalog, CodecError

from .publisher import LoanEventPublisher, prepare_record

#: Namespace of the event ids derived for lines without one.
LINE_NAMESPACE = uuid.UUID("2d0c7f4e-5b1a-5e8d-8f3c-9a6b1e4d7c20")


def file_digest(data: bytes) -> str:
    """What a file's derived event ids depend on: its content (SHA-256, hex)."""
    return hashlib.sha256(data).hexdigest()


def derived_event_id(digest: str, line: int) -> str:
    """The event id of line *line* (from 1) of the file with :func:`file_digest` *digest*, if it gives none."""
    return str(uuid.uuid5(LINE_NAMESPACE, f"{digest}/{line}"))


@dataclass(frozen=True)
class Line:
    """One valid line: its record name and its fields in JSON form (event_id always present)."""

    number: int
    name: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class BadLine:
    number: int
    reason: str


@dataclass
class Checked:
    """A file's lines, checked: what can be published and what cannot (by line number)."""

    lines: list[Line] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)


def check_lines(catalog: Catalog, data: bytes) -> Checked:
    """Check every line of a JSON-lines file against the contract; blank lines are skipped."""
    checked = Checked()
    digest = file_digest(data)
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            checked.lines.append(_check_line(catalog, digest, number, raw))
        except (CodecError, ValueError) as exc:
            checked.bad.append(BadLine(number, str(exc)))
    return checked


def _check_line(catalog: Catalog, digest: str, number: int, raw: bytes) -> Line:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 (byte {exc.start + 1} of the line)") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected one record as a JSON object, got {type(obj).__name__}")
    name = obj.pop("type", None)
    if name is None:
        raise ValueError('no "type": each line names its record, e.g. {"type": "RepaymentReceived", ...}')
    if not isinstance(name, str):
        raise ValueError(f'"type": expected a record name, got {name!r}')
    obj.setdefault("event_id", derived_event_id(digest, number))
    check = dict(obj)
    if name == "BusinessDateChanged":
        check.setdefault("barrier", [])  # filled with the partitions' ends when it is published
    try:
        prepare_record(catalog, name, check)
    except (CodecError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None
    return Line(number, name, obj)


@dataclass
class Published:
    """How far publishing a file went."""

    count: int = 0
    ids: list[str] = field(default_factory=list)


def publish_lines(
    publisher: LoanEventPublisher,
    lines: Sequence[Line],
    *,
    barrier: bool = True,
    pause_after_tick: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Published:
    """Publish checked lines in order, each acknowledged before the next; ticks get their barrier.

    A broker failure raises :class:`PublishError` saying how many lines were published before.
    """
    done = Published()
    for line in lines:
        fields = dict(line.fields)
        try:
            if line.name == "BusinessDateChanged" and barrier and not fields.get("barrier"):
                record = publisher.end_of_day(
                    fields.pop("business_date"), calendar=fields.pop("calendar", None),
                    event_id=fields["event_id"], occurred_at=fields.get("occurred_at"),
                )
            else:
                record = publisher.publish(line.name, fields, wait=True)
        except PublishError as exc:
            raise PublishError(
                f"line {line.number} not published ({exc}); {done.count} line(s) before it were. "
                "Publish the same file again once the broker is back: every line keeps its event id, "
                "and the processor applies each once"
            ) from exc
        done.count += 1
        done.ids.append(record["event_id"])
        if line.name == "BusinessDateChanged" and pause_after_tick:
            sleep(pause_after_tick)
    return done
