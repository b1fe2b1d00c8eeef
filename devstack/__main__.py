"""`python -m devstack COMMAND`: the local stack (Azurite, demo database, local function host)."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys


def _host(args: argparse.Namespace) -> int:
    import datetime as dt

    from devstack import azurite, local_settings, runner

    azurite.ensure_local()
    local_settings.apply()
    from functions.function_app import app

    functions = runner.discover(app)
    for function in functions:
        print(f"function {function.describe()}")
    if args.function:
        functions = [f for f in functions if f.name in args.function]
        if not functions:
            print(f"error: no function named {args.function}", file=sys.stderr)
            return 2
    triggers = local_settings.trigger_host()
    if args.watch:

        def poll() -> None:
            for outcome, count in sorted(triggers.run_until_idle(functions).counts.items()):
                print(f"{count:>5} x {outcome}")

        runner.run_on_schedule(functions, poll=poll)
        return 0
    status = 0
    for function in functions:
        if function.trigger_type == "timerTrigger":
            try:
                runner.fire_timer(function, dt.datetime.now(dt.UTC))
            except Exception:
                logging.exception("%s failed", function.name)
                status = 1
    delivered = triggers.run_until_idle(functions)
    for outcome, count in sorted(delivered.counts.items()):
        print(f"{count:>5} x {outcome}")
    return 1 if status or any("poisoned" in outcome for outcome in delivered.counts) else 0


def _serve(args: argparse.Namespace) -> int:
    from devstack import azurite, http_host, local_settings
    from devstack.runner import HostError

    azurite.ensure_local()
    local_settings.apply()
    from functions.function_app import app

    try:
        server = http_host.serve(app, args.host, args.port)
    except (HostError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with server:
        for route in server.routes:
            print(f"{route.name}: {','.join(route.methods)} {server.base_url}{route.path(server.prefix)}")
        if not server.routes:
            print("the app has no HTTP functions; every request will be a 404", file=sys.stderr)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="start Azurite, build the demo database, fire the export timer once"
    )
    demo.add_argument("--rebuild", action="store_true", help="reload the demo database from the bank CSV")
    demo.add_argument("--export-only", action="store_true", help="stop after the export (no training)")
    commands.add_parser(
        "up", help="start the local Azurite (blob 10000, queue 10001; data in .local/azurite)"
    )
    commands.add_parser("down", help="stop the local Azurite")
    host = commands.add_parser(
        "host",
        help="run the function app locally: fire timers once, deliver new blobs and queue messages",
    )
    host.add_argument(
        "--watch", action="store_true", help="keep running: timers on schedule, blobs and queues polled"
    )
    host.add_argument("--function", action="append", help="only this function (repeatable)")
    serve = commands.add_parser(
        "serve", help="serve the app's HTTP functions on loopback, as `func start` does (port 7071)"
    )
    serve.add_argument("--port", type=int, default=7071, help="port (default 7071, as Core Tools)")
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    run = commands.add_parser("exec", help="run a command with the local app settings in its environment")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- command and arguments")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)

    if args.command == "demo":
        from devstack import demo as demo_mod

        return demo_mod.run(rebuild=args.rebuild, with_model=not args.export_only)
    if args.command == "up":
        from devstack import azurite

        instance = azurite.ensure_local()
        print(
            f"Azurite listening: blob 127.0.0.1:{instance.blob_port}, queue 127.0.0.1:{instance.queue_port}"
        )
        return 0
    if args.command == "down":
        from devstack import azurite

        print("Azurite stopped" if azurite.stop_local() else "Azurite was not running (started by us)")
        return 0
    if args.command == "host":
        return _host(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "exec":
        from devstack import local_settings

        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not cmd:
            parser.error("exec needs a command, e.g. exec -- python -m functions export")
        env = {**os.environ, **local_settings.resolve()}
        return subprocess.run(cmd, env=env, check=False).returncode  # noqa: S603 - `exec` runs the command the developer typed, by design
    return 2


if __name__ == "__main__":
    sys.exit(main())
