"""Tests for the deterministic demo-business generator (a Vietnamese retail chain)."""

from __future__ import annotations

import calendar
import csv
import dataclasses
import re
import statistics
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.demo.generator import (
    CUSTOMERS_CSV_HEADER,
    TRANSACTIONS_CSV_HEADER,
    CustomerRow,
    DemoData,
    LineRow,
    TransactionRow,
    _transaction_factory,
    generate,
    write_csv,
)

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW_START = datetime(2024, 11, 1, tzinfo=UTC)
ENROL_HORIZON = datetime(2023, 11, 1, tzinfo=UTC)
# Vietnam has used UTC+7 without DST since 1975; a fixed offset avoids needing tzdata.
LOCAL = timezone(timedelta(hours=7))
PHONE_RE = re.compile(r"^0(3[2-9]|5[689]|7[06-9]|8[1-9]|9\d)\d{7}$")


@pytest.fixture(scope="module")
def data() -> DemoData:
    return generate()


@pytest.fixture(scope="module")
def purchases(data: DemoData) -> list[TransactionRow]:
    return [t for t in data.transactions if t.type == "purchase"]


@pytest.fixture(scope="module")
def returns(data: DemoData) -> list[TransactionRow]:
    return [t for t in data.transactions if t.type == "return"]


def _kinds(data: DemoData) -> dict[str, str]:
    return {s.id: s.kind for s in data.stores}


def _months_before(when: datetime, months: int) -> datetime:
    year, month0 = divmod(when.year * 12 + when.month - 1 - months, 12)
    day = min(when.day, calendar.monthrange(year, month0 + 1)[1])
    return when.replace(year=year, month=month0 + 1, day=day)


def _local_date(t: TransactionRow) -> date:
    return t.occurred_at.astimezone(LOCAL).date()


def _local_hour(t: TransactionRow) -> int:
    return t.occurred_at.astimezone(LOCAL).hour


def _quantities(lines: tuple[LineRow, ...]) -> Counter[tuple[str, int]]:
    counts: Counter[tuple[str, int]] = Counter()
    for line in lines:
        counts[line.sku, line.unit_price] += line.quantity
    return counts


def _line_sum(lines: tuple[LineRow, ...]) -> int:
    return sum(line.quantity * line.unit_price for line in lines)


def _check_invariants(data: DemoData, as_of: datetime, window_start: datetime) -> None:
    """Structural rules that must hold for any arguments."""
    kinds = _kinds(data)
    phones = [c.phone for c in data.customers]
    assert len(set(phones)) == len(phones)
    enrolled = {c.phone: c.enrolled_at for c in data.customers}
    by_id: dict[str, tuple[int, TransactionRow]] = {}
    returned: set[str] = set()
    previous = window_start
    for index, t in enumerate(data.transactions):
        assert t.occurred_at.utcoffset() == timedelta(0)
        assert window_start <= t.occurred_at < as_of
        assert t.occurred_at >= previous, "transactions must be sorted by time"
        previous = t.occurred_at
        assert t.store_id in kinds
        assert t.currency == "VND"
        assert t.amount == _line_sum(t.lines) > 0
        assert t.transaction_id not in by_id
        if t.customer_phone is not None:
            assert t.occurred_at > enrolled[t.customer_phone], "members buy only after enrolling"
        if kinds[t.store_id] != "online":
            assert 8 <= _local_hour(t) < 22, "shops are open 08:00-22:00"
        if t.type == "purchase":
            assert t.original_transaction_id is None
            assert 1 <= len(t.lines) <= 5
            assert len({line.sku for line in t.lines}) == len(t.lines), "one line per SKU"
            assert re.fullmatch(rf"{t.store_id}-\d{{6,}}", t.transaction_id)
        else:
            assert t.type == "return"
            assert re.fullmatch(rf"{t.store_id}-R\d{{6,}}", t.transaction_id)
            assert t.original_transaction_id is not None
            assert t.original_transaction_id not in returned, "at most one return per purchase"
            returned.add(t.original_transaction_id)
            original_index, original = by_id[t.original_transaction_id]
            assert original_index < index
            assert original.type == "purchase"
            assert original.store_id == t.store_id
            assert original.customer_phone == t.customer_phone is not None
            assert 1 <= (_local_date(t) - _local_date(original)).days <= 30
            bought = _quantities(original.lines)
            brought_back = _quantities(t.lines)
            assert not brought_back - bought, "never return more than was bought"
            assert 0 < t.amount <= original.amount
        by_id[t.transaction_id] = (index, t)


