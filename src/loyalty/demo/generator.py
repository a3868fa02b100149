"""Deterministic, vectorised generator of a realistic demo business: a Vietnamese retail chain."""

from __future__ import annotations

import csv
import gc
import math
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from functools import cache
from itertools import chain
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CUSTOMERS_CSV_HEADER",
    "DEFAULT_AS_OF",
    "DEFAULT_SEED",
    "TRANSACTIONS_CSV_HEADER",
    "CustomerRow",
    "DemoData",
    "LineRow",
    "StoreRow",
    "TransactionRow",
    "generate",
    "write_csv",
]

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
Bools = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class StoreRow:
    id: str
    name: str
    kind: str
    city: str


@dataclass(frozen=True, slots=True)
class CustomerRow:
    phone: str
    email: str | None
    card: str | None
    name: str
    birthday: date | None
    gender: str | None
    city: str
    preferred_channel: str | None
    consent_email: bool
    consent_sms: bool
    consent_zalo: bool
    consent_phone: bool
    enrolled_store_id: str
    enrolled_at: datetime


@dataclass(frozen=True, slots=True)
class LineRow:
    sku: str
    category: str
    quantity: int
    unit_price: int


@dataclass(frozen=True, slots=True)
class TransactionRow:
    transaction_id: str
    store_id: str
    customer_phone: str | None
    occurred_at: datetime
    amount: int
    currency: str
    type: str
    original_transaction_id: str | None
    lines: tuple[LineRow, ...]


@dataclass(frozen=True, slots=True)
class DemoData:
    stores: list[StoreRow]
    customers: list[CustomerRow]
    transactions: list[TransactionRow]


DEFAULT_SEED: Final = 20261123
DEFAULT_AS_OF: Final = datetime(2026, 11, 1, tzinfo=UTC)

CUSTOMERS_CSV_HEADER: Final = (
    "phone", "email", "card", "name", "birthday", "gender", "city", "preferred_channel",
    "consent_email", "consent_sms", "consent_zalo", "consent_phone", "store_id", "enrolled_at",
)  # fmt: skip
TRANSACTIONS_CSV_HEADER: Final = (
    "transaction_id", "store_id", "customer", "occurred_at", "amount", "currency", "type",
    "original_transaction_id",
)  # fmt: skip

_DAY: Final = 86_400
_LOCAL_OFFSET: Final = 7 * 3_600  # Asia/Ho_Chi_Minh is UTC+7 all year (no DST), so a constant suffices
_MONTH_DAYS: Final = 30.436875
_ANONYMOUS_SHARE: Final = 0.15
_RETURN_RATE: Final = 0.03
_MAX_QTY: Final = 6

# --- stores --------------------------------------------------------------------------------------

_STORES: Final = (
    StoreRow("HN01", "Cửa hàng Hoàn Kiếm", "retail", "Hà Nội"),
    StoreRow("HN02", "Cửa hàng Cầu Giấy", "retail", "Hà Nội"),
    StoreRow("HCM01", "Cửa hàng Quận 1", "retail", "TP. Hồ Chí Minh"),
    StoreRow("HCM02", "Cửa hàng Phú Nhuận", "retail", "TP. Hồ Chí Minh"),
    StoreRow("HCM03", "Cửa hàng Thủ Đức", "retail", "TP. Hồ Chí Minh"),
    StoreRow("DN01", "Cửa hàng Hải Châu", "retail", "Đà Nẵng"),
    StoreRow("OUT01", "Outlet Long Biên", "outlet", "Hà Nội"),
    StoreRow("OUT02", "Outlet Bình Tân", "outlet", "TP. Hồ Chí Minh"),
    StoreRow("WEB", "Cửa hàng trực tuyến", "online", "TP. Hồ Chí Minh"),
)
_WEB: Final = 8
_STORE_IDS: Final = np.array([s.id for s in _STORES], dtype=object)
_STORE_IS_OUTLET: Final = np.array([s.kind == "outlet" for s in _STORES])
_TYPES: Final = np.array(["purchase", "return"], dtype=object)

_NORTH, _CENTRAL, _SOUTH = 0, 1, 2
# Each region's retail stores with the share of local customers calling it their usual shop.
_REGION_RETAIL: Final[tuple[tuple[tuple[int, float], ...], ...]] = (
    ((0, 0.55), (1, 0.45)),
    ((5, 1.0),),
    ((2, 0.42), (3, 0.31), (4, 0.27)),
)
# Padded to a rectangle so "any retail store of the region" can be picked with one fancy index.
_REGION_RETAIL_PAD: Final = np.array([[0, 1, 0], [5, 5, 5], [2, 3, 4]], dtype=np.int64)
_REGION_RETAIL_N: Final = np.array([2, 1, 3], dtype=np.int64)
_REGION_OUTLET: Final = np.array([6, -1, 7], dtype=np.int64)
# Walk-in sales without a loyalty identification: mostly physical shops, a little guest checkout.
_ANON_STORE_P: Final = np.array([0.14, 0.12, 0.16, 0.12, 0.11, 0.08, 0.09, 0.11, 0.07])

# --- customers -----------------------------------------------------------------------------------

# (name, share of customers, region, has one of our shops)
_CITIES: Final = (
    ("Hà Nội", 0.32, _NORTH, True),
    ("TP. Hồ Chí Minh", 0.36, _SOUTH, True),
    ("Đà Nẵng", 0.09, _CENTRAL, True),
    ("Hải Phòng", 0.05, _NORTH, False),
    ("Cần Thơ", 0.04, _SOUTH, False),
    ("Biên Hòa", 0.03, _SOUTH, False),
    ("Huế", 0.025, _CENTRAL, False),
    ("Nha Trang", 0.025, _CENTRAL, False),
    ("Bắc Ninh", 0.02, _NORTH, False),
    ("Vũng Tàu", 0.02, _SOUTH, False),
)
_CITY_NAMES: Final = np.array([c[0] for c in _CITIES], dtype=object)
_CITY_REGION: Final = np.array([c[2] for c in _CITIES], dtype=np.int64)
_CITY_LOCAL: Final = np.array([c[3] for c in _CITIES])

