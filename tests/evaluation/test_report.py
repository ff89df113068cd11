"""The evaluation report: what the page says, that it is one self-contained file of bounded size, and that it loads
and draws every chart in a real headless Chromium without errors or network requests."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mlsm.evaluation.report import (
    ReportData,
    ReportDrift,
    ReportDriftRow,
    ReportHistogram,
    ReportModel,
    render_report,
)

from ..browser import BrowserUnavailable, Page, open_page
from .report_data import runs_only_report_data, synthetic_report_data


@pytest.fixture(scope="module")
def full() -> ReportData:
    return synthetic_report_data()


class _Links(HTMLParser):
    """Every URL-bearing attribute and every tag name in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "poster", "data", "action", "formaction") and value is not None:
                self.urls.append((tag, name, value))


def _text(page: str) -> str:
    """The page without its scripts and styles: roughly what a reader sees."""
    page = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_the_page_is_one_file_that_references_nothing_outside(full: ReportData) -> None:
    page = render_report(full)
    links = _Links()
    links.feed(page)
    assert [u for u in links.urls if not u[2].startswith("#")] == []  # in-page anchors only
    assert "link" not in links.tags and "iframe" not in links.tags and "img" not in links.tags
    assert re.search(r"@import|url\(\s*['\"]?(https?:)?//", page) is None  # no fetched fonts or stylesheets
    assert "echarts.init" in page and "setOption" in page  # the charting library itself is inline


def test_headline_states_the_verdict_and_captions_put_numbers_in_words(full: ReportData) -> None:
    page = render_report(full)
    text = _text(page)
    comparison = full.comparisons[0]
    headline = re.search(r"<h1>(.*?)</h1>\s*<p class='detail'>(.*?)</p>", page)
    assert headline is not None
    assert headline.groups() == (
        "gbm@2.0 ranks leads better than gbm@1.0",
        "AUC +0.044 (95% CI +0.038 to +0.050), p &lt; 0.001, on 20,000 leads",
    )
    challenger = next(m for m in full.models if m.model == comparison.b)
    top = challenger.deciles[0]
    average = challenger.positives / challenger.n
    expected = (
        f"Of the leads gbm@2.0 puts in its top 10%, {round(100 * top.rate):.0f}% converted — {top.lift:.1f}× "
        f"the average of {round(100 * average):.0f}%."
    )
    assert expected in text
    second = challenger.deciles[1]
    assert f"Calling the top 20% of leads ranked by gbm@2.0 reaches {round(100 * second.gain):.0f}% of everyone" in text
    assert comparison.entering is not None and comparison.leaving is not None
    assert (
        f"Switching from gbm@1.0 to gbm@2.0 puts {comparison.entering.n:,} different leads in the top 10%: "
        f"{round(100 * comparison.entering.rate):.0f}% of them converted, against "
        f"{round(100 * comparison.leaving.rate):.0f}% of the {comparison.leaving.n:,} they replace." in text
    )
    assert full.notes[0] in text
    assert "1 input changed enough to act on: time_on_site (PSI 0.31)" in text


def test_drift_status_is_written_out_and_coloured(full: ReportData) -> None:
    page = render_report(full)
    assert full.drift is not None
    for row in full.drift.rows:
        label = row.name if row.kind == "field" else f"score of {row.name}"
        match = re.search(
            rf"<tr class='status-{row.status}' style='background:#[0-9a-f]{{6}}'><td>{re.escape(label)}</td>.*?</tr>",
            page,
        )
        assert match, f"no {row.status} row for {label}"
        assert f">{row.status.capitalize()}</span>" in match.group(0)  # the word, not only the colour
    backgrounds = set(re.findall(r"<tr class='status-\w+' style='background:(#[0-9a-f]{6})'>", page))
    assert len(backgrounds) == 3  # stable, watch and act look different too


def test_a_store_without_outcomes_shows_runs_and_scores_and_says_what_is_missing() -> None:
    page = render_report(runs_only_report_data())
    text = _text(page)
    assert "No outcomes yet: this report shows what the models said, not whether they were right." in text
    assert "mlsm outcomes load" in text
    assert "No drift computed" in text
    ids = re.findall(r'id="(chart-[\w-]+)" data-chart', page)
    assert ids == ["chart-hist-0", "chart-hist-1", "chart-hist-2", "chart-runs", "chart-errors"]


def test_an_empty_store_gives_a_page_that_says_so() -> None:
    page = render_report(ReportData())
    text = _text(page)
    assert "Nothing to report yet" in text
    assert "No runs in this store yet" in text
    assert re.findall(r"data-chart", page) == []


def test_the_page_does_not_grow_with_the_number_of_leads(full: ReportData) -> None:
    """Curves and histograms handed over at full resolution (one point per lead) are thinned for drawing."""
    small = render_report(full)
    n = 200_000
    fine = [i / n for i in range(n + 1)]
    raw_models = [replace(m, roc_fpr=fine, roc_tpr=[min(1.0, 3 * x) for x in fine]) for m in full.models]
    raw_histograms = [
        ReportHistogram(h.model, [i / 10_000 for i in range(10_001)], [7] * 10_000) for h in full.histograms
    ]
    big = render_report(replace(full, models=raw_models, histograms=raw_histograms))
    assert len(big) < len(small) * 1.1


