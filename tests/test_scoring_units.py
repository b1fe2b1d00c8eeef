"""The pure parts of batch scoring: record scanning, header checks, encoding, drift, names, settings."""

from __future__ import annotations

import io
import json
import random

import numpy as np
import pandas as pd
import pytest

from functions.settings import MIB, SettingsError, load_settings
from lake.paths import InvalidNameError, RejectedPaths, etag_key, input_name
from model.csvinput.encode import encode_predictions, encode_rejected
from model.csvinput.errors import FileRejected
from model.csvinput.header import parse_header
from model.csvinput.scan import RecordScanner
from model.drift import DriftCounts, psi
from model.reference import build_reference
from model.schema import FEATURE_SETS, InputSchema, prepare_features
from tests.scoring_support import bank_frame, to_csv

TRICKY = (
    b'id,a,b\r\n1,"x\r\ny",2\r\n\r\n2,"say ""hi""\nthere",3\n3,plain,4\r\n   \r\n'
    b'4,"",5\r\n5,"a,b",6\r\n6,last,7'
)


def _scan(data: bytes, chunk: int, cut_every: int | None = None, limit: int = 1 << 20) -> RecordScanner:
    scanner = RecordScanner(limit, cut_every)
    for start in range(0, len(data), chunk):
        scanner.feed(data[start : start + chunk])
    scanner.finish()
    return scanner


def _pandas_records(data: bytes) -> int:
    frame = pd.read_csv(io.BytesIO(data), skip_blank_lines=False, dtype=str, keep_default_na=False)
    return len(frame)


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8, 13, 1000])
def test_scanner_counts_records_as_the_parser_does_whatever_the_chunking(chunk: int) -> None:
    scanner = _scan(TRICKY, chunk)
    assert scanner.records - 1 == _pandas_records(TRICKY) == 8  # blank and whitespace lines included
    assert scanner.header_end == len(b"id,a,b\r\n")


def test_cuts_fall_on_record_boundaries_so_shards_parse_to_the_whole() -> None:
    frame = bank_frame(300).astype(object)
    rng = random.Random(3)
    for row in rng.sample(range(300), 40):
        frame.loc[row, "job"] = rng.choice(['with "quotes"', "line\r\nbreak", "comma, inside", "\n"])
    data = to_csv(frame)
    whole = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    for cut_every in (1, 7, 50, 333, 2000):
        for chunk in (17, 4096):
            scanner = _scan(data, chunk, cut_every)
            starts = [scanner.header_end, *(c.offset for c in scanner.cuts if c.offset < len(data))]
            ends = [*starts[1:], len(data)]
            header = data[: scanner.header_end]
            parts = [pd.read_csv(io.BytesIO(header + data[s:e]), dtype=str, keep_default_na=False)
                     for s, e in zip(starts, ends, strict=True)]  # fmt: skip
            pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
            first_rows = [1, *(c.first_row for c in scanner.cuts if c.offset < len(data))]
            assert first_rows == list(np.cumsum([0, *map(len, parts)])[:-1] + 1)


def test_multibyte_character_split_between_chunks_is_fine() -> None:
    data = "id,name\r\n1,Zoë\r\n2,Łukasz\r\n".encode()
    assert _scan(data, 1).records == 3


@pytest.mark.parametrize(
    ("data", "code", "says"),
    [
        (b"id\r\n1\r\n" + b"x" * 100, "record_too_long", "row 2 is longer than 64 bytes"),
        (b"h" * 100 + b"\r\n", "record_too_long", "the header is longer than 64 bytes"),
        (b'id,a\r\n1,"open\r\n2,b\r\n', "unterminated_quote", "opened in row 1"),
        (b"id,a\r\n1,\xc3", "not_utf8", "ends inside a multi-byte character"),
        (b"id,a\r\n1,\xff\r\n", "not_utf8", "invalid byte 0xff at byte 8"),
        (b"id,a\r\n1,\x00\r\n", "binary", "byte 8 is a NUL byte"),
    ],
)
def test_scanner_refuses_what_cannot_be_parsed_safely(data: bytes, code: str, says: str) -> None:
    with pytest.raises(FileRejected) as caught:
        _scan(data, 5, limit=64)
    assert caught.value.code == code and says in caught.value.message


