"""Pure parts of the export engine: identifiers, SQL text, CSV dialect, retry classification."""

from __future__ import annotations

import datetime as dt
import decimal

import pyodbc
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

from functions.export.csv_format import CsvEncoder, read_records
from functions.export.drivers import with_driver_options
from functions.export.manifest import Watermark
from functions.export.source import build_query
from functions.export.spec import ExportSpec, SpecError, parse_export_tables, quote_identifier
from functions.retry import PermanentError, RetryPolicy, TransientError, call_with_retry, is_transient


@pytest.mark.parametrize("name", ["clients", "_x1", "Campaign_Outcomes", "a" * 128])
def test_valid_identifiers_are_quoted(name):
    assert quote_identifier(name) == f'"{name}"'


@pytest.mark.parametrize("name", ["", "1abc", "a b", 'a"b', "a;b", "a--", "é", "a" * 129, "a.b", "x'"])
def test_unsafe_identifiers_are_refused(name):
    with pytest.raises(SpecError, match="not allowed"):
        quote_identifier(name)


def test_watermark_is_a_parameter_never_sql_text():
    spec = parse_export_tables("sales.orders:updated_at")[0]
    query = build_query(spec, ["updated_at", "id"], after_watermark="2020-01-01'; DROP TABLE x; --")
    assert query.sql == 'SELECT * FROM "sales"."orders" WHERE "updated_at" > ? ORDER BY "updated_at", "id"'
    assert query.params == ("2020-01-01'; DROP TABLE x; --",)


def test_first_incremental_run_has_no_filter():
    assert (
        build_query(ExportSpec("t", table="t", watermark="w"), ["w"]).sql == 'SELECT * FROM "t" ORDER BY "w"'
    )


def test_schema_table_with_too_many_parts_is_invalid():
    assert parse_export_tables("a.b.c")[0].__class__.__name__ == "InvalidSpec"


def test_csv_dialect():
    encoder = CsvEncoder([int, str, decimal.Decimal, dt.date, dt.datetime, dt.time, bool, bytes, float])
    head = encoder.header(["i", "s", "d", "day", "ts", "t", "b", "raw", "f"])
    body = encoder.encode(
        [
            (
                1,
                "",
                decimal.Decimal("1E+3"),
                dt.date(2008, 5, 5),
                dt.datetime(2008, 5, 5, 9, 30),
                dt.time(9, 30, 1),
                True,
                b"\x00\xff",
                0.1,
            ),
            (None, None, decimal.Decimal("-0.00000001"), None, None, None, False, None, 1e-7),
        ]
    )
    assert head == b"i,s,d,day,ts,t,b,raw,f\r\n"
    assert body.decode() == (
        '1,"",1000,2008-05-05,2008-05-05T09:30:00,09:30:01,true,00ff,0.1\r\n,,-0.00000001,,,,false,,1e-07\r\n'
    )


def test_reader_inverts_the_writer():
    rows = [(None, ""), ("a,b", 'q"q'), ("x\r\ny", " "), ("", None)]
    encoder = CsvEncoder([str, str])
    text = (encoder.header(["a", "b"]) + encoder.encode(rows)).decode()
    assert read_records(text)[1:] == [list(r) for r in rows]


def test_surrogates_never_leak_into_output():
    # a lone surrogate cannot be encoded: data that somehow held one fails loudly, never silently
    with pytest.raises(UnicodeEncodeError):
        CsvEncoder([str]).encode([("bad \udc80",)])


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (dt.date(2020, 1, 2), "date"),
        (dt.datetime(2020, 1, 2, 3, 4, 5, 6), "timestamp"),
        (42, "integer"),
        (decimal.Decimal("1.50"), "decimal"),
        ("abc", "string"),
        (2.5, "float"),
    ],
)
def test_watermark_round_trips_with_its_type(value, kind):
    encoded_kind, text = Watermark.encode(value)
    assert encoded_kind == kind
    assert Watermark("c", encoded_kind, text).parameter() == value


