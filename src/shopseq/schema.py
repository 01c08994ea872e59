"""The canonical event schema: the single definition every stage reads.

One row is one thing a shopper did. Required columns: ``user_id``, ``item_id``, ``action``, ``ts``.
Optional columns: ``session_id``, ``category_id``, ``price``, ``quantity``, ``query``.
Lineage columns (written by ingest, never by users): ``source_file_id`` and ``source_row`` name the
file and the physical line (1-based, header included) each event came from, and give every event a
total, reproducible order when timestamps tie.

Identifiers are strings: public datasets mix integer ids, UUIDs and product codes, and pseudonymised
user ids are hex digests. Contiguous integer indices are made later, in ``sequences/vocab.py``.

Timestamps are UTC. In the store they are a naive ``TIMESTAMP`` (microseconds) whose wall-clock
value is UTC: DuckDB and Spark agree on naive UTC without a session time zone, which keeps the
same Ibis
expressions portable between them (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

import pyarrow as pa

__all__ = [
    "ACTION",
    "ACTION_CODES",
    "CATEGORY_ID",
    "EVENT_COLUMNS",
    "EVENT_SCHEMA",
    "ITEM_ID",
    "OPTIONAL_COLUMNS",
    "PRICE",
    "QUANTITY",
    "QUERY",
    "REQUIRED_COLUMNS",
    "SESSION_ID",
    "SOURCE_FILE_ID",
    "SOURCE_ROW",
    "STORED_SCHEMA",
    "TS",
    "USER_ID",
    "Action",
    "duckdb_ddl",
    "epoch_micros",
]


class Action(StrEnum):
    """What a shopper did. The order of members fixes their integer codes (``ACTION_CODES``)."""

    VIEW = "view"
    SEARCH = "search"
    FAVORITE = "favorite"
    CART = "cart"
    REMOVE_FROM_CART = "remove_from_cart"
    PURCHASE = "purchase"
    RETURN = "return"  # a return or cancellation of a purchase (quantity = units returned)


#: Stable small-integer code of each action (used in int8 sequence arrays). Append new actions at
#: the end of ``Action`` so earlier codes never change.
ACTION_CODES: dict[Action, int] = {action: code for code, action in enumerate(Action)}

USER_ID = "user_id"
ITEM_ID = "item_id"
ACTION = "action"
TS = "ts"
SESSION_ID = "session_id"
CATEGORY_ID = "category_id"
PRICE = "price"
QUANTITY = "quantity"
QUERY = "query"
SOURCE_FILE_ID = "source_file_id"
SOURCE_ROW = "source_row"

REQUIRED_COLUMNS: tuple[str, ...] = (USER_ID, ITEM_ID, ACTION, TS)
OPTIONAL_COLUMNS: tuple[str, ...] = (SESSION_ID, CATEGORY_ID, PRICE, QUANTITY, QUERY)
EVENT_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

#: The canonical event as Arrow sees it (what ingest produces before lineage is added).
EVENT_SCHEMA: pa.Schema = pa.schema(
    [
        pa.field(USER_ID, pa.string(), nullable=False),
        pa.field(ITEM_ID, pa.string(), nullable=False),
        pa.field(ACTION, pa.string(), nullable=False),
        pa.field(TS, pa.timestamp("us"), nullable=False),
        pa.field(SESSION_ID, pa.string()),
        pa.field(CATEGORY_ID, pa.string()),
        pa.field(PRICE, pa.float64()),
        pa.field(QUANTITY, pa.int32()),
        pa.field(QUERY, pa.string()),
    ]
)

#: The event as stored: canonical columns plus lineage.
STORED_SCHEMA: pa.Schema = EVENT_SCHEMA.append(
    pa.field(SOURCE_FILE_ID, pa.int32(), nullable=False)
).append(pa.field(SOURCE_ROW, pa.int64(), nullable=False))

_DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.timestamp("us"): "TIMESTAMP",
    pa.float64(): "DOUBLE",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
}


def duckdb_ddl(table: str, schema: pa.Schema = STORED_SCHEMA) -> str:
    """Return the ``CREATE TABLE IF NOT EXISTS`` statement for ``schema``.

    Args:
        table: Table name.
        schema: Arrow schema to translate; the stored event schema by default.

    Returns:
        A DuckDB DDL statement.
    """
    columns = ", ".join(
        f"{field.name} {_DUCKDB_TYPES[field.type]}{'' if field.nullable else ' NOT NULL'}"
        for field in schema
    )
    return f"CREATE TABLE IF NOT EXISTS {table} ({columns})"


def epoch_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch; a naive datetime is read as UTC (the schema's rule).

    Args:
        moment: A naive (UTC) or timezone-aware datetime.

    Returns:
        Integer microseconds.
    """
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1_000_000)