def _schema() -> InputSchema:
    frame = prepare_features(bank_frame(500))
    return InputSchema.learn(frame, FEATURE_SETS["no_calendar"])


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (b"client_id;age;job;marital\r\n", "wrong_delimiter"),
        (b"client_id\tage\tjob\tmarital\r\n", "wrong_delimiter"),
        (b"\r\n", "empty_header"),
        (b"age,age\r\n", "duplicate_columns"),
        (b"client_id,age\r\n", "missing_columns"),
    ],
)
def test_header_checks(header: bytes, code: str) -> None:
    with pytest.raises(FileRejected) as caught:
        parse_header(header, _schema())
    assert caught.value.code == code


def test_header_with_bom_and_extra_columns_is_accepted() -> None:
    raw = b"\xef\xbb\xbf" + to_csv(bank_frame(1).assign(notes="x")).split(b"\r\n")[0] + b"\r\n"
    header = parse_header(raw, _schema())
    assert header.columns[0] == "client_id" and header.ignored == ("day", "month", "notes")


def test_predictions_are_unquoted_unless_a_value_needs_quotes() -> None:
    probabilities = np.array([0.1, 0.25, 1 / 3], dtype=np.float32)
    plain = encode_predictions(np.array(["1", "2", "3"], dtype=object), probabilities, 0.25, "m", "7",
                               "2026-11-22T02:00:00+00:00", "client_id")  # fmt: skip
    assert plain.split(b"\r\n")[:3] == [
        b"1,0.1,0,m,7,2026-11-22T02:00:00+00:00",
        b"2,0.25,1,m,7,2026-11-22T02:00:00+00:00",
        b"3,0.33333334,1,m,7,2026-11-22T02:00:00+00:00",  # float32's shortest round-trip text
    ]
    quoted = encode_predictions(np.array(["a,b"], dtype=object), probabilities[:1], 0.5, "m", "7", "t", "id")
    assert pd.read_csv(io.BytesIO(b"id,p,d,n,v,t\r\n" + quoted))["id"].tolist() == ["a,b"]
    assert encode_rejected([(3, 'age: "x" is not a number')]) == b'3,"age: ""x"" is not a number"\r\n'


# --------------------------------------------------------------------------------------------- drift


def _drift_fixture() -> tuple[dict, InputSchema, pd.DataFrame]:
    schema = _schema()
    features = prepare_features(bank_frame(4000))
    scores = np.random.default_rng(1).beta(1, 12, len(features))
    return build_reference(features, schema, scores), schema, features


def test_drift_is_quiet_on_the_reference_population_and_loud_on_a_shifted_one() -> None:
    reference, _, features = _drift_fixture()
    scores = np.random.default_rng(2).beta(1, 12, len(features))
    same = DriftCounts(reference)
    same.add(features, scores)
    summary = same.summary()
    assert summary["status"] == "ok" and summary["features"]["age"]["psi"] < 0.01

    shifted = features.copy()
    shifted["age"] = shifted["age"] + 25
    shifted["job"] = "astronaut"
    drifted = DriftCounts(reference)
    drifted.add(shifted, np.full(len(shifted), 0.9))
    summary = drifted.summary()
    assert summary["status"] == "alert"  # the scores drifted; two features of 14 are not the dataset
    assert {"age", "job"} <= set(summary["drifted_features"]) and summary["drifted"] is False
    assert summary["features"]["job"]["unseen"] == ["astronaut"]
    assert summary["scores"]["drifted"] is True and summary["scores"]["mean"] == pytest.approx(0.9)


def test_drift_counts_of_parts_add_up_to_the_whole_and_survive_json() -> None:
    reference, _, features = _drift_fixture()
    scores = np.linspace(0, 1, len(features))
    whole = DriftCounts(reference)
    whole.add(features, scores)
    merged = DriftCounts(reference)
    for part in np.array_split(np.arange(len(features)), 3):
        counts = DriftCounts(reference)
        counts.add(features.iloc[part], scores[part])
        merged.merge(DriftCounts.from_dict(reference, json.loads(json.dumps(counts.to_dict()))))
    assert merged.summary() == whole.summary()


def test_psi_of_identical_distributions_is_zero() -> None:
    assert psi({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}) == 0
    assert psi({"a": 0.9, "b": 0.1}, {"a": 0.1, "b": 0.9}) > 1


