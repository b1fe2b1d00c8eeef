"""The challenger-vs-champion gate: may a newly trained model replace the one in production?

Both models have scored the same labelled rows, so their errors are paired: a paired test of the
ROC AUC difference (DeLong, DeLong and Clarke-Pearson 1988, in the O(n log n) midrank form of
Sun and Xu 2014) is far more sensitive than comparing two separate intervals. Ranking alone is not
enough: the bank sums probabilities into expected subscribers, so calibration (Brier) is checked
too, and an overall gain may hide a loss on a group of clients, so segments are checked as well.

Decision rule (`compare`; d = challenger AUC - champion AUC, [low, high] its DeLong interval at
`policy.confidence`); the challenger passes iff all three hold:
- roc_auc: d >= -auc_tolerance and not high < 0 (a point estimate within tolerance, and the
  champion not significantly better);
- brier: Brier(challenger) <= Brier(champion) + brier_tolerance;
- segments: no judged segment value has d_segment < -segment_tolerance with the champion
  significantly better there too (the segment's own paired DeLong interval under 0: a segment of a
  few hundred rows moves by more than the tolerance by chance alone), where a value is judged
  only with min_segment_rows rows and min_segment_positives positives and as many negatives.
`significantly_better` (low > 0) is reported, never required: a retrain that holds its ground on
fresh data is worth shipping. Comparisons allow 1e-12 of float rounding, so a difference of exactly
the tolerance passes. Pure: no I/O; the result is plain JSON types.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import brier_score_loss

_ROUNDING = 1e-12  # AUCs and Brier scores are sums of rationals: allow float noise at a tolerance
_SEGMENT = "{segment}={value} ({challenger:.3f} vs champion {champion:.3f}, {rows} rows)"
_DELONG_KEYS = ("auc_a", "auc_b", "difference", "std_error", "low", "high", "z", "p_value")


@dataclass(frozen=True)
class GatePolicy:
    """How much worse a challenger may be and still replace the champion (see the module docstring)."""

    auc_tolerance: float = 0.01
    brier_tolerance: float = 0.005
    segment_tolerance: float = 0.05
    min_segment_rows: int = 200
    min_segment_positives: int = 20
    confidence: float = 0.95

    def __post_init__(self) -> None:
        for name in ("auc_tolerance", "brier_tolerance", "segment_tolerance"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value <= 1):
                raise ValueError(f"GatePolicy.{name} must be a number in [0, 1], got {value!r}")
        for name, least in (("min_segment_rows", 2), ("min_segment_positives", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"GatePolicy.{name} must be an integer >= {least}, got {value!r}")
        _check_confidence(self.confidence, "GatePolicy.confidence")


def _check_confidence(confidence: object, name: str) -> None:
    if not (isinstance(confidence, int | float) and 0 < confidence < 1):
        raise ValueError(f"{name} must be strictly between 0 and 1, got {confidence!r}")


def _labels(y: Sequence) -> np.ndarray:
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"y must be a non-empty 1-D sequence, got shape {labels.shape}")
    if labels.dtype.kind not in "biuf" or not np.all((labels == 0) | (labels == 1)):
        raise ValueError("y must hold only the labels 0 and 1")
    labels = labels.astype(np.int8)
    if labels.min() == labels.max():
        raise ValueError(f"y must hold both classes; every row is {int(labels[0])}")
    return labels


def _probabilities(p: Sequence, name: str, rows: int) -> np.ndarray:
    scores = np.asarray(p, dtype=np.float64)
    if scores.shape != (rows,):
        raise ValueError(f"{name} has shape {scores.shape}, but y has {rows} rows")
    if not np.all(np.isfinite(scores)) or scores.min() < 0 or scores.max() > 1:
        raise ValueError(f"{name} must be finite probabilities in [0, 1]")
    return scores


def _components(positive: np.ndarray, negative: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and DeLong's structural components from midranks (Sun and Xu 2014, O(n log n)).

    With m positives and n negatives, a positive's component V10 is the share of negatives it
    outranks (ties half) and a negative's V01 the share of positives that outrank it; midranks
    give both without the m x n comparison matrix: V10_i = (rank of x_i among all - its rank
    among positives) / n, and likewise for negatives.
    """
    m, n = positive.size, negative.size
    overall = stats.rankdata(np.concatenate([positive, negative]))
    v10 = (overall[:m] - stats.rankdata(positive)) / n
    v01 = 1.0 - (overall[m:] - stats.rankdata(negative)) / m
    auc = (overall[:m].sum() - m * (m + 1) / 2) / (m * n)
    return float(auc), v10, v01


