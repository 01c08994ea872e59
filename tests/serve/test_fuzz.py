"""Schema fuzzing: schemathesis generates requests from the served OpenAPI spec; no 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from serve_support import Keys

from shopseq.serve import ServeConfig, create_app
from shopseq.serve.service import Service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzz_target(
    sknn_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[object, Keys]]:
    root = tmp_path_factory.mktemp("fuzz")
    keys = Keys(root / "keys.json")
    records = '[{"unique_id": "total", "ds": "2024-02-01", "mean": 1.0, "model": "ets"}]'
    (root / "forecasts.json").write_text(records)
    config = ServeConfig(
        run=sknn_run, log=root / "events.sqlite", keys=keys.path, forecasts=root / "forecasts.json"
    )
    service = Service(config)
    app = create_app(config, service=service)
    app.state.service = service  # the lifespan is not run by schemathesis' ASGI transport
    yield app, keys
    service.close()


def test_no_request_the_spec_allows_gets_a_server_error(
    fuzz_target: tuple[object, Keys],
) -> None:
    app, keys = fuzz_target
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) >= 8
    failures: list[str] = []
    for operation in operations:
        strategy = operation.as_strategy()

        @settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=strategy)
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers={"X-API-Key": keys.admin})
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")
            case.validate_response(response, checks=[not_a_server_error])

        fuzz()
    assert not failures, failures[:10]
