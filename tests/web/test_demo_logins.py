"""The demo prints web logins that work."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from loyalty.demo.web_logins import OWNER_EMAIL, demo_logins
from tests.factories import make_staff, make_store
from tests.web.conftest import client_login


def test_demo_logins_create_the_owner_once_and_work(engine: Engine, session: Session,
                                                    web_client: TestClient) -> None:
    make_store(session, "HN01")
    make_staff(session, role="agent", stores=["HN01"], email="cskh1@demo.vn", password=None)
    first = demo_logins(engine)
    second = demo_logins(engine)
    assert [(r, e) for r, e, _ in second] == [("admin", OWNER_EMAIL), ("agent", "cskh1@demo.vn")]
    assert first[0][2] != second[0][2]
    for _, email, password in second:
        client_login(web_client, email, password)
        assert web_client.get("/staff/").status_code == 200
        web_client.cookies.clear()
