"""Streaming readers that keep the file location of every record.

Each reader yields :class:`RawBatch` objects: the needed source columns of up to one block of
records, a ``__line`` column with each record's physical line (row number for Parquet), the
records rejected while reading (wrong column count, broken encoding, malformed JSON, unterminated
quotes, too-long lines, ids that are not plain scalars) and the physical lines they cover, so that
ingest can reconcile records against the file's lines, not only against the parser's count.

Memory is bounded by the block size and the line limit, never by the file (see ``lines.py``).
Every error a reader raises is a :class:`ShopseqError` naming the file (and line when known):
codec, Arrow, OS and Unicode errors are translated where they happen.
"""

from __future__ import annotations

import csv
import difflib
import json
import math
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shopseq.errors import SchemaMismatchError, UnreadableFileError
from shopseq.ingest.csvrecords import LINE_COLUMN, CsvRecords, ParsedBlock, clip, decode_binary
from shopseq.ingest.layouts import Layout
from shopseq.ingest.lines import DEFAULT_MAX_LINE_BYTES, LineBlock, LongLine, iter_line_blocks
from shopseq.ingest.quarantine import CONTROL_CHARACTER_ID, QuarantineReason, RejectedRow
from shopseq.ingest.sources import COMPRESSED_SUFFIXES, iter_bytes, sniff
from shopseq.schema import CATEGORY_ID, ITEM_ID, SESSION_ID, TS, USER_ID

__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "DEFAULT_MAX_LINE_BYTES",
    "LINE_COLUMN",
    "RawBatch",
    "ReadStats",
    "file_format",
    "id_source_columns",
    "needed_columns",
    "read_batches",
]

#: Bytes of input parsed per batch: bounds memory independently of the file size.
DEFAULT_BLOCK_BYTES = 16 << 20
#: Largest integer a float id may hold and still be read as that integer exactly.
_MAX_EXACT_FLOAT = 2**53
_ID_CANONICAL = (USER_ID, ITEM_ID, SESSION_ID, CATEGORY_ID)


@dataclass(frozen=True, slots=True)
class RawBatch:
    """One block of records as read from a file.

    Attributes:
        table: Needed source columns (strings, or typed for Parquet) plus ``LINE_COLUMN``.
        rejected: Records of this block rejected while reading.
        lines: Physical lines covered by this block's records (rows, for Parquet).
    """

    table: pa.Table
    rejected: list[RejectedRow]
    lines: int = 0

    @property
    def records(self) -> int:
        """Records in this batch (accepted by the reader or not)."""
        return int(self.table.num_rows) + len(self.rejected)


@dataclass(slots=True)
class ReadStats:
    """What a reader saw of the file as a whole, for reconciliation.

    Attributes:
        header_lines: Physical lines taken by the header.
        physical_lines: Physical lines in the file (text), counted where the lines are cut,
            independently of the parser; rows for Parquet.
    """

    header_lines: int = 0
    physical_lines: int = 0
    _counter: list[int] = field(default_factory=lambda: [0])


def file_format(path: Path, layout: Layout) -> str:
    """Decide how to read ``path``: the layout's ``file_format`` or the file suffix.

    Suffixes are compared case-insensitively, after dropping a compression suffix.

    Args:
        path: Input file.
        layout: Its layout.

    Returns:
        ``"csv"``, ``"parquet"`` or ``"jsonl"``.
    """
    if layout.file_format:
        return layout.file_format
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in COMPRESSED_SUFFIXES]
    last = suffixes[-1] if suffixes else ""
    if last in (".parquet", ".pq"):
        return "parquet"
    if last in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "csv"


def id_source_columns(layout: Layout) -> list[str]:
    """Source columns that hold ids (user, item, session, category, the user fallback).

    Args:
        layout: The layout.

    Returns:
        Source column names without repeats.
    """
    names = [layout.columns[c] for c in _ID_CANONICAL if c in layout.columns]
    if layout.user_fallback_column:
        names.append(layout.user_fallback_column)
    return list(dict.fromkeys(names))


