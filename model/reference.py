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


def _numeric(values: pd.Series) -> dict[str, Any]:
    clean = values.dropna().astype(float)
    edges = np.unique(np.quantile(clean, np.linspace(0, 1, 11)))
    inner = edges[1:-1]
    counts = np.bincount(np.searchsorted(inner, clean, side="right"), minlength=len(inner) + 1)
    return {
        "kind": "numeric",
        "bin_edges": inner.tolist(),  # bins: (-inf, e0], (e0, e1], ..., (e_last, inf)
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
    histogram, _ = np.histogram(scores, bins=SCORE_BINS, range=(0.0, 1.0))
    return {
        "rows": len(features),
        "features": {
            **{c: _numeric(features[c]) for c in schema.numeric},
            **{c: _categorical(features[c]) for c in schema.categorical},
        },
        "scores": {"bins": SCORE_BINS, "proportions": (histogram / max(1, len(scores))).tolist()},
    }
