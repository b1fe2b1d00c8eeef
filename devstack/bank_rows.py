"""The UCI Bank Marketing file as typed rows: the columns of the demo tables and how each row reads.

`data/bank_marketing/bank_marketing.csv` (CC BY 4.0, see its README) has a day and a month but
no year and no id; `read_bank_rows` adds both, so every load of the demo database (SQLite or
PostgreSQL) holds the same clients with the same ids and dates.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BANK_CSV: Path = REPO_ROOT / "data" / "bank_marketing" / "bank_marketing.csv"

#: The bank file's header, exactly; anything else is a different file and is refused.
CSV_HEADER: tuple[str, ...] = (
    "age",
    "job",
    "marital",
    "education",
    "default",
    "balance",
    "housing",
    "loan",
    "contact",
    "day",
    "month",
    "duration",
    "campaign",
    "pdays",
    "previous",
    "poutcome",
    "y",
)

#: The rows start in May 2008 (Moro et al. 2014); the year is not in the file.
FIRST_YEAR = 2008

MONTHS: dict[str, int] = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
    )
}

CLIENTS_TABLE = "clients"
OUTCOMES_TABLE = "campaign_outcomes"

#: `clients` columns in table order: the id, then the CSV's inputs under the CSV's own names
#: (`duration` and `y` are outcomes of the call, so they live in `campaign_outcomes`).
CLIENT_COLUMNS: tuple[str, ...] = ("client_id", *(c for c in CSV_HEADER if c not in {"duration", "y"}))
OUTCOME_COLUMNS: tuple[str, ...] = ("client_id", "contact_date", "duration", "subscribed")


@dataclass(frozen=True, slots=True)
class BankRow:
    """One CSV row, typed, plus the two things the file leaves implicit: a stable id and the date.

    `client_id` is the 1-based data row number, so it is the same on every load and from every
    database; `contact_date` is reconstructed from the row order (see `read_bank_rows`).
    """

    client_id: int
    age: int
    job: str
    marital: str
    education: str
    default: str
    balance: int
    housing: str
    loan: str
    contact: str
    day: int
    month: str
    duration: int
    campaign: int
    pdays: int
    previous: int
    poutcome: str
    y: str
    contact_date: dt.date

    @property
    def subscribed(self) -> int:
        """`y` as the 0/1 flag stored in `campaign_outcomes` (1 = subscribed a term deposit)."""
        return 1 if self.y == "yes" else 0

    def client_values(self) -> tuple[object, ...]:
        """Parameters for an INSERT into `clients`, in `CLIENT_COLUMNS` order."""
        return tuple(getattr(self, column) for column in CLIENT_COLUMNS)

    def outcome_values(self) -> tuple[object, ...]:
        """Parameters for an INSERT into `campaign_outcomes`, in `OUTCOME_COLUMNS` order."""
        return (self.client_id, self.contact_date, self.duration, self.subscribed)


def read_bank_rows(path: Path = BANK_CSV) -> Iterator[BankRow]:
    """Stream the bank CSV as typed `BankRow`s, one at a time (the file is never held whole).

    The file has a day and a month but no year. Its rows are in the order of the calls starting
    in May 2008, so the year starts at 2008 and goes up by one each time the month goes backwards
    (e.g. dec -> jan). A malformed row raises ValueError naming its line, rather than loading a
    silently wrong demo database.
    """
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter=";", quotechar='"', strict=True)
        header = next(reader, None)
        if header is None or tuple(header) != CSV_HEADER:
            raise ValueError(f"{path}: unexpected header {header!r}; expected {';'.join(CSV_HEADER)}")
        year = FIRST_YEAR
        previous_month: int | None = None
        for client_id, fields in enumerate(reader, start=1):
            line = reader.line_num
            if len(fields) != len(CSV_HEADER):
                raise ValueError(f"{path}:{line}: {len(fields)} fields, expected {len(CSV_HEADER)}")
            raw = dict(zip(CSV_HEADER, fields, strict=True))
            try:
                month_number = MONTHS[raw["month"]]
                if previous_month is not None and month_number < previous_month:
                    year += 1
                previous_month = month_number
                if raw["y"] not in ("yes", "no"):
                    raise ValueError(f"y must be yes or no, not {raw['y']!r}")
                day = int(raw["day"])
                yield BankRow(
                    client_id=client_id,
                    age=int(raw["age"]),
                    job=raw["job"],
                    marital=raw["marital"],
                    education=raw["education"],
                    default=raw["default"],
                    balance=int(raw["balance"]),
                    housing=raw["housing"],
                    loan=raw["loan"],
                    contact=raw["contact"],
                    day=day,
                    month=raw["month"],
                    duration=int(raw["duration"]),
                    campaign=int(raw["campaign"]),
                    pdays=int(raw["pdays"]),
                    previous=int(raw["previous"]),
                    poutcome=raw["poutcome"],
                    y=raw["y"],
                    contact_date=dt.date(year, month_number, day),
                )
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{path}:{line}: bad row {fields!r}: {exc!r}") from exc
