"""Fan-out on Azurite's real queue: tiny shards, delivered out of order and twice, assembled once."""

from __future__ import annotations

import io
import json
import random

import pandas as pd
import pytest

import functions.scoring.fanout as fanout
from functions.scoring.context import ScoringContext
from functions.scoring.job import score_input, score_shard_message
from lake.contract import PREDICTIONS_CONTAINER, REJECTED_CONTAINER
from lake.paths import OutputPaths
from model.csvinput.errors import FileRejected
from tests.scoring_support import (
    bank_frame,
    context,
    names_under,
    predictions,
    read_blob,
    rejected_rows,
    to_csv,
    unique,
    upload,
)

pytestmark = pytest.mark.integration
ROWS = 600


@pytest.fixture
def ctx(azurite, served) -> ScoringContext:
    # Each test its own queue; files over 20 KiB fan out in shards of about 8 KiB (~100 rows).
    return context(
        azurite.connection_string,
        SCORING_FANOUT_BYTES="20KiB",
        SCORING_SHARD_BYTES="8KiB",
        SCORING_QUEUE=unique("shards"),
        SCORING_CHUNK_ROWS="25",
    )


def _awkward_file() -> bytes:
    """Bank rows with bad rows and quoted line breaks scattered over the shards."""
    frame = bank_frame(ROWS).astype(object)
    for row in range(3, ROWS, 97):  # a quoted field with line breaks, every 97 rows
        frame.loc[row - 1, "job"] = "admin.\r\nwith\r\nline breaks"
    for row in (50, 150, 333, 599):
        frame.loc[row - 1, "age"] = f"age-{row}"
    return to_csv(frame)


def _messages(ctx: ScoringContext) -> list[str]:
    messages = list(ctx.queue.receive_messages(max_messages=32))
    for message in messages:
        ctx.queue.delete_message(message)
    return [m.content for m in messages]


def test_shards_out_of_order_and_duplicated_assemble_exactly_once(
    azurite, ctx: ScoringContext, served: str
) -> None:
    data = _awkward_file()
    name = unique("fan")
    client = upload(ctx, name, data)

    planned = score_input(ctx, client)
    assert planned.status == "fanned_out"
    tasks = _messages(ctx)
    shards = json.loads(tasks[0])["shards"]
    assert len(tasks) == shards >= 5
    assert names_under(ctx, PREDICTIONS_CONTAINER, f"{name}/{served}/predictions.csv") == []

    order = tasks[:]
    random.Random(7).shuffle(order)
    statuses = [score_shard_message(ctx, body).status for body in [order[0], *order, order[1]]]
    # The first message delivered twice: scored once. The last new one assembles; later ones find it done.
    assert statuses.count("scored") == 1
    assert statuses[-1] == "duplicate" and statuses.index("scored") == shards

    # The same bytes scored in one piece give the same rows, numbers and reasons.
    whole = context(azurite.connection_string, SCORING_CHUNK_ROWS="25")
    whole_name = unique("whole")
    assert score_input(whole, upload(whole, whole_name, data)).status == "scored"
    columns = ["client_id", "probability", "decision"]
    pd.testing.assert_frame_equal(
        predictions(ctx, name, served)[columns], predictions(whole, whole_name, served)[columns]
    )
    assert rejected_rows(ctx, name, served) == rejected_rows(whole, whole_name, served)
    assert [row for row, _ in rejected_rows(ctx, name, served)] == [50, 150, 333, 599]

    paths = OutputPaths(name, served)
    manifest = json.loads(read_blob(ctx, PREDICTIONS_CONTAINER, paths.manifest))
    assert manifest["mode"] == "fanout" and manifest["shards"] == shards
    assert manifest["rows"] == {"in": ROWS, "scored": ROWS - 4, "rejected": 4, "blank_lines": 0}
    assert manifest["unseen_categories"] == {"job": len(range(3, ROWS, 97))}
    whole_manifest = json.loads(
        read_blob(whole, PREDICTIONS_CONTAINER, OutputPaths(whole_name, served).manifest)
    )
    assert manifest["input"]["sha256"] == whole_manifest["input"]["sha256"]
    assert manifest["expected_positives"] == pytest.approx(whole_manifest["expected_positives"], abs=1e-3)
    # Work files are gone; only the output remains.
    assert names_under(ctx, PREDICTIONS_CONTAINER, f"{name}/") == [
        f"{name}/{served}/_manifest.json",
        f"{name}/{served}/predictions.csv",
        f"{name}/{served}/rejected_rows.csv",
    ]
    assert score_input(ctx, client).status == "duplicate"
    assert _messages(ctx) == []

    # The monitoring documents of the shards, merged, are exactly the whole file's.
    def monitoring_of(kind: str, scored: ScoringContext, manifest: dict) -> dict:
        container, _, path = manifest["output"][kind].partition("/")
        document = json.loads(read_blob(scored, container, path))
        return {k: v for k, v in document.items() if k not in ("input", "scored_at", "notes")}

    for kind in ("drift", "estimate"):
        assert monitoring_of(kind, ctx, manifest) == monitoring_of(kind, whole, whole_manifest), kind
    estimate = monitoring_of("estimate", ctx, manifest)
    assert estimate["batch"] == {"rows_in": ROWS, "rows_scored": ROWS - 4, "rows_rejected": 4}
    assert estimate["rows"] == ROWS - 4 and estimate["subscribers"]["expected"] == pytest.approx(
        manifest["expected_positives"], abs=1e-3
    )


