"""A member's referral code and counts, and recording who referred a member after enrolment."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from loyalty.api.deps import AdminKey, AnyKey, Outcome, ReadSession, WriteDep
from loyalty.api.limits import IdPath
from loyalty.programs.service import program_at
from loyalty.referrals import service
from loyalty.referrals.schemas import ReferralOut, ReferredByIn
from loyalty.timeutil import utcnow

router = APIRouter(tags=["referrals"])


@router.get("/customers/{customer_id}/referral", response_model=ReferralOut,
            summary="The member's referral code, share link, counts and advocate flag")
def get_referral(customer_id: IdPath, session: ReadSession, _: AnyKey) -> ReferralOut:
    return service.referral_out(session, customer_id)


@router.post("/customers/{customer_id}/referral", response_model=ReferralOut, status_code=201,
             summary="Record who referred a member who enrolled without a code and has not bought yet",
             responses={409: {"description": "already referred, or already bought"},
                        422: {"description": "unknown code, self-referral or a referral loop"}})
def add_referred_by(customer_id: IdPath, data: ReferredByIn, _: AdminKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        now = utcnow()
        service.attach(session, program_at(session, now), customer_id, data.referral_code, now)
        return Outcome(201, service.referral_out(session, customer_id))
    return write.run(data, work)
