"""One-time-code login: codes per request, hashed, expiring, limited guesses, rate-limited, single use."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty.config import Settings
from loyalty.db import run_in_transaction, session_factory
from loyalty.errors import ValidationFailed
from loyalty.models.portal import PortalLoginCode
from loyalty.portal import login
from loyalty.portal.settings import PortalSettings
from tests.factories import make_customer
from tests.service.test_mail import Inbox, _free_port, _settings

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PORTAL = PortalSettings(log_codes=True)


@pytest.fixture
def writer(engine: Engine) -> Iterator[Session]:
    session = session_factory(engine)()
    yield session
    session.rollback()
    session.close()


def ask(writer: Session, identity: str, now: datetime = NOW, portal: PortalSettings = PORTAL) -> login.CodeRequest:
    request = login.request_code(writer, identity, now, portal)
    writer.commit()
    return request


def check(writer: Session, identity: str, code: str, now: datetime = NOW,
          portal: PortalSettings = PORTAL) -> login.LoginResult:
    result = login.verify_code(writer, identity, code, now, portal)
    writer.commit()  # as the view does: a wrong guess counts even though the login is refused
    return result


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


class TestRequestCode:
    def test_by_phone_in_any_format_and_by_email(self, session: Session, writer: Session) -> None:
        customer = make_customer(session, phone="0912345678", email="an@example.vn")
        by_phone = ask(writer, "+84 912 345 678")
        assert by_phone.customer_id == customer.id and by_phone.identity == "phone:+84912345678"
        assert by_phone.code is not None and len(by_phone.code) == 6 and by_phone.code.isdigit()
        assert by_phone.email_to == "an@example.vn"  # a phone login is e-mailed to the member's address
        by_email = ask(writer, " AN@Example.VN ", NOW + timedelta(minutes=1))
        assert (by_email.customer_id, by_email.identity, by_email.email_to) == (
            customer.id, "email:an@example.vn", "an@example.vn")

    def test_only_a_hash_is_stored(self, session: Session, writer: Session) -> None:
        make_customer(session, phone="0912345678")
        request = ask(writer, "0912345678")
        row = session.scalars(select(PortalLoginCode)).one()
        assert request.code is not None
        assert request.code not in (row.code_hash, row.salt)
        assert row.code_hash == login.hash_code(request.code, row.salt) and len(row.code_hash) == 64
        assert (row.status, row.attempts, row.expires_at) == ("open", 0, NOW + timedelta(minutes=10))

    def test_unknown_identity_gets_the_same_answer_and_nothing_is_stored(self, session: Session,
                                                                        writer: Session) -> None:
        request = ask(writer, "0987654321")
        assert (request.customer_id, request.code) == (None, None)
        assert session.scalar(select(func.count()).select_from(PortalLoginCode)) == 0

    @pytest.mark.parametrize("raw", ["", "   ", "hello", "12", "not@mail", "x" * 300])
    def test_bad_identity_is_refused(self, writer: Session, raw: str) -> None:
        with pytest.raises(ValidationFailed):
            login.request_code(writer, raw, NOW, PORTAL)

    def test_a_new_code_supersedes_the_open_one(self, session: Session, writer: Session) -> None:
        make_customer(session, phone="0912345678")
        first = ask(writer, "0912345678")
        second = ask(writer, "0912345678", NOW + timedelta(minutes=1))
        assert first.code is not None and second.code is not None
        if first.code != second.code:
            assert check(writer, "0912345678", first.code, NOW + timedelta(minutes=2)).refusal == "wrong"
        assert check(writer, "0912345678", second.code, NOW + timedelta(minutes=2)).refusal is None
        statuses = sorted(session.scalars(select(PortalLoginCode.status)))
        assert statuses == ["superseded", "used"]

    def test_rate_limited_per_identity(self, session: Session, writer: Session) -> None:
        make_customer(session, phone="0912345678")
        make_customer(session, phone="0912345679")
        with pytest.raises(login.TooManyCodes) as again:
            ask(writer, "0912345678")
            ask(writer, "0912345678", NOW + timedelta(seconds=10))  # within the 30 s between two codes
        writer.rollback()
        assert again.value.extra["retry_after"] == 20
        for minute in range(1, 5):  # 5 per hour in all
            ask(writer, "0912345678", NOW + timedelta(minutes=minute))
        with pytest.raises(login.TooManyCodes) as hourly:
            ask(writer, "0912345678", NOW + timedelta(minutes=30))
        writer.rollback()
        assert hourly.value.status == 429
        assert hourly.value.extra["retry_after"] == 30 * 60
        ask(writer, "0912345679", NOW + timedelta(minutes=30))  # another member is not affected
        ask(writer, "0912345678", NOW + timedelta(minutes=61))  # the window moved on

    def test_demo_mode_writes_the_code_to_the_log(self, session: Session, writer: Session,
                                                  caplog: pytest.LogCaptureFixture) -> None:
        make_customer(session, phone="0912345678")
        request = ask(writer, "0912345678")
        with caplog.at_level(logging.WARNING, logger="loyalty.portal.login"):
            assert login.deliver(request, Settings(), PORTAL)
        assert request.code is not None and request.code in caplog.text
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="loyalty.portal.login"):
            assert not login.deliver(request, Settings(), PortalSettings(log_codes=False))
        assert request.code not in caplog.text and "no way to reach" in caplog.text


class TestVerifyCode:
    def test_the_right_code_logs_in_once(self, session: Session, writer: Session) -> None:
        customer = make_customer(session, phone="0912345678")
        request = ask(writer, "0912345678")
        assert request.code is not None
        assert check(writer, "0912 345 678", request.code, NOW + timedelta(minutes=9)) == login.LoginResult(
            customer.id)
        assert check(writer, "0912345678", request.code, NOW + timedelta(minutes=9)).refusal == "used"

    def test_expired_code_is_refused(self, session: Session, writer: Session) -> None:
        make_customer(session, phone="0912345678")
        request = ask(writer, "0912345678")
        assert request.code is not None
        assert check(writer, "0912345678", request.code, NOW + timedelta(minutes=10)).refusal == "expired"

    def test_wrong_guesses_lock_the_code(self, session: Session, writer: Session) -> None:
        make_customer(session, phone="0912345678")
        request = ask(writer, "0912345678")
        assert request.code is not None
        for _ in range(4):
            assert check(writer, "0912345678", other_code(request.code)).refusal == "wrong"
        assert check(writer, "0912345678", "12ab56").refusal == "locked"  # counted too: the fifth locks it
        assert check(writer, "0912345678", request.code).refusal == "locked"
        row = session.scalars(select(PortalLoginCode)).one()
        assert (row.status, row.attempts, row.used_at) == ("locked", 5, None)

    def test_no_code_asked_for(self, session: Session, writer: Session) -> None:
        make_customer(session, phone="0912345678")
        assert check(writer, "0912345678", "123456").refusal == "no-code"
        assert check(writer, "nobody@example.vn", "123456").refusal == "no-code"

    def test_another_members_code_does_not_log_in(self, session: Session, writer: Session) -> None:
        make_customer(session, phone="0912345678")
        make_customer(session, phone="0912345679")
        mine = ask(writer, "0912345678")
        assert mine.code is not None
        assert check(writer, "0912345679", mine.code).refusal == "no-code"

    def test_two_racing_logins_with_one_code_get_one_session(self, session: Session, engine: Engine) -> None:
        customer = make_customer(session, phone="0912345678")
        request = run_in_transaction(engine, lambda s: login.request_code(s, "0912345678", NOW, PORTAL))
        assert request.code is not None
        code = request.code
        results: list[login.LoginResult] = []
        barrier = threading.Barrier(4)

        def attempt() -> None:
            barrier.wait()
            results.append(run_in_transaction(engine, lambda s: login.verify_code(s, "0912345678", code, NOW, PORTAL)))

        threads = [threading.Thread(target=attempt) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(str(r.refusal) for r in results) == ["None", "used", "used", "used"]
        assert [r.customer_id for r in results if r.customer_id] == [customer.id]


@pytest.fixture
def mailbox() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) keeping what it accepts, as the survey mail tests use."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


class TestEmailDelivery:
    def test_the_code_is_emailed_through_smtp(self, session: Session, writer: Session,
                                              mailbox: tuple[Inbox, int]) -> None:
        inbox, port = mailbox
        make_customer(session, phone="0912345678", email="an@example.vn")
        request = ask(writer, "0912345678")
        assert request.code is not None
        assert login.deliver(request, _settings(port), PortalSettings(log_codes=False))
        [(to, message)] = inbox.messages
        assert to == ["an@example.vn"] and request.code in str(message["Subject"])
        body = message.get_body(("plain",))
        assert body is not None and request.code in body.get_content()

    def test_a_member_without_an_address_gets_nothing_by_mail(self, session: Session, writer: Session,
                                                              mailbox: tuple[Inbox, int]) -> None:
        inbox, port = mailbox
        make_customer(session, phone="0912345678")
        request = ask(writer, "0912345678")
        assert not login.deliver(request, _settings(port), PortalSettings(log_codes=False))
        assert inbox.messages == []

    def test_a_server_that_is_down_is_logged_not_raised(self, session: Session, writer: Session,
                                                        caplog: pytest.LogCaptureFixture) -> None:
        make_customer(session, phone="0912345678", email="an@example.vn")
        request = ask(writer, "0912345678")
        with caplog.at_level(logging.WARNING, logger="loyalty.portal.login"):
            assert not login.deliver(request, _settings(_free_port()), PortalSettings(log_codes=False))
        assert "not e-mailed" in caplog.text and request.code is not None and request.code not in caplog.text
