"""The end of the demo: what the scoring function wrote, summed up for the people who make the calls.

Reads the newest complete output of the day's published file (its manifest, its predictions and
its drift report) and writes a short report with the score distribution next to it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from azure.storage.blob import BlobServiceClient
from rich.console import Console
from rich.table import Table

from devstack.local_settings import LOCAL_DIR
from lake.contract import MONITORING_CONTAINER, PREDICTIONS_CONTAINER, SCORING_INPUT_CONTAINER
from lake.paths import MANIFEST_FILE, published_name

TOP = 10
BINS = np.linspace(0.0, 1.0, 201)  # fine bins; the plot shows the occupied range


def _newest_manifest(service: BlobServiceClient, name: str) -> dict[str, Any] | None:
    container = service.get_container_client(PREDICTIONS_CONTAINER)
    found = [
        b.name for b in container.list_blobs(name_starts_with=f"{name}/") if b.name.endswith(MANIFEST_FILE)
    ]
    if not found:
        return None
    newest = max(found, key=lambda path: int(path.split("/")[-2]))
    return json.loads(container.download_blob(newest).readall())


def _scan(path: Path, id_column: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Top clients by probability and the score histogram, in bounded memory (chunks)."""
    top = pd.DataFrame()
    histogram = np.zeros(len(BINS) - 1, dtype=np.int64)
    for chunk in pd.read_csv(path, chunksize=200_000, dtype={id_column: str}):
        histogram += np.histogram(chunk["probability"], bins=BINS)[0]
        top = pd.concat([top, chunk.nlargest(TOP, "probability")]).nlargest(TOP, "probability")
    return top, histogram


def _plot(histogram: np.ndarray, threshold: float, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    last = int(np.flatnonzero(histogram).max(initial=0)) + 2  # crop the empty right tail
    upper = min(len(histogram), max(last, int(threshold / BINS[1]) + 2))
    figure, axes = plt.subplots(figsize=(7, 3.5))
    axes.bar(BINS[:upper], histogram[:upper], width=BINS[1], align="edge", color="#4477aa")
    axes.axvline(threshold, color="#cc3311", linestyle="--", label=f"call threshold {threshold:.3f}")
    axes.set_xlabel("P(subscribe)")
    axes.set_ylabel("clients")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def summarize(service: BlobServiceClient, export_date: dt.date, console: Console) -> Path | None:
    """Print the summary of today's scored clients and write the report; its path, or None."""
    name = published_name("clients", export_date).removesuffix(".csv")
    manifest = _newest_manifest(service, name)
    if manifest is None:
        console.print(
            f"[yellow]no predictions for {SCORING_INPUT_CONTAINER}/{name}.csv yet[/] (see the runbook)"
        )
        return None
    work = LOCAL_DIR / "demo" / export_date.isoformat()
    work.mkdir(parents=True, exist_ok=True)
    predictions = work / "predictions.csv"
    container, _, blob = manifest["output"]["predictions"].partition("/")
    with predictions.open("wb") as handle:
        service.get_blob_client(container, blob).download_blob().readinto(handle)
    id_column = pd.read_csv(predictions, nrows=0).columns[0]
    top, histogram = _scan(predictions, id_column)
    model, rows = manifest["model"], manifest["rows"]
    drift_container, _, drift_blob = manifest["output"]["drift"].partition("/")
    drift = json.loads(service.get_blob_client(drift_container, drift_blob).download_blob().readall())
    assert drift_container == MONITORING_CONTAINER

    table = Table(title=f"Top {TOP} clients to call ({model['name']} v{model['version']}, {model['stage']})")
    for header in (id_column, "P(subscribe)"):
        table.add_column(header, justify="right")
    for row in top.itertuples(index=False):
        table.add_row(str(getattr(row, id_column)), f"{row.probability:.1%}")
    console.print(table)
    summary = (
        f"scored {rows['scored']:,} of {rows['in']:,} clients ({rows['rejected']:,} rejected) in "
        f"{manifest['durations_s']['total']:.1f}s: "
        f"expected subscribers {manifest['expected_positives']:,.0f}; "
        f"{manifest['to_call']:,} to call at the threshold {model['threshold']:.3f}; {drift_verdict(drift)}"
    )
    console.print(summary)

    plot = work / "score_distribution.png"
    _plot(histogram, model["threshold"], f"{name}: {rows['scored']:,} clients scored", plot)
    report = work / "report.md"
    lines = [
        f"# Scoring report: {SCORING_INPUT_CONTAINER}/{name}.csv",
        "",
        summary + ".",
        "",
        f"- model: {model['name']} version {model['version']} (stage {model['stage']})",
        f"- predictions: `{manifest['output']['predictions']}` "
        f"(sha256 `{manifest['output']['sha256'][:16]}…`)",
        f"- drift report: `{manifest['output']['drift']}`",
        "",
        "![score distribution](score_distribution.png)",
        "",
        f"| {id_column} | P(subscribe) |",
        "|---:|---:|",
        *(f"| {getattr(r, id_column)} | {r.probability:.1%} |" for r in top.itertuples(index=False)),
        "",
    ]
    report.write_text("\n".join(lines))
    console.print(f"report: {report} (plot: {plot}); predictions: {predictions}")
    return report


def drift_verdict(drift: dict[str, Any]) -> str:
    """One line of the batch's drift report: its status, the dataset verdict, the drifted features.

    Reports written before the dataset verdict existed (`drifted` was the list of features) read too,
    so a demo re-run over an older Azurite still ends with its summary.
    """
    older = drift.get("drifted") if isinstance(drift.get("drifted"), list) else []
    features = drift.get("drifted_features", older)
    line = f"drift {drift['status']}"
    if "drift_share" in drift:
        verdict = "drifted" if drift["drifted"] else "not drifted"
        line += f" (dataset {verdict}: {drift['drift_share']:.0%} of features drifted)"
    return line + (f"; drifted: {', '.join(features)}" if features else "")
