"""The challenger-vs-champion gate (model/challenge.py): DeLong's test and the decision built on it.

DeLong is checked against oracles that share none of its code: sklearn's ROC AUC, the O(m n)
textbook definition of the structural components, a hand-derived tiny case, and a stratified
paired bootstrap of the AUC difference. The gate is checked on generated rows where the truth is
known by construction: a less noisy challenger, a noisier one, one that ranks like the champion but
is badly calibrated, and one that is random inside a single segment. Pure and fast: no model, no I/O.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import roc_auc_score

from model.challenge import GatePolicy, age_band, compare, delong


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _naive_delong_se(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """DeLong's standard error of AUC(a) - AUC(b) straight from the definition (every pair compared)."""
    positive = y == 1

    def components(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, z = p[positive][:, None], p[~positive][None, :]
        psi = (x > z) + 0.5 * (x == z)
        return psi.mean(axis=1), psi.mean(axis=0)

    (v10_a, v01_a), (v10_b, v01_b) = components(a), components(b)
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    s = s10 / v10_a.size + s01 / v01_a.size
    return math.sqrt(s[0, 0] + s[1, 1] - 2 * s[0, 1])


def _paired_case(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two models sharing a true signal (so their errors correlate), one noisier than the other."""
    logit = -1.4 + 1.2 * rng.normal(size=rows)
    y = (rng.random(rows) < _sigmoid(logit)).astype(int)
    shared = 0.6 * rng.normal(size=rows)
    a = _sigmoid(logit + shared + 0.5 * rng.normal(size=rows))
    b = _sigmoid(logit + shared + 0.9 * rng.normal(size=rows))
    return y, a, b


def _bootstrap_se(y: np.ndarray, a: np.ndarray, b: np.ndarray, resamples: int, seed: int) -> float:
    """Std dev of AUC(a) - AUC(b) over paired resamples, positives and negatives resampled apart.

    Stratified, as DeLong conditions on the class counts; a resample is a vector of row counts
    (multinomial), so its AUC is the count-weighted share of correctly ordered pairs, ties half.
    """
    rng = np.random.default_rng(seed)
    positive = y == 1
    m, n = int(positive.sum()), int((~positive).sum())
    w_pos = rng.multinomial(m, np.full(m, 1 / m), size=resamples).astype(float)
    w_neg = rng.multinomial(n, np.full(n, 1 / n), size=resamples).astype(float)

    def aucs(p: np.ndarray) -> np.ndarray:
        x, z = p[positive][:, None], p[~positive][None, :]
        psi = (x > z) + 0.5 * (x == z)
        return np.einsum("rj,rj->r", w_pos @ psi, w_neg) / (m * n)

    return float(np.std(aucs(a) - aucs(b), ddof=1))


# ------------------------------------------------------------------------------------ DeLong


def test_delong_hand_case() -> None:
    """Two positives and two negatives, worked by hand from DeLong's components.

    a: positives 0.9, 0.4; negatives 0.6, 0.1. V10 = (1, 1/2), V01 = (1/2, 1): AUC 3/4.
    b: positives 0.5, 0.5; negatives 0.5, 0.7. V10 = (1/4, 1/4), V01 = (1/2, 0): AUC 1/4.
    Variances (ddof 1): V10_a - V10_b = (3/4, 1/4) -> 1/8; V01_a - V01_b = (0, 1) -> 1/2.
    var(difference) = (1/8) / 2 + (1/2) / 2 = 5/16.
    """
    result = delong([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.1], [0.5, 0.5, 0.5, 0.7])
    assert result["auc_a"] == pytest.approx(0.75)
    assert result["auc_b"] == pytest.approx(0.25)
    assert result["difference"] == pytest.approx(0.5)
    assert result["std_error"] == pytest.approx(math.sqrt(5 / 16))
    assert result["z"] == pytest.approx(0.5 / math.sqrt(5 / 16))
    assert result["p_value"] == pytest.approx(2 * stats.norm.sf(0.5 / math.sqrt(5 / 16)))
    half = stats.norm.ppf(0.975) * math.sqrt(5 / 16)
    assert (result["low"], result["high"]) == pytest.approx((0.5 - half, 0.5 + half))


def test_delong_matches_sklearn_the_definition_and_a_paired_bootstrap() -> None:
    y, a, b = _paired_case(np.random.default_rng(11), 2000)
    result = delong(y, a, b)
    assert result["auc_a"] == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert result["auc_b"] == pytest.approx(roc_auc_score(y, b), abs=1e-12)
    assert result["std_error"] == pytest.approx(_naive_delong_se(y, a, b), rel=1e-9)
    bootstrap = _bootstrap_se(y, a, b, resamples=2000, seed=5)
    assert result["std_error"] == pytest.approx(bootstrap, rel=0.15)
    assert result["difference"] > 0 and result["low"] < result["difference"] < result["high"]


def test_delong_interval_follows_the_confidence() -> None:
    y, a, b = _paired_case(np.random.default_rng(3), 500)
    narrow, wide = delong(y, a, b, confidence=0.8), delong(y, a, b, confidence=0.99)
    ratio = (wide["high"] - wide["low"]) / (narrow["high"] - narrow["low"])
    assert ratio == pytest.approx(stats.norm.ppf(0.995) / stats.norm.ppf(0.9))
    assert narrow["p_value"] == wide["p_value"]
    with pytest.raises(ValueError, match="confidence"):
        delong(y, a, b, confidence=1.0)


def test_delong_identical_scores_are_degenerate_not_nan() -> None:
    y, a, _ = _paired_case(np.random.default_rng(4), 300)
    result = delong(y, a, a)
    assert result["difference"] == result["std_error"] == result["low"] == result["high"] == 0.0
    assert result["p_value"] == 1.0


@st.composite
def _scored(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At least two rows of each class; scores rounded to 1-3 decimals, so ties are common."""
    extra = draw(st.lists(st.integers(0, 1), max_size=40))
    y = np.array([1, 1, 0, 0, *extra])
    unit = st.floats(0, 1, allow_nan=False)
    a = np.array(draw(st.lists(unit, min_size=y.size, max_size=y.size)))
    b = np.array(draw(st.lists(unit, min_size=y.size, max_size=y.size)))
    decimals = draw(st.integers(1, 3))
    return y, np.round(a, decimals), np.round(b, decimals)


@settings(max_examples=150, deadline=None)
@given(_scored())
def test_delong_properties_with_ties(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    y, a, b = case
    forward, backward = delong(y, a, b), delong(y, b, a)
    assert forward["auc_a"] == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert forward["auc_b"] == pytest.approx(roc_auc_score(y, b), abs=1e-12)
    assert backward["difference"] == pytest.approx(-forward["difference"], abs=1e-12)
    assert backward["p_value"] == pytest.approx(forward["p_value"], abs=1e-12)
    assert backward["low"] == pytest.approx(-forward["high"], abs=1e-12)
    assert 0.0 <= forward["p_value"] <= 1.0
    assert forward["std_error"] == pytest.approx(_naive_delong_se(y, a, b), rel=1e-9, abs=1e-12)


def test_age_band() -> None:
    ages = [18, 29.9, 30, 39.5, 40, 49, 50, 59.99, 60, 97, float("nan"), None]
    expected = ["<30", "<30", "30-39", "30-39", "40-49", "40-49", "50-59", "50-59", "60+", "60+"]
    assert age_band(ages).tolist() == [*expected, "unknown", "unknown"]
    assert age_band(np.array([], dtype=float)).shape == (0,)


# ------------------------------------------------------------------------------------ the gate

ROWS = 4000


@pytest.fixture(scope="module")
def bank() -> dict:
    """Labelled rows from a known logit, a contact and an age per row, and a champion scoring them."""
    rng = np.random.default_rng(7)
    logit = -1.6 + 1.3 * rng.normal(size=ROWS)
    y = (rng.random(ROWS) < _sigmoid(logit)).astype(int)
    ages = rng.uniform(18, 95, ROWS)
    ages[rng.random(ROWS) < 0.03] = np.nan  # ~120 rows "unknown": too few positives to judge
    segments = {
        "contact": rng.choice(["cellular", "telephone", "unknown"], ROWS, p=[0.6, 0.15, 0.25]),
        "age": age_band(ages),
    }

    def model(noise: float, seed: int) -> np.ndarray:
        return _sigmoid(logit + noise * np.random.default_rng(seed).normal(size=ROWS))

    return {"y": y, "segments": segments, "model": model, "champion": model(0.8, 1)}


def _plain_json(value: object) -> bool:
    """Only the types json writes natively, all the way down (numpy scalars do not count)."""
    if isinstance(value, dict):
        return all(type(k) is str and _plain_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_json(v) for v in value)
    return type(value) in {str, int, float, bool, type(None)}


def test_a_clearly_better_challenger_passes(bank: dict) -> None:
    result = compare(bank["y"], bank["model"](0.2, 2), bank["champion"], bank["segments"])
    assert result["passed"] and result["significantly_better"]
    assert result["checks"] == {"roc_auc": True, "brier": True, "segments": True}
    assert result["reasons"] == []
    assert result["summary"].startswith("The challenger may replace the champion")
    assert "significantly better" in result["summary"]
    assert result["rows"] == ROWS and result["positives"] == int(bank["y"].sum())
    assert result["policy"] == {
        "auc_tolerance": 0.01,
        "brier_tolerance": 0.005,
        "segment_tolerance": 0.05,
        "min_segment_rows": 200,
        "min_segment_positives": 20,
        "confidence": 0.95,
    }
    assert set(result["roc_auc"]) == {
        "challenger",
        "champion",
        "difference",
        "std_error",
        "low",
        "high",
        "z",
        "p_value",
    }
    assert _plain_json(result)
    json.dumps(result, allow_nan=False)


def test_a_clearly_worse_challenger_fails_on_roc_auc(bank: dict) -> None:
    result = compare(bank["y"], bank["model"](2.0, 3), bank["champion"], bank["segments"])
    assert not result["passed"] and not result["checks"]["roc_auc"]
    auc = result["roc_auc"]
    assert auc["high"] < 0 and not result["significantly_better"]
    reason = result["reasons"][0]
    assert reason.startswith(f"ROC AUC {auc['challenger']:.3f} vs champion {auc['champion']:.3f}: ")
    assert f"{-auc['difference']:.3f} under it, more than the tolerance 0.010" in reason
    assert "roc_auc" in result["summary"] and "may not replace" in result["summary"]


def test_a_significantly_worse_challenger_fails_even_within_tolerance(bank: dict) -> None:
    lenient = GatePolicy(auc_tolerance=0.2, brier_tolerance=0.2, segment_tolerance=0.5)
    result = compare(bank["y"], bank["model"](1.4, 4), bank["champion"], {}, lenient)
    auc = result["roc_auc"]
    assert -0.2 < auc["difference"] < 0 and auc["high"] < 0
    assert result["checks"] == {"roc_auc": False, "brier": True, "segments": True}
    assert result["reasons"] == [
        f"ROC AUC {auc['challenger']:.3f} vs champion {auc['champion']:.3f}: the champion is better at 95% "
        f"confidence (interval of the difference {auc['low']:+.3f} to {auc['high']:+.3f}, "
        f"p = {auc['p_value']:.2g})"
    ]


def test_equal_ranking_but_badly_calibrated_fails_on_brier(bank: dict) -> None:
    squashed = 0.35 + 0.3 * bank["champion"]  # same order, so the same AUC; probabilities all wrong
    result = compare(bank["y"], squashed, bank["champion"], bank["segments"])
    assert result["roc_auc"]["difference"] == 0.0
    assert result["checks"] == {"roc_auc": True, "brier": False, "segments": True}
    brier = result["brier"]
    assert brier["difference"] > 0.005
    assert result["reasons"] == [
        f"Brier score {brier['challenger']:.4f} vs champion {brier['champion']:.4f}: "
        f"{brier['difference']:.4f} above it, more than the tolerance 0.0050"
    ]


def test_worse_in_one_segment_only_fails_on_segments(bank: dict) -> None:
    challenger = bank["model"](0.1, 2)
    telephone = bank["segments"]["contact"] == "telephone"
    challenger[telephone] = np.random.default_rng(9).permutation(challenger[telephone])
    result = compare(bank["y"], challenger, bank["champion"], bank["segments"])
    assert result["checks"] == {"roc_auc": True, "brier": True, "segments": False}
    worse = [(e["segment"], e["value"]) for e in result["segments"] if e["worse"]]
    assert worse == [("contact", "telephone")]
    (reason,) = result["reasons"]
    assert "contact=telephone" in reason and "cellular" not in reason and "tolerance 0.050" in reason
    assert result["summary"].endswith("it fails the segments check.")


def test_segments_are_sorted_and_small_ones_not_judged(bank: dict) -> None:
    result = compare(bank["y"], bank["model"](0.2, 2), bank["champion"], bank["segments"])
    keys = [(e["segment"], e["value"]) for e in result["segments"]]
    assert keys == sorted(keys)
    assert {value for segment, value in keys if segment == "age"} == {
        "<30",
        "30-39",
        "40-49",
        "50-59",
        "60+",
        "unknown",
    }
    assert sum(e["rows"] for e in result["segments"] if e["segment"] == "contact") == ROWS
    unknown = next(e for e in result["segments"] if (e["segment"], e["value"]) == ("age", "unknown"))
    assert 0 < unknown["rows"] < 200 and not unknown["judged"] and not unknown["worse"]
    assert unknown["challenger"] is unknown["champion"] is unknown["difference"] is None
    strict = GatePolicy(min_segment_rows=ROWS + 1)
    assert not any(
        e["judged"]
        for e in compare(bank["y"], bank["champion"], bank["champion"], bank["segments"], strict)["segments"]
    )


def test_small_segments_cannot_fail_the_gate(bank: dict) -> None:
    """A value below the positives threshold is left out even when the challenger is random there."""
    y, challenger = bank["y"], bank["champion"].copy()
    few = np.zeros(ROWS, dtype=bool)
    few[np.flatnonzero(y == 1)[:15]] = True
    few[np.flatnonzero(y == 0)[:400]] = True
    challenger[few] = np.random.default_rng(1).permutation(challenger[few])
    result = compare(y, challenger, bank["champion"], {"group": np.where(few, "few", "rest")})
    entry = next(e for e in result["segments"] if e["value"] == "few")
    assert entry["rows"] == 415 and entry["positives"] == 15 and not entry["judged"]
    assert result["checks"]["segments"]


def test_identical_models_pass(bank: dict) -> None:
    result = compare(bank["y"], bank["champion"], bank["champion"], bank["segments"])
    assert result["passed"] and not result["significantly_better"] and result["reasons"] == []
    assert result["roc_auc"]["p_value"] == 1.0 and result["brier"]["difference"] == 0.0
    assert all(e["difference"] == 0.0 for e in result["segments"] if e["judged"])
    assert "not significantly different" in result["summary"]
    json.dumps(result, allow_nan=False)


@pytest.mark.parametrize(
    ("y", "p_challenger", "p_champion", "segments", "message"),
    [
        ([0, 1, 0, 1], [0.1, 0.9, 0.2], [0.1, 0.9, 0.2, 0.8], {}, "p_challenger has shape"),
        ([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], [0.1, 0.9], {}, "p_champion has shape"),
        ([0, 1, 2, 1], [0.1, 0.9, 0.2, 0.8], [0.1, 0.9, 0.2, 0.8], {}, "only the labels 0 and 1"),
        (["no", "yes", "no", "yes"], [0.1, 0.9, 0.2, 0.8], [0.1, 0.9, 0.2, 0.8], {}, "labels 0 and 1"),
        ([1, 1, 1, 1], [0.1, 0.9, 0.2, 0.8], [0.1, 0.9, 0.2, 0.8], {}, "both classes"),
        ([], [], [], {}, "non-empty"),
        ([0, 1, 0, 1], [0.1, np.nan, 0.2, 0.8], [0.1, 0.9, 0.2, 0.8], {}, "finite probabilities"),
        ([0, 1, 0, 1], [0.1, 1.5, 0.2, 0.8], [0.1, 0.9, 0.2, 0.8], {}, "in \\[0, 1\\]"),
        ([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], [-0.1, 0.9, 0.2, 0.8], {}, "p_champion must be finite"),
        ([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], [0.1, 0.9, 0.2, 0.8], {"contact": ["a"]}, "segment 'contact'"),
        ([0, 1, 0, 0], [0.1, 0.9, 0.2, 0.8], [0.1, 0.9, 0.2, 0.8], {}, "at least two positives"),
    ],
)
def test_invalid_inputs_raise(
    y: list, p_challenger: list, p_champion: list, segments: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        compare(y, p_challenger, p_champion, segments)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("auc_tolerance", -0.01),
        ("brier_tolerance", float("nan")),
        ("segment_tolerance", 2.0),
        ("min_segment_rows", 0),
        ("min_segment_rows", 10.5),
        ("min_segment_positives", 0),
        ("min_segment_positives", True),
        ("confidence", 0.0),
        ("confidence", 1.0),
        ("confidence", "0.95"),
    ],
)
def test_policy_validates_its_ranges(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"GatePolicy.{field}"):
        GatePolicy(**{field: value})
