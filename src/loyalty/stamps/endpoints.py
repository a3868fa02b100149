"""Each member's stamp card progress over HTTP."""

from __future__ import annotations

from fastapi import APIRouter

from loyalty.api.deps import AnyKey, ReadSession
from loyalty.api.limits import IdPath
from loyalty.programs.service import program_at
from loyalty.stamps.schemas import StampCardList
from loyalty.stamps.service import customer_cards
from loyalty.timeutil import utcnow

router = APIRouter(tags=["stamp cards"])


@router.get("/customers/{customer_id}/stamp-cards", response_model=StampCardList,
            responses={404: {"description": "no such customer"}})
def get_stamp_cards(customer_id: IdPath, session: ReadSession, _: AnyKey) -> StampCardList:
    """The member's progress on every card of the program in force ("2 more stamps to a free cone"),
    then cards of earlier programs they still hold. A store key may read it, as it reads balances."""
    now = utcnow()
    return customer_cards(session, program_at(session, now), customer_id, now)
