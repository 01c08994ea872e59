"""The report's hook for other stages' results: optional JSON files in known places.

Other commands (model leaderboards, forecasts, plans) write small JSON files into their run or
work directory; ``shopseq report`` looks for them in every ``--artifacts`` directory (default: the
store's directory) and renders generic tables and charts. The accepted shapes are documented in
docs/report.md; a file in another shape is shown as JSON with a warning, never dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "KNOWN_ARTIFACTS",
    "ArtifactSection",
    "ArtifactTable",
    "find_artifacts",
    "parse_artifact",
]

#: File names looked for, in this order, with their default section titles. Any other
#: ``*.report.json`` file in the same directories is read too (after these, by name).
KNOWN_ARTIFACTS: dict[str, str] = {
    "leaderboard.json": "Model leaderboard",
    "forecast_leaderboard.json": "Forecast leaderboard",
    "forecast_series.json": "Forecasts per series",
    "forecasts.json": "Forecasts",
    "plan.json": "Plan",
}


@dataclass(frozen=True, slots=True)
class ArtifactTable:
    """A table to render.

    Attributes:
        title: Caption ("" for none).
        columns: Header cells.
        rows: Body rows (same length as ``columns``).
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True, slots=True)
class ArtifactSection:
    """One JSON file, ready to render.

    Attributes:
        source: The file.
        title: Section title.
        description: Text under the title.
        tables: Tables.
        charts: Chart specs for ``plots.generic_chart``.
        raw: Pretty JSON shown when the shape was not recognised ("" otherwise).
        warnings: What was wrong with the file.
    """

    source: Path
    title: str
    description: str = ""
    tables: tuple[ArtifactTable, ...] = ()
    charts: tuple[dict[str, Any], ...] = ()
    raw: str = ""
    warnings: tuple[str, ...] = field(default=())


def _table(spec: Any, where: str, default_title: str = "") -> ArtifactTable:
    if isinstance(spec, list):
        spec = {"rows": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("rows"), list):
        raise ValueError(f"{where}: a table needs 'rows' (a list); got {type(spec).__name__}")
    rows = spec["rows"]
    title = str(spec.get("title", default_title))
    if rows and all(isinstance(r, dict) for r in rows):
        columns: list[Any] = list(spec.get("columns") or [])
        for row in rows:
            columns += [k for k in row if k not in columns]
        return ArtifactTable(
            title, tuple(map(str, columns)), tuple(tuple(r.get(c) for c in columns) for r in rows)
        )
    given = spec.get("columns")
    if not isinstance(given, list):
        raise ValueError(f"{where}: rows given as lists need 'columns' (a list of names)")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(given):
            raise ValueError(
                f"{where}: row {i} has {len(row) if isinstance(row, list) else 'no'} cells; "
                f"expected {len(given)} (one per column)"
            )
    return ArtifactTable(title, tuple(map(str, given)), tuple(tuple(r) for r in rows))


def _chart(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, dict) or not isinstance(spec.get("x"), list):
        raise ValueError(f"{where}: a chart needs 'x' (a list)")
    series = spec.get("series")
    if not isinstance(series, list) or not series:
        raise ValueError(f"{where}: a chart needs 'series' (a non-empty list)")
    for i, s in enumerate(series):
        for key in ("y", "lower", "upper"):
            if key == "y" or key in s:
                values = s.get(key) if isinstance(s, dict) else None
                if not isinstance(values, list) or len(values) != len(spec["x"]):
                    raise ValueError(
                        f"{where}: series {i} '{key}' must be a list as long as 'x' "
                        f"({len(spec['x'])})"
                    )
    if spec.get("kind", "line") not in ("line", "bar"):
        raise ValueError(f"{where}: 'kind' must be 'line' or 'bar'; got {spec.get('kind')!r}")
    return spec


def parse_artifact(path: Path, default_title: str) -> ArtifactSection:
    """Read one JSON file into a section (a malformed file becomes a warning, not an error).

    Args:
        path: The JSON file.
        default_title: Title when the file has none.

    Returns:
        The section.
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return ArtifactSection(path, default_title, warnings=(f"{path}: not readable JSON: {err}",))
    try:
        if isinstance(data, list):
            return ArtifactSection(path, default_title, tables=(_table(data, str(path)),))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected an object or a list; got {type(data).__name__}")
        title = str(data.get("title", default_title))
        description = str(data.get("description", ""))
        tables = [_table(t, f"{path}: tables[{i}]") for i, t in enumerate(data.get("tables") or [])]
        if "rows" in data:
            tables.insert(0, _table(data, str(path)))
        charts = [_chart(c, f"{path}: charts[{i}]") for i, c in enumerate(data.get("charts") or [])]
        if not tables and not charts:
            raise ValueError(f"{path}: no 'tables', 'charts' or 'rows' found")
        return ArtifactSection(path, title, description, tuple(tables), tuple(charts))
    except ValueError as err:
        raw = json.dumps(data, indent=2, default=str)
        return ArtifactSection(
            path,
            default_title,
            raw=raw[:20_000] + ("\n…" if len(raw) > 20_000 else ""),
            warnings=(f"{err}; see docs/report.md for the expected shape",),
        )


def find_artifacts(directories: list[Path]) -> list[ArtifactSection]:
    """Read every known artifact file in ``directories`` (missing files are skipped).

    Args:
        directories: Where to look, in order; each file is read once.

    Returns:
        One section per file found.
    """
    seen: set[Path] = set()
    sections = []
    for directory in directories:
        names = [n for n in KNOWN_ARTIFACTS if (directory / n).is_file()]
        extra = (
            sorted(p.name for p in directory.glob("*.report.json")) if directory.is_dir() else []
        )
        for name in names + extra:
            path = (directory / name).resolve()
            if path in seen:
                continue
            seen.add(path)
            default = KNOWN_ARTIFACTS.get(name, name.removesuffix(".report.json").replace("_", " "))
            sections.append(parse_artifact(path, default))
    return sections
