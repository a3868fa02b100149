"""Service reports: NPS and CSAT with confidence intervals, response times, weekly complaint trends, departures.

Every figure is aggregated by the database (GROUP BY, SUM(CASE ...)); Python only turns the
few aggregated rows into rates and intervals. Comments are the exception: finding frequent
words needs the text, so the week's comments are read (at most MAX_COMMENTS).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, case, cast, func, literal, select, union_all
from sqlalchemy.engine import Result
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from loyalty.models.service import Departure, StaffMember, SurveyResponse, Ticket
from loyalty.service import text
from loyalty.timeutil import start_of_business_day

Z = 1.959964  # two-sided 95 %
MAX_COMMENTS = 5000


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def month_of(session: Session, column: Any, tz: ZoneInfo, at: datetime) -> ColumnElement[str]:
    """'YYYY-MM' of a UTC column in the business zone.

    PostgreSQL converts with the zone's rules; SQLite adds the zone's offset at `at` (exact for
    zones without daylight saving, such as Asia/Ho_Chi_Minh).
    """
    if _dialect(session) == "postgresql":
        return func.to_char(func.timezone(tz.key, column), "YYYY-MM")
    offset = int((at.astimezone(tz).utcoffset() or timedelta()).total_seconds() // 60)
    return func.strftime("%Y-%m", column, f"{offset:+d} minutes")


def hours_between(session: Session, start: Any, end: Any) -> ColumnElement[Any]:
    if _dialect(session) == "postgresql":
        return func.extract("epoch", end - start) / 3600.0
    return (func.julianday(end) - func.julianday(start)) * 24.0


# --- NPS and CSAT -----------------------------------------------------------------------------

def nps_interval(promoters: int, detractors: int, n: int) -> tuple[float, float]:
    """95 % interval for NPS (in points, -100..100).

    NPS = 100 (p - d). Its variance from the promoter and detractor shares is
    ((p + d) - (p - d)^2) / n (the Wald interval). Computed on counts with one pseudo-answer of
    each kind added (promoter, passive, detractor; the Agresti-Caffo adjustment), so 9 answers
    that are all promoters give roughly 41..100 instead of a certain 100.
    """
    if n <= 0:
        return -100.0, 100.0
    m = n + 3
    p, d = (promoters + 1) / m, (detractors + 1) / m
    centre = p - d
    half = Z * math.sqrt(max((p + d) - centre * centre, 0.0) / m)
    return max(-100.0, 100 * (centre - half)), min(100.0, 100 * (centre + half))


def wilson(successes: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion, in percent."""
    if n <= 0:
        return 0.0, 100.0
    phat = successes / n
    denominator = 1 + Z * Z / n
    centre = (phat + Z * Z / (2 * n)) / denominator
    half = Z * math.sqrt(phat * (1 - phat) / n + Z * Z / (4 * n * n)) / denominator
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class ScoreRow:
    store_id: str | None
    channel: str | None
    month: str | None
    answers: int
    score: float  # NPS in points, or CSAT as % satisfied
    ci_low: float
    ci_high: float
    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    satisfied: int = 0
    mean: float | None = None


def _dims(session: Session, by: list[str], tz: ZoneInfo, now: datetime) -> list[ColumnElement[Any]]:
    columns: dict[str, Any] = {
        "store": SurveyResponse.store_id, "channel": SurveyResponse.channel,
        "month": month_of(session, SurveyResponse.created_at, tz, now)}
    return [columns[name].label(name) for name in by]


