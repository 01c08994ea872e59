"""A deliberately naive reference reader: the documented grammar, one line at a time.

It knows nothing of blocks, numpy, Arrow or carrying records between blocks: it splits the whole
(decompressed) text into physical lines with a character loop, then reads records one after the
other exactly as docs/schema.md describes. The fuzz suite checks that the real readers agree with
it record for record, so ``read`` is the true number of records of any input.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Record:
    """One record: its first physical line, its outcome and, when read, its needed fields."""

    line: int
    outcome: str  # "ok" or a reader-level quarantine reason
    fields: tuple[str, ...] = ()


def physical_lines(data: bytes, *, cr_newline: bool) -> list[tuple[bytes, bytes]]:
    """(content, terminator) of every physical line."""
    if data.startswith(BOM):
        data = data[3:]
    lines = []
    start = i = 0
    n = len(data)
    while i < n:
        c = data[i]
        if c == 10:
            end = i - 1 if i > start and data[i - 1] == 13 else i
            lines.append((data[start:end], data[end : i + 1]))
            start = i = i + 1
            continue
        if c == 13 and cr_newline and (i + 1 >= n or data[i + 1] != 10):
            lines.append((data[start:i], data[i : i + 1]))
            start = i = i + 1
            continue
        i += 1
    if start < n:
        lines.append((data[start:], b""))
    return lines


def _has_control(value: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in value)


def _has_surrogate(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def reference_csv(
    data: bytes,
    *,
    names: list[str] | None,
    required: list[str],
    mapped: list[str],
    ids: list[str],
    delimiter: str = ",",
    max_line_bytes: int,
) -> tuple[int, list[str], list[Record]] | str:
    """(header lines, needed columns, records) of a delimited file, or "reject".

    Args:
        data: The decompressed file.
        names: Column names of a headerless file (``None``: the first record is the header).
        required: Columns the file must have.
        mapped: Columns the layout reads when present.
        ids: Id columns.
        delimiter: One character.
        max_line_bytes: The line limit.
    """
    lines = physical_lines(data, cr_newline=True)
    texts = [(c + t).decode("utf-8", "surrogateescape") for c, t in lines]
    i = 0
    if names is None:
        if not lines or len(lines[0][0]) > max_line_bytes:
            return "reject"
        try:
            raw_header = lines[0][0]
            raw_header.decode("utf-8")
        except UnicodeDecodeError:
            return "reject"
        for k in range(1, len(lines) + 1):
            try:
                names = next(csv.reader(texts[:k], delimiter=delimiter, strict=True))
                i = k
                break
            except csv.Error as err:
                if "unexpected end of data" in str(err) and k < len(lines):
                    continue
                return "reject"
            except StopIteration:
                names = []
                i = k
                break
        else:  # pragma: no cover
            return "reject"
        for k in range(i):
            if len(lines[k][0]) > max_line_bytes:
                return "reject"
            try:
                lines[k][0].decode("utf-8")
            except UnicodeDecodeError:
                return "reject"
    header_lines = i
    assert names is not None
    needed = [m for m in mapped if m in names]
    if any(names.count(n) > 1 for n in needed) or not all(r in names for r in required):
        return "reject"
    positions = [names.index(n) for n in needed]
    records: list[Record] = []

    def finish(line: int, fields: list[str]) -> Record:
        row = [fields[p] for p in positions]
        for value in row:
            if _has_surrogate(value):
                return Record(line, "bad_encoding")
        for name, value in zip(needed, row, strict=True):
            if name in ids and _has_control(value):
                return Record(line, "bad_id")
        return Record(line, "ok", tuple(row))

    n = len(lines)
    while i < n:
        content = lines[i][0]
        if len(content) > max_line_bytes:
            records.append(Record(i + 1, "line_too_long"))
            i += 1
            continue
        if b'"' not in content:
            text = content.decode("utf-8", "surrogateescape")
            fields = text.split(delimiter)
            if not content or len(fields) != len(names):
                records.append(Record(i + 1, "wrong_column_count"))
            else:
                records.append(finish(i + 1, fields))
            i += 1
            continue
        barrier = i + 1
        while barrier < n and len(lines[barrier][0]) <= max_line_bytes:
            barrier += 1
        consumed = [0]

        def feed(start: int = i, stop: int = barrier, seen: list[int] = consumed):
            for k in range(start, stop):
                seen[0] += 1
                yield texts[k]

        try:
            fields = next(csv.reader(feed(), delimiter=delimiter, strict=True))
        except csv.Error as err:
            if "unexpected end of data" in str(err) or consumed[0] > 1:
                records.append(Record(i + 1, "unterminated_quote"))
            else:
                records.append(Record(i + 1, "malformed_row"))
            i += 1
            continue
        span = consumed[0]
        size = sum(len(c) + len(t) for c, t in lines[i : i + span])
        if span > 1 and (len(fields) != len(names) or size > max_line_bytes):
            records.append(Record(i + 1, "unterminated_quote"))
            i += 1
            continue
        if len(fields) != len(names):
            records.append(Record(i + 1, "wrong_column_count"))
        else:
            records.append(finish(i + 1, fields))
        i += span
    return header_lines, needed, records


def reference_jsonl_count(data: bytes) -> int:
    """Records of a JSON-lines file: its LF-terminated physical lines."""
    return len(physical_lines(data, cr_newline=False))


def reference_json_outcomes(data: bytes, *, max_line_bytes: int) -> list[str]:
    """The reader-level outcome of each line ("ok" or a reason), ids not checked."""
    out = []
    for content, _ in physical_lines(data, cr_newline=False):
        if len(content) > max_line_bytes:
            out.append("line_too_long")
            continue
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            out.append("bad_encoding")
            continue
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            out.append("malformed_row")
            continue
        out.append("ok" if isinstance(value, dict) else "malformed_row")
    return out
