"""loyalty.bulk: ids drawn up front, and the SQLite datetime text (what the ORM itself would store, whatever
the zone)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, DateTime, Engine, MetaData, Numeric, Table, func, select, text
from sqlalchemy.dialects import sqlite

from loyalty.bulk import _binary_type, _converted_column, _copy, allocate_ids, insert_rows, sqlite_datetime
from loyalty.db import session_factory
from loyalty.models import Base, Customer, Store
from loyalty.models.transactions import Transaction

_ORM_TEXT = DateTime().dialect_impl(sqlite.dialect()).bind_processor(sqlite.dialect())
_ZONES = st.sampled_from([UTC, ZoneInfo("UTC"), ZoneInfo("Asia/Ho_Chi_Minh"), ZoneInfo("Asia/Kathmandu"),
                          ZoneInfo("America/St_Johns")])


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30)), _ZONES)
def test_the_text_is_the_orms_for_the_same_moment_in_utc(moment: datetime, zone: ZoneInfo) -> None:
    aware = moment.replace(tzinfo=zone)
    assert _ORM_TEXT is not None
    assert sqlite_datetime(aware) == _ORM_TEXT(aware.astimezone(UTC).replace(tzinfo=None))


def test_naive_datetimes_are_refused_and_none_stays_none() -> None:
    with pytest.raises(ValueError, match="naive"):
        sqlite_datetime(datetime(2026, 1, 1))
    assert sqlite_datetime(None) is None


def test_a_column_converts_each_value_and_repeats_reuse_the_text() -> None:
    now = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
    equal_but_another_object = now + timedelta(0)
    values = [now, now, None, equal_but_another_object, now + timedelta(hours=1), now]
    assert _converted_column(values, sqlite_datetime) == [sqlite_datetime(v) for v in values]
    calls: list[object] = []
    _converted_column(values, lambda v: calls.append(v))
    assert len(calls) == 5  # the second `now` in a row is the same object: converted once


def _sale(pos_id: str, **values: object) -> dict[str, object]:
    now = datetime(2026, 12, 6, tzinfo=UTC)
    return {"store_id": "S1", "pos_transaction_id": pos_id, "kind": "purchase", "customer_id": None,
            "occurred_at": now, "amount": 100, "currency": "VND", "points_earned": 0, "points_redeemed": 0,
            "returned_amount": 0, "points_reversed": 0, "points_restored": 0, "created_at": now, **values}


def _draw_and_insert(engine: Engine, count: int, prefix: str) -> list[int]:
    """Draws `count` ids and inserts a sale under each, in one transaction as the importer does."""
    session = session_factory(engine)()
    try:
        if session.get(Store, "S1") is None:
            session.add(Store(id="S1", name="Store 1", kind="retail", created_at=datetime(2026, 1, 1, tzinfo=UTC)))
            session.flush()
        ids = allocate_ids(session, Transaction, count)
        insert_rows(session, Transaction, [_sale(f"{prefix}-{n}", id=i) for n, i in enumerate(ids)])
        session.commit()
    finally:
        session.close()
    return ids


def _insert_numbered_by_database(engine: Engine, pos_id: str) -> int:
    with engine.begin() as conn:
        conn.execute(Transaction.__table__.insert(), [_sale(pos_id)])
        new_id = conn.scalar(select(Transaction.id).where(Transaction.pos_transaction_id == pos_id))
    assert new_id is not None
    return new_id


def test_drawn_ids_are_fresh_distinct_and_increasing(engine: Engine) -> None:
    _draw_and_insert(engine, 1, "store")  # the store's row
    before = _insert_numbered_by_database(engine, "before")
    first = _draw_and_insert(engine, 5, "first")
    second = _draw_and_insert(engine, 1000, "second")
    assert len(first) == 5 and first == sorted(set(first)) and first[0] > before
    assert len(second) == 1000 and second == sorted(set(second)) and second[0] > first[-1]
    assert _insert_numbered_by_database(engine, "after") > second[-1]
    session = session_factory(engine)()
    try:
        assert allocate_ids(session, Transaction, 0) == []
    finally:
        session.close()


def test_ids_that_are_not_one_run_come_back_as_drawn(engine: Engine) -> None:
    """Another session drawing meanwhile leaves gaps; a sequence stepping by 3 makes them certain."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite numbers from max(id) under its write lock: always one run")
    with engine.begin() as conn:
        conn.execute(text("SELECT setval(pg_get_serial_sequence('transactions', 'id'), 40)"))
        conn.execute(text("ALTER SEQUENCE transactions_id_seq INCREMENT BY 3"))
    try:
        assert _draw_and_insert(engine, 4, "few") == [43, 46, 49, 52]
        assert _draw_and_insert(engine, 150, "many") == list(range(55, 55 + 3 * 150, 3))  # a run's other form
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER SEQUENCE transactions_id_seq INCREMENT BY 1"))
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Transaction)) == 154


