"""Bulk import: each batch is a few set-based statements, whatever its size.

Purchases earn exactly as through the API (same earn rules, same entries, lots, balances and
breakdown by rule); returns go through the same service as the API, each in a savepoint so a bad one
changes nothing. Rows already recorded, by (store, POS id) or identity, are skipped, so a
file imported twice changes nothing the second time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from loyalty.bulk import allocate_ids, foreign_keys_checked_at_end, insert_rows, insert_tuples
from loyalty.customers.identities import (
    guess_identity,
    normalise_card,
    normalise_email,
    normalise_external,
    normalise_phone,
)
from loyalty.customers.repository import find_many
from loyalty.customers.service import check_enrolled_at
from loyalty.errors import LoyaltyError
from loyalty.imports.rows import CustomerRow, RowError, TransactionRow
from loyalty.ledger import service as ledger
from loyalty.ledger.repository import Earning, EntrySpec, insert_earnings, insert_entries
from loyalty.models import (
    Base,
    Customer,
    CustomerIdentity,
    LotAllocation,
    MemberBalance,
    PointLot,
    Store,
    Transaction,
    TransactionLine,
)
from loyalty.models.transactions import TransactionAward
from loyalty.programs import caps
from loyalty.programs.rules import Award, RuleEngine
from loyalty.programs.service import ActiveProgram, ProgramCache, default_program
from loyalty.referrals import service as referrals
from loyalty.stamps import service as stamps
from loyalty.tiers import service as tiers
from loyalty.timeutil import as_utc, business_date, utcnow
from loyalty.transactions.schemas import ReturnIn
from loyalty.transactions.service import CLOCK_SKEW, EARLIEST, record_return, return_shares

IdentityKey = tuple[str, str, str]


@dataclass(slots=True)
class BatchReport:
    rows: int = 0
    imported: int = 0
    skipped: int = 0  # already recorded earlier: importing twice changes nothing
    created_customers: int = 0
    points: int = 0
    errors: list[RowError] = field(default_factory=list)
    rejected: int = 0  # all rejected rows; `errors` keeps the first few thousand of them

    def add(self, other: BatchReport, keep_errors: int = 5000) -> None:
        self.rows += other.rows
        self.imported += other.imported
        self.skipped += other.skipped
        self.created_customers += other.created_customers
        self.points += other.points
        self.rejected += len(other.errors)
        self.errors.extend(other.errors[: max(0, keep_errors - len(self.errors))])


def _insert_with_ids(session: Session, model: type[Base], rows: list[dict[str, object]]) -> list[int]:
    ids = allocate_ids(session, model, len(rows))
    for row, new_id in zip(rows, ids, strict=True):
        row["id"] = new_id
    insert_rows(session, model, rows)
    return ids


# --- customers ------------------------------------------------------------------------------

def _customer_keys(row: CustomerRow) -> list[IdentityKey]:
    keys: list[IdentityKey] = []
    if row.phone:
        keys.append(("phone", "", normalise_phone(row.phone)))
    if row.email:
        keys.append(("email", "", normalise_email(row.email)))
    if row.card:
        keys.append(("card", "", normalise_card(row.card)))
    if row.external_id and row.namespace:
        keys.append(("external", row.namespace, normalise_external(row.external_id)))
    return keys


def create_customers_bulk(session: Session, rows: list[dict[str, object]], keys: list[list[IdentityKey]]) -> list[int]:
    """Inserts customers, their identities, zero balances and referral codes, a statement each."""
    ids = _insert_with_ids(session, Customer, rows)
    now = utcnow()
    identities = [{"customer_id": cid, "kind": k, "namespace": n, "value": v, "created_at": now}
                  for cid, row_keys in zip(ids, keys, strict=True) for k, n, v in row_keys]
    if identities:
        insert_rows(session, CustomerIdentity, identities)
    if ids:
        insert_rows(session, MemberBalance, [
            {"customer_id": cid, "available": 0, "pending": 0, "held": 0, "owed": 0, "earned_total": 0}
            for cid in ids])
        referrals.give_codes(session, ids, now)
    return ids


def import_customers(session: Session, rows: list[CustomerRow | RowError]) -> BatchReport:
    report = BatchReport(rows=len(rows))
    stores = set(session.scalars(select(Store.id)))
    valid: list[tuple[CustomerRow, list[IdentityKey]]] = []
    checked_at = utcnow()
    for row in rows:
        if isinstance(row, RowError):
            report.errors.append(row)
            continue
        try:
            keys = _customer_keys(row)
            if row.enrolled_at is not None:
                check_enrolled_at(row.enrolled_at, checked_at)
        except LoyaltyError as exc:
            report.errors.append(RowError(row.line, exc.detail))
            continue
        if row.store_id and row.store_id not in stores:
            report.errors.append(RowError(row.line, f"store {row.store_id!r} does not exist"))
            continue
        valid.append((row, keys))
    existing = find_many(session, (k for _, keys in valid for k in keys))
    seen: dict[IdentityKey, int] = {}
    now = utcnow()
    new_rows: list[dict[str, object]] = []
    new_keys: list[list[IdentityKey]] = []
    for row, keys in valid:
        owners = {existing[k] for k in keys if k in existing}
        if owners:
            if len(owners) == 1 and all(k in existing for k in keys):
                report.skipped += 1  # this very customer was imported before
            else:
                report.errors.append(RowError(row.line, "its identities belong to existing customer(s) "
                                                        f"{', '.join(map(str, sorted(owners)))}"))
            continue
        clash = next((k for k in keys if k in seen), None)
        if clash is not None:
            report.errors.append(RowError(row.line, f"{clash[0]} {clash[2]} is also on line {seen[clash]}"))
            continue
        seen.update(dict.fromkeys(keys, row.line))
        new_rows.append({
            "name": row.name, "birthday": row.birthday, "gender": row.gender, "city": row.city,
            "preferred_channel": row.preferred_channel, "consent_email": row.consent_email,
            "consent_sms": row.consent_sms, "consent_zalo": row.consent_zalo, "consent_phone": row.consent_phone,
            "enrolled_store_id": row.store_id, "enrolled_at": as_utc(row.enrolled_at) if row.enrolled_at else now,
            "created_at": now, "updated_at": now,
        })
        new_keys.append(keys)
    create_customers_bulk(session, new_rows, new_keys)
    report.imported = len(new_rows)
    return report


# --- transactions -----------------------------------------------------------------------------

def _resolve_customers(
    session: Session, rows: list[TransactionRow], create: bool, report: BatchReport,
) -> tuple[dict[str, int], set[int]]:
    """Maps each row's customer reference to an id (creating unknown ones if asked: only a purchase
    enrols a customer; a return's customer, when given, must be its purchase's)."""
    keys: dict[str, IdentityKey] = {}
    bad: set[int] = set()
    for row in rows:
        if row.customer and row.customer not in keys:
            try:
                kind, value = guess_identity(row.customer)
                keys[row.customer] = (kind, "", value)
            except LoyaltyError as exc:
                report.errors.append(RowError(row.line, f"customer: {exc.detail}"))
                bad.add(row.line)
    found = find_many(session, keys.values())
    resolved = {ref: found[key] for ref, key in keys.items() if key in found}
    missing = [ref for ref, key in keys.items() if key not in found]
    if create:
        buyers = {row.customer for row in rows if row.type == "purchase"}
        for row in rows:
            if row.customer in missing and row.customer not in buyers:
                report.errors.append(RowError(row.line, f"unknown customer {row.customer!r}: a return's customer "
                                                        "must be the customer of its purchase"))
                bad.add(row.line)
        missing = [ref for ref in missing if ref in buyers]
    if missing and create:
        # A card-looking reference may be a store's own id: look at external ids before creating.
        now = utcnow()
        unique_keys = list(dict.fromkeys(keys[ref] for ref in missing))
        ids = create_customers_bulk(session, [
            {"name": None, "consent_email": False, "consent_sms": False, "consent_zalo": False,
             "consent_phone": False, "enrolled_at": now, "created_at": now, "updated_at": now}
            for _ in unique_keys], [[key] for key in unique_keys])
        by_key = dict(zip(unique_keys, ids, strict=True))
        resolved.update({ref: by_key[keys[ref]] for ref in missing})
        report.created_customers += len(ids)
    elif missing:
        for row in rows:
            if row.customer in missing:
                report.errors.append(RowError(row.line, f"unknown customer {row.customer!r} "
                                                        "(import the customers first, or let the import enrol them: "
                                                        "--create-customers, or the Imports page's option)"))
                bad.add(row.line)
    return resolved, bad


_RECORDED_SQLITE = text(
    # json_each drives the loop (CROSS JOIN fixes the order): one probe of the pos_id index per key.
    "SELECT t.store_id, t.pos_transaction_id FROM json_each(:keys) AS k CROSS JOIN transactions AS t "
    "WHERE t.store_id = json_extract(k.value, '$[0]') AND t.pos_transaction_id = json_extract(k.value, '$[1]')")
_RECORDED_POSTGRESQL = text(
    "SELECT t.store_id, t.pos_transaction_id FROM unnest(CAST(:stores AS text[]), CAST(:pos_ids AS text[])) "
    "AS k(store_id, pos_id) JOIN transactions AS t ON t.store_id = k.store_id AND t.pos_transaction_id = k.pos_id")


def _already_recorded(session: Session, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (store, POS id) pairs are recorded already: one statement with the batch's keys as
    one parameter (a JSON array on SQLite, two arrays on PostgreSQL), not an IN list per store."""
    if not keys:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        result = session.execute(_RECORDED_POSTGRESQL, {"stores": [k[0] for k in keys],
                                                        "pos_ids": [k[1] for k in keys]})
    else:
        result = session.execute(_RECORDED_SQLITE, {"keys": json.dumps(keys)})
    return {(store_id, pos_id) for store_id, pos_id in result}


