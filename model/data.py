"""Labelled training data: the bank CSV, or the daily exports of `clients` and `campaign_outcomes`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lake.paths import MANIFEST_FILE
from model.artifacts import sha256_file
from model.schema import ID_COLUMN, TARGET, SchemaError


@dataclass(frozen=True)
class Dataset:
    """Rows in time order with `y` as 0/1, and a fingerprint of the files they came from."""

    frame: pd.DataFrame
    fingerprint: dict[str, object]


def sniff_delimiter(path: Path) -> str:
    """`;` (the bank file) or `,` (our exports), from the header line."""
    with path.open(encoding="utf-8", newline="") as handle:
        header = handle.readline()
    if not header.strip():
        raise SchemaError(f"{path} is empty")
    return ";" if header.count(";") > header.count(",") else ","


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep=sniff_delimiter(path), keep_default_na=True)


def read_outcomes(path: Path) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    """One outcomes CSV, or a table's export folder: every complete day, oldest first, merged.

    A folder is how the retraining job sees `exports/{table}/` (exports of outcomes may be
    incremental): only day folders with the export's manifest count (the others are still being
    written), a later copy of an outcome replaces an earlier one, and a row whose outcome has
    not arrived (an empty `subscribed`) is left out.
    """
    if not path.is_dir():
        return read_csv(path), [{"path": path.name, "sha256": sha256_file(path)}]
    days = sorted(manifest.parent for manifest in path.glob(f"*/{MANIFEST_FILE}"))
    files = [csv for day in days for csv in sorted(day.glob("*.csv"))]
    if not files:
        raise SchemaError(f"{path} holds no complete export (no day folder with {MANIFEST_FILE} and a CSV)")
    frames = [read_csv(csv) for csv in files]
    merged = pd.concat(frames, ignore_index=True)
    if "subscribed" in merged.columns:
        merged = merged[merged["subscribed"].notna()]
    if ID_COLUMN in merged.columns:
        merged = merged.drop_duplicates(ID_COLUMN, keep="last")
    sources = [{"path": f"{csv.parent.name}/{csv.name}", "sha256": sha256_file(csv)} for csv in files]
    return merged.reset_index(drop=True), sources


def load_labelled(data: Path, outcomes: Path | None = None, sample: int | None = None) -> Dataset:
    """Load training rows in time order.

    `data` is the bank CSV (with `y`), a CSV with a `subscribed` column, or a `clients` export
    joined here with the `campaign_outcomes` export given as `outcomes` (a CSV or the table's
    export folder: `read_outcomes`; on client_id; ordered by contact_date, the order the campaign
    happened in). `sample` keeps the first N rows (in time
    order) for quick runs.
    """
    frame = read_csv(data)
    sources = [{"path": data.name, "sha256": sha256_file(data)}]
    if outcomes is not None:
        labels, outcome_sources = read_outcomes(outcomes)
        missing = {ID_COLUMN, "subscribed"} - set(labels.columns) | ({ID_COLUMN} - set(frame.columns))
        if missing:
            raise SchemaError(f"joining clients with outcomes needs columns {sorted(missing)}")
        frame = frame.merge(labels, on=ID_COLUMN, how="inner", validate="one_to_one")
        sources += outcome_sources
    if TARGET not in frame.columns:
        if "subscribed" not in frame.columns:
            raise SchemaError(f"{data} has no label: expected a `{TARGET}` or `subscribed` column")
        frame[TARGET] = frame.pop("subscribed")
    frame[TARGET] = _labels(frame[TARGET])
    if "contact_date" in frame.columns:
        frame = frame.sort_values(
            ["contact_date", *([ID_COLUMN] if ID_COLUMN in frame else [])], kind="stable"
        )
    frame = frame.reset_index(drop=True)
    if sample is not None:
        frame = frame.head(sample).reset_index(drop=True)
    fingerprint = {
        "sources": sources,
        "rows": len(frame),
        "positives": int(frame[TARGET].sum()),
        "sample": sample,
    }
    return Dataset(frame, fingerprint)


def _labels(values: pd.Series) -> pd.Series:
    if values.dtype.kind in "biu":
        labels = values.astype(int)
    else:
        text = values.astype(str).str.strip().str.lower()
        unknown = sorted(set(text) - {"yes", "no", "1", "0", "true", "false"})
        if unknown:
            raise SchemaError(f"label values {unknown[:5]} are not yes/no or 1/0")
        labels = text.isin({"yes", "1", "true"}).astype(int)
    if labels.nunique() < 2:
        raise SchemaError("the labels contain a single class: nothing to learn")
    return labels
