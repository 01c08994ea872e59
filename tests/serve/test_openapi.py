"""docs/openapi.json is the spec the app serves (regenerate: python tests/serve/test_openapi.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from shopseq.serve import ServeConfig, create_app

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def spec_of(config: ServeConfig) -> dict[str, object]:
    """The OpenAPI document of an app (it does not depend on the config's values)."""
    return create_app(config).openapi()


def test_checked_in_spec_matches_the_app(serve_config: ServeConfig) -> None:
    expected = json.loads(SPEC.read_text())
    stale = "docs/openapi.json is stale: regenerate: .venv/bin/python tests/serve/test_openapi.py"
    assert spec_of(serve_config) == expected, stale


def test_served_spec_is_the_checked_in_one(client: TestClient) -> None:
    assert client.get("/openapi.json").json() == json.loads(SPEC.read_text())
    paths = json.loads(SPEC.read_text())["paths"]
    assert {
        "/v1/events",
        "/v1/users/{user_id}/recommendations",
        "/v1/items/{item_id}/similar",
        "/v1/forecasts",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/admin/reload",
    } <= set(paths)


if __name__ == "__main__":
    spec = spec_of(ServeConfig(run=Path(sys.argv[1] if len(sys.argv) > 1 else "run")))
    SPEC.write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    print(f"wrote {SPEC}")
