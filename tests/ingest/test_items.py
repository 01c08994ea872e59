"""``--items``: an item side table joined onto the events (issue 15 part 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopseq.cli import run
from shopseq.errors import SchemaMismatchError
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.ingest.items import join_items, read_items
from shopseq.store import Store, open_store


def test_every_row_is_kept_or_rejected_on_its_line(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "items.csv"
    path.write_text(
        "itemId;categoryId;price\n"
        "1;10;2.5\n"  # 2 kept
        "2;11\n"  # 3 short
        "3;12;-1\n"  # 4 negative price
        "1;13;1\n"  # 5 item given twice
        ";14;1\n"  # 6 no item
        "4;15;x\n"  # 7 not a number
        "5;16;3;9\n"  # 8 long
        "6;17;\n"  # 9 kept, no price
    )
    rows = read_items(path)
    assert rows.mapping == {"item_id": "itemId", "category_id": "categoryId", "price": "price"}
    assert rows.rows_read == 8
    assert rows.rejected == (
        (3, "wrong_column_count"),
        (4, "bad_price"),
        (5, "duplicate_item"),
        (6, "missing_field"),
        (7, "bad_price"),
        (8, "wrong_column_count"),
    )
    assert rows.table.column("item_id").to_pylist() == ["1", "6"]
    assert rows.table.column("source_row").to_pylist() == [2, 9]
    events = tmp_path / "events.csv"
    events.write_text(
        "user_id,item_id,action,ts,category_id,price\n"
        "u1,1,view,2024-01-01,,\n"
        "u1,6,view,2024-01-01,own,\n"
        "u1,9,view,2024-01-01,,\n"
    )
    ingest_files([events], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]), store)
    joined = join_items(store, rows)
    assert (joined.events, joined.category_filled, joined.price_filled) == (3, 1, 1)
    assert joined.events_without_item == 1
    got = store.sql("SELECT item_id, category_id, price FROM events ORDER BY source_row")
    assert got.to_pylist() == [
        {"item_id": "1", "category_id": "10", "price": 2.5},
        {"item_id": "6", "category_id": "own", "price": None},  # an event's own value is kept
        {"item_id": "9", "category_id": None, "price": None},
    ]


def test_a_table_without_an_item_column_names_the_closest(tmp_path: Path) -> None:
    path = tmp_path / "cats.csv"
    path.write_text("Item Code,categoryId\n1,2\n")
    with pytest.raises(SchemaMismatchError, match=r"found \['Item Code', 'categoryId'\]"):
        read_items(path)
    rows = read_items(path, {"item_id": "Item Code"})
    assert rows.table.num_rows == 1
    with pytest.raises(SchemaMismatchError, match=r"did you mean 'Item Code' for 'ItemCod'"):
        read_items(path, {"item_id": "ItemCod"})


@pytest.mark.realdata
def test_diginetica_purchases_get_their_categories(shared_data: Path, tmp_path: Path) -> None:
    base = shared_data / "diginetica"
    store_path = tmp_path / "s.duckdb"
    code = run(
        [
            "ingest",
            str(base / "train-purchases.csv"),
            "--layout",
            "diginetica-purchases",
            "--items",
            str(base / "product-categories.csv"),
            "--store",
            str(store_path),
        ]
    )
    assert code == 0
    with open_store(store_path, read_only=True) as store:
        counts = store.sql(
            "SELECT count(*) AS n, count(category_id) AS with_category FROM events"
        ).to_pylist()[0]
        n_items = store.sql("SELECT count(*) FROM items").column(0)[0].as_py()
        # Independently: the categories file as DuckDB reads it, joined on the item.
        expected = (
            store.sql(
                f"SELECT count(*) FROM events e JOIN read_csv('{base / 'product-categories.csv'}', "
                "delim=';', header=true, all_varchar=true) c ON e.item_id = c.itemId"
            )
            .column(0)[0]
            .as_py()
        )
    assert n_items == 184_047  # the README's count of items
    assert counts["n"] == 18_025
    assert counts["with_category"] == expected > 0