def read_batches(
    path: Path,
    layout: Layout,
    *,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    stats: ReadStats | None = None,
    use_threads: bool = True,
) -> Generator[RawBatch, None, None]:
    """Stream ``path`` in blocks according to ``layout``.

    Args:
        path: Input file (text may be gzip, zstd, bzip2 or xz compressed: told by content).
        layout: How the file is laid out.
        block_bytes: Approximate bytes per batch.
        max_line_bytes: Longest line read; longer lines are quarantined as ``line_too_long``.
        stats: Filled with the header and physical line counts as reading goes.
        use_threads: Let Arrow parse with several threads.

    Yields:
        Batches in file order.

    Raises:
        SchemaMismatchError: If the file lacks the layout's columns or names one twice.
        UnreadableFileError: If the file cannot be read at all (damaged, truncated, UTF-16, ...).
    """
    stats = stats if stats is not None else ReadStats()
    kind = file_format(path, layout)
    head = sniff(path, 4)
    if head.startswith(b"PK\x03\x04"):
        raise UnreadableFileError(path, "is a ZIP archive; unzip it and ingest the files inside")
    if kind != "parquet" and head == b"PAR1":
        raise UnreadableFileError(
            path,
            f"is a Parquet file (it starts with PAR1) but is read as {kind}; name it *.parquet "
            "or set file_format = 'parquet' in the layout",
        )
    ids = id_source_columns(layout)
    if kind == "parquet":
        batches = _read_parquet(path, layout, block_bytes, stats)
    elif kind == "jsonl":
        batches = _read_json_lines(path, layout, block_bytes, max_line_bytes, stats)
    elif layout.delimiter == "whitespace":
        batches = _read_whitespace(path, layout, block_bytes, max_line_bytes, stats)
    else:
        batches = _read_csv(path, layout, block_bytes, max_line_bytes, stats, use_threads)
    for batch in batches:
        stats.physical_lines = stats._counter[0] if kind != "parquet" else stats.physical_lines
        yield _check_ids(batch, ids)
    if kind != "parquet":
        stats.physical_lines = stats._counter[0]


# -- shared ----------------------------------------------------------------------------------


