"""Redraw a model's dashboard from what `monitoring/` and the registry hold, as one HTML blob."""

from __future__ import annotations

import datetime as dt

from azure.storage.blob import BlobServiceClient

from functions.blob_io import write_html
from lake.contract import MONITORING_CONTAINER
from lake.paths import dashboard_path
from model.monitoring.collect import collect
from model.monitoring.dashboard import render_dashboard
from model.registry import BlobStore, Registry


def write_dashboard(service: BlobServiceClient, registry: Registry, model_name: str, stack: str) -> str:
    """Write `monitoring/{model}/dashboard/index.html`; its path in the container.

    One upload replaces the page whole: a reader sees the previous page or the new one.
    """
    monitoring = service.get_container_client(MONITORING_CONTAINER)
    data = collect(BlobStore(monitoring), model_name, registry)
    generated_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    path = dashboard_path(model_name)
    write_html(monitoring, path, render_dashboard(data, stack=stack, generated_at=generated_at))
    return path
