"""devstack.ncrontab against the schedules Microsoft documents for the timer trigger."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from devstack.ncrontab import parse
from tests.cron_support import fires, utc

# --- Microsoft's documented examples -----------------------------------------------------------
# "Timer trigger for Azure Functions" (learn.microsoft.com/azure/azure-functions/functions-bindings-timer),
# sections "NCRONTAB expressions" (the table of value types), "NCRONTAB examples" and "TimeSpan".
# Each expected list is that page's "when triggered" worked out from Friday 2026-03-13 08:57:00Z.

FRIDAY_0857 = utc(2026, 3, 13, 8, 57)


@pytest.mark.parametrize(
    ("expression", "documented_as", "expected"),
    [
        # the value types
        ("0 5 * * * *", "minute 5 of each hour", [utc(2026, 3, 13, h, 5) for h in (9, 10, 11)]),
        ("0 * 5 * * *", "every minute during hour 5", [utc(2026, 3, 14, 5, m) for m in (0, 1, 2)]),
        (
            "5-7 * * * * *",
            "seconds 5 through 7",
            [utc(2026, 3, 13, 8, 57, s) for s in (5, 6, 7)] + [utc(2026, 3, 13, 8, 58, 5)],
        ),
        (
            "5,8,10 * * * * *",
            "seconds 5, 8 and 10",
            [utc(2026, 3, 13, 8, 57, s) for s in (5, 8, 10)] + [utc(2026, 3, 13, 8, 58, 5)],
        ),
        # the examples
        ("0 */5 * * * *", "once every five minutes", [utc(2026, 3, 13, 9, m) for m in (0, 5, 10)]),
        ("0 0 * * * *", "once at the top of every hour", [utc(2026, 3, 13, h) for h in (9, 10, 11)]),
        ("0 0 */2 * * *", "once every two hours", [utc(2026, 3, 13, h) for h in (10, 12, 14)]),
        (
            "0 0 9-17 * * *",
            "once every hour from 9 AM to 5 PM",
            [utc(2026, 3, 13, h) for h in range(9, 18)] + [utc(2026, 3, 14, 9)],
        ),
        ("0 30 9 * * *", "at 9:30 AM every day", [utc(2026, 3, d, 9, 30) for d in (13, 14, 15)]),
        ("0 30 9 * * 1-5", "at 9:30 AM every weekday", [utc(2026, 3, d, 9, 30) for d in (13, 16, 17)]),
        (
            "0 30 9 * Jan Mon",
            "at 9:30 AM every Monday in January",
            [utc(2027, 1, d, 9, 30) for d in (4, 11, 18, 25)] + [utc(2028, 1, 3, 9, 30)],
        ),
        # "Names are in English. For example: Monday, January."
        (
            "0 30 9 * January Monday",
            "the same, names in full",
            [utc(2027, 1, d, 9, 30) for d in (4, 11, 18, 25)],
        ),
    ],
)
def test_microsoft_documented_cron_examples(
    expression: str, documented_as: str, expected: list[datetime]
) -> None:
    assert fires(expression, FRIDAY_0857, len(expected)) == expected, documented_as


@pytest.mark.parametrize(
    ("expression", "interval"),
    [
        ("01:00:00", timedelta(hours=1)),  # every hour
        ("00:01:00", timedelta(minutes=1)),  # every minute
        ("25:00:00:00", timedelta(days=25)),  # every 25 days
        ("1.00:00:00", timedelta(days=1)),  # every day
        # "When the first two digits are 24 or greater, the format is dd:hh:mm"
        ("24:00:00", timedelta(days=24)),
    ],
)
def test_microsoft_documented_timespan_examples(expression: str, interval: timedelta) -> None:
    assert parse(expression).interval == interval
    assert fires(expression, FRIDAY_0857, 2) == [FRIDAY_0857 + interval, FRIDAY_0857 + 2 * interval]
