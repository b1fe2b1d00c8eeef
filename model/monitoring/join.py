"""Which prediction an outcome judges: predictions.csv rows joined with the `campaign_outcomes` export.

The rules, per model version (each version's predictions are judged on their own, so the quality
of a version does not depend on which other versions scored the same clients):

1. An outcome (`client_id`, `contact_date`, `subscribed`) judges the **latest prediction of that
   client scored on or before the contact date** (the scoring day in UTC counts: the daily chain
   scores at night, before the day's calls). A prediction scored after the call cannot have
   informed it and is never judged by it. With `max_lag_days`, a prediction older than that on
   the contact date is too stale to be judged (default: no limit).
2. A prediction is judged at most once, by the earliest outcome that picks it (the next call);
   a later outcome picking the same prediction again is dropped and counted (`outcomes_reused`).
3. Every prediction row ends in one status:
   - `labelled`: judged by an outcome (its label is that outcome's `subscribed`);
   - `superseded`: an outcome for the client on or after its scoring day has arrived, but a later
     prediction of the same version was the one in force at the call;
   - `pending`: no outcome for the client on or after its scoring day yet.
   Coverage, the share of predictions whose outcome has arrived, is (labelled + superseded) /
   predictions: it rises as outcomes arrive, whatever their delay.
4. Repeats are dropped, the last copy kept, and counted: a prediction repeated with the same
   (client, model name, version, scored_at) (a re-delivered file); an outcome repeated with the same
   (client, contact_date) (daily exports that overlap). An outcome without a label yet (empty
   `subscribed`) has not arrived.

Late outcomes need nothing special: the join goes by contact date, not by arrival, so an outcome
exported days later lands in the period of the prediction it judges the next time it is computed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from model.csvinput.encode import PREDICTION_COLUMNS
from model.monitoring.periods import PERIODS
from model.schema import ID_COLUMN

OUTCOME_COLUMNS = ("contact_date", "subscribed")  # what the join reads of `campaign_outcomes`
LABELLED, SUPERSEDED, PENDING = "labelled", "superseded", "pending"
VERSION_KEYS = ("model_name", "model_version")
_DAY = "datetime64[ns]"  # one resolution for both sides of the as-of joins (pandas infers s, ms, us)


@dataclass(frozen=True)
class Joined:
    """One row per (deduplicated) prediction with its status, period and, when labelled, its outcome.

    `frame` columns: the id column, model_name, model_version, scored_at (UTC), period,
    probability, decision, status, contact_date (NaT unless labelled), subscribed (NaN unless
    labelled). `counts` says what was dropped, per input; `versions` what each version's join
    left aside: `outcomes_unmatched` (no prediction of the version on or before the call) and
    `outcomes_reused` (rule 2).
    """

    frame: pd.DataFrame
    counts: dict[str, Any]
    versions: dict[tuple[str, str], dict[str, int]]
    period: str


def _ids(values: pd.Series) -> pd.Series:
    """Ids as text, so an id read as 7, 7.0 or "7" from two different CSVs joins the same."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = pd.to_numeric(values)
        if numbers.notna().all() and (numbers % 1 == 0).all():
            return numbers.astype("int64").astype(str)
    return values.astype(str).str.strip()


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lack the columns {missing}; they have {list(frame.columns)}")


def _predictions(predictions: pd.DataFrame, id_column: str) -> tuple[pd.DataFrame, int]:
    _require(predictions, (id_column, *PREDICTION_COLUMNS), "the prediction rows")
    frame = pd.DataFrame(
        {
            id_column: _ids(predictions[id_column]),
            "model_name": predictions["model_name"].astype(str),
            "model_version": predictions["model_version"].astype(str),
            "scored_at": pd.to_datetime(predictions["scored_at"], utc=True, format="ISO8601"),
            "probability": pd.to_numeric(predictions["probability"]).astype(np.float64),
            "decision": pd.to_numeric(predictions["decision"]),
        }
    )
    p = frame["probability"]
    if not (p.notna() & (p >= 0) & (p <= 1)).all():
        raise ValueError("predictions hold probabilities outside [0, 1] or empty")
    if not frame["decision"].isin((0, 1)).all():
        raise ValueError("predictions hold decisions other than 0 and 1")
    frame["decision"] = frame["decision"].astype(np.int8)
    before = len(frame)
    frame = frame.drop_duplicates([id_column, *VERSION_KEYS, "scored_at"], keep="last")
    frame["scored_date"] = frame["scored_at"].dt.tz_localize(None).dt.normalize().astype(_DAY)
    return frame.reset_index(drop=True), before - len(frame)


def _outcomes(outcomes: pd.DataFrame, id_column: str) -> tuple[pd.DataFrame, dict[str, int]]:
    _require(outcomes, (id_column, *OUTCOME_COLUMNS), "the outcome rows")
    label = pd.to_numeric(outcomes["subscribed"], errors="coerce")
    bad = outcomes["subscribed"][label.notna() & ~label.isin((0, 1))]
    if len(bad):
        raise ValueError(f"outcomes hold `subscribed` values other than 0/1: {sorted(set(bad))[:5]}")
    frame = pd.DataFrame(
        {
            id_column: _ids(outcomes[id_column]),
            "contact_date": pd.to_datetime(outcomes["contact_date"]).dt.normalize().astype(_DAY),
            "subscribed": label,
        }
    )
    unlabelled = int(frame["subscribed"].isna().sum())
    frame = frame[frame["subscribed"].notna()]
    before = len(frame)
    frame = frame.drop_duplicates([id_column, "contact_date"], keep="last").reset_index(drop=True)
    frame["subscribed"] = frame["subscribed"].astype(np.int8)
    return frame, {"outcomes_without_label": unlabelled, "duplicate_outcomes": before - len(frame)}


