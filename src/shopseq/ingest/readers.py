"""Streaming readers that keep the file location of every row.

Each reader yields :class:`RawBatch` objects: the source columns of up to one block of rows, a
``__line`` column with each row's physical line, and the rows that could not even be split into
columns (wrong column count, broken encoding, malformed JSON). Memory is bounded by the block size,
not by the file.

CSV goes through PyArrow's streaming reader, single-threaded so that it reports the line number of
every row it cannot split; all CSV columns are read as bytes and decoded here so that one row with
broken UTF-8 is quarantined instead of failing its whole block.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import zstandard

from shopseq.errors import SchemaMismatchError
from shopseq.ingest.layouts import Layout
from shopseq.ingest.quarantine import QuarantineReason, RejectedRow

__all__ = ["DEFAULT_BLOCK_BYTES", "LINE_COLUMN", "RawBatch", "file_format", "read_batches"]

#: Name of the column holding each row's physical line number.
LINE_COLUMN = "__line"
#: Bytes of input parsed per batch: bounds memory independently of the file size.
DEFAULT_BLOCK_BYTES = 16 << 20
_MAX_RAW = 200  # characters of a bad row kept in the quarantine table


@dataclass(frozen=True, slots=True)
class RawBatch:
    """One block of rows as read from a file.

    Attributes:
        table: Source columns (strings, or typed for Parquet) plus ``LINE_COLUMN`` (int64).
        rejected: Rows of this block that could not be split into columns.
    """

    table: pa.Table
    rejected: list[RejectedRow]


def file_format(path: Path, layout: Layout) -> str:
    """Decide how to read ``path``: the layout's ``file_format`` or the file suffix.

    Args:
        path: Input file.
        layout: Its layout.

    Returns:
        ``"csv"``, ``"parquet"`` or ``"jsonl"``.
    """
    if layout.file_format:
        return layout.file_format
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in (".gz", ".zst", ".bz2")]
    last = suffixes[-1] if suffixes else ""
    if last in (".parquet", ".pq"):
        return "parquet"
    if last in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "csv"


def read_batches(
    path: Path, layout: Layout, *, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> Iterator[RawBatch]:
    """Stream ``path`` in blocks according to ``layout``.

    Args:
        path: Input file (``.gz``, ``.zst`` and ``.bz2`` text files are decompressed on the fly).
        layout: How the file is laid out.
        block_bytes: Approximate bytes per batch.

    Yields:
        Batches in file order.

    Raises:
        SchemaMismatchError: If the file cannot be opened as the layout says or lacks columns.
    """
    kind = file_format(path, layout)
    if kind == "parquet":
        yield from _read_parquet(path, layout, block_bytes)
    elif kind == "jsonl" or layout.delimiter == "whitespace":
        yield from _read_lines(path, layout, block_bytes, as_json=kind == "jsonl")
    else:
        yield from _read_csv(path, layout, block_bytes)


def _check_columns(path: Path, layout: Layout, found: list[str]) -> None:
    missing = [c for c in layout.required_source_columns() if c not in found]
    if missing:
        raise SchemaMismatchError(
            path,
            missing=missing,
            found=found,
            hint=f"the '{layout.name}' layout expects them; pass --layout NAME or map them with "
            "--column canonical=source",
        )


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_RAW else text[:_MAX_RAW] + "…"


def _open_stream(path: Path) -> pa.NativeFile:
    try:
        return pa.input_stream(str(path), compression="detect")
    except (OSError, pa.ArrowInvalid) as err:
        raise SchemaMismatchError(path, detail=f"cannot open: {err}") from err


def _open_binary(path: Path) -> BinaryIO:
    """Open ``path`` as a Python binary file (for line-wise reading), decompressing by suffix."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".gz":
            return cast(BinaryIO, gzip.open(path, "rb"))
        if suffix == ".bz2":
            return cast(BinaryIO, bz2.open(path, "rb"))
        if suffix == ".zst":
            # zstandard's reader has no readline(); buffering adds it.
            return cast(BinaryIO, io.BufferedReader(zstandard.open(path, "rb")))
        return path.open("rb")
    except OSError as err:
        raise SchemaMismatchError(path, detail=f"cannot open: {err}") from err


def _csv_header(path: Path, layout: Layout) -> list[str]:
    if not layout.header:
        return list(layout.source_columns or ())
    with _open_binary(path) as stream:
        first = stream.readline()
    try:
        text = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError as err:
        raise SchemaMismatchError(path, detail="the header line is not valid UTF-8") from err
    reader = pacsv.open_csv(
        io.BytesIO(text.encode() + b"\n"),
        parse_options=pacsv.ParseOptions(delimiter=layout.delimiter),
        read_options=pacsv.ReadOptions(autogenerate_column_names=False),
    )
    return [str(name) for name in reader.schema.names]


