"""The hostile corpus (tests/ingest/corpus.py), through the library and through the CLI.

For every case: no exception other than ``ShopseqError``; an accepted file has exactly the
expected records, ``read = accepted + quarantined``, the reason of every quarantined line and the
source rows of accepted events; a rejected file fails with the expected class and message (file
and line) and writes nothing. Through ``shopseq ingest`` every case exits 0 or 2 with no
traceback, and the message names the file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import Case, Reject, build_cases

from shopseq import errors
from shopseq.cli import run
from shopseq.errors import ShopseqError, UnreadableFileError
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, generic_layout, ingest_files
from shopseq.store import Store, open_store

CASES = build_cases()
_LAYOUT_OPTIONS = {"ts_format"}


def _config(case: Case) -> IngestConfig:
    layout = BUILTIN_LAYOUTS[case.layout]
    layout_options = {k: v for k, v in case.options.items() if k in _LAYOUT_OPTIONS}
    if layout_options:
        layout = generic_layout([], [], base=layout, **layout_options)
    other = {k: v for k, v in case.options.items() if k not in _LAYOUT_OPTIONS}
    return IngestConfig(layout=layout, **other)  # type: ignore[arg-type]


def _cli_args(case: Case) -> list[str]:
    args = ["--layout", case.layout]
    for key, value in case.options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_through_the_library(case: Case, tmp_path: Path, store: Store) -> None:
    path = case.build(tmp_path)
    config = _config(case)
    expect = case.expect
    if isinstance(expect, Reject):
        with pytest.raises(ShopseqError) as caught:
            ingest_files([path], config, store)
        assert type(caught.value).__name__ == expect.error, caught.value
        assert expect.message in str(caught.value)
        assert str(caught.value).startswith(path.name + ":") or str(path) in str(caught.value)
        for table in ("events", "quarantine", "source_files"):
            assert store.sql(f"SELECT count(*) FROM {table}").column(0)[0].as_py() == 0
        return
    report = ingest_files([path], config, store).files[0]
    got = store.sql(
        "SELECT source_row, reason, message FROM quarantine ORDER BY source_row"
    ).to_pylist()
    assert {r["source_row"]: r["reason"] for r in got} == expect.quarantined
    assert (report.rows_read, report.rows_accepted, report.rows_quarantined) == (
        expect.read,
        expect.accepted,
        expect.n_quarantined,
    )
    assert report.rows_read == report.rows_accepted + report.rows_quarantined
    events = store.sql("SELECT source_row FROM events ORDER BY 1").column(0).to_pylist()
    assert len(events) == expect.accepted
    if expect.accepted_lines is not None:
        assert tuple(events) == expect.accepted_lines
    for row in got:
        # Every message names the file and the line: "<file>:<line>: ...".
        assert row["message"].startswith(f"{path.name}:{row['source_row']}: ")
    if expect.message is not None:
        assert any(expect.message in r["message"] for r in got), got


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_through_the_cli(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = case.build(tmp_path)
    code = run(["ingest", str(path), *_cli_args(case), "--store", str(tmp_path / "s.duckdb")])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in err
    shown = " ".join(err.split())
    if isinstance(case.expect, Reject):
        assert code == 2, err
        assert shown.startswith("error: ") and path.name in shown
        assert " ".join(case.expect.message.split()) in shown
    else:
        assert code == 0, err
        assert path.name in " ".join(out.split()).replace("…", "") or len(path.name) > 20
        assert f"read {case.expect.read:,} = accepted {case.expect.accepted:,}" in out
        assert "✓" in out


def test_the_corpus_covers_the_issue_checklist() -> None:
    names = {c.name for c in CASES}
    for needed in (
        "epoch_micro_nano_and_1e36_auto",
        "diginetica_timeframe_overflow",
        "truncated_gzip",
        "truncated_zstd",
        "truncated_bzip2",
        "plain_text_named_gz",
        "gzip_trailing_garbage",
        "zero_bytes",
        "header_only_no_newline",
        "duplicate_used_header",
        "duplicate_unused_header",
        "parquet_number_surprises",
        "parquet_corrupt_page",
        "short_row_with_bad_utf8",
        "upper_case_suffix",
        "no_newline_at_all_header",
        "brackets_in_path",
        "unterminated_quote_19_rows",
        "quoted_newlines_keep_line_numbers",
        "cr_only_line_endings",
        "json_raw_cr_inside_line",
        "parquet_float_ids",
        "json_non_scalar_ids",
        "parquet_struct_bool_binary_ids",
        "offsets_beyond_14h",
        "json_bom_first_record",
    ):
        assert needed in names
    assert len(CASES) >= 60


# --- line numbers under --strict ------------------------------------------------------------


def test_strict_names_the_exact_line_after_quoted_newlines(tmp_path: Path, store: Store) -> None:
    from corpus import QUOTED_NEWLINES

    path = tmp_path / "q.csv"
    path.write_text(QUOTED_NEWLINES)
    config = IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"], strict=True)
    with pytest.raises(errors.BadRowError) as caught:
        ingest_files([path], config, store)
    assert caught.value.line == 4
    assert str(caught.value).startswith("q.csv:4: column 'action': 'teleport' is not a known")


def test_line_numbers_survive_block_boundaries_and_multiline_records(
    tmp_path: Path, store: Store
) -> None:
    # Tiny blocks: records with quoted newlines straddle every block boundary.
    body = []
    bad = []
    line = 2
    for i in range(300):
        if i % 7 == 0:
            body.append(f'u{i},i{i},search,2024-01-01 10:00:00,"multi\nline {i}"\n')
            line += 2
        elif i % 11 == 0:
            body.append(f"u{i},i{i},teleport,2024-01-01 10:00:00,q\n")
            bad.append(line)
            line += 1
        else:
            body.append(f"u{i},i{i},view,2024-01-01 10:00:00,q\n")
            line += 1
    path = tmp_path / "m.csv"
    path.write_text("user_id,item_id,action,ts,query\n" + "".join(body))
    config = IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"], block_bytes=97)
    report = ingest_files([path], config, store).files[0]
    assert report.rows_read == 300
    assert report.lines == line - 1
    rows = store.sql("SELECT source_row FROM quarantine ORDER BY 1").column(0).to_pylist()
    assert rows == bad
    queries = store.sql("SELECT query FROM events WHERE query <> 'q' ORDER BY source_row")
    assert queries.column(0).to_pylist()[:2] == ["multi\nline 0", "multi\nline 7"]


def test_unterminated_quote_across_blocks_costs_one_line(tmp_path: Path, store: Store) -> None:
    from corpus import UNTERMINATED_19

    path = tmp_path / "u.csv"
    path.write_text(UNTERMINATED_19 * 3)  # the header repeats as bad rows; quotes open thrice
    config = IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"], block_bytes=64)
    report = ingest_files([path], config, store).files[0]
    assert report.rows_read == 3 * 20 - 1
    assert report.by_reason == {"unterminated_quote": 3, "unknown_action": 2}


def test_a_record_longer_than_the_limit_is_not_merged(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "l.csv"
    path.write_text("user_id,item_id,action,ts,query\n")
    with path.open("a") as handle:
        handle.write('u1,i1,view,2024-01-01,"open\n')
        for i in range(2, 3000):
            handle.write(f"u{i},i{i},view,2024-01-01,q{i}\n")
    config = IngestConfig(
        layout=BUILTIN_LAYOUTS["shopseq"], block_bytes=4096, max_line_bytes=16_384
    )
    report = ingest_files([path], config, store).files[0]
    assert report.rows_read == 2999 and report.rows_accepted == 2998
    assert report.by_reason == {"unterminated_quote": 1}


# --- memory bound ---------------------------------------------------------------------------


def _peak_rss_mb(code: str) -> tuple[float, str]:
    # VmHWM is this process's own peak; ru_maxrss would include the RSS of the forked parent.
    script = (
        code
        + "\nimport re\n"
        + "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
        + "print('PEAK', int(hwm) / 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=600
    )
    peak = float(re.findall(r"PEAK ([0-9.]+)", done.stdout)[-1])
    return peak, done.stdout + done.stderr


@pytest.mark.slow
def test_a_2gb_file_without_a_line_break_stays_within_the_memory_bound(tmp_path: Path) -> None:
    zeros = tmp_path / "zeros.csv"
    with zeros.open("wb") as handle:
        handle.truncate(2 << 30)  # sparse: 2 GB of zero bytes, no disk used
    header = tmp_path / "header.csv"
    with header.open("wb") as handle:
        handle.truncate(256 << 20)  # the header case stops at the limit: a smaller file will do
    code = f"""
