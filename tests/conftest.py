"""Shared fixtures: real Azurite and a real throwaway PostgreSQL, started once per test session.

Outside CI a missing service skips the tests that need it; in CI (CI=true) it fails them, so
nothing is silently skipped there.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from devstack import azurite as azurite_mod
from devstack.postgres import PostgresCluster, PostgresUnavailableError, start_cluster
from tests.model_fixtures import Models, build_models

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
logging.getLogger("azure").setLevel(logging.WARNING)


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI must run every integration test)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[azurite_mod.Azurite]:
    try:
        instance = azurite_mod.start(tmp_path_factory.mktemp("azurite"))
    except (FileNotFoundError, TimeoutError) as exc:
        _unavailable(f"Azurite unavailable: {exc}")
    with instance:
        yield instance


@pytest.fixture(scope="session")
def blob_service(azurite: azurite_mod.Azurite) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite.connection_string)


@pytest.fixture
def exports_container(blob_service: BlobServiceClient) -> ContainerClient:
    """A fresh, empty container per test (Azurite is shared by the session)."""
    container = blob_service.get_container_client(f"exports-{uuid.uuid4().hex[:12]}")
    container.create_container()
    return container


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    try:
        cluster = start_cluster()
    except PostgresUnavailableError as exc:
        _unavailable(str(exc))
    with cluster:
        yield cluster


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    """An empty SQLite database file (tests create their tables with the stdlib driver)."""
    path = tmp_path / "source.db"
    sqlite3.connect(path).close()
    return path


def sqlite_odbc(path: Path) -> str:
    return f"Driver=SQLite3;Database={path};"  # drivers.connect adds StepAPI=1, BigInt=1, NoCreat=1


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    """Two small real ONNX models (good, bad) and held-out labelled rows; built once per session."""
    return build_models(tmp_path_factory.mktemp("model-folders"))


@pytest.fixture(scope="module")
def served(blob_service: BlobServiceClient, models: Models) -> str:
    """The good model, registered in the session Azurite's `models` container and served at dev."""
    from tests.scoring_support import serve_model

    return serve_model(blob_service, models.good)
