"""Earn rules' caps per member per day and total budgets, counted in the database.

A rule's `cap.per_member_per_day` and `cap.total` limit what the rule itself gives (after
`per_transaction`). Each is a counter row in rule_cap_counters, raised by one conditional upsert
that computes what this sale still gets from the row it locks: concurrent sales queue on the row
and together never exceed the cap; the sale that reaches it gets what is left (a partial award),
later ones get nothing from that rule. Returns do not give counted points back to a cap.

Only a sale that a counted rule pays for runs these statements (one per counter; a rule with both
caps may run a third to give back what the budget refused). Counters are claimed in a fixed order
(rule id; the member's day before the budget) so two sales never wait on each other in a circle.
Imports claim for a whole batch at once (`apply_many`): counters locked, raised in one statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import BigInteger, Date, String, bindparam, select, text
from sqlalchemy.orm import Session

from loyalty.models.rule_caps import BUDGET_CUSTOMER, BUDGET_DAY, RuleCapCounter
from loyalty.programs.rules import Award, Earned, RuleEngine
from loyalty.timeutil import business_date

# `granted` and `used` are both computed from the row's values before this statement (SQL's SET
# semantics, PostgreSQL and SQLite alike), under the row lock the upsert takes.
_LEFT = "CASE WHEN rule_cap_counters.used >= :cap THEN 0 ELSE :cap - rule_cap_counters.used END"
_GRANT = f"CASE WHEN :want < ({_LEFT}) THEN :want ELSE ({_LEFT}) END"
_CLAIM = text(
    "INSERT INTO rule_cap_counters (rule_id, customer_id, day, used, granted) "
    "VALUES (:rule_id, :customer_id, :day, :first, :first) "
    "ON CONFLICT (rule_id, customer_id, day) DO UPDATE "
    f"SET granted = {_GRANT}, used = rule_cap_counters.used + {_GRANT} "
    "RETURNING granted"
).bindparams(bindparam("rule_id", type_=String), bindparam("customer_id", type_=BigInteger),
             bindparam("day", type_=Date), bindparam("first", type_=BigInteger),
             bindparam("want", type_=BigInteger), bindparam("cap", type_=BigInteger))
_GIVE_BACK = text(
    "UPDATE rule_cap_counters SET used = used - :points "
    "WHERE rule_id = :rule_id AND customer_id = :customer_id AND day = :day"
).bindparams(bindparam("rule_id", type_=String), bindparam("customer_id", type_=BigInteger),
             bindparam("day", type_=Date), bindparam("points", type_=BigInteger))


@dataclass(frozen=True, slots=True)
class Claim:
    """Points taken from one counter, kept so a sale that turns out to be a replay gives them back."""

    rule_id: str
    customer_id: int
    day: date
    points: int


def _claim(session: Session, rule_id: str, customer_id: int, day: date, want: int, cap: int) -> int:
    granted = session.execute(_CLAIM, {"rule_id": rule_id, "customer_id": customer_id, "day": day,
                                       "first": min(want, cap), "want": want, "cap": cap}).scalar_one()
    return int(granted)


def give_back(session: Session, claims: list[Claim]) -> None:
    """Undoes claims made for a sale that was not written after all (a retried POS request)."""
    for claim in claims:
        session.execute(_GIVE_BACK, {"rule_id": claim.rule_id, "customer_id": claim.customer_id,
                                     "day": claim.day, "points": claim.points})


def apply(session: Session, engine: RuleEngine, earned: Earned, *, customer_id: int | None,
          occurred_at: datetime) -> tuple[Earned, list[Claim]]:
    """The sale's points once counted caps are taken into account, and the claims made.

    Decided in Python first: a sale no counted rule pays for costs no statement.
    """
    if not engine.counted_caps or customer_id is None:
        return earned, []
    counted = sorted((a for a in earned.breakdown if a.rule_id in engine.counted_caps and a.points > 0),
                     key=lambda a: a.rule_id)
    if not counted:
        return earned, []
    day = business_date(occurred_at, engine.tz)
    claims: list[Claim] = []
    granted: dict[str, int] = {}
    for award in counted:
        cap = engine.counted_caps[award.rule_id]
        want = award.points
        if cap.per_member_per_day is not None:
            want = _claim(session, award.rule_id, customer_id, day, want, cap.per_member_per_day)
            if want:
                claims.append(Claim(award.rule_id, customer_id, day, want))
        if cap.total is not None and want:
            got = _claim(session, award.rule_id, BUDGET_CUSTOMER, BUDGET_DAY, want, cap.total)
            if got:
                claims.append(Claim(award.rule_id, BUDGET_CUSTOMER, BUDGET_DAY, got))
            if got < want and cap.per_member_per_day is not None:
                # The budget ran out first: the member's day keeps only what was given.
                give_back(session, [Claim(award.rule_id, customer_id, day, want - got)])
                claims = [c if (c.rule_id, c.customer_id) != (award.rule_id, customer_id)
                          else Claim(c.rule_id, c.customer_id, c.day, got) for c in claims]
                claims = [c for c in claims if c.points]
            want = got
        granted[award.rule_id] = want
    return reduced(earned, granted), claims


def reduced(earned: Earned, granted: dict[str, int]) -> Earned:
    """`earned` with the given rules' awards replaced by what they were granted (zero awards dropped)."""
    awards = tuple(Award(a.rule_id, a.name, granted.get(a.rule_id, a.points)) for a in earned.breakdown)
    kept = tuple(a for a in awards if a.points)
    return Earned(sum(a.points for a in kept), kept)


