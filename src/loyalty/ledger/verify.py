"""`loyalty ledger verify`: recomputes every invariant from the postings, in set-based SQL."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    description: str
    sql: str


@dataclass(slots=True)
class CheckResult:
    name: str
    description: str
    violations: int
    examples: list[tuple[object, ...]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.violations == 0


_MEMBER_SUMS = """
    SELECT customer_id,
           SUM(CASE WHEN account = 'available' THEN amount ELSE 0 END) AS available,
           SUM(CASE WHEN account = 'pending' THEN amount ELSE 0 END) AS pending,
           SUM(CASE WHEN account = 'held' THEN amount ELSE 0 END) AS held,
           SUM(CASE WHEN account = 'owed' THEN amount ELSE 0 END) AS owed
    FROM ledger_postings WHERE customer_id IS NOT NULL GROUP BY customer_id
"""

_LOT_SUMS = """
    SELECT customer_id,
           SUM(CASE WHEN pending THEN 0 ELSE remaining END) AS available,
           SUM(CASE WHEN pending THEN remaining ELSE 0 END) AS pending
    FROM point_lots GROUP BY customer_id
"""

CHECKS = [
    Check("entries_balance", "every entry's postings sum to zero",
          "SELECT entry_id, SUM(amount) FROM ledger_postings GROUP BY entry_id HAVING SUM(amount) <> 0"),
    Check("entries_have_postings", "every entry has postings",
          "SELECT e.id FROM ledger_entries e LEFT JOIN ledger_postings p ON p.entry_id = e.id "
          "WHERE p.id IS NULL"),
    Check("balances_match_postings", "every stored balance equals the sum of its postings",
          f"SELECT b.customer_id, b.available, s.available, b.pending, s.pending, b.held, s.held, b.owed, s.owed "
          f"FROM member_balances b LEFT JOIN ({_MEMBER_SUMS}) s ON s.customer_id = b.customer_id "
          "WHERE b.available <> COALESCE(s.available, 0) OR b.pending <> COALESCE(s.pending, 0) "
          "OR b.held <> COALESCE(s.held, 0) OR b.owed <> COALESCE(s.owed, 0)"),
    Check("postings_have_balances", "every member with postings has a balance row",
          f"SELECT s.customer_id FROM ({_MEMBER_SUMS}) s "
          "LEFT JOIN member_balances b ON b.customer_id = s.customer_id WHERE b.customer_id IS NULL"),
    Check("never_negative", "no available, pending or held balance below zero, no debt above zero",
          "SELECT customer_id, available, pending, held, owed FROM member_balances "
          "WHERE available < 0 OR pending < 0 OR held < 0 OR owed > 0"),
    Check("lots_match_balances", "spendable and pending lots add up to the available and pending balances",
          f"SELECT b.customer_id, b.available, l.available, b.pending, l.pending FROM member_balances b "
          f"LEFT JOIN ({_LOT_SUMS}) l ON l.customer_id = b.customer_id "
          "WHERE b.available <> COALESCE(l.available, 0) OR b.pending <> COALESCE(l.pending, 0)"),
    Check("lots_account_for_points", "every point a lot lost is allocated to a spend, expiry or reversal",
          "SELECT l.id, l.points, l.remaining, COALESCE(a.taken, 0) FROM point_lots l "
          "LEFT JOIN (SELECT lot_id, SUM(points) AS taken FROM lot_allocations GROUP BY lot_id) a "
          "ON a.lot_id = l.id WHERE l.points - l.remaining <> COALESCE(a.taken, 0) "
          "OR l.remaining < 0 OR l.remaining > l.points"),
    Check("holds_match_held", "active holds add up to the held balance",
          "SELECT b.customer_id, b.held, COALESCE(h.points, 0) FROM member_balances b "
          "LEFT JOIN (SELECT customer_id, SUM(points) AS points FROM holds WHERE status = 'held' "
          "GROUP BY customer_id) h ON h.customer_id = b.customer_id WHERE b.held <> COALESCE(h.points, 0)"),
    Check("one_entry_per_source_event", "no two entries from the same source event",
          "SELECT source_type, source_id, event, COUNT(*) FROM ledger_entries "
          "GROUP BY source_type, source_id, event HAVING COUNT(*) > 1"),
    Check("earned_matches_transactions", "each purchase's recorded points equal its earn entry",
          "SELECT t.id, t.points_earned, COALESCE(-SUM(p.amount), 0) FROM transactions t "
          "LEFT JOIN ledger_entries e ON e.transaction_id = t.id AND e.kind = 'earn' "
          "LEFT JOIN ledger_postings p ON p.entry_id = e.id AND p.account = 'issued' "
          "WHERE t.kind = 'purchase' GROUP BY t.id, t.points_earned "
          "HAVING t.points_earned <> COALESCE(-SUM(p.amount), 0)"),
    # Purchases recorded before the breakdown existed (migration 0004) have no award rows: only
    # purchases with a breakdown are checked, so an older database does not read as corrupt.
    Check("awards_match_earned", "each purchase's receipt breakdown adds up to its recorded points",
          "SELECT t.id, t.points_earned, SUM(a.points) FROM transactions t "
          "JOIN transaction_awards a ON a.transaction_id = t.id "
          "GROUP BY t.id, t.points_earned HAVING SUM(a.points) <> t.points_earned"),
    # A return takes back from the expired account only what its purchase's lots lost to expiry.
    Check("expired_reversals_within_expiry", "returns take back from expiry no more than the purchase lost to it",
          "SELECT t.original_id, SUM(-p.amount), COALESCE(MAX(x.expired), 0) FROM ledger_postings p "
          "JOIN ledger_entries e ON e.id = p.entry_id AND e.kind = 'reverse' "
          "JOIN transactions t ON t.id = e.transaction_id "
          "LEFT JOIN (SELECT l.transaction_id, SUM(a.points) AS expired FROM lot_allocations a "
          "JOIN point_lots l ON l.id = a.lot_id WHERE a.spend_type = 'expire' GROUP BY l.transaction_id) x "
          "ON x.transaction_id = t.original_id WHERE p.account = 'expired' GROUP BY t.original_id "
          "HAVING SUM(-p.amount) < 0 OR SUM(-p.amount) > COALESCE(MAX(x.expired), 0)"),
    Check("program_accounts_balance_members", "program accounts mirror the member accounts",
          "SELECT SUM(amount) FROM ledger_postings HAVING SUM(amount) <> 0"),
]


def verify(session: Session, *, examples: int = 5) -> list[CheckResult]:
    results = []
    for check in CHECKS:
        rows = session.execute(text(check.sql)).all()
        results.append(CheckResult(check.name, check.description, len(rows),
                                   [tuple(row) for row in rows[:examples]]))
    return results
