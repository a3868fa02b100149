"""Goals and badges (L10): badges on purchase, a job that evaluates every member, badges and progress.

How each metric counts (all net of returns: a purchase counts while some of it is kept):
- purchases: purchases not wholly returned (a zero-amount one is not a purchase, as for tiers);
- spend: amount minus returned amount, in the program's currency units;
- categories: distinct line categories of those purchases (a partial return keeps its categories);
- stores: distinct stores of those purchases;
- streak_months: the longest run of consecutive business months (program time zone) with one;
  progress shows the streak still running (a purchase this month or last);
- referrals: members the member brought who went on to a qualifying purchase (L13), counted when
  that purchase qualifies them (`on_referral`) and by the job.
Windows: lifetime (default); calendar_year counts from Jan 1 of the business year; rolling_months N
counts from the day after the same day N months ago, as tier windows do.

A badge is earned once per (member, goal): the member_badges primary key decides, so retries,
replays and concurrent sales can never give it, or its points, twice; the points go through the
ledger with the source ("goal", "<goal>:<member>"), unique as well. Returns never take a badge
back (it marks a moment the member reached; the progress shown is net of returns).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, case, func, literal, null, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from loyalty.customers.service import require_customer
from loyalty.goals import repository
from loyalty.goals.schemas import SALE_METRICS, BadgeOut, GoalDefinition, GoalProgressOut, MemberBadges
from loyalty.ledger import service as ledger
from loyalty.models import MemberBalance
from loyalty.models.base import UTCDateTime
from loyalty.models.goals import MemberBadge
from loyalty.programs.service import ActiveProgram, program_at
from loyalty.timeutil import add_months, as_utc, business_date, start_of_business_day

if TYPE_CHECKING:
    from loyalty.transactions.effects import InstantReward, Sale

_TICK = timedelta(microseconds=1)
JOB_ACTOR = "job:goals"


def evaluated_goals(program: ActiveProgram) -> list[GoalDefinition]:
    """The program's goals (every metric is counted)."""
    return list(program.definition.goals)


def window_bounds(program: ActiveProgram, goal: GoalDefinition,
                  at: datetime) -> tuple[datetime | None, datetime | None]:
    """[start, end) of the goal's window at `at`, the moment itself included; (None, None) for lifetime."""
    window = goal.window
    if window.lifetime:
        return None, None
    today = business_date(at, program.tz)
    if window.rolling_months is None:
        first = date(today.year, 1, 1)
    else:
        first = add_months(today, -window.rolling_months) + timedelta(days=1)
    return start_of_business_day(first, program.tz), as_utc(at) + _TICK


def _values(dialect: str, program: ActiveProgram, goal: GoalDefinition, at: datetime, customer_id: int | None,
            *, running_streak: bool = False) -> Any:
    start, end = window_bounds(program, goal, at)
    running_from = repository.business_month(at, program.tz) - 1 if running_streak else None
    return repository.goal_values(dialect, program.definition.timezone, goal, start, end, customer_id,
                                  running_streak_from=running_from)


def _insert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _badge_row(goal: GoalDefinition, customer_id: int, now: datetime, transaction_id: int | None,
               actor: str) -> dict[str, object]:
    return {"customer_id": customer_id, "goal_id": goal.id, "name": goal.badge.name,
            "description": goal.badge.description, "icon": goal.badge.icon, "metric": goal.metric,
            "target": goal.target, "points": goal.points, "earned_at": now, "transaction_id": transaction_id,
            "actor": actor}


def _reason(goal: GoalDefinition) -> str:
    return f"goal {goal.name} reached: badge {goal.badge.name}"


# --- on purchase -------------------------------------------------------------------------------

def _movable(goal: GoalDefinition, sale: Sale) -> bool:
    """Whether this sale can move the goal's metric, decided from the sale alone (no query)."""
    if goal.metric not in SALE_METRICS or sale.amount <= 0:
        return False  # a zero-amount sale is not a counted purchase
    return goal.metric != "categories" or any(line.category for line in sale.lines)


