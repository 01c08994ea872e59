"""The served runs are frozen out of the collector's full passes, and a reload lets the old go."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopseq.serve.config import ServeConfig
from shopseq.serve.service import Service


@pytest.fixture
def service(serve_config: ServeConfig) -> Iterator[Service]:
    gc.unfreeze()
    built = Service(serve_config)
    yield built
    built.close()
    gc.unfreeze()


def test_the_loaded_run_is_out_of_the_collectors_generations(service: Service) -> None:
    # The owner lookup is the largest container of a run; a full pass no longer walks it.
    owners = service.model.run._owner_index
    assert gc.get_freeze_count() > 0
    assert not any(obj is owners for obj in gc.get_objects())


def test_a_reload_freezes_the_new_run_and_lets_the_old_one_be_freed(
    service: Service, markov_run: Path
) -> None:
    old = weakref.ref(service.model.run)
    new, previous = service.reload(markov_run)
    del previous  # what the admin route drops once it has answered
    assert old() is None
    owners = new.run._owner_index
    assert not any(obj is owners for obj in gc.get_objects())


def test_closing_the_service_gives_the_heap_back(serve_config: ServeConfig) -> None:
    gc.unfreeze()
    built = Service(serve_config)
    assert gc.get_freeze_count() > 0
    built.close()
    assert gc.get_freeze_count() == 0
