"""Series built from a small store, checked against a hand computation."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from shopseq.errors import InputError
from shopseq.forecast.series import (
    Freq,
    Metric,
    Panel,
    SeriesConfig,
    build_series,
    summing_matrix,
)
from shopseq.schema import EVENT_SCHEMA
from shopseq.store import Store

START = datetime(2024, 1, 1)  # a Monday
GAP_DAY = 9  # Wednesday 2024-01-10: the logger was down, no event at all


def _events(n_days: int = 21) -> pa.Table:
    """``n_days`` days; every day 6 views of category a and 3 of b, except the gap day.

    Category a has a purchase (price 10 x 2) on days divisible by 3; b never buys.
    """
    rows = []
    for day in range(n_days):
        if day == GAP_DAY:
            continue
        base = START + timedelta(days=day, hours=10)
        for k in range(6):
            rows.append((f"u{k}", "i1", "view", base + timedelta(minutes=k), "a", None, None))
        for k in range(3):
            rows.append((f"u{k}", "i2", "view", base + timedelta(minutes=10 + k), "b", None, None))
        if day % 3 == 0:
            rows.append(("u0", "i1", "purchase", base + timedelta(minutes=30), "a", 10.0, 2))
    cols = list(zip(*rows, strict=True))
    return pa.table(
        {
            "user_id": pa.array(cols[0]),
            "item_id": pa.array(cols[1]),
            "action": pa.array(cols[2]),
            "ts": pa.array(cols[3], pa.timestamp("us")),
            "session_id": pa.array([None] * len(rows), pa.string()),
            "category_id": pa.array(cols[4]),
            "price": pa.array(cols[5], pa.float64()),
            "quantity": pa.array(cols[6], pa.int32()),
            "query": pa.array([None] * len(rows), pa.string()),
        },
        schema=EVENT_SCHEMA,
    )


@pytest.fixture
def events(store: Store) -> Store:
    store.write_arrow("ev", _events())
    return store


def test_purchases_zero_filled_inside_range_and_gap_flagged(events: Store) -> None:
    config = SeriesConfig(metric=Metric.PURCHASES, categories=("a", "b"))
    built = build_series(events.table("ev"), config)
    panel = built.panel
    assert panel.ids == ("total", "total/a", "total/b", "total/other")
    assert panel.n_periods == 21
    expected = np.array([1.0 if d % 3 == 0 else 0.0 for d in range(21)])
    expected[GAP_DAY] = np.nan
    np.testing.assert_array_equal(panel.y[0], expected)
    np.testing.assert_array_equal(panel.y[1], expected)
    # b never buys: a true zero every day the store was logging, NaN on the gap day.
    b = np.zeros(21)
    b[GAP_DAY] = np.nan
    np.testing.assert_array_equal(panel.y[2], b)
    np.testing.assert_array_equal(panel.y[3], b)  # nothing pooled into other
    assert panel.gap[:, GAP_DAY].all() and panel.gap.sum() == 4
    assert built.report.gap_periods == (START + timedelta(days=GAP_DAY),)
    assert built.report.empty_true_zero == 0


def test_top_categories_ranked_by_the_metrics_action(events: Store) -> None:
    built = build_series(events.table("ev"), SeriesConfig(metric=Metric.PURCHASES))
    assert built.panel.ids == ("total", "total/a")  # b has no purchase to rank it by


def test_views_revenue_users_and_conversion_by_hand(events: Store) -> None:
    table = events.table("ev")
    views = build_series(table, SeriesConfig(metric=Metric.VIEWS)).panel
    assert views.y[0, 0] == 9 and views.y[1, 0] == 6 and views.y[2, 0] == 3
    revenue = build_series(table, SeriesConfig(metric=Metric.REVENUE)).panel
    assert revenue.y[0, 3] == 20.0 and revenue.y[0, 4] == 0.0
    users = build_series(table, SeriesConfig(metric=Metric.USERS)).panel
    # distinct users: 6 in total and in a (u0..u5), 3 in b -- not additive
    assert users.y[:, 0].tolist() == [6.0, 6.0, 3.0]
    conversion = build_series(table, SeriesConfig(metric=Metric.CONVERSION)).panel
    assert conversion.y[0, 0] == pytest.approx(1 / 9)
    assert conversion.y[1, 0] == pytest.approx(1 / 6)
    assert conversion.y[2, 1] == 0.0  # b had views, no purchase


def test_additive_categories_sum_to_total(events: Store) -> None:
    config = SeriesConfig(metric=Metric.VIEWS, top_categories=1)
    built = build_series(events.table("ev"), config)
    assert built.panel.ids == ("total", "total/a", "total/other")
    s, bottom = summing_matrix(built.panel.ids)
    y = np.nan_to_num(built.panel.y)
    np.testing.assert_allclose(s @ y[bottom], y)
    assert built.report.other_share == pytest.approx(1 / 3)


def test_store_closed_on_same_weekday_is_a_quiet_zero_not_a_gap(store: Store) -> None:
    table = _events()
    days = (np.asarray(table["ts"]).astype("datetime64[D]") - np.datetime64("2024-01-01")).astype(
        int
    )
    # Close the shop every Saturday (days 5, 12, 19); the gap day stays a gap.
    keep = (days % 7) != 5
    store.write_arrow("ev", table.filter(pa.array(keep)))
    built = build_series(store.table("ev"), SeriesConfig(metric=Metric.VIEWS, by="total"))
    saturdays = [5, 12, 19]
    assert not built.panel.gap[0, saturdays].any()
    np.testing.assert_array_equal(built.panel.y[0, saturdays], 0.0)
    assert built.panel.gap[0, GAP_DAY]
    assert built.report.empty_true_zero == 3


def test_an_often_empty_slot_keeps_its_zeros(store: Store) -> None:
    table = _events()
    days = (np.asarray(table["ts"]).astype("datetime64[D]") - np.datetime64("2024-01-01")).astype(
        int
    )
    # Two of the three Sundays are empty: empty Sundays are normal here, not an outage.
    keep = ~np.isin(days, [6, 13])
    store.write_arrow("ev", table.filter(pa.array(keep)))
    config = SeriesConfig(metric=Metric.VIEWS, by="total", gap_min_expected=1.0)
    built = build_series(store.table("ev"), config)
    assert not built.panel.gap[0, [6, 13]].any()
    assert built.panel.gap[0, GAP_DAY]
    # Without the zero-share rule, the same Sundays would be called outages.
    strict = config.model_copy(update={"gap_max_zero_share": 1.0})
    assert build_series(store.table("ev"), strict).panel.gap[0, [6, 13]].all()


def test_hourly_series_and_long_frame_round_trip(events: Store) -> None:
    built = build_series(events.table("ev"), SeriesConfig(metric=Metric.VIEWS, freq="H"))
    panel = built.panel
    assert panel.freq is Freq.HOUR and panel.season_length == 24
    assert panel.n_periods == 20 * 24 + 1  # 10:00 on day 0 .. 10:00 on day 20
    frame = built.to_long()
    assert frame.columns == ["unique_id", "ds", "y", "gap"]
    back = Panel.from_long(frame.reverse(), Freq.HOUR)  # row order does not matter
    assert back.ids == tuple(reversed(panel.ids))
    back = Panel.from_long(frame, Freq.HOUR)
    assert back.ids == panel.ids
    np.testing.assert_array_equal(back.gap, panel.gap)
    np.testing.assert_array_equal(np.nan_to_num(back.y, nan=-1), np.nan_to_num(panel.y, nan=-1))


def test_filled_imputes_gaps_from_one_season_earlier() -> None:
    y = np.arange(21, dtype=float)[None, :]
    y[0, 9] = np.nan
    ds = (np.datetime64("2024-01-01") + np.arange(21)).astype("datetime64[us]")
    panel = Panel(("total",), ds, y, np.isnan(y), Freq.DAY)
    assert panel.filled()[0, 9] == 2.0  # the value 7 days earlier


def test_from_long_rejects_ragged_series() -> None:
    import polars as pl

    frame = pl.DataFrame(
        {
            "unique_id": ["a", "a", "b"],
            "ds": [datetime(2024, 1, 1), datetime(2024, 1, 2), datetime(2024, 1, 1)],
            "y": [1.0, 2.0, 3.0],
        }
    )
    with pytest.raises(InputError, match=r"3 rows for 2 series x 2 periods"):
        Panel.from_long(frame, Freq.DAY)


def test_empty_range_is_an_input_error(events: Store) -> None:
    config = SeriesConfig(start=datetime(2030, 1, 1))
    with pytest.raises(InputError, match="no events in the requested range"):
        build_series(events.table("ev"), config)


def test_a_weekday_empty_every_week_is_learned_as_closed_and_a_given_date_too(store: Store) -> None:
    from datetime import date

    from shopseq.forecast.calendar import Closures

    table = _events(35)
    days = (np.asarray(table["ts"]).astype("datetime64[D]") - np.datetime64("2024-01-01")).astype(
        int
    )
    holiday = 22  # Tuesday 2024-01-23: closed, and the user says so
    keep = ((days % 7) != 5) & (days != holiday)  # shut every Saturday (5 of them)
    store.write_arrow("ev", table.filter(pa.array(keep)))
    config = SeriesConfig(
        metric=Metric.VIEWS, by="total", closed_dates=(date(2024, 1, 23), date(2024, 2, 14))
    )
    built = build_series(store.table("ev"), config)
    panel, report = built.panel, built.report
    assert report.closures == Closures(weekdays=(5,), dates=config.closed_dates)
    assert report.closures.describe() == "closed Saturdays; closed on 2024-01-23, 2024-02-14"
    closed = np.flatnonzero(panel.closed).tolist()
    assert closed == [5, 12, 19, 22, 26, 33] and report.closed_periods == 6
    assert report.closed_with_events == 0
    # Closed is neither a gap nor missing; the logger outage stays a gap.
    assert not panel.gap[0, closed].any() and panel.gap[0, GAP_DAY]
    np.testing.assert_array_equal(panel.y[0, closed], 0.0)
    # Models see closed days interpolated between their open neighbours (all 9 views here).
    np.testing.assert_array_equal(panel.filled()[0, closed], 9.0)
    # The future knows the closures too: 2024-02-05 onwards, Saturday 10th and the 14th.
    future = panel.future_closed(14)
    assert np.flatnonzero(future).tolist() == [5, 9, 12]
    # Three Saturdays are not enough to call the shop closed (closure_min_occurrences = 4).
    short = build_series(
        store.table("ev"),
        SeriesConfig(metric=Metric.VIEWS, by="total", end=datetime(2024, 1, 22)),
    )
    assert short.report.closures == Closures()
    off = config.model_copy(update={"learn_closures": False, "closed_dates": ()})
    assert not build_series(store.table("ev"), off).panel.closed.any()


def test_hours_closed_every_day_are_learned_for_hourly_series(store: Store) -> None:
    built = build_series(
        store_with(store, _events(10)).table("ev"), SeriesConfig(metric=Metric.VIEWS, freq="h")
    )
    # Events happen only 10:00-10:30: every other hour was empty on all 9 logged days.
    hours = built.report.closures.hours
    assert 10 not in hours and len(hours) == 23
    assert not built.panel.closed[
        built.panel.ds.astype("datetime64[h]").astype(int) % 24 == 10
    ].any()


def store_with(store: Store, table: pa.Table) -> Store:
    store.write_arrow("ev", table)
    return store


def test_closures_files_are_read_and_bad_lines_named(tmp_path) -> None:
    from datetime import date

    from shopseq.forecast.calendar import read_closed_dates

    path = tmp_path / "closed.txt"
    path.write_text("# bank holidays\n2024-12-25,Christmas\n\n2024-12-26  # boxing day\n")
    assert read_closed_dates(path) == (date(2024, 12, 25), date(2024, 12, 26))
    path.write_text("2024-12-25\nsoon\n")
    with pytest.raises(InputError, match=r"closed\.txt:2: 'soon' is not a date"):
        read_closed_dates(path)


def test_groups_forecast_small_categories_as_one_named_series(events: Store) -> None:
    config = SeriesConfig(metric=Metric.VIEWS, groups={"both": ("a", "b")})
    built = build_series(events.table("ev"), config)
    assert built.panel.ids == ("total", "total/both")
    np.testing.assert_array_equal(built.panel.y[1], built.panel.y[0])
    with pytest.raises(ValueError, match=r"category 'a' is in two groups"):
        SeriesConfig(groups={"x": ("a",), "y": ("a", "b")})
    with pytest.raises(ValueError, match=r"'other' is reserved"):
        SeriesConfig(groups={"other": ("a",)})
