"""One model's monitoring dashboard on one stack: quality over time, drift per feature, batches, promotions.

The questions it answers, top to bottom: is the model still as good as when it was registered
(realised ROC AUC per period with its bootstrap interval, beside the label-free estimate of every
batch, which is there weeks before the outcomes are); how much of that is known yet (label
coverage); which inputs moved and when (a heatmap of each feature's drift over the batches); how
much was scored and rejected; and which version served when (promotions, also as markers on the
time axis). It is drawn from the documents `model.monitoring.collect` gathers, as counts and
aggregates only, and the page's size is bounded: the last `MAX_BATCHES` batches and
`MAX_PERIODS` periods are drawn, however long the history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from model.monitoring.batch_page import DISTANCES
from model.monitoring.collect import DashboardData, Document, parse_time
from model.monitoring.page import Markup, badge, document, status_legend, table
from model.monitoring.svg import (
    PALETTE,
    Cell,
    Group,
    Marker,
    Point,
    Scale,
    Series,
    heatmap,
    line_chart,
    stacked_bars,
    time_ticks,
)
from model.monitoring.text import esc, number, percent
from model.registry import STAGES

MAX_BATCHES = 60
MAX_PERIODS = 26
DAY = 86400.0
DRIFT_SCALE = Scale(((0.0, "#f7fafc"), (0.5, "#faf089"), (1.0, "#f6ad55"), (2.0, "#c53030")),
                    "value ÷ threshold (tests: effect ÷ what the test needs); 1 = the threshold")  # fmt: skip


@dataclass(frozen=True)
class Batch:
    """A scored batch: its drift report and its estimate (either may be missing), joined on `day/name`."""

    key: str
    at: float
    drift: Mapping[str, Any] | None
    estimate: Mapping[str, Any] | None

    @property
    def version(self) -> str:
        body = self.drift or self.estimate or {}
        return str((body.get("model") or {}).get("version", "?"))

    @property
    def rows(self) -> tuple[int, int | None]:
        """(rows scored, rows rejected); rejected is known from the estimate's batch counts only."""
        counts = (self.estimate or {}).get("batch") or {}
        if "rows_scored" in counts:
            return int(counts["rows_scored"]), int(counts.get("rows_rejected") or 0)
        return int((self.drift or {}).get("rows") or 0), None


def batches(data: DashboardData) -> list[Batch]:
    """Drift reports and estimates of the same batch side by side, oldest first."""
    joined: dict[str, dict[str, Document]] = {}
    for kind, documents in (("drift", data.drift), ("estimate", data.estimates)):
        for doc in documents:
            joined.setdefault(doc.key, {})[kind] = doc
    out = []
    for key, docs in joined.items():
        first = docs.get("drift") or docs["estimate"]
        out.append(Batch(key, first.at.timestamp(), _body(docs.get("drift")), _body(docs.get("estimate"))))
    return sorted(out, key=lambda b: (b.at, b.key))


def _body(doc: Document | None) -> Mapping[str, Any] | None:
    return None if doc is None else doc.body


def label(batch: Batch) -> str:
    """A batch's short label under a chart: its day, and its name when the name is not just the day."""
    day, _, name = batch.key.partition("/")
    return day[5:] if day in name else f"{day[5:]} {name}"


def _versions(names: Sequence[str]) -> list[str]:
    return sorted(set(names), key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))


def tint(colour: str, amount: float = 0.45) -> str:
    """The colour mixed with white: the estimate's shade of its version's colour."""
    rgb = [round(int(colour[k : k + 2], 16) * (1 - amount) + 255 * amount) for k in (1, 3, 5)]
    return "#" + "".join(f"{c:02x}" for c in rgb)


