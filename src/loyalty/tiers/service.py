"""Tiers (L4): qualify on spend, points earned or purchases in a window, never on the spendable balance.

- A purchase upgrades at once when it crosses a higher threshold (`on_purchase`); nothing but a
  review ever downgrades, so spending points or returning goods never costs a tier on the spot.
- Reviews fall on the first business day of each month, quarter or year. At review R a member
  keeps the best tier of (a) what they qualified for in the window that closed at R (for a
  calendar-year window, the last complete year) and (b) what they qualify for now; if that is
  lower than their tier, they move down `grace_days` after R, once (reviewed_at = R). The job
  works on the latest review whose grace is over, so a grace longer than the review period
  (monthly reviews, 30 days' grace) still downgrades, one review late rather than never.
- An admin override wins until its end date; then the earned tier shows again.

Windows are half-open [start, end) in the program's time zone. "Now" includes the moment itself.
A rolling window of N months on business day D starts on the day after D minus N months, so a
purchase counts through the day before the same date N months later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, bindparam, case, exists, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from loyalty.customers.service import require_customer
from loyalty.driver import DriverStatement
from loyalty.errors import Conflict, NotFound, ValidationFailed
from loyalty.models.base import UTCDateTime
from loyalty.models.tiers import MemberTier, TierHistory
from loyalty.programs.schemas import TierLevel, TierPerks, TierProgram
from loyalty.programs.service import ActiveProgram, program_at
from loyalty.tiers import repository
from loyalty.timeutil import add_months, as_utc, business_date, start_of_business_day, utcnow
from loyalty.transactions.hotpath import NOT_NOTED, NotNoted, TierMetric

_MT = cast(Table, MemberTier.__table__)
_HISTORY = cast(Table, TierHistory.__table__)
_TICK = timedelta(microseconds=1)
_REVIEW_MONTHS = {"month": 1, "quarter": 3, "year": 12}
REVIEW_ACTOR = "job:tier-review"


@dataclass(frozen=True, slots=True)
class TierChange:
    customer_id: int
    from_tier: str | None
    to_tier: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Progress:
    metric: str
    value: int                   # the qualifying metric in the current window, net of returns
    window_start: date           # first business day of the current window
    tier: str                    # the tier in force (an active override first)
    earned_tier: str             # the tier earned by qualification
    since: datetime | None       # when the earned tier was reached (None: base tier, never evaluated)
    keeps_tier: bool             # value already reaches the earned tier's threshold
    next_tier: TierLevel | None  # the level above `tier`; None at the top
    missing: int                 # how much more of the metric reaches next_tier now (0 at the top)
    # The last business day on which `missing` more is enough: Dec 31 for a calendar year; for a
    # rolling window, the day before the oldest counted purchase leaves it (None: nothing counts yet,
    # so the whole threshold is needed within any one window).
    deadline: date | None
    next_review: date            # the next review (downgrades take effect grace_days after it)
    override_tier: str | None
    override_reason: str | None
    override_until: datetime | None


# --- windows ---------------------------------------------------------------------------------

def _tiers(program: ActiveProgram) -> TierProgram | None:
    return program.definition.tiers


def current_window(program: ActiveProgram, tiers: TierProgram, at: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the window that counts at `at`, the moment itself included."""
    today = business_date(at, program.tz)
    window = tiers.qualification.window
    if window.rolling_months is None:
        first = date(today.year, 1, 1)
    else:
        first = add_months(today, -window.rolling_months) + timedelta(days=1)
    return start_of_business_day(first, program.tz), as_utc(at) + _TICK


def review_window(program: ActiveProgram, tiers: TierProgram, review: datetime) -> tuple[datetime, datetime]:
    """The window that closed at review R: the last complete calendar year, or the N months before R."""
    day = business_date(review, program.tz)
    window = tiers.qualification.window
    if window.rolling_months is None:
        return (start_of_business_day(date(day.year - 1, 1, 1), program.tz),
                start_of_business_day(date(day.year, 1, 1), program.tz))
    return start_of_business_day(add_months(day, -window.rolling_months), program.tz), review


def last_review_day(tiers: TierProgram, today: date) -> date:
    every = tiers.qualification.review.every
    if every == "year":
        return date(today.year, 1, 1)
    if every == "quarter":
        return date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    return date(today.year, today.month, 1)


def next_review_day(tiers: TierProgram, today: date) -> date:
    return add_months(last_review_day(tiers, today), _REVIEW_MONTHS[tiers.qualification.review.every])


