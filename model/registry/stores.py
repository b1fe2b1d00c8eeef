"""Where the registry's bytes live: a local folder or a blob container, behind one small protocol.

Both stores give the same guarantees: create-only writes (a version file is written once, never
overwritten) and pointer replacement under optimistic concurrency (a token says "the version I
read"; a write with a stale token fails). The blob store imports its SDK only when it is used.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from lake.contract import content_type
from model.artifacts import sha256_bytes
from model.registry.errors import AlreadyExistsError, ConcurrentUpdateError, RegistryError

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

Token = str  # an etag (blob) or the sha256 of the current content (folder): "the version I read"


class Store(Protocol):
    """What the registry needs of a store; paths are POSIX, relative to the store's root."""

    def describe(self) -> str: ...

    def read(self, path: str) -> bytes | None: ...

    def read_with_token(self, path: str) -> tuple[bytes | None, Token | None]: ...

    def read_if_changed(self, path: str, token: Token | None) -> tuple[bytes | None, Token | None] | None:
        """(content, token) if the file is no longer the version `token` names, else None."""
        ...

    def create(self, path: str, data: bytes) -> None: ...

    def replace(self, path: str, data: bytes, expected: Token | None) -> Token: ...

    def list(self, prefix: str) -> list[str]: ...


def _check_path(path: str) -> str:
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or any(p in {"", ".", ".."} for p in parts):
        raise RegistryError(f"unsafe store path {path!r}")
    return path


