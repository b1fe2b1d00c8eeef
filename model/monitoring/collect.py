"""What the dashboard of one model reads: its monitoring documents and its promotions, checked and sorted.

The documents are written by different parts of the system at different times (the scoring
function writes a drift report and an estimate per batch, the monitor timer a quality document per
period) and by different versions of the code, so one of them being unreadable or of an unknown
shape must not take the whole page down: such a document is skipped, and the page says how many
were and why. Paths come from `lake.paths` only, and a document is taken only where its builder
would have put it (a stray file is skipped, not guessed at).

Reads go through the registry's `Store` protocol (`read`, `list`), so a local folder (tests, the
screenshot, offline work) and the `monitoring` blob container are read the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lake.paths import (
    DRIFT_DIR,
    ESTIMATES_DIR,
    QUALITY_DIR,
    drift_path,
    estimate_path,
    monitoring_prefix,
    quality_path,
)
from model.registry import STAGES, Registry, RegistryError, VersionInfo
from model.registry.deployments import DEPLOYMENT_KIND
from model.registry.stores import BlobStore, FolderStore, Store

JSON_SUFFIX = ".json"


@dataclass(frozen=True)
class Document:
    """One monitoring document: where it is, its key (`day/name` of a batch, or the period), its time."""

    path: str
    key: str
    at: dt.datetime
    body: Mapping[str, Any]


@dataclass(frozen=True)
class Promotion:
    """One move of a stage pointer (a promotion or a rollback), from the stage record or its history."""

    stage: str
    version: str
    kind: str
    at: dt.datetime
    actor: str
    previous: str | None
    reason: str | None  # the override's reason, or the rollback's
    gate: Mapping[str, Any] | None


@dataclass(frozen=True)
class Skipped:
    """A document that could not be used, and why (shown on the page)."""

    path: str
    reason: str


@dataclass(frozen=True)
class DashboardData:
    """Everything one model's dashboard shows, each kind sorted by time (oldest first)."""

    model: str
    source: str
    drift: tuple[Document, ...] = ()
    estimates: tuple[Document, ...] = ()
    quality: tuple[Document, ...] = ()
    promotions: tuple[Promotion, ...] = ()
    versions: tuple[VersionInfo, ...] = ()
    skipped: tuple[Skipped, ...] = field(default=())

    @property
    def empty(self) -> bool:
        """Nothing scored yet: no drift report, estimate or quality document."""
        return not (self.drift or self.estimates or self.quality)


def parse_time(value: object) -> dt.datetime:
    """An ISO date or time as an aware UTC datetime (a naive one is taken as UTC)."""
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO time, found {type(value).__name__}")
    parsed = dt.datetime.fromisoformat(value)
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} is not an object")
    return value


def _optional(document: Mapping[str, Any], *names: str) -> None:
    """Each of `names` absent, null or an object: what the page reads with `.get`."""
    for name in names:
        if document.get(name) is not None:
            _mapping(document[name], repr(name))


def _batch_document(path: str, key: str, body: object, required: tuple[str, ...]) -> Document:
    document = _mapping(body, "the document")
    for name in required:
        _mapping(document.get(name), repr(name))
    _optional(document, "input", "model", "batch", "scores")
    return Document(path, key, parse_time(document.get("scored_at")), document)


def _drift(path: str, key: str, body: object) -> Document:
    """A drift report (model.drift.DriftCounts.summary, with `input`, `model`, `scored_at`)."""
    document = _batch_document(path, key, body, ("features",))
    if not isinstance(document.body.get("status"), str) or not isinstance(document.body.get("rows"), int):
        raise ValueError("no 'status' or 'rows'")
    for name, entry in document.body["features"].items():
        _mapping(entry, f"feature {name!r}")
    if not isinstance(document.body.get("drifted_features", []), list):
        raise ValueError("'drifted_features' is not a list")
    return document


def _estimate(path: str, key: str, body: object) -> Document:
    """A label-free estimate (model.monitoring.estimate.estimate, with the batch's context)."""
    return _batch_document(path, key, body, ("roc_auc", "subscribers"))


def _quality(path: str, key: str, body: object) -> Document:
    """A quality period (model.monitoring.quality.period_documents, each version with its comparison)."""
    document = _mapping(body, "the document")
    versions = _mapping(document.get("versions"), "'versions'")
    starts = []
    for version, record in versions.items():
        record = _mapping(record, f"version {version}")
        _optional(record, "metrics", "counts", "estimate_vs_realised", "baseline")
        parse_time(record.get("period_end"))
        starts.append(parse_time(record.get("period_start")))
    if not starts:
        raise ValueError("no version in the period")
    return Document(path, key, min(starts), document)


def _batch_key(model: str, kind: str, path: str) -> str | None:
    """`day/name` of a batch document, if `path` is exactly where its builder puts one."""
    rest = path[len(monitoring_prefix(model, kind)) : -len(JSON_SUFFIX)]
    day, _, name = rest.partition("/")
    builder = drift_path if kind == DRIFT_DIR else estimate_path
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        return None
    return f"{day}/{name}" if name and builder(model, day, name) == path else None


def _quality_key(model: str, path: str) -> str | None:
    period = path[len(monitoring_prefix(model, QUALITY_DIR)) : -len(JSON_SUFFIX)]
    return period if period and quality_path(model, period) == path else None


