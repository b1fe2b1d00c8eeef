"""Metrics that matter for "whom should the bank call": ranking, calibration, and lift."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
)


def share_reached(y_true: np.ndarray, scores: np.ndarray, fraction: float) -> float:
    """Share of all subscribers found by calling the top `fraction` of clients ranked by score."""
    positives = y_true.sum()
    if positives == 0:
        return float("nan")
    top = max(1, round(len(scores) * fraction))
    order = np.argsort(-scores, kind="stable")[:top]
    return float(y_true[order].sum() / positives)


def metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float | None = None) -> dict[str, float]:
    y_true = np.asarray(y_true).astype(int)
    scores = np.clip(np.asarray(scores, dtype=float), 1e-7, 1 - 1e-7)
    result = {
        "roc_auc": float(roc_auc_score(y_true, scores)),
        "pr_auc": float(average_precision_score(y_true, scores)),
        "brier": float(brier_score_loss(y_true, scores)),
        "log_loss": float(log_loss(y_true, scores, labels=[0, 1])),
        "share_reached_top10": share_reached(y_true, scores, 0.10),
        "share_reached_top50": share_reached(y_true, scores, 0.50),
        "base_rate": float(y_true.mean()),
    }
    result["lift_top10"] = result["share_reached_top10"] / 0.10
    if threshold is not None:
        decisions = scores >= threshold
        result["f1_at_threshold"] = float(f1_score(y_true, decisions, zero_division=0))
        result["call_rate_at_threshold"] = float(decisions.mean())
    return result


def best_f1_threshold(y_true: np.ndarray, scores: np.ndarray) -> float:
    """The probability threshold that maximises F1 (the decision: call or not).

    Imbalance (about 7 % subscribers) is handled here and in the ranking metrics rather than by
    re-weighting classes, which would inflate the probabilities the business sums up as
    "expected subscribers".
    """
    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


@dataclass(frozen=True)
class Curves:
    """Everything the model card plots, computed once."""

    calibration_true: list[float]
    calibration_pred: list[float]
    gain_x: list[float]
    gain_y: list[float]


def curves(y_true: np.ndarray, scores: np.ndarray) -> Curves:
    prob_true, prob_pred = calibration_curve(y_true, scores, n_bins=10, strategy="quantile")
    order = np.argsort(-scores, kind="stable")
    cumulative = np.cumsum(np.asarray(y_true)[order]) / max(1, int(np.sum(y_true)))
    x = np.arange(1, len(scores) + 1) / len(scores)
    step = max(1, len(x) // 200)
    return Curves(prob_true.tolist(), prob_pred.tolist(), x[::step].tolist(), cumulative[::step].tolist())
