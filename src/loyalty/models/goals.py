"""Badges members earned by reaching a program's goals (L10): one row per (member, goal), ever."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.models.base import Base, UTCDateTime


class MemberBadge(Base):
    """The primary key (customer, goal) is what makes a badge, and its points, once only."""

    __tablename__ = "member_badges"
    __table_args__ = (
        CheckConstraint("points >= 0", name="points_not_negative"),
        Index("ix_member_badges_goal", "goal_id"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    goal_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # The badge as it was when earned: a later program version may rename or drop the goal.
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    icon: Mapped[str | None] = mapped_column(String(40))
    metric: Mapped[str] = mapped_column(String(20))
    target: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The sale that reached it; NULL when the evaluation job awarded it.
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    actor: Mapped[str] = mapped_column(String(100))
