"""Data drift of scored batches against the model's reference.json (docs/monitoring.md).

Counts are kept per reference cell and add up, so shards of one input are counted separately and
merged, and the summary is exactly the same as if the file had been scored in one piece; memory
is a few hundred integers per feature, whatever the batch size. The summary, per feature and for
the scores: above `small_batch_rows` rows a distance (normalised Wasserstein for numbers,
Jensen-Shannon for categories) against a fixed threshold; at or below it a test
(Kolmogorov-Smirnov, chi-squared) whose p-values are controlled for false discoveries across
features, since a distance on few rows is mostly noise. PSI on the decile bins beside either, and
what chance alone reaches at that batch size (`detectable`). The dataset verdict is the share of
drifted features, weighted by permutation importance when reference.json carries it.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from dataclasses import asdict
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from model import drift_stats as stats
from model.drift_config import DEFAULT_CONFIG, DriftConfig
from model.drift_values import WholeNumberTable
from model.reference import SCORE_BINS, Sketch, numeric_counts, score_counts, score_sketch, sketch_of

_EPSILON = 1e-4  # share given to an empty bin, so a category seen on one side only counts but stays finite
_MAX_CATEGORIES = 200  # distinct values kept per column; more (garbage in a category column) are pooled
_UNITS_PER_STD = 1024  # resolution of the places inside cells (integers, so shards add up exactly)
_MAX_UNITS = 2**32  # one value counts at most this far from its cell (4 million standard deviations)


def psi(expected: dict[str, float], actual: dict[str, float]) -> float:
    """Population stability index between two distributions over the same (or overlapping) bins."""
    total = 0.0
    for key in set(expected) | set(actual):
        e = max(expected.get(key, 0.0), _EPSILON)
        a = max(actual.get(key, 0.0), _EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def shares(counts: dict[str, float] | np.ndarray) -> dict[str, float]:
    """Counts (or proportions) as shares keyed by bin or category."""
    items = counts.items() if isinstance(counts, dict) else enumerate(counts.tolist())
    pairs = [(str(k), float(v)) for k, v in items]
    total = sum(v for _, v in pairs)
    return {k: v / total for k, v in pairs} if total else {}


def seed_of(name: str, rows: int) -> int:
    """The simulations' seed: the same feature and batch size always give the same `detectable`."""
    return zlib.crc32(f"{name}:{rows}".encode())


def _unit(sketch: Sketch) -> float:
    return max(sketch.std, 0.001) / _UNITS_PER_STD  # as Evidently: a constant column does not divide by 0


