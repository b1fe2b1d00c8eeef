"""`make replay`: the shipped bank data played in time order through the whole retraining loop.

    .venv/bin/python -m devstack.replay [--initial-periods 2] [--schedule-every 4] [--out DIR]

The first months train the first model (registered, promoted to dev). Then, month by month: the
version dev serves scores the month's clients (drift counts and the label-free estimate as the
scoring function records them); the month's outcomes arrive a few days after it ends; realised
quality per month is computed with the monitor's own code (functions/monitor/job.py
`quality_documents`); the retraining rules judge the serving version
(model/monitoring/triggers.py); when one fires, `model.retrain` (the entry point the Azure ML job
and the local stack run) selects on the rows before its gate window, gates the challenger against
the champion there, refits on every labelled row, registers, and promotes to dev or refuses, with
every decision in the promotion log. The next month is scored by whatever dev then serves.

Everything is local folders (a registry and a `monitoring` folder in the lake's layout), so the
replay needs no Azurite. It prints one line per month and writes `summary.json` (per month: the
serving version, the stale first model's ROC AUC, the serving one's, the drift share, the
decision and its reason) and `dashboard.html` into --out (default .local/demo/replay/).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.metrics import roc_auc_score

from devstack.bank_rows import CLIENT_COLUMNS, read_bank_rows
from devstack.local_settings import LOCAL_DIR
from functions.monitor.job import baselines, quality_documents
from functions.monitor.sources import streak
from lake.paths import drift_path, estimate_path, quality_path, retrain_verdict_path
from model import DEFAULT_MODEL_NAME
from model.drift_config import DEFAULT_CONFIG as DRIFT_CONFIG
from model.monitoring import triggers
from model.monitoring.batch import BatchCounts
from model.monitoring.collect import collect
from model.monitoring.dashboard import render_dashboard
from model.registry import FolderStore, Registry
from model.retrain import RetrainConfig, retrain
from model.train import TrainConfig, train

log = logging.getLogger("devstack.replay")
PERIOD = "month"  # MONITOR_PERIOD: the shipped data's months hold 13 to 7,957 contacts
OUTCOME_DELAY_DAYS = 5  # the month's outcomes are exported this many days after it ends
STAGE = "dev"


def bank_frame() -> pd.DataFrame:
    """The shipped rows with client_id and contact_date, in the order the calls happened."""
    frame = pd.DataFrame([asdict(row) for row in read_bank_rows()])
    frame["subscribed"] = (frame["y"] == "yes").astype(int)
    frame["month_label"] = pd.to_datetime(frame["contact_date"]).dt.strftime("%Y-%m")
    return frame.sort_values(["contact_date", "client_id"], kind="stable").reset_index(drop=True)


def write_history(frame: pd.DataFrame, work: Path) -> tuple[Path, Path]:
    """The labelled history as the two exports a retrain reads: clients and campaign_outcomes."""
    work.mkdir(parents=True, exist_ok=True)
    clients, outcomes = work / "clients.csv", work / "campaign_outcomes.csv"
    frame[["client_id", *CLIENT_COLUMNS[1:]]].to_csv(clients, index=False)
    frame[["client_id", "contact_date", "subscribed"]].to_csv(outcomes, index=False)
    return clients, outcomes


def _write(root: Path, path: str, document: dict[str, Any]) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=1, default=str))


def _auc(y: pd.Series, p: pd.Series) -> float | None:
    return float(roc_auc_score(y, p)) if y.nunique() == 2 else None


class Replay:
    """The state of one replay: the registry, the monitoring folder, the scored months so far."""

    def __init__(self, out: Path, name: str, train_options: dict[str, Any]) -> None:
        self.out, self.name, self.train_options = out, name, train_options
        self.registry = Registry(FolderStore(out / "registry"))
        self.monitoring = out / "monitoring"
        self.predictions: list[pd.DataFrame] = []
        self.drift: list[tuple[str, int, bool]] = []

    def train_first(self, history: pd.DataFrame) -> str:
        clients, outcomes = write_history(history, self.out / "work" / "initial")
        config = TrainConfig(
            data=clients,
            outcomes=outcomes,
            out=self.out / "work" / "initial" / "model",
            name=self.name,
            **self.train_options,
        )
        outcome = train(config)
        version = self.registry.register(outcome.folder, self.name)
        self.registry.promote(self.name, version, STAGE, actor="replay")
        return version

    def score(self, month: pd.DataFrame, label: str, scored_at: dt.datetime) -> dict[str, Any]:
        """Score the month with the serving version, as the scoring function would; its figures."""
        model = self.registry.load(self.name, STAGE)
        raw = month[["client_id", *CLIENT_COLUMNS[1:]]]
        probabilities, checked = model.score(raw)
        reference = json.loads(self.registry.read_artifact(self.name, model.version, "reference.json"))
        counts = BatchCounts(reference, model.threshold)
        counts.add(checked.frame, probabilities)
        context = {
            "input": {"blob": f"replay/{label}.csv"},
            "model": {"name": self.name, "version": model.version},
            "scored_at": scored_at.isoformat(),
        }
        report = context | counts.drift_report(DRIFT_CONFIG)
        day = scored_at.date().isoformat()
        _write(self.monitoring, drift_path(self.name, day, label), report)
        estimate = counts.estimate_record(
            context
            | {"batch": {"rows_in": len(month), "rows_scored": len(probabilities), "rows_rejected": 0}}
        )
        if estimate is not None:
            _write(self.monitoring, estimate_path(self.name, day, label), estimate)
        self.drift.append((scored_at.isoformat(), len(month), bool(report["drifted"])))
        self.predictions.append(
            pd.DataFrame(
                {
                    "client_id": checked.ids.astype(str),
                    "probability": probabilities.astype(float),
                    "decision": (probabilities >= model.threshold).astype(int),
                    "model_name": self.name,
                    "model_version": model.version,
                    "scored_at": scored_at.isoformat(),
                }
            )
        )
        return {
            "version": model.version,
            "probabilities": probabilities,
            "drift_share": report["drift_share"],
            "drifted": bool(report["drifted"]),
        }

    def judge(
        self, outcomes: pd.DataFrame, now: dt.datetime, scheduled: bool
    ) -> tuple[str, triggers.Verdict]:
        """Quality per month from the outcomes that arrived, and the retraining verdict."""

        predictions = pd.concat(self.predictions, ignore_index=True)
        documents = quality_documents(
            predictions, outcomes, PERIOD, lambda versions: baselines(self.registry, self.name, versions)
        )
        for (_, period), document in documents.items():
            _write(
                self.monitoring, quality_path(self.name, period), document | {"computed_at": now.isoformat()}
            )
        serving = self.registry.resolve(self.name, STAGE)
        _, run = streak(pd.DataFrame(self.drift, columns=["scored_at", "rows", "drifted"]))
        verdict = triggers.evaluate(documents.values(), serving, run, triggers.RetrainPolicy(), scheduled)
        _write(
            self.monitoring,
            retrain_verdict_path(self.name, now.date().isoformat()),
            {
                "kind": "retrain_verdict",
                "model_version": serving,
                "evaluated_at": now.isoformat(),
                **verdict.to_dict(),
            },
        )
        return serving, verdict

    def retrain(self, history: pd.DataFrame, label: str, verdict: triggers.Verdict, now: dt.datetime) -> dict:
        clients, outcomes = write_history(history, self.out / "work" / label)
        config = RetrainConfig(
            train=TrainConfig(
                data=clients,
                outcomes=outcomes,
                out=self.out / "work" / label / "retrain",
                name=self.name,
                **self.train_options,
            ),
            promote_to=(STAGE,),
            trigger={
                "fired": list(verdict.fired),
                "evidence": verdict.evidence,
                "evaluated": now.date().isoformat(),
            },
            actor="replay",
        )
        return retrain(config, self.registry)

    def dashboard(self) -> Path:
        data = collect(FolderStore(self.monitoring), self.name, self.registry)
        page = render_dashboard(data, stack="replay", generated_at=dt.datetime.now(dt.UTC).isoformat())
        target = self.out / "dashboard.html"
        target.write_text(page)
        return target


def _decision(report: dict[str, Any] | None, verdict: triggers.Verdict) -> tuple[str, str]:
    if not verdict.retrain:
        return "kept", "no rule fired"
    assert report is not None
    decision = report["decisions"][0] if report["decisions"] else {"decision": "registered", "reason": ""}
    fired = ", ".join(verdict.fired)
    if decision["decision"] == "promoted":
        summary = decision["gate"]["comparison"]["summary"] if decision.get("gate") else "no champion"
        return f"promoted v{report['version']}", f"{fired}: {summary}"
    return f"refused v{report['version']}", f"{fired}: {decision.get('reason', '')[:300]}"


def run(
    out: Path,
    initial_periods: int,
    schedule_every: int,
    train_options: dict[str, Any],
    limit: int | None = None,
) -> dict[str, Any]:
    """Replay every month after the first `initial_periods` (or only the next `limit`)."""
    started = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    frame = bank_frame()
    months = list(dict.fromkeys(frame["month_label"]))
    replay = Replay(out, DEFAULT_MODEL_NAME, train_options)
    history = frame[frame["month_label"].isin(months[:initial_periods])]
    first = replay.train_first(history)
    stale = replay.registry.load(replay.name, first)
    print(
        f"trained v{first} on {len(history):,} rows ({', '.join(months[:initial_periods])}); dev -> v{first}"
    )
    periods = []
    later = months[initial_periods:] if limit is None else months[initial_periods : initial_periods + limit]
    for index, label in enumerate(later, start=1):
        month = frame[frame["month_label"] == label]
        start = dt.datetime.fromisoformat(f"{label}-01").replace(tzinfo=dt.UTC)
        scored = replay.score(month, label, start + dt.timedelta(hours=2))
        stale_p, _ = stale.score(month[["client_id", *CLIENT_COLUMNS[1:]]])
        y = month["subscribed"].reset_index(drop=True)
        history = pd.concat([history, month], ignore_index=True)  # the outcomes arrive
        arrived = (start + pd.offsets.MonthBegin(1)).to_pydatetime() + dt.timedelta(days=OUTCOME_DELAY_DAYS)
        outcomes = history[["client_id", "contact_date", "subscribed"]].astype({"client_id": str})
        scheduled = schedule_every > 0 and index % schedule_every == 0
        _, verdict = replay.judge(outcomes, arrived, scheduled)
        report = replay.retrain(history, label, verdict, arrived) if verdict.retrain else None
        decision, reason = _decision(report, verdict)
        row = {
            "period": label,
            "rows": len(month),
            "subscribed": int(y.sum()),
            "serving_version": scored["version"],
            "stale_roc_auc": _auc(y, pd.Series(stale_p)),
            "serving_roc_auc": _auc(y, pd.Series(scored["probabilities"])),
            "drift_share": scored["drift_share"],
            "drifted": scored["drifted"],
            "fired": list(verdict.fired),
            "decision": decision,
            "reason": reason,
            "dev_after": replay.registry.resolve(replay.name, STAGE),
            "retrain": None
            if report is None
            else {k: report[k] for k in ("version", "window", "configuration", "decisions", "seconds")},
        }
        periods.append(row)
        print(_line(row), flush=True)
    dashboard = replay.dashboard()
    summary = {
        "model_name": replay.name,
        "period": PERIOD,
        "initial_version": first,
        "periods": periods,
        "seconds": round(time.perf_counter() - started, 1),
        "dashboard": str(dashboard),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _figure(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['period']}  {row['rows']:>5,} rows  served by v{row['serving_version']:<3} "
        f"ROC AUC stale {_figure(row['stale_roc_auc'])} serving {_figure(row['serving_roc_auc'])}  "
        f"drift share {row['drift_share']:.2f}  -> {row['decision']} ({row['reason'][:140]})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.replay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=LOCAL_DIR / "demo" / "replay")
    parser.add_argument("--initial-periods", type=int, default=2, help="months the first model trains on")
    parser.add_argument(
        "--schedule-every", type=int, default=4, help="the schedule rule fires every N months"
    )
    parser.add_argument("--candidates", help="model families (default: TrainConfig's)")
    parser.add_argument("--cv-folds", type=int, default=0, help="stratified CV for reference (0 = skip)")
    parser.add_argument("--months", type=int, help="replay only this many months after the first ones")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options: dict[str, Any] = {"cv_folds": args.cv_folds}
    if args.candidates:
        options["candidates"] = tuple(args.candidates.split(","))
    summary = run(args.out, args.initial_periods, args.schedule_every, options, args.months)
    print(f"summary: {args.out / 'summary.json'} ({summary['seconds']:.0f}s)")
    print(f"dashboard: {Path(summary['dashboard']).resolve().as_uri()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
