"""Start and stop Azurite (blob + queue) on loopback, from the project's pinned npm package.

The demo keeps one long-lived instance with its data under `.local/azurite` (pid file beside it);
tests start their own on free ports with a temporary data folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.ports import free_port, port_is_open, wait_for_port

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"

# Azurite's fixed development account. The key is public (published in Azure's documentation for
# the emulator) and only ever valid against a local emulator; it is not a secret.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def connection_string(blob_port: int, queue_port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{blob_port}/{DEV_ACCOUNT};"
        f"QueueEndpoint=http://127.0.0.1:{queue_port}/{DEV_ACCOUNT};"
    )


@dataclass
class Azurite:
    """A running Azurite; `connection_string` is what the DataLake setting needs."""

    blob_port: int
    queue_port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(self.blob_port, self.queue_port)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Azurite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _command(data_dir: Path, blob_port: int, queue_port: int) -> list[str]:
    if not AZURITE_BIN.exists():
        raise FileNotFoundError(f"Azurite is not installed at {AZURITE_BIN}; run `npm ci` in {REPO_ROOT}")
    return [
        str(AZURITE_BIN),
        "--silent",
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--location",
        str(data_dir),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(blob_port),
        "--queueHost",
        "127.0.0.1",
        "--queuePort",
        str(queue_port),
        "--tablePort",
        str(free_port()),
    ]


def start(
    data_dir: Path,
    blob_port: int | None = None,
    queue_port: int | None = None,
    log_path: Path | None = None,
    detach: bool = False,
) -> Azurite:
    """Start Azurite and wait until both services listen. `detach` lets it outlive this process."""
    blob_port = blob_port or free_port()
    queue_port = queue_port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = Path(log_path or os.devnull).open("ab")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(  # noqa: S603 - the pinned Azurite binary with ports and paths we chose, no shell
        _command(data_dir, blob_port, queue_port),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=detach,
    )
    log.close()
    try:
        wait_for_port(blob_port, 30, "Azurite blob service")
        wait_for_port(queue_port, 30, "Azurite queue service")
    except TimeoutError:
        process.kill()
        raise
    return Azurite(blob_port, queue_port, data_dir, process)


# --- the long-lived local instance used by the demo -------------------------------------------

LOCAL_BLOB_PORT = 10000
LOCAL_QUEUE_PORT = 10001


def local_instance_dir(root: Path = REPO_ROOT) -> Path:
    return root / ".local" / "azurite"


def ensure_local(root: Path = REPO_ROOT) -> Azurite:
    """Start the demo Azurite on the standard ports unless it already runs; reuse it if so."""
    data_dir = local_instance_dir(root)
    if port_is_open(LOCAL_BLOB_PORT) and port_is_open(LOCAL_QUEUE_PORT):
        return Azurite(LOCAL_BLOB_PORT, LOCAL_QUEUE_PORT, data_dir)
    if port_is_open(LOCAL_BLOB_PORT) or port_is_open(LOCAL_QUEUE_PORT):
        raise RuntimeError(
            f"port {LOCAL_BLOB_PORT} or {LOCAL_QUEUE_PORT} is taken by another program; stop it first"
        )
    azurite = start(data_dir, LOCAL_BLOB_PORT, LOCAL_QUEUE_PORT, data_dir / "azurite.log", detach=True)
    assert azurite.process is not None
    (data_dir / "azurite.pid").write_text(str(azurite.process.pid))
    return azurite


def stop_local(root: Path = REPO_ROOT) -> bool:
    """Stop the demo Azurite started by `ensure_local`; True if one was running."""
    pid_file = local_instance_dir(root) / "azurite.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().strip())
    pid_file.unlink()
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    for _ in range(100):
        if not port_is_open(LOCAL_BLOB_PORT):
            break
        time.sleep(0.1)
    return True