_PURCHASE_COLUMNS = ("id", "store_id", "pos_transaction_id", "kind", "customer_id", "occurred_at", "amount",
                     "currency", "points_earned", "points_redeemed", "returned_amount", "points_reversed",
                     "points_restored", "created_at")


def _insert_purchases(
    session: Session, purchases: list[TransactionRow], customer_ids: list[int | None], points: list[int],
    now: datetime,
) -> dict[tuple[str, str], int]:
    """Inserts the sales not recorded yet; returns their new ids by (store, POS id)."""
    if not purchases:
        return {}
    done = _already_recorded(session, [(r.store_id, r.transaction_id) for r in purchases])
    fresh = [(r, cid, p) for r, cid, p in zip(purchases, customer_ids, points, strict=True)
             if (r.store_id, r.transaction_id) not in done]
    ids = allocate_ids(session, Transaction, len(fresh))
    insert_tuples(session, Transaction, _PURCHASE_COLUMNS, [
        (tx_id, r.store_id, r.transaction_id, "purchase", cid, as_utc(r.occurred_at), r.amount, r.currency, p,
         0, 0, 0, 0, now)
        for (r, cid, p), tx_id in zip(fresh, ids, strict=True)])
    return {(r.store_id, r.transaction_id): tx_id for (r, _, _), tx_id in zip(fresh, ids, strict=True)}


