"""Badges and goal progress over HTTP."""

from __future__ import annotations

from fastapi import APIRouter

from loyalty.api.deps import AnyKey, ReadSession
from loyalty.api.limits import IdPath
from loyalty.goals.schemas import MemberBadges
from loyalty.goals.service import member_badges
from loyalty.timeutil import utcnow

router = APIRouter(tags=["goals"])


@router.get("/customers/{customer_id}/badges", response_model=MemberBadges,
            responses={404: {"description": "no such customer"}})
def get_member_badges(customer_id: IdPath, session: ReadSession, _: AnyKey) -> MemberBadges:
    """Badges the member earned, with dates, and progress toward each goal not earned yet
    ("2 more purchases to Regular"), closest first. A store key may read it, as it reads the summary."""
    return member_badges(session, customer_id, utcnow())
