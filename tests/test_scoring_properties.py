"""Property-based tests of the scoring reader (model/csvinput), driven in memory without storage.

- Any bytes: never an unhandled exception; either a documented FileRejected code or a result
  whose counts add up.
- Generated valid CSVs (RFC 4180 quoting, LF / CRLF / mixed line ends, BOM, blank lines, rows with
  too many fields, bad values, repeated ids, any text in ids and categories): every value and row
  number reaches the predictions and rejected rows exactly as an independent oracle says: Python's
  `csv` module parsing the same text, then the same validation rules.
- Encodings (UTF-16, Latin-1, UTF-8 with BOM), CR line ends, NUL: a clean rejection with its code.
- Record counting and shard cuts agree with pandas for any quoting, so fan-out never splits a row.

Small chunks of bytes and of rows make every example cross many chunk boundaries.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from model.csvinput.errors import CODES, FileRejected
from model.csvinput.run import ReadOptions, score_bytes
from model.csvinput.scan import RecordScanner
from model.schema import RAW_NUMERIC, validate
from model.serving import LoadedModel, load_folder

BOM = b"\xef\xbb\xbf"
PIECES = [b"a", b",", b'"', b"\n", b"\r", b"\r\n", b"\x00", b"\xff", b"\xc3", b"1", b" "]
FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ID = "client_id"


@pytest.fixture(scope="module")
def model(models) -> LoadedModel:
    return load_folder(models.good)


# ------------------------------------------------------------------------------------ generating

_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=10)
_NUMBERS = {
    "age": st.integers(18, 120),
    "balance": st.integers(-(10**6), 10**7),
    "day": st.integers(1, 31),
    "campaign": st.integers(1, 60),
    "pdays": st.one_of(st.just(-1), st.integers(0, 900)),
    "previous": st.integers(0, 40),
}


def _field(value: str, quote_all: bool) -> str:
    """RFC 4180: quote a field that holds a delimiter, quote or line break (or every field)."""
    if quote_all or any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def csv_files(draw, schema) -> tuple[bytes, list[str]]:
    """A valid CSV file for the model: bytes, and the header's columns."""
    columns = [ID, *RAW_NUMERIC, *schema.categorical]
    if draw(st.booleans()):
        columns.insert(draw(st.integers(0, len(columns))), "notes")  # an extra column, anywhere
    quote_all = draw(st.booleans())
    eols = draw(st.sampled_from([["\n"], ["\r\n"], ["\n", "\r\n"]]))
    lines = [",".join(_field(c, quote_all) for c in columns)]
    ids = draw(st.lists(st.one_of(_TEXT, st.sampled_from(["1", "2", "A"])), min_size=1, max_size=6))
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["valid"] * 6 + ["bad_number", "missing", "blank", "extra", "short"]))
        if kind == "blank":
            lines.append("")
            continue
        values = {c: str(draw(_NUMBERS[c])) for c in RAW_NUMERIC}
        for c in schema.categorical:
            values[c] = draw(st.one_of(st.sampled_from(schema.categories[c]), _TEXT.filter(bool)))
        values[ID] = draw(st.sampled_from(ids))
        values["notes"] = draw(_TEXT)
        if kind == "bad_number":
            values[draw(st.sampled_from(RAW_NUMERIC))] = draw(st.sampled_from(["x", "forty", "1,5", "--1"]))
        if kind == "missing":
            values[draw(st.sampled_from(columns))] = ""
        fields = [_field(values[c], quote_all) for c in columns]
        if kind == "extra":
            fields += ["surplus"] * draw(st.integers(1, 2))
        if kind == "short":
            fields = fields[: draw(st.integers(2, len(fields) - 1))]
        lines.append(",".join(fields))
    text = "".join(line + draw(st.sampled_from(eols)) for line in lines)
    if draw(st.booleans()):
        text = text[: -2 if text.endswith("\r\n") else -1]  # no line end after the last row
    data = text.encode()
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data, columns


