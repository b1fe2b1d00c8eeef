"""Realistic monitoring documents for the dashboard's tests and its screenshot, made by the real producers.

A model on the bank data serves daily batches for some weeks: reference.json from 20,000 bank rows
(`model.reference.build_reference`), one drift report per batch (`model.drift.DriftCounts`), one
label-free estimate per batch (`model.monitoring.estimate.estimate_probabilities`), and weekly
quality documents from delayed outcomes (`model.monitoring.quality`, `compare_joined`,
`period_documents`), written where the writers write them (`lake.paths`). On the way, version 2
is promoted through the stages and a version 3 is rolled back in dev; late in the run `age` drifts
upwards, an unseen `job` appears, and the outcomes stop following the scores (concept drift), which
is what the dashboard is for. The scores are a fixed logistic function of the features (as
tests/test_drift_stats.py does), not a fitted model: fast, and deterministic with the seed.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from devstack.bank_rows import BANK_CSV
from lake.paths import drift_path, estimate_path, quality_path
from model import DEFAULT_MODEL_NAME
from model.artifacts import METADATA_FILE
from model.drift import DriftCounts
from model.monitoring.compare import compare_joined
from model.monitoring.estimate import estimate_probabilities
from model.monitoring.join import join_outcomes
from model.monitoring.quality import QualityConfig, period_documents, quality_records
from model.reference import build_reference
from model.registry import FolderStore, Registry
from model.registry.layout import stage_file, version_file
from model.registry.records import promotion_record, rollback_record, with_history
from model.schema import FEATURE_SETS, ID_COLUMN, InputSchema, prepare_features

START = dt.datetime(2026, 9, 7, 2, 0, tzinfo=dt.UTC)  # a Monday, 02:00 UTC: the nightly chain
THRESHOLDS = {"1": 0.12, "2": 0.13, "3": 0.13}
REGISTERED_AUC = {"1": 0.63, "2": 0.64, "3": 0.6}
UNSEEN_JOB = "gig-economy"
GATE = {"metric": "pr_auc", "challenger": 0.214, "champion": 0.205, "rows": 7200}  # as the gate records it


@dataclass(frozen=True)
class Samples:
    """Where the documents are, and one drifted batch's inputs for a batch page."""

    monitoring: FolderStore
    registry: Registry
    model: str
    reference: dict[str, Any]
    counts: DriftCounts
    report: dict[str, Any]
    end: dt.datetime


def bank_rows() -> pd.DataFrame:
    """The bank rows as the model sees them (prepared features, numbers as float32)."""
    fs = FEATURE_SETS["all"]
    raw = pd.read_csv(BANK_CSV, sep=";").drop(columns=["duration", "y"])
    rows = prepare_features(raw)[list(fs.columns)]
    rows[list(fs.numeric)] = rows[list(fs.numeric)].astype(np.float32)
    return rows.reset_index(drop=True)


def score(frame: pd.DataFrame, version: str) -> np.ndarray:
    """A fixed logistic score per version: moves with age, balance, campaign and past contact."""
    shift = {"1": 0.0, "2": 0.1, "3": 0.3}[version]
    z = (
        -2.2
        + shift
        + 0.03 * (frame["age"] - 40)
        + 0.00005 * frame["balance"]
        - 0.1 * frame["campaign"]
        + 0.9 * frame["previously_contacted"]
        + 0.5 * (frame["housing"] == "no")
    )
    return (1 / (1 + np.exp(-z.to_numpy(dtype=np.float64)))).astype(np.float32)


def _write(store: FolderStore, path: str, document: dict[str, Any]) -> None:
    store.create(path, json.dumps(document).encode())


def _register(store: FolderStore, model: str, version: str, at: dt.datetime) -> None:
    metadata = {
        "name": model,
        "version": version,
        "registered_at": at.isoformat(timespec="seconds"),
        "threshold": THRESHOLDS[version],
        "metrics": {
            "validation": {"roc_auc": REGISTERED_AUC[version], "pr_auc": 0.2},
            "test": {"roc_auc": REGISTERED_AUC[version]},
        },
    }
    store.create(version_file(model, version, METADATA_FILE), json.dumps(metadata).encode())


def _move(store: FolderStore, model: str, stage: str, version: str, at: dt.datetime, **why: str) -> None:
    """A stage record as Registry.promote / rollback write it, at the sample's own time."""
    raw, token = store.read_with_token(stage_file(model, stage))
    current = None if raw is None else json.loads(raw)
    previous = None if current is None else str(current["version"])
    if "rollback" in why:
        record = rollback_record(stage, version, actor="ops", reason=why["rollback"], previous=str(previous))
    else:
        gate = None if previous is None or "override" in why else GATE
        override = why.get("override")
        record = promotion_record(
            stage, version, actor="mlops", gate=gate, override_reason=override, previous=previous
        )
    record["promoted_at"] = at.isoformat(timespec="seconds")
    store.replace(stage_file(model, stage), json.dumps(with_history(record, current)).encode(), token)


def _promotions(store: FolderStore, model: str, day: int, days: int, at: dt.datetime) -> None:
    """v1 through the stages before the first batch, v2 half-way, a v3 rolled back in dev."""
    hour = dt.timedelta(hours=1)
    if day == 0:
        start = at - 26 * hour
        _register(store, model, "1", start)
        for i, stage in enumerate(("dev", "preprod", "prod")):
            _move(store, model, stage, "1", start + (2 + 3 * i) * hour)
    if day == days // 2:
        _register(store, model, "2", at - 48 * hour)
        _move(store, model, "dev", "2", at - 45 * hour)
        _move(store, model, "preprod", "2", at - 15 * hour)
        _move(store, model, "prod", "2", at + 8 * hour)
    if day == int(days * 0.8):
        _register(store, model, "3", at)
        _move(store, model, "dev", "3", at + 6 * hour, override="urgent retrain")
        _move(store, model, "dev", "2", at + 28 * hour, rollback="scores of v3 drifted on the new campaign")


