"""The training script: compare candidates on time-ordered validation, package the winner.

Rows are in the order the campaign happened. The model will score future clients, so candidates
are selected on the most recent rows (train on the earlier part, validate on the later part);
stratified cross-validation is reported beside it for reference only. The registered model is
exactly the validated one (no refit), so its reported metrics are its own.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.inspection import permutation_importance
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline

from model import DEFAULT_MODEL_NAME, artifacts, evaluate, report
from model.data import load_labelled
from model.features import CANDIDATES
from model.onnx_export import PARITY_TOLERANCE, TARGET_OPSET, convert_checked
from model.reference import build_reference
from model.schema import FEATURE_SETS, NUMERIC, TARGET, InputSchema, prepare_features

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    out: Path
    outcomes: Path | None = None
    name: str = DEFAULT_MODEL_NAME
    seed: int = 42
    validation_fraction: float = 0.2
    candidates: tuple[str, ...] = ("logreg", "hgb", "rf")
    feature_sets: tuple[str, ...] = ("all", "no_calendar")
    cv_folds: int = 3
    sample: int | None = None
    unseen_policy: str = "ignore"
    tracking_uri: str | None = None
    permutation_repeats: int = 5


@dataclass
class CandidateResult:
    candidate: str
    feature_set: str
    validation: dict[str, float]
    cross_validation: dict[str, float]
    fit_seconds: float
    pipeline: Pipeline = field(repr=False)
    scores: np.ndarray = field(repr=False)

    @property
    def key(self) -> str:
        return f"{self.candidate}/{self.feature_set}"

    def summary(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "feature_set": self.feature_set,
            "validation": self.validation,
            "cross_validation": self.cross_validation,
            "fit_seconds": round(self.fit_seconds, 2),
        }


@dataclass
class TrainOutcome:
    folder: Path
    metadata: dict[str, Any]
    results: list[CandidateResult]


def _features(frame: pd.DataFrame) -> pd.DataFrame:
    """Engineered features with numerics as float32: exactly what ONNX Runtime will be fed."""
    features = prepare_features(frame)
    features[list(NUMERIC)] = features[list(NUMERIC)].astype(np.float32)
    return features


def _cross_validate(
    pipeline: Pipeline, x: pd.DataFrame, y: np.ndarray, folds: int, seed: int
) -> dict[str, float]:
    if folds < 2:
        return {}
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_validate(clone(pipeline), x, y, cv=splitter, scoring=["roc_auc", "average_precision"])
    return {
        "roc_auc_mean": float(np.mean(scores["test_roc_auc"])),
        "roc_auc_std": float(np.std(scores["test_roc_auc"])),
        "pr_auc_mean": float(np.mean(scores["test_average_precision"])),
        "pr_auc_std": float(np.std(scores["test_average_precision"])),
        "folds": float(folds),
    }


def _library_versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "pandas"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _git_commit() -> str | None:
    """The commit the code was trained from, with `-dirty` when the tree had local changes."""
    import subprocess

    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"],  # noqa: S607 - git from PATH, by design
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def train(config: TrainConfig) -> TrainOutcome:
    """Train every candidate x feature set, select on time-ordered validation, write the model folder."""
    started = time.perf_counter()
    dataset = load_labelled(config.data, config.outcomes, config.sample)
    frame = dataset.frame
    y = frame[TARGET].to_numpy()
    features = _features(frame.drop(columns=[TARGET]))
    cut = int(len(frame) * (1 - config.validation_fraction))
    if cut < 100 or len(frame) - cut < 50 or y[cut:].sum() == 0 or y[:cut].sum() == 0:
        raise ValueError(f"{len(frame)} rows are too few to train and validate in time order")
    x_train, x_valid, y_train, y_valid = features.iloc[:cut], features.iloc[cut:], y[:cut], y[cut:]
    log.info(
        "%d rows: train on the first %d, validate on the last %d (%.1f%% subscribed)",
        len(frame),
        cut,
        len(frame) - cut,
        100 * y_valid.mean(),
    )

    results: list[CandidateResult] = []
    for feature_set_name in config.feature_sets:
        feature_set = FEATURE_SETS[feature_set_name]
        columns = list(feature_set.columns)
        for candidate_name in config.candidates:
            pipeline = CANDIDATES[candidate_name].build(feature_set, config.seed)
            fit_started = time.perf_counter()
            pipeline.fit(x_train[columns], y_train)
            fit_seconds = time.perf_counter() - fit_started
            scores = pipeline.predict_proba(x_valid[columns])[:, 1]
            result = CandidateResult(
                candidate_name,
                feature_set_name,
                evaluate.metrics(y_valid, scores),
                _cross_validate(pipeline, features[columns], y, config.cv_folds, config.seed),
                fit_seconds,
                pipeline,
                scores,
            )
            log.info(
                "%-22s validation ROC AUC %.3f  PR AUC %.3f  top-10%% reaches %.0f%%  (%.1fs)",
                result.key,
                result.validation["roc_auc"],
                result.validation["pr_auc"],
                100 * result.validation["share_reached_top10"],
                fit_seconds,
            )
            results.append(result)

    best = max(results, key=lambda r: (r.validation["pr_auc"], r.validation["roc_auc"]))
    feature_set = FEATURE_SETS[best.feature_set]
    threshold = evaluate.best_f1_threshold(y_valid, best.scores)
    validation = evaluate.metrics(y_valid, best.scores, threshold)
    schema = InputSchema.learn(x_train, feature_set, config.unseen_policy)
    model_bytes, parity = convert_checked(best.pipeline, schema, x_valid)
    log.info(
        "selected %s; ONNX parity %.1e (< %.0e); threshold %.3f",
        best.key,
        parity,
        PARITY_TOLERANCE,
        threshold,
    )

    folder = config.out
    folder.mkdir(parents=True, exist_ok=True)
    (folder / artifacts.MODEL_FILE).write_bytes(model_bytes)
    columns = list(feature_set.columns)
    train_scores = best.pipeline.predict_proba(x_train[columns])[:, 1]
    importance = permutation_importance(
        best.pipeline,
        x_valid[columns],
        y_valid,
        scoring="average_precision",
        n_repeats=config.permutation_repeats,
        random_state=config.seed,
    )
    importances = dict(zip(columns, importance.importances_mean.tolist(), strict=True))
    # The drift verdict weighs each feature by how much the model relies on it (DRIFT_WEIGHT_BY_IMPORTANCE)
    reference = build_reference(x_train[columns], schema, train_scores, importance=importances)
    (folder / artifacts.REFERENCE_FILE).write_text(json.dumps(reference, indent=1))
    comparison = [r.summary() for r in results]

    metadata: dict[str, Any] = {
        "name": config.name,
        "version": None,
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "candidate": best.candidate,
        "feature_set": best.feature_set,
        "threshold": threshold,
        "threshold_rule": "maximises F1 on the time-ordered validation rows",
        "metrics": {"validation": validation, "cross_validation": best.cross_validation},
        "comparison": comparison,
        "permutation_importance": importances,
        "onnx": {
            "parity_max_abs_diff": parity,
            "tolerance": PARITY_TOLERANCE,
            "rows": len(x_valid),
            "opset": TARGET_OPSET,
        },
        "schema": schema.to_dict(),
        "training_data": {
            **dataset.fingerprint,
            "train_rows": cut,
            "validation_rows": len(frame) - cut,
            "validation": "time-ordered: the last rows",
        },
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "libraries": _library_versions(),
        "git_commit": _git_commit(),
    }
    report.write_report(folder, metadata, y_valid, best.scores, comparison, importances)
    metadata["artifacts"] = {f: artifacts.sha256_file(folder / f) for f in artifacts.artifact_files(folder)}
    metadata["training_seconds"] = round(time.perf_counter() - started, 1)
    (folder / artifacts.METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))
    _track(config, metadata, folder)
    return TrainOutcome(folder, metadata, results)


def _track(config: TrainConfig, metadata: dict[str, Any], folder: Path) -> None:
    """Log the run to MLflow (a local file store unless a tracking URI says otherwise)."""
    try:
        import mlflow
    except ImportError:
        log.warning("mlflow is not installed: run not tracked")
        return
    uri = config.tracking_uri or (config.out.resolve().parent / "mlruns").as_uri()
    if uri.startswith("file:"):
        # MLflow 3 keeps the file store in maintenance mode; it is all a laptop or CI needs, and a
        # database backend would pull in SQLAlchemy. The Azure ML workspace is the cloud backend.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(config.name)
    with mlflow.start_run(run_name=f"{metadata['candidate']}-{metadata['feature_set']}"):
        mlflow.log_params({k: v for k, v in metadata["params"].items() if v is not None})
        mlflow.log_metrics({f"validation_{k}": v for k, v in metadata["metrics"]["validation"].items()})
        for row in metadata["comparison"]:
            prefix = f"{row['candidate']}_{row['feature_set']}"
            mlflow.log_metrics(
                {
                    f"{prefix}_pr_auc": row["validation"]["pr_auc"],
                    f"{prefix}_roc_auc": row["validation"]["roc_auc"],
                }
            )
        mlflow.log_artifacts(str(folder))
    log.info("tracked in MLflow at %s", uri)
