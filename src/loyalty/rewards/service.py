"""Rewards for points: the catalogue, issuing vouchers, burning them at the POS, cancelling, expiry.

Issuing spends the points at once (available -> redeemed, from the soonest-expiring lots) and
takes one unit of stock; burning at the POS only changes the voucher's status; cancelling an
unused voucher gives the very points back and returns the unit. Every function takes the
caller's session and never commits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, or_, update
from sqlalchemy.orm import Session

from loyalty.bulk import allocate_ids
from loyalty.driver import DriverStatement
from loyalty.errors import Conflict, NotFound, ValidationFailed
from loyalty.ledger import service as ledger
from loyalty.ledger.repository import lock_member, read_balance
from loyalty.models.base import UTCDateTime
from loyalty.models.rewards import Reward, Voucher
from loyalty.programs.service import program_at
from loyalty.rewards import repository
from loyalty.rewards.schemas import RewardDefinition, RewardOut, RewardUpdate, VoucherOut, check_window
from loyalty.stores.service import store_kind
from loyalty.tiers import service as tiers
from loyalty.timeutil import business_date, start_of_business_day


class RewardUnavailable(Conflict):
    type_slug = "reward-unavailable"
    title = "The reward cannot be redeemed now"


class OutOfStock(Conflict):
    type_slug = "out-of-stock"
    title = "The reward is out of stock"


class RewardLimitReached(Conflict):
    type_slug = "reward-limit-reached"
    title = "The member already has as many of this reward as allowed"


class TierRequired(Conflict):
    type_slug = "tier-required"
    title = "The reward is for a higher tier"


# Burning or cancelling a voucher that cannot be used any more is a 409 with its own problem
# type, not a 410: the voucher still exists (GET shows it and why it is unusable), and clients
# switch on the type to tell the member what happened.
class VoucherUsed(Conflict):
    type_slug = "voucher-used"
    title = "The voucher was already used"


class VoucherExpired(Conflict):
    type_slug = "voucher-expired"
    title = "The voucher has expired"


class VoucherCancelled(Conflict):
    type_slug = "voucher-cancelled"
    title = "The voucher was cancelled"


# --- voucher codes ----------------------------------------------------------------------------

# No 0/O, 1/I/L: read aloud or typed from a phone screen, no two characters are confused.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 12


def new_voucher_code() -> str:
    """12 characters from `secrets` (about 59 random bits), grouped in fours for reading."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i:i + 4] for i in range(0, CODE_LENGTH, 4))


def normalise_voucher_code(code: str) -> str | None:
    """What a cashier types (any case, with or without dashes or spaces) in the stored form; None if impossible."""
    raw = "".join(code.split()).replace("-", "").upper()
    if len(raw) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in raw):
        return None
    return "-".join(raw[i:i + 4] for i in range(0, CODE_LENGTH, 4))


# --- the catalogue ----------------------------------------------------------------------------

def reward_out(reward: Reward) -> RewardOut:
    return RewardOut.model_validate(reward, from_attributes=True)


def require_reward(session: Session, code: str) -> Reward:
    reward = repository.reward_by_code(session, code)
    if reward is None:
        raise NotFound(f"reward {code!r} does not exist")
    return reward


def create_reward(session: Session, data: RewardDefinition, now: datetime) -> Reward:
    if repository.reward_by_code(session, data.code) is not None:
        raise Conflict(f"reward {data.code} already exists; change it with PATCH /v1/rewards/{data.code}")
    reward = Reward(**data.model_dump(), active=True, created_at=now, updated_at=now)
    session.add(reward)
    session.flush()
    return reward


def update_reward(session: Session, code: str, data: RewardUpdate, now: datetime) -> Reward:
    reward = require_reward(session, code)
    changes = data.model_dump(include=data.model_fields_set)
    try:
        check_window(changes.get("valid_from", reward.valid_from), changes.get("valid_until", reward.valid_until))
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    for name, value in changes.items():
        setattr(reward, name, value)
    reward.updated_at = now
    session.flush()
    return reward


# --- vouchers ---------------------------------------------------------------------------------

