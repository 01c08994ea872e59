"""Atomic JSON writes: dates, paths and NumPy scalars encoded; any other object refused."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from shopseq.artifacts import atomic_write_json


@dataclass(frozen=True)
class _Report:
    n: int


def test_json_writer_encodes_dates_paths_and_numpy_scalars(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    atomic_write_json(
        path,
        {"at": datetime(2024, 1, 2, 3, 4), "day": date(2024, 1, 2), "p": Path("a/b"),
         "n": np.int64(3), "f": np.float32(0.5)},
    )  # fmt: skip
    assert json.loads(path.read_text()) == {
        "at": "2024-01-02T03:04:00", "day": "2024-01-02", "p": "a/b", "n": 3, "f": 0.5,
    }  # fmt: skip


def test_json_writer_refuses_an_object_instead_of_writing_its_repr(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    with pytest.raises(TypeError, match="cannot write a _Report as JSON; convert it first"):
        atomic_write_json(path, {"report": _Report(1)})
    assert not path.exists()  # nothing half-written
