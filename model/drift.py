"""Data drift of scored batches against the model's reference.json (population stability index).

Counts are kept per reference bin and add up, so shards of one input are counted separately and
merged, and the summary is the same as if the file had been scored in one piece.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from model.reference import SCORE_BINS, numeric_counts, score_counts

PSI_WARN = 0.1  # the usual reading: < 0.1 stable, 0.1-0.25 some shift, > 0.25 a population change
PSI_ALERT = 0.25
_EPSILON = 1e-4  # share given to an empty bin, so a category seen on one side only counts but stays finite
_MAX_CATEGORIES = 200  # distinct values kept per column; more (garbage in a category column) are pooled


def psi(expected: dict[str, float], actual: dict[str, float]) -> float:
    """Population stability index between two distributions over the same (or overlapping) bins."""
    total = 0.0
    for key in set(expected) | set(actual):
        e = max(expected.get(key, 0.0), _EPSILON)
        a = max(actual.get(key, 0.0), _EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def _status(value: float) -> str:
    return "alert" if value > PSI_ALERT else "warn" if value > PSI_WARN else "ok"


def _shares(counts: dict[str, float] | np.ndarray) -> dict[str, float]:
    """Counts (or proportions) as shares keyed by bin or category."""
    items = counts.items() if isinstance(counts, dict) else enumerate(counts.tolist())
    pairs = [(str(k), float(v)) for k, v in items]
    total = sum(v for _, v in pairs)
    return {k: v / total for k, v in pairs} if total else {}


class DriftCounts:
    """Bin counts of the scored rows' features and scores, on the bins of one reference.json."""

    def __init__(self, reference: dict[str, Any]) -> None:
        self.reference = reference
        features = reference.get("features", {})
        self.rows = 0
        self.score_sum = 0.0
        self.numeric = {
            name: np.zeros(len(spec["bin_edges"]) + 1, dtype=np.int64)
            for name, spec in features.items()
            if spec.get("kind") == "numeric"
        }
        self.categorical: dict[str, Counter[str]] = {
            name: Counter() for name, spec in features.items() if spec.get("kind") == "categorical"
        }
        self.scores = np.zeros(SCORE_BINS, dtype=np.int64)

    def add(self, features: pd.DataFrame, scores: np.ndarray) -> None:
        """Count a batch of prepared feature rows (as fed to the model) and their probabilities."""
        if len(features) == 0:
            return
        self.rows += len(features)
        self.score_sum += float(np.sum(scores, dtype=np.float64))
        self.scores += score_counts(scores)
        specs = self.reference.get("features", {})  # a version without reference.json counts scores only
        for name, counts in self.numeric.items():
            if name in features:
                values = features[name].to_numpy(dtype=np.float64)
                counts += numeric_counts(np.asarray(specs[name]["bin_edges"]), values)
        for name, counter in self.categorical.items():
            if name in features:
                for value, count in features[name].value_counts(sort=False).items():
                    if count:
                        counter[self._category(counter, str(value))] += int(count)

    @staticmethod
    def _category(counter: Counter[str], value: str) -> str:
        return value if value in counter or len(counter) < _MAX_CATEGORIES else "(other values)"

    def merge(self, other: DriftCounts) -> None:
        self.rows += other.rows
        self.score_sum += other.score_sum
        self.scores += other.scores
        for name, counts in other.numeric.items():
            self.numeric[name] += counts
        for name, counter in other.categorical.items():
            for value, count in counter.items():
                self.categorical[name][self._category(self.categorical[name], value)] += count

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "score_sum": self.score_sum,
            "scores": self.scores.tolist(),
            "numeric": {k: v.tolist() for k, v in self.numeric.items()},
            "categorical": {k: dict(v) for k, v in self.categorical.items()},
        }

    @classmethod
    def from_dict(cls, reference: dict[str, Any], data: dict[str, Any]) -> DriftCounts:
        counts = cls(reference)
        counts.rows = int(data["rows"])
        counts.score_sum = float(data["score_sum"])
        counts.scores = np.asarray(data["scores"], dtype=np.int64)
        counts.numeric = {k: np.asarray(v, dtype=np.int64) for k, v in data["numeric"].items()}
        counts.categorical = {k: Counter(v) for k, v in data["categorical"].items()}
        return counts

    def summary(self) -> dict[str, Any]:
        """PSI per feature and for the scores, with a status each: ok, warn (> 0.1), alert (> 0.25)."""
        specs = self.reference.get("features", {})
        features: dict[str, dict[str, Any]] = {}
        for name, counts in self.numeric.items():
            value = psi(_shares(np.asarray(specs[name]["proportions"])), _shares(counts))
            features[name] = {"psi": round(value, 6), "status": _status(value)}
        for name, counter in self.categorical.items():
            value = psi(specs[name]["proportions"], _shares(dict(counter)))
            unseen = sorted(set(counter) - set(specs[name]["proportions"]))
            features[name] = {"psi": round(value, 6), "status": _status(value), "unseen": unseen[:20]}
        reference_scores = self.reference.get("scores", {}).get("proportions")
        scores: dict[str, Any] = {"mean": round(self.score_sum / self.rows, 6) if self.rows else None}
        if reference_scores:
            value = psi(_shares(np.asarray(reference_scores)), _shares(self.scores))
            scores |= {"psi": round(value, 6), "status": _status(value)}
        statuses = [f["status"] for f in features.values()] + [scores.get("status", "ok")]
        worst = "empty" if not self.rows else max(statuses, key=["ok", "warn", "alert"].index, default="ok")
        return {
            "rows": self.rows,
            "status": worst,
            "thresholds": {"warn": PSI_WARN, "alert": PSI_ALERT},
            "drifted": sorted(n for n, f in features.items() if f["status"] == "alert"),
            "features": features,
            "scores": scores,
        }
