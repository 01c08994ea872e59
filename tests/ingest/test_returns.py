"""Returns and cancellations as behaviour (issue 15 part 3): the ``return`` action, the Online
Retail layouts that map cancellations to it, net revenue, and return rates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from events_factory import load_events

from shopseq.analyze.segments import SegmentConfig, segment_users
from shopseq.forecast.series import Metric, SeriesConfig, build_series
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.prepare.profile import profile_store
from shopseq.schema import ACTION_CODES, Action
from shopseq.store import Store

RETAIL_II = (
    "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
    "489434,85048,LED CUBE,12,2009-12-01 07:45:00,6.95,13085,United Kingdom\n"  # 2 bought
    "C489449,22087,PAPER BUNTING,-12,2009-12-01 10:33:00,2.95,16321,Australia\n"  # 3 cancelled
    "489450,21733,HEART T-LIGHT,-3,2009-12-01 10:40:00,2.55,16321,Australia\n"  # 4 negative qty
    "489451,21731,RED T-LIGHT,6,2009-12-01 10:41:00,1.65,,United Kingdom\n"  # 5 anonymous buyer
    "C489452,21730,BLUE T-LIGHT,-1,2009-12-01 10:42:00,1.65,,United Kingdom\n"  # 6 anonymous return
    "489453,21729,GREEN T-LIGHT,0,2009-12-01 10:43:00,1.65,13085,United Kingdom\n"  # 7 zero units
)


def test_return_is_appended_so_earlier_codes_never_change() -> None:
    assert list(Action)[-1] is Action.RETURN
    assert {a.value: c for a, c in ACTION_CODES.items()} == {
        "view": 0,
        "search": 1,
        "favorite": 2,
        "cart": 3,
        "remove_from_cart": 4,
        "purchase": 5,
        "return": 6,
    }


def test_online_retail_ii_keeps_cancellations_as_returns(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "online_retail_II.csv"
    path.write_text(RETAIL_II)
    report = ingest_files([path], IngestConfig(layout=BUILTIN_LAYOUTS["online-retail-ii"]), store)
    f = report.files[0]
    assert (f.rows_read, f.rows_accepted, f.rows_quarantined) == (6, 5, 1)
    assert f.by_reason == {"bad_quantity": 1}  # zero units is neither a sale nor a return
    rows = store.sql(
        "SELECT source_row, user_id, action, quantity, session_id FROM events ORDER BY source_row"
    ).to_pylist()
    assert [(r["source_row"], r["action"], r["quantity"]) for r in rows] == [
        (2, "purchase", 12),
        (3, "return", 12),
        (4, "return", 3),
        (5, "purchase", 6),
        (6, "return", 1),
    ]
    assert rows[0]["user_id"] == "13085"
    assert rows[3]["user_id"] == "Invoice:489451"  # no customer: the invoice stands for them
    assert rows[1]["session_id"] == "C489449"


def test_net_revenue_profile_and_segment_return_rates(store: Store) -> None:
    day = 86_400
    load_events(
        store,
        [
            ("u1", "i1", "purchase", 0, "c", 10.0, 2),  # +20
            ("u1", "i1", "return", 3_600, "c", 10.0, 1),  # -10 the same day
            ("u2", "i2", "purchase", day, "c", 5.0, 4),  # +20 the next day
            ("u3", "i3", "view", day + 60, "c", None, None),
        ],
    )
    revenue = build_series(store.table("events"), SeriesConfig(metric=Metric.REVENUE)).panel
    np.testing.assert_allclose(revenue.y[0][:2], [10.0, 20.0])
    purchases = build_series(store.table("events"), SeriesConfig(metric=Metric.PURCHASES)).panel
    np.testing.assert_allclose(purchases.y[0][:2], [1.0, 1.0])  # a return is not a purchase
    profile = profile_store(store)
    assert profile.events_by_action["return"] == 1
    assert profile.return_rate == pytest.approx(1 / 2)
    segments = segment_users(store.table("events"), SegmentConfig(k=2))
    bought = [s.frequency * s.n_users for s in segments.segments]
    assert sum(bought) == pytest.approx(2)
    # Each segment's rate is its returns over its purchases: together they give back the 1 return.
    returned = sum(s.return_rate * b for s, b in zip(segments.segments, bought, strict=True))
    assert returned == pytest.approx(1)


@pytest.mark.realdata
def test_online_retail_returns_are_no_longer_quarantined(shared_data: Path, store: Store) -> None:
    path = shared_data / "online-retail" / "online_retail_541k_no_invoice_stockcode.parquet"
    layout = BUILTIN_LAYOUTS["online-retail-no-invoice"]
    f = ingest_files([path], IngestConfig(layout=layout), store).files[0]
    assert f.rows_read == f.rows_accepted + f.rows_quarantined == 541_909
    assert "bad_quantity" not in f.by_reason  # every return is kept...
    # ... except those with no customer at all (missing_field, as any row without a user).
    table = pq.read_table(path, columns=["Quantity", "CustomerID"])
    negative = pc.less(table["Quantity"], 0)
    known = pc.invert(pc.is_null(table["CustomerID"], nan_is_null=True))
    expected_returns = pc.sum(pc.and_(negative, known)).as_py()
    got = store.sql("SELECT count(*) FROM events WHERE action = 'return'").column(0)[0].as_py()
    assert got == expected_returns > 8_000
    assert f.by_reason == {"missing_field": pc.sum(pc.invert(known)).as_py()}
