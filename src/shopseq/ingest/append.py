"""Write validated rows: accepted ones to ``events`` with lineage, rejected ones to ``quarantine``.

Two ways to run the compiled rules (``validate.validation_sql``) over a block of raw records:

* **fused** (the default): one ``INSERT INTO events SELECT ... WHERE reason IS NULL`` over the
  block, the rules evaluated inside the insert, no copy of the block in between; only when fewer
  rows were inserted than the block holds are its rejected rows fetched (a second, filtered pass
  that returns just them, over the block streamed again). The block is handed to DuckDB as a
  stream of ``SCAN_ROWS`` record batches: a stream holds nothing once scanned (a registered table
  lived until the file's transaction ended), and its batches are scanned on every thread (a
  one-chunk table was scanned by one). The same statement runs over a ``read_parquet`` relation
  (``native.py``).
* **staged** (``IngestConfig(fused=False)``): the checked block is materialised once as a
  temporary table, then inserted and its rejected rows selected from it. It is kept as the
  reference the fused path is tested against (``tests/ingest/test_fast_paths.py``), and for
  ``--pseudonymize``, whose accepted rows pass through Python to be hashed.

Both give the same events, quarantine rows and messages, in the same order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from shopseq.errors import BadRowError, StoreError
from shopseq.ingest.csvrecords import LINE_COLUMN, clip
from shopseq.ingest.pseudonymize import Pseudonymizer
from shopseq.ingest.quarantine import QuarantineReason, RejectedRow
from shopseq.ingest.validate import RuleSet, validation_sql
from shopseq.schema import EVENT_COLUMNS

__all__ = [
    "SCAN_ROWS",
    "Target",
    "append_fused",
    "append_staged",
    "append_table_fused",
    "drop_staging",
    "scalar",
    "shown",
]

#: Rows per Arrow record batch handed to DuckDB (its Arrow scan takes one batch per thread).
SCAN_ROWS = 122_880
_REDACTED = "<redacted: pseudonymised ingest>"
_RAW = "_raw_batch"
_STAGED = "_checked"


@dataclass(frozen=True, slots=True)
class Target:
    """Where one file's rows go and how they are shown.

    Attributes:
        path: The file (its name starts every message).
        file_id: Its ``source_file_id``.
        rules: The compiled rules.
        strict: Raise :class:`BadRowError` at the first bad row instead of quarantining.
        pseudonymizer: Hashes ``replaced`` columns of accepted rows (``None``: ids as they are).
        replaced: Canonical columns pseudonymised.
        withheld: Source columns whose raw text is withheld from the quarantine.
    """

    path: Path
    file_id: int
    rules: RuleSet
    strict: bool = False
    pseudonymizer: Pseudonymizer | None = None
    replaced: tuple[str, ...] = ()
    withheld: frozenset[str] = frozenset()


def scalar(con: duckdb.DuckDBPyConnection, query: str) -> int:
    """The single integer a query returns (a count, an id)."""
    row = con.execute(query).fetchone()
    if row is None:  # an aggregate always returns one row
        raise StoreError(f"query returned no row: {query}")
    return int(row[0])


def append_fused(
    con: duckdb.DuckDBPyConnection,
    target: Target,
    relation: str,
    schema: pa.Schema,
    n_rows: int,
    rejected: Sequence[RejectedRow] = (),
    *,
    control_ids: Sequence[str] = (),
) -> tuple[list[RejectedRow], int]:
    """Validate ``relation`` and append it in one insert (see the module docstring).

    Args:
        con: The file's transaction.
        target: The file.
        relation: A table function (``read_parquet(...)``) or a registered table.
        schema: Arrow schema of the relation.
        n_rows: Rows of the relation.
        rejected: Records of the block already rejected by the reader.
        control_ids: Id columns the rules must check for control characters.

    Returns:
        (every rejected record of the block: the reader's, then the rules', and rows accepted).

    Raises:
        BadRowError: In strict mode, at the first bad record (the transaction is rolled back).
    """
    checked = _checked_sql(target, schema, relation, control_ids)
    accepted = _insert_accepted(con, target, checked)
    found = _rejected(con, f"({checked})", target.rules) if accepted < n_rows else []
    bad = [*rejected, *found]
    _finish(con, target, bad)
    return bad, accepted


def append_table_fused(
    con: duckdb.DuckDBPyConnection,
    target: Target,
    table: pa.Table,
    rejected: Sequence[RejectedRow] = (),
) -> tuple[list[RejectedRow], int]:
    """:func:`append_fused` over a raw block read by ``readers.read_batches``.

    The block is handed to DuckDB as a one-pass stream (see :func:`_streamed`), so a second
    pass for its rejected rows, when there are any, streams it again.
    """
    checked = _checked_sql(target, table.schema, _RAW, ())
    with _streamed(con, table):
        accepted = _insert_accepted(con, target, checked)
    found: list[RejectedRow] = []
    if accepted < table.num_rows:
        with _streamed(con, table):
            found = _rejected(con, f"({checked})", target.rules)
    bad = [*rejected, *found]
    _finish(con, target, bad)
    return bad, accepted


def append_staged(
    con: duckdb.DuckDBPyConnection,
    target: Target,
    table: pa.Table,
    rejected: Sequence[RejectedRow] = (),
) -> tuple[list[RejectedRow], int]:
    """Validate ``table`` into a temporary table, then append from it (see the docstring).

    Args:
        con: The file's transaction.
        target: The file.
        table: Raw block (source columns plus ``LINE_COLUMN``).
        rejected: Records of the block already rejected by the reader.

    Returns:
        (every rejected record of the block: the reader's, then the rules', and rows accepted).

    Raises:
        BadRowError: In strict mode, at the first bad record.
    """
    # Materialise the validated batch once (as a view inside INSERT ... WHERE, DuckDB
    # re-evaluated the rule chain and ran >10x slower, measured on 1 M rows).
    with _streamed(con, table):
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_STAGED} AS "
            + validation_sql(target.rules, table.schema, _RAW)
        )
    if target.strict:
        _finish(con, target, [*rejected, *_rejected(con, _STAGED, target.rules)])
    accepted = _insert_staged(con, target)
    if target.strict:
        bad: list[RejectedRow] = []
    elif accepted < table.num_rows:
        bad = [*rejected, *_rejected(con, _STAGED, target.rules)]
    else:
        bad = list(rejected)
    _finish(con, target, bad)
    return bad, accepted


def drop_staging(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the staged path's temporary table (at the end of a file)."""
    con.execute(f"DROP TABLE IF EXISTS {_STAGED}")


