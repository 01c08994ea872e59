"""Small prepared event logs written straight into an in-memory store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import ibis
import pyarrow as pa
import pytest

from shopseq.schema import STORED_SCHEMA
from shopseq.store import Store

T0 = datetime(2024, 1, 1)

#: (user, session, item, action, seconds after T0, category, price)
Row = tuple[str, str, str, str, float, str | None, float | None]
MakeEvents = Callable[[Sequence[Row]], ibis.Table]


def prepared_table(rows: Sequence[Row]) -> pa.Table:
    data = {name: [] for name in STORED_SCHEMA.names}
    for line, (user, session, item, action, seconds, category, price) in enumerate(rows, 1):
        data["user_id"].append(user)
        data["item_id"].append(item)
        data["action"].append(action)
        data["ts"].append(T0 + timedelta(seconds=seconds))
        data["session_id"].append(session)
        data["category_id"].append(category)
        data["price"].append(price)
        data["quantity"].append(1 if action == "purchase" else None)
        data["query"].append(None)
        data["source_file_id"].append(1)
        data["source_row"].append(line)
    return pa.table(data, schema=STORED_SCHEMA)


@pytest.fixture
def make_events(store: Store) -> MakeEvents:
    """Write rows as ``events_prepared`` and return the table."""

    def make(rows: Sequence[Row]) -> ibis.Table:
        return store.write_arrow("events_prepared", prepared_table(rows))

    return make


@pytest.fixture
def rows_table() -> Callable[[Sequence[Row]], pa.Table]:
    """Rows as a prepared-events Arrow table (to edit before writing it)."""
    return prepared_table