# --- lookups for other domains ---------------------------------------------------------------

def member_tier(session: Session, customer_id: int, at: datetime | None = None) -> str | None:
    """The member's tier at `at` (now by default): an active override first, then the earned tier,
    else the base tier. None when the program in force has no tiers."""
    at = at or utcnow()
    tiers = _tiers(program_at(session, at))
    if tiers is None:
        return None
    row = session.execute(select(MemberTier.tier, MemberTier.override_tier, MemberTier.override_until)
                          .where(MemberTier.customer_id == customer_id)).one_or_none()
    if row is None:
        return tiers.levels[0].code
    if row.override_until is not None and row.override_until > at:
        return str(row.override_tier)
    return str(row.tier)


def tiers_of(session: Session, program: ActiveProgram, customer_ids: list[int], at: datetime,
             chunk: int = 900) -> dict[int, str]:
    """`member_tier` for many members at once (one query per `chunk` ids); {} without tiers."""
    tiers = _tiers(program)
    if tiers is None:
        return {}
    members = sorted(set(customer_ids))
    base = tiers.levels[0].code
    found = dict.fromkeys(members, base)
    tier = repository.effective_tier(tiers, at)
    for start in range(0, len(members), chunk):
        rows = session.execute(select(MemberTier.customer_id, tier)
                               .where(MemberTier.customer_id.in_(members[start:start + chunk])))
        found.update((customer_id, code) for customer_id, code in rows)
    return found


def perks(program: ActiveProgram, tier: str | None) -> TierPerks | None:
    """The perks of a tier in this program; None without tiers or for a code it does not know."""
    tiers = _tiers(program)
    level = tiers.level(tier) if tiers is not None and tier is not None else None
    return level.perks if level is not None else None


def meets_tier(program: ActiveProgram, tier: str | None, min_tier: str | None) -> bool:
    """Whether `tier` is `min_tier` or above it in the program's order of levels."""
    if min_tier is None:
        return True
    tiers = _tiers(program)
    if tiers is None or tier is None:
        return tier == min_tier
    wanted = tiers.rank(min_tier)
    return tier == min_tier if wanted < 0 else tiers.rank(tier) >= wanted


def required_tier(program: ActiveProgram, reward_code: str, min_tier: str | None) -> str | None:
    """The tier a member needs to redeem a reward: its own `min_tier`, raised to the lowest level
    whose perks list the reward under `reward_access` ("only this tier and up")."""
    tiers = _tiers(program)
    if tiers is None:
        return min_tier
    access = next((level.code for level in tiers.levels if reward_code in level.perks.reward_access), None)
    if access is None:
        return min_tier
    if min_tier is None or tiers.rank(access) > tiers.rank(min_tier):
        return access
    return min_tier


def access_restricted_above(program: ActiveProgram, tier: str | None) -> list[str]:
    """Reward codes that `reward_access` keeps for levels above `tier` (all of them for an unknown tier)."""
    tiers = _tiers(program)
    if tiers is None:
        return []
    rank = tiers.rank(tier)
    lowest: dict[str, int] = {}
    for index, level in enumerate(tiers.levels):
        for code in level.perks.reward_access:
            lowest.setdefault(code, index)
    return sorted(code for code, index in lowest.items() if index > rank)


# --- upgrades --------------------------------------------------------------------------------

def _history(session: Session, customer_id: int, from_tier: str | None, to_tier: str, reason: str, at: datetime,
             actor: str, note: str | None = None) -> None:
    session.execute(insert(_HISTORY).values(customer_id=customer_id, from_tier=from_tier, to_tier=to_tier,
                                            reason=reason, note=note, at=at, actor=actor))


def tier_metric(program: ActiveProgram, at: datetime, *, amount: int, points: int) -> TierMetric | None:
    """The tier metric UPDATE for a new sale's own statement to run (PostgreSQL's hot path); None without tiers."""
    tiers = _tiers(program)
    if tiers is None:
        return None
    metric = tiers.qualification.metric
    start, end = current_window(program, tiers, at)
    return TierMetric(repository.metric_total_sql(metric), start, end,
                      repository.own_share(metric, amount=amount, points=points))