def _program_index(programs: list[ActiveProgram], moments: np.ndarray) -> np.ndarray:
    starts = np.array([p.effective_from.timestamp() if p.effective_from else -np.inf for p in programs])
    return np.maximum(np.searchsorted(starts, moments, side="right") - 1, 0)


def _member_arrays(
    session: Session, customer_ids: list[int | None], chunk: int = 900,
) -> tuple[np.ndarray, np.ndarray]:
    """Birthday months (0: unknown) and first-purchase flags, for programs with rules that need them.

    A purchase is a member's first when the member has no purchase recorded before the batch and
    no earlier row of the batch (file order) is theirs.
    """
    members = sorted({cid for cid in customer_ids if cid is not None})
    months: dict[int, int] = {}
    bought: set[int] = set()
    for start in range(0, len(members), chunk):
        part = members[start:start + chunk]
        for member, day in session.execute(select(Customer.id, Customer.birthday).where(Customer.id.in_(part))):
            if day is not None:
                months[member] = day.month
        for buyer in session.scalars(select(Transaction.customer_id).distinct().where(
                Transaction.customer_id.in_(part), Transaction.kind == "purchase")):
            if buyer is not None:
                bought.add(buyer)
    first = np.zeros(len(customer_ids), dtype=bool)
    for position, cid in enumerate(customer_ids):
        if cid is not None and cid not in bought:
            first[position] = True
            bought.add(cid)
    birthday = np.array([months.get(cid, 0) if cid is not None else 0 for cid in customer_ids], dtype=np.int64)
    return birthday, first


