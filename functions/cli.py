"""Operator CLI: `python -m functions export [--table T ...] [--date YYYY-MM-DD]`, `... score NAME.csv ...`,
`... retrain`, `... poison list|redrive|clear`.

Runs the same jobs as the functions (the export timer, the scoring blob trigger), with progress
and a summary. Settings come from the environment, exactly as in the Function App (locally:
`python -m devstack exec -- ...`). Not used by the deployed app (rich is a developer dependency).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from functions.export.engine import RunReport
from functions.export.job import SourceUnavailableError, UnknownTableError, run_export, select_specs
from functions.settings import SettingsError, load_settings
from lake.contract import EXPORTS_CONTAINER, SCORING_INPUT_CONTAINER


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def summary_table(report: RunReport) -> Table:
    table = Table(title=f"Export {report.export_date.isoformat()}")
    for header, justify in [
        ("table", "left"),
        ("status", "left"),
        ("rows", "right"),
        ("MB", "right"),
        ("seconds", "right"),
        ("rows/s", "right"),
        ("where / why", "left"),
    ]:
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for r in report.results:
        status = "[green]ok[/]" if r.ok else "[red]failed[/]"
        detail = f"{EXPORTS_CONTAINER}/{r.csv_path}" if r.ok else (r.error or "")
        table.add_row(
            r.name,
            status,
            f"{r.rows:,}",
            f"{r.bytes / 1e6:.2f}",
            f"{r.seconds:.1f}",
            f"{r.rows_per_second:,.0f}",
            detail,
        )
    return table


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    settings = load_settings()
    specs = select_specs(settings, args.table)
    export_date = args.date or dt.datetime.now(dt.UTC).date()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        tasks = {s.name: progress.add_task(s.name, total=None, rows=0) for s in specs}

        def on_progress(name: str, rows: int) -> None:
            progress.update(tasks[name], rows=rows)

        report = run_export(settings, export_date, [s.name for s in specs], on_progress)
    console.print(summary_table(report))
    return 0 if report.ok else 1


def cmd_score(args: argparse.Namespace, console: Console) -> int:
    """Score blobs of scoring-input/ now, exactly as the blob trigger would (idempotent)."""
    from functions.scoring.context import ScoringContext
    from functions.scoring.job import score_input
    from lake.contract import SCORING_INPUT_CONTAINER

    context = ScoringContext(load_settings())
    status = 0
    for blob_name in args.blob:
        blob_name = blob_name.removeprefix(f"{SCORING_INPUT_CONTAINER}/")
        with console.status(f"scoring {SCORING_INPUT_CONTAINER}/{blob_name}"):
            outcome = score_input(context, context.input_client(blob_name))
        colour = "green" if outcome.ok else "red"
        console.print(f"{outcome.input}: [{colour}]{outcome.status}[/] {outcome.detail}", soft_wrap=True)
        if outcome.manifest is not None:
            console.print(
                f"  manifest: {outcome.manifest['output']['predictions'].rsplit('/', 1)[0]}/_manifest.json"
            )
        status = status or int(not outcome.ok)
    return status


def cmd_retrain(args: argparse.Namespace, console: Console) -> int:
    """One retrain through the app's RETRAIN_RUNNER with its settings (functions/retrain/manual.py)."""
    from functions.retrain.manual import app_settings_env, run_manual
    from model.registry.records import actor_of

    env = app_settings_env(args.app_settings) if args.app_settings else None  # None: this environment
    promote = None if args.promote is None else tuple(s.strip() for s in args.promote.split(",") if s.strip())
    settings, record = run_manual(env, reason=args.reason, actor=actor_of(args.by), promote=promote,
                                  export_day=args.export_day)  # fmt: skip
    ok = record.get("status") not in {"failed", "not_submitted"}
    colour = "green" if ok else "red"
    detail = record.get("job_id") or record.get("why") or ""
    status = f"[{colour}]{record.get('status')}[/]"
    console.print(
        f"retrain {settings.model_name} via {record.get('runner')}: {status} {detail}", soft_wrap=True
    )
    console.print_json(json.dumps(record, default=str))
    return 0 if ok else 1


def cmd_poison(args: argparse.Namespace, console: Console) -> int:
    """List, re-drive or clear what the host parked in the poison queues (functions/poison.py)."""
    from functions import poison

    settings = load_settings()
    if args.action == "list":
        parked = poison.peek(settings, args.queue)
        for message in parked:
            console.print(message.describe(), soft_wrap=True)
        console.print(f"{len(parked)} parked message(s) in {', '.join(poison.poison_queues(settings))}")
        return 0
    if args.action == "redrive":
        lines = poison.redrive(settings, args.queue)
        for line in lines:
            console.print(line, soft_wrap=True)
        console.print(f"{len(lines)} message(s) handled")
        return int(any(line.startswith("kept") for line in lines))
    if not args.queue or not args.yes:
        console.print("[red]error:[/] clear needs --queue NAME and --yes (it deletes without re-driving)")
        return 2
    console.print(f"removed {poison.clear(settings, args.queue)} message(s) from {args.queue}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m functions", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="export tables now (all configured, or --table ones)")
    export.add_argument("--table", action="append", help="export only this table (repeatable)")
    export.add_argument("--date", type=_date, help="export date folder (default: today, UTC)")
    export.add_argument("-v", "--verbose", action="store_true", help="log each step")
    score = commands.add_parser(
        "score",
        help=f"score blobs of {SCORING_INPUT_CONTAINER}/ now, as the blob trigger does (skips what is done)",
    )
    score.add_argument(
        "blob", nargs="+", help=f"blob name in {SCORING_INPUT_CONTAINER}, e.g. clients-2026-11-22.csv"
    )
    score.add_argument("-v", "--verbose", action="store_true", help="log each step")
    retrain = commands.add_parser(
        "retrain", help="ask for one retrain through the app's RETRAIN_RUNNER (Azure ML job, or local)"
    )
    retrain.add_argument(
        "--app-settings",
        type=Path,
        help="the app's settings (`az functionapp config appsettings list -o json`)",
    )
    retrain.add_argument("--promote", help="stages to promote to, comma-separated (default: RETRAIN_PROMOTE)")
    retrain.add_argument(
        "--export-day", type=_date, help="the outcomes export to train on (default: the newest)"
    )
    retrain.add_argument("--reason", default="asked by hand", help="recorded with the verdict and the job")
    retrain.add_argument("--by", help="who asks (default: the login name)")
    retrain.add_argument("-v", "--verbose", action="store_true", help="log each step")
    poisoned = commands.add_parser("poison", help="list, re-drive or clear the poison queues")
    poisoned.add_argument("action", choices=("list", "redrive", "clear"))
    poisoned.add_argument("--queue", help="only this poison queue")
    poisoned.add_argument("--yes", action="store_true", help="clear: really delete")
    poisoned.add_argument("-v", "--verbose", action="store_true", help="log each step")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    console = Console(stderr=False)
    try:
        run = {"score": cmd_score, "export": cmd_export, "retrain": cmd_retrain, "poison": cmd_poison}
        return run[args.command](args, console)
    except (SettingsError, UnknownTableError) as error:
        console.print(f"[red]error:[/] {error}")
        return 2
    except SourceUnavailableError as error:
        console.print(f"[red]error:[/] {error}; nothing was exported", soft_wrap=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
