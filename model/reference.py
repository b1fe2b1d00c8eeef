"""The training distribution of every feature and of the scores, stored as reference.json.

Drift monitoring compares each scored batch with it (population stability index on the same
bins), so the bins are fixed here, at training time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from model.schema import InputSchema

SCORE_BINS = 20


def numeric_counts(inner_edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Counts per bin (-inf, e0), [e0, e1), ..., [e_last, inf): the bins of reference.json and of drift."""
    return np.bincount(np.searchsorted(inner_edges, values, side="right"), minlength=len(inner_edges) + 1)


def score_counts(scores: np.ndarray) -> np.ndarray:
    return np.histogram(scores, bins=SCORE_BINS, range=(0.0, 1.0))[0]


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
    }


def _categorical(values: pd.Series) -> dict[str, Any]:
    shares = values.astype(str).value_counts(normalize=True).sort_index()
    return {"kind": "categorical", "proportions": {str(k): float(v) for k, v in shares.items()}}


def build_reference(features: pd.DataFrame, schema: InputSchema, scores: np.ndarray) -> dict[str, Any]:
    histogram = score_counts(scores)
    return {
        "rows": len(features),
        "features": {
            **{c: _numeric(features[c]) for c in schema.numeric},
            **{c: _categorical(features[c]) for c in schema.categorical},
        },
        "scores": {"bins": SCORE_BINS, "proportions": (histogram / max(1, len(scores))).tolist()},
    }
