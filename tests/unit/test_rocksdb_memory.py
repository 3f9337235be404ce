"""RocksDB's memory is bounded per table partition (issue 15): Faust's defaults (3 x 64 MB of
memtables and a 2 GB block cache per partition) let a worker's resident memory grow with its book."""

from __future__ import annotations

from pathlib import Path

from arrears.settings import Settings
from streams.app import build_app

MB = 1024 * 1024


def test_the_loans_table_opens_rocksdb_with_the_configured_memtables_and_block_cache(tmp_path: Path) -> None:
    settings = Settings(arrears_store="rocksdb", arrears_data_dir=tmp_path, arrears_rocksdb_write_buffer_mb=8,
                        arrears_rocksdb_block_cache_mb=32)
    worker = build_app(settings, web_port=6166)
    store = worker.app.tables["loans"].data  # the store Faust opens each partition's database with
    options = store.rocksdb_options
    assert (options.write_buffer_size, options.max_write_buffer_number, options.block_cache_size) == (
        8 * MB, 2, 32 * MB)

