"""Stores and channels over HTTP."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from loyalty.api.deps import AdminKey, AnyKey, Outcome, ReadSession, WriteDep
from loyalty.stores import service
from loyalty.stores.service import StoreIn, StoreOut

router = APIRouter(tags=["stores"])


@router.post("/stores", status_code=201, response_model=StoreOut)
def create_store(data: StoreIn, _: AdminKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        return Outcome(201, StoreOut.model_validate(service.create_store(session, data)))
    return write.run(data, work)


@router.get("/stores", response_model=list[StoreOut])
def list_stores(session: ReadSession, _: AnyKey) -> list[StoreOut]:
    return [StoreOut.model_validate(store) for store in service.list_stores(session)]
