"""The training script: select out of time on rolling-origin folds, refit the winner on every row.

Rows are in the order the campaign happened and the data drift strongly, so every configuration
(candidate family x feature set x recency weighting, model/selection.py) is trained on the rows
before each of the last folds' cuts and scored on the block after it (model/folds.py). The folds'
mean ROC AUC selects, with a one-standard-error rule for simplicity. The registered model is the
selected configuration refit on every labelled row, since the newest rows are the ones most like
the clients it will score; its reported metrics are the out-of-time ones of the folds (the most
recent fold as `metrics.validation`), and its threshold is chosen on that fold's scores.
Stratified cross-validation of the selected configuration is kept for reference only.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.inspection import permutation_importance
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline

from model import DEFAULT_MODEL_NAME, artifacts, calibration, evaluate, report, selection
from model.calibration import Platt
from model.data import load_labelled
from model.folds import Fold, rolling_origin
from model.onnx_export import PARITY_TOLERANCE, TARGET_OPSET, convert_checked
from model.reference import build_reference
from model.schema import FEATURE_SETS, NUMERIC, TARGET, InputSchema, prepare_features
from model.selection import ConfigResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    out: Path
    outcomes: Path | None = None
    name: str = DEFAULT_MODEL_NAME
    seed: int = 42
    # The newest share of rows the rolling-origin folds validate on, in `folds` equal blocks: 30 %
    # in 3 blocks of 10 % (cuts at 70/80/90 %). Earlier cuts would train on rows where `contact`
    # (first 30 %) and `poutcome` (first 60 %) are all "unknown": folds unlike the future.
    validation_fraction: float = 0.3
    folds: int = 3
    candidates: tuple[str, ...] = ("logreg", "hgb", "rf")
    feature_sets: tuple[str, ...] = ("all", "no_calendar", "stable")
    recency: tuple[str, ...] = ("none", "halflife", "window")
    cv_folds: int = 3
    sample: int | None = None
    unseen_policy: str = "ignore"
    tracking_uri: str | None = None
    permutation_repeats: int = 5


@dataclass
class TrainOutcome:
    folder: Path
    metadata: dict[str, Any]
    results: list[ConfigResult]
    pipeline: Pipeline  # the registered model: the selected configuration refit on every labelled row


def model_features(frame: pd.DataFrame) -> pd.DataFrame:
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


def _check_folds(folds: list[Fold], y: np.ndarray) -> None:
    for fold in folds:
        for part, rows in (("training", fold.train), ("validation", fold.validation)):
            positives = int(y[rows.start : rows.stop].sum())
            if positives in (0, len(rows)):
                raise ValueError(f"{fold.describe(len(y))}: its {part} rows hold a single class")


def _calibrate(chosen: ConfigResult, y: np.ndarray) -> tuple[Platt | None, np.ndarray, dict[str, Any]]:
    """Check Platt scaling out of time; the map for the refit (None: not recalibrated), the most
    recent fold's scores as the served model would have given them, and the check's record."""
    last = chosen.folds[-1]
    y_last = y[last.fold.cut : last.fold.end]
    if len(chosen.folds) < 2:
        return (
            None,
            last.scores,
            {"applied": False, "reason": "one fold: nothing to fit Platt scaling on out of time"},
        )
    previous = chosen.folds[-2]
    previous_platt, figures = calibration.check(
        previous.scores, y[previous.fold.cut : previous.fold.end], last.scores, y_last
    )
    record: dict[str, Any] = {
        "method": "Platt scaling fitted on the previous fold's out-of-time scores, "
        "judged on the most recent fold",
        **figures,
    }
    if not figures["helps"]:
        return (
            None,
            last.scores,
            {**record, "applied": False, "reason": "it does not lower Brier on the most recent fold"},
        )
    if not calibration.can_fold(chosen.last_pipeline):
        reason = f"{chosen.config.candidate} has no exact ONNX-convertible Platt composition here"
        return None, last.scores, {**record, "applied": False, "reason": reason}
    final = calibration.Platt.fit(last.scores, y_last)  # the newest out-of-time scores calibrate the refit
    record |= {"applied": True, "platt_slope": final.slope, "platt_intercept": final.intercept}
    return final, previous_platt.apply(last.scores), record


def evaluate_grid(
    features: pd.DataFrame, y: np.ndarray, config: TrainConfig
) -> tuple[list[Fold], list[ConfigResult]]:
    """Every configuration of `config`'s grid on rolling-origin folds over these rows (time order).

    The selection's evidence, shared by `train` and the procedure's backtest (bench/selection_backtest.py),
    which runs it on the rows before a cut to see how the selected model does after it.
    """
    rows = len(y)
    try:
        folds = rolling_origin(rows, config.folds, config.validation_fraction)
    except ValueError as error:
        raise ValueError(f"{rows} rows are too few to train and validate in time order: {error}") from error
    _check_folds(folds, y)
    for fold in folds:
        log.info("%s (%.1f%% subscribed)", fold.describe(rows), 100 * y[fold.cut : fold.end].mean())

    results: list[ConfigResult] = []
    for configuration in selection.grid(config.candidates, config.feature_sets, config.recency):
        result = selection.evaluate_configuration(configuration, features, y, folds, config.seed)
        log.info(
            "%-28s ROC AUC %.3f ± %.3f  PR AUC %.3f ± %.3f  Brier %.4f  (%.1fs)",
            configuration.key,
            result.mean("roc_auc"),
            result.std("roc_auc"),
            result.mean("pr_auc"),
            result.std("pr_auc"),
            result.mean("brier"),
            result.fit_seconds,
        )
        results.append(result)
    return folds, results


def train(config: TrainConfig) -> TrainOutcome:
    """Evaluate every configuration out of time, select (one-SE rule), refit on every row, package."""
    started = time.perf_counter()
    dataset = load_labelled(config.data, config.outcomes, config.sample)
    frame = dataset.frame
    y = frame[TARGET].to_numpy()
    features = model_features(frame.drop(columns=[TARGET]))
    rows = len(frame)
    folds, results = evaluate_grid(features, y, config)
    chosen = selection.select(results)
    best = max(results, key=lambda r: r.mean(selection.SELECTION_METRIC))
    feature_set = FEATURE_SETS[chosen.config.feature_set]
    columns = list(feature_set.columns)
    recency = selection.RECENCY[chosen.config.recency]

    last = chosen.folds[-1].fold
    x_last, y_last = features.iloc[last.cut : last.end], y[last.cut : last.end]
    platt, served_scores, calibration_record = _calibrate(chosen, y)
    threshold = evaluate.best_f1_threshold(y_last, served_scores)
    validation = evaluate.metrics(y_last, served_scores, threshold)

    # The registered model: the selected configuration refit on every labelled row, its recency
    # scheme anchored at the newest row; Platt scaling folded in when the check says it helps.
    refit, refit_rows = chosen.config.fit(features, y, rows, rows, config.seed)
    if platt is not None:
        refit = calibration.fold_into(refit, platt)
    schema = InputSchema.learn(features, feature_set, config.unseen_policy)
    model_bytes, parity = convert_checked(refit, schema, x_last)
    log.info(
        "selected %s (best mean %s %.3f ± SE %.3f); refit on %d rows; ONNX parity %.1e; threshold %.3f",
        chosen.config.key,
        best.config.key,
        best.mean(selection.SELECTION_METRIC),
        best.standard_error(selection.SELECTION_METRIC),
        refit_rows,
        parity,
        threshold,
    )

    folder = config.out
    folder.mkdir(parents=True, exist_ok=True)
    (folder / artifacts.MODEL_FILE).write_bytes(model_bytes)
    # Out of time: the model trained before the most recent fold, shuffled features of that fold.
    importance = permutation_importance(
        chosen.last_pipeline,
        x_last[columns],
        y_last,
        scoring="average_precision",
        n_repeats=config.permutation_repeats,
        random_state=config.seed,
    )
    importances = dict(zip(columns, importance.importances_mean.tolist(), strict=True))
    all_scores = refit.predict_proba(features[columns])[:, 1]
    # The drift verdict weighs each feature by how much the model relies on it (DRIFT_WEIGHT_BY_IMPORTANCE)
    reference = build_reference(features[columns], schema, all_scores, importance=importances)
    (folder / artifacts.REFERENCE_FILE).write_text(json.dumps(reference, indent=1))
    comparison = [r.summary() for r in results]
    selection_record = {
        "metric": selection.SELECTION_METRIC,
        "rule": "one standard error: the simplest configuration whose fold mean is within one standard "
        "error (std / sqrt(folds)) of the best mean; simplicity: logreg < hgb < rf, no weighting < "
        "weighting, fewer features < more",
        "best": best.config.key,
        "best_mean": best.mean(selection.SELECTION_METRIC),
        "standard_error": best.standard_error(selection.SELECTION_METRIC),
        "selected": chosen.config.key,
        "selected_mean": chosen.mean(selection.SELECTION_METRIC),
        "recency": recency.describe(rows),
    }
    cross = _cross_validate(
        chosen.config.build(config.seed), features[columns], y, config.cv_folds, config.seed
    )

    metadata: dict[str, Any] = {
        "name": config.name,
        "version": None,
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "candidate": chosen.config.candidate,
        "feature_set": chosen.config.feature_set,
        "recency": chosen.config.recency,
        "threshold": threshold,
        "threshold_rule": "maximises F1 on the most recent fold's out-of-time scores "
        "(model trained before it), applied to the refit model",
        "metrics": {
            "validation": validation,
            "folds": chosen.folds_record(rows),
            "calibration": calibration_record,
            "cross_validation": cross,
        },
        "selection": selection_record,
        "comparison": comparison,
        "permutation_importance": importances,
        "onnx": {
            "parity_max_abs_diff": parity,
            "tolerance": PARITY_TOLERANCE,
            "rows": len(x_last),
            "opset": TARGET_OPSET,
        },
        "schema": schema.to_dict(),
        "training_data": {
            **dataset.fingerprint,
            "train_rows": refit_rows,
            "refit": f"every labelled row, {recency.describe(rows)}",
            "validation_rows": last.end - last.cut,
            "validation": f"time-ordered: rolling origin, {len(folds)} folds of {last.end - last.cut:,} rows "
            f"over the newest {config.validation_fraction:.0%}, cuts at rows "
            + ", ".join(f"{f.cut:,}" for f in folds),
        },
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "libraries": _library_versions(),
        "git_commit": _git_commit(),
    }
    report.write_report(folder, metadata, y_last, served_scores, comparison, importances)
    metadata["artifacts"] = {f: artifacts.sha256_file(folder / f) for f in artifacts.artifact_files(folder)}
    metadata["training_seconds"] = round(time.perf_counter() - started, 1)
    (folder / artifacts.METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))
    _track(config, metadata, folder)
    return TrainOutcome(folder, metadata, results, refit)


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
    run_name = f"{metadata['candidate']}-{metadata['feature_set']}-{metadata['recency']}"
    with mlflow.start_run(run_name=run_name):
        mlflow.log_params({k: v for k, v in metadata["params"].items() if v is not None})
        mlflow.log_metrics({f"validation_{k}": v for k, v in metadata["metrics"]["validation"].items()})
        for row in metadata["comparison"]:
            prefix = f"{row['candidate']}_{row['feature_set']}_{row['recency']}"
            mlflow.log_metrics(
                {
                    f"{prefix}_folds_pr_auc_mean": row["pr_auc_mean"],
                    f"{prefix}_folds_roc_auc_mean": row["roc_auc_mean"],
                }
            )
        mlflow.log_artifacts(str(folder))
    log.info("tracked in MLflow at %s", uri)
