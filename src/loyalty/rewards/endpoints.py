"""The rewards catalogue and vouchers over HTTP: list, issue for points, validate, burn, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from loyalty.api.deps import AdminKey, AnyKey, Outcome, PosKey, ReadSession, WriteDep, check_store
from loyalty.api.limits import IdPath
from loyalty.errors import ValidationFailed
from loyalty.rewards import repository, service
from loyalty.rewards.schemas import (
    RewardDefinition,
    RewardOut,
    RewardUpdate,
    VoucherIssueIn,
    VoucherList,
    VoucherOut,
    VoucherRedeemIn,
    VoucherStatus,
)
from loyalty.timeutil import utcnow

router = APIRouter(tags=["rewards"])

CodePath = Annotated[str, Path(min_length=1, max_length=40)]
VoucherCode = Annotated[str, Path(min_length=1, max_length=40, examples=["ABCD-EFGH-JKMN"],
                                  description="any case, dashes optional")]


def _problems(**statuses: str) -> dict[int | str, dict[str, Any]]:
    return {int(status.removeprefix("s")): {"description": text} for status, text in statuses.items()}


@router.get("/rewards", response_model=list[RewardOut])
def list_rewards(
    session: ReadSession, _: AnyKey,
    include_inactive: Annotated[bool, Query(description="also rewards no longer offered")] = False,
) -> list[RewardOut]:
    return [service.reward_out(r) for r in repository.list_rewards(session, include_inactive=include_inactive)]


@router.get("/rewards/{code}", response_model=RewardOut)
def get_reward(code: CodePath, session: ReadSession, _: AnyKey) -> RewardOut:
    return service.reward_out(service.require_reward(session, code))


@router.post("/rewards", status_code=201, response_model=RewardOut,
             responses=_problems(s409="a reward with this code exists"))
def create_reward(data: RewardDefinition, _: AdminKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        reward = service.create_reward(session, data, utcnow())
        return Outcome(201, service.reward_out(reward), {"Location": f"/v1/rewards/{reward.code}"})
    return write.run(data, work)


@router.patch("/rewards/{code}", response_model=RewardOut)
def update_reward(code: CodePath, data: RewardUpdate, _: AdminKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        return Outcome(200, service.reward_out(service.update_reward(session, code, data, utcnow())))
    return write.run(data, work)


@router.post("/customers/{customer_id}/vouchers", status_code=201, response_model=VoucherOut,
             responses=_problems(s404="no such customer or reward",
                                 s409="out of stock, not offered now, limit reached, tier, or not enough points"))
def issue_voucher(customer_id: IdPath, data: VoucherIssueIn, principal: PosKey, write: WriteDep) -> JSONResponse:
    """Spends the member's points on a reward and issues a voucher with an unguessable code.

    Send an Idempotency-Key: without one, every call issues another voucher.
    """
    def work(session: Session) -> Outcome:
        now = utcnow()
        voucher = service.issue_voucher(session, customer_id=customer_id, reward_code=data.reward_code,
                                        actor=principal.actor, now=now)
        return Outcome(201, service.voucher_out(session, voucher, now),
                       {"Location": f"/v1/vouchers/{voucher.code}"})
    return write.run(data, work)


@router.get("/customers/{customer_id}/vouchers", response_model=VoucherList)
def list_vouchers(
    customer_id: IdPath, session: ReadSession, _: AnyKey,
    status: Annotated[VoucherStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> VoucherList:
    return VoucherList(items=service.customer_vouchers(session, customer_id, status=status, limit=limit,
                                                       now=utcnow()))


@router.get("/vouchers/{code}", response_model=VoucherOut, responses=_problems(s404="no voucher with this code"))
def get_voucher(code: VoucherCode, session: ReadSession, _: AnyKey) -> VoucherOut:
    """Validates a code at the POS: `redeemable` says whether it can be burned now, `status` why not."""
    return service.voucher_out(session, service.require_voucher(session, code), utcnow())


@router.post("/vouchers/{code}/redeem", response_model=VoucherOut,
             responses=_problems(s404="no voucher with this code, or no such store",
                                 s409="already used (when and where), expired, or cancelled"))
def redeem_voucher(code: VoucherCode, data: VoucherRedeemIn, principal: PosKey, write: WriteDep) -> JSONResponse:
    """Burns the voucher at a store. A retry with the same Idempotency-Key, or with the same
    store and transaction_id, gets the first answer; any other second burn is a 409 saying when
    and where the voucher was used. Expired and cancelled vouchers are 409s with their own types."""
    store_id = data.store_id or principal.store_id
    if store_id is None:
        raise ValidationFailed("store_id: say which store the voucher is used at")
    check_store(principal, store_id)

    def work(session: Session) -> Outcome:
        now = utcnow()
        voucher, first = service.redeem_voucher(session, code, store_id=store_id, reference=data.transaction_id,
                                                now=now)
        return Outcome(200, service.voucher_out(session, voucher, now),
                       None if first else {"Idempotent-Replayed": "true"})
    return write.run(data, work)


@router.post("/vouchers/{code}/cancel", response_model=VoucherOut,
             responses=_problems(s404="no voucher with this code", s409="already used or expired"))
def cancel_voucher(code: VoucherCode, principal: PosKey, write: WriteDep) -> JSONResponse:
    """Cancels an unused voucher and gives its points back; cancelling it again answers the same."""
    def work(session: Session) -> Outcome:
        now = utcnow()
        voucher = service.cancel_voucher(session, code, actor=principal.actor, now=now)
        return Outcome(200, service.voucher_out(session, voucher, now))
    return write.run(None, work)
