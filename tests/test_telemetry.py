"""Telemetry events (functions/telemetry/): the contract, `emit`, `dimension_text`, and the export.

`emit` is checked through a real OpenTelemetry SDK pipeline (LoggerProvider, the logging handler
the Azure Monitor distro installs, an in-memory exporter). The export is checked against an
outside oracle: a child process configures the real distro against an HTTP server on 127.0.0.1
and the test reads the Application Insights envelopes it received (decision 40), with every other
network connection refused and recorded. Fast: a few seconds in all, no Azurite.
"""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry._logs import SeverityNumber, get_logger_provider
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from functions.telemetry import events
from functions.telemetry.emit import APP_LOGGER, RESERVED_ATTRIBUTES, dimension_text, emit
from functions.telemetry.events import BATCH_SCORED, EVENT_KEY, EVENTS, INPUT_REJECTED, MONITOR_RUN
from functions.telemetry.setup import configure_telemetry
from tests.support import REPO

CHILD = Path(__file__).with_name("telemetry_child.py")
DECIMAL = re.compile(r"-?\d+(\.\d+)?(e[+-]\d+)?")  # what KQL's todouble() reads


# -- the contract ---------------------------------------------------------------------------------


def test_no_dimension_is_a_log_record_attribute() -> None:
    """`logging` refuses `extra` keys it sets itself (e.g. `message`): each dimension must pass."""
    logger = logging.getLogger(f"{APP_LOGGER}.contract")
    with pytest.raises(KeyError):  # the oracle can tell: this is what a colliding name does
        logger.makeRecord(logger.name, logging.INFO, "f", 1, "m", (), None, extra={"message": "x"})
    for event in EVENTS:
        assert len(set(event.dimensions)) == len(event.dimensions), event.name
        assert EVENT_KEY not in event.dimensions, event.name
        for name in event.dimensions:
            assert name not in RESERVED_ATTRIBUTES, (event.name, name)
            logger.makeRecord(logger.name, logging.INFO, "f", 1, "m", (), None, extra={name: "x"})
    assert {event.name: event for event in EVENTS} == events.BY_NAME
    assert {"message", "args", "name", "msg", "levelname"} <= RESERVED_ATTRIBUTES


