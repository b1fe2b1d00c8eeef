"""Send the app's telemetry events to Application Insights through OpenTelemetry (Azure Monitor).

Why this exists: the Functions host forwards what the Python worker logs to Application Insights,
but only the message text, so an event's dimensions (`functions.telemetry.emit`) would be lost.
The Azure Monitor distro exports a log record with its attributes as `customDimensions`.

What is configured, and why (docs/decisions.md, decision 40):
- logs only, and only the event records of the app's loggers (`functions.*`). The host stays in
  its classic Application Insights mode and keeps forwarding every log line, with the invocation's
  operation_Name that the alerts read; exporting all log lines again would store each one twice.
  An event therefore arrives twice in `traces`: the host's copy (message only) and this one (with
  `customDimensions.event`); queries select on the dimension, so they count it once.
- no spans, no metrics (sampled out and dropped: the distro builds those pipelines regardless),
  no live metrics, no performance counters, no auto-instrumentation: the host already reports
  requests, live metrics and the platform metrics; instrumenting the Azure SDK and the HTTP
  libraries would add a dependency row per storage request, and live metrics would hold a
  connection open from every instance.
- once per process: `configure_azure_monitor` sets global OpenTelemetry providers, which cannot
  be replaced, and a second handler would export every event twice.
"""

from __future__ import annotations

import logging
import threading

from functions.telemetry.emit import APP_LOGGER
from functions.telemetry.events import BY_NAME, EVENT_KEY

# Every auto-instrumentation the distro knows (azure-monitor-opentelemetry 1.8); all are turned
# off. tests/test_telemetry.py fails when an upgrade brings one that is not listed here.
INSTRUMENTATIONS = (
    "azure_sdk",
    "django",
    "fastapi",
    "flask",
    "httpx",
    "httpx2",
    "psycopg2",
    "requests",
    "urllib",
    "urllib3",
)

log = logging.getLogger(__name__)
_lock = threading.Lock()
_configured = False


class EventsOnly(logging.Filter):
    """Pass only the records `emit` made: the host forwards all the others already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, EVENT_KEY, None) in BY_NAME


def configure_telemetry(connection_string: str) -> bool:
    """Export the app's events to the Application Insights of `connection_string`.

    Returns True when events go to Application Insights (configured now or by an earlier call),
    False when the string is empty: nothing is installed and logging stays plain, as the host
    forwards it (locally, in the tests, a stack without telemetry). Only the first non-empty call
    configures; later ones return True without touching the providers, even with another string.
    A malformed string raises the distro's ValueError, so a wrong setting fails the start.
    """
    global _configured
    if not connection_string.strip():
        return False
    with _lock:
        if _configured:
            return True
        # Imported here: the distro costs import time on a cold start that plain logging does not need.
        from azure.monitor.opentelemetry import configure_azure_monitor
        from opentelemetry._logs import get_logger_provider
        from opentelemetry.resource.detector.azure import AzureFunctionsResourceDetector
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk.metrics.view import DropAggregation, View

        if isinstance(get_logger_provider(), LoggerProvider):
            # Someone set OpenTelemetry up first (the worker does when the app setting
            # PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY is true): the global providers cannot be
            # replaced, and a second exporter would send every event twice.
            log.warning("OpenTelemetry logging was set up before configure_telemetry: left as it is")
            _configured = True
            return True
        logger = logging.getLogger(APP_LOGGER)
        before = list(logger.handlers)
        configure_azure_monitor(
            connection_string=connection_string,
            logger_name=APP_LOGGER,
            # The distro's default detectors leave service.name (cloud_RoleName) unset on Functions;
            # this one names the function app, as the Python worker's own set-up does.
            resource=AzureFunctionsResourceDetector().detect(),
            # Logs only. The distro always builds its trace and metric pipelines (1.8 takes
            # `disable_tracing` / `disable_metrics` from OTEL_*_EXPORTER=none alone and overwrites
            # the keywords), so it is told to keep nothing: sample no span, drop every metric.
            sampling_ratio=0.0,
            views=[View(instrument_name="*", aggregation=DropAggregation())],
            enable_live_metrics=False,
            enable_performance_counters=False,
            instrumentation_options={name: {"enabled": False} for name in INSTRUMENTATIONS},
        )
        for handler in logger.handlers:
            if handler not in before:
                handler.addFilter(EventsOnly())
        _configured = True
        return True
