"""The `_manifest.json` written after each export: the proof that the CSV beside it is complete."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT_VERSION = 1
CSV_DIALECT = {
    "encoding": "utf-8",
    "delimiter": ",",
    "quote": '"',
    "line_terminator": "CRLF",
    "header": True,
    "null": 'empty unquoted field (an empty string is written as "")',
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool


@dataclass(frozen=True)
class Watermark:
    """The highest value of the watermark column exported so far, typed so it can be a parameter."""

    column: str
    type: str
    value: str | None
    previous: str | None = None

    @staticmethod
    def encode(value: Any) -> tuple[str, str | None]:
        if value is None:
            return "none", None
        if isinstance(value, dt.datetime):
            return "timestamp", value.isoformat()
        if isinstance(value, dt.date):
            return "date", value.isoformat()
        if isinstance(value, bool):
            raise TypeError("a boolean column cannot be a watermark")
        if isinstance(value, int):
            return "integer", str(value)
        if isinstance(value, decimal.Decimal):
            return "decimal", format(value, "f")
        if isinstance(value, float):
            return "float", repr(value)
        if isinstance(value, str):
            return "string", value
        raise TypeError(f"unsupported watermark type {type(value).__name__}")

    def parameter(self) -> Any:
        """The value as a query parameter of the column's own type."""
        if self.value is None:
            return None
        return {
            "timestamp": dt.datetime.fromisoformat,
            "date": dt.date.fromisoformat,
            "integer": int,
            "decimal": decimal.Decimal,
            "float": float,
            "string": str,
        }[self.type](self.value)


@dataclass(frozen=True)
class Manifest:
    table: str
    source: str
    export_date: str
    blob: str
    rows: int
    bytes: int
    sha256: str
    columns: list[Column]
    started_at: str
    finished_at: str
    source_driver: str
    watermark: Watermark | None = None
    format_version: int = FORMAT_VERSION
    csv: dict[str, Any] = field(default_factory=lambda: dict(CSV_DIALECT))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        data["columns"] = [Column(**c) for c in data["columns"]]
        data["watermark"] = Watermark(**data["watermark"]) if data.get("watermark") else None
        return cls(**data)