def test_duplicate_trigger_does_not_plan_twice(ctx: ScoringContext) -> None:
    client = upload(ctx, unique("plan"), to_csv(bank_frame(ROWS)))
    assert score_input(ctx, client).status == "fanned_out"
    first = _messages(ctx)
    second = score_input(ctx, client)
    assert second.status == "duplicate" and "already planned" in second.detail
    assert first and _messages(ctx) == []


def test_bad_header_is_rejected_before_any_message(ctx: ScoringContext) -> None:
    name = unique("badheader")
    client = upload(ctx, name, to_csv(bank_frame(ROWS).drop(columns=["loan"])))
    assert score_input(ctx, client).status == "rejected"
    assert _messages(ctx) == []
    assert names_under(ctx, REJECTED_CONTAINER, f"{name}/")


def test_bad_bytes_anywhere_are_found_by_the_plan_before_any_message(ctx: ScoringContext) -> None:
    name = unique("planbytes")
    data = to_csv(bank_frame(ROWS)) + b"601,40,admin.\x00,married\r\n"
    client = upload(ctx, name, data)
    outcome = score_input(ctx, client)
    nul = data.index(b"\x00")
    assert outcome.status == "rejected" and f"binary: byte {nul} is a NUL byte" in outcome.detail
    assert _messages(ctx) == []
    assert names_under(ctx, PREDICTIONS_CONTAINER, f"{name}/") == []


def test_a_shard_of_rejected_rows_only_leaves_no_gap(ctx: ScoringContext, served: str) -> None:
    name = unique("badshard")
    frame = bank_frame(ROWS).astype(object)
    frame.loc[:149, "age"] = "n/a"  # the first shards (~100 rows each) have nothing to score
    score_input(ctx, upload(ctx, name, to_csv(frame)))
    outcomes = [score_shard_message(ctx, body) for body in _messages(ctx)]
    assert outcomes[-1].status == "scored"
    assert predictions(ctx, name, served)["client_id"].astype(int).tolist() == list(range(151, ROWS + 1))
    assert [row for row, _ in rejected_rows(ctx, name, served)] == list(range(1, 151))


def test_all_rows_bad_in_every_shard_rejects_the_file(ctx: ScoringContext, served: str) -> None:
    name = unique("allbad")
    data = to_csv(bank_frame(ROWS).assign(age="unknown"))
    client = upload(ctx, name, data)
    score_input(ctx, client)
    outcomes = [score_shard_message(ctx, body) for body in _messages(ctx)]
    assert outcomes[-1].status == "rejected" and "no_valid_rows" in outcomes[-1].detail
    assert names_under(ctx, PREDICTIONS_CONTAINER, f"{name}/") == []  # no output, no work files
    (error_path,) = [p for p in names_under(ctx, REJECTED_CONTAINER, f"{name}/") if p.endswith("error.json")]
    assert json.loads(read_blob(ctx, REJECTED_CONTAINER, error_path))["code"] == "no_valid_rows"


def test_a_shard_that_finds_a_file_level_problem_rejects_the_file(
    ctx: ScoringContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique("shardbad")
    client = upload(ctx, name, to_csv(bank_frame(ROWS)))
    score_input(ctx, client)
    real = fanout.score_stream
    refused: list[int] = []

    def refuse_second_shard(*args, **kwargs):  # type: ignore[no-untyped-def]
        first_row = args[
            7
        ]  # score_stream(stream, header, batch, predictions, rejected, drift, chunk_rows, first_row)
        if first_row > 1 and not refused:
            refused.append(first_row)
            raise FileRejected("malformed_csv", "the file is not valid CSV: injected")
        return real(*args, **kwargs)

    monkeypatch.setattr(fanout, "score_stream", refuse_second_shard)
    outcomes = [score_shard_message(ctx, body) for body in _messages(ctx)]
    assert outcomes[-1].status == "rejected" and "malformed_csv" in outcomes[-1].detail
    assert names_under(ctx, PREDICTIONS_CONTAINER, f"{name}/") == []


def test_crash_after_assembly_commit_is_finished_by_a_redelivered_message(
    ctx: ScoringContext, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique("assemblecrash")
    client = upload(ctx, name, to_csv(bank_frame(ROWS)))
    score_input(ctx, client)
    bodies = _messages(ctx)
    for body in bodies[:-1]:
        assert score_shard_message(ctx, body).status == "shard_scored"

    def crash(*_args: object) -> None:
        raise SystemExit("died between commit and manifest")

    with monkeypatch.context() as patch:
        patch.setattr(fanout, "finalize", crash)
        with pytest.raises(SystemExit):
            score_shard_message(ctx, bodies[-1])
    assert f"{name}/{served}/_manifest.json" not in names_under(ctx, PREDICTIONS_CONTAINER, f"{name}/")

    redelivered = score_shard_message(ctx, bodies[-1])  # the queue delivers the message again
    assert redelivered.status in ("duplicate", "recovered")
    manifest = json.loads(read_blob(ctx, PREDICTIONS_CONTAINER, OutputPaths(name, served).manifest))
    assert manifest["rows"]["scored"] == ROWS
    assert names_under(ctx, PREDICTIONS_CONTAINER, f"{name}/") == [
        f"{name}/{served}/_manifest.json",
        f"{name}/{served}/predictions.csv",
    ]
    output = pd.read_csv(
        io.BytesIO(read_blob(ctx, PREDICTIONS_CONTAINER, OutputPaths(name, served).predictions))
    )
    assert output["client_id"].tolist() == list(range(1, ROWS + 1))


def test_a_malformed_message_is_dropped(ctx: ScoringContext) -> None:
    assert score_shard_message(ctx, b"{not json").status == "ignored"
    assert score_shard_message(ctx, json.dumps({"input": "../x.csv"})).status == "ignored"
