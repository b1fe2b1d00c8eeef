"""What scoring counts for monitoring while it streams a batch: drift counts and the score histogram.

One object the scorer feeds chunk by chunk (`add`), that shards serialise (`to_dict`) and the
assembler merges (`merge`), so a fanned-out file's drift report and label-free estimate are exactly
the whole file's. Both halves are integer counts: nothing of the rows is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from model.drift import DEFAULT_CONFIG, DriftConfig, DriftCounts
from model.monitoring.estimate import EstimateConfig, estimate
from model.monitoring.histogram import ScoreHistogram


class BatchCounts:
    """The drift counts and the score histogram of one scored batch (or shard of it)."""

    def __init__(self, reference: dict[str, Any], threshold: float) -> None:
        self.reference = reference
        self.threshold = float(threshold)
        self.drift = DriftCounts(reference)
        self.histogram: ScoreHistogram | None = ScoreHistogram()

    def add(self, features: pd.DataFrame, scores: np.ndarray) -> None:
        """Count one chunk of prepared feature rows and their probabilities."""
        self.drift.add(features, scores)
        if self.histogram is not None and len(scores):
            # float32 from ONNX Runtime can land a hair outside [0, 1]; the decision stays p >= threshold
            probabilities = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
            self.histogram.add(probabilities, threshold=self.threshold)

    def merge(self, other: BatchCounts) -> None:
        self.drift.merge(other.drift)
        if self.histogram is None or other.histogram is None:
            self.histogram = None  # one shard came from a version that did not count it: no estimate
        else:
            self.histogram = self.histogram.merge(other.histogram)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drift": self.drift.to_dict(),
            "histogram": None if self.histogram is None else self.histogram.to_json(),
        }

    @classmethod
    def from_dict(cls, reference: dict[str, Any], threshold: float, data: Mapping[str, Any]) -> BatchCounts:
        """A shard's counts; a result written before the histogram existed holds `drift` only."""
        counts = cls(reference, threshold)
        counts.drift = DriftCounts.from_dict(reference, data["drift"])
        histogram = data.get("histogram")
        counts.histogram = None if histogram is None else ScoreHistogram.from_json(histogram)
        return counts

    def drift_report(self, config: DriftConfig = DEFAULT_CONFIG) -> dict[str, Any]:
        return self.drift.summary(config)

    def estimate_record(
        self, context: Mapping[str, Any], config: EstimateConfig | None = None
    ) -> dict[str, Any] | None:
        """The label-free estimate of the batch; None when a shard could not count its histogram."""
        if self.histogram is None:
            return None
        return estimate(self.histogram, config, context)
