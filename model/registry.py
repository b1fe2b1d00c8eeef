"""The model registry: immutable numbered versions and gated stage pointers, on blob storage or a folder.

Layout (container `models` in the data lake, or any local folder for offline work):

    {model}/{version}/model.onnx, metadata.json, reference.json, model_card.md, plots/*.png
    {model}/stages/{dev,preprod,prod}.json      which version each stage serves, and its history

Versions are written create-only, metadata.json last: its presence is what makes a version exist.
A registration that fails half-way leaves files without metadata.json; listing, `show` and `load`
ignore such a version, and its number is never reused (delete the folder by hand to tidy up).
Stage pointers are the only files ever overwritten, always with optimistic concurrency, so two
people promoting at once cannot silently undo each other.

Importing this module must stay light (no scikit-learn, no Azure SDK, no ONNX Runtime): the gate
imports sklearn.metrics only when it runs, the blob store its SDK only when it is used.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from model.artifacts import (
    METADATA_FILE,
    MODEL_FILE,
    IntegrityError,
    artifact_files,
    read_metadata,
    sha256_bytes,
    verify,
)

if TYPE_CHECKING:
    import pandas as pd
    from azure.storage.blob import ContainerClient

    from model.serving import LoadedModel

log = logging.getLogger(__name__)

STAGES = ("dev", "preprod", "prod")
HISTORY_LIMIT = 50
GATE_METRICS = ("pr_auc", "roc_auc")
KEY_METRICS = ("roc_auc", "pr_auc")
MAX_REGISTER_ATTEMPTS = 20
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_RESERVED_NAMES = {"stages"}

Token = str  # an etag (blob) or the sha256 of the current content (folder): "the version I read"


# --------------------------------------------------------------------------------------------- errors


class RegistryError(RuntimeError):
    """Base of every registry error; the message says what to do about it."""


class AlreadyExistsError(RegistryError):
    """A create-only write hit an existing file: versions are immutable."""


class ConcurrentUpdateError(RegistryError):
    """A stage pointer changed between reading it and writing it (someone else promoted meanwhile)."""


class NotFoundError(RegistryError, LookupError):
    """Unknown model, version or stage; the message lists what exists."""


class PromotionRefused(RegistryError):  # noqa: N818 - the name the callers and docs use
    """The stage order or the gate refused a promotion; the message says how to override."""

    def __init__(self, message: str, gate: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.gate = gate


# --------------------------------------------------------------------------------------------- stores


class Store(Protocol):
    """The four operations the registry needs; paths are POSIX, relative to the store's root."""

    def describe(self) -> str: ...

    def read(self, path: str) -> bytes | None: ...

    def read_with_token(self, path: str) -> tuple[bytes | None, Token | None]: ...

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


_CONTENT_TYPES = {".json": "application/json", ".md": "text/markdown; charset=utf-8", ".png": "image/png"}


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

    def _upload(self, path: str, data: bytes, **conditions: Any) -> Token:
        from azure.storage.blob import ContentSettings

        content_type = _CONTENT_TYPES.get(PurePosixPath(path).suffix, "application/octet-stream")
        blob = self.container.get_blob_client(_check_path(path))
        settings = ContentSettings(content_type=content_type)
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


def open_registry(location: str, *, ensure: bool = False, env: Mapping[str, str] | None = None) -> Registry:
    """`blob`: the `models` container of the DataLake connection (identity in Azure, Azurite locally).

    Anything else is a local folder, for offline work and experiments.
    """
    if location == "blob":
        from lake.clients import blob_service
        from lake.connection import storage_connection
        from lake.contract import DATA_LAKE, MODELS_CONTAINER

        connection = storage_connection(os.environ if env is None else env, DATA_LAKE)
        container = blob_service(connection).get_container_client(MODELS_CONTAINER)
        return Registry(BlobStore(container, ensure=ensure))
    return Registry(FolderStore(Path(location)))


# --------------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class VersionInfo:
    """One line of `versions()`: enough to choose what to promote."""

    version: str
    registered_at: str | None
    metrics: dict[str, float]
    stages: tuple[str, ...]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _actor(actor: str | None) -> str:
    return actor or os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in _RESERVED_NAMES:
        raise RegistryError(
            f"model name {name!r} is not allowed: use letters, digits, '.', '_' or '-' (at most 64, "
            "starting with a letter or digit)"
        )
    return name