def _score(
    session: Session, programs: list[ActiveProgram], version: np.ndarray, purchases: list[TransactionRow],
    kinds: dict[str, str], customer_ids: list[int | None],
) -> tuple[np.ndarray, dict[int, tuple[Award, ...]]]:
    """Points and their breakdown for the batch's purchases, each under the program version of its time.

    All vectorised (RuleEngine.evaluate_many, the twin of the API's `evaluate`): sku/category
    rules through each purchase's matching lines, tier rules and perks through each member's tier.
    """
    n = len(purchases)
    points = np.zeros(n, dtype=np.int64)
    awards: dict[int, tuple[Award, ...]] = {}  # by the row's line number in the file
    is_member = np.array([cid is not None for cid in customer_ids], dtype=bool)
    if n == 0 or not is_member.any():
        return points, awards
    amounts = np.array([r.amount for r in purchases], dtype=np.int64)
    store_kinds = np.array([kinds[r.store_id] for r in purchases], dtype=np.str_)
    store_ids = np.array([r.store_id for r in purchases], dtype=np.str_)
    ids = np.array([cid or 0 for cid in customer_ids], dtype=np.int64)
    birthday, first = (_member_arrays(session, customer_ids) if any(p.earn.needs_member for p in programs)
                       else (np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)))
    members = [cid for cid in customer_ids if cid is not None]
    now = utcnow()
    for index, program in enumerate(programs):
        rows = np.flatnonzero((version == index) & is_member)
        if len(rows) == 0:
            continue
        engine = program.earn
        member_tiers = None
        if engine.needs_tier:
            # Tier rules and perks use each member's tier as it stands when the batch is imported
            # (the API uses it as it stands when the sale is recorded).
            tier_of = tiers.tiers_of(session, program, members, now)
            base_tier = engine.base_tier or ""
            member_tiers = np.array([tier_of.get(customer_ids[i] or 0, base_tier) for i in rows.tolist()],
                                    dtype=np.str_)
        local = (np.array([purchases[i].occurred_at.astimezone(engine.tz).replace(tzinfo=None) for i in rows],
                          dtype="datetime64[m]")
                 if engine.needs_local_time else np.zeros(len(rows), dtype="datetime64[m]"))
        totals, per_rule = engine.evaluate_many(
            amounts=amounts[rows], store_kinds=store_kinds[rows], store_ids=store_ids[rows], local_times=local,
            customer_ids=ids[rows], birthday_months=birthday[rows], first_purchase=first[rows],
            tiers=member_tiers, line_bases=_line_bases(engine, [purchases[i] for i in rows.tolist()]))
        # Tier perks are computed before day caps and budgets, as `evaluate` computes them.
        extra = (engine.tier_perks_many(per_rule, member_tiers)
                 if member_tiers is not None and engine.tier_perks else None)
        if engine.counted_caps:
            # Rules capped per member per day or in total claim from their counters, in file order.
            per_rule = caps.apply_many(session, engine, per_rule, ids[rows], [
                business_date(purchases[i].occurred_at, engine.tz) for i in rows.tolist()])
            totals = per_rule.sum(axis=0)
        points[rows] = totals
        columns, rule_indexes = np.nonzero(per_rule.T)  # purchase by purchase, each one's rules in order
        lines = [purchases[i].line for i in rows.tolist()]
        # Awards are values: one object per (rule, points) shared by every sale that got it.
        made: dict[tuple[int, int], Award] = {}
        for column, rule_index, given in zip(columns.tolist(), rule_indexes.tolist(),
                                             per_rule[rule_indexes, columns].tolist(), strict=True):
            award = made.get((rule_index, given))
            if award is None:
                rule = engine.rules[rule_index]
                award = made[(rule_index, given)] = Award(rule.id, rule.name, given)
            line = lines[column]
            earlier = awards.get(line)
            awards[line] = (award,) if earlier is None else (*earlier, award)
        if member_tiers is not None and extra is not None:
            points[rows] += extra
            for column in np.flatnonzero(extra).tolist():
                code = str(member_tiers[column])
                line = purchases[int(rows[column])].line
                awards[line] = (*awards.get(line, ()),
                                Award(f"tier:{code}", engine.tier_perks[code][1], int(extra[column])))
    return points, awards


