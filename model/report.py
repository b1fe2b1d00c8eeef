"""The model card: a Markdown report with the metrics table and PNG plots, written per run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from model import artifacts, evaluate


def _save(figure: plt.Figure, path: Path) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def _plots(folder: Path, y: np.ndarray, scores: np.ndarray, importances: dict[str, float]) -> dict[str, str]:
    plots = folder / artifacts.PLOTS_DIR
    plots.mkdir(exist_ok=True)
    names: dict[str, str] = {}

    fpr, tpr, _ = roc_curve(y, scores)
    figure, axis = plt.subplots(figsize=(4.5, 4))
    axis.plot(fpr, tpr, label="model")
    axis.plot([0, 1], [0, 1], "--", color="grey", label="random")
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (most recent fold)")
    axis.legend()
    names["roc"] = _save(figure, plots / "roc.png")

    precision, recall, _ = precision_recall_curve(y, scores)
    figure, axis = plt.subplots(figsize=(4.5, 4))
    axis.plot(recall, precision)
    axis.axhline(y.mean(), ls="--", color="grey", label=f"base rate {y.mean():.1%}")
    axis.set(xlabel="recall", ylabel="precision", title="Precision-recall (most recent fold)")
    axis.legend()
    names["precision_recall"] = _save(figure, plots / "precision_recall.png")

    curves = evaluate.curves(y, scores)
    figure, axis = plt.subplots(figsize=(4.5, 4))
    axis.plot(curves.calibration_pred, curves.calibration_true, "o-", label="model")
    top = max(max(curves.calibration_pred, default=1), max(curves.calibration_true, default=1))
    axis.plot([0, top], [0, top], "--", color="grey", label="perfectly calibrated")
    axis.set(
        xlabel="mean predicted probability",
        ylabel="observed subscription rate",
        title="Calibration (deciles)",
    )
    axis.legend()
    names["calibration"] = _save(figure, plots / "calibration.png")

    figure, axis = plt.subplots(figsize=(4.5, 4))
    axis.plot(curves.gain_x, curves.gain_y, label="model")
    axis.plot([0, 1], [0, 1], "--", color="grey", label="random calling")
    for fraction in (0.1, 0.5):
        reached = evaluate.share_reached(y, scores, fraction)
        axis.plot([fraction], [reached], "o", color="C1")
        axis.annotate(
            f"top {fraction:.0%}: {reached:.0%}",
            (fraction, reached),
            textcoords="offset points",
            xytext=(8, -12),
        )
    axis.set(
        xlabel="share of clients called (ranked by model)",
        ylabel="share of subscribers reached",
        title="Cumulative gain",
    )
    axis.legend(loc="lower right")
    names["gain"] = _save(figure, plots / "gain.png")

    ranked = sorted(importances.items(), key=lambda item: item[1])
    figure, axis = plt.subplots(figsize=(5, 0.3 * len(ranked) + 1))
    axis.barh([k for k, _ in ranked], [v for _, v in ranked])
    axis.set(xlabel="drop in PR AUC when shuffled", title="Permutation importance (most recent fold)")
    names["permutation_importance"] = _save(figure, plots / "permutation_importance.png")
    return names


def _table(rows: list[dict[str, Any]], selected: str) -> str:
    lines = [
        "| candidate | features | recency | ROC AUC (mean ± std) | PR AUC (mean ± std) | Brier (mean ± std) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for row in sorted(rows, key=lambda r: -r["roc_auc_mean"]):
        key = f"{row['candidate']}/{row['feature_set']}/{row['recency']}"
        mark = "**" if key == selected else ""
        lines.append(
            f"| {mark}{row['candidate']}{mark} | {row['feature_set']} | {row['recency']} | "
            f"{row['roc_auc_mean']:.3f} ± {row['roc_auc_std']:.3f} | "
            f"{row['pr_auc_mean']:.3f} ± {row['pr_auc_std']:.3f} | "
            f"{row['brier_mean']:.4f} ± {row['brier_std']:.4f} |"
        )
    return "\n".join(lines)


def _folds_table(folds: dict[str, Any]) -> str:
    lines = [
        "| fold | trained on | validated on | ROC AUC | PR AUC | Brier | base rate |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for i, fold in enumerate(folds["per_fold"], start=1):
        start, end = fold["validation_rows"]
        lines.append(
            f"| {i} | {fold['train_rows']:,} rows before row {start + 1:,} | rows {start + 1:,}-{end:,} | "
            f"{fold['roc_auc']:.3f} | {fold['pr_auc']:.3f} | {fold['brier']:.4f} | {fold['base_rate']:.1%} |"
        )
    mean, std = folds["mean"], folds["std"]
    lines.append(
        f"| mean ± std | | | {mean['roc_auc']:.3f} ± {std['roc_auc']:.3f} | {mean['pr_auc']:.3f} ± "
        f"{std['pr_auc']:.3f} | {mean['brier']:.4f} ± {std['brier']:.4f} | |"
    )
    return "\n".join(lines)


def _calibration_text(record: dict[str, Any]) -> str:
    if "brier_raw" not in record:
        return f"Not checked: {record['reason']}."
    figures = (
        f"On the most recent fold, Platt scaling fitted on the previous fold's out-of-time scores gives "
        f"Brier {record['brier_calibrated']:.4f} against {record['brier_raw']:.4f} uncalibrated; mean "
        f"predicted rate {record['mean_predicted_calibrated']:.1%} calibrated, "
        f"{record['mean_predicted_raw']:.1%} uncalibrated, observed {record['observed_rate']:.1%}."
    )
    if record["applied"]:
        return (
            f"{figures} Applied: the registered model carries Platt scaling fitted on the most recent "
            f"fold's out-of-time scores (slope {record['platt_slope']:.3f}, intercept "
            f"{record['platt_intercept']:.3f}), folded exactly into the logistic regression's "
            "coefficients (ranking unchanged; the validation figures above are calibrated with the "
            "previous fold's map, out of time)."
        )
    return f"{figures} Not applied: {record['reason']}."


def write_report(
    folder: Path,
    metadata: dict[str, Any],
    y: np.ndarray,
    scores: np.ndarray,
    comparison: list[dict[str, Any]],
    importances: dict[str, float],
) -> Path:
    plots = _plots(folder, np.asarray(y), np.asarray(scores), importances)
    v = metadata["metrics"]["validation"]
    data = metadata["training_data"]
    sel = metadata["selection"]
    card = f"""# Model card: {metadata["name"]}

