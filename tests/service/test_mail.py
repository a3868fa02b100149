"""Survey invitations by e-mail through a real SMTP server (aiosmtpd on 127.0.0.1): once, with consent, retried."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pydantic import ValidationError
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from loyalty.config import Settings, get_settings
from loyalty.db import run_in_transaction, session_factory
from loyalty.models import Customer
from loyalty.models.service import Interaction, SurveyInvitation
from loyalty.service import mail, surveys, tokens
from loyalty.service.jobs import send_survey_emails
from loyalty.service.schemas import InviteIn, SurveyIn
from tests.factories import make_customer, make_store


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps what it accepted and refuses the addresses it is told to."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _settings(port: int, **extra: Any) -> Settings:
    return Settings(smtp_host="127.0.0.1", smtp_port=port, mail_from="Cửa hàng <khaosat@shop.vn>",
                    smtp_timeout_seconds=5, **extra)


NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@pytest.fixture
def desk(engine: Engine, session: Session) -> dict[str, Any]:
    make_store(session, "HN01")
    survey_id = run_in_transaction(engine, lambda s: surveys.create_survey(
        s, SurveyIn(name="Sau mua hàng", kind="nps"), NOW).id)
    return {"survey": survey_id}


def _invite(engine: Engine, survey_id: int, customer_id: int, at: datetime = NOW) -> int:
    return run_in_transaction(engine, lambda s: surveys.invite(
        s, survey_id, InviteIn(customer_id=customer_id, store_id="HN01"), "test", at).id)


def _customer(session: Session, address: str | None = "lan@example.vn", consent: bool = True) -> int:
    extra: dict[str, Any] = {"email": address} if address else {}
    return make_customer(session, name="Trần Thị Lan", consents={"email": consent}, **extra).id


def _send(engine: Engine, settings: Settings, at: datetime = NOW + timedelta(minutes=1)) -> int:
    return run_in_transaction(engine, lambda s: send_survey_emails(s, at, settings))


def _invitation(engine: Engine, invitation_id: int) -> SurveyInvitation:
    with session_factory(engine)() as s:
        found = s.get_one(SurveyInvitation, invitation_id)
        s.expunge(found)
        return found


def _token(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    link = next(line for line in text.splitlines() if "/s/" in line and "lang=" not in line)
    return link.strip().rsplit("/s/", 1)[1]


class TestDelivery:
    def test_a_due_invitation_arrives_once_with_a_link_that_verifies(
            self, engine: Engine, session: Session, desk: dict[str, Any], smtp_server: tuple[Inbox, int]) -> None:
        inbox, port = smtp_server
        customer = _customer(session)
        invitation = _invite(engine, desk["survey"], customer)

        assert _send(engine, _settings(port)) == 1
        assert len(inbox.messages) == 1
        recipients, message = inbox.messages[0]
        assert recipients == ["lan@example.vn"]
        assert message["Subject"] == mail.SUBJECT
        assert "khaosat@shop.vn" in message["From"] and "lan@example.vn" in message["To"]
        assert message["Message-ID"].startswith(f"<survey-invitation-{invitation}.")
        plain, html = message.get_body(("plain",)), message.get_body(("html",))
        assert plain is not None and html is not None
        assert "Xin chào Trần Thị Lan" in plain.get_content() and "English:" in plain.get_content()
        token = _token(message)
        assert f"http://127.0.0.1:8000/s/{token}" in html.get_content()
        with session_factory(engine)() as s:
            assert tokens.read(s, token)[0] == invitation
            opened, _ = surveys.open_invitation(s, token, NOW + timedelta(minutes=2))
            assert opened.id == invitation

        with session_factory(engine)() as s:
            assert surveys.invitation_out(s, s.get_one(SurveyInvitation, invitation)).sent_at is not None
        sent = _invitation(engine, invitation)
        assert sent.sent_at is not None and sent.send_attempts == 1 and sent.sending_until is None
        assert _send(engine, _settings(port), NOW + timedelta(hours=1)) == 0  # next run: nothing again
        assert len(inbox.messages) == 1
        session.expire_all()
        notes = session.scalars(select(Interaction.note).where(Interaction.customer_id == customer)).all()
        assert notes == [f"survey invitation {invitation} e-mailed"]

    def test_only_customers_with_consent_and_an_address_are_mailed(
            self, engine: Engine, session: Session, desk: dict[str, Any], smtp_server: tuple[Inbox, int]) -> None:
        inbox, port = smtp_server
        withdrawn = _customer(session, "an@example.vn")
        invitation = _invite(engine, desk["survey"], withdrawn)
        run_in_transaction(engine, lambda s: s.execute(update(Customer).where(Customer.id == withdrawn)
                                                       .values(consent_email=False)))
        no_address = _customer(session, address=None)
        _invite(engine, desk["survey"], no_address)

        assert _send(engine, _settings(port)) == 0
        assert inbox.messages == []
        assert _invitation(engine, invitation).sent_at is None  # still listed for integrations

    def test_not_yet_due_expired_or_answered_invitations_are_not_mailed(
            self, engine: Engine, session: Session, desk: dict[str, Any], smtp_server: tuple[Inbox, int]) -> None:
        inbox, port = smtp_server
        later = _invite(engine, desk["survey"], _customer(session, "a@example.vn"))
        run_in_transaction(engine, lambda s: s.execute(update(SurveyInvitation).where(SurveyInvitation.id == later)
                                                       .values(send_after=NOW + timedelta(hours=2))))
        assert _send(engine, _settings(port)) == 0
        assert _send(engine, _settings(port), NOW + timedelta(hours=2)) == 1
        _invite(engine, desk["survey"], _customer(session, "b@example.vn"))
        assert _send(engine, _settings(port), NOW + timedelta(days=15)) == 0  # the link expired after 14 days
        assert len(inbox.messages) == 1

    def test_at_most_the_configured_number_per_run(
            self, engine: Engine, session: Session, desk: dict[str, Any], smtp_server: tuple[Inbox, int]) -> None:
        inbox, port = smtp_server
        for n in range(5):
            _invite(engine, desk["survey"], _customer(session, f"k{n}@example.vn"))
        settings = _settings(port, mail_invitations_per_run=2)
        assert [_send(engine, settings) for _ in range(4)] == [2, 2, 1, 0]
        assert sorted(r[0] for r, _ in inbox.messages) == sorted(f"k{n}@example.vn" for n in range(5))


class TestFailures:
    def test_a_refused_recipient_stays_unsent_and_goes_out_on_the_next_run(
            self, engine: Engine, session: Session, desk: dict[str, Any], smtp_server: tuple[Inbox, int]) -> None:
        inbox, port = smtp_server
        bad = _invite(engine, desk["survey"], _customer(session, "full@example.vn"))
        good = _invite(engine, desk["survey"], _customer(session, "ok@example.vn"))
        inbox.refuse.add("full@example.vn")

        assert _send(engine, _settings(port)) == 1  # the other one still goes out
        failed = _invitation(engine, bad)
        assert failed.sent_at is None and failed.send_attempts == 1 and failed.sending_until is None
        assert failed.last_error is not None and "550" in failed.last_error
        assert _invitation(engine, good).sent_at is not None

        inbox.refuse.clear()
        assert _send(engine, _settings(port), NOW + timedelta(minutes=5)) == 1
        assert [r for r, _ in inbox.messages] == [["ok@example.vn"], ["full@example.vn"]]
        assert _invitation(engine, bad).last_error is None

    def test_a_server_that_is_down_loses_nothing(
            self, engine: Engine, session: Session, desk: dict[str, Any], smtp_server: tuple[Inbox, int]) -> None:
        inbox, port = smtp_server
        first = _invite(engine, desk["survey"], _customer(session, "x@example.vn"))
        second = _invite(engine, desk["survey"], _customer(session, "y@example.vn"))

        assert _send(engine, _settings(_free_port())) == 0  # nobody listens there
        assert _invitation(engine, first).send_attempts == 1 and _invitation(engine, first).last_error
        untried = _invitation(engine, second)
        assert untried.send_attempts == 0 and untried.sending_until is None  # given back, not counted

        assert _send(engine, _settings(port), NOW + timedelta(minutes=5)) == 2
        assert len(inbox.messages) == 2

    def test_a_claimed_invitation_is_not_taken_by_a_second_sender(
            self, engine: Engine, session: Session, desk: dict[str, Any]) -> None:
        _invite(engine, desk["survey"], _customer(session))
        at = NOW + timedelta(minutes=1)
        assert len(run_in_transaction(engine, lambda s: mail.claim_due(s, at, 10))) == 1
        assert run_in_transaction(engine, lambda s: mail.claim_due(s, at, 10)) == []
        # A sender that died: its claim lapses and the invitation is due again.
        assert len(run_in_transaction(engine, lambda s: mail.claim_due(s, at + mail.CLAIM, 10))) == 1


class TestConfiguration:
    def test_a_host_needs_a_sender_address(self) -> None:
        with pytest.raises(ValidationError, match="LOYALTY_MAIL_FROM"):
            Settings(smtp_host="127.0.0.1")

    def test_loyalty_jobs_sends_only_when_a_host_is_set(
            self, engine: Engine, session: Session, desk: dict[str, Any], smtp_server: tuple[Inbox, int],
            monkeypatch: pytest.MonkeyPatch) -> None:
        from loyalty.jobs import run_jobs

        inbox, port = smtp_server
        _invite(engine, desk["survey"], _customer(session))
        at = NOW + timedelta(minutes=1)
        get_settings.cache_clear()
        monkeypatch.delenv("LOYALTY_SMTP_HOST", raising=False)
        assert "e-mail survey invitations" not in {r.name for r in run_jobs(engine, at)}
        monkeypatch.setenv("LOYALTY_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("LOYALTY_SMTP_PORT", str(port))
        monkeypatch.setenv("LOYALTY_MAIL_FROM", "khaosat@shop.vn")
        get_settings.cache_clear()
        try:
            results = {r.name: r.count for r in run_jobs(engine, at)}
        finally:
            monkeypatch.undo()
            get_settings.cache_clear()
        assert results["e-mail survey invitations"] == 1 and len(inbox.messages) == 1
