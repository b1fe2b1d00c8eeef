"""What the fault tests share: storage clients that give up in seconds, and the invariants checked
after every fault (nothing partial visible, nothing lost, manifests agree with the bytes)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from typing import TYPE_CHECKING, Any

import pandas as pd
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient, LinearRetry

from functions.export import manifest as mf
from functions.export.csv_format import read_records
from lake import paths as lake_paths
from lake.contract import PREDICTIONS_CONTAINER, REJECTED_CONTAINER

if TYPE_CHECKING:  # the scoring side is imported only by the scoring fault tests
    from functions.scoring.context import ScoringContext


# The product's clients wait up to 120 s for a read and back off 15 s and more between tries
# (lake/clients.py); the fault tests use the same SDK with a 2 s read timeout and 0.2 s waits.
FAST = {"connection_timeout": 2, "read_timeout": 2}


def fast_retry() -> LinearRetry:
    return LinearRetry(backoff=0.2, random_jitter_range=0.1, retry_total=3)


def fast_service(connection_string: str) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(connection_string, retry_policy=fast_retry(), **FAST)


def fast_container(connection_string: str, name: str) -> ContainerClient:
    return fast_service(connection_string).get_container_client(name)


def fast_context(connection_string: str, **overrides: str) -> ScoringContext:
    """A scoring context whose storage calls go where `connection_string` says, with fast clients."""
    from functions.scoring.context import ScoringContext
    from functions.settings import load_settings
    from tests.scoring_support import scoring_env

    settings = load_settings(scoring_env(connection_string, **overrides))
    return ScoringContext(settings, service=fast_service(connection_string))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def committed(container: ContainerClient, prefix: str = "") -> list[str]:
    return sorted(b.name for b in container.list_blobs(name_starts_with=prefix or None))


def staged_only(container: ContainerClient, prefix: str = "") -> list[str]:
    """Blobs that have uncommitted blocks but no committed content: invisible to readers."""
    every = {
        b.name for b in container.list_blobs(name_starts_with=prefix or None, include=["uncommittedblobs"])
    }
    return sorted(every - set(committed(container, prefix)))


def uncommitted_blocks(container: ContainerClient, path: str) -> int:
    """Blocks staged on `path` and not committed (a commit discards a blob's uncommitted blocks)."""
    try:
        return len(container.get_blob_client(path).get_block_list("uncommitted")[1])
    except ResourceNotFoundError:
        return 0


# --------------------------------------------------------------------------------------------- export


def assert_export_complete(container: ContainerClient, table: str, day: dt.date) -> tuple[mf.Manifest, bytes]:
    """Exactly the CSV and its manifest; the manifest's rows, bytes and sha256 are the CSV's."""
    csv_path, manifest_path = (
        lake_paths.export_csv_path(table, day),
        lake_paths.export_manifest_path(table, day),
    )
    assert committed(container, f"{table}/{day.isoformat()}/") == sorted([csv_path, manifest_path])
    manifest = mf.Manifest.from_json(container.download_blob(manifest_path).readall())
    data = container.download_blob(csv_path).readall()
    assert (manifest.sha256, manifest.bytes) == (sha256(data), len(data))
    assert manifest.rows == len(read_records(data.decode("utf-8"))) - 1
    properties = container.get_blob_client(csv_path).get_blob_properties()
    assert properties.metadata == {"sha256": manifest.sha256, "rows": str(manifest.rows)}
    return manifest, data


def assert_no_csv_without_manifest(container: ContainerClient) -> None:
    names = committed(container)
    csvs = [n for n in names if n.endswith(".csv")]
    orphans = [n for n in csvs if f"{n.rsplit('/', 1)[0]}/_manifest.json" not in names]
    assert orphans == [], f"CSV without a manifest: {orphans}"


# --------------------------------------------------------------------------------------------- scoring


def assert_nothing_published(ctx: ScoringContext, name: str) -> None:
    """No output and no verdict for `name`: at most uncommitted blocks, which readers never see."""
    predictions = ctx.service.get_container_client(PREDICTIONS_CONTAINER)
    rejected = ctx.service.get_container_client(REJECTED_CONTAINER)
    assert committed(predictions, f"{name}/") == []
    assert committed(rejected, f"{name}/") == []


def assert_scored_once(ctx: ScoringContext, name: str, version: str, rows: int) -> dict[str, Any]:
    """One complete output: predictions.csv + _manifest.json whose sha256, bytes and rows are the file's."""
    from lake.paths import OutputPaths

    predictions = ctx.service.get_container_client(PREDICTIONS_CONTAINER)
    paths = OutputPaths(name, version)
    assert committed(predictions, f"{name}/") == sorted([paths.manifest, paths.predictions])
    manifest = json.loads(predictions.download_blob(paths.manifest).readall())
    data = predictions.download_blob(paths.predictions).readall()
    assert (manifest["output"]["sha256"], manifest["output"]["bytes"]) == (sha256(data), len(data))
    frame = pd.read_csv(io.BytesIO(data), dtype={"client_id": str})
    assert manifest["rows"]["scored"] == rows == len(frame)
    assert committed(ctx.service.get_container_client(REJECTED_CONTAINER), f"{name}/") == []
    return manifest


def prediction_rows(ctx: ScoringContext, name: str, version: str) -> pd.DataFrame:
    """The predictions without the time they were made (what two runs of the same input share)."""
    from lake.paths import OutputPaths

    paths = OutputPaths(name, version)
    data = ctx.service.get_blob_client(PREDICTIONS_CONTAINER, paths.predictions).download_blob().readall()
    return pd.read_csv(io.BytesIO(data), dtype={"client_id": str}).drop(columns=["scored_at"])
