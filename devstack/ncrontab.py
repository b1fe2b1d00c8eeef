"""Parser and scheduler for Azure Functions timer-trigger schedules (six-field NCRONTAB and TimeSpan).

The local dev stack has no Functions host to fire timers, so it needs to compute fire times itself.
This module is pure and dependency-free so the same logic can be unit-tested without a clock.

Cron format: ``{second} {minute} {hour} {day} {month} {day-of-week}``, e.g. ``0 30 9 * * 1-5``.
Each field accepts ``*``, values, comma lists, ranges ``a-b``, and steps ``*/n``, ``a-b/n``, ``a/n``.
Months accept ``Jan``..``Dec`` and days of week ``Sun``..``Sat`` (case-insensitive, full names too);
day-of-week is 0-6 with 0 = Sunday (NCrontab's range: `7` is refused, as the host refuses it).
A date matches when BOTH the day and the day-of-week match, as NCrontab decides it (classic cron
ORs them when both are restricted: `0 0 0 13 * Fri` is only a Friday the 13th here, as in Azure).
The remaining known differences from NCrontab are in docs/decisions.md (37).

TimeSpan format (an interval, fired relative to the previous fire time or start): ``hh:mm:ss``,
``hh:mm``, ``d.hh:mm:ss`` or ``d:hh:mm:ss``. Like .NET ``TimeSpan.Parse`` (which Azure uses), a
three-part value whose first part is 24 or more is read as ``dd:hh:mm``.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

__all__ = ["CronError", "Schedule", "parse"]

# Feb 29 can be 8 years away (e.g. 2096-03-01 -> 2104-02-29, 2100 is not a leap year), so a
# shorter bound would wrongly reject satisfiable schedules; anything beyond this never fires.
_SEARCH_YEARS = 8

_MONTH_NAMES = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_MONTH_NAMES |= {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
# calendar.day_abbr starts at Monday; cron counts from Sunday = 0.
_DOW_NAMES = {name.lower(): (i + 1) % 7 for i, name in enumerate(calendar.day_abbr)}
_DOW_NAMES |= {name.lower(): (i + 1) % 7 for i, name in enumerate(calendar.day_name)}

_TIMESPAN_RE = re.compile(r"^(?:(\d+)\.)?(\d+):(\d+)(?::(\d+))?(?::(\d+))?$")


class CronError(ValueError):
    """An NCRONTAB expression that cannot be parsed or can never fire.

    A ValueError subclass so callers validating config can catch either; the message always quotes
    the whole expression and names the offending field and value, because a bad schedule is usually
    found in app settings far from the code that reads it.
    """


@dataclass(frozen=True)
class _Field:
    """Static description of one cron field: its name, legal range and accepted names."""

    name: str
    lo: int
    hi: int
    star_hi: int  # upper bound for '*' and 'a/n'
    names: dict[str, int] | None = None


_FIELDS = (
    _Field("second", 0, 59, 59),
    _Field("minute", 0, 59, 59),
    _Field("hour", 0, 23, 23),
    _Field("day", 1, 31, 31),
    _Field("month", 1, 12, 12, _MONTH_NAMES),
    _Field("day-of-week", 0, 6, 6, _DOW_NAMES),
)


@dataclass(frozen=True)
class _CronSpec:
    """Compiled cron fields: sorted tuples for time-of-day search, sets for date matching."""

    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]


def _fail(expression: str, detail: str) -> CronError:
    return CronError(f"invalid NCRONTAB {expression!r}: {detail}")


def _parse_value(spec: _Field, text: str, expression: str) -> int:
    if text.isascii() and text.isdigit():
        value = int(text)
    elif spec.names is not None and text.lower() in spec.names:
        return spec.names[text.lower()]
    else:
        kind = "a number or name" if spec.names else "a number"
        raise _fail(expression, f"{spec.name} value {text!r} is not {kind}")
    if not spec.lo <= value <= spec.hi:
        raise _fail(expression, f"{spec.name} {value} is out of range {spec.lo}-{spec.hi}")
    return value


def _parse_field(spec: _Field, text: str, expression: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise _fail(expression, f"{spec.name} {text!r} has an empty list item")
        base, has_step, step_text = part.partition("/")
        step = 1
        if has_step:
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
                raise _fail(expression, f"{spec.name} step {step_text!r} must be a positive integer")
            step = int(step_text)
        if base == "*":
            lo, hi = spec.lo, spec.star_hi
        elif "-" in base:
            first, _, last = base.partition("-")
            if not first or not last:
                raise _fail(expression, f"{spec.name} range {base!r} is malformed")
            lo = _parse_value(spec, first, expression)
            hi = _parse_value(spec, last, expression)
            if lo > hi:
                raise _fail(expression, f"{spec.name} range {base!r} runs backwards ({lo} > {hi})")
        elif base:
            lo = _parse_value(spec, base, expression)
            hi = max(lo, spec.star_hi) if has_step else lo
        else:
            raise _fail(expression, f"{spec.name} {part!r} has nothing before '/'")
        values.update(range(lo, hi + 1, step))
    return frozenset(values)


def _parse_cron(expression: str, fields: list[str]) -> _CronSpec:
    if len(fields) != len(_FIELDS):
        raise _fail(
            expression,
            f"expected 6 fields ({' '.join('{' + f.name + '}' for f in _FIELDS)}), got {len(fields)}",
        )
    sec, mins, hrs, days, months, dows = (
        _parse_field(spec, text, expression) for spec, text in zip(_FIELDS, fields, strict=True)
    )
    return _CronSpec(
        seconds=tuple(sorted(sec)),
        minutes=tuple(sorted(mins)),
        hours=tuple(sorted(hrs)),
        days=days,
        months=months,
        weekdays=dows,
    )


def _parse_timespan(expression: str, text: str) -> timedelta:
    match = _TIMESPAN_RE.match(text)
    if match is None:
        raise _fail(expression, f"TimeSpan {text!r} is not hh:mm:ss, hh:mm, d.hh:mm:ss or d:hh:mm:ss")
    dotted_days, a, b, c, d = match.groups()
    nums = [int(x) for x in (a, b, c, d) if x is not None]
    if dotted_days is not None and len(nums) == 4:
        raise _fail(expression, f"TimeSpan {text!r} gives days twice")
    days = int(dotted_days) if dotted_days is not None else 0
    if len(nums) == 4:  # d:hh:mm:ss
        days, hours, minutes, seconds = nums
    elif len(nums) == 3 and dotted_days is None and nums[0] >= 24:  # .NET quirk: dd:hh:mm
        days, hours, minutes = nums
        seconds = 0
    elif len(nums) == 3:
        hours, minutes, seconds = nums
    else:
        hours, minutes = nums
        seconds = 0
    for name, value, hi in (("hours", hours, 23), ("minutes", minutes, 59), ("seconds", seconds, 59)):
        if value > hi:
            raise _fail(expression, f"TimeSpan {name} {value} is out of range 0-{hi}")
    interval = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if interval <= timedelta(0):
        raise _fail(expression, f"TimeSpan {text!r} must be a positive interval")
    return interval


def _compile(expression: str) -> _CronSpec | timedelta:
    if not isinstance(expression, str):
        raise CronError(f"invalid NCRONTAB {expression!r}: expected a string")
    fields = expression.split()
    if len(fields) == 1 and ":" in fields[0]:
        return _parse_timespan(expression, fields[0])
    return _parse_cron(expression, fields)


def _first_time_at_or_after(spec: _CronSpec, h: int, m: int, s: int) -> tuple[int, int, int] | None:
    """Earliest (hour, minute, second) in the schedule at or after h:m:s on the same day, if any."""
    hours, minutes, seconds = spec.hours, spec.minutes, spec.seconds
    i = bisect_left(hours, h)
    if i < len(hours) and hours[i] == h:
        j = bisect_left(minutes, m)
        if j < len(minutes) and minutes[j] == m:
            k = bisect_left(seconds, s)
            if k < len(seconds):
                return h, m, seconds[k]
            j += 1
        if j < len(minutes):
            return h, minutes[j], seconds[0]
        i += 1
    if i < len(hours):
        return hours[i], minutes[0], seconds[0]
    return None


def _date_matches(spec: _CronSpec, day: date) -> bool:
    dom_ok = day.day in spec.days
    dow_ok = (day.weekday() + 1) % 7 in spec.weekdays
    return dom_ok and dow_ok  # NCrontab: both; an unrestricted field holds every value


@dataclass(frozen=True)
class Schedule:
    """A validated timer schedule; construct via `parse` (or directly, which validates the same way)."""

    expression: str
    _spec: _CronSpec | timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_spec", _compile(self.expression))

    @property
    def interval(self) -> timedelta | None:
        """The fixed interval for TimeSpan schedules (None for cron), so callers can tell them apart."""
        return self._spec if isinstance(self._spec, timedelta) else None

    def next_after(self, moment: datetime) -> datetime:
        """First fire time strictly after `moment`, in UTC.

        Naive datetimes are rejected because guessing a timezone silently shifts every fire time.
        For TimeSpan schedules `moment` is the previous fire time (or start), so this is moment + interval.
        Raises CronError when a cron schedule can never fire (e.g. Feb 31).
        """
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"next_after needs a timezone-aware datetime, got naive {moment.isoformat()}")
        moment = moment.astimezone(UTC)
        if isinstance(self._spec, timedelta):
            return moment + self._spec
        return self._next_cron(self._spec, moment)

    def _next_cron(self, spec: _CronSpec, moment: datetime) -> datetime:
        start = moment.replace(microsecond=0) + timedelta(seconds=1)
        start_date = start.date()
        year, month = start.year, start.month
        last_year = min(start.year + _SEARCH_YEARS, datetime.max.year)
        while year <= last_year:
            if month in spec.months:
                first_day = start.day if (year, month) == (start.year, start.month) else 1
                for dom in range(first_day, calendar.monthrange(year, month)[1] + 1):
                    day = date(year, month, dom)
                    if not _date_matches(spec, day):
                        continue
                    if day == start_date:
                        hms = _first_time_at_or_after(spec, start.hour, start.minute, start.second)
                        if hms is None:
                            continue
                    else:
                        hms = (spec.hours[0], spec.minutes[0], spec.seconds[0])
                    return datetime(year, month, dom, *hms, tzinfo=UTC)
            month += 1
            if month > 12:
                year, month = year + 1, 1
        raise _fail(
            self.expression,
            f"schedule never fires: no matching day/month/day-of-week within {_SEARCH_YEARS} years "
            f"after {moment.isoformat()}",
        )


def parse(expression: str) -> Schedule:
    """Validate `expression` eagerly so a bad schedule fails at startup rather than at first fire."""
    return Schedule(expression)
