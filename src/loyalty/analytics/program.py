"""Program measurement (members, share of sales, redemption, liability, breakage, uplift) and profitability."""

from __future__ import annotations

import math
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from loyalty.analytics.loader import Dataset, end_of_day_utc, returns_until
from loyalty.analytics.report import Report
from loyalty.models import LedgerEntry, LedgerPosting, Transaction, TransactionLine

UPLIFT_MONTHS = 6


def _month(day: pl.Expr) -> pl.Expr:
    return day.dt.year().cast(pl.Int32) * 12 + day.dt.month().cast(pl.Int32) - 1


def _label(month: pl.Expr) -> pl.Expr:
    return pl.format("{}-{}", month // 12, (month % 12 + 1).cast(pl.String).str.zfill(2))


def points_totals(session: Session, data: Dataset) -> dict[str, int]:
    """Issued, redeemed, expired and adjusted points up to the as-of date, from the ledger's program accounts."""
    end = end_of_day_utc(data.as_of, ZoneInfo(data.timezone))
    # An entry counts from when its purchase or return happened (imports record history late), else when
    # it was recorded (expiry, adjustments).
    moment = func.coalesce(Transaction.occurred_at, LedgerEntry.created_at)
    rows = session.execute(
        select(LedgerPosting.account, func.sum(LedgerPosting.amount))
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .outerjoin(Transaction, Transaction.id == LedgerEntry.transaction_id)
        .where(moment < end, LedgerPosting.account.in_(("issued", "redeemed", "expired", "adjusted")))
        .group_by(LedgerPosting.account)
    ).all()
    sums = {str(account): int(total or 0) for account, total in rows}
    # Issuing moves points out of `issued` into a member's account, so issued postings are negative.
    issued, redeemed = -int(sums.get("issued", 0)), int(sums.get("redeemed", 0))
    expired, adjusted = int(sums.get("expired", 0)), -int(sums.get("adjusted", 0))
    return {"issued": issued, "redeemed": redeemed, "expired": expired, "adjusted": adjusted,
            "outstanding": issued + adjusted - redeemed - expired}


def sales_by_membership(session: Session, data: Dataset) -> pl.DataFrame:
    end = end_of_day_utc(data.as_of, ZoneInfo(data.timezone))
    returned = returns_until(end)
    member = case((Transaction.customer_id.is_(None), False), else_=True)
    rows = session.execute(
        select(member, func.count(), func.sum(Transaction.amount - func.coalesce(returned.c.returned, 0)))
        .outerjoin(returned, returned.c.original_id == Transaction.id)
        .where(Transaction.kind == "purchase", Transaction.occurred_at < end)
        .group_by(member)
    ).all()
    frame = pl.DataFrame([(bool(m), int(n), int(v or 0)) for m, n, v in rows],
                         schema={"member": pl.Boolean, "transactions": pl.Int64, "revenue": pl.Int64}, orient="row")
    return frame


def uplift(data: Dataset) -> dict[str, Any]:
    """Members' spend in the 6 months after joining minus the 6 before, against the same change for customers
    who had not joined by the end of those months (difference in differences, 95% normal interval).

    Each enrolment month is compared with the customers not yet enrolled; the estimate is the
    treated-weighted average of the per-month differences.
    """
    if data.customers is None:
        return {"estimate": None, "reason": "needs enrolment dates"}
    monthly = (data.transactions.with_columns(month=_month(pl.col("day")))
               .group_by("customer", "month").agg(spend=pl.col("amount").sum()))
    enrolled = data.customers.select("customer", joined=_month(pl.col("enrolled_on")))
    last_full = _month(pl.lit(data.as_of)).alias("m")
    last_month = int(pl.select(last_full).item()) - 1
    cohorts = enrolled.filter(pl.col("joined") + UPLIFT_MONTHS - 1 <= last_month)["joined"].unique().sort()
    # Customers who bought before they enrolled: only they have a "before".
    first = monthly.group_by("customer").agg(first=pl.col("month").min())
    base = enrolled.join(first, on="customer", how="inner")
    estimates, variances, weights = [], [], []
    for month in cohorts.to_list():  # one step per enrolment month, vectorised over customers
        window = monthly.filter((pl.col("month") >= month - UPLIFT_MONTHS) & (pl.col("month") < month + UPLIFT_MONTHS))
        change = (window.group_by("customer").agg(
            delta=(pl.when(pl.col("month") >= month).then(pl.col("spend")).otherwise(-pl.col("spend"))).sum()))
        eligible = base.filter(pl.col("first") < month)
        treated = eligible.filter(pl.col("joined") == month).join(change, on="customer", how="left")
        control = eligible.filter(pl.col("joined") >= month + UPLIFT_MONTHS).join(change, on="customer", how="left")
        if treated.height < 2 or control.height < 2:
            continue
        t = treated["delta"].fill_null(0).to_numpy().astype(np.float64)
        c = control["delta"].fill_null(0).to_numpy().astype(np.float64)
        estimates.append(t.mean() - c.mean())
        variances.append(t.var(ddof=1) / t.size + c.var(ddof=1) / c.size)
        weights.append(float(t.size))
    if not estimates:
        return {"estimate": None, "reason": "no enrolment month has both members who bought before joining and "
                "customers not yet enrolled over the same 12 months"}
    w = np.array(weights) / sum(weights)
    estimate = float(np.dot(w, estimates))
    se = float(math.sqrt(float(np.dot(w ** 2, variances))))
    return {"estimate": estimate, "ci95": [estimate - 1.96 * se, estimate + 1.96 * se], "standard_error": se,
            "members": int(sum(weights)), "enrolment_months": len(estimates), "months_each_side": UPLIFT_MONTHS}


def point_value_at(session: Session, data: Dataset) -> int:
    """Points are valued by the program in force at the as-of date."""
    from loyalty.programs.service import program_at

    return program_at(session, end_of_day_utc(data.as_of, ZoneInfo(data.timezone))).definition.redemption.point_value


def program_report(session: Session, data: Dataset) -> Report:
    point_value = point_value_at(session, data)
    assert data.customers is not None
    members = (data.customers.with_columns(month=_month(pl.col("enrolled_on")))
               .group_by("month").agg(enrolled=pl.len()).sort("month")
               .with_columns(members=pl.col("enrolled").cum_sum(), month=_label(pl.col("month"))))
    sales = sales_by_membership(session, data)
    total_tx, total_revenue = int(sales["transactions"].sum() or 0), int(sales["revenue"].sum() or 0)
    member_row = sales.filter(pl.col("member"))
    member_tx = int(member_row["transactions"].sum() or 0)
    member_revenue = int(member_row["revenue"].sum() or 0)
    points = points_totals(session, data)
    issued = points["issued"]
    summary: dict[str, Any] = {
        "members": data.customers.height,
        "member_share_of_transactions": member_tx / total_tx if total_tx else None,
        "member_share_of_revenue": member_revenue / total_revenue if total_revenue else None,
        "points": points, "point_value": point_value,
        "redemption_rate": points["redeemed"] / issued if issued else None,
        "breakage": points["expired"] / issued if issued else None,
        "outstanding_liability": points["outstanding"] * point_value,
        "cost_of_rewards": points["redeemed"] * point_value,
        "uplift": uplift(data),
    }
    table = pl.DataFrame({
        "measure": ["members", "member share of transactions", "member share of revenue", "points issued",
                    "points redeemed", "points expired", "redemption rate", "breakage",
                    "outstanding liability", "cost of rewards", "uplift (6 months, DiD)"],
        "value": [str(summary["members"]), _pct(summary["member_share_of_transactions"]),
                  _pct(summary["member_share_of_revenue"]), f"{issued:,}", f"{points['redeemed']:,}",
                  f"{points['expired']:,}", _pct(summary["redemption_rate"]), _pct(summary["breakage"]),
                  f"{summary['outstanding_liability']:,}", f"{summary['cost_of_rewards']:,}",
                  _uplift_text(summary["uplift"])],
    })
    return Report("program", "Loyalty program", data.as_of, table, summary=summary,
                  sections={"members_by_month": members})


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _uplift_text(result: dict[str, Any]) -> str:
    if result.get("estimate") is None:
        return f"not estimable: {result['reason']}"
    low, high = result["ci95"]
    return f"{result['estimate']:,.0f} (95% CI {low:,.0f} to {high:,.0f})"


def profitability_report(data: Dataset, session: Session | None) -> Report:
    """Revenue, and margin where product cost is known, per customer, store, product and category, less the
    currency value of the points earned there. Product cost is not recorded in the database yet, so
    `gross_margin` stays empty unless a cost source is added."""
    point_value = 0
    if session is not None:
        point_value = point_value_at(session, data)
    tx = data.transactions
    points = pl.col("points") if "points" in tx.columns else pl.lit(0)

    def by(column: str, dimension: str) -> pl.DataFrame:
        return (tx.group_by(column).agg(revenue=pl.col("amount").sum(), points=points.sum())
                .select(pl.lit(dimension).alias("dimension"), pl.col(column).cast(pl.String).alias("key"),
                        "revenue", pl.lit(None, dtype=pl.Int64).alias("gross_margin"),
                        (pl.col("points") * point_value).alias("points_cost")))

    frames = [by("customer", "customer"), by("store", "store")]
    if session is not None:
        frames.extend(_lines(session, data, point_value))
    table = (pl.concat(frames).with_columns(revenue_after_points=pl.col("revenue") - pl.col("points_cost"))
             .sort(["dimension", "revenue_after_points"], descending=[False, True]))
    top = {d: table.filter(pl.col("dimension") == d).head(10) for d in ("customer", "store", "product", "category")}
    return Report("profitability", "Profitability", data.as_of, table,
                  summary={"revenue": int(tx["amount"].sum() or 0), "point_value": point_value,
                           "points_cost": int(table.filter(pl.col("dimension") == "customer")["points_cost"].sum()),
                           "gross_margin_known": False},
                  sections={f"top_{d}s": f for d, f in top.items() if f.height},
                  warnings=["product cost is not recorded, so gross margin is unknown; revenue is shown net of the "
                            "points cost only"])


def _lines(session: Session, data: Dataset, point_value: int) -> list[pl.DataFrame]:
    end = end_of_day_utc(data.as_of, ZoneInfo(data.timezone))
    value = TransactionLine.quantity * TransactionLine.unit_price
    # A purchase's points are shared among its lines in proportion to their value.
    share = (Transaction.points_earned - Transaction.points_reversed) * value * 1.0 / func.nullif(Transaction.amount, 0)
    frames = []
    for column, dimension in ((TransactionLine.sku, "product"), (TransactionLine.category, "category")):
        rows = session.execute(
            select(column, func.sum(value), func.coalesce(func.sum(share), 0))
            .join(Transaction, Transaction.id == TransactionLine.transaction_id)
            .where(Transaction.kind == "purchase", Transaction.occurred_at < end, column.is_not(None))
            .group_by(column)
        ).all()
        frames.append(pl.DataFrame(
            [(dimension, str(k), int(v), None, round(float(p) * point_value)) for k, v, p in rows],
            schema={"dimension": pl.String, "key": pl.String, "revenue": pl.Int64, "gross_margin": pl.Int64,
                    "points_cost": pl.Int64}, orient="row"))
    return frames
