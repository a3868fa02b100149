"""The names of the reports, importable without loading Polars or SciPy (the CLI starts fast)."""

from __future__ import annotations

REPORTS: dict[str, str] = {
    "rfm": "Recency, frequency, monetary value: quintile scores and segments",
    "pareto": "Revenue share of the top 1/5/10/20/50% of customers, and the curve",
    "clv": "BG/NBD (or Pareto/NBD) and Gamma-Gamma: expected purchases, P(alive), spend, lifetime value",
    "churn": "Customers by churn risk, and the win-back list of once-valuable customers",
    "cohorts": "Monthly acquisition cohorts: retention and revenue by month since the first purchase",
    "lifecycle": "Lifecycle stage per customer, counts, and flows over the last period",
    "program": "Members, their share of sales, redemption, points liability, breakage, cost, uplift",
    "profitability": "Revenue and margin per customer, product, category and store, net of points cost",
}
