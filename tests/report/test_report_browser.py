"""Open the report in a real headless Chromium and check that every chart is drawn."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "test-artifacts" / "report.png"  # one per report: <fixture>.png
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "Chromium not found (install Debian's 'chromium' package: apt-get install -y chromium)"
    )


@pytest.mark.slow
@pytest.mark.parametrize("which", ["report_html", "results_report_html"])
def test_report_renders_every_chart_in_headless_chromium(which: str, request):
    report_html: Path = request.getfixturevalue(which)
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install 'shopseq[browser]')"
    )
    executable = _chromium()
    expected = int(re.search(r'data-figures="(\d+)"', report_html.read_text()).group(1))
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report_html.as_uri())
            page.wait_for_function(
                f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {expected}",
                timeout=60_000,
            )
            drawn = page.evaluate(
                """() => [...document.querySelectorAll('.js-plotly-plot')].map(d => ({
                    svg: d.querySelectorAll('svg.main-svg').length,
                    marks: d.querySelectorAll(
                        '.trace, .sankey-node, .hm, .funnel, .bars .point, path.js-line'
                    ).length + d.querySelectorAll('image').length,
                    width: d.getBoundingClientRect().width,
                }))"""
            )
            # Text of every table cell as the reader sees it.
            cells = page.evaluate(
                "() => [...document.querySelectorAll('td')].map(td => td.innerText.trim())"
            )
            page.wait_for_load_state("load")
            page.wait_for_timeout(500)  # the charts are fitted to their boxes on 'load'
            # Pairs of a drawn chart and a table (or another chart) that overlap on screen (a
            # chart drawn wider than its column ran under the Dataset section's table).
            overlaps = page.evaluate(
                """() => {
                    const plot = e => e.closest('.js-plotly-plot');
                    const boxes = [...document.querySelectorAll(
                        '.js-plotly-plot .main-svg, table.t')]
                        .map(e => [e, e.getBoundingClientRect()]);
                    const out = [];
                    const n = boxes.length;
                    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) {
                        const [ea, a] = boxes[i], [eb, b] = boxes[j];
                        if (plot(ea) && plot(ea) === plot(eb)) continue;  // layers of one chart
                        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
                        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
                        if (w > 2 && h > 2) out.push([ea.closest('section').id, w, h]);
                    }
                    return out;
                }"""
            )
            shot = SCREENSHOT.with_name(f"{which}.png")
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert all(url.startswith(("file:", "data:", "about:")) for url in requests), requests
    assert len(drawn) == expected
    for i, chart in enumerate(drawn):
        assert chart["svg"] >= 1, f"chart {i + 1} has no SVG"
        assert chart["marks"] >= 1, f"chart {i + 1} drew nothing"
        assert chart["width"] > 300, f"chart {i + 1} is squeezed to {chart['width']} px"
    assert shot.stat().st_size > 50_000
    assert overlaps == [], overlaps
    # No section shows a Python dict or list as cell text (nested values are flattened).
    raw = [c for c in cells if re.match(r"^[\[{]", c) or re.search(r"'[^']*': ", c)]
    assert raw == [], raw[:5]