def test_the_monitoring_doc_lists_exactly_the_events_and_their_dimensions() -> None:
    text = (REPO / "docs" / "monitoring.md").read_text()
    section = text.split("\n## Telemetry\n", 1)[1].split("\n## ", 1)[0]
    table: dict[str, tuple[str, ...]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            table[cells[0].strip("`")] = tuple(re.findall(r"`([a-z][a-z0-9_]*)`", cells[2]))
    assert table == {event.name: event.dimensions for event in EVENTS}
    assert list(table) == [event.name for event in EVENTS]


# -- emit through a real OpenTelemetry SDK pipeline --------------------------------------------------


@pytest.fixture
def exported() -> Iterator[tuple[logging.Logger, InMemoryLogRecordExporter]]:
    """A `functions.*` logger whose records go through the distro's handler to memory."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()  # not the global one: the test process keeps no OpenTelemetry state
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=provider)
    logger = logging.getLogger(f"{APP_LOGGER}.test_telemetry")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield logger, exporter
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
        provider.shutdown()


def _dimensions(exporter: InMemoryLogRecordExporter) -> list[dict[str, object]]:
    """The event attributes of each exported record (the handler adds code.* ones of its own)."""
    return [
        {
            key: value
            for key, value in (item.log_record.attributes or {}).items()
            if not key.startswith("code.")
        }
        for item in exporter.get_finished_logs()
    ]


def test_emit_exports_the_event_and_each_dimension_as_normalised_text(exported) -> None:
    logger, exporter = exported
    emit(
        logger,
        BATCH_SCORED,
        "score %s: %d rows scored, drift %s",
        "clients.csv",
        36000,
        "warn",
        input="clients.csv",
        model_name="bank-marketing",
        model_version=np.int64(3),
        rows_in=36000,
        rows_scored=np.int64(35990),
        seconds=12.3456789,
        dataset_drifted=np.bool_(False),
        scores_drifted=True,
        drift_share=0.25,
        drifted_features=["age", "job"],
        expected_roc_auc=float("nan"),  # left out: no query compares a NaN
        to_call=None,  # left out
    )
    [item] = exporter.get_finished_logs()
    assert item.log_record.body == "score clients.csv: 36000 rows scored, drift warn"
    assert item.log_record.severity_number == SeverityNumber.INFO
    assert _dimensions(exporter) == [
        {
            "event": "batch_scored",
            "input": "clients.csv",
            "model_name": "bank-marketing",
            "model_version": "3",
            "rows_in": "36000",
            "rows_scored": "35990",
            "seconds": "12.3457",
            "dataset_drifted": "false",
            "scores_drifted": "true",
            "drift_share": "0.25",
            "drifted_features": "age,job",
        }
    ]


def test_emit_keeps_the_level_and_names_the_caller(exported) -> None:
    logger, exporter = exported
    records: list[logging.LogRecord] = []
    spy = logging.Handler()
    spy.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(spy)
    try:
        emit(logger, INPUT_REJECTED, "rejected %s", "x.csv", level=logging.WARNING, input="x.csv", code="E1")
    finally:
        logger.removeHandler(spy)
    assert exporter.get_finished_logs()[0].log_record.severity_number == SeverityNumber.WARN
    assert records[0].funcName == "test_emit_keeps_the_level_and_names_the_caller"
    assert records[0].getMessage() == "rejected x.csv"
    assert _dimensions(exporter) == [{"event": "input_rejected", "input": "x.csv", "code": "E1"}]


def test_an_unknown_dimension_raises_and_logs_nothing(exported) -> None:
    logger, exporter = exported
    with pytest.raises(ValueError, match=r"'monitor_run' has no dimension 'period'.*periods"):
        emit(logger, MONITOR_RUN, "monitor", model_name="m", period="2026-W01")
    logger.setLevel(logging.ERROR)  # checked even when the level would drop the record
    with pytest.raises(ValueError, match="'row'"):
        emit(logger, MONITOR_RUN, "monitor", row=1)
    assert exporter.get_finished_logs() == ()


def test_a_value_without_a_text_form_or_a_foreign_logger_raises(exported) -> None:
    logger, exporter = exported
    with pytest.raises(TypeError, match=r"dimension 'dashboard': dict"):
        emit(logger, MONITOR_RUN, "monitor", dashboard={"path": "x"})
    with pytest.raises(ValueError, match="only loggers under 'functions'"):
        emit(logging.getLogger("model.scoring"), MONITOR_RUN, "monitor", model_name="m")
    with pytest.raises(ValueError, match="only loggers under"):
        emit(logging.getLogger("functionsx"), MONITOR_RUN, "monitor")
    assert exporter.get_finished_logs() == ()


def test_an_event_below_the_loggers_level_is_not_logged(exported) -> None:
    logger, exporter = exported
    emit(logger, MONITOR_RUN, "monitor", level=logging.DEBUG, model_name="m")
    assert exporter.get_finished_logs() == ()


# -- dimension_text ---------------------------------------------------------------------------------


def test_dimension_text_cases() -> None:
    assert dimension_text(None) is None
    assert dimension_text(True) == "true" and dimension_text(False) == "false"
    assert dimension_text(0) == "0" and dimension_text(-(2**70)) == str(-(2**70))
    assert dimension_text(0.1) == "0.1" and dimension_text(1e-7) == "1e-07"
    assert dimension_text(123456789.0) == "1.23457e+08"
    assert dimension_text(float("inf")) is None and dimension_text(float("-inf")) is None
    assert dimension_text(float("nan")) is None and dimension_text(np.float64("nan")) is None
    assert dimension_text("") == "" and dimension_text("a, b") == "a, b"
    assert dimension_text(["age", 1, True, None, float("nan"), 0.5]) == "age,1,true,0.5"
    assert dimension_text(()) == "" and dimension_text([]) == ""
    assert dimension_text(np.float32(0.1)) == "0.1" and dimension_text(np.bool_(True)) == "true"
    with pytest.raises(TypeError):
        dimension_text({"a": 1})
    with pytest.raises(TypeError):
        dimension_text([[1]])
    with pytest.raises(TypeError):
        dimension_text(object())


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_dimension_text_of_a_float_is_a_short_decimal_within_six_digits(value: float) -> None:
    text = dimension_text(value)
    if not math.isfinite(value):
        assert text is None
        return
    assert text is not None and DECIMAL.fullmatch(text), text
    assert len(text) <= 13  # -1.23457e+308
    assert math.isclose(float(text), value, rel_tol=5e-6, abs_tol=0)
    assert dimension_text(np.float64(value)) == text


@given(st.integers())
def test_dimension_text_of_an_integer_is_its_digits(value: int) -> None:
    assert dimension_text(value) == str(value)
    assert int(dimension_text(value) or "x") == value
    if -(2**63) <= value < 2**63:
        assert dimension_text(np.int64(value)) == str(value)


@given(st.booleans())
def test_dimension_text_of_a_bool(value: bool) -> None:
    assert dimension_text(value) == str(value).lower()
    assert dimension_text(np.bool_(value)) == str(value).lower()


ITEMS = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(blacklist_characters=",", blacklist_categories=("Cs",))),
)


@given(st.lists(ITEMS, max_size=8), st.booleans())
def test_dimension_text_of_a_list_joins_its_items(items: list[object], as_tuple: bool) -> None:
    value = tuple(items) if as_tuple else items
    text = dimension_text(value)
    assert text == ",".join(str(dimension_text(item)) for item in items)
    if items:
        assert text is not None and text.split(",") == [dimension_text(item) for item in items]


# -- configure_telemetry ------------------------------------------------------------------------------


def test_no_connection_string_installs_nothing() -> None:
    app, root = logging.getLogger(APP_LOGGER), logging.getLogger()
    before = (list(app.handlers), list(root.handlers))
    assert configure_telemetry("") is False
    assert configure_telemetry("   ") is False
    assert (list(app.handlers), list(root.handlers)) == before
    assert not isinstance(get_logger_provider(), LoggerProvider)


def _child(tmp_path: Path, scenario: str) -> dict:
    """Run tests/telemetry_child.py (global OpenTelemetry providers stay in that process)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),  # the exporter's retry storage, should a send fail
        # what the Functions host sets: the worker runtime and the site name (cloud_RoleName)
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "WEBSITE_SITE_NAME": "func-test",
        # the SDK's own calls home (its usage statistics, its remote configuration), and the
        # delivery counts it sends at exit to the app's own resource, after the server stopped
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
        "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
    }
    done = subprocess.run(  # noqa: S603 - this interpreter on a file of this repository, no shell
        [sys.executable, str(CHILD), scenario],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.rglob("*.blob*")), "a send failed: the exporter kept it for a retry"
    return json.loads(done.stdout.splitlines()[-1])


