"""`python -m model retrain`: the retraining entry point of the Azure ML job and the local stack."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from model import RETRAIN_REPORT_FILE
from model.registry import STAGES
from model.train_cli import add_train_arguments, names, train_config


def trigger_of(args: argparse.Namespace) -> dict[str, Any]:
    """What asked for this retrain: the verdict file's rules and evidence, or the rules named."""
    trigger: dict[str, Any] = {}
    if args.verdict is not None:
        verdict = json.loads(args.verdict.read_text())
        trigger = {k: verdict.get(k) for k in ("fired", "evidence", "evaluated_at", "model_version")}
    if args.fired is not None:
        trigger["fired"] = [rule for rule in names(args.fired) or () if rule != "none"]
    if args.evaluated is not None:
        trigger["evaluated"] = dt.date.fromisoformat(args.evaluated).isoformat()
    trigger.setdefault("fired", [])
    return trigger


def cmd_retrain(args: argparse.Namespace, registry: Callable[[argparse.Namespace], Any]) -> int:
    from model.challenge import GatePolicy
    from model.retrain import RetrainConfig, retrain, summary_line

    config = RetrainConfig(
        train=train_config(args),
        promote_to=tuple(stage for stage in names(args.promote) or () if stage != "none"),
        gate_fraction=args.gate_fraction,
        min_gate_rows=args.min_gate_rows,
        policy=GatePolicy(),
        trigger=trigger_of(args),
        actor=args.actor,
    )
    report = retrain(config, registry(args))
    print(summary_line(report))
    for decision in report["decisions"]:
        if decision["decision"] == "refused":
            print(f"  {decision['stage']}: {decision['reason']}")
    print(f"report: {args.out / RETRAIN_REPORT_FILE}")
    return 0


def add_parser(commands: Any, registry: Callable[[argparse.Namespace], Any]) -> None:
    retrain = commands.add_parser(
        "retrain",
        help="select on the rows before the gate window, gate against the champion, refit on all, "
        "register and promote (model/retrain.py)",
    )
    add_train_arguments(retrain, "work folder: the gate's fit, the candidate and retrain.json")
    retrain.add_argument(
        "--promote",
        default="dev",
        help=f"stages this stack promotes to by itself, comma-separated, from {', '.join(STAGES)} "
        "(prod also needs an approval); 'none' registers only",
    )
    retrain.add_argument("--gate-fraction", type=float, default=0.2, help="at most this share gates")
    retrain.add_argument("--min-gate-rows", type=int, default=500)
    retrain.add_argument("--verdict", type=Path, help="the monitor's retrain verdict JSON (evidence)")
    retrain.add_argument("--fired", help="the rules that fired, comma-separated (when no --verdict)")
    retrain.add_argument("--evaluated", help="the day the rules were evaluated (YYYY-MM-DD)")
    retrain.add_argument("--actor", default="retrain", help="who the promotion log names")
    retrain.set_defaults(run=lambda args: cmd_retrain(args, registry))
