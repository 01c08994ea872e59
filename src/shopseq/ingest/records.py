"""Validate records that arrive without a file (the service's posted events) with ingest's rules.

The records go through the very query ingest compiles for files (``validate.validation_sql``),
so a posted event is accepted or rejected exactly as the same row in a file would be. Here the
"line" of a record is its position in the batch (0-based).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from shopseq.ingest.quarantine import QuarantineReason, RejectedRow
from shopseq.ingest.readers import LINE_COLUMN
from shopseq.ingest.validate import RuleSet, validation_sql
from shopseq.schema import EVENT_COLUMNS

__all__ = ["CheckedRecords", "check_records"]


@dataclass(frozen=True, slots=True)
class CheckedRecords:
    """The outcome of :func:`check_records`.

    Attributes:
        accepted: Canonical event columns (``schema.EVENT_SCHEMA`` types) of the accepted records
            plus ``LINE_COLUMN`` (their position in the input), in input order.
        rejected: One record per rejected input, with the rule it broke.
    """

    accepted: pa.Table
    rejected: list[RejectedRow]


def check_records(
    con: duckdb.DuckDBPyConnection, records: pa.Table, rules: RuleSet
) -> CheckedRecords:
    """Run ingest's compiled rules over records given as a table of source columns.

    Args:
        con: A DuckDB connection to run the query on (an in-memory one will do).
        records: Source columns of the rules' layout (text), one row per record; a
            ``LINE_COLUMN`` is added (the row's position) when absent.
        rules: Compiled rules (``validate.compile_rules``).

    Returns:
        Accepted events and rejected records (every input is one or the other).
    """
    if LINE_COLUMN not in records.column_names:
        records = records.append_column(LINE_COLUMN, pa.array(range(records.num_rows), pa.int64()))
    name = "_posted_records"
    con.register(name, records)
    try:
        checked = con.execute(validation_sql(rules, records.schema, name)).to_arrow_table()
    finally:
        con.unregister(name)
    # No ORDER BY in the query: a sort there cost more than the rules on a group of posted
    # events. One DuckDB thread returns the rows in input order; others may not, so the order is
    # checked here and restored when needed.
    line = checked.column(LINE_COLUMN)
    if len(line) > 1 and not pc.all(pc.greater(line[1:], line[:-1])).as_py():
        checked = checked.take(pc.sort_indices(line))
    reasons = checked.column("reason").to_pylist()
    bad_rows = [n for n, reason in enumerate(reasons) if reason is not None]
    good_rows = [n for n, reason in enumerate(reasons) if reason is None]
    lines = checked.column(LINE_COLUMN).to_pylist()
    columns = checked.column("bad_column").to_pylist()
    values = checked.column("bad_value").to_pylist()
    rejected = [
        RejectedRow(
            int(lines[n]),
            columns[n] or "",
            values[n] if values[n] is not None else "",
            QuarantineReason(reasons[n]),
            rules.details[QuarantineReason(reasons[n])],
        )
        for n in bad_rows
    ]
    accepted = checked.select([*EVENT_COLUMNS, LINE_COLUMN]).take(pa.array(good_rows, pa.int64()))
    return CheckedRecords(accepted, rejected)