def on_purchase(session: Session, program: ActiveProgram, sale: Sale) -> list[InstantReward]:
    """Badges (and their points) for the goals this sale reaches: nothing to do, no query, when the sale
    moves no goal; else one statement reads the member's progress on every goal not yet earned."""
    goals = [goal for goal in program.definition.goals if _movable(goal, sale)]
    if not goals:
        return []
    dialect = repository.prepare(session)
    if dialect == "postgresql" and not sale.points_earned:
        # An earning sale already holds the member's balance row; one that earns nothing takes it here,
        # so two concurrent sales that together reach a target cannot both miss it.
        session.execute(select(MemberBalance.customer_id).where(MemberBalance.customer_id == sale.customer_id)
                        .with_for_update())
    columns: list[ColumnElement[Any]] = [
        case((repository.earned_goal(sale.customer_id, goal.id), -1),
             else_=repository.one_value(_values(dialect, program, goal, sale.occurred_at, sale.customer_id)))
        for goal in goals
    ]
    row = session.execute(select(*columns)).one()
    reached = [goal for goal, value in zip(goals, row, strict=True) if int(value) >= goal.target]
    if not reached:
        return []
    return award(session, program, sale.customer_id, reached, now=sale.now, transaction_id=sale.transaction_id,
                 actor=sale.actor)


def on_referral(session: Session, program: ActiveProgram, referrer_id: int, *, at: datetime, now: datetime,
                actor: str) -> list[InstantReward]:
    """The referrer's referral goals after a member they brought qualified (called by referrals, in the
    same transaction, under the referrer's lock); nothing to do, no query, without such goals. The badge
    is the referrer's: it is not printed on the referred member's receipt."""
    goals = [goal for goal in program.definition.goals if goal.metric == "referrals"]
    if not goals:
        return []
    dialect = repository.prepare(session)
    columns: list[ColumnElement[Any]] = [
        case((repository.earned_goal(referrer_id, goal.id), -1),
             else_=repository.one_value(_values(dialect, program, goal, at, referrer_id)))
        for goal in goals
    ]
    row = session.execute(select(*columns)).one()
    reached = [goal for goal, value in zip(goals, row, strict=True) if int(value) >= goal.target]
    if not reached:
        return []
    return award(session, program, referrer_id, reached, now=now, transaction_id=None, actor=actor)


def award(session: Session, program: ActiveProgram, customer_id: int, goals: list[GoalDefinition], *,
          now: datetime, transaction_id: int | None, actor: str) -> list[InstantReward]:
    """Gives one member the badges of `goals` they have not got yet, with their points, exactly once."""
    from loyalty.transactions.effects import InstantReward  # effects calls this module

    dialect = session.get_bind().dialect.name
    statement = (_insert(dialect)(MemberBadge)
                 .values([_badge_row(goal, customer_id, now, transaction_id, actor) for goal in goals])
                 .on_conflict_do_nothing(index_elements=["customer_id", "goal_id"])
                 .returning(MemberBadge.goal_id))
    inserted = set(session.execute(statement).scalars())
    given: list[InstantReward] = []
    for goal in goals:
        if goal.id not in inserted:
            continue  # a concurrent sale of this member gave it first
        given.append(InstantReward(kind="badge", source=f"goal:{goal.id}", name=goal.badge.name))
        if goal.points:
            ledger.credit(session, program, customer_id=customer_id, points=goal.points, kind="goal",
                          from_account="issued", source_type="goal", source_id=f"{goal.id}:{customer_id}",
                          event="award", reason=_reason(goal), actor=actor, earned_at=now, now=now)
            given.append(InstantReward(kind="points", source=f"goal:{goal.id}", name=goal.name, points=goal.points))
    return given


# --- the job -----------------------------------------------------------------------------------

