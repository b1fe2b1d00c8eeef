"""The drift page of one scored batch: the verdict, then the reference beside the batch, feature by feature.

A drift report (model.drift) says which features moved and by how much; a person deciding whether
to act needs to see how. So this page draws, per feature, the training distribution of
reference.json beside the batch's, on the bins drift already counts (the decile bins of a number,
the categories, the 20 score bins), with the feature's statistic, value, threshold and what chance
reaches at this batch size. It reads counts only (DriftCounts), never rows, so its size depends on
the number of features and categories, not on the rows scored. Written beside the report
(`lake.paths.drift_page_path`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from model.drift import DriftCounts
from model.monitoring.page import badge, document, table
from model.monitoring.svg import Group, grouped_bars
from model.monitoring.text import esc, number

REFERENCE_COLOUR, BATCH_COLOUR, UNSEEN_COLOUR = "#a0aec0", "#2b6cb0", "#dd6b20"
PANEL_WIDTH = 500  # two feature charts side by side
MAX_CATEGORIES = 30  # bars drawn per categorical feature; the rest are pooled into one
STATISTICS = {
    "wasserstein": "normalised Wasserstein distance",
    "jensen_shannon": "Jensen-Shannon distance",
    "ks": "Kolmogorov-Smirnov test",
    "chi2": "chi-squared test",
}
DISTANCES = ("wasserstein", "jensen_shannon")


def shares(values: Sequence[float] | np.ndarray) -> list[float]:
    """Counts as shares of their total (all zero for an empty batch, so the page still draws)."""
    array = np.asarray(values, dtype=np.float64)
    total = array.sum()
    return (array / total).tolist() if total > 0 else [0.0] * len(array)


def bin_labels(inner_edges: Sequence[float]) -> list[str]:
    """Labels of the bins (-inf, e0), [e0, e1), ..., [e_last, inf): n inner edges make n + 1 bins."""
    edges = [number(float(e)) for e in inner_edges]
    if not edges:
        return ["all values"]
    middle = [f"{a} to {b}" for a, b in itertools.pairwise(edges)]
    return [f"< {edges[0]}", *middle, f"≥ {edges[-1]}"]


def score_labels(bins: int) -> list[str]:
    width = 1.0 / bins
    return [f"{i * width:.2f}–{(i + 1) * width:.2f}" for i in range(bins)]


def categories(
    reference: Mapping[str, float], batch: Mapping[str, int], limit: int = MAX_CATEGORIES
) -> tuple[list[str], list[float], list[float], list[bool]]:
    """Categories to draw (reference order, then unseen ones), both sides' shares, and which are unseen.

    Beyond `limit`, the categories with the smallest larger share are pooled into one bar, so a
    column of garbage values cannot blow up the page.
    """
    total = sum(batch.values())
    names = [*reference, *sorted(k for k in batch if k not in reference)]
    ref = {k: float(reference.get(k, 0.0)) for k in names}
    got = {k: batch.get(k, 0) / total if total else 0.0 for k in names}
    if len(names) > limit:
        keep = set(sorted(names, key=lambda k: -max(ref[k], got[k]))[: limit - 1])
        pooled = [k for k in names if k not in keep]
        names = [k for k in names if k in keep]
        other = f"({len(pooled)} more)"
        ref[other], got[other] = sum(ref[k] for k in pooled), sum(got[k] for k in pooled)
        names.append(other)
    unseen = [k not in reference and k in batch for k in names]
    return names, [ref[k] for k in names], [got[k] for k in names], unseen


def verdict_text(entry: Mapping[str, Any]) -> str:
    """The feature's statistic in words: what it measured against what it had to reach."""
    statistic, value = entry.get("statistic"), entry.get("value")
    name = STATISTICS.get(str(statistic), str(statistic))
    if value is None:
        return f"{name}: no rows in this column"
    threshold, detectable = entry.get("threshold"), entry.get("detectable")
    if statistic in DISTANCES:
        return (
            f"{name} {number(value)}; drifts at ≥ {number(threshold)} and above what chance reaches at "
            f"this batch size ({number(detectable)})"
        )
    return (
        f"{name}: p = {number(value)}, cut-off {number(threshold)} (Benjamini-Hochberg); effect "
        f"{number(entry.get('effect'))}, the test needs {number(detectable)}"
    )


