"""Azure Functions entry point (Python v2 programming model). Triggers only: parse, call, log.

Deployed as `function_app.py` at the root of the package, next to the `functions` and `model`
packages, so the absolute imports below resolve the same in Azure, in tests and in the CLI.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import cache

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

from functions.export.job import SourceUnavailableError, run_export
from functions.monitor.dashboard import write_dashboard
from functions.monitor.job import MonitorReport, run_monitor
from functions.realtime.rollback import run_rollback_check
from functions.realtime.service import RealtimeService
from functions.scoring.context import ScoringContext
from functions.scoring.job import score_input, score_shard_message
from functions.settings import get_settings
from functions.telemetry.setup import configure_telemetry
from lake import clients
from lake.contract import DATA_LAKE, EXPORTS_CONTAINER, SCORING_INPUT_CONTAINER

# Fail at start, naming the bad setting, rather than at the first 02:00 run.
settings = get_settings()
# Structured events (functions/telemetry/events.py) to Application Insights when it is configured.
configure_telemetry(settings.app_insights_connection_string)

app = func.FunctionApp()
log = logging.getLogger("functions.function_app")
logging.getLogger("azure").setLevel(logging.WARNING)  # the SDK logs every HTTP request at INFO


@cache
def scoring() -> ScoringContext:
    """One per worker process: storage clients and loaded models stay warm between invocations."""
    return ScoringContext(get_settings())


@cache
def realtime() -> RealtimeService:
    """One per worker process: both deployments loaded and kept warm, the request log's writer."""
    return RealtimeService(get_settings(), scoring().service)


def reset() -> None:
    """Forget this process's contexts, flushing the request log first: for tests and benchmarks that
    bind the app to other settings within one process (the worker never does)."""
    if realtime.cache_info().currsize:
        realtime().log.close()
    realtime.cache_clear()
    scoring.cache_clear()


@app.function_name("score")
@app.route(route="score", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def score(req: func.HttpRequest) -> func.HttpResponse:
    """Real-time scoring: payload in, one prediction per row out, from the blue or green deployment."""
    return realtime().score(req)


@app.function_name("health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness: the worker answers (reads nothing)."""
    return realtime().health()


@app.function_name("ready")
@app.route(route="ready", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ready(req: func.HttpRequest) -> func.HttpResponse:
    """Readiness: the deployments are read and a loaded version takes traffic (503 otherwise)."""
    return realtime().ready()


@app.function_name("schema")
@app.route(route="schema", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def schema(req: func.HttpRequest) -> func.HttpResponse:
    """The JSON Schema of the payload forms, for the version blue serves."""
    return realtime().schema()


@app.function_name("rollback_check")
@app.timer_trigger(schedule="%ROLLBACK_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def rollback_check(timer: func.TimerRequest) -> None:
    """Judge green on the request log; set it to 0 % after ROLLBACK_FAILED_CHECKS failed checks."""
    report = run_rollback_check(get_settings(), clients.blob_service(get_settings().data_lake))
    outcome = "ROLLED BACK" if report.rolled_back else f"streak {report.streak}"
    log.info("rollback_check: %s (%s, %d requests)", report.check.note, outcome, report.records)


@app.function_name("daily_export")
@app.timer_trigger(schedule="%EXPORT_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def daily_export(timer: func.TimerRequest) -> None:
    """Export the configured tables to `exports/`; fail the invocation if any table failed."""
    if timer.past_due:
        log.warning("daily_export is running late (past due): the previous schedule slot was missed")
    export_date = dt.datetime.now(dt.UTC).date()
    try:
        report = run_export(get_settings(), export_date)
    except SourceUnavailableError as error:  # one line in the logs, not a storage SDK traceback
        raise RuntimeError(f"daily export {export_date} failed: {error}") from None
    for result in report.results:
        if result.ok:
            log.info(
                "exported %s: %d rows, %d bytes, %.1fs -> %s/%s",
                result.name,
                result.rows,
                result.bytes,
                result.seconds,
                EXPORTS_CONTAINER,
                result.csv_path,
            )
    if not report.ok:
        failed = "; ".join(f"{r.name}: {r.error}" for r in report.failed)
        raise RuntimeError(f"daily export {export_date} failed for {len(report.failed)} table(s): {failed}")


@app.function_name("score_blob")
@app.blob_trigger(
    arg_name="client",
    path=SCORING_INPUT_CONTAINER + "/{name}.csv",
    connection=DATA_LAKE,
    source=func.BlobSource(settings.scoring.blob_source),
)
def score_blob(client: blob.BlobClient) -> None:
    """Score a new CSV in scoring-input/ (a reference to the blob, streamed: never loaded whole)."""
    outcome = score_input(scoring(), client)
    log.info("score_blob %s: %s (%s)", outcome.input, outcome.status, outcome.detail)


@app.function_name("score_shard")
@app.queue_trigger(arg_name="message", queue_name=settings.scoring.queue, connection=DATA_LAKE)
def score_shard(message: func.QueueMessage) -> None:
    """Score one shard of a fanned-out input; the last shard assembles the output."""
    outcome = score_shard_message(scoring(), message.get_body())
    log.info("score_shard %s: %s (%s)", outcome.input, outcome.status, outcome.detail)


def _monitor_run(timer: func.TimerRequest, name: str, scheduled: bool) -> MonitorReport:
    """One monitor run with the dashboard redrawn; `scheduled`: the retrain timer's `schedule` rule."""
    if timer.past_due:
        log.warning("%s is running late (past due): the previous schedule slot was missed", name)
    current = get_settings()
    return run_monitor(
        current,
        render=lambda service, registry, model: write_dashboard(
            service, registry, model, stack=current.model_stage
        ),
        scheduled=scheduled,
    )


@app.function_name("monitor")
@app.timer_trigger(schedule="%MONITOR_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def monitor(timer: func.TimerRequest) -> None:
    """Realised quality from the outcomes that arrived, beside the estimate; redraw the dashboard;
    ask for a retrain when a rule fired."""
    report = _monitor_run(timer, "monitor", scheduled=False)
    written = ", ".join(report.written) or "no period yet"
    log.info("monitor %s: wrote %s; dashboard %s", report.model_name, written, report.dashboard)


@app.function_name("retrain")
@app.timer_trigger(schedule="%RETRAIN_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def retrain(timer: func.TimerRequest) -> None:
    """The scheduled retrain: a monitor run whose verdict carries the `schedule` rule, so the retrain
    is asked for with the same evidence, runner and once-a-day guard as one the figures asked for."""
    report = _monitor_run(timer, "retrain", scheduled=True)
    submission = (report.retrain or {}).get("submission") or {"status": "nothing serves yet"}
    log.info("retrain %s: %s", report.model_name, submission.get("status"))