def delong(y: Sequence, p_a: Sequence, p_b: Sequence, confidence: float = 0.95) -> dict:
    """Paired DeLong test of ROC AUC(a) - ROC AUC(b) on the same rows, two-sided.

    The variance of the difference is taken from the differences of the two models' components,
    var(V10_a - V10_b) / m + var(V01_a - V01_b) / n: the same as the 2 x 2 covariance form, and
    zero for identical scores (difference 0, p = 1); zero with a difference only when every row moves
    alike (a perfect ranker against its reverse, d = 1): the interval is then the point, z = +-inf, p = 0.
    """
    _check_confidence(confidence, "confidence")
    labels = _labels(y)
    a = _probabilities(p_a, "p_a", labels.size)
    b = _probabilities(p_b, "p_b", labels.size)
    positive = labels == 1
    if min(positive.sum(), (~positive).sum()) < 2:
        raise ValueError("DeLong's variance needs at least two positives and two negatives")
    auc_a, v10_a, v01_a = _components(a[positive], a[~positive])
    auc_b, v10_b, v01_b = _components(b[positive], b[~positive])
    variance = np.var(v10_a - v10_b, ddof=1) / v10_a.size + np.var(v01_a - v01_b, ddof=1) / v01_a.size
    std_error = math.sqrt(max(float(variance), 0.0))
    difference = auc_a - auc_b
    if std_error == 0.0:  # nothing varies between rows: the difference carries no sampling error
        z = 0.0 if difference == 0 else math.copysign(math.inf, difference)
        low = high = difference
        p_value = 1.0 if difference == 0 else 0.0
    else:
        z = difference / std_error
        half = float(stats.norm.ppf((1 + confidence) / 2)) * std_error
        low, high = difference - half, difference + half
        p_value = float(2 * stats.norm.sf(abs(z)))
    values = (auc_a, auc_b, difference, std_error, low, high, float(z), p_value)
    return dict(zip(_DELONG_KEYS, values, strict=True))


def age_band(ages: Sequence) -> np.ndarray:
    """Ages in the decade bands the business reads ("<30" ... "60+"); missing or NaN -> "unknown"."""
    values = np.asarray(ages, dtype=np.float64)
    bands = np.select(
        [np.isnan(values), values < 30, values < 40, values < 50, values < 60],
        ["unknown", "<30", "30-39", "40-49", "50-59"],
        default="60+",
    )
    return bands.astype(str)


def _apart(value: float, tolerance: float, least: int) -> str:
    """`value` with enough decimals (`least` or more) not to read as equal to the tolerance it exceeds."""
    places = next((d for d in range(least, 9) if round(value, d) != round(tolerance, d)), 9)
    return f"{value:.{places}f}"


def _segment_rows(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    segments: Mapping[str, Sequence],
    policy: GatePolicy,
) -> list[dict]:
    """One entry per (segment, value), sorted; AUCs only where the value is big enough to judge."""
    entries, least = [], policy.min_segment_positives
    for name in sorted(segments):
        values = np.asarray(segments[name], dtype=object)
        if values.shape != y.shape:
            raise ValueError(f"segment {name!r} has shape {values.shape}, but y has {y.size} rows")
        labels = values.astype(str)  # JSON-safe and sortable whatever the caller's type
        for value in sorted(set(labels.tolist())):
            rows = labels == value
            count, positives = int(rows.sum()), int(y[rows].sum())
            judged = count >= policy.min_segment_rows and min(positives, count - positives) >= least
            entry = dict(segment=name, value=value, rows=count, positives=positives, judged=judged)
            entry |= dict(challenger=None, champion=None, difference=None, high=None, worse=False)
            if judged:
                test = delong(y[rows], challenger[rows], champion[rows], confidence=policy.confidence)
                ours, theirs, high = test["auc_a"], test["auc_b"], test["high"]
                # beyond the tolerance AND beyond the segment's own noise (its paired interval)
                worse = ours - theirs < -policy.segment_tolerance - _ROUNDING and high < 0
                entry |= dict(
                    challenger=ours, champion=theirs, difference=ours - theirs, high=high, worse=worse
                )
            entries.append(entry)
    return entries


