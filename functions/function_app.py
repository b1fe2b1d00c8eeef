"""Azure Functions entry point (Python v2 programming model). Triggers only: parse, call, log.

Deployed as `function_app.py` at the root of the package, next to the `functions` and `model`
packages, so the absolute imports below resolve the same in Azure, in tests and in the CLI.
"""

from __future__ import annotations

import datetime as dt
import logging

import azure.functions as func

from functions.export.job import run_export
from functions.settings import get_settings

# Fail at start, naming the bad setting, rather than at the first 02:00 run.
get_settings()

app = func.FunctionApp()
log = logging.getLogger("functions.function_app")
logging.getLogger("azure").setLevel(logging.WARNING)  # the SDK logs every HTTP request at INFO


@app.function_name("daily_export")
@app.timer_trigger(schedule="%EXPORT_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def daily_export(timer: func.TimerRequest) -> None:
    """Export the configured tables to `exports/`; fail the invocation if any table failed."""
    if timer.past_due:
        log.warning("daily_export is running late (past due): the previous schedule slot was missed")
    export_date = dt.datetime.now(dt.UTC).date()
    report = run_export(get_settings(), export_date)
    for result in report.results:
        if result.ok:
            log.info(
                "exported %s: %d rows, %d bytes, %.1fs -> exports/%s",
                result.name,
                result.rows,
                result.bytes,
                result.seconds,
                result.csv_path,
            )
    if not report.ok:
        failed = "; ".join(f"{r.name}: {r.error}" for r in report.failed)
        raise RuntimeError(f"daily export {export_date} failed for {len(report.failed)} table(s): {failed}")