_FORMAT_TYPE = {"timestamptz": "timestamp with time zone", "int8": "bigint", "int4": "integer", "int2": "smallint",
                "bool": "boolean", "date": "date"}


def test_every_column_is_copied_as_the_type_the_database_has(engine: Engine) -> None:
    """Binary COPY sends each column as its model's type; the migrated database must have that type
    (an int4 column refuses int8 data), so a model and a migration that disagree fail here, not in an import."""
    if engine.dialect.name != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    with engine.connect() as conn:
        actual = {(table, column): (kind, varchar) for table, column, kind, varchar in conn.execute(text(
            "SELECT c.relname, a.attname, format_type(a.atttypid, NULL), a.atttypid = 'varchar'::regtype "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped"))}
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            sent = _binary_type(column.type)
            kind, varchar = actual[(table.name, column.name)]
            assert sent is not None, f"{table.name}.{column.name}: {column.type} has no binary COPY type"
            if sent == "text":
                assert kind == "text" or varchar, f"{table.name}.{column.name} is {kind}"
            else:
                assert kind == _FORMAT_TYPE[sent], f"{table.name}.{column.name} is {kind}, COPY sends {sent}"


def test_many_rows_go_in_as_the_orm_would_write_them(engine: Engine) -> None:
    """insert_rows with enough rows for COPY on PostgreSQL (executemany on SQLite): read back equal."""
    moment = datetime(2026, 12, 6, 11, 30, 15, 123456, tzinfo=UTC)
    rows = [{"name": f"Nguyễn Văn {n}" if n % 3 else None, "birthday": date(1990, 1 + n % 12, 1 + n % 28),
             "gender": None, "city": "Hà Nội", "preferred_channel": None, "consent_email": n % 2 == 0,
             "consent_sms": False, "consent_zalo": True, "consent_phone": False, "enrolled_store_id": None,
             "enrolled_at": moment + timedelta(days=n), "created_at": moment, "updated_at": moment}
            for n in range(120)]
    session = session_factory(engine)()
    try:
        insert_rows(session, Customer, rows)
        session.commit()
        stored = session.scalars(select(Customer).order_by(Customer.id)).all()
        assert [{name: getattr(c, name) for name in rows[0]} for c in stored] == rows
    finally:
        session.close()


def test_a_column_type_without_a_binary_form_is_copied_as_text(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    scratch = Table("bulk_scratch", MetaData(), Column("id", Numeric, primary_key=True), Column("price", Numeric))
    scratch.create(engine)
    try:
        session = session_factory(engine)()
        try:
            _copy(session, scratch, ["id", "price"], [(n, f"{n}.25") for n in range(3)])
            session.commit()
            assert [tuple(map(str, r)) for r in session.execute(select(scratch).order_by(scratch.c.id))] == [
                ("0", "0.25"), ("1", "1.25"), ("2", "2.25")]
        finally:
            session.close()
    finally:
        scratch.drop(engine)
