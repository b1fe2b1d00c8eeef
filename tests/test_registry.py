"""The model registry on real storage: a local folder and blob storage on a real Azurite.

Model folders come from two tiny logistic regressions converted to ONNX (tests/model_fixtures.py):
a "good" one and a deliberately "bad" one fitted on shuffled labels, so the promotion gate has a
real, large difference to detect on the same held-out rows.
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
from model.artifacts import METADATA_FILE, IntegrityError, artifact_files
from model.registry import (
    AlreadyExistsError,
    BlobStore,
    ConcurrentUpdateError,
    FolderStore,
    NotFoundError,
    PromotionRefused,
    Registry,
    RegistryError,
    open_registry,
)
from model.serving import load_folder
from tests.model_fixtures import NAME, Models
from tests.support import REPO


@pytest.fixture(autouse=True)
def _known_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "tester")  # the default actor of stage records


@dataclass
class Backend:
    kind: str
    registry: Registry
    tamper: Callable[[str, bytes], None]  # writes behind the registry's back, as an attacker would


@pytest.fixture(params=["folder", "blob"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "folder":
        root = tmp_path / "registry"

        def tamper_file(path: str, data: bytes) -> None:
            (root / path).write_bytes(data)

        return Backend("folder", Registry(FolderStore(root)), tamper_file)
    service: BlobServiceClient = request.getfixturevalue("blob_service")
    container = service.get_container_client(f"models-{uuid.uuid4().hex[:12]}")
    store = BlobStore(container, ensure=True)

    def tamper_blob(path: str, data: bytes) -> None:
        container.upload_blob(path, data, overwrite=True)

    return Backend("blob", Registry(store), tamper_blob)


@pytest.fixture
def registry(backend: Backend) -> Registry:
    return backend.registry


def _stage_file(registry: Registry, stage: str) -> dict:
    raw = registry.store.read(f"{NAME}/stages/{stage}.json")
    assert raw is not None
    return json.loads(raw)


def _to_prod(registry: Registry, version: str, **gate: object) -> None:
    for stage in ("dev", "preprod", "prod"):
        registry.promote(NAME, version, stage, **gate)  # type: ignore[arg-type]


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


# ------------------------------------------------------------------------------------- promotion


def test_stage_order_is_enforced(registry: Registry, models: Models) -> None:
    registry.register(models.good)
    with pytest.raises(PromotionRefused, match=r"dev -> preprod -> prod.*dev serves nothing"):
        registry.promote(NAME, "1", "preprod")
    with pytest.raises(PromotionRefused, match=r"preprod serves nothing.*override_reason"):
        registry.promote(NAME, "1", "prod")
    assert registry.promote(NAME, "1", "dev")["actor"] == "tester"  # $USER when no actor is given
    with pytest.raises(PromotionRefused, match="preprod serves nothing"):
        registry.promote(NAME, "1", "prod")
    registry.promote(NAME, "1", "preprod")
    record = registry.promote(NAME, "1", "prod", actor="alice")
    assert (record["version"], record["actor"], record["gate"], record["override"]) == (
        "1",
        "alice",
        None,
        None,
    )
    assert record["previous"] is None and record["history"] == []
    assert record == _stage_file(registry, "prod")
    assert registry.promote(NAME, "1", "prod") == record  # already there: nothing changes

    registry.register(models.good)
    with pytest.raises(PromotionRefused, match="preprod serves 1, not 2"):
        registry.promote(NAME, "2", "prod")
    with pytest.raises(NotFoundError, match="no version '7'"):
        registry.promote(NAME, "7", "dev")


def test_gate_refuses_worse_challenger_on_the_same_rows(registry: Registry, models: Models) -> None:
    registry.register(models.good)
    registry.register(models.bad)
    _to_prod(registry, "1")
    before = _stage_file(registry, "dev")
    with pytest.raises(PromotionRefused, match=r"serves version 1.*needs gate_data.*override_reason"):
        registry.promote(NAME, "2", "dev")
    with pytest.raises(PromotionRefused) as refused:
        registry.promote(NAME, "2", "dev", gate_data=models.gate)
    gate = refused.value.gate
    assert gate is not None and gate["rows"] == 2000 and not gate["passed"]
    assert gate["challenger"] < gate["champion"] - 0.01
    message = str(refused.value)
    for text in (f"{gate['challenger']:.4f}", f"{gate['champion']:.4f}", "tolerance 0.01", "override_reason"):
        assert text in message
    assert _stage_file(registry, "dev") == before  # nothing written

    with pytest.raises(PromotionRefused, match="roc_auc"):
        registry.promote(NAME, "2", "dev", gate_data=models.gate, metric="roc_auc")


def test_gate_accepts_better_challenger_and_records_it(registry: Registry, models: Models) -> None:
    registry.register(models.bad)
    registry.register(models.good)
    _to_prod(registry, "1")
    gate_data = models.gate.assign(y=(models.gate["y"] == "yes").astype(int))  # 0/1 labels work too
    record = registry.promote(NAME, "2", "dev", gate_data=gate_data, actor="bob")
    gate = record["gate"]
    assert (
        gate["passed"] and gate["metric"] == "pr_auc" and gate["rows"] == 2000 and gate["tolerance"] == 0.01
    )
    assert gate["challenger"] > gate["champion"]
    assert (record["version"], record["previous"], record["override"]) == ("2", "1", None)
    assert [h["version"] for h in record["history"]] == ["1"]
    assert record == _stage_file(registry, "dev")
    assert registry.promote(NAME, "2", "preprod", gate_data=models.gate)["gate"]["passed"]


def test_override_skips_order_and_gate_and_is_recorded(registry: Registry, models: Models) -> None:
    registry.register(models.good)
    registry.register(models.bad)
    _to_prod(registry, "1")
    with pytest.raises(RegistryError, match="must say why"):
        registry.promote(NAME, "2", "prod", override_reason="  ")
    record = registry.promote(NAME, "2", "prod", override_reason="incident 42: hotfix", actor="carol")
    stored = _stage_file(registry, "prod")
    assert stored == record
    assert stored["override"] == {"reason": "incident 42: hotfix"}
    assert (stored["version"], stored["previous"], stored["gate"], stored["actor"]) == (
        "2",
        "1",
        None,
        "carol",
    )
    assert stored["history"][-1]["version"] == "1"


def test_rollback_restores_previous_and_records_history(registry: Registry, models: Models) -> None:
    registry.register(models.bad)
    registry.register(models.good)
    registry.promote(NAME, "1", "dev")
    with pytest.raises(RegistryError, match="no previous version"):
        registry.rollback(NAME, "dev", reason="nothing to undo")
    with pytest.raises(NotFoundError, match="points at no version"):
        registry.rollback(NAME, "prod", reason="x")
    registry.promote(NAME, "2", "dev", gate_data=models.gate)

    record = registry.rollback(NAME, "dev", actor="dave", reason="latency regression")
    assert (record["version"], record["kind"], record["reason"], record["actor"]) == (
        "1", "rollback", "latency regression", "dave",
    )  # fmt: skip
    assert record["previous"] == "2"
    assert [(h["version"], h["kind"]) for h in record["history"]] == [("1", "promote"), ("2", "promote")]
    assert _stage_file(registry, "dev") == record
    assert registry.load(NAME, "dev").version == "1"
    # Rolling back the rollback returns to 2; the rollback itself is now in the history.
    again = registry.rollback(NAME, "dev", reason="false alarm")
    assert again["version"] == "2"
    assert again["history"][-1]["kind"] == "rollback"
    assert again["history"][-1]["reason"] == "latency regression"


def test_history_is_capped(registry: Registry, models: Models) -> None:
    registry.register(models.good)
    registry.register(models.good)
    for i in range(27):
        registry.promote(NAME, str(1 + i % 2), "dev", override_reason=f"flip {i}")
    history = _stage_file(registry, "dev")["history"]
    assert len(history) == 26
    for i in range(27, 56):
        registry.promote(NAME, str(1 + i % 2), "dev", override_reason=f"flip {i}")
    history = _stage_file(registry, "dev")["history"]
    assert len(history) == 50
    assert history[-1]["override"]["reason"] == "flip 54" and history[0]["override"]["reason"] == "flip 5"
    assert all("history" not in h for h in history)


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


def test_promotion_racing_another_promotion_fails_cleanly(
    registry: Registry, models: Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.register(models.bad)
    registry.register(models.good)
    registry.register(models.good)
    registry.promote(NAME, "1", "dev")
    other = Registry(registry.store)  # a colleague, same registry
    original_load = registry.load

    def load_while_someone_promotes(*args, **kwargs):  # type: ignore[no-untyped-def]
        if other.stage(NAME, "dev")["version"] == "1":  # type: ignore[index]
            other.promote(NAME, "3", "dev", override_reason="their hotfix")
        return original_load(*args, **kwargs)

    monkeypatch.setattr(registry, "load", load_while_someone_promotes)
    with pytest.raises(ConcurrentUpdateError, match="changed while"):
        registry.promote(NAME, "2", "dev", gate_data=models.gate)
    assert registry.stage(NAME, "dev")["version"] == "3"  # type: ignore[index]


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


def test_import_stays_light() -> None:
    code = (
        "import sys, model.registry; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'sklearn', 'onnxruntime', 'azure'}); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)  # noqa: S603 - our interpreter running fixed code
