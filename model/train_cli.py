"""`python -m model train`: its arguments, shared with `retrain`, and the TrainConfig they build."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from model import DEFAULT_MODEL_NAME


def names(text: str | None) -> tuple[str, ...] | None:
    """A comma-separated choice as a tuple; None when not given (TrainConfig's default applies)."""
    return None if text is None else tuple(part.strip() for part in text.split(",") if part.strip())


def add_train_arguments(parser: argparse.ArgumentParser, out_help: str) -> None:
    """The data, the output folder and the selection's choices (defaults: TrainConfig's)."""
    parser.add_argument("--data", type=Path, required=True, help="bank CSV (;) or a clients export (,)")
    parser.add_argument(
        "--outcomes", type=Path, help="campaign_outcomes export to join with --data on client_id"
    )
    parser.add_argument("--out", type=Path, required=True, help=out_help)
    parser.add_argument("--name", default=DEFAULT_MODEL_NAME)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--validation-fraction",
        type=float,
        help="newest share of rows the folds validate on (default: TrainConfig)",
    )
    parser.add_argument(
        "--folds", type=int, help="rolling-origin folds over that share (default: TrainConfig)"
    )
    parser.add_argument("--candidates", help="model families, comma-separated (default: TrainConfig)")
    parser.add_argument("--feature-sets", help="feature sets (default: TrainConfig)")
    parser.add_argument("--recency", help="recency weightings: none, halflife, window (default: TrainConfig)")
    parser.add_argument("--cv-folds", type=int, default=3, help="stratified CV for reference (0 = skip)")
    parser.add_argument("--sample", type=int, help="use only the first N rows (quick runs)")
    parser.add_argument("--unseen-policy", choices=("ignore", "reject"), default="ignore")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: a file store beside --out)")


def train_config(args: argparse.Namespace) -> Any:
    """The TrainConfig of the parsed arguments; choices left unset take TrainConfig's defaults."""
    from model.train import TrainConfig

    chosen = {
        "validation_fraction": args.validation_fraction,
        "folds": args.folds,
        "candidates": names(args.candidates),
        "feature_sets": names(args.feature_sets),
        "recency": names(args.recency),
    }
    return TrainConfig(
        data=args.data,
        out=args.out,
        outcomes=args.outcomes,
        name=args.name,
        seed=args.seed,
        cv_folds=args.cv_folds,
        sample=args.sample,
        unseen_policy=args.unseen_policy,
        tracking_uri=args.tracking_uri,
        **{key: value for key, value in chosen.items() if value is not None},
    )


def cmd_train(args: argparse.Namespace) -> int:
    from model.train import train

    outcome = train(train_config(args))
    v = outcome.metadata["metrics"]["validation"]
    print(
        f"model folder: {outcome.folder}  "
        f"({outcome.metadata['candidate']} / {outcome.metadata['feature_set']})"
    )
    print(
        f"out of time (the most recent fold): ROC AUC {v['roc_auc']:.3f}, PR AUC {v['pr_auc']:.3f}, "
        f"top 10% reaches {v['share_reached_top10']:.0%} of subscribers"
    )
    print(f"model card: {outcome.folder / 'model_card.md'}")
    return 0


def add_parser(commands: Any) -> None:
    train = commands.add_parser("train", help="train and compare candidates, write a model folder")
    add_train_arguments(train, "model folder to write")
    train.set_defaults(run=cmd_train)
