"""Monthly acquisition cohorts: retention and revenue per month since the first purchase."""

from __future__ import annotations

import polars as pl

from loyalty.analytics.loader import Dataset
from loyalty.analytics.report import Report
from loyalty.analytics.summary import PURCHASE


def _month_index(day: pl.Expr) -> pl.Expr:
    return day.dt.year().cast(pl.Int32) * 12 + day.dt.month().cast(pl.Int32) - 1


def cohort_table(transactions: pl.DataFrame) -> pl.DataFrame:
    """cohort (first month), period (months since), active customers, retention, revenue, cohort size."""
    monthly = (
        transactions.with_columns(month=_month_index(pl.col("day")))
        .group_by("customer", "month")
        .agg(revenue=pl.col("amount").sum(), bought=PURCHASE.any())
    )
    first = monthly.filter(pl.col("bought")).group_by("customer").agg(cohort=pl.col("month").min())
    joined = monthly.join(first, on="customer").filter(pl.col("month") >= pl.col("cohort"))
    sizes = first.group_by("cohort").agg(size=pl.len())
    table = (
        joined.with_columns(period=pl.col("month") - pl.col("cohort"))
        .group_by("cohort", "period")
        .agg(active=pl.col("bought").sum().cast(pl.Int64), revenue=pl.col("revenue").sum())
        .join(sizes, on="cohort")
        .with_columns(retention=pl.col("active") / pl.col("size"))
        .sort("cohort", "period")
    )
    return table.with_columns(
        cohort=pl.format("{}-{}", pl.col("cohort") // 12,
                         (pl.col("cohort") % 12 + 1).cast(pl.String).str.zfill(2)),
        revenue_per_customer=pl.col("revenue") / pl.col("size"),
    ).select("cohort", "period", "size", "active", "retention", "revenue", "revenue_per_customer")


def cohorts_report(data: Dataset) -> Report:
    table = cohort_table(data.transactions)
    heat = table.pivot(on="period", index="cohort", values="retention", sort_columns=True) if table.height else table
    return Report("cohorts", "Monthly acquisition cohorts", data.as_of, table,
                  summary={"cohorts": table["cohort"].n_unique() if table.height else 0},
                  sections={"retention": heat}, plot_data={"retention": heat})
