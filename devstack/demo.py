"""The README's demo: database -> daily export -> model -> blob-triggered scoring -> summary."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

from azure.storage.blob import BlobServiceClient
from rich.console import Console
from rich.table import Table

from devstack import azurite, local_settings, runner
from devstack.demo_data import load_demo_database, sqlite_connection_string
from lake.contract import DATA_LAKE, EXPORTS_CONTAINER, SCORING_INPUT_CONTAINER

log = logging.getLogger(__name__)


def ensure_demo_database(rebuild: bool, console: Console) -> None:
    path = local_settings.DEMO_DB
    if path.exists() and not rebuild:
        console.print(f"demo database: {path} (exists; --rebuild to reload)")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    started = time.perf_counter()
    counts = load_demo_database(sqlite_connection_string(path))
    console.print(
        f"demo database: loaded {counts} into {path} through ODBC in {time.perf_counter() - started:.1f}s"
    )


def show_landed(service: BlobServiceClient, export_date: dt.date, console: Console) -> None:
    """A summary table from the manifests, then every blob's URL on its own line (easy to copy)."""
    table = Table(title=f"Exports of {export_date.isoformat()} (from their manifests)")
    for header in ("table", "rows", "MB", "columns", "sha256"):
        table.add_column(header, justify="right" if header in {"rows", "MB", "columns"} else "left")
    urls: list[str] = []
    exports = service.get_container_client(EXPORTS_CONTAINER)
    for blob in exports.list_blobs():
        if blob.name.endswith(f"/{export_date.isoformat()}/_manifest.json"):
            manifest = json.loads(exports.download_blob(blob.name).readall())
            table.add_row(
                manifest["table"],
                f"{manifest['rows']:,}",
                f"{manifest['bytes'] / 1e6:.2f}",
                str(len(manifest["columns"])),
                manifest["sha256"][:16] + "…",
            )
            urls += [exports.get_blob_client(manifest["blob"]).url, exports.get_blob_client(blob.name).url]
    scoring = service.get_container_client(SCORING_INPUT_CONTAINER)
    urls += [scoring.get_blob_client(blob.name).url for blob in scoring.list_blobs()]
    console.print(table)
    console.print("Landed in Azurite:")
    for url in urls:
        console.print(f"  {url}", soft_wrap=True)


def run(rebuild: bool = False, with_model: bool = True) -> int:
    console = Console()
    instance = azurite.ensure_local()
    console.print(
        f"Azurite: blob 127.0.0.1:{instance.blob_port}, queue 127.0.0.1:{instance.queue_port}, "
        f"data in {instance.data_dir}"
    )
    ensure_demo_database(rebuild, console)
    settings = local_settings.apply()
    from functions.function_app import app  # after the settings: the app validates them on import

    functions = runner.discover(app)
    for function in functions:
        console.print(f"function {function.describe()}")
    export_date = dt.datetime.now(dt.UTC).date()
    failed = False
    dashboard = None
    for function in functions:
        # the night's export; the monitor runs at the end, once there is something to judge
        if function.trigger_type == "timerTrigger" and function.name != "monitor":
            try:
                runner.fire_timer(function, dt.datetime.now(dt.UTC))
            except Exception as error:  # noqa: BLE001 - shown to the user, demo goes on to report
                console.print(f"[red]{function.name} failed:[/] {error}")
                failed = True
    service = BlobServiceClient.from_connection_string(settings[DATA_LAKE])
    show_landed(service, export_date, console)
    if not failed and with_model:
        from devstack import demo_model, demo_report

        demo_model.train_and_promote(service, export_date, console)
        console.rule("The blob trigger scores what the export published")
        delivered = local_settings.trigger_host(settings).run_until_idle(functions)
        for outcome, count in sorted(delivered.counts.items()):
            console.print(f"{count:>5} x {outcome}")
        if not delivered:
            console.print(
                f"nothing new in {SCORING_INPUT_CONTAINER}/ (the export published the same bytes as before)"
            )
        report = demo_report.summarize(service, export_date, console)
        failed = report is None
        if report is not None:
            from devstack import demo_monitor

            dashboard = demo_monitor.play_next_day(
                service, settings, export_date, report.parent / "predictions.csv", console
            )
            failed = dashboard is None
    console.print(
        "Azurite keeps running for you to look around (`make stop` stops it). "
        "Explore: `.venv/bin/python -m devstack exec -- .venv/bin/python -m functions export --help`"
    )
    if dashboard is not None:
        console.print(f"dashboard: {dashboard.resolve().as_uri()}", soft_wrap=True)
    return 1 if failed else 0
