"""The durable log, its group commit, and `ingest --from-serve` (exactly once into the store)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from shopseq.cli import run
from shopseq.errors import InputError, StoreError
from shopseq.runs.serving import EventLog, import_served_events
from shopseq.schema import EVENT_COLUMNS
from shopseq.serve.committer import GroupCommitter
from shopseq.serve.state import MemoryState
from shopseq.store import open_store


def _records(n: int, user: str = "u", start: int = 0) -> list[tuple[str | None, ...]]:
    row = dict.fromkeys(EVENT_COLUMNS)
    out = []
    for k in range(n):
        row.update(user_id=user, item_id=f"i{start + k}", action="view", ts="2024-01-01T00:00:00Z")
        out.append(tuple(row.values()))
    return out


def _with(records: list[tuple[str | None, ...]], n: int, column: str, value: str) -> list:
    index = EVENT_COLUMNS.index(column)
    changed = list(records[n])
    changed[index] = value
    return [*records[:n], tuple(changed), *records[n + 1 :]]


def _committer(path: Path, state: MemoryState | None = None) -> GroupCommitter:
    committer = GroupCommitter(
        path, state or MemoryState(50, 1000), None,
        max_group_events=10_000, max_future=timedelta(days=1),
    )  # fmt: skip
    committer.start()
    return committer


def test_concurrent_requests_share_group_commits(tmp_path: Path) -> None:
    committer = _committer(tmp_path / "log.sqlite")
    results = []
    lock = threading.Lock()

    def post(worker: int) -> None:
        for n in range(25):
            result = committer.submit(_records(1, f"w{worker}", n)).result(timeout=30)
            with lock:
                results.append(result)

    threads = [threading.Thread(target=post, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    committer.stop()
    assert len(results) == 400 and all(r.accepted == 1 for r in results)
    assert sorted(r.first_seq for r in results) == list(range(1, 401))
    # 400 requests from 16 concurrent clients took far fewer fsynced commits than requests.
    assert committer.groups < 300
    with EventLog(tmp_path / "log.sqlite", read_only=True) as log:
        assert log.count() == 400


def test_each_request_gets_its_own_share_of_a_group(tmp_path: Path) -> None:
    committer = _committer(tmp_path / "log.sqlite")
    bad = _with(_records(3, "b"), 1, "action", "nope")
    futures = [committer.submit(_records(2, "a")), committer.submit(bad)]
    first, second = (f.result(timeout=30) for f in futures)
    committer.stop()
    assert (first.accepted, second.accepted) == (2, 2)
    assert [(r.line, r.column) for r in second.rejected] == [(1, "action")]
    assert second.first_seq is not None and first.last_seq is not None
    assert second.first_seq == first.last_seq + 1


def test_import_moves_served_events_into_the_store_exactly_once(tmp_path: Path) -> None:
    log_path = tmp_path / "log.sqlite"
    committer = _committer(log_path)
    committer.submit(_records(5)).result(timeout=30)
    committer.submit(_records(3, "v")).result(timeout=30)
    with open_store(tmp_path / "shop.duckdb", threads=1) as store:
        first = import_served_events(log_path, store, chunk=4)
        again = import_served_events(log_path, store)
        assert (first.imported, first.chunks, first.last_seq) == (8, 2, 8)
        assert (again.imported, again.already_imported) == (0, 8)
        committer.submit(_records(2, "w")).result(timeout=30)
        later = import_served_events(log_path, store)
        assert (later.imported, later.already_imported, later.last_seq) == (2, 8, 10)
        rows = store.sql("SELECT user_id, source_row FROM events ORDER BY source_row").to_pylist()
        assert [r["source_row"] for r in rows] == list(range(1, 11))
        files = store.sql("SELECT path, layout FROM source_files ORDER BY 1").to_pylist()
        assert {f["layout"] for f in files} == {"serve"} and len(files) == 3
    committer.stop()


def test_a_failed_import_is_redone_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log_path = tmp_path / "log.sqlite"
    committer = _committer(log_path)
    committer.submit(_records(6)).result(timeout=30)
    committer.stop()
    with open_store(tmp_path / "shop.duckdb", threads=1) as store:
        real = store.transaction
        calls = {"n": 0}

        @contextmanager
        def flaky() -> Iterator[object]:
            with real() as con:
                yield con
                calls["n"] += 1
                if calls["n"] == 2:  # the second chunk fails after its rows were written
                    raise StoreError("disk full (simulated)")

        monkeypatch.setattr(store, "transaction", flaky)
        with pytest.raises(StoreError, match="simulated"):
            import_served_events(log_path, store, chunk=4)
        monkeypatch.setattr(store, "transaction", real)
        assert store.sql("SELECT COUNT(*) AS n FROM events").to_pylist() == [{"n": 4}]
        done = import_served_events(log_path, store, chunk=4)
        assert (done.imported, done.already_imported) == (2, 4)
        assert store.sql("SELECT COUNT(DISTINCT source_row) AS n FROM events").to_pylist() == [
            {"n": 6}
        ]


def test_ingest_from_serve_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log_path = tmp_path / "log.sqlite"
    committer = _committer(log_path)
    committer.submit(_records(4)).result(timeout=30)
    committer.stop()
    store = tmp_path / "shop.duckdb"
    argv = ["ingest", "--from-serve", str(log_path), "--store", str(store)]
    assert run(argv) == 0
    assert "4 served events imported" in " ".join(capsys.readouterr().out.split())
    assert run(argv) == 0
    assert "0 served events imported" in " ".join(capsys.readouterr().out.split())
    with open_store(store, read_only=True) as opened:
        assert opened.sql("SELECT COUNT(*) AS n FROM events").to_pylist() == [{"n": 4}]
    assert (
        run(["ingest", "--from-serve", str(tmp_path / "none.sqlite"), "--store", str(store)]) == 1
    )
    assert "no such event log" in " ".join(capsys.readouterr().err.split())


def test_a_request_that_breaks_validation_does_not_fail_its_group(tmp_path: Path) -> None:
    committer = _committer(tmp_path / "log.sqlite")
    # A number so large that converting it to microseconds overflows (a 4xx, never a 5xx).
    hostile = _with(_records(1, "h"), 0, "ts", "-3.6e22")
    futures = [committer.submit(_records(2, "a")), committer.submit(hostile)]
    futures.append(committer.submit(_records(1, "c")))
    good = futures[0].result(timeout=30)
    try:
        outcome: object = futures[1].result(timeout=30)
    except InputError as err:
        outcome = err
    assert futures[2].result(timeout=30).accepted == 1 and good.accepted == 2
    committer.stop()
    # Rejected as out of range where ingest bounds such numbers, or refused with a clear 4xx.
    if isinstance(outcome, InputError):
        assert "could not be validated" in str(outcome)
    else:
        assert outcome.rejected[0].reason.value == "timestamp_out_of_range"  # type: ignore[attr-defined]
