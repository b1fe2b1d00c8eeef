"""Network faults under real scoring: score_input through a fault proxy in front of Azurite.

After every fault: either one complete output (predictions.csv + _manifest.json that agree with
the bytes, the same rows as a clean run) or nothing visible at all for the input, which is still
in scoring-input/ unchanged; and the re-run (as the host's retry would) completes.
"""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest
from azure.core.exceptions import AzureError

from functions.scoring.context import ScoringContext
from functions.scoring.job import score_input
from tests.fault_support import (
    assert_nothing_published,
    assert_scored_once,
    committed,
    fast_context,
    prediction_rows,
    uncommitted_blocks,
)
from tests.faultproxy import Fault, FaultProxy, azurite_via
from tests.scoring_support import bank_csv, unique, upload

pytestmark = pytest.mark.integration
ROWS = 50_000  # ~4.3 MB: two 4 MiB download chunks
MB = 1_000_000


@pytest.fixture(scope="module")
def data() -> bytes:
    return bank_csv(ROWS)


@pytest.fixture(scope="module")
def clean(azurite, served: str, data: bytes) -> pd.DataFrame:
    """Predictions of the same bytes scored without a fault."""
    ctx = fast_context(azurite.connection_string, SCORING_CHUNK_ROWS="10000")
    name = unique("clean")
    assert score_input(ctx, upload(ctx, name, data)).status == "scored"
    return prediction_rows(ctx, name, served)


@pytest.fixture
def proxied(azurite, served: str):  # type: ignore[no-untyped-def]
    """(proxy in front of Azurite's blob port, a scoring context whose storage goes through it, warm)."""
    with FaultProxy(azurite.blob_port) as proxy:
        ctx = fast_context(azurite_via(proxy.port, azurite.queue_port), SCORING_CHUNK_ROWS="10000")
        ctx.models.current()  # the model is loaded before any fault is armed
        yield proxy, ctx


def _upload(ctx: ScoringContext, data: bytes) -> tuple[str, str]:
    name = unique("fault")
    client = upload(ctx, name, data)
    return name, client.get_blob_properties().etag


def _outcome_or_error(ctx: ScoringContext, name: str) -> object:
    try:
        return score_input(ctx, ctx.input_client(f"{name}.csv"))
    except Exception as error:  # noqa: BLE001 - the test looks at what came out
        return error


def _assert_input_kept(ctx: ScoringContext, name: str, etag: str, data: bytes) -> None:
    client = ctx.input_client(f"{name}.csv")
    assert client.get_blob_properties().etag == etag
    assert client.download_blob().readall() == data


def _rerun_completes(ctx: ScoringContext, name: str, served: str, clean: pd.DataFrame) -> None:
    assert score_input(ctx, ctx.input_client(f"{name}.csv")).status == "scored"
    assert_scored_once(ctx, name, served, ROWS)
    pd.testing.assert_frame_equal(prediction_rows(ctx, name, served), clean)


def test_reset_mid_download_once_is_retried_by_the_sdk(proxied, served, data, clean) -> None:
    proxy, ctx = proxied
    name, etag = _upload(ctx, data)
    proxy.arm(Fault("reset", "down", after_bytes=MB, total=True))
    outcome = score_input(ctx, ctx.input_client(f"{name}.csv"))
    assert proxy.fired == ["reset down after 1,000,000 bytes"]
    assert outcome.status == "scored"
    assert_scored_once(ctx, name, served, ROWS)
    pd.testing.assert_frame_equal(prediction_rows(ctx, name, served), clean)
    _assert_input_kept(ctx, name, etag, data)


def test_reset_mid_download_every_time_raises_leaves_nothing_and_the_rerun_completes(
    proxied, azurite, served, data, clean
) -> None:
    proxy, ctx = proxied
    name, etag = _upload(ctx, data)
    proxy.arm(Fault("reset", "down", after_bytes=MB, connections=None))  # every connection, 1 MB in
    with pytest.raises(AzureError):  # raised: the host retries the invocation, then poisons it
        score_input(ctx, ctx.input_client(f"{name}.csv"))
    assert proxy.stats["reset"] >= 2

    direct = fast_context(azurite.connection_string)
    assert_nothing_published(direct, name)
    _assert_input_kept(direct, name, etag, data)

    proxy.clear()
    _rerun_completes(ctx, name, served, clean)


def test_stalled_download_times_out_and_is_retried(proxied, served, data, clean) -> None:
    proxy, ctx = proxied
    name, etag = _upload(ctx, data)
    proxy.arm(Fault("stall", "down", after_bytes=MB, total=True, stall_s=6.0))
    started = time.monotonic()
    outcome = score_input(ctx, ctx.input_client(f"{name}.csv"))
    assert proxy.fired == ["stall down after 1,000,000 bytes"]
    assert outcome.status == "scored" and time.monotonic() - started >= 2.0  # one read timeout
    assert_scored_once(ctx, name, served, ROWS)
    pd.testing.assert_frame_equal(prediction_rows(ctx, name, served), clean)
    _assert_input_kept(ctx, name, etag, data)


