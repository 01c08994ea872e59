"""One contract for every live-state store: in memory and in a real Redis server."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serve_support import Keys, free_port

from shopseq.errors import StoreError
from shopseq.serve import ServeConfig, create_app
from shopseq.serve.state import MemoryState, RedisState, UserState, open_state


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """$SHOPSEQ_TEST_REDIS_URL (.ci/run starts one), else a redis-server started here."""
    given = os.environ.get("SHOPSEQ_TEST_REDIS_URL")
    if given:
        yield given
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(
            "no Redis server: redis-server is not installed (apt-get install redis-server; "
            ".ci/run does) and $SHOPSEQ_TEST_REDIS_URL is not set"
        )
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.RedisError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.skip(f"redis-server did not start on 127.0.0.1:{port}")
            time.sleep(0.1)
    client.close()
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(params=["memory", "redis"])
def state(request: pytest.FixtureRequest) -> Iterator[UserState]:
    if request.param == "memory":
        opened: UserState = MemoryState(max_recent=3, max_users=100)
    else:
        url = request.getfixturevalue("redis_url")
        opened = open_state(url, f"test:{uuid.uuid4().hex}:", max_recent=3, max_users=100)
    yield opened
    opened.close()


def test_recent_items_in_order_bounded_per_user(state: UserState) -> None:
    assert state.recent("nobody") == []
    state.extend([("a", "1"), ("b", "x"), ("a", "2")], "log1", 3)
    state.extend([("a", "3"), ("a", "4")], "log1", 5)
    assert state.recent("a") == ["2", "3", "4"]
    assert state.recent("b") == ["x"]
    assert state.n_users() == 2


def test_applied_sequence_only_moves_forward_per_log(state: UserState) -> None:
    assert state.applied_seq("log1") == 0
    state.extend([("a", "1")], "log1", 7)
    state.extend([], "log1", 3)
    state.extend([("a", "2")], "log2", 2)
    assert (state.applied_seq("log1"), state.applied_seq("log2")) == (7, 2)


def test_memory_state_drops_the_least_recently_active_user() -> None:
    state = MemoryState(max_recent=5, max_users=2)
    state.extend([("a", "1"), ("b", "1"), ("a", "2"), ("c", "1")], "log", 4)
    assert state.recent("b") == [] and state.recent("a") == ["1", "2"]


def test_unreachable_redis_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match=r"cannot reach Redis at redis://\*\*\*@127.0.0.1"):
        RedisState(f"redis://user:secret@127.0.0.1:{free_port()}/0", "x:", 5)


def test_two_replicas_share_the_redis_state(
    redis_url: str, sknn_run: Path, keys: Keys, tmp_path: Path
) -> None:
    prefix = f"replicas:{uuid.uuid4().hex}:"
    configs = [
        ServeConfig(run=sknn_run, log=tmp_path / f"log{n}.sqlite", keys=keys.path,
                    state=redis_url, state_prefix=prefix)
        for n in range(2)
    ]  # fmt: skip
    with TestClient(create_app(configs[0])) as one, TestClient(create_app(configs[1])) as two:
        event = {"user_id": "shared", "item_id": "x", "action": "view"}
        assert one.post("/v1/events", json=event, headers=keys.client_headers).status_code == 200
        answer = two.get("/v1/users/shared/recommendations", headers=keys.client_headers).json()
        assert answer["n_live_events"] == 1 and answer["source"] == "session"
    # A restart applies only what the state has not seen from each log.
    with TestClient(create_app(configs[0])) as again:
        answer = again.get("/v1/users/shared/recommendations", headers=keys.client_headers).json()
        assert answer["n_live_events"] == 1