def test_names_from_the_store_are_shown_as_text_never_run(full: ReportData) -> None:
    evil = "x</script><script>alert(1)</script>"
    data = replace(
        full,
        models=[replace(full.models[0], model=evil)],
        comparisons=[],
        histograms=[],
        drift=ReportDrift("a", "b", [ReportDriftRow(evil, 0.3, "act")]),
    )
    page = render_report(data)
    links = _Links()
    links.feed(page)
    assert links.tags.count("script") == 3  # the chart data, the charting library, the page's own script
    assert "x&lt;/script&gt;&lt;script&gt;alert(1)" in page  # shown as text
    specs = page.split("<script id='mlsm-charts' type='application/json'>", 1)[1].split("</script>", 1)[0]
    assert "<" not in specs and ">" not in specs  # nothing in the chart data can close its script element
    assert evil in json.dumps(json.loads(specs), ensure_ascii=False)  # the name itself is intact


def test_inconsistent_data_is_refused_naming_the_part() -> None:
    with pytest.raises(ValueError, match=r"histogram of 'gbm@1.0': 3 edges for 3 counts; give one edge more"):
        render_report(ReportData(histograms=[ReportHistogram("gbm@1.0", [0, 0.5, 1], [1, 2, 3])]))
    with pytest.raises(ValueError, match=r"ROC of 'gbm@1.0': 2 false-positive rates for 1 true-positive"):
        render_report(ReportData(models=[ReportModel("gbm@1.0", 10, 2, roc_fpr=[0, 1], roc_tpr=[1])]))
    with pytest.raises(ValueError, match=r"status 'bad' is not one of stable, watch, act"):
        render_report(ReportData(drift=ReportDrift("a", "b", [ReportDriftRow("age", 0.1, "bad")])))


# --- in a real browser -------------------------------------------------------------------------------------------


@pytest.fixture
def browse(tmp_path: Path) -> Iterator[object]:
    """Write a report into tmp_path and open it in headless Chromium; skips when Chromium cannot start."""
    opened: list[Page] = []

    def go(data: ReportData, name: str, width: int = 1280) -> Page:
        path = tmp_path / f"{name}.html"
        path.write_text(render_report(data), encoding="utf-8")
        try:
            page = open_page(path, width=width)
        except BrowserUnavailable as exc:
            pytest.skip(f"headless Chromium is not available ({exc}); scripts/ensure-chromium installs it")
        opened.append(page)
        return page

    yield go
    for page in opened:
        page.close()


def _wait_drawn(page: Page) -> tuple[int, list[str]]:
    deadline = time.monotonic() + 30
    while True:
        total, missing = page.undrawn()
        if not missing or time.monotonic() > deadline:
            return total, missing
        time.sleep(0.1)


@pytest.mark.slow
def test_the_full_report_draws_every_chart_offline_without_errors(browse, full: ReportData, tmp_path: Path) -> None:
    page = browse(full, "report")
    total, missing = _wait_drawn(page)
    assert (total, missing) == (11, [])  # swap, gain, lift, ROC, calibration, 3 histograms, runs, errors, drift
    assert page.errors == []
    assert [m for m in page.messages if m.level == "warning"] == []
    assert page.requests == [page.url]  # the file itself, nothing else
    assert page.failed_requests == []
    shot = page.screenshot(tmp_path / "report.png")
    assert shot.stat().st_size > 50_000
    # a reader hovering the lift chart gets the numbers of that score band for every model
    x, y, w, h = page.evaluate(
        "(() => { const el = document.getElementById('chart-lift'); el.scrollIntoView({block: 'center'});"
        " const r = el.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()"
    )
    page.mouse_move(x + w * 0.14, y + h * 0.5)
    tip = page.wait_for(
        "[...document.querySelectorAll('#chart-lift div')].map(d => d.innerText).find(t => t.includes('band 1')) || ''",
        timeout=10,
    )
    assert "band 1: top 10% of scores" in tip
    for model in ("gbm@1.0", "gbm@2.0", "rules@1.0"):
        assert model in tip
    page.screenshot(tmp_path / "report-hover.png", full_page=False)
    # clicking a model's name above a chart hides that model there, clicking again shows it
    selected = (
        "echarts.getInstanceByDom(document.getElementById('chart-gain')).getOption().legend[0].selected['rules@1.0']"
    )
    key = "document.querySelector(\"[data-keys-for='chart-gain'] button[data-name='rules@1.0']\")"
    assert page.evaluate(f"{key}.click(), [{selected}, {key}.getAttribute('aria-pressed')]") == [False, "false"]
    assert page.evaluate(f"{key}.click(), [{selected}, {key}.getAttribute('aria-pressed')]") == [True, "true"]


@pytest.mark.slow
def test_reports_without_outcomes_or_data_load_cleanly(browse, tmp_path: Path) -> None:
    for name, data, charts in (("runs-only", runs_only_report_data(), 5), ("empty", ReportData(), 0)):
        page = browse(data, name)
        assert _wait_drawn(page) == (charts, [])
        assert page.errors == []
        assert page.requests == [page.url]
        page.screenshot(tmp_path / f"{name}.png")


@pytest.mark.slow
def test_on_a_phone_the_page_fits_the_screen(browse, full: ReportData, tmp_path: Path) -> None:
    page = browse(full, "narrow", width=390)
    assert _wait_drawn(page) == (11, [])
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    widest = page.evaluate(
        "Math.max(...[...document.querySelectorAll('[data-chart] svg')].map(s => s.getBoundingClientRect().right))"
    )
    assert widest <= 390
    page.screenshot(tmp_path / "narrow.png")
