"""Benchmark: export one PostgreSQL table to CSV in blob storage (Azurite), four ways, one run.

    .venv/bin/python -m bench.export_bench [--rows N] [--repeat K] [--markdown PATH]

The script starts a throwaway PostgreSQL cluster and a throwaway Azurite, fills a bank-marketing
shaped table `bench` (17 columns) server-side with generate_series, warms it up, then runs each
method in its own fresh Python subprocess, so that the peak RSS reported is that method's alone:

  (a) ours      `Exporter.export()`: server-side cursor, chunked fetch, CSV encoder, staged blocks.
  (b) tutorial  `pandas.read_sql` over a plain `pyodbc.connect` + `df.to_csv` + `upload_blob`.
  (c) driver    `cursor.fetchmany(10_000)` loop over `functions.export.drivers.connect()`, writes nothing:
                the ceiling pyodbc + psqlODBC put on any Python exporter.
  (d) server    `psql -c "COPY (...) TO STDOUT WITH CSV HEADER" > /dev/null`: what the server
                itself needs to produce the same CSV, no Python and no ODBC involved.

It prints a Markdown table (and, with `--markdown`, writes it to a file) with the machine, the
exact command and whether the project's targets are met. A missed target is reported, not
raised: the exit status is non-zero only when something fails to run.

`--profile PATH` runs (a) under cProfile (its timing is then not comparable), dumps the stats to
PATH and prints the top functions on stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import command_line, emit, load_average, machine_facts, positive_int, run_child, run_logged
from lake.contract import DATA_LAKE, EXPORTS_CONTAINER

REPO_ROOT = Path(__file__).resolve().parent.parent
TABLE = "bench"
TUTORIAL_CONTAINER = "tutorial"
FETCH_ROWS = 10_000
# The query (a) sends, as logged by the Exporter: every column, in primary-key order.
ORDERED_SELECT = f'SELECT * FROM "{TABLE}" ORDER BY "client_id"'  # noqa: S608 - TABLE is this module's constant
COPY_SQL = f"COPY (SELECT * FROM {TABLE} ORDER BY client_id) TO STDOUT WITH CSV HEADER"  # noqa: S608 - TABLE is this module's constant
CHILD_TIMEOUT_S = 3600

# Project targets for (a), stated in issue 2.
TARGET_SPEEDUP_VS_TUTORIAL = 2.0
TARGET_SHARE_OF_DRIVER = 0.70
TARGET_PEAK_RSS_MB = 300.0

log = logging.getLogger("bench.export_bench")


@dataclass(frozen=True)
class Method:
    key: str
    label: str
    description: str


METHODS: dict[str, Method] = {
    m.key: m
    for m in (
        Method(
            "a",
            "(a) ours: Exporter.export",
            "Exporter with default workers: key ranges on worker processes -> staged blocks in `exports`",
        ),
        Method(
            "s",
            "(a1) ours, one stream",
            "Exporter with workers=1: one cursor, encoder, staged blocks on a background thread",
        ),
        Method("b", "(b) tutorial: pandas", "pandas.read_sql + DataFrame.to_csv + BlobClient.upload_blob"),
        Method("c", "(c) driver: pyodbc fetchmany", "cursor.fetchmany(10000) loop, rows discarded"),
        Method("d", "(d) server: psql COPY", "COPY ... TO STDOUT WITH CSV HEADER > /dev/null"),
    )
}

# 17 columns shaped like the UCI bank-marketing data: integers, short strings (some NULL, some
# empty), a numeric(12,2), a date and booleans. Deterministic, so every run exports the same bytes.
CREATE_TABLE_SQL = f"""
DROP TABLE IF EXISTS {TABLE};
CREATE TABLE {TABLE} AS
SELECT
  g AS client_id,
  (18 + g % 70) AS age,
  (CASE WHEN g % 97 = 0 THEN NULL
        ELSE (ARRAY['admin.','blue-collar','entrepreneur','housemaid','management','retired',
                    'self-employed','services','student','technician','unemployed','unknown'])[1 + g % 12]
   END)::varchar(20) AS job,
  (ARRAY['married','single','divorced'])[1 + g % 3]::varchar(10) AS marital,
  (CASE WHEN g % 53 = 0 THEN NULL WHEN g % 41 = 0 THEN ''
        ELSE (ARRAY['primary','secondary','tertiary','unknown'])[1 + g % 4] END)::varchar(10) AS education,
  (g % 50 = 0) AS has_default,
  (((g::bigint * 7919) % 2000000 - 200000) / 100.0)::numeric(12,2) AS balance,
  (ARRAY['yes','no'])[1 + (g / 3) % 2]::varchar(3) AS housing,
  (CASE WHEN g % 37 = 0 THEN '' ELSE (ARRAY['no','no','no','yes'])[1 + g % 4] END)::varchar(3) AS loan,
  (CASE WHEN g % 29 = 0 THEN NULL
        ELSE (ARRAY['cellular','telephone','unknown'])[1 + g % 3] END)::varchar(10) AS contact,
  (DATE '2008-05-01' + g % 900) AS last_contact,
  ((g::bigint * 31) % 4918)::integer AS duration,
  (1 + g % 63) AS campaign,
  (CASE WHEN g % 5 = 0 THEN g % 871 ELSE -1 END) AS pdays,
  (CASE WHEN g % 5 = 0 THEN 1 + g % 7 ELSE 0 END) AS previous,
  (CASE WHEN g % 11 = 0 THEN NULL WHEN g % 13 = 0 THEN ''
        ELSE (ARRAY['unknown','failure','other','success'])[1 + g % 4] END)::varchar(10) AS poutcome,
  (g % 9 = 0) AS subscribed