def _voucher_expiry(session: Session, issued_at: datetime, days: int) -> datetime:
    """Usable through the `days`-th business day after issue, in the program's time zone."""
    tz = program_at(session, issued_at).tz
    return start_of_business_day(business_date(issued_at, tz) + timedelta(days=days + 1), tz)


def _check_offered(reward: Reward, now: datetime) -> None:
    if not reward.active:
        raise RewardUnavailable(f"reward {reward.code} is no longer offered")
    if reward.valid_from is not None and now < reward.valid_from:
        raise RewardUnavailable(f"reward {reward.code} can be redeemed from {reward.valid_from.isoformat()}",
                                valid_from=reward.valid_from.isoformat())
    if reward.valid_until is not None and now >= reward.valid_until:
        raise RewardUnavailable(f"reward {reward.code} could be redeemed until {reward.valid_until.isoformat()}",
                                valid_until=reward.valid_until.isoformat())


def issue_voucher(session: Session, *, customer_id: int, reward_code: str, actor: str, now: datetime) -> Voucher:
    """Spends the member's points on a reward and issues its voucher; all or nothing.

    Locks in the order every writer here uses: the member's balance row, then the reward row.
    """
    reward = require_reward(session, reward_code)
    _check_offered(reward, now)
    lock_member(session, customer_id)  # 404 for an unknown customer; serialises this member's requests
    program = program_at(session, now)
    # The reward's min_tier, or a higher tier whose perks keep it for themselves (reward_access).
    needed = tiers.required_tier(program, reward.code, reward.min_tier)
    if needed is not None and not tiers.meets_tier(program, tiers.member_tier(session, customer_id, now), needed):
        raise TierRequired(f"reward {reward.code} is for members of tier {needed}", min_tier=needed)
    if reward.per_member_limit is not None:
        held = repository.vouchers_held(session, customer_id, reward.id)
        if held >= reward.per_member_limit:
            raise RewardLimitReached(
                f"customer {customer_id} already has {held} of reward {reward.code}, the most one member may have",
                limit=reward.per_member_limit)
    if not repository.take_one_unit(session, reward.id):
        raise OutOfStock(f"reward {reward.code} is out of stock", reward_code=reward.code)
    # The id comes first so the ledger entry can name the voucher it paid for.
    [voucher_id] = allocate_ids(session, Voucher, 1)
    entry_id = ledger.spend(
        session, customer_id=customer_id, points=reward.points_cost, kind="reward", to_account="redeemed",
        source_type="voucher", source_id=str(voucher_id), event="redeem",
        reason=f"points redeemed for reward {reward.code} ({reward.name})", actor=actor, now=now,
        spend_type="voucher", spend_id=voucher_id)
    # A code collision (about 1 in 10^17 per pair) fails the insert's UNIQUE; the request is retried whole.
    voucher = Voucher(
        id=voucher_id, code=new_voucher_code(), customer_id=customer_id, reward_id=reward.id, kind=reward.kind,
        amount=reward.amount, percent=reward.percent, sku=reward.sku, points_spent=reward.points_cost,
        status="issued", issued_at=now, issued_by=actor,
        expires_at=_voucher_expiry(session, now, reward.voucher_valid_days), spend_entry_id=entry_id)
    session.add(voucher)
    session.flush()
    return voucher


@dataclass(frozen=True, slots=True)
class Granted:
    voucher_id: int
    code: str
    reward_name: str


def _take_granted_unit() -> Any:
    R = Reward
    now = bindparam("grant_now", type_=UTCDateTime())
    return (update(Reward)
            .where(R.code == bindparam("grant_code"), R.active.is_(True), or_(R.stock.is_(None), R.stock > 0),
                   or_(R.valid_from.is_(None), R.valid_from <= now), or_(R.valid_until.is_(None), R.valid_until > now))
            .values(stock=R.stock - 1)
            .returning(R.id, R.name, R.kind, R.amount, R.percent, R.sku, R.voucher_valid_days))


def _insert_granted_voucher() -> Any:
    columns = ("code", "customer_id", "reward_id", "kind", "amount", "percent", "sku", "issued_by")
    values: dict[str, Any] = {name: bindparam(f"voucher_{name}") for name in columns}
    at = {name: bindparam(f"voucher_{name}", type_=UTCDateTime()) for name in ("issued_at", "expires_at")}
    return (insert(Voucher)
            .values(**values, **at, points_spent=0, status="issued", spend_entry_id=None)
            .returning(Voucher.id))


