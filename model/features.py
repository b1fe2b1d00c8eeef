"""scikit-learn preprocessing + estimator pipelines, one builder per candidate family.

Every pipeline here converts to ONNX with parity below 1e-5 (checked at registration):
- linear models get scaled numerics and one-hot categories;
- tree models get raw numerics (no scaler: float64 scaling then float32 thresholds moves rows
  across splits, measured 1e-2 differences) and one-hot categories.
HistGradientBoosting's native categorical splits are not used: skl2onnx ignores them (wrong
probabilities, measured), so categories are one-hot encoded for it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from model.schema import FeatureSet, assert_no_leak


def _one_hot(feature_set: FeatureSet) -> OneHotEncoder:
    return OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype="float32")


def _preprocessor(feature_set: FeatureSet, scale: bool) -> ColumnTransformer:
    assert_no_leak(feature_set.columns)
    numeric = StandardScaler() if scale else "passthrough"
    return ColumnTransformer(
        [
            ("num", numeric, list(feature_set.numeric)),
            ("cat", _one_hot(feature_set), list(feature_set.categorical)),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )


def logistic_regression(feature_set: FeatureSet, seed: int) -> Pipeline:
    return Pipeline(
        [
            ("pre", _preprocessor(feature_set, scale=True)),
            ("clf", LogisticRegression(max_iter=2000, C=0.5, random_state=seed)),
        ]
    )


def hist_gradient_boosting(feature_set: FeatureSet, seed: int) -> Pipeline:
    clf = HistGradientBoostingClassifier(
        learning_rate=0.05,
        max_iter=300,
        max_leaf_nodes=15,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.15,
        n_iter_no_change=20,
        random_state=seed,
    )
    return Pipeline([("pre", _preprocessor(feature_set, scale=False)), ("clf", clf)])


def random_forest(feature_set: FeatureSet, seed: int) -> Pipeline:
    # Depth is capped: ONNX Runtime scores deep forests slower than sklearn (measured), and the
    # model file stays small.
    clf = RandomForestClassifier(
        n_estimators=200, max_depth=12, min_samples_leaf=10, n_jobs=2, random_state=seed
    )
    return Pipeline([("pre", _preprocessor(feature_set, scale=False)), ("clf", clf)])


@dataclass(frozen=True)
class Candidate:
    name: str
    build: Callable[[FeatureSet, int], Pipeline]


CANDIDATES = {
    "logreg": Candidate("logreg", logistic_regression),
    "hgb": Candidate("hgb", hist_gradient_boosting),
    "rf": Candidate("rf", random_forest),
}
