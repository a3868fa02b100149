"""Tiers over HTTP: levels and counts, a member's tier and progress, admin overrides."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from loyalty.api.deps import AdminKey, AnyKey, Outcome, ReadSession, WriteDep
from loyalty.api.limits import IdPath
from loyalty.customers.service import require_customer
from loyalty.programs.service import program_at
from loyalty.tiers import service
from loyalty.tiers.schemas import HistoryItem, MemberTierOut, OverrideIn, TiersOut
from loyalty.tiers.views import member_tier_out, tiers_out
from loyalty.timeutil import utcnow

router = APIRouter(tags=["tiers"])


def _problems(**statuses: str) -> dict[int | str, dict[str, Any]]:
    return {int(status.removeprefix("s")): {"description": text} for status, text in statuses.items()}


@router.get("/tiers", response_model=TiersOut, responses=_problems(s404="the program has no tiers"))
def list_tiers(session: ReadSession, _: AnyKey) -> TiersOut:
    """The levels, their perks and how many members are in each now."""
    now = utcnow()
    program = program_at(session, now)
    return tiers_out(program, service.counts(session, program, now))


@router.get("/customers/{customer_id}/tier", response_model=MemberTierOut,
            responses=_problems(s404="no such customer, or the program has no tiers"))
def get_member_tier(customer_id: IdPath, session: ReadSession, _: AnyKey) -> MemberTierOut:
    """The member's tier, since when, any override, and how much more reaches the next tier by when."""
    now = utcnow()
    require_customer(session, customer_id)
    return member_tier_out(customer_id, service.progress(session, program_at(session, now), customer_id, now))


@router.get("/customers/{customer_id}/tier/history", response_model=list[HistoryItem],
            responses=_problems(s404="no such customer"))
def get_tier_history(
    customer_id: IdPath, session: ReadSession, _: AnyKey, limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[HistoryItem]:
    """Every change of the member's tier, newest first: upgrades, review downgrades, overrides and their end."""
    return [HistoryItem.model_validate(item, from_attributes=True)
            for item in service.tier_history(session, customer_id, limit=limit)]


@router.post("/customers/{customer_id}/tier-override", response_model=MemberTierOut,
             responses=_problems(s404="no such customer, or the program has no tiers",
                                 s422="unknown tier, no reason, or an end date not in the future"))
def override_tier(customer_id: IdPath, data: OverrideIn, principal: AdminKey, write: WriteDep) -> JSONResponse:
    """Puts a member in a tier until a date, whatever they qualify for; recorded in the tier history."""
    def work(session: Session) -> Outcome:
        now = utcnow()
        service.set_override(session, customer_id, tier=data.tier, reason=data.reason, until=data.until,
                             actor=principal.actor, now=now)
        return Outcome(200, member_tier_out(customer_id,
                                            service.progress(session, program_at(session, now), customer_id, now)))
    return write.run(data, work)


@router.post("/customers/{customer_id}/tier-override/end", response_model=MemberTierOut,
             responses=_problems(s404="no such customer, or the program has no tiers",
                                 s409="the member has no active override"))
def end_tier_override(customer_id: IdPath, principal: AdminKey, write: WriteDep) -> JSONResponse:
    """Ends an override now; the earned tier shows again."""
    def work(session: Session) -> Outcome:
        now = utcnow()
        service.end_override(session, customer_id, actor=principal.actor, now=now)
        return Outcome(200, member_tier_out(customer_id,
                                            service.progress(session, program_at(session, now), customer_id, now)))
    return write.run(None, work)
