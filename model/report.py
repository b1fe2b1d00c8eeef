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
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (validation)")
    axis.legend()
    names["roc"] = _save(figure, plots / "roc.png")

    precision, recall, _ = precision_recall_curve(y, scores)
    figure, axis = plt.subplots(figsize=(4.5, 4))
    axis.plot(recall, precision)
    axis.axhline(y.mean(), ls="--", color="grey", label=f"base rate {y.mean():.1%}")
    axis.set(xlabel="recall", ylabel="precision", title="Precision-recall (validation)")
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
    axis.set(xlabel="drop in PR AUC when shuffled", title="Permutation importance (validation)")
    names["permutation_importance"] = _save(figure, plots / "permutation_importance.png")
    return names


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| candidate | features | val ROC AUC | val PR AUC | top-10 % reach | Brier | CV ROC AUC | CV PR AUC |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(rows, key=lambda r: -r["validation"]["pr_auc"]):
        v, cv = row["validation"], row["cross_validation"]
        cv_roc = f"{cv['roc_auc_mean']:.3f} ± {cv['roc_auc_std']:.3f}" if cv else "–"
        cv_pr = f"{cv['pr_auc_mean']:.3f} ± {cv['pr_auc_std']:.3f}" if cv else "–"
        lines.append(
            f"| {row['candidate']} | {row['feature_set']} | {v['roc_auc']:.3f} | {v['pr_auc']:.3f} | "
            f"{v['share_reached_top10']:.0%} | {v['brier']:.4f} | {cv_roc} | {cv_pr} |"
        )
    return "\n".join(lines)


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
    card = f"""# Model card: {metadata["name"]}

**Purpose.** Rank bank clients by their probability of subscribing a term deposit if called, so
the bank calls the most promising clients first. Decision: call when P(subscribe) >= the threshold.

**Selected:** `{metadata["candidate"]}` on feature set `{metadata["feature_set"]}`, chosen on
time-ordered validation (trained on the first {data["train_rows"]:,} rows, validated on the last
{data["validation_rows"]:,}, the order the campaign happened in). Threshold
{metadata["threshold"]:.3f} ({metadata["threshold_rule"]}).

**Inputs:** {", ".join([*metadata["schema"]["numeric"], *metadata["schema"]["categories"]])}.
`duration` is never an input (known only after the call); `pdays = -1` ("never contacted")
becomes `previously_contacted = 0` with `pdays = 0`. Unseen categories: policy
`{metadata["schema"]["unseen_policy"]}`.

## Validation metrics (the most recent rows)

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

## All candidates

Selection uses the time-ordered validation columns; stratified cross-validation (shuffled, so it
mixes past and future rows) is shown for reference only.

{_table(comparison)}

## Plots

![ROC]({artifacts.PLOTS_DIR}/{plots["roc"]}) ![Precision-recall]({artifacts.PLOTS_DIR}/{plots["precision_recall"]})
![Calibration]({artifacts.PLOTS_DIR}/{plots["calibration"]}) ![Cumulative gain]({artifacts.PLOTS_DIR}/{plots["gain"]})
![Permutation importance]({artifacts.PLOTS_DIR}/{plots["permutation_importance"]})

## Packaging

ONNX (opset {metadata["onnx"]["opset"]}), max |P_onnx - P_sklearn| = {metadata["onnx"]["parity_max_abs_diff"]:.1e} on
{metadata["onnx"]["rows"]:,} validation rows (tolerance {metadata["onnx"]["tolerance"]:.0e}). Training data:
{data["rows"]:,} rows, {data["positives"]:,} subscribers, sources
{", ".join(f"{s['path']} (sha256 {s['sha256'][:12]}…)" for s in data["sources"])}.
Libraries: {", ".join(f"{k} {v}" for k, v in metadata["libraries"].items())}. Commit: {metadata["git_commit"]}.

## Limits

The data cover one bank's campaigns from May 2008 onwards; the calendar features (`day`, `month`)
describe when past contacts happened and may not carry over to future campaigns (the comparison
above shows whether they helped on later rows). Probabilities are not re-weighted for the class
imbalance, so they can be summed into expected subscribers; check the calibration plot.
"""
    path = folder / artifacts.CARD_FILE
    path.write_text(card)
    return path
