"""Purchases and returns over HTTP, for POS terminals and the web shop."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from loyalty.api.deps import AnyKey, Outcome, PosKey, ReadSession, WriteDep, check_store
from loyalty.api.limits import IdPath
from loyalty.errors import NotFound
from loyalty.transactions import service
from loyalty.transactions.schemas import PurchaseIn, PurchaseOut, ReturnIn, ReturnOut

router = APIRouter(tags=["transactions"])


@router.post("/transactions", status_code=201, response_model=PurchaseOut,
             responses={200: {"description": "already recorded: the first result again", "model": PurchaseOut},
                        409: {"description": "same POS id with different details, or not enough points"}})
def create_purchase(data: PurchaseIn, principal: PosKey, write: WriteDep) -> JSONResponse:
    check_store(principal, data.store_id)

    def work(session: Session) -> Outcome:
        recorded = service.record_purchase(session, data, actor=principal.actor)
        if recorded.replayed:
            return Outcome(200, recorded.body, {"Idempotent-Replayed": "true"})
        return Outcome(201, recorded.body, {"Location": f"/v1/transactions/{recorded.body.id}"})
    return write.run(data, work)


@router.get("/transactions/{transaction_id}", response_model=PurchaseOut)
def get_purchase(transaction_id: IdPath, session: ReadSession, principal: AnyKey) -> PurchaseOut:
    tx = service.get_transaction(session, transaction_id)
    if tx.kind != "purchase" or (principal.role == "store" and tx.store_id != principal.store_id):
        raise NotFound(f"purchase {transaction_id} does not exist")
    return service.purchase_out(session, tx)


@router.post("/transactions/{transaction_id}/returns", status_code=201, response_model=ReturnOut,
             responses={200: {"description": "already recorded: the first result again", "model": ReturnOut}})
def create_return(transaction_id: IdPath, data: ReturnIn, principal: PosKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        allowed = principal.store_id if principal.role == "store" else None
        recorded = service.register_return(session, transaction_id, data, actor=principal.actor,
                                           allowed_store=allowed)
        if recorded.replayed:
            return Outcome(200, recorded.body, {"Idempotent-Replayed": "true"})
        return Outcome(201, recorded.body)
    return write.run(data, work)