@pytest.mark.parametrize("mode", ["closed", "rst"])
def test_refused_connections_raise_fast_and_leave_nothing(
    proxied, azurite, served, data, clean, mode
) -> None:
    proxy, ctx = proxied
    name, etag = _upload(ctx, data)
    proxy.refuse(mode)
    started = time.monotonic()
    with pytest.raises(AzureError):
        score_input(ctx, ctx.input_client(f"{name}.csv"))
    assert time.monotonic() - started < 10
    if mode == "rst":
        assert proxy.stats["refused"] >= 1  # accepted, then reset at once
    direct = fast_context(azurite.connection_string)
    assert_nothing_published(direct, name)
    _assert_input_kept(direct, name, etag, data)

    proxy.refuse(None)
    _rerun_completes(ctx, name, served, clean)


def test_commit_failing_every_time_publishes_nothing_and_the_rerun_completes(
    proxied, azurite, served, data, clean
) -> None:
    """Every commit of predictions.csv is reset (the SDK's retries too); the rest of storage works:
    the staged blocks stay uncommitted, nothing is visible, the re-run publishes once."""
    proxy, ctx = proxied
    name, etag = _upload(ctx, data)
    proxy.arm(Fault("reset", match=b"comp=blocklist", connections=None))
    with pytest.raises(AzureError):
        score_input(ctx, ctx.input_client(f"{name}.csv"))
    assert proxy.stats["reset"] >= 2
    direct = fast_context(azurite.connection_string)
    assert_nothing_published(direct, name)
    assert uncommitted_blocks(direct.predictions, f"{name}/{served}/predictions.csv") >= 1
    _assert_input_kept(direct, name, etag, data)

    proxy.clear()
    _rerun_completes(ctx, name, served, clean)


def test_outage_at_the_commit_publishes_nothing_and_the_rerun_completes(
    proxied, azurite, served, data, clean
) -> None:
    """Storage goes away just as predictions.csv is committed: the commit never lands."""
    proxy, ctx = proxied
    name, etag = _upload(ctx, data)
    proxy.arm(Fault("outage", match=b"comp=blocklist"))
    with pytest.raises(AzureError):
        score_input(ctx, ctx.input_client(f"{name}.csv"))
    assert proxy.fired == ["outage up at b'comp=blocklist' #1"]
    direct = fast_context(azurite.connection_string)
    assert_nothing_published(direct, name)
    _assert_input_kept(direct, name, etag, data)

    proxy.clear()
    _rerun_completes(ctx, name, served, clean)


def test_outage_before_the_manifest_is_finished_by_the_rerun(proxied, azurite, served, data, clean) -> None:
    """Committed, then storage gone before `_manifest.json`: incomplete by contract; the re-run
    writes the manifest from the committed blob (status "recovered") without scoring again."""
    proxy, ctx = proxied
    name, etag = _upload(ctx, data)
    proxy.arm(Fault("outage", match=b"_manifest.json", occurrence=2))  # 1: the "already done?" read
    with pytest.raises(AzureError):
        score_input(ctx, ctx.input_client(f"{name}.csv"))
    assert proxy.fired == ["outage up at b'_manifest.json' #2"]
    proxy.clear()
    assert score_input(ctx, ctx.input_client(f"{name}.csv")).status == "recovered"
    assert_scored_once(ctx, name, served, ROWS)
    pd.testing.assert_frame_equal(prediction_rows(ctx, name, served), clean)
    _assert_input_kept(ctx, name, etag, data)


def test_concurrent_deliveries_of_a_refused_file_both_end_cleanly(azurite, served) -> None:
    """Delivery A is held at the commit of its copy into rejected/ while delivery B rejects the same
    file completely; then A goes on. Found by the soak (bench/soak.py, two racing hosts)."""
    from azure.storage.blob import BlobServiceClient

    from functions.scoring.context import ScoringContext
    from functions.settings import load_settings
    from tests.scoring_support import scoring_env

    b = fast_context(azurite.connection_string)
    name, _ = _upload(b, b"client_id;age;job\r\n1;30;admin.\r\n")  # wrong delimiter: refused
    with FaultProxy(azurite.blob_port) as proxy:
        conn = azurite_via(proxy.port, azurite.queue_port)
        patient = BlobServiceClient.from_connection_string(conn, connection_timeout=2, read_timeout=30)
        a = ScoringContext(load_settings(scoring_env(conn)), service=patient)
        a.models.current()
        proxy.arm(Fault("stall", match=b"comp=blocklist", stall_s=20, then="resume"))
        result: list[object] = []
        thread = threading.Thread(target=lambda: result.append(_outcome_or_error(a, name)))
        thread.start()
        assert proxy.fired_event.wait(20), "delivery A never reached its commit"
        assert score_input(b, b.input_client(f"{name}.csv")).status == "rejected"  # B, complete
        proxy.release()
        thread.join(30)
    verdict = committed(b.service.get_container_client("rejected"), f"{name}/")
    assert len(verdict) == 2 and verdict[0].endswith("/error.json")  # one error.json, one copy
    assert result and getattr(result[0], "status", None) in ("rejected", "duplicate"), result