def _feature_row(name: str, kind: str, entry: Mapping[str, Any]) -> list[object]:
    drifted = entry.get("drifted")
    return [
        name,
        kind,
        entry.get("statistic", "–"),
        number(entry.get("value")),
        number(entry.get("threshold")),
        number(entry.get("detectable")),
        number(entry.get("effect")) if "effect" in entry else "",
        number(entry.get("psi")),
        badge("alert" if drifted else "ok") if entry else "",
    ]


def _bars(name: str, title: str, labels: list[str], ref: list[float] | None, got: list[float],
          colours: Sequence[str | None] = (), **options: Any) -> str:  # fmt: skip
    """Reference (when there is one) beside the batch, as shares of rows."""
    groups = [Group("reference (training)", ref, REFERENCE_COLOUR)] if ref is not None else []
    groups.append(Group("this batch", got, BATCH_COLOUR, colours))
    return grouped_bars(name, title, labels, groups, y_label="share of rows", **options)


def numeric_chart(name: str, spec: Mapping[str, Any], counts: DriftCounts) -> str:
    """A numeric feature on its decile bins: reference proportions beside the batch's counts."""
    labels = bin_labels(spec.get("bin_edges", []))
    batch = counts.numeric.get(name)
    got = shares(batch) if batch is not None and len(batch) == len(labels) else [0.0] * len(labels)
    ref = [float(v) for v in spec.get("proportions", [])]
    ref_or_none = ref if len(ref) == len(labels) else None
    return _bars(f"feature-{name}", name, labels, ref_or_none, got,
                 x_label="decile bins of the training values", width=PANEL_WIDTH)  # fmt: skip


def categorical_chart(name: str, spec: Mapping[str, Any], counts: DriftCounts) -> str:
    """A categorical feature on its categories; the ones training never saw in another colour."""
    names, ref, got, unseen = categories(spec.get("proportions", {}), counts.categorical.get(name, {}))
    labels = [f"{k} (unseen)" if new else k for k, new in zip(names, unseen, strict=True)]
    colours = [UNSEEN_COLOUR if new else None for new in unseen]
    return _bars(f"feature-{name}", name, labels, ref, got, colours, x_label="category", width=PANEL_WIDTH)


def _feature_panel(index: int, name: str, spec: Mapping[str, Any], counts: DriftCounts,
                   entry: Mapping[str, Any]) -> str:  # fmt: skip
    numeric = spec.get("kind") == "numeric"
    chart = numeric_chart(name, spec, counts) if numeric else categorical_chart(name, spec, counts)
    note = ""
    if entry.get("unseen"):
        values = ", ".join(str(v) for v in entry["unseen"])
        note = f" Unseen: {esc(values)} ({number(entry.get('unseen_rows'))} rows)."
    state = badge("alert" if entry.get("drifted") else "ok") if entry else ""
    return (
        f'<div class="panel" id="f{index}"><h3>{esc(name)} {state}</h3>'
        f'<p class="note">{esc(verdict_text(entry))}.{note}</p>{chart}</div>'
    )


