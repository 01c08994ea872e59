"""A file is read block by block: a block's Arrow memory is freed before the file is committed.

Each file is one transaction; DuckDB (1.5) kept every Arrow table registered inside it alive until
the commit, so ingest's memory grew with the file (12.6 GB at 100 M events). Here the Arrow memory
still allocated is read after every block, inside the file's transaction.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.store import open_store
from shopseq.synthetic import GeneratorConfig, generate_events, write_events


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "staged"])
def test_arrow_memory_stays_within_a_few_blocks_while_a_file_is_ingested(
    tmp_path: Path, fused: bool
) -> None:
    config = GeneratorConfig(n_events=600_000, n_days=20, seed=3, dirty_fraction=0.01)
    path = tmp_path / "events.csv"
    written = write_events(generate_events(config), path, config)
    allocated: list[int] = []
    with open_store(tmp_path / "store.duckdb", threads=2) as store:
        report = ingest_files(
            [path],
            IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"], block_bytes=1 << 20, fused=fused),
            store,
            on_progress=lambda _path, _rows: allocated.append(pa.total_allocated_bytes()),
        )
    assert report.rows_read == written.n_rows_written
    assert len(allocated) >= 8, "the file must span several blocks for the check to mean anything"
    # Kept alive, the blocks of text would add up to about the file's size by its last block;
    # freed, at most the block in hand and the one read ahead are allocated.
    size = path.stat().st_size
    assert max(allocated) < size / 2, (allocated, size)
