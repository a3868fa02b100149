"""Revenue concentration: the share of revenue from the top 1/5/10/20/50% of customers, and the curve."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from loyalty.analytics.loader import Dataset
from loyalty.analytics.report import Report

TOP_PERCENTS = (1, 5, 10, 20, 50)


def concentration(revenue: np.ndarray, points: int = 101) -> tuple[pl.DataFrame, pl.DataFrame, float]:
    """(top-share table, curve, Gini) for per-customer revenues."""
    ordered = np.sort(revenue.astype(np.float64))[::-1]
    n, total = ordered.size, float(ordered.sum())
    cumulative = np.concatenate([[0.0], np.cumsum(ordered)])
    # The top p% are the ceil(p/100 * n) customers with the most revenue.
    counts = [min(n, math.ceil(p * n / 100)) for p in TOP_PERCENTS]
    shares = [float(cumulative[c] / total) if total else 0.0 for c in counts]
    top = pl.DataFrame({"top_percent": list(TOP_PERCENTS), "customers": counts, "revenue": [
        round(float(cumulative[c])) for c in counts], "revenue_share": shares})
    grid = np.linspace(0.0, 1.0, points)
    idx = np.minimum(np.ceil(grid * n).astype(np.int64), n)
    curve = pl.DataFrame({"customer_share": grid,
                          "revenue_share": cumulative[idx] / total if total else np.zeros_like(grid)})
    # Gini of revenue: 1 - 2 * area under the Lorenz curve (ascending order).
    ascending = np.cumsum(ordered[::-1]) / total if total else np.zeros(n)
    gini = float(1 - 2 * (ascending.sum() - ascending[-1] / 2) / n) if n and total else 0.0
    return top, curve, gini


def pareto_report(data: Dataset) -> Report:
    per = data.transactions.group_by("customer").agg(revenue=pl.col("amount").sum()).sort("revenue",
                                                                                              descending=True)
    top, curve, gini = concentration(per["revenue"].to_numpy())
    share_20 = float(top.filter(pl.col("top_percent") == 20)["revenue_share"][0]) if per.height else 0.0
    return Report("pareto", "Revenue concentration", data.as_of, top,
                  summary={"customers": per.height, "revenue": int(per["revenue"].sum() or 0),
                           "top_20_percent_share": share_20, "gini": gini},
                  sections={"curve": curve}, plot_data={"curve": curve})
