"""SIGKILL mid-way: an export, a big scoring input, a fan-out's assembly, each killed in a child process.

The child reaches Azurite through the fault proxy, which holds one chosen request (a block
upload, the commit, the manifest) without forwarding it; the test then kills the child with
SIGKILL: a deterministic point in the middle of the work, with nothing of that request done.
Afterwards: nothing partial is visible (staged blocks stay uncommitted; a CSV committed without
its manifest is incomplete by contract), the input is still there, and the re-run ends with
exactly one complete output whose bytes (or rows) equal a clean run's.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

from functions.export.spec import ExportSpec
from functions.scoring.job import score_input, score_shard_message
from lake import paths as lake_paths
from lake.paths import OutputPaths
from tests.conftest import sqlite_odbc
from tests.fault_support import (
    assert_export_complete,
    assert_nothing_published,
    assert_scored_once,
    committed,
    fast_context,
    prediction_rows,
    staged_only,
)
from tests.faultproxy import Fault, FaultProxy, azurite_via
from tests.scoring_support import bank_csv, unique, upload
from tests.support import DAY1, REPO, export_one

pytestmark = pytest.mark.integration
EXPORT_ROWS = 80_000  # ~10 MB of CSV: three 4 MiB blocks
SCORE_ROWS = 100_000  # ~8.6 MB in, ~6 MB of predictions: one full 4 MiB block, then the rest
FANOUT = {"SCORING_FANOUT_BYTES": "20KiB", "SCORING_SHARD_BYTES": "8KiB", "SCORING_CHUNK_ROWS": "25"}


def _kill_when_held(command: list[str], env: dict[str, str], proxy: FaultProxy, tmp_path: Path) -> None:
    """Start `command`, wait until the proxy holds the chosen request, SIGKILL the process."""
    log = (tmp_path / f"child-{uuid.uuid4().hex[:6]}.log").open("wb")
    child = subprocess.Popen(  # noqa: S603 - our interpreter running a project module
        command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        held = False
        for _ in range(600):  # up to 60 s
            if proxy.fired_event.wait(0.1):
                held = True
                break
            if child.poll() is not None:
                break
        output = Path(log.name).read_text()[-800:]
        assert held, f"the child ended ({child.returncode}) before the proxy held its request: {output}"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        log.close()


# --------------------------------------------------------------------------------------------- export


@pytest.fixture
def big_table(sqlite_db: Path) -> tuple[str, str]:
    table = f"sigkill_{uuid.uuid4().hex[:8]}"
    with sqlite3.connect(sqlite_db) as db:
        db.execute(
            f"CREATE TABLE {table} (client_id INTEGER PRIMARY KEY, job TEXT, note TEXT, balance INTEGER)"
        )
        db.executemany(
            f"INSERT INTO {table} VALUES (?, ?, ?, ?)",  # noqa: S608 - the table name is this test's
            (
                (i, f"job {i % 11}", f"note {i:08d} " + "x" * (i % 60), i * 7 - 5000)
                for i in range(EXPORT_ROWS)
            ),
        )
    return table, sqlite_odbc(sqlite_db)


@pytest.mark.parametrize(
    ("hold", "after_kill"),
    [
        ((b"comp=block&", 2), "blocks staged, nothing visible"),  # the first block is staged by then
        ((b"_manifest.json", 2), "CSV committed, no manifest"),  # 1 is the old manifest's delete
    ],
    ids=["at-second-block", "before-manifest"],
)
def test_export_killed_mid_way_reruns_to_the_clean_bytes(
    azurite, blob_service, big_table, tmp_path, hold: tuple[bytes, int], after_kill: str
) -> None:
    table, odbc = big_table
    clean_container = blob_service.get_container_client(f"clean-{uuid.uuid4().hex[:10]}")
    clean_container.create_container()
    assert export_one(odbc, clean_container, ExportSpec(table, table=table)).ok
    clean = assert_export_complete(clean_container, table, DAY1)[1]

    env = {**os.environ, "DB_CONNECTION_STRING": odbc, "EXPORT_TABLES": table, "EXPORT_WORKERS": "1"}
    env.pop("EXPORT_PUBLISH_TABLES", None)
    command = [sys.executable, "-m", "functions", "export", "--table", table, "--date", DAY1.isoformat()]
    exports = blob_service.get_container_client("exports")
    with FaultProxy(azurite.blob_port) as proxy:
        proxy.arm(Fault("stall", match=hold[0], occurrence=hold[1], stall_s=60))
        proxy_env = {**env, "DataLake": azurite_via(proxy.port, azurite.queue_port)}
        _kill_when_held(command, proxy_env, proxy, tmp_path)

    csv = lake_paths.export_csv_path(table, DAY1)
    if after_kill == "blocks staged, nothing visible":
        assert committed(exports, f"{table}/") == []
        assert staged_only(exports, f"{table}/") == [csv]
    else:  # by contract incomplete: readers ignore a CSV that has no manifest
        assert committed(exports, f"{table}/") == [csv]

    rerun = subprocess.run(  # noqa: S603 - our interpreter running a project module
        command,
        cwd=REPO,
        env={**env, "DataLake": azurite.connection_string},
        capture_output=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stdout.decode()[-800:]
    manifest, data = assert_export_complete(exports, table, DAY1)
    assert data == clean and manifest.rows == EXPORT_ROWS


# --------------------------------------------------------------------------------------------- scoring


def test_scoring_killed_mid_output_leaves_nothing_visible_and_reruns_to_the_clean_rows(
    azurite, served: str, tmp_path
) -> None:
    data = bank_csv(SCORE_ROWS)
    ctx = fast_context(azurite.connection_string, SCORING_CHUNK_ROWS="20000")
    clean_name = unique("clean")
    assert score_input(ctx, upload(ctx, clean_name, data)).status == "scored"
    clean = prediction_rows(ctx, clean_name, served)

    name = unique("killed")
    etag = upload(ctx, name, data).get_blob_properties().etag
    with FaultProxy(azurite.blob_port) as proxy:
        # the second block of predictions.csv: the first one is staged by then
        proxy.arm(Fault("stall", match=b"predictions.csv?comp=block&", occurrence=2, stall_s=60))
        conn = azurite_via(proxy.port, azurite.queue_port)
        command = [sys.executable, "-m", "tests.fault_jobs", "score", "--conn", conn, "--blob", f"{name}.csv",
                   "SCORING_CHUNK_ROWS=20000"]  # fmt: skip
        _kill_when_held(command, dict(os.environ), proxy, tmp_path)

    assert_nothing_published(ctx, name)
    paths = OutputPaths(name, served)
    assert staged_only(ctx.predictions, f"{name}/") == [paths.predictions]  # invisible blocks only
    client = ctx.input_client(f"{name}.csv")
    assert client.get_blob_properties().etag == etag and client.download_blob().readall() == data

    assert score_input(ctx, client).status == "scored"  # the host's next delivery
    assert_scored_once(ctx, name, served, SCORE_ROWS)
    pd.testing.assert_frame_equal(prediction_rows(ctx, name, served), clean)


@pytest.mark.parametrize(
    "hold",
    [
        (b"comp=blocklist", 1),  # the commit of the assembled blocks
        (b"_manifest.json", 2),  # committed, no manifest yet (1 is the "already complete?" read)
    ],
    ids=["at-commit", "before-manifest"],
)
def test_fanout_assembler_killed_is_finished_by_the_redelivery(
    azurite, served: str, tmp_path, hold: tuple[bytes, int]
) -> None:
    queue = unique("shards")
    ctx = fast_context(azurite.connection_string, SCORING_QUEUE=queue, **FANOUT)
    data = bank_csv(600)
    name = unique("fan")
    client = upload(ctx, name, data)
    assert score_input(ctx, client).status == "fanned_out"
    messages = list(ctx.queue.receive_messages(max_messages=32))
    for message in messages:
        ctx.queue.delete_message(message)
    bodies = sorted((m.content for m in messages), key=lambda body: json.loads(body)["shard"])
    assert len(bodies) >= 5
    for body in bodies[:-1]:
        assert score_shard_message(ctx, body).status == "shard_scored"
    last = tmp_path / "last-shard.json"
    last.write_text(bodies[-1])

    with FaultProxy(azurite.blob_port) as proxy:
        proxy.arm(Fault("stall", match=hold[0], occurrence=hold[1], stall_s=60))
        conn = azurite_via(proxy.port, azurite.queue_port)
        settings = [f"{key}={value}" for key, value in {**FANOUT, "SCORING_QUEUE": queue}.items()]
        command = [sys.executable, "-m", "tests.fault_jobs", "shard", "--conn", conn, "--message", str(last),
                   *settings]  # fmt: skip
        _kill_when_held(command, dict(os.environ), proxy, tmp_path)

    paths = OutputPaths(name, served)
    visible = committed(ctx.predictions, f"{name}/")
    assert paths.manifest not in visible
    assert [n for n in visible if "/_shards/" not in n] in ([], [paths.predictions])

    outcome = score_shard_message(ctx, bodies[-1])  # the queue delivers the message again
    assert outcome.status in ("scored", "recovered", "duplicate"), outcome
    assert_scored_once(ctx, name, served, 600)  # one output, and the work files are gone
    whole = fast_context(azurite.connection_string)
    whole_name = unique("whole")
    assert score_input(whole, upload(whole, whole_name, data)).status == "scored"
    columns = ["client_id", "probability", "decision"]
    pd.testing.assert_frame_equal(
        prediction_rows(ctx, name, served)[columns], prediction_rows(whole, whole_name, served)[columns]
    )
