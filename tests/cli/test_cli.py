"""The command line end to end in a temporary directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopseq.cli import run


def test_generate_ingest_prepare_stats_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log, store = tmp_path / "log.csv", tmp_path / "s.duckdb"
    assert run(["generate", str(log), "-n", "5000", "--days", "10", "--dirty", "0.01"]) == 0
    assert run(["ingest", str(log), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "quarantined" in out and "✓" in out
    assert run(["prepare", "--store", str(store)]) == 0
    capsys.readouterr()
    assert run(["stats", "--json", "--store", str(store)]) == 0
    profile = json.loads(capsys.readouterr().out)
    assert profile["table"] == "events_prepared"
    assert profile["rows_read"] == profile["raw_events"] + profile["rows_quarantined"]
    assert profile["rows_quarantined"] > 0
    assert profile["n_sessions"] > 0
    assert set(profile["events_by_action"]) >= {"view", "cart", "purchase"}
    # Ingesting the same file again adds nothing.
    assert run(["ingest", str(log), "--store", str(store)]) == 0
    assert "already ingested" in capsys.readouterr().out


def test_generate_plants_the_sequence_structure_on_request(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    plain, planted = tmp_path / "plain.parquet", tmp_path / "planted.parquet"
    args = ["-n", "5000", "--items", "600", "--days", "10"]
    assert run(["generate", str(plain), *args]) == 0
    assert run(["generate", str(planted), *args, "--sequence-structure"]) == 0
    a, b = pq.read_table(plain), pq.read_table(planted)
    assert a.column("session_id").equals(b.column("session_id"))
    assert not a.column("item_id").equals(b.column("item_id"))  # the views follow missions


def test_bad_input_exits_2_with_file_line_and_column(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(
        [
            "ingest",
            str(data_dir / "bad_timestamp.csv"),
            "--strict",
            "--store",
            str(tmp_path / "s.duckdb"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "bad_timestamp.csv:3: column 'ts': '2024-13-45 99:00:00' is not a valid timestamp" in (
        " ".join(err.split())
    )


def test_unknown_layout_lists_the_known_ones(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(
        [
            "ingest",
            str(data_dir / "bad_timestamp.csv"),
            "--layout",
            "nope",
            "--store",
            str(tmp_path / "s.duckdb"),
        ]
    )
    assert code == 2
    assert "unknown layout 'nope'; built-in layouts: shopseq, taobao" in " ".join(
        capsys.readouterr().err.split()
    )


def test_pseudonymize_without_a_key_explains_how_to_make_one(
    tmp_path: Path,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SHOPSEQ_PSEUDONYM_KEY", raising=False)
    code = run(
        [
            "ingest",
            str(data_dir / "bad_timestamp.csv"),
            "--pseudonymize",
            "--store",
            str(tmp_path / "s.duckdb"),
        ]
    )
    assert code == 2
    assert "--pseudonymize needs a secret key" in " ".join(capsys.readouterr().err.split())


def test_stats_on_a_missing_store_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["stats", "--store", str(tmp_path / "none.duckdb")]) == 1
    assert "no event store at" in capsys.readouterr().err


def test_sequences_command_reports_the_split_and_persists_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from shopseq.sequences import Sequences, Vocabulary

    log, store = tmp_path / "log.csv", tmp_path / "s.duckdb"
    assert run(["generate", str(log), "-n", "4000", "--days", "20"]) == 0
    assert run(["ingest", str(log), "--store", str(store)]) == 0
    assert run(["prepare", "--store", str(store)]) == 0
    capsys.readouterr()
    out_dir = tmp_path / "split"
    assert (
        run(
            [
                "sequences",
                "--store",
                str(store),
                "--protocol",
                "time-cut",
                "--test-days",
                "5",
                "--out",
                str(out_dir),
            ]
        )
        == 0
    )
    shown = capsys.readouterr().out
    assert "test cold start items" in shown and "time_cut" in shown
    report = json.loads((out_dir / "split_report.json").read_text())
    assert report["n_events"] == (report["n_train_full_events"] + report["n_test_cases"])
    train = Sequences.load(out_dir / "train.npz")
    assert train.n_events == report["n_train_events"]
    items = Vocabulary.load("item", out_dir / "vocab_item.parquet")
    assert len(items.ids) == report["n_items"]


# --- ingest: usage errors, messages --------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "--bogus"], "No such option: --bogus"),
        (["ingest", "{log}", "--ts-format", "bogus"], "Invalid value for '--ts-format'"),
        (["ingest", "{log}", "--threads", "0"], "Invalid value for '--threads'"),
        (["ingest"], "Invalid value for FILES: give the files to ingest"),
        (["ingest", "{log}", "--memory-limit", "lots"], "'lots' is not a memory size"),
        (["ingest", "{log}", "--max-line-bytes", "10"], "Invalid value for '--max-line-bytes'"),
        (["nosuchcommand"], "No such command 'nosuchcommand'"),
    ],
)
def test_usage_errors_exit_2_with_a_usage_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id,action,ts\nu1,i1,view,2024-01-01\n")
    argv = [a.replace("{log}", str(log)) for a in args]
    if argv[0] == "ingest" and len(argv) > 1:
        argv += ["--store", str(tmp_path / "s.duckdb")]
    assert run(argv) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "Usage: shopseq" in err
    assert message in " ".join(err.split())


def test_the_handler_covers_typers_vendored_click_exceptions() -> None:
    import typer

    from shopseq.cli import _CLICK_ERRORS, _EXITS, _USAGE_ERRORS

    assert issubclass(typer.BadParameter, _USAGE_ERRORS)
    assert any(issubclass(typer.Exit, cls) for cls in _EXITS)
    assert any(issubclass(typer.BadParameter, cls) for cls in _CLICK_ERRORS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--delimiter", ";;"], "--delimiter ';;': expected one ASCII character"),
        (["--ts-format", "strptime"], "pass --ts-strptime FORMAT"),
        (["--no-header"], "pass --source-columns a,b,c"),
        (["--ts-format", "strptime", "--ts-strptime", "%Q"], "ts_strptime '%Q' is not a valid"),
        (["--ts-min", "2025-01-01", "--ts-max", "2024-01-01"], "is not after --ts-min"),
        (["--layout-file", "{dir}"], "cannot read layout file"),
    ],
)
def test_bad_option_values_say_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id,action,ts\nu1,i1,view,2024-01-01\n")
    argv = ["ingest", str(log), *[a.replace("{dir}", str(tmp_path)) for a in args]]
    assert run([*argv, "--store", str(tmp_path / "s.duckdb")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("error: ") and message in err


def test_headerless_file_with_a_custom_time_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.txt"
    log.write_text("u1;i1;view;31/01/2024 10:00\nu2;i2;cart;31/01/2024 10:05\nu3;i3;view;bad\n")
    args = [
        "ingest", str(log), "--no-header", "--source-columns", "user,item,action,time",
        "--column", "user_id=user", "--column", "item_id=item", "--column", "ts=time",
        "--delimiter", ";", "--ts-format", "strptime", "--ts-strptime", "%d/%m/%Y %H:%M",
        "--store", str(tmp_path / "s.duckdb"),
    ]  # fmt: skip
    assert run(args) == 0
    assert "read 3 = accepted 2 + quarantined 1" in capsys.readouterr().out


def test_layout_file_that_is_not_utf8_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = tmp_path / "mine.toml"
    layout.write_bytes(b"delimiter = '\xff'\n")
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id,action,ts\n")
    code = run(["ingest", str(log), "--layout-file", str(layout), "--store", str(tmp_path / "s")])
    assert code == 2
    assert "mine.toml: cannot read layout file" in " ".join(capsys.readouterr().err.split())


def test_user_paths_that_look_like_markup_are_printed_as_they_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "[bold]g[/].csv"
    assert run(["generate", str(log), "-n", "300", "--seed", "3"]) == 0
    # Rich may wrap a long path anywhere: compare without white space.
    assert "[bold]g[/].csv" in "".join(capsys.readouterr().out.split())
    store = tmp_path / "[red]s.duckdb"
    assert run(["ingest", str(log), "--store", str(store)]) == 0
    capsys.readouterr()
    assert run(["export", "events", "--store", str(store), "--to", str(tmp_path / "[i]pq")]) == 0
    shown = "".join(capsys.readouterr().out.split())
    assert "[i]pq" in shown, shown
