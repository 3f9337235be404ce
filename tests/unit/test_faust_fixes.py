"""The faust-streaming internals Arrears relies on still have the shape it relies on.

faust-streaming is pinned exactly (pyproject.toml); these tests fail loudly, naming the
internal, when an upgrade moves one of them, before any worker runs with a silently broken
correction (streams/faust_fixes.py) or store access (streams/store.py).
"""

from __future__ import annotations

import inspect
import re
from importlib.metadata import version
from pathlib import Path

import aiokafka
import faust
from faust.stores import memory as memory_store
from faust.stores import rocksdb as rocksdb_store
from faust.tables import recovery as faust_recovery
from faust.transport.drivers import aiokafka as faust_aiokafka

ROOT = Path(__file__).resolve().parents[2]


def pinned(package: str) -> str:
    match = re.search(rf'"{package}==([^"]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert match, f"{package} must be pinned exactly (==) in pyproject.toml"
    return match.group(1)


def test_the_installed_faust_and_aiokafka_are_the_pinned_versions() -> None:
    assert version("faust-streaming") == pinned("faust-streaming")
    assert version("aiokafka") == pinned("aiokafka")


def params(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_the_worker_consumer_factory_and_the_fetch_wait_it_hard_codes_are_there() -> None:
    create = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    assert params(create) == ["self", "transport"]
    assert "fetch_max_wait_ms=1500" in inspect.getsource(create)  # what limit_fetch_wait overrides
    assert "_fetch_max_wait_ms" in inspect.getsource(aiokafka.AIOKafkaConsumer.__init__)


def test_recovery_builds_its_highwaters_where_recover_to_the_true_end_extends_them() -> None:
    build = faust_recovery.Recovery._build_highwaters
    assert params(build) == ["self", "consumer", "tps", "destination", "title"]
    assert inspect.iscoroutinefunction(build)


def test_the_rocksdb_store_keeps_one_database_per_partition_and_its_recovery_offset_under_a_key() -> None:
    store = rocksdb_store.Store
    assert params(store._db_for_partition) == ["self", "partition"]
    assert store.offset_key == b"__faust\x00offset__"
    source = inspect.getsource(store.persisted_offset)
    assert "self._db_for_partition(tp.partition).get(self.offset_key)" in source
    assert "rocksdict.WriteBatch(raw_mode=True)" in inspect.getsource(store.apply_changelog_batch)


def test_the_memory_store_is_a_dict_with_a_key_to_partition_index() -> None:
    store = memory_store.Store.__new__(memory_store.Store)
    memory_store.Store.__post_init__(store)
    assert store.data == {} and store._key_partition == {}
    assert "_key_partition" in inspect.getsource(memory_store.Store.on_recovery_completed)


def test_the_app_signals_the_worker_connects_to_exist() -> None:
    app = faust.App("arrears-shape-test", broker="kafka://127.0.0.1:1", autodiscover=False)
    for signal in ("on_partitions_revoked", "on_rebalance_complete", "on_before_shutdown"):
        assert hasattr(getattr(app, signal), "connect"), signal
    table = app.Table("loans", partitions=6, key_type=bytes, value_type=bytes)
    assert table.changelog_topic.get_topic_name() == "arrears-shape-test-loans-changelog"