# A sale that crosses a threshold writes these two; at driver level, as the metric UPDATE before them
# (through SQLAlchemy, building and compiling them cost more CPU than running them).
_UPGRADE = DriverStatement("tier upgrade", lambda: update(_MT).where(_MT.c.customer_id == bindparam("up_customer"))
                           .values(tier=bindparam("up_tier"), since=bindparam("up_since", type_=UTCDateTime())))
_UPGRADE_HISTORY = DriverStatement("tier upgrade history", lambda: insert(_HISTORY).values(
    customer_id=bindparam("up_customer"), from_tier=bindparam("up_from"), to_tier=bindparam("up_tier"),
    reason="upgrade", note=None, at=bindparam("up_since", type_=UTCDateTime()), actor=bindparam("up_actor")))


def on_purchase(session: Session, program: ActiveProgram, customer_id: int, at: datetime, *,
                actor: str = "system", noted: tuple[str, int] | NotNoted | None = NOT_NOTED) -> TierChange | None:
    """Re-evaluates one member after a purchase at `at`: one UPDATE recomputes their metric into their
    tier row (an indexed aggregate) and returns the stored tier, then an upgrade if a higher threshold
    is crossed. Never downgrades (returns and spending wait for the review)."""
    tiers = _tiers(program)
    if tiers is None:
        return None
    metric = tiers.qualification.metric
    if isinstance(noted, NotNoted):  # else the sale's own statement did it (transactions/hotpath.py)
        noted = repository.note_metric(session, metric, customer_id, *current_window(program, tiers, at))
    if noted is None:  # the member's first tier row
        start, end = current_window(program, tiers, at)
        value, _ = repository.member_metric(session, metric, customer_id, start, end)
        reached = tiers.qualifying(value)
        if repository.insert_if_absent(session, customer_id=customer_id, tier=reached.code, since=at,
                                       qualified_value=value):
            if reached.code == tiers.levels[0].code:
                return None
            _history(session, customer_id, tiers.levels[0].code, reached.code, "upgrade", at, actor)
            return TierChange(customer_id, tiers.levels[0].code, reached.code, "upgrade", at)
        # A concurrent purchase of this new member inserted the row first; carry on from it.
        noted = repository.note_metric(session, metric, customer_id, start, end)
        assert noted is not None
    row, value = noted
    reached = tiers.qualifying(value)
    if tiers.rank(reached.code) <= tiers.rank(row):
        return None
    upgrade = {"up_customer": customer_id, "up_tier": reached.code, "up_since": at, "up_from": row,
               "up_actor": actor}
    _UPGRADE.rows(session, upgrade)
    _UPGRADE_HISTORY.rows(session, upgrade)
    return TierChange(customer_id, row, reached.code, "upgrade", at)


def recompute_all(session: Session, program: ActiveProgram, at: datetime, *, actor: str = "job:tier-recompute") -> int:
    """`on_purchase` for every member with a purchase in the window, in five set-based statements
    (after an import, or to apply a new program's thresholds). Upgrades only; returns how many rose."""
    tiers = _tiers(program)
    if tiers is None:
        return 0
    start, end = current_window(program, tiers, at)
    m = repository.metrics(tiers.qualification.metric, start, end).subquery("m")
    reached, reached_rank = repository.code_for(tiers, m.c.value), repository.rank_for(tiers, m.c.value)
    rises = reached_rank > repository.rank_of(tiers, _MT.c.tier)
    has_row = exists().where(_MT.c.customer_id == m.c.customer_id)
    base = tiers.levels[0].code
    columns = ["customer_id", "from_tier", "to_tier", "reason", "at", "actor"]
    # History first, while member_tiers still holds the tiers they rise from.
    risen = session.execute(insert(_HISTORY).from_select(columns, select(
        _MT.c.customer_id, _MT.c.tier, reached, literal("upgrade"), literal(at, MemberTier.since.type), literal(actor),
    ).select_from(_MT.join(m, m.c.customer_id == _MT.c.customer_id)).where(rises)).returning(_HISTORY.c.id))
    new = session.execute(insert(_HISTORY).from_select(columns, select(
        m.c.customer_id, literal(base), reached, literal("upgrade"), literal(at, MemberTier.since.type), literal(actor),
    ).where(~has_row, reached_rank > 0)).returning(_HISTORY.c.id))
    session.execute(update(_MT).where(_MT.c.customer_id == m.c.customer_id).values(
        tier=case((rises, reached), else_=_MT.c.tier),
        since=case((rises, literal(at, MemberTier.since.type)), else_=_MT.c.since),
        qualified_value=m.c.value,
    ))
    session.execute(update(_MT).where(_MT.c.qualified_value != 0,
                                      ~exists().where(m.c.customer_id == _MT.c.customer_id))
                    .values(qualified_value=0))
    # NOT IN, read once as a hashed subplan: a NOT EXISTS here was planned as a nested loop rescanning
    # the table this statement fills (7 s instead of 0.5 s for 50,000 new members on PostgreSQL).
    session.execute(insert(_MT).from_select(["customer_id", "tier", "since", "qualified_value"], select(
        m.c.customer_id, reached, literal(at, MemberTier.since.type), m.c.value)
        .where(m.c.customer_id.not_in(select(_MT.c.customer_id)))))
    return len(risen.all()) + len(new.all())


