"""Rolling-origin folds never train on a later row; the one-standard-error rule prefers the simpler."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.folds import rolling_origin
from model.selection import ConfigResult, Configuration, FoldResult, grid, select


@given(rows=st.integers(10, 100_000), folds=st.integers(1, 8), tail=st.floats(0.05, 0.9))
def test_folds_never_leak_and_cover_the_tail(rows: int, folds: int, tail: float) -> None:
    try:
        made = rolling_origin(rows, folds, tail)
    except ValueError:
        assert int(rows * tail) // folds < 1  # refused only when a block would be empty
        return
    assert len(made) == folds
    block = int(rows * tail) // folds
    assert made[-1].end == rows  # the last block ends at the newest row
    assert made[0].cut == rows - folds * block  # the blocks cover exactly the tail
    for i, fold in enumerate(made):
        assert fold.train.start == 0 and fold.train.stop == fold.cut >= 1  # every row before the cut
        assert fold.end - fold.cut == block  # equal blocks
        assert min(fold.validation) >= max(fold.train) + 1  # no validation row before or in training
        if i:
            assert fold.cut == made[i - 1].end  # contiguous
    assert rolling_origin(rows, folds, tail) == made  # deterministic


def test_the_bank_folds_are_the_last_three_tenths() -> None:
    assert [(f.cut, f.end) for f in rolling_origin(36_000, 3, 0.3)] == [
        (25_200, 28_800),
        (28_800, 32_400),
        (32_400, 36_000),
    ]


def test_folds_refuse_what_they_cannot_do() -> None:
    for rows, folds, tail in ((5, 3, 0.3), (100, 0, 0.3), (100, 3, 1.0)):
        with pytest.raises(ValueError):
            rolling_origin(rows, folds, tail)


def _result(config: Configuration, aucs: list[float]) -> ConfigResult:
    folds = rolling_origin(100 * len(aucs), len(aucs), 0.5)
    return ConfigResult(
        config,
        [
            FoldResult(f, {"roc_auc": a, "pr_auc": a / 3, "brier": 0.1}, f.cut, np.zeros(1))
            for f, a in zip(folds, aucs, strict=True)
        ],
        0.0,
        None,  # type: ignore[arg-type]
    )


def test_selection_prefers_the_simpler_configuration_within_noise() -> None:
    simple = _result(Configuration("logreg", "stable", "none"), [0.60, 0.62, 0.70])
    complex_ = _result(Configuration("rf", "all", "halflife"), [0.62, 0.63, 0.72])  # best mean, SE 0.03
    weighted = _result(Configuration("logreg", "stable", "window"), [0.61, 0.63, 0.71])
    assert select([complex_, weighted, simple]).config == simple.config
    # Beyond one standard error the better configuration wins.
    clearly = _result(Configuration("hgb", "all", "none"), [0.70, 0.71, 0.72])  # mean 0.71, SE 0.006
    assert select([simple, clearly]).config == clearly.config
    # Fewer features is simpler when family and weighting tie.
    more = _result(Configuration("logreg", "all", "none"), [0.60, 0.62, 0.71])
    assert select([more, simple]).config == simple.config


def test_the_grid_refuses_unknown_names_and_prunes_weighted_forests() -> None:
    with pytest.raises(ValueError, match="unknown feature set"):
        grid(["logreg"], ["al"], ["none"])
    keys = {c.key for c in grid(["logreg", "rf"], ["all"], ["none", "halflife"])}
    assert keys == {"logreg/all/none", "logreg/all/halflife", "rf/all/none"}
