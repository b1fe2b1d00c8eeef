"""The settings of real-time scoring: request limits, how fast workers see a deployment change, the
request log, and the automatic rollback (its thresholds' defaults are model.realtime.health's).

A group of the catalog (`functions/settings/catalog.py` lists it in CATALOG).
"""

from __future__ import annotations

from functions.settings.kinds import Cloud, Kind, Setting
from model.realtime.policy import RollbackPolicy

ROLLBACK_DEFAULTS = RollbackPolicy()

REALTIME: tuple[Setting, ...] = (
    Setting(
        "HTTP_MAX_BODY_BYTES",
        Kind.SIZE,
        "the largest request body `POST /api/score` accepts (a larger one gets 413)",
        default="1MiB",
        minimum=1024,
    ),
    Setting(
        "HTTP_MAX_ROWS",
        Kind.INT,
        "the most rows one request may hold (more gets 413: send large batches as files to the batch "
        "scoring instead)",
        default="1000",
        minimum=1,
    ),
    Setting(
        "DEPLOYMENTS_REFRESH_SECONDS",
        Kind.NUMBER,
        "how often a worker checks deployments.json for a change (a conditional read: an unchanged "
        "file costs a 304); a traffic change or rollback reaches every worker within this",
        default="2",
        minimum=0,
        maximum=300,
    ),
    Setting(
        "REQUEST_LOG_INPUTS",
        Kind.BOOL,
        "whether the request log keeps each request's input values (the monitor's drift needs them)",
        default="true",
        cloud=Cloud.VALUE,
        stack_key="requestLogInputs",
    ),
    Setting(
        "REQUEST_LOG_FLUSH_SECONDS",
        Kind.NUMBER,
        "how long request-log lines wait in memory before a background write (never on a request's path)",
        default="5",
        minimum=0.1,
        maximum=300,
    ),
    Setting(
        "ROLLBACK_SCHEDULE",
        Kind.NCRONTAB,
        "when the automatic rollback checks green against the request log (UTC)",
        default="0 */5 * * * *",
        cloud=Cloud.VALUE,
        stack_key="rollbackSchedule",
    ),
    Setting(
        "ROLLBACK_WINDOW_MINUTES",
        Kind.INT,
        "the minutes of request log each check reads",
        default=str(ROLLBACK_DEFAULTS.window_minutes),
        minimum=1,
        maximum=24 * 60,
        cloud=Cloud.VALUE,
        stack_key="rollbackWindowMinutes",
    ),
    Setting(
        "ROLLBACK_MIN_REQUESTS",
        Kind.INT,
        "the requests green must have answered in the window before it is judged",
        default=str(ROLLBACK_DEFAULTS.min_requests),
        minimum=1,
        cloud=Cloud.VALUE,
        stack_key="rollbackMinRequests",
    ),
    Setting(
        "ROLLBACK_MIN_SUCCESS",
        Kind.NUMBER,
        "the least share of green's requests answered without a server error (5xx)",
        default=str(ROLLBACK_DEFAULTS.min_success),
        minimum=0,
        maximum=1,
        cloud=Cloud.VALUE,
        stack_key="rollbackMinSuccess",
    ),
    Setting(
        "ROLLBACK_MAX_P99_MS",
        Kind.NUMBER,
        "the highest p99 latency of green's handler, in milliseconds",
        default=f"{ROLLBACK_DEFAULTS.max_p99_ms:g}",
        minimum=0,
        cloud=Cloud.VALUE,
        stack_key="rollbackMaxP99Ms",
    ),
    Setting(
        "ROLLBACK_MAX_PREDICTION_DRIFT",
        Kind.NUMBER,
        "the largest Kolmogorov-Smirnov distance between green's and blue's predicted probabilities",
        default=str(ROLLBACK_DEFAULTS.max_prediction_drift),
        minimum=0,
        maximum=1,
        cloud=Cloud.VALUE,
        stack_key="rollbackMaxPredictionDrift",
    ),
    Setting(
        "ROLLBACK_FAILED_CHECKS",
        Kind.INT,
        "failed checks in a row that set green to 0 %",
        default=str(ROLLBACK_DEFAULTS.failed_checks),
        minimum=1,
        cloud=Cloud.VALUE,
        stack_key="rollbackFailedChecks",
    ),
)
