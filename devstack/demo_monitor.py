"""The demo's last act: the calls' outcomes come back, the monitor sets them beside the predictions.

The demo has no future to wait for, so it plays the next day: the clients the model picked (and a
random tenth of the others, the control group that keeps quality measurable beyond the model's own
picks) are "called" today, and each answers as that client really did in the bank data. The answers
go into a small call-log database, the real exporter exports it as the next night's
`campaign_outcomes` (incremental on `contact_date`), and the real monitor joins, computes quality
with its intervals, sets it beside the label-free estimate and redraws the dashboard.

The model was trained on these same clients' earlier answers, so the realised figures are
optimistic; `python -m bench.monitoring_replay` measures on later rows instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyodbc
from azure.storage.blob import BlobServiceClient
from rich.console import Console
from rich.table import Table

from devstack.bank_rows import OUTCOME_COLUMNS, OUTCOMES_TABLE, read_bank_rows
from devstack.demo_data import sqlite_connection_string
from functions.export.job import run_export
from functions.export.spec import quote_identifier
from functions.monitor.dashboard import write_dashboard
from functions.monitor.job import MonitorReport, run_monitor
from functions.settings import load_settings
from lake.contract import MODELS_CONTAINER, MONITORING_CONTAINER
from model.registry.layout import decisions_file

CONTROL_SHARE = 0.10  # of the clients the model did not pick, called anyway
MONITOR_TIME = dt.time(3, 30)  # the next night's monitor run (MONITOR_SCHEDULE's default)


def calls(predictions: pd.DataFrame, day: dt.date, seed: int = 0) -> pd.DataFrame:
    """Today's calls: every client the model picked plus a random control group, with real answers."""
    picked = predictions["decision"].to_numpy() == 1
    control = np.random.default_rng([seed, day.toordinal()]).random(len(predictions)) < CONTROL_SHARE
    called = predictions.loc[picked | control, "client_id"].astype(int)
    answers = {row.client_id: (row.duration, row.subscribed) for row in read_bank_rows()}
    return pd.DataFrame(
        [(c, day, *answers[c]) for c in called if c in answers], columns=list(OUTCOME_COLUMNS)
    )


def write_call_log(path: Path, rows: pd.DataFrame) -> str:
    """The call log as a SQLite table, through the same ODBC driver the exporter reads with."""
    path.unlink(missing_ok=True)
    connection_string = sqlite_connection_string(path)
    table = quote_identifier(OUTCOMES_TABLE)
    with pyodbc.connect(connection_string, autocommit=True) as connection:
        cursor = connection.cursor()
        cursor.execute(
            f"CREATE TABLE {table} (client_id INTEGER, contact_date DATE NOT NULL, "
            "duration INTEGER, subscribed SMALLINT NOT NULL)"
        )
        cursor.executemany(
            f"INSERT INTO {table} VALUES (?, ?, ?, ?)",  # noqa: S608 - a quoted constant identifier; values are parameters
            [(int(c), d.isoformat(), int(u), int(s)) for c, d, u, s in rows.itertuples(index=False)],
        )
    return connection_string


def play_next_day(
    service: BlobServiceClient,
    env: Mapping[str, str],
    export_date: dt.date,
    predictions: Path,
    console: Console,
) -> Path | None:
    """Call, export the outcomes, run the monitor; the dashboard's local copy, or None."""
    console.rule("The next day: the calls' outcomes come back and the monitor judges the predictions")
    settings = load_settings(env)
    scored = pd.read_csv(predictions, usecols=["client_id", "decision"])
    rows = calls(scored, export_date)
    work = predictions.parent
    log_db = write_call_log(work / "calls.db", rows)
    console.print(
        f"called {len(rows):,} clients today ({int(scored['decision'].sum()):,} picked by the model, "
        f"the rest a {CONTROL_SHARE:.0%} control group); {int(rows['subscribed'].sum()):,} subscribed"
    )
    next_day = export_date + dt.timedelta(days=1)
    call_log = replace(settings, db_connection_string=log_db)  # the same app, reading the call log
    exported = run_export(call_log, next_day, only=[OUTCOMES_TABLE])
    for result in exported.results:
        console.print(f"next night's export: {result.name} {result.rows:,} rows -> {result.csv_path}")
    if not exported.ok:
        console.print(f"[red]the outcomes export failed:[/] {[r.error for r in exported.failed]}")
        return None
    report = run_monitor(
        settings,
        now=dt.datetime.combine(next_day, MONITOR_TIME, dt.UTC),
        render=lambda svc, registry, model: write_dashboard(svc, registry, model, stack="local"),
    )
    _show(report, console)
    for record in report.records:
        if note := gap_note(record):
            console.print(note)
    if report.retrain is not None and report.retrain["retrain"]:
        console.print(
            f"retraining rules fired: {', '.join(report.retrain['fired'])} (recorded in "
            f"{MONITORING_CONTAINER}/{report.model_name}/retrain/)"
        )
        console.print(submission_note(report.retrain.get("submission") or {}, report.model_name))
    if report.dashboard is None:
        return None
    page = work / "dashboard.html"
    blob = service.get_blob_client(MONITORING_CONTAINER, report.dashboard)
    page.write_bytes(blob.download_blob().readall())
    console.print(f"dashboard written to {MONITORING_CONTAINER}/{report.dashboard}, copied to {page}")
    return page


