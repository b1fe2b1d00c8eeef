"""The model that scores: the version a stage points at, loaded once per process and version."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from functions.scoring.errors import ModelUnavailableError
from model.artifacts import REFERENCE_FILE
from model.registry import NotFoundError, Registry
from model.serving import LoadedModel

KEEP_LOADED = 3  # versions kept in memory: the serving one, its predecessor, a fan-out still on an older one


@dataclass(frozen=True)
class ServedModel:
    model: LoadedModel
    reference: dict[str, Any]  # training distributions, for drift
    stage: str | None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.model.name,
            "version": self.model.version,
            "stage": self.stage,
            "threshold": self.model.threshold,
        }


class ModelSource:
    """Resolves `MODEL_NAME@MODEL_STAGE` on every call (one small read), loads each version once.

    Promotions take effect at the next input without a restart; a fan-out's shards all use the
    version its plan pinned, even if the stage moves meanwhile.
    """

    def __init__(self, registry: Registry, name: str, stage: str, threads: int) -> None:
        self.registry = registry
        self.name = name
        self.stage = stage
        self.threads = threads
        self._loaded: dict[str, ServedModel] = {}
        self._lock = threading.Lock()

    def current(self) -> ServedModel:
        try:
            version = self.registry.resolve(self.name, self.stage)
        except NotFoundError as error:
            raise ModelUnavailableError(
                f"no model to score with: {error}. Register and promote one "
                f"(python -m model promote VERSION {self.stage})"
            ) from None
        return self.version(version, self.stage)

    def version(self, version: str, stage: str | None = None) -> ServedModel:
        with self._lock:
            served = self._loaded.get(version)
            if served is None:
                model = self.registry.load(self.name, version, threads=self.threads)
                served = ServedModel(model, self._reference(model), stage)
                self._loaded[version] = served
                while len(self._loaded) > KEEP_LOADED:  # the oldest loaded first
                    del self._loaded[next(iter(self._loaded))]
            return served if served.stage == stage else ServedModel(served.model, served.reference, stage)

    def _reference(self, model: LoadedModel) -> dict[str, Any]:
        """reference.json of the version, sha256-checked like the model; {} if the version has none."""
        if REFERENCE_FILE not in model.metadata.get("artifacts", {}):
            return {}
        try:
            data = self.registry.read_artifact(self.name, model.version, REFERENCE_FILE)
        except NotFoundError:  # recorded but not stored (a damaged version): scored without drift, as before
            return {}
        return json.loads(data)
