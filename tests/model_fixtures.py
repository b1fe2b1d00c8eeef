"""Small real models for tests: logistic regressions converted to ONNX, without the training script.

A "good" model and a deliberately "bad" one fitted on shuffled labels (so the promotion gate has
a real, large difference to detect on the same held-out rows). Both folders are complete model
folders (model.onnx, metadata.json with sha256s, a real reference.json for drift).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model.artifacts import METADATA_FILE, artifact_files, sha256_file
from model.onnx_export import TARGET_OPSET
from model.reference import build_reference
from model.schema import FEATURE_SETS, InputSchema, prepare_features
from tests.support import REPO

BANK = REPO / "data" / "bank_marketing" / "bank_marketing.csv"
NAME = "bank-marketing"
THRESHOLD = 0.5


@dataclass(frozen=True)
class Models:
    good: Path
    bad: Path
    gate: pd.DataFrame  # 2000 held-out labelled rows, raw bank columns + y


def _pipeline():  # type: ignore[no-untyped-def]
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    fs = FEATURE_SETS["all"]
    encode = ColumnTransformer([
        ("num", StandardScaler(), list(fs.numeric)),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(fs.categorical)),
    ])  # fmt: skip
    return Pipeline([("encode", encode), ("model", LogisticRegression(C=1.0, max_iter=1000))])


def model_folder(folder: Path, frame: pd.DataFrame, y: np.ndarray, gate: pd.DataFrame) -> Path:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.metrics import average_precision_score

    fs = FEATURE_SETS["all"]
    pipeline = _pipeline()
    x = frame[list(fs.columns)].copy()
    x[list(fs.numeric)] = x[list(fs.numeric)].astype(np.float32)
    pipeline.fit(x, y)
    initial_types = [(c, FloatTensorType([None, 1])) for c in fs.numeric]
    initial_types += [(c, StringTensorType([None, 1])) for c in fs.categorical]
    onx = to_onnx(pipeline, initial_types=initial_types, options={id(pipeline): {"zipmap": False}},
                  target_opset=TARGET_OPSET)  # fmt: skip
    schema = InputSchema.learn(frame, fs)
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(onx.SerializeToString())
    reference = build_reference(x, schema, pipeline.predict_proba(x)[:, 1])
    (folder / "reference.json").write_text(json.dumps(reference))
    (folder / "model_card.md").write_text(f"# {folder.name}\n")
    (folder / "plots").mkdir()
    (folder / "plots" / "roc.png").write_bytes(b"\x89PNG not really " + folder.name.encode())
    held_out = prepare_features(gate.drop(columns=["y"]))[list(fs.columns)].copy()
    held_out[list(fs.numeric)] = held_out[list(fs.numeric)].astype(np.float32)
    pr_auc = average_precision_score(gate["y"] == "yes", pipeline.predict_proba(held_out)[:, 1])
    metadata = {
        "name": NAME,
        "version": None,
        "threshold": THRESHOLD,
        "schema": schema.to_dict(),
        "metrics": {"validation": {"pr_auc": float(pr_auc), "roc_auc": 0.5}},
        "artifacts": {f: sha256_file(folder / f) for f in artifact_files(folder)},
    }
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
    return folder


def build_models(root: Path) -> Models:
    raw = pd.read_csv(BANK, sep=";").drop(columns=["duration"]).sample(5000, random_state=7)
    train, gate = raw.iloc[:3000], raw.iloc[3000:].reset_index(drop=True)
    y = (train["y"] == "yes").to_numpy()
    frame = prepare_features(train.drop(columns=["y"]))
    shuffled = np.random.default_rng(0).permutation(y)
    return Models(
        good=model_folder(root / "good", frame, y, gate),
        bad=model_folder(root / "bad", frame, shuffled, gate),
        gate=gate,
    )
