"""A run directory: the fixed, versioned layout every trained run is saved in and loaded from.

```
<run>/
  manifest.json     layout name and version, kind of run, shopseq version, created_at, files
  config.json       what was run: model, its parameters, the split, the ranking, history length
  metrics.json      what it measured (the test leaderboard beside the baselines, training facts)
  model/            the fitted model, saved by the model itself (no pickle)
  vocab/items.parquet, vocab/owners.parquet   the vocabularies (index <-> external id)
  histories.npz     each owner's most recent events, cut as evaluation cut them
  popularity.npy    training events per item (the answer for an owner the run has never seen)
```

A run is written into a temporary sibling and moved into place whole (``artifacts.atomic_dir``);
the manifest is written last, so a directory without one is incomplete. Loading checks the layout
name, the version and the kind, and refuses anything else with an :class:`ArtifactError` that
says what was found and what to do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import shopseq
from shopseq.artifacts import atomic_dir, atomic_write_json, read_json
from shopseq.errors import ArtifactError

__all__ = ["RUN_LAYOUT", "RUN_LAYOUT_VERSION", "RunDir", "RunKind"]

#: Name written into every manifest, so a stray ``manifest.json`` is not taken for a run.
RUN_LAYOUT = "shopseq-run"
#: Version of the layout above; bump it when a file's meaning changes, and say how to migrate.
RUN_LAYOUT_VERSION = 1
RunKind = Literal["next_item", "predict"]


@dataclass(frozen=True, slots=True)
class RunDir:
    """Paths of one run directory (see the module docstring for the layout).

    Attributes:
        path: The directory.
    """

    path: Path

    @property
    def manifest(self) -> Path:
        """``manifest.json``."""
        return self.path / "manifest.json"

    @property
    def config(self) -> Path:
        """``config.json``."""
        return self.path / "config.json"

    @property
    def metrics(self) -> Path:
        """``metrics.json``."""
        return self.path / "metrics.json"

    @property
    def model(self) -> Path:
        """``model/``."""
        return self.path / "model"

    @property
    def items(self) -> Path:
        """``vocab/items.parquet``."""
        return self.path / "vocab" / "items.parquet"

    @property
    def owners(self) -> Path:
        """``vocab/owners.parquet``."""
        return self.path / "vocab" / "owners.parquet"

    @property
    def histories(self) -> Path:
        """``histories.npz``."""
        return self.path / "histories.npz"

    @property
    def popularity(self) -> Path:
        """``popularity.npy``."""
        return self.path / "popularity.npy"

    @classmethod
    @contextmanager
    def create(cls, path: Path, kind: RunKind) -> Iterator[RunDir]:
        """Yield a :class:`RunDir` in a temporary directory that replaces ``path`` when complete.

        Args:
            path: Final directory (an existing run there is replaced only once this one is whole).
            kind: What the run holds.

        Yields:
            The run being written; the manifest is added when the block succeeds.
        """
        with atomic_dir(Path(path)) as tmp:
            run = cls(tmp)
            (tmp / "vocab").mkdir()
            yield run
            files = sorted(p for p in tmp.rglob("*") if p.is_file())
            atomic_write_json(
                run.manifest,
                {
                    "layout": RUN_LAYOUT,
                    "version": RUN_LAYOUT_VERSION,
                    "kind": kind,
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "shopseq_version": shopseq.__version__,
                    "files": {str(p.relative_to(tmp)): p.stat().st_size for p in files},
                },
            )

    @classmethod
    def open(cls, path: Path, kind: RunKind) -> RunDir:
        """Open a complete run directory of this layout version and kind.

        Args:
            path: The directory.
            kind: The kind expected.

        Returns:
            The run.

        Raises:
            ArtifactError: If it is missing, incomplete, of another layout, version or kind.
        """
        run = cls(Path(path))
        if not run.path.is_dir():
            raise ArtifactError(f"{run.path}: no such run directory; write one with shopseq train")
        if not run.manifest.is_file():
            raise ArtifactError(
                f"{run.path} is not a complete run directory (no manifest.json); "
                "write one with shopseq train"
            )
        manifest: dict[str, Any] = read_json(run.manifest)
        layout, version = manifest.get("layout"), manifest.get("version")
        if layout != RUN_LAYOUT or version != RUN_LAYOUT_VERSION:
            raise ArtifactError(
                f"{run.manifest}: run layout {layout!r} version {version!r} (written by shopseq "
                f"{manifest.get('shopseq_version', '?')}); this shopseq reads {RUN_LAYOUT!r} "
                f"version {RUN_LAYOUT_VERSION}: train the run again with this version"
            )
        if manifest.get("kind") != kind:
            raise ArtifactError(
                f"{run.manifest}: this is a {manifest.get('kind')!r} run; expected a {kind!r} run"
            )
        missing = [name for name in manifest.get("files", {}) if not (run.path / name).is_file()]
        if missing:
            raise ArtifactError(f"{run.path}: files listed in manifest.json are missing: {missing}")
        return run

    def read_config(self) -> dict[str, Any]:
        """Return ``config.json``."""
        config: dict[str, Any] = read_json(self.config)
        return config

    def read_metrics(self) -> dict[str, Any]:
        """Return ``metrics.json``."""
        metrics: dict[str, Any] = read_json(self.metrics)
        return metrics