class FolderStore:
    """A registry in a local folder (offline work, tests): the same contract as blob storage.

    Create-only writes use exclusive creation (`open(path, "xb")`); pointers are replaced
    atomically (temp file + `os.replace`) under an advisory lock, after comparing the sha256 of
    the current content with the caller's token. Temp and lock files start with a dot and are
    never listed.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return str(self.root)

    def _path(self, path: str) -> Path:
        return self.root.joinpath(*PurePosixPath(_check_path(path)).parts)

    def read(self, path: str) -> bytes | None:
        try:
            return self._path(path).read_bytes()
        except FileNotFoundError:
            return None

    def read_with_token(self, path: str) -> tuple[bytes | None, Token | None]:
        data = self.read(path)
        return data, None if data is None else sha256_bytes(data)

    def read_if_changed(self, path: str, token: Token | None) -> tuple[bytes | None, Token | None] | None:
        data, current = self.read_with_token(path)
        return None if current == token else (data, current)

    def create(self, path: str, data: bytes) -> None:
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = target.open("xb")
        except FileExistsError:
            raise AlreadyExistsError(
                f"{path} already exists in {self.root}: versions are immutable"
            ) from None
        try:
            with handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            target.unlink(missing_ok=True)  # never leave a truncated file behind a failed write
            raise

    @contextlib.contextmanager
    def _locked(self, target: Path) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # Windows: the token check alone still catches most races
            yield
            return
        with (target.parent / f".{target.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def replace(self, path: str, data: bytes, expected: Token | None) -> Token:
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._locked(target):
            _, current = self.read_with_token(path)
            if current != expected:
                raise ConcurrentUpdateError(
                    f"{path} changed since it was read (expected {_describe_token(expected)}, "
                    f"found {_describe_token(current)}): read it again and retry"
                )
            temp = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"
            try:
                with temp.open("xb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                temp.replace(target)  # os.replace: atomic on one file system
            finally:
                temp.unlink(missing_ok=True)
        return sha256_bytes(data)

    def list(self, prefix: str) -> list[str]:
        directory = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self._path(directory) if directory else self.root
        if not base.is_dir():
            return []
        found = []
        for path in base.rglob("*"):
            relative = path.relative_to(self.root)
            if path.is_file() and not any(part.startswith(".") for part in relative.parts):
                name = relative.as_posix()
                if name.startswith(prefix):
                    found.append(name)
        return sorted(found)


def _describe_token(token: Token | None) -> str:
    return "no file" if token is None else f"version {token[:12]}"


class BlobStore:
    """A registry in a blob container (the `models` container of the data lake).

    Create-only writes are uploads with `overwrite=False`; pointers are replaced only if their
    etag is still the one read (`If-Match`), or, for a new pointer, only if it is still missing
    (`If-None-Match: *`). Uploads of registry files are single requests, so a blob is either
    absent or complete. The container is created only when asked (`ensure=True`).
    """

    def __init__(self, container: ContainerClient, *, ensure: bool = False) -> None:
        self.container = container
        if ensure:
            from azure.core.exceptions import ResourceExistsError

            with contextlib.suppress(ResourceExistsError):
                container.create_container()

    def describe(self) -> str:
        return self.container.url

    def _missing_container(self) -> RegistryError:
        return RegistryError(
            f"blob container {self.container.container_name!r} does not exist at {self.container.url}: "
            "create it (open_registry(..., ensure=True), or provision it with the infrastructure)"
        )

    def read(self, path: str) -> bytes | None:
        return self.read_with_token(path)[0]

    def read_with_token(self, path: str) -> tuple[bytes | None, Token | None]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            downloader = self.container.download_blob(_check_path(path))
            data = downloader.readall()
        except ResourceNotFoundError as exc:
            if exc.error_code == "ContainerNotFound":
                raise self._missing_container() from None
            return None, None
        return data, downloader.properties.etag

    def read_if_changed(self, path: str, token: Token | None) -> tuple[bytes | None, Token | None] | None:
        """A conditional GET (`If-None-Match`): an unchanged blob costs a 304 with no body.

        Azure Storage answers an unchanged blob with 304; Azurite with 412 ConditionNotMet
        (Azure/Azurite#633). On this request the only condition is If-None-Match, so either
        means "unchanged".
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import (
            ResourceModifiedError,
            ResourceNotFoundError,
            ResourceNotModifiedError,
        )

        if token is None:
            data, current = self.read_with_token(path)
            return None if current is None else (data, current)
        try:
            downloader = self.container.download_blob(
                _check_path(path), etag=token, match_condition=MatchConditions.IfModified
            )
            return downloader.readall(), downloader.properties.etag
        except (ResourceNotModifiedError, ResourceModifiedError):
            return None
        except ResourceNotFoundError as exc:
            if exc.error_code == "ContainerNotFound":
                raise self._missing_container() from None
            return None, None

    def _upload(self, path: str, data: bytes, **conditions: Any) -> Token:
        from azure.storage.blob import ContentSettings

        blob = self.container.get_blob_client(_check_path(path))
        settings = ContentSettings(content_type=content_type(path))
        result = blob.upload_blob(data, content_settings=settings, **conditions)
        return str(result["etag"])

    def create(self, path: str, data: bytes) -> None:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        try:
            self._upload(path, data, overwrite=False)
        except ResourceExistsError:
            raise AlreadyExistsError(
                f"{path} already exists in {self.describe()}: versions are immutable"
            ) from None
        except ResourceNotFoundError as exc:
            if exc.error_code == "ContainerNotFound":
                raise self._missing_container() from None
            raise

    def replace(self, path: str, data: bytes, expected: Token | None) -> Token:
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError

        if expected is None:
            conditions: dict[str, Any] = {"match_condition": MatchConditions.IfMissing}
        else:
            conditions = {"etag": expected, "match_condition": MatchConditions.IfNotModified}
        try:
            return self._upload(path, data, overwrite=True, **conditions)
        except HttpResponseError as exc:  # 412 if the etag moved on, 409 if a "new" pointer exists
            if exc.error_code == "ContainerNotFound":
                raise self._missing_container() from None
            if not isinstance(exc, ResourceModifiedError | ResourceExistsError) and exc.status_code != 412:
                raise
            raise ConcurrentUpdateError(
                f"{path} changed since it was read (expected {_describe_token(expected)}): "
                "read it again and retry"
            ) from None

    def list(self, prefix: str) -> list[str]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return sorted(blob.name for blob in self.container.list_blobs(name_starts_with=prefix))
        except ResourceNotFoundError:
            raise self._missing_container() from None
