"""Backtest of the training procedure itself: select on the rows before a cut, judge after it.

    .venv/bin/python -m bench.selection_backtest [--cuts 0.7,0.8] [--candidates logreg,hgb,rf]
                                                 [--data PATH] [--markdown PATH]

Why: the rolling-origin folds choose a configuration, but whether that choice holds up on clients
later than every labelled row cannot be measured on the rows the folds used. This script runs the
procedure of `python -m model train` (`model.train.evaluate_grid`, then `selection.select`) on
the first `cut` of the rows only, as if they were all the labels there were, refits every
configuration on them the way training refits the winner, and scores every row after the cut:
the selected configuration's ROC AUC there against the best configuration's in hindsight and the
configuration `python -m model train` ships today. Nested, so the later rows never influence the
choice. Calibration, the threshold and ONNX are left out: they do not change a ranking.

It reports, per cut, the selected configuration, its ROC AUC on the later rows, its rank among
all configurations there, and the best one. The exit status is non-zero only when something
fails to run. About 45 s a cut on 2 cores with the full grid.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.common import command_line, emit, machine_facts, run_logged
from model import evaluate, selection
from model.data import load_labelled
from model.schema import FEATURE_SETS, TARGET
from model.train import TrainConfig, evaluate_grid, model_features
from model.train_cli import names

log = logging.getLogger(__name__)
DEFAULT_DATA = Path("data/bank_marketing/bank_marketing.csv")


def backtest(config: TrainConfig, cuts: list[float]) -> list[dict]:
    dataset = load_labelled(config.data, config.outcomes, config.sample)
    y = dataset.frame[TARGET].to_numpy()
    features = model_features(dataset.frame.drop(columns=[TARGET]))
    rows = len(y)
    report = []
    for share in cuts:
        cut = round(rows * share)
        started = time.perf_counter()
        _, results = evaluate_grid(features.iloc[:cut], y[:cut], config)
        chosen = selection.select(results)
        later: dict[str, float] = {}
        for result in results:
            pipeline, _ = result.config.fit(features, y, cut, cut, config.seed)
            columns = list(FEATURE_SETS[result.config.feature_set].columns)
            scores = pipeline.predict_proba(features.iloc[cut:][columns])[:, 1]
            later[result.config.key] = evaluate.metrics(y[cut:], scores)["roc_auc"]
        ranking = sorted(later, key=later.get, reverse=True)
        log.info(
            "cut %s: selected %s, ROC AUC %.3f on the %s later rows (%.0fs)",
            f"{cut:,}",
            chosen.config.key,
            later[chosen.config.key],
            f"{rows - cut:,}",
            time.perf_counter() - started,
        )
        report.append(
            {
                "cut": cut,
                "later_rows": rows - cut,
                "later_rate": float(y[cut:].mean()),
                "selected": chosen.config.key,
                "selected_folds": chosen.mean(selection.SELECTION_METRIC),
                "selected_later": later[chosen.config.key],
                "rank": ranking.index(chosen.config.key) + 1,
                "configurations": len(ranking),
                "best_later": ranking[0],
                "best_later_value": later[ranking[0]],
                "median_later": float(np.median(list(later.values()))),
                "seconds": time.perf_counter() - started,
            }
        )
    return report


def markdown(report: list[dict]) -> str:
    lines = [
        "| cut | later rows (subscribed) | selected | folds ROC AUC | later ROC AUC | rank"
        " | best later | median |",
        "|---:|---:|---|---:|---:|---:|---|---:|",
    ]
    for r in report:
        lines.append(
            f"| {r['cut']:,} | {r['later_rows']:,} ({r['later_rate']:.1%}) | {r['selected']} | "
            f"{r['selected_folds']:.3f} | **{r['selected_later']:.3f}** | "
            f"{r['rank']} of {r['configurations']} | "
            f"{r['best_later']} {r['best_later_value']:.3f} | {r['median_later']:.3f} |"
        )
    return "\n".join(lines)


def document(report: list[dict]) -> str:
    facts = machine_facts(("scikit-learn", "numpy", "pandas"))
    head = [f"Command: `{command_line('bench.selection_backtest')}`", ""]
    head += [f"- {name}: {value}" for name, value in facts]
    return "\n".join([*head, "", markdown(report), ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.selection_backtest", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cuts", default="0.7,0.8", help="shares of the rows the procedure may see")
    parser.add_argument("--candidates", help="model families (default: TrainConfig's)")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    config = TrainConfig(data=args.data, out=Path("unused"))
    if args.candidates:
        config = replace(config, candidates=names(args.candidates))
    cuts = [float(part) for part in args.cuts.split(",")]
    markdown_path = str(args.markdown) if args.markdown else None
    return run_logged(lambda: emit(document(backtest(config, cuts)), markdown_path, log) or 0, log)


if __name__ == "__main__":
    raise SystemExit(main())
