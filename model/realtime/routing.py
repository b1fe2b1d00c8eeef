"""Which colour answers a request: forced, sticky per caller, or weighted; and whether it is shadowed.

A caller key (the `x-caller-key` header) hashes to one of BUCKETS fixed buckets; green serves the
buckets below its weight (`weight * BUCKETS / 100`). Raising green's weight therefore only moves
callers from blue to green and never back, and a caller stays on one colour while the split holds.
Azure ML's online endpoints split by request instead; this is what keeps one caller's answers
consistent during a ramp. Without a key each request draws a bucket at random.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from model.registry.deployments import BLUE, COLOURS, GREEN, DeploymentError, DeploymentState

BUCKETS = 10_000  # 0.01 % granularity; integer weights map to whole bucket ranges
CALLER_KEY_HEADER = "x-caller-key"
FORCE_HEADER = "x-model-deployment"  # as Azure ML's `azureml-model-deployment`


class RoutingError(DeploymentError):
    """The request asks for a deployment that cannot answer (unknown colour, or no version)."""


def bucket_of(caller_key: str) -> int:
    """The caller's fixed bucket: the first 8 bytes of sha256(key), modulo BUCKETS."""
    digest = hashlib.sha256(caller_key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


@dataclass(frozen=True)
class Route:
    colour: str
    version: str
    bucket: int | None  # None when forced
    how: str  # forced | sticky | weighted
    shadow: str | None = None  # the colour that also scores this request, after the answer


def colour_for_bucket(state: DeploymentState, bucket: int) -> str:
    return GREEN if bucket < state.green_weight * BUCKETS // 100 else BLUE


def route(
    state: DeploymentState,
    caller_key: str | None = None,
    forced: str | None = None,
    rng: random.Random | None = None,
) -> Route:
    """The colour and version for one request; RoutingError when nothing can answer it."""
    draw = rng or random
    if forced:
        colour = forced.strip().lower()
        if colour not in COLOURS:
            raise RoutingError(f"{FORCE_HEADER}: {forced!r} is not a deployment ({', '.join(COLOURS)})")
        bucket, how = None, "forced"
    else:
        if not state.live:
            raise RoutingError(f"no deployment takes traffic ({state.summary()})")
        key = (caller_key or "").strip()
        bucket = bucket_of(key) if key else draw.randrange(BUCKETS)
        colour, how = colour_for_bucket(state, bucket), "sticky" if key else "weighted"
    version = state.version(colour)
    if version is None:
        raise RoutingError(f"deployment {colour} serves no version ({state.summary()})")
    other = state.other(colour)
    shadowed = state.shadow > 0 and state.version(other) is not None and draw.random() * 100 < state.shadow
    return Route(colour, version, bucket, how, other if shadowed else None)
