"""Per-customer purchase summaries that every report starts from, computed in Polars."""

from __future__ import annotations

from datetime import date

import polars as pl

TIME_UNITS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}


# A row is a purchase unless its amount is negative (a return in an export); a zero-amount purchase
# (a gift, a sale paid in full some other way) is still a visit.
PURCHASE = pl.col("amount") >= 0


def purchase_days(transactions: pl.DataFrame) -> pl.DataFrame:
    """One row per (customer, day) with a purchase, and the day's net spend: several purchases on one
    day are one."""
    return (
        transactions.group_by("customer", "day")
        .agg(amount=pl.col("amount").sum(), purchases=PURCHASE.sum())
        .filter(pl.col("purchases") > 0)
    )


def customer_summary(transactions: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """customer, first, last, days, purchases, revenue, first_amount, recency_days, age_days.

    `days` counts distinct purchase days; `revenue` is all net spend including negative rows;
    `day_revenue` the net spend of the purchase days; `first_amount` is the spend of the first
    purchase day (Gamma-Gamma leaves it out).
    """
    # One pass over the transactions (to customer-days), one over the customer-days: no join.
    daily = transactions.group_by("customer", "day").agg(
        amount=pl.col("amount").sum(), purchases=PURCHASE.sum())
    bought = pl.col("purchases") > 0
    per = daily.group_by("customer").agg(
        revenue=pl.col("amount").sum(),
        first=pl.col("day").filter(bought).min(),
        last=pl.col("day").filter(bought).max(),
        days=bought.sum().cast(pl.Int64),
        purchases=pl.col("purchases").filter(bought).sum().cast(pl.Int64),
        day_revenue=pl.col("amount").filter(bought).sum(),
        first_amount=pl.col("amount").filter(bought).sort_by(pl.col("day").filter(bought)).first(),
    ).filter(pl.col("days") > 0)
    return (
        per.with_columns(
            recency_days=(pl.lit(as_of) - pl.col("last")).dt.total_days(),
            age_days=(pl.lit(as_of) - pl.col("first")).dt.total_days(),
            span_days=(pl.col("last") - pl.col("first")).dt.total_days(),
        )
        .sort("customer")
    )


def model_inputs(summary: pl.DataFrame, time_unit: str) -> pl.DataFrame:
    """Adds x (repeat purchase days), t_x, T in `time_unit`, and m (mean of the repeat days' spend)."""
    unit = TIME_UNITS[time_unit]
    return summary.with_columns(
        x=(pl.col("days") - 1).cast(pl.Float64),
        t_x=pl.col("span_days").cast(pl.Float64) / unit,
        T=pl.col("age_days").cast(pl.Float64) / unit,
        m=pl.when(pl.col("days") > 1)
        .then((pl.col("day_revenue") - pl.col("first_amount")).cast(pl.Float64) / (pl.col("days") - 1))
        .otherwise(0.0),
    )
