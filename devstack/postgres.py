"""A throwaway PostgreSQL cluster on a free loopback port (initdb + pg_ctl).

Used by the tests, the benchmark and `python -m devstack postgres`. The cluster lives in a
temporary folder and is removed on stop. PostgreSQL refuses to run as root, so when we are root
the server runs as the `postgres` system user that Debian's package creates.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from devstack.ports import free_port, wait_for_port

APT_PACKAGES = "postgresql odbc-postgresql"


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL server binaries are not installed."""


def find_pg_bin() -> Path:
    """Locate initdb/pg_ctl: PATH first, then Debian's versioned folders (newest first)."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    raise PostgresUnavailableError(
        f"PostgreSQL server binaries (initdb, pg_ctl) not found; install: apt-get install {APT_PACKAGES}"
    )


@dataclass
class PostgresCluster:
    """A running throwaway cluster; `odbc_connection_string` is what pyodbc needs."""

    port: int
    data_dir: Path
    bin_dir: Path
    run_as: str | None
    user: str = "exporter"
    database: str = "shop"
    _root: Path = field(default=Path(), repr=False)

    @property
    def odbc_connection_string(self) -> str:
        return (
            f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={self.port};"
            f"Database={self.database};Uid={self.user};Pwd=;"
        )

    def psql_args(self) -> list[str]:
        return [
            str(self.bin_dir / "psql") if (self.bin_dir / "psql").exists() else "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            self.database,
        ]

    def stop(self) -> None:
        _run(
            self.run_as,
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"],
            check=False,
        )
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _run(run_as: str | None, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    if run_as:
        args = ["runuser", "-u", run_as, "--", *args]
    return subprocess.run(args, check=check, capture_output=True, text=True)  # noqa: S603 - initdb/pg_ctl/psql found by find_pg_bin, arguments we build, no shell


def start_cluster(database: str = "shop", user: str = "exporter", port: int | None = None) -> PostgresCluster:
    """initdb a fresh cluster in a temp folder, start it on loopback and create `database`."""
    bin_dir = find_pg_bin()
    port = port or free_port()
    root = Path(tempfile.mkdtemp(prefix="pg-throwaway-"))
    data_dir = root / "data"
    run_as: str | None = None
    if os.geteuid() == 0:
        run_as = "postgres"
        try:
            entry = pwd.getpwnam(run_as)
        except KeyError as exc:
            raise PostgresUnavailableError(
                "running as root needs the 'postgres' system user (apt-get install postgresql)"
            ) from exc
        os.chown(root, entry.pw_uid, entry.pw_gid)
    try:
        _run(
            run_as,
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                user,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off"
        _run(
            run_as,
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data_dir),
                "-l",
                str(root / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        wait_for_port(port, 30, "PostgreSQL")
        cluster = PostgresCluster(port, data_dir, bin_dir, run_as, user, database, root)
        _run(None, [*cluster.psql_args()[:-2], "-d", "postgres", "-q", "-c", f'CREATE DATABASE "{database}"'])
        return cluster
    except subprocess.CalledProcessError as exc:
        log = (root / "server.log").read_text(errors="replace") if (root / "server.log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailableError(
            f"could not start PostgreSQL: {exc.stderr or exc.stdout}\n{log}"
        ) from exc