def _batch(pool: pd.DataFrame, rng: np.random.Generator, day: int, days: int) -> pd.DataFrame:
    """The day's rows: mostly a few thousand, a small batch weekly, an empty file once; drift late on."""
    rows = 0 if day == 3 else int(rng.integers(400, 900)) if day % 7 == 5 else int(rng.integers(1500, 6000))
    batch = pool.sample(rows, replace=True, random_state=int(rng.integers(1 << 30))).reset_index(drop=True)
    if day >= int(days * 0.7):  # the campaign moves to older clients, more every day
        batch["age"] = (batch["age"] + min(12, 2 + day - int(days * 0.7))).astype(np.float32)
    if day >= int(days * 0.8) and rows:  # a job category the model never saw
        batch.loc[batch.sample(frac=0.08, random_state=day).index, "job"] = UNSEEN_JOB
    return batch


def _outcomes(batch: pd.DataFrame, p: np.ndarray, ids: list[str], scored_at: dt.datetime, drifted: bool,
              rng: np.random.Generator) -> pd.DataFrame:  # fmt: skip
    """Outcomes drawn from the scores (calibrated), except under concept drift; calls a few days later."""
    truth = p.astype(np.float64)
    if drifted:  # the older clients of the new campaign subscribe less than the model thinks
        truth = truth * np.where(batch["age"] > 45, 0.35, 1.6)
    lag = rng.geometric(0.18, len(batch))
    return pd.DataFrame({
        ID_COLUMN: ids,
        "contact_date": [(scored_at + dt.timedelta(days=int(d))).date() for d in lag],
        "subscribed": (rng.random(len(batch)) < np.clip(truth, 0, 1)).astype(int),
    })  # fmt: skip


def _quality(monitoring: FolderStore, model: str, predictions: pd.DataFrame, outcomes: pd.DataFrame) -> None:
    """The monitor timer's documents: per week, each version's record with its comparison and baseline."""
    config = QualityConfig(period="week")
    joined = join_outcomes(predictions, outcomes, period=config.period)
    compared = {(c["model_version"], c["period"]): c for c in compare_joined(joined)}
    for (_, period), document in period_documents(quality_records(joined, config)).items():
        for version, record in document["versions"].items():
            record["estimate_vs_realised"] = compared.get((version, period))
            record["baseline"] = {"roc_auc": REGISTERED_AUC[version]}
        _write(monitoring, quality_path(model, period), document)


def write_samples(root: Path, *, days: int = 42, seed: int = 7, model: str = DEFAULT_MODEL_NAME) -> Samples:
    """Write `days` daily batches' documents under root/monitoring and a registry under root/registry."""
    rng = np.random.default_rng(seed)
    rows = bank_rows()
    training = rows.sample(20_000, random_state=0)
    pool = rows.drop(training.index)
    schema = InputSchema.learn(training, FEATURE_SETS["all"])
    references = {v: build_reference(training, schema, score(training, v)) for v in ("1", "2")}
    monitoring, models = FolderStore(root / "monitoring"), FolderStore(root / "registry")
    predictions, outcomes = [], []
    drifted: tuple[dict[str, Any], DriftCounts, dict[str, Any]] | None = None
    for day in range(days):
        scored_at = START + dt.timedelta(days=day, minutes=int(rng.integers(0, 50)))
        _promotions(models, model, day, days, scored_at)
        version = "1" if day <= days // 2 else "2"
        batch = _batch(pool, rng, day, days)
        p = score(batch, version)
        name, iso = f"clients-{scored_at.date().isoformat()}", scored_at.isoformat(timespec="seconds")
        rejected = int(rng.poisson(len(batch) * (0.06 if day % 11 == 8 else 0.004)))
        context = {
            "input": {"blob": f"{name}.csv", "etag": f"0x8DE{seed:02d}{day:04d}"},
            "model": {"name": model, "version": version, "stage": "prod", "threshold": THRESHOLDS[version]},
            "scored_at": iso,
        }
        counts = DriftCounts(references[version])
        counts.add(batch, p)
        report = {**context, **counts.summary()}
        _write(monitoring, drift_path(model, iso[:10], name), report)
        if report["status"] in ("warn", "alert"):
            drifted = (references[version], counts, report)
        tally = {"rows_in": len(batch) + rejected, "rows_scored": len(batch), "rows_rejected": rejected}
        record = estimate_probabilities(p.astype(np.float64), threshold=THRESHOLDS[version],
                                        context={**context, "batch": tally})  # fmt: skip
        _write(monitoring, estimate_path(model, iso[:10], name), record)
        ids = [f"{day:03d}{i:05d}" for i in range(len(batch))]
        decisions = (p >= THRESHOLDS[version]).astype(int)
        columns = {"probability": p, "decision": decisions, "model_name": model, "model_version": version}
        predictions.append(pd.DataFrame({ID_COLUMN: ids, **columns, "scored_at": iso}))
        outcomes.append(_outcomes(batch, p, ids, scored_at, day >= int(days * 0.7), rng))
    end = START + dt.timedelta(days=days)
    arrived = pd.concat(outcomes)
    arrived = arrived[pd.to_datetime(arrived["contact_date"]) < pd.Timestamp(end.date())]  # not called yet
    _quality(monitoring, model, pd.concat(predictions), arrived)
    if drifted is None:
        raise ValueError(f"{days} days are too few for the sample to drift (at least 10)")
    return Samples(monitoring, Registry(models), model, *drifted, end=end)
