"""Replay the shipped bank data in time order: estimated vs realised quality of a model, per period.

    .venv/bin/python -m bench.monitoring_replay [--period week|month] [--feature-set no_calendar]
                                                [--resamples 500] [--draws 1000] [--markdown PATH]

A logistic regression (model.features.logistic_regression, the training script's pipeline) is
fitted on the first 70 % of the 36,000 rows by contact date, its decision threshold the best F1 on
those rows (model.evaluate.best_f1_threshold). The later 30 % are "scored" on their contact day
(scored_at = contact date, 02:00 UTC, the daily chain) and their outcomes all arrive: the rows go
through the monitor's libraries exactly as production rows would (model.monitoring.join,
.quality, .compare), one model version, periods by ISO week or month.

Printed per period: labelled rows, positives, the quality status; the realised ROC AUC with its
bootstrap interval; the label-free estimate of the AUC with its interval, and whether the
realised value falls outside it; the same for subscribers and for precision at the threshold.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np
import pandas as pd

from bench.common import command_line, emit, machine_facts, positive_int, run_logged
from devstack.bank_rows import OUTCOME_COLUMNS, read_bank_rows
from model.evaluate import best_f1_threshold
from model.features import logistic_regression
from model.monitoring.compare import compare_joined, compare_rows
from model.monitoring.estimate import EstimateConfig
from model.monitoring.join import join_outcomes
from model.monitoring.quality import QualityConfig, quality_records
from model.schema import FEATURE_SETS, ID_COLUMN
from model.train import model_features

log = logging.getLogger("bench.monitoring_replay")
TRAIN_SHARE = 0.70
VERSION = "replay"


def _rows() -> pd.DataFrame:
    frame = pd.DataFrame([asdict(row) for row in read_bank_rows()])
    frame["subscribed"] = (frame["y"] == "yes").astype(int)
    return frame.sort_values(["contact_date", ID_COLUMN], kind="stable").reset_index(drop=True)


def _interval(figure: dict | None, digits: int = 3) -> str:
    if not figure or figure.get("low") is None:
        return "-"
    return f"[{figure['low']:.{digits}f}, {figure['high']:.{digits}f}]"


def _value(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    rows = _rows()
    cut = int(len(rows) * TRAIN_SHARE)
    train, later = rows.iloc[:cut], rows.iloc[cut:]
    pipeline = logistic_regression(FEATURE_SETS[args.feature_set], seed=42)
    pipeline.fit(model_features(train), train["subscribed"].to_numpy())
    fitted = pipeline.predict_proba(model_features(train))[:, 1].astype(np.float32).astype(np.float64)
    threshold = best_f1_threshold(train["subscribed"].to_numpy(), fitted)
    probability = pipeline.predict_proba(model_features(later))[:, 1].astype(np.float32)
    predictions = pd.DataFrame(
        {
            ID_COLUMN: later[ID_COLUMN].to_numpy(),
            "probability": probability.astype(np.float64),
            "decision": (probability >= threshold).astype(int),
            "model_name": "bank-marketing",
            "model_version": VERSION,
            "scored_at": [f"{d.isoformat()}T02:00:00+00:00" for d in later["contact_date"]],
        }
    )
    outcomes = later[list(OUTCOME_COLUMNS)]
    quality_config = QualityConfig(period=args.period, resamples=args.resamples)
    joined = join_outcomes(predictions, outcomes, period=args.period)
    records = {r["period"]: r for r in quality_records(joined, quality_config)}
    comparisons = {c["period"]: c for c in compare_joined(joined, EstimateConfig(draws=args.draws))}
    lines = [
        "# Estimated vs realised quality, bank data replayed in time order",
        "",
        f"Command: `{command_line('bench.monitoring_replay')}`",
        "",
        *(f"- {k}: {v}" for k, v in machine_facts(("numpy", "pandas", "scikit-learn"))),
        f"- model: logistic regression, feature set `{args.feature_set}`, fitted on the first {cut:,} rows"
        f" (to {train['contact_date'].iloc[-1]}), threshold {threshold:.3f} (best F1 on those rows)",
        f"- replayed: {len(later):,} later rows ({later['contact_date'].iloc[0]} to"
        f" {later['contact_date'].iloc[-1]}), base rate {later['subscribed'].mean():.3f}"
        f" (training rows: {train['subscribed'].mean():.3f})",
        f"- periods by {args.period} of scored_at; bootstrap {args.resamples} resamples;"
        f" estimate {args.draws} draws; intervals 95 %",
        "",
        "| period | rows | subscribers | status | AUC realised [CI] | AUC estimated [interval] | AUC gap"
        " | subscribers realised / expected [interval] | precision realised / expected [interval] |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    flagged = 0
    for period, record in records.items():
        comparison = comparisons.get(period)
        if comparison is None:
            continue
        figures = comparison["figures"]
        auc, subs, prec = figures["roc_auc"], figures["subscribers"], figures["precision_at_threshold"]
        realised_auc = (record["metrics"] or {}).get("roc_auc")
        flagged += comparison["gap_outside_interval"]
        lines.append(
            f"| {period} | {record['counts']['labelled']} | {record['counts']['positives']}"
            f" | {record['status']} | {_value(auc['realised'])} {_interval(realised_auc)}"
            f" | {_value(auc['expected'])} {_interval(auc)}"
            f" | {_value(auc['gap'], 3)}{' **outside**' if auc['outside'] else ''}"
            f" | {_value(subs['realised'], 0)} / {_value(subs['expected'], 1)} {_interval(subs, 0)}"
            f"{' **outside**' if subs['outside'] else ''}"
            f" | {_value(prec['realised'])} / {_value(prec['expected'])} {_interval(prec)}"
            f"{' **outside**' if prec['outside'] else ''} |"
        )
    lines += ["", f"{flagged} of {len(comparisons)} periods flag a gap outside the interval."]
    control = compare_rows(
        fitted,
        (fitted >= threshold).astype(int),
        train["subscribed"].to_numpy(),
        EstimateConfig(draws=args.draws),
    )["figures"]
    auc, subs, prec = control["roc_auc"], control["subscribers"], control["precision_at_threshold"]
    lines += [
        "",
        "Control, the training rows themselves (in-sample, where a logistic regression is calibrated by"
        f" construction): ROC AUC realised {_value(auc['realised'])}, estimated {_value(auc['expected'])}"
        f" {_interval(auc)}; subscribers realised {_value(subs['realised'], 0)}, expected"
        f" {_value(subs['expected'], 1)} {_interval(subs, 0)}; precision realised {_value(prec['realised'])},"
        f" expected {_value(prec['expected'])} {_interval(prec)}.",
    ]
    log.info("replay done in %.1f s", time.perf_counter() - started)
    emit("\n".join(lines), args.markdown, log)
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.monitoring_replay", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--period", default="week", choices=("day", "week", "month"))
    parser.add_argument("--feature-set", default="no_calendar", choices=sorted(FEATURE_SETS))
    parser.add_argument(
        "--resamples", type=positive_int, default=500, help="bootstrap resamples (default 500)"
    )
    parser.add_argument("--draws", type=positive_int, default=1000, help="estimate draws (default 1000)")
    parser.add_argument("--markdown", help="also write the report to this file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run_logged(lambda: run(parse_args(argv)), log)


if __name__ == "__main__":
    sys.exit(main())
