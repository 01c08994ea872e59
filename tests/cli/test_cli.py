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