def severity(entry: Mapping[str, Any]) -> float | None:
    """How far a feature went towards drifting: 1 at its threshold (distance) or cut-off (test)."""
    if entry.get("value") is None:
        return None
    if entry.get("statistic") in DISTANCES:
        threshold = entry.get("threshold")
        return float(entry["value"]) / threshold if threshold else None
    effect, needed = entry.get("effect"), entry.get("detectable")
    return float(effect) / needed if effect is not None and needed else None


def _period_span(record: Mapping[str, Any]) -> tuple[float, float]:
    return parse_time(record["period_start"]).timestamp(), parse_time(record["period_end"]).timestamp() + DAY


def _periods(data: DashboardData) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(period, version, record) of the last MAX_PERIODS periods, oldest first."""
    return [
        (str(doc.key), str(version), record)
        for doc in data.quality[-MAX_PERIODS:]
        for version, record in doc.body["versions"].items()
    ]


def _x_range(data: DashboardData, shown: list[Batch]) -> tuple[float, float]:
    times = [b.at for b in shown] + [t for _, _, r in _periods(data) for t in _period_span(r)]
    lo, hi = min(times), max(times)
    pad = max((hi - lo) * 0.03, 3600.0)
    return lo - pad, hi + pad


def _markers(data: DashboardData, x_range: tuple[float, float]) -> list[Marker]:
    markers = []
    for move in data.promotions:
        at = move.at.timestamp()
        if move.kind in ("promote", "rollback") and x_range[0] <= at <= x_range[1]:  # what moved a stage
            label = f"{'↩ ' if move.kind == 'rollback' else ''}v{move.version} {move.stage}"
            tip = f"{move.at:%Y-%m-%d %H:%M} {move.kind} {move.stage} -> v{move.version} by {move.actor}"
            markers.append(Marker(at, label, tip + (f": {move.reason}" if move.reason else "")))
    return markers


def _interval(figure: Mapping[str, Any] | None, key: str = "expected") -> str:
    """`value [low, high]` on one line, or the figure's status when it has no value."""
    figure = figure or {}
    if figure.get(key) is None:
        return str(figure.get("status") or "–")
    return f"{number(figure[key])}\u00a0[{number(figure.get('low'))},\u00a0{number(figure.get('high'))}]"


def _estimated(shown: list[Batch], version: str) -> list[Point]:
    points = []
    for b in shown:
        auc = (b.estimate or {}).get("roc_auc") or {}
        if b.version == version and auc.get("status") == "ok":
            text = f"{b.key} (v{version}): expected ROC AUC {_interval(auc)}"
            points.append(Point(b.at, auc["expected"], auc["low"], auc["high"], text))
    return points


def _realised(periods: list[tuple[str, str, Mapping[str, Any]]], version: str) -> list[Point]:
    points = []
    for period, v, record in periods:
        auc = (record.get("metrics") or {}).get("roc_auc") or {}
        if v == version and record.get("status") == "ok" and auc.get("value") is not None:
            start, end = _period_span(record)
            compared = ((record.get("estimate_vs_realised") or {}).get("figures") or {}).get("roc_auc") or {}
            flag = "; outside the estimate's interval" if compared.get("outside") else ""
            outcomes = number((record.get("counts") or {}).get("labelled"), 9)
            text = (
                f"v{version} {period}: realised ROC AUC {_interval(auc, 'value')}, {outcomes} outcomes{flag}"
            )
            points.append(Point((start + end) / 2, auc["value"], auc["low"], auc["high"], text))
    return points


