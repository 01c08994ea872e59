"""`shopseq recommend`: top-k items for one user from a saved run directory (no store needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from shopseq.artifacts import read_json
from shopseq.errors import ArtifactError
from shopseq.models.base import Recommendations
from shopseq.sequences import Sequences, Vocabulary

from .options import console
from .train import MODELS

__all__ = ["recommend", "recommend_for_user"]


def _read_run(run: Path) -> dict[str, Any]:
    path = run / "config.json"
    if not path.is_file():
        raise ArtifactError(f"{run} is not a run directory (no config.json); run shopseq train")
    meta: dict[str, Any] = read_json(path)
    if meta.get("model") not in MODELS:
        raise ArtifactError(f"{path}: unknown model {meta.get('model')!r}")
    return meta


def recommend_for_user(
    run: Path, user: str, k: int, *, exclude_seen: bool = True
) -> tuple[list[str | None], np.ndarray, list[str | None]]:
    """Recommend for one known user of a run directory.

    Args:
        run: Run directory written by ``shopseq train``.
        user: External user (or session) id.
        k: Number of items.
        exclude_seen: Never recommend an item of the user's history.

    Returns:
        Recommended external item ids, their scores, and the user's recent items used.

    Raises:
        UnknownIdError: If the run does not know the user.
        ArtifactError: If the run directory is incomplete.
    """
    meta = _read_run(run)
    owners = Vocabulary.load("user", run / "owners.parquet")
    items = Vocabulary.load("item", run / "items.parquet")
    owner = owners.encode_one(user)
    with np.load(run / "histories.npz", allow_pickle=False) as data:
        rows = np.flatnonzero(data["owner"] == owner)
        offsets, all_items = data["offsets"], data["items"]
        history = (
            all_items[offsets[rows[0]] : offsets[rows[0] + 1]]
            if len(rows)
            else np.zeros(0, np.int32)
        )
    model = MODELS[meta["model"]][0].load(run / "model")
    recs: Recommendations = model.recommend(
        Sequences.from_lists([history]), k, exclude_seen=exclude_seen
    )
    return items.decode(recs.items[0]), recs.scores[0], items.decode(history)


def recommend(
    user: Annotated[str, typer.Option("--user", "-u", help="User (or session) id.")],
    k: Annotated[int, typer.Option("-k", min=1, help="Number of items.")] = 10,
    run: Annotated[Path, typer.Option(help="Run directory from shopseq train.")] = Path(
        "runs/sknn"
    ),
    exclude_seen: Annotated[
        bool, typer.Option(help="Never recommend an item the user already has.")
    ] = True,
) -> None:
    """Recommend the next items for one user from a saved run."""
    ids, scores, history = recommend_for_user(run, user, k, exclude_seen=exclude_seen)
    recent = ", ".join(str(i) for i in history[-5:])
    console.print(f"user {user}: {len(history)} recent items (last: {recent or '-'})")
    table = Table(title=f"Top {k} for {user}")
    table.add_column("#", justify="right")
    table.add_column("item")
    table.add_column("score", justify="right")
    for rank, (item, score) in enumerate(zip(ids, scores, strict=True), start=1):
        if item is not None:
            table.add_row(str(rank), item, f"{score:.4g}")
    console.print(table)