def _line_bases(engine: RuleEngine, rows: list[TransactionRow]) -> dict[str, np.ndarray] | None:
    """Per sku/category rule, the paid share of each purchase's matching lines (-1: none match),
    as `evaluate` computes it, for `evaluate_many`."""
    line_rules = [rule for rule in engine.rules if rule.lines]
    if not line_rules:
        return None
    bases: dict[str, np.ndarray] = {}
    for rule in line_rules:
        base = np.full(len(rows), -1, dtype=np.int64)
        for position, row in enumerate(rows):
            matching = [item.quantity * item.unit_price for item in row.lines
                        if (rule.skus is None or item.sku in rule.skus)
                        and (rule.categories is None or item.category in rule.categories)]
            if matching:  # imported purchases are paid in money only: the share is the lines' value
                base[position] = sum(matching) if row.amount > 0 else 0
        bases[rule.id] = base
    return bases


# Tables the import writes for each sale; their foreign keys are checked once per batch in bulk-load mode.
BULK_LOAD_TABLES = ("transactions", "transaction_lines", "transaction_awards", "ledger_entries", "ledger_postings",
                    "point_lots")
BULK_LOAD_MIN_ROWS = 5_000


def _bulk_load(session: Session, rows: int) -> bool:
    """Bulk-load mode (PostgreSQL): a batch of at least BULK_LOAD_MIN_ROWS rows into a table of sales no
    bigger than the batch, e.g. the first import into a new database or one big batch. Validating the
    foreign keys then scans at most about twice the batch; into a big table it would cost more than
    the per-row checks it saves (and lock the tables for longer)."""
    if rows < BULK_LOAD_MIN_ROWS or session.get_bind().dialect.name != "postgresql":
        return False
    estimate = session.scalar(text("SELECT reltuples FROM pg_class WHERE oid = CAST('transactions' AS regclass)"))
    return estimate is not None and estimate <= rows


def import_transactions(
    session: Session, rows: list[TransactionRow | RowError], *, create_customers: bool = False,
    actor: str = "import",
) -> BatchReport:
    if not _bulk_load(session, len(rows)):
        return _import_transactions(session, rows, create_customers=create_customers, actor=actor)
    with foreign_keys_checked_at_end(session, BULK_LOAD_TABLES):
        return _import_transactions(session, rows, create_customers=create_customers, actor=actor)


