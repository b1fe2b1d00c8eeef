"""The code package upload (infra/upload.py) against real Azurite, and the program calling it only
during `pulumi up`, after the role assignments, with the URL the One Deploy deployment uses."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pulumi
import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from infra import config
from infra.archive import CodeArchive, CodeBundle, code_bundle, code_files, zip_folder
from infra.cloud import offline_ops
from infra.naming import Names
from infra.program import build
from infra.synth import code_archive, mock_stack
from infra.upload import PackageConflictError, upload_archive, upload_folder
from infra.waiting import WaitTimeoutError


@pytest.fixture
def package_container(blob_service: BlobServiceClient) -> ContainerClient:
    container = blob_service.get_container_client(f"app-package-{uuid.uuid4().hex[:8]}")
    container.create_container()
    return container


def _archive(tmp_path: Path, text: str, name: str = "a.zip") -> CodeArchive:
    source = tmp_path / f"src-{name}"
    source.mkdir()
    (source / "function_app.py").write_text(text)
    return CodeArchive(tmp_path / name, zip_folder(source, tmp_path / name))


@pytest.mark.integration
def test_upload_is_create_only_and_idempotent(package_container: ContainerClient, tmp_path: Path) -> None:
    archive = _archive(tmp_path, "print('v1')\n")
    url = upload_archive(package_container, archive)
    assert url.endswith(f"/{package_container.container_name}/{archive.blob_name}")
    blob = package_container.get_blob_client(archive.blob_name)
    assert blob.download_blob().readall() == archive.path.read_bytes()
    properties = blob.get_blob_properties()
    assert properties.metadata == {"sha256": archive.sha256}
    assert properties.content_settings.content_type == "application/zip"
    assert upload_archive(package_container, archive) == url  # a re-run is a no-op
    assert blob.get_blob_properties().etag == properties.etag


@pytest.mark.integration
def test_a_different_archive_under_the_same_name_is_refused(
    package_container: ContainerClient, tmp_path: Path
) -> None:
    original = _archive(tmp_path, "print('v1')\n")
    upload_archive(package_container, original)
    impostor = CodeArchive(
        _archive(tmp_path, "print('evil')\n", "b.zip").path, original.sha256[:16] + "0" * 48
    )
    with pytest.raises(PackageConflictError, match="already exists with sha256"):
        upload_archive(package_container, impostor)
    kept = package_container.get_blob_client(original.blob_name).download_blob().readall()
    assert kept == original.path.read_bytes()


@pytest.mark.integration
def test_forbidden_upload_waits_for_the_role_then_fails_clearly(
    azurite, package_container: ContainerClient, tmp_path: Path
) -> None:
    """403 (a role assignment not yet propagated) is retried until the deadline, with progress,
    then an error that names the next step."""
    wrong_key = azurite.connection_string.replace("AccountKey=", "AccountKey=AAAA")
    denied = BlobServiceClient.from_connection_string(wrong_key).get_container_client(
        package_container.container_name
    )
    naps: list[float] = []
    said: list[str] = []
    with pytest.raises(WaitTimeoutError, match="run `pulumi up` again") as raised:
        upload_archive(
            denied,
            _archive(tmp_path, "print(1)\n"),
            sleep=naps.append,
            progress=said.append,
            clock=lambda: sum(naps),  # simulated time: each nap advances the clock
        )
    assert "403" in str(raised.value)
    # Role assignments "can take up to 10 minutes" (Troubleshoot Azure RBAC): it keeps trying that long.
    assert 600 <= sum(naps) <= 660 and len(said) == len(naps)
    assert said and "role assignment propagating" in said[0]
    assert list(package_container.list_blobs()) == []


@pytest.mark.integration
def test_pulumi_up_uploads_after_the_role_assignments(package_container: ContainerClient) -> None:
    """Under the mocks as `pulumi up` (not a preview): the program calls the uploader, which here
    writes to Azurite for real, and deploys the URL it returns."""
    calls: list[tuple[str, str]] = []

    def uploader(endpoint: str, container: str, archive: CodeArchive) -> str:
        calls.append((endpoint, container))
        return upload_archive(package_container, archive)

    mocks = mock_stack("dev")
    outputs: dict = {}
    pulumi.runtime.test(
        lambda: pulumi.Output.all(**build(config.load(), code_archive(), ops=offline_ops(uploader))).apply(
            outputs.update
        )
    )()
    host = Names("mlops", "dev").storage_account("fn")  # Pulumi.dev.yaml's prefix
    assert calls == [(f"https://{host}.blob.core.windows.net/", "app-package")]
    assert (
        outputs["codePackage"]
        == f"https://{host}.blob.core.windows.net/app-package/{code_archive().blob_name}"
    )
    assert package_container.get_blob_client(code_archive().blob_name).exists()
    types = [r.type for r in mocks.resources]
    last_assignment = max(i for i, t in enumerate(types) if t == "azure-native:authorization:RoleAssignment")
    assert types.index("azure-native:resources:Deployment") > last_assignment
    deployment = next(r for r in mocks.resources if r.type == "azure-native:resources:Deployment")
    # One Deploy gets what the uploader returned (in the cloud: the SAS-signed URL).
    assert (
        deployment.inputs["properties"]["template"]["resources"][0]["properties"]["packageUri"]
        == f"{package_container.url}/{code_archive().blob_name}"
    )


# --- the retrain job's code (model/, lake/) as a folder of the workspace storage ------------------
def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_code_files_leave_out_caches_compiled_files_and_tests(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "model/__init__.py": "",
            "model/train.py": "x = 1\n",
            "model/registry/store.py": "y = 2\n",
            "model/__pycache__/train.cpython-311.pyc": "bytecode",
            "model/stray.pyc": "bytecode",
            "model/tests/test_train.py": "def test(): ...\n",
            "model/test_local.py": "def test(): ...\n",
            "lake/contract.py": "A = 'a'\n",
            "functions/app.py": "not part of the job\n",
        },
    )
    assert code_files(root) == (
        "lake/contract.py",
        "model/__init__.py",
        "model/registry/store.py",
        "model/train.py",
    )


def test_the_code_hash_is_deterministic_and_follows_every_byte_and_name(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"model/a.py": "a = 1\n", "lake/b.py": "b = 2\n"})
    first = code_bundle(root)
    assert re.fullmatch(r"[0-9a-f]{16}", first.digest) and first.digest == first.sha256[:16]
    assert code_bundle(root) == first  # same tree, same hash
    (root / "model" / "__pycache__").mkdir()
    (root / "model" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert code_bundle(root).digest == first.digest  # caches do not count
    (root / "model" / "a.py").write_text("a = 2\n")
    changed = code_bundle(root)
    assert changed.digest != first.digest  # a changed byte is a new version
    (root / "model" / "a.py").rename(root / "model" / "c.py")
    assert code_bundle(root).digest not in {first.digest, changed.digest}  # so is a renamed file


def test_the_repositorys_code_bundle_is_model_and_lake_only() -> None:
    bundle = code_bundle()
    assert bundle.files and {f.split("/", 1)[0] for f in bundle.files} == {"model", "lake"}
    assert "lake/contract.py" in bundle.files and "model/__main__.py" in bundle.files
    assert not [f for f in bundle.files if "__pycache__" in f or f.endswith(".pyc")]


@pytest.mark.integration
def test_the_code_folder_upload_is_create_only_and_idempotent(
    package_container: ContainerClient, tmp_path: Path
) -> None:
    bundle = code_bundle(_tree(tmp_path, {"model/a.py": "a = 1\n", "lake/b.py": "b = 2\n"}))
    url = upload_folder(package_container, bundle)
    assert url == f"{package_container.url}/{bundle.digest}/"
    names = sorted(b.name for b in package_container.list_blobs())
    assert names == [f"{bundle.digest}/lake/b.py", f"{bundle.digest}/model/a.py"]
    blob = package_container.get_blob_client(f"{bundle.digest}/model/a.py")
    assert blob.download_blob().readall() == b"a = 1\n"
    etag = blob.get_blob_properties().etag
    assert upload_folder(package_container, bundle) == url  # a re-run is a no-op
    assert blob.get_blob_properties().etag == etag
    tampered = CodeBundle(_tree(tmp_path / "other", {"model/a.py": "evil\n"}), ("model/a.py",), bundle.sha256)
    with pytest.raises(PackageConflictError, match="already exists with sha256"):
        upload_folder(package_container, tampered)
    assert blob.download_blob().readall() == b"a = 1\n"


@pytest.mark.integration
def test_a_forbidden_code_upload_waits_for_the_role_then_names_the_next_step(
    azurite, package_container: ContainerClient, tmp_path: Path
) -> None:
    wrong_key = azurite.connection_string.replace("AccountKey=", "AccountKey=AAAA")
    denied = BlobServiceClient.from_connection_string(wrong_key).get_container_client(
        package_container.container_name
    )
    naps: list[float] = []
    with pytest.raises(WaitTimeoutError, match="run `pulumi up` again") as raised:
        upload_folder(
            denied,
            code_bundle(_tree(tmp_path, {"model/a.py": "a = 1\n"})),
            sleep=naps.append,
            progress=lambda _: None,
            clock=lambda: sum(naps),
        )
    assert "403" in str(raised.value) and "code" in str(raised.value)
    assert 600 <= sum(naps) <= 660
    assert list(package_container.list_blobs()) == []
