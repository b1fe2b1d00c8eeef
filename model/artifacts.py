"""The model folder contract: file names, hashing, and metadata (no scikit-learn here).

A model folder (written by training, copied verbatim into the registry as one version):

    model.onnx        the fitted pipeline, converted (the only thing serving executes)
    metadata.json     name, version, metrics, schema, threshold, sha256 of every artifact, ...
    reference.json    training distribution of every feature and of the scores (for drift)
    model_card.md     the human-readable report, with plots/*.png
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Any

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
REFERENCE_FILE = "reference.json"
CARD_FILE = "model_card.md"
PLOTS_DIR = "plots"


class IntegrityError(RuntimeError):
    """An artifact's bytes do not match the sha256 recorded in its metadata."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_files(folder: Path) -> list[str]:
    """Every file of a model folder except metadata.json, as POSIX relative paths, sorted."""
    return sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != METADATA_FILE
    )


def read_metadata(folder: Path) -> dict[str, Any]:
    return json.loads((folder / METADATA_FILE).read_text())


def verify(name: str, data: bytes, metadata: dict[str, Any]) -> None:
    expected = metadata.get("artifacts", {}).get(name)
    if expected is None:
        raise IntegrityError(f"{name} has no sha256 in metadata.json: refusing to load it")
    actual = sha256_bytes(data)
    if actual != expected:
        raise IntegrityError(
            f"{name} sha256 {actual[:16]}… does not match metadata {expected[:16]}…: refusing it"
        )


def check_artifact_name(path: str) -> str:
    """Artifact names come from metadata.json: never let one escape the version folder."""
    parts = PurePosixPath(path).parts
    if path.startswith("/") or "\\" in path or not parts or any(p in {"", ".", ".."} for p in parts):
        raise IntegrityError(f"artifact path {path!r} in metadata.json is not a plain relative path")
    if path == METADATA_FILE:
        raise IntegrityError("metadata.json cannot list itself among its artifacts")
    return path


def verified_files(folder: Path, metadata: dict[str, Any]) -> dict[str, bytes]:
    """Every artifact's bytes, model.onnx first, once the folder is known to be exactly what
    metadata.json records (no file missing, none unrecorded) and every file matches its sha256."""
    recorded = {check_artifact_name(p) for p in metadata.get("artifacts") or {}}
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
    return files