def score_report(session: Session, kind: str, *, by: list[str], since: datetime, until: datetime, tz: ZoneInfo,
                 now: datetime) -> list[ScoreRow]:
    """NPS or CSAT per store, channel and/or month, ranked by the interval's lower bound (month by month)."""
    dims = _dims(session, by, tz, now)
    score = SurveyResponse.score
    high, low = (score >= 9, score <= 6) if kind == "nps" else (score >= 4, score <= 2)
    query = (select(*dims, func.count().label("n"), func.sum(case((high, 1), else_=0)).label("high"),
                    func.sum(case((low, 1), else_=0)).label("low"), func.avg(cast(score, Float)).label("mean"))
             .where(SurveyResponse.kind == kind, SurveyResponse.score.is_not(None),
                    SurveyResponse.created_at >= since, SurveyResponse.created_at < until))
    if dims:
        query = query.group_by(*dims)
    rows: list[ScoreRow] = []
    for row in session.execute(query).mappings():
        n, top, bottom = int(row["n"]), int(row["high"] or 0), int(row["low"] or 0)
        if n == 0:
            continue
        keys = {name: row[name] for name in by}
        if kind == "nps":
            ci = nps_interval(top, bottom, n)
            rows.append(ScoreRow(keys.get("store"), keys.get("channel"), keys.get("month"), n,
                                 round(100 * (top - bottom) / n, 1), round(ci[0], 1), round(ci[1], 1),
                                 promoters=top, passives=n - top - bottom, detractors=bottom))
        else:
            ci = wilson(top, n)
            rows.append(ScoreRow(keys.get("store"), keys.get("channel"), keys.get("month"), n,
                                 round(100 * top / n, 1), round(ci[0], 1), round(ci[1], 1), satisfied=top,
                                 mean=round(float(row["mean"]), 2)))
    # Months read in order; within a month (or without months) the surest best comes first.
    return sorted(rows, key=lambda r: (str(r.month), -r.ci_low, -r.answers, str(r.store_id), str(r.channel)))


# --- response and resolution times --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TimeRow:
    key: str | None
    name: str | None
    tickets: int
    responded: int
    within_sla: int
    breached: int
    resolved: int
    avg_first_response_hours: float | None
    avg_resolution_hours: float | None
    overdue: int = 0  # resolution breaches: not resolved by the resolution due time


def service_times(session: Session, *, by: str, since: datetime, until: datetime,
                  stores: frozenset[str] | None = None) -> list[TimeRow]:
    """Per store or per owner: how fast the first answer came and how fast tickets were resolved.

    `breached` counts late first responses, `overdue` tickets not resolved by their resolution
    due time (marked by the SLA job, or when resolved late)."""
    key = Ticket.store_id if by == "store" else cast(Ticket.owner_id, Float)
    name = literal(None) if by == "store" else func.max(StaffMember.name)
    response = hours_between(session, Ticket.created_at, Ticket.first_response_at)
    resolution = hours_between(session, Ticket.created_at, Ticket.resolved_at)
    query = (select(key.label("key"), name.label("name"), func.count().label("tickets"),
                    func.count(Ticket.first_response_at).label("responded"),
                    func.sum(case((Ticket.first_response_at <= Ticket.first_response_due_at, 1), else_=0)),
                    func.count(Ticket.breached_at), func.count(Ticket.resolved_at),
                    func.avg(response), func.avg(resolution), func.count(Ticket.resolution_breached_at))
             .outerjoin(StaffMember, StaffMember.id == Ticket.owner_id)
             .where(Ticket.created_at >= since, Ticket.created_at < until)
             .group_by(key).order_by(key))
    if stores is not None:
        query = query.where(Ticket.store_id.in_(sorted(stores)))
    return [TimeRow(None if k is None else (str(int(k)) if by == "owner" else str(k)), n, int(total), int(answered),
                    int(within or 0), int(breached), int(resolved),
                    None if avg_response is None else round(float(avg_response), 1),
                    None if avg_resolution is None else round(float(avg_resolution), 1), int(overdue))
            for k, n, total, answered, within, breached, resolved, avg_response, avg_resolution, overdue
            in session.execute(query).all()]


# --- weekly review: complaint trends and frequent words -------------------------------------

@dataclass(frozen=True, slots=True)
class TrendRow:
    dimension: str  # "category" or "store"
    value: str | None
    this_week: int
    previous: list[int]  # oldest first
    mean: float
    threshold: float
    rising: bool


