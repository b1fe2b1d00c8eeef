"""One retrain: select out of time, gate against the champion on rows it never saw, register, promote.

The same entry point runs everywhere (`python -m model retrain`): in an Azure ML command job when
the monitor submits one in Azure, as a subprocess of the local stack, and in `make replay`.

Why two fits. The gate must compare challenger and champion on the most recent labelled rows
that neither trained on, but the model that ships must have seen those rows too (they are the
ones most like the clients it will score). So:

1. the gate window is the newest half of the rows the champion did not train on (its training
   data held the first `training_data.rows` rows of the same time-ordered data), at least
   `min_gate_rows` and at most `gate_fraction` of the rows: the stand-in below learns from the
   older half of the new rows, the one thing that can make it better than the champion. When
   fewer than `min_gate_rows` are new, the newest `gate_fraction` are used and the window is
   marked as overlapping (the overlap favours the champion: a conservative gate);
2. the whole selection (model/train.py) runs on the rows before the window: that fit stands in
   for the challenger in the gate (model/registry/gate.py, model/challenge.py);
3. the configuration it selected is refit on every row and registered, with the trigger and the
   gate's figures in its metadata;
4. it is promoted through the stages the stack's policy names (dev by default), in order, each
   promotion gated against that stage's champion on the window; the first refusal stops the
   climb. Every decision, with the trigger's evidence, goes into the promotion log.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from model import RETRAIN_REPORT_FILE
from model.challenge import GatePolicy
from model.data import load_labelled
from model.registry import STAGES, PromotionRefused, Registry, RegistryError
from model.serving import load_folder
from model.train import TrainConfig, train

log = logging.getLogger(__name__)

GATE_FOLDER, CANDIDATE_FOLDER = "gate-fit", "candidate"


@dataclass(frozen=True)
class Window:
    """The gate's rows [start, end) in time order; `clean`: the champion trained on none of them."""

    start: int
    end: int
    clean: bool
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"first_row": self.start + 1, "last_row": self.end, "rows": self.end - self.start,
                "clean": self.clean, "why": self.why}  # fmt: skip


def gate_window(
    rows: int, champion_rows: int | None, fraction: float, min_rows: int, champion: bool = True
) -> Window:
    """Where the gate's rows start: after the champion's training rows, at most `fraction` of all.

    `champion_rows` None: no champion (`champion` False), or one whose training rows are not
    recorded (then the window may overlap its training data, and says so)."""
    if not 0 < fraction < 1:
        raise ValueError(f"gate_fraction must be in (0, 1), not {fraction}")
    newest = max(min_rows, round(rows * fraction))
    if newest >= rows:
        raise ValueError(f"{rows} labelled rows are too few to hold out {newest} for the gate")
    new = None if champion_rows is None else rows - champion_rows
    if new is not None and new >= min_rows:
        # The newest half of the new rows (at least min_rows, at most `fraction` of all): the
        # stand-in learns from the older half, which is what can make it differ from the champion.
        size = max(min_rows, min(new // 2, round(rows * fraction)))
        why = (
            f"the newest {size:,} of the {new:,} rows the champion never trained on; "
            f"the challenger's stand-in trained on the {new - size:,} before them"
        )
        return Window(rows - size, rows, True, why)
    if not champion:
        return Window(rows - newest, rows, True, f"no champion: the newest {fraction:.0%} of the rows")
    if champion_rows is None:
        return Window(rows - newest, rows, False, f"the champion's training rows are not recorded: "
                      f"the newest {newest:,} rows, which it may have trained on")  # fmt: skip
    return Window(
        rows - newest,
        rows,
        False,
        f"only {max(rows - champion_rows, 0):,} rows are newer than the champion's {champion_rows:,} "
        f"(fewer than {min_rows:,}): the newest {newest:,} rows, which the champion partly trained on",
    )


@dataclass(frozen=True)
class RetrainConfig:
    train: TrainConfig  # data, outcomes, out (the work folder), name and the selection's choices
    promote_to: tuple[str, ...] = ("dev",)  # the stages this stack may move by itself, in order
    gate_fraction: float = 0.2
    min_gate_rows: int = 500
    policy: GatePolicy = field(default_factory=GatePolicy)
    trigger: dict[str, Any] = field(default_factory=dict)  # the verdict's rules and evidence
    actor: str = "retrain"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.promote_to) - set(STAGES))
        if unknown:
            raise ValueError(f"promote_to names unknown stages {unknown}; stages: {', '.join(STAGES)}")


