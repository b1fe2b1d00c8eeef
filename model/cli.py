"""`python -m model COMMAND`: train, retrain, score; the registry (register ... rollback); monitor;
the real-time endpoint's blue/green deployments."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from model import DEFAULT_MODEL_NAME
from model.csvinput.options import DEFAULT_DUPLICATE_IDS, DUPLICATE_POLICIES
from model.deployments_cli import add_parser as add_deployments_parser
from model.monitoring.cli import add_parser as add_monitor_parser
from model.registry import GATE_METRICS, KEY_METRICS, SERVING_STAGE, STAGES
from model.retrain_cli import add_parser as add_retrain_parser
from model.train_cli import add_parser as add_train_parser

log = logging.getLogger("model")
DEFAULT_REGISTRY = ".local/registry"


def _registry(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from model.registry import open_registry

    location = args.registry or os.environ.get("MODEL_REGISTRY") or DEFAULT_REGISTRY
    # Locally (a folder, or Azurite through a connection string) create what Pulumi provisions in Azure.
    from lake.contract import DATA_LAKE

    return open_registry(location, ensure=location != "blob" or bool(os.environ.get(DATA_LAKE)))


def _load_model(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from model.serving import load_folder

    path = Path(args.model)
    if path.is_dir():
        return load_folder(path, threads=2)
    name, _, ref = args.model.partition("@")
    return _registry(args).load(name, ref or SERVING_STAGE, threads=2)


def cmd_score(args: argparse.Namespace) -> int:
    """Score a CSV file with the trigger's reader and checks (model/csvinput), into local files."""
    from model.csvinput.errors import FileRejected
    from model.csvinput.local import LocalOutputs, resolve_delimiter, score_file
    from model.csvinput.run import ReadOptions

    model = _load_model(args)
    options = ReadOptions(
        chunk_rows=args.chunk_rows,
        duplicate_ids=args.duplicate_ids,
        delimiter=resolve_delimiter(args.input, args.delimiter),
    )
    outputs = LocalOutputs.beside(args.output)
    try:
        scored = score_file(args.input, model, args.output, options)
    except FileRejected as rejection:
        print(f"rejected ({rejection.code}): {rejection.message} -> {outputs.error}", file=sys.stderr)
        return 3
    tally = scored.tally
    print(
        f"scored {tally.rows_scored:,} of {tally.rows_in - tally.blank_lines:,} rows "
        f"with {model.name} v{model.version} -> {args.output}"
    )
    if tally.unseen:
        policy = model.schema.unseen_policy
        print(f"unseen categories (scored as 'other', policy {policy}): {dict(tally.unseen)}")
    if tally.duplicate_ids:
        row, first = tally.first_duplicates[0]
        print(
            f"duplicate {scored.id_column}: {tally.duplicate_ids:,} rows (first: row {row} repeats row "
            f"{first}; --duplicate-ids {args.duplicate_ids})"
        )
    if tally.rows_rejected:
        row, reason = tally.first_rejections[0]
        print(
            f"rejected {tally.rows_rejected:,} rows (first: row {row}: {reason}) -> {outputs.rejected_rows}"
        )
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    version = _registry(args).register(args.folder, args.name)
    print(f"registered {args.name or 'model'} version {version}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    for name in [args.name] if args.name else registry.models():
        print(name)
        for info in registry.versions(name):
            metrics = "  ".join(f"{k} {v:.3f}" for k, v in info.metrics.items() if k in KEY_METRICS)
            stages = f"  [{', '.join(info.stages)}]" if info.stages else ""
            print(f"  v{info.version:<4} {info.registered_at or '?':<26} {metrics}{stages}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    import json

    name, _, ref = args.ref.partition("@")
    print(json.dumps(_registry(args).show(name, ref or SERVING_STAGE), indent=2, default=str))
    return 0


def _gate_rows(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    if args.data is None:
        return None
    from model.data import read_csv

    frame = read_csv(args.data)
    keep = max(1, int(len(frame) * args.recent_fraction))
    return frame.tail(keep).reset_index(drop=True)  # the most recent rows: data are in time order


def cmd_promote(args: argparse.Namespace) -> int:
    record = _registry(args).promote(
        args.name,
        args.version,
        args.stage,
        gate_data=_gate_rows(args),
        tolerance=args.tolerance,
        metric=args.metric,
        override_reason=args.reason,
    )
    gate = record.get("gate")
    detail = (
        f"gate {gate['metric']}: challenger {gate['challenger']:.4f} vs champion {gate['champion']:.4f}"
        if gate
        else "no champion to compare with"
        if not record.get("override")
        else f"override: {record['override']['reason']}"
    )
    print(f"{args.name} {args.stage} -> version {record['version']} ({detail})")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    record = _registry(args).approve(args.name, args.version, args.stage, by=args.by, note=args.note)
    print(f"{args.name} version {record['version']} approved for {args.stage} by {record['actor']}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    record = _registry(args).rollback(args.name, args.stage, reason=args.reason)
    print(f"{args.name} {args.stage} rolled back to version {record['version']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model", description=__doc__)
    parser.add_argument(
        "--registry",
        help=f"folder, or 'blob' for the DataLake `models` container "
        f"(default: $MODEL_REGISTRY or {DEFAULT_REGISTRY})",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)

    add_train_parser(commands)
    add_retrain_parser(commands, _registry)

    score = commands.add_parser("score", help="score a CSV with a model folder or a registry reference")
    score.add_argument("--model", required=True, help="model folder, or NAME@STAGE / NAME@VERSION")
    score.add_argument("--input", type=Path, required=True)
    score.add_argument("--output", type=Path, required=True)
    score.add_argument("--chunk-rows", type=int, default=100_000)
    score.add_argument(
        "--delimiter",
        choices=("auto", ",", ";"),
        default="auto",
        help="field separator (auto: ';' or ',' from the header line); otherwise read as the trigger reads",
    )
    score.add_argument(
        "--duplicate-ids",
        choices=DUPLICATE_POLICIES,
        default=DEFAULT_DUPLICATE_IDS,
        help="a client_id seen before: keep (score it, count it), reject_rows or reject_file "
        "(as SCORING_DUPLICATE_IDS)",
    )
    score.set_defaults(run=cmd_score)

    register = commands.add_parser("register", help="store a model folder as the next immutable version")
    register.add_argument("folder", type=Path)
    register.add_argument("--name", default=DEFAULT_MODEL_NAME)
    register.set_defaults(run=cmd_register)

    listing = commands.add_parser("list", help="models and versions, with their stages")
    listing.add_argument("name", nargs="?")
    listing.set_defaults(run=cmd_list)

    show = commands.add_parser("show", help="metadata of NAME@VERSION or NAME@STAGE")
    show.add_argument("ref")
    show.set_defaults(run=cmd_show)

    promote = commands.add_parser(
        "promote", help="point a stage at a version (dev -> preprod -> prod), gated"
    )
    promote.add_argument("version")
    promote.add_argument("stage", choices=STAGES)
    promote.add_argument("--name", default=DEFAULT_MODEL_NAME)
    promote.add_argument("--data", type=Path, help="labelled CSV whose most recent rows gate the promotion")
    promote.add_argument("--recent-fraction", type=float, default=0.2)
    promote.add_argument("--metric", choices=GATE_METRICS, default="pr_auc")
    promote.add_argument("--tolerance", type=float, default=0.01)
    promote.add_argument("--reason", help="override the order and the gate; recorded with the promotion")
    promote.set_defaults(run=cmd_promote)

    approve = commands.add_parser(
        "approve", help="record a person's approval of VERSION for STAGE (prod needs one)"
    )
    approve.add_argument("version")
    approve.add_argument("stage", choices=STAGES)
    approve.add_argument("--by", required=True, help="who approves (recorded in the promotion log)")
    approve.add_argument("--note")
    approve.add_argument("--name", default=DEFAULT_MODEL_NAME)
    approve.set_defaults(run=cmd_approve)

    rollback = commands.add_parser("rollback", help="point a stage back at its previous version")
    rollback.add_argument("stage", choices=STAGES)
    rollback.add_argument("--name", default=DEFAULT_MODEL_NAME)
    rollback.add_argument("--reason", required=True)
    rollback.set_defaults(run=cmd_rollback)
    add_monitor_parser(commands, _registry)
    add_deployments_parser(commands, _registry)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.command == "train" else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    from model.registry import RegistryError
    from model.schema import SchemaError

    try:
        return int(args.run(args))
    except (RegistryError, SchemaError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        if "DataLake" in str(error):
            print(
                "locally: .venv/bin/python -m devstack exec -- .venv/bin/python -m model ...", file=sys.stderr
            )
        return 2


if __name__ == "__main__":
    sys.exit(main())
