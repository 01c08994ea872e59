r"""Ingest on Spark: the same rules and quarantine reasons as on DuckDB, over any path Spark reads.

Files (local, HDFS, S3-compatible: any path or glob Spark's readers take) are read by Spark, the
rules are the ones ``validate.validation_sql`` compiles for DuckDB, compiled for Spark SQL
(``dialect="spark"``: one definition, two engines), and the results land under the Spark
store's output as Parquet: ``events`` (partitioned by ``event_date``, as every Spark stage
writes), ``quarantine`` (file, line, column, raw value, reason, message) and ``source_files``.
Every record is accepted or quarantined, and the counts are reconciled from what was written:
for each file, physical lines = header + records read = header + rows in ``events`` +
rows in ``quarantine``.

Line numbers are physical lines, not row indexes. A text file is read by Spark's line reader
in splits; each row's position is taken from ``monotonically_increasing_id`` (partition in
the high bits, position in the partition in the low 33) together with ``_metadata``'s file
path and split start, and one small aggregate per split (its first row id and its number of
lines, prefix-summed per file on the driver) turns it into ``line = lines of the file's earlier
splits + position in the split + 1``. Spark's line reader ends lines at ``\n``, ``\r\n`` and a
lone ``\r``, as shopseq's reader does for CSV. ``tests/test_spark_portability.py`` checks the
numbers against text that names its own line, over files cut into many splits. Parquet rows are
numbered by ``_metadata.row_index`` + 1 (DuckDB's ``file_row_number`` + 1).

What differs from DuckDB's ingest (docs/ingest.md, "On Spark"):

* A quoted CSV field holding a line break is not joined with the next line: its first line is
  quarantined as ``unterminated_quote`` and reading resumes on the next line (what DuckDB's
  reader does when such a record is not well formed). Every other CSV rule (quoting, doubled
  quotes, wrong field counts, empty lines, ``malformed_row``) is the same.
* Spark decodes text as UTF-8 and replaces invalid bytes by U+FFFD before shopseq sees them: a
  line holding U+FFFD is quarantined as ``bad_encoding`` (column ``""``, the line as its value).
* Files are identified by path (no SHA-256: that would read every file once more on the driver),
  and a run replaces the three tables under the output with the files it is given.
* ``--pseudonymize`` and the ``whitespace`` delimiter are DuckDB-only; JSON lines are read as
  objects of scalars (``get_json_object``), without DuckDB's checks of float ids, duplicate keys
  and unpaired surrogates.

Quarantine messages are rendered by ``BadRowError.render`` (the one message shape) in Spark's
Python workers (``mapInArrow``), so executors need shopseq installed; nothing else runs Python
per row.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa

from shopseq.errors import BadRowError, ConfigError, InputError, SchemaMismatchError, StoreError
from shopseq.ingest.csvrecords import LINE_COLUMN, clip
from shopseq.ingest.layouts import Layout
from shopseq.ingest.load import FileReport, IngestConfig, IngestReport
from shopseq.ingest.quarantine import QuarantineReason
from shopseq.ingest.readers import (
    _check_columns,
    file_format,
    id_source_columns,
    needed_columns,
)
from shopseq.ingest.validate import RuleSet, compile_rules, validation_sql
from shopseq.schema import EVENT_COLUMNS, STORED_SCHEMA, TS
from shopseq.store import Store

__all__ = ["ingest_on_spark"]

_FILE = "__file"  # the file id column carried through the rules
_DETAIL = "__detail"  # a reader-level rejection's detail (NULL: look it up by reason)
_CHECKED = "_ingest_checked"
_LINES = "_ingest_lines"
_RAW = "_ingest_raw"
_QUARANTINE = "_ingest_quarantine"
_PRE_REASON = "__pre_reason"  # a reader-level rejection (wrong field count, ...), else NULL
_PRE_VALUE = "__pre_value"  # the rejected line's text
_CARRIED = [_FILE, _PRE_REASON, _DETAIL, _PRE_VALUE]


@dataclass(frozen=True, slots=True)
class _File:
    file_id: int
    uri: str
    name: str
    lines: int = 0
    size: int = 0


def ingest_on_spark(paths: Sequence[str], config: IngestConfig, store: Store) -> IngestReport:
    """Validate ``paths`` on Spark and write events, quarantine and source files as Parquet.

    Args:
        paths: Files, directories or globs Spark reads (all of one format).
        config: How to read and validate them (as for :func:`shopseq.ingest.ingest_files`).
        store: A Spark store with an output (``runs.engine.open_engine_store``).

    Returns:
        One report per file (``lines``: physical lines, header included; rows for Parquet).

    Raises:
        ConfigError: For an option Spark ingest does not support, or paths of mixed formats.
        InputError: If a path matches no file.
        SchemaMismatchError: If a file lacks the layout's columns.
        BadRowError: In strict mode, at the first bad row (nothing is written).
        StoreError: If the written counts do not reconcile.
    """
    session = store.spark_session
    if session is None or store.output is None:
        raise StoreError("Spark ingest needs a Spark store with an output (--spark-output)")
    layout = config.layout
    if config.pseudonymize_key is not None:
        raise ConfigError("--pseudonymize is not supported with --engine spark; ingest on DuckDB")
    if layout.delimiter == "whitespace":
        raise ConfigError("the 'whitespace' delimiter is not supported with --engine spark")
    formats = {file_format(Path(p), layout) for p in paths}
    if len(formats) != 1:
        raise ConfigError(
            f"--engine spark reads one format per run; got {sorted(formats)} (set file_format "
            "in the layout, or ingest the formats separately)"
        )
    started = time.perf_counter()
    ts_max = config.ts_max or datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)
    if ts_max <= config.ts_min:
        raise ConfigError(
            f"--ts-max {ts_max} is not after --ts-min {config.ts_min}: no timestamp could be "
            "accepted"
        )
    rules = compile_rules(layout, config.ts_min, ts_max)
    fmt = formats.pop()
    from pyspark.errors import AnalysisException

    try:
        if fmt == "parquet":
            files, schema = _parquet_relation(session, list(paths), layout)
            header_lines = 0
        else:
            files, schema, header_lines = _text_relation(
                session, list(paths), layout, fmt, config.max_line_bytes
            )
    except AnalysisException as err:
        raise InputError(f"{', '.join(paths)}: Spark cannot read it ({_first_line(err)})") from err
    ids = [c for c in id_source_columns(layout) if c in schema.names]
    query = validation_sql(rules, schema, _RAW, control_ids=ids, dialect="spark", carried=_CARRIED)
    checked = session.sql(query).persist()
    try:
        checked.createOrReplaceTempView(_CHECKED)
        counts = _counts(session)
        if config.strict:
            _raise_first_bad(session, files, rules)
        _write(store, session, files, rules)
        reports = _reconcile(store, files, counts, header_lines, layout, started)
    finally:
        checked.unpersist()
    return IngestReport(files=tuple(reports))


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__


# ------------------------------------------------------------------------------- text files


def _re_char(ch: str) -> str:
    """One character as a Java regexp escape (safe inside and outside a class)."""
    return f"\\x{{{ord(ch):x}}}"


def _csv_patterns(delimiter: str) -> tuple[str, str, str]:
    """(well-formed line, line ending inside an open quote, one field) as Java regexps.

    The grammar of ``csvrecords``: a field starting with ``"`` is quoted and ends at the next
    ``"`` not doubled, which must be followed by the delimiter or the end of the line; a ``"``
    elsewhere is a literal character. The field pattern is applied to the line with one
    delimiter put in front, so that every match starts with a delimiter (no empty matches).
    """
    d = _re_char(delimiter)
    quoted = '"(?:[^"]|"")*+"'
    plain = f'[^"{d}][^{d}]*+'
    field = f"(?:{quoted}|{plain})?"
    well = f"^{field}(?:{d}{field})*+$"
    open_quote = f'^(?:{field}{d})*+"(?:[^"]|"")*+$'
    one = f"{d}({quoted}|{plain}|)"
    return well, open_quote, one


def _numbered_lines(session: Any, paths: list[str], line_sep: str | None) -> tuple[Any, list[Any]]:
    """Every line of the files with its file, physical line number and the split statistics."""
    from pyspark.sql import functions as F

    reader = session.read.format("text")
    if line_sep is not None:
        reader = reader.option("lineSep", line_sep)
    scan = reader.load(paths).select(
        F.col("value"),
        F.col("_metadata.file_path").alias("_path"),
        F.col("_metadata.file_block_start").alias("_block"),
        F.col("_metadata.file_size").alias("_size"),
        F.monotonically_increasing_id().alias("_row"),
    )
    splits = (
        scan.groupBy("_path", "_block")
        .agg(
            F.min("_row").alias("_first"),
            F.count(F.lit(1)).alias("_n"),
            F.min_by("value", "_row").alias("_head"),
            F.max("_size").alias("_size"),
        )
        .collect()
    )
    return scan, splits


def _text_relation(
    session: Any, paths: list[str], layout: Layout, fmt: str, max_line_bytes: int
) -> tuple[list[_File], pa.Schema, int]:
    """Register the raw relation of text files (CSV or JSON lines); return files and schema."""
    from pyspark.sql import functions as F

    scan, splits = _numbered_lines(session, paths, "\n" if fmt == "jsonl" else None)
    by_file: dict[str, list[Any]] = {}
    for row in splits:
        by_file.setdefault(row["_path"], []).append(row)
    if not by_file:
        raise InputError(f"{', '.join(paths)}: no lines to ingest (no file, or only empty files)")
    files: list[_File] = []
    shifts: list[tuple[str, int, int, int]] = []
    heads: dict[str, str] = {}
    for file_id, uri in enumerate(sorted(by_file), start=1):
        before = 0
        for row in sorted(by_file[uri], key=lambda r: r["_block"]):
            if row["_block"] == 0:
                heads[uri] = row["_head"]
            shifts.append((uri, int(row["_block"]), file_id, before + 1 - int(row["_first"])))
            before += int(row["_n"])
        size = int(by_file[uri][0]["_size"])
        files.append(_File(file_id, uri, PurePosixPath(uri).name, lines=before, size=size))
    offsets = session.createDataFrame(shifts, "_path string, _block long, _fid int, _shift long")
    lines = scan.join(F.broadcast(offsets), ["_path", "_block"]).select(
        F.col("_fid").alias(_FILE),
        (F.col("_row") + F.col("_shift")).alias(LINE_COLUMN),
        # A UTF-8 byte-order mark starts the first line of some exports; the reader drops it.
        F.when((F.col("_row") + F.col("_shift")) == 1, F.regexp_replace("value", "^\ufeff", ""))
        .otherwise(F.col("value"))
        .alias("value"),
    )
    if fmt == "jsonl":
        names = layout.mapped_source_columns()
        header_lines = 0
    else:
        names = _csv_names(files, heads, layout)
        header_lines = 1 if layout.header else 0
    if header_lines:
        lines = lines.where(F.col(LINE_COLUMN) > 1)
    lines.createOrReplaceTempView(_LINES)
    if fmt == "jsonl":
        needed = names
        session.sql(_jsonl_sql(needed, max_line_bytes)).createOrReplaceTempView(_RAW)
    else:
        needed = needed_columns(layout, names)
        query = _csv_sql(names, needed, layout.delimiter, max_line_bytes)
        session.sql(query).createOrReplaceTempView(_RAW)
    schema = pa.schema(
        [pa.field(n, pa.string()) for n in needed] + [pa.field(LINE_COLUMN, pa.int64())]
    )
    return files, schema, header_lines


def _csv_names(files: list[_File], heads: dict[str, str], layout: Layout) -> list[str]:
    """The column names: every file's header (the same in each), or the layout's names."""
    if not layout.header:
        return list(layout.source_columns or ())
    first: list[str] | None = None
    for f in files:
        text = heads.get(f.uri, "").removeprefix("\ufeff")
        try:
            names = next(csv.reader([text], delimiter=layout.delimiter, strict=True), [])
        except csv.Error as err:
            raise SchemaMismatchError(
                f.name, detail=f"the header is not valid CSV ({err})"
            ) from err
        _check_columns(Path(f.name), layout, names)
        if first is None:
            first = names
        elif names != first:
            raise SchemaMismatchError(
                f.name,
                detail=f"its header {names} differs from {files[0].name}'s {first}; "
                "--engine spark reads files of one header per run",
            )
    return first or []


def _q(text: str) -> str:
    """A Spark SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _csv_sql(names: list[str], needed: list[str], delimiter: str, max_line_bytes: int) -> str:
    """The raw relation of CSV lines: the needed fields, or the reason the line is rejected."""
    well, open_quote, one = _csv_patterns(delimiter)
    n = len(names)
    expected = f"expected {n} ({', '.join(names)})"
    if len(expected) > 300:
        expected = expected[:300] + "…)"
    d = _q(delimiter)
    # Lines without a quote are split directly; others field by field (the grammar above).
    fields = (
        f"CASE WHEN instr(value, '\"') = 0 THEN split(value, {_q(_re_char(delimiter))}, -1) "
        f"ELSE transform(regexp_extract_all(concat({d}, value), {_q(one)}, 1), "
        "x -> CASE WHEN startswith(x, '\"') THEN replace(substr(x, 2, length(x) - 2), "
        "'\"\"', '\"') ELSE x END) END"
    )
    reason = (
        f"CASE WHEN octet_length(value) > {max_line_bytes} THEN {_q('line_too_long')} "
        f"WHEN value = '' THEN {_q('wrong_column_count')} "
        f"WHEN NOT (value RLIKE {_q(well)}) THEN CASE WHEN value RLIKE {_q(open_quote)} "
        f"THEN {_q('unterminated_quote')} ELSE {_q('malformed_row')} END "
        f"WHEN size(_fields) != {n} THEN {_q('wrong_column_count')} "
        f"WHEN instr(value, '\ufffd') > 0 THEN {_q('bad_encoding')} END"
    )
    details = {
        "line_too_long": _q(
            f"is longer than the line limit of {max_line_bytes:,} bytes (a line break is "
            "missing, or raise --max-line-bytes)"
        ),
        "wrong_column_count": (
            f"CASE WHEN value = '' THEN {_q(f'is an empty line; {expected} fields')} "
            f"ELSE concat('has ', size(_fields), {_q(f' fields; {expected}')}) END"
        ),
        "unterminated_quote": _q(
            "opens a quoted field that does not close on its line (--engine spark does not "
            "join lines); only this line is quarantined and reading resumes on the next line "
            '(close the quote, or write "" for a literal quote)'
        ),
        "malformed_row": _q(
            f"is not valid CSV ('{delimiter}' expected after '\"'); a quoted field must end at "
            'a delimiter or the end of the line (write "" for a quote inside a quoted field)'
        ),
        "bad_encoding": _q(
            "is not valid UTF-8 (Spark read bytes it replaced by U+FFFD); expected UTF-8 text "
            "(re-encode the file, e.g. iconv -t utf-8)"
        ),
    }
    detail = "CASE _reason " + " ".join(f"WHEN {_q(k)} THEN {v}" for k, v in details.items())
    picked = ", ".join(
        f"CASE WHEN _reason IS NULL THEN try_element_at(_fields, {names.index(c) + 1}) END "
        f"AS {_ident(c)}"
        for c in needed
    )
    return f"""
WITH cut AS (
    SELECT {_FILE}, {LINE_COLUMN}, value, {fields} AS _fields FROM {_LINES}
), judged AS (
    SELECT *, {reason} AS _reason FROM cut
)
SELECT {_FILE}, {LINE_COLUMN}, {picked},
    _reason AS __pre_reason,
    CASE WHEN _reason IS NOT NULL THEN {detail} END END AS {_DETAIL},
    CASE WHEN _reason IS NOT NULL THEN substr(value, 1, 800) END AS __pre_value
FROM judged
"""


