"""A request's rows checked against the model's schema and scored, fast for the few rows a call sends.

The checks are batch scoring's (model/schema.py `validate`): the same rules, in the same order, with
the same reasons. `validate` works on a DataFrame, which costs milliseconds for one row; a request
whose cells are all JSON natives (numbers, text, null) is checked here value by value and fed to
ONNX Runtime directly, in tens of microseconds. Any other request (numbers sent as text, say) goes
through `validate` itself. tests/test_realtime_rows.py proves on generated rows that both paths
accept, refuse and score alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from model.realtime.errors import INVALID_ROWS, MISSING_COLUMNS, Problem, RequestRejected
from model.realtime.payload import Table
from model.schema import (
    LEAKY_COLUMNS,
    PDAYS_NEVER,
    PREVIOUSLY_CONTACTED,
    TARGET,
    InputSchema,
    SchemaError,
    onnx_feed,
    validate,
)
from model.serving import LoadedModel

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_EXACT_INT = 2**53  # beyond, a Python int is not a float exactly: leave it to pandas


@dataclass
class Scored:
    """The answer for valid rows: ids (the request's, or row numbers), probabilities, decisions."""

    ids: list[Any]
    probabilities: np.ndarray
    decisions: np.ndarray
    unseen: dict[str, int] = field(default_factory=dict)
    path: str = "rows"  # rows | frame: which checker ran (for the request log and the tests)
    features: dict[str, list[Any]] | None = None  # raw inputs by column, for the request log
    ids_sent: bool = False  # the request named its rows (client_id): the monitor can join outcomes


def _column_of(reason: str) -> str | None:
    head, sep, _ = reason.partition(":")
    return head if sep else None


def _is_number(value: Any) -> bool:
    return isinstance(value, float) or (
        isinstance(value, int) and not isinstance(value, bool) and -_EXACT_INT <= value <= _EXACT_INT
    )


def _numeric_problem(column: str, value: Any, schema: InputSchema) -> str | None:
    """The first of `_numeric_problems`' findings for one JSON number (None: the value is good)."""
    if value is None:
        return f"{column}: missing value"
    number = float(value)
    if math.isinf(number):
        return f"{column}: is not a finite number"
    if abs(number) > _FLOAT32_MAX:
        return f"{column}: {number:g} is outside the float32 range"
    limits = schema.limits.get(column)
    if limits is None:
        return None
    if limits.whole and number != math.floor(number):
        return f"{column}: {number:g} is not a whole number"
    for bound, outside in ((limits.minimum, lambda: number < limits.minimum),
                           (limits.maximum, lambda: number > limits.maximum)):  # fmt: skip
        if bound is not None and outside():
            return f"{column}: {number:g} is outside {limits.describe()}"
    return None


class RowChecker:
    """Checks and scores requests for one model (built once per loaded version)."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.schema = model.schema
        self.known = {c: frozenset(v) for c, v in self.schema.categories.items()}
        self.numeric = tuple(c for c in self.schema.raw_columns if c not in self.schema.categories)

    def score(self, table: Table) -> Scored:
        """Scored rows, or RequestRejected naming every bad row (a request is answered whole or not)."""
        table = self._with_ids(table)
        positions = {c: i for i, c in enumerate(table.columns)}
        missing = [c for c in self.schema.raw_columns if c not in positions]
        if missing:
            raise RequestRejected(
                MISSING_COLUMNS,
                f"missing required column(s) {missing}; the request has {list(table.columns)}",
                [Problem(None, c, f"{c}: missing column") for c in missing],
            )
        problems, native = self._inspect(table, positions)
        if problems:
            raise RequestRejected(INVALID_ROWS, _invalid_message(problems, len(table.rows)), problems)
        scored = self._rows(table, positions) if native else self._frame(table)
        scored.features = {c: [row[positions[c]] for row in table.rows] for c in self.schema.raw_columns}
        scored.ids_sent = self.schema.id_column in positions
        return scored

    def _inspect(self, table: Table, positions: dict[str, int]) -> tuple[list[Problem], bool]:
        """One pass over the cells: the JSON values no CSV field can be, and whether every cell is a
        JSON native the per-value checks take (a number, a string or null where its column wants it).

        A CSV file holds text only, so batch scoring never meets a boolean, or a number where the
        model wants text; accepting `true` as 1 or a number as a category would score what the
        caller did not mean. Numbers sent as text are fine, but go through `validate` itself."""
        wanted = [(c, c in self.schema.categories, True) for c in self.schema.raw_columns]
        if self.schema.id_column in positions:
            wanted.append((self.schema.id_column, False, False))  # the id: any scalar but a boolean
        problems = []
        native = True
        for number, row in enumerate(table.rows, start=1):
            for column, wants_text, checked in wanted:
                cell = row[positions[column]]
                if isinstance(cell, bool):
                    shown = "true" if cell else "false"
                    problems.append(
                        Problem(number, column, f"{column}: {shown} is not a value of this column")
                    )
                elif wants_text and isinstance(cell, int | float):
                    problems.append(
                        Problem(number, column, f"{column}: {cell!r} is a number; its values are text")
                    )
                elif (
                    checked
                    and cell is not None
                    and not (isinstance(cell, str) if wants_text else _is_number(cell))
                ):
                    native = False
        return problems, native

    def _with_ids(self, table: Table) -> Table:
        if table.ids is None:
            return table
        id_column = self.schema.id_column
        rows = [[identifier, *row] for identifier, row in zip(table.ids, table.rows, strict=True)]
        return Table(table.form, (id_column, *table.columns), rows)

    def _rows(self, table: Table, positions: dict[str, int]) -> Scored:
        schema = self.schema
        id_at = positions.get(schema.id_column)
        problems: list[Problem] = []
        unseen: dict[str, int] = {}
        for number, row in enumerate(table.rows, start=1):
            reason = None
            if id_at is not None and row[id_at] is None:
                reason = f"{schema.id_column}: missing value"
            for column in self.numeric:
                reason = reason or _numeric_problem(column, row[positions[column]], schema)
            for column in schema.categories:
                if reason:
                    break
                value = row[positions[column]]
                if value is None:
                    reason = f"{column}: missing value"
                elif value not in self.known[column] and schema.unseen_policy == "reject":
                    reason = f"{column}: category {value[:40]!r} was not seen in training"
            if reason:
                problems.append(Problem(number, _column_of(reason), reason))
        if problems:
            raise RequestRejected(INVALID_ROWS, _invalid_message(problems, len(table.rows)), problems)
        for column in schema.categories:
            count = sum(row[positions[column]] not in self.known[column] for row in table.rows)
            if count:
                unseen[column] = count
        feed = self._feed(table.rows, positions)
        ids = [row[id_at] for row in table.rows] if id_at is not None else list(range(1, len(table.rows) + 1))
        return self._answer(ids, self._probabilities(feed), unseen, "rows")

    def _feed(self, rows: list[list[Any]], positions: dict[str, int]) -> dict[str, np.ndarray]:
        """The ONNX inputs `prepare_features` + `onnx_feed` would build, straight from the values."""
        feed: dict[str, np.ndarray] = {}
        pdays = [float(row[positions["pdays"]]) for row in rows] if "pdays" in positions else None
        for column in self.schema.numeric:
            if column == PREVIOUSLY_CONTACTED and pdays is not None:
                values = [float(p != PDAYS_NEVER) for p in pdays]
            elif column == "pdays" and pdays is not None:
                values = [0.0 if p == PDAYS_NEVER else p for p in pdays]
            else:
                values = [float(row[positions[column]]) for row in rows]
            feed[column] = np.array(values, dtype=np.float32).reshape(-1, 1)
        for column in self.schema.categorical:
            feed[column] = np.array([row[positions[column]] for row in rows], dtype=object).reshape(-1, 1)
        return feed

    def _frame(self, table: Table) -> Scored:
        """Batch scoring's own checks on a DataFrame of the request (any cell types)."""
        frame = pd.DataFrame(table.rows, columns=list(table.columns), dtype=object)
        frame = frame.drop(columns=[c for c in (*LEAKY_COLUMNS, TARGET) if c in frame.columns])
        frame = frame.infer_objects()
        try:
            checked = validate(frame, self.schema)
        except SchemaError as error:
            raise RequestRejected(MISSING_COLUMNS, str(error)) from None
        if checked.rejected:
            problems = [Problem(row, _column_of(reason), reason) for row, reason in checked.rejected]
            raise RequestRejected(INVALID_ROWS, _invalid_message(problems, len(table.rows)), problems)
        probabilities = self._probabilities(onnx_feed(checked.frame, self.schema))
        return self._answer(list(checked.ids), probabilities, checked.unseen, "frame")

    def _probabilities(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        (probabilities,) = self.model.session.run(["probabilities"], feed)
        return probabilities[:, 1]

    def _answer(self, ids: list[Any], probabilities: np.ndarray, unseen: dict[str, int], path: str) -> Scored:
        ids = [i.item() if isinstance(i, np.generic) else i for i in ids]
        decisions = (probabilities >= self.model.threshold).astype(int)
        return Scored(ids, probabilities, decisions, unseen, path)


def _invalid_message(problems: list[Problem], rows: int) -> str:
    first = problems[0]
    return f"{len(problems)} of {rows} row(s) cannot be scored (first: row {first.row}: {first.reason})"
