"""Who may open what, over plain HTTP: every staff route for each role, logged out, and another store."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.web.conftest import client_login
from tests.web.helpers import OTHER_AGENT, ROLE_EMAIL, make_desk

ROLES = ("admin", "manager", "agent", "readonly")
ALL = set(ROLES)
ANALYSTS = {"admin", "manager", "readonly"}
# (path, roles that get 200; the others get 403)
PAGES = [
    ("/staff/", ALL),
    ("/staff/home/figures", ALL),
    ("/staff/customers", ALL),
    ("/staff/customers?q=Mai", ALL),
    ("/staff/customers/{customer}", ALL),
    ("/staff/service", ALL),
    ("/staff/tickets/{hn}", ALL),
    ("/staff/service/quality", ANALYSTS),
    ("/staff/analytics", ANALYSTS),
    ("/staff/program", ANALYSTS),
]
# (path, form, roles allowed: they get a 303; the others a 403 and nothing changes)
ACTIONS = [
    ("/staff/customers/{customer}/points", {"points": "10", "reason": "sorry", "nonce": "n-12345678"},
     {"admin", "manager"}),
    ("/staff/customers/{customer}/voucher", {"reward": "NOPE"}, {"admin", "manager"}),
    ("/staff/customers/{customer}/ticket", {"subject": "s", "description": "d", "store_id": "HN01"},
     {"admin", "manager", "agent"}),
    ("/staff/customers/{customer}/call", {"note": "called back"}, {"admin", "manager", "agent"}),
    ("/staff/tickets/{hn}/respond", {"message": "Chúng tôi đã cộng điểm."}, {"admin", "manager", "agent"}),
]


@pytest.fixture
def desk_ids(session: Session) -> dict[str, int]:
    desk = make_desk(session)
    return {"customer": desk.customer_id, "hn": desk.hn_ticket, "hcm": desk.hcm_ticket}


def _fill(path: str, ids: dict[str, int]) -> str:
    return path.format(**ids)


def test_logged_out_every_page_leads_to_the_login(web_client: TestClient, desk_ids: dict[str, int]) -> None:
    for path, _ in PAGES:
        response = web_client.get(_fill(path, desk_ids))
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/staff/login?next=")
    for path in ("/staff/analytics/panel", "/staff/analytics/winback.csv", "/staff/program/drafts/x"):
        assert web_client.get(path).status_code == 303, path


@pytest.mark.parametrize("role", ROLES)
def test_pages_by_role(web_client: TestClient, desk_ids: dict[str, int], role: str) -> None:
    client_login(web_client, ROLE_EMAIL[role])
    for path, allowed in PAGES:
        response = web_client.get(_fill(path, desk_ids))
        expected = 200 if role in allowed else 403
        assert response.status_code == expected, (role, path, response.text[:300])
        assert "text/html" in response.headers["content-type"]
    upload = web_client.get("/staff/program/drafts/unknown")
    assert upload.status_code == (404 if role == "admin" else 403)


@pytest.mark.parametrize("role", ROLES)
def test_actions_by_role(web_client: TestClient, desk_ids: dict[str, int], role: str) -> None:
    token = client_login(web_client, ROLE_EMAIL[role])
    for path, form, allowed in ACTIONS:
        response = web_client.post(_fill(path, desk_ids), data={**form, "csrf_token": token})
        expected = 303 if role in allowed else 403
        assert response.status_code == expected, (role, path, response.text[:300])
    files = {"file": ("p.yaml", b"name: x\n", "text/yaml")}
    upload = web_client.post("/staff/program/drafts", data={"csrf_token": token}, files=files)
    assert upload.status_code == (303 if role == "admin" else 403)


def test_an_agent_never_sees_another_stores_ticket(web_client: TestClient, desk_ids: dict[str, int]) -> None:
    token = client_login(web_client, OTHER_AGENT)  # covers HCM01 only
    assert web_client.get(f"/staff/tickets/{desk_ids['hcm']}").status_code == 200
    page = web_client.get(f"/staff/tickets/{desk_ids['hn']}")
    assert page.status_code == 404
    assert "Điểm không được cộng" not in page.text
    answer = web_client.post(f"/staff/tickets/{desk_ids['hn']}/respond",
                             data={"message": "hi", "csrf_token": token})
    assert answer.status_code == 404
    status = web_client.post(f"/staff/tickets/{desk_ids['hn']}/status",
                             data={"status": "resolved", "csrf_token": token})
    assert status.status_code == 404
    queue = web_client.get("/staff/service")
    assert f"#{desk_ids['hcm']}" in queue.text and f"#{desk_ids['hn']}<" not in queue.text
    customer = web_client.get(f"/staff/customers/{desk_ids['customer']}")
    assert f"/staff/tickets/{desk_ids['hcm']}" in customer.text
    assert f"/staff/tickets/{desk_ids['hn']}" not in customer.text
    assert web_client.get("/staff/service?store=HN01").text.count("data-ticket=") == 0
