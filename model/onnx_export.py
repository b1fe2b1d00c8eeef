"""Fitted scikit-learn pipeline -> ONNX bytes, and the parity check that guards registration."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pandas as pd
from sklearn.pipeline import Pipeline

from model.schema import InputSchema, onnx_feed

PARITY_TOLERANCE = 1e-5
# The ONNX opset every model is converted to (recorded in metadata.json as onnx.opset). 17 (ONNX
# 1.12) is chosen, not "the newest the converter knows": onnxruntime has run it since 1.12, far
# below the Function App's floor (functions/requirements.txt, >=1.20), and skl2onnx converts every
# candidate to it (1.20, installed here, is tested up to opset 22). Pinned, the operator set does
# not move when skl2onnx or onnx are upgraded. Raising it changes every model's bytes and sha256:
# do it on purpose, with the parity gate, `bench/model_bench.py` and the scoring tests re-run.
TARGET_OPSET = 17


class ParityError(RuntimeError):
    """ONNX and scikit-learn disagree beyond the tolerance: the model must not be registered."""


def _allow_protobuf_7() -> None:
    """Work around skl2onnx 1.20 writing Python bools into int attributes of tree ensembles.

    protobuf 7 rejects them ("Expected an int, got a boolean") for HistGradientBoosting leaves;
    casting to int is exactly what protobuf 6 did silently. Parity is checked afterwards anyway.
    """
    import skl2onnx.common.tree_ensemble as tree_ensemble

    if getattr(tree_ensemble.add_node, "_casts_bools", False):
        return
    original = tree_ensemble.add_node

    def add_node(*args, **kwargs):  # type: ignore[no-untyped-def]
        if "nodes_missing_value_tracks_true" in kwargs:
            kwargs["nodes_missing_value_tracks_true"] = int(kwargs["nodes_missing_value_tracks_true"])
        return original(*args, **kwargs)

    add_node._casts_bools = True  # type: ignore[attr-defined]
    tree_ensemble.add_node = add_node


def convert(pipeline: Pipeline, schema: InputSchema) -> bytes:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    _allow_protobuf_7()
    initial_types = [(c, FloatTensorType([None, 1])) for c in schema.numeric]
    initial_types += [(c, StringTensorType([None, 1])) for c in schema.categorical]
    onx = to_onnx(
        pipeline,
        initial_types=initial_types,
        options={id(pipeline): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    return onx.SerializeToString()


def parity(pipeline: Pipeline, model_bytes: bytes, features: pd.DataFrame, schema: InputSchema) -> float:
    """Max absolute difference of P(subscribe) between scikit-learn and ONNX Runtime on `features`."""
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    (onnx_probabilities,) = session.run(["probabilities"], onnx_feed(features, schema))
    columns = list(schema.numeric) + list(schema.categorical)
    frame = features[columns].copy()
    frame[list(schema.numeric)] = frame[list(schema.numeric)].astype(np.float32)
    sklearn_probabilities = pipeline.predict_proba(frame)[:, 1]
    return float(np.max(np.abs(onnx_probabilities[:, 1] - sklearn_probabilities)))


def convert_checked(
    pipeline: Pipeline, schema: InputSchema, features: pd.DataFrame, tolerance: float = PARITY_TOLERANCE
) -> tuple[bytes, float]:
    model_bytes = convert(pipeline, schema)
    difference = parity(pipeline, model_bytes, features, schema)
    if not difference < tolerance:
        raise ParityError(
            f"ONNX differs from scikit-learn by {difference:.2e} (tolerance {tolerance:.0e}) on "
            f"{len(features)} validation rows: not registering a model that would score differently"
        )
    return model_bytes, difference