def _units(sketch: Sketch, values: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Each value's distance from its cell's lower end, in integer units of 1/1024 reference std.

    0 in an atom's cell (the odd cells of a sketch with atoms): an atom has no room inside, so its
    rows are counted only (most rows of a column of counts).
    """
    units = np.minimum(np.rint(sketch.distances(values, cells) / _unit(sketch)), _MAX_UNITS).astype(np.int64)
    if sketch.atoms:
        units[cells % 2 == 1] = 0
    return units


def _counted(sketch: Sketch, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows per cell, and per cell the summed distance of its rows from its lower end (in a tail: from
    the interior's end), in 1/1024 reference std: integers, summed exactly whatever the order."""
    cells = sketch.cell_of(values)
    counts = np.bincount(cells, minlength=sketch.cells)
    units = _units(sketch, values, cells)
    if len(units) == 0 or int(units.max()) * len(units) < 2**53:  # float sums of integers stay exact
        return counts, np.bincount(cells, weights=units, minlength=sketch.cells).astype(np.int64)
    order = np.argsort(cells, kind="stable")
    running = np.concatenate([[0], np.cumsum(units[order])])
    starts = np.searchsorted(cells[order], np.arange(sketch.cells + 1))
    return counts, running[starts[1:]] - running[starts[:-1]]


class DriftCounts:
    """Counts of the scored rows' features and scores, on the bins and cells of one reference.json."""

    def __init__(self, reference: dict[str, Any]) -> None:
        self.reference = reference
        features = reference.get("features", {})
        reference_rows = int(reference.get("rows", 0))
        self.rows = 0
        self.score_sum = 0.0
        numeric = {name: spec for name, spec in features.items() if spec.get("kind") == "numeric"}
        self.numeric = {
            n: np.zeros(len(spec["bin_edges"]) + 1, dtype=np.int64) for n, spec in numeric.items()
        }
        self.sketches = {name: sketch_of(spec, reference_rows) for name, spec in numeric.items()}
        self.fine = {name: np.zeros(s.cells, dtype=np.int64) for name, s in self.sketches.items()}
        self.edges = {name: np.asarray(spec["bin_edges"], dtype=np.float64) for name, spec in numeric.items()}
        self.offsets = {name: np.zeros(s.cells, dtype=np.int64) for name, s in self.sketches.items()}
        self.categorical: dict[str, Counter[str]] = {
            name: Counter() for name, spec in features.items() if spec.get("kind") == "categorical"
        }
        self.scores = np.zeros(SCORE_BINS, dtype=np.int64)
        spec = reference.get("scores", {})
        self.score_sketch = score_sketch(spec, reference_rows) if spec.get("proportions") else None
        self.score_fine = np.zeros(self.score_sketch.cells if self.score_sketch else 0, dtype=np.int64)
        self.score_offsets = np.zeros_like(self.score_fine)

    @cached_property
    def tables(self) -> dict[str, WholeNumberTable | None]:
        """Whole-number columns, counted by value first (model.drift_values); built at the first
        `add`, since counts read from a shard's result or merged never need them."""
        return {
            name: WholeNumberTable.build(s, self.edges[name], _units) for name, s in self.sketches.items()
        }

    def add(self, features: pd.DataFrame, scores: np.ndarray) -> None:
        """Count a batch of prepared feature rows (as fed to the model) and their probabilities."""
        if len(features) == 0:
            return
        self.rows += len(features)
        self.score_sum += float(np.sum(scores, dtype=np.float64))
        self.scores += score_counts(scores)
        if self.score_sketch is not None:
            counts, offsets = _counted(self.score_sketch, np.asarray(scores, dtype=np.float64))
            self.score_fine += counts
            self.score_offsets += offsets
        for name, counts in self.numeric.items():  # a version without reference.json counts scores only
            if name in features:
                values = features[name].to_numpy(dtype=np.float64)
                table = self.tables[name]
                counted = None if table is None else table.count(values)
                if counted is None:
                    bins = numeric_counts(self.edges[name], values)
                    fine, offsets = _counted(self.sketches[name], values[~np.isnan(values)])
                else:
                    bins, fine, offsets = counted
                counts += bins
                self.fine[name] += fine
                self.offsets[name] += offsets
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
        self.score_fine += other.score_fine
        self.score_offsets += other.score_offsets
        for name, counts in other.numeric.items():
            self.numeric[name] += counts
            self.fine[name] += other.fine[name]
            self.offsets[name] += other.offsets[name]
        for name, counter in other.categorical.items():
            for value, count in counter.items():
                self.categorical[name][self._category(self.categorical[name], value)] += count

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "score_sum": self.score_sum,
            "scores": self.scores.tolist(),
            "score_fine": self.score_fine.tolist(),
            "score_offsets": self.score_offsets.tolist(),
            "numeric": {k: v.tolist() for k, v in self.numeric.items()},
            "fine": {k: v.tolist() for k, v in self.fine.items()},
            "offsets": {k: v.tolist() for k, v in self.offsets.items()},
            "categorical": {k: dict(v) for k, v in self.categorical.items()},
        }

    @classmethod
    def from_dict(cls, reference: dict[str, Any], data: dict[str, Any]) -> DriftCounts:
        counts = cls(reference)
        counts.rows = int(data["rows"])
        counts.score_sum = float(data["score_sum"])
        counts.scores = np.asarray(data["scores"], dtype=np.int64)
        counts.score_fine = np.asarray(data["score_fine"], dtype=np.int64)
        counts.score_offsets = np.asarray(data["score_offsets"], dtype=np.int64)
        counts.numeric = {k: np.asarray(v, dtype=np.int64) for k, v in data["numeric"].items()}
        counts.fine = {k: np.asarray(v, dtype=np.int64) for k, v in data["fine"].items()}
        counts.offsets = {k: np.asarray(v, dtype=np.int64) for k, v in data["offsets"].items()}
        counts.categorical = {k: Counter(v) for k, v in data["categorical"].items()}
        return counts

    def summary(self, config: DriftConfig = DEFAULT_CONFIG) -> dict[str, Any]:
        """The batch's drift report (every field is described in docs/monitoring.md)."""
        small = self.rows <= config.small_batch_rows
        features: dict[str, dict[str, Any]] = {}
        for name, sketch in self.sketches.items():
            entry = self._distribution(name, sketch, self.fine[name], self.offsets[name], small, config)
            features[name] = entry | {"psi": self.numeric_psi(name), "sketch": sketch.source}
        for name in self.categorical:
            features[name] = self._categories(name, small, config) | {"psi": self.categorical_psi(name)}
        _decide([e for e in features.values() if "_test" in e], config.alpha)
        scores: dict[str, Any] = {"mean": self.score_sum / self.rows if self.rows else None}
        if self.score_sketch is not None:
            sketch = self.score_sketch
            entry = self._distribution("(scores)", sketch, self.score_fine, self.score_offsets, small, config)
            _decide([entry] if "_test" in entry else [], config.alpha)  # a test of its own, not in the family
            scores |= entry | {"psi": self.score_psi(), "sketch": sketch.source}
        weights, weighted_by = self._weights(
            [n for n, e in features.items() if e["value"] is not None], config
        )
        drifted = sorted(n for n, e in features.items() if e["drifted"])
        total = sum(weights.values())
        share = sum(weights[n] for n in drifted) / total if total else 0.0
        dataset = bool(self.rows) and total > 0 and share >= config.drift_share
        return {
            "rows": self.rows,
            "status": _status(self.rows, dataset, bool(scores.get("drifted")), bool(drifted)),
            "drifted": dataset,
            "drift_share": _rounded(share),
            "drifted_features": drifted,
            "method": "tests" if small else "distances",
            "weighted_by": weighted_by,
            "features": {n: _tidy(e) for n, e in features.items()},
            "scores": _tidy(scores),
            "thresholds": asdict(config),
            "notes": self._notes(),
        }

    def _distribution(
        self,
        name: str,
        sketch: Sketch,
        fine: np.ndarray,
        offsets: np.ndarray,
        small: bool,
        config: DriftConfig,
    ) -> dict[str, Any]:
        """Kolmogorov-Smirnov (small batch) or normalised Wasserstein of a numeric column or the scores."""
        rows = int(fine.sum())
        if not rows:
            return _empty("ks" if small else "wasserstein")
        reference = sketch.reference / sketch.reference.sum()
        batch = fine / rows
        if small:
            effective = _effective(rows, float(sketch.reference.sum()))
            d = float(stats.ks_statistic(reference, batch))
            return _tested("ks", stats.ks_sf(d, effective), d, ("ks", effective))
        widths, unit = sketch.widths(), _unit(sketch)
        norm = unit * _UNITS_PER_STD
        places = sketch.positions if sketch.positions is not None else np.full(sketch.cells, 0.5)
        if sketch.positions is None:  # an old reference: both sides taken as spread evenly in a cell
            lean = batch * places
        else:
            lean = np.divide(offsets * unit, rows * widths, out=np.zeros(sketch.cells), where=widths > 0)
            lean[1::2] = batch[1::2] * places[1::2]  # atoms: where the reference's rows are
        interior = stats.wasserstein_interior(widths, reference, reference * places, batch, lean)
        value = (float(interior) + int(offsets[0] + offsets[-1]) * unit / rows) / norm

        def chance(b: np.ndarray) -> np.ndarray:  # a batch drawn from the reference itself
            return stats.wasserstein_interior(widths, reference, reference * places, b, b * places) / norm

        seed = seed_of(name, rows)
        noise = stats.null_quantile(chance, reference, rows, config.noise_quantile, config.simulations, seed)
        return _judged("wasserstein", value, config.wasserstein, noise, config.beyond_chance)

    def _categories(self, name: str, small: bool, config: DriftConfig) -> dict[str, Any]:
        """Chi-squared (small batch) or Jensen-Shannon distance of one categorical column; unseen values."""
        counter = self.categorical[name]
        known: dict[str, float] = self.reference["features"][name]["proportions"]
        unseen = sorted(set(counter) - set(known))
        seen = {"unseen": unseen[:20], "unseen_rows": sum(counter[k] for k in unseen)}
        rows = sum(counter.values())
        if not rows:
            return _empty("chi2" if small else "jensen_shannon") | seen
        keys = sorted(set(known) | set(counter))
        reference = np.array([known.get(k, 0.0) for k in keys])
        batch = np.array([counter.get(k, 0) for k in keys], dtype=np.float64)
        if small:
            reference_rows = float(self.reference.get("rows", 0)) or float(rows)
            chi2, dof, _ = stats.chi2_homogeneity(reference * reference_rows, batch, config.min_expected)
            effective = _effective(rows, reference_rows)
            effect = math.sqrt(chi2 / effective)  # Cohen's w
            return _tested("chi2", stats.chi2_sf(chi2, dof), effect, ("chi2", effective, dof)) | seen
        value = float(stats.jensen_shannon(reference, batch))
        present = reference[reference > 0]
        seed = seed_of(name, rows)

        def distance(b: np.ndarray) -> np.ndarray:
            return stats.jensen_shannon(present, b)

        noise = stats.null_quantile(distance, present, rows, config.noise_quantile, config.simulations, seed)
        return _judged("jensen_shannon", value, config.jensen_shannon, noise, config.beyond_chance) | seen

    def _notes(self) -> list[str]:
        coarse = [n for n, s in self.sketches.items() if s.source == "deciles"]
        if self.score_sketch is not None and self.score_sketch.source == "score_bins":
            coarse.append("(scores)")
        if not coarse:
            return []
        return [
            f"reference.json has no quantile sketch for {', '.join(coarse)} (written before it existed): "
            "their Wasserstein and KS figures use its decile (score) bins, which see less"
        ]

    def _weights(self, names: list[str], config: DriftConfig) -> tuple[dict[str, float], str]:
        """Each feature's weight in the drift share: its permutation importance (clipped at 0) or 1."""
        importance = self.reference.get("importance") if config.weight_by_importance else None
        if importance:
            weights = {n: max(float(importance.get(n, 0.0)), 0.0) for n in names}
            if sum(weights.values()) > 0:
                return weights, "importance"
        return {n: 1.0 for n in names}, "features"

    def numeric_psi(self, name: str) -> float:
        spec = self.reference["features"][name]
        return psi(shares(np.asarray(spec["proportions"])), shares(self.numeric[name]))

    def categorical_psi(self, name: str) -> float:
        spec = self.reference["features"][name]
        return psi(spec["proportions"], shares(dict(self.categorical[name])))

    def score_psi(self) -> float | None:
        reference_scores = self.reference.get("scores", {}).get("proportions")
        return psi(shares(np.asarray(reference_scores)), shares(self.scores)) if reference_scores else None


