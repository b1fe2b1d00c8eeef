"""`GET /api/schema`: a JSON Schema (draft 2020-12) of every payload form, built from the model's schema.

Clients generate forms and validators from it; tests/test_realtime_http.py checks it with the
`jsonschema` library (an independent validator) against every form the endpoint accepts.
The row rules it states (types, ranges, known categories) are the model's; the endpoint's own
checks (model/realtime/rows.py) stay the authority and say exactly which value is wrong.
"""

from __future__ import annotations

from typing import Any

from model.schema import InputSchema

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _column(schema: InputSchema, column: str) -> dict[str, Any]:
    if column in schema.categories:
        known = list(schema.categories[column])
        if schema.unseen_policy == "reject":
            return {"enum": [*known, None]}
        return {"type": ["string", "null"], "examples": known}
    rule: dict[str, Any] = {"type": ["number", "null"]}
    limits = schema.limits.get(column)
    if limits is not None:
        if limits.minimum is not None:
            rule["minimum"] = limits.minimum
        if limits.maximum is not None:
            rule["maximum"] = limits.maximum
        if limits.whole:
            rule["multipleOf"] = 1
    return rule


def payload_schema(schema: InputSchema, max_rows: int, model: dict[str, Any]) -> dict[str, Any]:
    """The schema document: `$defs.row` (one record), the five forms, the column order of `data`."""
    columns = list(schema.raw_columns)
    row = {
        "type": "object",
        "properties": {schema.id_column: {"type": ["string", "integer"]}}
        | {c: _column(schema, c) for c in columns},
        "required": columns,
    }
    values = {"type": "array", "items": {"type": ["string", "number", "null"]}, "minItems": len(columns),
              "maxItems": len(columns)}  # fmt: skip
    rows = {"type": "array", "minItems": 1, "maxItems": max_rows}
    split = {
        "type": "object",
        "properties": {
            "columns": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "data": rows | {"items": {"type": "array"}},
            "index": {"type": "array"},
        },
        "required": ["columns", "data"],
    }
    forms = {
        "data": {"properties": {"data": rows | {"items": values}, "ids": {"type": "array"}}},
        "records": {"properties": {"records": rows | {"items": {"$ref": "#/$defs/row"}}}},
        "dataframe_records": {"properties": {"dataframe_records": rows | {"items": {"$ref": "#/$defs/row"}}}},
        "dataframe_split": {"properties": {"dataframe_split": split}},
        "input_data": {"properties": {"input_data": split}},
    }
    return {
        "$schema": DIALECT,
        "title": f"POST /api/score payload for {model.get('name')} v{model.get('version')}",
        "description": "one of the forms; `data` rows hold values in the order of `x-columns`",
        "x-columns": columns,
        "x-id-column": schema.id_column,
        "x-max-rows": max_rows,
        "type": "object",
        "oneOf": [
            {
                "type": "object",
                "required": [name],
                "properties": form["properties"] | {"params": {"type": "object"}},
                "additionalProperties": False,
            }
            for name, form in forms.items()
        ],
        "$defs": {"row": row},
    }
