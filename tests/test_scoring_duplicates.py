"""Repeated client_ids (SCORING_DUPLICATE_IDS): counted, rejected row by row, or the file refused;
the same whether the file is scored whole or fanned out over shards, duplicates across shards too.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from functions.scoring.context import ScoringContext
from functions.scoring.job import score_input, score_shard_message
from lake.contract import PREDICTIONS_CONTAINER
from lake.paths import OutputPaths
from tests.scoring_support import (
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
ROWS = 600
# row -> id: "A" first at row 20, again at 450 and 460 (other shards); "B" twice inside one shard;
# "C" at 300, again at 301 (same shard) and 590 (another); "D" at 10, then twice in one later
# shard (455, 457: inside that shard 457 repeats 455, in the file both repeat row 10); "E" on a
# row rejected for its age (50), so its first *scored* occurrence is row 500: not a duplicate.
IDS = {20: "A", 450: "A", 460: "A", 470: "B", 472: "B", 300: "C", 301: "C", 590: "C", 10: "D",
       455: "D", 457: "D", 50: "E", 500: "E"}  # fmt: skip
REPEATS = {301: 300, 450: 20, 455: 10, 457: 10, 460: 20, 472: 470, 590: 300}  # row -> row it repeats


def _file() -> bytes:
    frame = bank_frame(ROWS).astype(object)
    for row, value in IDS.items():
        frame.loc[row - 1, "client_id"] = value
    frame.loc[49, "age"] = "x"
    return to_csv(frame)


def _whole(azurite, policy: str) -> ScoringContext:
    return context(azurite.connection_string, SCORING_DUPLICATE_IDS=policy, SCORING_CHUNK_ROWS="25")


def _fanned(azurite, policy: str) -> ScoringContext:
    return context(
        azurite.connection_string,
        SCORING_DUPLICATE_IDS=policy,
        SCORING_FANOUT_BYTES="20KiB",
        SCORING_SHARD_BYTES="8KiB",  # ~100 rows a shard
        SCORING_QUEUE=unique("dup-shards"),
        SCORING_CHUNK_ROWS="25",
    )


def _drain(ctx: ScoringContext) -> list[str]:
    """Deliver shard messages (the ones the shards send too) until the queue is empty; statuses."""
    statuses = []
    while messages := list(ctx.queue.receive_messages(max_messages=32)):
        for message in messages:
            statuses.append(score_shard_message(ctx, message.content).status)
            ctx.queue.delete_message(message)
    return statuses


def _manifest(ctx: ScoringContext, name: str, version: str) -> dict:
    return json.loads(read_blob(ctx, PREDICTIONS_CONTAINER, OutputPaths(name, version).manifest))


def _examples(rows: list[int]) -> list[dict[str, int]]:
    return [{"row": row, "first_row": REPEATS[row]} for row in rows]


def test_keep_scores_every_row_and_counts_the_repeats(azurite, served: str) -> None:
    ctx = _whole(azurite, "keep")
    name = unique("dup-keep")
    outcome = score_input(ctx, upload(ctx, name, _file()))
    assert outcome.status == "scored", outcome
    manifest = outcome.manifest
    assert manifest["duplicate_ids"] == {
        "policy": "keep",
        "count": 7,
        "examples": _examples([301, 450, 455, 457, 460]),
    }
    assert manifest["rows"] == {"in": ROWS, "scored": ROWS - 1, "rejected": 1, "blank_lines": 0}
    assert predictions(ctx, name, served)["client_id"].tolist().count("A") == 3


def test_reject_rows_keeps_the_first_scored_occurrence(azurite, served: str) -> None:
    ctx = _whole(azurite, "reject_rows")
    name = unique("dup-rows")
    outcome = score_input(ctx, upload(ctx, name, _file()))
    assert outcome.status == "scored", outcome
    expected = {row: f"client_id: duplicate of row {first}" for row, first in REPEATS.items()}
    assert dict(rejected_rows(ctx, name, served)) == {**expected, 50: "age: 'x' is not a number"}
    scored = predictions(ctx, name, served)
    assert scored["client_id"].is_unique and "E" in scored["client_id"].tolist()  # row 500 scored
    assert outcome.manifest["duplicate_ids"]["count"] == 7
    assert outcome.manifest["rows"]["rejected"] == 8


def test_reject_file_refuses_the_file_naming_the_first_repeat(azurite, served: str) -> None:
    ctx = _whole(azurite, "reject_file")
    name = unique("dup-file")
    client = upload(ctx, name, _file())
    assert score_input(ctx, client).status == "rejected"
    error, _ = rejection(ctx, name, client.get_blob_properties().etag)
    assert error["code"] == "duplicate_ids"
    assert "row 301 has the same client_id as row 300" in error["message"]
    assert error["details"] == {"row": 301, "first_row": 300}
    assert names_under(ctx, PREDICTIONS_CONTAINER, f"{name}/") == []


def test_rows_keyed_by_row_number_have_no_duplicates(azurite, served: str) -> None:
    ctx = _whole(azurite, "reject_file")
    name = unique("dup-noid")
    outcome = score_input(ctx, upload(ctx, name, to_csv(bank_frame(40).drop(columns=["client_id"]))))
    assert outcome.status == "scored"
    assert outcome.manifest["duplicate_ids"] == {"policy": None, "count": 0, "examples": []}


@pytest.mark.parametrize("policy", ["keep", "reject_rows", "reject_file"])
def test_a_fanned_out_file_gets_exactly_what_a_whole_file_gets(azurite, served: str, policy: str) -> None:
    data = _file()
    whole, fanned = _whole(azurite, policy), _fanned(azurite, policy)
    whole_name, fanned_name = unique("dup-whole"), unique("dup-fanned")
    whole_outcome = score_input(whole, upload(whole, whole_name, data))
    client = upload(fanned, fanned_name, data)
    assert score_input(fanned, client).status == "fanned_out"
    statuses = _drain(fanned)
    assert statuses[-1] == whole_outcome.status, statuses

    if policy == "reject_file":
        whole_error, _ = rejection(
            whole, whole_name, whole.input_client(f"{whole_name}.csv").get_blob_properties().etag
        )
        fanned_error, _ = rejection(fanned, fanned_name, client.get_blob_properties().etag)
        assert (fanned_error["code"], fanned_error["message"], fanned_error["details"]) == (
            whole_error["code"], whole_error["message"], whole_error["details"])  # fmt: skip
        assert names_under(fanned, PREDICTIONS_CONTAINER, f"{fanned_name}/") == []
        return
    assert rejected_rows(fanned, fanned_name, served) == rejected_rows(whole, whole_name, served)
    columns = ["client_id", "probability", "decision"]
    pd.testing.assert_frame_equal(
        predictions(fanned, fanned_name, served)[columns], predictions(whole, whole_name, served)[columns]
    )
    fanned_manifest, whole_manifest = _manifest(fanned, fanned_name, served), whole_outcome.manifest
    assert fanned_manifest["mode"] == "fanout" and fanned_manifest["shards"] >= 5
    if policy == "reject_rows":  # the shards holding later occurrences were scored a second time
        assert len(statuses) > fanned_manifest["shards"]
    for key in ("rows", "duplicate_ids", "unseen_categories", "to_call"):
        assert fanned_manifest[key] == whole_manifest[key], key
    assert names_under(fanned, PREDICTIONS_CONTAINER, f"{fanned_name}/{served}/_shards/") == []
