"""--pseudonymize leaves no raw user id anywhere: store, quarantine, stdout, stderr.

Raw ids are planted in every place a row can carry them (good rows, rows failing each rule,
whole-row rejects, a session id that embeds the user id, a session that *is* the user), then the
whole store is dumped and grepped, as are the raw DuckDB files and everything printed.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import re
from pathlib import Path

import pytest

from shopseq.cli import run
from shopseq.store import open_store

KEY = "k" * 40
SECRET = "alice.secret"  # a raw user id that must never be seen again
SESSION = "987654321"  # a YooChoose session, which stands for the user


def _pseudonym(value: str) -> str:
    return hmac.new(KEY.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


def _planted(path: Path) -> None:
    s = SECRET
    lines = [
        "user_id,item_id,action,ts,session_id,category_id,price,quantity,query",
        f"{s},i1,view,2024-01-01 10:00:00,{s}-0,c1,1.0,,",  # good; session embeds the user
        f"{s},i1,teleport,2024-01-01 10:00:00,{s}-0,c1,1.0,,",  # unknown action
        f"{s},i1,view,not-a-time,{s}-1,c1,1.0,,",  # bad timestamp
        f"{s},i1,view,2024-01-01 10:00:00,{s}-1,c1,-5,,",  # negative price
        f"{s},i1,view",  # wrong column count (whole row)
        f'{s},"i1,view,2024-01-01 10:00:00,,,,,',  # unterminated quote (whole row)
        f"{s}\t,i1,view,2024-01-01 10:00:00,,,,,",  # bad id (control character)
        f",i1,view,2024-01-01 10:00:00,{s}-2,,,,",  # missing user, session still carries it
        f'{s},"i1"x,view,2024-01-01 10:00:00,,,,,',  # malformed quoting (whole row)
    ]
    data = ("\n".join(lines) + "\n").encode()
    data += f"{s},i\xff,view,2024-01-01 10:00:00,{s}-3,,,,\n".encode("latin-1")  # bad UTF-8
    path.write_bytes(data)


def _dump(store_path: Path) -> str:
    with open_store(store_path, read_only=True) as store:
        tables = store.sql("SELECT table_name FROM information_schema.tables").column(0)
        return "\n".join(
            str(row)
            for name in tables.to_pylist()
            for row in store.sql(f"SELECT * FROM {name}").to_pylist()
        )


def test_no_raw_id_in_store_quarantine_stdout_or_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPSEQ_PSEUDONYM_KEY", KEY)
    store = tmp_path / "s.duckdb"
    # 1. A generated log: sessions are "<user>-<n>", and 5 % of rows are dirty.
    log = tmp_path / "log.csv"
    assert run(["generate", str(log), "-n", "3000", "--days", "5", "--dirty", "0.05"]) == 0
    with log.open() as handle:
        generated = {row["user_id"] for row in csv.DictReader(handle)}
    planted = tmp_path / "planted.csv"
    _planted(planted)
    clicks = tmp_path / "clicks.dat"
    clicks.write_text(
        f"{SESSION},2014-04-06T20:21:58.444Z,214717095,0\n"
        f"{SESSION},2014-04-06T20:22:58.444Z,214717096,0\n"
        f"{SESSION},not-a-time,214717097,0\n"
        f"{SESSION},2014-04-06T20:23:58.444Z\n"
    )
    capsys.readouterr()
    assert run(["ingest", str(log), str(planted), "--pseudonymize", "--store", str(store)]) == 0
    assert (
        run(
            [
                "ingest",
                str(clicks),
                "--layout",
                "yoochoose-clicks",
                "--pseudonymize",
                "--store",
                str(store),
            ]
        )
        == 0
    )
    # 2. Strict mode prints the first bad row: its value must be withheld too.
    strict = tmp_path / "strict.csv"
    strict.write_text(
        f"user_id,item_id,action,ts\n{SECRET},i1,view,2024-01-01\n{SECRET},i1,teleport,2024-01-01\n"
    )
    assert run(["ingest", str(strict), "--strict", "--pseudonymize", "--store", str(store)]) == 2
    whole_row = tmp_path / "strict_row.csv"
    whole_row.write_text(f"user_id,item_id,action,ts\n{SECRET},i1\n")
    assert run(["ingest", str(whole_row), "--strict", "--pseudonymize", "--store", str(store)]) == 2
    # 3. A headerless file read with a header layout would show its first row as column names.
    headerless = tmp_path / "headerless.csv"
    headerless.write_text(f"{SECRET},i1,view,2024-01-01\n")
    assert run(["ingest", str(headerless), "--pseudonymize", "--store", str(store)]) == 2
    out, err = capsys.readouterr()
    shown = out + err
    flat = " ".join(err.split())
    # The action cannot carry the id: shown. The whole row can: withheld.
    assert "strict.csv:3: column 'action': 'teleport' is not a known action" in flat
    assert "strict_row.csv:2: '<redacted: pseudonymised ingest>' has 2 fields" in flat
    assert "found ['<4 names withheld under --pseudonymize>']" in flat
    dump = _dump(store)
    raw_files = b"".join(p.read_bytes() for p in tmp_path.glob("s.duckdb*"))
    for text in (dump, shown):
        assert SECRET not in text
        assert SESSION not in text
        leaked = {u for u in re.findall(r"u0\d{5}", text)} & generated
        assert not leaked, sorted(leaked)[:5]
    assert SECRET.encode() not in raw_files and SESSION.encode() not in raw_files
    # Pseudonyms are keyed hashes, consistent across columns: a session that is the user maps
    # to the same pseudonym; a session embedding the user id is hashed whole.
    with open_store(store, read_only=True) as opened:
        rows = opened.sql(
            "SELECT user_id, session_id, source_file_id FROM events ORDER BY source_file_id"
        ).to_pylist()
        quarantine = opened.sql("SELECT reason, raw_value FROM quarantine").to_pylist()
    clicks_rows = [r for r in rows if r["source_file_id"] == 3]
    assert clicks_rows and all(
        r["user_id"] == r["session_id"] == _pseudonym(SESSION) for r in clicks_rows
    )
    planted_rows = [r for r in rows if r["source_file_id"] == 2]
    assert planted_rows == [
        {
            "user_id": _pseudonym(SECRET),
            "session_id": _pseudonym(f"{SECRET}-0"),
            "source_file_id": 2,
        }
    ]
    reasons = {r["reason"] for r in quarantine}
    assert {
        "unknown_action",
        "bad_timestamp",
        "wrong_column_count",
        "unterminated_quote",
        "bad_id",
        "missing_field",
        "malformed_row",
        "bad_encoding",
    } <= reasons
    # Values that cannot carry the id stay visible for debugging.
    assert any(r["raw_value"] == "teleport" for r in quarantine)
    assert any(r["raw_value"] == "not-a-time" for r in quarantine)
