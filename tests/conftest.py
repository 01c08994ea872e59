"""Shared fixtures: tiny generated logs, stores, and the real data beside the project."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopseq.store import Store, open_store

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = Path(__file__).resolve().parent / "data"


def shared_data_dir() -> Path:
    """../shared/data beside the repository (or $SHOPSEQ_SHARED_DATA)."""
    return Path(os.environ.get("SHOPSEQ_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets; tests using this skip with a reason where they are absent."""
    path = shared_data_dir()
    if not (path / "README.md").is_file():
        pytest.skip(f"real data not found at {path} (../shared/data is absent on this machine)")
    return path


@pytest.fixture
def store() -> Iterator[Store]:
    """An empty in-memory event store."""
    opened = open_store(None, threads=1)
    yield opened
    opened.close()


@pytest.fixture
def data_dir() -> Path:
    """tests/data: small hand-written files, one defect each."""
    return TEST_DATA