def quality_chart(data: DashboardData, shown: list[Batch], x_range: tuple[float, float]) -> str:
    """Realised ROC AUC per period and version beside the estimate of each batch, on one time axis;
    the ROC AUC each version was registered with as a dashed line, promotions as markers."""
    periods = _periods(data)
    series = []
    for i, version in enumerate(_versions([v for _, v, _ in periods] + [b.version for b in shown])):
        colour = PALETTE[i % len(PALETTE)]
        estimated, realised = _estimated(shown, version), _realised(periods, version)
        baselines = [(r.get("baseline") or {}).get("roc_auc") for _, v, r in periods if v == version]
        baseline = next((b for b in baselines if b is not None), None)
        if estimated:
            series.append(Series(f"v{version} estimate (per batch)", estimated, tint(colour), "band"))
        if realised:
            series.append(Series(f"v{version} realised (per period)", realised, colour, "whiskers"))
        if realised and baseline is not None:
            ends = [Point(realised[0].x, baseline), Point(realised[-1].x, baseline)]
            series.append(Series(f"v{version} at registration", ends, colour, "dashed"))
    if not series:
        return '<p class="note">No ROC AUC yet: no estimate of enough rows, no period of enough outcomes.</p>'
    values = [v for s in series for p in s.points for v in (p.y, p.low, p.high) if v is not None]
    y_range = (max(0.0, min(values) - 0.02), min(1.0, max(values) + 0.02))
    subtitle = (
        "bars: 95% bootstrap interval of a period; band: 95% interval of the estimate; dashed: promotions"
    )
    return line_chart("quality", "ROC AUC: realised (from outcomes) and estimated (label-free)", series,
                      x_label="scored at (UTC)", y_label="ROC AUC", x_range=x_range, y_range=y_range,
                      x_ticks=time_ticks(*x_range), markers=_markers(data, x_range),
                      subtitle=subtitle)  # fmt: skip


def coverage_chart(data: DashboardData, x_range: tuple[float, float]) -> str:
    """The share of each period's predictions whose outcome has arrived, per version."""
    periods = _periods(data)
    series = []
    for i, version in enumerate(_versions([v for _, v, _ in periods])):
        points = []
        for period, v, record in periods:
            if v == version and record.get("coverage") is not None:
                start, end = _period_span(record)
                counts = record.get("counts") or {}
                known = ", ".join(
                    f"{number(counts.get(k), 9)} {k}" for k in ("labelled", "superseded", "pending")
                )
                text = f"v{version} {period}: coverage {percent(record['coverage'])} ({known})"
                points.append(Point((start + end) / 2, float(record["coverage"]), tip=text))
        if points:
            series.append(Series(f"v{version}", points, PALETTE[i % len(PALETTE)], "band"))
    if not series:
        return '<p class="note">No quality period yet: no outcome has been joined.</p>'
    return line_chart("coverage", "Label coverage per period", series, x_label="period (UTC)",
                      y_label="predictions with an outcome", x_range=x_range, x_ticks=time_ticks(*x_range),
                      y_range=(0.0, 1.0), y_format=lambda v: f"{v:.0%}")  # fmt: skip


def drift_heatmap(shown: list[Batch]) -> str:
    """A row per feature, a column per batch: how close each came to its threshold, drifted ones framed."""
    reports = [(b, b.drift["features"]) for b in shown if b.drift is not None]
    features: dict[str, None] = {}
    for _, entries in reports:
        features.update(dict.fromkeys(entries))
    if not features:
        return '<p class="note">No drift report with features yet.</p>'
    cells = []
    for name in features:
        row = []
        for b, entries in reports:
            entry = entries.get(name) or {}
            ratio, drifted = severity(entry), bool(entry.get("drifted"))
            figures = f"{entry.get('statistic', 'absent')} {number(entry.get('value'))} (threshold " + number(
                entry.get("threshold")
            )
            text = (
                f"{name} in {b.key}: {figures}); {number(ratio)} of the way; {'drifted' if drifted else 'ok'}"
            )
            row.append(Cell(ratio, drifted, text))
        cells.append(row)
    columns = [label(b) for b, _ in reports]
    return heatmap("drift", "Drift per feature and batch", list(features), columns, cells,
                   x_label="batch (oldest left)", y_label="feature", scale=DRIFT_SCALE,
                   marked_label="drifted")  # fmt: skip