def compare(
    y: Sequence,
    p_challenger: Sequence,
    p_champion: Sequence,
    segments: Mapping[str, Sequence],
    policy: GatePolicy | None = None,
) -> dict:
    """The gate's verdict and its evidence, as plain JSON types (the rule: the module docstring)."""
    policy = policy or GatePolicy()
    labels = _labels(y)
    challenger = _probabilities(p_challenger, "p_challenger", labels.size)
    champion = _probabilities(p_champion, "p_champion", labels.size)
    test = delong(labels, challenger, champion, confidence=policy.confidence)
    auc = {"challenger": test.pop("auc_a"), "champion": test.pop("auc_b"), **test}
    brier_ours, brier_theirs = (float(brier_score_loss(labels, p)) for p in (challenger, champion))
    brier = {"challenger": brier_ours, "champion": brier_theirs, "difference": brier_ours - brier_theirs}
    entries = _segment_rows(labels, challenger, champion, segments, policy)
    within = auc["difference"] >= -policy.auc_tolerance - _ROUNDING
    champion_better = auc["high"] < 0
    checks = {
        "roc_auc": bool(within and not champion_better),
        "brier": bool(brier["difference"] <= policy.brier_tolerance + _ROUNDING),
        "segments": not any(entry["worse"] for entry in entries),
    }
    percent = f"{policy.confidence * 100:g}%"
    reasons = []
    if not checks["roc_auc"]:
        head = f"ROC AUC {auc['challenger']:.3f} vs champion {auc['champion']:.3f}"
        why = []
        if not within:
            gap = _apart(-auc["difference"], policy.auc_tolerance, 3)
            why.append(f"{gap} under it, more than the tolerance {policy.auc_tolerance:.3f}")
        if champion_better:
            why.append(
                f"the champion is better at {percent} confidence (interval of the difference "
                f"{auc['low']:+.3f} to {auc['high']:+.3f}, p = {auc['p_value']:.2g})"
            )
        reasons.append(f"{head}: {'; '.join(why)}")
    if not checks["brier"]:
        gap = _apart(brier["difference"], policy.brier_tolerance, 4)
        reasons.append(
            f"Brier score {brier_ours:.4f} vs champion {brier_theirs:.4f}: {gap} above it, "
            f"more than the tolerance {policy.brier_tolerance:.4f}"
        )
    if not checks["segments"]:
        worse = ", ".join(_SEGMENT.format(**entry) for entry in entries if entry["worse"])
        tolerance = f"{policy.segment_tolerance:.3f}"
        reasons.append(f"ROC AUC under the champion's by more than the tolerance {tolerance} in {worse}")
    passed = all(checks.values())
    significantly_better = bool(auc["low"] > 0)
    judged = sum(entry["judged"] for entry in entries)
    if passed:
        verdict = "significantly better" if significantly_better else "not significantly different"
        summary = (
            f"The challenger may replace the champion: ROC AUC {auc['challenger']:.3f} vs "
            f"{auc['champion']:.3f} ({verdict} at {percent}), Brier {brier_ours:.4f} vs "
            f"{brier_theirs:.4f}, no segment worse ({judged} of {len(entries)} judged)."
        )
    else:
        failed = [name for name, ok in checks.items() if not ok]
        plural = "s" if len(failed) > 1 else ""
        summary = (
            f"The challenger may not replace the champion: it fails the {', '.join(failed)} check{plural}."
        )
    return {"rows": int(labels.size), "positives": int(labels.sum()), "roc_auc": auc,
            "significantly_better": significantly_better, "brier": brier, "segments": entries,
            "checks": checks, "passed": passed, "reasons": reasons, "summary": summary,
            "policy": dataclasses.asdict(policy)}  # fmt: skip
