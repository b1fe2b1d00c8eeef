"""The training distribution of every feature and of the scores, stored as reference.json.

Drift monitoring compares each scored batch with it, so the bins are fixed here, at training
time. Two descriptions per numeric column (and for the scores):
- deciles (`bin_edges` + `proportions`, 20 equal-width bins for the scores): the bins of the
  population stability index, kept as they always were;
- a quantile sketch (`sketch`: `knots` + `counts`), fine enough for the Wasserstein distance and
  the Kolmogorov-Smirnov test. Its knots are every distinct training value when there are at most
  `EXACT_DISTINCT` of them (then the sketch *is* the training distribution), otherwise the
  training values at the 0th, 1st, ..., 100th percentiles. Its cells are: below the first knot,
  each knot itself (an atom: discrete features pile up on a few values), each open interval
  between two knots, above the last knot; `counts` are the training rows in each cell and
  `positions` their mean place inside it (a fraction of its width), so a distance integrates the
  CDFs where the rows really are, not as if they were spread evenly.
A reference.json written before the sketch existed still works: `sketch_of` rebuilds a coarse
sketch from the deciles (or from the 20 score bins), and says so in `Sketch.source`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from model.schema import InputSchema

SCORE_BINS = 20
SKETCH_QUANTILES = 100  # equal-mass intervals of a continuous column's sketch
EXACT_DISTINCT = 2 * SKETCH_QUANTILES  # up to this many distinct values, every value is a knot
VALUE_TOLERANCE = (1e-6, 0.0)  # a value this close to a knot is that knot (float32 holds ~7 digits)
_LOOKUP_SPAN = 1 << 17  # whole numbers looked up in a table (of int32) rather than searched
SCORE_TOLERANCE = (0.0, 1e-5)  # scores: ONNX and the fitted pipeline agree to 1e-5 (model.onnx_export)


def numeric_counts(inner_edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Counts per bin (-inf, e0), [e0, e1), ..., [e_last, inf): the bins of reference.json and of drift."""
    return np.bincount(np.searchsorted(inner_edges, values, side="right"), minlength=len(inner_edges) + 1)


def score_counts(scores: np.ndarray) -> np.ndarray:
    return np.histogram(scores, bins=SCORE_BINS, range=(0.0, 1.0))[0]