FROM generate_series(1, %(rows)d) AS g;
ALTER TABLE {TABLE} ADD PRIMARY KEY (client_id);
"""  # noqa: S608 - TABLE is this module's constant
# Separate statement (VACUUM cannot run inside psql -c's implicit transaction): sets hint bits and
# the visibility map, so the first method does not pay for them, and gives the planner statistics.
VACUUM_SQL = f"VACUUM (ANALYZE) {TABLE}"


@dataclass
class ChildResult:
    """What one method's subprocess reports back (JSON in a file)."""

    method: str
    rows: int | None
    seconds: float
    bytes: int | None = None
    peak_rss_mb: float | None = None  # VmHWM of the child: this process image's own peak
    ru_maxrss_mb: float | None = None  # getrusage(RUSAGE_SELF); may carry the spawner's peak over exec
    rss_after_imports_mb: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# Memory helpers (Linux)
# ------------------------------------------------------------------------------------------------


def _proc_status_mb(key: str) -> float | None:
    """A `VmHWM`/`VmRSS` line of /proc/self/status in MB, or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _ru_maxrss_mb(usage: resource.struct_rusage | None = None) -> float:
    usage = usage or resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_maxrss / 1024  # KiB on Linux


# ------------------------------------------------------------------------------------------------
# The methods, each run inside its own child process
# ------------------------------------------------------------------------------------------------


def _run_ours_single(odbc: str, blob: str, expected_rows: int, profile_path: Path | None) -> ChildResult:
    return _run_ours(odbc, blob, expected_rows, profile_path, workers=1)


def _run_ours(
    odbc: str, blob: str, expected_rows: int, profile_path: Path | None, workers: int | None = None
) -> ChildResult:
    from functions.export.engine import Exporter
    from functions.export.spec import ExportSpec
    from functions.settings import export_defaults
    from lake.clients import blob_service
    from lake.connection import StorageConnection

    container = blob_service(StorageConnection(DATA_LAKE, connection_string=blob)).get_container_client(
        EXPORTS_CONTAINER
    )
    settings = export_defaults(chunk_rows=FETCH_ROWS)
    if workers is not None:
        settings = export_defaults(chunk_rows=FETCH_ROWS, workers=workers)
    exporter = Exporter(odbc, container, settings)
    spec = ExportSpec(name=TABLE, table=TABLE)
    rss_before = _proc_status_mb("VmRSS")

    profiler = None
    if profile_path is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    result = exporter.export(spec, dt.date(2024, 1, 1))
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_path)
        _print_profile(profile_path)
    if not result.ok:
        raise RuntimeError(f"export failed: {result.error}")
    # Worker processes have their own peaks: count each worker at the largest one seen.
    worker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return ChildResult(
        "a" if workers is None else "s",
        result.rows,
        seconds,
        result.bytes,
        rss_after_imports_mb=rss_before,
        note="profiled (cProfile): time not comparable" if profiler else "",
        extra={
            "csv_path": result.csv_path,
            "sha256": result.sha256,
            "attempts": result.attempts,
            "workers": settings.workers,
            "worker_peak_rss_mb": worker_peak,
        },
    )


def _print_profile(path: Path) -> None:
    import pstats

    for order in ("tottime", "cumulative"):
        print(f"\n===== cProfile of (a), top 25 by {order} =====", file=sys.stderr)
        pstats.Stats(str(path), stream=sys.stderr).sort_stats(order).print_stats(25)


def _run_tutorial(odbc: str, blob: str, expected_rows: int, profile_path: Path | None) -> ChildResult:
    import warnings

    import pandas as pd
    import pyodbc
    from azure.storage.blob import BlobClient

    # pandas warns that a raw DBAPI connection other than sqlite3 is "not tested"; tutorials ignore it.
    warnings.filterwarnings("ignore", message=r"pandas only supports SQLAlchemy", category=UserWarning)
    rss_before = _proc_status_mb("VmRSS")

    started = time.perf_counter()
    connection = pyodbc.connect(odbc)  # as tutorials do: no UseDeclareFetch, psqlODBC buffers everything
    frame = pd.read_sql(f"SELECT * FROM {TABLE}", connection)  # noqa: S608 - TABLE is this module's constant
    connection.close()
    text = frame.to_csv(index=False)
    client = BlobClient.from_connection_string(
        blob, container_name=TUTORIAL_CONTAINER, blob_name=f"{TABLE}.csv"
    )
    client.upload_blob(text, overwrite=True)
    seconds = time.perf_counter() - started

    size = client.get_blob_properties().size
    return ChildResult(
        "b", len(frame), seconds, size, rss_after_imports_mb=rss_before, extra={"pandas": pd.__version__}
    )


def _run_driver(odbc: str, blob: str, expected_rows: int, profile_path: Path | None) -> ChildResult:
    from functions.export.drivers import connect as database

    rss_before = _proc_status_mb("VmRSS")
    started = time.perf_counter()
    connection = database(odbc)
    cursor = connection.cursor()
    cursor.execute(ORDERED_SELECT)
    rows = 0
    while chunk := cursor.fetchmany(FETCH_ROWS):
        rows += len(chunk)
    connection.close()
    seconds = time.perf_counter() - started
    return ChildResult("c", rows, seconds, None, rss_after_imports_mb=rss_before)


def _run_copy(psql: Sequence[str], expected_rows: int) -> ChildResult:
    """psql's own peak comes from wait4; the Python wrapper's peak is irrelevant here."""
    args = [*psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", COPY_SQL]
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603 - the benchmark's own child command, no shell
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise RuntimeError(f"psql exited with {process.returncode}: {error.strip()}")
    # The output goes to /dev/null, so rows cannot be counted here; the table holds `expected_rows`.
    return ChildResult(
        "d",
        expected_rows,
        seconds,
        None,
        extra={"psql_ru_maxrss_mb": round(_ru_maxrss_mb(usage), 1)},
        note=(
            "rows not counted (output discarded); psql's peak comes from wait4 and is an upper bound, since "
            "ru_maxrss keeps the spawning process's peak across exec"
        ),
    )


def child_main(args: argparse.Namespace) -> int:
    """Run one method; write a ChildResult as JSON to `args.child_result`."""
    odbc = os.environ["BENCH_ODBC"]
    blob = os.environ["BENCH_BLOB"]
    psql = json.loads(os.environ["BENCH_PSQL"])
    profile_path = Path(args.profile) if args.profile and args.child == "a" else None
    runners: dict[str, Callable[[str, str, int, Path | None], ChildResult]] = {
        "a": _run_ours,
        "s": _run_ours_single,
        "b": _run_tutorial,
        "c": _run_driver,
    }
    if args.child == "d":
        result = _run_copy(psql, args.rows)
    else:
        result = runners[args.child](odbc, blob, args.rows, profile_path)
        result.peak_rss_mb = _proc_status_mb("VmHWM")
        if result.peak_rss_mb is not None and result.extra.get("workers", 1) > 1:
            result.peak_rss_mb += result.extra["workers"] * result.extra["worker_peak_rss_mb"]
            result.note = "peak RSS = parent + workers x the largest worker's peak"
        result.ru_maxrss_mb = _ru_maxrss_mb()
    if result.rows != args.rows:
        raise RuntimeError(f"method {args.child} saw {result.rows} rows, expected {args.rows}")
    Path(args.child_result).write_text(json.dumps(asdict(result)))
    return 0


# ------------------------------------------------------------------------------------------------
# The parent: services, table, runs, report
# ------------------------------------------------------------------------------------------------


def _psql(psql: Sequence[str], sql: str) -> str:
    done = subprocess.run(  # noqa: S603 - psql of the throwaway cluster with this module's SQL, no shell
        [*psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"psql failed ({done.returncode}) on {sql.strip()[:60]!r}...: {done.stderr.strip()}"
        )
    return done.stdout.strip()


def _azurite_version() -> str:
    try:
        return str(
            json.loads((REPO_ROOT / "node_modules" / "azurite" / "package.json").read_text())["version"]
        )
    except (OSError, ValueError, KeyError):
        return "unknown"


def _run_child(key: str, rows: int, env: dict[str, str], workdir: Path, profile: str | None) -> ChildResult:
    result_path = workdir / f"result-{key}.json"
    result_path.unlink(missing_ok=True)
    args = [
        sys.executable,
        "-m",
        "bench.export_bench",
        "--child",
        key,
        "--rows",
        str(rows),
        "--child-result",
        str(result_path),
    ]
    if profile and key == "a":
        args += ["--profile", profile]
    usage = run_child(args, REPO_ROOT, env, f"method ({key})")
    data = json.loads(result_path.read_text())
    result = ChildResult(**data)
    result.extra["wait4_maxrss_mb"] = round(_ru_maxrss_mb(usage), 1)
    return result


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


@dataclass(frozen=True)
class Report:
    rows: int
    repeat: int
    machine: list[tuple[str, str]]
    command: str
    best: dict[str, ChildResult]
    all_runs: dict[str, list[ChildResult]]

    def rows_per_s(self, key: str) -> float:
        return self.best[key].rows / self.best[key].seconds if self.best[key].rows else 0.0

    def markdown(self) -> str:
        lines = [
            f"Rows: {self.rows:,} x 17 columns; best of {self.repeat} run(s) per method, "
            "each method in a fresh process.",
            "",
        ]
        lines += [f"- {name}: {value}" for name, value in self.machine]
        lines += ["", "Command:", "", "```", self.command, "```", ""]
        lines += [
            "| method | seconds | rows/s | CSV MB | peak RSS MB | speed vs (b) | rows/s vs (c) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for key, result in self.best.items():
            rps = self.rows_per_s(key)
            if key == "d":
                psql_rss = result.extra.get("psql_ru_maxrss_mb")
                rss = f"n/a (psql <= {psql_rss:.0f})" if psql_rss is not None else "n/a"
            else:
                rss = _fmt(result.peak_rss_mb, ".0f")
            vs_b = f"{self.best['b'].seconds / result.seconds:.2f}x" if "b" in self.best else "n/a"
            vs_c = f"{rps / self.rows_per_s('c'):.0%}" if "c" in self.best else "n/a"
            mb = _fmt(result.bytes / 1e6 if result.bytes is not None else None, ".1f")
            note = " *" if result.note else ""
            lines.append(
                f"| {METHODS[key].label}{note} | {result.seconds:.2f} | {rps:,.0f} | {mb} | {rss} "
                f"| {vs_b} | {vs_c} |"
            )
        lines += [
            "",
            "seconds: wall time from connecting to the last byte uploaded (or fetched, for (c) and (d)); "
            "peak RSS: VmHWM of the method's own process, interpreter and imports included; "
            "speed vs (b): (b)'s seconds / the method's seconds; rows/s vs (c): share of (c)'s rows/s.",
        ]
        lines += [f"\n\\* {METHODS[key].label}: {r.note}" for key, r in self.best.items() if r.note]
        if self.repeat > 1:
            lines += [
                "",
                "All runs (seconds): "
                + "; ".join(
                    f"({key}) " + ", ".join(f"{r.seconds:.2f}" for r in runs)
                    for key, runs in self.all_runs.items()
                ),
            ]
        lines += ["", *self.targets()]
        return "\n".join(lines) + "\n"

    def targets(self) -> list[str]:
        if "a" not in self.best:
            return ["Targets: not evaluated ((a) was not run)."]
        a = self.best["a"]
        out = ["Targets for (a):", ""]

        def line(ok: bool | None, text: str) -> str:
            verdict = "not measured" if ok is None else ("MET" if ok else "MISSED")
            return f"- {verdict}: {text}"

        if "b" in self.best:
            speedup = self.best["b"].seconds / a.seconds
            out.append(
                line(
                    speedup >= TARGET_SPEEDUP_VS_TUTORIAL,
                    f">= {TARGET_SPEEDUP_VS_TUTORIAL:g}x faster than (b): {speedup:.2f}x",
                )
            )
        else:
            out.append(line(None, f">= {TARGET_SPEEDUP_VS_TUTORIAL:g}x faster than (b)"))
        if "c" in self.best:
            share = self.rows_per_s("a") / self.rows_per_s("c")
            out.append(
                line(
                    share >= TARGET_SHARE_OF_DRIVER,
                    f">= {TARGET_SHARE_OF_DRIVER:.0%} of (c)'s rows/s: {share:.0%}",
                )
            )
        else:
            out.append(line(None, f">= {TARGET_SHARE_OF_DRIVER:.0%} of (c)'s rows/s"))
        peak = a.peak_rss_mb
        out.append(
            line(
                None if peak is None else peak < TARGET_PEAK_RSS_MB,
                f"peak RSS < {TARGET_PEAK_RSS_MB:.0f} MB: {_fmt(peak, '.0f')} MB",
            )
        )
        if a.note:
            out.append(f"- note: (a) {a.note}")
        return out


def _machine(psql: Sequence[str], driver: str, pyodbc_version: str) -> list[tuple[str, str]]:
    try:
        pandas_version = subprocess.run(
            [sys.executable, "-c", "import pandas; print(pandas.__version__)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except subprocess.CalledProcessError:
        pandas_version = "not installed"
    return machine_facts(
        (),
        ("pyodbc", pyodbc_version),
        ("pandas", pandas_version),
        ("PostgreSQL", _psql(psql, "SHOW server_version")),
        ("ODBC driver", driver),
        ("Azurite", _azurite_version()),
    )


def parent_main(args: argparse.Namespace) -> int:
    import pyodbc
    from azure.storage.blob import BlobServiceClient

    from devstack import azurite as azurite_mod
    from devstack.postgres import start_cluster
    from functions.blob_io import ensure_container
    from functions.export.drivers import connect as database
    from functions.export.drivers import describe as describe_source

    keys = [k for k in "asbcd" if k in args.methods]
    if not keys or set(args.methods) - set(METHODS):
        raise SystemExit("--methods takes letters among a, s, b, c, d, e.g. --methods ac")
    command = command_line("bench.export_bench")
    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        workdir = Path(tmp)
        log.info("starting PostgreSQL and Azurite")
        with start_cluster(database="bench") as cluster, azurite_mod.start(workdir / "azurite") as azurite:
            psql = cluster.psql_args()
            started = time.perf_counter()
            log.info("creating table %s with %s rows", TABLE, f"{args.rows:,}")
            _psql(psql, CREATE_TABLE_SQL.replace("%(rows)d", str(int(args.rows))))
            _psql(psql, VACUUM_SQL)
            log.info(
                "table ready in %.1fs (%s)",
                time.perf_counter() - started,
                _psql(psql, f"SELECT pg_size_pretty(pg_total_relation_size('{TABLE}'))"),
            )

            service = BlobServiceClient.from_connection_string(azurite.connection_string)
            for name in (EXPORTS_CONTAINER, TUTORIAL_CONTAINER):
                ensure_container(service.get_container_client(name))

            connection = database(cluster.odbc_connection_string)
            try:
                warm = connection.cursor().execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]  # noqa: S608 - TABLE is this module's constant
                driver = describe_source(connection)
            finally:
                connection.close()
            log.info("warm-up: SELECT count(*) = %s", f"{warm:,}")
            machine = _machine(psql, driver, pyodbc.version)
            load_before = load_average()

            env = dict(
                os.environ,
                BENCH_ODBC=cluster.odbc_connection_string,
                BENCH_BLOB=azurite.connection_string,
                BENCH_PSQL=json.dumps(psql),
            )
            runs: dict[str, list[ChildResult]] = {k: [] for k in keys}
            for round_number in range(1, args.repeat + 1):
                for key in keys:  # interleaved rounds, so drift hits every method alike
                    log.info("run %d/%d: %s", round_number, args.repeat, METHODS[key].label)
                    result = _run_child(key, args.rows, env, workdir, args.profile)
                    log.info(
                        "  %.2fs, peak RSS %s MB (VmHWM; ru_maxrss %s MB, wait4 %s MB)",
                        result.seconds,
                        _fmt(result.peak_rss_mb, ".0f"),
                        _fmt(result.ru_maxrss_mb, ".0f"),
                        result.extra.get("wait4_maxrss_mb"),
                    )
                    runs[key].append(result)

    best = {}
    for key, results in runs.items():
        fastest = min(results, key=lambda r: r.seconds)
        peaks = [r.peak_rss_mb for r in results if r.peak_rss_mb is not None]
        fastest.peak_rss_mb = max(peaks) if peaks else None  # report the worst peak seen, not the luckiest
        best[key] = fastest
    machine.append(("load average (1/5/15 min) before / after the runs", f"{load_before} / {load_average()}"))
    report = Report(args.rows, args.repeat, machine, command, best, runs)
    emit(report.markdown(), args.markdown, log)
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.export_bench",
        description="Compare ways to export one PostgreSQL table to CSV in blob storage (Azurite).",
    )
    parser.add_argument(
        "--rows", type=positive_int, default=1_000_000, help="rows in the table (default 1000000)"
    )
    parser.add_argument(
        "--repeat", type=positive_int, default=1, help="runs per method; the best time counts"
    )
    parser.add_argument("--markdown", metavar="PATH", help="also write the Markdown report to PATH")
    parser.add_argument(
        "--methods", default="asbcd", help="subset of methods to run, e.g. 'ac' (default asbcd; s = (a1))"
    )
    parser.add_argument("--profile", metavar="PATH", help="run (a) under cProfile and dump its stats to PATH")
    parser.add_argument("--child", choices=sorted(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--child-result", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    tag = f"child {args.child}" if args.child else ""
    return run_logged(lambda: child_main(args) if args.child else parent_main(args), log, tag)


if __name__ == "__main__":
    raise SystemExit(main())
