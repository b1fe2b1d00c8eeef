"""The operator CLI as an operator runs it, and the deployment package as Azure would import it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert loaded == {"functions": ["daily_export", "score_blob", "score_shard"], "sklearn": False}
