"""Unit tests for devstack.ncrontab: six-field NCRONTAB and TimeSpan timer schedules."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from devstack.ncrontab import CronError, Schedule, parse
from tests.cron_support import fires, utc

# --- basic scheduling -------------------------------------------------------------------------


def test_daily_two_am_same_day() -> None:
    assert parse("0 0 2 * * *").next_after(utc(2026, 3, 10, 1, 59, 59)) == utc(2026, 3, 10, 2, 0, 0)


def test_daily_two_am_is_strictly_after() -> None:
    assert parse("0 0 2 * * *").next_after(utc(2026, 3, 10, 2, 0, 0)) == utc(2026, 3, 11, 2, 0, 0)


def test_microseconds_past_fire_time_move_to_next() -> None:
    moment = utc(2026, 3, 10, 2, 0, 0).replace(microsecond=1)
    assert parse("0 0 2 * * *").next_after(moment) == utc(2026, 3, 11, 2, 0, 0)
    just_before = utc(2026, 3, 10, 1, 59, 59).replace(microsecond=999_999)
    assert parse("0 0 2 * * *").next_after(just_before) == utc(2026, 3, 10, 2, 0, 0)


def test_every_five_seconds() -> None:
    assert fires("*/5 * * * * *", utc(2026, 1, 1, 0, 0, 3), 4) == [
        utc(2026, 1, 1, 0, 0, 5),
        utc(2026, 1, 1, 0, 0, 10),
        utc(2026, 1, 1, 0, 0, 15),
        utc(2026, 1, 1, 0, 0, 20),
    ]
    # wraps over minute, hour, day and year boundaries
    assert parse("*/5 * * * * *").next_after(utc(2026, 12, 31, 23, 59, 57)) == utc(2027, 1, 1, 0, 0, 0)


def test_result_is_utc_and_other_timezones_are_converted() -> None:
    plus_two = timezone(timedelta(hours=2))
    result = parse("0 0 2 * * *").next_after(datetime(2026, 3, 10, 3, 30, tzinfo=plus_two))  # 01:30Z
    assert result == utc(2026, 3, 10, 2, 0, 0)
    assert result.utcoffset() == timedelta(0)
    assert result.tzinfo is UTC


def test_rollover_to_next_month_and_year() -> None:
    assert parse("0 0 0 1 * *").next_after(utc(2026, 12, 15)) == utc(2027, 1, 1)
    assert parse("30 15 10 31 * *").next_after(utc(2026, 4, 1)) == utc(2026, 5, 31, 10, 15, 30)


def test_minute_and_second_search_within_hour() -> None:
    schedule = parse("10,40 5,35 * * * *")
    assert schedule.next_after(utc(2026, 1, 1, 7, 5, 10)) == utc(2026, 1, 1, 7, 5, 40)
    assert schedule.next_after(utc(2026, 1, 1, 7, 5, 40)) == utc(2026, 1, 1, 7, 35, 10)
    assert schedule.next_after(utc(2026, 1, 1, 7, 35, 40)) == utc(2026, 1, 1, 8, 5, 10)
    assert schedule.next_after(utc(2026, 1, 1, 23, 59, 59)) == utc(2026, 1, 2, 0, 5, 10)


# --- day of week, months, lists and steps ------------------------------------------------------


def test_weekday_range_skips_weekend() -> None:
    # 2026-03-13 is a Friday
    schedule = parse("0 30 9 * * 1-5")
    assert schedule.next_after(utc(2026, 3, 13, 9, 0)) == utc(2026, 3, 13, 9, 30)
    assert schedule.next_after(utc(2026, 3, 13, 9, 30)) == utc(2026, 3, 16, 9, 30)  # Monday


def test_day_names_are_case_insensitive_and_equal_numbers() -> None:
    start = utc(2026, 3, 13, 12)
    expected = parse("0 30 9 * * 1-5").next_after(start)
    assert parse("0 30 9 * * Mon-Fri").next_after(start) == expected
    assert parse("0 30 9 * * mon-FRI").next_after(start) == expected
    assert parse("0 0 12 * * Sat,sun").next_after(start) == utc(2026, 3, 14, 12)


def test_day_of_week_is_zero_to_six_as_in_ncrontab() -> None:
    """NCrontab's day-of-week range is 0-6 (CrontabFieldImpl.cs), so the host refuses `7` at start;
    so do we, rather than fire a schedule Azure would never run (docs/decisions.md, 37)."""
    start = utc(2026, 3, 10)  # Tuesday
    assert parse("0 0 8 * * 0").next_after(start) == utc(2026, 3, 15, 8)  # Sunday
    assert parse("0 0 8 * * 5-6,0").next_after(utc(2026, 3, 14, 9)) == utc(2026, 3, 15, 8)
    for expression in ("0 0 8 * * 7", "0 0 8 * * 5-7"):
        with pytest.raises(CronError, match="day-of-week 7 is out of range 0-6"):
            parse(expression)


def test_month_names() -> None:
    schedule = parse("0 0 6 1 Jan,jul *")
    assert schedule.next_after(utc(2026, 3, 1)) == utc(2026, 7, 1, 6)
    assert schedule.next_after(utc(2026, 7, 1, 6)) == utc(2027, 1, 1, 6)
    assert parse("0 0 0 1 MAR-may *").next_after(utc(2026, 5, 2)) == utc(2027, 3, 1)


def test_lists_and_steps() -> None:
    # hours 0,6,12,18 at minute 15
    assert fires("0 15 */6 * * *", utc(2026, 1, 1, 5), 4) == [
        utc(2026, 1, 1, 6, 15),
        utc(2026, 1, 1, 12, 15),
        utc(2026, 1, 1, 18, 15),
        utc(2026, 1, 2, 0, 15),
    ]
    # a-b/n: minutes 10,30,50
    assert fires("0 10-59/20 1 * * *", utc(2026, 1, 1), 4) == [
        utc(2026, 1, 1, 1, 10),
        utc(2026, 1, 1, 1, 30),
        utc(2026, 1, 1, 1, 50),
        utc(2026, 1, 2, 1, 10),
    ]
    # a/n: seconds 45, 55 (open-ended to the field maximum)
    assert fires("45/10 0 0 * * *", utc(2026, 1, 1), 3) == [
        utc(2026, 1, 1, 0, 0, 45),
        utc(2026, 1, 1, 0, 0, 55),
        utc(2026, 1, 2, 0, 0, 45),
    ]
    # mixed list of values, ranges and steps
    assert fires("0 0 1,3-4,20-23/2 * * *", utc(2026, 1, 1), 6) == [
        utc(2026, 1, 1, 1),
        utc(2026, 1, 1, 3),
        utc(2026, 1, 1, 4),
        utc(2026, 1, 1, 20),
        utc(2026, 1, 1, 22),
        utc(2026, 1, 2, 1),
    ]


def test_day_of_month_and_day_of_week_must_both_match_as_in_ncrontab() -> None:
    """NCrontab requires both day fields (CrontabSchedule.cs; the maintainer in atifaziz/NCrontab#63),
    unlike classic cron's OR: `0 0 0 13 * Fri` is a Friday the 13th only, as the host fires it."""
    assert fires("0 0 0 13 * 5", utc(2026, 3, 1), 3) == [
        utc(2026, 3, 13),
        utc(2026, 11, 13),
        utc(2027, 8, 13),
    ]
    assert fires("0 0 0 13 * Fri", utc(2026, 3, 13), 1) == [utc(2026, 11, 13)]


def test_star_day_of_week_means_only_day_of_month_restricts() -> None:
    assert fires("0 0 0 13 * *", utc(2026, 3, 1), 2) == [utc(2026, 3, 13), utc(2026, 4, 13)]


def test_star_day_of_month_means_only_day_of_week_restricts() -> None:
    assert fires("0 0 0 * * Fri", utc(2026, 3, 1), 2) == [utc(2026, 3, 6), utc(2026, 3, 13)]


def test_feb_29_waits_for_leap_year() -> None:
    assert parse("0 0 0 29 2 *").next_after(utc(2026, 3, 1)) == utc(2028, 2, 29)


def test_feb_29_across_non_leap_century() -> None:
    # 2100 is not a leap year: the gap is eight years, which must not be reported as impossible
    assert parse("0 0 0 29 2 *").next_after(utc(2096, 3, 1)) == utc(2104, 2, 29)


# --- impossible and invalid expressions --------------------------------------------------------


@pytest.mark.parametrize("expression", ["0 0 0 31 2 *", "0 0 0 30 Feb *", "0 0 0 31 4,6,9,11 *"])
def test_impossible_date_raises_cron_error(expression: str) -> None:
    schedule = parse(expression)  # syntactically valid
    with pytest.raises(CronError, match="never fires") as excinfo:
        schedule.next_after(utc(2026, 1, 1))
    assert expression in str(excinfo.value)


def test_wrong_field_count() -> None:
    with pytest.raises(CronError) as excinfo:
        parse("0 2 * * *")
    message = str(excinfo.value)
    assert "6 fields" in message
    assert "got 5" in message
    assert "'0 2 * * *'" in message
    with pytest.raises(CronError, match="got 7"):
        parse("0 0 2 * * * 2026")
    with pytest.raises(CronError, match="got 0"):
        parse("   ")


def test_out_of_range_message_names_field_value_and_expression() -> None:
    with pytest.raises(CronError) as excinfo:
        parse("0 0 25 * * *")
    assert str(excinfo.value) == "invalid NCRONTAB '0 0 25 * * *': hour 25 is out of range 0-23"


@pytest.mark.parametrize(
    ("expression", "fragments"),
    [
        ("60 * * * * *", ["second 60", "0-59"]),
        ("0 60 * * * *", ["minute 60", "0-59"]),
        ("0 0 0 0 * *", ["day 0", "1-31"]),
        ("0 0 0 32 * *", ["day 32", "1-31"]),
        ("0 0 0 * 13 *", ["month 13", "1-12"]),
        ("0 0 0 * * 8", ["day-of-week 8", "0-6"]),
        ("0 0 1-30 * * *", ["hour 30"]),
        ("0 0 x * * *", ["hour", "'x'"]),
        ("0 0 0 * Foo *", ["month", "'Foo'"]),
        ("0 0 0 * * Funday", ["day-of-week", "'Funday'"]),
        ("0 0 0 * * Jan", ["day-of-week", "'Jan'"]),
        ("0 0 0 * Mon *", ["month", "'Mon'"]),
        ("0 0 -1 * * *", ["hour", "'-1'"]),
        ("0 0 1- * * *", ["hour", "'1-'"]),
        ("0 0 5-1 * * *", ["hour", "'5-1'"]),
        ("0 1,,2 0 * * *", ["minute", "empty"]),
        ("0 0 0 /2 * *", ["day", "'/2'"]),
        ("0 0 1.5 * * *", ["hour", "'1.5'"]),
    ],
)
def test_out_of_range_and_garbage_fields(expression: str, fragments: list[str]) -> None:
    with pytest.raises(CronError) as excinfo:
        parse(expression)
    message = str(excinfo.value)
    assert f"'{expression}'" in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("expression", "field_name"),
    [
        ("*/0 * * * * *", "second"),
        ("0 0-30/0 * * * *", "minute"),
        ("0 0 5/0 * * *", "hour"),
        ("0 0 0 */x * *", "day"),
        ("0 0 0 * */-1 *", "month"),
        ("0 0 0 * * */", "day-of-week"),
    ],
)
def test_bad_step(expression: str, field_name: str) -> None:
    with pytest.raises(CronError, match=f"{field_name} step .* must be a positive integer"):
        parse(expression)


