"""Staff members, the stores they cover, and what each API key may see of the service desk."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.auth.service import Principal
from loyalty.errors import Conflict, Forbidden, NotFound
from loyalty.models import Store
from loyalty.models.service import StaffMember, StaffStore
from loyalty.service.schemas import StaffIn, StaffOut
from loyalty.timeutil import utcnow


def create_staff(session: Session, data: StaffIn) -> StaffMember:
    email = data.email.strip().lower()
    if session.scalar(select(StaffMember.id).where(StaffMember.email == email)) is not None:
        raise Conflict(f"a staff member with e-mail {email} already exists")
    stores = list(dict.fromkeys(data.stores))
    known = set(session.scalars(select(Store.id).where(Store.id.in_(stores)))) if stores else set()
    missing = [s for s in stores if s not in known]
    if missing:
        raise NotFound(f"store {missing[0]!r} does not exist")
    member = StaffMember(name=data.name.strip(), email=email, role=data.role, active=True, created_at=utcnow())
    session.add(member)
    session.flush()
    session.add_all([StaffStore(staff_id=member.id, store_id=s) for s in stores])
    session.flush()
    return member


def stores_of(session: Session, staff_id: int) -> list[str]:
    return list(session.scalars(select(StaffStore.store_id).where(StaffStore.staff_id == staff_id)
                                .order_by(StaffStore.store_id)))


def to_out(session: Session, member: StaffMember) -> StaffOut:
    return StaffOut(id=member.id, name=member.name, email=member.email, role=member.role, active=member.active,
                    stores=stores_of(session, member.id))


def list_staff(session: Session) -> list[StaffOut]:
    return [to_out(session, m) for m in session.scalars(select(StaffMember).order_by(StaffMember.id))]


@dataclass(frozen=True, slots=True)
class Scope:
    """What a key may see and do at the service desk: all stores (admin) or the ones its person covers."""

    role: str
    staff_id: int | None
    actor: str
    stores: frozenset[str] | None  # None: every store, and tickets without a store

    def sees(self, store_id: str | None) -> bool:
        if self.stores is None:
            return True
        return store_id is not None and store_id in self.stores

    def require_store(self, store_id: str | None) -> None:
        if not self.sees(store_id):
            raise Forbidden(f"this key does not cover store {store_id}")


def scope_of(session: Session, principal: Principal) -> Scope:
    if principal.role in ("agent", "manager"):
        assert principal.staff_id is not None  # create_key guarantees it
        return Scope(principal.role, principal.staff_id, principal.actor,
                     frozenset(stores_of(session, principal.staff_id)))
    if principal.role == "store":
        return Scope("store", None, principal.actor, frozenset({principal.store_id or ""}))
    return Scope(principal.role, principal.staff_id, principal.actor, None)


def require_staff(session: Session, staff_id: int) -> StaffMember:
    member = session.get(StaffMember, staff_id)
    if member is None or not member.active:
        raise NotFound(f"staff member {staff_id} does not exist or is not active")
    return member