def _verdict(report: Mapping[str, Any]) -> str:
    drifted = report.get("drifted_features") or []
    cards = [
        ("rows scored", number(report.get("rows"), 6)),
        ("drift share", number(report.get("drift_share"))),
        ("dataset drifted", "yes" if report.get("drifted") else "no"),
        ("method", str(report.get("method", "–"))),
        ("weighted by", str(report.get("weighted_by", "–"))),
    ]
    html = "".join(f'<div class="card"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for k, v in cards)
    listed = ", ".join(str(f) for f in drifted) or "none"
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in report.get("notes") or [])
    return (
        f'<section id="verdict"><h2>Verdict {badge(report.get("status"))}</h2><div class="cards">{html}</div>'
        f'<p>Drifted features: {esc(listed)}</p>{notes}<p class="note">Distances (more than 1,000 rows) '
        "drift at 0.1 and above chance; tests (1,000 rows or fewer) at the Benjamini-Hochberg cut-off. "
        "ok: nothing drifted; warn: some feature; alert: half the features or the scores; empty: no rows."
        "</p></section>"
    )


def _scores_section(reference: Mapping[str, Any], counts: DriftCounts, report: Mapping[str, Any]) -> str:
    spec, entry = reference.get("scores") or {}, report.get("scores") or {}
    labels = score_labels(len(counts.scores))
    ref = [float(v) for v in spec.get("proportions", [])]
    state = badge("alert" if entry.get("drifted") else "ok") if entry.get("statistic") else ""
    if not ref and counts.rows == 0:
        return '<section id="scores"><h2>Scores</h2><p>No row scored and no reference.</p></section>'
    text = verdict_text(entry) if entry.get("statistic") else "no reference distribution of the scores"
    if entry.get("mean") is not None:
        text += f"; mean probability {number(entry['mean'])}"
    ref_or_none = ref if len(ref) == len(labels) else None
    chart = _bars("scores", "Scores (probability of subscribing)", labels, ref_or_none, shares(counts.scores),
                  x_label="probability bin", subtitle=text)  # fmt: skip
    return f'<section id="scores"><h2>Scores {state}</h2>{chart}</section>'


def render_batch_page(reference: dict[str, Any], counts: DriftCounts, report: dict[str, Any]) -> str:
    """The batch's drift page, from its reference.json, its counts and its report (DriftCounts.summary
    plus `input`, `model`, `scored_at` when the scorer wrote them)."""
    source = report.get("input") or {}
    model = report.get("model") or {}
    blob = str(source.get("blob") or "batch")
    subtitle = (
        f"model {model.get('name', '?')} v{model.get('version', '?')} ({model.get('stage') or 'no stage'}), "
        f"scored {report.get('scored_at', '?')}, {number(counts.rows, 6)} rows"
    )
    specs: Mapping[str, Any] = reference.get("features") or {}
    entries: Mapping[str, Any] = report.get("features") or {}
    position = {name: i for i, name in enumerate(specs)}
    order = sorted(specs, key=lambda n: (not (entries.get(n) or {}).get("drifted"), position[n]))
    parts = [_verdict(report), _scores_section(reference, counts, report)]
    if not specs:
        parts.append(
            '<section id="features"><h2>Features</h2><p>This model version has no reference.json: there is '
            "no training distribution to compare the features with, only the scores.</p></section>"
        )
    else:
        rows = [_feature_row(n, str(specs[n].get("kind")), entries.get(n) or {}) for n in order]
        headers = [
            "feature",
            "kind",
            "statistic",
            "value",
            "threshold",
            "detectable",
            "effect",
            "PSI",
            "drifted",
        ]
        nav = "".join(f'<a href="#f{i}">{esc(n)}</a>' for i, n in enumerate(order))
        empty = '<p class="note">No row was scored: the batch bars are empty.</p>' if counts.rows == 0 else ""
        panels = "".join(
            _feature_panel(i, n, specs[n], counts, entries.get(n) or {}) for i, n in enumerate(order)
        )
        parts.append(f'<section id="features"><h2>Features</h2>{table(headers, rows, (3, 4, 5, 6, 7))}'
                     f'<nav>{nav}</nav>{empty}<div class="panels">{panels}</div></section>')  # fmt: skip
    return document(f"Drift: {blob}", f"Drift of {blob}", "".join(parts), subtitle)
