"""The monitor's view of real-time traffic: the request log as predictions, and as daily drift reports.

Requests answered by the HTTP function are predictions like any scored file: the monitor joins
those whose rows were named by the caller (`client_id`; `ids_sent` in the log) with the outcome
exports, so realised quality covers both ways of scoring. Shadow scores are left out: no caller
acted on them. Each day's answered requests of each version also become one drift "batch",
`monitoring/{model}/drift/{day}/http-v{version}.json`, computed by the batch path's own counts
(model.monitoring.batch), so the dashboard and the drift-persistence rule see HTTP traffic too.
A day's report is rewritten from the log at every run (the day's later requests join it); it is
the same document for the same lines.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from azure.storage.blob import ContainerClient

from functions.blob_io import write_html, write_json
from functions.realtime.request_log import read_since
from lake.paths import drift_page_path, drift_path
from model.artifacts import REFERENCE_FILE
from model.csvinput.encode import PREDICTION_COLUMNS
from model.drift_config import DriftConfig
from model.monitoring.batch import BatchCounts
from model.monitoring.batch_page import render_batch_page
from model.registry import Registry, RegistryError
from model.schema import ID_COLUMN, prepare_features

log = logging.getLogger(__name__)
HTTP_BATCH_PREFIX = "http-v"  # drift/{day}/http-v{version}.json: one batch per day and version


@dataclass
class Traffic:
    """The window's answered requests: as prediction rows, and what was left out with why."""

    lines: list[dict[str, Any]]
    predictions: pd.DataFrame
    skipped: Counter[str] = field(default_factory=Counter)


def read_traffic(monitoring: ContainerClient, model_name: str, since: dt.datetime) -> Traffic:
    """Answered (200), non-shadow request-log lines since `since`, and their prediction rows."""
    answered = []
    skipped: Counter[str] = Counter()
    rows: list[dict[str, Any]] = []
    for line in read_since(monitoring, model_name, since):
        if line.get("shadow") or line.get("status") != 200:
            continue
        if dt.datetime.fromisoformat(line["at"]) < since:
            continue
        answered.append(line)
        if not line.get("ids_sent"):
            skipped["http requests without client_id (not joinable with outcomes)"] += 1
            continue
        for output in line.get("outputs") or []:
            rows.append({
                ID_COLUMN: str(output["id"]),
                "probability": float(output["probability"]),
                "decision": int(output["decision"]),
                "model_name": model_name,
                "model_version": str(line["version"]),
                "scored_at": line["at"],
            })  # fmt: skip
    frame = pd.DataFrame(rows, columns=[ID_COLUMN, *PREDICTION_COLUMNS])
    return Traffic(answered, frame, skipped)


def _reference(registry: Registry, model_name: str, version: str) -> tuple[dict[str, Any], float] | None:
    try:
        metadata = registry.show(model_name, version)
        reference = json.loads(registry.read_artifact(model_name, version, REFERENCE_FILE))
    except (RegistryError, ValueError):
        return None
    return reference, float(metadata["threshold"])


def write_http_drift(monitoring: ContainerClient, registry: Registry, model_name: str, traffic: Traffic,
                     config: DriftConfig) -> list[str]:  # fmt: skip
    """One drift report per (day, version) of the window's traffic with inputs; their paths."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for line in traffic.lines:
        if line.get("inputs"):
            groups[(line["at"][:10], str(line["version"]))].append(line)
        else:
            traffic.skipped["http requests logged without inputs (REQUEST_LOG_INPUTS=false)"] += 1
    written = []
    for (day, version), lines in sorted(groups.items()):
        found = _reference(registry, model_name, version)
        if found is None:
            traffic.skipped[f"http traffic of version {version}: no reference to compare with"] += 1
            continue
        reference, threshold = found
        inputs = pd.concat([pd.DataFrame(line["inputs"]) for line in lines], ignore_index=True)
        scores = [float(o["probability"]) for line in lines for o in line["outputs"]]
        counts = BatchCounts(reference, threshold)
        counts.add(prepare_features(inputs), pd.Series(scores, dtype="float64").to_numpy())
        name = f"{HTTP_BATCH_PREFIX}{version}"
        report = {
            "input": {"blob": f"HTTP requests of {day}", "http": True, "requests": len(lines)},
            "model": {"name": model_name, "version": version, "stage": None, "threshold": threshold},
            "scored_at": max(line["at"] for line in lines),
        } | counts.drift_report(config)
        path = drift_path(model_name, day, name)
        write_json(monitoring, path, report)
        write_html(
            monitoring,
            drift_page_path(model_name, day, name),
            render_batch_page(reference, counts.drift, report),
        )
        written.append(path)
    return written
