from __future__ import annotations

import json
import re
from pathlib import Path

from shopseq.report import find_artifacts


def test_artifacts_accept_the_documented_shapes_and_flag_the_rest(tmp_path, artifact_examples):
    leaderboard, forecast = artifact_examples
    (tmp_path / "leaderboard.json").write_text(json.dumps(leaderboard))
    (tmp_path / "forecasts.json").write_text(json.dumps(forecast))
    (tmp_path / "plan.json").write_text(json.dumps([{"week": 1, "budget": 100.0}]))
    (tmp_path / "extra.report.json").write_text(json.dumps({"rows": [{"a": 1}, {"b": 2}]}))
    (tmp_path / "forecast_leaderboard.json").write_text(
        json.dumps({"tables": [{"columns": ["a", "b"], "rows": [[1]]}]})
    )
    sections = {s.source.name: s for s in find_artifacts([tmp_path, tmp_path])}
    assert list(sections) == [
        "leaderboard.json",
        "forecast_leaderboard.json",
        "forecasts.json",
        "plan.json",
        "extra.report.json",
    ]
    board = sections["leaderboard.json"]
    assert board.title == "Next-item leaderboard"
    assert board.tables[0].rows[1] == ("sasrec", 0.21, 0.11)
    assert len(board.charts) == 1 and not board.warnings
    assert sections["plan.json"].tables[0].columns == ("week", "budget")
    assert sections["extra.report.json"].tables[0].rows == ((1, None), (None, 2))
    broken = sections["forecast_leaderboard.json"]
    assert broken.warnings and "row 0 has 1 cells; expected 2" in broken.warnings[0]
    assert '"columns"' in broken.raw


def test_artifact_chart_series_must_match_x(tmp_path):
    bad = {"charts": [{"x": [1, 2], "series": [{"y": [1, 2], "lower": [1]}]}]}
    (tmp_path / "forecasts.json").write_text(json.dumps(bad))
    (section,) = find_artifacts([tmp_path])
    assert "series 0 'lower' must be a list as long as 'x' (2)" in section.warnings[0]


def test_report_is_one_offline_file_with_every_section(report_html: Path):
    text = report_html.read_text()
    assert "<script src=" not in text  # Plotly is inlined: no network needed
    assert "Plotly" in text
    for anchor in ("profile", "funnel", "paths", "transitions", "states", "retention", "patterns",
                   "rules", "segments", "artifact-0", "artifact-1"):  # fmt: skip
        assert f'<section id="{anchor}">' in text
    n_figures = int(re.search(r'data-figures="(\d+)"', text).group(1))
    assert n_figures == text.count('class="plotly-graph-div"')
    # profile, funnel x3, sankey, 2 transition heatmaps, 2 intent-state heatmaps, retention,
    # segments x2, 2 artifact charts
    assert n_figures == 14
    assert "Next-item leaderboard" in text and "sasrec" in text
    assert not list(report_html.parent.glob(".report.html.*"))  # no temp file left behind


def test_report_on_a_purchase_only_log_explains_the_missing_funnel(tmp_path):
    from datetime import datetime, timedelta

    import pyarrow as pa

    from shopseq.report import ReportConfig, write_report
    from shopseq.schema import STORED_SCHEMA
    from shopseq.store import open_store

    n = 60
    rows = {
        "user_id": [f"u{i % 7}" for i in range(n)],
        "item_id": [f"i{i % 5}" for i in range(n)],
        "action": ["purchase"] * n,
        "ts": [datetime(2024, 1, 1) + timedelta(hours=9 * i) for i in range(n)],
        "session_id": [f"u{i % 7}#{i}" for i in range(n)],
        "category_id": [None] * n,
        "price": [2.0] * n,
        "quantity": [1] * n,
        "query": [None] * n,
        "source_file_id": [1] * n,
        "source_row": list(range(1, n + 1)),
    }
    with open_store(None, threads=1) as store:
        store.write_arrow("events_prepared", pa.table(rows, schema=STORED_SCHEMA))
        summary = write_report(store, tmp_path / "r.html", ReportConfig())
    text = (tmp_path / "r.html").read_text()
    assert "A funnel needs at least two of the steps view, cart, purchase" in text
    assert "this data has only purchase" in text
    assert '<section id="retention">' in text
    assert summary.n_figures >= 3  # profile, transitions, retention (+ segments)
