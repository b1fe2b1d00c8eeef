"""Helpers of the NCRONTAB tests: UTC datetimes and the next fire times of an expression."""

from __future__ import annotations

from datetime import UTC, datetime

from devstack.ncrontab import parse


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(expression: str, start: datetime, count: int) -> list[datetime]:
    schedule = parse(expression)
    out: list[datetime] = []
    moment = start
    for _ in range(count):
        moment = schedule.next_after(moment)
        out.append(moment)
    return out
