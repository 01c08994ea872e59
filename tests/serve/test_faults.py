"""Against a real server process on 127.0.0.1: kill -9 under load, hot reload under load.

Every loop here is bounded in count and in time, and all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from serve_support import Keys, ServerProcess

pytestmark = pytest.mark.slow

N_CLIENTS = 8
ROUNDS = 3
ROUND_SECONDS = 1.0
MIN_ACKED_PER_ROUND = 200


def _post_until_dead(
    url: str, key: str, worker: int, round_no: int, acked: list[tuple[str, str, int]],
    lock: threading.Lock, stop_at: float,
) -> None:  # fmt: skip
    """Post events as fast as possible until the server dies or time is up (bounded)."""
    user = f"fault-user-{worker}"
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=5) as client:
        for n in range(100_000):
            if time.monotonic() > stop_at:
                return
            batch = n % 5 == 4  # every fifth request is a batch of 10
            items = [f"r{round_no}-w{worker}-{n}-{k}" for k in range(10 if batch else 1)]
            events = [{"user_id": user, "item_id": i, "action": "view"} for i in items]
            try:
                response = client.post(
                    "/v1/events", json={"events": events} if batch else events[0]
                )
            except httpx.HTTPError:
                return  # the server was killed: this request was never acknowledged
            if response.status_code == 200:
                body = response.json()
                with lock:
                    for k, item in enumerate(items):
                        acked.append((user, item, body["first_seq"] + k))


def test_kill_9_under_load_loses_no_acknowledged_event(
    sknn_run: Path, keys: Keys, tmp_path: Path
) -> None:
    log = tmp_path / "events.sqlite"
    stderr = tmp_path / "server.log"
    acked: list[tuple[str, str, int]] = []
    lock = threading.Lock()
    for round_no in range(ROUNDS):
        server = ServerProcess(sknn_run, log, keys.path, stderr, "--max-recent", "100000")
        server.start()
        stop_at = time.monotonic() + 10
        threads = [
            threading.Thread(
                target=_post_until_dead,
                args=(server.url, keys.client, w, round_no, acked, lock, stop_at),
            )
            for w in range(N_CLIENTS)
        ]
        for thread in threads:
            thread.start()
        # Kill once this round has some acknowledged events (bounded: at most 10 s).
        wanted = len(acked) + MIN_ACKED_PER_ROUND
        deadline = time.monotonic() + 10
        time.sleep(ROUND_SECONDS)
        while len(acked) < wanted and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()  # SIGKILL while the clients post at full speed
        for thread in threads:
            thread.join(timeout=30)
    assert len(acked) >= ROUNDS * MIN_ACKED_PER_ROUND / 2, f"only {len(acked)} acknowledged"
    with sqlite3.connect(log) as con:
        logged = {
            seq: (user, item) for seq, user, item in con.execute(
                "SELECT seq, user_id, item_id FROM events"
            )
        }  # fmt: skip
    missing = [a for a in acked if logged.get(a[2]) != (a[0], a[1])]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged events are not in the log"
    # The state rebuilt at start holds every logged event of each user.
    per_user_logged = Counter(user for user, _ in logged.values())
    per_user_acked = Counter(user for user, _, _ in acked)
    with ServerProcess(sknn_run, log, keys.path, stderr, "--max-recent", "100000") as server:
        for user, n_acked in per_user_acked.items():
            answer = httpx.get(
                f"{server.url}/v1/users/{user}/recommendations",
                headers={"X-API-Key": keys.client}, timeout=10,
            ).json()  # fmt: skip
            assert answer["n_live_events"] == per_user_logged[user] >= n_acked
    print(
        f"\n{ROUNDS} x kill -9: {len(acked)} events acknowledged, all {len(acked)} in the log "
        f"({len(logged)} logged, {len(logged) - len(acked)} written but unanswered) and in the "
        "rebuilt state"
    )
    text = stderr.read_text()
    assert "fault-user" not in text and keys.client not in text


def test_hot_reload_under_load_fails_no_request(
    sknn_run: Path, markov_run: Path, keys: Keys, tmp_path: Path
) -> None:
    server = ServerProcess(sknn_run, tmp_path / "events.sqlite", keys.path, tmp_path / "s.log")
    failures: list[str] = []
    versions: Counter[str] = Counter()
    done = threading.Event()
    lock = threading.Lock()

    def hammer(worker: int) -> None:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": keys.client}, timeout=10) as c:
            for n in range(20_000):
                if done.is_set():
                    return
                try:
                    if n % 4 == 0:
                        event = {"user_id": f"w{worker}", "item_id": f"x{n}", "action": "view"}
                        response = c.post("/v1/events", json=event)
                    else:
                        response = c.get(f"/v1/users/w{worker}/recommendations?k=5")
                        if response.status_code == 200:
                            with lock:
                                versions[response.json()["model_version"]] += 1
                except httpx.HTTPError as err:
                    response = None
                    failures.append(f"{type(err).__name__}: {err}")
                if response is not None and response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")

    with server:
        threads = [threading.Thread(target=hammer, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        admin = {"X-API-Key": keys.admin}
        try:
            for n in range(6):
                time.sleep(0.3)
                target = markov_run if n % 2 == 0 else sknn_run
                swap = httpx.post(
                    f"{server.url}/v1/admin/reload", json={"run": str(target)}, headers=admin,
                    timeout=60,
                )  # fmt: skip
                assert swap.status_code == 200, swap.text
            time.sleep(0.3)
        finally:
            done.set()
            for thread in threads:
                thread.join(timeout=30)
    assert not failures, f"{len(failures)} failed requests during reloads: {failures[:5]}"
    assert len(versions) == 2 and sum(versions.values()) > 100, versions