_FAMILY: Final = (
    ("Nguyễn", 36.0), ("Trần", 11.0), ("Lê", 9.5), ("Phạm", 7.0), ("Hoàng", 3.0), ("Huỳnh", 2.5),
    ("Phan", 4.5), ("Vũ", 2.5), ("Võ", 3.0), ("Đặng", 2.0), ("Bùi", 2.0), ("Đỗ", 1.4), ("Hồ", 1.3),
    ("Ngô", 1.3), ("Dương", 1.0), ("Lý", 0.5), ("Đinh", 0.8), ("Trương", 0.8), ("Lâm", 0.5),
    ("Mai", 0.5), ("Đoàn", 0.5), ("Trịnh", 0.5), ("Cao", 0.4), ("Lương", 0.4), ("Tạ", 0.3),
)  # fmt: skip
_MIDDLE_F: Final = (
    ("Thị", 45.0), ("Ngọc", 10.0), ("Thu", 8.0), ("Thanh", 7.0), ("Minh", 5.0), ("Phương", 5.0),
    ("Hồng", 5.0), ("Khánh", 4.0), ("Bảo", 4.0), ("Mai", 4.0), ("Diệu", 3.0),
)  # fmt: skip
_MIDDLE_M: Final = (
    ("Văn", 40.0), ("Hữu", 10.0), ("Minh", 10.0), ("Đức", 10.0), ("Quang", 8.0), ("Thanh", 6.0),
    ("Công", 5.0), ("Gia", 4.0), ("Hoàng", 4.0), ("Anh", 3.0),
)  # fmt: skip
_GIVEN_F: Final = (
    "An", "Anh", "Chi", "Dung", "Giang", "Hà", "Hằng", "Hạnh", "Hiền", "Hoa", "Hồng", "Hương",
    "Huyền", "Lan", "Linh", "Loan", "Ly", "Mai", "My", "Nga", "Ngân", "Ngọc", "Nhung", "Oanh",
    "Phương", "Quỳnh", "Thảo", "Thủy", "Trang", "Trâm", "Tuyết", "Uyên", "Vân", "Vy", "Yến",
    "Thư", "Hân", "Nhi",
)  # fmt: skip
_GIVEN_M: Final = (
    "An", "Anh", "Bảo", "Bình", "Cường", "Dũng", "Đạt", "Đức", "Duy", "Hải", "Hiếu", "Hòa",
    "Hoàng", "Hùng", "Huy", "Khang", "Khánh", "Khoa", "Kiên", "Long", "Lộc", "Minh", "Nam",
    "Nghĩa", "Phong", "Phúc", "Quân", "Quang", "Sơn", "Tài", "Thắng", "Thành", "Thịnh", "Tiến",
    "Toàn", "Trung", "Tú", "Tuấn", "Việt", "Vinh", "Hiệp",
)  # fmt: skip

# Mobile prefixes with rough market weights. 089x and 099x are left out: only parts of those
# ranges are allocated, and libphonenumber (which the API validates with) rejects the rest.
_PHONE_PREFIXES: Final = (
    ("032", 1.2), ("033", 1.2), ("034", 1.2), ("035", 1.2), ("036", 1.2), ("037", 1.2),
    ("038", 1.2), ("039", 1.2), ("086", 1.5), ("096", 1.5), ("097", 1.5), ("098", 1.5),
    ("081", 1.0), ("082", 1.0), ("083", 1.0), ("084", 1.0), ("085", 1.0), ("088", 1.0),
    ("091", 1.0), ("094", 1.0), ("070", 0.9), ("076", 0.9), ("077", 0.9), ("078", 0.9),
    ("079", 0.9), ("090", 0.9), ("093", 0.9), ("056", 0.3), ("058", 0.3), ("092", 0.3),
    ("059", 0.2), ("087", 0.2),
)  # fmt: skip
_EMAIL_DOMAINS: Final = (
    ("gmail.com", 0.72), ("yahoo.com", 0.08), ("outlook.com", 0.05), ("icloud.com", 0.05),
    ("hotmail.com", 0.04), ("yahoo.com.vn", 0.03), ("fpt.com.vn", 0.03),
)  # fmt: skip
_GENDERS: Final = ("female", "male", "other", None)
_GENDER_P: Final = (0.58, 0.34, 0.01, 0.07)
_CHANNELS: Final = ("zalo", "sms", "email", "phone", None)
_CHANNEL_P: Final = (0.32, 0.20, 0.15, 0.05, 0.28)

# Hidden segments: loyal, regular, occasional, lapsed.
_SEG_P: Final = (0.15, 0.30, 0.35, 0.20)
_SEG_RATE: Final = np.array([3.0, 1.0, 0.25, 0.9])  # purchases a month while active, before scaling
_SEG_LINES: Final = np.array([1.1, 0.85, 0.7, 0.8])  # Poisson mean of extra lines per basket
_SEG_PREMIUM: Final = np.array([0.12, 0.03, -0.03, 0.0])  # shift towards dearer products
_SEG_MIN_PURCHASES: Final = np.array([1, 1, 0, 2], dtype=np.int64)
# Beta parameters of how far back in the enrolment horizon a customer joined (1 = oldest).
_SEG_ENROL_A: Final = np.array([3.0, 1.6, 1.2, 1.5])
_SEG_ENROL_B: Final = np.array([1.5, 1.4, 1.3, 1.5])

# --- products ------------------------------------------------------------------------------------

