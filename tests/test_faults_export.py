"""Network faults under a real export: PostgreSQL -> Exporter -> Azurite, a fault proxy on either side.

After every fault: nothing partial is visible (no CSV without its manifest, staged blocks stay
uncommitted), the previous complete export of the day is untouched when the new one fails, and
the export (again, or retried) ends with the same bytes as a clean run, whose manifest agrees.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
from azure.storage.blob import ContainerClient

from functions.export.spec import ExportSpec
from functions.retry import RetryPolicy
from lake import paths as lake_paths
from tests.fault_support import (
    assert_export_complete,
    assert_no_csv_without_manifest,
    committed,
    fast_container,
    staged_only,
    uncommitted_blocks,
)
from tests.faultproxy import Fault, FaultProxy, azurite_via, odbc_with_port
from tests.support import DAY1, export_one, run_module

pytestmark = pytest.mark.integration
TABLE = "fault_clients"
ROWS = 40_000  # ~2 MB of CSV: eight 256 KiB blocks, ~2.8 MB from the server
SPEC = ExportSpec(TABLE, table=TABLE)
BLOCK = 256 * 1024
RETRY = RetryPolicy(attempts=3, first_delay_s=0)
# psqlODBC reads the result through a cursor, 10,000 rows (~700 kB here) per FETCH: a fault at
# 400 kB hits the first FETCH (inside SQLExecDirect); later ones crash the driver (in its child).
FIRST_BATCH = 400_000
CREATE = (  # TABLE and ROWS
    "DROP TABLE IF EXISTS fault_clients; CREATE TABLE fault_clients AS SELECT g AS client_id, "
    "md5(g::text) AS h, g * 3 AS balance, 'job ' || (g % 7) AS job, DATE '2008-05-05' + (g % 300) "
    "AS contacted FROM generate_series(1, 40000) g; ALTER TABLE fault_clients ADD PRIMARY KEY (client_id)"
)


@pytest.fixture(scope="module")
def source(postgres) -> str:
    subprocess.run(  # noqa: S603 - psql of the throwaway cluster with this test's SQL
        [*postgres.psql_args(), "-v", "ON_ERROR_STOP=1", "-q", "-c", CREATE],
        check=True,
        capture_output=True,
    )
    return postgres.odbc_connection_string


@pytest.fixture(scope="module")
def clean(source: str, blob_service) -> bytes:
    """The bytes of a clean export (no proxy, no fault): what every faulted run must end with."""
    container = blob_service.get_container_client(f"clean-{uuid.uuid4().hex[:10]}")
    container.create_container()
    assert export_one(source, container, SPEC, block_bytes=BLOCK).ok
    return assert_export_complete(container, TABLE, DAY1)[1]


@pytest.fixture
def container(exports_container: ContainerClient) -> ContainerClient:
    return exports_container


def _export(odbc: str, container: ContainerClient, retry: RetryPolicy = RETRY):  # type: ignore[no-untyped-def]
    return export_one(odbc, container, SPEC, block_bytes=BLOCK, chunk_rows=2000, retry=retry)


def _assert_same_as_clean(container: ContainerClient, clean: bytes) -> None:
    manifest, data = assert_export_complete(container, TABLE, DAY1)
    assert data == clean and manifest.rows == ROWS


# --------------------------------------------------------------------------------------------- PostgreSQL


def test_postgres_latency_slows_the_export_but_not_its_bytes(source, postgres, container, clean) -> None:
    with FaultProxy(postgres.port) as proxy:
        proxy.latency_s = 0.003
        started = time.monotonic()
        result = _export(odbc_with_port(source, proxy.port), container)
    assert result.ok and result.attempts == 1, result.error
    assert proxy.stats["delays"] >= 40 and time.monotonic() - started >= proxy.stats["delays"] * 0.003 / 2
    _assert_same_as_clean(container, clean)


def test_postgres_reset_mid_transfer_is_retried(source, postgres, container, clean) -> None:
    with FaultProxy(postgres.port) as proxy:
        proxy.arm(Fault("reset", "down", after_bytes=FIRST_BATCH))  # the first session, mid result set
        result = _export(odbc_with_port(source, proxy.port), container)
    assert proxy.fired == ["reset down after 400,000 bytes"]
    assert result.ok and result.attempts == 2, result.error
    _assert_same_as_clean(container, clean)


def test_postgres_reset_after_rows_were_fetched_is_retried(
    source, postgres, azurite, container, clean
) -> None:
    """psqlODBC 13.02 segfaults in SQLFetch here: the reading child dies (functions/export/isolated.py),
    the attempt is retried, and the export completes with the same bytes as a clean run."""
    with FaultProxy(postgres.port) as proxy:
        proxy.arm(Fault("reset", "down", after_bytes=1_200_000))  # during the second FETCH of the cursor
        child = run_module("tests.fault_jobs", "export", "--odbc", odbc_with_port(source, proxy.port),
                           "--conn", azurite.connection_string, "--container", container.container_name,
                           "--table", TABLE, timeout=60)  # fmt: skip
    assert proxy.fired == ["reset down after 1,200,000 bytes"]
    assert_no_csv_without_manifest(container)
    assert child.returncode == 0, f"the export process ended with {child.returncode}: {child.stderr[-300:]}"
    assert json.loads(child.stdout.splitlines()[-1])["attempts"] == 2
    _assert_same_as_clean(container, clean)


def test_postgres_reset_every_time_leaves_only_invisible_blocks_then_the_rerun_completes(
    source, postgres, container, clean
) -> None:
    with FaultProxy(postgres.port) as proxy:
        proxy.arm(Fault("reset", "down", after_bytes=FIRST_BATCH, connections=None))
        result = _export(odbc_with_port(source, proxy.port), container)
        assert proxy.stats["reset"] == RETRY.attempts
    assert not result.ok and result.attempts == RETRY.attempts
    assert "08S01" in (result.error or "")  # the lost connection, reported as such
    assert committed(container) == []
    assert staged_only(container) == []  # it failed before the first block was full

    assert _export(source, container).ok
    _assert_same_as_clean(container, clean)


def test_postgres_stalled_read_then_reset_is_retried(source, postgres, container, clean) -> None:
    with FaultProxy(postgres.port) as proxy:
        proxy.arm(Fault("stall", "down", after_bytes=FIRST_BATCH, stall_s=2.0))
        started = time.monotonic()
        result = _export(odbc_with_port(source, proxy.port), container)
    assert proxy.fired == ["stall down after 400,000 bytes"]
    assert result.ok and result.attempts == 2, result.error
    assert time.monotonic() - started >= 2.0
    _assert_same_as_clean(container, clean)


def test_postgres_refusing_connections_fails_fast_and_writes_nothing(source, postgres, container) -> None:
    with FaultProxy(postgres.port) as proxy:
        proxy.refuse("closed")
        started = time.monotonic()
        result = _export(
            odbc_with_port(source, proxy.port), container, RetryPolicy(attempts=2, first_delay_s=0)
        )
    assert not result.ok and "08001" in (result.error or "")
    assert time.monotonic() - started < 10
    assert committed(container) == [] and staged_only(container) == []


# --------------------------------------------------------------------------------------------- Azurite


@pytest.fixture
def via_proxy(azurite, container):  # type: ignore[no-untyped-def]
    """(proxy in front of Azurite's blob port, the test's container seen through it with fast clients)."""
    with FaultProxy(azurite.blob_port) as proxy:
        yield proxy, fast_container(azurite_via(proxy.port, azurite.queue_port), container.container_name)


def test_azurite_latency_slows_the_upload_but_not_its_bytes(source, via_proxy, container, clean) -> None:
    proxy, slow = via_proxy
    proxy.latency_s = 0.002
    result = _export(source, slow)
    assert result.ok and result.attempts == 1, result.error
    assert proxy.stats["delays"] >= 30
    _assert_same_as_clean(container, clean)


def test_azurite_reset_mid_upload_is_retried_by_the_sdk(source, via_proxy, container, clean) -> None:
    proxy, flaky = via_proxy
    proxy.arm(Fault("reset", "up", after_bytes=600_000))  # during the third block
    result = _export(source, flaky)
    assert proxy.fired == ["reset up after 600,000 bytes"]
    assert result.ok, result.error
    _assert_same_as_clean(container, clean)


def test_azurite_outage_mid_upload_keeps_the_previous_export_and_the_rerun_completes(
    source, via_proxy, container, clean
) -> None:
    proxy, flaky = via_proxy
    assert _export(source, container).ok  # the day's complete export, from an earlier run
    before = {b.name: b.etag for b in container.list_blobs()}

    proxy.arm(Fault("outage", "up", after_bytes=600_000, total=True))  # every request from then on
    started = time.monotonic()
    result = _export(source, flaky, RetryPolicy(attempts=2, first_delay_s=0))
    assert proxy.fired == ["outage up after 600,000 bytes"] and proxy.stats["refused"] >= 2
    assert not result.ok and result.attempts == 2, "a storage outage is transient: retried, then failed"
    assert time.monotonic() - started < 15
    assert {b.name: b.etag for b in container.list_blobs()} == before  # untouched, still complete
    assert_no_csv_without_manifest(container)

    proxy.clear()
    assert _export(source, flaky).ok
    _assert_same_as_clean(container, clean)


def test_azurite_failing_block_uploads_leave_staged_blocks_invisible_and_the_old_export_whole(
    source, via_proxy, container, clean
) -> None:
    """Every block upload from the third on is reset (the SDK's retries too); the rest of storage works."""
    proxy, flaky = via_proxy
    assert _export(source, container).ok  # the day's complete export, from an earlier run
    before = {b.name: b.etag for b in container.list_blobs()}

    proxy.arm(Fault("reset", match=b"comp=block&", occurrence=3, connections=None))
    result = _export(source, flaky, RetryPolicy(attempts=2, first_delay_s=0))
    assert not result.ok and result.attempts == 2, result.error
    assert proxy.stats["reset"] >= 2 * 4  # each attempt: the first try and the SDK's 3 retries
    assert {b.name: b.etag for b in container.list_blobs()} == before
    assert (
        uncommitted_blocks(container, lake_paths.export_csv_path(TABLE, DAY1)) >= 2
    )  # staged, never committed

    proxy.clear()
    assert _export(source, flaky).ok
    _assert_same_as_clean(container, clean)
    assert uncommitted_blocks(container, lake_paths.export_csv_path(TABLE, DAY1)) == 0


def test_azurite_stalled_response_times_out_and_is_retried(source, via_proxy, container, clean) -> None:
    proxy, slow = via_proxy
    proxy.arm(Fault("stall", "down", after_bytes=0, stall_s=6.0))  # the first response never comes
    started = time.monotonic()
    result = _export(source, slow)
    assert proxy.fired == ["stall down after 0 bytes"]
    assert result.ok, result.error
    assert 2.0 <= time.monotonic() - started < 15  # one read timeout (2 s), then the SDK's retry
    _assert_same_as_clean(container, clean)


def test_azurite_outage_between_commit_and_manifest_leaves_an_incomplete_pair_the_rerun_completes(
    source, via_proxy, container, clean
) -> None:
    """Storage gone right after the CSV's commit: the engine cannot even delete it again. By contract
    (docs/architecture.md) a CSV without a manifest is incomplete; the re-run makes the pair whole."""
    proxy, flaky = via_proxy
    proxy.arm(Fault("outage", match=b"_manifest.json", occurrence=2))  # 1: the old manifest's delete
    result = _export(source, flaky, RetryPolicy(attempts=1))
    assert not result.ok and proxy.fired == ["outage up at b'_manifest.json' #2"]
    assert committed(container) == [
        lake_paths.export_csv_path(TABLE, DAY1)
    ]  # the CSV, and no manifest: incomplete

    proxy.clear()
    assert _export(source, flaky).ok
    _assert_same_as_clean(container, clean)
