"""The monitor timer's work: realised quality from the outcomes that have arrived, beside the estimate.

Each run recomputes the last MONITOR_LOOKBACK_DAYS, rounded back to whole periods, from scratch:
join the predictions published since then with the outcome exports (model.monitoring.join),
compute every (version, period) record with its bootstrap intervals (model.monitoring.quality),
set the realised figures beside the label-free estimate on the same rows (model.monitoring.compare),
and replace `monitoring/{model}/quality/{period}.json` for each period seen. A re-run writes the
same documents (seeded intervals): nothing is appended, so nothing duplicates. Older periods keep
the record of their last run. Then the dashboard is redrawn from what `monitoring/` holds.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from azure.storage.blob import BlobServiceClient

from functions.blob_io import ensure_container, read_text, write_json
from functions.monitor.http_traffic import read_traffic, write_http_drift
from functions.monitor.sources import drift_verdicts, read_outcomes, read_predictions, streak
from functions.retrain.request import request_retrain
from functions.settings import Settings
from functions.telemetry.emit import emit
from functions.telemetry.events import MONITOR_RUN, QUALITY_MEASURED, RETRAIN_EVALUATED
from lake import clients
from lake.contract import EXPORTS_CONTAINER, MODELS_CONTAINER, MONITORING_CONTAINER, PREDICTIONS_CONTAINER
from lake.paths import quality_path, retrain_verdict_path
from model.monitoring import triggers
from model.monitoring.compare import compare_joined
from model.monitoring.join import join_outcomes, period_bounds, period_labels
from model.monitoring.quality import QualityConfig, period_documents, quality_records
from model.registry import BlobStore, Registry, RegistryError

log = logging.getLogger(__name__)


@dataclass
class MonitorReport:
    """What one run read and wrote (logged, emitted as `monitor_run`, returned to tests)."""

    model_name: str
    since: str
    predictions: int = 0
    outcomes: int = 0
    periods: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    http_drift: list[str] = field(default_factory=list)  # drift reports of the HTTP traffic, per day
    batches: int = 0  # scored batches with a drift verdict in the window
    drift_streak: int = 0  # the latest of them in a row whose dataset drifted
    retrain: dict[str, Any] | None = None  # the retraining verdict (None: no version serves yet)
    dashboard: str | None = None
    seconds: float = 0.0


def window_start(now: dt.datetime, lookback_days: int, period: str) -> dt.datetime:
    """The start (00:00 UTC) of the period holding `now - lookback_days`: whole periods only.

    A period cut in the middle would hold only part of its predictions and overwrite a complete
    record with a partial one.
    """
    earliest = pd.Series([pd.Timestamp(now - dt.timedelta(days=lookback_days))])
    label = str(period_labels(earliest, period).iloc[0])
    start = dt.date.fromisoformat(period_bounds(label, period)[0])
    return dt.datetime.combine(start, dt.time(), dt.UTC)


def baselines(registry: Registry, model_name: str, versions: set[str]) -> dict[str, float | None]:
    """Each version's registered validation ROC AUC: what its realised quality is held against."""
    found: dict[str, float | None] = {}
    for version in sorted(versions):
        try:
            metadata = registry.show(model_name, version)
        except RegistryError:
            found[version] = None  # a version scored and since deleted: no baseline
            continue
        value = ((metadata.get("metrics") or {}).get("validation") or {}).get("roc_auc")
        found[version] = float(value) if isinstance(value, int | float) else None
    return found


def quality_documents(
    predictions: pd.DataFrame,
    outcomes: pd.DataFrame,
    period: str,
    baseline: Callable[[set[str]], dict[str, float | None]],
) -> dict[tuple[str, str], dict[str, Any]]:
    """The quality document of every (model, period) present: records, comparisons, baselines."""
    joined = join_outcomes(predictions, outcomes, period=period)
    records = quality_records(joined, QualityConfig(period=period))
    comparisons = {(c["model_version"], c["period"]): c for c in compare_joined(joined)}
    baseline_of = baseline({r["model_version"] for r in records})
    for record in records:
        comparison = comparisons.get((record["model_version"], record["period"]))
        if comparison is not None:
            comparison = {k: v for k, v in comparison.items() if k != "estimate"}  # figures hold it
        record["estimate_vs_realised"] = comparison
        record["baseline"] = {"roc_auc": baseline_of.get(record["model_version"])}
    return period_documents(records)


