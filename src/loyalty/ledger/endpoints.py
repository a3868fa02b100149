"""Balance, history, holds and adjustments over HTTP."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from loyalty.api.deps import AdminKey, AnyKey, Outcome, PosKey, ReadSession, StaffKey, WriteDep, check_store
from loyalty.api.limits import MAX_ID, IdPath
from loyalty.auth.service import Principal
from loyalty.errors import NotFound
from loyalty.ledger import service
from loyalty.ledger.repository import read_shown_balance
from loyalty.ledger.schemas import (
    AdjustmentIn,
    AdjustmentOut,
    BalanceDetail,
    CaptureIn,
    HoldIn,
    HoldOut,
    LedgerItem,
    LedgerPage,
)
from loyalty.models import Hold
from loyalty.programs.service import program_at
from loyalty.stores.service import store_kind
from loyalty.timeutil import utcnow
from loyalty.transactions.service import balance_out

router = APIRouter(tags=["points"])


@router.get("/customers/{customer_id}/balance", response_model=BalanceDetail)
def get_balance(customer_id: IdPath, session: ReadSession, _: AnyKey) -> BalanceDetail:
    view = service.balance_view(session, customer_id, utcnow())
    return BalanceDetail(customer_id=customer_id, available=view.available, pending=view.pending, held=view.held,
                         owed=view.owed, expiring_30_days=view.expiring[30], expiring_60_days=view.expiring[60],
                         expiring_90_days=view.expiring[90])


@router.get("/customers/{customer_id}/ledger", response_model=LedgerPage)
def get_ledger(
    customer_id: IdPath, session: ReadSession, _: StaffKey,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="entry id from next_before")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> LedgerPage:
    items = service.history(session, customer_id, before=before, limit=limit)
    return LedgerPage(
        items=[LedgerItem(entry_id=i.entry_id, kind=i.kind, reason=i.reason, actor=i.actor, created_at=i.created_at,
                          transaction_id=i.transaction_id, changes=i.changes) for i in items],
        next_before=items[-1].entry_id if len(items) == limit else None,
    )


def _hold_out(session: Session, hold: Hold) -> HoldOut:
    return HoldOut(id=hold.id, customer_id=hold.customer_id, store_id=hold.store_id, points=hold.points,
                   captured_points=hold.captured_points, status=hold.status, reference=hold.reference,
                   created_at=hold.created_at, expires_at=hold.expires_at,
                   balance=balance_out(read_shown_balance(session, hold.customer_id, utcnow())))


def _own_hold(session: Session, hold_id: int, principal: Principal) -> None:
    hold = session.get(Hold, hold_id)
    if hold is None or (principal.role == "store" and hold.store_id != principal.store_id):
        raise NotFound(f"hold {hold_id} does not exist")


@router.post("/customers/{customer_id}/holds", status_code=201, response_model=HoldOut,
             responses={409: {"description": "not enough points"}})
def create_hold(customer_id: IdPath, data: HoldIn, principal: PosKey, write: WriteDep) -> JSONResponse:
    store_id = data.store_id or principal.store_id
    check_store(principal, store_id)

    def work(session: Session) -> Outcome:
        now = utcnow()
        timeout = (timedelta(seconds=data.expires_in_seconds) if data.expires_in_seconds
                   else timedelta(minutes=program_at(session, now).definition.hold_timeout_minutes))
        if store_id is not None:
            store_kind(session, store_id)
        hold = service.create_hold(session, customer_id=customer_id, points=data.points, store_id=store_id,
                                   reference=data.reference, timeout=timeout, actor=principal.actor, now=now)
        return Outcome(201, _hold_out(session, hold))
    return write.run(data, work)


@router.get("/holds/{hold_id}", response_model=HoldOut)
def get_hold(hold_id: IdPath, session: ReadSession, principal: AnyKey) -> HoldOut:
    _own_hold(session, hold_id, principal)
    hold = session.get(Hold, hold_id)
    assert hold is not None
    return _hold_out(session, hold)


@router.post("/holds/{hold_id}/capture", response_model=HoldOut, responses={409: {"description": "hold not active"}})
def capture_hold(hold_id: IdPath, principal: PosKey, write: WriteDep, data: CaptureIn | None = None) -> JSONResponse:
    def work(session: Session) -> Outcome:
        _own_hold(session, hold_id, principal)
        hold = service.capture_hold(session, hold_id, points=data.points if data else None, actor=principal.actor,
                                    now=utcnow())
        return Outcome(200, _hold_out(session, hold))
    return write.run(data, work)


@router.post("/holds/{hold_id}/void", response_model=HoldOut, responses={409: {"description": "hold not active"}})
def void_hold(hold_id: IdPath, principal: PosKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        _own_hold(session, hold_id, principal)
        hold = service.void_hold(session, hold_id, actor=principal.actor, now=utcnow())
        return Outcome(200, _hold_out(session, hold))
    return write.run(None, work)


@router.post("/adjustments", status_code=201, response_model=AdjustmentOut)
def create_adjustment(data: AdjustmentIn, principal: AdminKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        now = utcnow()
        source_id = write.idempotency_key or uuid.uuid4().hex
        entry_id = service.adjust(session, program_at(session, now), customer_id=data.customer_id,
                                  points=data.points, reason=data.reason, actor=principal.actor,
                                  source_id=f"{principal.key_id}:{source_id}", now=now)
        return Outcome(201, AdjustmentOut(entry_id=entry_id, customer_id=data.customer_id, points=data.points,
                                          reason=data.reason,
                                          balance=balance_out(read_shown_balance(session, data.customer_id, now))))
    return write.run(data, work)
