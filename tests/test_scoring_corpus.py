"""Malformed inputs, each with the outcome it must get, scored by the real pipeline on Azurite.

A file-level problem puts the untouched input in rejected/ with an error.json naming the problem,
and writes no predictions; a row-level problem rejects that row (row number and reason) and the
good rows are scored. Chunks of 10 rows make every file cross several chunk boundaries.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import pytest

from functions.scoring.context import ScoringContext
from functions.scoring.job import score_input
from lake.contract import PREDICTIONS_CONTAINER
from lake.paths import OutputPaths
from tests.scoring_support import (
    bank_csv,
    bank_frame,
    context,
    names_under,
    predictions,
    read_blob,
    rejected_rows,
    rejection,
    to_csv,
    unique,
    upload,
)

pytestmark = pytest.mark.integration
ROWS = 40


@pytest.fixture(scope="module")
def ctx(azurite, served) -> ScoringContext:
    return context(azurite.connection_string, SCORING_MAX_BYTES="2MiB")


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")


def _edit_row(row: int, column: str, value: str, rows: int = ROWS) -> bytes:
    frame = bank_frame(rows).astype(object)
    frame.loc[row - 1, column] = value
    return to_csv(frame)


def _replace_line(data: bytes, row: int, line: bytes) -> bytes:
    lines = _lines(data)
    lines[row] = line  # line 0 is the header: data row N is line N
    return b"\r\n".join(lines)


# --------------------------------------------------------------------------------------------- rejected


@dataclass(frozen=True)
class Rejected:
    code: str
    says: str  # a fragment the message must contain


REJECTED: dict[str, tuple[Callable[[], bytes], Rejected]] = {
    "wrong delimiter": (lambda: to_csv(bank_frame(ROWS), sep=";"), Rejected("wrong_delimiter", "';'")),
    "missing column": (
        lambda: to_csv(bank_frame(ROWS).drop(columns=["job"])),
        Rejected("missing_columns", "missing required column(s) ['job']"),
    ),
    "case of a column": (
        lambda: to_csv(bank_frame(ROWS).rename(columns={"age": "Age"})),
        Rejected("missing_columns", "found 'Age' for 'age'"),
    ),
    "duplicate columns": (
        lambda: bank_csv(ROWS).replace(b",poutcome", b",age", 1),
        Rejected("duplicate_columns", "['age']"),
    ),
    "empty file": (lambda: b"", Rejected("empty_file", "empty (0 bytes)")),
    "header only": (lambda: _lines(bank_csv(3))[0] + b"\r\n", Rejected("header_only", "no rows")),
    "header only, no line end": (lambda: _lines(bank_csv(3))[0], Rejected("header_only", "no rows")),
    "binary garbage": (
        lambda: bytes(range(256)) * 40,
        Rejected("binary", "byte 0 is a NUL byte"),
    ),
    "gzip named .csv": (
        lambda: b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + os.urandom(200),
        Rejected("binary", "byte 3 is a NUL byte"),
    ),
    "high bytes, no NUL": (
        lambda: bytes(range(128, 256)) * 10,
        Rejected("not_utf8", "invalid byte 0x80 at byte 0"),
    ),
    "bad UTF-8 (latin-1 text)": (
        lambda: _edit_row(30, "job", "técnico").decode().encode("latin-1"),
        Rejected("not_utf8", "invalid byte 0xe9 at byte 2337 (in row 30)"),
    ),
    "not CSV (JSON)": (
        lambda: b'[{"client_id": 1, "age": 58}]\n',
        Rejected("missing_columns", "missing required column(s)"),
    ),
    "huge line": (
        lambda: _replace_line(bank_csv(ROWS), 12, b"1," + b"x" * (1024 * 1024 + 10)),
        Rejected("record_too_long", "row 12 is longer than 1,048,576 bytes"),
    ),
    "unterminated quote": (
        lambda: _replace_line(bank_csv(ROWS), 38, b'38,"58,management'),
        Rejected("unterminated_quote", "opened in row 38 is never closed"),
    ),
    "all rows bad": (
        lambda: to_csv(bank_frame(ROWS).assign(age="old")),
        Rejected("no_valid_rows", "none of the 40 rows could be scored; first problems: row 1: age: 'old'"),
    ),
    "over the size limit": (lambda: bank_csv(30_000), Rejected("too_large", "over the limit of 2,097,152")),
    "a category column empty in every row": (  # an empty categorical: was an IndexError (a crash)
        lambda: to_csv(bank_frame(ROWS).assign(poutcome=None)),
        Rejected("no_valid_rows", "row 1: poutcome: missing value"),
    ),
    "CR-only line ends (old Mac)": (
        lambda: to_csv(bank_frame(ROWS), eol="\r"),
        Rejected("cr_line_endings", "the header has a carriage return (CR) at byte"),
    ),
    "bare CR in the header": (
        lambda: bank_csv(ROWS).replace(b",age,", b",age\r,", 1),
        Rejected("cr_line_endings", "the header has a carriage return (CR) at byte 13"),
    ),
    "mixed line ends with a bare CR": (
        lambda: bank_csv(ROWS).replace(
            _lines(bank_csv(ROWS))[17] + b"\r\n", _lines(bank_csv(ROWS))[17] + b"\r", 1
        ),
        Rejected("cr_line_endings", "row 17 has a carriage return (CR) at byte"),
    ),
    "NUL byte in a late row": (
        lambda: _edit_row(35, "job", "admin.\x00"),
        Rejected("binary", "is a NUL byte (in row 35)"),
    ),
    "bad UTF-8 in the header": (
        lambda: bank_csv(ROWS).replace(b"poutcome", b"p\xf6utcome", 1),
        Rejected("not_utf8", "(in the header)"),
    ),
}


@pytest.mark.parametrize("case", list(REJECTED))
def test_file_level_problems_reject_the_file_untouched(ctx: ScoringContext, served: str, case: str) -> None:
    build, expected = REJECTED[case]
    data = build()
    name = unique("bad")
    client = upload(ctx, name, data)

    outcome = score_input(ctx, client)

    assert outcome.status == "rejected", outcome
    etag = client.get_blob_properties().etag
    error, copy = rejection(ctx, name, etag)
    assert copy == data  # the untouched input
    assert error["code"] == expected.code
    assert expected.says in error["message"], error["message"]
    assert error["input"] == {"blob": f"scoring-input/{name}.csv", "etag": etag, "bytes": len(data)}
    assert names_under(ctx, PREDICTIONS_CONTAINER, f"{name}/") == []  # no predictions, not even staged
    assert client.exists()  # the original stays where it was
    assert score_input(ctx, client).status == "duplicate"  # judged once per version of the file


def test_bad_utf8_after_many_chunks_leaves_no_partial_output(azurite, served: str) -> None:
    # 60,000 rows (~5 MB: more than one 4 MiB download chunk): predictions were staged when the
    # bad byte arrives at the very end; none of them may become visible.
    rows = 60_000
    last = _lines(bank_csv(1))[1].replace(b"management", b"t\xe9cnico")
    data = bank_csv(rows) + last + b"\r\n"
    local = context(azurite.connection_string, SCORING_CHUNK_ROWS="5000")
    name = unique("late-bad-byte")
    client = upload(local, name, data)
    outcome = score_input(local, client)
    assert outcome.status == "rejected"
    error, _ = rejection(local, name, client.get_blob_properties().etag)
    assert error["code"] == "not_utf8" and error["details"]["byte_offset"] == data.index(b"\xe9")
    assert error["details"]["row"] == rows + 1 and f"(in row {rows + 1})" in error["message"]
    assert names_under(local, PREDICTIONS_CONTAINER, f"{name}/") == []
    blob = local.service.get_blob_client(PREDICTIONS_CONTAINER, OutputPaths(name, served).predictions)
    assert not blob.exists()


# --------------------------------------------------------------------------------------------- scored


@dataclass(frozen=True)
class Scored:
    rows_in: int
    rejected: dict[int, str] = field(default_factory=dict)  # row -> exact reason
    blank_lines: int = 0
    check: Callable[[dict, pd.DataFrame], None] | None = None


def _quoted_newline() -> bytes:
    frame = bank_frame(ROWS).astype(object)
    frame.loc[4, "job"] = "admin.\r\nsecond line"  # row 5: a quoted field with a line break
    frame.loc[19, "age"] = "forty"  # row 20: its number must not be shifted by the line break
    return to_csv(frame)


def _unseen(manifest: dict, scored: pd.DataFrame) -> None:
    assert manifest["unseen_categories"] == {"job": 1}


def _stray_quote() -> bytes:
    frame = bank_frame(ROWS).astype(object)
    frame.loc[20, "job"] = 'size 27" screen'  # row 21: a quote in an unquoted field (not RFC 4180)
    frame.loc[21, "age"] = "x"  # row 22: its number must not be shifted
    return to_csv(frame).replace(b'"size 27"" screen"', b'size 27" screen')


def _unseen_text(manifest: dict, scored: pd.DataFrame) -> None:
    assert manifest["unseen_categories"] == {"job": 1}  # 'size 27" screen', read as text


def _not_shifted(manifest: dict, scored: pd.DataFrame) -> None:
    # pandas takes the first column as an index when the first row has one field more than the
    # header, shifting every column of every row: the ids must still be the ids.
    assert scored["client_id"].astype(int).tolist() == list(range(2, ROWS + 1))


def _ignored(manifest: dict, scored: pd.DataFrame) -> None:
    assert manifest["ignored_columns"] == ["notes", "y", "duration"]


SCORED: dict[str, tuple[Callable[[], bytes], Scored]] = {
    "CRLF line ends": (lambda: bank_csv(ROWS), Scored(ROWS)),
    "LF line ends": (lambda: to_csv(bank_frame(ROWS), eol="\n"), Scored(ROWS)),
    "UTF-8 byte order mark": (lambda: b"\xef\xbb\xbf" + bank_csv(ROWS), Scored(ROWS)),
    "extra columns": (
        lambda: to_csv(bank_frame(ROWS).assign(notes="called twice, no answer", y="no", duration=99)),
        Scored(ROWS, check=_ignored),
    ),
    "extra fields in rows": (
        lambda: _replace_line(
            _replace_line(bank_csv(ROWS), 7, _lines(bank_csv(ROWS))[7] + b",surplus"),
            33,
            _lines(bank_csv(ROWS))[33] + b",a,b",
        ),
        Scored(
            ROWS,
            {7: "malformed row: expected 16 fields, saw 17", 33: "malformed row: expected 16 fields, saw 18"},
        ),
    ),
    "quoted newlines": (
        lambda: _quoted_newline(),
        Scored(ROWS, {20: "age: 'forty' is not a number"}, check=_unseen),
    ),
    "wrong types": (
        lambda: _edit_row(3, "age", "forty"),
        Scored(ROWS, {3: "age: 'forty' is not a number"}),
    ),
    "out-of-range values": (
        lambda: to_csv(
            bank_frame(ROWS).astype(object).assign(**{"age": [17, *[40] * 39], "day": [5, 40, *[5] * 38]})
        ),
        Scored(ROWS, {1: "age: 17 is outside [18, 120]", 2: "day: 40 is outside [1, 31]"}),
    ),
    "not whole and not finite": (
        lambda: to_csv(bank_frame(ROWS).astype(object).assign(campaign=[2.5, "inf", *[1] * 38])),
        Scored(ROWS, {1: "campaign: 2.5 is not a whole number", 2: "campaign: is not a finite number"}),
    ),
    "numbers beyond float32": (  # the model takes float32: these would reach it as infinity
        lambda: to_csv(bank_frame(ROWS).astype(object).assign(balance=["1e39", "-3.5e38", *[100] * 38])),
        Scored(
            ROWS,
            {
                1: "balance: 1e+39 is outside the float32 range",
                2: "balance: -3.5e+38 is outside the float32 range",
            },
        ),
    ),
    "missing values and id": (
        lambda: to_csv(
            bank_frame(ROWS)
            .astype(object)
            .assign(client_id=[None, *range(2, 41)], housing=["yes", None, *["no"] * 38])
        ),
        Scored(ROWS, {1: "client_id: missing value", 2: "housing: missing value"}),
    ),
    "mixed good and bad rows": (
        lambda: _replace_line(_edit_row(11, "balance", "lots"), 25, b"25,36,nurse"),
        Scored(ROWS, {11: "balance: 'lots' is not a number", 25: "balance: missing value"}),
    ),
    "quote inside an unquoted field": (  # pandas reads `27"` as text: so must the scanner
        lambda: _stray_quote(),
        Scored(ROWS, {22: "age: 'x' is not a number"}, check=_unseen_text),
    ),
    "extra field in the first row": (
        lambda: _replace_line(bank_csv(ROWS), 1, _lines(bank_csv(ROWS))[1] + b",surplus"),
        Scored(ROWS, {1: "malformed row: expected 16 fields, saw 17"}, check=_not_shifted),
    ),
    "blank lines": (
        lambda: bank_csv(ROWS).replace(b"\r\n", b"\r\n\r\n", 3) + b"\r\n",
        Scored(ROWS + 4, blank_lines=4),
    ),
}


@pytest.mark.parametrize("case", list(SCORED))
def test_row_level_problems_reject_rows_and_score_the_rest(
    ctx: ScoringContext, served: str, case: str
) -> None:
    build, expected = SCORED[case]
    name = unique("rows")
    client = upload(ctx, name, build())

    outcome = score_input(ctx, client)

    assert outcome.status == "scored", outcome
    manifest = outcome.manifest
    assert manifest is not None
    scored = predictions(ctx, name, served)
    good = ROWS - len(expected.rejected)
    assert manifest["rows"] == {
        "in": expected.rows_in,
        "scored": good,
        "rejected": len(expected.rejected),
        "blank_lines": expected.blank_lines,
    }
    assert len(scored) == good
    assert list(scored.columns) == ["client_id", "probability", "decision", "model_name", "model_version",
                                    "scored_at"]  # fmt: skip
    assert scored["probability"].between(0, 1).all()
    assert (scored["model_version"].astype(str) == served).all()
    if expected.rejected:
        assert dict(rejected_rows(ctx, name, served)) == expected.rejected
    else:
        assert manifest["output"]["rejected_rows"] is None
    if expected.check is not None:
        expected.check(manifest, scored)


def test_line_ends_do_not_change_predictions(ctx: ScoringContext, served: str) -> None:
    crlf, lf = unique("crlf"), unique("lf")
    score_input(ctx, upload(ctx, crlf, bank_csv(ROWS)))
    score_input(ctx, upload(ctx, lf, to_csv(bank_frame(ROWS), eol="\n")))
    columns = ["client_id", "probability", "decision"]
    pd.testing.assert_frame_equal(
        predictions(ctx, crlf, served)[columns], predictions(ctx, lf, served)[columns]
    )


def test_predictions_match_the_model_and_the_manifest_matches_the_bytes(
    ctx: ScoringContext, served: str
) -> None:
    import hashlib

    name = unique("exact")
    data = bank_csv(ROWS)
    manifest = score_input(ctx, upload(ctx, name, data)).manifest
    assert manifest is not None
    output = read_blob(ctx, PREDICTIONS_CONTAINER, OutputPaths(name, served).predictions)
    assert manifest["output"]["sha256"] == hashlib.sha256(output).hexdigest()
    assert manifest["output"]["bytes"] == len(output)
    assert manifest["input"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert output.startswith(b"client_id,probability,decision,model_name,model_version,scored_at\r\n")

    model = ctx.models.version(served).model
    expected, _ = model.predict(bank_frame(ROWS))
    scored = predictions(ctx, name, served)
    assert scored["client_id"].astype(int).tolist() == expected["client_id"].tolist()
    assert (scored["probability"] - expected["probability"]).abs().max() < 1e-6
    assert scored["decision"].tolist() == expected["decision"].tolist()
    assert manifest["to_call"] == int(expected["decision"].sum())
    assert abs(manifest["expected_positives"] - expected["probability"].sum()) < 1e-2


def test_unusable_names_are_left_alone(ctx: ScoringContext) -> None:
    client = upload(ctx, "odd name!", bank_csv(3))
    outcome = score_input(ctx, client)
    assert outcome.status == "ignored" and "not a usable name" in outcome.detail
    assert client.exists()
