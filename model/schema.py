"""The bank-marketing input contract, shared by training and serving (no scikit-learn here).

Serving imports this module, so it must stay light: numpy and pandas only. The same
`prepare_features` runs before training and before ONNX scoring, which is what keeps the two
paths identical (the sentinel handling of `pdays` lives here, not inside the sklearn pipeline,
because custom transformers do not convert to ONNX).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

ID_COLUMN = "client_id"
TARGET = "y"
# `duration` is the length of the call: known only after the call, it leaks the outcome.
LEAKY_COLUMNS = ("duration",)
RAW_NUMERIC = ("age", "balance", "day", "campaign", "pdays", "previous")
CATEGORICAL = ("job", "marital", "education", "default", "housing", "loan", "contact", "month", "poutcome")
# Columns that only describe the calendar of the contact; they may not carry over to new campaigns.
CALENDAR = ("day", "month")
# Engineered: `pdays == -1` means "never contacted before", a sentinel rather than a number of days.
PREVIOUSLY_CONTACTED = "previously_contacted"
NUMERIC = (*RAW_NUMERIC, PREVIOUSLY_CONTACTED)
PDAYS_NEVER = -1
UNSEEN_POLICIES = ("ignore", "reject")


class SchemaError(ValueError):
    """The input does not fit the model's schema; the message says exactly how."""


@dataclass(frozen=True)
class FeatureSet:
    """The model inputs after `prepare_features`: which numeric and categorical columns."""

    name: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)


FEATURE_SETS = {
    "all": FeatureSet("all", NUMERIC, CATEGORICAL),
    "no_calendar": FeatureSet(
        "no_calendar",
        tuple(c for c in NUMERIC if c not in CALENDAR),
        tuple(c for c in CATEGORICAL if c not in CALENDAR),
    ),
}


def assert_no_leak(columns: Iterable[str]) -> None:
    leaked = sorted(set(columns) & set(LEAKY_COLUMNS))
    if leaked:
        raise SchemaError(f"{leaked} are known only after the call and leak the target: never a model input")


