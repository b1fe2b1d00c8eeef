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
from pathlib import Path
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