def _check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise NotFoundError(f"unknown stage {stage!r}: stages are {' -> '.join(STAGES)}")
    return stage


def _check_relative(path: str) -> str:
    """Artifact names come from metadata.json: never let one escape the version folder."""
    parts = PurePosixPath(path).parts
    if path.startswith("/") or "\\" in path or not parts or any(p in {"", ".", ".."} for p in parts):
        raise IntegrityError(f"artifact path {path!r} in metadata.json is not a plain relative path")
    if path == METADATA_FILE:
        raise IntegrityError("metadata.json cannot list itself among its artifacts")
    return path


def _labels(values: pd.Series) -> pd.Series:
    """The gate's labels as 0/1, from "yes"/"no", booleans or 0/1."""
    import pandas as pd

    text = values.astype(str).str.strip().str.lower()
    mapped = text.map({"yes": 1, "no": 0, "1": 1, "0": 0, "true": 1, "false": 0, "1.0": 1, "0.0": 0})
    bad = mapped.isna()
    if bad.any():
        examples = sorted(set(values[bad].astype(str)))[:5]
        raise RegistryError(f"gate data column 'y' must be yes/no or 0/1; found {examples}")
    return pd.Series(mapped.astype(int).to_numpy(), index=values.index)


def evaluate_gate(
    challenger: LoadedModel, champion: LoadedModel, data: pd.DataFrame, metric: str = "pr_auc"
) -> dict[str, Any]:
    """Score both models on the same labelled rows and compute `metric` on rows both of them scored.

    Each model validates and prepares the raw rows itself, exactly as in serving; rows are matched
    by position (a row key replaces the id column in each model's copy), so duplicate or missing
    client ids cannot misalign them.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    if metric not in GATE_METRICS:
        raise RegistryError(f"gate metric {metric!r} is not one of {GATE_METRICS}")
    if "y" not in data.columns:
        raise RegistryError("gate data needs a 'y' column (yes/no or 0/1) with the true outcome of every row")
    if data.empty:
        raise RegistryError("gate data has no rows")
    labels = _labels(data["y"]).to_numpy()
    probabilities = []
    for model in (challenger, champion):
        frame = data.reset_index(drop=True).copy()
        frame[model.schema.id_column] = range(len(frame))
        scored, _ = model.predict(frame)
        probabilities.append(scored.set_index(model.schema.id_column)["probability"])
    common = probabilities[0].index.intersection(probabilities[1].index).sort_values()
    y = labels[common.to_numpy(dtype=int)]
    if len(set(y.tolist())) < 2:
        raise RegistryError(
            f"gate data has {len(common)} rows both models could score, but not both outcomes: "
            "the metric needs positives and negatives"
        )
    score = average_precision_score if metric == "pr_auc" else roc_auc_score
    values = [float(score(y, p.loc[common].to_numpy())) for p in probabilities]
    return {"metric": metric, "challenger": values[0], "champion": values[1], "rows": len(common)}


class Registry:
    """Register model folders as immutable versions, and move them through dev -> preprod -> prod."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"Registry({self.store.describe()})"

    # ---------------------------------------------------------------- reading

    def _paths(self, name: str, version: str, file: str) -> str:
        return f"{name}/{version}/{file}"

    def _stage_path(self, name: str, stage: str) -> str:
        return f"{name}/stages/{stage}.json"

    def _numbers(self, name: str) -> tuple[set[int], set[int]]:
        """(every version number with any file, the complete ones: with metadata.json)."""
        seen: set[int] = set()
        complete: set[int] = set()
        for path in self.store.list(f"{name}/"):
            parts = path.split("/")
            if len(parts) >= 3 and parts[1].isdigit():
                seen.add(int(parts[1]))
                if len(parts) == 3 and parts[2] == METADATA_FILE:
                    complete.add(int(parts[1]))
        return seen, complete

    def models(self) -> list[str]:
        """Models with at least one complete version."""
        names = set()
        for path in self.store.list(""):
            parts = path.split("/")
            if len(parts) == 3 and parts[1].isdigit() and parts[2] == METADATA_FILE:
                names.add(parts[0])
        return sorted(names)

    def _unknown_model(self, name: str) -> NotFoundError:
        known = self.models()
        return NotFoundError(
            f"no model {name!r} in {self.store.describe()}; "
            f"models: {', '.join(known) if known else 'none yet'}"
        )

    def _metadata(self, name: str, version: str) -> dict[str, Any] | None:
        raw = self.store.read(self._paths(name, version, METADATA_FILE))
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            log.warning("%s/%s/%s is not valid JSON: treating the version as incomplete", name, version,
                        METADATA_FILE)  # fmt: skip
            return None

    def _pointers(self, name: str) -> dict[str, dict[str, Any]]:
        pointers = {}
        for stage in STAGES:
            record = self.stage(name, stage)
            if record is not None:
                pointers[stage] = record
        return pointers

    def versions(self, name: str) -> list[VersionInfo]:
        """Complete versions, oldest first, with their key validation metrics and current stages."""
        _check_name(name)
        _, complete = self._numbers(name)
        if not complete:
            raise self._unknown_model(name)
        stages_of: dict[str, list[str]] = {}
        for stage, record in self._pointers(name).items():
            stages_of.setdefault(str(record["version"]), []).append(stage)
        infos = []
        for number in sorted(complete):
            version = str(number)
            metadata = self._metadata(name, version)
            if metadata is None:
                continue
            validation = (metadata.get("metrics") or {}).get("validation") or {}
            metrics = {
                k: float(validation[k]) for k in KEY_METRICS if isinstance(validation.get(k), int | float)
            }
            infos.append(VersionInfo(version, metadata.get("registered_at"), metrics,
                                     tuple(stages_of.get(version, ()))))  # fmt: skip
        return infos

    def stage(self, name: str, stage: str) -> dict[str, Any] | None:
        """The stage pointer record (version, who, when, gate, override, history), or None if unset."""
        raw = self.store.read(self._stage_path(_check_name(name), _check_stage(stage)))
        return None if raw is None else json.loads(raw)

    def resolve(self, name: str, ref: str) -> str:
        """A version number, or the version a stage points at; 'latest' is the newest version."""
        _check_name(name)
        ref = str(ref)
        if ref in STAGES:
            record = self.stage(name, ref)
            if record is None:
                pointers = self._pointers(name)
                if not pointers and not self._numbers(name)[1]:
                    raise self._unknown_model(name)
                current = ", ".join(f"{s}={r['version']}" for s, r in pointers.items()) or "none"
                raise NotFoundError(
                    f"stage {ref} of {name!r} points at no version yet (stages set: {current})"
                )
            return str(record["version"])
        _, complete = self._numbers(name)
        if not complete:
            raise self._unknown_model(name)
        if ref == "latest":
            return str(max(complete))
        if not ref.isdigit() or int(ref) not in complete:
            listed = ", ".join(str(n) for n in sorted(complete))
            raise NotFoundError(
                f"{name!r} has no version {ref!r}; versions: {listed}; stages: {', '.join(STAGES)}"
            )
        return str(int(ref))

    def show(self, name: str, ref: str) -> dict[str, Any]:
        """The metadata of a version (by number or stage name)."""
        version = self.resolve(name, ref)
        metadata = self._metadata(name, version)
        if metadata is None:  # deleted between listing and reading
            raise NotFoundError(f"version {version} of {name!r} has no readable metadata.json")
        return metadata

    def load(self, name: str, ref: str, threads: int = 1) -> LoadedModel:
        """A ready-to-score model; the ONNX bytes are checked against metadata's sha256 first."""
        from model.serving import load_bytes

        metadata = self.show(name, ref)
        version = str(metadata["version"])
        model_bytes = self.store.read(self._paths(name, version, MODEL_FILE))
        if model_bytes is None:
            raise IntegrityError(f"version {version} of {name!r} has metadata.json but no {MODEL_FILE}")
        return load_bytes(metadata, model_bytes, threads)

    def download(self, name: str, ref: str, dest: Path) -> Path:
        """Copy every file of a version into `dest` (a model folder), verifying each sha256."""
        metadata = self.show(name, ref)
        version = str(metadata["version"])
        dest = Path(dest)
        for relative in sorted(metadata.get("artifacts", {})):
            data = self.store.read(self._paths(name, version, _check_relative(relative)))
            if data is None:
                raise IntegrityError(f"version {version} of {name!r} is missing {relative}")
            verify(relative, data, metadata)
            target = dest.joinpath(*PurePosixPath(relative).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (dest / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        return dest

    # ---------------------------------------------------------------- writing

    def register(self, folder: Path, name: str | None = None) -> str:
        """Store a model folder as the next version; return its number.

        Every artifact is verified against metadata.json before anything is written, and the very
        bytes that were verified are uploaded. model.onnx is written first, create-only: whoever
        creates `{name}/{n}/model.onnx` owns version n, so a concurrent registration moves on to
        n+1. metadata.json is written last: until then the version does not exist for readers.
        """
        folder = Path(folder)
        metadata = read_metadata(folder)
        name = _check_name(name or metadata.get("name") or "")
        recorded = {_check_relative(p) for p in metadata.get("artifacts") or {}}
        present = set(artifact_files(folder))
        if MODEL_FILE not in recorded:
            raise IntegrityError(
                f"{folder}/{METADATA_FILE} records no sha256 for {MODEL_FILE}: not a model folder"
            )
        if recorded - present:
            missing = sorted(recorded - present)
            raise IntegrityError(f"{folder} is missing {missing}, listed in {METADATA_FILE}")
        if present - recorded:
            raise IntegrityError(
                f"{folder} has files not recorded in {METADATA_FILE}: {sorted(present - recorded)}; "
                "re-run training (or remove them) so every registered file is covered by a sha256"
            )
        files = {}
        for relative in [MODEL_FILE, *sorted(recorded - {MODEL_FILE})]:
            data = (folder / relative).read_bytes()
            verify(relative, data, metadata)
            files[relative] = data

        seen, _ = self._numbers(name)
        number = max(seen, default=0) + 1
        for _attempt in range(MAX_REGISTER_ATTEMPTS):
            version = str(number)
            try:
                self.store.create(self._paths(name, version, MODEL_FILE), files[MODEL_FILE])
            except AlreadyExistsError:
                number += 1  # another registration claimed this number first
                continue
            for relative, data in files.items():
                if relative != MODEL_FILE:
                    self.store.create(self._paths(name, version, relative), data)
            final = {**metadata, "name": name, "version": version, "registered_at": _now()}
            self.store.create(self._paths(name, version, METADATA_FILE), json.dumps(final, indent=2).encode())
            log.info("registered %s version %s from %s in %s", name, version, folder, self.store.describe())
            return version
        raise ConcurrentUpdateError(
            f"could not claim a version number for {name!r} after {MAX_REGISTER_ATTEMPTS} attempts "
            "(many concurrent registrations?): retry"
        )

    def _write_stage(
        self,
        name: str,
        stage: str,
        record: dict[str, Any],
        current: dict[str, Any] | None,
        token: Token | None,
    ) -> dict[str, Any]:
        history: list[dict[str, Any]] = []
        if current is not None:
            history = [*current.get("history", []), {k: v for k, v in current.items() if k != "history"}]
        record["history"] = history[-HISTORY_LIMIT:]
        try:
            self.store.replace(self._stage_path(name, stage), json.dumps(record, indent=2).encode(), token)
        except ConcurrentUpdateError:
            raise ConcurrentUpdateError(
                f"stage {stage} of {name!r} changed while this change was being prepared (someone else "
                f"promoted or rolled back): check `stage({name!r}, {stage!r})` and retry"
            ) from None
        return record

    def promote(
        self,
        name: str,
        version: str,
        stage: str,
        *,
        gate_data: pd.DataFrame | None = None,
        tolerance: float = 0.01,
        metric: str = "pr_auc",
        override_reason: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Point `stage` at `version` if the order and the gate allow it; return the new stage record.

        Order: dev accepts any version, preprod only the current dev version, prod only the current
        preprod version. Gate: if the stage already serves another version (the champion), the
        challenger must score at least champion - tolerance on `gate_data`. `override_reason`
        skips both checks and is recorded in the stage file for whoever looks later.
        """
        _check_stage(stage)
        version = self.resolve(name, version)
        if metric not in GATE_METRICS:
            raise RegistryError(f"gate metric {metric!r} is not one of {GATE_METRICS}")
        if override_reason is not None and not override_reason.strip():
            raise RegistryError("override_reason must say why the checks are skipped (it is recorded)")
        # The token is read before any check, so a change made meanwhile makes the write fail.
        raw, token = self.store.read_with_token(self._stage_path(name, stage))
        current = None if raw is None else json.loads(raw)
        if current is not None and str(current["version"]) == version:
            log.info("%s %s already points at version %s: nothing to do", name, stage, version)
            return current
        champion = None if current is None else str(current["version"])

        gate = None
        if override_reason is None:
            index = STAGES.index(stage)
            if index > 0:
                before = STAGES[index - 1]
                pointer = self.stage(name, before)
                in_before = None if pointer is None else str(pointer["version"])
                if in_before != version:
                    raise PromotionRefused(
                        f"version {version} of {name!r} cannot go to {stage}: stages go "
                        f"{' -> '.join(STAGES)}, and {before} serves {in_before or 'nothing'}, "
                        f"not {version}. "
                        f"Promote it to {before} first, or pass override_reason to skip the order (recorded)."
                    )
            if champion is not None:
                gate = self._gate(name, version, champion, stage, gate_data, tolerance, metric)

        record: dict[str, Any] = {
            "stage": stage,
            "version": version,
            "kind": "promote",
            "promoted_at": _now(),
            "actor": _actor(actor),
            "gate": gate,
            "override": None if override_reason is None else {"reason": override_reason.strip()},
            "previous": champion,
        }
        record = self._write_stage(name, stage, record, current, token)
        log.info("%s %s -> version %s (was %s)%s", name, stage, version, champion,
                 " OVERRIDE: " + override_reason if override_reason else "")  # fmt: skip
        return record

    def _gate(
        self,
        name: str,
        version: str,
        champion: str,
        stage: str,
        gate_data: pd.DataFrame | None,
        tolerance: float,
        metric: str,
    ) -> dict[str, Any]:
        if gate_data is None:
            raise PromotionRefused(
                f"{stage} of {name!r} serves version {champion}: promoting version {version} over it needs "
                f"gate_data (labelled rows with a 'y' column) to compare {metric} on the same rows, or "
                "override_reason to skip the gate (recorded)."
            )
        result = evaluate_gate(self.load(name, version), self.load(name, champion), gate_data, metric)
        passed = result["challenger"] >= result["champion"] - tolerance
        gate = {**result, "tolerance": tolerance, "passed": passed}
        if not passed:
            raise PromotionRefused(
                f"gate refused version {version} of {name!r} for {stage}: "
                f"{metric} {result['challenger']:.4f} "
                f"vs champion version {champion} {result['champion']:.4f} on the same {result['rows']} rows; "
                f"it must reach at least champion - tolerance = {result['champion'] - tolerance:.4f} "
                f"(tolerance {tolerance}). "
                "Pass override_reason to promote anyway (it is recorded in the stage file).",
                gate,
            )
        return gate

    def rollback(self, name: str, stage: str, *, actor: str | None = None, reason: str) -> dict[str, Any]:
        """Point `stage` back at the version it served before (no order check, no gate: it is an undo).

        The new record has kind "rollback" and the reason; its `previous` is the version rolled
        back from, so rolling back twice returns to where it was.
        """
        _check_stage(stage)
        if not reason or not reason.strip():
            raise RegistryError("a rollback needs a reason (it is recorded in the stage file)")
        raw, token = self.store.read_with_token(self._stage_path(_check_name(name), stage))
        if raw is None:
            if not self._numbers(name)[1]:
                raise self._unknown_model(name)
            raise NotFoundError(f"stage {stage} of {name!r} points at no version: nothing to roll back")
        current = json.loads(raw)
        previous = current.get("previous")
        if previous is None:
            raise RegistryError(
                f"stage {stage} of {name!r} has no previous version (version {current['version']} was the "
                "first): promote another version instead"
            )
        previous = self.resolve(name, str(previous))
        record: dict[str, Any] = {
            "stage": stage,
            "version": previous,
            "kind": "rollback",
            "promoted_at": _now(),
            "actor": _actor(actor),
            "reason": reason.strip(),
            "gate": None,
            "override": None,
            "previous": str(current["version"]),
        }
        record = self._write_stage(name, stage, record, current, token)
        log.info("%s %s rolled back to version %s (was %s): %s",
                 name, stage, previous, current["version"], reason)  # fmt: skip
        return record