# (category, SKU prefix, cheapest, dearest, weight for women, weight for men, is food)
_CATEGORIES: Final = (
    ("Thời trang nữ", "TTN", 99_000, 1_290_000, 0.30, 0.08, False),
    ("Thời trang nam", "TTM", 129_000, 1_490_000, 0.05, 0.28, False),
    ("Mỹ phẩm", "MP", 59_000, 990_000, 0.22, 0.06, False),
    ("Giày dép", "GD", 149_000, 1_890_000, 0.10, 0.17, False),
    ("Phụ kiện", "PK", 59_000, 690_000, 0.10, 0.10, False),
    ("Đồ gia dụng", "DGD", 69_000, 2_990_000, 0.12, 0.15, False),
    ("Thực phẩm", "TP", 55_000, 390_000, 0.11, 0.16, True),
)
_SKUS_PER_CATEGORY: Final = 48
_CAT_CUM_F: Final = np.cumsum([c[4] for c in _CATEGORIES]) / sum(c[4] for c in _CATEGORIES)
_CAT_CUM_M: Final = np.cumsum([c[5] for c in _CATEGORIES]) / sum(c[5] for c in _CATEGORIES)
_CAT_FOOD: Final = np.array([c[6] for c in _CATEGORIES])
_QTY_CUM_ITEM: Final = np.cumsum([0.84, 0.12, 0.03, 0.01])
_QTY_CUM_FOOD: Final = np.cumsum([0.45, 0.25, 0.13, 0.08, 0.05, 0.04])

# --- calendar ------------------------------------------------------------------------------------

# Tết Nguyên Đán (first day of the lunar year, Vietnamese calendar).
_TET: Final = {
    2018: (2, 16), 2019: (2, 5), 2020: (1, 25), 2021: (2, 12), 2022: (2, 1), 2023: (1, 22),
    2024: (2, 10), 2025: (1, 29), 2026: (2, 17), 2027: (2, 6), 2028: (1, 26), 2029: (2, 13),
    2030: (2, 3), 2031: (1, 23), 2032: (2, 11), 2033: (1, 31), 2034: (2, 19), 2035: (2, 8),
}  # fmt: skip
_WEEKDAY_W: Final = np.array([0.85, 0.85, 0.9, 0.95, 1.05, 1.3, 1.25])  # Monday first
# Shops open 08:00-22:00 local: a lunch bump and a larger after-work evening peak.
_STORE_HOUR_W: Final = np.array(
    [0.35, 0.55, 0.8, 1.0, 1.15, 1.0, 0.75, 0.7, 0.85, 1.1, 1.45, 1.55, 1.25, 0.7]
)
_ONLINE_HOUR_W: Final = np.array([
    0.35, 0.2, 0.12, 0.08, 0.08, 0.12, 0.25, 0.45, 0.65, 0.8, 0.9, 1.0,
    1.15, 1.0, 0.9, 0.9, 0.95, 1.0, 1.1, 1.3, 1.55, 1.7, 1.45, 0.85,
])  # fmt: skip


def _cum(weights: F64) -> F64:
    c = np.cumsum(weights)
    return np.asarray(c / c[-1], dtype=np.float64)  # exactly 1.0 at the end: searchsorted stays in range


_STORE_HOUR_CUM: Final = _cum(_STORE_HOUR_W)
_ONLINE_HOUR_CUM: Final = _cum(_ONLINE_HOUR_W)


# --- public API ----------------------------------------------------------------------------------


def generate(
    *,
    seed: int = DEFAULT_SEED,
    customers: int = 3200,
    months: int = 24,
    as_of: datetime | None = None,
    target_purchases: int = 105_000,
) -> DemoData:
    """Generates stores, customers and transactions for the `months` months before `as_of`.

    Same arguments give identical output. A naive `as_of` is taken to be UTC.
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if months < 1:
        raise ValueError("months must be at least 1")
    if target_purchases < 0:
        raise ValueError("target_purchases must not be negative")
    end_dt = DEFAULT_AS_OF if as_of is None else _to_utc(as_of)
    end = math.floor(end_dt.timestamp())
    start = math.ceil(_shift_months(end_dt, -months).timestamp())
    horizon = math.ceil(_shift_months(end_dt, -(months + 12)).timestamp())
    rng = np.random.Generator(np.random.PCG64(seed))

    first_day = _local_day(start)
    day_cum = np.concatenate(([0.0], np.cumsum(_day_weights(first_day, _local_day(end - 1)))))
    cal = _Calendar(start, end, first_day, day_cum)

    cust = _make_customers(rng, customers, horizon, cal)
    prices, outlet_prices = _make_catalog(rng)
    purchases = _make_purchases(rng, cust, target_purchases, cal)
    basket = _fill_baskets(rng, purchases, prices, outlet_prices)
    returns = _make_returns(rng, purchases, basket, prices, outlet_prices, end)

    with _gc_paused():
        customer_rows = _customer_rows(rng, cust, end)
        phones = [c.phone for c in customer_rows]
        transactions = _transaction_rows(purchases, basket, returns, phones, prices, outlet_prices)
    return DemoData(stores=list(_STORES), customers=customer_rows, transactions=transactions)


def write_csv(data: DemoData, directory: Path) -> tuple[Path, Path]:
    """Writes customers.csv and transactions.csv; returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    customers_path = directory / "customers.csv"
    transactions_path = directory / "transactions.csv"
    with customers_path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CUSTOMERS_CSV_HEADER)
        writer.writerows(
            (
                c.phone,
                c.email or "",
                c.card or "",
                c.name,
                c.birthday.isoformat() if c.birthday else "",
                c.gender or "",
                c.city,
                c.preferred_channel or "",
                _csv_bool(c.consent_email),
                _csv_bool(c.consent_sms),
                _csv_bool(c.consent_zalo),
                _csv_bool(c.consent_phone),
                c.enrolled_store_id,
                c.enrolled_at.isoformat(),
            )
            for c in data.customers
        )
    with transactions_path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(TRANSACTIONS_CSV_HEADER)
        writer.writerows(
            (
                t.transaction_id,
                t.store_id,
                t.customer_phone or "",
                t.occurred_at.isoformat(),
                t.amount,
                t.currency,
                t.type,
                t.original_transaction_id or "",
            )
            for t in data.transactions
        )
    return customers_path, transactions_path


