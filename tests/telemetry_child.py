"""Child process of tests/test_telemetry.py: configure the real Azure Monitor distro, emit, report.

In a process of its own because `configure_azure_monitor` sets global OpenTelemetry providers.
An HTTP server on 127.0.0.1 stands in for the ingestion endpoint (`{IngestionEndpoint}/v2.1/track`,
JSON envelopes, gzip or plain) and records what it receives; every other connection (and name
look-up) is refused and recorded, so the test sees anything that would reach the internet.
The last line of stdout is one JSON object for the test to read.

Usage: python tests/telemetry_child.py export|preconfigured
"""

from __future__ import annotations

import gzip
import json
import logging
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
blocked: list[str] = []
received: list[tuple[str, bytes]] = []


def _guard_the_network() -> None:
    """Refuse (and note) every connection and name look-up that is not loopback."""
    connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def allowed(address: Any) -> bool:
        return isinstance(address, tuple) and str(address[0]) in LOOPBACK

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if not allowed(address):
            blocked.append(f"connect {address}")
            raise OSError(f"network refused by the test: {address}")
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if not allowed(address):
            blocked.append(f"connect_ex {address}")
            return 111  # ECONNREFUSED
        return connect_ex(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if str(host) not in LOOPBACK:
            blocked.append(f"getaddrinfo {host}")
            raise socket.gaierror(f"name look-up refused by the test: {host}")
        return getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = guarded_getaddrinfo  # type: ignore[assignment]


class Ingestion(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        received.append((self.path, body))
        reply = json.dumps({"itemsReceived": 1, "itemsAccepted": 1, "errors": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _envelopes() -> list[dict[str, Any]]:
    envelopes: list[dict[str, Any]] = []
    for _, body in received:
        text = body.decode()
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:  # newline-delimited envelopes
            parsed = [json.loads(line) for line in text.splitlines() if line.strip()]
        envelopes += parsed if isinstance(parsed, list) else [parsed]
    return envelopes


def _otel_handlers(logger: logging.Logger) -> int:
    return sum(type(handler).__module__.startswith("opentelemetry") for handler in logger.handlers)


def _instrumented() -> list[str]:
    from opentelemetry.util._importlib_metadata import entry_points

    found = []
    for entry_point in entry_points(group="opentelemetry_instrumentor"):
        try:
            instrumentor = entry_point.load()()
        except Exception:  # noqa: BLE001, S112 - an instrumentor whose library is absent patches nothing
            continue
        if instrumentor.is_instrumented_by_opentelemetry:
            found.append(entry_point.name)
    return found


def main(scenario: str) -> dict[str, Any]:
    _guard_the_network()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ingestion)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    connection = (
        f"InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:{port}/"
    )

    from opentelemetry import _logs, metrics, trace

    from functions.telemetry.emit import APP_LOGGER, emit
    from functions.telemetry.events import BATCH_SCORED
    from functions.telemetry.setup import INSTRUMENTATIONS, configure_telemetry

    logging.getLogger().setLevel(logging.INFO)
    result: dict[str, Any] = {}
    if scenario == "preconfigured":
        from opentelemetry.sdk._logs import LoggerProvider

        _logs.set_logger_provider(LoggerProvider())
        result["returned"] = [configure_telemetry(connection)]
    else:
        other = (
            "InstrumentationKey=11111111-1111-1111-1111-111111111111;IngestionEndpoint=http://127.0.0.1:9/"
        )
        result["returned"] = [configure_telemetry(connection), configure_telemetry(connection)]
        result["returned"].append(configure_telemetry(other))  # ignored: configured once per process
    log = logging.getLogger("functions.scoring.job")
    emit(
        log,
        BATCH_SCORED,
        "score %s: %d rows, drift %s",
        "clients.csv",
        36000,
        "warn",
        input="clients.csv",
        model_version=3,
        rows_scored=36000,
        dataset_drifted=True,
        drift_share=0.25,
        drifted_features=("age", "job"),
        expected_roc_auc=None,
    )
    log.info("a plain line: the host forwards it, the exporter does not")
    # what a library using the OpenTelemetry API would produce: none of it may be exported
    with trace.get_tracer("telemetry_child").start_as_current_span("a span"):
        metrics.get_meter("telemetry_child").create_counter("a_counter").add(1)
    for provider in (_logs.get_logger_provider(), trace.get_tracer_provider(), metrics.get_meter_provider()):
        if hasattr(provider, "shutdown"):  # the SDK's: flushes what is pending, then stops
            provider.shutdown()
    server.shutdown()

    from azure.core.settings import settings as azure_core_settings
    from azure.monitor.opentelemetry._constants import _ALL_SUPPORTED_INSTRUMENTED_LIBRARIES

    result.update(
        blocked=blocked,
        paths=[path for path, _ in received],
        envelopes=_envelopes(),
        otel_handlers=_otel_handlers(logging.getLogger(APP_LOGGER)),
        instrumented=_instrumented(),
        azure_core_tracing=str(azure_core_settings.tracing_implementation() or "") or None,
        distro_instrumentations=list(_ALL_SUPPORTED_INSTRUMENTED_LIBRARIES),
        disabled=list(INSTRUMENTATIONS),
    )
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