def _import_transactions(
    session: Session, rows: list[TransactionRow | RowError], *, create_customers: bool, actor: str,
) -> BatchReport:
    report = BatchReport(rows=len(rows))
    now = utcnow()
    kinds = dict(session.execute(select(Store.id, Store.kind)).all())
    programs = ProgramCache.versions(session) or [default_program()]
    parsed: list[TransactionRow] = []
    for row in rows:
        if isinstance(row, RowError):
            report.errors.append(row)
        elif row.store_id not in kinds:
            report.errors.append(RowError(row.line, f"store {row.store_id!r} does not exist"))
        elif not EARLIEST <= row.occurred_at <= now + CLOCK_SKEW:
            report.errors.append(RowError(row.line, f"occurred_at {row.occurred_at.isoformat()} is not a "
                                                    "plausible time: after 1970 and at most 24 hours ahead"))
        elif row.currency != programs[-1].definition.currency:
            report.errors.append(RowError(row.line, f"currency {row.currency} is not the program's "
                                                    f"{programs[-1].definition.currency}"))
        else:
            parsed.append(row)
    first_line: dict[tuple[str, str], int] = {}
    unique: list[TransactionRow] = []
    for row in parsed:
        key = (row.store_id, row.transaction_id)
        if key in first_line:
            report.errors.append(RowError(row.line, f"transaction_id {row.transaction_id} at store {row.store_id} "
                                                    f"is also on line {first_line[key]}"))
        else:
            first_line[key] = row.line
            unique.append(row)
    parsed = unique
    customers, bad = _resolve_customers(session, parsed, create_customers, report)
    parsed = [row for row in parsed if row.line not in bad]
    purchases = [r for r in parsed if r.type == "purchase"]
    returns = [r for r in parsed if r.type == "return"]
    if any(p.earn.counted_caps for p in programs):
        # Sales recorded earlier are skipped before scoring, so they claim nothing from day caps and budgets.
        recorded = _already_recorded(session, [(r.store_id, r.transaction_id) for r in purchases])
        fresh = [r for r in purchases if (r.store_id, r.transaction_id) not in recorded]
        report.skipped += len(purchases) - len(fresh)
        purchases = fresh

    # Points for the whole batch at once, each purchase under the program version of its time.
    moments = np.array([r.occurred_at.timestamp() for r in purchases], dtype=np.float64)
    version = _program_index(programs, moments) if purchases else np.zeros(0, dtype=np.int64)
    customer_ids = [customers.get(r.customer) if r.customer else None for r in purchases]
    points, awards = _score(session, programs, version, purchases, kinds, customer_ids)

    new_ids = _insert_purchases(session, purchases, customer_ids, points.tolist(), now)
    report.imported += len(new_ids)
    report.skipped += len(purchases) - len(new_ids)
    line_rows = []
    award_rows: list[tuple[int, int, str, str, int]] = []
    earnings: list[tuple[TransactionRow, int, int, ActiveProgram, int]] = []
    for row, cid, pts, vidx in zip(purchases, customer_ids, points.tolist(), version.tolist(), strict=True):
        tx_id = new_ids.get((row.store_id, row.transaction_id))
        if tx_id is None:
            continue
        for n, item in enumerate(row.lines, start=1):
            line_rows.append({"transaction_id": tx_id, "line_no": n, "sku": item.sku, "category": item.category,
                              "quantity": item.quantity, "unit_price": item.unit_price})
        if cid is not None and pts > 0:
            earnings.append((row, tx_id, cid, programs[vidx], pts))
            report.points += pts
        award_rows.extend((tx_id, n, a.rule_id, a.name, a.points)
                          for n, a in enumerate(awards.get(row.line, ()), start=1))
    if line_rows:
        insert_rows(session, TransactionLine, line_rows)
    if award_rows:
        insert_tuples(session, TransactionAward, ("transaction_id", "award_no", "rule_id", "name", "points"),
                      award_rows)
    _post_earnings(session, earnings, actor=actor, now=now)
    recorded = _already_recorded(session, [(r.store_id, r.transaction_id) for r in returns])
    report.skipped += sum(1 for r in returns if (r.store_id, r.transaction_id) in recorded)
    _import_returns(session, [r for r in returns if (r.store_id, r.transaction_id) not in recorded], customers,
                    actor=actor, report=report, now=now)
    return report