def _jsonl_sql(names: list[str], max_line_bytes: int) -> str:
    """The raw relation of JSON lines: one object of scalars per line."""
    picked = ", ".join(
        f"CASE WHEN _reason IS NULL THEN get_json_object(value, {_q('$.' + c)}) END AS {_ident(c)}"
        if c.isidentifier()
        else f"CASE WHEN _reason IS NULL THEN get_json_object(value, "
        f"{_q(chr(36) + '[' + repr(c) + ']')}) END AS {_ident(c)}"
        for c in names
    )
    reason = (
        f"CASE WHEN octet_length(value) > {max_line_bytes} THEN 'line_too_long' "
        "WHEN json_object_keys(value) IS NULL THEN 'malformed_row' "
        f"WHEN instr(value, '\ufffd') > 0 THEN 'bad_encoding' END"
    )
    detail = (
        "CASE _reason WHEN 'line_too_long' THEN "
        + _q(
            f"is longer than the line limit of {max_line_bytes:,} bytes (a line break is "
            "missing, or raise --max-line-bytes)"
        )
        + " WHEN 'malformed_row' THEN "
        + _q("is not a JSON object; expected one object per line")
        + " WHEN 'bad_encoding' THEN "
        + _q("is not valid UTF-8 (Spark read bytes it replaced by U+FFFD); expected UTF-8 text")
        + " END"
    )
    return f"""
WITH judged AS (SELECT *, {reason} AS _reason FROM {_LINES})
SELECT {_FILE}, {LINE_COLUMN}, {picked},
    _reason AS __pre_reason,
    CASE WHEN _reason IS NOT NULL THEN {detail} END AS {_DETAIL},
    CASE WHEN _reason IS NOT NULL THEN substr(value, 1, 800) END AS __pre_value
FROM judged
"""