**Purpose.** Rank bank clients by their probability of subscribing a term deposit if called, so
the bank calls the most promising clients first. Decision: call when P(subscribe) >= the threshold.

**Selected:** `{metadata["candidate"]}` on feature set `{metadata["feature_set"]}`, recency
`{metadata["recency"]}` ({sel["recency"]}), chosen out of time on rolling-origin folds: every
configuration is trained on every row before a cut and scored on the block of rows after it
({data["validation"]}). The folds' mean {sel["metric"]} selects (the model ranks whom to call;
PR AUC moves with the base rate, which differs threefold between the folds), with a
one-standard-error rule: best mean `{sel["best"]}` {sel["best_mean"]:.3f}, standard error
{sel["standard_error"]:.3f}; the simplest configuration within it wins (logreg < hgb < rf, no
weighting < weighting, fewer features < more): `{sel["selected"]}` {sel["selected_mean"]:.3f}.

**Registered model: refit on every labelled row.** The selected configuration is refit on all
{data["rows"]:,} rows ({data["train_rows"]:,} used: {data["refit"]}), so it has seen the newest
clients; no figure below is measured on rows it was trained on. Threshold
{metadata["threshold"]:.3f} ({metadata["threshold_rule"]}).

**Inputs:** {", ".join([*metadata["schema"]["numeric"], *metadata["schema"]["categories"]])}.
`duration` is never an input (known only after the call); `pdays = -1` ("never contacted")
becomes `previously_contacted = 0` with `pdays = 0`. Unseen categories: policy
`{metadata["schema"]["unseen_policy"]}`.

## Validation metrics (the most recent fold, out of time)

The selected configuration trained on every row before the most recent fold and scored that
fold ({data["validation_rows"]:,} rows); `metrics.validation` in metadata.json.

| metric | value |
|---|---:|
| ROC AUC | {v["roc_auc"]:.3f} |
| PR AUC (average precision) | {v["pr_auc"]:.3f} |
| base rate (subscribers) | {v["base_rate"]:.1%} |
| Brier score | {v["brier"]:.4f} |
| log loss | {v["log_loss"]:.4f} |
| subscribers reached calling the top 10 % | {v["share_reached_top10"]:.1%} (lift {v["lift_top10"]:.2f}) |
| subscribers reached calling the top 50 % | {v["share_reached_top50"]:.1%} |
| F1 at the threshold | {v.get("f1_at_threshold", float("nan")):.3f} |
| share of clients called at the threshold | {v.get("call_rate_at_threshold", float("nan")):.1%} |

## The selected configuration on every fold

{_folds_table(metadata["metrics"]["folds"])}

## Calibration

{_calibration_text(metadata["metrics"]["calibration"])}

## All configurations (out-of-time folds, mean ± std)

Stratified cross-validation (shuffled, so it trains on the future) is kept in metadata.json
for the selected configuration only, for reference; it never decides.

{_table(comparison, sel["selected"])}

## Plots

![ROC]({artifacts.PLOTS_DIR}/{plots["roc"]}) ![Precision-recall]({artifacts.PLOTS_DIR}/{plots["precision_recall"]})
![Calibration]({artifacts.PLOTS_DIR}/{plots["calibration"]}) ![Cumulative gain]({artifacts.PLOTS_DIR}/{plots["gain"]})
![Permutation importance]({artifacts.PLOTS_DIR}/{plots["permutation_importance"]})

## Packaging

ONNX (opset {metadata["onnx"]["opset"]}), max |P_onnx - P_sklearn| = {metadata["onnx"]["parity_max_abs_diff"]:.1e} on
{metadata["onnx"]["rows"]:,} most recent rows (tolerance {metadata["onnx"]["tolerance"]:.0e}). Training data:
{data["rows"]:,} rows, {data["positives"]:,} subscribers, sources
{", ".join(f"{s['path']} (sha256 {s['sha256'][:12]}…)" for s in data["sources"])}.
Libraries: {", ".join(f"{k} {v}" for k, v in metadata["libraries"].items())}. Commit: {metadata["git_commit"]}.

## Limits

The data cover one bank's campaigns from May 2008 onwards; the calendar features (`day`, `month`)
describe when past contacts happened and may not carry over to future campaigns, nor may
`contact` ("unknown" in the first 30 % of the rows); the comparison above shows whether they
helped on later rows. The subscription rate rises over the rows, so a model trained on the past
predicts a lower level than the next months show: see the calibration check. Probabilities are
not re-weighted for the class imbalance, so they can be summed into expected subscribers.
"""
    path = folder / artifacts.CARD_FILE
    path.write_text(card)
    return path
