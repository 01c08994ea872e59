"""Fuzzing ingest: random corruption, truncation, quoting, line endings, compression damage and
Parquet types. For every generated file: no exception other than ``ShopseqError``, exit code 0
or 2 on the CLI, and ``read = accepted + quarantined`` with ``read`` equal to the true number of
records, which a naive reference reader (tests/ingest/reference.py) computes independently.

Bounded for CI: a fixed number of examples per property (about a minute in all on 2 cores).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reference import Record, physical_lines, reference_csv, reference_json_outcomes

from shopseq.cli import run
from shopseq.errors import SchemaMismatchError, ShopseqError, UnreadableFileError
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.ingest.readers import ReadStats, id_source_columns, read_batches
from shopseq.store import open_store

LAYOUT = BUILTIN_LAYOUTS["shopseq"]
MAPPED = LAYOUT.mapped_source_columns()
REQUIRED = LAYOUT.required_source_columns()
IDS = id_source_columns(LAYOUT)
HEADER = b"user_id,item_id,action,ts,query"
#: Multiply every example budget (e.g. SHOPSEQ_FUZZ_SCALE=20 for a long local hunt).
_SCALE = float(os.environ.get("SHOPSEQ_FUZZ_SCALE", "1"))


def _examples(n: int) -> int:
    return max(1, int(n * _SCALE))


FUZZ = settings(
    max_examples=_examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@contextmanager
def _file(data: bytes, name: str = "f.csv") -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        yield path


# --- generated files ------------------------------------------------------------------------

_FIELDS = [
    b"u1",
    b"u2",
    b"i9",
    b"view",
    b"cart",
    b"teleport",
    b"2024-01-01 10:00:00",
    b"1704067200",
    b"2024-01-01T10:00:00+25:00",
    b"",
    b'"quoted"',
    b'"with,comma"',
    b'"with ""escaped"" quote"',
    b'"multi\nline"',
    b'"open',
    b'close"',
    b'12" vinyl',
    b'"a"b',
    b"\xff\xfe",
    b"\x00",
    b"x\ty",
    b"\xe2\x82\xac",
]
_NOISE = [b",", b'"', b'""', b"\n", b"\r", b"\r\n", b"\xff", b"\x00", b"x", b" ", b";"]
_ENDINGS = [b"\n", b"\r\n", b"\r"]


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    n_rows = draw(st.integers(0, 30))
    parts = [HEADER, draw(st.sampled_from(_ENDINGS))]
    for _ in range(n_rows):
        width = draw(st.sampled_from([5, 5, 5, 5, 4, 6, 1]))
        fields = [draw(st.sampled_from(_FIELDS)) for _ in range(width)]
        parts += [b",".join(fields), draw(st.sampled_from(_ENDINGS))]
    data = b"".join(parts)
    if draw(st.booleans()):  # drop the final line break
        data = data.rstrip(b"\r\n")
    for _ in range(draw(st.integers(0, 5))):  # byte-level corruption
        if not data:
            break
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        noise = draw(st.sampled_from(_NOISE))
        if op == "insert":
            data = data[:pos] + noise + data[pos:]
        elif op == "delete":
            data = data[:pos] + data[pos + draw(st.integers(1, 8)) :]
        else:
            data = data[:pos] + noise + data[pos + len(noise) :]
    if draw(st.integers(0, 9)) == 0:  # truncation at a random offset
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.integers(0, 7)) == 0:
        data = b"\xef\xbb\xbf" + data
    return data


def _real_records(
    path: Path, *, block: int, max_line: int
) -> tuple[int, int, list[str], list[Record]] | str:
    stats = ReadStats()
    try:
        records: list[Record] = []
        needed: list[str] = []
        for batch in read_batches(
            path, LAYOUT, block_bytes=block, max_line_bytes=max_line, stats=stats, use_threads=False
        ):
            needed = [n for n in batch.table.column_names if n != "__line"]
            lines = batch.table.column("__line").to_pylist()
            columns = [batch.table.column(n).to_pylist() for n in needed]
            for k, line in enumerate(lines):
                records.append(Record(line, "ok", tuple(c[k] for c in columns)))
            records += [Record(r.line, r.reason.value) for r in batch.rejected]
    except (SchemaMismatchError, UnreadableFileError):
        return "reject"
    return stats.header_lines, stats.physical_lines, needed, sorted(records, key=lambda r: r.line)


@FUZZ
@given(data=csv_files(), block=st.integers(16, 1500), max_line=st.integers(24, 400))
def test_csv_reader_agrees_with_the_naive_reference(data: bytes, block: int, max_line: int) -> None:
    expected = reference_csv(
        data, names=None, required=REQUIRED, mapped=MAPPED, ids=IDS, max_line_bytes=max_line
    )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        expected = "reject"
    with _file(data) as path:
        got = _real_records(path, block=block, max_line=max_line)
    if expected == "reject" or got == "reject":
        assert got == expected
        return
    assert not isinstance(expected, str) and not isinstance(got, str)
    header_lines, needed, records = expected
    got_header, got_lines, got_needed, got_records = got
    assert got_header == header_lines
    assert got_lines == len(physical_lines(data, cr_newline=True))
    if records and any(r.outcome == "ok" for r in records):
        assert got_needed == needed
    assert got_records == records


@settings(max_examples=_examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=csv_files(), block=st.integers(16, 4000))
def test_ingest_reconciles_with_the_true_number_of_records(data: bytes, block: int) -> None:
    expected = reference_csv(
        data, names=None, required=REQUIRED, mapped=MAPPED, ids=IDS, max_line_bytes=1024
    )
    config = IngestConfig(layout=LAYOUT, block_bytes=block, max_line_bytes=1024)
    with _file(data) as path, open_store(None, threads=1) as store:
        try:
            report = ingest_files([path], config, store).files[0]
        except ShopseqError:
            assert expected == "reject" or data.startswith((b"\xff\xfe", b"\xfe\xff"))
            return
        assert not isinstance(expected, str)
        _, _, records = expected
        assert report.rows_read == len(records)
        assert report.rows_read == report.rows_accepted + report.rows_quarantined
        ok_lines = {r.line for r in records if r.outcome == "ok"}
        accepted = store.sql("SELECT source_row FROM events").column(0).to_pylist()
        assert set(accepted) <= ok_lines
        quarantined = store.sql("SELECT source_row, reason FROM quarantine").to_pylist()
        for row in quarantined:
            match = [r for r in records if r.line == row["source_row"]]
            assert len(match) == 1
            if match[0].outcome != "ok":
                assert row["reason"] == match[0].outcome


@settings(
    max_examples=_examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=csv_files(), strict=st.booleans(), pseudonymize=st.booleans())
def test_the_cli_exits_0_or_2_without_a_traceback(
    data: bytes, strict: bool, pseudonymize: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    with _file(data, "[x] f.csv") as path:
        args = ["ingest", str(path), "--store", str(path.parent / "s.duckdb")]
        if strict:
            args.append("--strict")
        if pseudonymize:
            key = path.parent / "key"
            key.write_text("k" * 32)
            args += ["--pseudonymize", "--key-file", str(key)]
        code = run(args)
    out, err = capsys.readouterr()
    assert code in (0, 2), err
    assert "Traceback" not in out + err and "internal error" not in err
    if code == 2:
        assert "[x] f.csv" in " ".join(err.split())


# --- compression damage ---------------------------------------------------------------------


def _compress(kind: str, data: bytes) -> bytes:
    if kind == "gzip":
        return gzip.compress(data)
    if kind == "bzip2":
        return bz2.compress(data)
    if kind == "xz":
        return lzma.compress(data)
    return zstandard.ZstdCompressor(write_checksum=True).compress(data)


def _stdlib_decompress(kind: str, blob: bytes) -> bytes | None:
    try:
        if kind == "gzip":
            return gzip.decompress(blob)
        if kind == "bzip2":
            return bz2.decompress(blob)
        if kind == "xz":
            return lzma.decompress(blob)
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob))
        return reader.read()
    except Exception:
        return None


_GOOD = (
    HEADER + b"\n" + b"".join(b"u%d,i%d,view,2024-01-01 10:00:00,q\n" % (i, i) for i in range(400))
)


@settings(max_examples=_examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["gzip", "bzip2", "xz", "zstd"]),
    damage=st.sampled_from(["truncate", "flip", "append"]),
    where=st.floats(0, 1),
    noise=st.binary(min_size=1, max_size=8),
)
def test_damaged_compression_is_rejected_or_read_exactly(
    kind: str, damage: str, where: float, noise: bytes
) -> None:
    blob = original = _compress(kind, _GOOD)
    pos = min(int(where * len(blob)), len(blob) - 1)
    if damage == "truncate":
        blob = blob[:pos]
    elif damage == "flip":
        blob = (
            blob[:pos]
            + bytes(b ^ n for b, n in zip(blob[pos:], noise, strict=False))
            + blob[pos + len(noise) :]
        )
    else:
        blob = blob + noise
    config = IngestConfig(layout=LAYOUT)
    with _file(blob, "f.csv.gz") as path, open_store(None, threads=1) as store:
        try:
            report = ingest_files([path], config, store).files[0]
        except ShopseqError:
            return
        assert damage != "truncate", "a truncated stream was accepted"
        if damage == "append":
            assert noise.strip(b"\0") == b"", "data after the stream was accepted"
        # Zero padding after a complete stream is ignored (the libraries' own readers reject
        # it for xz and zstd): the oracle decompresses the stream without it.
        plain = _stdlib_decompress(kind, original if damage == "append" else blob)
        assert plain is not None
        expected = reference_csv(
            plain, names=None, required=REQUIRED, mapped=MAPPED, ids=IDS, max_line_bytes=1 << 26
        )
        assert not isinstance(expected, str)
        assert report.rows_read == len(expected[2])
        assert report.rows_read == report.rows_accepted + report.rows_quarantined


# --- JSON lines -----------------------------------------------------------------------------

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def json_files(draw: st.DrawFn) -> bytes:
    import json

    lines = []
    for _ in range(draw(st.integers(0, 20))):
        record = {
            "user_id": draw(st.sampled_from(["u1", 7, 17850.0]) | _json_values),
            "item_id": draw(st.sampled_from(["i1", 3]) | _json_values),
            "action": draw(st.sampled_from(["view", "cart"]) | _json_values),
            "ts": draw(st.sampled_from(["2024-01-01", 1704067200]) | _json_values),
        }
        lines.append(json.dumps(record).encode())
    data = b"\n".join(lines)
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(data)))
        data = data[:pos] + draw(st.sampled_from([*_NOISE, b"{", b"}", b"\\"])) + data[pos:]
    return data


@settings(max_examples=_examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=json_files())
def test_json_lines_reconcile_with_their_physical_lines(data: bytes) -> None:
    config = IngestConfig(layout=LAYOUT, max_line_bytes=1024)
    outcomes = reference_json_outcomes(data, max_line_bytes=1024)
    with _file(data, "f.jsonl") as path, open_store(None, threads=1) as store:
        report = ingest_files([path], config, store).files[0]
        assert report.rows_read == len(outcomes) == report.lines
        assert report.rows_read == report.rows_accepted + report.rows_quarantined
        rows = store.sql("SELECT source_row, reason FROM quarantine").to_pylist()
        for row in rows:
            expected = outcomes[row["source_row"] - 1]
            if expected != "ok":
                assert row["reason"] == expected
        accepted = store.sql("SELECT source_row FROM events").column(0).to_pylist()
        assert all(outcomes[line - 1] == "ok" for line in accepted)


# --- Parquet types --------------------------------------------------------------------------

_TYPES: list[tuple[pa.DataType, st.SearchStrategy[object]]] = [
    (pa.string(), st.text(max_size=5)),
    (pa.large_string(), st.text(max_size=5)),
    (pa.binary(), st.binary(max_size=5)),
    (pa.int8(), st.integers(-128, 127)),
    (pa.uint64(), st.integers(0, 2**64 - 1)),
    (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    (pa.float16(), st.floats(-60000, 60000, width=16)),
    (pa.float32(), st.floats(width=32)),
    (pa.float64(), st.floats()),
    (pa.bool_(), st.booleans()),
    (pa.date32(), st.integers(-(2**31), 2**31 - 1)),
    (pa.timestamp("s"), st.integers(-(2**63), 2**63 - 1)),
    (pa.timestamp("ms", tz="UTC"), st.integers(-(2**63), 2**63 - 1)),
    (pa.timestamp("ns"), st.integers(-(2**63), 2**63 - 1)),
    (pa.decimal128(20, 3), st.decimals(-(10**16), 10**16, places=3, allow_nan=False)),
    (pa.list_(pa.int32()), st.lists(st.integers(-5, 5), max_size=2)),
    (pa.struct([("a", pa.int32())]), st.fixed_dictionaries({"a": st.integers(-5, 5)})),
    (pa.null(), st.none()),
]


def _array(typ: pa.DataType, values: list[object]) -> pa.Array:
    if pa.types.is_date32(typ):
        return pa.array(values, pa.int32()).cast(typ)
    if pa.types.is_timestamp(typ):
        return pa.array(values, pa.int64()).cast(typ)
    if pa.types.is_float16(typ):
        import numpy as np

        return pa.array(np.array([math.nan if v is None else v for v in values], np.float16))
    return pa.array(values, typ)


@st.composite
def parquet_tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(0, 12))
    columns = {}
    for name in ("user_id", "item_id", "action", "ts", "price", "quantity", "session_id"):
        typ, values = draw(st.sampled_from(_TYPES))
        if name == "action" and draw(st.booleans()):
            typ, values = pa.string(), st.sampled_from(["view", "cart", "x"])
        if name == "ts" and draw(st.booleans()):
            typ, values = pa.timestamp("us"), st.integers(0, 2 * 10**15)
        data = draw(st.lists(st.none() | values, min_size=n, max_size=n))
        columns[name] = _array(typ, data)
    return pa.table(columns)


@settings(max_examples=_examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=parquet_tables())
def test_parquet_of_any_types_reconciles_row_for_row(table: pa.Table) -> None:
    sink = io.BytesIO()
    try:
        pq.write_table(table, sink)
    except pa.ArrowInvalid:  # Parquet cannot store it (seconds overflowing milliseconds)
        assume(False)
    config = IngestConfig(layout=LAYOUT, ts_max=datetime(2100, 1, 1))
    with _file(sink.getvalue(), "f.parquet") as path, open_store(None, threads=1) as store:
        report = ingest_files([path], config, store).files[0]
        assert report.rows_read == table.num_rows
        assert report.rows_read == report.rows_accepted + report.rows_quarantined
        users = store.sql("SELECT user_id FROM events").column(0).to_pylist()
        for user in users:  # ids render as plain text: never 1.0, nan, true or a struct
            assert user not in ("nan", "true", "false") and not user.endswith(".0")
            assert not user.startswith(("{", "["))
