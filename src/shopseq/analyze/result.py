"""What every analysis shares: JSON conversion of results, the event order, row fetching."""

from __future__ import annotations

import math
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

import ibis

from shopseq.schema import SOURCE_FILE_ID, SOURCE_ROW, TS

__all__ = ["Result", "event_order", "fetch_rows", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Turn a result value into plain JSON data (NaN becomes ``None``).

    Args:
        value: A dataclass, mapping, sequence, enum, datetime or scalar.

    Returns:
        The same content as dicts, lists, strings and numbers.
    """
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in fields(value)
            if f.metadata.get("json", True)
        }
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        return to_jsonable(value.item())
    return value


class Result:
    """Mixin of the frozen result dataclasses: ``to_dict()`` for ``--json`` and the report."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain JSON-ready data.

        Returns:
            A dict; fields marked ``metadata={"json": False}`` (bulk tables) are left out.
        """
        data = to_jsonable(self)
        if not isinstance(data, dict):  # pragma: no cover - every Result is a dataclass
            raise TypeError(f"{type(self).__name__} is not a dataclass")
        return data


def event_order(table: ibis.Table) -> list[ibis.Value]:
    """The total order of events within a user or session: time, then lineage (ties broken).

    Args:
        table: Prepared events.

    Returns:
        Sort keys for windows and ordered aggregates.
    """
    return [table[TS], table[SOURCE_FILE_ID], table[SOURCE_ROW]]


def fetch_rows(expr: ibis.Table) -> list[dict[str, Any]]:
    """Execute a (small, aggregated) expression and return its rows as dicts.

    Args:
        expr: The expression; it must already be aggregated to a few rows.

    Returns:
        One dict per row.
    """
    rows: list[dict[str, Any]] = expr.to_pyarrow().to_pylist()
    return rows