# ------------------------------------------------------------------------------------ the oracle


def oracle(data: bytes, model: LoadedModel, policy: str) -> tuple[list, list, str | None]:
    """Parse with Python's csv module, validate with the model's rules: (scored, rejected, code).

    scored: (id, probability) per scored row in order; rejected: (row, reason) in row order; code:
    the file-level code expected, if any.
    """
    records = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    header, body = records[0], records[1:]
    rows, values, rejected, blank = [], [], [], 0
    for number, record in enumerate(body, start=1):
        if all(field == "" for field in record):
            blank += 1
        elif len(record) > len(header):
            rejected.append((number, f"malformed row: expected {len(header)} fields, saw {len(record)}"))
        else:
            rows.append(number)
            values.append([v if v != "" else None for v in record] + [None] * (len(header) - len(record)))
    if len(body) == blank:
        return [], [], "header_only"
    scored: list = []
    if rows:
        frame = pd.DataFrame(values, columns=header, dtype=object)
        checked = validate(frame, model.schema, row_numbers=np.array(rows))
        rejected += checked.rejected
        probabilities = model.probabilities(checked.frame)
        seen: dict[str, int] = {}
        for id_, row, probability in zip(checked.ids, checked.rows, probabilities, strict=True):
            if id_ in seen and policy == "reject_file":
                return [], [], "duplicate_ids"
            if id_ in seen and policy == "reject_rows":
                rejected.append((int(row), f"{ID}: duplicate of row {seen[id_]}"))
                continue
            seen.setdefault(id_, int(row))
            scored.append((id_, float(probability)))
    if not scored:
        return [], [], "no_valid_rows"
    return scored, sorted(rejected), None


