"""The bank-marketing input contract, shared by training and serving (no scikit-learn here).

Serving imports this module, so it must stay light: numpy and pandas only. The same
`prepare_features` runs before training and before ONNX scoring, which is what keeps the two
paths identical (the sentinel handling of `pdays` lives here, not inside the sklearn pipeline,
because custom transformers do not convert to ONNX).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
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
# Columns whose meaning flips over the campaign: the calendar, and `contact`, which is "unknown"
# in the first 30 % of the rows (not recorded then) and a real channel later. Rolling-origin folds
# measured them hurting later rows (docs/models.md); the "stable" feature set leaves them out.
TIME_FLIPPING = (*CALENDAR, "contact")
# Engineered: `pdays == -1` means "never contacted before", a sentinel rather than a number of days.
PREVIOUSLY_CONTACTED = "previously_contacted"
NUMERIC = (*RAW_NUMERIC, PREVIOUSLY_CONTACTED)
PDAYS_NEVER = -1
UNSEEN_POLICIES = ("ignore", "reject")


@dataclass(frozen=True)
class Limits:
    """What a raw numeric input may hold; a value outside is a data error, rejected with its row."""

    minimum: float | None = None
    maximum: float | None = None
    whole: bool = False

    def describe(self) -> str:
        low = "-inf" if self.minimum is None else f"{self.minimum:g}"
        high = "inf" if self.maximum is None else f"{self.maximum:g}"
        return f"[{low}, {high}]"


# Domain rules of the bank-marketing inputs (UCI data dictionary): ages of adult clients, calendar
# days, counts that cannot be negative, `pdays = -1` as the "never contacted" sentinel. Stored in
# each model's schema, so a registered model keeps the rules it was trained under.
DEFAULT_LIMITS: dict[str, Limits] = {
    "age": Limits(18, 120, whole=True),
    "balance": Limits(),
    "day": Limits(1, 31, whole=True),
    "campaign": Limits(1, None, whole=True),
    "pdays": Limits(PDAYS_NEVER, None, whole=True),
    "previous": Limits(0, None, whole=True),
}


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
    "stable": FeatureSet(
        "stable",
        tuple(c for c in NUMERIC if c not in TIME_FLIPPING),
        tuple(c for c in CATEGORICAL if c not in TIME_FLIPPING),
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
    limits: dict[str, Limits] = field(default_factory=dict)

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
            _default_limits(raw_numeric),
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["categories"] = {k: list(v) for k, v in self.categories.items()}
        data["limits"] = {k: asdict(v) for k, v in self.limits.items()}
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
            limits=(
                {c: Limits(**rule) for c, rule in data["limits"].items()}
                if "limits" in data  # models registered before limits existed get today's rules
                else _default_limits(data["numeric"])
            ),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


@dataclass
class Validated:
    """A frame ready for the model, plus what validation found row by row."""

    frame: pd.DataFrame  # engineered features, only valid rows, in input order
    ids: np.ndarray  # id of every valid row (client_id, or the 1-based row number)
    rejected: list[tuple[int, str]]  # (1-based row number, reason)
    unseen: dict[str, int]  # column -> scored rows with a category not seen in training (policy "ignore")
    dropped_columns: list[str]
    rows: np.ndarray | None = None  # the 1-based row number of every valid row

    def subset(self, keep: np.ndarray, schema: InputSchema) -> Validated:
        """Only the valid rows where `keep` is true (unseen categories counted again on those)."""
        frame = self.frame[keep]
        unseen = {c: int(n) for c in self.unseen if (n := _not_in(frame[c], schema.categories[c]).sum())}
        rows = None if self.rows is None else self.rows[keep]
        return Validated(frame, self.ids[keep], self.rejected, unseen, self.dropped_columns, rows)


def prepare_features(frame: pd.DataFrame, copy: bool = True) -> pd.DataFrame:
    """Feature engineering shared by training and serving: the `pdays` sentinel becomes a flag.

    `copy=False` changes `frame` itself (for a frame the caller has just built).
    """
    out = frame.copy() if copy else frame
    if "pdays" in out:
        pdays = pd.to_numeric(out["pdays"])
        out[PREVIOUSLY_CONTACTED] = (pdays != PDAYS_NEVER).astype("int64")
        out["pdays"] = pdays.where(pdays != PDAYS_NEVER, 0)
    return out


def _default_limits(numeric: Iterable[str]) -> dict[str, Limits]:
    return {c: DEFAULT_LIMITS[c] for c in numeric if c in DEFAULT_LIMITS}


class _Problems:
    """The first problem of each row; reasons are built only for rows that have one (cheap on clean data)."""

    def __init__(self, rows: int) -> None:
        self.bad = np.zeros(rows, dtype=bool)
        self.positions: list[np.ndarray] = []
        self.reasons: list[list[str]] = []

    def add(self, mask: np.ndarray, reason: str | Callable[[np.ndarray], list[str]]) -> None:
        new = mask & ~self.bad
        if not new.any():
            return
        positions = np.flatnonzero(new)
        self.bad |= new
        self.positions.append(positions)
        self.reasons.append([reason] * len(positions) if isinstance(reason, str) else reason(positions))

    def listed(self, row_numbers: np.ndarray) -> list[tuple[int, str]]:
        """(row number, reason) in row order."""
        if not self.positions:
            return []
        positions = np.concatenate(self.positions)
        reasons = [r for group in self.reasons for r in group]
        order = np.argsort(positions, kind="stable")
        return [(int(row_numbers[positions[i]]), reasons[i]) for i in order]


def _shown(values: pd.Series, positions: np.ndarray) -> list[str]:
    """Offending values as the reason quotes them: repr, at most 40 characters of the original text."""
    return [repr(str(v)[:40]) for v in values.iloc[positions]]


def _not_in(values: pd.Series, known: tuple[str, ...]) -> np.ndarray:
    """Which values are not among `known` (missing values count as known: they are reported apart)."""
    if isinstance(values.dtype, pd.CategoricalDtype):  # the scoring reader's dtype: test the categories once
        codes = values.cat.codes.to_numpy()
        if len(values.cat.categories) == 0:  # every value of the chunk is missing
            return np.zeros(len(codes), dtype=bool)
        novel_categories = ~values.cat.categories.astype(str).isin(known)
        return (codes >= 0) & novel_categories[np.maximum(codes, 0)]
    return (values.notna() & ~values.astype(str).isin(known)).to_numpy()


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _numeric_problems(raw: pd.Series, column: str, limits: Limits | None, problems: _Problems) -> np.ndarray:
    """The column as float64 (NaN where rejected); records why each bad value is bad."""
    missing = raw.isna().to_numpy()
    values = raw if pd.api.types.is_numeric_dtype(raw.dtype) else pd.to_numeric(raw, errors="coerce")
    array = values.to_numpy(dtype=np.float64, na_value=np.nan)
    problems.add(missing, f"{column}: missing value")
    problems.add(
        np.isnan(array),
        lambda at: [f"{column}: {shown} is not a number" for shown in _shown(raw, at)],
    )
    problems.add(np.isinf(array), f"{column}: is not a finite number")
    problems.add(  # the model takes float32: a larger magnitude would reach it as infinity
        np.abs(np.nan_to_num(array)) > _FLOAT32_MAX,
        lambda at: [f"{column}: {v:g} is outside the float32 range" for v in array[at]],
    )
    if limits is not None:
        finite = np.isfinite(array)
        if limits.whole:
            problems.add(
                finite & (array != np.floor(array)),
                lambda at: [f"{column}: {v:g} is not a whole number" for v in array[at]],
            )
        for bound, outside in (
            (limits.minimum, lambda: array < limits.minimum),
            (limits.maximum, lambda: array > limits.maximum),
        ):
            if bound is not None:
                problems.add(
                    finite & outside(),
                    lambda at: [f"{column}: {v:g} is outside {limits.describe()}" for v in array[at]],
                )
    return array


def validate(
    frame: pd.DataFrame, schema: InputSchema, first_row: int = 1, row_numbers: np.ndarray | None = None
) -> Validated:
    """Check columns, types and ranges; reject bad rows with reasons; never let a leaky column through.

    File-level problems (missing columns, no rows) raise SchemaError; row-level problems (a value
    that is not a number or out of range, a missing value, a missing id, an unseen category under
    policy "reject") reject that row only, with the first problem found. `row_numbers` (1-based
    records of the file) default to `first_row`, `first_row + 1`, ...
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

    if row_numbers is None:
        row_numbers = np.arange(first_row, first_row + len(frame))  # 1-based data rows of the file
    problems = _Problems(len(frame))
    has_id = schema.id_column in frame.columns
    if has_id:
        problems.add(frame[schema.id_column].isna().to_numpy(), f"{schema.id_column}: missing value")
    numeric = {
        column: _numeric_problems(frame[column], column, schema.limits.get(column), problems)
        for column in schema.raw_columns
        if column not in schema.categories
    }
    novel_by_column: dict[str, np.ndarray] = {}
    for column, known in schema.categories.items():
        values = frame[column]
        problems.add(values.isna().to_numpy(), f"{column}: missing value")
        novel = _not_in(values, known)
        if not novel.any():
            continue
        if schema.unseen_policy == "reject":
            problems.add(
                novel,
                lambda at, c=column, v=values: [
                    f"{c}: category {shown} was not seen in training" for shown in _shown(v, at)
                ],
            )
        else:
            novel_by_column[column] = novel
    good = ~problems.bad
    unseen = {c: int((novel & good).sum()) for c, novel in novel_by_column.items() if (novel & good).any()}
    clean = pd.DataFrame({column: values[good] for column, values in numeric.items()})
    for column in schema.categories:
        values = frame[column].array[good]  # a Categorical stays one (codes + categories): cheap to feed
        is_text = isinstance(values.dtype, pd.CategoricalDtype | pd.StringDtype) or values.dtype == object
        clean[column] = values if is_text else values.astype(str)
    ids = frame[schema.id_column].to_numpy()[good] if has_id else row_numbers[good]
    return Validated(
        prepare_features(clean, copy=False),
        ids,
        problems.listed(row_numbers),
        unseen,
        dropped,
        row_numbers[good],
    )


def onnx_feed(features: pd.DataFrame, schema: InputSchema) -> dict[str, np.ndarray]:
    """One (n, 1) tensor per model input: float32 numerics, object strings (skl2onnx's per-column inputs)."""
    feed = {c: features[c].to_numpy(dtype=np.float32).reshape(-1, 1) for c in schema.numeric}
    feed |= {c: _strings(features[c]).reshape(-1, 1) for c in schema.categorical}
    return feed


def _strings(values: pd.Series) -> np.ndarray:
    """An object array of str, as ONNX Runtime takes strings; from a Categorical without new str objects."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = values.cat.categories.to_numpy(dtype=object)
        return categories[values.cat.codes.to_numpy()]
    return values.to_numpy(dtype=object)


def ordered_columns(schema: InputSchema) -> Sequence[str]:
    return (*schema.numeric, *schema.categorical)
