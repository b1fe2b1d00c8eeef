"""Drift counts of a column of whole numbers, by value first: one pass over the rows, not three.

Most numeric columns of a scored batch hold counts and ages (`campaign`, `pdays`, `age`): whole
numbers within a span of at most `model.reference._LOOKUP_SPAN`. For those, `DriftCounts.add`
needs three things per chunk (the decile bin of every row, its sketch cell, and its distance from
the cell's end in integer units), each a pass over the rows with a search or a lookup. Counting
the rows per whole number once (`np.bincount`) and reading the three from tables built once per
reference gives the same integers exactly (a property test compares them with the per-row path)
at about a third of the cost (docs/benchmarks.md, throughput issue). A chunk with a value outside
the span, or not whole, is counted the per-row way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from model.reference import Sketch

Units = Callable[
    [Sketch, np.ndarray, np.ndarray], np.ndarray
]  # (sketch, values, their cells) -> int64 (0: an atom)


@dataclass(frozen=True)
class WholeNumberTable:
    """Per whole number of the span: its decile bin, its sketch cell and its distance units."""

    start: float  # the whole number at index 0
    bins: np.ndarray  # intp: decile bin of each whole number
    cells: np.ndarray  # intp: sketch cell of each whole number
    units: np.ndarray  # int64: distance units of each whole number (0 where an atom is only counted)
    bin_count: int
    cell_count: int

    @classmethod
    def build(cls, sketch: Sketch, inner_edges: np.ndarray, units: Units) -> WholeNumberTable | None:
        """The table of a sketch whose whole numbers are looked up; None when they are searched."""
        lookup = sketch.whole_numbers
        if lookup is None:
            return None
        start, cells = lookup
        values = start + np.arange(len(cells), dtype=np.float64)
        cells = cells.astype(np.intp)
        return cls(
            start=start,
            bins=np.searchsorted(inner_edges, values, side="right"),
            cells=cells,
            units=units(sketch, values, cells),
            bin_count=len(inner_edges) + 1,
            cell_count=sketch.cells,
        )

    def count(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(decile counts, fine counts, offsets) of float64 `values`; None unless each is NaN or in the table.

        NaN counts in the last decile bin (where `numeric_counts` puts it) and in no cell, as the
        per-row path does.
        """
        index = values - self.start
        missing = np.isnan(index)
        if missing.any():
            index = index[~missing]
        if not ((index >= 0) & (index < len(self.cells)) & (index == np.floor(index))).all():
            return None
        per_value = np.bincount(index.astype(np.intp), minlength=len(self.cells))
        bins = np.bincount(self.bins, weights=per_value, minlength=self.bin_count).astype(np.int64)
        bins[-1] += int(missing.sum())
        fine = np.bincount(self.cells, weights=per_value, minlength=self.cell_count).astype(np.int64)
        seen = per_value.nonzero()[0]
        offsets = np.zeros(self.cell_count, dtype=np.int64)
        np.add.at(offsets, self.cells[seen], per_value[seen] * self.units[seen])  # int64: exact sums
        return bins, fine, offsets
