"""The telemetry contract: which structured events the app logs, and the dimensions of each.

One home for what the app writes and the Pulumi alerts read (`infra/components/alerts.py` builds
its KQL from these names). Each event is one log record whose attributes are the event's
dimensions; in Application Insights they land in the `traces` table's `customDimensions`, with
`customDimensions.event` naming the event. Values are sent as text, normalised the same way
everywhere (`functions.telemetry.emit.dimension_text`): booleans `true`/`false`, numbers as
decimals, lists comma-separated, None left out. A query reads them back with `todouble()`,
`toint()` or a comparison with `"true"`.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENT_KEY = "event"  # the customDimensions key that names the event


@dataclass(frozen=True)
class Event:
    name: str
    meaning: str
    dimensions: tuple[str, ...]


EXPORT_TABLE = Event(
    "export_table",
    "one table of the daily export finished (or failed)",
    ("table", "status", "rows", "bytes", "seconds", "error"),
)

BATCH_SCORED = Event(
    "batch_scored",
    "one scoring input was published (whole or assembled from its shards)",
    (
        "input",
        "model_name",
        "model_version",
        "model_stage",
        "status",
        "rows_in",
        "rows_scored",
        "rows_rejected",
        "seconds",
        "drift_status",  # ok | warn | alert | empty (docs/monitoring.md)
        "dataset_drifted",  # the dataset verdict, true/false
        "drift_share",
        "drifted_features",
        "scores_drifted",
        "expected_subscribers",  # the label-free estimate, before any outcome
        "expected_roc_auc",
        "to_call",
    ),
)

INPUT_REJECTED = Event(
    "input_rejected",
    "a scoring input was refused whole (its copy and error.json kept for a fix)",
    ("input", "code", "reason"),  # not `message`: a LogRecord attribute, refused in `extra`
)

QUALITY_MEASURED = Event(
    "quality_measured",
    "the monitor computed one (model version, period) from the outcomes that have arrived",
    (
        "model_name",
        "model_version",
        "period",
        "status",  # ok | insufficient | one_class (model.monitoring.quality)
        "labelled",
        "coverage",
        "base_rate",
        "roc_auc",
        "roc_auc_low",
        "roc_auc_high",
        "baseline_roc_auc",  # the registered version's test ROC AUC (metadata.json)
        "estimate_gap",  # true when a realised figure fell outside the estimate's interval
        "figures_outside",  # which ones (roc_auc, precision_at_threshold, subscribers)
        "roc_auc_gap",  # realised - expected ROC AUC on the labelled rows
    ),
)

MONITOR_RUN = Event(
    "monitor_run",
    "one run of the monitor timer finished",
    (
        "model_name",
        "periods",
        "predicted_rows",
        "outcome_rows",
        "seconds",
        "dashboard",
        "batches",  # scored batches with a drift verdict in the run's window
        "drift_streak",  # how many of the latest of them in a row have the dataset drifted
        "skipped",  # documents left out (an export with a bad value, an unreadable report), logged each
    ),
)

RETRAIN_EVALUATED = Event(
    "retrain_evaluated",
    "the monitor evaluated the retraining rules for the serving version (model/monitoring/triggers.py)",
    ("model_name", "model_version", "retrain", "fired"),
)

RETRAIN_REQUESTED = Event(
    "retrain_requested",
    "a fired verdict asked for a retrain: submitted to Azure ML, run locally, or not (functions/retrain)",
    ("model_name", "runner", "status", "job_id", "fired"),
)

DEPLOYMENT_CHECKED = Event(
    "deployment_checked",
    "the automatic rollback checked green on the request log (model/realtime/health.py)",
    ("model_name", "green_version", "green_traffic", "judged", "failed_rules", "streak", "requests",
     "success", "p99_ms", "prediction_drift"),
)  # fmt: skip

DEPLOYMENT_ROLLED_BACK = Event(
    "deployment_rolled_back",
    "the automatic rollback set green to 0 % after failed checks (the promotion log has the figures)",
    ("model_name", "green_version", "blue_version", "failed_rules", "streak", "reason"),
)

EVENTS: tuple[Event, ...] = (
    EXPORT_TABLE,
    BATCH_SCORED,
    INPUT_REJECTED,
    QUALITY_MEASURED,
    MONITOR_RUN,
    RETRAIN_EVALUATED,
    RETRAIN_REQUESTED,
    DEPLOYMENT_CHECKED,
    DEPLOYMENT_ROLLED_BACK,
)
BY_NAME = {event.name: event for event in EVENTS}
