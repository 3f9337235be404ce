"""The files transport: the outbox of work-order CSVs and the inbox of result CSVs (SPEC §6).

Outbox: one file per day on which the adapter writes, ``work-orders-YYYY-MM-DD.csv`` (the day
in the transport's ``timezone``), never named by an event's own time, so each case's events
keep their order across files. Batches are appended (one ``write`` of whole rows, then
``fsync``): the cost of a batch is the batch, not the file. A file is complete once its day
has passed; the adapter then writes ``work-orders-YYYY-MM-DD.csv.done`` (JSON: rows, bytes,
sha256), and the file never changes again. Files and markers get the transport's
``file_mode`` (default 0644), whatever the process umask, so the agency can read them.

An event is written once: before a batch is appended, the adapter knows the event ids of the
day's file and of the file before it, reading only what was appended since it last looked
(replicas of one agency's adapter share the outbox under a lock), so a batch re-delivered
after a crash or a rebalance adds nothing.

Inbox: ``*.csv`` files are validated row by row; good rows are published and acknowledged
before the file moves to ``processed/``; bad rows go to ``rejected/<name>`` with their reason.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from arrears.errors import ArrearsError
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
DEFAULT_FILE_MODE = 0o644
LOCK_NAME = ".work-orders.lock"
DONE_SUFFIX = ".done"
_OUTBOX_FILE = re.compile(r"^work-orders-(\d{4}-\d{2}-\d{2})\.csv$")


class OutboxError(ArrearsError):
    """The outbox holds something the adapter must not append to (e.g. another column layout)."""


def dir_mode(file_mode: int) -> int:
    """The mode of a directory whose files have *file_mode*: whoever may read a file may list it."""
    mode = 0o700
    if file_mode & 0o040:
        mode |= 0o050
    if file_mode & 0o004:
        mode |= 0o005
    return mode


def make_dir(directory: Path, file_mode: int = DEFAULT_FILE_MODE) -> None:
    """Create *directory* (and parents) readable like its files; an existing one is left as it is."""
    missing = []
    path = Path(directory)
    while not path.exists():
        missing.append(path)
        path = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    for created in missing:
        with contextlib.suppress(OSError):  # another replica may have created it first
            os.chmod(created, dir_mode(file_mode))


def atomic_write(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace *path* with *data* so readers see the old file or the new one, never a mix.

    *mode* sets the file's permissions (``mkstemp`` creates 0600: only our own account could read).
    """
    make_dir(path.parent, mode if mode is not None else DEFAULT_FILE_MODE)
    # A dot-name that does not end in .csv: pollers of the directory never pick it up.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            if mode is not None:
                os.fchmod(out.fileno(), mode)
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


def outbox_name(day: dt.date) -> str:
    """The outbox file the adapter writes to on *day*."""
    return f"work-orders-{day.isoformat()}.csv"


def outbox_day(name: str) -> dt.date | None:
    """The day of an outbox file name, or None for any other name."""
    match = _OUTBOX_FILE.match(name)
    if match is None:
        return None
    try:
        return dt.date.fromisoformat(match.group(1))
    except ValueError:
        return None


@dataclass(frozen=True)
class CompleteRows:
    """The longest prefix of outbox bytes that is whole CSV rows, and those rows."""

    length: int  # bytes
    rows: list[dict[str, str]]


def complete_rows(data: bytes, *, header: bool, columns: Sequence[str] = WORK_ORDER_COLUMNS) -> CompleteRows:
    """Whole rows at the start of *data* (outbox bytes from a row boundary), stopping at a torn one.

    A row is whole when it has every column and ends with CRLF; a writer stopped in the middle
    of a batch (a crash, a full disk) leaves a torn last row, which a reader must not take. With
    *header*, *data* starts at the beginning of a file, whose first row must be *columns*.
    """
    consumed = 0
    taken = 0
    whole_line = True  # the last line handed to the reader ended with CRLF

    def feed() -> Iterator[str]:
        nonlocal taken, whole_line
        for line in data.splitlines(keepends=True):
            taken += len(line)
            whole_line = line.endswith(b"\r\n")
            yield line.decode("utf-8")

    reader = csv.reader(feed(), strict=True)
    rows: list[dict[str, str]] = []
    expect_header = header
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except (csv.Error, UnicodeDecodeError):
            break  # a torn multi-byte character or quoted cell at the end
        if not whole_line or len(cells) != len(columns):
            break
        if expect_header:
            if cells != list(columns):
                raise OutboxError(f"header: not the work-order columns of this version ({','.join(cells)[:200]})")
            expect_header = False
        else:
            rows.append(dict(zip(columns, cells, strict=True)))
        consumed = taken
    return CompleteRows(consumed, rows)


