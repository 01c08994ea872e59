"""Ingest end to end: reconciliation, lineage across blocks, fingerprints, pseudonyms, formats."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretBytes

from shopseq.errors import ConfigError, InputError
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.store import Store
from shopseq.synthetic import GeneratorConfig, generate_events, write_events

KEY = b"k" * 32


def _dirty_log(tmp_path: Path, suffix: str, n_events: int = 20_000) -> tuple[Path, object]:
    config = GeneratorConfig(
        n_events=n_events, n_days=20, seed=3, dirty_fraction=0.01, duplicate_fraction=0.01
    )
    path = tmp_path / f"events{suffix}"
    report = write_events(generate_events(config), path, config)
    return path, report


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".csv.zst", ".jsonl", ".parquet"])
def test_counts_reconcile_and_every_planted_defect_is_quarantined_on_its_line(
    store: Store, tmp_path: Path, suffix: str
) -> None:
    path, planted = _dirty_log(tmp_path, suffix)
    # A small block size forces many batches, so line numbers must survive block boundaries.
    config = IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"], block_bytes=64 << 10)
    report = ingest_files([path], config, store)
    file = report.files[0]
    assert file.rows_read == planted.n_rows_written
    assert file.rows_read == file.rows_accepted + file.rows_quarantined
    expected = {kind: n for kind, n in planted.defects.items() if n}
    by_reason = dict(file.by_reason)
    # The generator's non_numeric_price and negative_price map to our two price reasons.
    assert by_reason == expected
    first_data_line = 1 if suffix in (".parquet", ".jsonl") else 2
    planted_lines = np.sort(np.concatenate(list(planted.defect_rows.values()))) + first_data_line
    quarantined = store.sql("SELECT source_row FROM quarantine ORDER BY 1").column(0).to_numpy()
    np.testing.assert_array_equal(quarantined, planted_lines)
    events = store.sql("SELECT count(*) AS n FROM events").column(0)[0].as_py()
    assert events == file.rows_accepted


def test_reingesting_the_same_file_adds_nothing(store: Store, tmp_path: Path) -> None:
    path, _ = _dirty_log(tmp_path, ".csv", n_events=2_000)
    config = IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"])
    first = ingest_files([path], config, store)
    again = ingest_files([path], config, store)
    copy = tmp_path / "copy.csv"
    copy.write_bytes(path.read_bytes())
    renamed = ingest_files([copy], config, store)
    assert not first.files[0].already_ingested
    assert again.files[0].already_ingested and renamed.files[0].already_ingested
    n = store.sql("SELECT count(*) FROM events").column(0)[0].as_py()
    assert n == first.rows_accepted
    assert store.sql("SELECT count(*) FROM source_files").column(0)[0].as_py() == 1


def test_pseudonymized_ingest_stores_keyed_hashes_and_never_the_key(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        "user_id,item_id,action,ts\nalice,i1,view,2024-01-01 10:00:00\n"
        "alice,i2,view,2024-01-01 10:01:00\nbob,i1,view,2024-01-01 10:02:00\n"
        "carol,i1,teleport,2024-01-01 10:03:00\n"
    )
    config = IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"], pseudonymize_key=SecretBytes(KEY))
    ingest_files([path], config, store)
    users = store.sql("SELECT user_id FROM events ORDER BY source_row").column(0).to_pylist()
    expected = hmac.new(KEY, b"alice", hashlib.sha256).hexdigest()[:32]
    assert users[0] == users[1] == expected
    assert users[2] != expected and len(users[2]) == 32
    dump = "\n".join(
        str(r)
        for t in ("events", "quarantine", "source_files")
        for r in store.sql(f"SELECT * FROM {t}").to_pylist()
    )
    for secret in ("alice", "bob", "carol", KEY.decode()):
        assert secret not in dump


def test_short_pseudonym_key_is_rejected() -> None:
    from shopseq.ingest.pseudonymize import Pseudonymizer

    with pytest.raises(ConfigError, match="at least 16 bytes; got 3"):
        Pseudonymizer(b"abc")


def test_missing_file_is_an_input_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.csv: no such file"):
        ingest_files(
            [tmp_path / "nope.csv"], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store
        )
