"""Migrations 0012 (SQLite's in-place CHECK change, PostgreSQL's constraint swap) and 0015 (referral
codes) on data that exists, and `loyalty staff set-password`."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from loyalty.cli.main import app
from loyalty.db import session_factory
from loyalty.migrations.runner import alembic_config
from loyalty.models.service import StaffMember
from loyalty.referrals.service import normalise_code, referral_out
from loyalty.web import passwords
from tests.factories import make_customer, make_staff, make_store

runner = CliRunner()


def test_0012_down_and_up_keeps_staff_and_their_references(database_url: str, engine: Engine,
                                                            session: Session) -> None:
    make_store(session, "HN01")
    agent = make_staff(session, role="agent", stores=["HN01"], email="a@shop.vn")
    make_staff(session, role="readonly", email="ro@shop.vn")
    config = alembic_config(database_url)
    session.close()
    engine.dispose()
    command.downgrade(config, "0007")
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT email, role, active FROM staff_members ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [("a@shop.vn", "agent", True), ("ro@shop.vn", "agent", False)]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE staff_members SET role = 'readonly'"))
    command.upgrade(config, "head")
    engine.dispose()
    with engine.begin() as conn:
        conn.execute(text("UPDATE staff_members SET role = 'readonly' WHERE email = 'ro@shop.vn'"))
        assert conn.execute(text("SELECT store_id FROM staff_stores WHERE staff_id = :s"), {"s": agent}
                            ).scalar_one() == "HN01"
        assert conn.execute(text("SELECT failed_logins FROM staff_members WHERE id = :s"), {"s": agent}
                            ).scalar_one() == 0
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE staff_members SET role = 'owner'"))
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"


def test_set_password_from_stdin_generated_and_refused(cli_db: str, session: Session) -> None:
    staff_id = make_staff(session, role="manager", email="m@shop.vn", password=None)
    result = runner.invoke(app, ["staff", "set-password", "--email", "M@shop.vn", "--password-stdin"],
                           input="a long enough secret\n")
    assert result.exit_code == 0, result.output
    session.rollback()
    member = session.get(StaffMember, staff_id)
    assert member is not None and passwords.verify(member.password_hash, "a long enough secret")
    short = runner.invoke(app, ["staff", "set-password", "--email", "m@shop.vn", "--password-stdin"], input="short\n")
    assert short.exit_code == 2 and "at least 10 characters" in short.output
    unknown = runner.invoke(app, ["staff", "set-password", "--email", "x@shop.vn", "--generate"])
    assert unknown.exit_code == 2 and "no staff member" in unknown.output
    generated = runner.invoke(app, ["staff", "set-password", "--email", "m@shop.vn", "--generate"])
    assert generated.exit_code == 0
    password = generated.output.split("password:")[1].strip()
    session.rollback()
    member = session.get(StaffMember, staff_id)
    assert member is not None and passwords.verify(member.password_hash, password)
    assert not passwords.verify(member.password_hash, "a long enough secret")


def test_passwords_are_argon2_and_checked_in_full() -> None:
    stored = passwords.hash_password("correct horse 42")
    assert stored.startswith("$argon2id$")
    assert passwords.verify(stored, "correct horse 42")
    assert not passwords.verify(stored, "correct horse 4")
    assert not passwords.verify(None, "correct horse 42")
    assert not passwords.verify("garbage", "correct horse 42")
    assert not passwords.verify(stored, "x" * 10_000)


def test_0015_gives_every_member_without_a_referral_code_one(database_url: str, engine: Engine,
                                                             session: Session) -> None:
    make_store(session, "HN01")
    members = [make_customer(session).id for _ in range(5)]
    with engine.begin() as conn:
        kept = conn.execute(text("SELECT code FROM referral_codes WHERE customer_id = :c"),
                            {"c": members[0]}).scalar_one()
        # Members from before codes were written at enrolment had none.
        conn.execute(text("DELETE FROM referral_codes WHERE customer_id <> :c"), {"c": members[0]})
    config = alembic_config(database_url)
    session.close()
    engine.dispose()
    command.downgrade(config, "0014")
    command.upgrade(config, "head")
    engine.dispose()
    with engine.connect() as conn:
        codes = dict(conn.execute(text("SELECT customer_id, code FROM referral_codes")).all())
    assert sorted(codes) == members and codes[members[0]] == kept
    assert len(set(codes.values())) == 5 and all(normalise_code(code) == code for code in codes.values())
    with session_factory(engine)() as reader:
        assert referral_out(reader, members[3]).code == codes[members[3]]
