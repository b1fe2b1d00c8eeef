#!/usr/bin/env python3
"""The post-deploy smoke test: `scripts/smoke.py --stack local|dev|preprod|prod`.

Export, scoring and real-time scoring each driven once through the real path, each step printed
with its timing; exit 0 when all passed, 1 with one line naming the failed step, what was expected
and what was found, 2 when the stack could not even be reached (outputs, keys, settings). The
steps and the local stack: devstack/smoke.py. Here: the Azure side, which needs the Pulumi and
Azure CLIs (or their answers given as arguments) and a login (`DefaultAzureCredential`: the
pipeline's OIDC login makes AzureCliCredential work). The identity needs the smoke grants of
infra/roles.py (`deployer_grants`): dev and preprod only. In prod the test writes nothing: only
`GET /api/ready` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: the repository's packages import from its root
    sys.path.insert(0, str(REPO))

from devstack import smoke  # noqa: E402 - the path above first
from devstack.smoke import STEPS, Endpoint, SmokeFailed, Target  # noqa: E402
from functions.export.spec import parse_export_tables  # noqa: E402
from functions.settings import export_defaults  # noqa: E402
from lake import clients  # noqa: E402
from lake.connection import StorageConnection  # noqa: E402
from lake.contract import BLOB_TRIGGER_POISON_QUEUE, DATA_LAKE  # noqa: E402
from model import DEFAULT_MODEL_NAME  # noqa: E402

STACKS = ("dev", "preprod", "prod")
WRITES_NOTHING = ("prod",)  # no test files and no test traffic in production (infra/roles.py)
REQUIRED_OUTPUTS = ("resourceGroup", "dataLakeBlobEndpoint", "functionAppName", "functionAppHostName")
SECRET_MASK = "[secret]"  # noqa: S105 - not a secret: how `pulumi stack output --json` shows a secret without --show-secrets
APP_SETTINGS = ("MODEL_NAME", "MODEL_STAGE", "EXPORT_TABLES", "EXPORT_QUERIES")


def cli(cmd: list[str], step: str) -> str:
    """Run the Pulumi or Azure CLI; its stdout, or SmokeFailed naming the command and its error."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed pulumi/az commands with the stack's names, no shell
            cmd, cwd=REPO, capture_output=True, text=True, check=False, timeout=180
        )
    except FileNotFoundError:
        raise SmokeFailed(
            step, f"`{cmd[0]}` is not installed (needed for `{' '.join(cmd[:4])} ...`)"
        ) from None
    except subprocess.TimeoutExpired:
        raise SmokeFailed(step, f"`{' '.join(cmd[:4])} ...` did not finish in 180 s") from None
    if done.returncode != 0:
        error = done.stderr.strip()[-400:] or "no message"
        raise SmokeFailed(step, f"`{' '.join(cmd[:4])} ...` exited with {done.returncode}: {error}")
    return done.stdout


def load_outputs(stack: str, path: Path | None = None) -> dict[str, Any]:
    """The stack outputs of infra/program.py: from `--outputs FILE` (tests, runners that fetched them
    already), else `pulumi stack output --json --show-secrets` (scoreKey is a secret)."""
    if path is not None:
        try:
            outputs = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise SmokeFailed("outputs", f"cannot read the outputs file {path}: {error}") from None
        where = str(path)
    else:
        command = ["pulumi", "stack", "output", "--json", "--show-secrets", "-s", stack]
        try:
            outputs = json.loads(cli(command, "outputs"))
        except ValueError as error:
            raise SmokeFailed("outputs", f"pulumi printed no JSON for stack {stack}: {error}") from None
        where = f"stack {stack}"
    if not isinstance(outputs, dict):
        raise SmokeFailed("outputs", f"the outputs of {where} are not a JSON object of name: value")
    missing = [name for name in REQUIRED_OUTPUTS if not outputs.get(name)]
    if missing:
        raise SmokeFailed(
            "outputs",
            f"the outputs of {where} have no {', '.join(missing)} (expected {', '.join(REQUIRED_OUTPUTS)}: "
            "is the stack deployed?)",
        )
    return outputs


