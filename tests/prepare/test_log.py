"""prepare_log: every run's counts are stored, and read back only while they describe the tables."""

from __future__ import annotations

from events_factory import load_events

from shopseq.prepare import DedupeConfig, PrepareConfig, prepare_events
from shopseq.prepare.dedupe import drop_exact_duplicates
from shopseq.prepare.log import PREPARE_LOG_TABLE, latest_prepare_counts
from shopseq.prepare.profile import profile_store
from shopseq.store import Store

ROWS = [
    ("u1", "i1", "view", 0),
    ("u1", "i1", "view", 0),  # an exact duplicate
    ("u1", "i1", "view", 1),  # a repeat within 5 s
    ("u2", "i2", "cart", 100, None, 3.0),
    ("u2", "i2", "cart", 100, None, 3.0),  # another duplicate
    ("u3", "i3", "purchase", 5000, "c1", 2.0, 1),
]


def _recounted_duplicates(store: Store) -> int:
    raw = store.table("events")
    return int(raw.count().execute()) - int(drop_exact_duplicates(raw).count().execute())


def test_each_run_appends_its_counts_and_the_latest_is_read_back(store: Store) -> None:
    load_events(store, ROWS)
    first = prepare_events(store, PrepareConfig())
    second = prepare_events(store, PrepareConfig(dedupe=DedupeConfig(repeat_window_seconds=5)))
    assert int(store.table(PREPARE_LOG_TABLE).count().execute()) == 2
    counts = latest_prepare_counts(store, second.rows_in, second.rows_out)
    assert counts is not None
    got = (counts.rows_in, counts.exact_duplicates, counts.repeats, counts.sessions)
    assert got == (second.rows_in, second.exact_duplicates, second.repeats, second.sessions)
    assert counts.rows_out == second.rows_out == first.rows_out - 1  # the repeat went
    assert counts.filled == second.filled
    assert second.exact_duplicates == 2 == _recounted_duplicates(store)


def test_profile_reads_the_duplicates_from_the_log_and_recounts_when_it_is_stale(
    store: Store,
) -> None:
    load_events(store, ROWS)
    prepare_events(store, PrepareConfig())
    assert profile_store(store).exact_duplicates == 2
    # Change the logged figure: the profile must be reading it, not recounting.
    assert store.connection is not None
    store.connection.execute(f"UPDATE {PREPARE_LOG_TABLE} SET exact_duplicates = 7")
    assert profile_store(store).exact_duplicates == 7
    # A later ingest: the log no longer describes the events, so the profile recounts.
    load_events(store, [("u4", "i4", "view", 9000), ("u4", "i4", "view", 9000)])
    assert latest_prepare_counts(store, 8, 4) is None
    assert profile_store(store).exact_duplicates == 3 == _recounted_duplicates(store)


def test_stores_prepared_before_the_log_existed_are_recounted(store: Store) -> None:
    load_events(store, ROWS)
    prepare_events(store, PrepareConfig())
    store.backend.drop_table(PREPARE_LOG_TABLE)
    assert latest_prepare_counts(store, 6, 4) is None
    assert profile_store(store).exact_duplicates == 2
