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


def _cells(text: str) -> list[str]:
    import html as html_lib

    return [html_lib.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", text, flags=re.S)]


def test_stage_results_render_as_readable_sections(results_report_html: Path):
    text = results_report_html.read_text()
    for anchor in ("nextitem", "forecast-backtest", "forecasts", "plan", "artifact-0"):
        assert f'<section id="{anchor}">' in text, anchor
    cells = _cells(text)
    # No cell holds a Python dict or list (the old report printed whole metric dicts).
    assert not [c for c in cells if c.lstrip().startswith(("{", "[")) or "': " in c]
    # Next-item: baselines marked, the best baseline is the reference of the paired tests.
    assert "popularity (baseline)" in cells and "reference" in cells
    # Forecasts: the chosen model per series and a fan chart per series.
    series = json.loads((results_report_html.parent / "forecast_series.json").read_text())
    assert len(series["series"]) == 5  # total, 3 categories, other
    fans = text.split('<section id="forecasts">')[1].split("</section>")[0]
    assert fans.count('class="plotly-graph-div"') == 5
    assert "ensemble (chosen)" in cells
    # Plan: response mode with uplift ranges and a reason per allocation.
    assert "Expected extra revenue over spending nothing" in text
    assert any(c.startswith("marginal return") for c in cells)
    assert any("pooled small categories" in c for c in cells)  # other: reported, not funded
    # The generic section flattened the nested row into columns.
    assert "metrics.HR@10" in text and "x, y" in cells


def test_nested_values_are_flattened_never_printed_raw() -> None:
    from shopseq.report.elements import cell_text, flatten_records

    rows = flatten_records([{"a": {"b": 1, "c": {"d": 2.5}}, "e": [1, 2], "f": {}}])
    assert rows == [{"a.b": 1, "a.c.d": 2.5, "e": [1, 2], "f": None}]
    assert cell_text([1, 2]) == "1, 2" and cell_text([{"x": 1}]) == "1 entries"
    assert cell_text({"k": 0.5}) == "k: 0.5" and cell_text({}) == "–"


def test_a_new_section_is_one_builder_in_the_list(prepared_store_path: Path) -> None:
    from shopseq.report import SECTIONS, ReportConfig, Section, build_report
    from shopseq.store import open_store

    def hello(page, ctx) -> None:
        page.section("hello", "Hello", "", f"<p>{ctx.segments.n_users} users</p>")

    sections = (*SECTIONS[:1], Section("hello", hello))
    with open_store(prepared_store_path, read_only=True, threads=1) as store:
        text, summary = build_report(store, ReportConfig(), sections)
    assert '<section id="hello">' in text and "users</p>" in text
    assert list(summary.seconds) == ["profile", "hello"]
