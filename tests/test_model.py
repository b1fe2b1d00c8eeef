"""Model package: schema and leakage guard, training, ONNX parity, serving without scikit-learn."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from model import artifacts
from model.data import load_labelled
from model.onnx_export import ParityError, convert_checked
from model.schema import (
    FEATURE_SETS,
    InputSchema,
    SchemaError,
    assert_no_leak,
    prepare_features,
    validate,
)
from model.serving import load_bytes, load_folder
from model.train import TrainConfig, train
from tests.support import REPO, run_module

BANK = REPO / "data" / "bank_marketing" / "bank_marketing.csv"


@pytest.fixture(scope="module")
def bank() -> pd.DataFrame:
    return pd.read_csv(BANK, sep=";")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("model") / "model"
    return train(TrainConfig(data=BANK, out=out, sample=6000, cv_folds=2, permutation_repeats=2))


def test_training_writes_a_complete_model_folder(trained):
    folder, metadata = trained.folder, trained.metadata
    assert {r.config.candidate for r in trained.results} == {"logreg", "hgb", "rf"}
    assert {r.config.feature_set for r in trained.results} == {"all", "no_calendar", "stable"}
    assert {r.config.recency for r in trained.results} == {"none", "halflife", "window"}
    files = set(artifacts.artifact_files(folder))
    for name in (
        "model.onnx",
        "reference.json",
        "model_card.md",
        "plots/roc.png",
        "plots/precision_recall.png",
        "plots/calibration.png",
        "plots/gain.png",
        "plots/permutation_importance.png",
    ):
        assert name in files
        assert metadata["artifacts"][name] == artifacts.sha256_file(folder / name)
    assert set(metadata["artifacts"]) == files
    validation = metadata["metrics"]["validation"]
    for key in ("roc_auc", "pr_auc", "brier", "log_loss", "share_reached_top10", "share_reached_top50"):
        assert 0 <= validation[key] <= 1
    assert metadata["onnx"]["parity_max_abs_diff"] < 1e-5
    assert metadata["training_data"]["sources"][0]["sha256"] == artifacts.sha256_file(BANK)
    assert metadata["training_data"]["validation"].startswith("time-ordered")
    # What downstream code reads: the gate, the monitor's baseline and the dashboard read
    # metrics.validation; the folds and the calibration check are the card's evidence.
    folds = metadata["metrics"]["folds"]
    assert len(folds["per_fold"]) == 3 and set(folds["mean"]) == set(folds["std"]) >= {
        "roc_auc",
        "pr_auc",
        "brier",
    }
    last = folds["per_fold"][-1]
    assert last["validation_rows"] == [5400, 6000]
    assert abs(last["roc_auc"] - validation["roc_auc"]) < 1e-6  # Platt scaling, if applied, keeps the order
    assert metadata["training_data"]["rows"] == 6000 and metadata["training_data"]["validation_rows"] == 600
    calibration = metadata["metrics"]["calibration"]
    assert {"brier_raw", "brier_calibrated", "observed_rate", "applied"} <= set(calibration)
    assert metadata["selection"]["selected"] == "/".join(
        (metadata["candidate"], metadata["feature_set"], metadata["recency"])
    )
    for row in metadata["comparison"]:
        assert {"roc_auc_mean", "roc_auc_std", "pr_auc_mean", "pr_auc_std", "brier_mean", "brier_std"} <= set(
            row
        )
    assert (
        "duration" not in metadata["schema"]["numeric"] and "duration" not in metadata["schema"]["categories"]
    )
    assert metadata["libraries"]["scikit-learn"] and 0 < metadata["threshold"] < 1
    card = (folder / "model_card.md").read_text()
    assert (
        "rolling-origin folds" in card and "refit on every labelled row" in card and "plots/gain.png" in card
    )
    reference = json.loads((folder / "reference.json").read_text())
    assert set(reference["features"]) == set(metadata["schema"]["numeric"]) | set(
        metadata["schema"]["categories"]
    )
    assert abs(sum(reference["scores"]["proportions"]) - 1) < 1e-9
    # the drift verdict's weights: the same permutation importance the metadata reports, every feature
    assert reference["importance"] == metadata["permutation_importance"]
    assert set(reference["importance"]) == set(reference["features"])


def test_training_is_reproducible_with_a_seed(trained, tmp_path):
    again = train(
        TrainConfig(
            data=BANK,
            out=tmp_path / "again",
            sample=6000,
            cv_folds=0,
            permutation_repeats=2,
            candidates=(trained.metadata["candidate"],),
            feature_sets=(trained.metadata["feature_set"],),
            recency=(trained.metadata["recency"],),
        )
    )
    assert (
        again.metadata["metrics"]["validation"]["roc_auc"]
        == trained.metadata["metrics"]["validation"]["roc_auc"]
    )
    assert again.metadata["artifacts"]["model.onnx"] == trained.metadata["artifacts"]["model.onnx"]


def test_the_registered_model_is_refit_on_every_labelled_row(tmp_path):
    outcome = train(
        TrainConfig(
            data=BANK,
            out=tmp_path / "refit",
            sample=3000,
            cv_folds=0,
            permutation_repeats=1,
            candidates=("logreg",),
            feature_sets=("stable",),
            recency=("none",),
        )
    )
    data = outcome.metadata["training_data"]
    assert data["rows"] == data["train_rows"] == 3000
    assert outcome.pipeline.named_steps["pre"].named_transformers_["num"].n_samples_seen_ == 3000
    # Out of time: the validation block is the newest tenth, after every row its model was trained on.
    assert outcome.metadata["metrics"]["folds"]["per_fold"][-1]["train_rows"] == 2700
    assert (
        "refit" in outcome.metadata["threshold_rule"] or "refit model" in outcome.metadata["threshold_rule"]
    )


def test_recency_schemes_are_anchored_at_the_newest_row():
    from model.selection import RECENCY

    start, weights = RECENCY["halflife"].training(1000, 400)  # half-life 100 rows
    assert start == 0 and weights is not None and abs(weights.mean() - 1) < 1e-12
    assert abs(weights[-101] / weights[-1] - 0.5) < 1e-12 and np.all(np.diff(weights) > 0)
    start, weights = RECENCY["window"].training(1000, 300)  # the newest 100 rows
    assert (start, weights) == (900, None)
    assert RECENCY["none"].training(1000, 300) == (0, None)


def test_platt_scaling_folds_exactly_into_a_logistic_regression(bank):
    from model.calibration import Platt, fold_into
    from model.features import CANDIDATES
    from model.train import model_features

    frame = bank.head(3000)
    y = (frame["y"] == "yes").to_numpy()
    x = model_features(frame.drop(columns=["y"]))[list(FEATURE_SETS["stable"].columns)]
    pipeline = CANDIDATES["logreg"].build(FEATURE_SETS["stable"], 0).fit(x, y)
    platt = Platt(1.4, 0.8)
    calibrated = fold_into(pipeline, platt)
    raw = pipeline.predict_proba(x)[:, 1]
    assert (
        np.max(np.abs(calibrated.predict_proba(x)[:, 1] - platt.apply(raw))) < 1e-6
    )  # float32 probabilities
    schema = InputSchema.learn(x, FEATURE_SETS["stable"])
    _, difference = convert_checked(calibrated, schema, x.tail(500))
    assert difference < 1e-5


@pytest.mark.parametrize("candidate", ["logreg", "hgb", "rf"])
def test_every_candidate_family_converts_with_parity(candidate, bank):
    from model.features import CANDIDATES
    from model.train import model_features

    frame = bank.head(4000)
    y = (frame["y"] == "yes").to_numpy()
    features = model_features(frame.drop(columns=["y"]))
    feature_set = FEATURE_SETS["all"]
    pipeline = CANDIDATES[candidate].build(feature_set, 0).fit(features[list(feature_set.columns)], y)
    schema = InputSchema.learn(features, feature_set)
    _, difference = convert_checked(pipeline, schema, features.tail(1500))
    assert difference < 1e-5
    with pytest.raises(ParityError, match="not registering"):
        convert_checked(pipeline, schema, features.tail(200), tolerance=0.0)


def test_duration_can_never_reach_a_model(bank, caplog):
    with pytest.raises(SchemaError, match="leak the target"):
        assert_no_leak(["age", "duration"])
    schema = InputSchema.learn(prepare_features(bank.head(500)), FEATURE_SETS["all"])
    with pytest.raises(SchemaError, match="leak the target"):
        InputSchema.from_dict({**schema.to_dict(), "numeric": [*schema.numeric, "duration"]})
    checked = validate(bank.head(50), schema)
    assert "duration" in checked.dropped_columns and "duration" not in checked.frame.columns
    assert any("leak the target" in record.message for record in caplog.records)
    assert all("duration" not in fs.columns for fs in FEATURE_SETS.values())


def test_pdays_sentinel_becomes_a_flag():
    out = prepare_features(pd.DataFrame({"pdays": [-1, 0, 35]}))
    assert out["previously_contacted"].tolist() == [0, 1, 1]
    assert out["pdays"].tolist() == [0, 0, 35]


def test_schema_errors_are_clear(bank):
    schema = InputSchema.learn(prepare_features(bank.head(2000)), FEATURE_SETS["all"])
    with pytest.raises(SchemaError, match=r"missing required column\(s\) \['job'\]"):
        validate(bank.head(5).drop(columns=["job"]), schema)
    with pytest.raises(SchemaError, match="no rows"):
        validate(bank.head(0), schema)

    rows = bank.head(4).copy()
    rows["age"] = rows["age"].astype(object)
    rows.loc[1, "age"] = "forty"
    rows.loc[2, "job"] = None
    checked = validate(rows, schema)
    assert checked.rejected == [(2, "age: 'forty' is not a number"), (3, "job: missing value")]
    assert checked.ids.tolist() == [1, 4]  # no client_id: 1-based row numbers


def test_unseen_category_policy(bank):
    features = prepare_features(bank.head(2000))
    rows = bank.head(3).copy()
    rows.loc[0, "job"] = "astronaut"
    ignore = validate(rows, InputSchema.learn(features, FEATURE_SETS["all"], "ignore"))
    assert ignore.unseen == {"job": 1} and len(ignore.frame) == 3
    reject = validate(rows, InputSchema.learn(features, FEATURE_SETS["all"], "reject"))
    assert reject.rejected == [(1, "job: category 'astronaut' was not seen in training")]


def test_serving_scores_and_refuses_tampered_bytes(trained, bank, tmp_path):
    model = load_folder(trained.folder)
    scored, _ = model.predict(bank.tail(300))
    assert list(scored.columns) == ["client_id", "probability", "decision"]
    assert len(scored) == 300 and scored["probability"].between(0, 1).all()
    assert set(scored["decision"]) <= {0, 1}
    assert ((scored["probability"] >= model.threshold) == scored["decision"].astype(bool)).all()

    import shutil

    tampered = tmp_path / "tampered"
    shutil.copytree(trained.folder, tampered)
    data = bytearray((tampered / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (tampered / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(artifacts.IntegrityError, match="does not match metadata"):
        load_folder(tampered)


def test_serving_import_does_not_import_sklearn():
    code = "import sys, model.serving, model.schema; print('sklearn' in sys.modules, 'pickle' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)  # noqa: S603 - our interpreter running fixed code
    assert done.stdout.split()[0] == "False"


def test_training_from_exports_of_clients_and_outcomes(tmp_path, bank):
    from devstack.bank_rows import CLIENT_COLUMNS, OUTCOME_COLUMNS, read_bank_rows

    rows = [row for _, row in zip(range(3000), read_bank_rows(BANK), strict=False)]
    pd.DataFrame([r.client_values() for r in rows], columns=CLIENT_COLUMNS).to_csv(
        tmp_path / "clients.csv", index=False
    )
    pd.DataFrame([r.outcome_values() for r in rows], columns=OUTCOME_COLUMNS).sample(
        frac=1, random_state=0
    ).to_csv(tmp_path / "outcomes.csv", index=False)
    dataset = load_labelled(tmp_path / "clients.csv", tmp_path / "outcomes.csv")
    assert len(dataset.frame) == 3000 and dataset.frame["y"].sum() == (bank.head(3000)["y"] == "yes").sum()
    assert dataset.frame["client_id"].tolist()[:3] == [1, 2, 3]  # back in time order after the join
    assert len(dataset.fingerprint["sources"]) == 2


def test_cli_train_then_score(tmp_path, bank):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_module("model", *args)

    trained = run(
        "train",
        "--data",
        str(BANK),
        "--out",
        str(tmp_path / "m"),
        "--sample",
        "3000",
        "--cv-folds",
        "0",
        "--candidates",
        "logreg",
    )
    assert trained.returncode == 0, trained.stderr
    assert "out of time (the most recent fold): ROC AUC" in trained.stdout

    comma = bank.tail(200).drop(columns=["y", "duration"]).reset_index(drop=True)
    comma["balance"] = comma["balance"].astype(object)
    comma.loc[5, "balance"] = "lots"
    comma.to_csv(tmp_path / "in.csv", index=False)
    scored = run(
        "score",
        "--model",
        str(tmp_path / "m"),
        "--input",
        str(tmp_path / "in.csv"),
        "--output",
        str(tmp_path / "out.csv"),
        "--chunk-rows",
        "64",
    )
    assert scored.returncode == 0, scored.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    # The trigger's predictions format: keyed by `row` (the file has no client_id), with scored_at.
    assert list(out.columns) == ["row", "probability", "decision", "model_name", "model_version", "scored_at"]
    assert len(out) == 199 and 6 not in out["row"].tolist()
    rejected = pd.read_csv(tmp_path / "out.rejected.csv")
    assert rejected.to_dict("records") == [{"row": 6, "reason": "balance: 'lots' is not a number"}]

    semicolon = run(
        "score", "--model", str(tmp_path / "m"), "--input", str(BANK), "--output", str(tmp_path / "all.csv")
    )
    assert semicolon.returncode == 0, semicolon.stderr
    assert len(pd.read_csv(tmp_path / "all.csv")) == 36000
    assert not (tmp_path / "all.csv.partial").exists()

    missing = run(
        "score", "--model", str(tmp_path / "nope"), "--input", str(BANK), "--output", str(tmp_path / "x.csv")
    )
    assert missing.returncode == 2 and "error:" in missing.stderr
    assert np.isfinite(out["probability"]).all()


def test_cli_registry_lifecycle(trained, tmp_path):
    registry = ["--registry", str(tmp_path / "registry")]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_module("model", *registry, *args, timeout=120)

    assert "version 1" in run("register", str(trained.folder)).stdout
    assert "version 2" in run("register", str(trained.folder)).stdout
    assert run("promote", "1", "dev").returncode == 0
    skipped = run("promote", "2", "prod")
    assert skipped.returncode == 2 and "preprod" in skipped.stderr  # order: dev -> preprod -> prod
    assert run("promote", "2", "dev", "--data", str(BANK)).returncode == 0  # same model: gate passes
    assert run("promote", "2", "preprod", "--data", str(BANK)).returncode == 0
    listing = run("list").stdout
    assert "bank-marketing" in listing and "[dev, preprod]" in listing
    rolled = run("rollback", "dev", "--reason", "testing rollback")
    assert rolled.returncode == 0 and "version 1" in rolled.stdout
    shown = json.loads(run("show", "bank-marketing@dev").stdout)
    assert (
        shown["version"] == "1"
        and shown["artifacts"]["model.onnx"] == trained.metadata["artifacts"]["model.onnx"]
    )
    scored = run(
        "score",
        "--model",
        "bank-marketing@preprod",
        "--input",
        str(BANK),
        "--output",
        str(tmp_path / "p.csv"),
    )
    assert scored.returncode == 0, scored.stderr
    assert set(pd.read_csv(tmp_path / "p.csv")["model_version"]) == {2}


def test_one_session_per_model_and_thread_count(trained):
    first, again, single = (
        load_folder(trained.folder, 2),
        load_folder(trained.folder, 2),
        load_folder(trained.folder, 1),
    )
    assert first.session is again.session
    assert single.session is not first.session
    assert single.session.get_session_options().intra_op_num_threads == 1


def test_sessions_do_not_spin_between_runs(trained):
    """ONNX Runtime's default lets idle intra-op workers spin (its threading guide); ours sleep."""
    model_bytes = (trained.folder / artifacts.MODEL_FILE).read_bytes()
    for model in (load_folder(trained.folder, 2), load_bytes(trained.metadata, model_bytes, 2, shared=False)):
        options = model.session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
