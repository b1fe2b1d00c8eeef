"""The automatic rollback's rules: is green healthy, judged on the request log of a recent window?

Each check computes, per colour, the requests answered, the success rate (a 5xx is a failure; a 4xx
is the caller's mistake and is not), the p99 latency, and the distance between green's and blue's
predicted probabilities (the two-sample Kolmogorov-Smirnov statistic: callers are split by a hash,
so both colours see the same population and a large distance means the model, not the traffic,
changed). A rule that fails counts one failed check; `failed_checks` in a row roll green back.
Green is judged only once it has answered `min_requests` in the window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from model.realtime.policy import RollbackPolicy
from model.registry.deployments import BLUE, COLOURS, GREEN, DeploymentState

RULES = ("success", "p99_latency", "prediction_drift")
__all__ = [
    "RULES",
    "Check",
    "Figures",
    "RollbackPolicy",
    "check_green",
    "figures",
    "ks_distance",
    "next_streak",
]


@dataclass
class Figures:
    """One colour's figures in the window (answered requests only; shadow scores add probabilities)."""

    requests: int = 0
    failures: int = 0
    p99_ms: float | None = None
    probabilities: list[float] = field(default_factory=list, repr=False)

    @property
    def success(self) -> float | None:
        return None if self.requests == 0 else 1 - self.failures / self.requests

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "success": self.success,
            "p99_ms": self.p99_ms,
            "scores": len(self.probabilities),
        }


def ks_distance(first: np.ndarray, second: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    a, b = np.sort(first), np.sort(second)
    grid = np.concatenate([a, b])
    gap = np.searchsorted(a, grid, side="right") / len(a) - np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(gap)))


def figures(records: Iterable[dict[str, Any]]) -> dict[str, Figures]:
    """Per colour, from request-log records (see functions/realtime/request_log.py for the format)."""
    found = {colour: Figures() for colour in COLOURS}
    latencies: dict[str, list[float]] = {colour: [] for colour in COLOURS}
    for record in records:
        colour = record.get("deployment")
        if colour not in found:
            continue  # a request no colour answered (no model deployed)
        outputs = record.get("outputs") or []
        found[colour].probabilities.extend(float(o["probability"]) for o in outputs)
        if record.get("shadow"):
            continue  # shadow scores count for the comparison, not for the caller's experience
        found[colour].requests += 1
        found[colour].failures += int(record.get("status", 200)) >= 500
        latencies[colour].append(float(record.get("latency_ms", 0.0)))
    for colour, values in latencies.items():
        if values:
            found[colour].p99_ms = float(np.percentile(values, 99))
    return found


@dataclass
class Check:
    """One check of green: the figures, which rules failed, and whether green was judged at all."""

    judged: bool
    failures: list[dict[str, Any]]
    figures: dict[str, dict[str, Any]]
    drift: float | None
    note: str

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_green(state: DeploymentState, records: Iterable[dict[str, Any]], policy: RollbackPolicy) -> Check:
    """Judge green on the window's records, under `policy`."""
    found = figures(records)
    shown = {colour: f.to_dict() for colour, f in found.items()}
    if state.green is None or state.green_weight == 0:
        return Check(False, [], shown, None, "green takes no traffic: nothing to judge")
    green, blue = found[GREEN], found[BLUE]
    if green.requests < policy.min_requests:
        note = f"green answered {green.requests} of the {policy.min_requests} requests needed to judge it"
        return Check(False, [], shown, None, note)
    failures = []
    if green.success is not None and green.success < policy.min_success:
        failures.append({"rule": "success", "value": green.success, "limit": policy.min_success})
    if green.p99_ms is not None and green.p99_ms > policy.max_p99_ms:
        failures.append({"rule": "p99_latency", "value": green.p99_ms, "limit": policy.max_p99_ms})
    drift = None
    if len(blue.probabilities) >= policy.min_requests and green.probabilities:
        drift = ks_distance(np.array(green.probabilities), np.array(blue.probabilities))
        if drift > policy.max_prediction_drift:
            failures.append(
                {"rule": "prediction_drift", "value": drift, "limit": policy.max_prediction_drift}
            )
    note = "; ".join(f"{f['rule']} {f['value']:.4g} vs limit {f['limit']:.4g}" for f in failures) or "healthy"
    return Check(True, failures, shown, drift, note)


def next_streak(streak: int, check: Check) -> int:
    """Failed checks in a row: one more on a failure, back to 0 on a healthy judged check."""
    if not check.judged:
        return streak
    return streak + 1 if check.failed else 0
