"""Time helpers: UTC everywhere, business dates in the program's time zone in one place."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Aware datetimes are converted; naive ones are taken as UTC (SQLite hands them back naive)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def business_date(moment: datetime, tz: ZoneInfo) -> date:
    # An aware moment converts straight to the zone; a naive one is UTC (as_utc).
    return (moment if moment.tzinfo is not None else as_utc(moment)).astimezone(tz).date()


def start_of_business_day(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the end of a shorter month."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def days_later(moment: datetime, days: int) -> datetime:
    return moment + timedelta(days=days)