def _read_csv(path: Path, layout: Layout, block_bytes: int) -> Iterator[RawBatch]:
    names = _csv_header(path, layout)
    _check_columns(path, layout, names)
    skipped: dict[int, RejectedRow] = {}
    n_columns = len(names)

    def on_invalid(row: Any) -> str:
        skipped[int(row.number)] = RejectedRow(
            line=int(row.number),
            column="",
            raw_value=_clip(str(row.text)),
            reason=QuarantineReason.WRONG_COLUMN_COUNT,
            detail=f"has {row.actual_columns} fields; expected {n_columns} ({', '.join(names)})",
        )
        return "skip"

    try:
        reader = pacsv.open_csv(
            _open_stream(path),
            read_options=pacsv.ReadOptions(
                use_threads=False,  # threaded parsing loses the line numbers of bad rows
                block_size=block_bytes,
                column_names=names,
                skip_rows=1 if layout.header else 0,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=layout.delimiter,
                invalid_row_handler=on_invalid,
                ignore_empty_lines=False,  # an empty line is quarantined, never silently lost
                newlines_in_values=False,  # one record per line keeps line numbers exact
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.binary()),
                check_utf8=False,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as err:
        raise SchemaMismatchError(path, detail=f"cannot be read as CSV: {err}") from err
    next_line = 2 if layout.header else 1
    emitted: set[int] = set()
    for batch in _iter_reader(path, reader):
        n = batch.num_rows
        # Accepted rows are the next n line numbers that the parser did not skip.
        skipped_lines = np.fromiter(skipped, dtype=np.int64, count=len(skipped))
        extra = 0
        while True:
            hi = next_line + n + extra
            k = int(np.count_nonzero((skipped_lines >= next_line) & (skipped_lines < hi)))
            if k == extra:
                break
            extra = k
        candidates = np.arange(next_line, hi, dtype=np.int64)
        if extra:
            candidates = candidates[~np.isin(candidates, skipped_lines)]
        next_line = hi
        rejected = [skipped[line] for line in sorted(skipped) if line < hi and line not in emitted]
        emitted.update(r.line for r in rejected)
        table, bad = _decode(pa.Table.from_batches([batch]), candidates)
        yield RawBatch(table=table, rejected=rejected + bad)
    tail = [skipped[line] for line in sorted(skipped) if line not in emitted]
    if tail:
        empty = pa.table(
            {
                **{name: pa.array([], pa.string()) for name in names},
                LINE_COLUMN: pa.array([], pa.int64()),
            }
        )
        yield RawBatch(table=empty, rejected=tail)


def _iter_reader(path: Path, reader: pacsv.CSVStreamingReader) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as err:
            raise SchemaMismatchError(path, detail=f"cannot be parsed as CSV: {err}") from err
        yield batch


def _decode(table: pa.Table, lines: np.ndarray) -> tuple[pa.Table, list[RejectedRow]]:
    """Cast byte columns to UTF-8 strings, quarantining the rows whose bytes are not UTF-8."""
    bad_mask = np.zeros(table.num_rows, dtype=bool)
    rejected: list[RejectedRow] = []
    columns: dict[str, pa.Array] = {}
    for name in table.column_names:
        column = table.column(name)
        try:
            columns[name] = pc.cast(column, pa.string())
            continue
        except pa.ArrowInvalid:
            pass
        # Rare slow path: find the offending cells of this one block in Python.
        values = column.to_pylist()
        for i, value in enumerate(values):
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as err:
                if not bad_mask[i]:
                    rejected.append(
                        RejectedRow(
                            line=int(lines[i]),
                            column=name,
                            raw_value=_clip(value.decode("utf-8", "backslashreplace")),
                            reason=QuarantineReason.BAD_ENCODING,
                            detail=f"is not valid UTF-8 ({err.reason} at byte {err.start}); "
                            "expected UTF-8 text (re-encode the file, e.g. iconv -t utf-8)",
                        )
                    )
                bad_mask[i] = True
        columns[name] = pa.array(
            [None if bad_mask[i] else v.decode() for i, v in enumerate(values)], pa.string()
        )
    if bad_mask.any():
        keep = pa.array(~bad_mask)
        columns = {name: pc.filter(col, keep) for name, col in columns.items()}
        lines = lines[~bad_mask]
    columns[LINE_COLUMN] = pa.array(lines, pa.int64())
    return pa.table(columns), sorted(rejected, key=lambda r: r.line)


def _read_parquet(path: Path, layout: Layout, block_bytes: int) -> Iterator[RawBatch]:
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise SchemaMismatchError(path, detail=f"cannot be read as Parquet: {err}") from err
    found = list(parquet.schema_arrow.names)
    _check_columns(path, layout, found)
    needed = [c for c in layout.mapped_source_columns() if c in found]
    row_bytes = max(1, parquet.metadata.serialized_size // max(1, parquet.metadata.num_rows))
    batch_rows = max(10_000, min(1_000_000, block_bytes // max(row_bytes, 16)))
    start = 1
    for batch in parquet.iter_batches(batch_size=batch_rows, columns=needed):
        columns = {}
        for name in needed:
            column = batch.column(name)
            if pa.types.is_floating(column.type) and _all_integral(column):
                # Ids stored as float (pandas NaN-able ints, e.g. 17850.0) read as '17850'.
                column = pc.cast(column, pa.int64())
            columns[name] = column
        columns[LINE_COLUMN] = pa.array(np.arange(start, start + batch.num_rows), pa.int64())
        start += batch.num_rows
        yield RawBatch(table=pa.table(columns), rejected=[])


def _all_integral(column: pa.Array) -> bool:
    values = column.drop_null().to_numpy(zero_copy_only=False)
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def _read_lines(
    path: Path, layout: Layout, block_bytes: int, *, as_json: bool
) -> Iterator[RawBatch]:
    """Read JSON lines or whitespace-separated text, one Python step per line.

    These formats have no streaming Arrow reader that keeps line numbers for bad rows; they are
    far rarer than CSV, so a simple line loop is the honest trade (slower, exact).
    """
    names = layout.mapped_source_columns() if as_json else _whitespace_header(path, layout)
    if not as_json:
        _check_columns(path, layout, names)
    line_no = 0
    with _open_binary(path) as stream:
        if not as_json and layout.header:
            stream.readline()
            line_no = 1
        while True:
            chunk = stream.read(block_bytes)
            if not chunk:
                break
            if not chunk.endswith(b"\n"):
                chunk += stream.readline()
            rows: dict[str, list[str | None]] = {name: [] for name in names}
            lines: list[int] = []
            rejected: list[RejectedRow] = []
            for raw in chunk.splitlines():
                line_no += 1
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    rejected.append(
                        RejectedRow(
                            line_no,
                            "",
                            _clip(raw.decode("utf-8", "backslashreplace")),
                            QuarantineReason.BAD_ENCODING,
                            f"is not valid UTF-8 ({err.reason} at byte {err.start}); "
                            "expected UTF-8",
                        )
                    )
                    continue
                fields = _json_fields(text, names) if as_json else _split_fields(text, names)
                if isinstance(fields, RejectedRow):
                    rejected.append(replace(fields, line=line_no))
                    continue
                for name, value in zip(names, fields, strict=True):
                    rows[name].append(value)
                lines.append(line_no)
            table = pa.table(
                {
                    **{n: pa.array(v, pa.string()) for n, v in rows.items()},
                    LINE_COLUMN: pa.array(lines, pa.int64()),
                }
            )
            yield RawBatch(table=table, rejected=rejected)


def _whitespace_header(path: Path, layout: Layout) -> list[str]:
    if not layout.header:
        return list(layout.source_columns or ())
    with _open_binary(path) as stream:
        return stream.readline().decode("utf-8-sig", "replace").split()


def _split_fields(text: str, names: list[str]) -> list[str | None] | RejectedRow:
    fields = text.split()
    if len(fields) != len(names):
        return RejectedRow(
            0,
            "",
            _clip(text),
            QuarantineReason.WRONG_COLUMN_COUNT,
            f"has {len(fields)} fields; expected {len(names)} ({', '.join(names)})",
        )
    return list(fields)


def _json_fields(text: str, names: list[str]) -> list[str | None] | RejectedRow:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        return RejectedRow(
            0,
            "",
            _clip(text),
            QuarantineReason.MALFORMED_ROW,
            f"is not valid JSON ({err.msg} at column {err.colno}); expected one "
            "JSON object per line",
        )
    if not isinstance(record, dict):
        return RejectedRow(
            0,
            "",
            _clip(text),
            QuarantineReason.MALFORMED_ROW,
            f"is a JSON {type(record).__name__}; expected one JSON object per line",
        )
    return [_json_text(record.get(name)) for name in names]


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)
