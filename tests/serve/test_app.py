"""The HTTP API through create_app(config) + TestClient: events, recommendations, errors, keys."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_support import Keys

from shopseq.ingest.pseudonymize import Pseudonymizer
from shopseq.runs.nextitem import NextItemRun
from shopseq.schema import EVENT_COLUMNS
from shopseq.serve import KeyStore, ServeConfig, create_app
from shopseq.serve.schemas import EventIn, EventsResult, Recommendations


def _event(user: str, item: str, action: str = "view", **extra: object) -> dict[str, object]:
    return {"user_id": user, "item_id": item, "action": action, **extra}


def _items(run: Path, n: int) -> list[str]:
    loaded = NextItemRun.load(run)
    return [str(i) for i in loaded.items.ids.to_pylist()[:n]]


def test_posted_event_has_the_canonical_columns_exactly() -> None:
    assert tuple(EventIn.model_fields) == EVENT_COLUMNS


def test_a_posted_event_changes_that_users_next_recommendation(
    client: TestClient, keys: Keys, sknn_run: Path
) -> None:
    items = _items(sknn_run, 40)
    url = "/v1/users/new-visitor/recommendations?k=5"
    before = client.get(url, headers=keys.client_headers).json()
    assert before["source"] == "popularity" and before["n_live_events"] == 0
    # A rarely bought item: what follows it differs from the most popular items.
    posted = client.post(
        "/v1/events", json=_event("new-visitor", items[-1]), headers=keys.client_headers
    )
    assert posted.status_code == 200 and posted.json()["accepted"] == 1
    after = client.get(url, headers=keys.client_headers).json()
    assert after["source"] == "session" and after["n_live_events"] == 1
    assert [i["item_id"] for i in after["items"]] != [i["item_id"] for i in before["items"]]
    # exclude_seen: the item just viewed is not recommended back.
    assert items[-1] not in [i["item_id"] for i in after["items"]]


def test_known_user_history_is_extended_by_live_events(
    client: TestClient, keys: Keys, sknn_run: Path
) -> None:
    run = NextItemRun.load(sknn_run)
    user = str(run.owners.ids[0])
    first = client.get(f"/v1/users/{user}/recommendations?k=5", headers=keys.client_headers)
    assert first.json()["source"] == "history"
    top = first.json()["items"][0]["item_id"]
    client.post("/v1/events", json=_event(user, top), headers=keys.client_headers)
    again = client.get(f"/v1/users/{user}/recommendations?k=5", headers=keys.client_headers)
    assert again.json()["n_live_events"] == 1
    assert top not in [i["item_id"] for i in again.json()["items"]]


def test_items_already_shown_can_be_excluded(client: TestClient, keys: Keys) -> None:
    first = client.get("/v1/users/u/recommendations?k=3", headers=keys.client_headers).json()
    shown = [i["item_id"] for i in first["items"]]
    query = "&".join(f"exclude={i}" for i in shown)
    second = client.get(f"/v1/users/u/recommendations?k=3&{query}", headers=keys.client_headers)
    got = [i["item_id"] for i in second.json()["items"]]
    assert len(got) == 3 and not set(got) & set(shown)


def test_batch_reports_each_rejected_event_with_ingest_reason(
    client: TestClient, keys: Keys
) -> None:
    batch = {
        "events": [
            _event("a", "x", "bogus"),
            _event("a", "x", ts="2024-13-01 00:00"),
            _event("b", "y", price=-1),
            _event("b", "y", quantity=0),
            _event("b", "y", "cart", ts="2024-01-31T12:00:00Z", price="9.5", quantity=2),
        ]
    }
    response = client.post("/v1/events", json=batch, headers=keys.client_headers)
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 4)
    assert [(e["index"], e["field"], e["reason"]) for e in body["errors"]] == [
        (0, "action", "unknown_action"),
        (1, "ts", "bad_timestamp"),
        (2, "price", "negative_price"),
        (3, "quantity", "bad_quantity"),
    ]
    assert "expected one of view" in body["errors"][0]["detail"]
    assert body["first_seq"] == body["last_seq"] == 1


def test_hand_built_bodies_are_the_bytes_fastapi_writes_from_the_models(
    client: TestClient, keys: Keys, sknn_run: Path
) -> None:
    # The events and recommendations routes build their JSON themselves (no second validation
    # per request); each body must parse as its model and be exactly what FastAPI would write.
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel

    def same_as_model(response: object, model: type[BaseModel]) -> None:
        content = response.content  # type: ignore[attr-defined]
        parsed = model.model_validate_json(content, strict=True)
        assert content == JSONResponse(parsed.model_dump(mode="json")).body

    h = keys.client_headers
    user = str(NextItemRun.load(sknn_run).owners.ids[0])
    answers = [
        (client.post("/v1/events", json=_event(user, "x"), headers=h), 200),
        (client.post("/v1/events", json={"events": [_event("a", "x"), _event("a", "x", "?")]},
                     headers=h), 207),
        (client.post("/v1/events", json=_event("a", "x", ts="2999-01-01"), headers=h), 422),
        (client.post("/v1/events", json={"events": []}, headers=h), 200),
    ]  # fmt: skip
    for response, code in answers:
        assert response.status_code == code
        same_as_model(response, EventsResult)
    for url in (f"/v1/users/{user}/recommendations?k=7", "/v1/users/nobody/recommendations"):
        response = client.get(url, headers=h)
        assert response.status_code == 200 and response.json()["items"]
        same_as_model(response, Recommendations)


def test_all_rejected_is_422_and_nothing_is_logged(
    client: TestClient, keys: Keys, serve_config: ServeConfig
) -> None:
    response = client.post(
        "/v1/events", json=_event("a", "x", ts="2999-01-01"), headers=keys.client_headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["reason"] == "timestamp_out_of_range"
    with sqlite3.connect(serve_config.log) as con:
        assert con.execute("SELECT COUNT(*) FROM events").fetchone() == (0,)


def test_shape_errors_name_the_field(client: TestClient, keys: Keys) -> None:
    response = client.post(
        "/v1/events", json={"events": [_event("a", "x"), {"user_id": "a"}]},
        headers=keys.client_headers,
    )  # fmt: skip
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "RequestValidationError"
    assert body["field"] == "body.events.1.item_id" and "EventIn" not in body["detail"]
    single = client.post("/v1/events", json={"user_id": "a"}, headers=keys.client_headers)
    assert single.json()["field"] == "body.item_id"
    bad_k = client.get("/v1/users/u/recommendations?k=0", headers=keys.client_headers)
    assert bad_k.status_code == 422 and bad_k.json()["field"] == "query.k"
    big_k = client.get("/v1/items/x/similar?k=101", headers=keys.client_headers)
    assert big_k.status_code == 422 and "[1, 100] on this service" in big_k.json()["detail"]


def test_limits_on_batch_and_body(sknn_run: Path, keys: Keys, tmp_path: Path) -> None:
    config = ServeConfig(
        run=sknn_run, log=tmp_path / "l.sqlite", keys=keys.path, max_batch=3, max_body_bytes=4096
    )
    with TestClient(create_app(config)) as small:
        many = {"events": [_event("a", "x")] * 4}
        response = small.post("/v1/events", json=many, headers=keys.client_headers)
        assert response.status_code == 413 and "at most 3 events" in response.json()["detail"]
        big = {"events": [_event("a", "x" * 200)] * 3, "pad": "y" * 5000}
        response = small.post("/v1/events", json=big, headers=keys.client_headers)
        assert response.status_code == 413 and response.json()["error"] == "PayloadTooLarge"


def test_every_route_but_health_needs_a_key(client: TestClient, keys: Keys) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    for method, url in [
        ("GET", "/v1/users/u/recommendations"),
        ("GET", "/v1/users/u/predictions"),
        ("GET", "/v1/items/x/similar"),
        ("GET", "/v1/forecasts"),
        ("GET", "/metrics"),
        ("POST", "/v1/events"),
        ("POST", "/v1/admin/reload"),
    ]:
        assert client.request(method, url).status_code == 401, url
        wrong = client.request(method, url, headers={"X-API-Key": "ssq_00000000_nope"})
        assert wrong.status_code == 401, url
    bearer = {"Authorization": f"Bearer {keys.client}"}
    assert client.get("/metrics", headers=bearer).status_code == 200
    forbidden = client.post("/v1/admin/reload", headers=keys.client_headers)
    assert forbidden.status_code == 403 and "admin" in forbidden.json()["detail"]


def test_revoked_key_is_refused_without_restart(
    client: TestClient, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.get("/metrics", headers=keys.client_headers).status_code == 200
    KeyStore(keys.path).revoke(keys.client_record.key_id)
    monkeypatch.setattr("shopseq.serve.keys.time.monotonic", lambda: 1e12)  # skip the 1 s cache
    assert client.get("/metrics", headers=keys.client_headers).status_code == 401


def test_key_file_holds_only_digests(keys: Keys) -> None:
    text = keys.path.read_text()
    assert keys.client not in text and keys.admin not in text
    assert keys.client_record.sha256 in text
    assert oct(keys.path.stat().st_mode)[-3:] == "600"


def test_similar_items_and_unknown_item(client: TestClient, keys: Keys, sknn_run: Path) -> None:
    item = _items(sknn_run, 1)[0]
    response = client.get(f"/v1/items/{item}/similar?k=4", headers=keys.client_headers)
    assert response.status_code == 200
    body = response.json()
    assert 0 < len(body["items"]) <= 4 and item not in [i["item_id"] for i in body["items"]]
    assert body["method"] == "next_after"
    missing = client.get("/v1/items/no-such-item/similar", headers=keys.client_headers)
    assert missing.status_code == 404 and missing.json()["error"] == "UnknownIdError"


def test_forecasts_are_served_by_series(sknn_run: Path, keys: Keys, tmp_path: Path) -> None:
    records = [
        {"unique_id": "total", "ds": "2024-02-01", "mean": 3.0, "lo-80": 1.0, "model": "ets"},
        {"unique_id": "c1", "ds": "2024-02-01", "mean": 1.0, "lo-80": 0.5, "model": "theta"},
    ]
    (tmp_path / "forecasts.json").write_text(json.dumps(records))
    config = ServeConfig(
        run=sknn_run,
        log=tmp_path / "l.sqlite",
        keys=keys.path,
        forecasts=tmp_path / "forecasts.json",
    )
    with TestClient(create_app(config)) as served:
        body = served.get("/v1/forecasts?series=c1", headers=keys.client_headers).json()
        assert body["series"] == ["c1"] and body["points"][0]["lo-80"] == 0.5
        everything = served.get("/v1/forecasts", headers=keys.client_headers).json()
        assert everything["series"] == ["c1", "total"]
        none = served.get("/v1/forecasts?series=zz", headers=keys.client_headers)
        assert none.status_code == 404 and "known series" in none.json()["detail"]


def test_metrics_count_routes_events_model_and_state(client: TestClient, keys: Keys) -> None:
    client.post("/v1/events", json=_event("m", "x"), headers=keys.client_headers)
    client.post("/v1/events", json=_event("m", "x", "bogus"), headers=keys.client_headers)
    client.get("/v1/users/m/recommendations", headers=keys.client_headers)
    text = client.get("/metrics", headers=keys.client_headers).text
    assert 'route="/v1/users/{user_id}/recommendations",status="200"' in text
    assert "shopseq_http_request_duration_seconds_bucket" in text
    assert "shopseq_events_accepted_total 1.0" in text
    assert "shopseq_events_rejected_total 1.0" in text
    assert 'shopseq_model_info{model="sknn"' in text
    assert "shopseq_state_users 1.0" in text


def test_reload_swaps_the_model_and_a_bad_run_leaves_it_serving(
    client: TestClient, keys: Keys, markov_run: Path, tmp_path: Path
) -> None:
    before = client.get("/readyz").json()["model_version"]
    bad = client.post("/v1/admin/reload", json={"run": str(tmp_path)}, headers=keys.admin_headers)
    assert bad.status_code == 422 and "still being served" in bad.json()["detail"]
    assert client.get("/readyz").json()["model_version"] == before
    ok = client.post("/v1/admin/reload", json={"run": str(markov_run)}, headers=keys.admin_headers)
    assert ok.status_code == 200 and ok.json()["previous_version"] == before
    assert ok.json()["model_version"].startswith("markov@")
    answer = client.get("/v1/users/u/recommendations", headers=keys.client_headers).json()
    assert answer["model_version"] == ok.json()["model_version"]


def test_state_is_rebuilt_from_the_log_at_start(serve_config: ServeConfig, keys: Keys) -> None:
    with TestClient(create_app(serve_config)) as first:
        batch = {"events": [_event("r", f"item{n}") for n in range(7)]}
        assert (
            first.post("/v1/events", json=batch, headers=keys.client_headers).json()["accepted"]
            == 7
        )
    with TestClient(create_app(serve_config)) as second:
        answer = second.get("/v1/users/r/recommendations", headers=keys.client_headers).json()
        assert answer["n_live_events"] == 7


def test_pseudonymised_service_stores_and_looks_up_pseudonyms(
    sknn_run: Path, keys: Keys, tmp_path: Path
) -> None:
    key = b"k" * 32
    config = ServeConfig(
        run=sknn_run, log=tmp_path / "p.sqlite", keys=keys.path, pseudonymize_key=key
    )
    with TestClient(create_app(config)) as served:
        served.post(
            "/v1/events", json=_event("alice@example.com", "x"), headers=keys.client_headers
        )
        answer = served.get(
            "/v1/users/alice@example.com/recommendations", headers=keys.client_headers
        )
        assert answer.json()["n_live_events"] == 1
        served.post(
            "/v1/events",
            json=_event("bob@example.com", "x", session_id="bob@example.com-1"),
            headers=keys.client_headers,
        )
    with sqlite3.connect(config.log) as con:
        rows = list(con.execute("SELECT user_id, session_id FROM events ORDER BY rowid"))
    hashed = Pseudonymizer(key).pseudonym
    # The session id, which embeds the user id here, is pseudonymised too.
    assert rows == [
        (hashed("alice@example.com"), None),
        (hashed("bob@example.com"), hashed("bob@example.com-1")),
    ]
    files = [config.log, config.log.with_name(config.log.name + "-wal")]
    assert not any(b"example.com" in f.read_bytes() for f in files if f.exists())
    # The same log cannot be reopened without the key (raw and pseudonymised ids would mix).
    plain = ServeConfig(run=sknn_run, log=config.log, keys=keys.path)
    with pytest.raises(Exception, match="pseudonymised user ids"), TestClient(create_app(plain)):
        pass


def test_logs_hold_no_raw_user_id_or_key(
    client: TestClient, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    secret_user = "raw-user-7f3a9"
    with caplog.at_level(logging.DEBUG):
        client.post("/v1/events", json=_event(secret_user, "x"), headers=keys.client_headers)
        client.post("/v1/events", json=_event(secret_user, "x", "bad"), headers=keys.client_headers)
        client.get(f"/v1/users/{secret_user}/recommendations", headers=keys.client_headers)
        client.get(f"/v1/users/{secret_user}/recommendations", headers={"X-API-Key": "ssq_x_y"})
    # The service's loggers (the test client's own httpx log lines name the URL it sent).
    text = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("shopseq", "uvicorn"))
    )
    assert "/v1/users/{user_id}/recommendations" in text  # the access log is there ...
    assert secret_user not in text and keys.client not in text and "ssq_x_y" not in text


def test_similar_uses_the_models_own_item_similarity_where_it_has_one(
    sknn_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shopseq.metrics.ranking import Recommendations
    from shopseq.runs.serving import similar_items

    run = NextItemRun.load(sknn_run)
    item = _items(sknn_run, 3)

    def own(indices: np.ndarray, k: int) -> Recommendations:
        assert list(indices) == [1] and k == 2
        return Recommendations(np.array([[3, 2]]), np.array([[0.9, 0.5]], np.float32))

    monkeypatch.setattr(run.model, "similar_items", own, raising=False)
    found = similar_items(run, item[0], 2)
    assert (found.method, found.items) == ("similar_items", [item[2], item[1]])


def test_routes_answer_from_whatever_model_the_dependency_gives(
    serve_config: ServeConfig, keys: Keys
) -> None:
    from shopseq.runs.nextitem import UserRecommendations
    from shopseq.serve.deps import get_model
    from shopseq.serve.service import LoadedRun

    class FakeRun:
        """Answers every user with the items it was last told about, reversed."""

        def recommend(
            self, user: str, k: int, *, exclude_seen: bool = True, recent: tuple[str, ...] = ()
        ) -> UserRecommendations:
            items = list(reversed(recent))[:k] or ["fallback"]
            return UserRecommendations(user, items, [1.0] * len(items), [], "session", "fake")

    fake = LoadedRun(FakeRun(), Path("fake"), "fake@1", "fake")  # type: ignore[arg-type]
    app = create_app(serve_config)
    app.dependency_overrides[get_model] = lambda: fake
    with TestClient(app) as served:
        for item in ("a", "b"):
            served.post("/v1/events", json=_event("f", item), headers=keys.client_headers)
        body = served.get("/v1/users/f/recommendations?k=5", headers=keys.client_headers).json()
    assert [i["item_id"] for i in body["items"]] == ["b", "a"] and body["model_version"] == "fake@1"


def test_no_app_or_settings_is_built_at_import() -> None:
    import importlib

    from fastapi import FastAPI

    modules = ["app", "config", "deps", "service", "server", "security", "metrics", "state"]
    for name in modules:
        module = importlib.import_module(f"shopseq.serve.{name}")
        built = [k for k, v in vars(module).items() if isinstance(v, FastAPI | ServeConfig)]
        assert not built, f"shopseq.serve.{name} builds {built} at import"
