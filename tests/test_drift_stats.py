"""Drift statistics (model/drift_stats.py, model/drift.py, the sketch of model/reference.py).

Each formula against scipy, the oracle the deployed app cannot ship (decision 39); shards merging
to exactly the whole; and the behaviour on the bank data: a sample of the training rows does not
drift, `age` + 10 years does, small batches go through tests with false-discovery control, an old
reference.json without the sketch still works. Pure and fast: no Azurite, no model.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import special
from scipy import stats as sp
from scipy.spatial.distance import jensenshannon

from model import drift_stats as ds
from model.drift import DriftConfig, DriftCounts
from model.reference import EXACT_DISTINCT, build_reference, sketch_of
from model.schema import FEATURE_SETS, InputSchema, prepare_features
from tests.support import REPO

BANK = REPO / "data" / "bank_marketing" / "bank_marketing.csv"
TOY = InputSchema("toy", ("whole", "real"), {"colour": ("blue", "green", "red")})


def _score(frame: pd.DataFrame) -> np.ndarray:
    """A fixed logistic score of the bank features: moves with age, like a fitted model's would."""
    z = (
        -2.0
        + 0.03 * (frame["age"] - 40)
        + 0.00005 * frame["balance"]
        - 0.1 * frame["campaign"]
        + 0.8 * frame["previously_contacted"]
    )
    return (1 / (1 + np.exp(-z.to_numpy(dtype=np.float64)))).astype(np.float32)


@pytest.fixture(scope="module")
def bank() -> tuple[dict, pd.DataFrame]:
    """reference.json of 20,000 training rows (all features) and those rows, as the model sees them.

    A random 20,000 of the bank rows: the file is in time order, and its first rows have no client
    contacted before (a constant `pdays`)."""
    fs = FEATURE_SETS["all"]
    raw = pd.read_csv(BANK, sep=";").drop(columns=["duration", "y"]).sample(20_000, random_state=0)
    rows = prepare_features(raw)[list(fs.columns)]
    rows[list(fs.numeric)] = rows[list(fs.numeric)].astype(np.float32)  # as training feeds ONNX
    schema = InputSchema.learn(rows, fs)
    return build_reference(rows, schema, _score(rows)), rows.reset_index(drop=True)


def _toy(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        "whole": rng.integers(0, 30, rows) + round(shift),
        "real": rng.normal(shift, 1.0, rows),
        "colour": rng.choice(["blue", "green", "red"], rows, p=[0.5, 0.3, 0.2]),
    })  # fmt: skip


def _report(
    reference: dict, frame: pd.DataFrame, scores: np.ndarray, config: DriftConfig | None = None
) -> dict:
    counts = DriftCounts(reference)
    counts.add(frame, scores)
    return counts.summary(config) if config else counts.summary()


# --------------------------------------------------------------------------- each statistic vs scipy


def test_wasserstein_is_scipys_when_every_value_is_a_knot_tails_included() -> None:
    rng = np.random.default_rng(1)
    train = _toy(rng, 5000)
    reference = build_reference(train, TOY, rng.random(5000))
    assert reference["features"]["whole"]["sketch"]["source"] == "distinct"
    for shift in (0, 3, 45):  # 45: every value beyond the reference's range, in the tail cell
        batch = _toy(rng, 2000, shift)
        value = _report(reference, batch, rng.random(2000))["features"]["whole"]["value"]
        expected = sp.wasserstein_distance(train["whole"], batch["whole"]) / train["whole"].std(ddof=0)
        assert value == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_wasserstein_of_a_continuous_column_is_scipys_to_the_sketchs_resolution() -> None:
    rng = np.random.default_rng(2)
    train = _toy(rng, 20_000)
    reference = build_reference(train, TOY, rng.random(20_000))
    assert reference["features"]["real"]["sketch"]["source"] == "quantiles"
    for shift in (0.0, 0.05, 0.3, 2.0):
        batch = _toy(rng, 5000, shift)
        value = _report(reference, batch, rng.random(5000))["features"]["real"]["value"]
        expected = sp.wasserstein_distance(train["real"], batch["real"]) / train["real"].std(ddof=0)
        assert value == pytest.approx(expected, rel=0.02, abs=0.003)  # a lower bound, exact for a shift