# --- internals -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Calendar:
    start: int  # window start, UTC epoch seconds (inclusive)
    end: int  # as_of, UTC epoch seconds (exclusive)
    first_day: int  # local (UTC+7) day number of `start`
    day_cum: F64  # cumulative demand weight of each local day from first_day, with a leading 0


@dataclass(frozen=True, slots=True)
class _Customers:
    n: int
    segment: I64
    city: I64
    region: I64
    gender: I64  # index into _GENDERS
    female: Bools  # whether names, tastes follow the female pattern
    enrolled_at: I64
    enrolled_store: I64
    lo: I64  # first second the customer may buy
    hi: I64  # end of the customer's active period (exclusive)
    p_online: F64
    p_outlet: F64
    primary_store: I64
    premium: F64
    lines_mean: F64


@dataclass(frozen=True, slots=True)
class _Purchases:
    """Purchases sorted by time; customer -1 is an anonymous sale."""

    customer: I64
    store: I64
    ts: I64
    female: Bools
    premium: F64
    lines_mean: F64


@dataclass(frozen=True, slots=True)
class _Basket:
    n_lines: I64  # per purchase
    starts: I64  # first line of each purchase
    sku: I64  # per line
    qty: I64
    outlet: Bools
    amount: I64  # per purchase


@dataclass(frozen=True, slots=True)
class _Returns:
    purchase: I64  # index of the returned purchase, returns sorted by time
    ts: I64
    n_lines: I64
    sku: I64  # per returned line
    qty: I64
    outlet: Bools
    amount: I64


