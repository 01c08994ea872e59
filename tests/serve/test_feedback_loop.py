"""The whole loop: events served -> event store -> prepare -> train -> hot reload -> answered."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serve_support import Keys, train_run

from shopseq.prepare import PrepareConfig, prepare_events
from shopseq.runs.nextitem import NextItemRun
from shopseq.runs.serving import import_served_events
from shopseq.serve import ServeConfig, create_app
from shopseq.store import open_store

pytestmark = pytest.mark.slow


def test_served_events_reach_the_next_run_which_is_swapped_in(
    shop_store: Path, sknn_run: Path, keys: Keys, tmp_path: Path
) -> None:
    store = tmp_path / "shop.duckdb"
    shutil.copy(shop_store, store)
    items = [str(i) for i in NextItemRun.load(sknn_run).items.ids.to_pylist()[:12]]
    config = ServeConfig(run=sknn_run, log=tmp_path / "events.sqlite", keys=keys.path)
    url = "/v1/users/loop-user/recommendations?k=5"
    with TestClient(create_app(config)) as client:
        batch = {
            "events": [{"user_id": "loop-user", "item_id": i, "action": "view"} for i in items]
        }
        assert client.post("/v1/events", json=batch, headers=keys.client_headers).json()[
            "accepted"
        ] == len(items)
        assert client.get(url, headers=keys.client_headers).json()["source"] == "session"
        with open_store(store, threads=1) as opened:
            done = import_served_events(config.log, opened)
            assert done.imported == len(items)
            prepare_events(opened, PrepareConfig())
        new_run = train_run(store, "sknn", tmp_path / "sknn-2")
        swap = client.post(
            "/v1/admin/reload", json={"run": str(new_run)}, headers=keys.admin_headers
        )
        assert swap.status_code == 200
        answer = client.get(url, headers=keys.client_headers).json()
    # The new run was trained on the served events: it knows the user by their history.
    assert answer["source"] == "history" and answer["model_version"].startswith("sknn-2@")
    assert NextItemRun.load(new_run).history_of("loop-user") is not None
