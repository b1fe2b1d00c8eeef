"""Realised quality per model version and period, from predictions joined with delayed outcomes.

A period is the ISO week (or day, or month) of the prediction's `scored_at`, not of the outcome's
contact date: the question a period answers is "how good were the predictions made that week",
its population (the predictions) is fixed once the week is over, so coverage has a denominator
and rises towards its final value as outcomes arrive, and a period's figures only change when
late outcomes for its own predictions arrive. (Bucketing by contact date would mix predictions of
several weeks and versions and leave coverage without a denominator.) Which prediction an outcome
judges is model.monitoring.join's business.

Each (model name, version, period) gives one JSON-ready record, `format_version` 1:

    {"format_version": 1, "kind": "quality", "model_name", "model_version",
     "period", "period_kind" ("day" | "week" | "month"), "period_start", "period_end" (ISO dates),
     "status": "ok" | "insufficient" | "one_class", "reasons": [text, ...],
     "counts": {"predictions", "labelled", "superseded", "pending", "positives", "negatives", "called"},
     "coverage": (labelled + superseded) / predictions,
     "base_rate": positives / labelled (null without outcomes),
     "metrics": {name: {"value", "low", "high"}} or null unless status is "ok",
     "minimums": {"outcomes", "positives", "negatives"},
     "bootstrap": {"resamples", "confidence", "seed", "method": "percentile"},
     "outcomes_through": the latest contact date among the outcomes read}

Metric names: roc_auc, pr_auc, brier, log_loss, share_reached_top10 (the top fraction in percent),
precision_at_decision (share of subscribers among labelled rows whose decision was 1; null when
none was called), base_rate. Their definitions are model.monitoring.metrics's.

Status: `one_class` when the outcomes hold a single class (ROC AUC and PR AUC do not exist, so no
number is printed); `insufficient` when there are fewer outcomes, positives or negatives than the
minimums (the figures would be noise; `reasons` lists every shortfall with the counts). The
counts, coverage and base rate are given whatever the status.

Intervals: the percentile bootstrap of the labelled rows (resampled with replacement, same size),
seeded per record from `seed` and the record's key, so a period's interval is the same however
many other periods are computed beside it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from model.monitoring import metrics
from model.monitoring.join import (
    LABELLED,
    PENDING,
    PERIODS,
    SUPERSEDED,
    VERSION_KEYS,
    Joined,
    join_outcomes,
    period_bounds,
)
from model.schema import ID_COLUMN

QUALITY_FORMAT = 1
OK, INSUFFICIENT, ONE_CLASS = "ok", "insufficient", "one_class"


@dataclass(frozen=True)
class QualityConfig:
    """How periods are cut, when a period has enough outcomes, and how the intervals are drawn."""

    period: str = "week"
    min_outcomes: int = 200
    min_positives: int = 20
    min_negatives: int = 20
    resamples: int = 500
    confidence: float = 0.95
    seed: int = 0
    top_fraction: float = 0.10
    max_lag_days: int | None = None

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise ValueError(f"period must be one of {PERIODS}, not {self.period!r}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), not {self.confidence}")
        if not 0 < self.top_fraction <= 1:
            raise ValueError(f"top_fraction must be in (0, 1], not {self.top_fraction}")
        if self.resamples < 1 or min(self.min_outcomes, self.min_positives, self.min_negatives) < 1:
            raise ValueError("resamples and the minimums must be at least 1")

    @property
    def top_name(self) -> str:
        return f"share_reached_top{round(self.top_fraction * 100):d}"


def _status(labelled: int, positives: int, negatives: int, config: QualityConfig) -> tuple[str, list[str]]:
    shortfalls = [
        f"{what} {have} < {need}"
        for what, have, need in (
            ("outcomes", labelled, config.min_outcomes),
            ("positives", positives, config.min_positives),
            ("negatives", negatives, config.min_negatives),
        )
        if have < need
    ]
    if labelled and (positives == 0 or negatives == 0):
        only = "positives" if negatives == 0 else "negatives"
        return ONE_CLASS, [f"the {labelled} outcomes are all {only}", *shortfalls]
    return (INSUFFICIENT, shortfalls) if shortfalls else (OK, [])


def _rng(config: QualityConfig, key: tuple[str, ...]) -> np.random.Generator:
    return np.random.default_rng([config.seed, zlib.crc32("\x00".join(key).encode())])


def quality_record(
    rows: pd.DataFrame,
    model_name: str,
    model_version: str,
    period: str,
    config: QualityConfig | None = None,
    outcomes_through: str | None = None,
) -> dict[str, Any]:
    """The record of one (model name, version, period) from its rows of `Joined.frame`."""
    config = config or QualityConfig()
    status_counts = rows["status"].value_counts()
    labelled = rows[rows["status"] == LABELLED]
    y = labelled["subscribed"].to_numpy(dtype=np.float64)
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    status, reasons = _status(len(y), positives, negatives, config)
    start, end = period_bounds(period, config.period)
    record: dict[str, Any] = {
        "format_version": QUALITY_FORMAT,
        "kind": "quality",
        "model_name": model_name,
        "model_version": model_version,
        "period": period,
        "period_kind": config.period,
        "period_start": start,
        "period_end": end,
        "status": status,
        "reasons": reasons,
        "counts": {
            "predictions": len(rows),
            "labelled": len(y),
            "superseded": int(status_counts.get(SUPERSEDED, 0)),
            "pending": int(status_counts.get(PENDING, 0)),
            "positives": positives,
            "negatives": negatives,
            "called": int(labelled["decision"].sum()),
        },
        "coverage": (len(y) + int(status_counts.get(SUPERSEDED, 0))) / len(rows) if len(rows) else None,
        "base_rate": positives / len(y) if len(y) else None,
        "metrics": None,
        "minimums": {
            "outcomes": config.min_outcomes,
            "positives": config.min_positives,
            "negatives": config.min_negatives,
        },
        "bootstrap": {
            "resamples": config.resamples,
            "confidence": config.confidence,
            "seed": config.seed,
            "method": "percentile",
        },
        "outcomes_through": outcomes_through,
    }
    if status == OK:
        ranked = metrics.rank(y, labelled["probability"].to_numpy(), labelled["decision"].to_numpy())
        point = metrics.evaluate(ranked, top_fraction=config.top_fraction)
        resampled = metrics.bootstrap(
            ranked, config.resamples, _rng(config, (model_name, model_version, period)), config.top_fraction
        )
        summary = metrics.summarise(point, resampled, config.confidence)
        summary[config.top_name] = summary.pop("share_reached_top")
        record["metrics"] = summary
    return record


def quality_records(joined: Joined, config: QualityConfig | None = None) -> list[dict[str, Any]]:
    """One record per (model name, version, period) present in the joined predictions, in key order."""
    config = config or QualityConfig()
    if joined.period != config.period:
        raise ValueError(
            f"the predictions were joined by {joined.period}, the config asks for {config.period}"
        )
    through = joined.counts.get("outcomes_through")
    return [
        quality_record(rows, str(name), str(version), str(period), config, through)
        for (name, version, period), rows in joined.frame.groupby([*VERSION_KEYS, "period"], sort=True)
    ]


def quality(
    predictions: pd.DataFrame,
    outcomes: pd.DataFrame,
    config: QualityConfig | None = None,
    id_column: str = ID_COLUMN,
) -> list[dict[str, Any]]:
    """Join predictions with outcomes (model.monitoring.join) and compute every record."""
    config = config or QualityConfig()
    joined = join_outcomes(
        predictions, outcomes, period=config.period, max_lag_days=config.max_lag_days, id_column=id_column
    )
    return quality_records(joined, config)


def period_documents(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Records bundled per (model name, period): the body of `monitoring/{model}/quality/{period}.json`."""
    documents: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        key = (record["model_name"], record["period"])
        document = documents.setdefault(
            key,
            {
                "format_version": QUALITY_FORMAT,
                "kind": "quality_period",
                "model_name": record["model_name"],
                "period": record["period"],
                "period_kind": record["period_kind"],
                "versions": {},
            },
        )
        document["versions"][record["model_version"]] = record
    return documents
