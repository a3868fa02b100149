"""The SLA clock: when a response is due, in wall-clock hours or in a store's business hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.config import get_settings
from loyalty.errors import ValidationFailed
from loyalty.models.service import SlaPolicy, StoreHours

# First response and resolution targets in hours. The articles' promise is an answer within
# 24 hours; urgent and high complaints get less, low ones more.
DEFAULT_SLA: dict[str, tuple[int, int]] = {"urgent": (4, 24), "high": (12, 48), "normal": (24, 72), "low": (48, 120)}


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Daily service hours in the store's zone, on the given ISO weekdays (1 = Monday)."""

    opens: time
    closes: time | None  # None: midnight at the end of the day
    weekdays: frozenset[int]

    @classmethod
    def from_minutes(cls, opens: int, closes: int, weekdays: str) -> BusinessHours:
        end = None if closes >= 1440 else time(closes // 60, closes % 60)
        return cls(time(opens // 60, opens % 60), end, frozenset(int(d) for d in weekdays))


DEFAULT_HOURS = BusinessHours(time(8), time(17), frozenset({1, 2, 3, 4, 5}))


def _window(day: date, hours: BusinessHours, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, hours.opens, tzinfo=tz)
    end = (datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz) if hours.closes is None
           else datetime.combine(day, hours.closes, tzinfo=tz))
    return start.astimezone(UTC), end.astimezone(UTC)


def due_at(created_at: datetime, hours: float, business_hours: BusinessHours | None, tz: ZoneInfo) -> datetime:
    """The moment `hours` of clock time have passed since `created_at`.

    Without business hours that is plain elapsed time. With them only the store's open hours
    count, day by day in its own zone (so daylight-saving days have their real length): a
    complaint at 16:00 on a Friday with 24 business hours of 08:00-17:00 Monday to Friday is
    due on Wednesday at 13:00. Everything is compared in UTC.
    """
    if hours <= 0:
        raise ValidationFailed("an SLA target must be a positive number of hours")
    created = created_at.astimezone(UTC)
    remaining = timedelta(hours=hours)
    if business_hours is None:
        return created + remaining
    if not business_hours.weekdays:
        raise ValidationFailed("business hours need at least one working weekday")
    day = created.astimezone(tz).date()
    for _ in range(3660):  # ten years of calendar days is more than any target needs
        if day.isoweekday() in business_hours.weekdays:
            start, end = _window(day, business_hours, tz)
            start = max(start, created)
            if end > start:
                if remaining <= end - start:
                    return start + remaining
                remaining -= end - start
        day += timedelta(days=1)
    raise ValidationFailed("the SLA target does not fit into ten years of business hours")


def policy(session: Session, priority: str) -> tuple[int, int, bool]:
    """(first response hours, resolution hours, count business hours only) for a priority."""
    row = session.get(SlaPolicy, priority)
    if row is None:
        first, resolution = DEFAULT_SLA[priority]
        return first, resolution, False
    return row.first_response_hours, row.resolution_hours, row.business_hours


def store_clock(session: Session, store_id: str | None) -> tuple[ZoneInfo, BusinessHours]:
    row = session.scalar(select(StoreHours).where(StoreHours.store_id == store_id)) if store_id else None
    if row is None:
        return get_settings().tz, DEFAULT_HOURS
    return ZoneInfo(row.timezone), BusinessHours.from_minutes(row.opens_minute, row.closes_minute, row.weekdays)


def deadlines(session: Session, priority: str, store_id: str | None, created_at: datetime) -> tuple[datetime, datetime]:
    """(first response due, resolution due) for a new ticket."""
    first, resolution, business = policy(session, priority)
    tz, hours = store_clock(session, store_id)
    chosen = hours if business else None
    return due_at(created_at, first, chosen, tz), due_at(created_at, resolution, chosen, tz)
