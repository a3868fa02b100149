"""The member summary over HTTP."""

from __future__ import annotations

from fastapi import APIRouter

from loyalty.api.deps import AnyKey, ReadSession
from loyalty.api.limits import IdPath
from loyalty.members.schemas import MemberSummary
from loyalty.members.summary import member_summary
from loyalty.timeutil import utcnow

router = APIRouter(tags=["members"])


@router.get("/customers/{customer_id}/summary", response_model=MemberSummary,
            responses={404: {"description": "no such customer"}})
def get_member_summary(customer_id: IdPath, session: ReadSession, _: AnyKey) -> MemberSummary:
    """Everything a member's screen shows in one read: balance, points expiring soon, tier and progress,
    usable vouchers and the best next reward. A store key may read it, as it reads balances."""
    return member_summary(session, customer_id, utcnow())
