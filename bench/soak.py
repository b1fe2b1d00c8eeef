"""Soak: many files land in scoring-input/ at once; racing local hosts score each exactly once.

    .venv/bin/python -m bench.soak [--files 50] [--hosts 2] [--seed 7] [--markdown PATH]

Not part of the test suite (`make soak`). What it does, on this machine only (loopback):

1. starts its own Azurite (devstack/azurite.py) in a temporary folder, on free ports;
2. registers a small real ONNX model (tests/model_fixtures.py) and points `dev` at it;
3. writes `--files` CSVs into scoring-input/ at once: valid bank files of 50 to 3,000 rows (the
   bigger ones fan out: SCORING_FANOUT_BYTES=64KiB), some with bad rows, some byte-identical
   to each other under other names, and bad files of every kind the trigger refuses
   (empty, binary, header only, no valid row, wrong delimiter, missing column);
4. runs `--hosts` local hosts at the same time, each its own process with the real function app
   (devstack/runner.py) and the local trigger host (devstack/triggers.py `run_until_idle`): they
   share the blob receipts and the shard queue, so deliveries race as on several instances;
5. checks every file: exactly one complete output (predictions.csv + _manifest.json that agree
   with the bytes and the expected row counts, no work files left) or exactly one rejection
   (error.json with the expected code), never both; byte-identical inputs give identical rows;
   one publishing invocation ("scored") per valid file; empty shard and poison queues.

Prints the machine, the mix, the timings and every violation; exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.common import command_line, emit, load_average, machine_facts, positive_int, run_logged
from functions.scoring.outcome import Status
from lake.contract import BLOB_TRIGGER_POISON_QUEUE, SCORING_INPUT_CONTAINER, poison_queue
from model import DEFAULT_MODEL_NAME

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = DEFAULT_MODEL_NAME
QUEUE = "soak-shards"
SETTINGS = {
    "MODEL_NAME": MODEL_NAME,
    "MODEL_STAGE": "dev",
    "DB_CONNECTION_STRING": "Driver=SQLite3;Database=unused.db",
    "SCORING_BLOB_SOURCE": "LogsAndContainerScan",
    "SCORING_QUEUE": QUEUE,
    "SCORING_FANOUT_BYTES": "64KiB",
    "SCORING_SHARD_BYTES": "32KiB",
    "SCORING_CHUNK_ROWS": "500",
    "SCORING_THREADS": "1",
    "EXPORT_SCHEDULE": "0 0 2 * * *",  # the timers are indexed but never fired here
    "MONITOR_SCHEDULE": "0 30 3 * * *",
}
HOST_TIMEOUT_S = 900
log = logging.getLogger("bench.soak")


@dataclass(frozen=True)
class Planned:
    name: str
    kind: str  # valid | bad_rows | duplicate | a rejection code
    data: bytes
    rows: int = 0  # rows scored, when scored
    rejected_rows: int = 0
    twin_of: str | None = None


# --------------------------------------------------------------------------------------------- inputs


def plan_files(count: int, seed: int) -> list[Planned]:
    from tests.scoring_support import bank_frame, to_csv

    rng = random.Random(seed)
    bad_files = [
        ("empty_file", b"", 0),
        ("binary", to_csv(bank_frame(40))[:-12] + b"\x00" + to_csv(bank_frame(40))[-11:], 0),
        ("header_only", to_csv(bank_frame(40)).split(b"\r\n", 1)[0] + b"\r\n", 0),
        ("wrong_delimiter", to_csv(bank_frame(40), sep=";"), 0),
        ("missing_columns", to_csv(bank_frame(40).drop(columns=["loan"])), 0),
    ]
    files: list[Planned] = []
    index = 0

    def name(kind: str) -> str:
        nonlocal index
        index += 1
        return f"soak-{index:03d}-{kind.replace('_', '-')}"

    while len(files) < count:
        slot = len(files) % 10
        if slot < 5:  # valid, 50 to 3,000 rows (about a third fan out)
            rows = rng.choice([50, 200, 400, 900, 1500, 3000])
            files.append(
                Planned(name("valid"), "valid", to_csv(bank_frame(rows, rng.randint(1, 10**6))), rows)
            )
        elif slot == 5:  # bad rows among good ones
            rows = rng.choice([300, 1200])
            frame = bank_frame(rows).astype(object)
            bad = sorted(rng.sample(range(rows), 7))
            frame.loc[bad, "age"] = "n/a"
            files.append(Planned(name("bad-rows"), "bad_rows", to_csv(frame), rows - 7, 7))
        elif slot == 6:  # a byte-identical copy of an earlier valid file, under another name
            twins = [f for f in files if f.kind == "valid"]
            original = rng.choice(twins)
            files.append(
                Planned(name("twin"), "duplicate", original.data, original.rows, twin_of=original.name)
            )
        elif slot == 7:  # every row bad
            frame = bank_frame(30).astype(object)
            frame["age"] = "old"
            files.append(Planned(name("no-valid-rows"), "no_valid_rows", to_csv(frame)))
        else:
            code, data, _ = bad_files[(len(files) // 10 * 2 + slot - 8) % len(bad_files)]
            files.append(Planned(name(code), code, data))
    return files[:count]


# --------------------------------------------------------------------------------------------- hosts


def host_worker(connection: str, tag: str) -> int:
    """One local host: the real app, delivering until a round finds nothing; outcomes as JSON lines."""
    os.environ.update({"DataLake": connection, **SETTINGS})
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    from devstack import runner
    from devstack.triggers import TriggerHost
    from functions.function_app import app

    outcomes: list[dict[str, str]] = []

    class Record(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.args and len(record.args) == 3:
                function = record.getMessage().split(" ", 1)[0]
                outcomes.append(
                    {"function": function, "input": str(record.args[0]), "status": str(record.args[1])}
                )

    errors: list[str] = []

    class Failures(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:120]}")

    logging.getLogger("devstack.triggers").addHandler(Failures())
    app_log = logging.getLogger("functions.function_app")
    app_log.addHandler(Record())
    app_log.setLevel(logging.INFO)
    app_log.propagate = False
    functions = [f for f in runner.discover(app) if f.trigger_type in ("blobTrigger", "queueTrigger")]
    host = TriggerHost(
        BlobServiceClient.from_connection_string(connection),
        QueueServiceClient.from_connection_string(connection),
    )
    started = time.perf_counter()
    deliveries = host.run_until_idle(functions, max_rounds=1000)
    print(json.dumps({"host": tag, "seconds": time.perf_counter() - started, "deliveries": deliveries.counts,
                      "outcomes": outcomes, "errors": errors}))  # fmt: skip
    return 0


def run_hosts(connection: str, hosts: int) -> tuple[float, list[dict]]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    started = time.perf_counter()
    children = [
        subprocess.Popen(  # noqa: S603 - our interpreter running this module
            [sys.executable, "-m", "bench.soak", "--host-worker", connection, "--tag", f"host{i}"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(hosts)
    ]
    reports = []
    for child in children:
        out, _ = child.communicate(timeout=HOST_TIMEOUT_S)
        if child.returncode != 0:
            raise RuntimeError(f"a host process failed with exit status {child.returncode}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return time.perf_counter() - started, reports


# --------------------------------------------------------------------------------------------- checks


def check(service, queues, files: list[Planned], version: str, reports: list[dict]) -> tuple[list[str], dict]:  # type: ignore[no-untyped-def]
    import pandas as pd

    from lake.contract import PREDICTIONS_CONTAINER, REJECTED_CONTAINER
    from lake.paths import OutputPaths

    violations: list[str] = []
    predictions = service.get_container_client(PREDICTIONS_CONTAINER)
    rejected = service.get_container_client(REJECTED_CONTAINER)
    published = Counter(
        o["input"].removeprefix(f"{SCORING_INPUT_CONTAINER}/")
        for r in reports
        for o in r["outcomes"]
        if o["status"] == Status.SCORED
    )
    rows_of: dict[str, pd.DataFrame] = {}
    totals: list[float] = []
    for planned in files:
        blob = f"{planned.name}.csv"
        etag = service.get_blob_client(SCORING_INPUT_CONTAINER, blob).get_blob_properties().etag
        out = sorted(b.name for b in predictions.list_blobs(name_starts_with=f"{planned.name}/"))
        refused = sorted(b.name for b in rejected.list_blobs(name_starts_with=f"{planned.name}/"))
        where = f"{planned.name} ({planned.kind})"
        if planned.kind in ("valid", "bad_rows", "duplicate"):
            paths = OutputPaths(planned.name, version)
            expected = [paths.manifest, paths.predictions] + (
                [paths.rejected_rows] if planned.rejected_rows else []
            )
            if out != sorted(expected) or refused:
                violations.append(
                    f"{where}: outputs {out}, rejections {refused}; expected {sorted(expected)}"
                )
                continue
            manifest = json.loads(predictions.download_blob(paths.manifest).readall())
            data = predictions.download_blob(paths.predictions).readall()
            if manifest["input"]["etag"] != etag:
                violations.append(
                    f"{where}: manifest of input etag {manifest['input']['etag']}, blob is {etag}"
                )
            if manifest["output"]["sha256"] != hashlib.sha256(data).hexdigest():
                violations.append(f"{where}: manifest sha256 is not the sha256 of predictions.csv")
            frame = pd.read_csv(io.BytesIO(data), dtype={"client_id": str})
            if (manifest["rows"]["scored"], len(frame), manifest["rows"]["rejected"]) != (
                planned.rows, planned.rows, planned.rejected_rows
            ):  # fmt: skip
                violations.append(
                    f"{where}: rows {manifest['rows']}, {len(frame)} lines; expected {planned.rows}"
                )
            if published[blob] != 1:
                violations.append(f"{where}: published by {published[blob]} invocations, expected exactly 1")
            rows_of[planned.name] = frame.drop(columns=["scored_at"])
            totals.append(manifest["durations_s"]["total"])
        else:
            errors = [n for n in refused if n.endswith("/error.json")]
            if out or len(errors) != 1:
                violations.append(f"{where}: outputs {out}, rejections {refused}; expected one error.json")
                continue
            error = json.loads(rejected.download_blob(errors[0]).readall())
            if error["code"] != planned.kind or error["input"]["etag"] != etag:
                violations.append(f"{where}: rejected as {error['code']} for etag {error['input']['etag']}")
    for planned in files:
        twin = rows_of.get(planned.twin_of or "")
        if twin is not None and planned.name in rows_of and not rows_of[planned.name].equals(twin):
            violations.append(f"{planned.name}: rows differ from its byte-identical twin {planned.twin_of}")
    for queue in (QUEUE, poison_queue(QUEUE), BLOB_TRIGGER_POISON_QUEUE):
        client = queues.get_queue_client(queue)
        try:
            waiting = client.get_queue_properties().approximate_message_count
        except Exception:  # noqa: BLE001 - a queue never created holds nothing
            waiting = 0
        if waiting:
            violations.append(f"queue {queue} still holds {waiting} message(s)")
    stats = {
        "published": sum(published.values()),
        "manifest_total_s": totals,
    }
    return violations, stats


# --------------------------------------------------------------------------------------------- main


def soak(files_count: int, hosts: int, seed: int, markdown: str | None) -> int:
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    from devstack import azurite as azurite_mod
    from tests.model_fixtures import build_models
    from tests.scoring_support import serve_model

    with tempfile.TemporaryDirectory(prefix="soak-") as work:
        started = time.perf_counter()
        azurite = azurite_mod.start(Path(work) / "azurite")
        with azurite:
            service = BlobServiceClient.from_connection_string(azurite.connection_string)
            queues = QueueServiceClient.from_connection_string(azurite.connection_string)
            models = build_models(Path(work) / "models")
            version = serve_model(service, models.good, MODEL_NAME)
            setup_s = time.perf_counter() - started
            files = plan_files(files_count, seed)
            inputs = service.get_container_client(SCORING_INPUT_CONTAINER)
            inputs.create_container()
            upload_started = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda f: inputs.upload_blob(f"{f.name}.csv", f.data), files))
            upload_s = time.perf_counter() - upload_started
            log.info("uploaded %d files (%.1f MB) in %.1fs; %d hosts deliver", len(files),
                     sum(len(f.data) for f in files) / 1e6, upload_s, hosts)  # fmt: skip
            wall_s, reports = run_hosts(azurite.connection_string, hosts)
            violations, stats = check(service, queues, files, version, reports)

    kinds = Counter(f.kind for f in files)
    deliveries: Counter[str] = Counter()
    for report in reports:
        deliveries.update(report["deliveries"])
    retried = sum(v for k, v in deliveries.items() if k.endswith("failed, will retry"))
    poisoned = sum(v for k, v in deliveries.items() if k.endswith("poisoned"))
    if poisoned:
        violations.append(f"{poisoned} delivery(ies) poisoned: {dict(deliveries)}")
    outcomes = Counter(f"{o['function']}: {o['status']}" for r in reports for o in r["outcomes"])
    scored_rows = sum(f.rows for f in files if f.rows)
    totals = sorted(stats["manifest_total_s"])
    lines = [
        f"# Soak: {SCORING_INPUT_CONTAINER}/ flooded at once, racing local hosts",
        "",
        f"command: `{command_line('bench.soak')}`",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in machine_facts(("azure-storage-blob", "onnxruntime", "pandas"))),
        f"| load average at the end | {load_average()} |",
        "",
        f"files: {len(files)} ({sum(len(f.data) for f in files) / 1e6:.1f} MB): "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())),
        f"hosts: {hosts} processes, sharing blob receipts and the shard queue",
        "",
        "| measure | value |",
        "|---|---|",
        f"| setup (Azurite, model) | {setup_s:.1f} s |",
        f"| upload of all files | {upload_s:.1f} s |",
        f"| delivery, all hosts until idle (wall) | {wall_s:.1f} s |",
        f"| throughput | {len(files) / wall_s:.2f} files/s, {scored_rows / wall_s:,.0f} rows scored/s |",
        f"| per-file scoring time (manifest `durations_s.total`) | median {statistics.median(totals):.2f} s, "
        f"max {totals[-1]:.2f} s |"
        if totals
        else "| per-file scoring time | none scored |",
        *(
            f"| {r['host']} | {r['seconds']:.1f} s, {sum(r['deliveries'].values())} deliveries |"
            for r in reports
        ),
        "",
        "invocation outcomes (all hosts): " + ", ".join(f"{k} x{v}" for k, v in sorted(outcomes.items())),
        f"failed attempts retried by the host: {retried}; poisoned: {poisoned}",
        *(
            f"- {count} x {error}"
            for error, count in Counter(e for r in reports for e in r["errors"]).items()
        ),
        "",
        f"violations: {len(violations)}",
        *(f"- {v}" for v in violations),
    ]
    emit("\n".join(lines), markdown, log)
    return 1 if violations else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=positive_int, default=50)
    parser.add_argument("--hosts", type=positive_int, default=2, help="local host processes racing")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--markdown", help="also write the report to this file")
    parser.add_argument("--host-worker", metavar="CONNECTION", help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="host", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.host_worker:
        line = f"%(asctime)s [{args.tag}] %(levelname)s %(name)s: %(message)s"
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format=line)
        return host_worker(args.host_worker, args.tag)
    return run_logged(lambda: soak(args.files, args.hosts, args.seed, args.markdown), log)


if __name__ == "__main__":
    sys.exit(main())
