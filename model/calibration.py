"""Platt scaling checked out of time, folded into a logistic regression so ONNX needs no new operator.

The bank sums probabilities into expected subscribers, and the subscription rate rises over time
(5 % in the early rows, 13-15 % in the newest tenths), so a model trained on the past predicts too
low a level. The check: fit Platt scaling on the previous fold's out-of-time scores, apply it to
the most recent fold's, and compare Brier and the mean predicted rate with the observed one. For
a logistic regression the map sigmoid(a * logit(p) + b) is the same model with coefficients
scaled by a and intercept a * c + b: exact, and it converts to ONNX like any logistic regression.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.pipeline import Pipeline

_EPS = 1e-7


def _logit(scores: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(scores, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Platt:
    """P' = sigmoid(slope * logit(P) + intercept)."""

    slope: float
    intercept: float

    @classmethod
    def fit(cls, scores: np.ndarray, y: np.ndarray) -> Platt:
        # Almost unregularised: two parameters on thousands of rows need no shrinkage.
        model = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(scores).reshape(-1, 1), y)
        return cls(float(model.coef_[0, 0]), float(model.intercept_[0]))

    def apply(self, scores: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.slope * _logit(scores) + self.intercept)))


def check(
    previous_scores: np.ndarray, previous_y: np.ndarray, recent_scores: np.ndarray, recent_y: np.ndarray
) -> tuple[Platt, dict[str, float | bool]]:
    """Platt fitted on the previous fold, judged on the most recent one; the map and the figures."""
    platt = Platt.fit(previous_scores, previous_y)
    calibrated = platt.apply(recent_scores)
    raw_brier = float(brier_score_loss(recent_y, np.clip(recent_scores, _EPS, 1 - _EPS)))
    calibrated_brier = float(brier_score_loss(recent_y, calibrated))
    figures: dict[str, float | bool] = {
        "brier_raw": raw_brier,
        "brier_calibrated": calibrated_brier,
        "mean_predicted_raw": float(np.mean(recent_scores)),
        "mean_predicted_calibrated": float(np.mean(calibrated)),
        "observed_rate": float(np.mean(recent_y)),
        "platt_slope_previous_fold": platt.slope,
        "platt_intercept_previous_fold": platt.intercept,
        # Helps only if it lowers Brier and keeps the order (a negative slope would reverse it).
        "helps": bool(calibrated_brier < raw_brier and platt.slope > 0),
    }
    return platt, figures


def can_fold(pipeline: Pipeline) -> bool:
    return isinstance(pipeline.steps[-1][1], LogisticRegression)


def fold_into(pipeline: Pipeline, platt: Platt) -> Pipeline:
    """A copy of a logistic-regression pipeline whose probabilities are Platt-scaled (exactly)."""
    if not can_fold(pipeline):
        raise TypeError(f"Platt scaling folds into a logistic regression only, not {pipeline.steps[-1][1]!r}")
    calibrated = copy.deepcopy(pipeline)
    clf = calibrated.steps[-1][1]
    clf.coef_ = clf.coef_ * platt.slope
    clf.intercept_ = clf.intercept_ * platt.slope + platt.intercept
    return calibrated
