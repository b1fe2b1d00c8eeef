"""The blob paths of the data flow, built in one place (the containers: `lake.contract`; the
registry's paths inside `models/`: `model/registry/layout.py`).

exports/{table}/{YYYY-MM-DD}/{table}.csv + _manifest.json     one export of one table and day
scoring-input/{name}.csv                                      the input (users, apps, the export)
predictions/{name}/{version}/predictions.csv                  one row per scored input row
predictions/{name}/{version}/rejected_rows.csv                row number and reason of every bad row
predictions/{name}/{version}/_manifest.json                   written last: the output is complete
predictions/{name}/{version}/_shards/{run}/...                fan-out work files, deleted when done
rejected/{name}/{etag}/{leaf}.csv + error.json                a file refused whole, untouched
monitoring/{model}/drift/{YYYY-MM-DD}/{name}.json             drift of each scored batch
monitoring/{model}/drift/{YYYY-MM-DD}/{name}.html             its page: reference vs batch histograms
monitoring/{model}/estimates/{YYYY-MM-DD}/{name}.json         the batch's label-free quality estimate
monitoring/{model}/quality/{period}.json                      realised quality of one period, per version
monitoring/{model}/dashboard/index.html                       the model's dashboard (the monitor timer)
monitoring/{model}/retrain/{YYYY-MM-DD}.json                  the day's retraining verdict: rules, evidence
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

MANIFEST_FILE = "_manifest.json"
PREDICTIONS_FILE = "predictions.csv"
REJECTED_ROWS_FILE = "rejected_rows.csv"
ERROR_FILE = "error.json"
SHARDS_DIR = "_shards"

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]{0,127}$")
_ETAG = re.compile(r"^[A-Za-z0-9]{1,64}$")


# ----------------------------------------------------------------------------------------- exports


def export_csv_path(table: str, export_date: dt.date) -> str:
    """`exports/` path of one table's CSV for one day."""
    return f"{table}/{export_date.isoformat()}/{table}.csv"


def export_manifest_path(table: str, export_date: dt.date) -> str:
    """`exports/` path of the manifest that marks that CSV complete."""
    return f"{table}/{export_date.isoformat()}/{MANIFEST_FILE}"


def published_name(table: str, export_date: dt.date) -> str:
    """`scoring-input/` name of a published export: one per table and day, so scoring fires once a day."""
    return f"{table}-{export_date.isoformat()}.csv"


# ----------------------------------------------------------------------------------------- scoring


class InvalidNameError(ValueError):
    """A blob name that cannot be used in output paths (traversal, odd characters, not .csv)."""


def input_name(blob_name: str) -> str:
    """`{name}` of `scoring-input/{name}.csv`, checked: it becomes part of every output path."""
    if not blob_name.endswith(".csv"):
        if blob_name.lower().endswith(".csv"):  # Event Grid delivers these (its filters ignore case)
            raise InvalidNameError(
                f"{blob_name!r} ends with {blob_name[-4:]!r}, not '.csv' (the trigger path is "
                f"case-sensitive): rename it to {blob_name[:-4]}.csv"
            )
        raise InvalidNameError(f"{blob_name!r} does not end with .csv")
    name = blob_name[: -len(".csv")]
    segments = name.split("/")
    if len(name) > 512 or not all(_SEGMENT.fullmatch(segment) for segment in segments):
        raise InvalidNameError(
            f"{blob_name!r} is not a usable name: use letters, digits, '.', '_', '=' and '-' "
            "(folders separated by '/', each starting with a letter or digit)"
        )
    return name


