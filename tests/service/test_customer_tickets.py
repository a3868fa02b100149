"""A customer follows their own tickets through a signed link: theirs only, never another's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from loyalty.models.service import ServiceSecret
from tests.factories import auth, make_customer, make_key, make_store
from tests.readers import count
from tests.service.helpers import assert_problem, make_staff, staff_key
from tests.service.test_tickets import _open, _respond


@pytest.fixture
def desk(session: Session) -> dict[str, Any]:
    make_store(session, "HN01")
    lan = make_staff(session, "agent", ("HN01",), name="Lan")
    return {"customer": make_customer(session).id, "admin": make_key(session), "lan_key": staff_key(session, lan)}


def _link(client: TestClient, key: str, customer: int, days: int = 30) -> Any:
    return client.post(f"/v1/customers/{customer}/ticket-link", json={"days": days}, headers=auth(key))


def test_a_customer_sees_their_tickets_and_the_replies_and_nothing_else(
        client: TestClient, session: Session, desk: dict[str, Any]) -> None:
    other = make_customer(session).id
    mine = _open(client, desk["admin"], desk["customer"]).json()["id"]
    theirs = _open(client, desk["admin"], other, subject="Không được cộng điểm").json()["id"]
    assert _respond(client, desk["lan_key"], mine).status_code == 200
    link = _link(client, desk["lan_key"], desk["customer"])
    assert link.status_code == 201, link.text
    assert link.json()["url"].endswith(f"/v1/customer-tickets/{link.json()['token']}")
    page = client.get(f"/v1/customer-tickets/{link.json()['token']}")  # no API key: the link is the key
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["customer_id"] == desk["customer"]
    assert [t["id"] for t in body["tickets"]] == [mine]
    assert body["tickets"][0]["replies"][0]["note"] == "Xin lỗi anh/chị, chúng tôi đã xử lý."
    assert "owner_id" not in body["tickets"][0]  # no staff internals
    other_link = _link(client, desk["admin"], other).json()["token"]
    assert [t["id"] for t in client.get(f"/v1/customer-tickets/{other_link}").json()["tickets"]] == [theirs]


def test_forged_and_expired_links_are_refused(client: TestClient, desk: dict[str, Any]) -> None:
    token = _link(client, desk["admin"], desk["customer"], days=1).json()["token"]
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert assert_problem(client.get(f"/v1/customer-tickets/{forged}"), 404)["type"].endswith("invalid-link")
    later = datetime.now(UTC) + timedelta(days=1, minutes=1)
    with patch("loyalty.service.tokens.utcnow", return_value=later):
        assert assert_problem(client.get(f"/v1/customer-tickets/{token}"), 410)["type"].endswith("link-expired")


def test_only_service_staff_make_links_and_only_for_real_customers(
        client: TestClient, session: Session, desk: dict[str, Any]) -> None:
    readonly = make_key(session, "readonly")
    assert _link(client, readonly, desk["customer"]).status_code == 403
    assert _link(client, desk["admin"], 999_999).status_code == 404
    assert _link(client, desk["admin"], desk["customer"], days=0).status_code == 422
    assert count(session, ServiceSecret) <= 1
