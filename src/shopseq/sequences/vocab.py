"""Contiguous integer ids for external ids (items, users, categories).

Index 0 is reserved for padding; known ids get 1..n; an id the vocabulary does not know encodes to
-1 (a cold-start item or user), so callers count it instead of silently dropping it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shopseq.artifacts import atomic_path
from shopseq.errors import ArtifactError, UnknownIdError

__all__ = ["PADDING_INDEX", "UNKNOWN_INDEX", "Vocabulary"]

PADDING_INDEX = 0
UNKNOWN_INDEX = -1


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """External id <-> index. ``ids[i]`` has index ``i + 1``.

    Attributes:
        name: What the ids are (``item``, ``user``, ``category``), used in messages.
        ids: The known external ids, in index order.
    """

    name: str
    ids: pa.Array

    @classmethod
    def from_values(cls, name: str, values: pa.Array | pa.ChunkedArray) -> Vocabulary:
        """Build a vocabulary of the distinct values, most frequent first (ties by id).

        Frequency order puts popular items at small indices, which keeps embedding rows that are
        read together close in memory.

        Args:
            name: What the ids are.
            values: Observed ids (nulls ignored).

        Returns:
            The vocabulary.
        """
        counts = pc.value_counts(pc.drop_null(values))
        table = pa.table({"id": counts.field("values"), "n": counts.field("counts")})
        table = table.sort_by([("n", "descending"), ("id", "ascending")])
        return cls(name=name, ids=table.column("id").combine_chunks().cast(pa.string()))

    @property
    def size(self) -> int:
        """Number of indices including padding (``len(ids) + 1``): the embedding table size."""
        return len(self.ids) + 1

    def encode(self, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Map external ids to indices; unknown ids (and nulls) become -1.

        Args:
            values: External ids.

        Returns:
            int32 indices.
        """
        position = pc.index_in(values, value_set=self.ids)
        return (
            np.asarray(pc.fill_null(position, -2).to_numpy(zero_copy_only=False), dtype=np.int32)
            + 1
        )

    def encode_one(self, value: str) -> int:
        """Map one external id to its index.

        Args:
            value: External id.

        Returns:
            Its index.

        Raises:
            UnknownIdError: If the id is not in the vocabulary.
        """
        index = int(self.encode(pa.array([value], pa.string()))[0])
        if index == UNKNOWN_INDEX:
            raise UnknownIdError(
                f"{self.name} id {value!r} is not in the vocabulary "
                f"({len(self.ids)} known {self.name}s)"
            )
        return index

    def decode(self, indices: np.ndarray) -> list[str | None]:
        """Map indices back to external ids (padding and unknown give ``None``).

        Args:
            indices: Indices.

        Returns:
            External ids.
        """
        flat = np.asarray(indices).ravel()
        valid = (flat > 0) & (flat < self.size)
        if not valid.any():
            return [None] * len(flat)
        taken = pc.take(self.ids, pa.array(np.where(valid, flat - 1, 0)))
        return [v if ok else None for v, ok in zip(taken.to_pylist(), valid, strict=True)]

    def save(self, path: Path) -> None:
        """Write the vocabulary as a Parquet file (``index, id``), atomically.

        Args:
            path: Destination ``.parquet`` file.
        """
        table = pa.table(
            {"index": pa.array(np.arange(1, self.size, dtype=np.int32)), "id": self.ids}
        )
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)

    @classmethod
    def load(cls, name: str, path: Path) -> Vocabulary:
        """Read a vocabulary written by :meth:`save`.

        Args:
            name: What the ids are.
            path: The Parquet file.

        Returns:
            The vocabulary.

        Raises:
            ArtifactError: If the file is missing or not a vocabulary.
        """
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowInvalid) as err:
            raise ArtifactError(f"cannot read {name} vocabulary {path}: {err}") from err
        index = table.column("index").to_numpy()
        if not np.array_equal(index, np.arange(1, len(index) + 1)):
            raise ArtifactError(f"{path}: indices are not contiguous from 1")
        return cls(name=name, ids=table.column("id").combine_chunks())
