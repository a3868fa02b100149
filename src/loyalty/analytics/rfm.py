"""RFM: recency, frequency and monetary value per customer, quintile scores and the usual segment map."""

from __future__ import annotations

import numpy as np
import polars as pl

from loyalty.analytics.loader import Dataset
from loyalty.analytics.report import Report

SEGMENTS = ("Champions", "Loyal Customers", "Potential Loyalists", "New Customers", "Promising", "Need Attention",
            "About to Sleep", "At Risk", "Can't Lose Them", "Hibernating")

# The usual segment map on R (rows, 1-5) and F (columns, 1-5).
_H, _AR, _CL, _AS, _NA, _LC, _P, _NC, _PL, _C = ("Hibernating", "At Risk", "Can't Lose Them", "About to Sleep",
                                                  "Need Attention", "Loyal Customers", "Promising", "New Customers",
                                                  "Potential Loyalists", "Champions")
SEGMENT_MAP: tuple[tuple[str, ...], ...] = (
    (_H, _H, _AR, _AR, _CL),     # R = 1
    (_H, _H, _AR, _AR, _CL),     # R = 2
    (_AS, _AS, _NA, _LC, _LC),   # R = 3
    (_P, _PL, _PL, _LC, _LC),    # R = 4
    (_NC, _PL, _PL, _C, _C),     # R = 5
)


def quintile(values: pl.Expr) -> pl.Expr:
    """Scores 1-5 by rank; ties are broken by order (the frame is sorted by customer) so quintiles stay balanced."""
    return ((values.rank("ordinal") - 1) * 5 // pl.len() + 1).cast(pl.Int8)


def score(summary: pl.DataFrame) -> pl.DataFrame:
    """Adds r, f, m scores and the segment; `summary` comes from customer_summary (sorted by customer)."""
    scored = summary.with_columns(
        # More recent (fewer days since the last purchase) scores higher.
        r=quintile(-pl.col("recency_days")),
        f=quintile(pl.col("purchases")),
        m=quintile(pl.col("revenue")),
    )
    lookup = np.array([name for row in SEGMENT_MAP for name in row])
    cells = ((scored["r"].to_numpy().astype(np.int64) - 1) * 5 + scored["f"].to_numpy().astype(np.int64) - 1)
    segment = lookup[cells] if scored.height else np.array([], dtype=str)
    return scored.with_columns(segment=pl.Series(segment, dtype=pl.String))


def segments(scored: pl.DataFrame) -> pl.DataFrame:
    customers, revenue = scored.height, int(scored["revenue"].sum()) if scored.height else 0
    per = scored.group_by("segment").agg(members=pl.len(), revenue=pl.col("revenue").sum())
    base = pl.DataFrame({"segment": list(SEGMENTS)})
    return (
        base.join(per, on="segment", how="left")
        .with_columns(pl.col("members").fill_null(0).cast(pl.Int64), pl.col("revenue").fill_null(0).cast(pl.Int64))
        .with_columns(
            share_of_customers=pl.col("members") / max(customers, 1),
            share_of_revenue=pl.col("revenue") / (revenue if revenue else 1),
            average_value=pl.when(pl.col("members") > 0).then(pl.col("revenue") / pl.col("members")).otherwise(0.0),
        )
    )


def rfm_report(data: Dataset) -> Report:
    summary = data.summary()
    scored = score(summary)
    table = scored.select("customer", "recency_days", pl.col("purchases").alias("frequency"),
                          pl.col("revenue").alias("monetary"), "r", "f", "m", "segment", "first", "last")
    grid = scored.group_by("r", "f").agg(customers=pl.len(), revenue=pl.col("revenue").sum()).sort("r", "f")
    per_segment = segments(scored)
    return Report("rfm", "RFM segments", data.as_of, table,
                  summary={"customers": scored.height, "revenue": int(scored["revenue"].sum() or 0),
                           "segments": per_segment.to_dicts()},
                  sections={"segments": per_segment, "grid": grid})