def _effective(rows: int, reference_rows: float) -> int:
    """The two-sample size n N / (n + N), rounded, as scipy's ks_2samp uses it."""
    return max(1, round(rows * reference_rows / (rows + reference_rows))) if reference_rows else rows


def _status(rows: int, dataset: bool, scores: bool, features: bool) -> str:
    """empty: no rows; alert: the dataset or the scores drifted; warn: some feature did; else ok."""
    if not rows:
        return "empty"
    return "alert" if dataset or scores else "warn" if features else "ok"


def _empty(statistic: str) -> dict[str, Any]:
    return {"statistic": statistic, "value": None, "threshold": None, "drifted": False, "detectable": None}


def _judged(statistic: str, value: float, threshold: float, noise: float, beyond: bool) -> dict[str, Any]:
    """A distance drifts at its threshold, and (`beyond`) only where chance alone does not reach it."""
    drifted = value >= threshold and (not beyond or value > noise)
    return {
        "statistic": statistic,
        "value": value,
        "threshold": threshold,
        "drifted": drifted,
        "detectable": noise,
    }


def _tested(statistic: str, p_value: float, effect: float, test: tuple[Any, ...]) -> dict[str, Any]:
    """A test's entry; its threshold, verdict and `detectable` wait for the other features' p-values."""
    entry = _empty(statistic) | {"value": p_value, "effect": effect, "q_value": None}
    return entry | {"_test": test}


def _decide(tested: list[dict[str, Any]], alpha: float) -> None:
    """Benjamini-Hochberg over the tested entries; `detectable` is the effect that cut-off needs."""
    q_values, cutoff = stats.benjamini_hochberg([e["value"] for e in tested], alpha)
    for entry, q in zip(tested, q_values, strict=True):
        kind, effective, *dof = entry.pop("_test")
        if kind == "ks":
            detectable = stats.ks_critical(effective, cutoff)
        else:
            detectable = math.sqrt(stats.chi2_critical(dof[0], cutoff) / effective)
        drifted = entry["value"] <= cutoff
        entry |= {"threshold": cutoff, "drifted": drifted, "q_value": q, "detectable": detectable}


def _rounded(value: Any) -> Any:
    """Six significant digits: a p-value of 1e-30 stays one."""
    return float(f"{value:.6g}") if isinstance(value, float) else value


def _tidy(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: bool(v) if k == "drifted" else _rounded(v) for k, v in entry.items() if not k.startswith("_")}
