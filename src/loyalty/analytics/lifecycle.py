"""Lifecycle stage per customer (prospect ... lost), counts, and the flows between stages over the last period."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from loyalty.analytics.loader import Dataset
from loyalty.analytics.report import Report

STAGES = ("prospect", "first purchase", "repeat", "loyal", "advocate", "lapsed", "lost")


def no_referrals(customers: pl.Series) -> pl.Series:
    """Nobody is an advocate: for data without referrals (a CSV file)."""
    return pl.Series("advocate", [False] * customers.len(), dtype=pl.Boolean)


def advocates(data: Dataset, as_of: date) -> Callable[[pl.Series], pl.Series]:
    """Members one of whose referrals had qualified by `as_of` (referral_codes.advocate_since, L13)."""
    if data.customers is None or "advocate_on" not in data.customers.columns:
        return no_referrals
    ids = data.customers.filter(pl.col("advocate_on") <= as_of)["customer"]
    return lambda customers: customers.is_in(ids.implode()).alias("advocate")


@dataclass(frozen=True, slots=True)
class Thresholds:
    lapsed_after_days: int
    lost_after_days: int
    loyal_min_purchases: int
    cycle_days: float

    @classmethod
    def derive(cls, summary: pl.DataFrame, lapsed_after_days: int | None = None, lost_after_days: int | None = None,
               loyal_min_purchases: int | None = None) -> Thresholds:
        """Defaults from the business's own purchase cycle: the median gap between a repeat buyer's purchase
        days. Lapsed after two cycles (at least 2 weeks), lost after four (and after the lapse), loyal from
        the upper quartile of repeat buyers' purchase days (at least 3)."""
        repeat = summary.filter(pl.col("days") > 1)
        gaps = (repeat["span_days"] / (repeat["days"] - 1)).to_numpy() if repeat.height else np.array([30.0])
        cycle = float(np.median(gaps))
        lapsed = lapsed_after_days or max(14, math.ceil(2 * cycle))
        lost = lost_after_days or max(lapsed + 1, math.ceil(4 * cycle))
        quartile = float(np.quantile(repeat["days"].to_numpy(), 0.75)) if repeat.height else 3.0
        loyal = loyal_min_purchases or max(3, math.ceil(quartile))
        return cls(lapsed, lost, loyal, cycle)


def stages(data: Dataset, as_of: date, limits: Thresholds,
           referrals: Callable[[pl.Series], pl.Series] | None = None) -> pl.DataFrame:
    """customer, stage at `as_of`: enrolled customers without purchases are prospects."""
    referrals = referrals or advocates(data, as_of)
    summary = data.summary(as_of)
    enrolled = data.customers
    bought = summary.select("customer", "days", "recency_days")
    if enrolled is not None:
        known = enrolled.filter(pl.col("enrolled_on") <= as_of).select("customer")
        bought = known.join(bought, on="customer", how="full", coalesce=True)
    bought = bought.with_columns(advocate=referrals(bought["customer"]))
    return bought.with_columns(stage=(
        pl.when(pl.col("days").is_null()).then(pl.lit("prospect"))
        .when(pl.col("recency_days") > limits.lost_after_days).then(pl.lit("lost"))
        .when(pl.col("recency_days") > limits.lapsed_after_days).then(pl.lit("lapsed"))
        .when(pl.col("advocate")).then(pl.lit("advocate"))
        .when(pl.col("days") >= limits.loyal_min_purchases).then(pl.lit("loyal"))
        .when(pl.col("days") > 1).then(pl.lit("repeat"))
        .otherwise(pl.lit("first purchase"))
    )).select("customer", "stage", "days", "recency_days").sort("customer")


def lifecycle_report(data: Dataset, period_days: int = 30, lapsed_after_days: int | None = None,
                     lost_after_days: int | None = None, loyal_min_purchases: int | None = None) -> Report:
    limits = Thresholds.derive(data.summary(), lapsed_after_days, lost_after_days, loyal_min_purchases)
    now = stages(data, data.as_of, limits)
    start = data.as_of - timedelta(days=period_days)
    before = stages(data, start, limits)
    flows = (
        now.select("customer", pl.col("stage").alias("to"))
        .join(before.select("customer", pl.col("stage").alias("from")), on="customer", how="left")
        .with_columns(pl.col("from").fill_null("new"))
        .group_by("from", "to").agg(customers=pl.len()).sort("from", "to")
    )
    counts = (pl.DataFrame({"stage": list(STAGES)})
              .join(now.group_by("stage").agg(customers=pl.len()), on="stage", how="left")
              .with_columns(pl.col("customers").fill_null(0).cast(pl.Int64))
              .with_columns(share=pl.col("customers") / max(now.height, 1)))
    return Report("lifecycle", "Lifecycle stages", data.as_of, now,
                  summary={"thresholds": {"lapsed_after_days": limits.lapsed_after_days,
                                          "lost_after_days": limits.lost_after_days,
                                          "loyal_min_purchases": limits.loyal_min_purchases,
                                          "purchase_cycle_days": limits.cycle_days},
                           "period_start": start.isoformat(), "customers": now.height,
                           "stages": dict(zip(counts["stage"].to_list(), counts["customers"].to_list(), strict=True))},
                  sections={"stages": counts, "flows": flows}, plot_data={"flows": flows},
                  warnings=[] if data.customers is not None else
                  ["no enrolment data (CSV input): prospects cannot be seen"])
