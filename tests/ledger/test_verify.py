"""`verify` proves the ledger's invariants: green after real work, red for each kind of corruption."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from loyalty.ledger import service
from loyalty.ledger.verify import CHECKS, verify
from loyalty.models import LedgerEntry, LedgerPosting, PointLot, Transaction
from loyalty.programs.service import program_at
from loyalty.transactions.schemas import ReturnIn
from loyalty.transactions.service import record_return
from tests.factories import make_customer, make_purchase, make_store
from tests.readers import failed_checks

NOW = datetime.now(UTC)


@dataclass(frozen=True)
class Books:
    """A ledger with every kind of entry in it: earn, redeem, hold, capture, return, debt, adjust, expire."""

    spender: int
    debtor: int


def _return(session: Session, purchase_id: int, amount: int, pos_id: str) -> None:
    record_return(session, purchase_id, ReturnIn(transaction_id=pos_id, occurred_at=NOW, amount=amount),
                  actor="test")
    session.commit()


def _purchase_id(session: Session, pos_id: str) -> int:
    found = session.scalar(select(Transaction.id).where(Transaction.pos_transaction_id == pos_id))
    assert found is not None
    return found


@pytest.fixture
def books(session: Session) -> Books:
    make_store(session)
    make_store(session, "OUT1", kind="outlet")
    spender, debtor, lapsed = (make_customer(session).id for _ in range(3))
    program = program_at(session)

    make_purchase(session, spender, 1_000_000, occurred_at=NOW - timedelta(days=300), pos_id="S1")
    make_purchase(session, spender, 500_000, store_id="OUT1", pos_id="S2")
    make_purchase(session, spender, 200_000, redeem_points=30, pos_id="S3")
    held = service.create_hold(session, customer_id=spender, points=20, store_id="HN01", reference="basket",
                               timeout=timedelta(minutes=15), actor="test", now=NOW)
    partly = service.create_hold(session, customer_id=spender, points=10, store_id=None, reference=None,
                                 timeout=timedelta(minutes=15), actor="test", now=NOW)
    voided = service.create_hold(session, customer_id=spender, points=5, store_id=None, reference=None,
                                 timeout=timedelta(minutes=15), actor="test", now=NOW)
    session.commit()
    service.capture_hold(session, partly.id, points=4, actor="test", now=NOW)
    service.void_hold(session, voided.id, actor="test", now=NOW)
    service.adjust(session, program, customer_id=spender, points=15, reason="gift", actor="test", source_id="a1",
                   now=NOW)
    session.commit()
    _return(session, _purchase_id(session, "S3"), 100_000, "R-S3")

    make_purchase(session, debtor, 1_000_000, pos_id="D1")
    service.adjust(session, program, customer_id=debtor, points=-90, reason="spent elsewhere", actor="test",
                   source_id="a2", now=NOW)
    session.commit()
    _return(session, _purchase_id(session, "D1"), 1_000_000, "R-D1")  # 90 points owed
    make_purchase(session, debtor, 300_000, pos_id="D2")  # settles 30 of them

    make_purchase(session, lapsed, 400_000, occurred_at=NOW - timedelta(days=400), pos_id="L1")
    service.expire_due(session, NOW)
    session.commit()
    _return(session, _purchase_id(session, "L1"), 200_000, "R-L1")  # 20 of its 40 expired points back
    make_purchase(session, None, 700_000, pos_id="ANON")
    session.commit()
    assert held.status == "held"
    return Books(spender, debtor)


def _failures_after(session: Session, *statements: str) -> set[str]:
    """Runs the corrupting SQL in the test's transaction, verifies, then rolls it all back."""
    for statement in statements:
        session.execute(text(statement))
    names = {result.name for result in verify(session) if not result.ok}
    session.rollback()
    return names


class TestGreen:
    def test_every_check_passes_after_a_mix_of_operations(self, session: Session, books: Books) -> None:
        assert failed_checks(session) == []

    def test_the_mix_left_a_debt_a_hold_and_expired_points(self, session: Session, books: Books) -> None:
        accounts = set(session.scalars(text("SELECT DISTINCT account FROM ledger_postings")))
        session.rollback()
        assert accounts == {"available", "held", "owed", "issued", "redeemed", "expired", "adjusted"}

    def test_an_empty_ledger_passes(self, session: Session) -> None:
        assert failed_checks(session) == []

    def test_reports_examples(self, session: Session, books: Books) -> None:
        results = verify(session)
        session.rollback()
        assert [r.name for r in results] == [c.name for c in CHECKS]
        assert all(r.ok and r.examples == [] for r in results)


