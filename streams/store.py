"""Loan states in the Faust table: a :class:`~arrears.domain.book.LoanStore` for one partition.

Values are bytes (:mod:`streams.state_codec`). Writes are collected and flushed after the
batch's outputs were acknowledged: the changelog must never get ahead of the case events it
implies, or a crash would lose them. A small LRU of decoded states keeps hot loans cheap.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from aiokafka.partitioner import murmur2
from faust.streams import _current_event

from arrears.domain.loan import LoanState

from .sequencer import Held, SequencerState
from .state_codec import decode_header, decode_state, encode_state

# Keys that are not loans start with NUL (which no loan id may contain); the memory store is
# one dict for every partition, so they carry the partition.
_INTERNAL = b"\x00"
_SEQUENCER_PREFIX = b"\x00sequencer:"
_HELD_PREFIX = b"\x00held:"
_JOURNAL_PREFIX = b"\x00journal:"


def sequencer_key(partition: int) -> bytes:
    return _SEQUENCER_PREFIX + str(partition).encode()


def journal_key(loan_id: str, n: int) -> bytes:
    return b"%s%s:%08d" % (_JOURNAL_PREFIX, loan_id.encode(), n)


def held_key(partition: int, held: Held) -> bytes:
    return b"%s%d:%s:%020d" % (_HELD_PREFIX, partition, held.topic.encode(), held.offset)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition murmur2 puts *key* in (Java client, aiokafka and our producers agree)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class _Message:
    __slots__ = ("partition",)

    def __init__(self, partition: int) -> None:
        self.partition = partition


class PartitionContext:
    """Stands in for Faust's current event: its stores read the partition from ``event.message``."""

    __slots__ = ("message", "__weakref__")

    def __init__(self, partition: int) -> None:
        self.message = _Message(partition)


def bind_event(event: Any) -> None:
    """Make *event* Faust's current event: table stores choose the partition from it."""
    _current_event.set(weakref.ref(event))


class StateCache:
    """Decoded loan states shared by the partitions of one worker (cleared at every rebalance)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, LoanState] = OrderedDict()

    def get(self, loan_id: str) -> LoanState | None:
        state = self._items.get(loan_id)
        if state is not None:
            self._items.move_to_end(loan_id)
        return state

    def put(self, state: LoanState) -> None:
        self._items[state.loan_id] = state
        self._items.move_to_end(state.loan_id)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


class PartitionStore:
    """The loans of one partition, read through the cache and written in batches."""

    def __init__(
        self,
        table: Any,
        partition: int,
        cache: StateCache,
        header: Callable[[LoanState], tuple[Any, bool]],
    ) -> None:
        self.table = table
        self.partition = partition
        self.cache = cache
        self.event = PartitionContext(partition)  # for the table store's partition
        self._header = header
        self._dirty: dict[str, LoanState] = {}
        self._journal: list[tuple[bytes, bytes]] = []

    def get(self, loan_id: str) -> LoanState | None:
        state = self._dirty.get(loan_id) or self.cache.get(loan_id)
        if state is not None:
            return state
        bind_event(self.event)
        raw = self.table.data.get(loan_id.encode())
        if raw is None:
            return None
        state = decode_state(raw)
        self.cache.put(state)
        return state

    def put(self, state: LoanState) -> None:
        self._dirty[state.loan_id] = state
        self.cache.put(state)

    @property
    def dirty(self) -> int:
        return len(self._dirty)

    def journal(self, loan_id: str, records: list[bytes]) -> None:
        """Append records to the loan's audit journal (written with the loan, before its state).

        The count lives in the loan state, so a replayed event rewrites the same entries.
        """
        state = self.get(loan_id)
        if state is None or not records:
            return
        for i, record in enumerate(records, state.journal_len):
            self._journal.append((journal_key(loan_id, i), record))
        self.put(replace(state, journal_len=state.journal_len + len(records)))

    def read_journal(self, state: LoanState) -> list[bytes]:
        bind_event(self.event)
        entries = (self.table.data.get(journal_key(state.loan_id, i)) for i in range(state.journal_len))
        return [e for e in entries if e is not None]

    def write(
        self, sequencer: SequencerState, newly_held: list[Held], released: list[Held]
    ) -> list[asyncio.Future[Any]]:
        """Send the batch's changes to the changelog in the one order that survives any crash.

        Changed loans and newly held messages first, then the sequencer state (which says what
        was seen and released), then the tombstones of released messages: a crash leaves a
        prefix, and every prefix is either redelivered or recognised on restart.
        """
        bind_event(self.event)
        futures = [self._put_raw(key, value) for key, value in self._journal]
        self._journal.clear()
        for loan_id, state in self._dirty.items():
            futures.append(self._put_raw(loan_id.encode(), encode_state(state, *self._header(state))))
        self._dirty.clear()
        for held in newly_held:
            futures.append(self._put_raw(held_key(self.partition, held), encode_state(held)))
            held.persisted = True
        futures.append(self._put_raw(sequencer_key(self.partition), encode_state(sequencer)))
        for held in released:
            futures.append(self._delete_raw(held_key(self.partition, held)))
        return futures

    def _put_raw(self, key: bytes, value: bytes) -> asyncio.Future[Any]:
        future = self.table.send_changelog(self.partition, key, value)
        self.table.data[key] = value
        return future  # type: ignore[no-any-return]

    def _delete_raw(self, key: bytes) -> asyncio.Future[Any]:
        future = self.table.send_changelog(self.partition, key, None, value_serializer="raw")
        self.table.data.pop(key, None)
        return future  # type: ignore[no-any-return]

    def load_sequencer(self) -> SequencerState | None:
        bind_event(self.event)
        raw = self.table.data.get(sequencer_key(self.partition))
        return decode_state(raw) if raw is not None else None


def _internal_partition(key: bytes) -> int:
    return int(key.split(b":", 2)[1])


def scan(
    table: Any, partitions: set[int], total_partitions: int
) -> Iterator[tuple[int, str | None, bytes]]:
    """(partition, loan id, raw value) of every loan stored for *partitions* on this worker,
    and (partition, None, raw value) of every held message."""
    store = table.data
    dbs = getattr(store, "_dbs", None)
    if dbs is not None:  # RocksDB: one database per partition
        for partition in partitions:
            for key, value in store._db_for_partition(partition).items():
                if key.startswith(_HELD_PREFIX):
                    yield partition, None, value
                elif not key.startswith(_INTERNAL):  # sequencer state, journal
                    yield partition, key.decode(), value
        return
    known = getattr(store, "_key_partition", {})
    for key, value in list(store.data.items()):
        if value is None or key.startswith((_SEQUENCER_PREFIX, _JOURNAL_PREFIX)):
            continue
        if key.startswith(_HELD_PREFIX):
            partition = _internal_partition(key)
            if partition in partitions:
                yield partition, None, value
            continue
        partition = known.get(key)
        if partition is None:
            partition = partition_of(key, total_partitions)
        if partition in partitions:
            yield partition, key.decode(), value


__all__ = ["PartitionStore", "StateCache", "scan", "partition_of", "bind_event", "decode_header", "sequencer_key",
           "held_key", "journal_key"]
