"""The label-free quality estimate of a batch, from its probabilities alone (CBPE-style, as NannyML).

Assumptions, as NannyML's CBPE: the probabilities are calibrated and each client's label is an
independent Bernoulli(p) draw. Then the batch's realised figures, once outcomes exist, are random
variables whose distribution the probabilities fully determine; the estimate is that
distribution's mean and a central interval. What it cannot see is concept drift (p no longer the
chance of subscribing): that is the gap model.monitoring.compare looks for.

How each figure is computed, from a ScoreHistogram (mergeable; model.monitoring.histogram):

- expected subscribers: the sum of p (exact); sd from the Poisson-binomial variance sum p(1-p)
  (exact);
- expected precision at the threshold: the sum of p over called rows / the called rows (exact:
  the number called is fixed by the decisions, so the expectation of the ratio is the ratio);
- expected ROC AUC: Monte Carlo. E[AUC] is the expectation of a ratio of dependent sums (wins /
  (positives x negatives)) with no closed form; the CBPE ratio of expectations is off by O(1/n)
  and gives no interval, and the interval is needed anyway. So labels are simulated: per occupied
  (decision, bin) cell, positives ~ Binomial(rows, mean p), `draws` times with a fixed seed, each
  draw's AUC from the same tie-group formula as the realised AUC (bins as ties). Cost: draws x
  occupied cells, whatever the batch size; the same histogram always gives the same record.
- intervals (all three): the percentile interval of the simulated realised values at
  `confidence` (for subscribers rounded outwards to whole counts), i.e. where the realised
  figure should fall if the assumptions hold. Draws with one class only have no AUC; above
  `max_one_class_share` of them the AUC is not estimated (status `insufficient`), the trap
  NannyML's users fall into with a rare positive class.

Record, `format_version` 1 (JSON-ready):

    {"format_version": 1, "kind": "estimate", ...context (model_name, model_version, batch, ...),
     "status": "ok" | "empty", "rows", "called",
     "roc_auc": {"expected", "sd", "low", "high", "one_class_share", "status"},
     "precision_at_threshold": {"expected", "sd", "low", "high", "status"},
     "subscribers": {"expected", "sd", "low", "high", "status"},
     "method": {"kind": "monte_carlo", "draws", "seed", "confidence", "bins",
                "assumes": "calibrated probabilities, independent Bernoulli(p) labels"},
     "histogram": ScoreHistogram.to_json()}

A figure's status is "ok", "insufficient" (AUC: too many one-class draws) or "undefined"
(precision when nobody was called; everything in an empty batch), its numbers null unless "ok".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from model.monitoring.histogram import ScoreHistogram
from model.monitoring.metrics import auc_from_groups, interval

ESTIMATE_FORMAT = 1
FIGURES = ("roc_auc", "precision_at_threshold", "subscribers")
ASSUMES = "calibrated probabilities, independent Bernoulli(p) labels"
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class EstimateConfig:
    """Simulation size and seed, the interval's confidence, and when one-class draws void the AUC."""

    draws: int = 1000
    confidence: float = 0.95
    seed: int = 0
    max_one_class_share: float = 0.05

    def __post_init__(self) -> None:
        if self.draws < 1:
            raise ValueError(f"draws must be at least 1, not {self.draws}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), not {self.confidence}")
        if not 0 <= self.max_one_class_share < 1:
            raise ValueError(f"max_one_class_share must be in [0, 1), not {self.max_one_class_share}")


