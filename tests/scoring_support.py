"""Helpers for the scoring tests: a scoring context on the session's Azurite, bank-shaped inputs."""

from __future__ import annotations

import functools
import io
import json
import uuid
from typing import Any

import pandas as pd
from azure.storage.blob import BlobClient, BlobServiceClient

from functions.scoring.context import ScoringContext
from functions.settings import load_settings
from lake.contract import MODELS_CONTAINER, PREDICTIONS_CONTAINER, REJECTED_CONTAINER, SCORING_INPUT_CONTAINER
from lake.paths import OutputPaths, RejectedPaths
from model.registry import BlobStore, Registry
from tests.model_fixtures import BANK, NAME


def scoring_env(connection_string: str, **overrides: str) -> dict[str, str]:
    return {
        "DataLake": connection_string,
        "DB_CONNECTION_STRING": "Driver=SQLite3;Database=unused.db",
        "MODEL_NAME": NAME,
        "MODEL_STAGE": "dev",
        "SCORING_CHUNK_ROWS": "10",
        "SCORING_THREADS": "1",
        **overrides,
    }


def serve_model(service: BlobServiceClient, folder: Any, name: str = NAME) -> str:
    """Register a model folder in the `models` container and point dev at it; the version."""
    registry = Registry(BlobStore(service.get_container_client(MODELS_CONTAINER), ensure=True))
    version = registry.register(folder, name)
    registry.promote(name, version, "dev", override_reason="tests")
    return version


def context(connection_string: str, **overrides: str) -> ScoringContext:
    return ScoringContext(load_settings(scoring_env(connection_string, **overrides)))


def unique(prefix: str = "input") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@functools.cache
def _bank() -> pd.DataFrame:
    return pd.read_csv(BANK, sep=";").drop(columns=["y", "duration"])


def bank_frame(rows: int, first_id: int = 1) -> pd.DataFrame:
    """`rows` clients shaped like the `clients` export (client_id first), tiled from the bank data."""
    base = _bank()
    frame = pd.concat([base] * (rows // len(base) + 1), ignore_index=True).iloc[:rows].copy()
    frame.insert(0, "client_id", range(first_id, first_id + rows))
    return frame


def to_csv(frame: pd.DataFrame, sep: str = ",", eol: str = "\r\n") -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, sep=sep, lineterminator=eol)
    return buffer.getvalue().encode()


def bank_csv(rows: int, first_id: int = 1) -> bytes:
    return to_csv(bank_frame(rows, first_id))


def upload(ctx: ScoringContext, name: str, data: bytes) -> BlobClient:
    client = ctx.service.get_blob_client(SCORING_INPUT_CONTAINER, f"{name}.csv")
    client.upload_blob(data, overwrite=True)
    return client


def names_under(ctx: ScoringContext, container: str, prefix: str) -> list[str]:
    return sorted(
        b.name for b in ctx.service.get_container_client(container).list_blobs(name_starts_with=prefix)
    )


def read_blob(ctx: ScoringContext, container: str, path: str) -> bytes:
    return ctx.service.get_blob_client(container, path).download_blob().readall()


def predictions(ctx: ScoringContext, name: str, version: str) -> pd.DataFrame:
    data = read_blob(ctx, PREDICTIONS_CONTAINER, OutputPaths(name, version).predictions)
    return pd.read_csv(io.BytesIO(data), dtype={"client_id": str})


def rejected_rows(ctx: ScoringContext, name: str, version: str) -> list[tuple[int, str]]:
    data = read_blob(ctx, PREDICTIONS_CONTAINER, OutputPaths(name, version).rejected_rows)
    frame = pd.read_csv(io.BytesIO(data))
    return list(zip(frame["row"].tolist(), frame["reason"].tolist(), strict=True))


def rejection(ctx: ScoringContext, name: str, etag: str) -> tuple[dict[str, Any], bytes]:
    paths = RejectedPaths(name, etag)
    error = json.loads(read_blob(ctx, REJECTED_CONTAINER, paths.error))
    return error, read_blob(ctx, REJECTED_CONTAINER, paths.copy)