def _champion(registry: Registry, name: str, stage: str) -> tuple[str | None, int | None]:
    """The version `stage` serves and how many rows it trained on (None, None: nothing serves)."""
    try:
        metadata = registry.show(name, stage)
    except RegistryError:
        return None, None
    rows = (metadata.get("training_data") or {}).get("rows")
    return str(metadata["version"]), int(rows) if isinstance(rows, int) else None


def _annotate(folder: Path, retrain: dict[str, Any]) -> None:
    """Record the retrain (trigger, window, gate fit) in the candidate's metadata before registering."""
    path = folder / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["retrain"] = retrain
    path.write_text(json.dumps(metadata, indent=2, default=str))


def retrain(config: RetrainConfig, registry: Registry) -> dict[str, Any]:
    """Run one retrain end to end; the report (also written to `{out}/retrain.json`)."""
    started = time.perf_counter()
    base = config.train
    name = base.name
    dataset = load_labelled(base.data, base.outcomes, base.sample)
    rows = len(dataset.frame)
    first_stage = config.promote_to[0] if config.promote_to else STAGES[0]
    champion, champion_rows = _champion(registry, name, first_stage)
    window = gate_window(
        rows, champion_rows, config.gate_fraction, config.min_gate_rows, champion is not None
    )
    log.info("retrain %s: %d labelled rows; gate window %s", name, rows, window.why)

    log.info("retrain 1/3: selection on rows 1-%d (the gate's stand-in for the challenger)", window.start)
    gate_fit = train(replace(base, out=base.out / GATE_FOLDER, sample=window.start))
    chosen = gate_fit.metadata
    log.info(
        "retrain 2/3: refit %s/%s/%s on all %d rows", chosen["candidate"], chosen["feature_set"],
        chosen["recency"], rows,
    )  # fmt: skip
    candidate = train(
        replace(
            base,
            out=base.out / CANDIDATE_FOLDER,
            candidates=(chosen["candidate"],),
            feature_sets=(chosen["feature_set"],),
            recency=(chosen["recency"],),
        )
    )
    evidence = {"trigger": config.trigger, "window": window.to_dict(), "champion": champion}
    _annotate(
        candidate.folder,
        {**evidence, "gate_fit": {"rows": window.start, "metrics": chosen["metrics"]["validation"],
                                  "selection": chosen["selection"]}},
    )  # fmt: skip
    version = registry.register(candidate.folder, name)
    log.info("retrain 3/3: registered %s version %s; promoting through %s", name, version, config.promote_to)

    gate_rows = dataset.frame.iloc[window.start : window.end].reset_index(drop=True)
    stand_in = load_folder(gate_fit.folder)
    decisions: list[dict[str, Any]] = []
    for stage in (s for s in STAGES if s in config.promote_to):
        try:
            record = registry.promote(
                name,
                version,
                stage,
                gate_data=gate_rows,
                metric="roc_auc",
                actor=config.actor,
                stand_in=stand_in,
                policy=config.policy,
                evidence={**evidence, "version": version},
            )
        except PromotionRefused as refusal:
            decisions.append({"stage": stage, "decision": "refused", "reason": str(refusal),
                              "gate": refusal.gate})  # fmt: skip
            log.warning("retrain: %s", refusal)
            break
        decisions.append({"stage": stage, "decision": "promoted", "gate": record.get("gate"),
                          "previous": record.get("previous")})  # fmt: skip
        log.info("retrain: %s %s -> version %s (was %s)", name, stage, version, record.get("previous"))

    report = {
        "kind": "retrain",
        "model_name": name,
        "version": version,
        "rows": rows,
        **evidence,
        "configuration": {k: chosen[k] for k in ("candidate", "feature_set", "recency")},
        "gate_fit_validation": chosen["metrics"]["validation"],
        "candidate_validation": candidate.metadata["metrics"]["validation"],
        "decisions": decisions,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (base.out / RETRAIN_REPORT_FILE).write_text(json.dumps(report, indent=2, default=str))
    return report


def summary_line(report: dict[str, Any]) -> str:
    """One line for a person: the version, where it went, and why it stopped."""
    moves = ", ".join(f"{d['stage']} {d['decision']}" for d in report["decisions"]) or "not promoted"
    fired = ", ".join((report.get("trigger") or {}).get("fired") or []) or "by hand"
    return (
        f"retrained {report['model_name']} version {report['version']} on {report['rows']:,} rows "
        f"({report['configuration']['candidate']}/{report['configuration']['feature_set']}/"
        f"{report['configuration']['recency']}; trigger: {fired}): {moves} in {report['seconds']:.0f}s"
    )
