"""Operator CLI: `python -m functions export [--table T ...] [--date YYYY-MM-DD]`, `... score NAME.csv ...`.

Runs the same jobs as the functions (the export timer, the scoring blob trigger), with progress
and a summary. Settings come from the environment, exactly as in the Function App (locally:
`python -m devstack exec -- ...`). Not used by the deployed app (rich is a developer dependency).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys

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
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    console = Console(stderr=False)
    try:
        return cmd_score(args, console) if args.command == "score" else cmd_export(args, console)
    except (SettingsError, UnknownTableError) as error:
        console.print(f"[red]error:[/] {error}")
        return 2
    except SourceUnavailableError as error:
        console.print(f"[red]error:[/] {error}; nothing was exported", soft_wrap=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