def _post_earnings(
    session: Session, earnings: list[tuple[TransactionRow, int, int, ActiveProgram, int]], *, actor: str,
    now: datetime,
) -> None:
    if not earnings:
        return
    # Members who owe points settle the debt first: that rare case goes through the one-by-one path.
    member_ids = sorted({cid for _, _, cid, _, _ in earnings})
    owing = set(session.scalars(select(MemberBalance.customer_id).where(
        MemberBalance.customer_id.in_(member_ids), MemberBalance.owed < 0)))
    bulk: list[Earning] = []
    for row, tx_id, cid, program, pts in earnings:
        earned_at = as_utc(row.occurred_at)
        if cid in owing:
            ledger.credit(session, program, customer_id=cid, points=pts, kind="earn", from_account="issued",
                          source_type="transaction", source_id=str(tx_id), event="earn",
                          reason=f"purchase {row.transaction_id} at {row.store_id}", actor=actor,
                          earned_at=earned_at, now=now, transaction_id=tx_id)
            continue
        available_at = program.available_at(earned_at)
        bulk.append(Earning(cid, tx_id, pts, available_at > now, earned_at, available_at,
                            program.expires_at(earned_at), f"purchase {row.transaction_id} at {row.store_id}"))
    insert_earnings(session, bulk, actor=actor, now=now)


@dataclass(frozen=True, slots=True)
class _FastReturn:
    row: TransactionRow
    purchase: Transaction
    reverse: int
    reverse_total: int
    lot_id: int | None
    lot_pending: bool


def _import_returns(
    session: Session, returns: list[TransactionRow], resolved: dict[str, int], *, actor: str, report: BatchReport,
    now: datetime,
) -> None:
    """Returns in bulk where nothing is unusual; the rest one by one through the API's service.

    The bulk case is the common one: the purchase had no points paying for it, it is returned
    once in this batch, the member owes nothing, and the purchase's own lot still holds the
    points to take back. The entries, lots and balances it writes are exactly what
    reverse_for_return would write for it (the tests compare both through `ledger verify`).
    """
    if not returns:
        return
    purchases: dict[tuple[str, str], Transaction] = {}
    by_store: dict[str, list[str]] = {}
    for row in returns:
        by_store.setdefault(row.store_id, []).append(row.original_transaction_id or "")
    for store_id, pos_ids in by_store.items():
        for start in range(0, len(pos_ids), 900):
            for tx in session.scalars(select(Transaction).where(
                    Transaction.store_id == store_id, Transaction.kind == "purchase",
                    Transaction.pos_transaction_id.in_(pos_ids[start:start + 900])).with_for_update()):
                purchases[(tx.store_id, tx.pos_transaction_id)] = tx
    ids = [tx.id for tx in purchases.values()]
    lots: dict[int, tuple[int, int, bool]] = {}
    owing: set[int] = set()
    for start in range(0, len(ids), 900):
        part = ids[start:start + 900]
        for lot_id, tx_id, remaining, pending in session.execute(
                select(PointLot.id, PointLot.transaction_id, PointLot.remaining, PointLot.pending)
                .where(PointLot.transaction_id.in_(part))):
            if tx_id is not None:
                lots[tx_id] = (lot_id, remaining, pending)
    customers = sorted({tx.customer_id for tx in purchases.values() if tx.customer_id is not None})
    for start in range(0, len(customers), 900):
        owing.update(session.scalars(select(MemberBalance.customer_id).where(
            MemberBalance.customer_id.in_(customers[start:start + 900]), MemberBalance.owed < 0)))
    # Stamp cards (L5): a sale that stamped cards has its stamps taken back by the service's return.
    stamped = stamps.stamped_purchases(session, ids)
    fast: list[_FastReturn] = []
    slow: list[TransactionRow] = []
    seen: set[int] = set()
    for row in returns:
        purchase = purchases.get((row.store_id, row.original_transaction_id or ""))
        if purchase is not None and row.customer and resolved.get(row.customer) != purchase.customer_id:
            report.errors.append(RowError(row.line, f"customer {row.customer!r} is not the customer of purchase "
                                                    f"{purchase.pos_transaction_id}"))
            continue
        if purchase is None or purchase.id in seen or purchase.points_redeemed or purchase.points_restored \
                or purchase.customer_id in owing or purchase.id in stamped:
            slow.append(row)  # the service reports a missing purchase, or handles the unusual case
            continue
        seen.add(purchase.id)
        left = purchase.amount - purchase.returned_amount
        if row.amount > left:
            report.errors.append(RowError(row.line, f"only {left} of purchase {purchase.pos_transaction_id} "
                                                    "can still be returned"))
            continue
        reverse_total, _ = return_shares(purchase, purchase.returned_amount + row.amount)
        reverse = reverse_total - purchase.points_reversed
        lot = lots.get(purchase.id)
        if reverse and (purchase.customer_id is None or lot is None or lot[1] < reverse):
            slow.append(row)  # points already spent: the service records the debt
            continue
        fast.append(_FastReturn(row, purchase, reverse, reverse_total, lot[0] if lot else None,
                                lot[2] if lot else False))
    _write_fast_returns(session, fast, actor=actor, now=now)
    session.expire_all()  # the bulk UPDATEs changed purchases the slow path will read again
    report.imported += len(fast)
    report.points -= sum(f.reverse for f in fast)
    for row in slow:
        _import_return(session, row, actor, report)


