"""Every table stage gives the same results on DuckDB and on Spark (local[2], one shared session).

~10 k generated events plus edge cases (exact duplicates, sub-second repeats, ties, nulls) are
written as one raw CSV log with hostile rows planted in it (bad and offset timestamps, unknown
actions, negative and non-numeric prices, blanks, Unicode spaces, control characters, quoted
fields, wrong field counts). Both engines ingest it (DuckDB's ``ingest_files``; Spark's
``ingest_on_spark``, the same rules compiled to Spark SQL), and the accepted events and the
quarantine rows must be identical; then prepare, sequences and splits, per-user features, every
analysis and the forecast series run on what each engine ingested. On Spark, results land as
Parquet partitioned by date, and DuckDB reads them back on one machine.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from shopseq.analyze import (
    FunnelConfig,
    PathsConfig,
    PatternConfig,
    RetentionConfig,
    RuleConfig,
    SegmentConfig,
    TransitionConfig,
    association_rules,
    funnel,
    mine_patterns,
    paths,
    retention,
    segment_users,
    transitions,
)
from shopseq.analyze.hmm import encode_symbols
from shopseq.cli import run
from shopseq.forecast.series import Freq, Metric, SeriesConfig, build_series
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, IngestReport, ingest_files
from shopseq.ingest.spark import ingest_on_spark
from shopseq.prepare import (
    PREPARED_TABLE,
    BotFilterConfig,
    DedupeConfig,
    PrepareConfig,
    prepare_events,
    prepare_table,
)
from shopseq.runs.engine import SparkConfig, spark_session
from shopseq.schema import EVENT_COLUMNS, STORED_SCHEMA
from shopseq.sequences import SequenceConfig, fetch_events, leave_last_out, time_cut, user_features
from shopseq.store import PARTITION_COLUMN, Store, open_spark_store, open_store
from shopseq.synthetic import GeneratorConfig, generate_events

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    # All Spark tests on one xdist worker (--dist loadgroup): one session for all of them.
    pytest.mark.xdist_group("spark"),
    # py4j leaves its gateway sockets to the garbage collector.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

CONFIG = PrepareConfig(
    dedupe=DedupeConfig(repeat_window_seconds=1),
    bots=BotFilterConfig(max_events_per_minute=40),
)


def _edge_case_events() -> pa.Table:
    """~10 k generated events plus duplicates, sub-second gaps, ties and nulls."""
    events = generate_events(GeneratorConfig(n_events=10_000, n_days=14, seed=11))
    n = events.num_rows
    first = events.slice(0, 200)
    # Exact duplicates, the same events 400 ms later (a sub-second repeat), and a tie.
    later = pc.add(first.column("ts"), pa.scalar(timedelta(milliseconds=400)))
    shifted = first.set_column(3, first.schema.field("ts"), later.cast(pa.timestamp("us")))
    nulls = (
        first.slice(0, 50)
        .set_column(5, first.schema.field("category_id"), pa.nulls(50, pa.string()))
        .set_column(6, first.schema.field("price"), pa.nulls(50, pa.float64()))
    )
    rows = pa.concat_tables([events, first, shifted.cast(events.schema), nulls])
    lineage = {
        "source_file_id": pa.array([1] * rows.num_rows, pa.int32()),
        "source_row": pa.array(range(2, rows.num_rows + 2), pa.int64()),
    }
    for name, column in lineage.items():
        rows = rows.append_column(name, column)
    assert rows.num_rows == n + 450
    return rows.cast(STORED_SCHEMA)


#: Hostile rows planted in the log (every 37th line from line 40 on), each named by what it tests.
BAD_ROWS: list[tuple[str, str]] = [
    ("bad timestamp", "u1,i1,view,not-a-date,s1,c1,1.5,1,"),
    ("impossible date", "u1,i1,view,2024-02-30 10:00:00,s1,c1,1.5,1,"),
    ("hour 25", "u1,i1,view,2024-01-05 25:00:00,s1,c1,1.5,1,"),
    ("year only (epoch seconds: out of range)", "u1,i1,view,2024,s1,c1,1.5,1,"),
    ("epoch seconds far away", "u1,i1,view,99999999999999,s1,c1,1.5,1,"),
    ("offset beyond 14:00", "u1,i1,view,2024-01-05 10:00:00+15:00,s1,c1,1.5,1,"),
    ("a word DuckDB reads as a time", "u1,i1,view,epoch,s1,c1,1.5,1,"),
    ("offset", "u2,i2,view,2024-01-05 10:00:00+02:00,s2,c1,1.5,1,"),
    ("Z and T", "u2,i2,view,2024-01-05T10:00:00.5Z,s2,c1,1.5,1,"),
    ("epoch seconds in range", "u2,i2,view,1704448800,s2,c1,1.5,1,"),
    ("unknown action", "u1,i1,click,2024-01-05 10:00:00,s1,c1,1.5,1,"),
    ("action in capitals", "u2,i3,VIEW,2024-01-05 10:00:01,s2,c1,2,1,"),
    ("negative price", "u1,i1,view,2024-01-05 10:00:00,s1,c1,-1.5,1,"),
    ("non-numeric price", "u1,i1,view,2024-01-05 10:00:00,s1,c1,abc,1,"),
    ("infinite price", "u1,i1,view,2024-01-05 10:00:00,s1,c1,inf,1,"),
    ("price with a type suffix (Java reads it)", "u1,i1,view,2024-01-05 10:00:00,s1,c1,1.5d,1,"),
    ("price with an exponent", "u2,i4,cart,2024-01-05 10:00:02,s2,c1,1e1,2,"),
    ("zero quantity", "u1,i1,cart,2024-01-05 10:00:00,s1,c1,1.5,0,"),
    ("fractional quantity", "u1,i1,cart,2024-01-05 10:00:00,s1,c1,1.5,1.5,"),
    ("blank user", ",i1,view,2024-01-05 10:00:00,s1,c1,1.5,1,"),
    ("blank item (spaces)", "u1,   ,view,2024-01-05 10:00:00,s1,c1,1.5,1,"),
    ("blank timestamp", "u1,i1,view,,s1,c1,1.5,1,"),
    ("ids padded by Unicode spaces", "\u00a0u3\u3000,i5,view,2024-01-05 10:00:03,s3,c1,,,"),
    ("control character in a user", "u\x01x,i1,view,2024-01-05 10:00:00,s1,c1,1.5,1,"),
    ("tab in a quoted item", 'u1,"i\t1",view,2024-01-05 10:00:00,s1,c1,1.5,1,'),
    ("quoted item with a delimiter", 'u4,"i,6",view,2024-01-05 10:00:04,s4,c1,3,1,'),
    ("doubled quotes in a query", 'u4,i6,search,2024-01-05 10:00:05,s4,c1,,,"say ""hi"""'),
    ("literal quote inside a field", 'u4,i7,view,2024-01-05 10:00:06,s4,c1,,,12" vinyl'),
    ("text after a closing quote", 'u1,"i1"x,view,2024-01-05 10:00:00,s1,c1,1.5,1,'),
    ("too few fields", "u1,i1,view"),
    ("too many fields", "u1,i1,view,2024-01-05 10:00:00,s1,c1,1.5,1,,extra"),
    ("empty line", ""),
    ("unterminated quote at the end of the file", 'u1,"i1,view,2024-01-05 10:00:00,s1,c1,1.5,1,'),
]
#: Ingest accepts the year 2024 of the generated log and the planted rows.
INGEST = IngestConfig(
    layout=BUILTIN_LAYOUTS["shopseq"], ts_min=datetime(2020, 1, 1), ts_max=datetime(2030, 1, 1)
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return repr(value) if isinstance(value, float) else str(value)


def _write_log(path: Path) -> int:
    """The edge-case events as a CSV log with ``BAD_ROWS`` planted; return its line count."""
    events = _edge_case_events().select(list(EVENT_COLUMNS)).to_pylist()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(EVENT_COLUMNS)
        lines = 1
        bad = iter(BAD_ROWS[:-1])
        for k, row in enumerate(events):
            if k >= 38 and k % 37 == 1:
                planted = next(bad, None)
                if planted is not None:
                    handle.write(planted[1] + "\n")
                    lines += 1
            writer.writerow([_cell(row[c]) for c in EVENT_COLUMNS])
            lines += 1
        handle.write(BAD_ROWS[-1][1] + "\n")  # the quote never closes: the file ends
        return lines + 1


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spark-output")


@pytest.fixture(scope="module")
def raw_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("raw") / "events.csv"
    _write_log(path)
    return path


@pytest.fixture(scope="module")
def ingested(
    raw_log: Path, output: Path
) -> Iterator[tuple[Store, IngestReport, Store, IngestReport]]:
    """The raw log ingested on DuckDB (in memory) and on Spark (Parquet under ``output``)."""
    pytest.importorskip("pyspark.sql", reason="pyspark is not installed (extra 'spark')")
    config = SparkConfig(
        master="local[2]",
        app_name="shopseq-tests",
        output=str(output),
        conf={"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"},
    )
    with (
        pytest.MonkeyPatch.context() as env,
        open_store(None, threads=2) as duck,
    ):
        # Spark's Python workers (quarantine messages) run this interpreter, as the CLI sets.
        env.setenv("PYSPARK_PYTHON", sys.executable)
        with spark_session(config) as session:
            on_duckdb = ingest_files([raw_log], INGEST, duck)
            spark = open_spark_store(session, output)
            on_spark = ingest_on_spark([str(raw_log)], INGEST, spark)
            yield duck, on_duckdb, spark, on_spark


@pytest.fixture(scope="module")
def duck(ingested: tuple[Store, IngestReport, Store, IngestReport]) -> Store:
    """The DuckDB store with the events DuckDB ingested."""
    return ingested[0]


@pytest.fixture(scope="module")
def spark(ingested: tuple[Store, IngestReport, Store, IngestReport]) -> Store:
    """The Spark store over ``output``, with the events Spark ingested."""
    return ingested[2]


@pytest.fixture(scope="module")
def reports(duck: Store, spark: Store) -> tuple[Any, Any]:
    """``prepare_events`` (the public path) on both engines."""
    return prepare_events(duck, CONFIG), prepare_events(spark, CONFIG)


def _canonical(table: pa.Table) -> list[dict]:
    rows = table.select([f.name for f in STORED_SCHEMA]).to_pylist()
    for row in rows:
        row["ts"] = row["ts"].replace(tzinfo=None) if row["ts"] else None
        if row["price"] is not None:
            row["price"] = round(row["price"], 9)
    return sorted(rows, key=lambda r: (r["source_file_id"], r["source_row"]))


def _rounded(value: Any) -> Any:
    """``value`` with floats rounded to 9 significant digits (last-bit summation noise)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _rounded(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    if isinstance(value, np.ndarray):
        return _rounded(value.tolist())
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if not math.isfinite(value) or value == 0 else float(f"{value:.9g}")
    return value


def _sorted_rows(table: pa.Table, key: str) -> list[dict]:
    return sorted(_rounded(table.to_pylist()), key=lambda r: str(r[key]))


def _quarantine(store: Store) -> list[dict]:
    rows = store.table("quarantine").to_pyarrow().to_pylist()
    return sorted(rows, key=lambda r: (r["source_file_id"], r["source_row"]))


def test_ingest_accepts_and_quarantines_the_same_rows(
    ingested: tuple[Store, IngestReport, Store, IngestReport], raw_log: Path
) -> None:
    duck, on_duckdb, spark, on_spark = ingested
    lines = raw_log.read_text(encoding="utf-8").count("\n")
    for report in (on_duckdb, on_spark):
        (file,) = report.files
        assert file.lines == lines
        assert file.rows_read == lines - 1 == file.rows_accepted + file.rows_quarantined
    a, b = on_duckdb.files[0], on_spark.files[0]
    assert (a.rows_read, a.rows_accepted, a.rows_quarantined) == (
        b.rows_read,
        b.rows_accepted,
        b.rows_quarantined,
    )
    assert a.by_reason == b.by_reason
    # Every kind of planted defect was quarantined (the comparison below is not vacuous).
    assert set(a.by_reason) == {
        "bad_id",
        "missing_field",
        "unknown_action",
        "bad_timestamp",
        "timestamp_out_of_range",
        "non_numeric_price",
        "negative_price",
        "bad_quantity",
        "wrong_column_count",
        "malformed_row",
        "unterminated_quote",
    }
    assert _canonical(duck.table("events").to_pyarrow()) == _canonical(
        spark.table("events").to_pyarrow()
    )
    on_duck_q, on_spark_q = _quarantine(duck), _quarantine(spark)
    assert len(on_duck_q) == a.rows_quarantined
    for x, y in zip(on_duck_q, on_spark_q, strict=True):
        if x["reason"] == "unterminated_quote":
            # Spark says why differently: it never joins lines (module docstring).
            x, y = dict(x, message=""), dict(y, message="")
        assert x == y
    # The accepted planted rows read alike too: offsets, 'Z', epoch seconds, capitals.
    accepted = {r["source_row"]: r for r in _canonical(spark.table("events").to_pyarrow())}
    texts = raw_log.read_text(encoding="utf-8").split("\n")
    offset_line = texts.index(BAD_ROWS[7][1]) + 1
    assert accepted[offset_line]["ts"] == datetime(2024, 1, 5, 8)


#: (ts, price, quantity) text the two engines must read alike (reason, column, value, result).
PROBES = [
    *[
        (ts, "1", "1")
        for ts in [
            "2024-01-05",
            "2024-1-5",
            "2024/01/05 10:00:00",
            "2024-01-05 10:00",
            "2024-01-05T10:00:00",
            "2024-01-05 10:00:00Z",
            "2024-01-05 10:00:00 UTC",
            "2024-01-05 10:00:00 utc",
            "2024-01-05 10:00:00UTC",
            "2024-01-05 10:00:00.1234567",
            "2024-01-05 10:00:00.",
            "2024-01-05 1:2:3",
            "2024-01-05 24:00:00",
            "2024-01-05 24:00:01",
            "2024-01-05 10:00:60",
            "2024-02-29 10:00:00",
            "2023-02-29 10:00:00",
            "2024-01-05 10:00:00+02",
            "2024-01-05 10:00:00+0200",
            "2024-01-05 10:00:00-05:30",
            "2024-01-05 10:00:00+02:00:30",
            "2024-01-05 10:00:00+14:00",
            "2024-01-05 10:00:00+14:01",
            "2024-01-05 10:00:00+2",
            "2024-01-05 10:00:00 +02:00",
            "2024-01-05\t10:00:00",
            "2024-01-05t10:00:00",
            "2024-01-05 10:00:00 Z",
            "2024-01-05 10",
            "2024",
            "2024-01",
            "20240105",
            "2024.01.05",
            "2024/01-05",
            "99999-12-31",
            "100000-01-01",
            "1704448800",
            "1704448800.5",
            "-1",
            "1e9",
            "1e30",
            "inf",
            "nan",
            "epoch",
            "today",
            "",
            "\u00a0\u20032024-01-05 10:00:00\u3000",
        ]
    ],
    *[
        ("2024-01-05 10:00:00", price, "1")
        for price in [
            "1.5",
            "+5",
            ".5",
            "5.",
            "-0",
            "1e3",
            "1E+3",
            "1_000",
            "1.5_5",
            "1_",
            "_1",
            "1__0",
            "0x10",
            "1,5",
            "1.5d",
            "1.5f",
            "inf",
            "-inf",
            "NaN",
            "Infinity",
            "1e400",
            "\t5",
            "5\t",
            "1e",
            "--5",
            "-1.5",
            "",
        ]
    ],
    *[
        ("2024-01-05 10:00:00", "1", quantity)
        for quantity in ["1", "2.0", "1.5", "0", "-1", "3e9", "1e1", "x", "inf", ""]
    ],
]
#: Inputs the engines read differently, documented in docs/ingest.md ("On Spark"): DuckDB also
#: reads zone names and a doubled sign, Spark's rules do not.
DIFFERENT = [
    ("2024-01-05 10:00:00 Europe/Paris", "1", "1"),
    ("2024-01-05 10:00:00", "+-1", "1"),
]


def _probe(store: Store, rows: list[tuple[str, str, str]]) -> list[dict]:
    from shopseq.ingest.validate import compile_rules, validation_sql

    table = pa.table(
        {
            "user_id": pa.array(["u"] * len(rows)),
            "item_id": pa.array(["i"] * len(rows)),
            "action": pa.array(["view"] * len(rows)),
            "ts": pa.array([r[0] for r in rows]),
            "price": pa.array([r[1] for r in rows]),
            "quantity": pa.array([r[2] for r in rows]),
            "__line": pa.array(range(1, len(rows) + 1), pa.int64()),
        }
    )
    rules = compile_rules(INGEST.layout, datetime(2020, 1, 1), datetime(2030, 1, 1))
    if store.spark_session is None:
        con = store.connection
        assert con is not None
        con.register("_probe", table)
        result = con.execute(validation_sql(rules, table.schema, "_probe")).to_arrow_table()
        con.unregister("_probe")
    else:
        store.spark_session.createDataFrame(table).createOrReplaceTempView("_probe")
        query = validation_sql(rules, table.schema, "_probe", dialect="spark")
        result = store.spark_session.sql(query).toArrow()
    keep = ["__line", "ts", "price", "quantity", "reason", "bad_column", "bad_value"]
    out = result.select(keep).to_pylist()
    for row in out:
        row["ts"] = row["ts"].replace(tzinfo=None) if row["ts"] else None
        if row["price"] is not None and math.isnan(row["price"]):
            row["price"] = "NaN"  # NaN != NaN: compare it by name
    return sorted(out, key=lambda r: r["__line"])


def test_the_rules_read_tricky_text_alike_on_both_engines(duck: Store, spark: Store) -> None:
    on_duckdb, on_spark = _probe(duck, PROBES), _probe(spark, PROBES)
    for probe, x, y in zip(PROBES, on_duckdb, on_spark, strict=True):
        assert x == y, probe
    assert sum(r["reason"] is None for r in on_duckdb) > 20  # many were accepted
    assert len({r["reason"] for r in on_duckdb}) >= 5
    a, b = _probe(duck, DIFFERENT), _probe(spark, DIFFERENT)
    assert all(x != y for x, y in zip(a, b, strict=True))  # still different: docs are right


def test_prepare_table_gives_the_same_events_on_duckdb_and_spark(duck: Store, spark: Store) -> None:
    events = _edge_case_events()
    on_duckdb = _canonical(prepare_table(duck.table("events"), CONFIG).to_pyarrow())
    on_spark = _canonical(prepare_table(spark.table("events"), CONFIG).to_pyarrow())
    assert len(on_duckdb) < events.num_rows  # the duplicates and repeats were removed
    assert on_duckdb == on_spark


def test_prepare_events_on_spark_lands_as_parquet_that_one_machine_reads(
    duck: Store, spark: Store, reports: tuple[Any, Any], output: Path
) -> None:
    on_duckdb, on_spark = reports
    assert dataclasses.replace(on_duckdb, seconds={}) == dataclasses.replace(on_spark, seconds={})
    assert on_duckdb.exact_duplicates > 0 and on_duckdb.repeats > 0
    days = sorted(p.name for p in (output / PREPARED_TABLE).iterdir() if p.is_dir())
    assert days and all(d.startswith(f"{PARTITION_COLUMN}=") for d in days)
    with open_store(output, read_only=True) as local:
        assert local.table(PREPARED_TABLE).schema() == duck.table(PREPARED_TABLE).schema()
        read_back = _canonical(local.table(PREPARED_TABLE).to_pyarrow())
    assert read_back == _canonical(duck.table(PREPARED_TABLE).to_pyarrow())
    assert read_back == _canonical(spark.table(PREPARED_TABLE).to_pyarrow())


@pytest.mark.parametrize("by", ["user", "session"])
def test_sequences_and_splits_are_the_same(
    duck: Store, spark: Store, reports: tuple[Any, Any], by: str
) -> None:
    config = SequenceConfig(by=by, collapse_repeats=by == "session")
    events = [fetch_events(s.table(PREPARED_TABLE), config) for s in (duck, spark)]
    for field in ("owner_ids", "item_ids", "category_ids", "actions", "ts"):
        a, b = (getattr(e, field) for e in events)
        assert (a.to_pylist() if isinstance(a, pa.Array) else a.tolist()) == (
            b.to_pylist() if isinstance(b, pa.Array) else b.tolist()
        ), field
    cut = datetime(2024, 1, 11)
    for split_of in (leave_last_out, lambda e: time_cut(e, cut, cut - timedelta(days=2))):
        a, b = (split_of(e) for e in events)
        assert a.report == b.report
        assert a.item_vocab.ids.to_pylist() == b.item_vocab.ids.to_pylist()
        for part in ("items", "offsets", "ts"):
            assert np.array_equal(getattr(a.train, part), getattr(b.train, part))
        assert np.array_equal(a.test.targets, b.test.targets)


def test_user_features_are_the_same_and_land_as_parquet(
    duck: Store, spark: Store, reports: tuple[Any, Any], output: Path
) -> None:
    as_of = datetime(2024, 1, 10, 12)
    on_duckdb = _sorted_rows(
        user_features(duck.table(PREPARED_TABLE), as_of).to_pyarrow(), "user_id"
    )
    written = spark.materialize("user_features", user_features(spark.table(PREPARED_TABLE), as_of))
    assert _sorted_rows(written.to_pyarrow(), "user_id") == on_duckdb
    with open_store(output, read_only=True) as local:
        assert _sorted_rows(local.table("user_features").to_pyarrow(), "user_id") == on_duckdb
    assert len(on_duckdb) > 100


ANALYSES = {
    "funnel": lambda e: funnel(e, FunnelConfig()),
    "paths": lambda e: paths(e, PathsConfig()),
    "transitions": lambda e: transitions(e, TransitionConfig()),
    "patterns": lambda e: mine_patterns(e, PatternConfig(min_sessions=3)),
    "rules": lambda e: association_rules(e, RuleConfig(level="category", min_baskets=3)),
    "segments": pytest.param(
        lambda e: segment_users(e, SegmentConfig())
    ),  # segments read recency_days from user_features
    "retention": lambda e: retention(e, RetentionConfig(period="week")),
}


@pytest.mark.parametrize(
    "analysis", [ANALYSES[name] for name in sorted(ANALYSES)], ids=sorted(ANALYSES)
)
def test_analyses_are_the_same(
    duck: Store, spark: Store, reports: tuple[Any, Any], analysis: Any
) -> None:
    on_duckdb = _rounded(analysis(duck.table(PREPARED_TABLE)).to_dict())
    on_spark = _rounded(analysis(spark.table(PREPARED_TABLE)).to_dict())
    assert on_duckdb == on_spark


@pytest.mark.parametrize("alphabet", ["action", "action_context"])
def test_intent_state_symbols_are_the_same(
    duck: Store, spark: Store, reports: tuple[Any, Any], alphabet: str
) -> None:
    # The symbols are worked out in the engine (a revisit is a list search inside the
    # per-session aggregate); the EM fit after them is NumPy on both.
    on_duckdb = encode_symbols(duck.table(PREPARED_TABLE), "session", alphabet)
    on_spark = encode_symbols(spark.table(PREPARED_TABLE), "session", alphabet)
    assert on_spark.owner_ids.to_pylist() == on_duckdb.owner_ids.to_pylist()
    assert on_spark.names == on_duckdb.names
    np.testing.assert_array_equal(on_spark.offsets, on_duckdb.offsets)
    np.testing.assert_array_equal(on_spark.symbols, on_duckdb.symbols)
    if alphabet == "action_context":
        assert "view (revisit)" in on_duckdb.names


@pytest.mark.parametrize(
    "config",
    [
        SeriesConfig(metric=Metric.PURCHASES, freq=Freq.DAY),
        SeriesConfig(metric=Metric.VIEWS, freq=Freq.HOUR, top_categories=3),
        SeriesConfig(metric=Metric.REVENUE, freq=Freq.DAY, top_categories=5),
    ],
    ids=["purchases-D", "views-h", "revenue-D"],
)
def test_forecast_series_are_the_same(
    duck: Store, spark: Store, reports: tuple[Any, Any], config: SeriesConfig
) -> None:
    a, b = (build_series(s.table(PREPARED_TABLE), config) for s in (duck, spark))
    assert a.panel.ids == b.panel.ids
    assert np.array_equal(a.panel.ds, b.panel.ds)
    np.testing.assert_allclose(a.panel.y, b.panel.y, rtol=1e-12, equal_nan=True)
    assert np.array_equal(a.panel.gap, b.panel.gap)
    assert a.report == b.report


def test_the_cli_runs_the_stages_on_spark(
    spark: Store, reports: tuple[Any, Any], output: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # In this process the running session is reused (and left running) by --engine spark.
    flags = ["--engine", "spark", "--spark-master", "local[2]", "--spark-output", str(output)]
    flags += ["--spark-conf", "spark.sql.shuffle.partitions=4"]
    assert run(["prepare", *flags]) == 0
    assert "events out" in capsys.readouterr().out
    assert run(["analyze", *flags, "transitions", "--json"]) == 0
    on_spark = json.loads(capsys.readouterr().out)
    assert run(["analyze", "transitions", "--store", str(output), "--json"]) == 0  # Parquet, here
    assert json.loads(capsys.readouterr().out) == on_spark
    assert run(["sequences", *flags, "--protocol", "time-cut", "--test-days", "2"]) == 0
    assert (output / "vocab_item").is_dir()  # the vocabularies landed as Parquet too
    assert spark.spark_session.getActiveSession() is not None


# The tests below write to other outputs in the shared session, whose temporary views
# ("events", "quarantine") then name those outputs' tables: they run last, and put the module's
# views back when they are done.


def _restore_views(spark: Store) -> None:
    for name in ("events", "quarantine", "source_files"):
        spark._register_parquet(name)


def test_spark_line_numbers_are_physical_lines_across_splits(spark: Store, tmp_path: Path) -> None:
    """Files cut into many splits (and packed several per partition) keep their line numbers."""
    data = tmp_path / "in"
    data.mkdir()
    ends = {"a.csv": "\n", "b.csv": "\r\n", "c.csv": "\r", "d.csv": "\n"}
    sizes = {"a.csv": 3000, "b.csv": 2500, "c.csv": 40, "d.csv": 1}
    for name, end in ends.items():
        rows = [f"u{k},i{k},view,2024-01-05 10:00:00" for k in range(2, sizes[name] + 2)]
        (data / name).write_bytes((end.join(["user_id,item_id,action,ts", *rows]) + end).encode())
    session = spark.spark_session
    before = {k: session.conf.get(k) for k in ("spark.sql.files.maxPartitionBytes",)}
    session.conf.set("spark.sql.files.maxPartitionBytes", "8192")
    session.conf.set("spark.sql.files.openCostInBytes", "0")
    try:
        store = open_spark_store(session, tmp_path / "out")
        report = ingest_on_spark([str(data)], INGEST, store)
        splits = session.read.text(str(data)).rdd.getNumPartitions()
        events = store.table("events").to_pyarrow().to_pylist()
    finally:
        for key, value in before.items():
            session.conf.set(key, value)
        session.conf.unset("spark.sql.files.openCostInBytes")
        _restore_views(spark)
    assert splits >= 10  # the files really were cut
    assert [f.lines for f in report.files] == [sizes[n] + 1 for n in sorted(ends)]
    assert len(events) == sum(sizes.values())
    assert all(int(e["user_id"][1:]) == e["source_row"] for e in events)


def test_parquet_ingest_is_the_same_on_both_engines(
    duck: Store, spark: Store, tmp_path: Path
) -> None:
    """Typed columns (timestamps, NaN and negative prices, integer quantities) read alike."""
    import pyarrow.parquet as pq

    n = 200
    table = pa.table(
        {
            "user_id": pa.array([f"u{k % 17}" if k % 31 else None for k in range(n)]),
            "item_id": pa.array([f"i{k % 23}" if k % 29 else "i\x02" for k in range(n)]),
            "action": pa.array(["view", "cart", "purchase", "click"][k % 4] for k in range(n)),
            "ts": pa.array(
                [datetime(2024, 1, 1) + timedelta(minutes=7 * k) for k in range(n - 1)]
                + [datetime(2019, 1, 1)],
                pa.timestamp("us"),
            ),
            "price": pa.array([[1.5, -2.0, float("nan"), None, 3.25][k % 5] for k in range(n)]),
            "quantity": pa.array([[1, 0, 2, None][k % 4] for k in range(n)], pa.int64()),
        }
    )
    path = tmp_path / "typed.parquet"
    pq.write_table(table, path)
    with open_store(None, threads=2) as local:
        on_duckdb = ingest_files([path], INGEST, local)
        duck_events = _canonical(local.table("events").to_pyarrow())
        duck_q = _quarantine(local)
    store = open_spark_store(spark.spark_session, tmp_path / "out")
    try:
        on_spark = ingest_on_spark([str(path)], INGEST, store)
        spark_events = _canonical(store.table("events").to_pyarrow())
        spark_q = _quarantine(store)
    finally:
        _restore_views(spark)
    assert on_duckdb.files[0].by_reason == on_spark.files[0].by_reason
    assert len(on_duckdb.files[0].by_reason) >= 5
    assert spark_events == duck_events
    assert spark_q == duck_q


def test_the_cli_ingests_on_spark(
    spark: Store, raw_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    flags = ["--engine", "spark", "--spark-master", "local[2]", "--spark-output", str(out)]
    argv = ["ingest", *flags, "--ts-min", "2020-01-01", "--ts-max", "2030-01-01", str(raw_log)]
    try:
        assert run(argv) == 0
    finally:
        _restore_views(spark)
    printed = capsys.readouterr().out
    assert "quarantined" in printed and "✓" in printed
    assert (out / "events").is_dir() and (out / "quarantine").is_dir()
    assert any(p.name.startswith("event_date=") for p in (out / "events").iterdir())
    key = tmp_path / "key"
    key.write_text("k" * 32)
    assert run(["ingest", *flags, "--pseudonymize", "--key-file", str(key), str(raw_log)]) == 2
    assert "not supported with --engine spark" in capsys.readouterr().err


def test_json_lines_ingest_is_the_same_on_both_engines(spark: Store, tmp_path: Path) -> None:
    """Objects of scalars read alike; a line that is not an object is quarantined on both."""
    rows = [
        {
            "user_id": f"u{k % 7}",
            "item_id": k % 11,
            "action": ["view", "cart", "nope"][k % 3],
            "ts": f"2024-01-0{1 + k % 9} 10:00:00",
            "price": [1.5, "2.25", None, -1][k % 4],
        }
        for k in range(60)
    ]
    lines = [json.dumps(r) for r in rows]
    lines[10] = '{"user_id": "u1", "item_id": '  # cut short
    lines[20] = "[1, 2, 3]"
    lines[30] = '{"user_id": "caf\\u00e9", "item_id": "i1", "action": "view", "ts": "2024-01-05"}'
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with open_store(None, threads=2) as local:
        on_duckdb = ingest_files([path], INGEST, local)
        duck_events = _canonical(local.table("events").to_pyarrow())
        duck_q = [(r["source_row"], r["reason"]) for r in _quarantine(local)]
    store = open_spark_store(spark.spark_session, tmp_path / "out")
    try:
        on_spark = ingest_on_spark([str(path)], INGEST, store)
        spark_events = _canonical(store.table("events").to_pyarrow())
        spark_q = [(r["source_row"], r["reason"]) for r in _quarantine(store)]
    finally:
        _restore_views(spark)
    assert on_duckdb.files[0].by_reason == on_spark.files[0].by_reason
    assert {"malformed_row", "unknown_action", "negative_price"} <= set(on_spark.files[0].by_reason)
    assert spark_events == duck_events
    assert spark_q == duck_q