def test_cron_error_is_value_error() -> None:
    with pytest.raises(ValueError, match="invalid NCRONTAB"):
        parse("nonsense")


def test_naive_datetime_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware") as excinfo:
        parse("0 0 2 * * *").next_after(datetime(2026, 1, 1))  # naive on purpose
    assert not isinstance(excinfo.value, CronError)
    with pytest.raises(ValueError, match="timezone-aware"):
        parse("00:05:00").next_after(datetime(2026, 1, 1))


# --- TimeSpan ----------------------------------------------------------------------------------


def test_timespan_five_minutes() -> None:
    schedule = parse("00:05:00")
    assert schedule.interval == timedelta(minutes=5)
    assert fires("00:05:00", utc(2026, 1, 1, 12, 0, 7), 3) == [
        utc(2026, 1, 1, 12, 5, 7),
        utc(2026, 1, 1, 12, 10, 7),
        utc(2026, 1, 1, 12, 15, 7),
    ]


@pytest.mark.parametrize(
    ("expression", "interval"),
    [
        ("01:00:00", timedelta(hours=1)),
        ("00:00:30", timedelta(seconds=30)),
        ("1.00:00:00", timedelta(days=1)),
        ("2:03:04:05", timedelta(days=2, hours=3, minutes=4, seconds=5)),
        ("25:00:00", timedelta(days=25)),  # .NET reads hh >= 24 as dd:hh:mm
        ("12:30", timedelta(hours=12, minutes=30)),
    ],
)
def test_timespan_formats(expression: str, interval: timedelta) -> None:
    assert parse(expression).interval == interval
    assert parse(expression).next_after(utc(2026, 1, 1)) == utc(2026, 1, 1) + interval


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("00:00:00", "positive"),
        ("00:60:00", "minutes 60"),
        ("00:00:75", "seconds 75"),
        ("1.24:00:00", "hours 24"),
        ("ab:cd:ef", "TimeSpan"),
    ],
)
def test_invalid_timespan(expression: str, fragment: str) -> None:
    with pytest.raises(CronError, match=fragment) as excinfo:
        parse(expression)
    assert f"'{expression}'" in str(excinfo.value)


def test_cron_schedule_has_no_interval() -> None:
    assert parse("0 0 2 * * *").interval is None


def test_schedule_is_frozen_and_validates_on_construction() -> None:
    schedule = Schedule("0 0 2 * * *")
    assert schedule == parse("0 0 2 * * *")
    assert schedule.expression == "0 0 2 * * *"
    with pytest.raises(AttributeError):
        schedule.expression = "* * * * * *"  # type: ignore[misc]
    with pytest.raises(CronError):
        Schedule("0 0 99 * * *")


def test_rare_schedules_resolve_quickly() -> None:
    # a December 31st that is a Saturday: seven years ahead, found day by day
    assert parse("59 59 23 31 Dec Sat").next_after(utc(2026, 1, 1)) == utc(2033, 12, 31, 23, 59, 59)
    assert parse("59 59 23 31 Dec *").next_after(utc(2026, 12, 31, 23, 59, 59)) == utc(
        2027, 12, 31, 23, 59, 59
    )
    # the whole multi-year search for an impossible date is day-by-day, not second-by-second
    started = time.perf_counter()
    for _ in range(20):
        with pytest.raises(CronError):
            parse("* * * 31 2 *").next_after(utc(2026, 1, 1))
    assert time.perf_counter() - started < 2.0
