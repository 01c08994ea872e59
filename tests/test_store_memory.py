"""Store.memory_capped / checkpoint, and ingest running under its memory cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.store import Store, open_store
from shopseq.synthetic import GeneratorConfig, generate_events, write_events


def _limit(store: Store) -> str:
    assert store.connection is not None
    row = store.connection.execute("SELECT current_setting('memory_limit')").fetchone()
    assert row is not None
    return str(row[0])


def test_the_cap_lowers_the_limit_inside_and_restores_it_after(tmp_path: Path) -> None:
    with open_store(tmp_path / "s.duckdb", memory_limit="2GB") as store:
        before = _limit(store)
        with store.memory_capped(256):
            assert _limit(store) == "244.1 MiB"  # 256 * 10^6 bytes
        assert _limit(store) == before == "1.8 GiB"


def test_the_cap_never_raises_a_lower_limit(tmp_path: Path) -> None:
    with open_store(tmp_path / "s.duckdb", memory_limit="100MB") as store:
        with store.memory_capped(256):
            assert _limit(store) == "95.3 MiB"
        assert _limit(store) == "95.3 MiB"


def test_the_limit_is_restored_when_the_block_fails(tmp_path: Path) -> None:
    with open_store(tmp_path / "s.duckdb", memory_limit="2GB") as store:
        with pytest.raises(RuntimeError), store.memory_capped(256):
            raise RuntimeError("boom")
        assert _limit(store) == "1.8 GiB"


def test_checkpoint_beside_an_open_transaction_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with open_store(path) as store:
        assert store.connection is not None
        other = store.connection.cursor()
        other.execute("BEGIN TRANSACTION")
        other.execute("INSERT INTO quarantine VALUES (1, 1, 'c', NULL, 'r', 'm')")
        store.checkpoint()
        other.execute("COMMIT")
    with open_store(path, read_only=True) as store:
        assert store.table("quarantine").count().to_pyarrow().as_py() == 1


def test_ingest_leaves_the_store_limit_as_it_found_it(tmp_path: Path) -> None:
    config = GeneratorConfig(n_events=3000, n_days=5, seed=1)
    log = tmp_path / "events.csv"
    write_events(generate_events(config), log, config)
    with open_store(tmp_path / "s.duckdb", memory_limit="2GB") as store:
        report = ingest_files([log], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store)
        assert report.files[0].rows_accepted > 0
        assert _limit(store) == "1.8 GiB"


def test_a_file_the_cap_is_too_small_for_is_ingested_again_uncapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import duckdb

    from shopseq.ingest import load

    config = GeneratorConfig(n_events=3000, n_days=5, seed=1)
    log = tmp_path / "events.csv"
    write_events(generate_events(config), log, config)
    real = load._ingest_one
    limits: list[str] = []

    def short_of_memory_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        store = args[3]
        limits.append(_limit(store))
        if len(limits) == 1:  # as DuckDB fails inside the file's transaction: nothing written
            raise duckdb.OutOfMemoryException("could not allocate block")
        return real(*args, **kwargs)

    monkeypatch.setattr(load, "_ingest_one", short_of_memory_once)
    with open_store(tmp_path / "s.duckdb", memory_limit="2GB") as store:
        report = ingest_files([log], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store)
        assert limits == ["244.1 MiB", "1.8 GiB"]  # under the cap, then the store's own limit
        accepted = report.files[0].rows_accepted
        assert accepted > 0 and not report.files[0].already_ingested
        assert store.table("events").count().to_pyarrow().as_py() == accepted
        assert _limit(store) == "1.8 GiB"
