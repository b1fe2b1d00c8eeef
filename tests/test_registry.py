"""The model registry's versions on real storage (a local folder and blob storage on a real Azurite):
the stored layout, registration, reading checked artifacts, the stores' guarantees, the wiring.

Model folders come from two tiny logistic regressions converted to ONNX (tests/model_fixtures.py),
a "good" one and a "bad" one. Stage pointers (order, gate, rollback): tests/test_registry_stages.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from devstack.azurite import Azurite
from functions.scoring.models import ModelSource
from model.artifacts import METADATA_FILE, IntegrityError, artifact_files
from model.registry import (
    STAGES,
    AlreadyExistsError,
    BlobStore,
    ConcurrentUpdateError,
    FolderStore,
    MissingArtifactError,
    NotFoundError,
    Registry,
    RegistryError,
    layout,
    open_registry,
)
from model.serving import load_folder
from tests.model_fixtures import NAME, Models
from tests.support import REPO


@dataclass
class Backend:
    kind: str
    registry: Registry
    tamper: Callable[[str, bytes], None]  # writes behind the registry's back, as an attacker would
    remove: Callable[[str], None]  # deletes behind its back, as a careless cleanup would


@pytest.fixture(params=["folder", "blob"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "folder":
        root = tmp_path / "registry"

        def tamper_file(path: str, data: bytes) -> None:
            (root / path).write_bytes(data)

        def remove_file(path: str) -> None:
            (root / path).unlink()

        return Backend("folder", Registry(FolderStore(root)), tamper_file, remove_file)
    service: BlobServiceClient = request.getfixturevalue("blob_service")
    container = service.get_container_client(f"models-{uuid.uuid4().hex[:12]}")
    store = BlobStore(container, ensure=True)

    def tamper_blob(path: str, data: bytes) -> None:
        container.upload_blob(path, data, overwrite=True)

    return Backend("blob", Registry(store), tamper_blob, container.delete_blob)


@pytest.fixture
def registry(backend: Backend) -> Registry:
    return backend.registry


def test_stored_layout_is_the_documented_one() -> None:
    # Registries in Azure already hold these paths: the layout is a contract, spelled out here.
    assert STAGES == ("dev", "preprod", "prod")
    assert layout.version_file(NAME, "3", "plots/roc.png") == f"{NAME}/3/plots/roc.png"
    assert layout.stage_file(NAME, "prod") == f"{NAME}/stages/prod.json"
    assert layout.parse_version_file(f"{NAME}/12/plots/roc.png") == (NAME, 12, "plots/roc.png")
    assert layout.parse_version_file(f"{NAME}/stages/dev.json") is None
    assert [layout.stage_before(s) for s in STAGES] == [None, "dev", "preprod"]
    with pytest.raises(RegistryError, match="not allowed"):
        layout.check_name("stages")


# ------------------------------------------------------------------------------------- registration


def test_register_assigns_increasing_versions_and_copies_every_file(
    registry: Registry, models: Models
) -> None:
    assert registry.register(models.good) == "1"
    assert registry.register(models.bad) == "2"
    assert registry.models() == [NAME]
    assert registry.store.list(f"{NAME}/1/") == [
        f"{NAME}/1/{f}"
        for f in ("metadata.json", "model.onnx", "model_card.md", "plots/roc.png", "reference.json")
    ]
    for relative in artifact_files(models.good):
        assert registry.store.read(f"{NAME}/1/{relative}") == (models.good / relative).read_bytes()
    metadata = registry.show(NAME, "2")
    assert (metadata["name"], metadata["version"]) == (NAME, "2")
    assert metadata["registered_at"].endswith("+00:00")
    assert json.loads((models.bad / METADATA_FILE).read_text())["version"] is None  # the folder is untouched
    assert registry.register(models.good, name="other-model") == "1"
    assert registry.models() == [NAME, "other-model"]


def test_versions_are_immutable(registry: Registry, models: Models) -> None:
    registry.register(models.good)
    original = registry.store.read(f"{NAME}/1/model.onnx")
    for file in ("model.onnx", "metadata.json", "plots/roc.png"):
        with pytest.raises(AlreadyExistsError, match="immutable"):
            registry.store.create(f"{NAME}/1/{file}", b"replacement")
    assert registry.store.read(f"{NAME}/1/model.onnx") == original


def test_half_written_version_is_ignored_and_its_number_skipped(registry: Registry, models: Models) -> None:
    # Another registration claimed version 1 (or crashed): model.onnx exists, metadata.json never came.
    registry.store.create(f"{NAME}/1/model.onnx", b"partial")
    with pytest.raises(NotFoundError, match="none yet"):
        registry.versions(NAME)
    assert registry.register(models.good) == "2"
    assert [v.version for v in registry.versions(NAME)] == ["2"]
    with pytest.raises(NotFoundError, match="versions: 2"):
        registry.show(NAME, "1")


def test_concurrent_registrations_get_distinct_versions(registry: Registry, models: Models) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def register() -> None:
        try:
            results.append(registry.register(models.good))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(results, key=int) == ["1", "2", "3", "4"]
    assert [v.version for v in registry.versions(NAME)] == ["1", "2", "3", "4"]


def test_tampered_folder_is_refused_before_anything_is_written(
    registry: Registry, models: Models, tmp_path: Path
) -> None:
    folder = tmp_path / "tampered"
    shutil.copytree(models.good, folder)
    model = bytearray((folder / "model.onnx").read_bytes())
    model[-1] ^= 0xFF
    (folder / "model.onnx").write_bytes(bytes(model))
    with pytest.raises(IntegrityError, match=r"model\.onnx sha256"):
        registry.register(folder)
    assert registry.models() == []
    assert registry.store.list("") == []

    shutil.copyfile(models.good / "model.onnx", folder / "model.onnx")
    (folder / "notes.txt").write_text("not recorded")
    with pytest.raises(IntegrityError, match="not recorded"):
        registry.register(folder)


def test_tampered_stored_model_is_refused_at_load_and_download(
    backend: Backend, models: Models, tmp_path: Path
) -> None:
    registry = backend.registry
    registry.register(models.good)
    assert registry.load(NAME, "1").version == "1"
    original = registry.store.read(f"{NAME}/1/model.onnx")
    assert original is not None
    backend.tamper(f"{NAME}/1/model.onnx", original[:-1] + bytes([original[-1] ^ 0xFF]))
    with pytest.raises(IntegrityError, match="does not match"):
        registry.load(NAME, "1")
    with pytest.raises(IntegrityError, match="does not match"):
        registry.download(NAME, "1", tmp_path / "copy")


def test_read_artifact_returns_the_checked_bytes_of_a_version(backend: Backend, models: Models) -> None:
    registry = backend.registry
    registry.register(models.good)
    registry.promote(NAME, "1", "dev")
    for file in ("reference.json", "plots/roc.png", "model.onnx"):
        assert registry.read_artifact(NAME, "1", file) == (models.good / file).read_bytes()
    card = (models.good / "model_card.md").read_bytes()
    assert registry.read_artifact(NAME, "dev", "model_card.md") == card
    with pytest.raises(NotFoundError, match=r"no artifact 'notes\.txt'; artifacts: model\.onnx, model_card"):
        registry.read_artifact(NAME, "1", "notes.txt")
    with pytest.raises(NotFoundError, match="no version '9'"):
        registry.read_artifact(NAME, "9", "reference.json")

    reference = f"{NAME}/1/reference.json"
    backend.tamper(reference, b"{}")
    with pytest.raises(IntegrityError, match=r"reference\.json sha256 .* does not match"):
        registry.read_artifact(NAME, "1", "reference.json")
    backend.remove(reference)
    with pytest.raises(MissingArtifactError, match=r"version 1 of .* is missing reference\.json") as missing:
        registry.read_artifact(NAME, "1", "reference.json")
    assert isinstance(missing.value, IntegrityError)  # a damaged version, as load and download say


def test_scoring_reads_the_reference_through_the_checked_read(backend: Backend, models: Models) -> None:
    registry = backend.registry
    registry.register(models.good)
    reference = json.loads((models.good / "reference.json").read_text())
    assert ModelSource(registry, NAME, "dev", 1).version("1").reference == reference
    backend.tamper(f"{NAME}/1/reference.json", b"{}")
    with pytest.raises(IntegrityError, match="does not match"):
        ModelSource(registry, NAME, "dev", 1).version("1")
    backend.remove(f"{NAME}/1/reference.json")  # recorded but not stored: scored without drift, as ever
    assert ModelSource(registry, NAME, "dev", 1).version("1").reference == {}


# ------------------------------------------------------------------------------------- reading


def test_show_load_and_download_by_version_and_stage(
    registry: Registry, models: Models, tmp_path: Path
) -> None:
    registry.register(models.bad)
    registry.register(models.good)
    registry.promote(NAME, "2", "dev")
    assert registry.show(NAME, "dev")["version"] == "2"
    assert registry.show(NAME, "1")["version"] == "1"
    assert registry.show(NAME, "latest")["version"] == "2"

    model = registry.load(NAME, "dev")
    scored, checked = model.predict(models.gate.head(50))
    assert (model.name, model.version) == (NAME, "2")
    assert list(scored.columns) == ["client_id", "probability", "decision"] and len(scored) == 50
    assert not checked.rejected

    folder = registry.download(NAME, "dev", tmp_path / "copy")
    for relative in artifact_files(models.good):
        assert (folder / relative).read_bytes() == (models.good / relative).read_bytes()
    assert load_folder(folder).version == "2"

    with pytest.raises(NotFoundError, match=r"no version '9'; versions: 1, 2"):
        registry.show(NAME, "9")
    with pytest.raises(NotFoundError, match=r"stage prod .* no version yet \(stages set: dev=2\)"):
        registry.show(NAME, "prod")
    with pytest.raises(NotFoundError, match=rf"no model 'nope'.*models: {NAME}"):
        registry.show("nope", "1")
    with pytest.raises(NotFoundError, match="stages are dev -> preprod -> prod"):
        registry.stage(NAME, "staging")


def test_listing_marks_stages_and_metrics(registry: Registry, models: Models) -> None:
    registry.register(models.good)
    registry.register(models.bad)
    registry.promote(NAME, "1", "dev")
    registry.promote(NAME, "1", "preprod")
    registry.promote(NAME, "2", "dev", override_reason="try the baseline in dev")
    versions = registry.versions(NAME)
    assert [(v.version, v.stages) for v in versions] == [("1", ("preprod",)), ("2", ("dev",))]
    assert versions[0].metrics["pr_auc"] > versions[1].metrics["pr_auc"]
    assert set(versions[0].metrics) == {"pr_auc", "roc_auc"}
    assert versions[0].registered_at is not None


# ------------------------------------------------------------------------------------- concurrency


def test_stale_pointer_token_is_detected(registry: Registry) -> None:
    store = registry.store
    path = f"{NAME}/stages/dev.json"
    data, token = store.read_with_token(path)
    assert (data, token) == (None, None)
    first = store.replace(path, b'{"v": 1}', token)
    with pytest.raises(ConcurrentUpdateError):
        store.replace(path, b'{"v": "stale create"}', None)
    second = store.replace(path, b'{"v": 2}', first)
    with pytest.raises(ConcurrentUpdateError, match="read it again"):
        store.replace(path, b'{"v": "stale"}', first)
    assert store.read_with_token(path) == (b'{"v": 2}', second)


# ------------------------------------------------------------------------------------- wiring


def test_open_registry_folder_and_blob(
    tmp_path: Path,
    models: Models,
    azurite: Azurite,
    blob_service: BlobServiceClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = open_registry(str(tmp_path / "offline"))
    assert isinstance(local.store, FolderStore)
    assert local.register(models.good) == "1"

    monkeypatch.setenv("DataLake", azurite.connection_string)
    missing = open_registry("blob")
    assert isinstance(missing.store, BlobStore)
    if not blob_service.get_container_client("models").exists():
        with pytest.raises(RegistryError, match=r"does not exist.*ensure=True"):
            missing.models()
        with pytest.raises(RegistryError, match=r"does not exist.*ensure=True"):
            missing.store.read(f"{NAME}/1/metadata.json")
    remote = open_registry("blob", ensure=True)
    assert remote.store.container.container_name == "models"  # type: ignore[attr-defined]
    version = remote.register(models.good)
    assert remote.show(NAME, version)["version"] == version
    stored = blob_service.get_container_client("models").get_blob_client(f"{NAME}/{version}/metadata.json")
    assert stored.get_blob_properties().content_settings.content_type == "application/json"


def test_blob_store_writes_the_lake_contract_content_types(
    blob_service: BlobServiceClient, models: Models
) -> None:
    container = blob_service.get_container_client(f"models-{uuid.uuid4().hex[:12]}")
    Registry(BlobStore(container, ensure=True)).register(models.good)
    types = {blob.name: blob.content_settings.content_type for blob in container.list_blobs()}
    assert types == {
        f"{NAME}/1/metadata.json": "application/json",
        f"{NAME}/1/model.onnx": "application/octet-stream",
        f"{NAME}/1/model_card.md": "text/markdown; charset=utf-8",
        f"{NAME}/1/plots/roc.png": "image/png",
        f"{NAME}/1/reference.json": "application/json",
    }


def test_import_stays_light() -> None:
    code = (
        "import sys, model.registry; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'sklearn', 'onnxruntime', 'azure'}); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)  # noqa: S603 - our interpreter running fixed code
