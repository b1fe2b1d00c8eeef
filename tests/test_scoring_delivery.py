"""At-least-once delivery: duplicates, crashes and re-runs end with exactly one complete output.

Real Azurite, real model; failures are injected where the platform can really fail (a crash
between two writes, a storage error, an input replaced mid-read).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator

import pytest
from azure.core.exceptions import ServiceResponseError

import functions.scoring.single as single
import functions.scoring.source as source_module
from functions.scoring.context import ScoringContext
from functions.scoring.errors import ModelUnavailableError
from functions.scoring.job import score_input
from lake.contract import MODELS_CONTAINER, MONITORING_CONTAINER, PREDICTIONS_CONTAINER, REJECTED_CONTAINER
from lake.paths import OutputPaths
from model.registry import BlobStore, Registry
from tests.scoring_support import (
    bank_csv,
    bank_frame,
    context,
    names_under,
    predictions,
    read_blob,
    serve_model,
    to_csv,
    unique,
    upload,
)

pytestmark = pytest.mark.integration
MODEL = "bank-marketing-delivery"  # a model name of its own: these tests move its dev stage


@pytest.fixture(scope="module")
def served(blob_service, models) -> str:
    return serve_model(blob_service, models.good, MODEL)


@pytest.fixture
def ctx(azurite, served) -> ScoringContext:
    return context(azurite.connection_string, MODEL_NAME=MODEL, SCORING_CHUNK_ROWS="5000")


def _output_files(ctx: ScoringContext, name: str) -> list[str]:
    return names_under(ctx, PREDICTIONS_CONTAINER, f"{name}/")


def _assert_complete(ctx: ScoringContext, name: str, version: str, rows: int) -> dict:
    paths = OutputPaths(name, version)
    manifest = json.loads(read_blob(ctx, PREDICTIONS_CONTAINER, paths.manifest))
    output = read_blob(ctx, PREDICTIONS_CONTAINER, paths.predictions)
    assert manifest["output"]["sha256"] == hashlib.sha256(output).hexdigest()
    assert manifest["rows"]["scored"] == rows == len(predictions(ctx, name, version))
    return manifest


def test_duplicate_trigger_scores_once(ctx: ScoringContext, served: str) -> None:
    name = unique("dup")
    client = upload(ctx, name, bank_csv(50))
    first = score_input(ctx, client)
    second = score_input(ctx, client)
    assert (first.status, second.status) == ("scored", "duplicate")
    assert _output_files(ctx, name) == [f"{name}/{served}/_manifest.json", f"{name}/{served}/predictions.csv"]
    manifest = _assert_complete(ctx, name, served, 50)
    assert manifest == first.manifest
    drift = names_under(ctx, MONITORING_CONTAINER, f"{MODEL}/drift/")
    assert any(path.endswith(f"/{name}.json") for path in drift)


def test_concurrent_duplicates_publish_one_output(ctx: ScoringContext, azurite, served: str) -> None:
    name = unique("race")
    client = upload(ctx, name, bank_csv(3000))
    # Two invocations, each with its own clients, as two host instances would have.
    contexts = [ctx, context(azurite.connection_string, MODEL_NAME=MODEL)]
    statuses: list[str] = []
    barrier = threading.Barrier(2)

    def invoke(own: ScoringContext) -> None:
        barrier.wait()
        statuses.append(
            score_input(own, own.service.get_blob_client(client.container_name, client.blob_name)).status
        )

    threads = [threading.Thread(target=invoke, args=(c,)) for c in contexts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == ["duplicate", "scored"]
    _assert_complete(ctx, name, served, 3000)
    assert len(_output_files(ctx, name)) == 2


def test_crash_between_predictions_and_manifest_is_finished_by_the_rerun(
    ctx: ScoringContext, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique("crash")
    client = upload(ctx, name, bank_csv(120))

    def crash(*_args: object) -> None:
        raise SystemExit("the worker died after committing predictions.csv")

    with monkeypatch.context() as patch:
        patch.setattr(single, "finalize", crash)
        with pytest.raises(SystemExit):
            score_input(ctx, client)
    # Predictions are committed but, without a manifest, incomplete by contract.
    assert _output_files(ctx, name) == [f"{name}/{served}/predictions.csv"]

    rerun = score_input(ctx, client)
    assert rerun.status == "recovered"
    manifest = _assert_complete(ctx, name, served, 120)
    assert rerun.manifest == manifest
    assert score_input(ctx, client).status == "duplicate"


def test_transient_storage_error_raises_and_leaves_nothing(
    ctx: ScoringContext, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique("transient")
    client = upload(ctx, name, bank_csv(60_000))  # ~5 MB: two download chunks
    real = source_module.download_chunks

    def flaky(*args: object, **kwargs: object) -> Iterator[bytes]:
        chunks = real(*args, **kwargs)  # type: ignore[arg-type]
        yield next(chunks)
        raise ServiceResponseError("connection reset by peer (injected)")

    with monkeypatch.context() as patch:
        patch.setattr(single, "download_chunks", flaky)
        with pytest.raises(ServiceResponseError):  # raised: the host retries the invocation
            score_input(ctx, client)
    assert _output_files(ctx, name) == []
    assert names_under(ctx, REJECTED_CONTAINER, f"{name}/") == []

    assert score_input(ctx, client).status == "scored"  # the retry
    _assert_complete(ctx, name, served, 60_000)


def test_input_replaced_while_being_read_is_superseded(
    ctx: ScoringContext, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique("replaced")
    client = upload(ctx, name, bank_csv(60_000))
    real = source_module.download_chunks

    def replace_after_first_chunk(*args: object, **kwargs: object) -> Iterator[bytes]:
        chunks = real(*args, **kwargs)  # type: ignore[arg-type]
        yield next(chunks)
        client.upload_blob(bank_csv(10), overwrite=True)
        yield from chunks

    with monkeypatch.context() as patch:
        patch.setattr(single, "download_chunks", replace_after_first_chunk)
        outcome = score_input(ctx, client)
    assert outcome.status == "superseded" and "changed while being read" in outcome.detail
    assert _output_files(ctx, name) == []
    assert score_input(ctx, client).status == "scored"  # the new version, on its own trigger
    _assert_complete(ctx, name, served, 10)


def test_new_version_of_an_input_replaces_its_output(ctx: ScoringContext, served: str) -> None:
    name = unique("reupload")
    lines = bank_csv(30).split(b"\r\n")
    lines[4] = lines[4].replace(b",", b",x", 1)  # row 4: age is not a number
    client = upload(ctx, name, b"\r\n".join(lines))
    first = score_input(ctx, client)
    assert first.status == "scored" and first.manifest["rows"]["rejected"] == 1
    assert f"{name}/{served}/rejected_rows.csv" in _output_files(ctx, name)

    upload(ctx, name, bank_csv(45))
    second = score_input(ctx, client)
    assert second.status == "scored"
    manifest = _assert_complete(ctx, name, served, 45)
    assert manifest["input"]["etag"] == client.get_blob_properties().etag != first.manifest["input"]["etag"]
    assert _output_files(ctx, name) == [f"{name}/{served}/_manifest.json", f"{name}/{served}/predictions.csv"]


def test_rejected_file_fixed_and_uploaded_again_is_scored(ctx: ScoringContext, served: str) -> None:
    name = unique("fixed")
    client = upload(ctx, name, to_csv(bank_frame(20), sep=";"))
    assert score_input(ctx, client).status == "rejected"
    upload(ctx, name, bank_csv(20))
    assert score_input(ctx, client).status == "scored"
    _assert_complete(ctx, name, served, 20)


def test_no_model_at_the_stage_raises_for_a_retry(azurite, served: str) -> None:
    ctx = context(azurite.connection_string, MODEL_NAME=MODEL, MODEL_STAGE="prod")
    client = upload(ctx, unique("nomodel"), bank_csv(5))
    with pytest.raises(
        ModelUnavailableError, match=r"no model to score with: stage prod .* promote VERSION prod"
    ):
        score_input(ctx, client)


def test_promotion_takes_effect_at_the_next_input(ctx: ScoringContext, served: str, models) -> None:
    registry = Registry(BlobStore(ctx.service.get_container_client(MODELS_CONTAINER)))
    before = score_input(ctx, upload(ctx, unique("before"), bank_csv(5)))
    newer = registry.register(models.bad, MODEL)
    registry.promote(MODEL, newer, "dev", override_reason="test: the next input uses it")
    try:
        after = score_input(ctx, upload(ctx, unique("after"), bank_csv(5)))
    finally:
        registry.promote(MODEL, served, "dev", override_reason="test: restore")
    assert before.manifest["model"]["version"] == served
    assert after.manifest["model"]["version"] == newer


def test_conditional_commit_lets_exactly_one_of_two_racers_win(ctx: ScoringContext, served: str) -> None:
    """The loser's commit fails its precondition and it adopts the winner's output."""
    from azure.core import MatchConditions

    from functions.blob_io import StagedBlobWriter
    from functions.scoring.outputs import finalize, publish

    name = unique("racers")
    client = upload(ctx, name, bank_csv(5))
    etag = client.get_blob_properties().etag
    paths = OutputPaths(name, served)
    container = ctx.predictions
    draft = {"input": {"etag": etag}, "output": {}, "rows": {"scored": 1}}
    winner, loser = (StagedBlobWriter(container.get_blob_client(paths.predictions)) for _ in range(2))
    winner.write(b"client_id,probability\r\n1,0.5\r\n")
    loser.write(b"client_id,probability\r\n1,0.25\r\n")
    commits: list[dict] = []

    class LoserAfterTheWinner:
        sha256 = loser.sha256

        def commit(self, content_type: str, metadata: dict, **conditions: object) -> None:
            # The winner publishes between the loser's checks and its commit.
            assert publish(container, paths, etag, draft, winner, None) is True
            commits.append(conditions)
            loser.commit(content_type, metadata, **conditions)

    assert publish(container, paths, etag, draft, LoserAfterTheWinner(), None) is False
    assert commits == [{"match_condition": MatchConditions.IfMissing}]
    assert read_blob(ctx, PREDICTIONS_CONTAINER, paths.predictions).endswith(b"1,0.5\r\n")
    assert finalize(container, paths, etag)["output"]["sha256"] == winner.sha256


def test_a_stale_version_never_replaces_the_output_of_a_newer_one(
    ctx: ScoringContext, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique("stale")
    client = upload(ctx, name, bank_csv(20))
    real = single.publish
    newer: list[str] = []

    def newer_version_lands_first(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not newer:  # while version 1 is about to publish, version 2 arrives and is scored
            newer.append(client.upload_blob(bank_csv(30), overwrite=True)["etag"])
            assert score_input(ctx, client).status == "scored"
        return real(*args, **kwargs)

    monkeypatch.setattr(single, "publish", newer_version_lands_first)
    stale = score_input(ctx, client)
    assert stale.status == "superseded" and "replaced by a newer version" in stale.detail
    manifest = _assert_complete(ctx, name, served, 30)
    assert manifest["input"]["etag"] == newer[0]