class TestRed:
    def test_an_unbalanced_entry(self, session: Session, books: Books) -> None:
        entry_id = session.scalar(select(LedgerEntry.id).where(LedgerEntry.kind == "adjust").limit(1))
        session.execute(insert(LedgerPosting).values(entry_id=entry_id, account="adjusted", customer_id=None,
                                                     amount=-1))
        names = {r.name for r in verify(session) if not r.ok}
        examples = next(r.examples for r in verify(session) if r.name == "entries_balance")
        session.rollback()
        assert names == {"entries_balance", "program_accounts_balance_members"}
        assert examples[0][0] == entry_id

    def test_an_entry_without_postings(self, session: Session, books: Books) -> None:
        session.execute(insert(LedgerEntry).values(kind="adjust", customer_id=books.spender, source_type="test",
                                                   source_id="x", event="x", reason="x", actor="x", created_at=NOW))
        names = {r.name for r in verify(session) if not r.ok}
        session.rollback()
        assert names == {"entries_have_postings"}

    def test_a_cached_balance_that_disagrees_with_its_postings(self, session: Session, books: Books) -> None:
        assert _failures_after(
            session, f"UPDATE member_balances SET owed = owed - 5 WHERE customer_id = {books.debtor}",
        ) == {"balances_match_postings"}

    def test_a_wrong_available_balance_shows_twice(self, session: Session, books: Books) -> None:
        assert _failures_after(
            session, f"UPDATE member_balances SET available = available + 1 WHERE customer_id = {books.spender}",
        ) == {"balances_match_postings", "lots_match_balances"}

    def test_a_missing_balance_row(self, session: Session, books: Books) -> None:
        assert _failures_after(
            session, f"DELETE FROM member_balances WHERE customer_id = {books.debtor}",
        ) == {"postings_have_balances"}

    def test_a_negative_balance(self, session: Session, books: Books) -> None:
        # The CHECK constraint refuses it, so the database has to be told to look away first.
        if session.get_bind().dialect.name == "postgresql":
            bypass = "ALTER TABLE member_balances DROP CONSTRAINT ck_member_balances_owed_not_positive"
        else:
            bypass = "PRAGMA ignore_check_constraints = ON"
        failures = _failures_after(
            session, bypass,
            f"UPDATE member_balances SET owed = 1 WHERE customer_id = {books.spender}",
            "INSERT INTO ledger_postings (entry_id, account, customer_id, amount)"
            f" SELECT id, 'owed', {books.spender}, 1 FROM ledger_entries"
            f" WHERE customer_id = {books.spender} AND kind = 'adjust'",
            "INSERT INTO ledger_postings (entry_id, account, customer_id, amount) SELECT id, 'adjusted', NULL, -1"
            f" FROM ledger_entries WHERE customer_id = {books.spender} AND kind = 'adjust'",
        )
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text("PRAGMA ignore_check_constraints = OFF"))
        assert failures == {"never_negative"}

    def test_lots_that_do_not_add_up_to_the_balance(self, session: Session, books: Books) -> None:
        lot_id = session.scalar(select(PointLot.id).where(PointLot.customer_id == books.spender,
                                                          PointLot.remaining > 0).limit(1))
        assert _failures_after(session, f"UPDATE point_lots SET pending = NOT pending WHERE id = {lot_id}") == {
            "lots_match_balances"}

    def test_a_lot_that_lost_points_nobody_took(self, session: Session, books: Books) -> None:
        assert _failures_after(
            session, "UPDATE lot_allocations SET points = points + 1 WHERE id = (SELECT MIN(id) FROM lot_allocations)",
        ) == {"lots_account_for_points"}

    def test_held_points_without_an_open_hold(self, session: Session, books: Books) -> None:
        assert _failures_after(session, "UPDATE holds SET status = 'voided' WHERE status = 'held'") == {
            "holds_match_held"}

    def test_a_purchase_whose_points_differ_from_its_earn_entry(self, session: Session, books: Books) -> None:
        assert _failures_after(
            session, "UPDATE transactions SET points_earned = points_earned + 1 WHERE pos_transaction_id = 'S2'",
        ) == {"earned_matches_transactions", "awards_match_earned"}  # its receipt breakdown no longer adds up

    def test_a_breakdown_that_does_not_add_up_to_the_points(self, session: Session, books: Books) -> None:
        assert _failures_after(
            session,
            "UPDATE transaction_awards SET points = points + 1 WHERE id = (SELECT MIN(id) FROM transaction_awards)",
        ) == {"awards_match_earned"}

    def test_the_same_source_event_posted_twice(self, session: Session, books: Books) -> None:
        if session.get_bind().dialect.name != "postgresql":
            pytest.skip("SQLite cannot drop the UNIQUE constraint that makes this impossible")
        earn = session.scalar(select(LedgerEntry.id).where(LedgerEntry.kind == "earn").limit(1))
        assert _failures_after(
            session, "ALTER TABLE ledger_entries DROP CONSTRAINT source_event",
            "INSERT INTO ledger_entries (kind, customer_id, source_type, source_id, event, reason, actor, created_at)"
            f" SELECT kind, customer_id, source_type, source_id, event, reason, actor, created_at"
            f" FROM ledger_entries WHERE id = {earn}",
            "INSERT INTO ledger_postings (entry_id, account, customer_id, amount)"
            " SELECT (SELECT MAX(id) FROM ledger_entries), account, customer_id, amount"
            f" FROM ledger_postings WHERE entry_id = {earn} AND account = 'issued'",
            "INSERT INTO ledger_postings (entry_id, account, customer_id, amount)"
            " SELECT (SELECT MAX(id) FROM ledger_entries), 'adjusted', NULL, -amount"
            f" FROM ledger_postings WHERE entry_id = {earn} AND account = 'issued'",
        ) == {"one_entry_per_source_event"}


    def test_a_return_taking_back_more_than_expired(self, session: Session, books: Books) -> None:
        reverse = ("(SELECT e.id FROM ledger_entries e JOIN transactions t ON t.id = e.transaction_id "
                   "WHERE t.pos_transaction_id = 'R-L1' AND e.kind = 'reverse')")
        assert _failures_after(
            session,
            f"UPDATE ledger_postings SET amount = amount - 30 WHERE account = 'expired' AND entry_id = {reverse}",
            f"UPDATE ledger_postings SET amount = amount + 30 WHERE account = 'issued' AND entry_id = {reverse}",
        ) == {"expired_reversals_within_expiry"}


def test_every_check_has_a_red_test() -> None:
    covered = {"entries_balance", "program_accounts_balance_members", "entries_have_postings",
               "balances_match_postings", "lots_match_balances", "postings_have_balances", "never_negative",
               "lots_account_for_points", "holds_match_held", "earned_matches_transactions",
               "one_entry_per_source_event", "awards_match_earned", "expired_reversals_within_expiry"}
    assert {c.name for c in CHECKS} == covered
