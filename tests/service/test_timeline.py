"""Interactions and the customer timeline: every touchpoint in time order, paginated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from loyalty.models.service import Interaction
from tests.factories import auth, make_customer, make_key, make_purchase, make_store
from tests.readers import count
from tests.service.helpers import assert_problem, make_staff, staff_key

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def world(session: Session) -> dict[str, Any]:
    make_store(session, "HN01")
    lan = make_staff(session, "agent", ("HN01",), name="Lan")
    return {"customer": make_customer(session).id, "admin": make_key(session), "lan": lan,
            "lan_key": staff_key(session, lan)}


def _interaction(client: TestClient, key: str, customer: int, **fields: Any) -> Any:
    body = {"kind": "call", "channel": "phone", "note": "Hỏi về điểm thưởng", **fields}
    return client.post(f"/v1/customers/{customer}/interactions", json=body, headers=auth(key))


class TestInteractions:
    def test_records_who_handled_it(self, client: TestClient, world: dict[str, Any]) -> None:
        response = _interaction(client, world["lan_key"], world["customer"], occurred_at=T0.isoformat())
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["staff_id"], body["kind"], body["channel"]) == (world["lan"], "call", "phone")
        assert datetime.fromisoformat(body["occurred_at"]) == T0

    @pytest.mark.parametrize(("customer", "fields", "status"), [
        (999_999, {}, 404), (None, {"store_id": "NOPE"}, 404), (None, {"staff_id": 999}, 404),
        (None, {"kind": "telepathy"}, 422), (None, {"note": "x" * 501}, 422),
        (None, {"occurred_at": "2026-11-01T10:00:00"}, 422),
    ])
    def test_bad_input_writes_nothing(self, client: TestClient, session: Session, world: dict[str, Any],
                                      customer: int | None, fields: dict[str, Any], status: int) -> None:
        assert_problem(_interaction(client, world["admin"], customer or world["customer"], **fields), status)
        assert count(session, Interaction) == 0

    def test_readonly_keys_cannot_write(self, client: TestClient, session: Session, world: dict[str, Any]) -> None:
        assert_problem(_interaction(client, make_key(session, "readonly"), world["customer"]), 403)


class TestTimeline:
    def test_merges_everything_newest_first(self, client: TestClient, session: Session,
                                            world: dict[str, Any]) -> None:
        customer = world["customer"]
        make_purchase(session, customer, 500_000, occurred_at=T0)
        _interaction(client, world["lan_key"], customer, occurred_at=(T0 + timedelta(hours=1)).isoformat())
        _interaction(client, world["admin"], customer, kind="email", channel="email", note="Gửi hoá đơn",
                     occurred_at=(T0 - timedelta(days=1)).isoformat())
        client.post("/v1/tickets", json={"customer_id": customer, "store_id": "HN01", "category": "points",
                                         "subject": "Thiếu điểm", "description": "Chưa thấy điểm"},
                    headers=auth(world["admin"]))
        items = client.get(f"/v1/customers/{customer}/timeline", headers=auth(world["admin"])).json()["items"]
        types = [i["type"] for i in items]
        assert sorted(types) == sorted(["complaint", "points", "interaction", "purchase", "interaction"])
        times = [datetime.fromisoformat(i["at"]) for i in items]
        assert times == sorted(times, reverse=True)
        call = next(i for i in items if i["type"] == "interaction" and i["kind"] == "call")
        assert call["handled_by"] == "Lan" and call["channel"] == "phone"
        purchase = next(i for i in items if i["type"] == "purchase")
        assert purchase["amount"] == 500_000 and purchase["store_id"] == "HN01"
        assert items[-1]["kind"] == "email"

    def test_pages(self, client: TestClient, world: dict[str, Any]) -> None:
        for hour in range(5):
            _interaction(client, world["admin"], world["customer"],
                         occurred_at=(T0 + timedelta(hours=hour)).isoformat())
        url = f"/v1/customers/{world['customer']}/timeline"
        first = client.get(f"{url}?limit=2", headers=auth(world["admin"])).json()
        second = client.get(f"{url}?limit=2&offset={first['next_offset']}", headers=auth(world["admin"])).json()
        third = client.get(f"{url}?limit=2&offset={second['next_offset']}", headers=auth(world["admin"])).json()
        ids = [i["id"] for page in (first, second, third) for i in page["items"]]
        assert len(ids) == len(set(ids)) == 5 and third["next_offset"] is None

    def test_unknown_customer_is_404(self, client: TestClient, world: dict[str, Any]) -> None:
        assert_problem(client.get("/v1/customers/999999/timeline", headers=auth(world["admin"])), 404)

    def test_store_keys_cannot_read_it(self, client: TestClient, session: Session, world: dict[str, Any]) -> None:
        key = make_key(session, "store", "HN01")
        assert_problem(client.get(f"/v1/customers/{world['customer']}/timeline", headers=auth(key)), 403)


class TestDepartures:
    def test_records_a_reason(self, client: TestClient, world: dict[str, Any]) -> None:
        response = client.post(f"/v1/customers/{world['customer']}/departures",
                               json={"kind": "cancelled", "reason": "price", "note": "Bên kia rẻ hơn"},
                               headers=auth(world["lan_key"]))
        assert response.status_code == 201 and response.json()["reason"] == "price"

    @pytest.mark.parametrize("body", [{"kind": "left", "reason": "price"}, {"kind": "cancelled", "reason": "moon"}])
    def test_bad_reason_is_422(self, client: TestClient, world: dict[str, Any], body: dict[str, Any]) -> None:
        assert_problem(client.post(f"/v1/customers/{world['customer']}/departures", json=body,
                                   headers=auth(world["admin"])), 422)
