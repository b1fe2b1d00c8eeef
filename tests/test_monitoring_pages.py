"""The monitoring pages (model/monitoring/: svg, page, batch_page, collect, dashboard, cli), in Chromium.

The outside oracle is a real browser: Debian's headless Chromium opens each page from disk and
must see no console error and no request but the page itself (the pages promise to be
self-contained), and every chart must have a size and drawn marks. A negative control shows the
request check catches a page that fetches. The data come from the real producers
(devstack/monitoring_samples.py: DriftCounts, estimate_probabilities, quality, compare_joined,
period_documents on the bank rows) plus hostile and broken documents. Pure-Python tests cover
escaping, bounded size, skipped documents, empty models and the CLI.

Chromium is skipped, with the reason, when /usr/bin/chromium is absent locally; under CI=true its
absence fails the tests (scripts/bootstrap.sh --server installs it).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from devstack.dashboard_screenshot import CHROMIUM, chromium
from devstack.monitoring_samples import Samples, write_samples
from lake.paths import drift_path, estimate_path, quality_path
from model.cli import main as model_cli
from model.drift import DriftCounts
from model.monitoring.batch_page import bin_labels, categories, render_batch_page
from model.monitoring.collect import DashboardData, Document, collect
from model.monitoring.dashboard import MAX_BATCHES, render_dashboard
from model.monitoring.page import CSP
from model.reference import build_reference
from model.registry import FolderStore
from model.schema import InputSchema

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
GENERATED = "2026-10-19T06:00:00+00:00"
HOSTILE = "<script>alert(1)</script>"
HOSTILE_CATEGORY = '"><img src=x onerror=alert(2)>'


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Samples:
    """Twelve days of batches on the bank rows: a promotion, a rollback, drift from day 8, two weeks."""
    return write_samples(tmp_path_factory.mktemp("samples"), days=12)


@pytest.fixture(scope="module")
def data(samples: Samples) -> DashboardData:
    return collect(samples.monitoring, samples.model, samples.registry)


def _toy(rows: int, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        HOSTILE: rng.normal(shift, 1.0, rows),
        "count": rng.integers(0, 30, rows).astype(float),
        HOSTILE_CATEGORY: rng.choice(["blue", "green", HOSTILE], rows, p=[0.5, 0.3, 0.2]),
    })  # fmt: skip


TOY = InputSchema("toy", (HOSTILE, "count"), {HOSTILE_CATEGORY: ("blue", "green", HOSTILE)})


def _toy_batch(
    reference: dict[str, Any], rows: int, shift: float = 0.0
) -> tuple[DriftCounts, dict[str, Any]]:
    frame = _toy(rows, seed=rows, shift=shift)
    if rows:
        frame.loc[frame.index[:5], HOSTILE_CATEGORY] = "</svg><script>alert(3)</script>"  # unseen
    counts = DriftCounts(reference)
    counts.add(frame, np.full(rows, 0.2, dtype=np.float32))
    context = {"input": {"blob": f"{HOSTILE}.csv", "etag": "0x1"}, "model": {"name": "toy", "version": "1"},
               "scored_at": "2026-10-01T02:00:00+00:00"}  # fmt: skip
    return counts, {**context, **counts.summary()}


@pytest.fixture(scope="module")
def toy_reference() -> dict[str, Any]:
    frame = _toy(5000)
    return build_reference(frame, TOY, np.random.default_rng(1).beta(2, 8, 5000))


class Tags(HTMLParser):
    """Every tag and attribute a browser would see."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(page)
    return parser.tags


def _assert_inert(page: str) -> None:
    """No script, no handler, nothing fetched: what a hostile name would need to do harm."""
    tags = _tags(page)
    assert not [t for t, _ in tags if t in {"script", "img", "iframe", "object", "embed", "form"}]
    assert all(not k.startswith("on") for _, attrs in tags for k in attrs), "an event handler attribute"
    links = [a for t, a in tags if t == "link"]
    assert links == [{"rel": "icon", "href": "data:,"}]
    assert f'content="{CSP}"' in page


# ------------------------------------------------------------------------------------- pure Python


def test_hostile_names_are_escaped_on_the_batch_page_and_the_dashboard(toy_reference: dict[str, Any]) -> None:
    counts, report = _toy_batch(toy_reference, 3000, shift=1.0)
    assert report["drifted_features"] == [HOSTILE]  # hostile names reach the verdict, the tables, the charts
    assert report["features"][HOSTILE_CATEGORY]["unseen"] == ["</svg><script>alert(3)</script>"]
    page = render_batch_page(toy_reference, counts, report)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "onerror=alert(2)&gt;" in page
    assert "&lt;/svg&gt;&lt;script&gt;alert(3)" in page
    _assert_inert(page)
    document = Document("x", "2026-10-01/x", pd.Timestamp(report["scored_at"]).to_pydatetime(), report)
    data = DashboardData(model=HOSTILE, source=HOSTILE, drift=(document,))
    dashboard = render_dashboard(data, stack=HOSTILE, generated_at=HOSTILE)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dashboard
    _assert_inert(dashboard)
    rows = re.findall(r'<g class="row" data-row="([^"]*)"', dashboard)
    assert rows == [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "count",
        "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;",
    ]