@dataclass(frozen=True)
class Sketch:
    """Cells on the value axis and the reference's share of each; how a batch is counted on them.

    Cell 0 is below the first edge and the last cell above the last edge (the reference has no
    mass there). With `atoms`, the interior cells alternate: edge e_i itself (within `tolerance`:
    serving may hand over a float32 where training stored a float64), then the open interval to
    e_i+1; without (an old reference's deciles or score bins), they are [e_i, e_i+1), the last
    closed. Inside an interval only the mean place of the rows is known (`positions`; an old
    reference has none, and both sides are then taken as spread evenly).
    """

    edges: np.ndarray
    atoms: bool
    reference: np.ndarray  # the reference's rows per cell (fractional for an old reference)
    std: float  # of the reference values: normalises the Wasserstein distance
    source: str  # "distinct", "quantiles", or the fallbacks "deciles", "score_bins"
    tolerance: tuple[float, float] = VALUE_TOLERANCE  # (relative, absolute) width of an atom
    positions: np.ndarray | None = None  # reference's mean place in each cell (0: lower end, 1: upper)

    @property
    def cells(self) -> int:
        return 2 * len(self.edges) + 1 if self.atoms else len(self.edges) + 1

    def _atom_ends(self) -> tuple[np.ndarray, np.ndarray]:
        relative, absolute = self.tolerance
        half = relative * np.abs(self.edges) + absolute
        if len(self.edges) > 1:  # atoms never overlap, whatever the spacing of the knots
            gaps = np.diff(self.edges) / 3
            half = np.minimum(half, np.minimum(np.append(gaps, np.inf), np.insert(gaps, 0, np.inf)))
        return self.edges - half, self.edges + half

    @cached_property
    def whole_numbers(self) -> tuple[float, np.ndarray] | None:
        """The cell of every whole number across the sketch, when few: most columns hold counts and ages."""
        first, last = math.floor(self.edges[0]) - 1, math.ceil(self.edges[-1]) + 1
        if last - first > _LOOKUP_SPAN:
            return None
        return float(first), self._searched(np.arange(first, last + 1, dtype=np.float64)).astype(np.int32)

    def cell_of(self, values: np.ndarray) -> np.ndarray:
        lookup = self.whole_numbers
        if lookup is None:
            return self._searched(values)
        start, table = lookup
        index = values - start
        whole = (index >= 0) & (index < len(table)) & (index == np.floor(index))
        if whole.all():
            return table[index.astype(np.intp)].astype(np.intp)
        cells = self._searched(values)
        cells[whole] = table[index[whole].astype(np.intp)]
        return cells

    def _searched(self, values: np.ndarray) -> np.ndarray:
        if self.atoms:  # one search over the atoms' ends l0 <= u0 < l1 <= u1 ...: [l_i, u_i] is cell 2i + 1
            ends = self._ends_in_order()
            cells = np.searchsorted(ends, values, "right")
            on_upper = (cells % 2 == 0) & (cells > 0)
            on_upper[on_upper] = values[on_upper] == ends[cells[on_upper] - 1]
            cells[on_upper] -= 1
            return cells
        cells = np.searchsorted(self.edges, values, "right")
        cells[values == self.edges[-1]] -= 1  # the last interval is closed
        return cells

    def _ends_in_order(self) -> np.ndarray:
        lower, upper = self._atom_ends()
        return np.column_stack([lower, upper]).ravel()

    def count(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.cell_of(values), minlength=self.cells)

    def distances(self, values: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """Each value's distance from the lower end of its cell (in a tail: from the interior's end)."""
        lower, _ = self.bounds()
        first, last = self.ends()
        return np.abs(values - np.concatenate([[first], lower, [last]])[cells])

    def widths(self) -> np.ndarray:
        lower, upper = self.bounds()
        return np.concatenate([[0.0], upper - lower, [0.0]])

    def ends(self) -> tuple[float, float]:
        """Where the interior ends on either side: the tails' cells start there."""
        lower, upper = self._atom_ends() if self.atoms else (self.edges, self.edges)
        return float(lower[0]), float(upper[-1])

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper ends of the interior cells, in order (an atom's are within the tolerance)."""
        if self.atoms:
            ends = self._ends_in_order()
            return ends[:-1], ends[1:]
        return self.edges[:-1], self.edges[1:]


def _sketch(clean: np.ndarray, tolerance: tuple[float, float] = VALUE_TOLERANCE) -> dict[str, Any]:
    distinct = np.unique(clean)
    if len(distinct) <= EXACT_DISTINCT:
        knots, source = distinct, "distinct"
    else:
        levels = np.linspace(0, 1, SKETCH_QUANTILES + 1)
        knots, source = np.unique(np.quantile(clean, levels, method="inverted_cdf")), "quantiles"
    sketch = Sketch(knots, True, np.zeros(0), 0.0, source, tolerance)
    cells = sketch.cell_of(clean)
    counts = np.bincount(cells, minlength=sketch.cells)
    offsets = np.bincount(cells, weights=sketch.distances(clean, cells), minlength=sketch.cells)
    room = counts * sketch.widths()
    positions = np.divide(offsets, room, out=np.full(sketch.cells, 0.5), where=room > 0)
    return {
        "source": source,
        "knots": knots.tolist(),
        "counts": counts.tolist(),
        "positions": np.round(positions, 6).tolist(),  # where the rows lie inside each interval
    }


def _numeric(values: pd.Series) -> dict[str, Any]:
    clean = values.dropna().astype(float)
    edges = np.unique(np.quantile(clean, np.linspace(0, 1, 11)))
    inner = edges[1:-1]
    counts = numeric_counts(inner, clean.to_numpy())
    return {
        "kind": "numeric",
        "bin_edges": inner.tolist(),  # bins: (-inf, e0), [e0, e1), ..., [e_last, inf)
        "proportions": (counts / max(1, len(clean))).tolist(),
        "mean": float(clean.mean()),
        "std": float(clean.std(ddof=0)),
        "min": float(clean.min()),
        "max": float(clean.max()),
        "missing": float(values.isna().mean()),
        "sketch": _sketch(clean.to_numpy()),
    }


def _categorical(values: pd.Series) -> dict[str, Any]:
    shares = values.astype(str).value_counts(normalize=True).sort_index()
    return {"kind": "categorical", "proportions": {str(k): float(v) for k, v in shares.items()}}


def build_reference(
    features: pd.DataFrame,
    schema: InputSchema,
    scores: np.ndarray,
    importance: dict[str, float] | None = None,
) -> dict[str, Any]:
    """reference.json; `importance` (permutation importance per feature) weighs the dataset verdict."""
    histogram = score_counts(scores)
    clean = np.asarray(scores, dtype=np.float64)
    reference: dict[str, Any] = {
        "rows": len(features),
        "features": {
            **{c: _numeric(features[c]) for c in schema.numeric},
            **{c: _categorical(features[c]) for c in schema.categorical},
        },
        "scores": {
            "bins": SCORE_BINS,
            "proportions": (histogram / max(1, len(scores))).tolist(),
            "std": float(clean.std()) if len(clean) else 0.0,
            "sketch": _sketch(clean, SCORE_TOLERANCE),
        },
    }
    if importance is not None:
        reference["importance"] = {k: float(v) for k, v in importance.items()}
    return reference


def sketch_of(spec: dict[str, Any], rows: int, tolerance: tuple[float, float] = VALUE_TOLERANCE) -> Sketch:
    """The sketch of a numeric column's spec, or one rebuilt from its deciles (an old reference.json)."""
    if "sketch" in spec:
        stored = spec["sketch"]
        edges = np.asarray(stored["knots"], dtype=np.float64)
        counts = np.asarray(stored["counts"], dtype=np.float64)
        positions = np.asarray(stored["positions"], dtype=np.float64)
        return Sketch(edges, True, counts, spec["std"], stored["source"], tolerance, positions)
    edges = np.array([spec["min"], *spec["bin_edges"], spec["max"]], dtype=np.float64)
    present = rows * (1.0 - spec.get("missing", 0.0))
    shares = np.array([0.0, *spec["proportions"], 0.0])
    return Sketch(edges, False, shares * present, spec["std"], "deciles")


def score_sketch(scores: dict[str, Any], rows: int) -> Sketch:
    """The scores' sketch, or one rebuilt from the 20 score bins (an old reference.json)."""
    if "sketch" in scores:
        return sketch_of(scores, rows, SCORE_TOLERANCE)
    edges = np.linspace(0.0, 1.0, scores["bins"] + 1)
    shares = np.asarray(scores["proportions"], dtype=np.float64)
    middles = (edges[:-1] + edges[1:]) / 2
    mean = float(shares @ middles)
    std = float(np.sqrt(shares @ (middles - mean) ** 2))  # from the bins: all an old reference has
    return Sketch(edges, False, np.array([0.0, *(shares * rows), 0.0]), std, "score_bins")
