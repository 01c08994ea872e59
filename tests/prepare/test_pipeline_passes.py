"""prepare_events in few passes: the same table and the same counts as running every step apart.

The reference below materialises each step and counts it (what ``prepare_events`` did before it
counted with flags and aggregates): on generated logs full of duplicates, repeats, bots, ties and
missing values, the report and ``events_prepared`` must come out exactly the same.
"""

from __future__ import annotations

import duckdb
import ibis
import pytest
from events_factory import event_rows, load_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopseq.prepare import (
    PREPARED_TABLE,
    BotFilterConfig,
    DedupeConfig,
    PrepareConfig,
    SessionizeConfig,
    bot_users,
    drop_bot_users,
    drop_exact_duplicates,
    drop_repeats,
    fill_missing,
    prepare_events,
    prepare_table,
    sessionize,
)
from shopseq.prepare.dedupe import drop_exact_duplicates_by_digest
from shopseq.schema import CATEGORY_ID, PRICE, QUANTITY, SESSION_ID, STORED_SCHEMA
from shopseq.store import Store, open_store

ORDER = ("user_id", "ts", "source_file_id", "source_row")
FILLED = (CATEGORY_ID, PRICE, QUANTITY)


def step_by_step(store: Store, config: PrepareConfig) -> dict[str, object]:
    """Every step materialised and counted on its own (the reference)."""
    events = store.table("events")
    rows_in = int(events.count().execute())
    exact = store.materialize("_ref_exact", drop_exact_duplicates(events))
    repeats = store.materialize("_ref_repeats", drop_repeats(exact, config.dedupe))
    clean, n_bots = repeats, 0
    if config.bots.max_events_per_minute is not None:
        bots = store.materialize("_ref_bots", bot_users(repeats, config.bots))
        n_bots = int(bots.count().execute())
        clean = store.materialize("_ref_clean", drop_bot_users(repeats, bots))
    filled = store.materialize("_ref_filled", fill_missing(clean, config.missing))
    final = sessionize(filled, config.sessionize)
    n = {name: int(t.count().execute()) for name, t in [("exact", exact), ("repeats", repeats)]}
    n["clean"] = int(clean.count().execute())

    def nulls(table, column):
        return int(table[column].isnull().sum().execute() or 0)

    return {
        "rows_in": rows_in,
        "exact_duplicates": rows_in - n["exact"],
        "repeats": n["exact"] - n["repeats"],
        "bot_users": n_bots,
        "bot_events": n["repeats"] - n["clean"],
        "filled": {c: nulls(clean, c) - nulls(filled, c) for c in FILLED},
        "sessions": int(final[SESSION_ID].nunique().execute()),
        "rows_out": int(final.count().execute()),
        "table": sorted(final.to_pyarrow().to_pylist(), key=lambda r: [r[c] for c in ORDER]),
    }


def _report(store: Store, config: PrepareConfig) -> dict[str, object]:
    report = prepare_events(store, config)
    stored = store.table(PREPARED_TABLE).to_pyarrow()
    return {
        "rows_in": report.rows_in,
        "exact_duplicates": report.exact_duplicates,
        "repeats": report.repeats,
        "bot_users": report.bot_users,
        "bot_events": report.bot_events,
        "filled": report.filled,
        "sessions": report.sessions,
        "rows_out": report.rows_out,
        "table": stored.to_pylist(),  # as stored: must already be in (user, ts, lineage) order
    }


row = st.tuples(
    st.sampled_from(["u1", "u2", "u3"]),
    st.sampled_from(["i1", "i2", "i3", "i4"]),
    st.sampled_from(["view", "cart", "purchase"]),
    st.integers(min_value=0, max_value=400),  # many ties, sub-minute bursts, gaps
    st.sampled_from([None, "c1", "c2"]),
    st.sampled_from([None, 1.0, 2.5, 4.0]),
    st.sampled_from([None, 1, 3]),
)
configs = st.builds(
    PrepareConfig,
    dedupe=st.builds(DedupeConfig, repeat_window_seconds=st.sampled_from([0, 1, 5, 60])),
    bots=st.builds(BotFilterConfig, max_events_per_minute=st.sampled_from([None, 2, 4])),
    sessionize=st.builds(SessionizeConfig, gap_seconds=st.sampled_from([30, 120, 1800])),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(row, max_size=40),
    copies=st.lists(st.integers(min_value=0, max_value=39), max_size=10),
    config=configs,
)
def test_report_and_table_equal_the_step_by_step_reference(
    rows: list[tuple], copies: list[int], config: PrepareConfig
) -> None:
    rows = rows + [rows[i] for i in copies if i < len(rows)]  # exact duplicates
    with open_store(None, threads=1) as reference_store, open_store(None, threads=1) as store:
        load_events(reference_store, rows)
        load_events(store, rows)
        want = step_by_step(reference_store, config)
        got = _report(store, config)
    assert got == want


