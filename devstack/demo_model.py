"""The demo's model steps: train on the day's exports, register, promote to dev."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from azure.storage.blob import BlobServiceClient
from rich.console import Console

from devstack.local_settings import LOCAL_DIR
from lake.contract import EXPORTS_CONTAINER
from lake.paths import export_csv_path
from model import DEFAULT_MODEL_NAME

MODEL_NAME = DEFAULT_MODEL_NAME


def _download(service: BlobServiceClient, container: str, blob: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("wb") as handle:
        service.get_blob_client(container, blob).download_blob().readinto(handle)
    return dest


def train_and_promote(service: BlobServiceClient, export_date: dt.date, console: Console) -> str:
    """Train on the day's exports, register the model, promote it to dev (gated); the version."""
    from model.data import load_labelled
    from model.registry import PromotionRefused, open_registry
    from model.train import TrainConfig, train

    day = export_date.isoformat()
    work = LOCAL_DIR / "demo" / day
    clients = _download(
        service, EXPORTS_CONTAINER, export_csv_path("clients", export_date), work / "clients.csv"
    )
    outcomes = _download(
        service, EXPORTS_CONTAINER, export_csv_path("campaign_outcomes", export_date), work / "outcomes.csv"
    )

    console.rule("Train on today's exports (clients joined with campaign_outcomes)")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    outcome = train(
        TrainConfig(data=clients, outcomes=outcomes, out=LOCAL_DIR / "models" / stamp, name=MODEL_NAME)
    )
    v = outcome.metadata["metrics"]["validation"]
    console.print(
        f"selected {outcome.metadata['candidate']} / {outcome.metadata['feature_set']} on rolling-origin "
        f"folds, refit on every row; out of time (the most recent fold): ROC AUC {v['roc_auc']:.3f}, "
        f"PR AUC {v['pr_auc']:.3f} (base rate {v['base_rate']:.1%}), "
        f"top 10% of calls reach {v['share_reached_top10']:.0%} of subscribers"
    )
    console.print(f"model card: {outcome.folder / 'model_card.md'} (plots in {outcome.folder / 'plots'})")

    console.rule("Register in the models container and promote to dev")
    registry = open_registry("blob", ensure=True)
    version = registry.register(outcome.folder, MODEL_NAME)
    recent = load_labelled(clients, outcomes).frame
    recent = recent.tail(len(recent) // 5)
    try:
        record = registry.promote(MODEL_NAME, version, "dev", gate_data=recent, actor="demo")
        gate = record.get("gate")
        verdict = (
            f"gate passed: PR AUC {gate['challenger']:.4f} vs champion {gate['champion']:.4f}"
            if gate
            else "first dev model"
        )
        console.print(f"registered version {version}; dev -> {version} ({verdict})")
    except PromotionRefused as refusal:
        console.print(f"registered version {version}; [yellow]dev not changed[/]: {refusal}")
    return version