def _read(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


# ------------------------------------------------------------------------------------ properties


@FAST
@given(data=st.data())
def test_generated_files_reach_the_outputs_exactly_as_the_oracle_says(model: LoadedModel, data) -> None:
    content, _ = data.draw(csv_files(model.schema))
    policy = data.draw(st.sampled_from(["keep", "reject_rows", "reject_file"]))
    options = ReadOptions(chunk_rows=data.draw(st.integers(1, 9)), duplicate_ids=policy)
    chunk_bytes = data.draw(st.sampled_from([5, 64, 4096]))
    expected_scored, expected_rejected, expected_code = oracle(content, model, policy)
    try:
        predictions, rejected, result = score_bytes(content, model, options, chunk_bytes=chunk_bytes)
    except FileRejected as rejection:
        assert rejection.code == expected_code, rejection.message
        return
    assert expected_code is None
    table = _read(predictions)
    assert table[0] == [ID, "probability", "decision", "model_name", "model_version", "scored_at"]
    assert [row[0] for row in table[1:]] == [id_ for id_, _ in expected_scored]  # ids verbatim, in order
    got = np.array([float(row[1]) for row in table[1:]])
    assert np.allclose(got, [p for _, p in expected_scored], atol=1e-6)
    listed = [(int(row), reason) for row, reason in _read(rejected)[1:]] if rejected else []
    assert listed == expected_rejected
    assert result.tally.rows_scored == len(expected_scored)
    assert result.tally.rows_rejected == len(expected_rejected)


@MANY
@given(
    content=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(str.encode),
        st.lists(st.sampled_from(PIECES), max_size=200).map(b"".join),
    ),
    prefix=st.sampled_from([b"", b"client_id,age\n", b"\xef\xbb\xbf"]),
    chunk_bytes=st.sampled_from([1, 3, 50, 4096]),
)  # fmt: skip
def test_any_bytes_give_a_documented_code_or_a_consistent_result(
    model: LoadedModel, content: bytes, prefix: bytes, chunk_bytes: int
) -> None:
    header = ",".join([ID, *model.schema.raw_columns]).encode() + b"\r\n"
    for data in (prefix + content, header + content):
        try:
            predictions, rejected, result = score_bytes(
                data, model, ReadOptions(chunk_rows=4), max_record_bytes=400, chunk_bytes=chunk_bytes
            )
        except FileRejected as rejection:
            assert rejection.code in CODES and rejection.message
            continue
        tally = result.tally
        assert tally.rows_in == tally.rows_scored + tally.rows_rejected + tally.blank_lines
        assert len(_read(predictions)) - 1 == tally.rows_scored
        listed = [int(r) for r, _ in _read(rejected)[1:]] if rejected else []
        assert len(listed) == tally.rows_rejected and listed == sorted(set(listed))
        assert all(1 <= r <= tally.rows_in for r in listed)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_other_encodings_are_refused_with_their_code(model: LoadedModel, data) -> None:
    content, _ = data.draw(csv_files(model.schema))
    text = content.decode("utf-8-sig")
    encoding = data.draw(st.sampled_from(["utf-16", "utf-16-le", "latin-1"]))
    try:
        encoded = text.encode(encoding)
    except UnicodeEncodeError:
        return  # characters Latin-1 cannot hold: nothing to test
    code = None
    chunk_bytes = data.draw(st.sampled_from([2, 4096]))
    try:
        score_bytes(encoded, model, ReadOptions(chunk_rows=5), chunk_bytes=chunk_bytes)
    except FileRejected as rejection:
        code = rejection.code
    if encoding.startswith("utf-16"):
        # Every ASCII character comes with a NUL byte: `binary`, judged per read chunk (4 MiB in
        # the trigger and the CLI); a first chunk that ends before the first NUL meets the byte
        # order mark first, which is not UTF-8.
        assert code == "binary" if chunk_bytes == 4096 else code in ("binary", "not_utf8")
        return
    try:
        encoded.decode("utf-8")
    except UnicodeDecodeError:
        assert code == "not_utf8"
    else:  # ASCII (or Latin-1 bytes that happen to be UTF-8, like 'Ã©'): read as UTF-8
        assert code == oracle(encoded, model, "keep")[2]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_cr_line_ends_and_nul_bytes_are_refused_wherever_they_are(model: LoadedModel, data) -> None:
    content, _ = data.draw(csv_files(model.schema))
    if data.draw(st.booleans()):  # a NUL byte anywhere
        at = data.draw(st.integers(0, len(content)))
        mutated, code = content[:at] + b"\x00" + content[at:], "binary"
    else:  # a line end (outside quotes: the generated fields hold no line breaks) becomes a bare CR
        assume(not any("\n" in f or "\r" in f for record in _read(content.removeprefix(BOM)) for f in record))
        # (not one a line feed follows: CR + LF would just be a CRLF line end)
        line_ends = [i for i, byte in enumerate(content) if byte == 10 and content[i + 1 : i + 2] != b"\n"]
        assume(line_ends)
        at = data.draw(st.sampled_from(line_ends))
        mutated, code = content[:at].removesuffix(b"\r") + b"\r" + content[at + 1 :], "cr_line_endings"
    with pytest.raises(FileRejected) as caught:
        score_bytes(
            mutated, model, ReadOptions(chunk_rows=5), chunk_bytes=data.draw(st.sampled_from([1, 9, 4096]))
        )
    assert caught.value.code == code, caught.value.message
    offset = mutated.index(b"\x00") if code == "binary" else len(content[:at].removesuffix(b"\r"))
    assert caught.value.details["byte_offset"] == offset