# --- determinism and API -------------------------------------------------------------------------


def test_same_seed_gives_identical_output(data: DemoData) -> None:
    assert generate() == data
    small = generate(seed=7, customers=300, target_purchases=6000)
    assert generate(seed=7, customers=300, target_purchases=6000) == small
    other = generate(seed=8, customers=300, target_purchases=6000)
    assert other.customers != small.customers
    assert other.transactions != small.transactions


def test_rows_are_frozen(data: DemoData) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.transactions[0].amount = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.customers[0].phone = "0912345678"  # type: ignore[misc]


def test_fast_transaction_factory_matches_the_constructor() -> None:
    line = LineRow(sku="TTN-0001", category="Thời trang nữ", quantity=2, unit_price=199_000)
    args = ("HN01-000001", "HN01", "0912345678", AS_OF, 398_000, "VND", "purchase", None, (line,))
    fast = _transaction_factory()(*args)
    assert fast == TransactionRow(*args)
    assert type(fast) is TransactionRow
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.amount = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [{"customers": 0}, {"months": 0}, {"target_purchases": -1}],
)
def test_rejects_impossible_arguments(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        generate(**kwargs)  # type: ignore[arg-type]


# --- volumes and structure -----------------------------------------------------------------------


def test_stores(data: DemoData) -> None:
    assert len(data.stores) >= 6
    assert len({s.id for s in data.stores}) == len(data.stores)
    kinds = Counter(s.kind for s in data.stores)
    assert kinds["retail"] >= 3 and kinds["outlet"] >= 1 and kinds["online"] >= 1
    assert set(kinds) <= {"retail", "outlet", "online", "call_centre"}
    retail_cities = {s.city for s in data.stores if s.kind == "retail"}
    assert {"Hà Nội", "TP. Hồ Chí Minh", "Đà Nẵng"} <= retail_cities
    assert all(s.name.strip() for s in data.stores)


def test_default_volumes(
    data: DemoData, purchases: list[TransactionRow], returns: list[TransactionRow]
) -> None:
    assert len(data.customers) >= 3000
    assert len(purchases) >= 100_000
    assert abs(len(purchases) - 105_000) <= 0.05 * 105_000
    assert returns


def test_default_data_satisfies_all_invariants(data: DemoData) -> None:
    _check_invariants(data, AS_OF, WINDOW_START)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    customers=st.integers(min_value=1, max_value=250),
    target=st.integers(min_value=0, max_value=4000),
    months=st.integers(min_value=1, max_value=36),
    as_of=st.datetimes(datetime(2019, 1, 1), datetime(2034, 12, 31), timezones=st.just(UTC)),
)
def test_invariants_hold_for_any_arguments(
    seed: int, customers: int, target: int, months: int, as_of: datetime
) -> None:
    data = generate(seed=seed, customers=customers, target_purchases=target, months=months, as_of=as_of)
    assert len(data.customers) == customers
    n_purchases = sum(t.type == "purchase" for t in data.transactions)
    assert n_purchases == target
    _check_invariants(data, as_of, _months_before(as_of, months))
    for c in data.customers:
        assert c.enrolled_at < as_of


def test_window_respects_a_custom_as_of_and_months() -> None:
    as_of = datetime(2025, 3, 15, 12, 30, tzinfo=UTC)
    data = generate(customers=200, target_purchases=3000, months=6, as_of=as_of)
    _check_invariants(data, as_of, datetime(2024, 9, 15, 12, 30, tzinfo=UTC))
    naive = generate(customers=200, target_purchases=3000, months=6, as_of=as_of.replace(tzinfo=None))
    assert naive == data, "a naive as_of is read as UTC"