def rows_chart(shown: list[Batch]) -> str:
    """Rows scored and rejected per batch, stacked."""
    scored = [b.rows[0] for b in shown]
    rejected = [b.rows[1] or 0 for b in shown]
    counted = zip(shown, scored, rejected, strict=True)
    tips = [f"{b.key}: {number(s, 9)} scored, {number(r, 9)} rejected" for b, s, r in counted]
    groups = [
        Group("rows scored", scored, "#2b6cb0", tips=tips),
        Group("rows rejected", rejected, "#c53030", tips=tips),
    ]
    return stacked_bars("rows", "Rows scored and rejected per batch", [label(b) for b in shown], groups,
                        x_label="batch (oldest left)", y_label="rows")  # fmt: skip


def batches_table(shown: list[Batch], limit: int = 20) -> Markup:
    """The last `limit` batches, newest first."""
    rows = []
    for b in reversed(shown[-limit:]):
        report, guess = b.drift or {}, b.estimate or {}
        drifted = [str(f) for f in report.get("drifted_features") or []]
        listed = ", ".join(drifted[:6]) + (f" (+{len(drifted) - 6})" if len(drifted) > 6 else "")
        scored, rejected = b.rows
        scores = report.get("scores") or {}
        rows.append([
            b.key, "v" + b.version, number(scored, 9), "?" if rejected is None else number(rejected, 9),
            badge(report.get("status")) if report else "–", number(report.get("drift_share")),
            listed or "none",
            badge("alert" if scores.get("drifted") else "ok") if scores.get("statistic") else "–",
            _interval(guess.get("roc_auc")), _interval(guess.get("subscribers")),
        ])  # fmt: skip
    headers = ["batch", "version", "rows scored", "rows rejected", "drift", "drift share", "drifted features",
               "scores", "expected ROC AUC", "expected subscribers"]  # fmt: skip
    return table(headers, rows, numeric=(2, 3, 5), wrap=(6,))


def quality_table(data: DashboardData) -> Markup:
    """Every period and version shown, newest first: status, coverage, realised beside estimated."""
    rows = []
    for period, version, record in reversed(_periods(data)):
        compared = (record.get("estimate_vs_realised") or {}).get("figures") or {}
        outside = [name for name, f in compared.items() if (f or {}).get("outside")]
        reasons = "; ".join(str(r) for r in record.get("reasons") or [])
        status = Markup(badge(record.get("status")) + esc(f" {reasons}" if reasons else ""))
        flagged = Markup(badge("outside") + esc(" " + ", ".join(outside))) if outside else ""
        realised = _interval((record.get("metrics") or {}).get("roc_auc"), "value")
        estimated = _interval(compared["roc_auc"]) if compared.get("roc_auc") else "–"
        counts = record.get("counts") or {}
        predicted = number(sum(int(counts.get(k) or 0) for k in ("labelled", "superseded", "pending")))
        baseline = number((record.get("baseline") or {}).get("roc_auc"))
        rows.append([period, "v" + version, status, predicted, percent(record.get("coverage")), realised,
                     estimated, flagged, baseline])  # fmt: skip
    headers = ["period", "version", "status", "rows predicted", "coverage", "realised ROC AUC",
               "estimated (same rows)", "estimate vs realised", "ROC AUC at registration"]  # fmt: skip
    return table(headers, rows, numeric=(3, 4), wrap=(2, 7))


def promotions_table(data: DashboardData) -> Markup:
    """Every decision of the promotion log (refusals too), or the stage records' moves, newest first."""
    rows = []
    for move in reversed(data.promotions):
        gate = move.gate or {}
        checked = (
            f"gate {gate.get('metric')}: {number(gate.get('challenger'))} vs {number(gate.get('champion'))}"
        )
        rows.append([f"{move.at:%Y-%m-%d %H:%M}", move.stage, "v" + move.version, move.kind,
                     "v" + move.previous if move.previous else "–", move.actor,
                     move.reason or (checked if gate else "")])  # fmt: skip
    return table(
        ["when (UTC)", "stage", "version", "kind", "previous", "by", "reason or gate"], rows, wrap=(6,)
    )


