"""A hostile corpus: malformed and edge-case input files, each with what ingest must do with it.

Every case is built at test time in a temporary directory. A case either is *accepted* (exact
records read, accepted and quarantined, and the quarantine reason of every bad line) or
*rejected* as a whole (the ``ShopseqError`` class and the message text naming file and line).
The list follows issue 9 item by item; ``build`` returns all of them.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

H = "user_id,item_id,action,ts\n"
ROW = "u{n},i{n},view,2024-01-01 10:00:{n:02d}\n"


def rows(n: int, start: int = 1) -> str:
    return "".join(ROW.format(n=i) for i in range(start, start + n))


@dataclass(frozen=True)
class Accept:
    """The file is read: exact counts, and the reason (and column) of each quarantined line."""

    read: int
    accepted: int
    quarantined: dict[int, str] = field(default_factory=dict)
    accepted_lines: tuple[int, ...] | None = None  # source_row of the accepted events, if given
    message: str | None = None  # a substring of one quarantine message

    @property
    def n_quarantined(self) -> int:
        return len(self.quarantined)


@dataclass(frozen=True)
class Reject:
    """The whole file is rejected with this error class and a message containing ``message``."""

    error: str
    message: str


@dataclass(frozen=True)
class Case:
    name: str
    file_name: str
    write: Callable[[Path], None]
    expect: Accept | Reject
    layout: str = "shopseq"
    options: dict[str, object] = field(default_factory=dict)
    cli: tuple[str, ...] = ()

    def build(self, directory: Path) -> Path:
        path = directory / self.name / self.file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.write(path)
        return path


def _text(content: str | bytes) -> Callable[[Path], None]:
    data = content.encode() if isinstance(content, str) else content
    return lambda path: path.write_bytes(data)


def _compressed(kind: str, content: str, *, cut: float | None = None, tail: bytes = b""):
    def write(path: Path) -> None:
        data = content.encode()
        blob = {
            "gzip": gzip.compress,
            "bzip2": bz2.compress,
            "xz": lzma.compress,
            "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
        }[kind](data)
        if cut is not None:
            blob = blob[: int(len(blob) * cut)]
        path.write_bytes(blob + tail)

    return write


def _parquet(table: pa.Table, damage: Callable[[bytes], bytes] | None = None):
    def write(path: Path) -> None:
        sink = io.BytesIO()
        pq.write_table(table, sink, row_group_size=4, compression="snappy")
        data = sink.getvalue()
        path.write_bytes(damage(data) if damage else data)

    return write


def _events_table(**overrides: pa.Array) -> pa.Table:
    base = {
        "user_id": pa.array(["u1", "u2", "u3"]),
        "item_id": pa.array(["i1", "i2", "i3"]),
        "action": pa.array(["view", "view", "view"]),
        "ts": pa.array(["2024-01-01 10:00:00"] * 3),
    }
    base.update(overrides)
    return pa.table(base)


def _corrupt_page(data: bytes) -> bytes:
    # Overwrite bytes in the middle of the first column chunk (after the 4-byte magic).
    middle = len(data) // 3
    return data[:middle] + b"\xff" * 64 + data[middle + 64 :]


def _long_body(n_bytes: int) -> str:
    return "u1,i1,view,2024-01-01 10:00:00," + "x" * n_bytes + "\n"


UNTERMINATED_19 = (
    "user_id,item_id,action,ts,query\n"
    + "".join(f"u{i},i{i},view,2024-01-01 10:00:{i:02d},q{i}\n" for i in range(1, 4))
    + 'u4,i4,search,2024-01-01 10:00:04,"an open quote\n'
    + "".join(f"u{i},i{i},view,2024-01-01 10:00:{i:02d},q{i}\n" for i in range(5, 20))
)

QUOTED_NEWLINES = (
    "user_id,item_id,action,ts,query\n"
    'u1,i1,search,2024-01-01 10:00:01,"two\nlines"\n'  # lines 2-3
    "u2,i2,teleport,2024-01-01 10:00:02,q\n"  # line 4: bad action
    'u3,i3,search,2024-01-01 10:00:03,"three\n\nlines"\n'  # lines 5-7
    "u4,i4,view,2024-01-01 10:00:04,q\n"  # line 8
    "u5,,view,2024-01-01 10:00:05,q\n"  # line 9: missing item
)


def build_cases() -> list[Case]:
    """Every case of the corpus."""
    good3 = H + rows(3)
    cases = [
        # --- timestamps --------------------------------------------------------------------
        Case(
            "epoch_micro_nano_and_1e36_auto",
            "e.csv",
            _text(
                H
                + "u1,i1,view,1704067200000000\n"  # microseconds read as seconds
                + "u2,i2,view,1704067200000000000\n"  # nanoseconds
                + "u3,i3,view,1e36\n"
                + "u4,i4,view,-1e36\n"
                + "u5,i5,view,1704067200\n"
                + "u6,i6,view,1e400\n"  # not finite: a bad timestamp
            ),
            Accept(
                6,
                1,
                {
                    2: "timestamp_out_of_range",
                    3: "timestamp_out_of_range",
                    4: "timestamp_out_of_range",
                    5: "timestamp_out_of_range",
                    7: "bad_timestamp",
                },
                message="numbers are read as Unix seconds",
            ),
        ),
        Case(
            "epoch_us_and_ns_formats",
            "e.csv",
            _text(H + "u1,i1,view,1704067200123456\nu2,i2,view,1704067200123456789\n"),
            Accept(2, 1, {3: "timestamp_out_of_range"}),
            options={"ts_format": "epoch_us"},
        ),
        Case(
            "epoch_s_huge_values",
            "e.csv",
            _text(H + "u1,i1,view,99999999999999\nu2,i2,view,1e300\nu3,i3,view,1511544070\n"),
            Accept(3, 1, {2: "timestamp_out_of_range", 3: "timestamp_out_of_range"}),
            options={"ts_format": "epoch_s"},
        ),
        Case(
            "offsets_beyond_14h",
            "e.csv",
            _text(
                H
                + "u1,i1,view,2024-01-01 10:00:00+25:00\n"
                + "u2,i2,view,2024-01-01 10:00:00-99:99\n"
                + "u3,i3,view,2024-01-01 10:00:00+14:30\n"
                + "u4,i4,view,2024-01-01 10:00:00+14:00\n"
                + "u5,i5,view,2024-01-01T10:00:00-05:30\n"
                + "u6,i6,view,2024-01-01 10:00:00+05:61\n"
                + "u7,i7,view,epoch\n"
                + "u8,i8,view,infinity\n"
            ),
            Accept(
                8,
                2,
                {
                    2: "bad_timestamp",
                    3: "bad_timestamp",
                    4: "bad_timestamp",
                    7: "bad_timestamp",
                    8: "bad_timestamp",
                    9: "bad_timestamp",
                },
            ),
        ),
        Case(
            "diginetica_timeframe_overflow",
            "views.csv",
            _text(
                "session_id;user_id;item_id;timeframe;eventdate\n"
                "1;NA;81766;526309;2016-05-09\n"
                "2;7;31331;9223372036854775807;2016-05-09\n"
                "3;8;31332;1e300;2016-05-09\n"
                "4;9;31333;-9223372036854775808;2016-05-09\n"
                "5;9;31334;abc;2016-05-09\n"
                "6;9;31335;1;99999-01-01\n"
            ),
            Accept(
                6,
                1,
                {
                    3: "timestamp_out_of_range",
                    4: "timestamp_out_of_range",
                    5: "timestamp_out_of_range",
                    6: "bad_timestamp",
                    7: "timestamp_out_of_range",
                },
            ),
            layout="diginetica-views",
        ),
        # --- compression -------------------------------------------------------------------
        Case(
            "truncated_gzip",
            "e.csv.gz",
            _compressed("gzip", H + rows(2000), cut=0.5),
            Reject("UnreadableFileError", "is a truncated gzip file"),
        ),
        Case(
            "truncated_zstd",
            "e.csv.zst",
            _compressed("zstd", H + rows(2000), cut=0.5),
            Reject("UnreadableFileError", "is a truncated zstd file"),
        ),
        Case(
            "truncated_bzip2",
            "e.csv.bz2",
            _compressed("bzip2", H + rows(2000), cut=0.5),
            Reject("UnreadableFileError", "is a truncated bzip2 file"),
        ),
        Case(
            "truncated_xz",
            "e.csv.xz",
            _compressed("xz", H + rows(2000), cut=0.5),
            Reject("UnreadableFileError", "is a truncated xz file"),
        ),
        Case(
            "gzip_trailing_garbage",
            "e.csv.gz",
            _compressed("gzip", good3, tail=b"garbage after the stream"),
            Reject("UnreadableFileError", "bytes of other data after the end of its gzip stream"),
        ),
        Case(
            "zstd_trailing_garbage",
            "e.csv.zst",
            _compressed("zstd", good3, tail=b"garbage after the stream"),
            Reject("UnreadableFileError", "after the end of its zstd stream"),
        ),
        Case(
            "bzip2_trailing_garbage",
            "e.csv.bz2",
            _compressed("bzip2", good3, tail=b"garbage after the stream"),
            Reject("UnreadableFileError", "after the end of its bzip2 stream"),
        ),
        Case(
            "gzip_zero_padding_is_fine",
            "e.csv.gz",
            _compressed("gzip", good3, tail=b"\0" * 512),
            Accept(3, 3),
        ),
        Case(
            "gzip_two_members",
            "e.csv.gz",
            lambda p: p.write_bytes(
                gzip.compress((H + rows(2)).encode()) + gzip.compress(b"u9,i9,view,2024-01-01\n")
            ),
            Accept(3, 3),
        ),
        Case(
            "gzip_corrupt_body",
            "e.csv.gz",
            lambda p: p.write_bytes(
                (lambda b: b[:20] + bytes(x ^ 0x55 for x in b[20:60]) + b[60:])(
                    gzip.compress((H + rows(500)).encode())
                )
            ),
            Reject("UnreadableFileError", "is not valid gzip data"),
        ),
        Case("plain_text_named_gz", "e.csv.gz", _text(good3), Accept(3, 3)),
        Case(
            "upper_case_suffix",
            "FILE.CSV.GZ",
            _compressed("gzip", good3),
            Accept(3, 3),
        ),
        Case("gzip_named_csv", "e.csv", _compressed("gzip", good3), Accept(3, 3)),
        Case("xz_file", "e.csv.xz", _compressed("xz", good3), Accept(3, 3)),
        Case(
            "zip_archive",
            "e.csv",
            _text(b"PK\x03\x04" + b"\0" * 40),
            Reject("UnreadableFileError", "is a ZIP archive"),
        ),
        # --- empty and header-only ---------------------------------------------------------
        Case(
            "zero_bytes",
            "e.csv",
            _text(b""),
            Reject("SchemaMismatchError", "e.csv: is empty: it has no header line"),
        ),
        Case("zero_bytes_headerless", "e.csv", _text(b""), Accept(0, 0), layout="taobao"),
        Case("header_only_no_newline", "e.csv", _text(H.rstrip("\n")), Accept(0, 0)),
        Case("header_only_crlf", "e.csv", _text(H.replace("\n", "\r\n")), Accept(0, 0)),
        Case(
            "bom_only", "e.csv", _text(b"\xef\xbb\xbf"), Reject("SchemaMismatchError", "is empty")
        ),
        Case(
            "no_final_newline",
            "e.csv",
            _text(H + rows(2) + "u3,i3,view,2024-01-01 10:00:03"),
            Accept(3, 3),
        ),
        # --- headers -----------------------------------------------------------------------
        Case(
            "duplicate_used_header",
            "e.csv",
            _text("user_id,item_id,action,ts,item_id\nu1,i1,view,2024-01-01,i9\n"),
            Reject("SchemaMismatchError", "column 'item_id' appears 2 times in the header"),
        ),
        Case(
            "duplicate_unused_header",
            "e.csv",
            _text("user_id,item_id,action,ts,x,x,\nu1,i1,view,2024-01-01,1,2,3\n"),
            Accept(1, 1),
        ),
        Case(
            "header_not_utf8",
            "e.csv",
            _text(b"user_id,item\xff_id,action,ts\nu1,i1,view,2024-01-01\n"),
            Reject("UnreadableFileError", "e.csv:1:13: the header is not valid UTF-8"),
        ),
        Case(
            "header_unterminated_quote",
            "e.csv",
            _text('user_id,"item_id,action,ts\nu1,i1,view,2024-01-01\n'),
            Reject("UnreadableFileError", "the header"),
        ),
        Case(
            "quoted_header_names",
            "e.csv",
            _text('"user_id","item_id","action","ts"\n"u1","i1","view","2024-01-01"\n'),
            Accept(1, 1),
        ),
        Case(
            "utf16_file",
            "e.csv",
            _text("\ufeff".encode("utf-16-le") + (H + rows(1)).encode("utf-16-le")),
            Reject("UnreadableFileError", "e.csv:1: is UTF-16 text"),
        ),
        # --- long lines (bounded memory) ---------------------------------------------------
        Case(
            "no_newline_at_all_header",
            "e.csv",
            _text(b"\0" * 300_000),
            Reject("UnreadableFileError", "e.csv:1: the first line is longer than 65,536 bytes"),
            options={"max_line_bytes": 65_536},
        ),
        Case(
            "no_newline_at_all_headerless",
            "e.csv",
            _text(b"\0" * 300_000),
            Accept(1, 0, {1: "line_too_long"}),
            layout="taobao",
            options={"max_line_bytes": 65_536},
        ),
        Case(
            "one_line_too_long_in_the_middle",
            "e.csv",
            _text(H + rows(2) + _long_body(200_000) + rows(2, start=3)),
            Accept(5, 4, {4: "line_too_long"}, accepted_lines=(2, 3, 5, 6)),
            options={"max_line_bytes": 65_536},
        ),
        Case(
            "long_line_json",
            "e.jsonl",
            _text(
                '{"user_id":"u1","item_id":"i1","action":"view","ts":"2024-01-01"}\n'
                + '{"user_id":"'
                + "x" * 100_000
                + '"}\n'
                + '{"user_id":"u3","item_id":"i3","action":"view","ts":"2024-01-01"}'
            ),
            Accept(3, 2, {2: "line_too_long"}),
            options={"max_line_bytes": 65_536},
        ),
        # --- quoting and line numbers ------------------------------------------------------
        Case(
            "unterminated_quote_19_rows",
            "e.csv",
            _text(UNTERMINATED_19),
            Accept(19, 18, {5: "unterminated_quote"}),
        ),
        Case(
            "unterminated_quote_closed_later",
            "e.csv",
            _text(H + 'u1,"i1,view,2024-01-01\n' + rows(3, start=2) + 'u5,"i5",view,2024-01-01\n'),
            Accept(5, 4, {2: "unterminated_quote"}, accepted_lines=(3, 4, 5, 6)),
        ),
        Case(
            "quoted_newlines_keep_line_numbers",
            "e.csv",
            _text(QUOTED_NEWLINES),
            Accept(
                5,
                3,
                {4: "unknown_action", 9: "missing_field"},
                accepted_lines=(2, 5, 8),
            ),
        ),
        Case(
            "text_after_closing_quote",
            "e.csv",
            _text(H + 'u1,"i1"x,view,2024-01-01\n' + rows(1, start=2)),
            Accept(2, 1, {2: "malformed_row"}, message="is not valid CSV"),
        ),
        Case(
            "stray_quote_inside_field",
            "e.csv",
            _text(H + 'u1,12" vinyl,view,2024-01-01\nu2,"a ""quoted"" item",view,2024-01-01\n'),
            Accept(2, 2),
        ),
        Case(
            "cr_only_line_endings",
            "e.csv",
            _text((H + rows(2) + "u3,i3,teleport,2024-01-01\n").replace("\n", "\r")),
            Accept(3, 2, {4: "unknown_action"}),
        ),
        Case(
            "mixed_line_endings",
            "e.csv",
            _text(H + "u1,i1,view,2024-01-01\r\nu2,i2,x,2024-01-01\ru3,i3,view,2024-01-01\n"),
            Accept(3, 2, {3: "unknown_action"}),
        ),
        Case("bom_csv", "e.csv", _text(b"\xef\xbb\xbf" + good3.encode()), Accept(3, 3)),
        Case(
            "bom_headerless",
            "e.csv",
            _text(b"\xef\xbb\xbf1,2,3,pv,1511544070\n"),
            Accept(1, 1),
            layout="taobao",
        ),
        Case(
            "short_row_with_bad_utf8",
            "e.csv",
            _text(H.encode() + b"u1,i\xff\xfe1,view\n" + rows(1, start=2).encode()),
            Accept(2, 1, {2: "wrong_column_count"}),
        ),
        Case(
            "bad_utf8_in_used_column",
            "e.csv",
            _text(H.encode() + b'u1,"i\xff1",view,2024-01-01\nu2,i\xfe2,view,2024-01-01\n'),
            Accept(2, 0, {2: "bad_encoding", 3: "bad_encoding"}),
        ),
        Case(
            "empty_lines",
            "e.csv",
            _text(H + "\n" + rows(1) + "\r\n" + rows(1, start=2)),
            Accept(4, 2, {2: "wrong_column_count", 4: "wrong_column_count"}),
        ),
        Case(
            "control_characters_in_ids",
            "e.csv",
            _text(H + "u\x001,i1,view,2024-01-01\nu2,i\t2,view,2024-01-01\n" + rows(1, start=3)),
            Accept(3, 1, {2: "bad_id", 3: "bad_id"}),
        ),
        # --- JSON lines --------------------------------------------------------------------
        Case(
            "json_bom_first_record",
            "e.jsonl",
            _text(
                b"\xef\xbb\xbf"
                + b'{"user_id":"u1","item_id":"i1","action":"view","ts":"2024-01-01"}\n'
            ),
            Accept(1, 1),
        ),
        Case(
            "json_raw_cr_inside_line",
            "e.jsonl",
            _text(
                '{"user_id":"u1","item_id":"i1",\r"action":"view","ts":"2024-01-01"}\n'
                '{"user_id":"u2\r","item_id":"i2","action":"view","ts":"2024-01-01"}\r\n'
                '{"user_id":"u3","item_id":"i3","action":"view","ts":"2024-01-01"}\n'
            ),
            Accept(3, 2, {2: "malformed_row"}),
        ),
        Case(
            "json_non_scalar_ids",
            "e.jsonl",
            _text(
                '{"user_id":{"a":1},"item_id":"i1","action":"view","ts":"2024-01-01"}\n'
                '{"user_id":[1,2],"item_id":"i1","action":"view","ts":"2024-01-01"}\n'
                '{"user_id":true,"item_id":"i1","action":"view","ts":"2024-01-01"}\n'
                '{"user_id":1.5,"item_id":"i1","action":"view","ts":"2024-01-01"}\n'
                '{"user_id":1e300,"item_id":"i1","action":"view","ts":"2024-01-01"}\n'
                '{"user_id":17850.0,"item_id":7,"action":"view","ts":"2024-01-01"}\n'
                '{"user_id":NaN,"item_id":"i1","action":"view","ts":"2024-01-01"}\n'
                '{"user_id":"u8","item_id":"i8","action":"view","ts":"2024-01-01","x":{}}\n'
            ),
            Accept(
                8,
                2,
                {
                    1: "bad_id",
                    2: "bad_id",
                    3: "bad_id",
                    4: "bad_id",
                    5: "bad_id",
                    7: "missing_field",
                },
            ),
        ),
        Case(
            "json_duplicate_keys_and_deep_nesting",
            "e.jsonl",
            _text(
                '{"user_id":"a","user_id":"b","item_id":"i1","action":"view","ts":"2024-01-01"}\n'
                + "[" * 100_000
                + "\n"
                + '{"user_id":"u3","item_id":"i3","action":"view","ts":"2024-01-01"}\n'
                + "[1, 2]\n"
                + "\n"
            ),
            Accept(
                5,
                1,
                {1: "malformed_row", 2: "malformed_row", 4: "malformed_row", 5: "malformed_row"},
            ),
        ),
        # --- Parquet -----------------------------------------------------------------------
        Case(
            "parquet_float_ids",
            "e.parquet",
            _parquet(
                _events_table(
                    user_id=pa.array([1.0, float("nan"), 17850.0, 1.5, 1e30, None]),
                    item_id=pa.array(["i"] * 6),
                    action=pa.array(["view"] * 6),
                    ts=pa.array(["2024-01-01"] * 6),
                )
            ),
            Accept(6, 2, {2: "missing_field", 4: "bad_id", 5: "bad_id", 6: "missing_field"}),
        ),
        Case(
            "parquet_struct_bool_binary_ids",
            "e.parquet",
            _parquet(
                _events_table(
                    user_id=pa.array([{"a": 1}, None, {"a": 3}], pa.struct([("a", pa.int64())])),
                    item_id=pa.array([True, False, None]),
                    session_id=pa.array([b"ok", b"\xff\xfe", None], pa.binary()),
                )
            ),
            Accept(3, 0, {1: "bad_id", 2: "bad_id", 3: "bad_id"}),
        ),
        Case(
            "parquet_binary_ids",
            "e.parquet",
            _parquet(_events_table(user_id=pa.array([b"u1", b"\xff\xfe", b"u3"], pa.binary()))),
            Accept(3, 2, {2: "bad_encoding"}),
        ),
        Case(
            "parquet_number_surprises",
            "e.parquet",
            _parquet(
                _events_table(
                    quantity=pa.array([1e30, 2.0, float("nan")]),
                    price=pa.array([1e308, float("inf"), 5.0]),
                )
            ),
            Accept(3, 1, {1: "bad_quantity", 2: "non_numeric_price"}),
        ),
        Case(
            "parquet_typed_timestamps",
            "e.parquet",
            _parquet(
                _events_table(
                    ts=pa.array([1704067200, 10**15, None], pa.timestamp("s")),
                )
            ),
            Accept(3, 1, {2: "timestamp_out_of_range", 3: "missing_field"}),
        ),
        Case(
            "parquet_int_epochs_and_dates",
            "e.parquet",
            _parquet(
                pa.table(
                    {
                        "user_id": pa.array([1, 2, 3], pa.uint64()),
                        "item_id": pa.array(["i1", "i2", "i3"]).dictionary_encode(),
                        "action": pa.array(["view"] * 3, pa.large_string()),
                        "ts": pa.array([1704067200, 1704067200000000, -(2**63)], pa.int64()),
                        "query": pa.array([[1], [2], None], pa.list_(pa.int64())),
                    }
                )
            ),
            Accept(3, 1, {2: "timestamp_out_of_range", 3: "timestamp_out_of_range"}),
        ),
        Case(
            "parquet_float16_and_decimal",
            "e.parquet",
            _parquet(
                _events_table(
                    user_id=pa.array(
                        [Decimal("17850"), Decimal("2.00"), Decimal("3")], pa.decimal128(10, 2)
                    ),
                    price=pa.array([1.5, 2.5, 3.5], pa.float16()),
                )
            ),
            Accept(3, 3),
        ),
        Case(
            "parquet_corrupt_page",
            "e.parquet",
            _parquet(_events_table(), damage=_corrupt_page),
            Reject("UnreadableFileError", "cannot be read as Parquet"),
        ),
        Case(
            "parquet_truncated",
            "e.parquet",
            _parquet(_events_table(), damage=lambda d: d[: len(d) // 2]),
            Reject("UnreadableFileError", "cannot be read as Parquet"),
        ),
        Case(
            "not_parquet_named_parquet",
            "e.parquet",
            _text(good3),
            Reject("UnreadableFileError", "cannot be read as Parquet"),
        ),
        Case(
            "parquet_named_csv",
            "e.csv",
            _parquet(_events_table()),
            Reject("UnreadableFileError", "is a Parquet file (it starts with PAR1)"),
        ),
        # --- paths and names ---------------------------------------------------------------
        Case("markup_in_path", "[red]x[/].csv", _text(good3), Accept(3, 3)),
        Case("brackets_in_path", "a[/]b.csv", _text(good3), Accept(3, 3)),
    ]
    return cases
