"""The files transport: the outbox of work-order CSVs and the inbox of result CSVs (SPEC §6).

Outbox: one file per UTC date of the events' ``occurred_at``, ``work-orders-YYYY-MM-DD.csv``.
Rows are only ever appended, and each append replaces the whole file atomically (a temp file
in the same directory, fsync, ``os.replace``), so an agency opening it at any moment reads a
complete file. A row's ``event_id`` appears at most once per file: a batch re-delivered after
a crash finds its rows already there and adds nothing.

Inbox: ``*.csv`` files are validated row by row; good rows are published and acknowledged
before the file moves to ``processed/``; bad rows go to ``rejected/<name>`` with their reason.
"""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import io
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas import Catalog

from .csvformat import (
    WORK_ORDER_COLUMNS,
    ResultFileError,
    ResultRow,
    parse_result_file,
    rejected_rows_csv,
    render_csv,
    work_order_row,
)
from .results import Result

log = logging.getLogger(__name__)
UTC = dt.UTC


def atomic_write(path: Path, data: bytes) -> None:
    """Replace *path* with *data* so readers see the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A dot-name that does not end in .csv: pollers of the directory never pick it up.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every filesystem lets a directory be fsynced
    finally:
        os.close(fd)


def outbox_name(occurred_at: dt.datetime | int) -> str:
    """The outbox file of an event: its ``occurred_at`` date in UTC."""
    if isinstance(occurred_at, int):
        occurred_at = dt.datetime.fromtimestamp(occurred_at / 1000, UTC)
    return f"work-orders-{occurred_at.astimezone(UTC).date().isoformat()}.csv"


def _event_ids(text: str) -> set[str]:
    reader = csv.DictReader(io.StringIO(text))
    return {row.get("event_id") or "" for row in reader}


class Outbox:
    """Appends work-order rows to the dated outbox files."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def append(self, events: Iterable[tuple[dt.datetime | int, Mapping[str, Any]]]) -> int:
        """Append (occurred_at, JSON form) events; return how many rows were new."""
        by_file: dict[str, list[dict[str, str]]] = {}
        for occurred_at, json_form in events:
            by_file.setdefault(outbox_name(occurred_at), []).append(work_order_row(json_form))
        written = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        # Replicas of one agency's adapter share the outbox: read-append-replace under a lock,
        # or two of them could each replace the file without the other's rows.
        with open(self.directory / ".work-orders.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for name, rows in sorted(by_file.items()):
                written += self._append_file(self.directory / name, rows)
        return written

    @staticmethod
    def _append_file(path: Path, rows: list[dict[str, str]]) -> int:
        existing = path.read_text(encoding="utf-8") if path.exists() else ""
        seen = _event_ids(existing) if existing else set()
        new = []
        for row in rows:
            if row["event_id"] not in seen:
                seen.add(row["event_id"])
                new.append(row)
        if new:
            text = existing + render_csv(WORK_ORDER_COLUMNS, new, header=not existing)
            atomic_write(path, text.encode("utf-8"))
        return len(new)


@dataclass(frozen=True)
class InboxOutcome:
    """What became of one inbox file."""

    name: str
    accepted: int
    rejected: int
    file_error: str | None = None


class Inbox:
    """Reads result CSVs from the inbox and files them under ``processed/`` and ``rejected/``."""

    def __init__(self, directory: Path, catalog: Catalog, agency_id: str) -> None:
        self.directory = Path(directory)
        self.processed = self.directory / "processed"
        self.rejected = self.directory / "rejected"
        self.catalog = catalog
        self.agency_id = agency_id

    def pending(self) -> list[Path]:
        """Result files waiting, oldest first (dot-files are uploads in progress)."""
        if not self.directory.is_dir():
            return []
        files = [p for p in self.directory.glob("*.csv") if p.is_file() and not p.name.startswith(".")]
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def process(self, path: Path, publish: Callable[[Sequence[Result]], None]) -> InboxOutcome:
        """Validate, publish (acknowledged) and file one result file.

        *publish* raising leaves the file where it is, to be tried again at the next poll; the
        rows carry the same event ids then, so the processor applies each once.
        """
        data = path.read_bytes()
        mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, UTC)
        try:
            columns, rows = parse_result_file(
                self.catalog, data, agency_id=self.agency_id, default_occurred_at=mtime
            )
        except ResultFileError as exc:
            target = self._free_name(self.rejected, path.name)
            atomic_write(target.with_name(target.name + ".reason.txt"), f"{exc}\n".encode())
            os.replace(path, target)
            log.warning("inbox file %s rejected whole: %s", path.name, exc)
            return InboxOutcome(path.name, 0, 0, str(exc))
        good: list[ResultRow] = [r for r in rows if r.reason is None]
        bad = [r for r in rows if r.reason is not None]
        publish([(r.name, r.value) for r in good if r.name is not None and r.value is not None])
        # Only after the broker acknowledged: a crash before this line re-reads the same file.
        if bad:
            content = rejected_rows_csv(columns, bad).encode("utf-8")
            atomic_write(self._free_name(self.rejected, path.name, content), content)
        self.processed.mkdir(parents=True, exist_ok=True)
        os.replace(path, self._free_name(self.processed, path.name))
        log.info("inbox file %s: %d row(s) published, %d rejected", path.name, len(good), len(bad))
        return InboxOutcome(path.name, len(good), len(bad))

    @staticmethod
    def _free_name(directory: Path, name: str, content: bytes | None = None) -> Path:
        """``directory/name``, or ``stem.N.csv`` when an agency reuses a file name.

        A file with exactly *content* already there is the one an interrupted run wrote: reuse it.
        """
        directory.mkdir(parents=True, exist_ok=True)
        candidate = directory / name
        stem, suffix = os.path.splitext(name)
        n = 1
        while candidate.exists() and (content is None or candidate.read_bytes() != content):
            candidate = directory / f"{stem}.{n}{suffix}"
            n += 1
        return candidate
