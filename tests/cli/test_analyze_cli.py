from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopseq.cli import run
from shopseq.store import open_store


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`shopseq demo` on a small log: generate, ingest, prepare, stats, report."""
    workdir = tmp_path_factory.mktemp("demo")
    assert run(["demo", "--workdir", str(workdir), "-n", "20000", "--threads", "1"]) == 0
    return workdir


def test_demo_ends_with_the_report(demo_dir: Path, capsys):
    report = demo_dir / "report.html"
    assert report.is_file()
    text = report.read_text()
    assert '<section id="funnel">' in text and '<section id="segments">' in text


@pytest.mark.parametrize(
    ("command", "key"),
    [
        (["funnel", "--breakdown", "category"], "overall"),
        (["paths", "--max-steps", "3"], "to_purchase"),
        (["transitions"], "actions"),
        (["patterns", "--token", "action", "--min-support", "0.01"], "patterns"),
        (["rules", "--actions", "all"], "rules"),
        (["segments", "--k", "3"], "segments"),
        (["retention", "--period", "month"], "cohorts"),
    ],
)
def test_analyze_commands_print_json(demo_dir: Path, capsys, command, key):
    store = str(demo_dir / "shopseq.duckdb")
    capsys.readouterr()
    assert run(["analyze", *command, "--json", "--store", store, "--threads", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert key in data


def test_analyze_tables_and_segment_funnel(demo_dir: Path, capsys):
    store = str(demo_dir / "shopseq.duckdb")
    assert run(["analyze", "funnel", "--breakdown", "segment", "--store", store]) == 1
    assert "analyze segments --save" in capsys.readouterr().err
    assert run(["analyze", "segments", "--save", "--store", store]) == 0
    assert "Segments (k-means" in capsys.readouterr().out
    assert run(["analyze", "funnel", "--breakdown", "segment", "--json", "--store", store]) == 0
    groups = json.loads(capsys.readouterr().out)["groups"]
    with open_store(Path(store), read_only=True) as opened:
        names = set(opened.table("user_segments").segment_name.to_pyarrow().to_pylist())
    assert len(groups) >= 2
    assert {g["group"] for g in groups} <= names | {"unknown"}


def test_analyze_rejects_bad_options_with_exit_2(demo_dir: Path, capsys):
    store = str(demo_dir / "shopseq.duckdb")
    assert run(["analyze", "funnel", "--steps", "view,teleport", "--store", store]) == 2
    assert "unknown actions ['teleport']" in capsys.readouterr().err
    assert run(["analyze", "patterns", "--min-length", "5", "--store", store]) == 2
    assert "must not exceed max_length" in capsys.readouterr().err
    assert run(["analyze", "retention", "--period", "year", "--store", store]) == 2
    assert "--period" in capsys.readouterr().err


def test_report_command_writes_the_file(demo_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "r.html"
    (tmp_path / "plan.json").write_text(json.dumps([{"week": 1, "budget": 10.0}]))
    store = str(demo_dir / "shopseq.duckdb")
    code = run(["report", "--out", str(out), "--artifacts", str(tmp_path), "--store", store])
    assert code == 0
    assert out.is_file()
    assert "1 artifacts" in capsys.readouterr().out
    assert '<section id="artifact-0">' in out.read_text()
