"""An item side table (item -> category, price, brand) joined onto the events on ingest.

Real shops keep a catalogue beside the event log (Diginetica's ``product-categories.csv``:
``itemId;categoryId``). ``shopseq ingest --items FILE`` reads it, stores it as the ``items``
table and fills each event's missing ``category_id`` and ``price`` from it; values an event
already has are kept. Columns are found by name (``itemId``, ``item_id``, ``product_id``,
``StockCode``, ``categoryId``, ``category``, ``price``, ``brand``, compared lower-case without
punctuation) or given as ``canonical=source`` mappings.

Every row of the file is accepted or rejected with its line and reason (an empty item id, an
item given twice, a row of the wrong width, a price that is not a non-negative number), and
``read = accepted + rejected`` is checked. PyArrow's CSV reader is used (single-threaded, so
row numbers are exact); a file it cannot parse at all is an ``UnreadableFileError``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from shopseq.errors import ConfigError, SchemaMismatchError, StoreError, UnreadableFileError
from shopseq.ingest.readers import closest_columns
from shopseq.store import Store

__all__ = ["ITEM_COLUMNS", "ItemJoin", "ItemRows", "join_items", "read_items"]

#: Canonical columns of the side table and the source names each is found by (normalised).
ITEM_COLUMNS: dict[str, tuple[str, ...]] = {
    "item_id": ("itemid", "item", "productid", "product", "stockcode", "sku"),
    "category_id": ("categoryid", "category", "categorycode", "categoryname"),
    "price": ("price", "unitprice"),
    "brand": ("brand", "brandid", "brandname"),
}
_DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True, slots=True)
class ItemRows:
    """A read side table.

    Attributes:
        path: The file.
        table: ``item_id, category_id, price, brand`` (strings; price double), one row per item.
        rows_read: Data rows in the file.
        rejected: (physical line, reason) of every row not kept.
        mapping: Canonical column -> the file's column used.
    """

    path: Path
    table: pa.Table
    rows_read: int
    rejected: tuple[tuple[int, str], ...]
    mapping: dict[str, str]


@dataclass(frozen=True, slots=True)
class ItemJoin:
    """What joining the side table changed.

    Attributes:
        items: The side table as read.
        events: Events in the store.
        category_filled: Events whose missing category came from the side table.
        price_filled: Events whose missing price came from the side table.
        events_without_item: Events whose item is not in the side table.
    """

    items: ItemRows
    events: int
    category_filled: int
    price_filled: int
    events_without_item: int


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _sniff_header(path: Path) -> tuple[str, list[str]]:
    """The delimiter (the most frequent candidate in the header line) and the column names."""
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            head = stream.read(65_536)
    except (OSError, pa.ArrowException) as err:
        raise UnreadableFileError(path, f"cannot be read: {err}") from err
    first = head.split(b"\n", 1)[0].rstrip(b"\r").removeprefix(b"\xef\xbb\xbf")
    try:
        text = first.decode()
    except UnicodeDecodeError as err:
        raise UnreadableFileError(path, "the header is not valid UTF-8", line=1) from err
    if not text.strip():
        raise UnreadableFileError(path, "is empty: it has no header line", line=1)
    counts = {d: text.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    delimiter = best if counts[best] else ","
    names = next(csv.reader([text], delimiter=delimiter))
    return delimiter, names


def _map_columns(path: Path, found: list[str], given: Mapping[str, str]) -> dict[str, str]:
    unknown = sorted(set(given) - set(ITEM_COLUMNS))
    if unknown:
        raise ConfigError(
            f"--item-column {unknown[0]}=…: unknown column; expected one of {list(ITEM_COLUMNS)}"
        )
    by_key = {_key(f): f for f in found}
    mapping: dict[str, str] = {}
    for canonical, names in ITEM_COLUMNS.items():
        if canonical in given:
            mapping[canonical] = given[canonical]
            continue
        for name in (canonical, *names):
            if _key(name) in by_key:
                mapping[canonical] = by_key[_key(name)]
                break
    missing = [given[c] for c in given if given[c] not in found]
    if "item_id" not in mapping:
        missing.append("item_id")
    if missing:
        close = closest_columns(missing, found)
        hint = "; ".join(f"did you mean {m!r} for {n!r}" for n, m in close.items())
        raise SchemaMismatchError(
            path,
            missing=missing,
            found=found,
            hint=(hint + "; " if hint else "")
            + "an item table needs an item column (e.g. itemId); map it with "
            "--item-column item_id=NAME",
        )
    if len(mapping) == 1:
        raise SchemaMismatchError(
            path,
            detail=f"has no column to join (found {found}); expected one of category_id, price, "
            "brand (map one with --item-column category_id=NAME)",
        )
    return mapping


def read_items(path: Path, columns: Mapping[str, str] | None = None) -> ItemRows:
    """Read an item side table (CSV with a header; delimiter sniffed from it).

    Args:
        path: The file (plain or compressed, told by its suffix).
        columns: ``canonical -> source`` overrides of the column names.

    Returns:
        The rows kept, and every rejected row with its line and reason.

    Raises:
        UnreadableFileError: If the file cannot be read or parsed as CSV.
        SchemaMismatchError: If it has no item column or nothing to join.
        ConfigError: If an override names an unknown canonical column.
    """
    if not path.is_file():
        raise UnreadableFileError(path, "no such file (--items)")
    delimiter, header = _sniff_header(path)
    bad: list[tuple[int, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        line = row.number if row.number is not None else -1
        bad.append((line, "wrong_column_count"))
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, invalid_row_handler=on_invalid, newlines_in_values=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True
            ),
        )
    except (OSError, pa.ArrowException, ValueError) as err:
        raise UnreadableFileError(path, f"cannot be read as CSV ({err})") from err
    found = list(table.column_names)
    mapping = _map_columns(path, found, dict(columns or {}))
    # Physical line of each kept row: the header is line 1 and skipped rows are known by number.
    skipped = sorted(n for n, _ in bad)
    kept_lines: list[int] = []
    line, k = 2, 0
    for _ in range(table.num_rows):
        while k < len(skipped) and skipped[k] == line:
            line += 1
            k += 1
        kept_lines.append(line)
        line += 1
    rows_read = table.num_rows + len(bad)
    values = {c: table.column(s).cast(pa.string()).to_pylist() for c, s in mapping.items()}
    seen: set[str] = set()
    out: dict[str, list[object]] = {c: [] for c in ITEM_COLUMNS}
    out["source_row"] = []
    for n, line_no in enumerate(kept_lines):
        item = (values["item_id"][n] or "").strip()
        if not item:
            bad.append((line_no, "missing_field"))
            continue
        if item in seen:
            bad.append((line_no, "duplicate_item"))
            continue
        price: float | None = None
        if "price" in values and values["price"][n] not in (None, ""):
            try:
                price = float(values["price"][n])
            except ValueError:
                price = math.nan
            if not math.isfinite(price) or price < 0:
                bad.append((line_no, "bad_price"))
                continue
        seen.add(item)
        out["item_id"].append(item)
        for name in ("category_id", "brand"):
            raw = values[name][n] if name in values else None
            out[name].append(raw.strip() or None if isinstance(raw, str) else None)
        out["price"].append(price)
        out["source_row"].append(line_no)
    kept = pa.table(
        {
            "item_id": pa.array(out["item_id"], pa.string()),
            "category_id": pa.array(out["category_id"], pa.string()),
            "price": pa.array(out["price"], pa.float64()),
            "brand": pa.array(out["brand"], pa.string()),
            "source_row": pa.array(out["source_row"], pa.int64()),
        }
    )
    if kept.num_rows + len(bad) != rows_read:  # a check that can fail: both sides counted apart
        raise UnreadableFileError(
            path,
            f"item rows do not reconcile: read {rows_read}, kept {kept.num_rows}, "
            f"rejected {len(bad)} (this is a shopseq bug: please report it)",
        )
    return ItemRows(path, kept, rows_read, tuple(sorted(bad)), mapping)


def join_items(store: Store, items: ItemRows) -> ItemJoin:
    """Store the side table as ``items`` and fill the events' missing category and price.

    One transaction: the table is replaced and the events updated together, or neither.

    Args:
        store: The event store (writable).
        items: A side table from :func:`read_items`.

    Returns:
        How many events were filled, and how many have no entry in the side table.
    """
    with store.transaction() as con:
        con.register("_item_rows", items.table)
        try:
            con.execute("CREATE OR REPLACE TABLE items AS SELECT * FROM _item_rows")
        finally:
            con.unregister("_item_rows")
        counts = con.execute(
            """
            SELECT count(*),
                   count(*) FILTER (WHERE e.category_id IS NULL AND i.category_id IS NOT NULL),
                   count(*) FILTER (WHERE e.price IS NULL AND i.price IS NOT NULL),
                   count(*) FILTER (WHERE i.item_id IS NULL)
            FROM events e LEFT JOIN items i USING (item_id)
            """
        ).fetchone()
        con.execute(
            "UPDATE events SET category_id = i.category_id FROM items i "
            "WHERE events.item_id = i.item_id AND events.category_id IS NULL "
            "AND i.category_id IS NOT NULL"
        )
        con.execute(
            "UPDATE events SET price = i.price FROM items i "
            "WHERE events.item_id = i.item_id AND events.price IS NULL AND i.price IS NOT NULL"
        )
    if counts is None:  # an aggregate always returns one row
        raise StoreError("joining the item table returned no counts")
    return ItemJoin(items, int(counts[0]), int(counts[1]), int(counts[2]), int(counts[3]))