def test_scales_to_other_sizes() -> None:
    data = generate(customers=1000, target_purchases=20_000)
    assert len(data.customers) == 1000
    n_purchases = sum(t.type == "purchase" for t in data.transactions)
    assert abs(n_purchases - 20_000) <= 0.05 * 20_000
    _check_invariants(data, AS_OF, WINDOW_START)


# --- customers -----------------------------------------------------------------------------------


def test_phones_are_unique_valid_vietnamese_mobiles(data: DemoData) -> None:
    phones = [c.phone for c in data.customers]
    assert len(set(phones)) == len(phones)
    for phone in phones:
        assert PHONE_RE.fullmatch(phone), phone
        number = phonenumbers.parse(phone, "VN")
        assert phonenumbers.is_valid_number(number), phone
        assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE, phone


def test_emails_and_cards(data: DemoData) -> None:
    n = len(data.customers)
    emails = [c.email for c in data.customers if c.email is not None]
    assert len(set(emails)) == len(emails)
    assert 0.40 <= len(emails) / n <= 0.50
    for email in emails:
        assert re.fullmatch(r"[a-z0-9.]+@[a-z0-9.-]+\.[a-z]+", email), email
    cards = [c.card for c in data.customers if c.card is not None]
    assert len(set(cards)) == len(cards)
    assert 0.55 <= len(cards) / n <= 0.65
    assert all(re.fullmatch(r"LC\d{10}", card) for card in cards)


def test_names_are_vietnamese_and_match_gender(data: DemoData) -> None:
    customers = data.customers
    surnames = Counter(c.name.split()[0] for c in customers)
    assert 0.33 <= surnames["Nguyễn"] / len(customers) <= 0.43
    assert {"Trần", "Lê", "Phạm"} <= {name for name, _ in surnames.most_common(6)}
    for c in customers:
        parts = c.name.split()
        assert len(parts) == 3
        if c.gender == "female":
            assert parts[1] != "Văn"
        if c.gender == "male":
            assert parts[1] != "Thị"
    assert any("Thị" in c.name for c in customers) and any("Văn" in c.name for c in customers)


def test_demographics(data: DemoData) -> None:
    customers = data.customers
    n = len(customers)
    genders = Counter(c.gender for c in customers)
    assert set(genders) <= {"female", "male", "other", None}
    assert 0.55 <= genders["female"] / n <= 0.65
    assert 0 < genders["other"] / n < 0.03
    assert 0.02 < genders[None] / n < 0.15
    birthdays = [c.birthday for c in customers if c.birthday is not None]
    assert 0.85 <= len(birthdays) / n <= 0.95
    for birthday in birthdays:
        age = (AS_OF.date() - birthday).days / 365.25
        assert 18 <= age <= 71
    cities = Counter(c.city for c in customers)
    assert {"Hà Nội", "TP. Hồ Chí Minh", "Đà Nẵng", "Hải Phòng", "Cần Thơ"} <= set(cities)


def test_contact_preferences_are_consistent(data: DemoData) -> None:
    channels = Counter(c.preferred_channel for c in data.customers)
    assert set(channels) == {"sms", "email", "zalo", "phone", None}
    for c in data.customers:
        if c.consent_email or c.preferred_channel == "email":
            assert c.email is not None
        if c.preferred_channel is not None:
            assert getattr(c, f"consent_{c.preferred_channel}")


def test_enrolment(data: DemoData) -> None:
    store_ids = {s.id for s in data.stores}
    enrolled = [c.enrolled_at for c in data.customers]
    assert all(e.utcoffset() == timedelta(0) for e in enrolled)
    assert all(ENROL_HORIZON <= e < AS_OF for e in enrolled)
    before_window = sum(e < WINDOW_START for e in enrolled) / len(enrolled)
    assert 0.15 <= before_window <= 0.6
    assert {c.enrolled_store_id for c in data.customers} <= store_ids


