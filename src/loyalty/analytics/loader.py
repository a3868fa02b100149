"""Loads purchases for analysis into one Polars frame, from the database or from a CSV export.

The frame has one row per purchase: `customer`, `day` (the business date), `amount` (net of
returns, integer currency units), `store` (may be null) and, from the database, `transaction_id`,
`occurred_at` and `points` (earned net of reversals).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import BigInteger, ColumnElement, Subquery, and_, cast, extract, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from loyalty.errors import ValidationFailed
from loyalty.models import Customer, Transaction, TransactionLine
from loyalty.models.bonuses import ReferralCode

DATE_COLUMNS = ("date", "occurred_at")


@dataclass(slots=True)
class Dataset:
    """Purchases up to and including `as_of`, and (from the database) the enrolled customers."""

    transactions: pl.DataFrame
    as_of: date
    source: str
    customers: pl.DataFrame | None = None
    timezone: str = "UTC"
    notes: list[str] = field(default_factory=list)

    # Per-customer summaries by as-of date, so reports run on one dataset summarise it once.
    summaries: dict[date, pl.DataFrame] = field(default_factory=dict)

    @property
    def from_database(self) -> bool:
        return self.customers is not None

    def summary(self, as_of: date | None = None) -> pl.DataFrame:
        """customer_summary of the purchases up to `as_of` (the dataset's own date by default)."""
        from loyalty.analytics.summary import customer_summary

        day = as_of or self.as_of
        if day not in self.summaries:
            self.summaries[day] = customer_summary(self.transactions.filter(pl.col("day") <= day), day)
        return self.summaries[day]


def end_of_day_utc(day: date, tz: ZoneInfo) -> datetime:
    """The first instant after `day` in the business time zone, in UTC."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)


def returns_until(end: datetime) -> Subquery:
    """Per purchase, the amount returned against it before `end`."""
    return (
        select(Transaction.original_id.label("original_id"),
               cast(func.sum(Transaction.amount), BigInteger).label("returned"))
        .where(Transaction.kind == "return", Transaction.occurred_at < end)
        .group_by(Transaction.original_id)
        .subquery()
    )


def load_categories(session: Session, data: Dataset) -> pl.DataFrame:
    """customer, category, spend: what each member bought by category (line values, before returns)."""
    end = end_of_day_utc(data.as_of, ZoneInfo(data.timezone))
    # PostgreSQL sums bigints as numeric; the frame wants integers.
    value = cast(func.sum(TransactionLine.quantity * TransactionLine.unit_price), BigInteger)
    rows = session.execute(
        select(Transaction.customer_id, TransactionLine.category, value)
        .join(Transaction, Transaction.id == TransactionLine.transaction_id)
        .where(Transaction.kind == "purchase", Transaction.customer_id.is_not(None), Transaction.occurred_at < end,
               TransactionLine.category.is_not(None))
        .group_by(Transaction.customer_id, TransactionLine.category)
    ).all()
    return pl.DataFrame([tuple(r) for r in rows], schema={"customer": pl.Int64, "category": pl.String,
                                                         "spend": pl.Int64}, orient="row")


def epoch_seconds(column: InstrumentedAttribute[datetime] | InstrumentedAttribute[datetime | None],
                  dialect: str) -> ColumnElement[int]:
    """Whole seconds since 1970 (UTC), computed by the database: integers reach Polars far faster than
    datetime objects built row by row (a day is all the reports need)."""
    if dialect == "sqlite":
        return cast(func.strftime("%s", column), BigInteger)
    return cast(func.floor(extract("epoch", column)), BigInteger)


def load_database(session: Session, as_of: date | None = None) -> Dataset:
    """Purchases by members up to `as_of`, each net of the returns recorded against it by then."""
    from loyalty.programs.service import program_at

    tz = program_at(session).tz
    as_of = as_of or datetime.now(tz).date()
    end = end_of_day_utc(as_of, tz)
    returned = returns_until(end)
    dialect = session.get_bind().dialect.name
    # Core, not ORM, execution: rows come back as plain tuples without per-row ORM bookkeeping.
    rows = session.connection().execute(
        select(Transaction.id, Transaction.customer_id, epoch_seconds(Transaction.occurred_at, dialect),
               cast(Transaction.amount - func.coalesce(returned.c.returned, 0), BigInteger), Transaction.store_id,
               Transaction.points_earned - Transaction.points_reversed, Transaction.amount)
        .outerjoin(returned, returned.c.original_id == Transaction.id)
        .where(and_(Transaction.kind == "purchase", Transaction.customer_id.is_not(None),
                    Transaction.occurred_at < end))
    ).all()
    frame = pl.DataFrame(
        rows, orient="row",
        schema={"transaction_id": pl.Int64, "customer": pl.Int64, "epoch": pl.Int64, "amount": pl.Int64,
                "store": pl.String, "points": pl.Int64, "gross": pl.Int64},
    )
    frame = (
        frame.with_columns(occurred_at=pl.from_epoch("epoch", "s").dt.replace_time_zone("UTC"))
        .with_columns(day=pl.col("occurred_at").dt.convert_time_zone(str(tz)).dt.date())
        # A purchase returned in full is no purchase at all (one of zero amount still is).
        .filter((pl.col("amount") > 0) | (pl.col("gross") == 0))
        .select("customer", "day", "amount", "store", "transaction_id", "occurred_at", "points")
    )
    customer_rows = session.connection().execute(
        select(Customer.id, epoch_seconds(Customer.enrolled_at, dialect), Customer.enrolled_store_id,
               Customer.consent_email, Customer.consent_sms, Customer.consent_zalo, Customer.consent_phone,
               epoch_seconds(ReferralCode.advocate_since, dialect))
        .outerjoin(ReferralCode, ReferralCode.customer_id == Customer.id)  # advocates (L13)
        .where(Customer.enrolled_at < end)
    ).all()
    customers = pl.DataFrame(
        customer_rows, orient="row",
        schema={"customer": pl.Int64, "epoch": pl.Int64, "enrolled_store": pl.String, "consent_email": pl.Boolean,
                "consent_sms": pl.Boolean, "consent_zalo": pl.Boolean, "consent_phone": pl.Boolean,
                "advocate_epoch": pl.Int64},
    ).with_columns(enrolled_at=pl.from_epoch("epoch", "s").dt.replace_time_zone("UTC"),
                   advocate_since=pl.from_epoch("advocate_epoch", "s").dt.replace_time_zone("UTC")).with_columns(
        enrolled_on=pl.col("enrolled_at").dt.convert_time_zone(str(tz)).dt.date(),
        advocate_on=pl.col("advocate_since").dt.convert_time_zone(str(tz)).dt.date()).drop("epoch", "advocate_epoch")
    return Dataset(frame, as_of, "database", customers=customers, timezone=str(tz))


def _header(path: Path) -> list[str]:
    try:
        with path.open("r", encoding="utf-8-sig") as handle:
            first = handle.readline()
    except OSError as exc:
        raise ValidationFailed(f"{path}: cannot read the file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"{path}:1: the file is not UTF-8 text") from exc
    if not first.strip():
        raise ValidationFailed(f"{path}:1: the file is empty; it needs a header with customer, date and amount")
    return [name.strip().strip('"').lower() for name in first.rstrip("\r\n").split(",")]


def _first_bad_line(frame: pl.DataFrame, parsed: str, raw: str) -> tuple[int, str]:
    bad = frame.select(
        pl.int_range(pl.len()).alias("i"), pl.col(raw)
    ).filter(pl.col(raw).is_not_null() & frame[parsed].is_null()).head(1)
    # Line 1 is the header, so row i (0-based) sits on line i + 2.
    return int(bad["i"][0]) + 2, str(bad[raw][0])


def load_csv(path: Path, as_of: date | None = None) -> Dataset:
    """Reads `customer`, `date` (or `occurred_at`) and `amount` from a CSV export; nothing is written.

    Dates are ISO (`2024-03-01` or `2024-03-01T10:15:00+07:00`; the date as written is the
    business date). Rows without a customer are anonymous sales and are left out. Negative amounts
    (returns) count towards revenue but not as purchases; zero amounts are purchases. `as_of`
    defaults to the last date in the file.
    """
    header = _header(path)
    date_column = next((name for name in DATE_COLUMNS if name in header), None)
    missing = [name for name in ("customer", "date (or occurred_at)", "amount")
               if name not in header and not (name.startswith("date") and date_column)]
    if missing:
        raise ValidationFailed(
            f"{path}:1: the header lacks {', '.join(missing)}; it has {', '.join(header) or 'no columns'}",
            missing=missing)
    assert date_column is not None
    originals = {name.strip().strip('"').lower(): name for name in pl.read_csv(path, n_rows=0).columns}
    wanted = {"customer": originals["customer"], "date_raw": originals[date_column],
              "amount_raw": originals["amount"]}
    if "store" in originals:
        wanted["store"] = originals["store"]
    try:
        raw = (
            pl.scan_csv(path, infer_schema=False, encoding="utf8-lossy")
            .select([pl.col(source).str.strip_chars().alias(alias) for alias, source in wanted.items()])
            .with_columns(
                day=pl.col("date_raw").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False),
                amount=pl.col("amount_raw").str.replace_all(r"[_\s]", "").cast(pl.Float64, strict=False),
            )
            .collect(engine="streaming")
        )
    except pl.exceptions.PolarsError as exc:
        raise ValidationFailed(f"{path}: cannot read the CSV ({str(exc).splitlines()[0]})") from exc
    for parsed, source, what in (("day", "date_raw", f"{date_column}: not an ISO date (YYYY-MM-DD)"),
                                 ("amount", "amount_raw", "amount: not a number")):
        if raw[parsed].null_count() > raw[source].null_count():
            line, value = _first_bad_line(raw, parsed, source)
            raise ValidationFailed(f"{path}:{line}: {what}: {value!r}", line=line, column=source.removesuffix("_raw"))
    for source, name in (("date_raw", date_column), ("amount_raw", "amount")):
        if raw[source].null_count():
            line = int(raw[source].is_null().arg_true()[0]) + 2
            raise ValidationFailed(f"{path}:{line}: {name} is empty", line=line, column=name)
    amount = raw["amount"]
    if bool(((amount - amount.round(0)).abs() > 1e-9).any()):
        raise ValidationFailed(f"{path}: amounts must be whole currency units (e.g. VND, or cents for USD)",
                               column="amount")
    frame = raw.select(
        pl.col("customer"), pl.col("day"), pl.col("amount").round(0).cast(pl.Int64),
        pl.col("store") if "store" in raw.columns else pl.lit(None, dtype=pl.String).alias("store"),
    ).filter(pl.col("customer").is_not_null() & (pl.col("customer") != ""))
    as_int = frame["customer"].cast(pl.Int64, strict=False)
    if as_int.null_count() == 0:
        frame = frame.with_columns(customer=as_int)
    last = frame["day"].max() if frame.height else None
    as_of = as_of or (last if isinstance(last, date) else date.today())
    frame = frame.filter(pl.col("day") <= as_of)
    return Dataset(frame, as_of, str(path))
