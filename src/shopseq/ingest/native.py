"""Plain Parquet files read by DuckDB's own parallel reader, validated in the same query.

``readers.read_batches`` reads Parquet through PyArrow and normalises every type a file may hold
(float and decimal ids, nanosecond and date times, binary text, NaN for missing) before the
rules run. Most files need none of that: ids are text or integers, the time is a naive
microsecond timestamp (or text), the other columns are text, numbers or booleans. For such a
*plain* file DuckDB's ``read_parquet`` hands exactly the values the PyArrow path would (NaN
aside, which the relation below turns into NULL as that path does), so the compiled rules run
straight over it, with the row number from ``file_row_number``, and nothing crosses into Python
but the rejected rows. The one reader-level rule that applies to such files, a control character
in an id, is checked in the same query (``validation_sql(control_ids=...)``).

Anything else (another type, a name clash with ``file_row_number``, text DuckDB refuses as
UTF-8, a damaged file) is read by the PyArrow path instead; the two are checked against each
other on planted defects (``tests/ingest/test_fast_paths.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from shopseq.ingest.csvrecords import LINE_COLUMN
from shopseq.ingest.layouts import Layout
from shopseq.ingest.readers import file_format, id_source_columns, needed_columns
from shopseq.schema import TS

__all__ = ["NativeParquet", "native_parquet"]


@dataclass(frozen=True, slots=True)
class NativeParquet:
    """A plain Parquet file as a DuckDB relation.

    Attributes:
        relation: SQL relation of the needed columns plus ``LINE_COLUMN`` (1-based row).
        schema: Arrow schema of that relation (what ``validation_sql`` types by).
        rows: Rows of the file (from its footer).
        ids: Id source columns the query must check for control characters.
    """

    relation: str
    schema: pa.Schema
    rows: int
    ids: list[str]


def _plain(t: pa.DataType, *, is_id: bool, is_ts: bool) -> bool:
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t):
        return True
    if is_ts:
        return bool(pa.types.is_timestamp(t) and t.unit == "us" and t.tz is None)
    if is_id:
        return False
    return bool(pa.types.is_float32(t) or pa.types.is_float64(t) or pa.types.is_boolean(t))


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def native_parquet(path: Path, layout: Layout) -> NativeParquet | None:
    """The DuckDB relation of ``path`` if it is a plain Parquet file, else None.

    Args:
        path: Input file.
        layout: Its layout.

    Returns:
        The relation, or None when the file must go through the PyArrow reader (not Parquet,
        not plain, missing columns, unreadable footer: that reader reports those).
    """
    if file_format(path, layout) != "parquet":
        return None
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        rows = parquet.metadata.num_rows
    except (OSError, pa.ArrowException, ValueError, TypeError):
        return None
    found = [str(n) for n in schema.names]
    if "file_row_number" in found or LINE_COLUMN in found or len(set(found)) != len(found):
        return None
    if any(c not in found for c in layout.required_source_columns()):
        return None
    needed = needed_columns(layout, found)
    ids = set(id_source_columns(layout))
    ts_source = layout.columns.get(TS)
    fields = [schema.field(name) for name in needed]
    for f in fields:
        if not _plain(f.type, is_id=f.name in ids, is_ts=f.name == ts_source):
            return None
    columns = []
    for f in fields:
        name = _ident(f.name)
        if pa.types.is_floating(f.type):
            # NaN in a typed float column is how pandas writes a missing value.
            columns.append(f"CASE WHEN isnan({name}) THEN NULL ELSE {name} END AS {name}")
        else:
            columns.append(name)
    select = ", ".join([*columns, f"file_row_number + 1 AS {LINE_COLUMN}"])
    relation = f"(SELECT {select} FROM read_parquet({_literal(path)}, file_row_number = true))"
    out_schema = pa.schema(
        [pa.field(f.name, f.type) for f in fields] + [pa.field(LINE_COLUMN, pa.int64())]
    )
    return NativeParquet(
        relation, out_schema, int(rows), [c for c in id_source_columns(layout) if c in needed]
    )