# --- behaviour -----------------------------------------------------------------------------------


def test_channel_mix(data: DemoData, purchases: list[TransactionRow]) -> None:
    kinds = _kinds(data)
    mix = Counter(kinds[t.store_id] for t in purchases)
    assert 0.20 <= mix["online"] / len(purchases) <= 0.25
    assert 0.10 <= mix["outlet"] / len(purchases) <= 0.15
    anonymous = sum(t.customer_phone is None for t in purchases) / len(purchases)
    assert 0.13 <= anonymous <= 0.17


def test_basket_amounts(data: DemoData, purchases: list[TransactionRow]) -> None:
    kinds = _kinds(data)
    amounts = [t.amount for t in purchases]
    assert min(amounts) >= 50_000
    assert max(amounts) >= 3_000_000
    assert 300_000 <= statistics.median(amounts) <= 1_000_000
    assert sum(150_000 <= a <= 1_500_000 for a in amounts) / len(amounts) >= 0.65
    assert all(line.unit_price % 1000 == 0 and line.unit_price > 0 for t in purchases for line in t.lines)
    outlet = statistics.median(t.amount for t in purchases if kinds[t.store_id] == "outlet")
    retail = statistics.median(t.amount for t in purchases if kinds[t.store_id] == "retail")
    assert outlet < 0.85 * retail


def test_returns(purchases: list[TransactionRow], returns: list[TransactionRow]) -> None:
    members = sum(t.customer_phone is not None for t in purchases)
    assert 0.02 <= len(returns) / members <= 0.04
    by_id = {t.transaction_id: t for t in purchases}
    full = sum(r.lines == by_id[r.original_transaction_id or ""].lines for r in returns)
    assert 0.35 <= full / len(returns) <= 0.65, "about half full, half partial"


