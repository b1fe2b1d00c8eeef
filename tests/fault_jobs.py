"""One export or scoring step in a child process, for the fault tests that kill it (or that it may
crash): `python -m tests.fault_jobs COMMAND ...`; prints one JSON line with the result.

    export --odbc ODBC --conn AZURITE --container C --table T [--block-bytes N] [--attempts N]
    score  --conn AZURITE --blob NAME.csv [SETTING=VALUE ...]
    shard  --conn AZURITE --message FILE [SETTING=VALUE ...]

Storage clients are the tests' fast ones (tests/fault_support.py), so a fault costs seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path


def _settings(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fault_jobs")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export")
    export.add_argument("--odbc", required=True)
    export.add_argument("--conn", required=True)
    export.add_argument("--container", required=True)
    export.add_argument("--table", required=True)
    export.add_argument("--block-bytes", type=int, default=256 * 1024)
    export.add_argument("--chunk-rows", type=int, default=2000)
    export.add_argument("--attempts", type=int, default=3)
    for name in ("score", "shard"):
        command = commands.add_parser(name)
        command.add_argument("--conn", required=True)
        command.add_argument("--blob" if name == "score" else "--message", required=True)
        command.add_argument("settings", nargs="*", help="SETTING=VALUE overrides of the scoring settings")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)

    from tests.fault_support import fast_container, fast_context

    if args.command == "export":
        from functions.export.spec import ExportSpec
        from functions.retry import RetryPolicy
        from tests.support import export_one

        container = fast_container(args.conn, args.container)
        result = export_one(
            args.odbc,
            container,
            ExportSpec(args.table, table=args.table),
            retry=RetryPolicy(attempts=args.attempts, first_delay_s=0),
            block_bytes=args.block_bytes,
            chunk_rows=args.chunk_rows,
            workers=1,
        )
        print(json.dumps(dataclasses.asdict(result)), flush=True)
        return 0 if result.ok else 1

    from functions.scoring.job import score_input, score_shard_message

    ctx = fast_context(args.conn, **_settings(args.settings))
    if args.command == "score":
        outcome = score_input(ctx, ctx.input_client(args.blob))
    else:
        outcome = score_shard_message(ctx, Path(args.message).read_text())
    print(json.dumps({"status": outcome.status, "detail": outcome.detail}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
