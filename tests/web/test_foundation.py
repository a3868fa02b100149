"""The web foundation over plain HTTP: login, sessions, CSRF, lockout, errors as HTML, the API untouched."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.models.service import StaffMember
from loyalty.service.schemas import StaffPatch
from loyalty.service.staff import update_staff
from loyalty.timeutil import utcnow
from loyalty.web import auth
from loyalty.web.auth import set_password
from tests.factories import make_staff
from tests.web.conftest import PASSWORD, client_login, csrf_of


def test_pages_need_a_login_and_send_back_to_the_page_after_it(web_client: TestClient, session: Session) -> None:
    make_staff(session, role="admin", email="boss@shop.vn")
    response = web_client.get("/staff/")
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/login?next=/staff/"
    token = csrf_of(web_client, "/staff/login?next=/staff/")
    response = web_client.post("/staff/login", data={"email": "Boss@Shop.vn ", "password": PASSWORD,
                                                     "csrf_token": token, "next": "/staff/"})
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/"
    home = web_client.get("/staff/")
    assert home.status_code == 200
    assert "text/html" in home.headers["content-type"]
    assert "Log out" in home.text


def test_the_session_cookie_is_secure_httponly_and_lax(web_client: TestClient, session: Session) -> None:
    make_staff(session, role="agent", email="a@shop.vn")
    token = csrf_of(web_client)
    response = web_client.post("/staff/login", data={"email": "a@shop.vn", "password": PASSWORD,
                                                     "csrf_token": token})
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("loyalty_session=")
    assert "httponly" in cookie and "secure" in cookie and "samesite=lax" in cookie


def test_wrong_password_and_unknown_email_are_refused_alike(web_client: TestClient, session: Session) -> None:
    make_staff(session, role="agent", email="a@shop.vn")
    token = csrf_of(web_client)
    wrong = web_client.post("/staff/login", data={"email": "a@shop.vn", "password": "not it at all",
                                                  "csrf_token": token})
    unknown = web_client.post("/staff/login", data={"email": "b@shop.vn", "password": PASSWORD,
                                                    "csrf_token": token})
    assert wrong.status_code == unknown.status_code == 401
    assert "wrong e-mail or password" in wrong.text and "wrong e-mail or password" in unknown.text
    assert web_client.get("/staff/").status_code == 303


def test_staff_without_a_password_or_inactive_cannot_log_in(web_client: TestClient, session: Session) -> None:
    make_staff(session, role="agent", email="nopw@shop.vn", password=None)
    token = csrf_of(web_client)
    assert web_client.post("/staff/login", data={"email": "nopw@shop.vn", "password": "", "csrf_token": token},
                           ).status_code == 401
    staff_id = make_staff(session, role="agent", email="gone@shop.vn")
    update_staff(session, staff_id, StaffPatch(active=False))
    session.commit()
    assert web_client.post("/staff/login", data={"email": "gone@shop.vn", "password": PASSWORD,
                                                 "csrf_token": token}).status_code == 401


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(web_client: TestClient,
                                                                      session: Session) -> None:
    make_staff(session, role="agent", email="a@shop.vn")
    csrf_of(web_client)  # the session exists, the form's token is not sent
    response = web_client.post("/staff/login", data={"email": "a@shop.vn", "password": PASSWORD})
    assert response.status_code == 403
    assert "text/html" in response.headers["content-type"]
    assert "This form has expired" in response.text
    forged = web_client.post("/staff/login", data={"email": "a@shop.vn", "password": PASSWORD,
                                                   "csrf_token": "x" * 43})
    assert forged.status_code == 403
    assert web_client.get("/staff/").status_code == 303
    # and a logged-in session's POST without it is refused the same way
    token = client_login(web_client, "a@shop.vn")
    assert web_client.post("/staff/logout").status_code == 403
    assert web_client.get("/staff/").status_code == 200
    assert web_client.post("/staff/logout", headers={"X-CSRF-Token": token}).status_code == 303
    assert web_client.get("/staff/").status_code == 303


def test_the_token_before_login_is_useless_after_it(web_client: TestClient, session: Session) -> None:
    make_staff(session, role="agent", email="a@shop.vn")
    before = csrf_of(web_client)
    after = client_login(web_client, "a@shop.vn")
    assert before != after
    assert web_client.post("/staff/logout", data={"csrf_token": before}).status_code == 403


def test_five_wrong_passwords_lock_the_account_for_a_while(web_client: TestClient, session: Session) -> None:
    staff_id = make_staff(session, role="agent", email="a@shop.vn")
    token = csrf_of(web_client)
    for _ in range(auth.MAX_FAILURES):
        assert web_client.post("/staff/login", data={"email": "a@shop.vn", "password": "guess guess",
                                                     "csrf_token": token}).status_code == 401
    locked = web_client.post("/staff/login", data={"email": "a@shop.vn", "password": PASSWORD,
                                                   "csrf_token": token})
    assert locked.status_code == 429
    assert "try again in a few minutes" in locked.text
    session.rollback()
    member = session.get(StaffMember, staff_id)
    assert member is not None and member.locked_until is not None
    assert member.locked_until > utcnow() + timedelta(minutes=auth.LOCK_MINUTES - 1)
    # once the lock has passed, the right password works and the count starts again
    member.locked_until = utcnow() - timedelta(seconds=1)
    session.commit()
    assert web_client.post("/staff/login", data={"email": "a@shop.vn", "password": PASSWORD,
                                                 "csrf_token": token}).status_code == 303
    session.rollback()
    assert session.scalar(select(StaffMember.failed_logins).where(StaffMember.id == staff_id)) == 0


def test_one_address_gets_a_limited_number_of_attempts(web_client: TestClient, session: Session) -> None:
    token = csrf_of(web_client)
    codes = [web_client.post("/staff/login", data={"email": f"x{i}@shop.vn", "password": "whatever!!",
                                                   "csrf_token": token}).status_code
             for i in range(auth.IP_MAX_ATTEMPTS + 2)]
    assert codes[: auth.IP_MAX_ATTEMPTS] == [401] * auth.IP_MAX_ATTEMPTS
    assert codes[auth.IP_MAX_ATTEMPTS:] == [429, 429]


def test_a_new_password_or_deactivation_ends_open_sessions(web_client: TestClient, session: Session) -> None:
    staff_id = make_staff(session, role="manager", email="m@shop.vn")
    client_login(web_client, "m@shop.vn")
    assert web_client.get("/staff/").status_code == 200
    set_password(session, "m@shop.vn", "another password 7", utcnow())
    session.commit()
    assert web_client.get("/staff/").status_code == 303
    client_login(web_client, "m@shop.vn", "another password 7")
    assert web_client.get("/staff/").status_code == 200
    update_staff(session, staff_id, StaffPatch(active=False))
    session.commit()
    assert web_client.get("/staff/").status_code == 303


def test_next_never_leads_off_the_staff_area(web_client: TestClient, session: Session) -> None:
    make_staff(session, role="agent", email="a@shop.vn")
    for target in ("//evil.example/", "https://evil.example/", "/v1/customers", "/staff\\@evil"):
        web_client.cookies.clear()
        token = csrf_of(web_client)
        response = web_client.post("/staff/login", data={"email": "a@shop.vn", "password": PASSWORD,
                                                         "csrf_token": token, "next": target})
        assert response.headers["location"] == "/staff/", target


def test_web_errors_are_pages_and_api_errors_stay_problems(web_client: TestClient, session: Session) -> None:
    missing = web_client.get("/staff/no-such-page")
    assert missing.status_code in (303, 404)  # not logged in: to the login page first
    make_staff(session, role="agent", email="a@shop.vn")
    client_login(web_client, "a@shop.vn")
    missing = web_client.get("/staff/no-such-page")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"] and "Page not found" in missing.text
    api = web_client.get("/v1/no-such-thing")
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    unauth = web_client.get("/v1/customers/1")
    assert unauth.status_code == 401 and unauth.headers["content-type"] == "application/problem+json"
    assert "set-cookie" not in unauth.headers


def test_static_files_are_served_with_their_licences(web_client: TestClient) -> None:
    for path in ("/static/app.css", "/static/app.js", "/static/vendor/htmx-2.0.11.min.js",
                 "/static/vendor/chart-4.6.1.umd.min.js", "/static/vendor/README.md"):
        response = web_client.get(path)
        assert response.status_code == 200, path
        assert "set-cookie" not in response.headers
    assert web_client.get("/static/../app.py").status_code == 404
