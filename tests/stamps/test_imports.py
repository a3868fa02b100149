"""CSV imports: a return in the file of a sale that stamped cards takes its stamps back (the service's
return path, not the bulk one). Imported purchases themselves are not stamped (not built yet)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from loyalty.imports.pipeline import import_transaction_file
from tests.factories import make_customer
from tests.readers import assert_ledger_ok
from tests.stamps.helpers import ICE_CREAM, Till, cone, stamps_consistent, use_cards

HEADER = "transaction_id,store_id,customer,occurred_at,amount,type,original_transaction_id\n"


def test_an_imported_return_takes_back_the_stamps_and_the_voucher(
    client: TestClient, session: Session, engine: Engine, tmp_path: Path,
) -> None:
    use_cards(session, [ICE_CREAM])
    till = Till(client, session)
    member = make_customer(session, phone="0912345678").id
    till.sell(member, cone(2))
    sale = till.sell(member, cone(4), pos_id="API-1")  # completes a card, 1 carries over
    assert till.progress(member) == {"ice-cream": (1, 1)}
    path = tmp_path / "returns.csv"
    path.write_text(HEADER + f"API-1R,HN01,0912345678,2026-03-12T10:00:00+07:00,{sale['amount']},return,API-1\n",
                    encoding="utf-8")
    report = import_transaction_file(engine, path)
    assert (report.imported, report.errors) == (1, [])
    assert till.progress(member) == {"ice-cream": (2, 0)}
    assert till.vouchers(member) == [("FREE-CONE", "cancelled", 0)]
    stamps_consistent(session, member)
    assert_ledger_ok(session)
