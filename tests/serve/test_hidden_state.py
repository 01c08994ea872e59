"""The service's GRU hidden-state cache answers exactly as the full recompute does.

Every answer read through the cache is compared with ``NextItemRun.recommend`` over the same live
state (the GRU run over the whole history): items and scores must be equal, after single and
batched posted events, unknown items, a live state that slid past ``max_recent``, and a reload.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_support import Keys, train_run

from shopseq.nextitem.gru4rec import GRU4Rec, GRU4RecConfig
from shopseq.runs.nextitem import NextItemRun
from shopseq.sequences import Sequences
from shopseq.serve import ServeConfig, create_app
from shopseq.serve.service import HiddenStateCache, LoadedRun


@pytest.fixture(scope="module")
def gru4rec_run(shop_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GRU4Rec run (one epoch) on the shared small store."""
    return train_run(shop_store, "gru4rec", tmp_path_factory.mktemp("runs") / "gru4rec")


def _full_recompute(model: LoadedRun, user: str, live: list[str]) -> tuple[list[str], list[float]]:
    answer = model.run.recommend(user, 10, exclude_seen=True, recent=live)
    return answer.items, answer.scores


def test_cached_answers_equal_the_full_recompute_after_events_and_reload(
    gru4rec_run: Path, keys: Keys, tmp_path: Path
) -> None:
    config = ServeConfig(
        run=gru4rec_run, log=tmp_path / "events.sqlite", keys=keys.path, max_recent=6
    )
    run = NextItemRun.load(gru4rec_run)
    items = [str(i) for i in run.items.ids.to_pylist()[:30]]
    # A known user whose stored history has room below the run's cut (at the cut, every new
    # event slides the window and the state is rebuilt: correct, but no incremental step).
    cut = run.history_len or 10**9
    lengths = {
        u: len(h) for u in run.owners.ids.to_pylist() if (h := run.history_of(u)) is not None
    }
    known_user = next(u for u, n in lengths.items() if 0 < n < cut - 20)
    posts: list[list[str]] = [[], [items[0]], items[1:4], ["not-an-item"], items[4:13], [items[13]]]
    with TestClient(create_app(config)) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        assert isinstance(service.model.states, HiddenStateCache)
        compared = 0
        for user in (known_user, "brand-new-user"):
            for batch in posts:
                if batch:
                    body = {
                        "events": [{"user_id": user, "item_id": i, "action": "view"} for i in batch]
                    }
                    posted = client.post("/v1/events", json=body, headers=keys.client_headers)
                    assert posted.json()["accepted"] == len(batch)
                got = client.get(
                    f"/v1/users/{user}/recommendations?k=10", headers=keys.client_headers
                )
                assert got.status_code == 200
                answer = got.json()
                live = service.state.recent(user)
                want_items, want_scores = _full_recompute(service.model, user, live)
                assert [r["item_id"] for r in answer["items"]] == want_items
                assert [r["score"] for r in answer["items"]] == want_scores
                compared += 1
        cache = service.model.states
        # Known user: the first answer builds the state (miss), the 1-event, 3-event and
        # unknown-item posts advance it (3 hits), the 9-event batch and the event after it slide
        # the 6-item live state (2 misses: rebuilt). New user: the first answer is popularity (no
        # GRU), the 1-event post builds (miss), 3 + unknown advance (2 hits), 9 and 1 slide (2).
        assert compared == 12 and (cache.hits, cache.misses) == (5, 6)
        before = client.get(
            f"/v1/users/{known_user}/recommendations?k=10", headers=keys.client_headers
        ).json()
        swap = client.post("/v1/admin/reload", json={}, headers=keys.admin_headers)
        assert swap.status_code == 200
        reloaded = service.model
        assert reloaded.states is not cache and len(reloaded.states) == 0
        after = client.get(
            f"/v1/users/{known_user}/recommendations?k=10", headers=keys.client_headers
        ).json()
        assert after["items"] == before["items"]
        want_items, want_scores = _full_recompute(
            reloaded, known_user, service.state.recent(known_user)
        )
        assert [r["item_id"] for r in after["items"]] == want_items
        assert reloaded.states.misses == 1 and reloaded.states.hits == 0


def test_cache_matches_score_past_max_len_and_stays_bounded() -> None:
    n_items = 400
    rng = np.random.default_rng(0)
    train = Sequences.from_lists([rng.integers(1, n_items, size=10) for _ in range(100)])
    model = GRU4Rec(GRU4RecConfig(n_epochs=1, layers=(16, 12), max_len=8, n_sample=32))
    model.fit(train, n_items)
    cache = HiddenStateCache(model, max_users=3)
    history = np.zeros(0, np.int32)
    for step in range(14):  # grows past max_len = 8: the window slides and is rebuilt
        new = rng.integers(1, n_items, size=int(rng.integers(1, 3))).astype(np.int32)
        new[rng.random(len(new)) < 0.2] = -1
        history = np.concatenate([history, new])
        got = cache.scores("u", history)
        want = model.score(Sequences.from_lists([history]))
        assert np.array_equal(got, want), f"step {step}"
        for other in ("a", "b", "c")[: step % 4]:
            cache.scores(other, history[:3])
    assert cache.hits > 0 and cache.misses > 0
    assert len(cache) <= 3
