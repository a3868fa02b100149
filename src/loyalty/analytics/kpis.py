"""The owner's headline figures with their trend over the last 12 months (the staff home page).

One GROUP BY per figure over the whole base (months bucketed by the database in the business time
zone, with service.reports.month_of); Python only accumulates the dozen monthly rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from loyalty.models import Customer, LedgerEntry, LedgerPosting, Transaction
from loyalty.models.service import Ticket
from loyalty.programs.service import program_at
from loyalty.service.reports import month_of, score_report

OUTSTANDING = ("available", "pending", "held")
OPEN_STATUSES = ("new", "assigned", "waiting")


@dataclass(frozen=True, slots=True)
class Kpi:
    key: str
    label: str
    value: float | None
    series: list[float | None]
    unit: str = ""          # "VND", "%", "points" or ""
    good_when_up: bool = True
    note: str = ""


@dataclass(frozen=True, slots=True)
class Kpis:
    months: list[str]
    figures: list[Kpi] = field(default_factory=list)

    def get(self, key: str) -> Kpi:
        return next(k for k in self.figures if k.key == key)


def month_labels(now: datetime, tz: ZoneInfo, months: int) -> tuple[list[str], datetime]:
    """The last `months` calendar months ending with the current one, and the UTC start of the first."""
    local = now.astimezone(tz)
    year, month = local.year, local.month
    labels: list[str] = []
    for _ in range(months):
        labels.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    labels.reverse()
    first_year, first_month = int(labels[0][:4]), int(labels[0][5:])
    start = datetime(first_year, first_month, 1, tzinfo=tz).astimezone(UTC)
    return labels, start


def _by_month(rows: Sequence[Any]) -> dict[str, float]:
    return {str(m): float(v or 0) for m, v in rows if m is not None}


def _cumulative(before: float, monthly: dict[str, float], labels: list[str]) -> list[float | None]:
    out: list[float | None] = []
    running = before
    for label in labels:
        running += monthly.get(label, 0.0)
        out.append(running)
    return out


def monthly_kpis(session: Session, now: datetime, tz: ZoneInfo, months: int = 12) -> Kpis:
    labels, start = month_labels(now, tz, months)
    end = now + timedelta(seconds=1)

    # Members: enrolled by the end of each month.
    enrolled_month = month_of(session, Customer.enrolled_at, tz, now)
    before = session.scalar(select(func.count()).select_from(Customer).where(Customer.enrolled_at < start)) or 0
    joined = _by_month(session.execute(select(enrolled_month, func.count()).where(Customer.enrolled_at >= start)
                                       .group_by(enrolled_month)).all())
    members = _cumulative(float(before), joined, labels)

    # Active members and their net revenue (purchases less returns) per month.
    sale_month = month_of(session, Transaction.occurred_at, tz, now)
    net = case((Transaction.kind == "return", -Transaction.amount), else_=Transaction.amount)
    sales = session.execute(
        select(sale_month, func.count(func.distinct(case((Transaction.kind == "purchase", Transaction.customer_id)))),
               func.sum(net))
        .where(Transaction.customer_id.is_not(None), Transaction.occurred_at >= start, Transaction.occurred_at < end)
        .group_by(sale_month)).all()
    active = {str(m): float(a or 0) for m, a, _ in sales}
    revenue = {str(m): float(r or 0) for m, _, r in sales}

    # Points: outstanding at each month's end (valued at the point value in force), issued and redeemed.
    # An entry counts from when its sale happened (imports record history late), else when it was
    # recorded (expiry, adjustments), as analytics.program.points_totals does.
    moment = func.coalesce(Transaction.occurred_at, LedgerEntry.created_at)
    entry_month = month_of(session, moment, tz, now)
    outstanding_before = session.scalar(
        select(func.coalesce(func.sum(LedgerPosting.amount), 0))
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .outerjoin(Transaction, Transaction.id == LedgerEntry.transaction_id)
        .where(LedgerPosting.account.in_(OUTSTANDING), moment < start)) or 0
    flows = session.execute(
        select(entry_month,
               func.sum(case((LedgerPosting.account.in_(OUTSTANDING), LedgerPosting.amount), else_=0)),
               func.sum(case((LedgerPosting.account == "issued", -LedgerPosting.amount), else_=0)),
               func.sum(case((LedgerPosting.account == "redeemed", LedgerPosting.amount), else_=0)))
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .outerjoin(Transaction, Transaction.id == LedgerEntry.transaction_id)
        .where(moment >= start)
        .group_by(entry_month)).all()
    point_value = program_at(session, now).definition.redemption.point_value
    change = {str(m): float(o or 0) for m, o, _, _ in flows}
    liability_points = _cumulative(float(outstanding_before), change, labels)
    liability = [None if p is None else p * point_value for p in liability_points]
    issued = {str(m): float(i or 0) for m, _, i, _ in flows}
    redeemed = {str(m): float(r or 0) for m, _, _, r in flows}
    redemption = [(redeemed.get(m, 0.0) / issued[m] * 100) if issued.get(m) else None for m in labels]
    total_issued, total_redeemed = sum(issued.values()), sum(redeemed.values())

    # NPS per month, and over the whole year.
    nps_rows = {r.month: r.score for r in score_report(session, "nps", by=["month"], since=start, until=end, tz=tz,
                                                       now=now)}
    nps_year = score_report(session, "nps", by=[], since=start, until=end, tz=tz, now=now)

    # Tickets: opened and breached (first response late) per month; open and breached open now.
    opened_month = month_of(session, Ticket.created_at, tz, now)
    tickets = session.execute(
        select(opened_month, func.count(),
               func.sum(case((Ticket.breached_at.is_not(None) | Ticket.resolution_breached_at.is_not(None), 1),
                             else_=0)))
        .where(Ticket.created_at >= start).group_by(opened_month)).all()
    opened = {str(m): float(n or 0) for m, n, _ in tickets}
    breached = {str(m): float(b or 0) for m, _, b in tickets}
    open_now, breached_now = session.execute(
        select(func.count(), func.sum(case((
            Ticket.breached_at.is_not(None) | Ticket.resolution_breached_at.is_not(None)
            | (Ticket.first_response_at.is_(None) & (Ticket.first_response_due_at < now))
            | (Ticket.resolution_due_at < now), 1), else_=0)))
        .where(Ticket.status.in_(OPEN_STATUSES))).one()

    def series(values: dict[str, float]) -> list[float | None]:
        return [values.get(m, 0.0) for m in labels]

    figures = [
        Kpi("members", "Members", members[-1], members, note="enrolled by the end of each month"),
        Kpi("active", "Active members", active.get(labels[-1], 0.0), series(active),
            note="members who bought in the month"),
        Kpi("revenue", "Revenue from members", revenue.get(labels[-1], 0.0), series(revenue), unit="VND",
            note="this month, net of returns"),
        Kpi("liability", "Points liability", liability[-1], liability, unit="VND", good_when_up=False,
            note=f"outstanding points × {point_value:,} VND"),
        Kpi("redemption", "Redemption rate", (total_redeemed / total_issued * 100) if total_issued else None,
            redemption, unit="%", note="points redeemed / issued, last 12 months"),
        Kpi("nps", "NPS", nps_year[0].score if nps_year else None, [nps_rows.get(m) for m in labels],
            note=f"{nps_year[0].answers:,} answers, 95% CI {nps_year[0].ci_low}..{nps_year[0].ci_high}"
            if nps_year else "no answers yet"),
        Kpi("open_tickets", "Open tickets", float(open_now or 0), series(opened), good_when_up=False,
            note="open now; the trend is tickets opened per month"),
        Kpi("breached_tickets", "Breached tickets", float(breached_now or 0), series(breached), good_when_up=False,
            note="open and past a deadline now; the trend is breaches per month"),
    ]
    return Kpis(labels, figures)