def test_jensen_shannon_is_scipys_base_2_unseen_categories_included() -> None:
    p = np.array([50.0, 30.0, 20.0, 0.0])
    q = np.array([10.0, 30.0, 40.0, 20.0])  # the last category is unseen in the reference
    assert ds.jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)
    assert ds.jensen_shannon(p, p) == 0.0
    assert ds.jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    matrix = np.array([q, p, [1.0, 1.0, 1.0, 1.0]])
    each = [jensenshannon(p, row, base=2) for row in matrix]
    assert ds.jensen_shannon(p, matrix) == pytest.approx(each, abs=1e-12)  # vectorised, for the simulations

    rng = np.random.default_rng(3)
    train = _toy(rng, 3000)
    reference = build_reference(train, TOY, rng.random(3000))
    batch = _toy(rng, 1500)
    batch.loc[:99, "colour"] = "purple"
    entry = _report(reference, batch, rng.random(1500))["features"]["colour"]
    shares = train["colour"].value_counts(normalize=True)
    observed = batch["colour"].value_counts()
    keys = sorted(set(shares.index) | set(observed.index))
    expected = jensenshannon([shares.get(k, 0) for k in keys], [observed.get(k, 0) for k in keys], base=2)
    assert entry["statistic"] == "jensen_shannon" and entry["value"] == pytest.approx(expected, rel=1e-5)
    assert entry["unseen"] == ["purple"] and entry["unseen_rows"] == 100


def test_ks_statistic_and_p_value_are_ks_2samps_when_every_value_is_a_knot() -> None:
    rng = np.random.default_rng(4)
    train = _toy(rng, 4000)
    reference = build_reference(train, TOY, rng.random(4000))
    for rows, shift in ((300, 0), (300, 2), (1000, 1), (40, 5)):
        batch = _toy(rng, rows, shift)
        entry = _report(reference, batch, rng.random(rows))["features"]["whole"]
        oracle = sp.ks_2samp(batch["whole"], train["whole"], method="asymp")
        assert entry["statistic"] == "ks"
        assert entry["effect"] == pytest.approx(oracle.statistic, rel=1e-6)  # six significant digits
        assert entry["value"] == pytest.approx(oracle.pvalue, rel=1e-5, abs=1e-12)


def test_ks_on_a_continuous_column_errs_on_the_safe_side_by_at_most_one_cell() -> None:
    rng = np.random.default_rng(5)
    train = _toy(rng, 20_000)
    reference = build_reference(train, TOY, rng.random(20_000))
    sketch = sketch_of(reference["features"]["real"], 20_000)
    for shift in (0.0, 0.2, 1.0):
        batch = _toy(rng, 800, shift)
        counts = sketch.count(batch["real"].to_numpy())
        binned = float(ds.ks_statistic(sketch.reference / sketch.reference.sum(), counts / counts.sum()))
        exact = sp.ks_2samp(batch["real"], train["real"]).statistic
        widest = max((sketch.reference / sketch.reference.sum()).max(), (counts / counts.sum()).max())
        assert exact - widest - 1e-12 <= binned <= exact + 1e-12


def test_kolmogorov_distribution_matches_scipy() -> None:
    worst = 0.0
    for n in (1, 2, 3, 7, 20, 60, 139, 141, 300, 962, 1000, 2500, 10_000):
        for d in np.linspace(0.002, 0.998, 80):
            worst = max(worst, abs(ds.ks_sf(float(d), n) - sp.kstwo.sf(d, n)))
    assert worst < 1e-5  # scipy itself approximates (Pelz-Good) in part of this grid
    for n in (5, 30, 300, 1000):
        for level in (0.05, 0.01, 0.05 / 16, 1e-4):
            assert ds.ks_critical(n, level) == pytest.approx(sp.kstwo.isf(level, n), rel=1e-5)
    for n in (1, 10, 100, 1000):
        for d in (0.01, 0.1, 0.3, 0.7):
            assert ds.smirnov_sf(d, n) == pytest.approx(special.smirnov(n, d), rel=1e-9, abs=1e-300)


