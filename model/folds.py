"""Rolling-origin folds over time-ordered rows: train on the past, validate on the block after it.

The model scores clients later than any it was trained on, and the bank data drift strongly over
time (the subscription rate quadruples; `contact` and `poutcome` are "unknown" in the early rows),
so shuffled folds, which train on the future, overstate what a model will do. Here every fold
trains on every row before its cut and validates on the next block; the blocks are equal and
cover the tail of the data, the last one ending at the newest row. Pure: row positions only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fold:
    """Train on rows [0, cut), validate on rows [cut, end): positions in time order."""

    index: int
    cut: int
    end: int

    @property
    def train(self) -> range:
        return range(0, self.cut)

    @property
    def validation(self) -> range:
        return range(self.cut, self.end)

    def describe(self, rows: int) -> str:
        return (
            f"fold {self.index + 1}: train rows 1-{self.cut:,} (first {self.cut / rows:.0%}), "
            f"validate rows {self.cut + 1:,}-{self.end:,}"
        )


def rolling_origin(rows: int, folds: int, tail_fraction: float) -> list[Fold]:
    """`folds` equal contiguous blocks covering the last `tail_fraction` of `rows`, oldest first.

    The block size is `floor(rows * tail_fraction / folds)`; the few rows the floor leaves over
    go to the training side of the first fold, so the last block always ends at the newest row
    (the fold closest to the clients the model will score). Refuses folds without training rows.
    """
    if folds < 1:
        raise ValueError(f"need at least one fold, not {folds}")
    if not 0 < tail_fraction < 1:
        raise ValueError(f"the validated tail must be a fraction in (0, 1), not {tail_fraction}")
    block = int(rows * tail_fraction) // folds
    first_cut = rows - folds * block
    if block < 1 or first_cut < 1:
        raise ValueError(f"{rows} rows are too few for {folds} folds over the last {tail_fraction:.0%}")
    return [Fold(i, first_cut + i * block, first_cut + (i + 1) * block) for i in range(folds)]
