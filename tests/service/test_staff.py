"""Staff changes: deactivation stops a person's keys at once and round-robin skips them; stores can change."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from loyalty.auth.service import clear_cache
from loyalty.cli.main import app
from loyalty.db import run_in_transaction
from loyalty.models.service import StaffMember
from tests.factories import auth, make_customer, make_key, make_store
from tests.service.helpers import assert_problem, make_staff, staff_key


@pytest.fixture
def desk(session: Session) -> dict[str, Any]:
    """Agents Lan and Minh at HN01, agent Hoa at SG01."""
    make_store(session, "HN01")
    make_store(session, "SG01")
    lan = make_staff(session, "agent", ("HN01",), name="Lan")
    minh = make_staff(session, "agent", ("HN01",), name="Minh")
    hoa = make_staff(session, "agent", ("SG01",), name="Hoa")
    return {"customer": make_customer(session).id, "lan": lan, "minh": minh, "hoa": hoa,
            "admin": make_key(session), "lan_key": staff_key(session, lan)}


def _patch(client: TestClient, key: str, staff_id: int, **body: Any) -> Any:
    return client.patch(f"/v1/staff/{staff_id}", json=body, headers=auth(key))


def _open(client: TestClient, key: str, customer: int, store: str = "HN01") -> dict[str, Any]:
    response = client.post("/v1/tickets", json={"customer_id": customer, "store_id": store, "category": "service",
                                                "subject": "Chờ lâu", "description": "Phục vụ chậm."},
                           headers=auth(key))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


class TestDeactivate:
    def test_the_keys_stop_working_at_once(self, client: TestClient, desk: dict[str, Any]) -> None:
        assert client.get("/v1/tickets", headers=auth(desk["lan_key"])).status_code == 200  # now cached
        response = _patch(client, desk["admin"], desk["lan"], active=False)
        assert response.status_code == 200, response.text
        assert response.json()["active"] is False
        body = assert_problem(client.get("/v1/tickets", headers=auth(desk["lan_key"])), 401)
        assert "no longer active" in body["detail"]
        assert _patch(client, desk["admin"], desk["lan"], active=True).json()["active"] is True
        assert client.get("/v1/tickets", headers=auth(desk["lan_key"])).status_code == 200

    def test_another_process_notices_when_its_cache_entry_lapses(
            self, client: TestClient, engine: Any, desk: dict[str, Any]) -> None:
        # A deactivation from another process (the CLI, another worker) does not clear this
        # process's cache: the key keeps working until its entry is 30 s old, then it is refused.
        assert client.get("/v1/tickets", headers=auth(desk["lan_key"])).status_code == 200
        run_in_transaction(engine, lambda s: s.execute(
            update(StaffMember).where(StaffMember.id == desk["lan"]).values(active=False)))
        assert client.get("/v1/tickets", headers=auth(desk["lan_key"])).status_code == 200
        clear_cache()  # what 30 s do
        assert_problem(client.get("/v1/tickets", headers=auth(desk["lan_key"])), 401)

    def test_round_robin_skips_them(self, client: TestClient, desk: dict[str, Any]) -> None:
        _patch(client, desk["admin"], desk["lan"], active=False)
        owners = {_open(client, desk["admin"], desk["customer"])["owner_id"] for _ in range(3)}
        assert owners == {desk["minh"]}

    def test_only_admins_change_staff(self, client: TestClient, session: Session, desk: dict[str, Any]) -> None:
        manager = staff_key(session, make_staff(session, "manager", ("HN01",)), "manager")
        assert_problem(_patch(client, manager, desk["lan"], active=False), 403)
        assert_problem(_patch(client, desk["lan_key"], desk["lan"], active=True), 403)
        assert_problem(_patch(client, desk["admin"], 999_999, active=False), 404)
        assert_problem(_patch(client, desk["admin"], desk["lan"], role="admin"), 422)


class TestStores:
    def test_moving_an_agent_changes_what_they_see_and_get(self, client: TestClient, desk: dict[str, Any]) -> None:
        hanoi = _open(client, desk["admin"], desk["customer"])
        response = _patch(client, desk["admin"], desk["lan"], stores=["SG01"])
        assert response.status_code == 200, response.text
        assert response.json()["stores"] == ["SG01"]
        seen = client.get("/v1/tickets", headers=auth(desk["lan_key"])).json()["items"]
        assert hanoi["id"] not in [t["id"] for t in seen]
        # New at SG01, Lan is first in line there; HN01 tickets now go to Minh only.
        assert _open(client, desk["admin"], desk["customer"], "SG01")["owner_id"] == desk["lan"]
        assert {_open(client, desk["admin"], desk["customer"])["owner_id"] for _ in range(2)} == {desk["minh"]}

    def test_an_unknown_store_changes_nothing(self, client: TestClient, desk: dict[str, Any]) -> None:
        assert_problem(_patch(client, desk["admin"], desk["lan"], stores=["SG01", "XX99"]), 404)
        staff = {m["id"]: m for m in client.get("/v1/staff", headers=auth(desk["admin"])).json()}
        assert staff[desk["lan"]]["stores"] == ["HN01"]


class TestCli:
    def test_deactivate_and_move_from_the_command_line(self, client: TestClient, desk: dict[str, Any],
                                                       cli_db: str) -> None:
        runner = CliRunner()
        result = runner.invoke(app, ["staff", "stores", str(desk["lan"]), "--store", "HN01", "--store", "SG01"])
        assert result.exit_code == 0, result.output
        assert "stores: HN01, SG01" in result.output
        result = runner.invoke(app, ["staff", "deactivate", str(desk["lan"])])
        assert result.exit_code == 0, result.output
        assert "inactive" in result.output
        assert_problem(client.get("/v1/tickets", headers=auth(desk["lan_key"])), 401)
        result = runner.invoke(app, ["staff", "deactivate", "999999"])
        assert result.exit_code == 2