def test_chi_squared_distribution_matches_scipy() -> None:
    for dof in (1, 2, 3, 4, 11, 30, 199):
        for x in (0.01, 0.5, 1.0, 3.84, 10.0, 50.0, 300.0):
            assert ds.chi2_sf(x, dof) == pytest.approx(sp.chi2.sf(x, dof), rel=1e-10, abs=1e-300)
        for level in (0.05, 0.003, 1e-6):
            assert ds.chi2_critical(dof, level) == pytest.approx(sp.chi2.isf(level, dof), rel=1e-8)
    assert ds.chi2_sf(0.0, 3) == 1.0 and ds.chi2_sf(5.0, 0) == 0.0


def test_chi_squared_of_homogeneity_is_chi2_contingency_and_pools_rare_categories() -> None:
    reference, batch = np.array([500.0, 300.0, 200.0]), np.array([40.0, 45.0, 15.0])
    chi2, dof, pooled = ds.chi2_homogeneity(reference, batch)
    oracle = sp.chi2_contingency(np.vstack([reference, batch]), correction=False)
    assert (chi2, dof, pooled) == (pytest.approx(oracle.statistic, rel=1e-12), oracle.dof, 0)
    assert ds.chi2_sf(chi2, dof) == pytest.approx(oracle.pvalue, rel=1e-10)

    huge = reference * 10_000  # against a reference this large the two-sample test is the one-sample one
    gof = sp.chisquare(batch, huge / huge.sum() * batch.sum())
    assert ds.chi2_homogeneity(huge, batch)[0] == pytest.approx(gof.statistic, rel=1e-3)

    reference = np.array([500.0, 300.0, 190.0, 6.0, 4.0, 0.0])
    batch = np.array([40.0, 45.0, 10.0, 1.0, 0.0, 4.0])
    chi2, dof, pooled = ds.chi2_homogeneity(reference, batch)  # the last three expect < 5 rows: one cell
    table = np.array([[500.0, 300.0, 190.0, 10.0], [40.0, 45.0, 10.0, 5.0]])
    oracle = sp.chi2_contingency(table, correction=False)
    assert (chi2, dof, pooled) == (pytest.approx(oracle.statistic, rel=1e-12), 3, 3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40), st.sampled_from([0.01, 0.05, 0.2]))
def test_benjamini_hochberg_is_scipys(p_values: list[float], alpha: float) -> None:
    q_values, cutoff = ds.benjamini_hochberg(p_values, alpha)
    assert q_values == pytest.approx(sp.false_discovery_control(p_values, method="bh").tolist(), abs=1e-12)
    assert [p <= cutoff for p in p_values] == [q <= alpha for q in q_values]


# ---------------------------------------------------------------------------- shards merge exactly