@dataclass(frozen=True)
class InputSchema:
    """What a model accepts: its feature set, the categories seen in training, the unseen policy."""

    feature_set: str
    numeric: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]
    id_column: str = ID_COLUMN
    unseen_policy: str = "ignore"
    required: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        assert_no_leak((*self.numeric, *self.categories))
        if self.unseen_policy not in UNSEEN_POLICIES:
            raise SchemaError(
                f"unseen category policy {self.unseen_policy!r} is not one of {UNSEEN_POLICIES}"
            )

    @property
    def categorical(self) -> tuple[str, ...]:
        return tuple(self.categories)

    @property
    def raw_columns(self) -> tuple[str, ...]:
        """Columns an input file must have (before feature engineering)."""
        raw_numeric = tuple(c for c in self.numeric if c != PREVIOUSLY_CONTACTED)
        return (*raw_numeric, *self.categorical) if not self.required else self.required

    @classmethod
    def learn(
        cls, frame: pd.DataFrame, feature_set: FeatureSet, unseen_policy: str = "ignore"
    ) -> InputSchema:
        """The schema of a training frame: the categories are the ones it contains."""
        categories = {
            c: tuple(sorted(frame[c].dropna().astype(str).unique())) for c in feature_set.categorical
        }
        raw_numeric = tuple(c for c in feature_set.numeric if c != PREVIOUSLY_CONTACTED)
        return cls(
            feature_set.name,
            feature_set.numeric,
            categories,
            ID_COLUMN,
            unseen_policy,
            (*raw_numeric, *feature_set.categorical),
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["categories"] = {k: list(v) for k, v in self.categories.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputSchema:
        return cls(
            feature_set=data["feature_set"],
            numeric=tuple(data["numeric"]),
            categories={k: tuple(v) for k, v in data["categories"].items()},
            id_column=data.get("id_column", ID_COLUMN),
            unseen_policy=data.get("unseen_policy", "ignore"),
            required=tuple(data.get("required", ())),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


@dataclass
class Validated:
    """A frame ready for the model, plus what validation found row by row."""

    frame: pd.DataFrame  # engineered features, only valid rows, in input order
    ids: np.ndarray  # id of every valid row (client_id, or the 1-based row number)
    rejected: list[tuple[int, str]]  # (1-based row number, reason)
    unseen: dict[str, int]  # column -> rows with a category not seen in training (policy "ignore")
    dropped_columns: list[str]


def prepare_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Feature engineering shared by training and serving: the `pdays` sentinel becomes a flag."""
    out = frame.copy()
    if "pdays" in out:
        pdays = pd.to_numeric(out["pdays"])
        out[PREVIOUSLY_CONTACTED] = (pdays != PDAYS_NEVER).astype("int64")
        out["pdays"] = pdays.where(pdays != PDAYS_NEVER, 0)
    return out


def validate(frame: pd.DataFrame, schema: InputSchema, first_row: int = 1) -> Validated:
    """Check columns and types; reject bad rows with reasons; never let a leaky column through.

    File-level problems (missing columns, no rows) raise SchemaError; row-level problems (a value
    that is not a number, a missing value, an unseen category under policy "reject") reject that
    row only.
    """
    dropped = [c for c in LEAKY_COLUMNS if c in frame.columns]
    if dropped:
        log.warning("dropping %s: known only after the call, it would leak the target", dropped)
    if TARGET in frame.columns:
        dropped.append(TARGET)
    missing = [c for c in schema.raw_columns if c not in frame.columns]
    if missing:
        raise SchemaError(f"missing required column(s) {missing}; the input has {list(frame.columns)}")
    if frame.empty:
        raise SchemaError("the input has a header but no rows")

    row_numbers = np.arange(first_row, first_row + len(frame))  # 1-based data rows of the file
    bad = pd.Series("", index=frame.index, dtype=object)

    def reject(mask: pd.Series, reasons: pd.Series | str) -> pd.Series:
        """Record the first problem of each row only."""
        return bad.mask(mask & (bad == ""), reasons)

    numeric: dict[str, pd.Series] = {}
    for column in (c for c in schema.raw_columns if c not in schema.categories):
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce")
        bad = reject(raw.isna(), f"{column}: missing value")
        bad = reject(
            values.isna() & raw.notna(),
            column + ": " + raw.astype(str).str.slice(0, 40).map(repr) + " is not a number",
        )
        numeric[column] = values
    unseen: dict[str, int] = {}
    for column, known in schema.categories.items():
        values = frame[column]
        bad = reject(values.isna(), f"{column}: missing value")
        novel = values.notna() & ~values.astype(str).isin(known)
        if novel.any():
            if schema.unseen_policy == "reject":
                reasons = (
                    column
                    + ": category "
                    + values.astype(str).str.slice(0, 40).map(repr)
                    + " was not seen in training"
                )
                bad = reject(novel, reasons)
            else:
                unseen[column] = int(novel.sum())
    good = (bad == "").to_numpy()
    clean = frame.loc[good, list(schema.raw_columns)].copy()
    for column, values in numeric.items():
        clean[column] = values[good]
    for column in schema.categories:
        clean[column] = clean[column].astype(str)
    ids = frame[schema.id_column].to_numpy()[good] if schema.id_column in frame.columns else row_numbers[good]
    rejected = [(int(n), str(reason)) for n, reason in zip(row_numbers[~good], bad[~good], strict=True)]
    return Validated(prepare_features(clean), ids, rejected, unseen, dropped)


def onnx_feed(features: pd.DataFrame, schema: InputSchema) -> dict[str, np.ndarray]:
    """One (n, 1) tensor per model input: float32 numerics, object strings (skl2onnx's per-column inputs)."""
    feed = {c: features[c].to_numpy(dtype=np.float32).reshape(-1, 1) for c in schema.numeric}
    feed |= {c: features[c].to_numpy(dtype=object).reshape(-1, 1) for c in schema.categorical}
    return feed


def ordered_columns(schema: InputSchema) -> Sequence[str]:
    return (*schema.numeric, *schema.categorical)
