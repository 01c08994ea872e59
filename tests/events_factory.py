"""Build small stores of canonical events for tests (shared by several test folders)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa

from shopseq.schema import STORED_SCHEMA
from shopseq.store import Store

BASE = datetime(2024, 1, 1)


def event_rows(rows: list[tuple]) -> pa.Table:
    """Rows of (user, item, action, seconds after BASE[, category, price, quantity, session])."""
    columns: dict[str, list] = {f.name: [] for f in STORED_SCHEMA}
    for n, row in enumerate(rows):
        user, item, action, seconds, *rest = row
        category, price, quantity, session = (list(rest) + [None] * 4)[:4]
        columns["user_id"].append(user)
        columns["item_id"].append(item)
        columns["action"].append(action)
        columns["ts"].append(BASE + timedelta(seconds=seconds))
        columns["session_id"].append(session)
        columns["category_id"].append(category)
        columns["price"].append(price)
        columns["quantity"].append(quantity)
        columns["query"].append(None)
        columns["source_file_id"].append(1)
        columns["source_row"].append(n + 2)
    return pa.table(columns, schema=STORED_SCHEMA)


def load_events(store: Store, rows: list[tuple]) -> None:
    """Append rows to the store's events table."""
    table = event_rows(rows)
    assert store.connection is not None
    store.connection.register("_rows", table)
    store.connection.execute("INSERT INTO events SELECT * FROM _rows")
    store.connection.unregister("_rows")