def app_settings(outputs: dict[str, Any]) -> dict[str, str]:
    """MODEL_NAME, MODEL_STAGE and the export tables as the deployed app has them (what it serves)."""
    query = "[?" + " || ".join(f"name=='{name}'" for name in APP_SETTINGS) + "].{name:name, value:value}"
    listed = cli(
        ["az", "functionapp", "config", "appsettings", "list", "-g", outputs["resourceGroup"],
         "-n", outputs["functionAppName"], "--query", query, "-o", "json"],
        "setup",
    )  # fmt: skip
    return {item["name"]: item["value"] for item in json.loads(listed or "[]") if item.get("value")}


class AzureTarget(Target):
    """A deployed stack: the Functions host runs the functions, Event Grid delivers the blob."""

    default_timeout = 180.0
    poll_every = 5.0

    def __init__(
        self,
        stack: str,
        outputs: dict[str, Any],
        settings: dict[str, str] | None = None,
        *,
        score_url: str | None = None,
        score_key: str | None = None,
        master_key: str | None = None,
        host_url: str | None = None,
    ) -> None:
        settings = settings or {}
        self.stack, self.outputs, self.read_only = stack, outputs, stack in WRITES_NOTHING
        self.model_name = settings.get("MODEL_NAME") or DEFAULT_MODEL_NAME
        self.model_stage = settings.get("MODEL_STAGE") or stack  # the catalog's cloud value: the stack
        tables = settings.get("EXPORT_TABLES")
        queries = json.loads(settings.get("EXPORT_QUERIES") or "{}")
        specs = parse_export_tables(tables, queries) if tables else export_defaults().tables
        self.tables = [spec.name for spec in specs]
        self.host_url = (host_url or f"https://{outputs['functionAppHostName']}").rstrip("/")
        self.score_url = score_url or outputs.get("scoreUrl")
        key = score_key or outputs.get("scoreKey")
        self.score_key = None if key == SECRET_MASK else key
        self._master_key = master_key
        # DefaultAzureCredential, as lake.clients builds it for an identity-based connection
        self.service = clients.blob_service(
            StorageConnection(DATA_LAKE, blob_service_uri=outputs["dataLakeBlobEndpoint"])
        )

    def admin_url(self, function: str) -> str:
        return f"{self.host_url}/admin/functions/{function}"

    def master_key(self) -> str:
        if not self._master_key:
            group, app = self.outputs["resourceGroup"], self.outputs["functionAppName"]
            command = ["az", "functionapp", "keys", "list", "-g", group, "-n", app, "--query", "masterKey"]
            command += ["-o", "tsv"]
            self._master_key = cli(command, "export").strip()
        if not self._master_key:
            raise SmokeFailed("export", f"`az functionapp keys list` gave no masterKey for {self.host_url}")
        return self._master_key

    def trigger_export(self) -> None:
        """Run `daily_export` now, as the portal's Test/Run does.

        Microsoft, "Manually run a non HTTP-triggered function"
        (learn.microsoft.com/azure/azure-functions/functions-manually-run-non-http): POST to
        `https://<app host>/admin/functions/<function name>` with the app's master key in the
        `x-functions-key` header, `Content-Type: application/json` and the body
        `{"input": "<TRIGGER_INPUT>"}` (a timer takes none: ""); the host answers "202 Accepted"
        and runs the function in the background, so the manifests are polled afterwards.
        """
        url = self.admin_url("daily_export")
        headers = {"x-functions-key": self.master_key()}
        status, answer = smoke.call("POST", url, {"input": ""}, headers, step="export")
        if status != 202:
            hint = ": the master key was refused" if status in (401, 403) else ""
            raise SmokeFailed(
                "export", f"POST {url} answered {status}{hint} (expected 202 Accepted): {answer!r:.200}"
            )

    def deliver(self, blob_name: str) -> str | None:
        """Event Grid delivers it; failures are only in the function's logs, so say where to look."""
        return (
            f"Event Grid delivers {blob_name} to score_blob; an input that fails 5 times goes to the "
            f"{BLOB_TRIGGER_POISON_QUEUE} queue: see the score_blob invocations in Application Insights"
        )

    @contextmanager
    def http(self) -> Iterator[Endpoint | None]:
        if not self.score_url:
            yield None  # a stack without the HTTP function has no scoreUrl output
            return
        if not self.score_key and not self.read_only:
            raise SmokeFailed(
                "http",
                f"no function key for {self.score_url}: the outputs have no scoreKey (pass --score-key, set "
                "SMOKE_SCORE_KEY, or let the script read `pulumi stack output --json --show-secrets`)",
            )
        yield Endpoint(self.score_url, self.score_url.rsplit("/", 1)[0] + "/ready", self.score_key)


