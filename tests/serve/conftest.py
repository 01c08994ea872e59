"""Fixtures of the service tests: a small store, trained runs, a key file, a running app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serve_support import Keys, train_run

from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.prepare import PrepareConfig, prepare_events
from shopseq.serve import ServeConfig, create_app
from shopseq.store import open_store
from shopseq.synthetic import GeneratorConfig, generate_events, write_events


@pytest.fixture(scope="session")
def shop_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared store of 8,000 generated events."""
    root = tmp_path_factory.mktemp("serve-store")
    config = GeneratorConfig(n_events=8000, n_days=20, seed=3)
    log = root / "events.csv"
    write_events(generate_events(config), log, config)
    path = root / "shop.duckdb"
    with open_store(path, threads=1) as store:
        ingest_files([log], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store)
        prepare_events(store, PrepareConfig())
    return path


@pytest.fixture(scope="session")
def sknn_run(shop_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-kNN run."""
    return train_run(shop_store, "sknn", tmp_path_factory.mktemp("runs") / "sknn")


@pytest.fixture(scope="session")
def markov_run(shop_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Markov-chain run (a second model to reload to)."""
    return train_run(shop_store, "markov", tmp_path_factory.mktemp("runs") / "markov")


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    """A fresh key file with one client and one admin key."""
    return Keys(tmp_path / "keys.json")


@pytest.fixture
def serve_config(sknn_run: Path, keys: Keys, tmp_path: Path) -> ServeConfig:
    """A config serving the sknn run with a fresh log."""
    return ServeConfig(run=sknn_run, log=tmp_path / "events.sqlite", keys=keys.path)


@pytest.fixture
def client(serve_config: ServeConfig) -> Iterator[TestClient]:
    """The app under a test client (lifespan run)."""
    with TestClient(create_app(serve_config)) as test_client:
        yield test_client
