"""loyalty.bulk's SQLite datetime text: what the ORM itself would store, whatever the zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from loyalty.bulk import _converted_column, sqlite_datetime

_ORM_TEXT = DateTime().dialect_impl(sqlite.dialect()).bind_processor(sqlite.dialect())
_ZONES = st.sampled_from([UTC, ZoneInfo("UTC"), ZoneInfo("Asia/Ho_Chi_Minh"), ZoneInfo("Asia/Kathmandu"),
                          ZoneInfo("America/St_Johns")])


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30)), _ZONES)
def test_the_text_is_the_orms_for_the_same_moment_in_utc(moment: datetime, zone: ZoneInfo) -> None:
    aware = moment.replace(tzinfo=zone)
    assert _ORM_TEXT is not None
    assert sqlite_datetime(aware) == _ORM_TEXT(aware.astimezone(UTC).replace(tzinfo=None))


def test_naive_datetimes_are_refused_and_none_stays_none() -> None:
    with pytest.raises(ValueError, match="naive"):
        sqlite_datetime(datetime(2026, 1, 1))
    assert sqlite_datetime(None) is None


def test_a_column_converts_each_value_and_repeats_reuse_the_text() -> None:
    now = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
    equal_but_another_object = now + timedelta(0)
    values = [now, now, None, equal_but_another_object, now + timedelta(hours=1), now]
    assert _converted_column(values, sqlite_datetime) == [sqlite_datetime(v) for v in values]
    calls: list[object] = []
    _converted_column(values, lambda v: calls.append(v))
    assert len(calls) == 5  # the second `now` in a row is the same object: converted once