# ---------------------------------------------------------------------------- Parquet files

_SPARK_TO_ARROW = {
    "string": pa.string(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "smallint": pa.int16(),
    "tinyint": pa.int8(),
    "double": pa.float64(),
    "float": pa.float32(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us"),
    "timestamp_ntz": pa.timestamp("us"),
}


def _parquet_relation(
    session: Any, paths: list[str], layout: Layout
) -> tuple[list[_File], pa.Schema]:
    """Register the raw relation of Parquet files; return files and schema."""
    from pyspark.sql import functions as F

    frame = session.read.parquet(*paths)
    found = list(frame.columns)
    name = PurePosixPath(paths[0]).name
    _check_columns(Path(name), layout, found)
    needed = needed_columns(layout, found)
    ids = set(id_source_columns(layout))
    fields = []
    columns = []
    for c in needed:
        spark_type = frame.schema[c].dataType.simpleString()
        arrow = _SPARK_TO_ARROW.get(spark_type)
        plain_id = spark_type in ("string", "bigint", "int", "smallint", "tinyint")
        if arrow is None or (c in ids and not plain_id):
            raise SchemaMismatchError(
                name,
                detail=f"column {c!r} is {spark_type}, which --engine spark does not read as "
                "an id or event value (ids: text or integers; times: timestamps or text; "
                "others: text, numbers or booleans); cast it, or ingest on DuckDB",
            )
        col = F.col(c)
        if spark_type in ("double", "float"):
            # NaN in a typed float column is how pandas writes a missing value.
            col = F.when(F.isnan(col), F.lit(None)).otherwise(col)
        columns.append(col.alias(c))
        fields.append(pa.field(c, arrow))
    scan = frame.select(
        *columns,
        (F.col("_metadata.row_index") + 1).alias(LINE_COLUMN),
        F.col("_metadata.file_path").alias("_path"),
        F.col("_metadata.file_size").alias("_size"),
    )
    found_files = scan.groupBy("_path").agg(F.max("_size").alias("_size")).collect()
    files = [
        _File(i, r["_path"], PurePosixPath(r["_path"]).name, size=int(r["_size"]))
        for i, r in enumerate(sorted(found_files, key=lambda r: r["_path"]), start=1)
    ]
    ids_frame = session.createDataFrame(
        [(f.uri, f.file_id) for f in files], "_path string, _fid int"
    )
    scan.join(F.broadcast(ids_frame), ["_path"]).select(
        *needed,
        LINE_COLUMN,
        F.col("_fid").alias(_FILE),
        F.lit(None).cast("string").alias("__pre_reason"),
        F.lit(None).cast("string").alias(_DETAIL),
        F.lit(None).cast("string").alias("__pre_value"),
    ).createOrReplaceTempView(_RAW)
    return files, pa.schema([*fields, pa.field(LINE_COLUMN, pa.int64())])


# ------------------------------------------------------------------------ results and counts


#: The row's reason: the reader's (structure) first, then the rules'.
_REASON = f"COALESCE({_PRE_REASON}, reason)"


def _counts(session: Any) -> dict[int, dict[str, int]]:
    """Rows per file and reason (``""``: accepted), from the checked rows."""
    rows = session.sql(
        f"SELECT {_FILE} AS f, COALESCE({_REASON}, '') AS r, count(*) AS n "
        f"FROM {_CHECKED} GROUP BY 1, 2"
    ).collect()
    out: dict[int, dict[str, int]] = {}
    for row in rows:
        out.setdefault(int(row["f"]), {})[row["r"]] = int(row["n"])
    return out


def _bad_rows(session: Any) -> Any:
    """The rejected rows: file, line, column, raw value (unclipped), reason, detail or NULL."""
    return session.sql(
        f"SELECT CAST({_FILE} AS INT) AS source_file_id, CAST({LINE_COLUMN} AS BIGINT) AS "
        f"source_row, CASE WHEN {_PRE_REASON} IS NOT NULL THEN '' ELSE bad_column END AS "
        f"column_name, CASE WHEN {_PRE_REASON} IS NOT NULL THEN {_PRE_VALUE} ELSE bad_value "
        f"END AS raw_value, {_REASON} AS reason, {_DETAIL} AS detail FROM {_CHECKED} "
        f"WHERE {_REASON} IS NOT NULL"
    )


def _quarantine_frame(session: Any, files: list[_File], rules: RuleSet) -> Any:
    """The quarantine rows with their messages (rendered in Python: the one message shape)."""
    names = {f.file_id: f.name for f in files}
    details = {r.value: d for r, d in rules.details.items()}
    schema = (
        "source_file_id int, source_row bigint, column_name string, raw_value string, "
        "reason string, message string"
    )

    def render(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            rows = batch.to_pylist()
            values = [clip(r["raw_value"]) if r["raw_value"] is not None else "" for r in rows]
            columns = [r["column_name"] or "" for r in rows]
            messages = [
                BadRowError.render(
                    names[r["source_file_id"]],
                    r["source_row"],
                    column,
                    value,
                    r["detail"] if r["detail"] is not None else details[r["reason"]],
                )
                for r, column, value in zip(rows, columns, values, strict=True)
            ]
            yield pa.RecordBatch.from_pydict(
                {
                    "source_file_id": batch.column("source_file_id"),
                    "source_row": batch.column("source_row"),
                    "column_name": pa.array(columns, pa.string()),
                    "raw_value": pa.array(values, pa.string()),
                    "reason": batch.column("reason"),
                    "message": pa.array(messages, pa.string()),
                }
            )

    return _bad_rows(session).mapInArrow(render, schema)


def _raise_first_bad(session: Any, files: list[_File], rules: RuleSet) -> None:
    """Strict mode: raise at the first bad row (of the first file holding one)."""
    first = _bad_rows(session).orderBy("source_file_id", "source_row").limit(1).collect()
    if not first:
        return
    row = first[0]
    name = next(f.name for f in files if f.file_id == row["source_file_id"])
    reason = QuarantineReason(row["reason"])
    detail = row["detail"] if row["detail"] is not None else rules.details[reason]
    value = clip(row["raw_value"]) if row["raw_value"] is not None else ""
    raise BadRowError(
        Path(name), row["source_row"], row["column_name"] or "", value, reason.value, detail
    )


def _write(store: Store, session: Any, files: list[_File], rules: RuleSet) -> None:
    """Write events, quarantine and source files under the store's output."""
    types = {f.name: f.type for f in STORED_SCHEMA}
    spark_types = {
        pa.string(): "string",
        pa.int32(): "int",
        pa.int64(): "bigint",
        pa.float64(): "double",
    }
    casts = []
    for name in EVENT_COLUMNS:
        if name == TS:
            casts.append(f"{name}")
        else:
            casts.append(f"CAST({name} AS {spark_types[types[name]]}) AS {name}")
    events = (
        f"SELECT {', '.join(casts)}, CAST({_FILE} AS INT) AS source_file_id, "
        f"CAST({LINE_COLUMN} AS BIGINT) AS source_row FROM {_CHECKED} "
        f"WHERE {_REASON} IS NULL"
    )
    store.materialize("events", store.backend.sql(events))
    _quarantine_frame(session, files, rules).createOrReplaceTempView(_QUARANTINE)
    store.materialize("quarantine", store.backend.sql(f"SELECT * FROM {_QUARANTINE}"))


def _reconcile(
    store: Store,
    files: list[_File],
    counts: dict[int, dict[str, int]],
    header_lines: int,
    layout: Layout,
    started: float,
) -> list[FileReport]:
    """Check the written rows against the lines counted per file; write ``source_files``."""
    written = {
        name: {
            int(r["source_file_id"]): int(r["n"])
            for r in store.spark_session.sql(
                f"SELECT source_file_id, count(*) AS n FROM {name} GROUP BY 1"
            ).collect()
        }
        for name in ("events", "quarantine")
    }
    now = datetime.now(UTC).replace(tzinfo=None)
    reports = []
    rows = []
    for f in files:
        by_reason = {r: n for r, n in counts.get(f.file_id, {}).items() if r}
        accepted = written["events"].get(f.file_id, 0)
        quarantined = written["quarantine"].get(f.file_id, 0)
        read = f.lines - header_lines if f.lines else sum(counts.get(f.file_id, {}).values())
        lines = f.lines or read
        if read != accepted + quarantined or counts.get(f.file_id, {}).get("", 0) != accepted:
            raise StoreError(
                f"{f.name}: counts do not reconcile: {lines} lines ({header_lines} header), "
                f"read {read}, written {accepted} events and {quarantined} quarantined rows "
                "(this is a shopseq bug)"
            )
        reports.append(
            FileReport(
                Path(f.uri),
                "",
                f.file_id,
                read,
                accepted,
                quarantined,
                dict(sorted(by_reason.items())),
                seconds=time.perf_counter() - started,
                lines=lines,
            )
        )
        rows.append((f.file_id, f.uri, f.size, read, accepted, quarantined))
    source_files = pa.table(
        {
            "source_file_id": pa.array([r[0] for r in rows], pa.int32()),
            "path": pa.array([r[1] for r in rows], pa.string()),
            "sha256": pa.array([None] * len(rows), pa.string()),
            "size_bytes": pa.array([r[2] for r in rows], pa.int64()),
            "layout": pa.array([layout.name] * len(rows), pa.string()),
            "pseudonymized": pa.array([False] * len(rows), pa.bool_()),
            "rows_read": pa.array([r[3] for r in rows], pa.int64()),
            "rows_accepted": pa.array([r[4] for r in rows], pa.int64()),
            "rows_quarantined": pa.array([r[5] for r in rows], pa.int64()),
            "ingested_at": pa.array([now] * len(rows), pa.timestamp("us")),
        }
    )
    store.write_arrow("source_files", source_files)
    return reports