def azure_target(args: argparse.Namespace, steps: tuple[str, ...]) -> AzureTarget:
    """The target from the stack outputs and the deployed app settings (arguments win over both)."""
    outputs = load_outputs(args.stack, args.outputs)
    given = {"MODEL_NAME": args.model_name, "MODEL_STAGE": args.model_stage, "EXPORT_TABLES": args.tables}
    settings = {name: value for name, value in given.items() if value}
    if len(settings) < len(given) and {"export", "scoring"} & set(steps):
        settings = app_settings(outputs) | settings
    return AzureTarget(args.stack, outputs, settings, score_url=args.score_url, score_key=args.score_key)


def parser() -> argparse.ArgumentParser:
    found = argparse.ArgumentParser(prog="scripts/smoke.py", description=__doc__.split("\n\n")[0])
    found.add_argument("--stack", default="local", choices=("local", *STACKS), help="default local")
    found.add_argument("--timeout", type=float, help="seconds per step (default 60 local, 180 in Azure)")
    found.add_argument("--steps", help=f"comma-separated, of {', '.join(STEPS)} (default all; prod: http)")
    found.add_argument("--outputs", type=Path, help="a JSON file of the stack outputs (else pulumi)")
    found.add_argument("--score-url", help="the score endpoint (else the output scoreUrl)")
    found.add_argument(
        "--score-key",
        default=os.environ.get("SMOKE_SCORE_KEY"),
        help="its function key (else env SMOKE_SCORE_KEY, else scoreKey)",
    )
    found.add_argument("--model-name", help="Azure: MODEL_NAME (else the app setting)")
    found.add_argument("--model-stage", help="Azure: MODEL_STAGE (else the app setting)")
    found.add_argument("--tables", help="Azure: EXPORT_TABLES (else the app setting)")
    return found


def main(argv: list[str] | None = None) -> int:
    arguments = parser()
    args = arguments.parse_args(argv)
    default = ("http",) if args.stack in WRITES_NOTHING else STEPS
    steps = tuple(s.strip() for s in args.steps.split(",") if s.strip()) if args.steps else default
    if not steps or set(steps) - set(STEPS):
        arguments.error(f"--steps: choose from {', '.join(STEPS)}")
    if args.stack in WRITES_NOTHING and set(steps) - {"http"}:
        arguments.error(
            f"--stack {args.stack}: only --steps http (the smoke test writes no test files there)"
        )
    started = time.perf_counter()
    try:
        if args.stack == "local":
            smoke.prepare_local()
            target: Target = smoke.LocalTarget()
        else:
            target = azure_target(args, steps)
    except SmokeFailed as failure:
        print(f"smoke {args.stack}: FAILED at {failure.step}: {failure}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - bad settings or storage: one line, not a traceback
        print(f"smoke {args.stack}: FAILED at setup: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    print(f"smoke {args.stack}: setup {time.perf_counter() - started:.1f} s")
    result = smoke.run(target, steps, args.timeout)
    print(result.summary(), file=sys.stderr if result.code else sys.stdout)
    return result.code


if __name__ == "__main__":
    sys.exit(main())
