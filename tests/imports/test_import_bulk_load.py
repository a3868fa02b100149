"""Bulk-load mode: foreign keys checked once per batch (PostgreSQL), same result, clean rollback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty import bulk
from loyalty.db import session_scope
from loyalty.imports import service as import_service
from loyalty.imports.pipeline import import_transaction_file
from loyalty.ledger.verify import verify
from loyalty.models import LedgerPosting
from loyalty.transactions.schemas import PurchaseIn, ReturnIn
from loyalty.transactions.service import record_purchase, record_return
from tests.factories import make_customer, make_store, next_phone
from tests.imports.test_import_matches_live import HEADER, _member_state


def _constraints(session: Session) -> list[tuple[str, str]]:
    if session.get_bind().dialect.name != "postgresql":
        return []
    return [tuple(row) for row in session.execute(text(  # type: ignore[misc]
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f' ORDER BY conname"))]


def test_a_bulk_load_batch_leaves_what_the_live_service_leaves(
    engine: Engine, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    modes: list[bool] = []
    checked_at_end = bulk.foreign_keys_checked_at_end

    @contextmanager
    def spy(session: Session, tables: tuple[str, ...]) -> Iterator[bool]:
        with checked_at_end(session, tables) as moved:
            modes.append(moved)
            yield moved
    monkeypatch.setattr(import_service, "BULK_LOAD_MIN_ROWS", 1)
    monkeypatch.setattr(import_service, "foreign_keys_checked_at_end", spy)
    make_store(session, "HN01", "retail")
    make_store(session, "OUT1", "outlet")
    before = _constraints(session)
    phone = next_phone()
    imported, live = make_customer(session, phone=phone), make_customer(session)
    now = datetime.now(UTC).replace(microsecond=0)
    lines = HEADER
    for n, (store, amount) in enumerate([("HN01", 250_000), ("OUT1", 990_000), ("HN01", 1_000_000)]):
        moment = (now - timedelta(days=3, minutes=n)).isoformat()
        lines += f"I-P{n},{store},{phone},{moment},{amount},purchase,\n"
        recorded = record_purchase(session, PurchaseIn.model_validate({
            "store_id": store, "transaction_id": f"L-P{n}", "customer_id": live.id, "occurred_at": moment,
            "amount": amount}), actor="import")
        session.commit()
        if n:
            lines += f"I-R{n},{store},,{now.isoformat()},{amount // 3},return,I-P{n}\n"
            record_return(session, recorded.body.id, ReturnIn.model_validate(
                {"transaction_id": f"L-R{n}", "occurred_at": now.isoformat(), "amount": amount // 3}),
                actor="import")
            session.commit()
    path = tmp_path / "tx.csv"
    path.write_text(lines, encoding="utf-8")

    report = import_transaction_file(engine, path)

    assert (report.imported, report.rejected) == (5, 0)
    assert modes == ([True] if engine.dialect.name == "postgresql" else [])  # the mode is PostgreSQL's only
    session.rollback()
    assert _member_state(session, imported.id, "I-") == _member_state(session, live.id, "L-")
    assert _constraints(session) == before  # every foreign key is back, exactly as it was
    assert all(r.ok for r in verify(session))


def test_a_violation_found_at_the_end_rolls_everything_back(engine: Engine, session: Session) -> None:
    before = _constraints(session)
    postings = session.scalar(select(func.count()).select_from(LedgerPosting))
    with pytest.raises(IntegrityError), session_scope(engine) as writer, \
            bulk.foreign_keys_checked_at_end(writer, ("ledger_postings",)):
        writer.execute(insert(LedgerPosting).values(entry_id=987_654_321, account="issued", amount=-5))
    session.rollback()
    assert session.scalar(select(func.count()).select_from(LedgerPosting)) == postings
    assert _constraints(session) == before


def test_ids_drawn_with_gaps_link_every_row_to_its_own(engine: Engine, session: Session, tmp_path: Path) -> None:
    """Another writer drawing from the sequences meanwhile leaves gaps in a batch's ids (PostgreSQL); a
    step of 3 makes them certain. Each lot still gets exactly its two postings, and the ledger verifies."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's import numbers rows from max(id) under its write lock: never gaps")
    sequences = ("transactions_id_seq", "ledger_entries_id_seq", "point_lots_id_seq")
    make_store(session, "HN01", "retail")
    phones = [next_phone() for _ in range(3)]
    for phone in phones:
        make_customer(session, phone=phone)
    now = datetime.now(UTC).replace(microsecond=0)
    path = tmp_path / "tx.csv"
    path.write_text(HEADER + "".join(
        f"G-{n},HN01,{phones[n % 3]},{(now - timedelta(days=2, minutes=n)).isoformat()},{300_000 + n},purchase,\n"
        for n in range(7)), encoding="utf-8")
    with engine.begin() as conn:
        for name in sequences:
            conn.execute(text(f"ALTER SEQUENCE {name} INCREMENT BY 3"))
    try:
        report = import_transaction_file(engine, path)
    finally:
        with engine.begin() as conn:
            for name in sequences:
                conn.execute(text(f"ALTER SEQUENCE {name} INCREMENT BY 1"))
    assert (report.imported, report.rejected) == (7, 0)
    session.rollback()
    lots = session.execute(text("SELECT id, entry_id, customer_id, points FROM point_lots ORDER BY id")).all()
    assert len(lots) == 7 and lots[1][0] - lots[0][0] == 3
    postings = session.execute(text(
        "SELECT entry_id, account, customer_id, amount FROM ledger_postings ORDER BY entry_id, amount")).all()
    assert postings == [row for _, entry, customer, points in lots
                        for row in ((entry, "issued", None, -points), (entry, "available", customer, points))]
    assert all(r.ok for r in verify(session))
