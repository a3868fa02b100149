"""Giving bonuses exactly once: the sign-up gift, first-purchase and birthday bonuses, instant rewards.

Every bonus is first claimed with a row in member_bonuses whose (customer, once_key) is unique;
only the request that inserted the row gives the points (through the ledger) and the voucher
(through rewards.grant_voucher), so retries, replays and concurrent sales never give it twice.

A sale costs this feature nothing when the program has no bonuses; instant bonuses are decided
in Python from the sale; first-purchase, birthday and referral facts are read in one query, and
a bonus row is only written when one is due.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, exists, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from loyalty.bonuses.schemas import BirthdayBonus, Gift, InstantBonus
from loyalty.errors import Conflict, NotFound
from loyalty.ledger import service as ledger
from loyalty.models import Customer, Transaction
from loyalty.models.bonuses import MemberBonus, Referral
from loyalty.programs.service import ActiveProgram
from loyalty.rewards import service as rewards
from loyalty.timeutil import business_date
from loyalty.transactions import effects

log = logging.getLogger(__name__)


def _claim(session: Session, *, customer_id: int, kind: str, once_key: str, name: str, points: int,
           transaction_id: int | None, now: datetime) -> int | None:
    """Inserts the bonus row unless (customer, once_key) exists; its id, or None when already given."""
    factory = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (factory(MemberBonus).values(
        customer_id=customer_id, kind=kind, once_key=once_key, name=name, points=points,
        transaction_id=transaction_id, granted_at=now)
        .on_conflict_do_nothing(index_elements=["customer_id", "once_key"]).returning(MemberBonus.id))
    return session.execute(statement).scalar_one_or_none()


def give(
    session: Session, program: ActiveProgram, gift: Gift, *, customer_id: int, kind: str, once_key: str,
    source: str, actor: str, now: datetime, earned_at: datetime | None = None, transaction_id: int | None = None,
) -> list[effects.InstantReward]:
    """Gives `gift` once per (customer, once_key); what it gave, or [] when it was already given.

    A reward that is not offered now or out of stock gives the points alone (the bonus row keeps
    that no voucher was given), so a sale is never refused because a gift ran out.
    """
    bonus_id = _claim(session, customer_id=customer_id, kind=kind, once_key=once_key, name=gift.name,
                      points=gift.points, transaction_id=transaction_id, now=now)
    if bonus_id is None:
        return []
    given: list[effects.InstantReward] = []
    if gift.points:
        ledger.credit(session, program, customer_id=customer_id, points=gift.points, kind="bonus",
                      from_account="issued", source_type="bonus", source_id=str(bonus_id), event="bonus",
                      reason=f"{gift.name} ({source})", actor=actor, earned_at=earned_at or now, now=now,
                      # Not tied to the sale in the ledger (member_bonuses is): a return of the sale
                      # takes back the sale's own lot, never a bonus lot or another member's reward.
                      transaction_id=None, counts_as_earned=False)
        given.append(effects.InstantReward("points", source, gift.name, points=gift.points))
    if gift.reward is not None:
        try:
            voucher = rewards.grant_voucher(session, customer_id=customer_id, reward_code=gift.reward, actor=source,
                                            now=now)
        except (NotFound, Conflict) as exc:  # unknown, not offered now, or out of stock
            log.warning("bonus %s for customer %s: no voucher for reward %s: %s", once_key, customer_id,
                        gift.reward, exc)
        else:
            session.execute(update(MemberBonus).where(MemberBonus.id == bonus_id).values(voucher_id=voucher.voucher_id))
            given.append(effects.InstantReward("voucher", source, gift.name, voucher_id=voucher.voucher_id,
                                               voucher_code=voucher.code))
    return given


# --- enrolment ----------------------------------------------------------------------------------

def on_enrolment(session: Session, program: ActiveProgram, customer_id: int, *, actor: str,
                 now: datetime) -> list[effects.InstantReward]:
    """The sign-up gift for a member enrolled through the API or the CLI (imports give none)."""
    bonuses = program.definition.bonuses
    if bonuses is None or bonuses.signup is None:
        return []
    return give(session, program, bonuses.signup, customer_id=customer_id, kind="signup", once_key="signup",
                source="bonus:signup", actor=actor, now=now)


# --- birthday windows ---------------------------------------------------------------------------

def _birthday_in(birthday: date, year: int) -> date:
    """The birthday in `year`; 29 February is celebrated on 28 February in other years."""
    try:
        return birthday.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


def birthday_year(bonus: BirthdayBonus, birthday: date, day: date) -> int | None:
    """The year of the birthday whose window holds `day` (the once-per-year key), or None."""
    days = bonus.days
    if days is None:
        return day.year if day.month == birthday.month else None
    for year in (day.year - 1, day.year, day.year + 1):
        if abs((day - _birthday_in(birthday, year)).days) <= days:
            return year
    return None


# --- instant bonuses ----------------------------------------------------------------------------

def instant_matches(bonus: InstantBonus, sale: effects.Sale, day: date) -> bool:
    when = bonus.when
    if when.store_ids is not None and sale.store_id not in when.store_ids:
        return False
    if when.store_kinds is not None and sale.store_kind not in when.store_kinds:
        return False
    if when.date_from is not None and day < when.date_from:
        return False
    if when.date_to is not None and day > when.date_to:
        return False
    base = sale.amount
    if when.skus is not None or when.categories is not None:
        matching = [line for line in sale.lines
                    if (when.skus is None or line.sku in when.skus)
                    and (when.categories is None or line.category in when.categories)]
        if not matching:
            return False
        base = sum(line.quantity * line.unit_price for line in matching)
    return when.min_spend is None or base >= when.min_spend


# --- a sale -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Facts:
    birthday: date | None
    bought_before: bool
    birthday_given: frozenset[int]
    referral_pending: bool


def _read_facts(session: Session, program: ActiveProgram, sale: effects.Sale, day: date) -> _Facts | None:
    """What the member-dependent bonuses need, in one query."""
    definition = program.definition
    bonuses, referrals = definition.bonuses, definition.referrals
    columns: list[Any] = [Customer.birthday]
    first = bonuses.first_purchase if bonuses else None
    if first is not None:
        columns.append(exists().where(
            Transaction.customer_id == Customer.id, Transaction.kind == "purchase",
            Transaction.id != sale.transaction_id, Transaction.amount >= first.min_spend).label("bought"))
    else:
        columns.append(literal(True).label("bought"))
    years = (day.year - 1, day.year, day.year + 1)
    for year in years:
        columns.append(exists().where(MemberBonus.customer_id == Customer.id,
                                      MemberBonus.once_key == f"birthday:{year}").label(f"b{year}"))
    if referrals is not None and sale.amount >= referrals.min_spend:
        columns.append(exists().where(and_(Referral.referred_id == Customer.id,
                                           Referral.status == "pending")).label("pending"))
    else:
        columns.append(literal(False).label("pending"))
    row = session.execute(select(*columns).where(Customer.id == sale.customer_id)).one_or_none()
    if row is None:
        return None
    birthday, bought, *given, pending = row
    return _Facts(birthday, bool(bought), frozenset(y for y, g in zip(years, given, strict=True) if g),
                  bool(pending))


def needs_member(program: ActiveProgram, sale: effects.Sale) -> bool:
    """Whether a member-dependent bonus could apply to this sale, decided without the database."""
    definition = program.definition
    bonuses = definition.bonuses
    if bonuses is not None:
        if bonuses.first_purchase is not None and sale.amount >= bonuses.first_purchase.min_spend:
            return True
        if bonuses.birthday is not None and sale.amount >= bonuses.birthday.min_spend:
            return True
    return definition.referrals is not None and sale.amount >= definition.referrals.min_spend


def on_purchase(session: Session, program: ActiveProgram, sale: effects.Sale) -> list[effects.InstantReward]:
    """What a newly written sale gives its member: first-purchase, birthday and instant bonuses, and the
    referral rewards (the referrer's, and the new member's welcome on the receipt)."""
    from loyalty.referrals import service as referrals  # referrals builds on this module

    definition = program.definition
    bonuses = definition.bonuses
    day = business_date(sale.occurred_at, program.tz)

    def give_once(gift: Gift, kind: str, once_key: str, source: str) -> list[effects.InstantReward]:
        return give(session, program, gift, customer_id=sale.customer_id, kind=kind, once_key=once_key,
                    source=source, actor=sale.actor, now=sale.now, earned_at=min(sale.occurred_at, sale.now),
                    transaction_id=sale.transaction_id)

    given: list[effects.InstantReward] = []
    facts = _read_facts(session, program, sale, day) if needs_member(program, sale) else None
    if facts is not None and bonuses is not None:
        first = bonuses.first_purchase
        if first is not None and not facts.bought_before and sale.amount >= first.min_spend:
            given += give_once(first, "first_purchase", "first_purchase", "bonus:first_purchase")
        birthday = bonuses.birthday
        if birthday is not None and facts.birthday is not None and sale.amount >= birthday.min_spend:
            year = birthday_year(birthday, facts.birthday, day)
            if year is not None and year not in facts.birthday_given:
                given += give_once(birthday, "birthday", f"birthday:{year}", "bonus:birthday")
    if bonuses is not None:
        for bonus in bonuses.instant:
            if instant_matches(bonus, sale, day):
                given += give_once(bonus, "instant", f"instant:{bonus.id}:{sale.transaction_id}",
                                   f"bonus:instant:{bonus.id}")
    if facts is not None and facts.referral_pending:
        given += referrals.on_qualifying_purchase(session, program, sale, day)
    return given
