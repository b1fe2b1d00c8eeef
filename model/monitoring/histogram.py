"""A fine histogram of scored probabilities that shards merge exactly: the estimate's sufficient statistic.

Scoring keeps 20 score bins for drift (model.drift); that is too coarse for a quality estimate, so
this one has `BINS` = 1,000 equal bins of width 0.001 on [0, 1], split by decision (row 0: not
called, row 1: called, so the precision at the threshold needs no threshold here and is exact).
Per cell it keeps:

- the number of rows,
- the sum of p and the sum of p², as integers in units of 2^-30 (each value rounded to about
  1e-9), so adding shards is integer addition: exact and order-free, and the estimate of merged
  shards is bit for bit the estimate of the whole file.

What the bins lose: the order of rows within one bin. The estimate treats a bin as a tie, which
moves the expected ROC AUC by at most half the bin width (0.0005) times the share of
positive-negative pairs that fall in the same bin; the sums keep the expected subscribers and
the precision exact and the Poisson-binomial variance exact.

As JSON (`to_json`), the non-empty cells only: {"bins": 1000, "scale_bits": 30, "cells":
[[decision, bin, rows, sum_p, sum_p2], ...]} with the sums in units of 2^-scale_bits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

BINS = 1000
SCALE_BITS = 30
SCALE = 1 << SCALE_BITS


def _zeros(bins: int) -> np.ndarray:
    return np.zeros((2, bins), dtype=np.int64)


@dataclass
class ScoreHistogram:
    """Counts, sums and sums of squares of probabilities per (decision, bin); add rows, merge shards."""

    bins: int = BINS
    counts: np.ndarray = field(default=None)  # type: ignore[assignment]
    sums: np.ndarray = field(default=None)  # type: ignore[assignment]
    squares: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.bins < 1:
            raise ValueError(f"bins must be at least 1, not {self.bins}")
        for name in ("counts", "sums", "squares"):
            value = getattr(self, name)
            setattr(self, name, _zeros(self.bins) if value is None else np.asarray(value, dtype=np.int64))
            if getattr(self, name).shape != (2, self.bins):
                raise ValueError(f"{name} must have shape (2, {self.bins})")

    @classmethod
    def of(
        cls,
        probabilities: np.ndarray,
        decisions: np.ndarray | None = None,
        threshold: float | None = None,
        bins: int = BINS,
    ) -> ScoreHistogram:
        """The histogram of a batch; decisions given, or taken as p >= threshold (the scorer's rule)."""
        histogram = cls(bins)
        histogram.add(probabilities, decisions, threshold)
        return histogram

    def add(
        self, probabilities: np.ndarray, decisions: np.ndarray | None = None, threshold: float | None = None
    ) -> None:
        """Count more rows in place (a chunk of a batch)."""
        p = np.asarray(probabilities, dtype=np.float64).ravel()
        if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
            raise ValueError("probabilities must be in [0, 1]")
        if decisions is None:
            if threshold is None:
                raise ValueError("give the decisions or the threshold they come from")
            d = (p >= threshold).astype(np.intp)
        else:
            d = np.asarray(decisions).ravel().astype(np.intp)
            if len(d) != len(p) or not np.isin(d, (0, 1)).all():
                raise ValueError("decisions must be 0 or 1, one per probability")
        b = np.minimum((p * self.bins).astype(np.intp), self.bins - 1)
        np.add.at(self.counts, (d, b), 1)
        np.add.at(self.sums, (d, b), np.rint(p * SCALE).astype(np.int64))
        np.add.at(self.squares, (d, b), np.rint(p * p * SCALE).astype(np.int64))

    def merge(self, other: ScoreHistogram) -> ScoreHistogram:
        """The histogram of both batches together (exact)."""
        if other.bins != self.bins:
            raise ValueError(f"cannot merge histograms of {self.bins} and {other.bins} bins")
        return ScoreHistogram(
            self.bins, self.counts + other.counts, self.sums + other.sums, self.squares + other.squares
        )

    @property
    def rows(self) -> int:
        return int(self.counts.sum())

    @property
    def called(self) -> int:
        return int(self.counts[1].sum())

    def expected_positives(self, decision: int | None = None) -> float:
        """Sum of p (all rows, or the rows with that decision)."""
        sums = self.sums if decision is None else self.sums[decision]
        return int(sums.sum()) / SCALE

    def variance_positives(self, decision: int | None = None) -> float:
        """Poisson-binomial variance of the number of positives: sum of p (1 - p)."""
        rows = slice(None) if decision is None else decision
        return (int(self.sums[rows].sum()) - int(self.squares[rows].sum())) / SCALE

    def means(self) -> np.ndarray:
        """Mean p per (decision, bin); 0 for an empty cell."""
        out = np.zeros(self.counts.shape)
        np.divide(self.sums / SCALE, self.counts, out=out, where=self.counts > 0)
        return np.clip(out, 0.0, 1.0)

    def to_json(self) -> dict[str, Any]:
        decision, bin_ = np.nonzero(self.counts)
        cells = [
            [int(d), int(b), int(self.counts[d, b]), int(self.sums[d, b]), int(self.squares[d, b])]
            for d, b in zip(decision, bin_, strict=True)
        ]
        return {"bins": self.bins, "scale_bits": SCALE_BITS, "cells": cells}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScoreHistogram:
        if data.get("scale_bits") != SCALE_BITS:
            raise ValueError(
                f"histogram sums in units of 2^-{data.get('scale_bits')}, expected 2^-{SCALE_BITS}"
            )
        histogram = cls(int(data["bins"]))
        for d, b, rows, total, squares in data["cells"]:
            histogram.counts[d, b] += rows
            histogram.sums[d, b] += total
            histogram.squares[d, b] += squares
        return histogram

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScoreHistogram):
            return NotImplemented
        return (
            self.bins == other.bins
            and np.array_equal(self.counts, other.counts)
            and np.array_equal(self.sums, other.sums)
            and np.array_equal(self.squares, other.squares)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable
