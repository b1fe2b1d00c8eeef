"""What one worker serves: the deployments document, re-validated by ETag, and both colours loaded.

A worker checks `{model}/deployments.json` at most every DEPLOYMENTS_REFRESH_SECONDS with a
conditional read (an unchanged file costs a 304 and no body), so a traffic change or a rollback
reaches every worker within seconds and without a restart. Both colours are loaded when the
document names them, not at the first request routed to them, and each version owns its ONNX
session: a version that no colour names any more is dropped, and its memory with it.

A version that cannot be loaded (missing or tampered bytes: the sha256 check refuses it) takes no
traffic here: its share goes to the other colour, the reason is kept for `GET /api/ready`, and a
request forced to it gets 503. The other colour keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from model.realtime.rows import RowChecker
from model.registry import IntegrityError, NotFoundError, Registry, RegistryError
from model.registry.deployments import BLUE, COLOURS, GREEN, Deployments, DeploymentState
from model.registry.layout import deployments_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """The deployments as routed now: the stored state with unloadable colours taken out of traffic."""

    stored: DeploymentState
    routed: DeploymentState
    checkers: dict[str, RowChecker]  # colour -> the checker of its version (loaded colours only)
    broken: dict[str, str]  # colour -> why its version could not be loaded
    token: str | None
    checked_at: float


class LiveDeployments:
    """Per worker: the current Snapshot, refreshed on a clock, safe to read from many threads."""

    def __init__(self, registry: Registry, name: str, stage: str, refresh_seconds: float,
                 threads: int = 1, clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.deployments = Deployments(registry, name, stage)
        self.registry = registry
        self.name = name
        self.refresh_seconds = refresh_seconds
        self.threads = threads
        self.clock = clock
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._raw: bytes | None = None

    def current(self) -> Snapshot:
        """The snapshot, re-validated first when it is older than the refresh interval."""
        snapshot = self._snapshot
        if snapshot is not None and self.clock() - snapshot.checked_at < self.refresh_seconds:
            return snapshot
        with self._lock:  # one refresh at a time; the others wait for it rather than read twice
            snapshot = self._snapshot
            if snapshot is None or self.clock() - snapshot.checked_at >= self.refresh_seconds:
                snapshot = self._refresh(snapshot)
                self._snapshot = snapshot
            return snapshot

    def _refresh(self, previous: Snapshot | None) -> Snapshot:
        path = deployments_file(self.name)
        store = self.registry.store
        if previous is None or previous.token is None:
            raw, token = store.read_with_token(path)
            changed = True
        else:
            answer = store.read_if_changed(path, previous.token)
            changed = answer is not None
            raw, token = answer if answer is not None else (self._raw, previous.token)
        if not changed and previous is not None:
            return replace(previous, checked_at=self.clock())
        try:
            state = self.deployments.parse(raw)[0]
        except RegistryError as error:  # a hand-edited, broken document: keep serving what served
            if previous is None:
                raise
            log.error("%s: %s; still serving %s", path, error, previous.routed.summary())
            return replace(previous, checked_at=self.clock())
        self._raw = raw
        snapshot = self._load(state, token, previous)
        log.info("deployments of %s: %s", self.name, snapshot.routed.summary())
        return snapshot

    def _load(self, state: DeploymentState, token: str | None, previous: Snapshot | None) -> Snapshot:
        kept = {} if previous is None else {c.model.version: c for c in previous.checkers.values()}
        checkers: dict[str, RowChecker] = {}
        broken: dict[str, str] = {}
        for colour in COLOURS:
            version = state.version(colour)
            if version is None:
                continue
            if version in kept:
                checkers[colour] = kept[version]
                continue
            try:
                checkers[colour] = RowChecker(
                    self.registry.load(self.name, version, self.threads, shared=False)
                )
            except (IntegrityError, NotFoundError, RegistryError, ValueError) as error:
                broken[colour] = f"version {version} cannot be loaded: {error}"
                log.error("deployment %s of %s: %s", colour, self.name, broken[colour])
        return Snapshot(state, _routable(state, broken), checkers, broken, token, self.clock())

    def forget(self) -> None:
        """Drop the snapshot: the next request reads deployments.json again (tests, after a change)."""
        with self._lock:
            self._snapshot = None


def _routable(state: DeploymentState, broken: dict[str, str]) -> DeploymentState:
    """`state` with a broken colour's traffic given to the other one (and no shadow onto it)."""
    if not broken:
        return state
    blue = None if BLUE in broken else state.blue
    green = None if GREEN in broken else state.green
    weight = state.green_weight
    if GREEN in broken:
        weight = 0
    elif BLUE in broken and green is not None:
        weight = 100
    return replace(state, blue=blue, green=green, green_weight=weight)