def test_revenue_is_concentrated(data: DemoData) -> None:
    spend: Counter[str] = Counter()
    for t in data.transactions:
        if t.customer_phone is not None:
            spend[t.customer_phone] += t.amount if t.type == "purchase" else -t.amount
    ranked = sorted((spend[c.phone] for c in data.customers), reverse=True)
    top = sum(ranked[: len(ranked) // 5]) / sum(ranked)
    assert 0.60 <= top <= 0.80


def test_segments_show_in_behaviour(data: DemoData, purchases: list[TransactionRow]) -> None:
    counts = Counter(t.customer_phone for t in purchases if t.customer_phone is not None)
    last: dict[str, datetime] = {}
    for t in purchases:
        if t.customer_phone is not None:
            last[t.customer_phone] = t.occurred_at
    n = len(data.customers)
    # Lapsed customers were active but have not bought for 6-15 months.
    lapsed = sum(timedelta(days=183) <= AS_OF - when <= timedelta(days=470) for when in last.values())
    assert 0.15 <= lapsed / n <= 0.35
    # Loyal customers buy at least twice a month on average over the two years.
    frequent = sum(count >= 48 for count in counts.values())
    assert 0.08 <= frequent / n <= 0.25
    # Occasional customers buy a few times a year.
    rare = sum(counts.get(c.phone, 0) <= 8 for c in data.customers)
    assert 0.20 <= rare / n <= 0.50


def _daily(purchases: list[TransactionRow]) -> Counter[date]:
    return Counter(_local_date(t) for t in purchases)


def _mean_per_day(daily: Counter[date], first: date, end: date) -> float:
    days = (end - first).days
    return sum(daily[first + timedelta(days=i)] for i in range(days)) / days


def test_seasonality(purchases: list[TransactionRow]) -> None:
    daily = _daily(purchases)
    # Tết 2026 falls on 17 February: the weeks before it are the busiest of the year.
    tet_run_up = _mean_per_day(daily, date(2026, 1, 24), date(2026, 2, 17))
    march = _mean_per_day(daily, date(2026, 3, 1), date(2026, 4, 1))
    assert tet_run_up >= 1.5 * march
    assert _mean_per_day(daily, date(2026, 2, 17), date(2026, 2, 21)) < 0.6 * march, "shops close for Tết"
    year_end = _mean_per_day(daily, date(2025, 11, 1), date(2026, 1, 1))
    autumn = _mean_per_day(daily, date(2025, 9, 1), date(2025, 11, 1))
    assert 1.2 * autumn <= year_end <= 1.7 * autumn
    summer = _mean_per_day(daily, date(2026, 6, 1), date(2026, 9, 1))
    spring = _mean_per_day(daily, date(2026, 4, 1), date(2026, 6, 1))
    assert summer < 0.92 * spring


def test_weekends_and_hours(data: DemoData, purchases: list[TransactionRow]) -> None:
    daily = _daily(purchases)
    weekend = [v for d, v in daily.items() if d.weekday() >= 5]
    weekday = [v for d, v in daily.items() if d.weekday() <= 3]
    assert statistics.mean(weekend) >= 1.2 * statistics.mean(weekday)
    kinds = _kinds(data)
    shop_hours = Counter(_local_hour(t) for t in purchases if kinds[t.store_id] != "online")
    assert shop_hours[12] > shop_hours[15] and shop_hours[12] > shop_hours[9], "lunch peak"
    assert shop_hours[19] == max(shop_hours.values()), "evening peak"
    online_hours = Counter(_local_hour(t) for t in purchases if kinds[t.store_id] == "online")
    assert set(online_hours) == set(range(24)), "the web shop sells round the clock"


# --- CSV -----------------------------------------------------------------------------------------


def test_write_csv_roundtrip(data: DemoData, tmp_path: Path) -> None:
    customers_path, transactions_path = write_csv(data, tmp_path / "out")
    assert customers_path == tmp_path / "out" / "customers.csv"
    assert transactions_path == tmp_path / "out" / "transactions.csv"

    with customers_path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        assert tuple(next(reader)) == CUSTOMERS_CSV_HEADER
        customer_rows = list(reader)
    assert CUSTOMERS_CSV_HEADER == (
        "phone", "email", "card", "name", "birthday", "gender", "city", "preferred_channel",
        "consent_email", "consent_sms", "consent_zalo", "consent_phone", "store_id", "enrolled_at",
    )  # fmt: skip
    assert len(customer_rows) == len(data.customers)
    for row, customer in zip(customer_rows, data.customers, strict=True):
        assert _customer_from_csv(row) == customer

    with transactions_path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = tuple(next(reader))
        transaction_rows = list(reader)
    assert header == TRANSACTIONS_CSV_HEADER == (
        "transaction_id", "store_id", "customer", "occurred_at", "amount", "currency", "type",
        "original_transaction_id",
    )  # fmt: skip
    assert len(transaction_rows) == len(data.transactions)
    for row, t in zip(transaction_rows, data.transactions, strict=True):
        assert row == [
            t.transaction_id, t.store_id, t.customer_phone or "", t.occurred_at.isoformat(), str(t.amount),
            "VND", t.type, t.original_transaction_id or "",
        ]  # fmt: skip
        assert datetime.fromisoformat(row[3]) == t.occurred_at
        assert row[3].endswith("+00:00")


def _customer_from_csv(row: list[str]) -> CustomerRow:
    booleans = {"true": True, "false": False}
    return CustomerRow(
        phone=row[0],
        email=row[1] or None,
        card=row[2] or None,
        name=row[3],
        birthday=date.fromisoformat(row[4]) if row[4] else None,
        gender=row[5] or None,
        city=row[6],
        preferred_channel=row[7] or None,
        consent_email=booleans[row[8]],
        consent_sms=booleans[row[9]],
        consent_zalo=booleans[row[10]],
        consent_phone=booleans[row[11]],
        enrolled_store_id=row[12],
        enrolled_at=datetime.fromisoformat(row[13]),
    )