# --- many sales at once (imports) -------------------------------------------------------------

def apply_many(
    session: Session, engine: RuleEngine, per_rule: npt.NDArray[np.int64], customer_ids: npt.NDArray[np.int64],
    days: list[date],
) -> npt.NDArray[np.int64]:
    """`per_rule` (rules x sales, from `evaluate_many`) with counted caps applied in row order.

    Set-based: the batch's counters are created if missing, locked and read in one statement
    per rule and kind, and written back with one executemany.
    """
    if not engine.counted_caps or per_rule.size == 0:
        return per_rule
    capped = per_rule.copy()
    day_numbers = np.array([d.toordinal() for d in days], dtype=np.int64)
    for index, rule in enumerate(engine.rules):
        cap = engine.counted_caps.get(rule.id)
        if cap is None or not capped[index].any():
            continue
        if cap.per_member_per_day is not None:
            capped[index] = _counted(session, rule.id, capped[index], customer_ids, day_numbers,
                                     cap.per_member_per_day)
        if cap.total is not None:
            before = capped[index].copy()
            capped[index] = _counted(session, rule.id, capped[index], np.full_like(customer_ids, BUDGET_CUSTOMER),
                                     np.full_like(day_numbers, BUDGET_DAY.toordinal()), cap.total)
            if cap.per_member_per_day is not None and (before > capped[index]).any():
                refused = before - capped[index]
                _give_back_many(session, rule.id, refused, customer_ids, day_numbers)
    return capped


def _counted(session: Session, rule_id: str, points: npt.NDArray[np.int64], customers: npt.NDArray[np.int64],
             day_numbers: npt.NDArray[np.int64], cap: int) -> npt.NDArray[np.int64]:
    paying = np.flatnonzero(points > 0)
    keys = sorted({(int(customers[i]), int(day_numbers[i])) for i in paying.tolist()})
    if not keys:
        return points
    session.execute(_CREATE, [{"rule_id": rule_id, "customer_id": c, "day": date.fromordinal(d)} for c, d in keys])
    used = _locked_usage(session, rule_id, keys)
    result = points.copy()
    new_used: dict[tuple[int, int], int] = {}
    for i in paying.tolist():
        key = (int(customers[i]), int(day_numbers[i]))
        already = new_used.get(key, used.get(key, 0))
        give = min(int(points[i]), max(cap - already, 0))
        result[i] = give
        new_used[key] = already + give
    changed = [{"rule_id": rule_id, "customer_id": c, "day": date.fromordinal(d), "used": u}
               for (c, d), u in new_used.items() if u != used.get((c, d), 0)]
    if changed:
        session.execute(_SET_USED, changed)
    return result


# Creates the batch's missing counters; they are then locked, read and set.
_CREATE = text(
    "INSERT INTO rule_cap_counters (rule_id, customer_id, day, used, granted) "
    "VALUES (:rule_id, :customer_id, :day, 0, 0) ON CONFLICT (rule_id, customer_id, day) DO NOTHING"
).bindparams(bindparam("rule_id", type_=String), bindparam("customer_id", type_=BigInteger),
             bindparam("day", type_=Date))
_SET_USED = text(
    "UPDATE rule_cap_counters SET used = :used WHERE rule_id = :rule_id AND customer_id = :customer_id "
    "AND day = :day"
).bindparams(bindparam("rule_id", type_=String), bindparam("customer_id", type_=BigInteger),
             bindparam("day", type_=Date), bindparam("used", type_=BigInteger))


def _locked_usage(session: Session, rule_id: str, keys: list[tuple[int, int]],
                  chunk: int = 900) -> dict[tuple[int, int], int]:
    """The counters' `used`, locked (PostgreSQL; SQLite writers are serialised) in key order."""
    found: dict[tuple[int, int], int] = {}
    customers = sorted({c for c, _ in keys})
    wanted = set(keys)
    for start in range(0, len(customers), chunk):
        part = customers[start:start + chunk]
        rows = session.execute(
            select(RuleCapCounter.customer_id, RuleCapCounter.day, RuleCapCounter.used)
            .where(RuleCapCounter.rule_id == rule_id, RuleCapCounter.customer_id.in_(part))
            .order_by(RuleCapCounter.customer_id, RuleCapCounter.day).with_for_update())
        for customer, day, used in rows:
            key = (int(customer), day.toordinal())
            if key in wanted:
                found[key] = int(used)
    return found


def _give_back_many(session: Session, rule_id: str, refused: npt.NDArray[np.int64], customers: npt.NDArray[np.int64],
                    day_numbers: npt.NDArray[np.int64]) -> None:
    back: dict[tuple[int, int], int] = {}
    for i in np.flatnonzero(refused > 0).tolist():
        key = (int(customers[i]), int(day_numbers[i]))
        back[key] = back.get(key, 0) + int(refused[i])
    session.execute(_GIVE_BACK, [{"rule_id": rule_id, "customer_id": c, "day": date.fromordinal(d), "points": p}
                                 for (c, d), p in back.items()])
