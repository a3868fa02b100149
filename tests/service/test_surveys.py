"""Surveys: invitations by hand and after purchases, signed expiring links, answers once, detractor tickets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty.db import run_in_transaction, session_factory
from loyalty.errors import LoyaltyError
from loyalty.models.service import StaffMember, Survey, SurveyInvitation, SurveyResponse, Ticket
from loyalty.service import surveys, tokens
from loyalty.timeutil import utcnow
from tests.factories import auth, make_customer, make_key, make_purchase, make_store
from tests.readers import count, reading
from tests.service.helpers import assert_problem, make_staff


def _survey(client: TestClient, key: str, **fields: Any) -> dict[str, Any]:
    body = {"name": "Sau mua hàng", "kind": "nps", **fields}
    response = client.post("/v1/surveys", json=body, headers=auth(key))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture
def setup(client: TestClient, session: Session) -> dict[str, Any]:
    make_store(session, "HN01")
    make_staff(session, "agent", ("HN01",), name="Lan")
    key = make_key(session)
    customer = make_customer(session, consents={"email": True}).id
    survey = _survey(client, key)
    response = client.post(f"/v1/surveys/{survey['id']}/invitations",
                           json={"customer_id": customer, "store_id": "HN01"}, headers=auth(key))
    assert response.status_code == 201, response.text
    invitation = response.json()
    return {"key": key, "customer": customer, "survey": survey, "invitation": invitation,
            "token": invitation["link"].rsplit("/", 1)[1]}


def _answer(client: TestClient, token: str, score: int | None, comment: str = "", **extra: Any) -> Any:
    return client.post("/v1/survey-answers", json={"token": token, "score": score, "comment": comment, **extra})


class TestLinks:
    def test_the_link_points_at_the_answer_page(self, setup: dict[str, Any]) -> None:
        assert setup["invitation"]["link"].startswith("http://127.0.0.1:8000/s/")

    def test_a_forged_token_is_refused(self, client: TestClient, setup: dict[str, Any]) -> None:
        token = setup["token"]
        forged = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
        body = assert_problem(_answer(client, forged, 9), 404)
        assert body["type"].endswith("/invalid-link")
        assert count_answers(client) == 0

    def test_a_token_signed_with_another_secret_is_refused(self, client: TestClient, setup: dict[str, Any]) -> None:
        from itsdangerous import URLSafeTimedSerializer

        other = URLSafeTimedSerializer("not-our-secret", salt=tokens.SALT).dumps({"i": setup["invitation"]["id"]})
        assert_problem(_answer(client, other, 9), 404)

    def test_an_expired_link_is_refused(self, client: TestClient, engine: Engine, setup: dict[str, Any]) -> None:
        run_in_transaction(engine, lambda s: s.execute(update(SurveyInvitation).values(
            expires_at=utcnow() - timedelta(minutes=1))))
        body = assert_problem(_answer(client, setup["token"], 9), 410)
        assert body["type"].endswith("/link-expired")

    def test_the_signature_age_counts_too(self, engine: Engine, setup: dict[str, Any]) -> None:
        later = utcnow() + timedelta(days=14, seconds=1)
        with session_factory(engine)() as session, pytest.raises(tokens.LinkExpired):
            surveys.open_invitation(session, setup["token"], later)
        with session_factory(engine)() as session:
            surveys.open_invitation(session, setup["token"], later - timedelta(seconds=5))

    def test_answering_twice_is_refused(self, client: TestClient, setup: dict[str, Any]) -> None:
        assert _answer(client, setup["token"], 9).status_code == 201
        body = assert_problem(_answer(client, setup["token"], 10), 409)
        assert body["type"].endswith("/already-answered")

    def test_the_database_refuses_a_second_answer(self, engine: Engine, setup: dict[str, Any],
                                                 client: TestClient) -> None:
        assert _answer(client, setup["token"], 9).status_code == 201
        with session_factory(engine)() as session, pytest.raises(IntegrityError):
            session.add(SurveyResponse(invitation_id=setup["invitation"]["id"], survey_id=setup["survey"]["id"],
                                       kind="nps", customer_id=setup["customer"], store_id=None, channel="email",
                                       score=3, comment="", answers="{}", language="vi", created_at=utcnow()))
            session.commit()


def count_answers(client: TestClient) -> int:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with session_factory(engine)() as session:
        return len(session.query(SurveyResponse).all())


class TestAnswers:
    @pytest.mark.parametrize("score", [-1, 11, None])
    def test_nps_score_out_of_range_writes_nothing(self, client: TestClient, setup: dict[str, Any],
                                                   score: int | None) -> None:
        body = assert_problem(_answer(client, setup["token"], score), 422)
        assert "0 to 10" in body["detail"]
        assert count_answers(client) == 0

    def test_csat_takes_1_to_5(self, client: TestClient, setup: dict[str, Any]) -> None:
        csat = _survey(client, setup["key"], kind="csat", name="CSAT")
        invitation = client.post(f"/v1/surveys/{csat['id']}/invitations", json={"customer_id": setup["customer"]},
                                 headers=auth(setup["key"])).json()
        token = invitation["link"].rsplit("/", 1)[1]
        assert_problem(_answer(client, token, 0), 422)
        assert_problem(_answer(client, token, 6), 422)
        assert _answer(client, token, 4).json()["ticket_id"] is None

    def test_a_promoter_opens_no_ticket(self, client: TestClient, session: Session, setup: dict[str, Any]) -> None:
        body = _answer(client, setup["token"], 9, "Nhân viên thân thiện").json()
        assert (body["score"], body["ticket_id"]) == (9, None)
        assert count(session, Ticket) == 0

    def test_a_detractor_opens_an_assigned_ticket(self, client: TestClient, session: Session,
                                                  setup: dict[str, Any]) -> None:
        body = _answer(client, setup["token"], 2, "Giao hàng chậm quá").json()
        assert body["ticket_id"] is not None
        with reading(session) as reader:
            ticket = reader.get(Ticket, body["ticket_id"])
            assert ticket is not None
            assert (ticket.channel, ticket.priority, ticket.status, ticket.store_id) == ("survey", "high", "assigned",
                                                                                         "HN01")
            assert ticket.description == "Giao hàng chậm quá" and ticket.survey_response_id == body["id"]

    def test_a_custom_form(self, client: TestClient, setup: dict[str, Any]) -> None:
        custom = _survey(client, setup["key"], kind="custom", name="Góp ý", fields=[
            {"name": "visit", "label": "Lý do ghé", "type": "choice", "choices": ["mua", "xem"], "required": True},
            {"name": "idea", "label": "Ý tưởng", "type": "text"}])
        invitation = client.post(f"/v1/surveys/{custom['id']}/invitations", json={"customer_id": setup["customer"]},
                                 headers=auth(setup["key"])).json()
        token = invitation["link"].rsplit("/", 1)[1]
        assert_problem(_answer(client, token, None, answers={"visit": "bay"}), 422)
        assert_problem(_answer(client, token, None, answers={"idea": "x"}), 422)
        assert_problem(_answer(client, token, 5, answers={"visit": "mua"}), 422)
        assert _answer(client, token, None, answers={"visit": "mua", "idea": "thêm ghế"}).status_code == 201


class TestInvitations:
    def test_by_hand_needs_consent_for_messages(self, client: TestClient, session: Session,
                                                setup: dict[str, Any]) -> None:
        silent = make_customer(session).id
        url = f"/v1/surveys/{setup['survey']['id']}/invitations"
        assert_problem(client.post(url, json={"customer_id": silent}, headers=auth(setup["key"])), 409)
        assert client.post(url, json={"customer_id": silent, "channel": "store"},
                           headers=auth(setup["key"])).status_code == 201

    @pytest.mark.parametrize(("body", "status"), [({"customer_id": 999_999}, 404),
                                                  ({"customer_id": 1, "store_id": "NOPE"}, 404)])
    def test_unknown_customer_or_store(self, client: TestClient, setup: dict[str, Any], body: dict[str, Any],
                                       status: int) -> None:
        assert_problem(client.post(f"/v1/surveys/{setup['survey']['id']}/invitations", json=body,
                                   headers=auth(setup["key"])), status)

    def test_unknown_survey(self, client: TestClient, setup: dict[str, Any]) -> None:
        assert_problem(client.post("/v1/surveys/999/invitations", json={"customer_id": setup["customer"]},
                                   headers=auth(setup["key"])), 404)


class TestAfterPurchase:
    """delay 2 h, everyone sampled, 30-day cool-down, e-mail consent."""

    @pytest.fixture
    def buyers(self, client: TestClient, session: Session) -> dict[str, Any]:
        make_store(session, "HN01")
        key = make_key(session)
        survey = _survey(client, key, after_purchase=True, delay_hours=2, cooldown_days=30)
        yes = make_customer(session, consents={"email": True}).id
        no = make_customer(session).id
        now = datetime.now(UTC) - timedelta(days=40)  # room for a later purchase that is not in the future
        for customer in (yes, no):
            make_purchase(session, customer, 200_000, occurred_at=now - timedelta(hours=3))
            make_purchase(session, customer, 300_000, occurred_at=now - timedelta(hours=2, minutes=30))
        return {"key": key, "survey": survey, "yes": yes, "no": no, "now": now}

    def _run(self, engine: Engine, now: datetime) -> int:
        return run_in_transaction(engine, lambda s: surveys.trigger_after_purchase(s, now))

    def test_invites_consenting_buyers_once_after_the_delay(self, engine: Engine, session: Session,
                                                            buyers: dict[str, Any]) -> None:
        assert self._run(engine, buyers["now"] - timedelta(hours=2)) == 0  # nobody's delay has passed yet
        assert self._run(engine, buyers["now"]) == 1
        assert self._run(engine, buyers["now"]) == 0  # idempotent
        assert self._run(engine, buyers["now"] + timedelta(days=3)) == 0  # cool-down
        with reading(session) as reader:
            invitation = reader.query(SurveyInvitation).one()
            assert invitation.customer_id == buyers["yes"] and invitation.store_id == "HN01"
            assert invitation.transaction_id is not None

    def test_after_the_cool_down_a_new_purchase_is_invited_again(self, engine: Engine, session: Session,
                                                                  buyers: dict[str, Any]) -> None:
        self._run(engine, buyers["now"])
        later = buyers["now"] + timedelta(days=31)
        make_purchase(session, buyers["yes"], 100_000, occurred_at=later - timedelta(hours=3))
        assert self._run(engine, later) == 1

    def test_sampling_takes_about_the_asked_share(self, client: TestClient, engine: Engine, session: Session) -> None:
        make_store(session, "HN01")
        _survey(client, make_key(session), after_purchase=True, delay_hours=0, sample_percent=30, cooldown_days=0)
        now = datetime.now(UTC)
        for _ in range(200):
            make_purchase(session, make_customer(session, consents={"email": True}).id, 100_000,
                          occurred_at=now - timedelta(minutes=5))
        invited = self._run(engine, now)
        assert 40 <= invited <= 80  # deterministic hash of the purchase id: about 60 of 200

    def test_the_job_runs_in_loyalty_jobs(self, engine: Engine, buyers: dict[str, Any]) -> None:
        from loyalty.jobs import run_jobs

        results = {r.name: r.count for r in run_jobs(engine, buyers["now"])}
        assert results["invite buyers to surveys"] == 1 and results["mark SLA breaches"] == 0


def test_loyalty_error_hierarchy() -> None:
    assert issubclass(tokens.InvalidLink, LoyaltyError) and tokens.LinkExpired.status == 410


@pytest.mark.parametrize("name", [" ", "\u00a0", "\u001c", "\t\n"])
def test_a_blank_survey_or_staff_name_is_422_and_writes_nothing(client: TestClient, session: Session,
                                                                name: str) -> None:
    key = make_key(session)
    survey = client.post("/v1/surveys", json={"name": name, "kind": "nps"}, headers=auth(key))
    body = assert_problem(survey, 422)
    assert body["errors"] == [{"field": "name", "message": "must not be empty"}]
    staff = client.post("/v1/staff", json={"name": name, "email": "lan@shop.vn", "role": "agent"},
                        headers=auth(key))
    assert_problem(staff, 422)
    assert (count(session, Survey), count(session, StaffMember)) == (0, 0)
    # Around a real name the blanks are dropped.
    assert _survey(client, key, name="  Sau mua  ")["name"] == "Sau mua"
