"""Creating, changing and finding customers; every customer gets a ledger balance row at birth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from loyalty.bulk import insert_rows
from loyalty.customers import repository
from loyalty.customers.identities import (
    guess_identity,
    normalise_card,
    normalise_email,
    normalise_external,
    normalise_phone,
)
from loyalty.customers.schemas import (
    Consents,
    CustomerCreate,
    CustomerOut,
    CustomerUpdate,
    ExternalId,
    Identities,
)
from loyalty.errors import Conflict, NotFound, ValidationFailed
from loyalty.models import Customer, CustomerIdentity, MemberBalance, Store
from loyalty.programs.service import program_at
from loyalty.timeutil import as_utc, utcnow


def _identity_keys(phone: str | None, email: str | None, card: str | None,
                   external_ids: list[ExternalId] | None) -> list[tuple[str, str, str]]:
    keys: list[tuple[str, str, str]] = []
    if phone:
        keys.append(("phone", "", normalise_phone(phone)))
    if email:
        keys.append(("email", "", normalise_email(email)))
    if card:
        keys.append(("card", "", normalise_card(card)))
    for ext in external_ids or []:
        keys.append(("external", ext.namespace, normalise_external(ext.value)))
    if len(set(keys)) != len(keys):
        raise ValidationFailed("the same identity is given twice")
    return keys


def _claim_identities(session: Session, customer_id: int, keys: list[tuple[str, str, str]]) -> None:
    taken = repository.find_many(session, keys)
    for key, owner in taken.items():
        if owner != customer_id:
            kind, namespace, value = key
            label = f"{namespace}:{value}" if namespace else value
            raise Conflict(f"{kind} {label} already belongs to customer {owner}", customer_id=owner)
    fresh = [k for k in keys if k not in taken]
    if fresh:
        now = utcnow()
        insert_rows(session, CustomerIdentity, [
            {"customer_id": customer_id, "kind": k, "namespace": n, "value": v, "created_at": now}
            for k, n, v in fresh
        ])


_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)


def check_enrolled_at(moment: datetime, now: datetime) -> None:
    """An enrolment time after 1900 and at most a day ahead (a clock running fast), for the API and the import."""
    # Aware datetimes compare without converting, so even year 1 or 9999 is refused, not a 500.
    if not _EARLIEST <= moment <= now + timedelta(days=1):
        raise ValidationFailed(f"enrolled_at {moment.isoformat()} must be after 1900 and not in the future")


def _require_store(session: Session, store_id: str | None) -> None:
    if store_id is not None and session.get(Store, store_id) is None:
        raise ValidationFailed(f"store {store_id!r} does not exist")


def create_customer(session: Session, data: CustomerCreate, *, store_id: str | None = None,
                    actor: str = "api") -> Customer:
    # Imported here: bonuses give vouchers through rewards, whose tier checks use this module.
    from loyalty.bonuses import service as bonuses
    from loyalty.referrals import service as referrals

    keys = _identity_keys(data.phone, data.email, data.card, data.external_ids)
    enrolled_store = data.enrolled_store_id or store_id
    _require_store(session, enrolled_store)
    now = utcnow()
    program = program_at(session, now)
    # Checked before anything is written: a self-referral is refused as such, not as a taken phone.
    referrer = referrals.check_enrolment(session, program, data.referral_code, keys) if data.referral_code else None
    if data.enrolled_at is not None:
        check_enrolled_at(data.enrolled_at, now)
    customer = Customer(
        name=data.name, birthday=data.birthday, gender=data.gender, city=data.city,
        preferred_channel=data.preferred_channel, consent_email=data.consents.email,
        consent_sms=data.consents.sms, consent_zalo=data.consents.zalo, consent_phone=data.consents.phone,
        enrolled_store_id=enrolled_store, enrolled_at=as_utc(data.enrolled_at) if data.enrolled_at else now,
        created_at=now, updated_at=now,
    )
    session.add(customer)
    session.flush()
    _claim_identities(session, customer.id, keys)
    session.execute(insert(MemberBalance).values(customer_id=customer.id, available=0, pending=0, held=0,
                                                 owed=0, earned_total=0))
    referrals.give_codes(session, [customer.id], now)
    if referrer is not None:
        referrals.link(session, referrer, customer.id, now)
    bonuses.on_enrolment(session, program, customer.id, actor=actor, now=now)  # the sign-up gift (L6)
    return customer


def update_customer(session: Session, customer_id: int, data: CustomerUpdate) -> Customer:
    customer = require_customer(session, customer_id)
    fields = data.model_dump(exclude_unset=True)
    for name in ("name", "birthday", "gender", "city", "preferred_channel"):
        if name in fields:
            setattr(customer, name, fields[name])
    if data.consents is not None:
        # A PATCH changes only the channels it names; the others keep their consent.
        for channel in data.consents.model_fields_set:
            setattr(customer, f"consent_{channel}", getattr(data.consents, channel))
    keys = _identity_keys(data.phone, data.email, data.card, data.external_ids)
    replaced = {kind for kind, _, _ in keys if kind in ("phone", "email")}
    if replaced:
        # A customer has one phone and one e-mail: a new one replaces the old (cards accumulate).
        session.execute(delete(CustomerIdentity).where(
            CustomerIdentity.customer_id == customer_id, CustomerIdentity.kind.in_(replaced),
            CustomerIdentity.value.not_in([v for k, _, v in keys if k in replaced])))
    _claim_identities(session, customer_id, keys)
    customer.updated_at = utcnow()
    session.flush()
    return customer


def require_customer(session: Session, customer_id: int) -> Customer:
    customer = repository.get_customer(session, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} does not exist")
    return customer


def lookup(session: Session, *, phone: str | None = None, email: str | None = None, card: str | None = None,
           external_id: str | None = None, namespace: str | None = None) -> Customer:
    given = [x for x in (phone, email, card, external_id) if x]
    if len(given) != 1:
        raise ValidationFailed("look a customer up by exactly one of phone, email, card or external_id")
    if phone:
        kind, ns, value = "phone", "", normalise_phone(phone)
    elif email:
        kind, ns, value = "email", "", normalise_email(email)
    elif card:
        kind, ns, value = "card", "", normalise_card(card)
    else:
        if not namespace:
            raise ValidationFailed("an external_id look-up needs its namespace")
        kind, ns, value = "external", namespace, normalise_external(external_id or "")
    customer_id = repository.find_by_identity(session, kind, value, ns)
    if customer_id is None:
        raise NotFound(f"no customer with {kind} {value}")
    return require_customer(session, customer_id)


def resolve_reference(session: Session, reference: str) -> Customer:
    """A customer from an id or any identity, for the CLI (`customer show 0912345678`)."""
    if reference.isdigit() and len(reference) < 9:
        return require_customer(session, int(reference))
    kind, value = guess_identity(reference)
    customer_id = repository.find_by_identity(session, kind, value)
    if customer_id is None and kind == "card":
        customer_id = session.scalar(select(CustomerIdentity.customer_id).where(
            CustomerIdentity.kind == "external", CustomerIdentity.value == reference.strip()).limit(1))
    if customer_id is None:
        raise NotFound(f"no customer with {kind} {value}")
    return require_customer(session, customer_id)


def to_out(session: Session, customer: Customer) -> CustomerOut:
    identities = repository.identities_of(session, customer.id)
    return CustomerOut(
        id=customer.id, name=customer.name, birthday=customer.birthday, gender=customer.gender,
        city=customer.city, preferred_channel=customer.preferred_channel,
        identities=Identities(
            phone=next((i.value for i in identities if i.kind == "phone"), None),
            email=next((i.value for i in identities if i.kind == "email"), None),
            cards=[i.value for i in identities if i.kind == "card"],
            external_ids=[ExternalId(namespace=i.namespace, value=i.value) for i in identities if i.kind == "external"],
        ),
        consents=Consents(email=customer.consent_email, sms=customer.consent_sms, zalo=customer.consent_zalo,
                          phone=customer.consent_phone),
        enrolled_store_id=customer.enrolled_store_id, enrolled_at=customer.enrolled_at,
        created_at=customer.created_at, updated_at=customer.updated_at,
    )