def test_batch_page_bytes_do_not_depend_on_the_rows_scored(toy_reference: dict[str, Any]) -> None:
    sizes = {}
    for rows in (1_200, 60_000):
        counts, report = _toy_batch(toy_reference, rows)
        sizes[rows] = len(render_batch_page(toy_reference, counts, report).encode())
    assert abs(sizes[60_000] - sizes[1_200]) < 0.01 * sizes[1_200], sizes
    assert max(sizes.values()) < 60_000, sizes


def test_dashboard_bytes_are_bounded_however_long_the_history(data: DashboardData) -> None:
    def repeated(times: int) -> DashboardData:
        base = data.drift[-1]
        drift = tuple(
            dataclasses.replace(
                base, key=f"2026-10-{1 + i // 30:02d}/b{i}", at=base.at + pd.Timedelta(hours=i)
            )
            for i in range(times)
        )
        return dataclasses.replace(data, drift=drift, estimates=())

    sizes = {
        n: len(render_dashboard(repeated(n), stack="prod", generated_at=GENERATED))
        for n in (MAX_BATCHES, 400)
    }
    assert sizes[400] < sizes[MAX_BATCHES] * 1.02, sizes
    assert len(render_dashboard(data, stack="prod", generated_at=GENERATED).encode()) < 200_000


def test_bins_and_categories_follow_the_reference_shapes() -> None:
    assert bin_labels([29, 32.5, 60]) == ["< 29", "29 to 32.5", "32.5 to 60", "≥ 60"]  # 3 inner edges, 4 bins
    assert bin_labels([]) == ["all values"]
    names, ref, got, unseen = categories({"a": 0.75, "b": 0.25}, {"a": 2, "z": 2})
    assert (names, ref, got, unseen) == (
        ["a", "b", "z"],
        [0.75, 0.25, 0.0],
        [0.5, 0.0, 0.5],
        [False, False, True],
    )
    many = {f"c{i:03d}": 1 / 200 for i in range(200)}
    names, ref, _, _ = categories(many, {"c000": 10})
    assert len(names) == 30 and names[-1] == "(171 more)" and sum(ref) == pytest.approx(1.0)


def test_batch_page_without_reference_or_rows_still_renders(toy_reference: dict[str, Any]) -> None:
    bare = DriftCounts({})  # a version registered without reference.json, an empty file
    page = render_batch_page({}, bare, bare.summary())
    assert "no reference.json" in page and "No row scored and no reference" in page
    assert 'class="chart"' not in page
    counts, report = _toy_batch(toy_reference, 0)
    assert report["status"] == "empty"
    page = render_batch_page(toy_reference, counts, report)
    assert "No row was scored" in page and page.count('class="chart"') == 4  # the scores and 3 features


def test_collect_reads_every_kind_sorted_and_skips_what_does_not_parse(
    samples: Samples, tmp_path: Path
) -> None:
    data = collect(samples.monitoring, samples.model, samples.registry)
    assert len(data.drift) == len(data.estimates) == 12 and data.skipped == ()
    assert [d.at for d in data.drift] == sorted(d.at for d in data.drift)
    assert [q.key for q in data.quality] == ["2026-W37", "2026-W38"]
    moves = [(p.stage, p.version, p.kind) for p in data.promotions]
    assert moves[-2:] == [("dev", "3", "promote"), ("dev", "2", "rollback")] and len(moves) == 8
    assert {v.version for v in data.versions} == {"1", "2", "3"}

    store = FolderStore(tmp_path)
    for document in data.drift[:2] + data.estimates[:2] + data.quality:
        store.create(document.path, json.dumps(document.body).encode())
    store.create(drift_path(samples.model, "2026-10-01", "broken"), b"{not json")
    store.create(estimate_path(samples.model, "2026-10-01", "shape"), json.dumps({"roc_auc": 1}).encode())
    store.create(quality_path(samples.model, "2026-W40"), json.dumps({"versions": {"1": {}}}).encode())
    store.create(f"{samples.model}/drift/not-a-day/x.json", b"{}")  # a stray file: not where drift goes
    store.create(drift_path(samples.model, "2026-10-01", "page").replace(".json", ".html"), b"<html>")
    partial = collect(store, samples.model)
    assert (len(partial.drift), len(partial.estimates), len(partial.quality)) == (2, 2, 2)
    assert len(partial.skipped) == 4, partial.skipped
    page = render_dashboard(partial, stack="dev", generated_at=GENERATED)
    assert "4 document(s) skipped" in page and "broken.json" in page


def test_a_model_with_nothing_scored_gets_a_page_that_says_so(samples: Samples, tmp_path: Path) -> None:
    data = collect(FolderStore(tmp_path / "none"), samples.model, samples.registry)
    assert data.empty and data.promotions  # promoted, never scored
    page = render_dashboard(data, stack="prod", generated_at=GENERATED)
    assert "Nothing scored yet" in page and "Promotions" in page and 'class="chart"' not in page


