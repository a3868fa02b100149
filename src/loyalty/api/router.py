"""Assembles the /v1 API from each domain's endpoints."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from loyalty.analytics.endpoints import router as analytics
from loyalty.customers.endpoints import router as customers
from loyalty.goals.endpoints import router as goals
from loyalty.ledger.endpoints import router as ledger
from loyalty.members.endpoints import router as members
from loyalty.programs.endpoints import router as programs
from loyalty.referrals.endpoints import router as referrals
from loyalty.rewards.endpoints import router as rewards
from loyalty.service.endpoints import router as service
from loyalty.stamps.endpoints import router as stamps
from loyalty.stores.endpoints import router as stores
from loyalty.tiers.endpoints import router as tiers
from loyalty.transactions.endpoints import router as transactions


class Health(BaseModel):
    status: str


def build_router() -> APIRouter:
    api = APIRouter(prefix="/v1")

    @api.get("/health", response_model=Health, tags=["meta"])
    def health() -> Health:
        """No database work: the baseline the benchmarks compare real endpoints with."""
        return Health(status="ok")

    for router in (customers, transactions, ledger, stores, programs, service):
        api.include_router(router)
    api.include_router(analytics)
    api.include_router(rewards)
    api.include_router(tiers)
    api.include_router(members)
    api.include_router(stamps)
    api.include_router(goals)
    api.include_router(referrals)
    return api
