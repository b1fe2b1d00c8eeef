"""`python -m model score` reads a local file exactly as the blob trigger reads a blob: the same
bytes get the same rejection code and message, the same rejected rows, the same predictions.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from functions.scoring.context import ScoringContext
from functions.scoring.job import score_input
from model.cli import main
from tests.scoring_support import (
    bank_csv,
    bank_frame,
    context,
    predictions,
    rejected_rows,
    rejection,
    to_csv,
    unique,
    upload,
)
from tests.test_scoring_corpus import REJECTED, SCORED

pytestmark = pytest.mark.integration
AGREE_REJECTED = [
    "CR-only line ends (old Mac)", "bare CR in the header", "mixed line ends with a bare CR",
    "NUL byte in a late row", "bad UTF-8 (latin-1 text)", "bad UTF-8 in the header", "binary garbage",
    "unterminated quote", "huge line", "duplicate columns", "missing column", "wrong delimiter",
    "header only", "empty file", "all rows bad", "not CSV (JSON)",
]  # fmt: skip
AGREE_SCORED = [
    "extra fields in rows", "quoted newlines", "quote inside an unquoted field",
    "extra field in the first row", "blank lines", "missing values and id", "LF line ends",
]  # fmt: skip


@pytest.fixture(scope="module")
def ctx(azurite, served) -> ScoringContext:
    return context(azurite.connection_string)


def _score(models, tmp_path: Path, data: bytes, *flags: str) -> tuple[int, Path]:
    source = tmp_path / "input.csv"
    source.write_bytes(data)
    output = tmp_path / "out.csv"
    code = main(
        ["score", "--model", str(models.good), "--input", str(source), "--output", str(output), *flags]
    )
    return code, output


def test_cr_line_ends_are_refused_offline_as_by_the_trigger(models, tmp_path: Path, capsys) -> None:
    code, output = _score(models, tmp_path, to_csv(bank_frame(40), eol="\r"))
    assert code == 3
    assert (
        "rejected (cr_line_endings): the header has a carriage return (CR) at byte" in capsys.readouterr().err
    )
    error = json.loads(output.with_name("out.csv.error.json").read_text())
    assert (
        error["code"] == "cr_line_endings"
        and error["input"]["bytes"] == (tmp_path / "input.csv").stat().st_size
    )
    assert set(error) == {
        "format_version",
        "input",
        "code",
        "message",
        "details",
        "model",
        "copy",
        "rejected_at",
    }
    assert not output.exists() and not output.with_name("out.csv.partial").exists()


def test_a_nul_byte_is_refused_offline_naming_its_row(models, tmp_path: Path, capsys) -> None:
    frame = bank_frame(40).astype(object)
    frame.loc[34, "job"] = "admin.\x00"
    code, output = _score(models, tmp_path, to_csv(frame))
    assert code == 3 and "rejected (binary)" in capsys.readouterr().err
    assert json.loads(output.with_name("out.csv.error.json").read_text())["details"]["row"] == 35


def test_the_bank_file_delimiter_is_sniffed_or_given(models, tmp_path: Path) -> None:
    semicolon = to_csv(bank_frame(30), sep=";")
    code, output = _score(models, tmp_path, semicolon)
    assert code == 0 and len(pd.read_csv(output)) == 30
    code, output = _score(models, tmp_path, semicolon, "--delimiter", ",")
    assert code == 3
    assert json.loads(output.with_name("out.csv.error.json").read_text())["code"] == "wrong_delimiter"


def test_a_later_clean_run_replaces_stale_side_files(models, tmp_path: Path) -> None:
    frame = bank_frame(40).astype(object)
    frame.loc[3, "age"] = "old"
    assert _score(models, tmp_path, to_csv(frame))[0] == 0
    assert (tmp_path / "out.rejected.csv").exists()
    assert _score(models, tmp_path, b"")[0] == 3
    assert (tmp_path / "out.csv.error.json").exists()
    code, output = _score(models, tmp_path, bank_csv(40))
    assert code == 0 and len(pd.read_csv(output)) == 40
    assert not (tmp_path / "out.rejected.csv").exists() and not (tmp_path / "out.csv.error.json").exists()


@pytest.mark.parametrize("case", AGREE_REJECTED)
def test_trigger_and_cli_refuse_the_same_bytes_the_same_way(
    ctx: ScoringContext, models, tmp_path: Path, case: str
) -> None:
    data = REJECTED[case][0]()
    name = unique("agree")
    client = upload(ctx, name, data)
    assert score_input(ctx, client).status == "rejected"
    blob_error, _ = rejection(ctx, name, client.get_blob_properties().etag)
    code, output = _score(models, tmp_path, data, "--delimiter", ",", "--chunk-rows", "7")
    assert code == 3
    local_error = json.loads(output.with_name("out.csv.error.json").read_text())
    for key in ("format_version", "code", "message", "details"):
        assert local_error[key] == blob_error[key], key
    assert local_error["input"]["bytes"] == blob_error["input"]["bytes"] == len(data)


@pytest.mark.parametrize("case", AGREE_SCORED)
def test_trigger_and_cli_score_the_same_bytes_the_same_way(
    ctx: ScoringContext, served: str, models, tmp_path: Path, case: str
) -> None:
    data = SCORED[case][0]()
    name = unique("agree")
    assert score_input(ctx, upload(ctx, name, data)).status == "scored"
    code, output = _score(models, tmp_path, data, "--delimiter", ",", "--chunk-rows", "7")
    assert code == 0
    local = pd.read_csv(output, dtype={"client_id": str})
    columns = ["client_id", "probability", "decision"]
    pd.testing.assert_frame_equal(local[columns], predictions(ctx, name, served)[columns])
    local_rejected = output.with_name("out.rejected.csv")
    blob_rejected = rejected_rows(ctx, name, served) if SCORED[case][1].rejected else []
    rows = pd.read_csv(local_rejected) if local_rejected.exists() else pd.DataFrame(columns=["row", "reason"])
    assert list(zip(rows["row"], rows["reason"], strict=True)) == blob_rejected
    assert local_rejected.exists() == bool(blob_rejected)
    assert (
        io.BytesIO(output.read_bytes())
        .read()
        .startswith(b"client_id,probability,decision,model_name,model_version")
    )
