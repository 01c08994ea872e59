"""Every dataset in ../shared/data ingests with its layout; counts match the data's README."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.prepare import PrepareConfig, prepare_events
from shopseq.sequences import SequenceConfig, fetch_events, leave_last_out
from shopseq.store import open_store

pytestmark = pytest.mark.realdata

# (layout, file, rows read, rows accepted) — rows from ../shared/data/README.md
DATASETS = [
    ("taobao", "taobao-userbehavior/UserBehavior_timeslice_110k.csv", 110_300, 110_300),
    ("taobao", "taobao-userbehavior/UserBehavior_head_users.csv", 4_321, 4_321),
    ("retailrocket-sessions", "retailrocket/sample_retailrocket.csv", 10_080, 10_080),
    ("rees46", "rees46-multi-category-store/2019-Oct_first17434rows.csv", 17_434, 17_434),
    ("diginetica-views", "diginetica/sample_train-item-views.csv", 12_391, 12_391),
    ("diginetica-purchases", "diginetica/train-purchases.csv", 18_025, 18_025),
    ("yoochoose-clicks", "yoochoose/sample_yoochoose.dat", 1_913, 1_913),
    ("session-rec", "yoochoose/yoochoose-clicks-100k_train_full.txt", 70_278, 70_278),
    ("session-rec", "yoochoose/yoochoose-clicks-100k_test.txt", 13_568, 13_568),
    ("online-retail", "online-retail/online_retail_cleaned_531k.parquet", 531_282, 531_282),
    # 135,080 rows without a customer are quarantined; returns (negative quantity) are kept.
    (
        "online-retail-no-invoice",
        "online-retail/online_retail_541k_no_invoice_stockcode.parquet",
        541_909,
        # 397,924 sales + 8,905 returns (negative quantity with a customer id: counted with
        # pyarrow on the file; the 1,719 returns without a customer are quarantined, as sales are).
        406_829,
    ),
    ("cdnow", "cdnow/CDNOW_master.txt", 69_659, 69_659),
    ("cdnow-sample", "cdnow/CDNOW_sample.txt", 6_919, 6_919),
    ("user-item-lines", "sequential-benchmarks/sasrec/Video.txt", 287_107, 287_107),
    ("user-item-lines", "sequential-benchmarks/bert4rec/beauty.txt", 353_962, 353_962),
]


@pytest.mark.parametrize(
    ("layout", "name", "read", "accepted"), DATASETS, ids=[d[1].split("/")[-1] for d in DATASETS]
)
def test_real_dataset_ingests_and_prepares(
    shared_data: Path, layout: str, name: str, read: int, accepted: int
) -> None:
    with open_store(None, threads=2) as store:
        report = ingest_files(
            [shared_data / name], IngestConfig(layout=BUILTIN_LAYOUTS[layout]), store
        )
        assert report.rows_read == read
        assert report.rows_accepted == accepted
        assert report.rows_read == report.rows_accepted + report.rows_quarantined
        prepared = prepare_events(store, PrepareConfig())
        assert prepared.rows_out + prepared.exact_duplicates + prepared.repeats == accepted
        split = leave_last_out(fetch_events(store.table("events_prepared"), SequenceConfig()))
        assert split.train.n_events + len(split.valid) + len(split.test) == prepared.rows_out


def test_taobao_profile_matches_the_published_counts(shared_data: Path) -> None:
    path = shared_data / "taobao-userbehavior/UserBehavior_timeslice_110k.csv"
    with open_store(None) as store:
        ingest_files([path], IngestConfig(layout=BUILTIN_LAYOUTS["taobao"]), store)
        rows = store.sql("SELECT action, count(*) AS n FROM events GROUP BY 1").to_pylist()
        counts = {r["action"]: r["n"] for r in rows}
        users = store.sql("SELECT count(DISTINCT user_id) FROM events").column(0)[0].as_py()
    assert counts == {"view": 98_361, "cart": 6_063, "favorite": 3_383, "purchase": 2_493}
    assert users == 66_454
