"""Staff members, the stores they cover, and what each API key may see of the service desk."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from loyalty.auth.service import Principal
from loyalty.errors import Conflict, Forbidden, NotFound
from loyalty.models import Store
from loyalty.models.service import StaffMember, StaffStore
from loyalty.service.schemas import StaffIn, StaffOut, StaffPatch
from loyalty.timeutil import utcnow


def _known_stores(session: Session, requested: list[str]) -> list[str]:
    stores = list(dict.fromkeys(requested))
    known = set(session.scalars(select(Store.id).where(Store.id.in_(stores)))) if stores else set()
    missing = [s for s in stores if s not in known]
    if missing:
        raise NotFound(f"store {missing[0]!r} does not exist")
    return stores


def create_staff(session: Session, data: StaffIn) -> StaffMember:
    email = data.email.strip().lower()
    if session.scalar(select(StaffMember.id).where(StaffMember.email == email)) is not None:
        raise Conflict(f"a staff member with e-mail {email} already exists")
    stores = _known_stores(session, data.stores)
    member = StaffMember(name=data.name.strip(), email=email, role=data.role, active=True, created_at=utcnow())
    session.add(member)
    session.flush()
    session.add_all([StaffStore(staff_id=member.id, store_id=s) for s in stores])
    session.flush()
    return member


def update_staff(session: Session, staff_id: int, data: StaffPatch) -> StaffMember:
    """Deactivates or reactivates a staff member and/or replaces the stores they cover.

    Takes effect at once for what is read per request: the stores an agent or manager key sees,
    and round-robin assignment (active agents of the store only). A deactivated person's keys
    are refused by authentication; the caller clears this process's key cache after the commit
    (other server processes keep a verified key for up to 30 s). Tickets they own stay theirs
    until a manager reassigns them.
    """
    member = session.get(StaffMember, staff_id, with_for_update=True)
    if member is None:
        raise NotFound(f"staff member {staff_id} does not exist")
    if data.stores is not None:
        wanted = _known_stores(session, data.stores)
        current = set(stores_of(session, staff_id))
        gone = sorted(current - set(wanted))
        if gone:
            session.execute(delete(StaffStore).where(StaffStore.staff_id == staff_id,
                                                     StaffStore.store_id.in_(gone)))
        # Kept stores keep their round-robin position (last_assigned_at); new ones start first in line.
        session.add_all([StaffStore(staff_id=staff_id, store_id=s) for s in wanted if s not in current])
    if data.active is not None:
        member.active = data.active
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
