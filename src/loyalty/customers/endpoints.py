"""Customers over HTTP: create, read, change, and look up by any identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from loyalty.api.deps import AdminKey, AnyKey, Outcome, ReadSession, WriteDep
from loyalty.api.limits import IdPath
from loyalty.customers import service
from loyalty.customers.schemas import CustomerCreate, CustomerOut, CustomerUpdate

router = APIRouter(tags=["customers"])


@router.post("/customers", status_code=201, response_model=CustomerOut,
             responses={409: {"description": "an identity already belongs to another customer"}})
def create_customer(data: CustomerCreate, principal: AdminKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        customer = service.create_customer(session, data, actor=principal.actor)
        return Outcome(201, service.to_out(session, customer), {"Location": f"/v1/customers/{customer.id}"})
    return write.run(data, work)


@router.get("/customers", response_model=CustomerOut, summary="Look a customer up by one identity")
def lookup_customer(
    session: ReadSession, _: AnyKey,
    phone: Annotated[str | None, Query(max_length=30, examples=["0912345678"])] = None,
    email: Annotated[str | None, Query(max_length=200)] = None,
    card: Annotated[str | None, Query(max_length=40)] = None,
    external_id: Annotated[str | None, Query(max_length=200)] = None,
    namespace: Annotated[str | None, Query(max_length=32, description="issuer of external_id")] = None,
) -> CustomerOut:
    customer = service.lookup(session, phone=phone, email=email, card=card, external_id=external_id,
                              namespace=namespace)
    return service.to_out(session, customer)


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def get_customer(customer_id: IdPath, session: ReadSession, _: AnyKey) -> CustomerOut:
    return service.to_out(session, service.require_customer(session, customer_id))


@router.patch("/customers/{customer_id}", response_model=CustomerOut)
def update_customer(customer_id: IdPath, data: CustomerUpdate, _: AdminKey, write: WriteDep) -> JSONResponse:
    def work(session: Session) -> Outcome:
        return Outcome(200, service.to_out(session, service.update_customer(session, customer_id, data)))
    return write.run(data, work)
