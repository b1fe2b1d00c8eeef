"""The local stack's retrain runner: the same entry point as the Azure ML job, as a subprocess.

It gathers what the job would mount (the newest complete `clients` export and every complete
day of the outcomes table), runs `python -m model --registry blob retrain` in a child process with
the lake's connection (scikit-learn never enters the functions process), and records what the
child reported (its `retrain.json`: the version, the gate's figures, each promotion decision).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient

from functions.monitor.sources import latest_export_day, read_outcomes
from functions.retrain.azureml import CLIENTS_TABLE
from functions.settings import Settings
from lake.contract import DATA_LAKE, EXPORTS_CONTAINER
from lake.paths import export_csv_path
from model import RETRAIN_REPORT_FILE

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 1800  # a retrain of the shipped data takes about a minute on 2 cores


def _child_env(settings: Settings) -> dict[str, str]:
    """Only what the child needs: the registry's location and the lake's connection (the app
    reads its environment through functions.settings only; nothing else is passed on)."""
    env = {"MODEL_REGISTRY": "blob", "PATH": os.defpath}
    lake = settings.data_lake
    if lake.connection_string is not None:
        env[DATA_LAKE] = lake.connection_string
    elif lake.blob_service_uri is not None:
        env[f"{DATA_LAKE}__blobServiceUri"] = lake.blob_service_uri
    return env


def gather(settings: Settings, service: BlobServiceClient, now: dt.datetime, work: Path) -> dict[str, Any]:
    """Write the training inputs into `work`: clients.csv and outcomes.csv; what they came from."""
    exports = service.get_container_client(EXPORTS_CONTAINER)
    day = latest_export_day(exports, CLIENTS_TABLE, now.date())
    if day is None:
        raise FileNotFoundError(f"no complete export of {CLIENTS_TABLE} to train on")
    clients = work / "clients.csv"
    clients.write_bytes(exports.download_blob(export_csv_path(CLIENTS_TABLE, day)).readall())
    read = read_outcomes(exports, settings.monitoring.outcomes_table, dt.date.min)
    outcomes = read.frame[read.frame["subscribed"].str.strip() != ""]
    outcomes = outcomes.drop_duplicates(outcomes.columns[0], keep="last")  # the later copy wins
    outcomes.to_csv(work / "outcomes.csv", index=False)
    return {
        "clients_export": day.isoformat(),
        "outcomes": len(outcomes),
        "skipped": sum(read.skipped.values()),
    }


def run_local(
    settings: Settings, service: BlobServiceClient, verdict: dict[str, Any], now: dt.datetime
) -> dict[str, Any]:
    """Run one retrain to the end; the submission record (`succeeded` with the child's report)."""
    with tempfile.TemporaryDirectory(prefix="retrain-") as folder:
        work = Path(folder)
        try:
            inputs = gather(settings, service, now, work)
        except FileNotFoundError as error:
            return {"runner": "local", "status": "not_submitted", "why": str(error)}
        (work / "verdict.json").write_text(json.dumps(verdict, default=str))
        command = [
            sys.executable, "-m", "model", "--registry", "blob", "retrain",
            "--data", str(work / "clients.csv"), "--outcomes", str(work / "outcomes.csv"),
            "--out", str(work / "out"), "--name", settings.model_name,
            "--promote", ",".join(settings.retraining.promote_to) or "none",
            "--verdict", str(work / "verdict.json"), "--actor", "monitor",
        ]  # fmt: skip
        log.info("retrain: running %s", " ".join(command[1:6]))
        try:
            done = subprocess.run(  # noqa: S603 - our own interpreter and module, arguments we built
                command, env=_child_env(settings), capture_output=True, text=True, timeout=TIMEOUT_SECONDS
            )
        except subprocess.TimeoutExpired:
            return {
                "runner": "local",
                "status": "failed",
                "why": f"timed out after {TIMEOUT_SECONDS}s",
                **inputs,
            }
        if done.returncode != 0:
            tail = (done.stderr or done.stdout)[-2000:]
            return {"runner": "local", "status": "failed", "why": f"exit {done.returncode}: {tail}", **inputs}
        report = json.loads((work / "out" / RETRAIN_REPORT_FILE).read_text())
    return {
        "runner": "local",
        "status": "succeeded",
        **inputs,
        "version": report["version"],
        "window": report["window"],
        "decisions": [{k: d.get(k) for k in ("stage", "decision", "reason")} for d in report["decisions"]],
        "seconds": report["seconds"],
    }