@pytest.fixture(scope="module")
def toy_reference() -> dict:
    rng = np.random.default_rng(6)
    return build_reference(_toy(rng, 3000), TOY, rng.beta(1, 8, 3000))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.sampled_from([7, 600, 1500]),  # the small-batch path and the distance path
    cuts=st.lists(st.floats(0.0, 1.0), max_size=6),
    shift=st.sampled_from([0.0, 0.4, 50.0]),
    seed=st.integers(0, 2**16),
)
def test_shards_merge_to_exactly_the_whole(
    toy_reference: dict, rows: int, cuts: list[float], shift: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    frame = _toy(rng, rows, shift)
    frame.loc[frame.index[::5], "colour"] = "unseen-" + str(seed % 3)
    scores = rng.beta(1, 8, rows).astype(np.float32)
    whole = DriftCounts(toy_reference)
    whole.add(frame, scores)
    merged = DriftCounts(toy_reference)
    bounds = [0, *sorted(round(c * rows) for c in cuts), rows]
    for start, end in itertools.pairwise(bounds):
        part = DriftCounts(toy_reference)
        part.add(frame.iloc[start:end], scores[start:end])
        merged.merge(DriftCounts.from_dict(toy_reference, json.loads(json.dumps(part.to_dict()))))
    assert merged.summary() == whole.summary()


# ------------------------------------------------------------------------------ the bank data


def test_a_sample_of_the_training_rows_does_not_drift(bank: tuple[dict, pd.DataFrame]) -> None:
    reference, rows = bank
    sample = rows.sample(5000, random_state=11)
    report = _report(reference, sample, _score(sample))
    assert report["method"] == "distances" and report["status"] == "ok"
    assert report["drifted"] is False and report["drift_share"] == 0.0 and report["drifted_features"] == []
    numeric = FEATURE_SETS["all"].numeric
    for name, entry in report["features"].items():
        assert entry["statistic"] == ("wasserstein" if name in numeric else "jensen_shannon")
        assert entry["value"] < 0.1 and entry["detectable"] < entry["threshold"] == 0.1, name
    beyond_chance = [n for n, e in report["features"].items() if e["value"] > e["detectable"]]
    assert len(beyond_chance) <= 3  # each is over its 95th percentile by chance one time in 20
    assert report["scores"]["drifted"] is False and report["notes"] == []


def test_age_plus_ten_years_drifts_age_and_the_scores_not_the_dataset(
    bank: tuple[dict, pd.DataFrame],
) -> None:
    reference, rows = bank
    sample = rows.sample(5000, random_state=12)
    older = sample.assign(age=sample["age"] + 10)
    report = _report(reference, older, _score(older))
    age = report["features"]["age"]
    expected = sp.wasserstein_distance(rows["age"], older["age"]) / rows["age"].std(ddof=0)
    assert age["drifted"] is True and age["value"] == pytest.approx(expected, rel=1e-4)
    assert report["drifted_features"] == ["age"] and report["drift_share"] == pytest.approx(1 / 16, abs=1e-6)
    assert report["drifted"] is False  # one feature of 16 is under the 0.5 share
    assert report["scores"]["drifted"] is True and report["status"] == "alert"  # prediction drift

    weighted = {**reference, "importance": {"age": 0.6, "balance": 0.2, "contact": 0.2, "job": -0.1}}
    report = _report(weighted, older, _score(older))
    assert report["weighted_by"] == "importance" and report["drift_share"] == pytest.approx(0.6)
    assert report["drifted"] is True
    unweighted = _report(weighted, older, _score(older), DriftConfig(weight_by_importance=False))
    assert unweighted["drifted"] is False and unweighted["weighted_by"] == "features"
    assert _report(reference, older, _score(older), DriftConfig(wasserstein=1.5))["drifted_features"] == []


def test_half_the_features_moved_is_a_drifted_dataset(bank: tuple[dict, pd.DataFrame]) -> None:
    reference, rows = bank
    moved = rows.sample(3000, random_state=13)
    for name in ("age", "balance", "day", "campaign", "job", "marital", "education", "month"):
        moved[name] = moved[name].sample(frac=1, random_state=1).to_numpy()  # shuffled: no drift at all
        numeric = name in FEATURE_SETS["all"].numeric
        moved[name] = moved[name] + 2 * rows[name].std() if numeric else "other"  # two std: drifted
    report = _report(reference, moved, _score(moved))
    assert report["drift_share"] == 0.5 and report["drifted"] is True and len(report["drifted_features"]) == 8
    job = report["features"]["job"]
    assert job["unseen"] == ["other"] and job["unseen_rows"] == 3000


def test_small_batches_are_tested_with_false_discovery_control(bank: tuple[dict, pd.DataFrame]) -> None:
    reference, rows = bank
    sample = rows.sample(300, random_state=14)
    quiet = _report(reference, sample, _score(sample))
    assert quiet["method"] == "tests" and quiet["drifted_features"] == [] and quiet["status"] == "ok"
    assert {e["statistic"] for e in quiet["features"].values()} == {"ks", "chi2"}
    assert all(e["threshold"] == pytest.approx(0.05 / 16) for e in quiet["features"].values())

    older = sample.assign(age=sample["age"] + 10)
    report = _report(reference, older, _score(older))
    assert report["drifted_features"] == ["age"] and report["drifted"] is False
    p_values = [e["value"] for e in report["features"].values()]
    q_values = sp.false_discovery_control(p_values, method="bh")
    assert [e["q_value"] for e in report["features"].values()] == pytest.approx(q_values.tolist(), rel=1e-4)
    age = report["features"]["age"]
    oracle = sp.ks_2samp(older["age"], rows["age"], method="asymp")
    assert age["effect"] == pytest.approx(oracle.statistic, abs=1e-6) and age["value"] < 1e-10
    assert age["effect"] > age["detectable"] == pytest.approx(sp.kstwo.isf(0.05 / 16, 296), rel=1e-4)
    for name, entry in report["features"].items():  # the effect a test needs, in the effect's unit
        assert (entry["effect"] >= entry["detectable"]) == entry["drifted"], name
    assert report["scores"]["statistic"] == "ks" and report["scores"]["threshold"] == 0.05  # tested alone


def test_detectable_says_how_small_a_shift_the_batch_could_see(bank: tuple[dict, pd.DataFrame]) -> None:
    reference, rows = bank
    seen = {}
    for size in (30, 300, 1001, 5000):
        sample = rows.sample(size, random_state=15)
        seen[size] = _report(reference, sample, _score(sample))["features"]
    assert seen[30]["age"]["detectable"] > seen[300]["age"]["detectable"]  # critical D, tests
    assert seen[1001]["age"]["detectable"] > seen[5000]["age"]["detectable"]  # noise quantile, distances
    assert seen[30]["job"]["detectable"] > seen[300]["job"]["detectable"]
    again = rows.sample(5000, random_state=16)
    same_size = _report(reference, again, _score(again))["features"]
    assert same_size["age"]["detectable"] == seen[5000]["age"]["detectable"]  # seeded by feature and size
    assert seen[5000]["age"]["detectable"] < 0.1 <= seen[1001]["balance"]["detectable"] * 3


def test_an_old_reference_without_sketch_falls_back_to_its_deciles(bank: tuple[dict, pd.DataFrame]) -> None:
    reference, rows = bank
    old = json.loads(json.dumps(reference))
    old.pop("importance", None)
    for spec in old["features"].values():
        spec.pop("sketch", None)
    old["scores"] = {"bins": 20, "proportions": old["scores"]["proportions"]}
    sample = rows.sample(5000, random_state=17)
    quiet = _report(old, sample, _score(sample))
    assert quiet["drifted_features"] == [] and quiet["features"]["age"]["sketch"] == "deciles"
    assert "no quantile sketch" in quiet["notes"][0] and "(scores)" in quiet["notes"][0]
    plain = _report(old, sample, _score(sample), DriftConfig(beyond_chance=False))
    coarse = plain["features"]["previous"]  # 0 to 275 in two deciles: the spread inside is a guess
    assert coarse["drifted"] and coarse["threshold"] < coarse["value"] < coarse["detectable"]
    older = sample.assign(age=sample["age"] + 10)
    report = _report(old, older, _score(older))
    assert report["drifted_features"] == ["age"] and report["features"]["age"]["value"] > 0.5
    small = _report(old, older.iloc[:300], _score(older.iloc[:300]))
    assert small["method"] == "tests" and small["drifted_features"] == ["age"]


def test_the_psi_of_the_decile_bins_is_unchanged(bank: tuple[dict, pd.DataFrame]) -> None:
    reference, rows = bank
    sample = rows.sample(2000, random_state=18)
    report = _report(reference, sample, _score(sample))
    spec = reference["features"]["age"]
    counts = np.bincount(
        np.searchsorted(spec["bin_edges"], sample["age"], side="right"), minlength=len(spec["proportions"])
    )
    expected = sum(
        (max(a, 1e-4) - max(e, 1e-4)) * np.log(max(a, 1e-4) / max(e, 1e-4))
        for e, a in zip(spec["proportions"], counts / counts.sum(), strict=True)
    )
    assert report["features"]["age"]["psi"] == pytest.approx(expected, rel=1e-5)


def test_empty_batches_configuration_and_bounded_sketches(bank: tuple[dict, pd.DataFrame]) -> None:
    reference, rows = bank
    empty = DriftCounts(reference).summary()
    assert empty["status"] == "empty" and empty["drifted"] is False and empty["drift_share"] == 0.0
    assert empty["features"]["age"]["value"] is None and empty["scores"]["mean"] is None
    assert DriftCounts({}).summary()["features"] == {}
    sample = rows.sample(300, random_state=19)
    forced = _report(reference, sample, _score(sample), DriftConfig(small_batch_rows=0))
    assert forced["method"] == "distances" and forced["thresholds"]["small_batch_rows"] == 0
    for bad in ({"alpha": 0.0}, {"drift_share": 1.5}, {"wasserstein": -1.0}, {"small_batch_rows": 20_000}):
        with pytest.raises(ValueError, match="DriftConfig"):
            DriftConfig(**bad)
    for spec in reference["features"].values():
        if spec["kind"] == "numeric":
            assert len(spec["sketch"]["knots"]) <= EXACT_DISTINCT
    assert len(json.dumps(reference)) < 40_000  # reference.json stays small
