"""The SLA clock: plain hours, business hours across midnight, weekends, time zones and DST."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from loyalty.errors import ValidationFailed
from loyalty.service.sla import DEFAULT_HOURS, BusinessHours, due_at

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
NY = ZoneInfo("America/New_York")


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[arg-type,misc]


class TestWallClock:
    def test_24_hours_cross_midnight_and_the_day(self) -> None:
        created = local(HCM, 2026, 11, 23, 22, 30)
        assert due_at(created, 24, None, HCM) == local(HCM, 2026, 11, 24, 22, 30)

    def test_is_elapsed_time_even_over_a_dst_change(self) -> None:
        created = local(NY, 2026, 3, 7, 12, 0)  # DST starts 8 March 02:00
        assert due_at(created, 24, None, NY) == datetime(2026, 3, 8, 17, 0, tzinfo=UTC)  # 13:00 EDT

    def test_result_is_utc(self) -> None:
        assert due_at(local(HCM, 2026, 1, 1, 7, 0), 1, None, HCM) == datetime(2026, 1, 1, 1, 0, tzinfo=UTC)

    def test_non_positive_target_is_refused(self) -> None:
        with pytest.raises(ValidationFailed):
            due_at(local(HCM, 2026, 1, 1), 0, None, HCM)


class TestBusinessHours:
    """08:00-17:00 Monday to Friday: nine business hours a day."""

    def test_within_the_day(self) -> None:
        created = local(HCM, 2026, 11, 23, 9, 0)  # Monday
        assert due_at(created, 4, DEFAULT_HOURS, HCM) == local(HCM, 2026, 11, 23, 13, 0)

    def test_carries_over_midnight_to_the_next_morning(self) -> None:
        created = local(HCM, 2026, 11, 23, 16, 0)  # Monday, one hour left today
        assert due_at(created, 3, DEFAULT_HOURS, HCM) == local(HCM, 2026, 11, 24, 10, 0)

    def test_after_closing_starts_next_morning(self) -> None:
        created = local(HCM, 2026, 11, 23, 21, 45)
        assert due_at(created, 2, DEFAULT_HOURS, HCM) == local(HCM, 2026, 11, 24, 10, 0)

    def test_before_opening_starts_at_opening(self) -> None:
        created = local(HCM, 2026, 11, 24, 6, 0)
        assert due_at(created, 2, DEFAULT_HOURS, HCM) == local(HCM, 2026, 11, 24, 10, 0)

    def test_friday_afternoon_skips_the_weekend(self) -> None:
        created = local(HCM, 2026, 11, 27, 16, 0)  # Friday: 1 h Fri + 9 Mon + 9 Tue + 5 Wed
        assert due_at(created, 24, DEFAULT_HOURS, HCM) == local(HCM, 2026, 12, 2, 13, 0)

    def test_saturday_counts_from_monday_opening(self) -> None:
        created = local(HCM, 2026, 11, 28, 11, 0)
        assert due_at(created, 9, DEFAULT_HOURS, HCM) == local(HCM, 2026, 11, 30, 17, 0)

    def test_exactly_at_closing_is_due_then(self) -> None:
        created = local(HCM, 2026, 11, 23, 8, 0)
        assert due_at(created, 9, DEFAULT_HOURS, HCM) == local(HCM, 2026, 11, 23, 17, 0)

    def test_the_store_zone_decides_the_business_day(self) -> None:
        # 23:30 UTC Sunday is 06:30 Monday in Ho Chi Minh City but 18:30 Sunday in New York.
        created = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
        assert due_at(created, 1, DEFAULT_HOURS, HCM) == local(HCM, 2026, 11, 23, 9, 0)
        assert due_at(created, 1, DEFAULT_HOURS, NY) == local(NY, 2026, 11, 23, 9, 0)

    def test_a_dst_day_has_its_real_length(self) -> None:
        # A service open around the clock on Sunday 8 March 2026 in New York: that day has 23 hours.
        always = BusinessHours(time(0), None, frozenset({7}))
        created = local(NY, 2026, 3, 8, 0, 0)
        assert due_at(created, 23, always, NY) == local(NY, 2026, 3, 9, 0, 0)
        assert due_at(created, 24, always, NY) == local(NY, 2026, 3, 15, 1, 0)  # next Sunday

    def test_seven_day_store_hours(self) -> None:
        hours = BusinessHours.from_minutes(9 * 60, 21 * 60, "1234567")
        created = local(HCM, 2026, 11, 28, 20, 0)  # Saturday
        assert due_at(created, 24, hours, HCM) == local(HCM, 2026, 11, 30, 20, 0)

    def test_no_working_day_is_refused(self) -> None:
        with pytest.raises(ValidationFailed):
            due_at(local(HCM, 2026, 1, 1), 1, BusinessHours(time(8), time(17), frozenset()), HCM)
