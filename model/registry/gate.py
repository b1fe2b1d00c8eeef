"""The promotion rules: the stage order, and the gate that compares a challenger with the champion.

Both models score the same labelled rows, exactly as in serving. The challenger must reach at
least champion - tolerance on the chosen metric, and pass the comparison of model/challenge.py:
a paired DeLong test of the ROC AUC difference, the Brier score, and no segment (contact type, age
band) worse beyond a tolerance. scikit-learn and the statistics are imported only when the gate
runs, so importing the registry stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from model.registry.errors import PromotionRefused, RegistryError
from model.registry.layout import STAGES

if TYPE_CHECKING:
    import pandas as pd

    from model.challenge import GatePolicy
    from model.serving import LoadedModel

GATE_METRICS = ("pr_auc", "roc_auc")


def check_request(metric: str, override_reason: str | None) -> None:
    """Refuse a promotion request that names an unknown metric or overrides without a reason."""
    if metric not in GATE_METRICS:
        raise RegistryError(f"gate metric {metric!r} is not one of {GATE_METRICS}")
    if override_reason is not None and not override_reason.strip():
        raise RegistryError("override_reason must say why the checks are skipped (it is recorded)")


def check_order(name: str, version: str, stage: str, before: str, in_before: str | None) -> None:
    """Refuse `version` for `stage` unless the stage before it (`before`) serves it (`in_before`)."""
    if in_before != version:
        raise PromotionRefused(
            f"version {version} of {name!r} cannot go to {stage}: stages go "
            f"{' -> '.join(STAGES)}, and {before} serves {in_before or 'nothing'}, "
            f"not {version}. "
            f"Promote it to {before} first, or pass override_reason to skip the order (recorded)."
        )


def _labels(values: pd.Series) -> pd.Series:
    """The gate's labels as 0/1, from "yes"/"no", booleans or 0/1."""
    import pandas as pd

    text = values.astype(str).str.strip().str.lower()
    mapped = text.map({"yes": 1, "no": 0, "1": 1, "0": 0, "true": 1, "false": 0, "1.0": 1, "0.0": 0})
    bad = mapped.isna()
    if bad.any():
        examples = sorted(set(values[bad].astype(str)))[:5]
        raise RegistryError(f"gate data column 'y' must be yes/no or 0/1; found {examples}")
    return pd.Series(mapped.astype(int).to_numpy(), index=values.index)


def _segments(data: pd.DataFrame, rows: Any) -> dict[str, Any]:
    """The segments the gate judges separately, for the rows both models scored."""
    from model.challenge import age_band

    segments: dict[str, Any] = {}
    if "contact" in data.columns:
        segments["contact"] = data["contact"].astype(str).to_numpy()[rows]
    if "age" in data.columns:
        segments["age_band"] = age_band(data["age"].to_numpy(dtype=float)[rows])
    return segments


def evaluate_gate(
    challenger: LoadedModel,
    champion: LoadedModel,
    data: pd.DataFrame,
    metric: str = "pr_auc",
    policy: GatePolicy | None = None,
) -> dict[str, Any]:
    """Score both models on the same labelled rows and compute `metric` on rows both of them scored.

    Each model validates and prepares the raw rows itself, exactly as in serving; rows are matched
    by position (a row key replaces the id column in each model's copy), so duplicate or missing
    client ids cannot misalign them.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    if metric not in GATE_METRICS:
        raise RegistryError(f"gate metric {metric!r} is not one of {GATE_METRICS}")
    if "y" not in data.columns:
        raise RegistryError("gate data needs a 'y' column (yes/no or 0/1) with the true outcome of every row")
    if data.empty:
        raise RegistryError("gate data has no rows")
    labels = _labels(data["y"]).to_numpy()
    probabilities = []
    for model in (challenger, champion):
        frame = data.reset_index(drop=True).copy()
        frame[model.schema.id_column] = range(len(frame))
        scored, _ = model.predict(frame)
        probabilities.append(scored.set_index(model.schema.id_column)["probability"])
    common = probabilities[0].index.intersection(probabilities[1].index).sort_values()
    y = labels[common.to_numpy(dtype=int)]
    if len(set(y.tolist())) < 2:
        raise RegistryError(
            f"gate data has {len(common)} rows both models could score, but not both outcomes: "
            "the metric needs positives and negatives"
        )
    from model.challenge import compare

    score = average_precision_score if metric == "pr_auc" else roc_auc_score
    scores = [p.loc[common].to_numpy() for p in probabilities]
    values = [float(score(y, s)) for s in scores]
    rows = common.to_numpy(dtype=int)
    comparison = compare(y, scores[0], scores[1], _segments(data.reset_index(drop=True), rows), policy)
    return {
        "metric": metric,
        "challenger": values[0],
        "champion": values[1],
        "rows": len(common),
        "comparison": comparison,
    }


def gate_promotion(
    name: str,
    version: str,
    champion: str,
    stage: str,
    gate_data: pd.DataFrame | None,
    tolerance: float,
    metric: str,
    load: Callable[[str, str], LoadedModel],
    stand_in: LoadedModel | None = None,
    policy: GatePolicy | None = None,
) -> dict[str, Any]:
    """The gate record of a passed gate (as stored in the stage file); PromotionRefused otherwise.

    `stand_in` scores for the challenger instead of the registered version: a retrain gates the
    fit of its configuration on the rows before the gate window, then registers the refit on
    every row (model/retrain.py), since the refit has seen the window.
    """
    if gate_data is None:
        raise PromotionRefused(
            f"{stage} of {name!r} serves version {champion}: promoting version {version} over it needs "
            f"gate_data (labelled rows with a 'y' column) to compare {metric} on the same rows, or "
            "override_reason to skip the gate (recorded)."
        )
    challenger = stand_in if stand_in is not None else load(name, version)
    result = evaluate_gate(challenger, load(name, champion), gate_data, metric, policy)
    metric_passed = result["challenger"] >= result["champion"] - tolerance
    comparison = result["comparison"]
    passed = metric_passed and comparison["passed"]
    gate = {**result, "tolerance": tolerance, "passed": passed, "stand_in": stand_in is not None}
    if not passed:
        reasons = list(comparison["reasons"])
        if not metric_passed:
            reasons.insert(
                0,
                f"{metric} {result['challenger']:.4f} vs champion version {champion} "
                f"{result['champion']:.4f}; it must reach at least champion - tolerance = "
                f"{result['champion'] - tolerance:.4f} (tolerance {tolerance})",
            )
        raise PromotionRefused(
            f"gate refused version {version} of {name!r} for {stage} on the same {result['rows']} rows: "
            + "; ".join(reasons)
            + ". Pass override_reason to promote anyway (it is recorded in the stage file).",
            gate,
        )
    return gate
