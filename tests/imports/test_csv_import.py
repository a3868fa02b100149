"""CSV import: line-numbered errors, no half-applied rows, idempotent re-import, same points as the API."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty.imports import pipeline
from loyalty.imports.pipeline import import_customer_file, import_transaction_file
from loyalty.imports.rows import CsvFileError, CsvHeaderError
from loyalty.ledger.verify import verify
from loyalty.models import Customer, LedgerEntry, MemberBalance, Transaction
from tests.factories import make_customer, make_store

HEADER = "transaction_id,store_id,customer,occurred_at,amount,type,original_transaction_id\n"


def _bytes(tmp_path: Path, data: bytes, name: str = "raw.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def write(tmp_path: Path, text: str, name: str = "tx.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def balance(session: Session, customer_id: int) -> int:
    session.rollback()  # end the snapshot: see what the importer committed
    available = session.scalar(select(MemberBalance.available).where(MemberBalance.customer_id == customer_id))
    session.rollback()
    return available or 0


class TestImportTransactions:
    def test_purchases_earn_like_the_api_and_reimport_changes_nothing(
        self, engine: Engine, session: Session, tmp_path: Path,
    ) -> None:
        make_store(session, "HN01", "retail")
        make_store(session, "OUT1", "outlet")
        customer = make_customer(session, phone="0912345678")
        path = write(tmp_path, HEADER
                     + "A1,HN01,0912 345 678,2026-11-01T10:00:00+07:00,250000,,\n"
                     + "A2,OUT1,+84912345678,2026-11-02T10:00:00+07:00,250000,,\n"
                     + "A3,HN01,,2026-11-02T11:00:00+07:00,900000,,\n")
        first = import_transaction_file(engine, path)
        assert (first.imported, first.skipped, first.rejected) == (3, 0, 0)
        assert balance(session, customer.id) == 20 + 10
        second = import_transaction_file(engine, path)
        assert (second.imported, second.skipped) == (0, 3)
        assert balance(session, customer.id) == 30
        assert count(session, LedgerEntry) == 2
        session.rollback()
        assert all(r.ok for r in verify(session))

    def test_bad_rows_are_reported_with_line_numbers_and_skipped(
        self, engine: Engine, session: Session, tmp_path: Path,
    ) -> None:
        make_store(session, "HN01", "retail")
        customer = make_customer(session, phone="0912345678")
        path = write(tmp_path, HEADER
                     + "B1,HN01,0912345678,2026-11-01T10:00:00+07:00,250000,,\n"   # line 2: fine
                     + "B2,HN01,0912345678,yesterday,100000,,\n"                    # line 3: bad time
                     + "B3,NOPE,0912345678,2026-11-01T10:00:00+07:00,100000,,\n"   # line 4: unknown store
                     + "B4,HN01,0999999999,2026-11-01T10:00:00+07:00,100000,,\n"   # line 5: unknown customer
                     + "B5,HN01,0912345678,2026-11-01T10:00:00+07:00,-5,,\n"       # line 6: negative
                     + "B1,HN01,0912345678,2026-11-01T10:00:00+07:00,250000,,\n"   # line 7: duplicate of 2
                     + "B6,HN01,0912345678,2026-11-01T10:00:00+07:00,12.5,,\n"     # line 8: not whole
                     + "B\x007,HN01,0912345678,2026-11-01T10:00:00+07:00,1000,,\n"  # line 9: NUL in the id
                     + "B8,HN\x0001,0912345678,2026-11-01T10:00:00+07:00,1000,,\n")  # line 10: NUL in the store
        report = import_transaction_file(engine, path)
        lines = {e.line: e.message for e in report.errors}
        assert set(lines) == {3, 4, 5, 6, 7, 8, 9, 10}
        assert "ISO 8601" in lines[3] and "NOPE" in lines[4] and "unknown customer" in lines[5]
        assert "negative" in lines[6] and "line 2" in lines[7] and "whole number" in lines[8]
        assert lines[9] == "transaction_id contains a NUL character" and "store_id" in lines[10]
        assert report.imported == 1
        assert balance(session, customer.id) == 20
        assert count(session, Transaction) == 1

    def test_create_customers_enrols_unknown_identities_once(
        self, engine: Engine, session: Session, tmp_path: Path,
    ) -> None:
        make_store(session, "HN01", "retail")
        path = write(tmp_path, HEADER
                     + "C1,HN01,an@example.com,2026-11-01T10:00:00+07:00,100000,,\n"
                     + "C2,HN01,AN@example.com,2026-11-01T11:00:00+07:00,100000,,\n"
                     + "C3,HN01,0987654321,2026-11-01T12:00:00+07:00,300000,,\n")
        report = import_transaction_file(engine, path, create_customers=True)
        assert report.created_customers == 2
        assert count(session, Customer) == 2
        import_transaction_file(engine, path, create_customers=True)
        assert count(session, Customer) == 2

    def test_returns_in_the_file_reverse_points(self, engine: Engine, session: Session, tmp_path: Path) -> None:
        make_store(session, "HN01", "retail")
        customer = make_customer(session, phone="0912345678")
        path = write(tmp_path, HEADER
                     + "D1,HN01,0912345678,2026-11-01T10:00:00+07:00,500000,purchase,\n"
                     + "D1R,HN01,0912345678,2026-11-03T10:00:00+07:00,200000,return,D1\n"
                     + "D2R,HN01,0912345678,2026-11-03T10:00:00+07:00,100000,return,NOPE\n")
        report = import_transaction_file(engine, path)
        assert [e.line for e in report.errors] == [4]
        assert balance(session, customer.id) == 50 - 20
        import_transaction_file(engine, path)
        assert balance(session, customer.id) == 30
        session.rollback()
        assert all(r.ok for r in verify(session))

    def test_a_return_is_refused_when_its_customer_is_not_the_purchases(
        self, engine: Engine, session: Session, tmp_path: Path,
    ) -> None:
        make_store(session, "HN01", "retail")
        buyer = make_customer(session, phone="0912345678")
        other = make_customer(session, phone="0987654321")
        path = write(tmp_path, HEADER
                     + "E1,HN01,0912345678,2026-11-01T10:00:00+07:00,500000,purchase,\n"
                     + "E1R,HN01,0987654321,2026-11-03T10:00:00+07:00,100000,return,E1\n"  # someone else
                     + "E2R,HN01,0900000111,2026-11-03T10:00:00+07:00,100000,return,E1\n"  # nobody known
                     + "E3R,HN01,,2026-11-03T10:00:00+07:00,100000,return,E1\n"            # no customer: fine
                     + "E4R,HN01,+84912345678,2026-11-03T11:00:00+07:00,100000,return,E1\n")  # the buyer
        report = import_transaction_file(engine, path, create_customers=True)
        messages = {e.line: e.message for e in report.errors}
        assert set(messages) == {3, 4}
        assert messages[3] == "customer '0987654321' is not the customer of purchase E1"
        assert "must be the customer of its purchase" in messages[4]
        assert (report.imported, report.created_customers) == (3, 0)
        assert count(session, Customer) == 2  # a return never enrols anyone
        assert (balance(session, buyer.id), balance(session, other.id)) == (30, 0)
        session.rollback()
        assert all(r.ok for r in verify(session))

    @pytest.mark.parametrize("kind", ["transactions", "customers"])
    def test_a_repeated_column_is_refused(self, engine: Engine, session: Session, tmp_path: Path,
                                          kind: str) -> None:
        make_store(session, "HN01", "retail")
        if kind == "transactions":
            path = write(tmp_path, "transaction_id,store_id,customer,occurred_at,amount,amount\n"
                                   "F1,HN01,,2026-11-01T10:00:00+07:00,100000,900000\n")
            importer = import_transaction_file
        else:
            path = write(tmp_path, "phone,name,phone\n0912345678,Lan,0987654321\n")
            importer = import_customer_file
        with pytest.raises(CsvHeaderError, match=f"line 1: column.s. {'amount' if kind == 'transactions' else 'phone'} "
                                                 "appear more than once"):
            importer(engine, path)
        assert (count(session, Transaction), count(session, Customer)) == (0, 0)

    def test_a_header_without_required_columns_is_refused(self, engine: Engine, tmp_path: Path) -> None:
        path = write(tmp_path, "transaction_id,store,amount\nX,HN01,100\n")
        with pytest.raises(CsvHeaderError, match="line 1"):
            import_transaction_file(engine, path)

    def test_a_file_that_is_not_utf8_stops_at_its_line(self, engine: Engine, session: Session,
                                                        tmp_path: Path) -> None:
        make_store(session, "HN01", "retail")
        customer = make_customer(session, phone="0912345678")
        good = "".join(f"U{i},HN01,0912345678,2026-10-01T10:00:00+07:00,100000,,\n" for i in range(3000))
        path = tmp_path / "latin1.csv"
        path.write_bytes((HEADER + good).encode() + "U99,HN01,Hà Noi,2026-10-01T10:00:00+07:00,1,,\n".encode("latin-1"))
        with pytest.raises(CsvFileError, match=r"^line 3002: the file is not UTF-8 text \(byte 0xe0\)"):
            import_transaction_file(engine, path, batch_size=500)
        # Batches read before the decoder met the byte (it reads ahead in blocks) are imported, whole.
        imported = balance(session, customer.id)
        assert 0 < imported < 30_000 and imported % 5_000 == 0
        with pytest.raises(CsvFileError, match="line 1: the file is not UTF-8"):
            import_transaction_file(engine, _bytes(tmp_path, b"transaction_id,store_id,\xff\n"))

    def test_a_field_too_long_for_csv_stops_at_its_line(self, engine: Engine, session: Session,
                                                        tmp_path: Path) -> None:
        make_store(session, "HN01", "retail")
        make_customer(session, phone="0912345678")
        path = write(tmp_path, HEADER + "L1,HN01,0912345678,2026-10-01T10:00:00+07:00,100000,,\n"
                     + f"L2,HN01,{'9' * 200_000},2026-10-01T10:00:00+07:00,100000,,\n")
        with pytest.raises(CsvFileError, match=r"^line 3: field larger than field limit"):
            import_transaction_file(engine, path)

    def test_an_amount_beyond_what_the_api_takes_is_a_rejected_row(
        self, engine: Engine, session: Session, tmp_path: Path,
    ) -> None:
        make_store(session, "HN01", "retail")
        customer = make_customer(session, phone="0912345678")
        path = write(tmp_path, HEADER
                     + "M1,HN01,0912345678,2026-10-01T10:00:00+07:00,10000000000000,,\n"        # the most: fine
                     + "M2,HN01,0912345678,2026-10-01T10:00:00+07:00,10000000000001,,\n"
                     + "M3,HN01,0912345678,2026-10-01T10:00:00+07:00,9223372036854775807,,\n"
                     + "M4,HN01,0912345678,2026-10-01T10:00:00+07:00,1" + "0" * 30 + ",,\n")
        report = import_transaction_file(engine, path)
        assert report.imported == 1 and {e.line for e in report.errors} == {3, 4, 5}
        assert all("more than 10,000,000,000,000" in e.message for e in report.errors)
        assert balance(session, customer.id) == 10**13 // 100_000 * 10

    def test_batches_commit_separately_and_all_rows_land(
        self, engine: Engine, session: Session, tmp_path: Path,
    ) -> None:
        make_store(session, "HN01", "retail")
        customer = make_customer(session, phone="0912345678")
        rows = "".join(f"E{i},HN01,0912345678,2026-10-01T10:00:00+07:00,100000,,\n" for i in range(250))
        report = import_transaction_file(engine, write(tmp_path, HEADER + rows), batch_size=40)
        assert report.imported == 250
        assert balance(session, customer.id) == 2500

    def test_statistics_are_refreshed_as_the_tables_grow_and_not_when_nothing_was_written(
        self, engine: Engine, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        refreshed: list[int] = []
        monkeypatch.setattr(pipeline, "refresh_statistics", lambda s: refreshed.append(len(refreshed)))
        make_store(session, "HN01", "retail")
        make_customer(session, phone="0912345678")
        rows = "".join(f"E{i},HN01,0912345678,2026-10-01T10:00:00+07:00,100000,,\n" for i in range(100))
        path = write(tmp_path, HEADER + rows)
        assert import_transaction_file(engine, path, batch_size=20).imported == 100
        assert len(refreshed) == 3  # after batches 1, 2 and 4 of 5
        assert import_transaction_file(engine, path, batch_size=20).skipped == 100
        assert len(refreshed) == 3  # the same file again wrote nothing
        more = "".join(f"F{i},HN01,0912345678,2026-10-01T10:00:00+07:00,100000,,\n" for i in range(20))
        assert import_transaction_file(engine, write(tmp_path, HEADER + rows + more), batch_size=20).imported == 20
        assert len(refreshed) == 3  # batch 6 grew the tables, but refreshes come after batches 1, 2, 4, 8 ...
        assert import_transaction_file(engine, write(tmp_path, HEADER + more + rows), batch_size=20).skipped == 120
        assert len(refreshed) == 3
        newer = "".join(f"G{i},HN01,0912345678,2026-10-01T10:00:00+07:00,100000,,\n" for i in range(20))
        assert import_transaction_file(engine, write(tmp_path, HEADER + more + newer), batch_size=20).imported == 20
        assert len(refreshed) == 4  # batch 2 grew them


class TestImportCustomers:
    def test_an_enrolment_time_the_api_refuses_is_a_rejected_row(
        self, engine: Engine, session: Session, tmp_path: Path,
    ) -> None:
        path = write(tmp_path, "phone,name,enrolled_at\n"
                     "0912000001,Fine,2024-03-01T09:00:00+07:00\n"
                     "0912000002,Year one,0001-01-01T00:00:00+01:00\n"
                     "0912000003,Year 9999,9999-12-31T23:59:59-01:00\n"
                     "0912000004,Naive year one,0001-01-01T00:00:00\n"
                     "0912000005,Before 1900,1800-01-01T00:00:00Z\n"
                     "0912000006,Far ahead,2999-01-01T00:00:00Z\n", "customers.csv")
        report = import_customer_file(engine, path)
        assert report.imported == 1
        assert {e.line for e in report.errors} == {3, 4, 5, 6, 7}
        assert all("must be after 1900 and not in the future" in e.message for e in report.errors)
        assert count(session, Customer) == 1

    def test_customers_with_identities_and_line_numbered_errors(
        self, engine: Engine, session: Session, tmp_path: Path,
    ) -> None:
        make_store(session, "HN01", "retail")
        path = write(tmp_path, "phone,email,card,name,birthday,gender,consent_sms,store_id\n"
                     "0912345678,an@example.com,LC0000000001,Nguyễn Văn An,1990-05-01,male,true,HN01\n"
                     "0912 345 678,,,Duplicate phone,,,,\n"
                     "0987654321,,,Trần Thị Bình,1990-13-01,female,,\n"
                     ",,,No identity,,,,\n"
                     "0911111111,,,Lê Chi,,female,maybe,\n"
                     "0922222222,,,Phạm Dũng,,male,no,HN01\n"
                     "0933333333,,,Võ\x00 Em,,,,\n", "customers.csv")
        report = import_customer_file(engine, path)
        lines = {e.line: e.message for e in report.errors}
        assert set(lines) == {3, 4, 5, 6, 8}
        assert "line 2" in lines[3] and "birthday" in lines[4]
        assert "phone, email" in lines[5] and "consent_sms" in lines[6]
        assert lines[8] == "name contains a NUL character"
        assert report.imported == 2
        again = import_customer_file(engine, path)
        # Line 3 repeats line 2's phone: on a second run that customer exists, so it is skipped too.
        assert again.imported == 0 and again.skipped == 3
        assert count(session, Customer) == 2


def count(session: Session, model: type) -> int:
    session.rollback()
    total = session.scalar(select(func.count()).select_from(model)) or 0
    session.rollback()
    return total


class TestBulkReturnsMatchTheService:
    """The importer's set-based return path must leave exactly what the API's return service leaves."""

    RETURNS: ClassVar[list[tuple[int, list[int]]]] = [  # (purchase amount, returned amounts in order)
        (250_000, [250_000]),             # full
        (990_000, [330_000]),             # partial, rounding
        (1_000_000, [300_000, 700_000]),  # two partials in one batch: the second goes one by one
        (120_000, [20_000]),
    ]

    def test_same_balances_and_reversals_as_the_api(self, engine: Engine, session: Session, tmp_path: Path) -> None:
        from loyalty.transactions.schemas import ReturnIn
        from loyalty.transactions.service import record_return
        from tests.factories import make_purchase

        make_store(session, "HN01", "retail")
        imported = make_customer(session, phone="0912345678")
        served = make_customer(session, phone="0987654321")
        lines = HEADER
        for n, (amount, returned) in enumerate(self.RETURNS):
            lines += f"P{n},HN01,0912345678,2026-11-01T10:00:00+07:00,{amount},purchase,\n"
            make_purchase(session, served.id, amount, pos_id=f"S{n}")
            purchase_id = session.scalar(select(Transaction.id).where(Transaction.pos_transaction_id == f"S{n}"))
            assert purchase_id is not None
            for k, part in enumerate(returned):
                lines += f"P{n}R{k},HN01,0912345678,2026-11-02T10:00:00+07:00,{part},return,P{n}\n"
                record_return(session, purchase_id, ReturnIn.model_validate(
                    {"transaction_id": f"S{n}R{k}", "occurred_at": "2026-11-02T10:00:00+07:00", "amount": part}),
                    actor="test")
                session.commit()
        report = import_transaction_file(engine, write(tmp_path, lines))
        assert report.rejected == 0
        session.rollback()
        rows = {cid: session.execute(select(MemberBalance.available, MemberBalance.pending, MemberBalance.owed,
                                            MemberBalance.earned_total)
                                     .where(MemberBalance.customer_id == cid)).one()
                for cid in (imported.id, served.id)}
        assert rows[imported.id] == rows[served.id]
        reversed_points = {
            cid: sorted(session.execute(select(Transaction.amount, Transaction.points_reversed,
                                               Transaction.returned_amount)
                                        .where(Transaction.customer_id == cid, Transaction.kind == "purchase")).all())
            for cid in (imported.id, served.id)
        }
        assert reversed_points[imported.id] == reversed_points[served.id]
        assert all(r.ok for r in verify(session))
