"""Every built-in layout reads a small sample written in its dataset's published format."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from shopseq.errors import ConfigError, SchemaMismatchError
from shopseq.ingest import (
    BUILTIN_LAYOUTS,
    IngestConfig,
    generic_layout,
    ingest_files,
    load_layout_file,
)
from shopseq.store import Store

# layout, sample file, rows, first event as (user_id, item_id, action, ts, extra columns)
SAMPLES = [
    ("taobao", "taobao.csv", 5, ("1", "2268318", "view", datetime(2017, 11, 24, 17, 21, 10), {})),
    (
        "retailrocket",
        "retailrocket.csv",
        3,
        ("257597", "355908", "view", datetime(2015, 6, 2, 5, 2, 12, 117000), {}),
    ),
    (
        "retailrocket-sessions",
        "retailrocket-sessions.tsv",
        3,
        ("0", "285930", "view", datetime(2015, 9, 11, 20, 49, 49), {"session_id": "0"}),
    ),
    (
        "rees46",
        "rees46.csv",
        3,
        (
            "541312140",
            "44600062",
            "view",
            datetime(2019, 10, 1),
            {"price": 35.79, "category_id": "2103807459595387724"},
        ),
    ),
    (
        "yoochoose-clicks",
        "yoochoose-clicks.dat",
        3,
        (
            "832",
            "214717095",
            "view",
            datetime(2014, 4, 6, 20, 21, 58, 444000),
            {"session_id": "832"},
        ),
    ),
    (
        "yoochoose-buys",
        "yoochoose-buys.dat",
        2,
        (
            "420374",
            "214537888",
            "purchase",
            datetime(2014, 4, 6, 18, 44, 58, 314000),
            {"price": 12462.0, "quantity": 1},
        ),
    ),
    (
        "session-rec",
        "session-rec.tsv",
        3,
        ("1", "214536502", "view", datetime(2014, 4, 7, 8, 51, 9, 277000), {}),
    ),
    (
        "diginetica-views",
        "diginetica-views.csv",
        3,
        ("session_id:1", "81766", "view", datetime(2016, 5, 9, 0, 8, 46, 309000), {}),
    ),
    (
        "diginetica-purchases",
        "diginetica-purchases.csv",
        2,
        ("18278", "25911", "purchase", datetime(2016, 5, 6), {}),
    ),
    (
        "online-retail",
        "online-retail.parquet",
        3,
        ("17850", "85123A", "purchase", datetime(2010, 12, 1, 8, 26), {"quantity": 6}),
    ),
    (
        "online-retail-ii",
        "online-retail-ii.csv",
        3,
        ("13085", "85048", "purchase", datetime(2009, 12, 1, 7, 45), {"quantity": 12}),
    ),
    (
        "cdnow",
        "cdnow.txt",
        2,
        ("00001", "cdnow", "purchase", datetime(1997, 1, 1), {"price": 11.77}),
    ),
    (
        "cdnow-sample",
        "cdnow-sample.txt",
        2,
        ("0001", "cdnow", "purchase", datetime(1997, 1, 1), {"price": 29.33 / 2}),
    ),
    (
        "user-item-lines",
        "user-item-lines.txt",
        3,
        ("1", "6393", "view", datetime(2000, 1, 1, 0, 0, 1), {}),
    ),
]


@pytest.mark.parametrize(("layout", "name", "rows", "first"), SAMPLES)
def test_builtin_layout_reads_its_sample(
    store: Store, data_dir: Path, layout: str, name: str, rows: int, first: tuple
) -> None:
    report = ingest_files(
        [data_dir / "layouts" / name], IngestConfig(layout=BUILTIN_LAYOUTS[layout]), store
    )
    assert report.rows_read == rows
    assert report.rows_accepted == rows, store.sql("SELECT message FROM quarantine").to_pylist()
    event = store.sql("SELECT * FROM events ORDER BY source_row LIMIT 1").to_pylist()[0]
    user, item, action, ts, extra = first
    assert (event["user_id"], event["item_id"], event["action"], event["ts"]) == (
        user,
        item,
        action,
        ts,
    )
    for column, value in extra.items():
        assert (
            event[column] == pytest.approx(value)
            if isinstance(value, float)
            else event[column] == value
        )


def test_online_retail_without_invoice_keeps_returns_and_quarantines_anonymous_rows(
    store: Store, data_dir: Path
) -> None:
    report = ingest_files(
        [data_dir / "layouts" / "online-retail-no-invoice.parquet"],
        IngestConfig(layout=BUILTIN_LAYOUTS["online-retail-no-invoice"]),
        store,
    )
    file = report.files[0]
    assert (file.rows_read, file.rows_accepted, file.rows_quarantined) == (3, 2, 1)
    assert file.by_reason == {"missing_field": 1}  # no customer and no invoice to stand in
    got = store.sql("SELECT action, quantity FROM events ORDER BY source_row").to_pylist()
    assert got == [
        {"action": "purchase", "quantity": 6},
        {"action": "return", "quantity": 1},  # Quantity -1: a return of one unit
    ]


def test_anonymous_online_retail_customer_falls_back_to_the_invoice(
    store: Store, data_dir: Path
) -> None:
    ingest_files(
        [data_dir / "layouts" / "online-retail.parquet"],
        IngestConfig(layout=BUILTIN_LAYOUTS["online-retail"]),
        store,
    )
    users = store.sql("SELECT user_id FROM events ORDER BY source_row").column(0).to_pylist()
    assert users == ["17850", "17850", "InvoiceNo:536366"]


def test_missing_columns_are_named_with_what_was_found(store: Store, data_dir: Path) -> None:
    with pytest.raises(
        SchemaMismatchError,
        match=r"rees46\.csv: missing required columns "
        r"\['visitorid', 'itemid', 'event', 'timestamp'\]; found \['event_time'",
    ):
        ingest_files(
            [data_dir / "layouts" / "rees46.csv"],
            IngestConfig(layout=BUILTIN_LAYOUTS["retailrocket"]),
            store,
        )


def test_generic_layout_maps_columns_and_actions(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "clicks.csv"
    path.write_text("visitor;thing;what;when\nv1;t1;pv;1700000000\nv1;t2;buy;1700000060\n")
    layout = generic_layout(
        ["user_id=visitor", "item_id=thing", "action=what", "ts=when"],
        ["pv=view", "buy=purchase"],
        delimiter=";",
        ts_format="epoch_s",
    )
    ingest_files([path], IngestConfig(layout=layout), store)
    assert store.sql("SELECT action FROM events ORDER BY ts").column(0).to_pylist() == [
        "view",
        "purchase",
    ]


def test_generic_layout_rejects_a_malformed_mapping() -> None:
    with pytest.raises(ConfigError, match=r"--column 'user_id': expected CANONICAL=SOURCE"):
        generic_layout(["user_id"], [])


def test_layout_file_with_a_misspelled_key_fails_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'delimter = ";"\n[columns]\nuser_id = "u"\nitem_id = "i"\naction = "a"\nts = "t"\n'
    )
    with pytest.raises(ConfigError, match=r"mine\.toml: invalid layout: delimter: Extra inputs"):
        load_layout_file(path)


def test_layout_file_reads_a_valid_layout(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'delimiter = ";"\nts_format = "epoch_ms"\n'
        '[columns]\nuser_id = "u"\nitem_id = "i"\naction = "a"\nts = "t"\n'
        '[actions]\nclick = "view"\n'
    )
    layout = load_layout_file(path)
    assert (layout.name, layout.delimiter, layout.actions["click"].value) == ("mine", ";", "view")


def _online_retail_ii_names(data_dir: Path, tmp_path: Path) -> Path:
    """The online-retail sample with the column names of the 'Online Retail II' release."""
    import pyarrow.parquet as pq

    table = pq.read_table(data_dir / "layouts" / "online-retail.parquet")
    names = {"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"}
    path = tmp_path / "retail-ii.parquet"
    pq.write_table(table.rename_columns([names.get(c, c) for c in table.column_names]), path)
    return path


def test_column_overrides_redirect_the_fallback_and_null_markers(
    store: Store, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from shopseq.cli import run

    path = _online_retail_ii_names(data_dir, tmp_path)
    overrides = ["user_id=Customer ID", "session_id=Invoice", "price=Price"]
    layout = generic_layout(overrides, [], base=BUILTIN_LAYOUTS["online-retail"])
    assert layout.name == "online-retail"
    assert layout.user_fallback_column == "Invoice"  # followed session_id's source
    assert layout.null_values == {"Customer ID": ("0",)}  # followed user_id's source
    ingest_files([path], IngestConfig(layout=layout), store)
    users = store.sql("SELECT user_id FROM events ORDER BY source_row").column(0).to_pylist()
    assert users == ["17850", "17850", "Invoice:536366"]
    # The command line as the issue typed it.
    args = [f"--column={o}" for o in overrides]
    code = run(
        [
            "ingest",
            str(path),
            "--layout",
            "online-retail",
            *args,
            "--store",
            str(tmp_path / "s.duckdb"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "read 3 = accepted 3 + quarantined 0" in capsys.readouterr().out


def test_layout_errors_name_the_chosen_layout_and_the_closest_columns(
    store: Store, data_dir: Path, tmp_path: Path
) -> None:
    path = _online_retail_ii_names(data_dir, tmp_path)
    layout = generic_layout(["price=Price"], [], base=BUILTIN_LAYOUTS["online-retail"])
    with pytest.raises(SchemaMismatchError) as caught:
        ingest_files([path], IngestConfig(layout=layout), store)
    message = str(caught.value)
    assert "the 'online-retail' layout expects them" in message
    assert "did you mean 'Customer ID' for 'CustomerID' (--column user_id='Customer ID')" in message
    assert "did you mean 'Invoice' for 'InvoiceNo' (--column session_id='Invoice')" in message
    with pytest.raises(ConfigError, match=r"--layout diginetica-views with the command-line"):
        generic_layout([], [], base=BUILTIN_LAYOUTS["diginetica-views"], delimiter="ab")


def test_a_source_column_renamed_two_ways_is_ambiguous_for_the_fallback() -> None:
    # yoochoose-clicks reads user and session from 'session'; give it a fallback on it too.
    base = BUILTIN_LAYOUTS["yoochoose-clicks"].model_copy(
        update={"user_fallback_column": "session"}
    )
    with pytest.raises(ConfigError, match=r"fallback user column 'session' is mapped to"):
        generic_layout(["user_id=visitor", "session_id=visit"], [], base=base)
