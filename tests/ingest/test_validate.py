"""Every validation rule, each on a real malformed file with one defect on line 3."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopseq.errors import BadRowError
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, QuarantineReason, ingest_files
from shopseq.store import Store, open_store

CASES = [
    ("bad_timestamp.csv", QuarantineReason.BAD_TIMESTAMP, "ts", "'2024-13-45 99:00:00'"),
    ("out_of_range_timestamp.csv", QuarantineReason.TIMESTAMP_OUT_OF_RANGE, "ts", "'1970-01-01"),
    ("unknown_action.csv", QuarantineReason.UNKNOWN_ACTION, "action", "'teleport'"),
    ("missing_field.csv", QuarantineReason.MISSING_FIELD, "item_id", "''"),
    ("negative_price.csv", QuarantineReason.NEGATIVE_PRICE, "price", "'-12.5'"),
    ("non_numeric_price.csv", QuarantineReason.NON_NUMERIC_PRICE, "price", "'abc'"),
    ("bad_quantity.csv", QuarantineReason.BAD_QUANTITY, "quantity", "'-2'"),
    ("wrong_column_count.csv", QuarantineReason.WRONG_COLUMN_COUNT, "", "'u3,i3,view"),
    ("bad_encoding.csv", QuarantineReason.BAD_ENCODING, "user_id", "'u\\\\xff\\\\xfe3'"),
]


def _config(strict: bool = False) -> IngestConfig:
    return IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"], strict=strict)


@pytest.mark.parametrize(("name", "reason", "column", "value"), CASES)
def test_ingest_quarantines_the_bad_row_with_file_line_column_and_reason(
    store: Store, data_dir: Path, name: str, reason: QuarantineReason, column: str, value: str
) -> None:
    report = ingest_files([data_dir / name], _config(), store)
    file = report.files[0]
    assert (file.rows_read, file.rows_accepted, file.rows_quarantined) == (4, 3, 1)
    assert file.by_reason == {reason.value: 1}
    rows = store.sql("SELECT source_row, column_name, reason, message FROM quarantine").to_pylist()
    assert len(rows) == 1
    assert rows[0]["source_row"] == 3
    assert rows[0]["column_name"] == column
    assert rows[0]["reason"] == reason.value
    where = f"column '{column}': " if column else ""
    assert rows[0]["message"].startswith(f"{name}:3: {where}{value}")
    accepted_rows = store.sql("SELECT source_row FROM events ORDER BY source_row").column(0)
    assert accepted_rows.to_pylist() == [2, 4, 5]


@pytest.mark.parametrize(("name", "reason", "column", "value"), CASES)
def test_strict_mode_stops_at_the_bad_row_with_the_same_message_and_writes_nothing(
    store: Store, data_dir: Path, name: str, reason: QuarantineReason, column: str, value: str
) -> None:
    where = f"column '{column}': " if column else ""
    with pytest.raises(BadRowError, match=rf"^{name.replace('.', '[.]')}:3: {where}") as caught:
        ingest_files([data_dir / name], _config(strict=True), store)
    assert caught.value.line == 3
    assert caught.value.column == column
    assert caught.value.reason == reason.value
    assert store.sql("SELECT count(*) AS n FROM events").column(0)[0].as_py() == 0
    assert store.sql("SELECT count(*) AS n FROM source_files").column(0)[0].as_py() == 0


def test_quarantine_message_matches_strict_error_text(store: Store, data_dir: Path) -> None:
    ingest_files([data_dir / "unknown_action.csv"], _config(), store)
    message = store.sql("SELECT message FROM quarantine").column(0)[0].as_py()
    with open_store(None) as fresh, pytest.raises(BadRowError) as caught:
        ingest_files([data_dir / "unknown_action.csv"], _config(strict=True), fresh)
    assert str(caught.value) == message
    assert "expected one of view, search, favorite, cart, remove_from_cart, purchase" in message


def test_empty_line_is_quarantined_not_lost(store: Store, data_dir: Path) -> None:
    report = ingest_files([data_dir / "empty_line.csv"], _config(), store)
    file = report.files[0]
    assert (file.rows_read, file.rows_accepted, file.rows_quarantined) == (4, 3, 1)
    # An empty line has no fields at all: a structural problem, not a missing value.
    assert file.by_reason == {"wrong_column_count": 1}
    assert store.sql("SELECT source_row FROM quarantine").column(0).to_pylist() == [3]
    message = store.sql("SELECT message FROM quarantine").column(0)[0].as_py()
    assert message.startswith("empty_line.csv:3: '' is an empty line; expected 9 (user_id,")


def test_offsets_in_timestamps_are_converted_to_utc(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "tz.csv"
    path.write_text(
        "user_id,item_id,action,ts\n"
        "u1,i1,view,2024-01-01T10:00:00+02:00\n"
        "u1,i2,view,2024-01-01T10:00:00Z\n"
        "u1,i3,view,1704103200\n"
    )
    ingest_files([path], _config(), store)
    hours = store.sql("SELECT hour(ts) AS h FROM events ORDER BY source_row").column(0).to_pylist()
    assert hours == [8, 10, 10]


def test_malformed_json_lines_are_quarantined(store: Store, data_dir: Path) -> None:
    report = ingest_files([data_dir / "malformed.jsonl"], _config(), store)
    file = report.files[0]
    assert (file.rows_read, file.rows_accepted, file.rows_quarantined) == (4, 2, 2)
    lines = store.sql("SELECT source_row FROM quarantine ORDER BY 1").column(0).to_pylist()
    assert lines == [2, 4]
    purchase = store.sql("SELECT quantity, price FROM events WHERE action = 'purchase'").to_pylist()
    assert purchase == [{"quantity": 2, "price": 9.99}]


def test_utc_offsets_are_bounded_at_14_hours_part_by_part() -> None:
    # The offset's hours, minutes and seconds are read once (validate._iso_us) and each checked:
    # minutes and seconds < 60, at most 14:00 in all.
    from datetime import datetime

    import duckdb
    import pyarrow as pa

    from shopseq.ingest import BUILTIN_LAYOUTS
    from shopseq.ingest.records import check_records
    from shopseq.ingest.validate import compile_rules
    from shopseq.schema import EVENT_COLUMNS

    cases = {
        "2024-01-01T10:00:00+14:00": "2023-12-31 20:00:00",
        "2024-01-01T10:00:00-14:00": "2024-01-02 00:00:00",
        "2024-01-01T10:00:00+1400": "2023-12-31 20:00:00",
        "2024-01-01T10:00:00+13:59:59": "2023-12-31 20:00:01",
        "2024-01-01T10:00:00+05:30": "2024-01-01 04:30:00",
        "2024-01-01T10:00:00+14:01": None,
        "2024-01-01T10:00:00+14:00:01": None,
        "2024-01-01T10:00:00+05:60": None,
        "2024-01-01T10:00:00+05:30:60": None,
        "2024-01-01T10:00:00+25:00": None,
    }
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    row = {"user_id": "u", "item_id": "i", "action": "view"}
    records = pa.table(
        {c: pa.array([row.get(c) for _ in cases], pa.string()) for c in EVENT_COLUMNS}
    ).set_column(EVENT_COLUMNS.index("ts"), "ts", pa.array(list(cases), pa.string()))
    rules = compile_rules(BUILTIN_LAYOUTS["shopseq"], datetime(1990, 1, 1), datetime(2030, 1, 1))
    checked = check_records(con, records, rules)
    accepted = dict(
        zip(
            checked.accepted.column("__line").to_pylist(),
            [t.strftime("%Y-%m-%d %H:%M:%S") for t in checked.accepted.column("ts").to_pylist()],
            strict=True,
        )
    )
    rejected = {r.line: r.reason.value for r in checked.rejected}
    for n, expected in enumerate(cases.values()):
        if expected is None:
            assert rejected.get(n) == "bad_timestamp", list(cases)[n]
        else:
            assert accepted.get(n) == expected, list(cases)[n]


def test_the_guarded_trim_and_control_check_equal_trim_and_the_regexp_at_every_code_point() -> None:
    # The rules skip TRIM and the control-character regexp for plain ASCII text (a GLOB says
    # which): at every code point below U+10000, alone, leading, trailing and inside, the
    # guarded forms must give what TRIM and the regexp give.
    import duckdb

    from shopseq.ingest.validate import _CONTROL_RE, _DUCKDB

    texts = []
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF:  # surrogates are not text
            continue
        c = chr(code)
        texts += [c, c + "ab", "ab" + c, "a" + c + "b", c + c + "x" + c]
    texts += ["", "plain-id_42", "  both  ", "\u3000wide\u3000"]
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT unnest(?) AS x", [texts])
    trimmed, control = _DUCKDB.trim("x"), _DUCKDB.has_control("x")
    differ = con.execute(
        f"SELECT x FROM t WHERE {trimmed} IS DISTINCT FROM TRIM(x) "
        f"OR {control} IS DISTINCT FROM regexp_matches(x, '{_CONTROL_RE}')"
    ).fetchall()
    assert differ == []
    # The guard does skip work: plain text takes the short way, a padded one the TRIM.
    assert con.execute(
        f"SELECT {_DUCKDB.unplain('x')} FROM (SELECT 'plain-id_42' AS x)"
    ).fetchone() == (False,)
    assert con.execute("SELECT count(*) FILTER (WHERE TRIM(x) <> x) FROM t").fetchone()[0] > 0
