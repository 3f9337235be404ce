"""The worker's state in its Faust table: loans, journals and each partition's sequencer state.

**Local state never runs ahead of the changelog.** A batch's writes are sent to the table's
changelog first; only once the broker has acknowledged them are they written to the local
store (RocksDB or memory), in one atomic RocksDB write batch together with the changelog
offset they reach (the offset Faust's recovery resumes from). Until then they live in a
per-partition overlay that reads see. So after a SIGKILL the local store holds a prefix of
the changelog: restarting on the same data directory, on an empty one, or on another worker
(recovery reads the changelog from the stored offset, or from the start) always yields
exactly what the changelog holds — never state whose changelog records were lost.

Values are bytes (:mod:`streams.state_codec`). A small LRU of decoded loan states keeps hot
loans cheap.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import lru_cache
from typing import Any

from aiokafka.partitioner import murmur2

from arrears.domain.debtor import DebtorState, TickBarrier
from arrears.domain.loan import LoanState

from .sequencer import SequencerState
from .state_codec import decode_header, decode_state, encode_state

# Keys that are not loans start with NUL (which no loan id may contain); the memory store is
# one dict for every partition, so they carry the partition.
_INTERNAL = b"\x00"
_SEQUENCER_PREFIX = b"\x00sequencer:"
_HELD_PREFIX = b"\x00held:"  # held messages of older versions (no longer written; deleted when seen)
_JOURNAL_PREFIX = b"\x00journal:"
_DEBTOR_PREFIX = b"\x00debtor:"  # the debtor stage's budgets, in the partition of the customer id
_BARRIER_PREFIX = b"\x00barrier:"  # the debtor stage's tick barrier, one per partition

Writes = dict[bytes, bytes | None]


def sequencer_key(partition: int) -> bytes:
    return _SEQUENCER_PREFIX + str(partition).encode()


def barrier_key(partition: int) -> bytes:
    return _BARRIER_PREFIX + str(partition).encode()


def debtor_key(customer_id: str) -> bytes:
    return _DEBTOR_PREFIX + customer_id.encode()


def journal_key(loan_id: str, n: int) -> bytes:
    return b"%s%s:%08d" % (_JOURNAL_PREFIX, loan_id.encode(), n)


@lru_cache(maxsize=16_384)
def partition_of(key: bytes, partitions: int) -> int:
    """The partition murmur2 puts *key* in (Java client, aiokafka and our producers agree).

    Checked for every input event; murmur2 is pure Python (~4 us), so recent loans are remembered.
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class LocalStore:
    """Direct, per-partition access to the table's local store (Faust's memory or RocksDB store).

    Faust's own write path sets a key locally *before* its changelog record is acknowledged;
    the processor writes through :meth:`apply` instead, after the acknowledgement.
    """

    def __init__(self, table: Any, partitions: int) -> None:
        self._table = table
        self._partitions = partitions

    @property
    def _store(self) -> Any:
        return self._table.data

    @property
    def is_rocksdb(self) -> bool:
        return hasattr(self._store, "_dbs")

    def get(self, partition: int, key: bytes) -> bytes | None:
        store = self._store
        if self.is_rocksdb:
            value = store._db_for_partition(partition).get(key)
            return value if value is None else bytes(value)
        return store.data.get(key)  # type: ignore[no-any-return]

    def items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) stored for *partition* (Faust's offset key left out)."""
        store = self._store
        if self.is_rocksdb:
            offset_key = store.offset_key
            for key, value in store._db_for_partition(partition).items():
                if key != offset_key:
                    yield bytes(key), bytes(value)
            return
        known = store._key_partition
        for key, value in list(store.data.items()):
            if value is None:
                continue
            owner = known.get(key)
            if owner is None:
                owner = _partition_of_key(key, self._partitions)
            if owner == partition:
                yield key, value

    def apply(self, partition: int, writes: Writes, changelog_offset: int) -> None:
        """Write what the changelog holds up to *changelog_offset* (atomically with RocksDB)."""
        store = self._store
        if self.is_rocksdb:
            import rocksdict

            batch = rocksdict.WriteBatch(raw_mode=True)
            for key, value in writes.items():
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
            batch.put(store.offset_key, str(changelog_offset).encode())
            store._db_for_partition(partition).write(batch)
            return
        data, known = store.data, store._key_partition
        for key, value in writes.items():
            if value is None:
                data.pop(key, None)
                known.pop(key, None)
            else:
                data[key] = value
                known[key] = partition  # Faust drops a revoked partition's keys by this index


def _partition_of_key(key: bytes, partitions: int) -> int:
    if key.startswith(_INTERNAL):
        if key.startswith(_JOURNAL_PREFIX):
            loan = key[len(_JOURNAL_PREFIX):].rsplit(b":", 1)[0]
            return partition_of(loan, partitions)
        if key.startswith(_DEBTOR_PREFIX):
            return partition_of(key[len(_DEBTOR_PREFIX):], partitions)
        return int(key.split(b":", 2)[1])
    return partition_of(key, partitions)


class StateCache:
    """Decoded loan states shared by the partitions of one worker."""

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

    def discard(self, loan_ids: Any) -> None:
        for loan_id in loan_ids:
            self._items.pop(loan_id, None)

    def clear(self) -> None:
        self._items.clear()


class PartitionStore:
    """The loans of one partition: read through the cache and the unflushed overlay, written in batches."""

    def __init__(self, local: LocalStore, partition: int, cache: StateCache,
                 header: Callable[[LoanState], tuple[Any, bool]]) -> None:
        self.local = local
        self.partition = partition
        self.cache = cache
        self._header = header
        self._dirty: dict[str, LoanState] = {}
        self._journal: list[tuple[bytes, bytes]] = []
        self._debtors: OrderedDict[str, DebtorState] = OrderedDict()  # recently used, decoded
        self._dirty_debtors: dict[str, DebtorState] = {}
        self._barrier: TickBarrier | None = None  # the debtor stage's, decoded once
        self._barrier_dirty = False
        self._overlay: dict[bytes, tuple[int, bytes | None]] = {}  # sent, not yet in the local store
        self._seq = 0

    # ------------------------------------------------------------------ reads
    def raw(self, key: bytes) -> bytes | None:
        pending = self._overlay.get(key)
        if pending is not None:
            return pending[1]
        return self.local.get(self.partition, key)

    def get(self, loan_id: str) -> LoanState | None:
        state = self._dirty.get(loan_id) or self.cache.get(loan_id)
        if state is not None:
            return state
        raw = self.raw(loan_id.encode())
        if raw is None:
            return None
        state = decode_state(raw)
        self.cache.put(state)
        return state

    def get_debtor(self, customer_id: str) -> DebtorState | None:
        state = self._dirty_debtors.get(customer_id) or self._debtors.get(customer_id)
        if state is not None:
            return state
        raw = self.raw(debtor_key(customer_id))
        if raw is None:
            return None
        state = decode_state(raw)
        self._remember_debtor(state)
        return state

    def get_barrier(self) -> TickBarrier | None:
        if self._barrier is None:
            raw = self.raw(barrier_key(self.partition))
            self._barrier = decode_state(raw) if raw is not None else None
        return self._barrier

    def put_barrier(self, barrier: TickBarrier) -> None:
        self._barrier = barrier
        self._barrier_dirty = True

    def put_debtor(self, state: DebtorState) -> None:
        self._dirty_debtors[state.customer_id] = state
        self._remember_debtor(state)

    def _remember_debtor(self, state: DebtorState) -> None:
        self._debtors[state.customer_id] = state
        self._debtors.move_to_end(state.customer_id)
        while len(self._debtors) > 5_000:
            self._debtors.popitem(last=False)

    def read_journal(self, state: LoanState) -> list[bytes]:
        entries = (self.raw(journal_key(state.loan_id, i)) for i in range(state.journal_len))
        return [e for e in entries if e is not None]

    def load_sequencer(self) -> SequencerState | None:
        raw = self.raw(sequencer_key(self.partition))
        return decode_state(raw) if raw is not None else None

    def scan(self) -> Iterator[tuple[str, bytes]]:
        """(loan id, raw value) of every loan of the partition as the store holds it now."""
        seen: set[bytes] = set()
        for key, (_, value) in list(self._overlay.items()):
            seen.add(key)
            if value is not None and not key.startswith(_INTERNAL):
                yield key.decode(), value
        for key, value in self.local.items(self.partition):
            if key in seen or key.startswith(_INTERNAL):
                continue
            yield key.decode(), value

    def stale_keys(self) -> list[bytes]:
        """Keys older versions stored that nothing reads any more (held messages)."""
        return [key for key, _ in self.local.items(self.partition) if key.startswith(_HELD_PREFIX)]

    # ------------------------------------------------------------------ writes
    def put(self, state: LoanState) -> None:
        self._dirty[state.loan_id] = state
        self.cache.put(state)

    @property
    def dirty(self) -> int:
        return len(self._dirty) + len(self._dirty_debtors)

    def debtor_store(self) -> _DebtorView:
        """The debtor stage's view of this partition's store (get/put by customer id)."""
        return _DebtorView(self)

    def journal(self, loan_id: str, records: list[bytes]) -> None:
        """Append records to the loan's audit journal (written with the loan).

        The count lives in the loan state, so a replayed event rewrites the same entries.
        """
        state = self.get(loan_id)
        if state is None or not records:
            return
        for i, record in enumerate(records, state.journal_len):
            self._journal.append((journal_key(loan_id, i), record))
        self.put(replace(state, journal_len=state.journal_len + len(records)))

    def collect(self, sequencer: SequencerState | None, extra: Writes | None = None) -> tuple[int, Writes]:
        """The batch's writes, in the order they must reach the changelog, and their sequence number.

        Journal entries and loans first, the sequencer state (which says what was applied)
        last: a crash part-way leaves a prefix, and every prefix is recognised on restart
        (redelivered events find themselves applied in the loans that were written).
        """
        writes: Writes = {}
        for key, value in self._journal:
            writes[key] = value
        self._journal.clear()
        for loan_id, state in self._dirty.items():
            writes[loan_id.encode()] = encode_state(state, *self._header(state))
        self._dirty.clear()
        for customer_id, debtor in self._dirty_debtors.items():
            writes[debtor_key(customer_id)] = encode_state(debtor)
        self._dirty_debtors.clear()
        if self._barrier_dirty and self._barrier is not None:
            writes[barrier_key(self.partition)] = encode_state(self._barrier)
            self._barrier_dirty = False
        if extra:
            writes.update(extra)
        if sequencer is not None:
            writes[sequencer_key(self.partition)] = encode_state(sequencer)
        self._seq += 1
        for key, value in writes.items():
            self._overlay[key] = (self._seq, value)
        return self._seq, writes

    def flushed(self, seq: int, writes: Writes, changelog_offset: int) -> None:
        """The changelog acknowledged batch *seq* up to *changelog_offset*: make it local."""
        self.local.apply(self.partition, writes, changelog_offset)
        for key in writes:
            pending = self._overlay.get(key)
            if pending is not None and pending[0] == seq:
                del self._overlay[key]

    def loan_ids_cached(self) -> list[str]:
        return list(self._dirty)


class _DebtorView:
    __slots__ = ("_store",)

    def __init__(self, store: PartitionStore) -> None:
        self._store = store

    def get(self, customer_id: str) -> DebtorState | None:
        return self._store.get_debtor(customer_id)

    def put(self, state: DebtorState) -> None:
        self._store.put_debtor(state)

    def get_barrier(self) -> TickBarrier | None:
        return self._store.get_barrier()

    def put_barrier(self, barrier: TickBarrier) -> None:
        self._store.put_barrier(barrier)


__all__ = ["LocalStore", "PartitionStore", "StateCache", "partition_of", "decode_header", "sequencer_key",
           "journal_key"]
