"""Counters behind earn rules' day caps and budgets: what each capped rule has given."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, CheckConstraint, Date, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.models.base import Base, BigIntPK

# The key of a rule's total budget: no member, no day (NULLs would not be unique).
BUDGET_CUSTOMER = 0
BUDGET_DAY = date(1970, 1, 1)


class RuleCapCounter(Base):
    """Points a rule gave one member on one business day (`cap.per_member_per_day`), or in all
    (`customer_id` 0, `day` 1970-01-01: `cap.total`). One row per key, raised by a conditional
    upsert so concurrent sales can never together exceed the cap."""

    __tablename__ = "rule_cap_counters"
    __table_args__ = (
        UniqueConstraint("rule_id", "customer_id", "day", name="rule_cap_counter"),
        CheckConstraint("used >= 0 AND granted >= 0", name="not_negative"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    rule_id: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int] = mapped_column(BigInteger)  # no foreign key: 0 is the budget
    day: Mapped[date] = mapped_column(Date)
    used: Mapped[int] = mapped_column(BigInteger, default=0)
    # What the last claim got, computed in the same UPDATE from the row it locked.
    granted: Mapped[int] = mapped_column(BigInteger, default=0)
