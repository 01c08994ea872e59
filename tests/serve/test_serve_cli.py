"""`shopseq serve keys add/list/revoke` and `shopseq serve` argument errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopseq.cli import run
from shopseq.serve.keys import KeyStore, digest


def _out(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    captured = capsys.readouterr()
    return " ".join(captured.out.split()), " ".join(captured.err.split())


def test_keys_add_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys.json"
    assert run(["serve", "keys", "add", "frontend", "--keys", str(path), "--quiet"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("ssq_") and len(key) > 40
    stored = json.loads(path.read_text())["keys"]
    assert [k["sha256"] for k in stored] == [digest(key)] and key not in path.read_text()
    assert run(["serve", "keys", "add", "ops", "--role", "admin", "--keys", str(path)]) == 0
    out, _ = _out(capsys)
    assert "admin key" in out and "shown only now" in out
    assert run(["serve", "keys", "list", "--keys", str(path)]) == 0
    out, _ = _out(capsys)
    assert "frontend" in out and "ops" in out and key not in out
    key_id = stored[0]["key_id"]
    assert KeyStore(path).check(key) is not None
    assert run(["serve", "keys", "revoke", key_id, "--keys", str(path)]) == 0
    assert KeyStore(path).check(key) is None
    assert run(["serve", "keys", "revoke", "nope", "--keys", str(path)]) == 2
    _, err = _out(capsys)
    assert "no API key with id 'nope'" in err and key_id in err


def test_keys_add_refuses_an_unknown_role(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    assert run(["serve", "keys", "add", "x", "--role", "root", "--keys", str(path)]) == 2
    assert "--role must be client or admin" in _out(capsys)[1]
    assert not path.exists()


def test_serve_needs_a_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["serve"]) == 2
    assert "needs --run DIR" in _out(capsys)[1]


def test_serve_refuses_a_directory_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["serve", "--run", str(tmp_path), "--log", str(tmp_path / "l.sqlite")])
    assert code == 1
    assert "not a complete run directory" in _out(capsys)[1]


def test_serve_refuses_a_bad_state_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["serve", "--run", str(tmp_path), "--state", "mongodb://x"]) == 2
    assert "state must be 'memory' or a redis:// URL" in _out(capsys)[1]