def _cards(data: DashboardData, shown: list[Batch]) -> str:
    last = shown[-1] if shown else None
    estimates = [b for b in shown if ((b.estimate or {}).get("roc_auc") or {}).get("status") == "ok"]
    realised = [(p, v, r) for p, v, r in _periods(data) if r.get("status") == "ok"]
    serving = {move.stage: move.version for move in data.promotions if move.stage in STAGES}
    status = badge((last.drift or {}).get("status")) if last and last.drift else "–"
    cards = [
        (status, f"last batch {last.key if last else ''}"),
        (esc(f"{len(data.drift)} / {len(data.estimates)}"), "drift reports / estimates"),
        (esc(_interval((estimates[-1].estimate or {}).get("roc_auc")) if estimates else "–"),
         "last estimated ROC AUC"),
        (esc(_interval((realised[-1][2].get("metrics") or {}).get("roc_auc"), "value") if realised else "–"),
         f"realised ROC AUC {realised[-1][0] if realised else ''}"),
        (esc(", ".join(f"{s} v{v}" for s, v in serving.items()) or "–"), "stages now"),
    ]  # fmt: skip
    inner = "".join(f'<div class="card"><b>{v}</b><span>{esc(k)}</span></div>' for v, k in cards)
    return f'<div class="cards">{inner}</div>'


def _skipped(data: DashboardData) -> str:
    if not data.skipped:
        return ""
    items = "".join(f"<li>{esc(s.path)}: {esc(s.reason)}</li>" for s in data.skipped[:20])
    more = f"<li>… and {len(data.skipped) - 20} more</li>" if len(data.skipped) > 20 else ""
    return (
        f'<section id="skipped"><h2>{len(data.skipped)} document(s) skipped</h2><p class="note">They '
        "could not be read as their writers write them; the rest of the page is complete.</p>"
        f"<ul>{items}{more}</ul></section>"
    )


def render_dashboard(data: DashboardData, *, stack: str, generated_at: str) -> str:
    """The model's dashboard page; a model with no document yet gets a page that says so."""
    title, header = f"{data.model} monitoring ({stack})", f"{data.model} · {stack}"
    subtitle = f"stack {stack} · generated {generated_at} · from {data.source}"
    legend = f'<section id="legend"><h2>What the statuses mean</h2>{status_legend()}</section>'
    promotions = ""
    if data.promotions:
        promotions = f'<section id="promotions"><h2>Promotions</h2>{promotions_table(data)}</section>'
    if data.empty:
        nothing = (
            '<section id="nothing"><h2>Nothing scored yet</h2><p>No drift report, estimate or quality '
            f"document exists for {esc(data.model)} here: the page fills in once the first batch is scored."
            "</p></section>"
        )
        return document(title, header, nothing + promotions + _skipped(data) + legend, subtitle)
    every = batches(data)
    shown = every[-MAX_BATCHES:]
    x_range = _x_range(data, shown)
    cut = esc(f" (the last {len(shown)} of {len(every)})") if len(every) > len(shown) else ""
    periods = f'<section id="periods"><h2>Quality per period</h2>{quality_table(data)}</section>'
    body = "".join([
        f'<section id="summary">{_cards(data, shown)}</section>',
        f'<section id="quality"><h2>Quality over time</h2>{quality_chart(data, shown, x_range)}'
        f"{coverage_chart(data, x_range)}</section>",
        f'<section id="drift"><h2>Drift per feature{cut}</h2>{drift_heatmap(shown)}</section>',
        f'<section id="batches"><h2>Batches{cut}</h2>{rows_chart(shown)}{batches_table(shown)}</section>',
        periods if data.quality else "", promotions, _skipped(data), legend,
    ])  # fmt: skip
    return document(title, header, body, subtitle)