def etag_key(etag: str) -> str:
    """An etag as a path segment: Azure's `"0x8DC…"` without quotes; anything odd is hashed."""
    bare = etag.strip('"')
    return bare if _ETAG.fullmatch(bare) else hashlib.sha256(bare.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class OutputPaths:
    """Paths in the predictions container for one input name scored by one model version."""

    name: str
    version: str

    @property
    def folder(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def predictions(self) -> str:
        return f"{self.folder}/{PREDICTIONS_FILE}"

    @property
    def rejected_rows(self) -> str:
        return f"{self.folder}/{REJECTED_ROWS_FILE}"

    @property
    def manifest(self) -> str:
        return f"{self.folder}/{MANIFEST_FILE}"

    def shards(self, run: str) -> str:
        return f"{self.folder}/{SHARDS_DIR}/{run}/"

    def shard_file(self, run: str, index: int, suffix: str = ".json") -> str:
        """A fan-out work file of shard `index`: its result (`.json`), ids, seeds, re-scored result."""
        return f"{self.shards(run)}{index:05d}{suffix}"


@dataclass(frozen=True)
class RejectedPaths:
    """Where a refused file goes, keyed by its etag: each version of an input is judged once."""

    name: str
    etag: str

    @property
    def folder(self) -> str:
        return f"{self.name}/{etag_key(self.etag)}"

    @property
    def copy(self) -> str:
        return f"{self.folder}/{self.name.rsplit('/', 1)[-1]}.csv"

    @property
    def error(self) -> str:
        return f"{self.folder}/{ERROR_FILE}"


# -------------------------------------------------------------------------------------- monitoring


DRIFT_DIR = "drift"
ESTIMATES_DIR = "estimates"
QUALITY_DIR = "quality"
DASHBOARD_DIR = "dashboard"
RETRAIN_DIR = "retrain"
REQUESTS_DIR = "requests"  # the HTTP function's request log
ROLLBACK_DIR = "rollback"  # the automatic rollback's checks
DASHBOARD_FILE = "index.html"


def drift_path(model_name: str, day: str, name: str) -> str:
    """`monitoring/` path of the drift report of one scored batch."""
    return f"{model_name}/{DRIFT_DIR}/{day}/{name}.json"


def drift_page_path(model_name: str, day: str, name: str) -> str:
    """`monitoring/` path of the batch's drift page (HTML beside the JSON report)."""
    return f"{model_name}/{DRIFT_DIR}/{day}/{name}.html"


def estimate_path(model_name: str, day: str, name: str) -> str:
    """`monitoring/` path of the label-free estimate of one scored batch (written before any outcome)."""
    return f"{model_name}/{ESTIMATES_DIR}/{day}/{name}.json"


def quality_path(model_name: str, period: str) -> str:
    """`monitoring/` path of one period's realised quality (every model version scored in it)."""
    return f"{model_name}/{QUALITY_DIR}/{period}.json"


def dashboard_path(model_name: str) -> str:
    """`monitoring/` path of the model's dashboard page."""
    return f"{model_name}/{DASHBOARD_DIR}/{DASHBOARD_FILE}"


def retrain_verdict_path(model_name: str, day: str) -> str:
    """`monitoring/` path of one day's retraining verdict (which rules fired, on which figures)."""
    return f"{model_name}/{RETRAIN_DIR}/{day}.json"


def request_log_hour(model_name: str, deployment: str, hour: dt.datetime) -> str:
    """`monitoring/` prefix of one deployment's request log for one UTC hour (`.../YYYY/MM/DD/HH/`)."""
    return f"{model_name}/{REQUESTS_DIR}/{deployment}/{hour:%Y/%m/%d/%H}/"


def request_log_path(model_name: str, deployment: str, hour: dt.datetime, name: str) -> str:
    """`monitoring/` path of one batch of request-log lines (JSON Lines, written once, never appended)."""
    return f"{request_log_hour(model_name, deployment, hour)}{name}.jsonl"


def rollback_state_path(model_name: str) -> str:
    """`monitoring/` path of the automatic rollback's recent checks and failed-check streak."""
    return f"{model_name}/{ROLLBACK_DIR}/state.json"


def monitoring_prefix(model_name: str, kind: str) -> str:
    """The `monitoring/` prefix listing every document of one kind (DRIFT_DIR, ESTIMATES_DIR, ...)."""
    return f"{model_name}/{kind}/"