def test_configure_telemetry_sends_the_event_as_message_data_with_its_dimensions(tmp_path: Path) -> None:
    result = _child(tmp_path, "export")
    assert result["blocked"] == []  # nothing but 127.0.0.1 was reached for
    assert result["returned"] == [True, True, True]  # configured once, then left as it was
    assert result["otel_handlers"] == 1
    assert result["paths"] and set(result["paths"]) == {"/v2.1/track"}
    # one envelope: not the plain log line (the host forwards it), not the span, not the counter
    assert [item["data"]["baseType"] for item in result["envelopes"]] == ["MessageData"]
    [envelope] = result["envelopes"]
    assert envelope["name"] == "Microsoft.ApplicationInsights.Message"
    assert envelope["iKey"] == "00000000-0000-0000-0000-000000000000"
    assert envelope["tags"]["ai.cloud.role"] == "func-test"
    data = envelope["data"]["baseData"]
    assert data["message"] == "score clients.csv: 36000 rows, drift warn"
    assert {key: value for key, value in data["properties"].items() if key != "logger_name"} == {
        "event": "batch_scored",
        "input": "clients.csv",
        "model_version": "3",
        "rows_scored": "36000",
        "dataset_drifted": "true",
        "drift_share": "0.25",
        "drifted_features": "age,job",
    }
    assert data["properties"]["logger_name"] == "functions.scoring.job"
    # no library patched for tracing, the Azure SDK's included
    assert result["instrumented"] == []
    assert result["azure_core_tracing"] is None
    assert set(result["distro_instrumentations"]) <= set(result["disabled"]), "a new one: disable it"


def test_configure_telemetry_leaves_an_earlier_set_up_alone(tmp_path: Path) -> None:
    """When the worker set OpenTelemetry up first, a second exporter would send every event twice."""
    result = _child(tmp_path, "preconfigured")
    assert result["returned"] == [True]
    assert result["otel_handlers"] == 0
    assert result["envelopes"] == [] and result["blocked"] == []