def test_only_the_prepared_table_is_left_behind(store: Store) -> None:
    load_events(store, [("u1", "i1", "view", 0), ("u1", "i1", "view", 0), ("bot", "i1", "view", 1)])
    load_events(store, [("bot", f"i{k}", "view", 2 + k) for k in range(5)])
    config = PrepareConfig(
        dedupe=DedupeConfig(repeat_window_seconds=5), bots=BotFilterConfig(max_events_per_minute=3)
    )
    report = prepare_events(store, config)
    assert (report.exact_duplicates, report.bot_users, report.rows_out) == (1, 1, 1)
    assert store.connection is not None
    tables = store.connection.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    left = sorted(t for (t,) in tables)
    # prepare_log: the run's counts, kept for later stages (prepare/log.py).
    assert left == ["events", "events_prepared", "prepare_log", "quarantine", "source_files"]


def test_prepared_table_is_what_prepare_table_computes(store: Store) -> None:
    rows = [(f"u{k % 7}", f"i{k % 5}", "view", 37 * k % 5000, None, None) for k in range(300)]
    rows += rows[:20]
    load_events(store, rows)
    config = PrepareConfig()
    want = sorted(
        prepare_table(store.table("events"), config).to_pyarrow().to_pylist(),
        key=lambda r: [r[c] for c in ORDER],
    )
    prepare_events(store, config)
    stored = store.table(PREPARED_TABLE)
    assert stored.schema().names == tuple(STORED_SCHEMA.names)
    assert stored.to_pyarrow().to_pylist() == want


def test_engines_without_temporary_tables_get_the_same_report() -> None:
    """A store without the raw DuckDB connection (as on Spark) materialises stored tables."""

    rows = [("u1", "i1", "view", 0), ("u1", "i1", "view", 0), ("u1", "i1", "view", 1)]
    rows += [("u2", "i2", "cart", 5000 + k, None, 3.0) for k in range(4)]
    config = PrepareConfig(dedupe=DedupeConfig(repeat_window_seconds=2))
    with open_store(None, threads=1) as store:
        load_events(store, rows)
        want = step_by_step(store, config)
    plain = Store(path=None, backend=ibis.duckdb.connect(threads=1), connection=None)
    plain.write_arrow("events", event_rows(rows))
    assert _report(plain, config) == want
    assert sorted(plain.backend.list_tables()) == ["events", "events_prepared", "prepare_log"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(row, max_size=40),
    copies=st.lists(st.integers(min_value=0, max_value=39), max_size=10),
)
def test_the_digest_dedupe_keeps_exactly_the_rows_of_the_full_aggregation(
    rows: list[tuple], copies: list[int]
) -> None:
    rows = rows + [rows[i] for i in copies if i < len(rows)]
    with open_store(None, threads=1) as store:
        load_events(store, rows)
        events = store.table("events")
        key = list(events.columns)
        full = drop_exact_duplicates(events).to_pyarrow().to_pylist()
        digest = drop_exact_duplicates_by_digest(events).to_pyarrow().to_pylist()
    assert sorted(digest, key=lambda r: [str(r[c]) for c in key]) == sorted(
        full, key=lambda r: [str(r[c]) for c in key]
    )


def test_out_of_memory_in_the_full_aggregation_falls_back_to_the_digest_dedupe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [(f"u{k % 7}", f"i{k % 5}", "view", 37 * k % 5000, None, None) for k in range(300)]
    rows += rows[:20]
    config = PrepareConfig(dedupe=DedupeConfig(repeat_window_seconds=5))
    with open_store(None, threads=1) as reference, open_store(None, threads=1) as store:
        load_events(reference, rows)
        load_events(store, rows)
        want = _report(reference, config)
        materialize, asked = Store.materialize, []

        def out_of_memory_once(
            self: Store, name: str, expr: ibis.Table, *, temp: bool = False
        ) -> ibis.Table:
            asked.append(name)
            if asked.count("_prep_deduped") == 1 and name == "_prep_deduped":
                raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block")
            return materialize(self, name, expr, temp=temp)

        monkeypatch.setattr(Store, "materialize", out_of_memory_once)
        got = _report(store, config)
    assert asked.count("_prep_deduped") == 2  # the full aggregation, then the digest way
    assert got == want and want["exact_duplicates"] == 20


def test_other_errors_of_the_dedupe_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(None, threads=1) as store:
        load_events(store, [("u1", "i1", "view", 0)])

        def broken(self: Store, name: str, expr: ibis.Table, *, temp: bool = False) -> ibis.Table:
            raise duckdb.IOException("disk full")

        monkeypatch.setattr(Store, "materialize", broken)
        with pytest.raises(duckdb.IOException, match="disk full"):
            prepare_events(store, PrepareConfig())
