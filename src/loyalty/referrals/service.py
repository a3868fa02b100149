"""Referral codes, enrolment with a code, and rewarding the referrer exactly once.

A member's code is 8 characters from the voucher alphabet (no 0/O, 1/I/L), about 40 random
bits: short enough to read aloud, too many to guess one among a few million members. A referral
is refused when the new member shares a phone, card or e-mail (ignoring +tags, and dots at
Gmail) with the referrer, and when it would close a loop (A brought B, B cannot bring A). The
referrer is rewarded once, on the referred member's first purchase of at least `min_spend`:
the pending referral is switched with one conditional UPDATE, so concurrent purchases cannot
both reward it; the monthly cap is counted under the referrer's balance-row lock.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from loyalty.bonuses import service as bonuses
from loyalty.bulk import insert_rows
from loyalty.config import get_settings
from loyalty.errors import Conflict, NotFound, ValidationFailed
from loyalty.goals import service as goals
from loyalty.ledger.repository import lock_member
from loyalty.models import Customer, CustomerIdentity, Transaction
from loyalty.models.bonuses import Referral, ReferralCode
from loyalty.programs.service import ActiveProgram
from loyalty.referrals.schemas import ReferralCounts, ReferralOut
from loyalty.rewards.service import CODE_ALPHABET
from loyalty.transactions import effects

CODE_LENGTH = 8
IdentityKey = tuple[str, str, str]


class SelfReferral(ValidationFailed):
    type_slug = "self-referral"
    title = "A member cannot refer themselves"


class ReferralLoop(ValidationFailed):
    type_slug = "referral-loop"
    title = "The referral would close a loop"


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(raw: str) -> str | None:
    code = "".join(raw.split()).replace("-", "").upper()
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        return None
    return code


def give_codes(session: Session, customer_ids: list[int], now: datetime) -> None:
    """New members' codes, written with the members themselves, so that reading a code never writes
    (migration 0015 gave every earlier member one). Codes drawn here that are already stored, or
    drawn twice, are drawn again before the insert."""
    if not customer_ids:
        return
    codes: list[str] = []
    while len(codes) < len(customer_ids):
        have = set(codes)
        drawn = [c for c in dict.fromkeys(new_code() for _ in range(len(customer_ids) - len(codes))) if c not in have]
        taken: set[str] = set()
        for start in range(0, len(drawn), 900):
            taken.update(session.scalars(select(ReferralCode.code)
                                         .where(ReferralCode.code.in_(drawn[start:start + 900]))))
        codes += [code for code in drawn if code not in taken]
    insert_rows(session, ReferralCode, [{"customer_id": cid, "code": code, "created_at": now, "advocate_since": None}
                                        for cid, code in zip(customer_ids, codes, strict=True)])


def code_of(session: Session, customer_id: int) -> str:
    code = session.scalar(select(ReferralCode.code).where(ReferralCode.customer_id == customer_id))
    if code is None:
        if session.get(Customer, customer_id) is None:
            raise NotFound(f"customer {customer_id} does not exist")
        raise RuntimeError(f"customer {customer_id} has no referral code")  # every member is given one
    return code


def referrer_of_code(session: Session, raw: str) -> int:
    code = normalise_code(raw)
    owner = session.scalar(select(ReferralCode.customer_id).where(ReferralCode.code == code)) if code else None
    if owner is None:
        raise ValidationFailed(f"referral code {raw!r} does not exist; check the code")
    return owner


def _email_person(email: str) -> str:
    """The mailbox behind an address: 'An.Nguyen+shop@gmail.com' and 'annguyen@gmail.com' are one person."""
    local, _, domain = email.partition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def _shared_identity(session: Session, referrer_id: int, keys: list[IdentityKey]) -> str | None:
    """The kind of identity the new member shares with the referrer (phone, email, card), if any."""
    rows = session.execute(select(CustomerIdentity.kind, CustomerIdentity.value)
                           .where(CustomerIdentity.customer_id == referrer_id,
                                  CustomerIdentity.kind.in_(("phone", "email", "card")))).all()
    theirs = {(kind, _email_person(value) if kind == "email" else value) for kind, value in rows}
    for kind, _, value in keys:
        if kind in ("phone", "email", "card") and (kind, _email_person(value) if kind == "email" else value) in theirs:
            return kind
    return None


def _check_not_self(session: Session, referrer_id: int, keys: list[IdentityKey]) -> None:
    shared = _shared_identity(session, referrer_id, keys)
    if shared is not None:
        raise SelfReferral(f"the new member shares a {shared} with the owner of the referral code: "
                           "a member cannot refer themselves", shared=shared)


def _require_program(program: ActiveProgram) -> None:
    if program.definition.referrals is None:
        raise ValidationFailed("this program has no referrals: add a referrals: section to the program file")


def check_enrolment(session: Session, program: ActiveProgram, raw_code: str, keys: list[IdentityKey]) -> int:
    """The referrer for a new member enrolling with `raw_code`, checked before the member is written."""
    _require_program(program)
    referrer_id = referrer_of_code(session, raw_code)
    _check_not_self(session, referrer_id, keys)  # keys are normalised already
    return referrer_id


def link(session: Session, referrer_id: int, referred_id: int, now: datetime) -> Referral:
    referral = Referral(referrer_id=referrer_id, referred_id=referred_id, status="pending", created_at=now)
    session.add(referral)
    session.flush()
    return referral


_UP_THE_CHAIN = text(
    "WITH RECURSIVE up(id, depth) AS ("
    " SELECT CAST(:start AS BIGINT), 0"
    " UNION ALL SELECT r.referrer_id, up.depth + 1 FROM referrals r JOIN up ON r.referred_id = up.id"
    " WHERE up.depth < 10000)"
    " SELECT 1 FROM up WHERE id = :target LIMIT 1")


def attach(session: Session, program: ActiveProgram, customer_id: int, raw_code: str, now: datetime) -> Referral:
    """Records who referred an existing member who has not bought yet (a code given after enrolling)."""
    _require_program(program)
    lock_member(session, customer_id)  # 404 for an unknown customer; one attach at a time per member
    referrer_id = referrer_of_code(session, raw_code)
    if referrer_id == customer_id:
        raise SelfReferral("a member cannot use their own referral code")
    if session.scalar(select(Referral.referrer_id).where(Referral.referred_id == customer_id)) is not None:
        raise Conflict(f"customer {customer_id} was already referred")
    if session.scalar(select(Transaction.id).where(Transaction.customer_id == customer_id,
                                                   Transaction.kind == "purchase").limit(1)) is not None:
        raise Conflict(f"customer {customer_id} has already bought: a referral is given before the first purchase")
    if session.execute(_UP_THE_CHAIN, {"start": referrer_id, "target": customer_id}).first() is not None:
        raise ReferralLoop(f"customer {customer_id} is already up the referral chain of the code's owner "
                           f"(customer {referrer_id}): the referral would close a loop")
    keys = session.execute(select(CustomerIdentity.kind, CustomerIdentity.namespace, CustomerIdentity.value)
                           .where(CustomerIdentity.customer_id == customer_id)).all()
    _check_not_self(session, referrer_id, [(k, n, v) for k, n, v in keys])
    return link(session, referrer_id, customer_id, now)


def on_qualifying_purchase(session: Session, program: ActiveProgram, sale: effects.Sale,
                           day: date) -> list[effects.InstantReward]:
    """The referred member's first qualifying purchase: reward the referrer (within the monthly cap)
    and give the new member the welcome reward, returned for the receipt."""
    config = program.definition.referrals
    assert config is not None
    month = f"{day.year:04d}-{day.month:02d}"
    # Claims the pending referral: of two concurrent purchases, only one UPDATE matches it.
    claimed = session.execute(
        update(Referral).where(Referral.referred_id == sale.customer_id, Referral.status == "pending")
        .values(status="capped", qualified_at=sale.now, reward_month=month, transaction_id=sale.transaction_id)
        .returning(Referral.id, Referral.referrer_id)).one_or_none()
    if claimed is None:
        return []
    referral_id, referrer_id = claimed
    lock_member(session, referrer_id)  # counts this referrer's month one purchase at a time
    rewarded = session.scalar(select(func.count()).select_from(Referral).where(
        Referral.referrer_id == referrer_id, Referral.reward_month == month, Referral.status == "rewarded")) or 0
    if rewarded < config.max_rewards_per_month:
        session.execute(update(Referral).where(Referral.id == referral_id).values(status="rewarded"))
        bonuses.give(session, program, config.referrer, customer_id=referrer_id, kind="referrer",
                     once_key=f"referrer:{referral_id}", source="referral", actor=sale.actor, now=sale.now,
                     earned_at=min(sale.occurred_at, sale.now), transaction_id=sale.transaction_id)
    session.execute(update(ReferralCode).where(ReferralCode.customer_id == referrer_id,
                                               ReferralCode.advocate_since.is_(None))
                    .values(advocate_since=sale.now))
    # The referrer's referral goals (L10): the qualified referral counts even over the reward cap.
    goals.on_referral(session, program, referrer_id, at=sale.occurred_at, now=sale.now, actor=sale.actor)
    if config.welcome is None:
        return []
    return bonuses.give(session, program, config.welcome, customer_id=sale.customer_id, kind="referral_welcome",
                        once_key="referral_welcome", source="referral", actor=sale.actor, now=sale.now,
                        earned_at=min(sale.occurred_at, sale.now), transaction_id=sale.transaction_id)


# --- reads ----------------------------------------------------------------------------------------

def is_advocate(session: Session, customer_id: int) -> bool:
    return session.scalar(select(ReferralCode.advocate_since.is_not(None))
                          .where(ReferralCode.customer_id == customer_id)) or False


def advocate_ids(session: Session) -> list[int]:
    """Members who referred someone who went on to buy: for segments and analytics (C5 'advocate')."""
    return list(session.scalars(select(ReferralCode.customer_id).where(ReferralCode.advocate_since.is_not(None))
                                .order_by(ReferralCode.customer_id)))


def referral_out(session: Session, customer_id: int) -> ReferralOut:
    code = code_of(session, customer_id)
    rows: dict[str, int] = {status: int(n) for status, n in session.execute(
        select(Referral.status, func.count()).where(Referral.referrer_id == customer_id).group_by(Referral.status))}
    by = session.scalar(select(Referral.referrer_id).where(Referral.referred_id == customer_id))
    base = get_settings().public_url.rstrip("/")
    return ReferralOut(
        customer_id=customer_id, code=code, share_link=f"{base}/join?ref={code}", referred_by=by,
        advocate=is_advocate(session, customer_id),
        counts=ReferralCounts(referred=sum(rows.values()), pending=rows.get("pending", 0),
                              rewarded=rows.get("rewarded", 0), capped=rows.get("capped", 0)))
