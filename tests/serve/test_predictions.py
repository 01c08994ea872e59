"""GET /v1/users/{id}/predictions: per-user predict runs served with reasons, swapped on reload."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from serve_support import Keys

from shopseq.errors import ArtifactError
from shopseq.runs.userscores import ScoredUsers, load_scored_runs
from shopseq.serve import ServeConfig, create_app
from shopseq.users.tasks import ACTION_NAMES


@pytest.fixture
def served(
    serve_config: ServeConfig, purchase_run: Path, next_action_run: Path
) -> Iterator[TestClient]:
    config = serve_config.model_copy(update={"predictions": (purchase_run, next_action_run)})
    with TestClient(create_app(config)) as test_client:
        yield test_client


def _scored(run: Path) -> dict[str, dict[str, object]]:
    return {row["user_id"]: row for row in pq.read_table(run / "scored.parquet").to_pylist()}


def _top_user(run: Path) -> str:
    """The highest-scored user: reasons are kept for the highest scores."""
    return str(pq.read_table(run / "scored.parquet").column("user_id")[0].as_py())


def test_a_scored_user_gets_every_tasks_prediction_with_reasons(
    served: TestClient, keys: Keys, purchase_run: Path, next_action_run: Path
) -> None:
    user = _top_user(purchase_run)
    response = served.get(f"/v1/users/{user}/predictions", headers=keys.client_headers)
    assert response.status_code == 200, response.text
    body = response.json()
    by_task = {p["task"]: p for p in body["predictions"]}
    assert set(by_task) == {"purchase", "next-action"} and body["missing_tasks"] == []
    purchase, expected = by_task["purchase"], _scored(purchase_run)[user]
    assert purchase["kind"] == "binary" and purchase["score"] == pytest.approx(expected["score"])
    assert 0.0 <= purchase["score"] <= 1.0
    assert purchase["model"] == expected["model"]
    assert purchase["reasons"] == str(expected["reasons"]).split("; ") and purchase["reasons"]
    assert purchase["as_of"].endswith("Z") and purchase["run_version"].startswith("purchase@")
    following = by_task["next-action"]
    assert following["kind"] == "multiclass" and following["prediction"] in ACTION_NAMES
    assert set(following["probabilities"]) == set(ACTION_NAMES)
    assert sum(following["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert following["score"] == pytest.approx(following["probabilities"][following["prediction"]])


def test_an_unknown_user_is_404_and_the_detail_does_not_echo_the_id(
    served: TestClient, keys: Keys
) -> None:
    response = served.get("/v1/users/nobody-4711/predictions", headers=keys.client_headers)
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "UnknownIdError" and "purchase, next-action" in body["detail"]
    assert "nobody-4711" not in body["detail"]


def test_live_events_are_counted_and_the_scores_say_when_they_stop(
    served: TestClient, keys: Keys, purchase_run: Path
) -> None:
    user = _top_user(purchase_run)
    before = served.get(f"/v1/users/{user}/predictions", headers=keys.client_headers).json()
    batch = {"events": [{"user_id": user, "item_id": f"i{n}", "action": "cart"} for n in range(3)]}
    assert (
        served.post("/v1/events", json=batch, headers=keys.client_headers).json()["accepted"] == 3
    )
    after = served.get(f"/v1/users/{user}/predictions", headers=keys.client_headers).json()
    assert after["n_live_events"] == before["n_live_events"] + 3
    # The scores are the run's, as of its data end: the live carts count from the next run.
    assert after["predictions"] == before["predictions"]
    # A shopper seen only live is not scored yet: 404 that says how many events are waiting.
    new = {"user_id": "fresh-shopper", "item_id": "i1", "action": "view"}
    served.post("/v1/events", json=new, headers=keys.client_headers)
    response = served.get("/v1/users/fresh-shopper/predictions", headers=keys.client_headers)
    assert response.status_code == 404 and "1 live event(s)" in response.json()["detail"]


def test_a_user_missing_from_one_run_gets_the_others(
    serve_config: ServeConfig, keys: Keys, purchase_run: Path, tmp_path: Path
) -> None:
    # A churn run that scored one user only: the others are listed as missing for it.
    churn = tmp_path / "churn"
    shutil.copytree(purchase_run, churn)
    config_file = churn / "config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "task": "churn"}))
    table = pq.read_table(purchase_run / "scored.parquet")
    pq.write_table(table.slice(0, 1), churn / "scored.parquet")
    first, second = table.column("user_id").to_pylist()[:2]
    config = serve_config.model_copy(update={"predictions": (purchase_run, churn)})
    with TestClient(create_app(config)) as client:
        one = client.get(f"/v1/users/{second}/predictions", headers=keys.client_headers).json()
        assert [p["task"] for p in one["predictions"]] == ["purchase"]
        assert one["missing_tasks"] == ["churn"]
        both = client.get(f"/v1/users/{first}/predictions", headers=keys.client_headers).json()
        assert [p["task"] for p in both["predictions"]] == ["purchase", "churn"]


def test_without_prediction_runs_the_route_says_how_to_add_them(
    client: TestClient, keys: Keys
) -> None:
    response = client.get("/v1/users/u/predictions", headers=keys.client_headers)
    assert response.status_code == 404 and "--predictions" in response.json()["detail"]
    assert client.get("/v1/users/u/predictions").status_code == 401


def test_reload_swaps_prediction_runs_and_a_bad_set_leaves_them_serving(
    served: TestClient, keys: Keys, purchase_run: Path, sknn_run: Path
) -> None:
    user = _top_user(purchase_run)
    url = f"/v1/users/{user}/predictions"
    for bad in ([str(purchase_run), str(purchase_run)], [str(sknn_run)]):
        response = served.post(
            "/v1/admin/reload", json={"predictions": bad}, headers=keys.admin_headers
        )
        assert response.status_code == 422, bad
        tasks = [
            p["task"] for p in served.get(url, headers=keys.client_headers).json()["predictions"]
        ]
        assert tasks == ["purchase", "next-action"]
    ok = served.post(
        "/v1/admin/reload", json={"predictions": [str(purchase_run)]}, headers=keys.admin_headers
    )
    assert ok.status_code == 200 and set(ok.json()["prediction_versions"]) == {"purchase"}
    tasks = [p["task"] for p in served.get(url, headers=keys.client_headers).json()["predictions"]]
    assert tasks == ["purchase"]
    # A reload without "predictions" re-reads the ones being served.
    again = served.post("/v1/admin/reload", json={}, headers=keys.admin_headers)
    assert set(again.json()["prediction_versions"]) == {"purchase"}
    metrics = served.get("/metrics", headers=keys.client_headers).text
    assert 'shopseq_prediction_run_info{task="purchase"' in metrics
    assert 'task="next-action"' not in metrics


def test_pseudonymised_service_looks_predictions_up_by_pseudonym(
    sknn_run: Path, keys: Keys, purchase_run: Path, tmp_path: Path
) -> None:
    from shopseq.ingest.pseudonymize import Pseudonymizer

    key = b"k" * 32
    # The run as ingest --pseudonymize would have written it: user ids are the pseudonyms.
    hashed = tmp_path / "purchase"
    shutil.copytree(purchase_run, hashed)
    table = pq.read_table(purchase_run / "scored.parquet")
    pseudonym = Pseudonymizer(key).pseudonym("alice@example.com")
    users = [pseudonym, *table.column("user_id").to_pylist()[1:]]
    pq.write_table(table.set_column(0, "user_id", [users]), hashed / "scored.parquet")
    config = ServeConfig(
        run=sknn_run,
        log=tmp_path / "p.sqlite",
        keys=keys.path,
        pseudonymize_key=key,
        predictions=(hashed,),
    )
    with TestClient(create_app(config)) as client:
        response = client.get(
            "/v1/users/alice@example.com/predictions", headers=keys.client_headers
        )
        assert response.status_code == 200
        assert response.json()["predictions"][0]["score"] == pytest.approx(
            table.column("score")[0].as_py()
        )


def test_runs_layer_refuses_what_it_cannot_serve(
    purchase_run: Path, sknn_run: Path, tmp_path: Path
) -> None:
    with pytest.raises(ArtifactError, match="expected a 'predict' run"):
        ScoredUsers.load(sknn_run)
    intent = tmp_path / "intent"
    shutil.copytree(purchase_run, intent)
    config_file = intent / "config.json"
    config_file.write_text(
        json.dumps({**json.loads(config_file.read_text()), "task": "session-intent"})
    )
    with pytest.raises(ArtifactError, match="past sessions"):
        ScoredUsers.load(intent)
    with pytest.raises(ArtifactError, match="both purchase runs"):
        load_scored_runs([purchase_run, purchase_run])
    loaded = ScoredUsers.load(purchase_run)
    assert len(loaded) == pq.read_table(purchase_run / "scored.parquet").num_rows
    assert loaded.get("nobody") is None
