"""The model registry: immutable numbered versions and gated stage pointers, on blob storage or a folder.

Layout (container `models` of the data lake, or any local folder for offline work; `layout`):

    {model}/{version}/model.onnx, metadata.json, reference.json, model_card.md, plots/*.png
    {model}/stages/{dev,preprod,prod}.json      which version each stage serves, and its history
    {model}/promotions.jsonl                    every promotion decision, refusals too (append-only)

The modules, each with one job: `errors` (what can go wrong), `layout` (stage names, name rules,
every path), `stores` (a folder or a blob container behind one protocol), `gate` (the stage order
and the champion/challenger gate), `records` (what a stage file and a
decision hold), `decisions` (the append-only promotion log), `registry` (the Registry
itself), `opening` (`open_registry`). Import from this package, not from the modules.

Importing the registry must stay light (no scikit-learn, no Azure SDK, no ONNX Runtime; tested):
the gate imports sklearn.metrics only when it runs, the blob store its SDK only when it is used.
"""

from model.artifacts import IntegrityError
from model.registry.decisions import DecisionLog
from model.registry.errors import (
    AlreadyExistsError,
    ConcurrentUpdateError,
    MissingArtifactError,
    NotFoundError,
    PromotionRefused,
    RegistryError,
)
from model.registry.gate import GATE_METRICS, evaluate_gate
from model.registry.layout import SERVING_STAGE, STAGES
from model.registry.opening import open_registry
from model.registry.records import HISTORY_LIMIT
from model.registry.registry import KEY_METRICS, MAX_REGISTER_ATTEMPTS, Registry, VersionInfo
from model.registry.stores import BlobStore, FolderStore, Store, Token

__all__ = [
    "GATE_METRICS",
    "HISTORY_LIMIT",
    "KEY_METRICS",
    "MAX_REGISTER_ATTEMPTS",
    "SERVING_STAGE",
    "STAGES",
    "AlreadyExistsError",
    "BlobStore",
    "ConcurrentUpdateError",
    "DecisionLog",
    "FolderStore",
    "IntegrityError",
    "MissingArtifactError",
    "NotFoundError",
    "PromotionRefused",
    "Registry",
    "RegistryError",
    "Store",
    "Token",
    "VersionInfo",
    "evaluate_gate",
    "open_registry",
]
