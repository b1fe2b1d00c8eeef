"""Quality metrics of a binary classifier with numpy only, on weighted tie groups.

The Function App has neither scikit-learn nor scipy, so the metrics are written here and checked
against scikit-learn (the oracle) in tests/test_monitoring_quality.py, ties and sample weights
included. Every metric is computed from one layout, `Ranked`: the rows sorted by descending score
and cut into tie groups (rows with equal scores). A matrix of row weights, one row of weights per
evaluation, then gives every metric for all evaluations at once:

- a single evaluation of the data is the weights `1`;
- a bootstrap resample is the number of times each row was drawn (a multinomial count), so B
  resamples are a (B, n) matrix and the bootstrap is a few vectorised passes, not B sorts;
- the label-free estimate (model.monitoring.estimate) simulates labels per histogram bin and uses
  the same group formula (`auc_from_groups`).

Definitions (each as scikit-learn computes it):
- ROC AUC: the Mann-Whitney statistic, P(score of a positive > score of a negative) with ties
  counted one half, equal to the trapezoidal area under the ROC curve (`roc_auc_score`);
- PR AUC: average precision, sum over distinct thresholds of (R_k - R_k-1) * P_k, no
  interpolation (`average_precision_score`);
- Brier score: mean squared difference of probability and label (`brier_score_loss`);
- log loss: mean negative log-likelihood, probabilities clipped to [eps, 1 - eps] with eps the
  float64 machine epsilon (`log_loss` on float64 input);
- share reached in the top fraction: share of all positives among the round(n * fraction)
  highest-scored rows, at least one row (as model.evaluate.share_reached). A tie group that
  straddles the cut counts in proportion to the part inside it (the expected value when ties are
  broken at random), so the figure does not depend on the order rows arrive in;
- precision at the decision: share of positives among rows whose decision was 1 (called);
- base rate: share of positives.

A metric that is undefined for the data (AUC with one class, PR AUC without positives, precision
with nobody called) is NaN, never a made-up number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

EPSILON = float(np.finfo(np.float64).eps)  # scikit-learn's log-loss clipping for float64 input
METRICS = (
    "roc_auc",
    "pr_auc",
    "brier",
    "log_loss",
    "share_reached_top",
    "precision_at_decision",
    "base_rate",
)
_CHUNK_CELLS = 2_000_000  # weights held at once by the bootstrap (16 MB of float64)


@dataclass(frozen=True)
class Ranked:
    """Rows sorted by descending score (stable), cut into tie groups starting at `starts`."""

    scores: np.ndarray  # float64, descending
    labels: np.ndarray  # float64 0/1, aligned with scores
    decisions: np.ndarray  # float64 0/1, aligned with scores
    starts: np.ndarray  # index of the first row of each tie group

    @property
    def rows(self) -> int:
        return len(self.scores)


def rank(labels: np.ndarray, scores: np.ndarray, decisions: np.ndarray | None = None) -> Ranked:
    """The shared layout of every metric; `decisions` default to nobody called."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    d = np.zeros_like(s) if decisions is None else np.asarray(decisions, dtype=np.float64).ravel()
    if not len(y) == len(s) == len(d):
        raise ValueError(f"labels, scores and decisions differ in length: {len(y)}, {len(s)}, {len(d)}")
    if not np.isin(y, (0.0, 1.0)).all() or not np.isin(d, (0.0, 1.0)).all():
        raise ValueError("labels and decisions must be 0 or 1")
    if not (np.isfinite(s).all() and (s >= 0).all() and (s <= 1).all()):
        raise ValueError("scores must be probabilities in [0, 1]")
    order = np.argsort(-s, kind="stable")
    s, y, d = s[order], y[order], d[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if len(s) else np.zeros(0, dtype=np.intp)
    return Ranked(s, y, d, starts)


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 (an undefined metric)."""
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def auc_from_groups(positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """ROC AUC per row of (B, G) weighted positives and negatives per tie group, groups by descending score.

    Each positive wins against every negative in a lower group and half of those in its own.
    """
    total_p = positives.sum(axis=-1)
    total_n = negatives.sum(axis=-1)
    below = total_n[..., None] - np.cumsum(negatives, axis=-1)
    wins = (positives * (below + 0.5 * negatives)).sum(axis=-1)
    return _divide(wins, total_p * total_n)


def _average_precision(positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    true_positives = np.cumsum(positives, axis=-1)
    called = true_positives + np.cumsum(negatives, axis=-1)
    precision = np.zeros_like(called)
    np.divide(true_positives, called, out=precision, where=called > 0)
    return _divide((positives * precision).sum(axis=-1), positives.sum(axis=-1))


def _share_reached(
    positives: np.ndarray, negatives: np.ndarray, rows: np.ndarray, fraction: float
) -> np.ndarray:
    top = np.maximum(1.0, np.round(rows * fraction))  # half to even, as Python's round
    sizes = positives + negatives
    before = np.cumsum(sizes, axis=-1) - sizes
    inside = np.zeros_like(sizes)
    np.divide(top[..., None] - before, sizes, out=inside, where=sizes > 0)
    reached = (np.clip(inside, 0.0, 1.0) * positives).sum(axis=-1)
    return _divide(reached, positives.sum(axis=-1))


def row_log_loss(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Each row's negative log-likelihood, both class probabilities clipped as scikit-learn does."""
    p = np.clip(probabilities, EPSILON, 1 - EPSILON)
    q = np.clip(1 - probabilities, EPSILON, 1 - EPSILON)
    return -(labels * np.log(p) + (1 - labels) * np.log(q))


def evaluate(
    ranked: Ranked, weights: np.ndarray | None = None, top_fraction: float = 0.10
) -> dict[str, np.ndarray]:
    """Every metric of `METRICS` for each row of `weights` ((B, n), in `ranked` order; default all 1).

    Returns arrays of shape (B,).
    """
    n = ranked.rows
    w = np.ones((1, n)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if w.shape[-1] != n:
        raise ValueError(f"weights have {w.shape[-1]} columns for {n} rows")
    if n == 0:
        return {name: np.full(w.shape[0], np.nan) for name in METRICS}
    y, s, d = ranked.labels, ranked.scores, ranked.decisions
    positives = np.add.reduceat(w * y, ranked.starts, axis=1)
    negatives = np.add.reduceat(w * (1 - y), ranked.starts, axis=1)
    rows = w.sum(axis=1)
    called = w @ d
    return {
        "roc_auc": auc_from_groups(positives, negatives),
        "pr_auc": _average_precision(positives, negatives),
        "brier": _divide(w @ np.square(s - y), rows),
        "log_loss": _divide(w @ row_log_loss(y, s), rows),
        "share_reached_top": _share_reached(positives, negatives, rows, top_fraction),
        "precision_at_decision": _divide(w @ (d * y), called),
        "base_rate": _divide(positives.sum(axis=1), rows),
    }


def _single(name: str, labels: np.ndarray, scores: np.ndarray, sample_weight: np.ndarray | None) -> float:
    ranked_order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    ranked = rank(labels, scores)
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)[ranked_order]
    return float(evaluate(ranked, weights)[name][0])


def roc_auc(labels: np.ndarray, scores: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """ROC AUC (Mann-Whitney with ties as one half); NaN unless both classes are present."""
    return _single("roc_auc", labels, scores, sample_weight)


def average_precision(
    labels: np.ndarray, scores: np.ndarray, sample_weight: np.ndarray | None = None
) -> float:
    """PR AUC as scikit-learn's average_precision_score; NaN without positives."""
    return _single("pr_auc", labels, scores, sample_weight)


def brier(labels: np.ndarray, probabilities: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    return _single("brier", labels, probabilities, sample_weight)


def log_loss(labels: np.ndarray, probabilities: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    return _single("log_loss", labels, probabilities, sample_weight)


def share_reached(labels: np.ndarray, scores: np.ndarray, fraction: float = 0.10) -> float:
    """Share of all positives among the top `fraction` of rows by score (ties shared at the cut)."""
    return float(evaluate(rank(labels, scores), top_fraction=fraction)["share_reached_top"][0])


def bootstrap(
    ranked: Ranked, resamples: int, rng: np.random.Generator, top_fraction: float = 0.10
) -> dict[str, np.ndarray]:
    """Every metric on `resamples` bootstrap resamples of the rows (draws with replacement, same size).

    A resample is the count of draws of each row, so the metrics come from `evaluate` on a count
    matrix, in chunks of about two million cells. Returns arrays of shape (resamples,); a
    resample where a metric is undefined (one class drawn) holds NaN there.
    """
    n = ranked.rows
    if n == 0 or resamples <= 0:
        return {name: np.full(max(resamples, 0), np.nan) for name in METRICS}
    per_chunk = max(1, _CHUNK_CELLS // n)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in METRICS}
    for start in range(0, resamples, per_chunk):
        size = min(per_chunk, resamples - start)
        draws = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        counts = np.bincount(draws.ravel(), minlength=size * n).reshape(size, n)
        for name, values in evaluate(ranked, counts, top_fraction).items():
            parts[name].append(values)
    return {name: np.concatenate(values) for name, values in parts.items()}


def interval(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    """The percentile interval of the finite values (None, None when there are none)."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None, None
    tail = (1 - confidence) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return float(low), float(high)


def summarise(
    point: Mapping[str, np.ndarray], resampled: Mapping[str, np.ndarray], confidence: float
) -> dict[str, dict[str, float | None]]:
    """{metric: {"value", "low", "high"}} from a point evaluation and its bootstrap; None when undefined."""
    out: dict[str, dict[str, float | None]] = {}
    for name in METRICS:
        value = float(point[name][0])
        low, high = interval(resampled[name], confidence) if np.isfinite(value) else (None, None)
        out[name] = {"value": value if np.isfinite(value) else None, "low": low, "high": high}
    return out
