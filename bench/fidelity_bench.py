"""What exactness costs the SQLite export: the fidelity read plan against the driver's plain `SELECT *`.

    .venv/bin/python -m bench.fidelity_bench [--rows 1000000] [--repeat 2] [--markdown FILE]

Builds a bank-shaped table (17 columns: integers, text, one REAL) in a temporary SQLite file,
then fetches and encodes it to CSV in one process, both ways, interleaved so that machine load
hits both alike: (a) the export's plan (guard column, REALs through printf, names as data),
(b) the plain `SELECT *` the driver would damage (REALs at 15 digits). Rows go nowhere (no
storage), so the ratio is the plan's own cost.
"""

from __future__ import annotations

import argparse
import logging
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.common import command_line, emit, load_average, machine_facts, positive_int, run_logged
from functions.export import drivers, fidelity
from functions.export.csv_format import CsvEncoder

log = logging.getLogger("bench.fidelity")
COLUMNS = (
    "client_id integer primary key, age integer, job text, marital text, education text, "
    '"default" text, balance integer, housing text, loan text, contact text, day integer, '
    "month text, campaign integer, pdays integer, previous integer, poutcome text, score real"
)


def build(path: Path, rows: int) -> None:
    rng = random.Random(42)
    jobs = ["admin.", "blue-collar", "technician", "services", "management"]
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE clients ({COLUMNS})")
        db.executemany(
            f"INSERT INTO clients VALUES ({', '.join('?' * 17)})",  # noqa: S608 - placeholders only
            (
                (
                    i,
                    rng.randint(18, 90),
                    rng.choice(jobs),
                    "married",
                    "secondary",
                    "no",
                    rng.randint(-1000, 50000),
                    "yes",
                    "no",
                    "cellular",
                    rng.randint(1, 31),
                    "may",
                    rng.randint(1, 10),
                    -1,
                    0,
                    "unknown",
                    rng.random(),
                )
                for i in range(1, rows + 1)
            ),
        )


def fetch_and_encode(connection_string: str, exact: bool) -> float:
    connection = drivers.connect(connection_string)
    try:
        if exact:
            plan = fidelity.read_plan(connection, connection_string, '"clients"', "clients")
            select, encoder = plan.select_list, plan.encoder(False)
        else:
            description = connection.execute('SELECT * FROM "clients" WHERE 1 = 0').description
            select, encoder = "*", CsvEncoder([d[1] for d in description])
        started = time.perf_counter()
        cursor = connection.execute(f'SELECT {select} FROM "clients" ORDER BY "client_id"')  # noqa: S608
        while rows := cursor.fetchmany(10_000):
            encoder.encode(rows)
        return time.perf_counter() - started
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=positive_int, default=1_000_000)
    parser.add_argument("--repeat", type=positive_int, default=2)
    parser.add_argument("--markdown", help="also write the report to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        log.info("building %s rows", f"{args.rows:,}")
        build(path, args.rows)
        connection_string = f"Driver=SQLite3;Database={path}"
        load_before = load_average()
        times: dict[bool, list[float]] = {True: [], False: []}
        for round_number in range(args.repeat):
            for exact in (False, True):
                seconds = fetch_and_encode(connection_string, exact)
                times[exact].append(seconds)
                log.info("round %d %s: %.2fs", round_number + 1, "exact" if exact else "plain", seconds)
    best_exact, best_plain = min(times[True]), min(times[False])
    lines = [
        f"# SQLite export: exact read plan vs plain SELECT * ({args.rows:,} rows x 17 columns)",
        "",
        f"`{command_line('bench.fidelity_bench')}`",
        "",
        "| fact | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in machine_facts(["pyodbc"], ("load before", load_before))),
        "",
        "| method | best of " + str(args.repeat) + " (s) | rows/s |",
        "|---|---:|---:|",
        f"| (a) exact plan (guard, REALs via printf) | {best_exact:.2f} | {args.rows / best_exact:,.0f} |",
        f"| (b) plain `SELECT *` (REALs at 15 digits) | {best_plain:.2f} | {args.rows / best_plain:,.0f} |",
        "",
        f"(a) takes {best_exact / best_plain:.2f}x the time of (b).",
    ]
    emit("\n".join(lines), args.markdown, log)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_logged(main, log))
