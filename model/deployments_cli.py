"""`python -m model deployments show | set VERSION --slot green | traffic green=10 | swap | rollback`.

Moves the real-time endpoint's traffic between its blue and green versions by changing
`{model}/deployments.json` (model/registry/deployments.py); running workers pick the change up
within DEPLOYMENTS_REFRESH_SECONDS, without a restart. Every change goes into the promotion log.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

from model import DEFAULT_MODEL_NAME
from model.registry import SERVING_STAGE, STAGES
from model.registry.deployments import COLOURS, GREEN, DeploymentError, Deployments

SHARES = (*COLOURS, "shadow")


def parse_shares(pairs: list[str]) -> dict[str, int]:
    """`green=10 shadow=5` -> {"green": 10, "shadow": 5}; refuses unknown names and non-integers."""
    shares: dict[str, int] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().lower()
        if not sep or name not in SHARES:
            raise DeploymentError(f"{pair!r}: say NAME=PERCENT with NAME one of {', '.join(SHARES)}")
        if not value.strip().isdigit():
            raise DeploymentError(f"{pair!r}: the percentage must be a whole number from 0 to 100")
        shares[name] = int(value)
    return shares


def _deployments(args: argparse.Namespace, registry: Callable[[argparse.Namespace], Any]) -> Deployments:
    return Deployments(registry(args), args.name, args.stage)


def _print(deployments: Deployments, verb: str) -> None:
    state = deployments.read()
    origin = "" if state.explicit else f" (no deployments.json yet: blue is {deployments.stage}'s version)"
    print(f"{deployments.name} {verb}: {state.summary()}{origin}")


def run(args: argparse.Namespace, registry: Callable[[argparse.Namespace], Any]) -> int:
    deployments = _deployments(args, registry)
    action = args.action
    if action == "show":
        if args.json:
            document = deployments.document() or deployments.read().to_document(deployments.name)
            print(json.dumps(document, indent=2))
            return 0
        _print(deployments, "deployments")
        return 0
    if action == "set":
        deployments.set(args.version, args.slot, reason=args.reason)
    elif action == "traffic":
        shares = parse_shares(args.shares)
        deployments.traffic(green=shares.get("green"), blue=shares.get("blue"), shadow=shares.get("shadow"),
                            reason=args.reason)  # fmt: skip
    elif action == "swap":
        deployments.swap(reason=args.reason)
    elif action == "rollback":
        deployments.rollback(reason=args.reason)
    _print(deployments, "now")
    return 0


def add_parser(commands: Any, registry: Callable[[argparse.Namespace], Any]) -> None:
    parser = commands.add_parser(
        "deployments", help="the real-time endpoint's blue/green versions and traffic (deployments.json)"
    )
    parser.add_argument("--name", default=DEFAULT_MODEL_NAME)
    parser.add_argument(
        "--stage",
        choices=STAGES,
        default=os.environ.get("MODEL_STAGE") or SERVING_STAGE,
        help="the stack's MODEL_STAGE: what blue serves before the first change (default: $MODEL_STAGE "
        f"or {SERVING_STAGE})",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="each colour's version and traffic, and the shadow share")
    show.add_argument("--json", action="store_true", help="the whole document, with its history")
    chosen = actions.add_parser("set", help="point a colour at a version (checked: it loads)")
    chosen.add_argument("version", help="a version number, or a stage name (its version)")
    chosen.add_argument("--slot", choices=COLOURS, default=GREEN)
    chosen.add_argument("--reason")
    traffic = actions.add_parser("traffic", help="move the split: green=10 (blue takes the rest), shadow=5")
    traffic.add_argument("shares", nargs="+", metavar="NAME=PERCENT")
    traffic.add_argument("--reason")
    swap = actions.add_parser("swap", help="green becomes blue once it takes 100%% (no caller moves)")
    swap.add_argument("--reason")
    rollback = actions.add_parser("rollback", help="every caller back to blue (green 0%%, no shadow)")
    rollback.add_argument("--reason", required=True)
    parser.set_defaults(run=lambda args: run(args, registry))
