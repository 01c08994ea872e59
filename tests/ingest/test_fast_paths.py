"""The fused paths (rules inside the insert; DuckDB's own Parquet reader) against the staged one.

``IngestConfig(fused=False)`` runs the path the guarantees were first built on (a temporary table
per block, every file through PyArrow). On logs with planted defects both must store the same
events with the same lineage and the same quarantine rows (line, column, raw value, reason,
message), and report the same counts.
"""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shopseq.errors import BadRowError
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.ingest.native import native_parquet
from shopseq.store import open_store
from shopseq.synthetic import GeneratorConfig, generate_events, write_events

LAYOUT = BUILTIN_LAYOUTS["shopseq"]


def _both(path: Path, **options: object) -> list[tuple[object, list[dict], list[dict]]]:
    """(file report, events, quarantine) of the fused and of the staged path."""
    found = []
    for fused in (True, False):
        config = IngestConfig(layout=LAYOUT, fused=fused, **options)  # type: ignore[arg-type]
        with open_store(None, threads=2) as store:
            file = ingest_files([path], config, store).files[0]
            events = store.sql("SELECT * FROM events ORDER BY source_row").to_pylist()
            quarantine = store.sql(
                "SELECT * FROM quarantine ORDER BY source_row, column_name"
            ).to_pylist()
        found.append((file, events, quarantine))
    return found


def _assert_same(path: Path, **options: object) -> tuple[int, int]:
    (fused, f_events, f_quarantine), (staged, s_events, s_quarantine) = _both(path, **options)
    assert (fused.rows_read, fused.rows_accepted, fused.rows_quarantined, fused.lines) == (
        staged.rows_read,
        staged.rows_accepted,
        staged.rows_quarantined,
        staged.lines,
    )
    assert fused.by_reason == staged.by_reason
    assert f_events == s_events
    assert f_quarantine == s_quarantine
    return fused.rows_accepted, fused.rows_quarantined


def _dirty(tmp_path: Path, suffix: str) -> tuple[Path, object]:
    config = GeneratorConfig(
        n_events=30_000, n_days=20, seed=5, dirty_fraction=0.02, duplicate_fraction=0.01
    )
    path = tmp_path / f"events{suffix}"
    return path, write_events(generate_events(config), path, config)


@pytest.mark.parametrize("suffix", [".csv", ".csv.zst", ".jsonl", ".parquet"])
@pytest.mark.parametrize("block_bytes", [64 << 10, 16 << 20])
def test_fused_and_staged_paths_store_the_same_rows_and_quarantine(
    tmp_path: Path, suffix: str, block_bytes: int
) -> None:
    path, planted = _dirty(tmp_path, suffix)
    accepted, quarantined = _assert_same(path, block_bytes=block_bytes)
    assert quarantined == sum(planted.defects.values()) > 0  # type: ignore[attr-defined]
    assert accepted + quarantined == planted.n_rows_written  # type: ignore[attr-defined]


def test_a_generated_parquet_file_takes_duckdbs_own_reader(tmp_path: Path) -> None:
    path, _ = _dirty(tmp_path, ".parquet")
    native = native_parquet(path, LAYOUT)
    assert native is not None
    assert native.rows == pq.ParquetFile(path).metadata.num_rows
    assert "read_parquet" in native.relation


def _parquet(tmp_path: Path, columns: dict[str, pa.Array], name: str = "t.parquet") -> Path:
    path = tmp_path / name
    pq.write_table(pa.table(columns), path)
    return path


def test_plain_parquet_edge_cases_match_the_pyarrow_reader(tmp_path: Path) -> None:
    n = 12
    users = [f"u{i}" for i in range(n)]
    users[1] = "u\n1"  # a control character in an id: bad_id, found by the SQL on this path
    users[2] = None  # type: ignore[call-overload]
    users[3] = "  "  # blank: missing
    users[4] = "bad\x00id"
    items = [f" i{i} " for i in range(n)]  # trimmed
    items[5] = "i\t5"
    actions = ["view", "CART", "teleport", "purchase"] * 3
    ts = pa.array(
        [1_704_067_200_000_000 + i * 1_000_000 for i in range(n)], pa.timestamp("us")
    ).to_pylist()
    ts[6] = None
    prices = [1.5, math.nan, -2.0, 3.0, None, 0.0, 1.0, 2.0, math.inf, 4.0, 5.0, 6.0]
    path = _parquet(
        tmp_path,
        {
            "user_id": pa.array(users, pa.string()),
            "item_id": pa.array(items, pa.large_string()),
            "action": pa.array(actions),
            "ts": pa.array(ts, pa.timestamp("us")),
            "price": pa.array(prices, pa.float64()),
            "quantity": pa.array([1, 2, 0, 1, -1, 3, 1, 1, 1, 1, 1, 1], pa.int64()),
        },
    )
    assert native_parquet(path, LAYOUT) is not None
    _, quarantined = _assert_same(path)
    assert quarantined >= 8


def test_integer_ids_in_parquet_match_the_pyarrow_reader(tmp_path: Path) -> None:
    path = _parquet(
        tmp_path,
        {
            "user_id": pa.array([1, -2, 3, None], pa.int64()),
            "item_id": pa.array([10, 20, 30, 40], pa.uint32()),
            "action": pa.array(["view"] * 4),
            "ts": pa.array(["2024-01-01 10:00:00", "2024-01-01T10:00:00Z", "x", None]),
        },
    )
    assert native_parquet(path, LAYOUT) is not None
    assert _assert_same(path) == (2, 2)


def test_files_that_are_not_plain_take_the_pyarrow_reader(tmp_path: Path) -> None:
    base = {
        "user_id": pa.array(["a", "b"]),
        "item_id": pa.array(["x", "y"]),
        "action": pa.array(["view", "view"]),
    }
    ns = _parquet(tmp_path, {**base, "ts": pa.array([1, 2], pa.timestamp("ns"))}, "ns.parquet")
    float_ids = _parquet(
        tmp_path,
        {**base, "user_id": pa.array([1.0, 2.5]), "ts": pa.array(["2024-01-01"] * 2)},
        "f.parquet",
    )
    for path in (ns, float_ids):
        assert native_parquet(path, LAYOUT) is None
        _assert_same(path)


def test_strict_mode_names_the_same_first_bad_row_on_both_paths(tmp_path: Path) -> None:
    for suffix in (".csv", ".parquet"):
        path, _ = _dirty(tmp_path, suffix)
        messages = []
        for fused in (True, False):
            config = IngestConfig(layout=LAYOUT, fused=fused, strict=True, block_bytes=64 << 10)
            with open_store(None, threads=2) as store, pytest.raises(BadRowError) as caught:
                ingest_files([path], config, store)
            messages.append(str(caught.value))
        assert messages[0] == messages[1]
        assert path.name in messages[0]
