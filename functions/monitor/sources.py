"""What the monitor reads from the lake: the outcome exports and the published predictions.

Only complete documents count: an export day whose `_manifest.json` exists (the export writes it
last), and a scored input whose `_manifest.json` exists (scoring publishes it last). Everything
read is bounded by a start time, so the daily run reads the weeks it recomputes, not the history.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient

from functions.blob_io import read_text
from lake.contract import EXPORTS_CONTAINER, PREDICTIONS_CONTAINER
from lake.paths import DRIFT_DIR, MANIFEST_FILE, SHARDS_DIR, export_csv_path, export_manifest_path
from model.csvinput.encode import PREDICTION_COLUMNS
from model.monitoring.join import OUTCOME_COLUMNS
from model.schema import ID_COLUMN

log = logging.getLogger(__name__)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LABELS = frozenset({"0", "1", "0.0", "1.0", ""})  # empty: the outcome is not known yet


@dataclass
class Read:
    """Rows read, and what was left aside with why (counted per reason, for the run's report)."""

    frame: pd.DataFrame
    files: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def _names(container: ContainerClient, prefix: str | None = None) -> list[str]:
    """Blob names under `prefix`; none when the container does not exist yet (nothing written)."""
    try:
        return [blob.name for blob in container.list_blobs(name_starts_with=prefix)]
    except ResourceNotFoundError:
        return []


def outcome_problem(frame: pd.DataFrame) -> str | None:
    """Why an export's outcome rows cannot be trusted, naming the column and the first bad row; or None.

    `subscribed` is 0 or 1, or empty (not known yet); `contact_date` an ISO date; `client_id` set.
    A file with one bad value is left out whole: half of an export would bias the period's figures
    without anyone knowing.
    """
    checks = {
        ID_COLUMN: frame[ID_COLUMN].str.strip() == "",
        "contact_date": pd.to_datetime(frame["contact_date"], format="ISO8601", errors="coerce").isna(),
        "subscribed": ~frame["subscribed"].str.strip().isin(_LABELS),
    }
    for column, bad in checks.items():
        if bad.any():
            row = int(bad.to_numpy().argmax())
            return f"column {column} holds {frame[column].iloc[row]!r} (data row {row + 1})"
    return None


def _refuse(read: Read, path: str, reason: str) -> None:
    log.warning("monitor: leaving out %s/%s: %s", EXPORTS_CONTAINER, path, reason)
    read.skipped[f"{EXPORTS_CONTAINER}/{path}: {reason}"] += 1


def read_outcomes(exports: ContainerClient, table: str, since: dt.date) -> Read:
    """Every complete daily export of `table` dated `since` or later, oldest first, concatenated.

    In export order, so where two exports repeat an outcome the join keeps the later copy.
    """
    days = sorted(
        {
            parts[1]
            for name in _names(exports, f"{table}/")
            if len(parts := name.split("/")) == 3 and _DAY.match(parts[1]) and parts[2] == MANIFEST_FILE
        }
    )
    read = Read(pd.DataFrame(columns=[ID_COLUMN, *OUTCOME_COLUMNS]))
    frames = []
    for day in days:
        export_date = dt.date.fromisoformat(day)
        if export_date < since:
            continue
        if read_text(exports, export_manifest_path(table, export_date)) is None:
            read.skipped["export without its manifest"] += 1
            continue
        path = export_csv_path(table, export_date)
        data = exports.download_blob(path).readall()
        try:
            frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
        except (ValueError, UnicodeDecodeError) as error:  # ParserError is a ValueError
            _refuse(read, path, f"not a readable CSV: {str(error)[:200]}")
            continue
        missing = [c for c in (ID_COLUMN, *OUTCOME_COLUMNS) if c not in frame.columns]
        if missing:
            _refuse(read, path, f"lacks the column(s) {', '.join(missing)}")
            continue
        if problem := outcome_problem(frame):
            _refuse(read, path, problem)
            continue
        frames.append(frame[[ID_COLUMN, *OUTCOME_COLUMNS]])  # an empty `subscribed`: not arrived yet
        read.files += 1
    if frames:
        read.frame = pd.concat(frames, ignore_index=True)
    return read


def latest_export_day(exports: ContainerClient, table: str, on_or_before: dt.date) -> dt.date | None:
    """The newest day with a complete export (its manifest) of `table`, not after `on_or_before`."""
    days = set()
    for blob in exports.list_blobs(name_starts_with=f"{table}/"):
        parts = blob.name.split("/")
        if len(parts) == 3:
            try:
                day = dt.date.fromisoformat(parts[1])
            except ValueError:
                continue
            if blob.name == export_manifest_path(table, day) and day <= on_or_before:
                days.add(day)
    return max(days, default=None)


def read_predictions(predictions: ContainerClient, model_name: str, since: dt.datetime) -> Read:
    """The predictions.csv rows of every input scored by `model_name` at or after `since`.

    Inputs without a `client_id` column (scored by row number) cannot be joined with outcomes:
    they are skipped and counted.
    """
    columns = [ID_COLUMN, *PREDICTION_COLUMNS]
    read = Read(pd.DataFrame(columns=columns))
    frames = []
    for name in _names(predictions):
        if not name.endswith(f"/{MANIFEST_FILE}") or f"/{SHARDS_DIR}/" in name:
            continue
        text = read_text(predictions, name)
        if text is None:
            continue
        try:
            manifest = json.loads(text)
            scored_at = dt.datetime.fromisoformat(manifest["scored_at"])
            model = manifest["model"]["name"]
            path = manifest["output"]["predictions"].removeprefix(f"{PREDICTIONS_CONTAINER}/")
        except (ValueError, KeyError, TypeError):
            read.skipped["unreadable manifest"] += 1
            continue
        if model != model_name or scored_at < since:
            continue
        data = predictions.download_blob(path).readall()
        frame = pd.read_csv(io.BytesIO(data), dtype={ID_COLUMN: str}, keep_default_na=False)
        if ID_COLUMN not in frame.columns:
            read.skipped[f"scored without a {ID_COLUMN} column"] += 1
            continue
        frames.append(frame[columns])
        read.files += 1
    if frames:
        read.frame = pd.concat(frames, ignore_index=True)
    return read


def drift_verdicts(monitoring: ContainerClient, model_name: str, since: dt.date) -> Read:
    """(scored_at, rows, drifted) of every drift report of the model dated `since` or later, in time order."""
    read = Read(pd.DataFrame(columns=["scored_at", "rows", "drifted"]))
    records = []
    for name in _names(monitoring, f"{model_name}/{DRIFT_DIR}/"):
        parts = name.split("/")
        if len(parts) < 4 or not name.endswith(".json") or not _DAY.match(parts[2]):
            continue
        if dt.date.fromisoformat(parts[2]) < since:
            continue
        try:
            report = json.loads(read_text(monitoring, name) or "")
            records.append((str(report["scored_at"]), int(report["rows"]), bool(report["drifted"])))
        except (ValueError, KeyError, TypeError):
            read.skipped["unreadable drift report"] += 1
    if records:
        read.frame = pd.DataFrame(records, columns=read.frame.columns).sort_values("scored_at", kind="stable")
        read.files = len(records)
    return read


def streak(verdicts: pd.DataFrame) -> tuple[int, int]:
    """(batches with a verdict, how many of the latest in a row drifted); empty batches say nothing."""
    judged = verdicts[verdicts["rows"] > 0]["drifted"].tolist()
    run = 0
    for drifted in reversed(judged):
        if not drifted:
            break
        run += 1
    return len(judged), run