def _normalised(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def closest_columns(missing: list[str], found: list[str]) -> dict[str, str]:
    """For each missing column, the found column whose name is closest (if any is close).

    Names are compared lower-case without spaces or punctuation first (``Customer ID`` is
    ``CustomerID``), then by similarity (``difflib``, the standard library's matcher).

    Args:
        missing: Column names the layout needs.
        found: Column names the file has.

    Returns:
        Missing name -> suggested found name.
    """
    by_key = {_normalised(f): f for f in found}
    suggestions: dict[str, str] = {}
    for name in missing:
        key = _normalised(name)
        if key in by_key:
            suggestions[name] = by_key[key]
            continue
        close = difflib.get_close_matches(key, list(by_key), n=1, cutoff=0.6)
        if close:
            suggestions[name] = by_key[close[0]]
    return suggestions


def _check_columns(path: Path, layout: Layout, found: list[str]) -> None:
    missing = [c for c in layout.required_source_columns() if c not in found]
    if missing:
        close = closest_columns(missing, found)
        canonical = {source: c for c, source in layout.columns.items()}
        guesses = "; ".join(
            f"did you mean {match!r} for {name!r}"
            + (f" (--column {canonical[name]}={match!r})" if name in canonical else "")
            for name, match in close.items()
        )
        raise SchemaMismatchError(
            path,
            missing=missing,
            found=found,
            hint=(guesses + "; " if guesses else "")
            + f"the '{layout.name}' layout expects them; pass --layout NAME or map them with "
            "--column canonical=source",
        )
    needed = [c for c in layout.mapped_source_columns() if c in found]
    for name in needed:
        where = [i + 1 for i, n in enumerate(found) if n == name]
        if len(where) > 1:
            raise SchemaMismatchError(
                path,
                detail=f"column {name!r} appears {len(where)} times in the header (fields "
                f"{', '.join(map(str, where))}): which one to read is ambiguous; rename the "
                "others",
            )


def needed_columns(layout: Layout, found: list[str]) -> list[str]:
    """The layout's source columns that ``found`` holds, in the layout's order."""
    return [c for c in layout.mapped_source_columns() if c in found]


def _long_line(item: LongLine, max_line_bytes: int) -> RejectedRow:
    return RejectedRow(
        item.line,
        "",
        clip(item.head.decode("utf-8", "backslashreplace")),
        QuarantineReason.LINE_TOO_LONG,
        f"is longer than the line limit of {max_line_bytes:,} bytes (a line break is missing, "
        "or raise --max-line-bytes)",
    )


def _empty(names: list[str]) -> pa.Table:
    return pa.table(
        {
            **{name: pa.array([], pa.string()) for name in names},
            LINE_COLUMN: pa.array([], pa.int64()),
        }
    )


def _header_text(path: Path, raw: bytes, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        column = len(raw[: err.start].decode("utf-8", "replace")) + 1
        raise UnreadableFileError(
            path,
            f"the header is not valid UTF-8 ({err.reason}: byte 0x{raw[err.start]:02x}); expected "
            "UTF-8 text (re-encode the file, e.g. iconv -f latin1 -t utf-8)",
            line=line,
            column=column,
        ) from err


def _no_header(path: Path, layout: Layout) -> SchemaMismatchError:
    return SchemaMismatchError(
        path,
        detail="is empty: it has no header line",
        missing=layout.required_source_columns(),
        found=[],
    )


def _first_line_too_long(path: Path, max_line_bytes: int) -> UnreadableFileError:
    return UnreadableFileError(
        path,
        f"the first line is longer than {max_line_bytes:,} bytes (no line break found), so it "
        "cannot be a header; is this a delimited text file?",
        line=1,
    )


# -- CSV -------------------------------------------------------------------------------------


def _csv_header(
    path: Path,
    layout: Layout,
    items: Iterator[LineBlock | LongLine],
    max_line_bytes: int,
) -> tuple[list[str], int, LineBlock | None]:
    """Read the header record: (names, its physical lines, what is left of its block)."""
    item = next(items, None)
    if item is None:
        raise _no_header(path, layout)
    if isinstance(item, LongLine):
        raise _first_line_too_long(path, max_line_bytes)
    block = item
    lines: list[str] = []
    i = 0
    while True:
        while i < block.n_lines:
            raw = block.data[int(block.starts[i]) : int(block.nexts[i])]
            lines.append(_header_text(path, raw, block.first_line + i))
            i += 1
            try:
                reader = csv.reader(
                    lines, delimiter=layout.delimiter, quotechar='"', doublequote=True, strict=True
                )
                names = next(reader)
            except csv.Error as err:
                if "unexpected end of data" in str(err):
                    continue  # a quoted header name spans lines: read on
                raise UnreadableFileError(
                    path, f"the header is not valid CSV ({err})", line=1
                ) from err
            except StopIteration:
                names = []
            rest = block.tail(i)
            return [str(n) for n in names], i, rest if rest.n_lines else None
        nxt = next(items, None)
        if nxt is None or isinstance(nxt, LongLine) or len(block.data) > max_line_bytes:
            raise UnreadableFileError(
                path, "the header opens a quoted field that never closes", line=1
            )
        block = block.then(nxt)


def _read_csv(
    path: Path,
    layout: Layout,
    block_bytes: int,
    max_line_bytes: int,
    stats: ReadStats,
    use_threads: bool,
) -> Iterator[RawBatch]:
    items = iter_line_blocks(
        path,
        iter_bytes(path),
        cr_newline=True,
        block_bytes=block_bytes,
        max_line_bytes=max_line_bytes,
        counter=stats._counter,
    )
    first: LineBlock | None = None
    if layout.header:
        names, stats.header_lines, first = _csv_header(path, layout, items, max_line_bytes)
    else:
        names = list(layout.source_columns or ())
    _check_columns(path, layout, names)
    needed = needed_columns(layout, names)
    parser = CsvRecords(
        delimiter=layout.delimiter,
        names=names,
        needed=needed,
        max_record_bytes=max_line_bytes,
        use_threads=use_threads,
    )

    def batch(parsed: ParsedBlock | None) -> RawBatch | None:
        if parsed is None or (not parsed.lines and not parsed.table.num_rows):
            return None
        return RawBatch(parsed.table, parsed.rejected, parsed.lines)

    def all_items() -> Iterator[LineBlock | LongLine]:
        if first is not None:
            yield first
        yield from items

    # A record still open at the end of a block waits for the next one; it is resolved (its
    # quote cannot close any more) before a too-long line and at the end of the file.
    for item in all_items():
        if isinstance(item, LongLine):
            done = batch(parser.finish())
            if done is not None:
                yield done
            yield RawBatch(_empty(needed), [_long_line(item, max_line_bytes)], 1)
            continue
        done = batch(parser.feed(item, final=False))
        if done is not None:
            yield done
    done = batch(parser.finish())
    if done is not None:
        yield done


# -- whitespace-separated and JSON lines -------------------------------------------------------


def _line_items(
    path: Path, block_bytes: int, max_line_bytes: int, stats: ReadStats, *, cr_newline: bool
) -> Iterator[LineBlock | LongLine]:
    return iter_line_blocks(
        path,
        iter_bytes(path),
        cr_newline=cr_newline,
        block_bytes=block_bytes,
        max_line_bytes=max_line_bytes,
        counter=stats._counter,
    )


def _bad_encoding(line: int, raw: bytes, err: UnicodeDecodeError) -> RejectedRow:
    return RejectedRow(
        line,
        "",
        clip(raw[:800].decode("utf-8", "backslashreplace")),
        QuarantineReason.BAD_ENCODING,
        f"is not valid UTF-8 ({err.reason} at byte {err.start}); expected UTF-8 text "
        "(re-encode the file, e.g. iconv -t utf-8)",
    )


def _read_whitespace(
    path: Path, layout: Layout, block_bytes: int, max_line_bytes: int, stats: ReadStats
) -> Iterator[RawBatch]:
    """Whitespace-separated text (runs of spaces or tabs separate fields; no quoting)."""
    items = _line_items(path, block_bytes, max_line_bytes, stats, cr_newline=True)
    names: list[str] | None = None if layout.header else list(layout.source_columns or ())
    needed: list[str] = []
    positions: list[int] = []
    if names is not None:
        _check_columns(path, layout, names)
        needed = needed_columns(layout, names)
        positions = [names.index(n) for n in needed]
    for item in items:
        if names is None:
            if isinstance(item, LongLine):
                raise _first_line_too_long(path, max_line_bytes)
            names = _header_text(path, item.line(0), item.first_line).split()
            stats.header_lines = 1
            _check_columns(path, layout, names)
            needed = needed_columns(layout, names)
            positions = [names.index(n) for n in needed]
            item = item.tail(1)
        if isinstance(item, LongLine):
            yield RawBatch(_empty(needed), [_long_line(item, max_line_bytes)], 1)
            continue
        columns: list[list[str | None]] = [[] for _ in needed]
        lines: list[int] = []
        rejected: list[RejectedRow] = []
        expected = f"expected {len(names)} ({', '.join(names)})"
        for i in range(item.n_lines):
            line_no = item.first_line + i
            raw = item.line(i)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                rejected.append(_bad_encoding(line_no, raw, err))
                continue
            fields = text.split()
            if len(fields) != len(names):
                rejected.append(
                    RejectedRow(
                        line_no,
                        "",
                        clip(text),
                        QuarantineReason.WRONG_COLUMN_COUNT,
                        f"has {len(fields)} fields; {expected}",
                    )
                )
                continue
            for column, p in zip(columns, positions, strict=True):
                column.append(fields[p])
            lines.append(line_no)
        table = pa.table(
            {
                **{n: pa.array(v, pa.string()) for n, v in zip(needed, columns, strict=True)},
                LINE_COLUMN: pa.array(lines, pa.int64()),
            }
        )
        yield RawBatch(table, rejected, item.n_lines)
    if names is None and layout.header:
        raise _no_header(path, layout)


class _DuplicateKey(ValueError):
    pass


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return record


def _read_json_lines(
    path: Path, layout: Layout, block_bytes: int, max_line_bytes: int, stats: ReadStats
) -> Iterator[RawBatch]:
    """JSON lines: one object per LF-terminated line (a lone CR is JSON whitespace)."""
    names = layout.mapped_source_columns()
    ids = set(id_source_columns(layout))
    is_id = [n in ids for n in names]
    decoder = json.JSONDecoder(object_pairs_hook=_json_object)
    for item in _line_items(path, block_bytes, max_line_bytes, stats, cr_newline=False):
        if isinstance(item, LongLine):
            yield RawBatch(_empty(names), [_long_line(item, max_line_bytes)], 1)
            continue
        columns: list[list[str | None]] = [[] for _ in names]
        lines: list[int] = []
        rejected: list[RejectedRow] = []
        for i in range(item.n_lines):
            line_no = item.first_line + i
            raw = item.line(i)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                rejected.append(_bad_encoding(line_no, raw, err))
                continue
            problem = _json_problem(decoder, text, names)
            if isinstance(problem, str):
                rejected.append(
                    RejectedRow(line_no, "", clip(text), QuarantineReason.MALFORMED_ROW, problem)
                )
                continue
            values: list[str | None] = []
            bad: RejectedRow | None = None
            escapes = "\\ud" in text or "\\uD" in text  # may hold an unpaired surrogate
            for name, value, id_column in zip(names, problem, is_id, strict=True):
                rendered = _json_id(value) if id_column else _json_text(value)
                if isinstance(rendered, tuple):
                    bad = RejectedRow(
                        line_no, name, clip(rendered[1]), QuarantineReason.BAD_ID, rendered[0]
                    )
                    break
                if escapes and rendered is not None and not _encodable(rendered):
                    bad = RejectedRow(
                        line_no,
                        name,
                        clip(rendered),
                        QuarantineReason.BAD_ENCODING,
                        "holds an unpaired surrogate escape (\\ud800-\\udfff), which is not "
                        "valid Unicode; expected UTF-8 text",
                    )
                    break
                values.append(rendered)
            if bad is not None:
                rejected.append(bad)
                continue
            for column, value in zip(columns, values, strict=True):
                column.append(value)
            lines.append(line_no)
        table = pa.table(
            {
                **{n: pa.array(v, pa.string()) for n, v in zip(names, columns, strict=True)},
                LINE_COLUMN: pa.array(lines, pa.int64()),
            }
        )
        yield RawBatch(table, rejected, item.n_lines)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_problem(decoder: json.JSONDecoder, text: str, names: list[str]) -> str | list[Any]:
    """The mapped values of one JSON line, or what is wrong with it."""
    if not text.strip():
        return "is an empty line; expected one JSON object per line"
    try:
        record = decoder.decode(text)
    except json.JSONDecodeError as err:
        return (
            f"is not valid JSON ({err.msg} at column {err.colno}); expected one JSON object per "
            "line"
        )
    except _DuplicateKey as err:
        return f"has the key {str(err)!r} twice; which value to read is ambiguous"
    except RecursionError:
        return "is nested too deeply to read; expected one flat JSON object per line"
    if not isinstance(record, dict):
        kind = {list: "array", str: "string", bool: "boolean"}.get(type(record), "number")
        if record is None:
            kind = "null"
        return f"is a JSON {kind}; expected one JSON object per line"
    return [record.get(name) for name in names]


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a value"


def _json_id(value: Any) -> str | tuple[str, str] | None:
    """Render an id; a (detail, raw) pair when it is not a plain scalar."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | dict | list):
        return (
            f"is {_json_kind(value)}; expected a string or an integer id",
            json.dumps(value, ensure_ascii=False)[:800],
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_id(value)
    return (f"is {_json_kind(value)}; expected a string or an integer id", repr(value))


def _float_id(value: float) -> str | tuple[str, str] | None:
    if math.isnan(value):
        return None
    if not math.isfinite(value):
        return ("is not a finite number; expected a string or an integer id", repr(value))
    if value != math.floor(value):
        return ("is a fractional number; expected a string or an integer id", repr(value))
    if abs(value) > _MAX_EXACT_FLOAT:
        return (
            "is a number too large to be an exact integer (beyond 2^53); store such ids as text",
            repr(value),
        )
    return str(int(value))


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return None  # NaN (a non-standard JSON literal) stands for a missing value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, ensure_ascii=False)


# -- Parquet ---------------------------------------------------------------------------------


def _parquet_error(path: Path, err: BaseException, where: str) -> UnreadableFileError:
    return UnreadableFileError(
        path,
        f"cannot be read as Parquet {where}({type(err).__name__}: {str(err)[:300]}); the file is "
        "damaged or not Parquet: nothing of it was ingested",
    )


def _read_parquet(
    path: Path, layout: Layout, block_bytes: int, stats: ReadStats
) -> Iterator[RawBatch]:
    try:
        parquet = pq.ParquetFile(path, buffer_size=8 << 20, pre_buffer=False)
        schema = parquet.schema_arrow
        metadata = parquet.metadata
    except (OSError, pa.ArrowException, ValueError, TypeError) as err:
        raise _parquet_error(path, err, "") from err
    found = [str(n) for n in schema.names]
    _check_columns(path, layout, found)
    needed = needed_columns(layout, found)
    ids = set(id_source_columns(layout))
    ts_source = layout.columns.get(TS)
    row_bytes = max(1, metadata.serialized_size // max(1, metadata.num_rows))
    batch_rows = max(10_000, min(1_000_000, block_bytes // max(row_bytes, 16)))
    start = 1
    batches = parquet.iter_batches(batch_size=batch_rows, columns=needed, use_threads=True)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            break
        except (OSError, pa.ArrowException, ValueError, TypeError, IndexError) as err:
            raise _parquet_error(path, err, f"after row {start - 1:,} ") from err
        lines = np.arange(start, start + batch.num_rows, dtype=np.int64)
        start += batch.num_rows
        stats.physical_lines = start - 1
        bad = np.zeros(batch.num_rows, dtype=bool)
        rejected: list[RejectedRow] = []
        columns: dict[str, pa.Array] = {}
        for name in needed:
            column = batch.column(batch.schema.get_field_index(name))
            if name in ids:
                column = _parquet_id(name, column, lines, bad, rejected)
            elif name == ts_source:
                column = _parquet_ts(name, column, lines, bad, rejected)
            else:
                column = _parquet_plain(column)
            columns[name] = column
        table = pa.table({**columns, LINE_COLUMN: pa.array(lines, pa.int64())})
        if bad.any():
            table = table.filter(pa.array(~bad))
        table, undecodable = _decode_binary_columns(table)
        rejected += undecodable
        rejected.sort(key=lambda r: r.line)
        yield RawBatch(table, rejected, batch.num_rows)


def _reject(
    name: str,
    column: pa.Array,
    mask: np.ndarray,
    lines: np.ndarray,
    bad: np.ndarray,
    rejected: list[RejectedRow],
    reason: QuarantineReason,
    detail: str,
) -> None:
    for i in np.flatnonzero(mask & ~bad).tolist():
        rejected.append(RejectedRow(int(lines[i]), name, _scalar_text(column, i), reason, detail))
    bad |= mask


def _scalar_text(column: pa.Array, i: int) -> str:
    """One value as text for the quarantine, even when Python cannot represent it."""
    try:
        return clip(repr(column[i].as_py()))
    except (OverflowError, ValueError, pa.ArrowException):
        pass
    t = column.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return f"{int(_int64_values(column.slice(i, 1))[0])} ({t})"
    return f"<{t} value>"


def _not_null(column: pa.Array) -> np.ndarray:
    return np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _unwrap(column: pa.Array) -> pa.Array:
    if isinstance(column.type, pa.ExtensionType):
        column = column.storage
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_large_string(column.type) or pa.types.is_string_view(column.type):
        column = column.cast(pa.string())
    if pa.types.is_large_binary(column.type) or pa.types.is_binary_view(column.type):
        column = column.cast(pa.binary())
    if pa.types.is_fixed_size_binary(column.type):
        column = column.cast(pa.binary())
    return column


def _parquet_id(
    name: str,
    column: pa.Array,
    lines: np.ndarray,
    bad: np.ndarray,
    rejected: list[RejectedRow],
) -> pa.Array:
    """Ids: text, integers and integral floats render as text; anything else is quarantined."""
    column = _unwrap(column)
    t = column.type
    n = len(column)
    if pa.types.is_string(t) or pa.types.is_binary(t):
        return column
    if pa.types.is_null(t):
        return pa.nulls(n, pa.string())
    if pa.types.is_integer(t):
        return column.cast(pa.string())
    if pa.types.is_floating(t):
        values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        valid = _not_null(column) & ~np.isnan(values)
        with np.errstate(invalid="ignore"):
            integral = np.isfinite(values) & (np.floor(values) == values)
            exact = integral & (np.abs(values) <= _MAX_EXACT_FLOAT)
        _reject(
            name,
            column,
            valid & ~np.isfinite(values),
            lines,
            bad,
            rejected,
            QuarantineReason.BAD_ID,
            "is not a finite number; expected a string or an integer id",
        )
        _reject(
            name,
            column,
            valid & ~integral,
            lines,
            bad,
            rejected,
            QuarantineReason.BAD_ID,
            "is a fractional number; expected a string or an integer id",
        )
        _reject(
            name,
            column,
            valid & ~exact,
            lines,
            bad,
            rejected,
            QuarantineReason.BAD_ID,
            "is a number too large to be an exact integer (beyond 2^53); store such ids as text",
        )
        ints = np.where(valid & exact, values, 0).astype(np.int64)
        return pa.array(ints, pa.int64(), mask=~(valid & exact)).cast(pa.string())
    if pa.types.is_decimal(t):
        text = column.cast(pa.string())
        trimmed = pc.replace_substring_regex(text, r"\.0*$", "")
        fractional = np.asarray(
            pc.fill_null(pc.match_substring(trimmed, "."), False).to_numpy(zero_copy_only=False),
            dtype=bool,
        )
        _reject(
            name,
            column,
            fractional,
            lines,
            bad,
            rejected,
            QuarantineReason.BAD_ID,
            "is a fractional number; expected a string or an integer id",
        )
        return trimmed
    kind = (
        "a boolean"
        if pa.types.is_boolean(t)
        else "a date or time"
        if pa.types.is_temporal(t)
        else f"of type {t}"
    )
    _reject(
        name,
        column,
        _not_null(column),
        lines,
        bad,
        rejected,
        QuarantineReason.BAD_ID,
        f"is {kind}; expected a string or an integer id",
    )
    return pa.nulls(n, pa.string())


_TS_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0}
_MAX_US = 2**63 - 1


def _parquet_ts(
    name: str,
    column: pa.Array,
    lines: np.ndarray,
    bad: np.ndarray,
    rejected: list[RejectedRow],
) -> pa.Array:
    """Typed timestamps become naive UTC microseconds without overflow; others as they are."""
    column = _unwrap(column)
    t = column.type
    if pa.types.is_date32(t):
        days = _int64_values(column)
        return _micros(name, column, days, 86_400_000_000, lines, bad, rejected)
    if pa.types.is_date64(t):
        return _micros(name, column, _int64_values(column), 1_000, lines, bad, rejected)
    if pa.types.is_timestamp(t):
        values = _int64_values(column)
        factor = _TS_UNITS[t.unit]
        if factor == 0:
            micros = np.floor_divide(values, 1000)
            return pa.array(micros, pa.timestamp("us"), mask=~_not_null(column))
        return _micros(name, column, values, factor, lines, bad, rejected)
    return _parquet_plain(column)


def _int64_values(column: pa.Array) -> np.ndarray:
    """The stored integers of a date or timestamp column (nulls as 0)."""
    if pa.types.is_date32(column.type):
        column = column.cast(pa.int32())
    values = pc.fill_null(column.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    result: np.ndarray = values.astype(np.int64, copy=False)
    return result


def _micros(
    name: str,
    column: pa.Array,
    values: np.ndarray,
    factor: int,
    lines: np.ndarray,
    bad: np.ndarray,
    rejected: list[RejectedRow],
) -> pa.Array:
    valid = _not_null(column)
    over = valid & (np.abs(values) > _MAX_US // factor)
    if over.any():
        _reject(
            name,
            column,
            over,
            lines,
            bad,
            rejected,
            QuarantineReason.TIMESTAMP_OUT_OF_RANGE,
            "is out of range; expected a time that fits in microseconds since 1970",
        )
    micros = np.where(valid & ~over, values, 0) * factor
    return pa.array(micros, pa.timestamp("us"), mask=~(valid & ~over))


def _parquet_plain(column: pa.Array) -> pa.Array:
    """Other columns: numbers and text as they are; anything else as text for the rules."""
    column = _unwrap(column)
    t = column.type
    if pa.types.is_floating(t):
        # NaN in a typed float column is how pandas writes a missing value.
        column = column.cast(pa.float32()) if pa.types.is_float16(t) else column
        if pc.any(pc.is_nan(column)).as_py():
            column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
        return column
    if (
        pa.types.is_string(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or (pa.types.is_decimal128(t) and t.precision <= 38)
    ):
        return column
    if pa.types.is_binary(t):
        return column  # decoded as UTF-8 (or quarantined) below
    try:
        return column.cast(pa.string())
    except (pa.ArrowException, ValueError):
        return pa.array(
            [None if v is None else json.dumps(v, default=str) for v in column.to_pylist()],
            pa.string(),
        )


def _decode_binary_columns(table: pa.Table) -> tuple[pa.Table, list[RejectedRow]]:
    """Decode the binary columns of a Parquet batch as UTF-8 (rows that are not: quarantined)."""
    binary = [n for n in table.column_names if pa.types.is_binary(table.schema.field(n).type)]
    if not binary:
        return table, []
    lines = table.column(LINE_COLUMN).to_numpy()
    part, rejected = decode_binary(table.select([*binary, LINE_COLUMN]), lines)
    if not rejected:
        for name in binary:
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, part.column(name))
        return table, []
    keep = pa.array(np.isin(lines, part.column(LINE_COLUMN).to_numpy()))
    table = table.filter(keep)
    for name in binary:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, part.column(name))
    return table, rejected


# -- ids ---------------------------------------------------------------------------------------


def _control_rows(column: pa.ChunkedArray | pa.Array) -> np.ndarray | None:
    """Rows of a string column holding an ASCII control character, or None (fast, no copy)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_string(column.type) or len(column) == 0:
        return None
    buffers = column.buffers()
    if buffers[2] is None:
        return None
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[
        column.offset : column.offset + len(column) + 1
    ]
    data = np.frombuffer(buffers[2], dtype=np.uint8)
    lo, hi = int(offsets[0]), int(offsets[-1])
    segment = data[lo:hi]
    hits = np.flatnonzero((segment < 32) | (segment == 127))
    if not hits.size:
        return None
    rows = np.searchsorted(offsets, hits + lo, side="right") - 1
    mask = np.zeros(len(column), dtype=bool)
    mask[rows] = True
    valid: np.ndarray = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    result: np.ndarray = mask & valid
    return result


def _check_ids(batch: RawBatch, ids: list[str]) -> RawBatch:
    """Quarantine rows whose id holds a control character (a line break, tab, NUL ...)."""
    table = batch.table
    bad: np.ndarray | None = None
    rejected: list[RejectedRow] = []
    for name in ids:
        if name not in table.column_names:
            continue
        mask = _control_rows(table.column(name))
        if mask is None:
            continue
        if bad is None:
            bad = np.zeros(table.num_rows, dtype=bool)
        lines = table.column(LINE_COLUMN)
        values = table.column(name)
        for i in np.flatnonzero(mask & ~bad).tolist():
            rejected.append(
                RejectedRow(
                    int(lines[i].as_py()),
                    name,
                    clip(str(values[i].as_py())),
                    QuarantineReason.BAD_ID,
                    CONTROL_CHARACTER_ID,
                )
            )
        bad |= mask
    if bad is None:
        return batch
    kept = table.filter(pa.array(~bad))
    return RawBatch(kept, sorted(batch.rejected + rejected, key=lambda r: r.line), batch.lines)