def run_monitor(
    settings: Settings,
    now: dt.datetime | None = None,
    service: BlobServiceClient | None = None,
    render: Callable[[BlobServiceClient, Registry, str], str | None] | None = None,
    scheduled: bool = False,
) -> MonitorReport:
    """One monitor run for MODEL_NAME; `render` redraws the dashboard and returns its path.

    When a retraining rule fires (or `scheduled`: the RETRAIN_SCHEDULE timer), the retrain is
    asked for where RETRAIN_RUNNER says (functions/retrain/request.py) and the verdict records it.
    """
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC)
    service = service or clients.blob_service(settings.data_lake)
    options = settings.monitoring
    since = window_start(now, options.lookback_days, options.period)
    report = MonitorReport(settings.model_name, since.isoformat())
    monitoring = service.get_container_client(MONITORING_CONTAINER)
    if not settings.data_lake.identity_based:
        ensure_container(monitoring)  # Azurite: what Pulumi provisions in Azure
    registry = Registry(BlobStore(service.get_container_client(MODELS_CONTAINER)))

    predicted = read_predictions(
        service.get_container_client(PREDICTIONS_CONTAINER), settings.model_name, since
    )
    outcomes = read_outcomes(
        service.get_container_client(EXPORTS_CONTAINER), options.outcomes_table, since.date()
    )
    traffic = read_traffic(monitoring, settings.model_name, since)  # the HTTP function's answers
    report.http_drift = write_http_drift(monitoring, registry, settings.model_name, traffic, options.drift)
    if len(traffic.predictions):
        predicted.frame = pd.concat([predicted.frame, traffic.predictions], ignore_index=True)
    report.predictions, report.outcomes = len(predicted.frame), len(outcomes.frame)
    report.skipped = predicted.skipped + outcomes.skipped + traffic.skipped
    if not outcomes.files:
        log.warning(
            "monitor: no complete export of %s since %s: realised quality cannot be computed",
            options.outcomes_table,
            since.date(),
        )
    documents = quality_documents(
        predicted.frame,
        outcomes.frame,
        options.period,
        lambda versions: baselines(registry, settings.model_name, versions),
    )
    for (model_name, period), document in sorted(documents.items()):
        document["computed_at"] = now.isoformat(timespec="seconds")
        document["window_start"] = report.since
        path = quality_path(model_name, period)
        write_json(monitoring, path, document)
        report.periods.append(period)
        report.written.append(path)
        for record in document["versions"].values():
            report.records.append(record)
            _emit_quality(record)
    verdicts = drift_verdicts(monitoring, settings.model_name, since.date())
    report.skipped += verdicts.skipped
    report.batches, report.drift_streak = streak(verdicts.frame)
    report.retrain = _retrain_verdict(registry, settings, documents, report, now, scheduled)
    if report.retrain is not None:
        verdict_at = retrain_verdict_path(settings.model_name, now.date().isoformat())
        if report.retrain["retrain"]:
            previous = read_text(monitoring, verdict_at)
            report.retrain["submission"] = request_retrain(
                settings, service, report.retrain, now, None if previous is None else json.loads(previous)
            )
        write_json(monitoring, verdict_at, report.retrain)
    if render is not None:
        report.dashboard = render(service, registry, settings.model_name)
    report.seconds = time.perf_counter() - started
    emit(
        log,
        MONITOR_RUN,
        "monitor %s: %d predictions, %d outcomes, %d period(s) written in %.1fs",
        settings.model_name,
        report.predictions,
        report.outcomes,
        len(report.periods),
        report.seconds,
        model_name=settings.model_name,
        periods=report.periods,
        predicted_rows=report.predictions,
        outcome_rows=report.outcomes,
        seconds=round(report.seconds, 3),
        dashboard=report.dashboard,
        batches=report.batches,
        drift_streak=report.drift_streak,
        skipped=sum(report.skipped.values()),
    )
    return report


def _retrain_verdict(
    registry: Registry,
    settings: Settings,
    documents: dict[tuple[str, str], dict[str, Any]],
    report: MonitorReport,
    now: dt.datetime,
    scheduled: bool,
) -> dict[str, Any] | None:
    """The retraining rules for the version MODEL_STAGE serves, recorded with their evidence."""
    try:
        version = registry.resolve(settings.model_name, settings.model_stage)
    except RegistryError:
        return None  # nothing serves yet: nothing to judge
    verdict = triggers.evaluate(
        documents.values(), version, report.drift_streak, settings.monitoring.retrain, scheduled
    )
    emit(
        log,
        RETRAIN_EVALUATED,
        "retrain %s v%s: %s",
        settings.model_name,
        version,
        ", ".join(verdict.fired) or "no rule fired",
        level=logging.WARNING if verdict.retrain else logging.INFO,
        model_name=settings.model_name,
        model_version=version,
        retrain=verdict.retrain,
        fired=list(verdict.fired),
    )
    return {
        "kind": "retrain_verdict",
        "model_name": settings.model_name,
        "model_version": version,
        "stage": settings.model_stage,
        "evaluated_at": now.isoformat(timespec="seconds"),
        "policy": asdict(settings.monitoring.retrain),
        **verdict.to_dict(),
    }


def _emit_quality(record: dict[str, Any]) -> None:
    metrics = record.get("metrics") or {}
    auc = metrics.get("roc_auc") or {}
    comparison = record.get("estimate_vs_realised") or {}
    figures = comparison.get("figures") or {}
    outside = sorted(name for name, figure in figures.items() if figure.get("outside"))
    auc_gap = (figures.get("roc_auc") or {}).get("gap")
    emit(
        log,
        QUALITY_MEASURED,
        "quality %s v%s %s: %s (%d labelled, coverage %s)",
        record["model_name"],
        record["model_version"],
        record["period"],
        record["status"],
        record["counts"]["labelled"],
        _share(record["coverage"]),
        model_name=record["model_name"],
        model_version=record["model_version"],
        period=record["period"],
        status=record["status"],
        labelled=record["counts"]["labelled"],
        coverage=record["coverage"],
        base_rate=record["base_rate"],
        roc_auc=auc.get("value"),
        roc_auc_low=auc.get("low"),
        roc_auc_high=auc.get("high"),
        baseline_roc_auc=record["baseline"]["roc_auc"],
        estimate_gap=bool(comparison.get("gap_outside_interval")),
        figures_outside=outside,
        roc_auc_gap=auc_gap,
    )


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"