# --- reviews and overrides -------------------------------------------------------------------

def end_overrides(session: Session, now: datetime, *, actor: str = REVIEW_ACTOR) -> int:
    """Overrides past their end date end, each with an 'override_end' in the history at its end date."""
    due = and_(_MT.c.override_until.is_not(None), _MT.c.override_until <= now)
    session.execute(insert(_HISTORY).from_select(
        ["customer_id", "from_tier", "to_tier", "reason", "note", "at", "actor"],
        select(_MT.c.customer_id, _MT.c.override_tier, _MT.c.tier, literal("override_end"),
               literal("the override reached its end date"), _MT.c.override_until, literal(actor)).where(due)))
    ended = session.execute(update(_MT).where(due).values(override_tier=None, override_reason=None,
                                                          override_until=None))
    return repository.rowcount(ended)


def review(session: Session, now: datetime, *, actor: str = REVIEW_ACTOR) -> int:
    """The scheduled review: ends due overrides, then moves down members below their tier for the
    latest review whose grace is over, each member once per review. Returns the changes made."""
    changed = end_overrides(session, now, actor=actor)
    program = program_at(session, now)
    tiers = _tiers(program)
    if tiers is None:
        return changed
    grace = tiers.qualification.review.grace_days
    # The latest review whose grace period is over at `now`.
    review_at = start_of_business_day(last_review_day(tiers, business_date(now - timedelta(days=grace), program.tz)),
                                      program.tz)
    metric = tiers.qualification.metric
    closed = repository.metrics(metric, *review_window(program, tiers, review_at)).subquery("closed")
    current = repository.metrics(metric, *current_window(program, tiers, now)).subquery("current")
    closed_value, current_value = func.coalesce(closed.c.value, 0), func.coalesce(current.c.value, 0)
    best = func.max(closed_value, current_value) if session.get_bind().dialect.name == "sqlite" \
        else func.greatest(closed_value, current_value)
    pending = or_(_MT.c.reviewed_at.is_(None), _MT.c.reviewed_at < review_at)
    targets = (select(_MT.c.customer_id.label("customer_id"), best.label("value"))
               .select_from(_MT.outerjoin(closed, closed.c.customer_id == _MT.c.customer_id)
                            .outerjoin(current, current.c.customer_id == _MT.c.customer_id))
               .where(pending, _MT.c.since < review_at)).subquery("targets")
    target = repository.code_for(tiers, targets.c.value)
    falls = and_(_MT.c.customer_id == targets.c.customer_id,
                 repository.rank_for(tiers, targets.c.value) < repository.rank_of(tiers, _MT.c.tier))
    on_day = business_date(review_at, program.tz).isoformat()
    moved = session.execute(insert(_HISTORY).from_select(
        ["customer_id", "from_tier", "to_tier", "reason", "note", "at", "actor"],
        select(_MT.c.customer_id, _MT.c.tier, target, literal("review_downgrade"),
               literal(f"below the tier's threshold at the review of {on_day}, after {grace} days' grace"),
               literal(now, MemberTier.since.type), literal(actor)).select_from(_MT).where(falls))
        .returning(_HISTORY.c.id))
    session.execute(update(_MT).where(falls).values(tier=target, since=now, qualified_value=targets.c.value))
    session.execute(update(_MT).where(pending).values(reviewed_at=review_at))
    # Counted through RETURNING: an INSERT ... SELECT's rowcount is -1 through psycopg here.
    return changed + len(moved.all())


def require_tiers(program: ActiveProgram) -> TierProgram:
    tiers = _tiers(program)
    if tiers is None:
        raise NotFound("the program in force has no tiers; add a tiers: section to the program file")
    return tiers


