"""Complaint tickets: every status change, assignment by rule and by hand, goodwill, breaches, role rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from loyalty.db import run_in_transaction
from loyalty.models import LedgerEntry
from loyalty.models.service import Ticket, TicketEvent
from loyalty.service.tickets import mark_breaches
from tests.factories import auth, make_customer, make_key, make_store
from tests.readers import assert_ledger_ok, balance_of, count, reading
from tests.service.helpers import assert_problem, make_staff, staff_key


@pytest.fixture
def desk(session: Session) -> dict[str, Any]:
    """Two stores; agents Lan and Minh at HN01, agent Hoa at SG01, manager Tuấn over both."""
    make_store(session, "HN01")
    make_store(session, "SG01")
    lan = make_staff(session, "agent", ("HN01",), name="Lan")
    minh = make_staff(session, "agent", ("HN01",), name="Minh")
    hoa = make_staff(session, "agent", ("SG01",), name="Hoa")
    tuan = make_staff(session, "manager", ("HN01", "SG01"), name="Tuấn")
    return {
        "customer": make_customer(session).id, "lan": lan, "minh": minh, "hoa": hoa, "tuan": tuan,
        "admin": make_key(session), "lan_key": staff_key(session, lan), "minh_key": staff_key(session, minh),
        "hoa_key": staff_key(session, hoa), "tuan_key": staff_key(session, tuan, "manager"),
    }


def _open(client: TestClient, key: str, customer: int, **fields: Any) -> Any:
    body = {"customer_id": customer, "store_id": "HN01", "category": "service", "subject": "Chờ quá lâu",
            "description": "Nhân viên thu ngân phục vụ chậm, tôi chờ 20 phút.", **fields}
    return client.post("/v1/tickets", json=body, headers=auth(key))


def _status(client: TestClient, key: str, ticket: int, status: str) -> Any:
    return client.post(f"/v1/tickets/{ticket}/status", json={"status": status}, headers=auth(key))


def _respond(client: TestClient, key: str, ticket: int, wait: bool = False) -> Any:
    return client.post(f"/v1/tickets/{ticket}/responses", json={"message": "Xin lỗi anh/chị, chúng tôi đã xử lý.",
                                                               "wait_for_customer": wait}, headers=auth(key))


class TestCreate:
    def test_assigns_round_robin_among_the_store_agents(self, client: TestClient, desk: dict[str, Any]) -> None:
        owners = []
        for _ in range(4):
            response = _open(client, desk["admin"], desk["customer"])
            assert response.status_code == 201, response.text
            body = response.json()
            assert body["status"] == "assigned"
            owners.append(body["owner_id"])
        assert owners == [desk["lan"], desk["minh"], desk["lan"], desk["minh"]]

    def test_first_response_is_due_24_hours_later_by_default(self, client: TestClient, desk: dict[str, Any]) -> None:
        body = _open(client, desk["admin"], desk["customer"]).json()
        created = datetime.fromisoformat(body["created_at"])
        assert datetime.fromisoformat(body["first_response_due_at"]) - created == timedelta(hours=24)
        assert [e["kind"] for e in body["events"]] == ["created", "assigned"]
        assert body["events"][1]["actor"] == "rule:round-robin"

    def test_urgent_is_due_sooner(self, client: TestClient, desk: dict[str, Any]) -> None:
        body = _open(client, desk["admin"], desk["customer"], priority="urgent").json()
        created = datetime.fromisoformat(body["created_at"])
        assert datetime.fromisoformat(body["first_response_due_at"]) - created == timedelta(hours=4)

    def test_by_hand_to_a_named_owner(self, client: TestClient, desk: dict[str, Any]) -> None:
        body = _open(client, desk["tuan_key"], desk["customer"], owner_id=desk["minh"]).json()
        assert (body["owner_id"], body["status"]) == (desk["minh"], "assigned")

    def test_without_agents_stays_new(self, client: TestClient, session: Session, desk: dict[str, Any]) -> None:
        make_store(session, "DN01")
        body = _open(client, desk["admin"], desk["customer"], store_id="DN01").json()
        assert (body["owner_id"], body["status"]) == (None, "new")

    @pytest.mark.parametrize(("fields", "status"), [
        ({"customer_id": 999_999}, 404),
        ({"store_id": "NOPE"}, 404),
        ({"owner_id": 999_999}, 404),
        ({"description": "   "}, 422),
        ({"subject": ""}, 422),
        ({"category": "weather"}, 422),
        ({"priority": "whenever"}, 422),
    ])
    def test_bad_input_is_a_clear_4xx_and_writes_nothing(self, client: TestClient, session: Session,
                                                         desk: dict[str, Any], fields: dict[str, Any],
                                                         status: int) -> None:
        assert_problem(_open(client, desk["admin"], desk["customer"], **fields), status)
        assert count(session, Ticket) == 0 and count(session, TicketEvent) == 0

    def test_owner_must_cover_the_store(self, client: TestClient, session: Session, desk: dict[str, Any]) -> None:
        assert_problem(_open(client, desk["admin"], desk["customer"], owner_id=desk["hoa"]), 409)
        assert count(session, Ticket) == 0

    def test_a_store_key_opens_tickets_for_its_own_store_only(self, client: TestClient, session: Session,
                                                              desk: dict[str, Any]) -> None:
        key = make_key(session, "store", "HN01")
        assert _open(client, key, desk["customer"]).status_code == 201
        assert_problem(_open(client, key, desk["customer"], store_id="SG01"), 403)

    def test_a_readonly_key_cannot(self, client: TestClient, session: Session, desk: dict[str, Any]) -> None:
        assert_problem(_open(client, make_key(session, "readonly"), desk["customer"]), 403)


class TestTransitions:
    @pytest.fixture
    def ticket(self, client: TestClient, desk: dict[str, Any]) -> int:
        return int(_open(client, desk["admin"], desk["customer"]).json()["id"])

    def test_the_whole_life(self, client: TestClient, desk: dict[str, Any], ticket: int) -> None:
        key = desk["lan_key"]
        assert _respond(client, key, ticket, wait=True).json()["status"] == "waiting"
        assert _status(client, key, ticket, "assigned").json()["status"] == "assigned"
        assert _status(client, key, ticket, "waiting").json()["status"] == "waiting"
        resolved = _status(client, key, ticket, "resolved").json()
        assert resolved["status"] == "resolved" and resolved["resolved_at"]
        closed = _status(client, key, ticket, "closed").json()
        assert closed["status"] == "closed" and closed["closed_at"]
        reopened = _status(client, key, ticket, "reopened").json()
        assert (reopened["status"], reopened["resolved_at"], reopened["closed_at"]) == ("assigned", None, None)
        kinds = [(e["kind"], e["from_status"], e["to_status"]) for e in reopened["events"]]
        assert kinds == [("created", None, "new"), ("assigned", "new", "assigned"),
                         ("response", "assigned", "waiting"), ("status", "waiting", "assigned"),
                         ("status", "assigned", "waiting"), ("status", "waiting", "resolved"),
                         ("status", "resolved", "closed"), ("reopened", "closed", "assigned")]
        assert all(e["actor"].startswith("key:") and e["created_at"] for e in reopened["events"][2:])

    def test_reopen_a_resolved_ticket(self, client: TestClient, desk: dict[str, Any], ticket: int) -> None:
        _respond(client, desk["lan_key"], ticket)
        _status(client, desk["lan_key"], ticket, "resolved")
        assert _status(client, desk["lan_key"], ticket, "reopened").json()["status"] == "assigned"

    def test_closing_a_new_ticket_without_a_response_is_refused(self, client: TestClient, session: Session,
                                                                desk: dict[str, Any]) -> None:
        make_store(session, "DN01")
        ticket = _open(client, desk["admin"], desk["customer"], store_id="DN01").json()["id"]
        body = assert_problem(_status(client, desk["admin"], ticket, "closed"), 409)
        assert body["type"].endswith("/invalid-transition") and "new ticket cannot become closed" in body["detail"]
        assert count(session, TicketEvent, TicketEvent.ticket_id == ticket) == 1

    def test_resolving_without_a_response_is_refused(self, client: TestClient, desk: dict[str, Any],
                                                     ticket: int) -> None:
        body = assert_problem(_status(client, desk["lan_key"], ticket, "resolved"), 409)
        assert "no response yet" in body["detail"]

    @pytest.mark.parametrize(("path", "target"), [
        (["resolved"], "waiting"), (["resolved", "closed"], "resolved"), (["resolved", "closed"], "assigned"),
        ([], "reopened"), ([], "closed"),
    ])
    def test_other_invalid_moves(self, client: TestClient, desk: dict[str, Any], ticket: int, path: list[str],
                                 target: str) -> None:
        _respond(client, desk["lan_key"], ticket)
        for step in path:
            assert _status(client, desk["lan_key"], ticket, step).status_code == 200
        assert_problem(_status(client, desk["lan_key"], ticket, target), 409)

    def test_unknown_status_is_422(self, client: TestClient, desk: dict[str, Any], ticket: int) -> None:
        assert_problem(_status(client, desk["lan_key"], ticket, "done"), 422)

    def test_answering_a_closed_ticket_needs_a_reopen(self, client: TestClient, desk: dict[str, Any],
                                                      ticket: int) -> None:
        _respond(client, desk["lan_key"], ticket)
        _status(client, desk["lan_key"], ticket, "resolved")
        assert_problem(_respond(client, desk["lan_key"], ticket), 409)

    def test_manual_reassignment_by_a_manager(self, client: TestClient, desk: dict[str, Any], ticket: int) -> None:
        response = client.post(f"/v1/tickets/{ticket}/assign", json={"owner_id": desk["minh"]},
                               headers=auth(desk["tuan_key"]))
        assert response.status_code == 200 and response.json()["owner_id"] == desk["minh"]

    def test_an_agent_cannot_assign_by_hand(self, client: TestClient, desk: dict[str, Any], ticket: int) -> None:
        assert_problem(client.post(f"/v1/tickets/{ticket}/assign", json={"owner_id": desk["minh"]},
                                   headers=auth(desk["lan_key"])), 403)

    def test_the_first_response_time_is_recorded_once(self, client: TestClient, desk: dict[str, Any],
                                                      ticket: int) -> None:
        first = _respond(client, desk["lan_key"], ticket).json()["first_response_at"]
        assert _respond(client, desk["lan_key"], ticket).json()["first_response_at"] == first


class TestRoles:
    def test_an_agent_cannot_read_another_stores_ticket(self, client: TestClient, desk: dict[str, Any]) -> None:
        ticket = _open(client, desk["admin"], desk["customer"], store_id="SG01").json()["id"]
        assert client.get(f"/v1/tickets/{ticket}", headers=auth(desk["hoa_key"])).status_code == 200
        assert_problem(client.get(f"/v1/tickets/{ticket}", headers=auth(desk["lan_key"])), 404)
        assert_problem(_respond(client, desk["lan_key"], ticket), 404)
        assert_problem(_status(client, desk["lan_key"], ticket, "resolved"), 404)

    def test_queues_show_only_the_keys_stores(self, client: TestClient, desk: dict[str, Any]) -> None:
        hn = _open(client, desk["admin"], desk["customer"]).json()["id"]
        sg = _open(client, desk["admin"], desk["customer"], store_id="SG01").json()["id"]

        def ids(key: str) -> list[int]:
            return [t["id"] for t in client.get("/v1/tickets", headers=auth(key)).json()["items"]]
        assert ids(desk["lan_key"]) == [hn]
        assert ids(desk["hoa_key"]) == [sg]
        assert ids(desk["tuan_key"]) == [sg, hn]
        assert ids(desk["admin"]) == [sg, hn]
        # Asking for another store's queue gives nothing, not that store's tickets.
        assert client.get("/v1/tickets?store_id=SG01", headers=auth(desk["lan_key"])).json()["items"] == []

    def test_store_and_readonly_keys_cannot_read_tickets(self, client: TestClient, session: Session,
                                                         desk: dict[str, Any]) -> None:
        ticket = _open(client, desk["admin"], desk["customer"]).json()["id"]
        for key in (make_key(session, "store", "HN01"), make_key(session, "readonly")):
            assert_problem(client.get(f"/v1/tickets/{ticket}", headers=auth(key)), 403)
            assert_problem(client.get("/v1/tickets", headers=auth(key)), 403)

    def test_agent_and_manager_keys_need_a_staff_member(self, session: Session) -> None:
        from loyalty.auth.service import create_key
        from loyalty.errors import ValidationFailed

        with pytest.raises(ValidationFailed):
            create_key(session, role="agent", store_id=None, name="x")
        with pytest.raises(ValidationFailed):
            create_key(session, role="readonly", store_id=None, name="x", staff_id=1)


class TestGoodwill:
    def test_points_go_through_the_ledger_with_the_ticket_as_reason(
        self, client: TestClient, session: Session, desk: dict[str, Any],
    ) -> None:
        ticket = _open(client, desk["admin"], desk["customer"]).json()["id"]
        response = client.post(f"/v1/tickets/{ticket}/goodwill", json={"points": 50, "note": "xin lỗi vì chờ lâu"},
                               headers=auth(desk["lan_key"]))
        assert response.status_code == 200, response.text
        event = response.json()["events"][-1]
        assert (event["kind"], event["points"]) == ("goodwill", 50)
        assert balance_of(session, desk["customer"])[0] == 50
        with reading(session) as reader:
            entry = reader.scalar(select(LedgerEntry).where(LedgerEntry.id == event["ledger_entry_id"]))
            assert entry is not None
            assert (entry.source_type, entry.source_id, entry.event) == ("ticket", str(ticket), "goodwill")
            assert f"ticket #{ticket}" in entry.reason
        assert_ledger_ok(session)

    def test_goodwill_points_are_granted_once_per_ticket(self, client: TestClient, session: Session,
                                                         desk: dict[str, Any]) -> None:
        ticket = _open(client, desk["admin"], desk["customer"]).json()["id"]
        url = f"/v1/tickets/{ticket}/goodwill"
        assert client.post(url, json={"points": 50, "note": "a"}, headers=auth(desk["lan_key"])).status_code == 200
        assert_problem(client.post(url, json={"points": 20, "note": "b"}, headers=auth(desk["lan_key"])), 409)
        assert balance_of(session, desk["customer"])[0] == 50

    def test_a_voucher_is_recorded_on_the_ticket(self, client: TestClient, desk: dict[str, Any]) -> None:
        ticket = _open(client, desk["admin"], desk["customer"]).json()["id"]
        body = client.post(f"/v1/tickets/{ticket}/goodwill", json={"voucher_value": 50_000, "note": "quà xin lỗi"},
                           headers=auth(desk["lan_key"])).json()
        assert body["events"][-1]["kind"] == "voucher" and "50,000 VND" in body["events"][-1]["note"]

    @pytest.mark.parametrize("body", [{"note": "nothing"}, {"points": 0, "note": "x"}, {"points": 5, "note": " "}])
    def test_bad_goodwill_writes_nothing(self, client: TestClient, session: Session, desk: dict[str, Any],
                                         body: dict[str, Any]) -> None:
        ticket = _open(client, desk["admin"], desk["customer"]).json()["id"]
        response = client.post(f"/v1/tickets/{ticket}/goodwill", json=body, headers=auth(desk["lan_key"]))
        assert response.status_code in (409, 422)
        assert count(session, LedgerEntry) == 0


class TestBreaches:
    def test_the_job_marks_overdue_tickets_and_escalates_to_the_manager(
        self, client: TestClient, session: Session, engine: Any, desk: dict[str, Any],
    ) -> None:
        late = _open(client, desk["admin"], desk["customer"]).json()
        answered = _open(client, desk["admin"], desk["customer"]).json()
        _respond(client, desk["lan_key"], answered["id"])
        due = datetime.fromisoformat(late["first_response_due_at"])
        assert run_in_transaction(engine, lambda s: mark_breaches(s, due - timedelta(seconds=1))) == 0
        assert run_in_transaction(engine, lambda s: mark_breaches(s, due + timedelta(minutes=1))) == 1
        assert run_in_transaction(engine, lambda s: mark_breaches(s, due + timedelta(hours=5))) == 0  # idempotent
        body = client.get(f"/v1/tickets/{late['id']}", headers=auth(desk["tuan_key"])).json()
        assert body["breached_at"] and body["escalated_to_id"] == desk["tuan"]
        assert body["events"][-1]["kind"] == "breached" and body["events"][-1]["owner_id"] == desk["tuan"]
        breached = client.get("/v1/tickets?breached=true", headers=auth(desk["tuan_key"])).json()["items"]
        assert [t["id"] for t in breached] == [late["id"]]
        assert count(session, TicketEvent, TicketEvent.kind == "breached") == 1

    def test_a_late_first_response_counts_as_a_breach(self, client: TestClient, session: Session,
                                                      desk: dict[str, Any], engine: Any) -> None:
        ticket = _open(client, desk["admin"], desk["customer"]).json()["id"]
        past = datetime.now(UTC) - timedelta(hours=1)
        run_in_transaction(engine, lambda s: s.execute(
            update(Ticket).where(Ticket.id == ticket).values(first_response_due_at=past)))
        body = _respond(client, desk["lan_key"], ticket).json()
        assert body["breached_at"] is not None


class TestResolutionBreaches:
    def test_the_job_marks_open_tickets_past_their_resolution_time(
        self, client: TestClient, session: Session, engine: Any, desk: dict[str, Any],
    ) -> None:
        overdue = _open(client, desk["admin"], desk["customer"]).json()
        _respond(client, desk["lan_key"], overdue["id"])  # answered in time: only resolution can breach
        resolved = _open(client, desk["admin"], desk["customer"]).json()
        _respond(client, desk["lan_key"], resolved["id"])
        _status(client, desk["lan_key"], resolved["id"], "resolved")
        waiting = _open(client, desk["admin"], desk["customer"]).json()
        _respond(client, desk["lan_key"], waiting["id"], wait=True)
        due = datetime.fromisoformat(overdue["resolution_due_at"])
        assert due - datetime.fromisoformat(overdue["created_at"]) == timedelta(hours=72)

        assert run_in_transaction(engine, lambda s: mark_breaches(s, due - timedelta(seconds=1))) == 0
        assert run_in_transaction(engine, lambda s: mark_breaches(s, due + timedelta(minutes=1))) == 2
        assert run_in_transaction(engine, lambda s: mark_breaches(s, due + timedelta(days=3))) == 0  # idempotent
        body = client.get(f"/v1/tickets/{overdue['id']}", headers=auth(desk["tuan_key"])).json()
        assert body["resolution_breached_at"] and body["breached_at"] is None
        assert body["escalated_to_id"] == desk["tuan"]
        assert body["events"][-1]["kind"] == "overdue" and body["events"][-1]["owner_id"] == desk["tuan"]
        listed = client.get("/v1/tickets?overdue=true", headers=auth(desk["tuan_key"])).json()["items"]
        assert sorted(t["id"] for t in listed) == sorted([overdue["id"], waiting["id"]])
        assert client.get(f"/v1/tickets/{resolved['id']}",
                          headers=auth(desk["tuan_key"])).json()["resolution_breached_at"] is None
        assert count(session, TicketEvent, TicketEvent.kind == "overdue") == 2

    def test_an_unanswered_ticket_breaches_both_in_turn(self, client: TestClient, engine: Any,
                                                        desk: dict[str, Any]) -> None:
        ticket = _open(client, desk["admin"], desk["customer"]).json()
        first = datetime.fromisoformat(ticket["first_response_due_at"])
        resolution = datetime.fromisoformat(ticket["resolution_due_at"])
        assert run_in_transaction(engine, lambda s: mark_breaches(s, first + timedelta(minutes=1))) == 1
        assert run_in_transaction(engine, lambda s: mark_breaches(s, resolution + timedelta(minutes=1))) == 1
        body = client.get(f"/v1/tickets/{ticket['id']}", headers=auth(desk["admin"])).json()
        assert body["breached_at"] < body["resolution_breached_at"]
        assert [e["kind"] for e in body["events"]][-2:] == ["breached", "overdue"]

    def test_resolving_late_counts_and_shows_in_the_service_times_report(
        self, client: TestClient, engine: Any, desk: dict[str, Any],
    ) -> None:
        ticket = _open(client, desk["admin"], desk["customer"]).json()["id"]
        _respond(client, desk["lan_key"], ticket)
        past = datetime.now(UTC) - timedelta(hours=1)
        run_in_transaction(engine, lambda s: s.execute(
            update(Ticket).where(Ticket.id == ticket).values(resolution_due_at=past)))
        body = _status(client, desk["lan_key"], ticket, "resolved").json()
        assert body["resolution_breached_at"] is not None and body["events"][-2]["kind"] == "overdue"
        on_time = _open(client, desk["admin"], desk["customer"]).json()["id"]
        _respond(client, desk["lan_key"], on_time)
        _status(client, desk["lan_key"], on_time, "resolved")
        rows = client.get("/v1/reports/service-times", headers=auth(desk["admin"])).json()
        hn = next(r for r in rows if r["key"] == "HN01")
        assert (hn["tickets"], hn["resolved"], hn["breached"], hn["overdue"]) == (2, 2, 0, 1)


class TestMoreTransitions:
    def test_new_to_resolved_when_answered_without_an_owner(self, client: TestClient, session: Session,
                                                            desk: dict[str, Any]) -> None:
        make_store(session, "DN01")  # no agents: the ticket stays new
        ticket = _open(client, desk["admin"], desk["customer"], store_id="DN01").json()["id"]
        assert_problem(_status(client, desk["admin"], ticket, "assigned"), 409)  # nobody owns it
        answered = _respond(client, desk["admin"], ticket).json()  # an admin key is nobody in particular
        assert (answered["status"], answered["owner_id"]) == ("new", None)
        assert _status(client, desk["admin"], ticket, "resolved").json()["status"] == "resolved"
        assert _status(client, desk["admin"], ticket, "reopened").json()["status"] == "new"

    def test_an_agent_answering_a_new_ticket_takes_it(self, client: TestClient, session: Session,
                                                      desk: dict[str, Any]) -> None:
        make_store(session, "DN01")
        ticket = _open(client, desk["admin"], desk["customer"], store_id="DN01").json()["id"]
        minh = make_staff(session, "agent", ("DN01",), name="Minh DN")
        body = _respond(client, staff_key(session, minh), ticket).json()
        assert (body["status"], body["owner_id"]) == ("assigned", minh)

    def test_assignment_by_rule_on_request(self, client: TestClient, session: Session, desk: dict[str, Any]) -> None:
        make_store(session, "DN01")
        ticket = _open(client, desk["admin"], desk["customer"], store_id="DN01").json()["id"]
        assert_problem(client.post(f"/v1/tickets/{ticket}/assign", json={}, headers=auth(desk["admin"])), 409)
        agent = make_staff(session, "agent", ("DN01",), name="Hải")
        body = client.post(f"/v1/tickets/{ticket}/assign", json={}, headers=auth(desk["admin"])).json()
        assert (body["status"], body["owner_id"]) == ("assigned", agent)


class TestBusinessHoursPolicy:
    def test_a_business_hours_target_uses_the_store_zone_and_hours(self, engine: Any, session: Session,
                                                                   desk: dict[str, Any]) -> None:
        from zoneinfo import ZoneInfo

        from loyalty.db import session_factory
        from loyalty.models.service import SlaPolicy, StoreHours
        from loyalty.service import tickets
        from loyalty.service.schemas import TicketIn
        from loyalty.service.staff import Scope

        session.add(SlaPolicy(priority="normal", first_response_hours=9, resolution_hours=27, business_hours=True))
        session.add(StoreHours(store_id="SG01", timezone="Asia/Bangkok", opens_minute=8 * 60, closes_minute=17 * 60,
                               weekdays="12345"))
        session.commit()
        bangkok = ZoneInfo("Asia/Bangkok")
        friday_4pm = datetime(2026, 11, 27, 16, 0, tzinfo=bangkok)
        with session_factory(engine)() as writer:
            ticket = tickets.create_ticket(
                writer, TicketIn(customer_id=desk["customer"], store_id="SG01", category="staff", subject="s",
                                 description="d"), Scope("admin", None, "test", None), friday_4pm.astimezone(UTC))
            # 1 h on Friday, then 8 of Monday's 9 hours; resolution: 1 + 9 + 9 + 8 hours.
            assert ticket.first_response_due_at == datetime(2026, 11, 30, 16, 0, tzinfo=bangkok)
            assert ticket.resolution_due_at == datetime(2026, 12, 2, 16, 0, tzinfo=bangkok)
            writer.rollback()
