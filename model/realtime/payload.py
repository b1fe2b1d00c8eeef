"""The request body's forms, read into one table: column names and rows of JSON values.

Accepted, so that existing clients move over unchanged:

- the seeds' form `{"data": [[...], ...]}`: values in the schema's column order (`GET /api/schema`),
  with optional `"ids": [...]`;
- `{"records": [{...}, ...]}` and MLflow's `{"dataframe_records": [...]}`;
- MLflow's `{"dataframe_split": {"columns": [...], "data": [[...]]}}` and Azure ML's
  `{"input_data": {"columns": [...], "index": [...], "data": [[...]]}}`.

MLflow's own serializer writes a missing value as the bare literal `NaN` (not RFC 8259 JSON), so
`NaN` is read as a missing value, as is `""` (an empty field of a CSV file); `Infinity` reaches the
row checks and is refused there. JSON types the CSV files cannot hold are refused per value by the
row checks: `true`/`false` anywhere, a number where the model expects text.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from model.realtime.errors import (
    BAD_PAYLOAD,
    BODY_TOO_LARGE,
    NOT_JSON,
    TOO_MANY_ROWS,
    UNSUPPORTED_MEDIA_TYPE,
    Problem,
    RequestRejected,
)

FORMS = ("data", "records", "dataframe_split", "dataframe_records", "input_data")
IGNORED_KEYS = ("params",)  # MLflow's inference parameters: this model takes none


@dataclass(frozen=True)
class Table:
    """The request's rows: `columns` names each position of every row; `ids` when sent apart."""

    form: str
    columns: tuple[str, ...]
    rows: list[list[Any]]
    ids: list[Any] | None = None


def check_content_type(content_type: str | None) -> None:
    """No content type, or a JSON one (`application/json`, `...+json`); anything else is a 415."""
    if not content_type:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise RequestRejected(
            UNSUPPORTED_MEDIA_TYPE, f"Content-Type {media!r} is not JSON: send application/json"
        )


def parse_body(body: bytes, data_columns: tuple[str, ...], max_bytes: int, max_rows: int) -> Table:
    """Check the size, decode the JSON, and read whichever form it is into a Table."""
    if len(body) > max_bytes:
        raise RequestRejected(
            BODY_TOO_LARGE,
            f"the body has {len(body):,} bytes; the limit is {max_bytes:,} (HTTP_MAX_BODY_BYTES)",
        )
    try:
        document = json.loads(body)
    except RecursionError:  # valid JSON perhaps, but nested deeper than any payload form is
        raise _bad("the body is nested too deeply for any payload form") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, an integer of over 4,300 digits
        raise RequestRejected(NOT_JSON, f"the body is not JSON: {str(error)[:200]}") from None
    table = read_document(document, data_columns)
    if len(table.rows) > max_rows:
        raise RequestRejected(
            TOO_MANY_ROWS,
            f"{len(table.rows):,} rows in one request; the limit is {max_rows:,} (HTTP_MAX_ROWS)",
        )
    if not table.rows:
        raise RequestRejected(BAD_PAYLOAD, "the request holds no rows")
    return table


def read_document(document: Any, data_columns: tuple[str, ...]) -> Table:
    if not isinstance(document, dict):
        raise _bad(f"the body must be a JSON object with one of {', '.join(FORMS)}")
    forms = [key for key in FORMS if key in document]
    unknown = sorted(set(document) - set(FORMS) - {"ids", *IGNORED_KEYS})
    if len(forms) != 1 or unknown:
        found = ", ".join(sorted(document)) or "nothing"
        raise _bad(f"the body must hold exactly one of {', '.join(FORMS)} (found: {found})")
    form = forms[0]
    if "ids" in document and form != "data":
        raise _bad('"ids" goes with the "data" form; the other forms send the id as a column')
    value = document[form]
    if form == "data":
        return _positional(form, value, data_columns, document.get("ids"))
    if form in ("records", "dataframe_records"):
        return _records(form, value)
    if not isinstance(value, dict) or not isinstance(value.get("columns"), list):
        raise _bad(f'"{form}" must be an object with "columns" and "data"')
    columns = value["columns"]
    if not all(isinstance(c, str) for c in columns) or len(set(columns)) != len(columns):
        raise _bad(f'"{form}.columns" must be distinct column names')
    return _positional(form, value.get("data"), tuple(columns), None)


def _bad(message: str, problems: list[Problem] | None = None) -> RequestRejected:
    return RequestRejected(BAD_PAYLOAD, message, problems or [])


def _cell(value: Any) -> Any:
    """A JSON value as a cell: NaN (MLflow's missing value) and "" (an empty CSV field, which batch
    scoring reads as missing) become None; nested values are refused later."""
    if (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    return value


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float)


def _check_scalars(form: str, rows: list[list[Any]], columns: tuple[str, ...]) -> None:
    problems = [
        Problem(number, column, f"{column}: a {type(cell).__name__} is not a value")
        for number, row in enumerate(rows, start=1)
        for column, cell in zip(columns, row, strict=True)
        if not _is_scalar(cell)
    ]
    if problems:
        raise _bad(f'"{form}" holds nested values (objects or lists) where values belong', problems)


def _positional(form: str, data: Any, columns: tuple[str, ...], ids: Any) -> Table:
    if not isinstance(data, list) or not all(isinstance(row, list) for row in data):
        raise _bad(f'"{form}" must be a list of rows, each a list of values')
    problems = [
        Problem(number, None, f"the row has {len(row)} values; there are {len(columns)} columns")
        for number, row in enumerate(data, start=1)
        if len(row) != len(columns)
    ]
    if problems:
        names = ", ".join(columns)
        raise _bad(f"every row of {form!r} has one value per column, in this order: {names}", problems)
    if ids is not None and (not isinstance(ids, list) or len(ids) != len(data)):
        raise _bad(f'"ids" must be a list with one id per row ({len(data)})')
    rows = [[_cell(v) for v in row] for row in data]
    _check_scalars(form, rows, columns)
    if ids is not None:
        ids = [_cell(i) for i in ids]
        _check_scalars(form, [[i] for i in ids], ("ids",))
    return Table(form, columns, rows, ids)


def _records(form: str, records: Any) -> Table:
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise _bad(f'"{form}" must be a list of objects, one per row')
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))  # first-seen order, as pandas.DataFrame.from_records
    names = tuple(columns)
    rows = [[_cell(record.get(c)) for c in names] for record in records]
    _check_scalars(form, rows, names)
    return Table(form, names, rows)