# Stamp cards complete on about one sale in ten in a café: these two run often enough to be prebuilt.
_TAKE_GRANTED_UNIT = DriverStatement("grant voucher: take a unit", _take_granted_unit)
_INSERT_GRANTED_VOUCHER = DriverStatement("grant voucher: insert", _insert_granted_voucher)


def grant_voucher(session: Session, *, customer_id: int, reward_code: str, actor: str, now: datetime) -> Granted:
    """Issues a reward's voucher free of points (a stamp card's reward, L5).

    The same code, stock and validity rules as `issue_voucher`; no points move, so no ledger entry,
    and tier and per-member limits do not apply (the member earned it on the card). Two statements:
    one conditional UPDATE takes the unit (row-locking the reward, so the last unit goes to one
    caller) and returns what the voucher copies, one INSERT writes the voucher. Raises
    RewardUnavailable when the reward is unknown, not offered now or out of stock.
    """
    session.flush()  # driver level below: a reward changed through the session must be seen
    taken = _TAKE_GRANTED_UNIT.one_or_none(session, {"grant_code": reward_code, "grant_now": now})
    if taken is None:
        raise RewardUnavailable(f"reward {reward_code} cannot be granted now: not in the catalogue, not offered "
                                "or out of stock", reward_code=reward_code)
    reward_id, name, kind, amount, percent, sku, valid_days = taken
    code = new_voucher_code()
    # A code collision (about 1 in 10^17 per pair) fails the insert's UNIQUE; the request is retried whole.
    (voucher_id,) = _INSERT_GRANTED_VOUCHER.rows(session, {
        "voucher_code": code, "voucher_customer_id": customer_id, "voucher_reward_id": reward_id,
        "voucher_kind": kind, "voucher_amount": amount, "voucher_percent": percent, "voucher_sku": sku,
        "voucher_issued_by": actor, "voucher_issued_at": now,
        "voucher_expires_at": _voucher_expiry(session, now, valid_days)})[0]
    return Granted(int(voucher_id), code, str(name))


def withdraw_granted_voucher(session: Session, voucher_id: int, *, now: datetime) -> bool:
    """Cancels an unused granted voucher (its sale was returned); its unit goes back to stock.

    False when it was used, expired or already cancelled: then it stays as it is.
    """
    voucher = session.get(Voucher, voucher_id, with_for_update=True)
    if voucher is None or voucher.points_spent != 0:
        return False
    if not repository.mark_cancelled(session, voucher_id, refund_entry_id=None, now=now):
        return False
    repository.return_one_unit(session, voucher.reward_id)
    session.refresh(voucher)
    return True


def require_voucher(session: Session, code: str) -> Voucher:
    normal = normalise_voucher_code(code)
    voucher = repository.voucher_by_code(session, normal) if normal else None
    if voucher is None:
        raise NotFound(f"voucher {code!r} does not exist; check the code")
    return voucher


def _refuse(voucher: Voucher, now: datetime, action: str) -> Conflict:
    """Why an unusable voucher cannot be burned or cancelled, with when and where it was used."""
    if voucher.status == "redeemed":
        assert voucher.redeemed_at is not None
        ref = f", transaction {voucher.redeemed_reference}" if voucher.redeemed_reference else ""
        return VoucherUsed(
            f"voucher {voucher.code} cannot be {action}: it was used at store {voucher.redeemed_store_id} "
            f"at {voucher.redeemed_at.isoformat()}{ref}",
            redeemed_at=voucher.redeemed_at.isoformat(), redeemed_store_id=voucher.redeemed_store_id,
            redeemed_transaction_id=voucher.redeemed_reference)
    if voucher.status == "cancelled":
        assert voucher.cancelled_at is not None
        return VoucherCancelled(
            f"voucher {voucher.code} cannot be {action}: it was cancelled at {voucher.cancelled_at.isoformat()} "
            "and its points given back", cancelled_at=voucher.cancelled_at.isoformat())
    return VoucherExpired(f"voucher {voucher.code} cannot be {action}: it expired at "
                          f"{voucher.expires_at.isoformat()}", expires_at=voucher.expires_at.isoformat())


