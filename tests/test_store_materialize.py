"""Store.materialize on DuckDB: one CREATE [TEMP] TABLE AS, replacing a table atomically."""

from __future__ import annotations

from pathlib import Path

import duckdb
import ibis
import pytest

from shopseq.store import open_store


def _numbers(n: int) -> ibis.Table:
    return ibis.memtable({"x": list(range(n)), "label": [str(i) for i in range(n)]})


def test_a_stored_table_is_replaced_and_kept_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    with open_store(path) as store:
        store.materialize("t", _numbers(3))
        table = store.materialize("t", _numbers(5).filter(lambda t: t.x >= 1))
        assert sorted(table.x.to_pyarrow().to_pylist()) == [1, 2, 3, 4]
    with open_store(path, read_only=True) as store:
        assert store.table("t").count().execute() == 4


def test_a_temporary_table_is_seen_in_the_session_only(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    with open_store(path) as store:
        table = store.materialize("_scratch", _numbers(4), temp=True)
        assert table.count().execute() == 4
        assert store.has_table("_scratch")
        store.materialize("_scratch", _numbers(2), temp=True)  # replaced, not appended
        assert store.table("_scratch").count().execute() == 2
    with open_store(path, read_only=True) as store:
        assert not store.has_table("_scratch")


def test_a_failing_query_leaves_the_old_table_whole(tmp_path: Path) -> None:
    with open_store(tmp_path / "store.duckdb") as store:
        store.materialize("t", _numbers(3))
        words = ibis.memtable({"x": ["1", "two"]})
        with pytest.raises(duckdb.ConversionException):
            store.materialize("t", words.mutate(x=words.x.cast("int64")))
        assert sorted(store.table("t").x.to_pyarrow().to_pylist()) == [0, 1, 2]