@contextmanager
def _gc_paused() -> Iterator[None]:
    # Millions of acyclic row objects are created at once; the cyclic GC would rescan them over
    # and over, which more than doubles the build time.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _to_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _shift_months(value: datetime, months: int) -> datetime:
    index = value.year * 12 + value.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    days_in_month = (date(year + month // 12, month % 12 + 1, 1) - date(year, month, 1)).days
    return value.replace(year=year, month=month, day=min(value.day, days_in_month))


def _local_day(ts: int) -> int:
    return (ts + _LOCAL_OFFSET) // _DAY


def _tet_day(year: int) -> int:
    month, day = _TET.get(year, (2, 5))  # outside the table: a typical date is close enough
    return (date(year, month, day) - date(1970, 1, 1)).days


def _day_weights(first_day: int, last_day: int) -> F64:
    """Relative demand per local day: weekday pattern times seasonality (Tết, year-end, summer)."""
    days = np.arange(first_day, last_day + 1, dtype=np.int64)
    as_dates = days.astype("datetime64[D]")
    month = as_dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    year = as_dates.astype("datetime64[Y]").astype(np.int64) + 1970
    years = range(int(year.min()), int(year.max()) + 2)
    tet = np.array([_tet_day(y) for y in years], dtype=np.int64)
    this_tet = tet[year - years[0]]
    next_tet = tet[year - years[0] + 1]
    # Offset to the coming or just-passed Tết: late-December days already belong to next year's run-up.
    delta = np.where(days - this_tet > 180, days - next_tet, days - this_tet)

    season = np.ones(days.size)
    season[month >= 11] = 1.4
    season[(month >= 6) & (month <= 8)] = 0.82
    run_up = (delta >= -24) & (delta < 0)
    season[run_up] = 1.5 + 0.7 * (delta[run_up] + 24) / 23  # rises to 2.2x on the eve
    season[(delta >= 0) & (delta <= 3)] = 0.3  # most shops close for the first days of the year
    season[(delta >= 4) & (delta <= 9)] = 0.75
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
    return np.asarray(_WEEKDAY_W[weekday] * season, dtype=np.float64)


def _time_of_day(rng: np.random.Generator, online: Bools) -> I64:
    """Local seconds after midnight: shop hours for shops, round the clock online."""
    u = rng.random(online.size)
    hour = np.where(
        online,
        np.searchsorted(_ONLINE_HOUR_CUM, u, side="right"),
        8 + np.searchsorted(_STORE_HOUR_CUM, u, side="right"),
    ).astype(np.int64)
    return hour * 3_600 + rng.integers(0, 3_600, size=online.size, dtype=np.int64)


def _sample_times(
    rng: np.random.Generator, cal: _Calendar, lo: I64, hi: I64, online: Bools
) -> tuple[I64, Bools]:
    """Draws UTC times in [lo, hi) following the day weights and opening hours.

    Returns the times and a mask of rows that had to become online sales because their interval
    holds no opening hours (only possible for intervals of a few hours).
    """
    n = lo.size
    ts = np.empty(n, dtype=np.int64)
    todo = np.arange(n, dtype=np.int64)
    cum = cal.day_cum
    for _ in range(64):
        if todo.size == 0:
            break
        t_lo, t_hi = lo[todo], hi[todo]
        a = (t_lo + _LOCAL_OFFSET) // _DAY - cal.first_day
        b = (t_hi - 1 + _LOCAL_OFFSET) // _DAY - cal.first_day
        u = cum[a] + rng.random(todo.size) * (cum[b + 1] - cum[a])
        day = np.clip(np.searchsorted(cum, u, side="right") - 1, a, b)
        cand = (cal.first_day + day) * _DAY + _time_of_day(rng, online[todo]) - _LOCAL_OFFSET
        ok = (cand >= t_lo) & (cand < t_hi)
        ts[todo[ok]] = cand[ok]
        todo = todo[~ok]
    forced = np.zeros(n, dtype=np.bool_)
    if todo.size:
        span = hi[todo] - lo[todo]
        ts[todo] = lo[todo] + (rng.random(todo.size) * span).astype(np.int64)
        forced[todo] = True
    return ts, forced


def _choice(rng: np.random.Generator, weights: Sequence[float] | F64, size: int) -> I64:
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(p.size, size=size, p=p / p.sum()).astype(np.int64)


def _make_customers(rng: np.random.Generator, n: int, horizon: int, cal: _Calendar) -> _Customers:
    segment = _choice(rng, _SEG_P, n)
    city = _choice(rng, [c[1] for c in _CITIES], n)
    region = _CITY_REGION[city]
    local = _CITY_LOCAL[city]
    gender = _choice(rng, _GENDER_P, n)
    female = (gender == 0) | ((gender >= 2) & (rng.random(n) < 0.6))

    # Lapsed customers stop 6-15 months before as_of (capped for short windows) and joined at
    # least two months before they stopped, so they really were active.
    lapsed = segment == 3
    lapse = np.minimum(rng.uniform(6.0, 15.0, n) * _MONTH_DAYS * _DAY, 0.6 * (cal.end - cal.start))
    lapse = np.where(lapsed, lapse, 0.0)
    min_ago = np.where(lapsed, lapse + 60 * _DAY, 7 * _DAY)
    frac = rng.beta(_SEG_ENROL_A[segment], _SEG_ENROL_B[segment])
    enrolled_rough = cal.end - (min_ago + frac * (cal.end - horizon - min_ago)).astype(np.int64)

    # Customers outside our shop cities mostly order online; locals sometimes do.
    p_online = np.where(local, rng.beta(1.2, 6.5, n), rng.beta(4.0, 2.0, n))
    p_outlet = np.where(_REGION_OUTLET[region] >= 0, rng.beta(1.3, 6.0, n), 0.0)
    primary = np.empty(n, dtype=np.int64)
    for r, stores in enumerate(_REGION_RETAIL):
        mask = region == r
        ids = np.array([s for s, _ in stores], dtype=np.int64)
        primary[mask] = ids[_choice(rng, [w for _, w in stores], int(mask.sum()))]
    u = rng.random(n)
    enrolled_store = np.where(
        (p_online > 0.5) | (u < 0.1),
        _WEB,
        np.where((u < 0.18) & (_REGION_OUTLET[region] >= 0), _REGION_OUTLET[region], primary),
    ).astype(np.int64)
    enrol_day = (enrolled_rough + _LOCAL_OFFSET) // _DAY
    enrolled_at = enrol_day * _DAY + _time_of_day(rng, enrolled_store == _WEB) - _LOCAL_OFFSET

    lo = np.maximum(cal.start, enrolled_at + 60)
    hi = np.where(lapsed, cal.end - lapse.astype(np.int64), cal.end).astype(np.int64)
    premium = np.clip(rng.beta(2.0, 3.0, n) + _SEG_PREMIUM[segment], 0.02, 0.95)
    lines_mean = _SEG_LINES[segment] * rng.lognormal(0.0, 0.25, n)
    return _Customers(
        n=n,
        segment=segment,
        city=city,
        region=region,
        gender=gender,
        female=female,
        enrolled_at=enrolled_at,
        enrolled_store=enrolled_store,
        lo=lo,
        hi=hi,
        p_online=p_online,
        p_outlet=p_outlet,
        primary_store=primary,
        premium=premium,
        lines_mean=lines_mean,
    )


def _make_purchases(rng: np.random.Generator, cust: _Customers, target: int, cal: _Calendar) -> _Purchases:
    n_member = round(target * (1.0 - _ANONYMOUS_SHARE))
    n_anon = target - n_member

    # Expected purchases = segment rate x heavy-tailed personal factor x seasonal exposure while
    # active; a multinomial then hits the requested total exactly.
    cum = cal.day_cum
    a = (cust.lo + _LOCAL_OFFSET) // _DAY - cal.first_day
    b = (cust.hi - 1 + _LOCAL_OFFSET) // _DAY - cal.first_day
    exposure = _SEG_RATE[cust.segment] * rng.lognormal(0.0, 0.5, cust.n) * (cum[b + 1] - cum[a])
    minimum = _SEG_MIN_PURCHASES[cust.segment]
    if minimum.sum() > n_member:
        minimum = np.zeros(cust.n, dtype=np.int64)
    counts = minimum + rng.multinomial(n_member - int(minimum.sum()), exposure / exposure.sum())
    owner = np.repeat(np.arange(cust.n, dtype=np.int64), counts)
    m = owner.size

    u = rng.random(m)
    p_online = cust.p_online[owner]
    online = u < p_online
    outlet = ~online & (u < p_online + (1.0 - p_online) * cust.p_outlet[owner])
    region = cust.region[owner]
    other_retail = _REGION_RETAIL_PAD[region, (rng.random(m) * _REGION_RETAIL_N[region]).astype(np.int64)]
    retail = np.where(rng.random(m) < 0.8, cust.primary_store[owner], other_retail)
    store = np.where(online, _WEB, np.where(outlet, _REGION_OUTLET[region], retail)).astype(np.int64)
    ts, forced = _sample_times(rng, cal, cust.lo[owner], cust.hi[owner], online)
    store[forced] = _WEB

    anon_store = _choice(rng, _ANON_STORE_P, n_anon)
    anon_ts, anon_forced = _sample_times(
        rng, cal, np.full(n_anon, cal.start, dtype=np.int64), np.full(n_anon, cal.end, dtype=np.int64),
        anon_store == _WEB,
    )  # fmt: skip
    anon_store[anon_forced] = _WEB

    all_ts = np.concatenate([ts, anon_ts])
    order = np.argsort(all_ts, kind="stable")
    return _Purchases(
        customer=np.concatenate([owner, np.full(n_anon, -1, dtype=np.int64)])[order],
        store=np.concatenate([store, anon_store])[order],
        ts=all_ts[order],
        female=np.concatenate([cust.female[owner], rng.random(n_anon) < 0.6])[order],
        premium=np.concatenate([cust.premium[owner], rng.beta(2.0, 3.0, n_anon)])[order],
        lines_mean=np.concatenate([cust.lines_mean[owner], np.full(n_anon, 0.7)])[order],
    )


def _make_catalog(rng: np.random.Generator) -> tuple[I64, I64]:
    """Regular and outlet price per SKU; SKUs are grouped by category, cheapest first."""
    k = _SKUS_PER_CATEGORY
    prices = np.empty(len(_CATEGORIES) * k, dtype=np.int64)
    for c, (_, _, cheapest, dearest, *_rest) in enumerate(_CATEGORIES):
        raw = np.sort(np.exp(rng.uniform(math.log(cheapest), math.log(dearest), k)))
        # Shop-style price points: 59.000, 199.000, 1.290.000 ...
        below_100k = np.ceil(raw / 10_000) * 10_000 - 1_000
        below_1m = np.ceil(raw / 50_000) * 50_000 - 1_000
        above = np.ceil(raw / 100_000) * 100_000 - 10_000
        charm = np.where(raw < 100_000, below_100k, np.where(raw < 1_000_000, below_1m, above))
        prices[c * k : (c + 1) * k] = charm.astype(np.int64)
    discount = rng.uniform(0.3, 0.5, prices.size)
    outlet = np.maximum(50_000, np.floor(prices * (1.0 - discount) / 1_000) * 1_000).astype(np.int64)
    return prices, outlet


def _fill_baskets(rng: np.random.Generator, p: _Purchases, prices: I64, outlet_prices: I64) -> _Basket:
    n = p.ts.size
    n_lines = 1 + np.minimum(rng.poisson(p.lines_mean), 4).astype(np.int64)
    starts = (np.cumsum(n_lines) - n_lines).astype(np.int64)
    owner = np.repeat(np.arange(n, dtype=np.int64), n_lines)
    n_total = owner.size

    u = rng.random(n_total)
    category = np.where(
        p.female[owner],
        np.searchsorted(_CAT_CUM_F, u, side="right"),
        np.searchsorted(_CAT_CUM_M, u, side="right"),
    ).astype(np.int64)
    premium = p.premium[owner]
    sku = _pick_skus(rng, category, premium)
    # A POS puts one SKU on one line: redraw repeats within a basket (lines of a basket are
    # adjacent and at most five, so comparing with the four previous lines finds them all).
    while True:
        repeat = np.zeros(n_total, dtype=np.bool_)
        for d in range(1, 5):
            repeat[d:] |= (sku[d:] == sku[:-d]) & (owner[d:] == owner[:-d])
        again = np.flatnonzero(repeat)
        if again.size == 0:
            break
        sku[again] = _pick_skus(rng, category[again], premium[again])
    uq = rng.random(n_total)
    qty = 1 + np.where(
        _CAT_FOOD[category],
        np.searchsorted(_QTY_CUM_FOOD, uq, side="right"),
        np.searchsorted(_QTY_CUM_ITEM, uq, side="right"),
    ).astype(np.int64)
    qty = np.minimum(qty, _MAX_QTY)  # guards the float edge of the cumulative tables
    outlet = _STORE_IS_OUTLET[p.store][owner]
    line_total = qty * np.where(outlet, outlet_prices[sku], prices[sku])
    amount = np.add.reduceat(line_total, starts) if n else np.zeros(0, dtype=np.int64)
    return _Basket(n_lines=n_lines, starts=starts, sku=sku, qty=qty, outlet=outlet, amount=amount)


def _pick_skus(rng: np.random.Generator, category: I64, premium: F64) -> I64:
    """A SKU of each category near the buyer's price level (SKUs are sorted by price)."""
    position = np.abs(premium + rng.normal(0.0, 0.18, premium.size))
    position = np.minimum(np.where(position >= 1.0, 2.0 - position, position), 0.9999)  # reflect, no pile-up
    return (category * _SKUS_PER_CATEGORY + (position * _SKUS_PER_CATEGORY).astype(np.int64)).astype(np.int64)


def _make_returns(
    rng: np.random.Generator, p: _Purchases, basket: _Basket, prices: I64, outlet_prices: I64, end: int
) -> _Returns:
    picked = np.flatnonzero((p.customer >= 0) & (rng.random(p.ts.size) < _RETURN_RATE)).astype(np.int64)
    # 1-30 days later, most within the first week or two; returns that would fall after as_of
    # simply have not happened yet.
    delay = np.minimum(rng.geometric(0.12, picked.size), 30).astype(np.int64)
    day = (p.ts[picked] + _LOCAL_OFFSET) // _DAY + delay
    ts = day * _DAY + _time_of_day(rng, p.store[picked] == _WEB) - _LOCAL_OFFSET
    # A single unit can only come back whole, so the other purchases go partial more often to keep
    # returns about half full, half partial overall.
    can_split = (basket.n_lines[picked] > 1) | (basket.qty[basket.starts[picked]] > 1)
    partial = can_split & (rng.random(picked.size) < 0.75)
    keep = ts < end
    order = np.argsort(ts[keep], kind="stable")
    purchase, ts, partial = picked[keep][order], ts[keep][order], partial[keep][order]

    n_ret = purchase.size
    n_orig = basket.n_lines[purchase]
    owner = np.repeat(np.arange(n_ret, dtype=np.int64), n_orig)
    group_start = (np.cumsum(n_orig) - n_orig).astype(np.int64)
    line = basket.starts[purchase][owner] + np.arange(owner.size, dtype=np.int64) - group_start[owner]
    qty = basket.qty[line]
    u = rng.random(owner.size)
    uq = rng.random(owner.size)

    # Partial returns of multi-line baskets keep a random subset, always at least the line with
    # the lowest draw and never the one with the highest, so the subset is proper and non-empty.
    multi = (n_orig > 1)[owner]
    part = partial[owner]
    if owner.size:
        u_min = np.minimum.reduceat(u, group_start)[owner]
        u_max = np.maximum.reduceat(u, group_start)[owner]
    else:
        u_min = u_max = u
    is_min = u == u_min
    subset = ((u < 0.5) | is_min) & ~((u == u_max) & ~is_min)
    kept = np.where(part & multi, subset, True)
    returned_qty = qty.copy()
    # Single-line partial returns bring back fewer units.
    fewer = part & ~multi & (qty > 1)
    returned_qty[fewer] = 1 + (uq[fewer] * (qty[fewer] - 1)).astype(np.int64)
    # Within a partial multi-line return, some lines also come back only in part.
    some = part & multi & (qty > 1) & (uq < 0.3)
    returned_qty[some] = 1 + (uq[some] / 0.3 * (qty[some] - 1)).astype(np.int64)

    line, returned_qty = line[kept], returned_qty[kept]
    n_lines = np.bincount(owner[kept], minlength=n_ret).astype(np.int64)
    outlet = basket.outlet[line]
    sku = basket.sku[line]
    total = returned_qty * np.where(outlet, outlet_prices[sku], prices[sku])
    starts = (np.cumsum(n_lines) - n_lines).astype(np.int64)
    amount = np.add.reduceat(total, starts) if n_ret else np.zeros(0, dtype=np.int64)
    return _Returns(
        purchase=purchase, ts=ts, n_lines=n_lines, sku=sku, qty=returned_qty, outlet=outlet, amount=amount
    )


@cache
def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def _unique_phones(rng: np.random.Generator, n: int) -> list[str]:
    p = np.array([w for _, w in _PHONE_PREFIXES])
    keys = np.zeros(0, dtype=np.int64)
    while keys.size < n:
        draw = n - keys.size + max(16, (n - keys.size) // 20)
        prefix = rng.choice(p.size, size=draw, p=p / p.sum()).astype(np.int64)
        fresh = prefix * 10_000_000 + rng.integers(0, 10_000_000, size=draw, dtype=np.int64)
        candidates = np.concatenate([keys, fresh])
        _, first = np.unique(candidates, return_index=True)
        keys = candidates[np.sort(first)][:n]  # keeps earlier draws, drops later duplicates
    return [f"{_PHONE_PREFIXES[k // 10_000_000][0]}{k % 10_000_000:07d}" for k in keys.tolist()]


def _customer_rows(rng: np.random.Generator, cust: _Customers, end: int) -> list[CustomerRow]:
    n = cust.n
    phones = _unique_phones(rng, n)
    family = _choice(rng, [w for _, w in _FAMILY], n).tolist()
    middle_f = _choice(rng, [w for _, w in _MIDDLE_F], n).tolist()
    middle_m = _choice(rng, [w for _, w in _MIDDLE_M], n).tolist()
    given_f = rng.integers(0, len(_GIVEN_F), n).tolist()
    given_m = rng.integers(0, len(_GIVEN_M), n).tolist()

    known_birthday = (rng.random(n) < 0.9).tolist()
    age_days = ((18.0 + 52.0 * rng.beta(2.0, 3.2, n)) * 365.2425).astype(np.int64)
    birthday_days = (_local_day(end - 1) - age_days).astype("datetime64[D]")
    birthdays: list[date] = birthday_days.astype(object).tolist()
    birth_years = (birthday_days.astype("datetime64[Y]").astype(np.int64) + 1970).tolist()

    has_email = rng.random(n) < 0.45
    email_pattern = rng.integers(0, 5, n).tolist()
    email_number = rng.integers(1, 1000, n).tolist()
    email_domain = _choice(rng, [w for _, w in _EMAIL_DOMAINS], n).tolist()

    has_card = rng.random(n) < 0.6
    card_numbers = iter(rng.choice(10**10, size=int(has_card.sum()), replace=False).tolist())

    channel = _choice(rng, _CHANNEL_P, n)
    channel = np.where((channel == 2) & ~has_email, 0, channel)  # no address: Zalo instead
    consent_email = (has_email & ((rng.random(n) < 0.65) | (channel == 2))).tolist()
    consent_sms = ((rng.random(n) < 0.55) | (channel == 1)).tolist()
    consent_zalo = ((rng.random(n) < 0.6) | (channel == 0)).tolist()
    consent_phone = ((rng.random(n) < 0.2) | (channel == 3)).tolist()

    enrolled = [datetime.fromtimestamp(t, UTC) for t in cust.enrolled_at.tolist()]
    cities = _CITY_NAMES[cust.city].tolist()
    stores = _STORE_IDS[cust.enrolled_store].tolist()
    genders = cust.gender.tolist()
    channels = channel.tolist()
    seen_emails: set[str] = set()
    rows: list[CustomerRow] = []
    for i, (female, email_wanted, card_wanted) in enumerate(
        zip(cust.female.tolist(), has_email.tolist(), has_card.tolist(), strict=True)
    ):
        surname = _FAMILY[family[i]][0]
        if female:
            middle, given = _MIDDLE_F[middle_f[i]][0], _GIVEN_F[given_f[i]]
            middle = "Thị" if middle == given else middle  # avoid names like "Mai Mai"
        else:
            middle, given = _MIDDLE_M[middle_m[i]][0], _GIVEN_M[given_m[i]]
            middle = "Văn" if middle == given else middle
        email = None
        if email_wanted:
            email = _email(
                surname, middle, given, birth_years[i], email_pattern[i], email_number[i],
                _EMAIL_DOMAINS[email_domain[i]][0], seen_emails,
            )  # fmt: skip
        rows.append(
            CustomerRow(
                phone=phones[i],
                email=email,
                card=f"LC{next(card_numbers):010d}" if card_wanted else None,
                name=f"{surname} {middle} {given}",
                birthday=birthdays[i] if known_birthday[i] else None,
                gender=_GENDERS[genders[i]],
                city=cities[i],
                preferred_channel=_CHANNELS[channels[i]],
                consent_email=consent_email[i],
                consent_sms=consent_sms[i],
                consent_zalo=consent_zalo[i],
                consent_phone=consent_phone[i],
                enrolled_store_id=stores[i],
                enrolled_at=enrolled[i],
            )
        )
    return rows


def _email(
    surname: str, middle: str, given: str, birth_year: int, pattern: int, number: int, domain: str,
    seen: set[str],
) -> str:  # fmt: skip
    s, m, g = _ascii(surname), _ascii(middle), _ascii(given)
    local = (
        f"{g}.{s}",
        f"{g}{s}{birth_year % 100:02d}",
        f"{s}{m}{g}",
        f"{g}.{s}{number}",
        f"{s}.{g}{birth_year}",
    )[pattern]
    email = f"{local}@{domain}"
    suffix = 1
    while email in seen:  # addresses are unique, as a mail provider would enforce
        suffix += 1
        email = f"{local}{suffix}@{domain}"
    seen.add(email)
    return email


def _transaction_rows(
    p: _Purchases, basket: _Basket, r: _Returns, phones: list[str], prices: I64, outlet_prices: I64
) -> list[TransactionRow]:
    n_p, n_r = p.ts.size, r.ts.size
    r_store = p.store[r.purchase]
    p_ids = _pos_ids(p.store, "")
    r_ids = _pos_ids(r_store, "R")

    # Identical lines are shared objects: the SKU x quantity x price-list space is tiny, and sharing
    # keeps millions of lines from costing a Python object each.
    n_keys = len(_CATEGORIES) * _SKUS_PER_CATEGORY * _MAX_QTY * 2
    p_keys = _line_keys(basket.sku, basket.qty, basket.outlet)
    r_keys = _line_keys(r.sku, r.qty, r.outlet)
    line_cache = _line_objects(np.concatenate([p_keys, r_keys]), n_keys, prices, outlet_prices)
    lines = np.fromiter(  # fromiter keeps each tuple as one element, np.array would unpack them
        chain(
            _group_lines(line_cache[p_keys].tolist(), basket.n_lines),
            _group_lines(line_cache[r_keys].tolist(), r.n_lines),
        ),
        dtype=object,
        count=n_p + n_r,
    )

    all_ts = np.concatenate([p.ts, r.ts])
    is_return = np.concatenate([np.zeros(n_p, dtype=np.int64), np.ones(n_r, dtype=np.int64)])
    order = np.lexsort((is_return, all_ts))  # by time; a purchase first if a return shares its second
    ids = np.concatenate([p_ids, r_ids])[order]
    originals = np.concatenate([np.full(n_p, None, dtype=object), p_ids[r.purchase]])[order]
    phone_of = np.array([*phones, None], dtype=object)  # index -1 (anonymous) maps to None
    customer = np.concatenate([p.customer, p.customer[r.purchase]])[order]
    store = np.concatenate([p.store, r_store])[order]
    amount = np.concatenate([basket.amount, r.amount])[order]
    types = _TYPES[is_return[order]]
    lines = lines[order]
    occurred = all_ts[order]
    make = _transaction_factory()
    rows: list[TransactionRow] = []
    # Chunks keep the temporary per-column Python lists small at benchmark sizes.
    for lo in range(0, n_p + n_r, 65_536):
        part = slice(lo, lo + 65_536)
        rows += [
            make(i, s, c, datetime.fromtimestamp(t, UTC), a, "VND", k, o, ln)
            for i, s, c, t, a, k, o, ln in zip(
                ids[part].tolist(),
                _STORE_IDS[store[part]].tolist(),
                phone_of[customer[part]].tolist(),
                occurred[part].tolist(),
                amount[part].tolist(),
                types[part].tolist(),
                originals[part].tolist(),
                lines[part].tolist(),
                strict=True,
            )
        ]
    return rows


def _pos_ids(store: I64, tag: str) -> NDArray[np.object_]:
    """POS numbering: each store counts its own purchases (or returns) in time order."""
    ids = np.empty(store.size, dtype=object)
    for s, row in enumerate(_STORES):
        mask = store == s
        prefix = f"{row.id}-{tag}"
        ids[mask] = [f"{prefix}{seq:06d}" for seq in range(1, int(mask.sum()) + 1)]
    return ids


_MakeTransaction = Callable[
    [str, str, str | None, datetime, int, str, str, str | None, tuple[LineRow, ...]], TransactionRow
]


def _transaction_factory() -> _MakeTransaction:
    """Builds TransactionRow objects like its constructor does, about twice as fast.

    The frozen dataclass __init__ looks up object.__setattr__ for every field, which is half the
    cost of building millions of rows; setting the slots through their descriptors is the same
    operation without the lookups.
    """
    new = object.__new__
    setters = (getattr(TransactionRow, f.name).__set__ for f in fields(TransactionRow))
    s0, s1, s2, s3, s4, s5, s6, s7, s8 = setters

    def make(
        transaction_id: str, store_id: str, customer_phone: str | None, occurred_at: datetime, amount: int,
        currency: str, type_: str, original_transaction_id: str | None, lines: tuple[LineRow, ...],
    ) -> TransactionRow:  # fmt: skip
        row: TransactionRow = new(TransactionRow)
        s0(row, transaction_id)
        s1(row, store_id)
        s2(row, customer_phone)
        s3(row, occurred_at)
        s4(row, amount)
        s5(row, currency)
        s6(row, type_)
        s7(row, original_transaction_id)
        s8(row, lines)
        return row

    return make


def _line_keys(sku: I64, qty: I64, outlet: Bools) -> I64:
    return ((sku * _MAX_QTY + qty - 1) * 2 + outlet).astype(np.int64)


def _line_objects(keys: I64, n_keys: int, prices: I64, outlet_prices: I64) -> NDArray[np.object_]:
    cache = np.empty(n_keys, dtype=object)
    for key in np.unique(keys).tolist():
        sku, rest = divmod(key, _MAX_QTY * 2)
        qty, outlet = divmod(rest, 2)
        category, item = divmod(sku, _SKUS_PER_CATEGORY)
        name, prefix = _CATEGORIES[category][0], _CATEGORIES[category][1]
        price = outlet_prices[sku] if outlet else prices[sku]
        sku_code = f"{prefix}-{item + 1:04d}"
        cache[key] = LineRow(sku=sku_code, category=name, quantity=qty + 1, unit_price=int(price))
    return cache


def _group_lines(lines: list[LineRow], counts: I64) -> list[tuple[LineRow, ...]]:
    ends = np.cumsum(counts)
    return [tuple(lines[s:e]) for s, e in zip((ends - counts).tolist(), ends.tolist(), strict=True)]


def _csv_bool(value: bool) -> str:
    return "true" if value else "false"
