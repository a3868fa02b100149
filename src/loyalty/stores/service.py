"""Creating and reading stores; store kinds are cached because every purchase needs one."""

from __future__ import annotations

import threading
import time

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.db import database_key
from loyalty.errors import Conflict, NotFound
from loyalty.models import Store
from loyalty.models.customers import STORE_KINDS
from loyalty.timeutil import utcnow


class StoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$", examples=["HN01"])
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(pattern="^(" + "|".join(STORE_KINDS) + ")$", examples=["retail"])
    city: str | None = Field(default=None, max_length=100)


class StoreOut(StoreIn):
    model_config = ConfigDict(from_attributes=True)


def create_store(session: Session, data: StoreIn) -> Store:
    if session.get(Store, data.id) is not None:
        raise Conflict(f"store {data.id} already exists")
    store = Store(id=data.id, name=data.name, kind=data.kind, city=data.city, created_at=utcnow())
    session.add(store)
    session.flush()
    return store


def list_stores(session: Session) -> list[Store]:
    return list(session.scalars(select(Store).order_by(Store.id)))


_kinds: dict[tuple[str, str], tuple[str, float]] = {}
_kinds_lock = threading.Lock()
_KIND_TTL = 60.0


def store_kind(session: Session, store_id: str) -> str:
    """The store's kind; a store's kind rarely changes, so it is cached per process for a minute."""
    key = (database_key(session), store_id)
    with _kinds_lock:
        hit = _kinds.get(key)
    if hit and time.monotonic() - hit[1] < _KIND_TTL:
        return hit[0]
    kind = session.scalar(select(Store.kind).where(Store.id == store_id))
    if kind is None:
        raise NotFound(f"store {store_id!r} does not exist")
    with _kinds_lock:
        _kinds[key] = (kind, time.monotonic())
    return kind