def set_override(session: Session, customer_id: int, *, tier: str, reason: str, until: datetime, actor: str,
                 now: datetime) -> None:
    """Puts a member in `tier` until `until`, whatever they qualify for; the history says who and why."""
    program = program_at(session, now)
    tiers = require_tiers(program)
    if tiers.level(tier) is None:
        raise ValidationFailed(f"tier: {tier!r} is not a tier of the program; use one of "
                               f"{', '.join(level.code for level in tiers.levels)}")
    if not reason.strip():
        raise ValidationFailed("reason: say why the member gets this tier")
    if until <= now:
        raise ValidationFailed("until: the override must end in the future")
    if until > now + timedelta(days=10 * 366):  # compared before conversion: year 9999 must not overflow
        raise ValidationFailed("until: an override lasts at most 10 years")
    require_customer(session, customer_id)
    before = member_tier(session, customer_id, now)
    on_purchase(session, program, customer_id, now, actor=actor)  # makes sure the member has a row
    session.execute(update(_MT).where(_MT.c.customer_id == customer_id)
                    .values(override_tier=tier, override_reason=reason.strip(), override_until=until))
    _history(session, customer_id, before, tier, "override", now, actor,
             f"{reason.strip()} (until {as_utc(until).isoformat()})")


def end_override(session: Session, customer_id: int, *, actor: str, now: datetime) -> None:
    require_customer(session, customer_id)
    row = session.execute(select(MemberTier.tier, MemberTier.override_tier, MemberTier.override_until)
                          .where(MemberTier.customer_id == customer_id).with_for_update()).one_or_none()
    if row is None or row.override_until is None or row.override_until <= now:
        raise Conflict(f"customer {customer_id} has no active tier override")
    session.execute(update(_MT).where(_MT.c.customer_id == customer_id)
                    .values(override_tier=None, override_reason=None, override_until=None))
    _history(session, customer_id, row.override_tier, row.tier, "override_end", now, actor, "ended by an admin")


# --- progress and counts ---------------------------------------------------------------------

def progress(session: Session, program: ActiveProgram, customer_id: int, at: datetime) -> Progress:
    """Where a member stands: tier, metric, what is missing to the next tier and by when."""
    tiers = require_tiers(program)
    start, end = current_window(program, tiers, at)
    metric = tiers.qualification.metric
    value, oldest = repository.member_metric(session, metric, customer_id, start, end)
    row = session.get(MemberTier, customer_id)
    base = tiers.levels[0]
    earned = row.tier if row is not None else base.code
    override = row is not None and row.override_until is not None and row.override_until > at
    tier = row.override_tier if override and row is not None and row.override_tier else earned
    rank = max(tiers.rank(tier), 0)  # a code the program no longer has counts as the base tier
    next_tier = tiers.levels[rank + 1] if rank + 1 < len(tiers.levels) else None
    today = business_date(at, program.tz)
    window = tiers.qualification.window
    deadline: date | None
    if window.rolling_months is None:
        deadline = date(today.year, 12, 31)
    elif oldest is not None:
        deadline = add_months(business_date(oldest, program.tz), window.rolling_months) - timedelta(days=1)
    else:
        deadline = None
    earned_level = tiers.level(earned)
    return Progress(
        metric=metric, value=value, window_start=business_date(start, program.tz), tier=tier, earned_tier=earned,
        since=row.since if row is not None else None,
        keeps_tier=earned_level is None or value >= earned_level.threshold,
        next_tier=next_tier, missing=max(0, next_tier.threshold - value) if next_tier else 0,
        deadline=deadline, next_review=next_review_day(tiers, today),
        override_tier=row.override_tier if override and row is not None else None,
        override_reason=row.override_reason if override and row is not None else None,
        override_until=row.override_until if override and row is not None else None,
    )


def counts(session: Session, program: ActiveProgram, at: datetime) -> list[tuple[TierLevel, int]]:
    """Each level with the members in it at `at` (overrides included), in the program's order."""
    tiers = require_tiers(program)
    found = repository.tier_counts(session, tiers, at)
    return [(level, found.get(level.code, 0)) for level in tiers.levels]


def tier_history(session: Session, customer_id: int, *, limit: int = 100) -> list[TierHistory]:
    """A member's tier changes, newest first."""
    require_customer(session, customer_id)
    return list(session.scalars(select(TierHistory).where(TierHistory.customer_id == customer_id)
                                .order_by(TierHistory.id.desc()).limit(limit)))
