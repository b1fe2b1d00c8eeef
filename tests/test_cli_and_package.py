"""The operator CLI as an operator runs it, and the deployment package as Azure would import it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack.ports import free_port
from infra.package import build_package
from tests.conftest import sqlite_odbc
from tests.infra_support import assert_deployable
from tests.support import REPO, run_module


@pytest.fixture
def cli_env(tmp_path: Path, azurite) -> dict[str, str]:
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE clients (client_id INTEGER PRIMARY KEY, job TEXT)")
        conn.executemany("INSERT INTO clients VALUES (?, ?)", [(i, "services") for i in range(1234)])
    return {
        **os.environ,
        "DataLake": azurite.connection_string,
        "DB_CONNECTION_STRING": sqlite_odbc(db),
        "EXPORT_TABLES": "clients,ghost",
        "PYTHONPATH": str(REPO),
        "COLUMNS": "200",
    }


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_module("functions", *args, env=env, timeout=120)


@pytest.mark.integration
def test_cli_exports_one_table_for_a_date_with_a_summary(cli_env):
    done = _cli(cli_env, "export", "--table", "clients", "--date", "2026-11-05")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Export 2026-11-05" in done.stdout
    assert "clients" in done.stdout and "1,234" in done.stdout
    assert "exports/clients/2026-11-05/clients.csv" in done.stdout


@pytest.mark.integration
def test_cli_exit_codes(cli_env):
    failed = _cli(cli_env, "export", "--date", "2026-11-06")
    assert failed.returncode == 1 and "table ghost does not exist" in failed.stdout
    unknown = _cli(cli_env, "export", "--table", "orders")
    assert unknown.returncode == 2 and "not configured in EXPORT_TABLES" in unknown.stdout
    bad_date = _cli(cli_env, "export", "--date", "yesterday")
    assert bad_date.returncode == 2 and "is not a date" in bad_date.stderr
    no_db = _cli({**cli_env, "DB_CONNECTION_STRING": ""}, "export")
    assert no_db.returncode == 2 and "DB_CONNECTION_STRING is missing" in no_db.stdout


def _closed_port() -> int:
    return free_port()  # nothing listens there once the probe socket is closed


def _lake_at(connection_string: str, port: int) -> str:
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    return (
        f"DefaultEndpointsProtocol=http;AccountName={parts['AccountName']};AccountKey={parts['AccountKey']};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{parts['AccountName']};"
        f"QueueEndpoint=http://127.0.0.1:{port}/{parts['AccountName']};"
    )


def _timed_export(env: dict[str, str]) -> tuple[int, list[tuple[float, str]], float]:
    """Run the export CLI; every output line with the second it appeared at."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "functions", "export"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = [(time.monotonic() - started, line.rstrip()) for line in process.stdout if line.strip()]
    return process.wait(60), lines, time.monotonic() - started


@pytest.mark.integration
@pytest.mark.parametrize("what", ["data lake", "database"])
def test_an_unreachable_source_is_reported_in_one_line_within_seconds(cli_env, azurite, what):
    """Issue 10: with the data lake unreachable the export printed nothing for 80 s, then an 80-line
    traceback. Now: one line at the first failed try, a bounded wait, one error line, exit 1."""
    port = _closed_port()
    env = dict(cli_env)
    if what == "data lake":
        env["DataLake"] = _lake_at(azurite.connection_string, port)
    else:
        env["DB_CONNECTION_STRING"] = (
            f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={port};Database=x;Uid=u;Pwd=p;"
        )
    code, lines, seconds = _timed_export(env)
    text = "\n".join(line for _, line in lines)
    assert code == 1, text
    assert "Traceback" not in text
    first_at, first = lines[0]
    assert first_at < 5 and f"{what}" in first and "unreachable" in first and "Connection refused" in first
    errors = [line for _, line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "nothing was exported" in errors[0], text
    assert seconds < 30 and len(lines) <= 3, text


@pytest.mark.integration
def test_a_missing_sqlite_file_is_refused_not_created(cli_env, tmp_path: Path):
    missing = tmp_path / "typo.db"
    code, lines, seconds = _timed_export({**cli_env, "DB_CONNECTION_STRING": sqlite_odbc(missing)})
    text = "\n".join(line for _, line in lines)
    assert code == 1 and f"{missing} does not exist" in text and "Traceback" not in text
    assert not missing.exists()
    assert seconds < 15


@pytest.mark.integration
def test_cli_scores_blobs_as_the_trigger_does(cli_env, blob_service, models):
    from tests.scoring_support import bank_csv, bank_frame, serve_model, to_csv

    serve_model(blob_service, models.good)
    container = blob_service.get_container_client("scoring-input")
    if not container.exists():
        container.create_container()
    container.upload_blob("cli-good.csv", bank_csv(25), overwrite=True)
    container.upload_blob("cli-bad.csv", to_csv(bank_frame(5), sep=";"), overwrite=True)
    env = {**cli_env, "MODEL_STAGE": "dev"}
    done = _cli(env, "score", "scoring-input/cli-good.csv")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "scoring-input/cli-good.csv: scored 25 rows scored" in done.stdout
    again = _cli(env, "score", "cli-good.csv", "cli-bad.csv")
    assert again.returncode == 1
    assert (
        "cli-good.csv: duplicate" in again.stdout and "cli-bad.csv: rejected wrong_delimiter" in again.stdout
    )


def test_deployment_package_layout_and_imports(tmp_path: Path):
    dest = build_package(tmp_path / "functionapp")
    files = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert_deployable(files, (dest / "requirements.txt").read_text())

    env = {
        "PATH": os.environ["PATH"],
        "DataLake": "UseDevelopmentStorage=true",
        "DB_CONNECTION_STRING": "Driver=SQLite3;Database=/nonexistent.db",
    }
    probe = (
        "import json, sys, function_app; print(json.dumps({'functions': [f.get_function_name() for f in "
        "function_app.app.get_functions()], 'sklearn': 'sklearn' in sys.modules}))"
    )
    completed = subprocess.run(  # noqa: S603 - our interpreter running a fixed probe
        [sys.executable, "-c", probe], cwd=dest, env=env, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    loaded = json.loads(completed.stdout)
    assert loaded == {
        "functions": [
            "score",
            "health",
            "ready",
            "schema",
            "rollback_check",
            "daily_export",
            "score_blob",
            "score_shard",
            "monitor",
            "retrain",
        ],
        "sklearn": False,
    }