from pathlib import Path
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.errors import UnreadableFileError
from shopseq.store import open_store
store = open_store(None, threads=1)
try:
    ingest_files([Path({str(header)!r})], IngestConfig(layout=BUILTIN_LAYOUTS['shopseq']), store)
except UnreadableFileError as err:
    print('REJECTED', err)
r = ingest_files([Path({str(zeros)!r})], IngestConfig(layout=BUILTIN_LAYOUTS['taobao']), store)
f = r.files[0]
print('COUNTS', f.rows_read, f.rows_accepted, f.rows_quarantined, f.by_reason)
"""
    peak, output = _peak_rss_mb(code)
    assert "REJECTED header.csv:1: the first line is longer than 67,108,864 bytes" in output
    assert "COUNTS 1 0 1 {'line_too_long': 1}" in output
    # Bound: 64 MB line limit + 16 MB block + decompression pieces, over the interpreter, the
    # libraries and an open store (~150 MB before reading anything; 260 MB measured in all).
    assert peak < 350, output


# --- rejected files write nothing and earlier files stay ------------------------------------


def test_a_failing_file_keeps_the_committed_ones_and_reports_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.csv"
    good.write_text("user_id,item_id,action,ts\nu1,i1,view,2024-01-01\n")
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 6)
    later = tmp_path / "later.csv"
    later.write_text("user_id,item_id,action,ts\nu2,i2,view,2024-01-01\n")
    store = tmp_path / "s.duckdb"
    code = run(["ingest", str(good), str(bad), str(later), "--store", str(store)])
    out, err = capsys.readouterr()
    shown = " ".join(err.split())
    assert code == 2
    assert "good.csv" in out and "read 1 = accepted 1 + quarantined 0" in out
    assert f"committed 1 of 3 files; not ingested: {bad}, {later}" in shown
    assert "error: bad.csv.gz:1: is a truncated gzip file" in shown
    with open_store(store, read_only=True) as opened:
        assert opened.sql("SELECT count(*) FROM events").column(0)[0].as_py() == 1


def test_paths_are_checked_before_anything_is_ingested(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.csv"
    good.write_text("user_id,item_id,action,ts\nu1,i1,view,2024-01-01\n")
    store = tmp_path / "s.duckdb"
    assert run(["ingest", str(good), str(tmp_path), "--store", str(store)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"error: {tmp_path}: is a directory; pass the files in it" in err
    assert run(["ingest", str(good), str(tmp_path / "nope.csv"), "--store", str(store)]) == 2
    assert "nope.csv: no such file" in capsys.readouterr().err
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "gone.csv")
    assert run(["ingest", str(tmp_path / "dangling.csv"), "--store", str(store)]) == 2
    assert "dangling.csv: no such file" in capsys.readouterr().err
    assert not store.exists()  # nothing was even opened


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without read permission")
def test_an_unreadable_file_is_a_usage_level_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "secret.csv"
    path.write_text("user_id,item_id,action,ts\n")
    path.chmod(0)
    assert run(["ingest", str(path), "--store", str(tmp_path / "s.duckdb")]) == 2
    assert "secret.csv: cannot be read: Permission denied" in capsys.readouterr().err


def test_unreadable_file_error_renders_file_line_and_column() -> None:
    err = UnreadableFileError("/d/e.csv", "the header is bad", line=1, column=13)
    assert str(err) == "e.csv:1:13: the header is bad"
    assert issubclass(UnreadableFileError, errors.InputError)
    assert str(UnreadableFileError("e.csv", "x").at_line(7)) == "e.csv:7: x"


def test_markup_in_a_file_name_is_shown_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "[red]x.csv"
    path.write_text("user_id,item_id,action,ts\nu1,i1,view,2024-01-01\n")
    assert run(["ingest", str(path), "--store", str(tmp_path / "s.duckdb")]) == 0
    assert "[red]x.csv" in capsys.readouterr().out
    bad = tmp_path / "[bold]y[.csv"
    bad.write_bytes(b"")
    assert run(["ingest", str(bad), "--store", str(tmp_path / "s.duckdb")]) == 2
    assert "[bold]y[.csv: is empty" in capsys.readouterr().err


@pytest.mark.parametrize("cr_endings", [False, True])
def test_damaged_compression_names_the_line_it_cuts(
    cr_endings: bool, tmp_path: Path, store: Store
) -> None:
    import gzip
    import zlib

    ending = "\r" if cr_endings else "\n"
    text = "user_id,item_id,action,ts" + ending
    text += "".join(f"u{n},i{n},view,2024-01-01 10:00:00{ending}" for n in range(3000))
    blob = gzip.compress(text.encode())[: 40_000 // 3]
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(blob)
    # Independently: the lines the partial stream decompresses to, and the one it cuts.
    partial = zlib.decompressobj(31).decompress(blob)
    expected = partial.count(ending.encode()) + 1
    assert 1 < expected < 3000
    with pytest.raises(UnreadableFileError, match=rf"^cut\.csv\.gz:{expected}: is a truncated"):
        ingest_files([path], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store)


def test_a_data_file_given_as_the_store_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "events.csv"
    data.write_text("user_id,item_id,action,ts\nu1,i1,view,2024-01-01\n")
    before = data.read_bytes()
    for command in (["prepare"], ["stats"], ["ingest", str(data)]):
        assert run([*command, "--store", str(data)]) == 2  # bad input
        err = " ".join(capsys.readouterr().err.split())
        assert "events.csv is not a DuckDB event store" in err, err
    assert data.read_bytes() == before
    store = tmp_path / "s.duckdb"
    assert run(["ingest", str(data), "--store", str(store)]) == 0
    assert run(["stats", "--store", str(store)]) == 0  # a real store still opens