def rising(this_week: int, previous: list[int]) -> tuple[float, float, bool]:
    """(mean, threshold, flagged): beyond normal variation means more than mean + 2 sd of the
    previous weeks, with the sd at least sqrt(mean) (Poisson noise, so a flat history does not
    flag 1 -> 2) and at least 1, and at least 3 complaints this week."""
    mean = statistics.fmean(previous) if previous else 0.0
    sd = statistics.pstdev(previous) if len(previous) > 1 else 0.0
    threshold = mean + 2 * max(sd, math.sqrt(mean), 1.0)
    return round(mean, 2), round(threshold, 2), this_week >= 3 and this_week > threshold


def week_start(day: date, tz: ZoneInfo) -> datetime:
    """Monday 00:00 of the week holding `day`, in the business zone, as UTC."""
    return start_of_business_day(day - timedelta(days=day.weekday()), tz)


def complaint_trends(session: Session, *, week_of: date, weeks: int, tz: ZoneInfo) -> list[TrendRow]:
    """Complaints by category and by store: this week against each of the previous `weeks`."""
    starts = [week_start(week_of - timedelta(weeks=back), tz) for back in range(weeks, -1, -1)]
    ends = [*starts[1:], starts[-1] + timedelta(weeks=1)]
    counts = [func.sum(case(((Ticket.created_at >= s) & (Ticket.created_at < e), 1), else_=0)).label(f"w{i}")
              for i, (s, e) in enumerate(zip(starts, ends, strict=True))]
    window = (Ticket.created_at >= starts[0]) & (Ticket.created_at < ends[-1])
    by_category = select(literal("category").label("dimension"), Ticket.category.label("value"), *counts) \
        .where(window).group_by(Ticket.category)
    by_store = select(literal("store").label("dimension"), Ticket.store_id.label("value"), *counts) \
        .where(window).group_by(Ticket.store_id)
    rows: list[TrendRow] = []
    merged: Result[Any] = session.execute(union_all(by_category, by_store))
    result: list[tuple[Any, ...]] = [tuple(r) for r in merged.all()]
    for dimension, value, *weekly in result:
        series = [int(v or 0) for v in weekly]
        mean, threshold, flagged = rising(series[-1], series[:-1])
        rows.append(TrendRow(dimension, value, series[-1], series[:-1], mean, threshold, flagged))
    return sorted(rows, key=lambda r: (r.dimension, not r.rising, -r.this_week, str(r.value)))


def week_comments(session: Session, *, week_of: date, tz: ZoneInfo) -> list[str]:
    start = week_start(week_of, tz)
    end = start + timedelta(weeks=1)
    answers = select(SurveyResponse.comment.label("text"), SurveyResponse.created_at.label("at")).where(
        SurveyResponse.created_at >= start, SurveyResponse.created_at < end, SurveyResponse.comment != "")
    complaints = select(Ticket.description, Ticket.created_at).where(
        Ticket.created_at >= start, Ticket.created_at < end, Ticket.survey_response_id.is_(None))
    merged = union_all(answers, complaints).subquery()
    return list(session.scalars(select(merged.c.text).order_by(merged.c.at.desc()).limit(MAX_COMMENTS)))


def frequent_terms(session: Session, *, week_of: date, tz: ZoneInfo,
                   limit: int = 15) -> tuple[int, list[text.Term], list[text.Term]]:
    comments = week_comments(session, week_of=week_of, tz=tz)
    top_words, top_phrases = text.top_terms(comments, limit=limit)
    return len(comments), top_words, top_phrases


# --- why customers leave ----------------------------------------------------------------------

def departure_reasons(session: Session, *, since: datetime, until: datetime) -> list[tuple[str, str, int]]:
    """(kind, reason, count), most frequent first."""
    query = (select(Departure.kind, Departure.reason, func.count())
             .where(Departure.created_at >= since, Departure.created_at < until)
             .group_by(Departure.kind, Departure.reason)
             .order_by(Departure.kind, func.count().desc(), Departure.reason))
    return [(k, r, int(n)) for k, r, n in session.execute(query).all()]
