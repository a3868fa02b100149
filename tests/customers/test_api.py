"""Customers over HTTP: create, read, change, look up, and the refusals an integrator relies on."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.models import Customer, CustomerIdentity, MemberBalance
from tests.factories import auth, make_customer, make_key, make_store

PROBLEM = "application/problem+json"


def _create(client: TestClient, key: str, **body: Any) -> Any:
    return client.post("/v1/customers", json=body, headers=auth(key))


class TestCreate:
    def test_creates_a_customer_with_every_identity_normalised(self, client: TestClient, session: Session) -> None:
        make_store(session)
        key = make_key(session)
        response = _create(client, key, phone="0912 345 678", email="An@Example.com", card="vip 0001",
                            external_ids=[{"namespace": "shopee", "value": "u-77"}], name="Nguyễn Văn An",
                            birthday="1990-05-17", gender="male", city="Hà Nội", preferred_channel="zalo",
                            consents={"zalo": True}, enrolled_store_id="HN01")
        assert response.status_code == 201, response.text
        body = response.json()
        assert response.headers["Location"] == f"/v1/customers/{body['id']}"
        assert body["identities"] == {"phone": "+84912345678", "email": "an@example.com", "cards": ["VIP0001"],
                                      "external_ids": [{"namespace": "shopee", "value": "u-77"}]}
        assert body["consents"] == {"email": False, "sms": False, "zalo": True, "phone": False}
        assert (body["name"], body["birthday"], body["enrolled_store_id"]) == ("Nguyễn Văn An", "1990-05-17", "HN01")
        balance = session.get(MemberBalance, body["id"])
        assert balance is not None and (balance.available, balance.owed) == (0, 0)

    def test_identity_owned_by_another_customer_is_409_and_nothing_written(
        self, client: TestClient, session: Session,
    ) -> None:
        owner = make_customer(session, phone="0912345678")
        key = make_key(session)
        response = _create(client, key, phone="+84 912 345 678", email="new@example.com")
        assert response.status_code == 409
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["customer_id"] == owner.id
        assert session.scalar(select(func.count()).select_from(Customer)) == 1
        assert session.scalar(select(func.count()).select_from(CustomerIdentity)
                              .where(CustomerIdentity.kind == "email")) == 0

    @pytest.mark.parametrize("field", [{"points": 1000}, {"tier": "gold"}, {"id": 7}, {"available": 5},
                                       {"created_at": "2020-01-01T00:00:00Z"}])
    def test_mass_assignment_is_refused(self, client: TestClient, session: Session, field: dict[str, Any]) -> None:
        key = make_key(session)
        response = _create(client, key, phone="0912345678", **field)
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert next(iter(field)) in response.json()["detail"]
        assert session.scalar(select(func.count()).select_from(Customer)) == 0

    def test_bad_phone_is_a_422_problem(self, client: TestClient, session: Session) -> None:
        key = make_key(session)
        response = _create(client, key, phone="12ab")
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        body = response.json()
        assert body["status"] == 422 and "12ab" in body["detail"] and body["type"].endswith("/validation-error")

    def test_needs_an_identity(self, client: TestClient, session: Session) -> None:
        response = _create(client, make_key(session), name="Không Tên")
        assert response.status_code == 422
        assert "identity" in response.json()["detail"]

    def test_the_same_identity_twice_in_one_body_is_refused(self, client: TestClient, session: Session) -> None:
        response = _create(client, make_key(session), phone="0912345678",
                           external_ids=[{"namespace": "a", "value": "1"}, {"namespace": "a", "value": "1"}])
        assert response.status_code == 422

    def test_unknown_enrolment_store_is_refused(self, client: TestClient, session: Session) -> None:
        response = _create(client, make_key(session), phone="0912345678", enrolled_store_id="NOPE")
        assert response.status_code == 422
        assert session.scalar(select(func.count()).select_from(Customer)) == 0


class TestGet:
    def test_returns_the_profile(self, client: TestClient, session: Session) -> None:
        customer = make_customer(session, phone="0912345678", email="an@example.com")
        response = client.get(f"/v1/customers/{customer.id}", headers=auth(make_key(session, "readonly")))
        assert response.status_code == 200
        assert response.json()["id"] == customer.id
        assert response.json()["identities"]["email"] == "an@example.com"

    def test_unknown_is_404_problem(self, client: TestClient, session: Session) -> None:
        response = client.get("/v1/customers/999999", headers=auth(make_key(session)))
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM


class TestPatch:
    def test_changes_only_the_fields_given(self, client: TestClient, session: Session) -> None:
        customer = make_customer(session, phone="0912345678", city="Hà Nội", gender="female")
        response = client.patch(f"/v1/customers/{customer.id}", json={"name": "Lê Thị Cúc"},
                                headers=auth(make_key(session)))
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["name"], body["city"], body["gender"]) == ("Lê Thị Cúc", "Hà Nội", "female")
        assert body["identities"]["phone"] == "+84912345678"

    def test_a_new_phone_replaces_the_old(self, client: TestClient, session: Session) -> None:
        customer = make_customer(session, phone="0912345678")
        response = client.patch(f"/v1/customers/{customer.id}", json={"phone": "0987 654 321"},
                                headers=auth(make_key(session)))
        assert response.status_code == 200
        assert response.json()["identities"]["phone"] == "+84987654321"
        old = client.get("/v1/customers", params={"phone": "0912345678"}, headers=auth(make_key(session)))
        assert old.status_code == 404

    def test_cards_accumulate(self, client: TestClient, session: Session) -> None:
        customer = make_customer(session, card="CARD-0001")
        response = client.patch(f"/v1/customers/{customer.id}", json={"card": "card-0002"},
                                headers=auth(make_key(session)))
        assert response.json()["identities"]["cards"] == ["CARD-0001", "CARD-0002"]

    def test_one_consent_changes_without_resetting_the_others(self, client: TestClient, session: Session) -> None:
        customer = make_customer(session, consents={"email": True, "zalo": True})
        response = client.patch(f"/v1/customers/{customer.id}", json={"consents": {"sms": True}},
                                headers=auth(make_key(session)))
        assert response.status_code == 200
        assert response.json()["consents"] == {"email": True, "sms": True, "zalo": True, "phone": False}

    def test_taking_another_customers_phone_is_409_and_changes_nothing(
        self, client: TestClient, session: Session,
    ) -> None:
        make_customer(session, phone="0912345678")
        customer = make_customer(session, phone="0987654321")
        response = client.patch(f"/v1/customers/{customer.id}", json={"phone": "84912345678", "name": "X"},
                                headers=auth(make_key(session)))
        assert response.status_code == 409
        session.expire_all()
        assert client.get("/v1/customers", params={"phone": "0987654321"},
                          headers=auth(make_key(session))).json()["id"] == customer.id
        refreshed = session.get(Customer, customer.id)
        assert refreshed is not None and refreshed.name == "Nguyễn Văn An"

    def test_points_cannot_be_patched(self, client: TestClient, session: Session) -> None:
        customer = make_customer(session)
        response = client.patch(f"/v1/customers/{customer.id}", json={"points": 10**6},
                                headers=auth(make_key(session)))
        assert response.status_code == 422
        assert session.get(MemberBalance, customer.id).available == 0  # type: ignore[union-attr]

    def test_unknown_customer_is_404(self, client: TestClient, session: Session) -> None:
        response = client.patch("/v1/customers/424242", json={"name": "X"}, headers=auth(make_key(session)))
        assert response.status_code == 404


class TestLookup:
    @pytest.fixture
    def customer_id(self, session: Session) -> int:
        return make_customer(session, phone="0912345678", email="an@example.com", card="VIP-1",
                             external_ids=[{"namespace": "shopee", "value": "u-1"}]).id

    @pytest.mark.parametrize("params", [
        {"phone": "0912 345 678"}, {"phone": "+84912345678"}, {"phone": "84912345678"},
        {"email": "AN@example.com"}, {"card": "vip-1"}, {"external_id": "u-1", "namespace": "shopee"},
    ])
    def test_by_any_identity(self, client: TestClient, session: Session, customer_id: int,
                             params: dict[str, str]) -> None:
        response = client.get("/v1/customers", params=params, headers=auth(make_key(session, "readonly")))
        assert response.status_code == 200, response.text
        assert response.json()["id"] == customer_id

    def test_no_match_is_404(self, client: TestClient, session: Session, customer_id: int) -> None:
        response = client.get("/v1/customers", params={"phone": "0987654321"}, headers=auth(make_key(session)))
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM

    @pytest.mark.parametrize("params", [{}, {"phone": "0912345678", "email": "an@example.com"},
                                        {"phone": "not a phone"}, {"external_id": "u-1"}])
    def test_bad_lookups_are_422(self, client: TestClient, session: Session, customer_id: int,
                                 params: dict[str, str]) -> None:
        response = client.get("/v1/customers", params=params, headers=auth(make_key(session)))
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