def test_cli_writes_index_html_and_prints_its_path(
    samples: Samples, data: DashboardData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry, monitoring = samples.registry.store.describe(), samples.monitoring.describe()
    out = tmp_path / "site"
    argv = ["--registry", registry, "monitor", "dashboard", "--out", str(out), "--monitoring", monitoring]
    assert model_cli([*argv, "--stack", "preprod", "--model", samples.model]) == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    page = (out / "index.html").read_text()
    assert "bank-marketing · preprod" in page and 'data-chart="drift"' in page
    in_range = [p for p in data.promotions if p.at >= data.drift[0].at]
    assert page.count('<g class="marker">') == len(in_range) == 5  # v2 up the stages, v3 in dev and back


# ---------------------------------------------------------------------------------------- Chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is absent: apt-get install chromium (scripts/bootstrap.sh --server does)"
        if IN_CI:
            pytest.fail(f"{reason}; CI must run the browser checks")
        pytest.skip(reason)
    with chromium() as context:
        yield context


@dataclasses.dataclass
class Opened:
    requests: list[str]
    failed: list[str]
    errors: list[str]
    charts: list[dict[str, Any]]


CHARTS_JS = """() => Array.from(document.querySelectorAll('svg.chart')).map(svg => {
  const box = svg.getBoundingClientRect();
  const marks = Array.from(svg.querySelectorAll('.mark'))
    .filter(m => ['path', 'rect', 'circle', 'line'].includes(m.tagName));
  const drawn = marks.filter(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0; });
  return {name: svg.dataset.chart, width: box.width, height: box.height, marks: marks.length,
          drawn: drawn.length, rows: svg.querySelectorAll('g.row').length};
})"""


def _open(context: Any, path: Path) -> Opened:
    page = context.new_page()
    seen = Opened([], [], [], [])
    page.on("request", lambda r: seen.requests.append(r.url))
    page.on("requestfailed", lambda r: seen.failed.append(f"{r.url} {r.failure}"))
    page.on("console", lambda m: seen.errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: seen.errors.append(str(e)))
    page.goto(path.resolve().as_uri(), wait_until="load")
    seen.charts = page.evaluate(CHARTS_JS)
    page.close()
    return seen


def _check(context: Any, path: Path) -> list[dict[str, Any]]:
    opened = _open(context, path)
    assert opened.requests == [path.resolve().as_uri()], "a request left the page"
    assert opened.failed == [] and opened.errors == []
    for chart in opened.charts:
        assert chart["width"] > 100 and chart["height"] > 50, chart
        assert chart["marks"] > 0 and chart["drawn"] > 0, chart
    return opened.charts


def test_pages_open_in_chromium_with_no_request_no_error_and_drawn_charts(
    browser: Any, samples: Samples, data: DashboardData, toy_reference: dict[str, Any], tmp_path: Path
) -> None:
    pages = {
        "dashboard": render_dashboard(data, stack="prod", generated_at=GENERATED),
        "empty": render_dashboard(
            DashboardData(samples.model, "nowhere"), stack="dev", generated_at=GENERATED
        ),
        "batch": render_batch_page(samples.reference, samples.counts, samples.report),
        "hostile": render_batch_page(toy_reference, *_toy_batch(toy_reference, 800, shift=1.0)),
    }
    charts = {}
    for name, html in pages.items():
        (tmp_path / f"{name}.html").write_text(html, encoding="utf-8")
        charts[name] = _check(browser, tmp_path / f"{name}.html")
    by_name = {c["name"]: c for c in charts["dashboard"]}
    assert set(by_name) == {"quality", "coverage", "drift", "rows"}
    features = {name for d in data.drift for name in d.body["features"]}
    assert by_name["drift"]["rows"] == len(features) == 16
    assert by_name["drift"]["marks"] == 16 * len(data.drift)  # a cell per feature and batch
    assert charts["empty"] == []
    assert [c["name"] for c in charts["batch"]][:1] == ["scores"] and len(charts["batch"]) == 17
    assert len(charts["hostile"]) == 4


def test_the_request_check_catches_a_page_that_fetches(browser: Any, tmp_path: Path) -> None:
    """Negative control: an external image is seen as a request, and the pages' CSP blocks it."""
    leaky = tmp_path / "leaky.html"
    leaky.write_text('<!DOCTYPE html><html><body><img src="http://192.0.2.1/x.png"></body></html>')
    opened = _open(browser, leaky)
    assert "http://192.0.2.1/x.png" in opened.requests
    guarded = tmp_path / "guarded.html"
    head = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
    guarded.write_text(
        f'<!DOCTYPE html><html><head>{head}</head><body><img src="http://192.0.2.1/x.png"></body></html>'
    )
    opened = _open(browser, guarded)
    assert opened.failed == ["http://192.0.2.1/x.png csp"]  # seen, and blocked before the network
    assert any("violates the following Content Security Policy" in e for e in opened.errors)
