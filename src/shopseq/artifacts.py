"""Atomic writes and run-directory helpers shared by every stage.

Every file shopseq writes goes through :func:`atomic_write_bytes` / :func:`atomic_dir` so a crash
never leaves a half-written artifact: data is written to a temporary sibling and moved into place
with ``os.replace`` (atomic on POSIX within one filesystem).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "atomic_dir",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "json_value",
    "read_json",
]


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` when the block succeeds.

    Args:
        path: Final destination.

    Yields:
        A temporary file path in the same directory to write to.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    Args:
        path: Destination file.
        data: Bytes to write.
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def json_value(value: Any) -> Any:
    """Encode the few non-JSON values shopseq writes on purpose; refuse anything else.

    Used as ``json.dumps(..., default=json_value)``. Dates and times become ISO 8601 text, paths
    their string, NumPy scalars their Python value. Any other object raises, so a dataclass or a
    model never lands in a file as its ``repr`` (convert it with ``asdict`` / ``model_dump``).

    Args:
        value: What ``json`` could not encode.

    Returns:
        A JSON-encodable value.

    Raises:
        TypeError: For any other type.
    """
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(
        f"cannot write a {type(value).__name__} as JSON; convert it first "
        "(dataclasses.asdict, model_dump(mode='json'))"
    )


def atomic_write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON atomically.

    Args:
        path: Destination file.
        payload: JSON value; dates, times, paths and NumPy scalars are encoded by
            :func:`json_value`, any other object raises ``TypeError``.
    """
    text = json.dumps(payload, indent=2, sort_keys=True, default=json_value) + "\n"
    atomic_write_bytes(path, text.encode())


def read_json(path: Path) -> Any:
    """Read a JSON file written by :func:`atomic_write_json`.

    Args:
        path: File to read.

    Returns:
        The decoded value.
    """
    return json.loads(path.read_text())


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` as a whole when the block succeeds.

    A ``manifest.json`` with the creation time is added. An existing ``path`` is replaced only after
    the new directory is complete.

    Args:
        path: Final directory.

    Yields:
        The temporary directory to fill.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        manifest = tmp / "manifest.json"
        if not manifest.exists():
            atomic_write_json(manifest, {"created_at": datetime.now(UTC).isoformat()})
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