def simulate(histogram: ScoreHistogram, draws: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Realised ROC AUC, precision at the threshold and subscribers of `draws` simulated label sets.

    Arrays of shape (draws,); NaN where a figure is undefined (AUC with one class drawn,
    precision with nobody called).
    """
    occupied = np.flatnonzero(histogram.counts.sum(axis=0))[::-1]  # bins by descending score
    rows = histogram.counts[:, occupied]  # (2, G): not called, called
    means = histogram.means()[:, occupied]
    per_bin = rows.sum(axis=0)
    called = int(rows[1].sum())
    per_chunk = max(1, _CHUNK_CELLS // max(1, rows.size))
    parts: dict[str, list[np.ndarray]] = {name: [] for name in FIGURES}
    for start in range(0, draws, per_chunk):
        size = min(per_chunk, draws - start)
        positives = rng.binomial(rows, means, size=(size, *rows.shape))  # (size, 2, G)
        by_bin = positives.sum(axis=1).astype(np.float64)
        parts["roc_auc"].append(auc_from_groups(by_bin, per_bin - by_bin))
        true_called = positives[:, 1, :].sum(axis=1)
        parts["precision_at_threshold"].append(true_called / called if called else np.full(size, np.nan))
        parts["subscribers"].append(by_bin.sum(axis=1))
    return {name: np.concatenate(values) for name, values in parts.items()}


def _figure(
    expected: float | None, sd: float | None, values: np.ndarray, confidence: float, status: str = "ok"
) -> dict[str, Any]:
    if status != "ok" or expected is None:
        return {"expected": None, "sd": None, "low": None, "high": None, "status": status}
    low, high = interval(values, confidence)
    return {"expected": expected, "sd": sd, "low": low, "high": high, "status": "ok"}


def estimate(
    histogram: ScoreHistogram, config: EstimateConfig | None = None, context: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The estimate record of a batch (or of merged batches) from its histogram; `context` is copied in."""
    config = config or EstimateConfig()
    rows, called = histogram.rows, histogram.called
    record: dict[str, Any] = {
        "format_version": ESTIMATE_FORMAT,
        "kind": "estimate",
        **(context or {}),
        "status": "ok" if rows else "empty",
        "rows": rows,
        "called": called,
    }
    empty = np.zeros(0)
    if not rows:
        record.update({name: _figure(None, None, empty, config.confidence, "undefined") for name in FIGURES})
    else:
        simulated = simulate(histogram, config.draws, np.random.default_rng(config.seed))
        auc = simulated["roc_auc"]
        finite = auc[np.isfinite(auc)]
        one_class = 1 - len(finite) / len(auc)
        auc_ok = one_class <= config.max_one_class_share
        record["roc_auc"] = _figure(
            float(finite.mean()) if auc_ok else None,
            float(finite.std()) if auc_ok else None,
            auc,
            config.confidence,
            "ok" if auc_ok else "insufficient",
        )
        record["roc_auc"]["one_class_share"] = one_class
        record["precision_at_threshold"] = _figure(
            histogram.expected_positives(1) / called if called else None,
            math.sqrt(max(0.0, histogram.variance_positives(1))) / called if called else None,
            simulated["precision_at_threshold"],
            config.confidence,
            "ok" if called else "undefined",
        )
        record["subscribers"] = _figure(
            histogram.expected_positives(),
            math.sqrt(max(0.0, histogram.variance_positives())),
            simulated["subscribers"],
            config.confidence,
        )
        # a count: the interval's ends rounded outwards to whole subscribers
        record["subscribers"]["low"] = float(math.floor(record["subscribers"]["low"]))
        record["subscribers"]["high"] = float(math.ceil(record["subscribers"]["high"]))
    record["method"] = {
        "kind": "monte_carlo",
        "draws": config.draws,
        "seed": config.seed,
        "confidence": config.confidence,
        "bins": histogram.bins,
        "assumes": ASSUMES,
    }
    record["histogram"] = histogram.to_json()
    return record


def estimate_probabilities(
    probabilities: np.ndarray,
    decisions: np.ndarray | None = None,
    threshold: float | None = None,
    config: EstimateConfig | None = None,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The estimate record of a batch's probabilities (decisions given or p >= threshold)."""
    return estimate(ScoreHistogram.of(probabilities, decisions, threshold), config, context)
