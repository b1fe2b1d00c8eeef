"""When to retrain: the rules that read the monitoring history, each with the figures it fired on.

Pure (no I/O, no numpy): the monitor hands in the quality documents it just wrote, the drift
streak it counted and the version being served; the verdict says which rules fired and why, so
whoever (or whatever) retrains can record the evidence with the candidate it produces.

Rules (thresholds in RetrainPolicy, from the RETRAIN_* settings):
- `quality_drop`: the serving version's newest measured period (`ok`, at least `min_outcomes`
  labelled rows) has a realised ROC AUC under its registered baseline minus `quality_tolerance`,
  and its bootstrap interval lies under the baseline too (one noisy week is not a drop);
- `estimate_gap`: the serving version's last `gap_periods` measured periods all have the realised
  figures outside the label-free estimate's interval (one period is flagged ~11 % of the time by
  chance: docs/monitoring.md);
- `drift_persistence`: the last `drift_batches` scored batches all drifted (the dataset verdict);
- `schedule`: the retraining timer fired (RETRAIN_SCHEDULE), whatever the figures say.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

QUALITY_DROP, ESTIMATE_GAP, DRIFT_PERSISTENCE, SCHEDULE = (
    "quality_drop",
    "estimate_gap",
    "drift_persistence",
    "schedule",
)
RULES = (QUALITY_DROP, ESTIMATE_GAP, DRIFT_PERSISTENCE, SCHEDULE)


@dataclass(frozen=True)
class RetrainPolicy:
    quality_tolerance: float = 0.05  # ROC AUC under the baseline that counts as a drop
    min_outcomes: int = 500  # labelled rows a period needs before its drop counts
    gap_periods: int = 2  # consecutive measured periods with the estimate contradicted
    drift_batches: int = 3  # consecutive drifted batches

    def __post_init__(self) -> None:
        if not 0 < self.quality_tolerance < 0.5:
            raise ValueError(f"quality_tolerance must be in (0, 0.5), not {self.quality_tolerance}")
        if min(self.min_outcomes, self.gap_periods, self.drift_batches) < 1:
            raise ValueError("min_outcomes, gap_periods and drift_batches must be at least 1")


@dataclass(frozen=True)
class Verdict:
    """Which rules fired; `evidence` holds each evaluated rule's figures, fired or not."""

    retrain: bool
    fired: tuple[str, ...]
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"fired": list(self.fired)}


def measured_periods(documents: Iterable[Mapping[str, Any]], version: str) -> list[Mapping[str, Any]]:
    """The version's `ok` records, oldest period first (the quality documents' `versions[version]`)."""
    records = [d["versions"][version] for d in documents if version in (d.get("versions") or {})]
    return sorted((r for r in records if r.get("status") == "ok"), key=lambda r: str(r["period"]))


def quality_drop(records: list[Mapping[str, Any]], policy: RetrainPolicy) -> dict[str, Any]:
    enough = [r for r in records if (r.get("counts") or {}).get("labelled", 0) >= policy.min_outcomes]
    if not enough:
        return {"fired": False, "why": f"no measured period with {policy.min_outcomes}+ outcomes yet"}
    newest = enough[-1]
    auc = (newest.get("metrics") or {}).get("roc_auc") or {}
    baseline = (newest.get("baseline") or {}).get("roc_auc")
    value, high = auc.get("value"), auc.get("high")
    if baseline is None or value is None or high is None:
        return {"fired": False, "period": newest["period"], "why": "no baseline or no ROC AUC"}
    fired = value < baseline - policy.quality_tolerance and high < baseline
    return {
        "fired": fired,
        "period": newest["period"],
        "roc_auc": value,
        "roc_auc_high": high,
        "baseline_roc_auc": baseline,
        "tolerance": policy.quality_tolerance,
        "labelled": newest["counts"]["labelled"],
    }


def estimate_gap(records: list[Mapping[str, Any]], policy: RetrainPolicy) -> dict[str, Any]:
    last = records[-policy.gap_periods :]
    flags = [bool((r.get("estimate_vs_realised") or {}).get("gap_outside_interval")) for r in last]
    return {
        "fired": len(last) == policy.gap_periods and all(flags),
        "periods": [r["period"] for r in last],
        "outside": flags,
        "needed": policy.gap_periods,
    }


def evaluate(
    documents: Iterable[Mapping[str, Any]],
    version: str,
    drift_streak: int,
    policy: RetrainPolicy | None = None,
    scheduled: bool = False,
) -> Verdict:
    """The verdict for the serving `version` from its quality documents and the drift streak."""
    policy = policy or RetrainPolicy()
    records = measured_periods(documents, version)
    evidence = {
        QUALITY_DROP: quality_drop(records, policy),
        ESTIMATE_GAP: estimate_gap(records, policy),
        DRIFT_PERSISTENCE: {
            "fired": drift_streak >= policy.drift_batches,
            "streak": drift_streak,
            "needed": policy.drift_batches,
        },
        SCHEDULE: {"fired": scheduled},
    }
    fired = tuple(rule for rule in RULES if evidence[rule]["fired"])
    return Verdict(bool(fired), fired, evidence)