def _write_fast_returns(session: Session, fast: list[_FastReturn], *, actor: str, now: datetime) -> None:
    if not fast:
        return
    return_ids = allocate_ids(session, Transaction, len(fast))
    insert_rows(session, Transaction, [
        {"id": rid, "store_id": f.row.store_id, "pos_transaction_id": f.row.transaction_id, "kind": "return",
         "original_id": f.purchase.id, "customer_id": f.purchase.customer_id, "occurred_at": as_utc(f.row.occurred_at),
         "amount": f.row.amount, "currency": f.purchase.currency, "points_earned": 0, "points_redeemed": 0,
         "returned_amount": 0, "points_reversed": f.reverse, "points_restored": 0, "created_at": now}
        for f, rid in zip(fast, return_ids, strict=True)
    ])
    reversing = [(f, rid) for f, rid in zip(fast, return_ids, strict=True) if f.reverse]
    specs = [
        EntrySpec("reverse", f.purchase.customer_id, "transaction", str(rid), "reverse",
                  f"points earned on returned goods taken back (purchase {f.purchase.id})", actor, now,
                  [("issued", f.reverse), ("pending" if f.lot_pending else "available", -f.reverse)],
                  transaction_id=rid, earned_delta=-f.reverse)
        for f, rid in reversing
    ]
    insert_entries(session, specs)
    if reversing:
        session.connection().execute(
            text("UPDATE point_lots SET remaining = remaining - :take WHERE id = :lot_id AND remaining >= :take"),
            [{"lot_id": f.lot_id, "take": f.reverse} for f, _ in reversing])
        insert_rows(session, LotAllocation, [
            {"lot_id": f.lot_id, "entry_id": spec.entry_id, "points": f.reverse, "spend_type": "reverse",
             "spend_id": rid}
            for (f, rid), spec in zip(reversing, specs, strict=True)
        ])
    session.connection().execute(
        text("UPDATE transactions SET returned_amount = returned_amount + :amount, points_reversed = :reversed "
             "WHERE id = :id"),
        [{"id": f.purchase.id, "amount": f.row.amount, "reversed": f.reverse_total} for f in fast])


def _import_return(session: Session, row: TransactionRow, actor: str, report: BatchReport) -> None:
    original_id = session.scalar(select(Transaction.id).where(
        Transaction.store_id == row.store_id, Transaction.pos_transaction_id == row.original_transaction_id))
    if original_id is None:
        report.errors.append(RowError(row.line, f"original transaction {row.original_transaction_id!r} "
                                                f"is not recorded at store {row.store_id}"))
        return
    savepoint = session.begin_nested()
    try:
        result = record_return(session, original_id, ReturnIn(
            transaction_id=row.transaction_id, store_id=row.store_id, occurred_at=row.occurred_at,
            amount=row.amount), actor=actor)
        savepoint.commit()
    except LoyaltyError as exc:
        savepoint.rollback()
        report.errors.append(RowError(row.line, exc.detail))
        return
    report.imported += 1
    report.points -= result.points_reversed