def shown(row: RejectedRow, target: Target) -> str:
    """The raw value of a rejected row as it may be stored or shown."""
    if target.pseudonymizer is not None and (not row.column or row.column in target.withheld):
        return _REDACTED
    return row.raw_value


@contextlib.contextmanager
def _streamed(con: duckdb.DuckDBPyConnection, table: pa.Table, name: str = _RAW) -> Iterator[None]:
    """Register ``table`` as ``name`` for one scan, as a stream of ``SCAN_ROWS`` batches.

    Why a stream and not the table: DuckDB (1.5) keeps every Arrow table registered inside a
    transaction alive until the transaction ends, ``unregister`` or not, and ingest runs each
    file in one transaction, so its memory grew with the file (peak RSS 506 / 1,603 / 12,600 MB
    at 1 / 10 / 100 M events). A ``RecordBatchReader`` is consumed by the scan, and its batches
    are freed with the block.
    """
    batches = table.to_batches(max_chunksize=SCAN_ROWS)  # zero-copy slices
    con.register(name, pa.RecordBatchReader.from_batches(table.schema, batches))
    try:
        yield
    finally:
        con.unregister(name)


def _checked_sql(
    target: Target, schema: pa.Schema, relation: str, control_ids: Sequence[str]
) -> str:
    if target.pseudonymizer is not None:
        raise ValueError("pseudonymised ingest goes through append_staged")
    return validation_sql(target.rules, schema, relation, control_ids=control_ids)


def _insert_accepted(con: duckdb.DuckDBPyConnection, target: Target, checked: str) -> int:
    columns = ", ".join(EVENT_COLUMNS)
    return scalar(
        con,
        f"INSERT INTO events SELECT {columns}, {target.file_id}, {LINE_COLUMN} "
        f"FROM ({checked}) WHERE reason IS NULL",
    )


def _rejected(con: duckdb.DuckDBPyConnection, checked: str, rules: RuleSet) -> list[RejectedRow]:
    found = con.execute(
        f"SELECT {LINE_COLUMN}, reason, bad_column, bad_value FROM {checked} "
        f"WHERE reason IS NOT NULL ORDER BY {LINE_COLUMN}"
    ).fetchall()
    return [
        RejectedRow(
            int(line),
            column or "",
            clip(value) if value is not None else "",
            QuarantineReason(reason),
            rules.details[QuarantineReason(reason)],
        )
        for line, reason, column, value in found
    ]


def _finish(con: duckdb.DuckDBPyConnection, target: Target, bad: list[RejectedRow]) -> None:
    """Raise at the first bad record in strict mode; otherwise write the quarantine rows."""
    if not bad:
        return
    if target.strict:
        first = min(bad, key=lambda r: r.line)
        raise BadRowError(
            target.path,
            first.line,
            first.column,
            shown(first, target),
            first.reason.value,
            first.detail,
        )
    values = [shown(r, target) for r in bad]
    table = pa.table(
        {
            "source_file_id": pa.array([target.file_id] * len(bad), pa.int32()),
            "source_row": pa.array([r.line for r in bad], pa.int64()),
            "column_name": pa.array([r.column for r in bad], pa.string()),
            "raw_value": pa.array(values, pa.string()),
            "reason": pa.array([r.reason.value for r in bad], pa.string()),
            "message": pa.array(
                [
                    BadRowError.render(target.path.name, r.line, r.column, v, r.detail)
                    for r, v in zip(bad, values, strict=True)
                ],
                pa.string(),
            ),
        }
    )
    with _streamed(con, table, "_quarantine"):
        con.execute("INSERT INTO quarantine SELECT * FROM _quarantine")


def _insert_staged(con: duckdb.DuckDBPyConnection, target: Target) -> int:
    columns = ", ".join(EVENT_COLUMNS)
    select = (
        f"SELECT {columns}, {target.file_id}, {LINE_COLUMN} FROM {_STAGED} WHERE reason IS NULL"
    )
    if target.pseudonymizer is None:
        return scalar(con, f"INSERT INTO events {select}")
    table = con.execute(select).to_arrow_table()
    for name in target.replaced:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, target.pseudonymizer.apply(table.column(name)))
    with _streamed(con, table, "_accepted"):
        con.execute("INSERT INTO events SELECT * FROM _accepted")
    return int(table.num_rows)