def submission_note(submission: dict[str, Any], model_name: str) -> str:
    """What became of the retrain the verdict asked for (RETRAIN_RUNNER=local runs it right here)."""
    if submission.get("status") != "succeeded":
        return f"retrain {submission.get('status', 'not asked for')}: {submission.get('why', '')}"
    moves = "; ".join(
        f"{d['stage']} {d['decision']}" + (f" ({d['reason'][:300]}…)" if d.get("reason") else "")
        for d in submission.get("decisions") or []
    )
    window = (submission.get("window") or {}).get("why", "")
    return (
        f"retrained locally in {submission.get('seconds', 0):.0f}s: version {submission['version']} on "
        f"{submission['outcomes']:,} outcomes; gate window: {window}; {moves or 'not promoted'} "
        f"(every decision: {MODELS_CONTAINER}/{decisions_file(model_name)})"
    )


def gap_note(record: dict[str, Any]) -> str | None:
    """What an `outside` gap says here, in the direction the subscribers went; None without a gap."""
    comparison = record.get("estimate_vs_realised") or {}
    if not comparison.get("gap_outside_interval"):
        return None
    subscribers = (comparison.get("figures") or {}).get("subscribers") or {}
    expected, realised = subscribers.get("expected"), subscribers.get("realised")
    direction = ""
    if expected is not None and realised is not None:
        more = "more" if realised > expected else "fewer"
        direction = (
            f": {realised:,.0f} subscribed where the probabilities promised {expected:,.0f}, {more} than "
            "the model expects (the demo replays older clients' real answers to a model calibrated on "
            "the most recent, higher-rate rows)"
        )
    return (
        f"[yellow]outside[/] for v{record['model_version']} {record['period']}{direction}; in "
        "production that is the sign of concept drift or a moved base rate, which no input drift shows "
        "(docs/monitoring.md)"
    )


def _show(report: MonitorReport, console: Console) -> None:
    table = Table(title=f"Quality of {report.model_name} from the outcomes so far ({report.since[:10]} on)")
    for header in ("version", "period", "status", "coverage", "ROC AUC [95%]", "estimated", "gap"):
        table.add_column(header, justify="right")
    for record in report.records:
        table.add_row(*_row(record))
    console.print(table)


def _row(record: dict[str, Any]) -> tuple[str, ...]:
    auc = (record.get("metrics") or {}).get("roc_auc") or {}
    comparison = record.get("estimate_vs_realised") or {}
    expected = (comparison.get("figures") or {}).get("roc_auc") or {}
    realised = (
        "-" if auc.get("value") is None else f"{auc['value']:.3f} [{auc['low']:.3f}, {auc['high']:.3f}]"
    )
    estimated = (
        "-"
        if expected.get("expected") is None
        else f"{expected['expected']:.3f} [{expected['low']:.3f}, {expected['high']:.3f}]"
    )
    gap = "-" if not comparison else ("outside" if comparison.get("gap_outside_interval") else "within")
    coverage = "-" if record["coverage"] is None else f"{record['coverage']:.0%}"
    return (
        f"v{record['model_version']}",
        record["period"],
        record["status"],
        coverage,
        realised,
        estimated,
        gap,
    )