# ------------------------------------------------------------------------------------ names, settings


@pytest.mark.parametrize("blob", ["clients-2026-11-22.csv", "team/a/b_c=1.csv"])
def test_usable_names(blob: str) -> None:
    assert input_name(blob) == blob.removesuffix(".csv")


@pytest.mark.parametrize(
    "blob", ["../x.csv", "a//b.csv", "odd name.csv", "x.txt", ".hidden.csv", "a/./b.csv"]
)
def test_unusable_names(blob: str) -> None:
    with pytest.raises(InvalidNameError):
        input_name(blob)


def test_etags_become_safe_path_segments() -> None:
    assert etag_key('"0x8DC1A2B3C4D5E6F"') == "0x8DC1A2B3C4D5E6F"
    assert "/" not in etag_key('W/"odd/etag"')
    assert RejectedPaths("team/file", '"0x1"').copy == "team/file/0x1/file.csv"


def test_scoring_settings_parse_and_refuse_clearly() -> None:
    base = {"DataLake": "UseDevelopmentStorage=true", "DB_CONNECTION_STRING": "x"}
    scoring = load_settings(base).scoring
    assert (scoring.blob_source, scoring.fanout_bytes, scoring.queue) == (
        "EventGrid",
        256 * MIB,
        "scoring-shards",
    )
    assert scoring.duplicate_ids == "keep"
    rows = load_settings({**base, "SCORING_DUPLICATE_IDS": "reject_rows"}).scoring
    assert rows.duplicate_ids == "reject_rows"
    sized = load_settings({**base, "SCORING_SHARD_BYTES": "512KiB", "SCORING_MAX_BYTES": "2GB"}).scoring
    assert (sized.shard_bytes, sized.max_bytes) == (512 * 1024, 2048 * MIB)
    for key, value, says in [
        ("SCORING_BLOB_SOURCE", "Polling", "is not one of"),
        ("SCORING_QUEUE", "Scoring_Shards", "not a storage queue name"),
        ("SCORING_FANOUT_BYTES", "lots", "not a size"),
        ("SCORING_DUPLICATE_IDS", "drop", "not one of keep, reject_rows, reject_file"),
        ("MODEL_STAGE", "staging", "not one of dev, preprod, prod"),
    ]:
        with pytest.raises(SettingsError, match=f"{key}.*{says}"):
            load_settings({**base, key: value})


@pytest.mark.parametrize("chunks", [[b"id,a\r\n1,2\r\n"], [b"id,", b"a\r\n1,", b"2\r\n"]])
def test_header_is_found_whether_the_download_thread_is_ahead_or_behind(chunks: list[bytes]) -> None:
    import time

    from model.csvinput.stream import CheckedStream

    ahead = CheckedStream(iter(chunks), RecordScanner(1024))
    deadline = time.monotonic() + 10
    while ahead._queue.qsize() < min(len(chunks) + 1, 2) and time.monotonic() < deadline:
        time.sleep(0.005)  # let the download thread get ahead of the reader
    assert ahead.peek_header() == b"id,a\r\n"
    assert b"".join(iter(ahead.read, b"")) == b"".join(chunks)
    ahead.close()


def test_unseen_categories_are_counted_on_scored_rows_only() -> None:
    from model.schema import validate

    rows = bank_frame(3).astype(object)
    rows.loc[0, "job"] = "astronaut"
    rows.loc[1, "job"] = "astronaut"
    rows.loc[1, "marital"] = None  # rejected for another column: not an unseen-category row
    checked = validate(rows, _schema())
    assert checked.unseen == {"job": 1}
    assert checked.rejected == [(2, "marital: missing value")]


def test_a_name_that_differs_in_the_extension_case_says_how_to_rename_it() -> None:
    from devstack.triggers import literal_suffix, unmatched_reason

    with pytest.raises(InvalidNameError, match=r"ends with '.CSV', not '.csv' .*rename it to team/Upper.csv"):
        input_name("team/Upper.CSV")
    suffix = literal_suffix("scoring-input/{name}.csv")
    assert suffix == ".csv"
    assert [unmatched_reason(n, suffix) for n in ("a.CSV", "a.Csv", "notes.txt", "a.csv.gz")] == [
        "extension case", "extension case", "different extension", "different extension",
    ]  # fmt: skip