@FAST
@given(
    pieces=st.lists(
        st.sampled_from(["a", "b,", ",", '"', '""', '"x"', "\n", "\r\n", '27" ', ' "q" ', "\n\n"]),
        max_size=60,
    ),
    chunk=st.sampled_from([1, 2, 5, 64]),
    cut_every=st.sampled_from([1, 7, 40]),
)
def test_records_and_shard_cuts_are_the_ones_pandas_reads(
    pieces: list[str], chunk: int, cut_every: int
) -> None:
    data = ("id,a,b\n" + "".join(pieces)).encode()
    scanner = RecordScanner(1 << 20, cut_every)
    try:
        for start in range(0, len(data), chunk):
            scanner.feed(data[start : start + chunk])
        scanner.finish()
    except FileRejected as rejection:
        assert rejection.code in ("unterminated_quote", "cr_line_endings")
        return

    def parse(body: bytes) -> pd.DataFrame:
        if not body:
            return pd.DataFrame(columns=range(200), dtype=str)
        return pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False, skip_blank_lines=False,
                           index_col=False, header=None, names=range(200))  # fmt: skip

    whole = parse(data[scanner.header_end :])
    assert scanner.records - 1 == len(whole)
    starts = [scanner.header_end, *(c.offset for c in scanner.cuts if c.offset < len(data))]
    ends = [*starts[1:], len(data)]
    parts = [parse(data[s:e]) for s, e in zip(starts, ends, strict=True)]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
    first_rows = [1, *(c.first_row for c in scanner.cuts if c.offset < len(data))]
    assert first_rows == list(np.cumsum([0, *map(len, parts)])[:-1] + 1)


# ------------------------------------------------------------------------ through the real blob path


@pytest.fixture(scope="module")
def ctx(azurite, served):  # a ScoringContext on the session's Azurite
    from tests.scoring_support import context

    return context(azurite.connection_string)


@pytest.mark.integration
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_trigger_and_the_cli_agree_on_generated_bytes(
    ctx, served: str, models, model: LoadedModel, data
) -> None:
    import json
    import tempfile
    from pathlib import Path

    from functions.scoring.job import score_input
    from lake.contract import PREDICTIONS_CONTAINER
    from lake.paths import OutputPaths
    from model.cli import main
    from tests.scoring_support import read_blob, rejected_rows, rejection, unique, upload

    content, _ = data.draw(csv_files(model.schema))
    if data.draw(st.booleans()):  # sometimes a hostile byte somewhere
        at = data.draw(st.integers(0, len(content)))
        content = content[:at] + data.draw(st.sampled_from([b"\x00", b"\r", b"\xff", b'"'])) + content[at:]
    name = unique("prop")
    client = upload(ctx, name, content)
    outcome = score_input(ctx, client)
    with tempfile.TemporaryDirectory() as folder:
        source, output = Path(folder) / "in.csv", Path(folder) / "out.csv"
        source.write_bytes(content)
        chunk_rows = str(data.draw(st.integers(1, 30)))
        code = main(["score", "--model", str(models.good), "--input", str(source), "--output", str(output),
                     "--delimiter", ",", "--chunk-rows", chunk_rows])  # fmt: skip
        if outcome.status == "rejected":
            blob_error, _ = rejection(ctx, name, client.get_blob_properties().etag)
            local_error = json.loads(output.with_name("out.csv.error.json").read_text())
            assert code == 3
            assert [local_error[k] for k in ("code", "message", "details")] == [
                blob_error[k] for k in ("code", "message", "details")
            ]
            return
        assert outcome.status == "scored" and code == 0
        blob = read_blob(ctx, PREDICTIONS_CONTAINER, OutputPaths(name, served).predictions)
        local, remote = _read(output.read_bytes()), _read(blob)
        assert [(row[0], row[2]) for row in local] == [(row[0], row[2]) for row in remote]  # ids, decisions
        # ONNX Runtime's float32 results may differ in the last bit with the batch (chunk) size
        assert np.allclose([float(r[1]) for r in local[1:]], [float(r[1]) for r in remote[1:]], atol=1e-6)
        local_rejected = output.with_name("out.rejected.csv")
        expected = rejected_rows(ctx, name, served) if outcome.manifest["rows"]["rejected"] else []
        listed = (
            [(int(r), reason) for r, reason in _read(local_rejected.read_bytes())[1:]] if expected else []
        )
        assert listed == expected
