"""`python -m model monitor dashboard`: draw a model's dashboard from its monitoring documents, offline.

The monitor timer redraws the dashboard in the `monitoring` container every day; this draws the
same page on demand, from that container (`--monitoring blob`, the DataLake connection as the app
reads it) or from a local copy of it (a folder), with the promotions of `--registry`. It only reads:
nothing is written but `--out/index.html`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

from lake.paths import DASHBOARD_FILE
from model import DEFAULT_MODEL_NAME
from model.registry import Registry

DEFAULT_MONITORING = "blob"
DEFAULT_STACK = "local"


def cmd_dashboard(args: argparse.Namespace, registry: Registry) -> int:
    """Write DIR/index.html and print its path."""
    from model.monitoring.collect import collect, open_monitoring
    from model.monitoring.dashboard import render_dashboard

    location = args.monitoring or os.environ.get("MODEL_MONITORING") or DEFAULT_MONITORING
    data = collect(open_monitoring(location), args.model, registry)
    generated = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    page = render_dashboard(data, stack=args.stack, generated_at=generated)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / DASHBOARD_FILE
    target.write_text(page, encoding="utf-8")
    print(target)
    if data.skipped:
        print(f"{len(data.skipped)} document(s) could not be read and were skipped (listed on the page)")
    return 0


def add_parser(
    commands: argparse._SubParsersAction, registry: Callable[[argparse.Namespace], Registry]
) -> None:
    """The `monitor` command and its `dashboard` subcommand; `registry` opens the global --registry."""
    monitor = commands.add_parser("monitor", help="monitoring pages drawn from the monitoring documents")
    pages = monitor.add_subparsers(dest="monitor_command", required=True)
    dashboard = pages.add_parser(
        "dashboard", help="write DIR/index.html: quality, drift, batches, promotions"
    )
    dashboard.add_argument("--out", type=Path, required=True, help="folder to write index.html into")
    dashboard.add_argument("--model", default=DEFAULT_MODEL_NAME)
    dashboard.add_argument(
        "--monitoring",
        help="a folder holding the monitoring documents, or 'blob' for the DataLake `monitoring` container "
        f"(default: $MODEL_MONITORING or {DEFAULT_MONITORING})",
    )
    dashboard.add_argument(
        "--stack", default=DEFAULT_STACK, help=f"shown in the header (default: {DEFAULT_STACK})"
    )
    dashboard.set_defaults(run=lambda args: cmd_dashboard(args, registry(args)))