def read_outbox_rows(path: Path, offset: int = 0) -> tuple[list[dict[str, str]], int]:
    """The whole rows of an outbox file after byte *offset*, and the offset to continue from.

    For readers of a file that may still be growing (the simulated file-drop agency, or an
    agency reading during the day): a batch being written is left for the next read.
    """
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    found = complete_rows(data, header=offset == 0)
    return found.rows, offset + found.length


@dataclass
class _FileState:
    """What this process knows of one outbox file: how far it has read it, and its event ids."""

    size: int = 0
    rows: int = 0
    ids: set[str] = field(default_factory=set)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(UTC)


class Outbox:
    """Appends work-order rows to the outbox file of the day, and marks past days' files complete."""

    def __init__(
        self,
        directory: Path,
        *,
        timezone: str = "UTC",
        file_mode: int = DEFAULT_FILE_MODE,
        now: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self.directory = Path(directory)
        self.timezone = timezone
        self.zone = ZoneInfo(timezone)
        self.file_mode = file_mode
        self._now = now
        self._known: dict[str, _FileState] = {}
        self._open_day: dt.date | None = None  # the day whose file was last opened (past ones sealed)
        self._previous: str | None = None  # the newest outbox file before the open day's

    def today(self) -> dt.date:
        return self._now().astimezone(self.zone).date()

    # ------------------------------------------------------------------ writing
    def append(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Append work-order events (JSON form) to today's file; return how many rows were new."""
        rows = [work_order_row(event) for event in events]  # a bad event fails before anything is written
        with self._locked():
            day = self._roll()
            path = self.directory / outbox_name(day)
            state = self._sync(path)
            previous = self._previous_ids()
            batch: set[str] = set()
            new = []
            for row in rows:  # membership tests only: the cost is the batch's, not the files'
                event_id = row["event_id"]
                if event_id not in state.ids and event_id not in previous and event_id not in batch:
                    batch.add(event_id)
                    new.append(row)
            if new:
                self._write(path, state, new)
        return len(new)

    def roll(self) -> None:
        """At a new day: mark the past days' files complete and open today's (header only).

        Called every few seconds by the adapter, so a file is marked complete soon after its day
        ends even when no work order arrives; cheap when the day has not changed.
        """
        if self._open_day == self.today():
            return
        with self._locked():
            self._roll()

    def _roll(self) -> dt.date:
        """(Under the lock.) The day to write to; on a new day, seal the past and open today's file."""
        day = self.today()
        if self._open_day is not None and day < self._open_day:
            day = self._open_day  # the clock stepped back: never write into a day already closed
        while (self.directory / (outbox_name(day) + DONE_SUFFIX)).exists():
            log.warning("outbox %s is already complete (the clock is behind another replica's?); "
                        "writing to the next day's file", outbox_name(day))
            day += dt.timedelta(days=1)
        if day == self._open_day:
            return day
        make_dir(self.directory, self.file_mode)
        self._previous = None
        for name in sorted(os.listdir(self.directory)):
            past = outbox_day(name)
            if past is None or past >= day:
                continue
            self._previous = name
            if not (self.directory / (name + DONE_SUFFIX)).exists():
                self._seal(self.directory / name, past)
        path = self.directory / outbox_name(day)
        state = self._sync(path)
        if state.size == 0:
            self._write(path, state, [])  # the day's file exists from its start: header only
        self._open_day = day
        self._forget_old(day)
        return day

    def _seal(self, path: Path, day: dt.date) -> None:
        """Write the ``.done`` marker of a past day's file: from now on the file never changes."""
        state = self._sync(path)
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        marker = {
            "file": path.name,
            "date": day.isoformat(),
            "timezone": self.timezone,
            "rows": state.rows,
            "bytes": state.size,
            "sha256": digest.hexdigest(),
        }
        atomic_write(path.with_name(path.name + DONE_SUFFIX),
                     (json.dumps(marker) + "\n").encode("utf-8"), self.file_mode)
        log.info("outbox %s complete: %d row(s), %d bytes", path.name, state.rows, state.size)

    def _write(self, path: Path, state: _FileState, rows: list[dict[str, str]]) -> None:
        """(Under the lock.) Append *rows* (with the header when the file is new) in one write."""
        data = render_csv(WORK_ORDER_COLUMNS, rows, header=state.size == 0).encode("utf-8")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, self.file_mode)
        try:
            if state.size == 0:
                os.fchmod(fd, self.file_mode)  # os.open's mode is cut by the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError:
            # A full disk mid-batch: take the torn rows back so the file stays whole rows.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, state.size)
            raise
        finally:
            os.close(fd)
        if state.size == 0:
            _fsync_dir(self.directory)
        state.size += len(data)
        state.rows += len(rows)
        state.ids.update(row["event_id"] for row in rows)

    # ------------------------------------------------------------------ reading back
    def _sync(self, path: Path) -> _FileState:
        """(Under the lock.) Catch up with what was appended to *path* since this process last looked.

        Only the new bytes are read. A torn last batch (a writer that died mid-write) is cut off:
        no writer is mid-write while we hold the lock.
        """
        state = self._known.setdefault(path.name, _FileState())
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size < state.size:  # replaced or truncated behind our back: start over
            log.warning("outbox %s shrank from %d to %d bytes; reading it again", path.name, state.size, size)
            state = self._known[path.name] = _FileState()
        if size == state.size:
            return state
        found = read_outbox_rows(path, state.size)
        rows, end = found
        if end < size:
            log.warning("outbox %s ends in a torn row (a writer stopped mid-batch); cutting %d byte(s)",
                        path.name, size - end)
            os.truncate(path, end)
        state.size = end
        state.rows += len(rows)
        state.ids.update(row["event_id"] for row in rows)
        return state

    def _previous_ids(self) -> set[str]:
        """Event ids of the newest outbox file before the open day's: a batch re-delivered after midnight."""
        if self._previous is None:
            return set()
        return self._sync(self.directory / self._previous).ids

    def _forget_old(self, day: dt.date) -> None:
        """Keep the state of the two files appends are checked against, not of every day since start."""
        keep = {outbox_name(day), self._previous}
        for name in [n for n in self._known if n not in keep]:
            del self._known[name]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Replicas of one agency's adapter share the outbox: one writer at a time.
        make_dir(self.directory, self.file_mode)
        with open(self.directory / LOCK_NAME, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


@dataclass(frozen=True)
class InboxOutcome:
    """What became of one inbox file."""

    name: str
    accepted: int
    rejected: int
    file_error: str | None = None


class Inbox:
    """Reads result CSVs from the inbox and files them under ``processed/`` and ``rejected/``."""

    def __init__(
        self, directory: Path, catalog: Catalog, agency_id: str, *, file_mode: int = DEFAULT_FILE_MODE
    ) -> None:
        self.directory = Path(directory)
        self.processed = self.directory / "processed"
        self.rejected = self.directory / "rejected"
        self.catalog = catalog
        self.agency_id = agency_id
        self.file_mode = file_mode  # the agency reads rejected/ (what to fix) and processed/

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
            atomic_write(target.with_name(target.name + ".reason.txt"), f"{exc}\n".encode(), self.file_mode)
            os.replace(path, target)
            log.warning("inbox file %s rejected whole: %s", path.name, exc)
            return InboxOutcome(path.name, 0, 0, str(exc))
        good: list[ResultRow] = [r for r in rows if r.reason is None]
        bad = [r for r in rows if r.reason is not None]
        publish([(r.name, r.value) for r in good if r.name is not None and r.value is not None])
        # Only after the broker acknowledged: a crash before this line re-reads the same file.
        if bad:
            content = rejected_rows_csv(columns, bad).encode("utf-8")
            atomic_write(self._free_name(self.rejected, path.name, content), content, self.file_mode)
        make_dir(self.processed, self.file_mode)
        os.replace(path, self._free_name(self.processed, path.name))
        log.info("inbox file %s: %d row(s) published, %d rejected", path.name, len(good), len(bad))
        return InboxOutcome(path.name, len(good), len(bad))

    def _free_name(self, directory: Path, name: str, content: bytes | None = None) -> Path:
        """``directory/name``, or ``stem.N.csv`` when an agency reuses a file name.

        A file with exactly *content* already there is the one an interrupted run wrote: reuse it.
        """
        make_dir(directory, self.file_mode)
        candidate = directory / name
        stem, suffix = os.path.splitext(name)
        n = 1
        while candidate.exists() and (content is None or candidate.read_bytes() != content):
            candidate = directory / f"{stem}.{n}{suffix}"
            n += 1
        return candidate