def redeem_voucher(
    session: Session, code: str, *, store_id: str, reference: str | None, now: datetime,
) -> tuple[Voucher, bool]:
    """Burns a voucher at a store; (voucher, True) the first time.

    The same burn retried with the same store and POS transaction id gets the first answer
    (False); any other second burn is a 409 that says when and where the voucher was used.
    """
    voucher = require_voucher(session, code)
    store_kind(session, store_id)  # 404 for an unknown store
    if repository.mark_redeemed(session, voucher.id, store_id=store_id, reference=reference, now=now):
        session.refresh(voucher)
        return voucher, True
    session.refresh(voucher)
    if (voucher.status == "redeemed" and reference is not None and voucher.redeemed_reference == reference
            and voucher.redeemed_store_id == store_id):
        return voucher, False
    raise _refuse(voucher, now, "used")


def cancel_voucher(session: Session, code: str, *, actor: str, now: datetime) -> Voucher:
    """Cancels an unused voucher: its points go back to the lots they came from, its unit to stock.

    Cancelling a cancelled voucher changes nothing and answers the same; the ledger's unique
    (voucher, id, cancel) event makes the refund exactly-once even against a race.
    """
    voucher = require_voucher(session, code)
    lock_member(session, voucher.customer_id)
    session.refresh(voucher, with_for_update=True)
    if voucher.status == "cancelled":
        return voucher
    if voucher.status != "issued" or voucher.expires_at <= now:
        raise _refuse(voucher, now, "cancelled")
    entry_id = None
    if voucher.points_spent:  # a granted voucher (stamp card) spent no points: nothing to give back
        entry_id = ledger.give_back(
            session, customer_id=voucher.customer_id, points=voucher.points_spent, kind="reward_refund",
            from_account="redeemed", source_type="voucher", source_id=str(voucher.id), event="cancel",
            reason=f"voucher {voucher.code} cancelled unused; points given back", actor=actor, now=now,
            spend_type="voucher", spend_id=voucher.id)
    if not repository.mark_cancelled(session, voucher.id, refund_entry_id=entry_id, now=now):
        session.refresh(voucher)
        raise _refuse(voucher, now, "cancelled")
    repository.return_one_unit(session, voucher.reward_id)
    session.refresh(voucher)
    return voucher


def expire_vouchers(session: Session, now: datetime) -> int:
    """Marks issued vouchers past their time expired, in one statement; running it again does nothing.

    An expired voucher refunds nothing, neither points nor stock: the member chose the reward
    and held it for its whole validity. Refunding would also let points outlive their own
    expiry by being parked in a voucher, and the lots they came from may have expired since.
    Cancelling before expiry is how a member gets points back.
    """
    return repository.expire_issued(session, now)


# --- reads ------------------------------------------------------------------------------------

def voucher_out(session: Session, voucher: Voucher, now: datetime, reward: Reward | None = None) -> VoucherOut:
    reward = reward or session.get(Reward, voucher.reward_id)
    assert reward is not None
    lapsed = voucher.status == "issued" and voucher.expires_at <= now
    status = "expired" if lapsed else voucher.status
    return VoucherOut(
        code=voucher.code, customer_id=voucher.customer_id, reward_code=reward.code, reward_name=reward.name,
        kind=voucher.kind, amount=voucher.amount, percent=voucher.percent, sku=voucher.sku,
        points_spent=voucher.points_spent, status=status, redeemable=status == "issued",
        issued_at=voucher.issued_at, expires_at=voucher.expires_at, redeemed_at=voucher.redeemed_at,
        redeemed_store_id=voucher.redeemed_store_id, redeemed_transaction_id=voucher.redeemed_reference,
        cancelled_at=voucher.cancelled_at)


def customer_vouchers(
    session: Session, customer_id: int, *, status: str | None, limit: int, now: datetime,
) -> list[VoucherOut]:
    read_balance(session, customer_id)  # 404 for an unknown customer
    vouchers = repository.vouchers_of(session, customer_id, status, limit, now)
    rewards = repository.rewards_by_id(session, [v.reward_id for v in vouchers])
    return [voucher_out(session, v, now, rewards[v.reward_id]) for v in vouchers]