def evaluate_all(session: Session, now: datetime, *, actor: str = JOB_ACTOR) -> int:
    """Awards every member every goal of the program in force that they have reached, in one INSERT ...
    SELECT per goal plus the ledger's bulk credit (goals added later, imported history, missed races).
    Idempotent; returns how many badges it gave."""
    program = program_at(session, now)
    goals = evaluated_goals(program)
    if not goals:
        return 0
    dialect = repository.prepare(session)
    columns = ["customer_id", "goal_id", "name", "description", "icon", "metric", "target", "points",
               "earned_at", "transaction_id", "actor"]
    given = 0
    for goal in goals:
        values = _values(dialect, program, goal, now, None).subquery("v")
        rows = select(
            values.c.customer_id, literal(goal.id), literal(goal.badge.name),
            literal(goal.badge.description) if goal.badge.description is not None else null(),
            literal(goal.badge.icon) if goal.badge.icon is not None else null(),
            literal(goal.metric), literal(goal.target), literal(goal.points), literal(now, UTCDateTime()), null(),
            literal(actor),
        ).where(values.c.value >= goal.target,
                values.c.customer_id.not_in(select(MemberBadge.customer_id).where(MemberBadge.goal_id == goal.id)))
        statement = (_insert(dialect)(MemberBadge).from_select(columns, rows)
                     .on_conflict_do_nothing(index_elements=["customer_id", "goal_id"])
                     .returning(MemberBadge.customer_id))
        awarded = sorted(session.execute(statement).scalars())
        if goal.points and awarded:
            ledger.credit_many(session, program, [
                ledger.ManyCredit(customer_id, goal.points, f"{goal.id}:{customer_id}", _reason(goal))
                for customer_id in awarded
            ], kind="goal", from_account="issued", source_type="goal", event="award", actor=actor, earned_at=now,
                now=now)
        given += len(awarded)
    return given


# --- reading -----------------------------------------------------------------------------------

_UNITS = {"purchases": ("purchase", "purchases"), "categories": ("category", "categories"),
          "stores": ("store", "stores"), "streak_months": ("month in a row", "months in a row"),
          "referrals": ("referral", "referrals")}


def progress_text(goal: GoalDefinition, missing: int, currency: str) -> str:
    """'2 more purchases to Regular'."""
    if missing <= 0:
        return f"{goal.badge.name} reached: the badge comes with the next evaluation"
    if goal.metric == "spend":
        return f"{missing:,} {currency} more to {goal.badge.name}"
    one, many = _UNITS[goal.metric]
    return f"{missing} more {one if missing == 1 else many} to {goal.badge.name}"


@dataclass(frozen=True, slots=True)
class _Pending:
    goal: GoalDefinition
    current: int
    order: int

    @property
    def missing(self) -> int:
        return max(0, self.goal.target - self.current)

    def closeness(self) -> tuple[Fraction, int, int]:
        return -Fraction(min(self.current, self.goal.target), self.goal.target), self.missing, self.order


def goal_progress(session: Session, program: ActiveProgram, customer_id: int, now: datetime,
                  earned: set[str]) -> list[GoalProgressOut]:
    """Progress toward every counted goal not in `earned`, closest to completion first; one statement."""
    goals = [goal for goal in evaluated_goals(program) if goal.id not in earned]
    if not goals:
        return []
    dialect = repository.prepare(session)
    row = session.execute(select(*[
        repository.one_value(_values(dialect, program, goal, now, customer_id, running_streak=True))
        for goal in goals
    ])).one()
    pending = sorted((_Pending(goal, int(value), order) for order, (goal, value) in enumerate(zip(goals, row,
                                                                                                   strict=True))),
                     key=_Pending.closeness)
    currency = program.definition.currency
    return [GoalProgressOut(goal_id=p.goal.id, goal_name=p.goal.name, badge_name=p.goal.badge.name,
                            metric=p.goal.metric, window=p.goal.window.label, target=p.goal.target,
                            current=p.current, missing=p.missing, points=p.goal.points,
                            text=progress_text(p.goal, p.missing, currency))
            for p in pending]


def badge_counts(session: Session) -> dict[str, int]:
    """Members holding each goal's badge, in one GROUP BY."""
    rows = session.execute(select(MemberBadge.goal_id, func.count()).group_by(MemberBadge.goal_id))
    return {str(goal_id): int(count) for goal_id, count in rows}


def earned_badges(session: Session, customer_id: int) -> list[BadgeOut]:
    rows = session.scalars(select(MemberBadge).where(MemberBadge.customer_id == customer_id)
                           .order_by(MemberBadge.earned_at, MemberBadge.goal_id))
    return [BadgeOut(goal_id=b.goal_id, name=b.name, description=b.description, icon=b.icon, earned_at=b.earned_at,
                     points=b.points) for b in rows]


def member_badges(session: Session, customer_id: int, now: datetime) -> MemberBadges:
    """Earned badges with their dates and progress toward each goal not earned yet; 404 for no customer."""
    require_customer(session, customer_id)
    badges = earned_badges(session, customer_id)
    progress = goal_progress(session, program_at(session, now), customer_id, now, {b.goal_id for b in badges})
    return MemberBadges(customer_id=customer_id, badges=badges, progress=progress)