def _join_version(
    predictions: pd.DataFrame, outcomes: pd.DataFrame, id_column: str, lag: pd.Timedelta | None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rules 1-3 for one model version's predictions."""
    preds = predictions.sort_values(["scored_date", "scored_at"], kind="stable").reset_index(drop=True)
    preds["key"] = np.arange(len(preds))
    picked = pd.merge_asof(
        outcomes.sort_values("contact_date", kind="stable"),
        preds[["scored_date", id_column, "key"]],
        left_on="contact_date",
        right_on="scored_date",
        by=id_column,
        direction="backward",  # the last prediction on or before the call; equal days: the latest
        tolerance=lag,
    )
    unmatched = int(picked["key"].isna().sum())
    picked = picked[picked["key"].notna()].astype({"key": np.int64})
    first = picked.sort_values(["contact_date"], kind="stable").drop_duplicates("key", keep="first")
    preds = preds.merge(first[["key", "contact_date", "subscribed"]], on="key", how="left")
    arrived = pd.merge_asof(
        preds[["scored_date", id_column, "key"]],
        outcomes[["contact_date", id_column]].sort_values("contact_date", kind="stable"),
        left_on="scored_date",
        right_on="contact_date",
        by=id_column,
        direction="forward",  # any outcome on or after the scoring day
        tolerance=lag,
    ).set_index("key")["contact_date"]
    labelled = preds["subscribed"].notna().to_numpy()
    has_outcome = arrived.reindex(preds["key"]).notna().to_numpy()
    preds["status"] = np.where(labelled, LABELLED, np.where(has_outcome, SUPERSEDED, PENDING))
    counts = {"outcomes_unmatched": unmatched, "outcomes_reused": len(picked) - len(first)}
    return preds.drop(columns=["key", "scored_date"]), counts


def period_labels(timestamps: pd.Series, period: str) -> pd.Series:
    """`YYYY-MM-DD`, ISO week `YYYY-Www` or `YYYY-MM` of each (UTC) timestamp."""
    if period == "day":
        return timestamps.dt.strftime("%Y-%m-%d")
    if period == "month":
        return timestamps.dt.strftime("%Y-%m")
    if period == "week":
        iso = timestamps.dt.isocalendar()
        return iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)
    raise ValueError(f"period must be one of {PERIODS}, not {period!r}")


def period_bounds(label: str, period: str) -> tuple[str, str]:
    """First and last day (inclusive, ISO dates) of a period label."""
    if period == "day":
        return label, label
    if period == "week":
        year, week = label.split("-W")
        start = dt.date.fromisocalendar(int(year), int(week), 1)
        return start.isoformat(), (start + dt.timedelta(days=6)).isoformat()
    if period == "month":
        start = dt.date.fromisoformat(f"{label}-01")
        following = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return start.isoformat(), (following - dt.timedelta(days=1)).isoformat()
    raise ValueError(f"period must be one of {PERIODS}, not {period!r}")


def join_outcomes(
    predictions: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    period: str = "week",
    max_lag_days: int | None = None,
    id_column: str = ID_COLUMN,
) -> Joined:
    """Apply the module's rules; `period` buckets each prediction by its `scored_at` (UTC).

    `predictions` are rows of predictions.csv files (concatenated, any versions), `outcomes` the
    rows of one or more `campaign_outcomes` exports (in export order: the last copy of a repeat wins).
    """
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}, not {period!r}")
    preds, duplicate_predictions = _predictions(predictions, id_column)
    outs, outcome_counts = _outcomes(outcomes, id_column)
    lag = None if max_lag_days is None else pd.Timedelta(days=max_lag_days)
    pieces, versions = [], {}
    for key, group in preds.groupby(list(VERSION_KEYS), sort=True):
        joined, counts = _join_version(group, outs, id_column, lag)
        pieces.append(joined)
        versions[(str(key[0]), str(key[1]))] = counts
    columns = [id_column, *VERSION_KEYS, "scored_at", "probability", "decision", "contact_date", "subscribed"]
    frame = pd.concat(pieces, ignore_index=True) if pieces else preds.reindex(columns=[*columns, "status"])
    frame["period"] = period_labels(frame["scored_at"], period) if len(frame) else pd.Series(dtype=str)
    frame = frame[[*columns[:4], "period", *columns[4:6], "status", *columns[6:]]]
    through = outs["contact_date"].max() if len(outs) else None
    counts = {
        "predictions_read": len(predictions),
        "duplicate_predictions": duplicate_predictions,
        "outcomes_read": len(outcomes),
        **outcome_counts,
        "outcomes_through": None if through is None else through.date().isoformat(),
    }
    return Joined(frame, counts, versions, period)
