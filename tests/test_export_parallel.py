"""Key-range exports on worker processes: same bytes as one stream, same failure guarantees."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from functions.export.spec import ExportSpec, parse_export_tables
from functions.retry import RetryPolicy
from tests.support import DAY1, DAY2, REPO, blob_names, export_one, read_export

pytestmark = pytest.mark.integration
ROWS = 30_000
PARALLEL = {"workers": 2, "parallel_min_rows": 1_000, "range_rows": 4_000, "chunk_rows": 1_000}


def _psql(postgres, sql: str) -> str:
    return subprocess.run(  # noqa: S603 - psql with arguments built here
        [*postgres.psql_args(), "-qAt", "-c", sql], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def orders(postgres) -> str:
    """A table with gaps in its key, NULLs and empty strings, and a date watermark."""
    _psql(postgres, "DROP TABLE IF EXISTS orders")
    _psql(
        postgres,
        "CREATE TABLE orders AS SELECT g * 3 AS id, "  # noqa: S608 - a literal of the test
        "CASE WHEN g % 11 = 0 THEN NULL WHEN g % 13 = 0 THEN '' ELSE 'item, \"' || g || '\"' END AS item, "
        "(g * 1.25)::numeric(12,2) AS amount, date '2008-05-05' + (g % 400) AS ordered_on "
        f"FROM generate_series(1, {ROWS}) g",
    )
    _psql(postgres, "ALTER TABLE orders ADD PRIMARY KEY (id)")
    return postgres.odbc_connection_string


def test_key_ranges_produce_the_same_bytes_as_one_stream(orders, blob_service, exports_container):
    spec = ExportSpec("orders", table="orders")
    single = export_one(orders, exports_container, spec, workers=1)
    other = blob_service.get_container_client(exports_container.container_name + "-p")
    other.create_container()
    ranged = export_one(orders, other, spec, **PARALLEL)
    assert single.ok and ranged.ok, (single.error, ranged.error)
    assert ranged.rows == single.rows == ROWS
    assert ranged.sha256 == single.sha256
    manifest, records = read_export(other, "orders")
    assert [r[0] for r in records[1:6]] == ["3", "6", "9", "12", "15"]
    assert manifest.rows == ROWS


def test_incremental_export_on_key_ranges(orders, postgres, exports_container):
    spec = parse_export_tables("orders:ordered_on")[0]
    first = export_one(orders, exports_container, spec, DAY1, **PARALLEL)
    m1, _ = read_export(exports_container, "orders", DAY1)
    assert first.ok and first.rows == ROWS and m1.watermark is not None
    assert m1.watermark.value == "2009-06-08"  # 2008-05-05 + 399 days

    _psql(
        postgres,
        "INSERT INTO orders SELECT 100000 + g, 'late', 1, date '2009-07-01' FROM generate_series(1, 5000) g",
    )
    second = export_one(orders, exports_container, spec, DAY2, **PARALLEL)
    m2, records = read_export(exports_container, "orders", DAY2)
    assert second.rows == 5000 == len(records) - 1
    assert m2.watermark is not None and (m2.watermark.previous, m2.watermark.value) == (
        "2009-06-08",
        "2009-07-01",
    )


def test_lost_connection_in_a_worker_leaves_nothing_then_retry_completes(orders, postgres, exports_container):
    killed: list[int] = []

    def kill_workers_once(_name: str, rows: int) -> None:
        if not killed and rows >= 4_000:
            killed.append(rows)
            _psql(
                postgres,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )

    spec = ExportSpec("orders", table="orders")
    failed = export_one(orders, exports_container, spec, on_progress=kill_workers_once, **PARALLEL)
    assert killed and not failed.ok and blob_names(exports_container) == []

    killed.clear()
    retried = export_one(
        orders,
        exports_container,
        spec,
        on_progress=kill_workers_once,
        retry=RetryPolicy(attempts=3, first_delay_s=0),
        **PARALLEL,
    )
    assert killed and retried.ok and retried.attempts == 2 and retried.rows == ROWS


def _children(pid: int) -> set[int]:
    """Every live descendant of `pid`, from /proc (ppid is field 4 of /proc/N/stat)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_die_with_their_parent(orders, azurite, sig):
    """Issue 10: kill -9 of an export left its worker processes alive, holding the database."""
    script = (
        "import datetime, sys\n"
        "from azure.storage.blob import ContainerClient\n"
        "from functions.export.engine import Exporter, ExportTuning\n"
        "from functions.settings import export_defaults\n"
        "from functions.export.spec import ExportSpec\n"
        "container = ContainerClient.from_connection_string(sys.argv[2], 'exports-killed')\n"
        "if not container.exists(): container.create_container()\n"
        "settings = export_defaults(workers=2, chunk_rows=100)\n"
        "tuning = ExportTuning(parallel_min_rows=1000, range_rows=500)\n"
        "print('ready', flush=True)\n"
        "exporter = Exporter(sys.argv[1], container, settings, tuning=tuning)\n"
        "exporter.export(ExportSpec('orders', table='orders'), datetime.date(2026, 1, 1))\n"
    )
    process = subprocess.Popen(  # noqa: S603 - this interpreter running the script above
        [sys.executable, "-c", script, orders, azurite.connection_string], cwd=REPO, stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == b"ready"
        deadline, workers = time.monotonic() + 60, set()
        while len(workers) < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
            workers = _children(process.pid)
        assert len(workers) >= 2, "the export never started its workers"
        process.send_signal(sig)
        process.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        survivors = [pid for pid in workers if _alive(pid)]
        assert survivors == [], f"worker processes survived {sig.name} of their parent: {survivors}"
    finally:
        process.kill()
        process.wait()