def read_documents(
    store: Store, model: str, kind: str, parse: Callable[[str, str, object], Document]
) -> tuple[list[Document], list[Skipped]]:
    """Every document of one kind, sorted by time; the unreadable ones apart, with their reason."""
    documents, skipped = [], []
    for path in store.list(monitoring_prefix(model, kind)):
        if not path.endswith(JSON_SUFFIX):
            continue  # the drift pages (HTML) live beside the reports
        key = _quality_key(model, path) if kind == QUALITY_DIR else _batch_key(model, kind, path)
        if key is None:
            skipped.append(Skipped(path, f"not a path the {kind} writer uses"))
            continue
        raw = store.read(path)
        if raw is None:
            continue  # deleted between listing and reading
        try:
            documents.append(parse(path, key, json.loads(raw)))
        except (
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
        ) as error:  # JSONDecodeError, UnicodeDecodeError too
            skipped.append(Skipped(path, f"{type(error).__name__}: {error}"[:200]))
    documents.sort(key=lambda d: (d.at, d.key))
    return documents, skipped


HTTP_STAGE = "http"  # how the table shows a blue/green change of the real-time endpoint


def _deployment(entry: Mapping[str, Any]) -> Promotion:
    """A blue/green change of the promotion log (model/registry/deployments.py) as one table row."""
    after = entry.get("deployments") or {}
    split = ", ".join(
        f"{c} v{(after.get(c) or {}).get('version') or '-'} {(after.get(c) or {}).get('traffic', 0)} %"
        for c in ("blue", "green")
    )
    reason = entry.get("reason")
    return Promotion(
        stage=HTTP_STAGE,
        version=str(entry["version"]),
        kind=f"{HTTP_STAGE} {entry.get('action')}",
        at=parse_time(entry.get("logged_at")),
        actor=str(entry.get("actor", "?")),
        previous=None,
        reason=f"{reason}; now {split}" if reason else f"now {split}",
        gate=None,
    )


def _promotion(entry: Mapping[str, Any], stage: str | None = None) -> Promotion:
    """A stage record, a history entry or a promotion log line as one Promotion."""
    if entry.get("kind") == DEPLOYMENT_KIND:
        return _deployment(entry)
    return Promotion(
        stage=str(entry.get("stage", stage)),
        version=str(entry["version"]),
        kind=str(entry.get("kind", "promote")),
        at=parse_time(entry.get("promoted_at") or entry.get("decided_at") or entry.get("logged_at")),
        actor=str(entry.get("actor", "?")),
        previous=None if entry.get("previous") is None else str(entry["previous"]),
        reason=entry.get("reason") or (entry.get("override") or {}).get("reason"),
        gate=entry.get("gate"),
    )


def _logged(registry: Registry, model: str) -> tuple[list[Promotion], list[Skipped]]:
    """Every decision of the promotion log (promotions, rollbacks, refusals), oldest first."""
    found, skipped = [], []
    for number, entry in enumerate(registry.decisions.read(model), start=1):
        try:
            found.append(_promotion(entry))
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            skipped.append(
                Skipped(f"registry: promotion log line {number}", f"{type(error).__name__}: {error}"[:200])
            )
    return sorted(found, key=lambda p: (p.at, p.stage)), skipped


def promotions(registry: Registry, model: str) -> tuple[list[Promotion], list[Skipped]]:
    """The promotion log's decisions; for a registry older than the log, the stage records' moves.

    The stage records (current + history) hold the moves only, not the refusals, oldest first.
    """
    try:
        logged, skipped = _logged(registry, model)
    except (RegistryError, ValueError) as error:  # an unreadable log: say so, fall back to the stages
        logged, skipped = (
            [],
            [Skipped(f"registry: promotion log of {model}", f"{type(error).__name__}: {error}"[:200])],
        )
    if logged:
        return logged, skipped
    found: dict[tuple[str, str, str, str], Promotion] = {}
    for stage in STAGES:
        try:
            record = registry.stage(model, stage)
            entries = [] if record is None else [*record.get("history", []), record]
            for entry in entries:
                promotion = _promotion(entry, stage)
                found[(promotion.stage, promotion.at.isoformat(), promotion.version, promotion.kind)] = (
                    promotion
                )
        except (RegistryError, ValueError, TypeError, KeyError, AttributeError) as error:
            skipped.append(
                Skipped(f"registry: stage {stage} of {model}", f"{type(error).__name__}: {error}"[:200])
            )
    return sorted(found.values(), key=lambda p: (p.at, p.stage)), skipped


def collect(store: Store, model: str, registry: Registry | None = None) -> DashboardData:
    """The dashboard's data for `model`: its monitoring documents in `store`, its promotions in `registry`."""
    drift, skipped_drift = read_documents(store, model, DRIFT_DIR, _drift)
    estimates, skipped_estimates = read_documents(store, model, ESTIMATES_DIR, _estimate)
    quality, skipped_quality = read_documents(store, model, QUALITY_DIR, _quality)
    moves: list[Promotion] = []
    versions: list[VersionInfo] = []
    skipped_registry: list[Skipped] = []
    if registry is not None:
        moves, skipped_registry = promotions(registry, model)
        try:
            versions = registry.versions(model)
        except RegistryError:
            versions = []  # not registered here (another registry, or none yet)
    return DashboardData(
        model=model,
        source=store.describe(),
        drift=tuple(drift),
        estimates=tuple(estimates),
        quality=tuple(quality),
        promotions=tuple(moves),
        versions=tuple(versions),
        skipped=tuple(skipped_drift + skipped_estimates + skipped_quality + skipped_registry),
    )


def open_monitoring(location: str, env: Mapping[str, str] | None = None) -> Store:
    """`blob`: the `monitoring` container of the DataLake connection; anything else is a local folder."""
    if location == "blob":
        from lake.clients import blob_service
        from lake.connection import storage_connection
        from lake.contract import DATA_LAKE, MONITORING_CONTAINER

        connection = storage_connection(os.environ if env is None else env, DATA_LAKE)
        return BlobStore(blob_service(connection).get_container_client(MONITORING_CONTAINER))
    return FolderStore(Path(location))