def _http(status: int) -> HttpResponseError:
    error = HttpResponseError(message=str(status))
    error.status_code = status
    return error


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (pyodbc.OperationalError("08S01", "communication link failure"), True),
        (pyodbc.OperationalError("HYT00", "timeout expired"), True),
        (pyodbc.Error("HY000", "server closed the connection unexpectedly"), True),
        (pyodbc.ProgrammingError("42P01", "relation does not exist"), False),
        (pyodbc.Error("28000", "password authentication failed"), False),
        (_http(503), True),
        (_http(500), True),
        (_http(429), True),
        (_http(403), False),
        (_http(409), False),
        (ServiceRequestError("connection refused"), True),
        (ResourceNotFoundError("gone"), False),
        (PermanentError("bad config"), False),
        (TransientError("blip"), True),
        (ValueError("bug"), False),
    ],
)
def test_transient_classification(error, transient):
    assert is_transient(error) is transient


def test_retry_backs_off_then_succeeds_and_permanent_fails_at_once():
    pauses: list[float] = []
    calls: list[int] = []

    def flaky(attempt: int) -> str:
        calls.append(attempt)
        if attempt < 3:
            raise TransientError("blip")
        return "done"

    assert call_with_retry(flaky, RetryPolicy(attempts=4, first_delay_s=1), "x", pauses.append) == "done"
    assert calls == [1, 2, 3] and len(pauses) == 2 and all(0 <= p <= 2 for p in pauses)

    calls.clear()

    def broken(attempt: int) -> None:
        calls.append(attempt)
        raise PermanentError("no")

    with pytest.raises(PermanentError):
        call_with_retry(broken, RetryPolicy(attempts=4), "x", pauses.append)
    assert calls == [1]


@pytest.mark.parametrize(
    ("given", "expected_suffix"),
    [
        (
            "Driver={PostgreSQL Unicode};Server=h;",
            "UseDeclareFetch=1;Fetch=10000;ConnSettings=SET TimeZone TO 'UTC';",
        ),
        ("Driver=SQLite3;Database=/x.db", ";StepAPI=1;BigInt=1;NoCreat=1;"),
        ("Driver={ODBC Driver 18 for SQL Server};Server=h", "Server=h"),
        (
            "Driver={PostgreSQL Unicode};UseDeclareFetch=0;Fetch=5;ConnSettings=x",
            "UseDeclareFetch=0;Fetch=5;ConnSettings=x",
        ),
        ("Driver=SQLite3;Database=/x.db;bigint=0;StepAPI=1;NoCreat=0", "bigint=0;StepAPI=1;NoCreat=0"),
    ],
)
def test_driver_options_are_added_only_where_missing(given, expected_suffix):
    assert with_driver_options(given).endswith(expected_suffix)


def test_a_response_cut_mid_body_is_transient():
    """Found by the fault suite: a download reset mid-body raises HttpResponseError without a status."""
    from azure.core.exceptions import IncompleteReadError

    assert is_transient(HttpResponseError(message="Connection broken: IncompleteRead"))
    assert is_transient(IncompleteReadError(message="IncompleteRead(100 bytes read, 900 more expected)"))
    assert not is_transient(ResourceNotFoundError(message="gone"))


def test_storage_clients_retry_within_a_minute_not_three():
    """The storage SDK ignores azure-core's retry_backoff_* keywords; its defaults waited about 3 min."""
    from lake.clients import blob_service, queue_service
    from lake.connection import storage_connection

    connection = storage_connection({"DataLake": "UseDevelopmentStorage=true"}, "DataLake")
    for client in (blob_service(connection), queue_service(connection)):
        policy = client._config.retry_policy
        waits = [policy.get_backoff_time({"count": n}) for n in range(1, policy.total_retries + 1)]
        assert policy.total_retries == 4 and sum(waits) < 40, waits
