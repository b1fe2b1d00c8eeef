"""Scoring with ONNX Runtime: verify the bytes, a session cached per model, probability + decision.

Importing this module must not import scikit-learn (tested in a fresh interpreter): the Function
App ships without it, and nothing here ever unpickles anything.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd

from model.artifacts import METADATA_FILE, MODEL_FILE, verify
from model.schema import InputSchema, Validated, onnx_feed, validate

_sessions: dict[tuple[str, int], ort.InferenceSession] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    threshold: float
    schema: InputSchema
    metadata: dict[str, Any]
    session: ort.InferenceSession

    def probabilities(self, features: pd.DataFrame) -> np.ndarray:
        """Subscription probability for prepared, validated feature rows."""
        if features.empty:
            return np.empty(0, dtype=np.float32)
        (probabilities,) = self.session.run(["probabilities"], onnx_feed(features, self.schema))
        return probabilities[:, 1]

    def score(
        self, frame: pd.DataFrame, first_row: int = 1, row_numbers: np.ndarray | None = None
    ) -> tuple[np.ndarray, Validated]:
        """Validate raw input rows and score the valid ones: float32 probabilities, in row order."""
        checked = validate(frame, self.schema, first_row, row_numbers)
        return self.probabilities(checked.frame), checked

    def predict(self, frame: pd.DataFrame, first_row: int = 1) -> tuple[pd.DataFrame, Validated]:
        """Validate raw input rows and score the valid ones: id, probability, decision.

        `first_row` is the 1-based row number of the frame's first row in its file (for chunks).
        """
        probability, checked = self.score(frame, first_row)
        scored = pd.DataFrame(
            {
                self.schema.id_column: checked.ids,
                "probability": probability.astype(float),
                "decision": (probability >= self.threshold).astype(int),
            }
        )
        return scored, checked


def _session(model_bytes: bytes, sha256: str, threads: int) -> ort.InferenceSession:
    """One session per model and thread count per process: creating one costs far more than a prediction.

    Keyed by the thread count too (intra-op threads: SCORING_THREADS in the Function App, the
    caller's choice elsewhere), so a caller asking for another count gets a session with that
    count, not the first one. The lock lets concurrent loads on several threads create one
    session. Sessions stay for the life of the process: a caller that drops a LoadedModel does
    not free its session.
    """
    with _lock:
        session = _sessions.get((sha256, threads))
        if session is None:
            session = _new_session(model_bytes, threads)
            _sessions[(sha256, threads)] = session
        return session


# ONNX Runtime's intra-op workers spin on the CPU between runs unless told not to (default "1":
# onnxruntime.ai/docs/performance/tune-performance/threading.html). A batch scorer runs the
# model between parsing and encoding on the same two cores, so a spinning worker takes CPU from
# that work: measured 1.2 CPU-s less per 1M rows for hgb at 2 threads, for the same wall time.
SPINNING = ("session.intra_op.allow_spinning", "0")


def _new_session(model_bytes: bytes, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry(*SPINNING)
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def load_bytes(
    metadata: dict[str, Any], model_bytes: bytes, threads: int = 1, shared: bool = True
) -> LoadedModel:
    """Build a LoadedModel from metadata and model bytes, after checking the bytes' sha256.

    `shared=False` gives the model a session of its own, freed with the LoadedModel: for a holder
    that swaps versions for as long as the process lives (the HTTP function's colours).
    """
    verify(MODEL_FILE, model_bytes, metadata)
    sha256 = metadata["artifacts"][MODEL_FILE]
    session = _session(model_bytes, sha256, threads) if shared else _new_session(model_bytes, threads)
    return LoadedModel(
        name=str(metadata.get("name", "model")),
        version=str(metadata.get("version") or "unregistered"),
        threshold=float(metadata["threshold"]),
        schema=InputSchema.from_dict(metadata["schema"]),
        metadata=metadata,
        session=session,
    )


def load_folder(folder: Path, threads: int = 1) -> LoadedModel:
    """A model folder as training writes it (or a registry version copied locally)."""
    import json

    metadata = json.loads((folder / METADATA_FILE).read_text())
    return load_bytes(metadata, (folder / MODEL_FILE).read_bytes(), threads)
