"""Helpers for tests: run one export, read results back, inject storage faults into real clients."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobClient, ContainerClient

from functions.export import manifest as mf
from functions.export.csv_format import read_records
from functions.export.engine import Exporter, ExportTuning, ProgressCallback, TableResult
from functions.export.spec import ExportSpec
from functions.retry import RetryPolicy
from functions.settings import export_defaults
from lake import paths as lake_paths

REPO = Path(__file__).resolve().parent.parent
DAY1 = dt.date(2026, 11, 1)
DAY2 = dt.date(2026, 11, 2)
DAY3 = dt.date(2026, 11, 3)
NO_WAIT = RetryPolicy(attempts=1)


def export_one(
    connection_string: str,
    container: ContainerClient,
    spec: ExportSpec,
    export_date: dt.date = DAY1,
    on_progress: ProgressCallback | None = None,
    retry: RetryPolicy = NO_WAIT,
    **options: Any,
) -> TableResult:
    settings, tuning = engine_options(retry=retry, **options)
    exporter = Exporter(
        connection_string, container, settings, on_progress, sleep=lambda _s: None, tuning=tuning
    )
    return exporter.export(spec, export_date)


_TUNING = ("block_bytes", "retry", "parallel_min_rows", "range_rows")


def engine_options(**options: Any) -> tuple[Any, ExportTuning]:
    """The export settings (catalog defaults) and the engine's tuning, each with the given changes."""
    tuning = {k: v for k, v in options.items() if k in _TUNING}
    settings = export_defaults(**{k: v for k, v in options.items() if k not in _TUNING})
    return settings, ExportTuning(**tuning)


def blob_names(container: ContainerClient) -> list[str]:
    return sorted(b.name for b in container.list_blobs())


def read_export(
    container: ContainerClient, name: str, export_date: dt.date = DAY1
) -> tuple[mf.Manifest, list]:
    manifest = mf.Manifest.from_json(
        container.download_blob(lake_paths.export_manifest_path(name, export_date)).readall()
    )
    text = container.download_blob(lake_paths.export_csv_path(name, export_date)).readall().decode("utf-8")
    return manifest, read_records(text)


class Faults:
    """Counts calls per operation and raises the planned error on the planned call."""

    def __init__(self, **plan: tuple[int, Exception]) -> None:
        self.plan = plan
        self.calls: dict[str, int] = {}

    def hit(self, operation: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        planned = self.plan.get(operation)
        if planned and self.calls[operation] == planned[0]:
            raise planned[1]


class FaultyBlobClient(BlobClient):
    faults: Faults

    def stage_block(self, *args: Any, **kwargs: Any) -> Any:
        self.faults.hit("stage_block")
        return super().stage_block(*args, **kwargs)

    def commit_block_list(self, *args: Any, **kwargs: Any) -> Any:
        self.faults.hit("commit_block_list")
        return super().commit_block_list(*args, **kwargs)


class FaultyContainerClient(ContainerClient):
    """A real container client whose writes fail where the test says (storage errors)."""

    faults: Faults

    @classmethod
    def wrap(
        cls, container: ContainerClient, connection_string: str, faults: Faults
    ) -> FaultyContainerClient:
        client = cls.from_connection_string(connection_string, container.container_name)
        client.faults = faults
        return client

    def get_blob_client(self, blob: Any, *args: Any, **kwargs: Any) -> BlobClient:
        inner = super().get_blob_client(blob, *args, **kwargs)
        client = FaultyBlobClient.from_blob_url(inner.url, credential=self.credential)
        client.faults = self.faults
        return client

    def upload_blob(self, name: Any, *args: Any, **kwargs: Any) -> BlobClient:
        if str(name).endswith("_manifest.json"):
            self.faults.hit("upload_manifest")
        return super().upload_blob(name, *args, **kwargs)


def server_error(message: str = "injected 503") -> HttpResponseError:
    error = HttpResponseError(message=message)
    error.status_code = 503
    return error


def run_module(
    module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`python -m module args...` from the repository root, as a user runs the CLIs."""
    return subprocess.run(  # noqa: S603 - our interpreter running a project module
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def bench_report(module: str, *args: str, folder: Path, timeout: float = 300) -> str:
    """Run a benchmark script with `--markdown` into `folder`; the report's text (fails on a crash)."""
    report = folder / "report.md"
    done = run_module(module, *args, "--markdown", str(report), timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return report.read_text()


@contextlib.contextmanager
def loopback_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 in a thread, answering with `handler`; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
