"""The settings of monitoring and retraining: the monitor timer, the drift thresholds, the retrain rules.

A group of the catalog (`functions/settings/catalog.py` lists it in CATALOG); the defaults come
from the model's own dataclasses, so the settings and the code cannot disagree.
"""

from __future__ import annotations

from functions.settings.kinds import Cloud, Kind, Setting
from model.drift_config import DEFAULT_CONFIG as DRIFT_DEFAULTS
from model.monitoring.periods import PERIODS
from model.monitoring.triggers import RetrainPolicy

RETRAIN_DEFAULTS = RetrainPolicy()

MONITORING: tuple[Setting, ...] = (
    # -- monitoring -------------------------------------------------------------------------------
    Setting(
        "MONITOR_SCHEDULE",
        Kind.NCRONTAB,
        "when the monitor timer joins outcomes with predictions and redraws the dashboard (UTC); "
        "after the export and its scoring",
        default="0 30 3 * * *",
        cloud=Cloud.VALUE,
        stack_key="monitorSchedule",
    ),
    Setting(
        "MONITOR_PERIOD",
        Kind.CHOICE,
        "the period realised quality is computed per: `week` (ISO weeks), `day` or `month`",
        default="week",
        choices=PERIODS,
        cloud=Cloud.VALUE,
        stack_key="monitorPeriod",
    ),
    Setting(
        "MONITOR_OUTCOMES_TABLE",
        Kind.TEXT,
        "the exported table of call outcomes (`client_id`, `contact_date`, `subscribed`) joined with "
        "the predictions (normally one that EXPORT_TABLES exports; the monitor says when none is found)",
        default="campaign_outcomes",
        cloud=Cloud.VALUE,
        stack_key="monitorOutcomesTable",
    ),
    Setting(
        "MONITOR_LOOKBACK_DAYS",
        Kind.INT,
        "how far back each run recomputes quality (whole periods; older periods keep their last "
        "record): longer than the outcomes' usual delay",
        default="42",
        minimum=1,
        maximum=400,
    ),
    Setting(
        "DRIFT_WASSERSTEIN_THRESHOLD",
        Kind.NUMBER,
        "normalised Wasserstein distance from which a numeric feature drifted (batches over "
        "DRIFT_SMALL_BATCH_ROWS)",
        default=str(DRIFT_DEFAULTS.wasserstein),
        minimum=0.001,
        maximum=10,
    ),
    Setting(
        "DRIFT_JENSEN_SHANNON_THRESHOLD",
        Kind.NUMBER,
        "Jensen-Shannon distance (base 2) from which a categorical feature drifted",
        default=str(DRIFT_DEFAULTS.jensen_shannon),
        minimum=0.001,
        maximum=1,
    ),
    Setting(
        "DRIFT_SMALL_BATCH_ROWS",
        Kind.INT,
        "batches of at most this many rows are judged by KS and chi-squared tests with "
        "false-discovery-rate control instead of distances",
        default=str(DRIFT_DEFAULTS.small_batch_rows),
        minimum=0,
        maximum=10_000,
    ),
    Setting(
        "DRIFT_ALPHA",
        Kind.NUMBER,
        "the false discovery rate of the small-batch tests",
        default=str(DRIFT_DEFAULTS.alpha),
        minimum=0.0001,
        maximum=0.5,
    ),
    Setting(
        "DRIFT_SHARE",
        Kind.NUMBER,
        "share of drifted features (weighted by importance) from which the dataset drifted",
        default=str(DRIFT_DEFAULTS.drift_share),
        minimum=0.01,
        maximum=1,
    ),
    Setting(
        "DRIFT_WEIGHT_BY_IMPORTANCE",
        Kind.BOOL,
        "weigh the drift share by the model's permutation importance (reference.json)",
        default=str(DRIFT_DEFAULTS.weight_by_importance).lower(),
    ),
    # -- when to retrain (model/monitoring/triggers.py; the monitor records its verdict daily) ----
    Setting(
        "RETRAIN_QUALITY_TOLERANCE",
        Kind.NUMBER,
        "retrain when the serving version's realised ROC AUC falls this far under its registered "
        "baseline (and its interval under the baseline too)",
        default=str(RETRAIN_DEFAULTS.quality_tolerance),
        minimum=0.001,
        maximum=0.49,
        cloud=Cloud.VALUE,
        stack_key="retrainQualityTolerance",
    ),
    Setting(
        "RETRAIN_MIN_OUTCOMES",
        Kind.INT,
        "labelled rows a period needs before its quality drop counts",
        default=str(RETRAIN_DEFAULTS.min_outcomes),
        minimum=1,
        maximum=10_000_000,
        cloud=Cloud.VALUE,
        stack_key="retrainMinOutcomes",
    ),
    Setting(
        "RETRAIN_GAP_PERIODS",
        Kind.INT,
        "retrain when this many measured periods in a row contradict the label-free estimate",
        default=str(RETRAIN_DEFAULTS.gap_periods),
        minimum=1,
        maximum=26,
        cloud=Cloud.VALUE,
        stack_key="retrainGapPeriods",
    ),
    Setting(
        "RETRAIN_DRIFT_BATCHES",
        Kind.INT,
        "retrain when this many scored batches in a row drifted (the dataset verdict)",
        default=str(RETRAIN_DEFAULTS.drift_batches),
        minimum=1,
        maximum=500,
        cloud=Cloud.VALUE,
        stack_key="retrainDriftBatches",
    ),
)
