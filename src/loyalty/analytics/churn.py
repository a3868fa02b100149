"""Churn risk from P(alive), and the win-back list: once-valuable customers who are probably gone or going."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from loyalty.analytics.clv import ClvOptions, score_customers
from loyalty.analytics.loader import Dataset
from loyalty.analytics.report import Report
from loyalty.analytics.summary import PURCHASE
from loyalty.errors import ValidationFailed


@dataclass(frozen=True, slots=True)
class WinBackOptions:
    # Once valuable: revenue at or above this quantile of all customers' revenue (0.8 = the top 20%).
    value_quantile: float = 0.8
    # Probably gone or going: P(alive) below this.
    max_p_alive: float = 0.5

    def check(self) -> None:
        if not 0 <= self.value_quantile < 1 or not 0 < self.max_p_alive <= 1:
            raise ValidationFailed("value quantile must be in [0, 1) and the P(alive) cut-off in (0, 1]")


def last_stores(transactions: pl.DataFrame) -> pl.DataFrame:
    return (transactions.filter(PURCHASE)
            .group_by("customer").agg(last_store=pl.col("store").sort_by("day").last()))


def favourite_categories(lines: pl.DataFrame, top: int = 3) -> pl.DataFrame:
    """customer -> 'A, B, C': the categories with the most spend. `lines` has customer, category, spend."""
    return (lines.sort(["customer", "spend", "category"], descending=[False, True, False])
            .group_by("customer", maintain_order=True).head(top)
            .group_by("customer").agg(favourite_categories=pl.col("category").str.join(", ")))


def churn_report(data: Dataset, clv: ClvOptions, options: WinBackOptions,
                 lines: pl.DataFrame | None = None) -> Report:
    options.check()
    scored = score_customers(data, clv)
    table = scored.table.with_columns(churn_risk=1 - pl.col("p_alive")).sort(
        ["churn_risk", "revenue"], descending=[True, True])
    threshold = float(np.quantile(table["revenue"].to_numpy(), options.value_quantile)) if table.height else 0.0
    conditional = (pl.when(pl.col("p_alive") > 0).then(pl.col("expected_purchases") / pl.col("p_alive"))
                   .otherwise(0.0))
    winback = (
        table.filter((pl.col("revenue") >= threshold) & (pl.col("p_alive") < options.max_p_alive))
        # What winning them back is worth: the spend they would bring if alive, times the chance they are not.
        .with_columns(expected_value_recovered=(1 - pl.col("p_alive")) * pl.col("expected_spend") * conditional)
        .join(last_stores(data.transactions), on="customer", how="left")
    )
    if lines is not None and lines.height:
        winback = winback.join(favourite_categories(lines), on="customer", how="left")
    else:
        winback = winback.with_columns(favourite_categories=pl.lit(None, dtype=pl.String))
    if data.customers is not None:
        consent = data.customers.select(
            "customer", "consent_email", "consent_sms", "consent_zalo", "consent_phone",
            contactable=pl.any_horizontal("consent_email", "consent_sms", "consent_zalo", "consent_phone"))
        winback = winback.join(consent, on="customer", how="left")
    winback = winback.sort("expected_value_recovered", descending=True).select(
        "customer", "revenue", "last", "p_alive", "expected_spend", "expected_value_recovered", "last_store",
        "favourite_categories", *[c for c in ("contactable", "consent_email", "consent_sms", "consent_zalo",
                                               "consent_phone") if c in winback.columns])
    risk = table.select("customer", "churn_risk", "p_alive", "x", "revenue", "last", "expected_purchases", "clv")
    band = (pl.when(pl.col("churn_risk") < 0.25).then(pl.lit("1 low (<25%)"))
            .when(pl.col("churn_risk") < 0.5).then(pl.lit("2 medium (25-50%)"))
            .when(pl.col("churn_risk") < 0.75).then(pl.lit("3 high (50-75%)"))
            .otherwise(pl.lit("4 very high (75%+)")))
    bands = (risk.with_columns(band=band).group_by("band")
             .agg(customers=pl.len(), revenue=pl.col("revenue").sum()).sort("band"))
    return Report("churn", "Churn risk and win-back", data.as_of, winback,
                  summary={"customers": risk.height, "at_risk": int((risk["p_alive"] < options.max_p_alive).sum()),
                           "winback_customers": winback.height, "value_threshold": threshold,
                           "winback_value": float(winback["expected_value_recovered"].sum() or 0.0),
                           "model": clv.model},
                  sections={"risk_bands": bands, "by_risk": risk.head(1000)}, warnings=scored.warnings,
                  plot_data={"p_alive": risk["p_alive"]},
                  display=["customer", "revenue", "last", "p_alive", "expected_value_recovered", "last_store",
                           *(["contactable"] if "contactable" in winback.columns else [])])
