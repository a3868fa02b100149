"""The portal over plain HTTP: logging in with a code, CSRF, and a member seeing only their own data."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from loyalty.models.bonuses import ReferralCode
from loyalty.models.portal import PortalLoginCode
from loyalty.models.rewards import Voucher
from loyalty.models.service import Ticket
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program
from loyalty.timeutil import utcnow
from tests.factories import make_purchase
from tests.readers import balance_of, reading
from tests.tiers.helpers import program_data
from tests.web.portal.conftest import CodeCatcher, Shop, csrf, http_login

REQUEST_KEY = re.compile(r'name="request_key" value="([0-9a-f]+)"')


def redeem(client: TestClient, token: str, reward: str = "COFFEE") -> str:
    """Opens the reward's confirmation page and confirms; returns the voucher page's address."""
    page = client.get(f"/portal/rewards/{reward}")
    assert page.status_code == 200, page.text
    key = REQUEST_KEY.search(page.text)
    assert key
    done = client.post(f"/portal/rewards/{reward}/redeem", data={"request_key": key.group(1), "csrf_token": token})
    assert done.status_code == 303, done.text
    return str(done.headers["location"])


class TestLogin:
    def test_pages_need_a_login(self, web_client: TestClient, shop: Shop) -> None:
        for path in ("/portal/", "/portal/rewards", "/portal/vouchers", "/portal/history", "/portal/tickets",
                     "/portal/profile", "/portal/vouchers/ABCD-EFGH-JKMN", "/portal/tickets/1"):
            response = web_client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/portal/login?next="), path

    def test_phone_and_code_log_in(self, web_client: TestClient, shop: Shop, codes: CodeCatcher) -> None:
        http_login(web_client, codes)
        home = web_client.get("/portal/")
        assert home.status_code == 200
        assert "Nguyễn Văn An" in home.text and 'data-points="1500"' in home.text and "1.500" in home.text

    def test_email_logs_in_too(self, web_client: TestClient, shop: Shop, codes: CodeCatcher) -> None:
        http_login(web_client, codes, "An@Example.vn", "email:an@example.vn")
        assert "Nguyễn Văn An" in web_client.get("/portal/").text

    def test_unknown_phone_gets_the_same_page_and_no_code(self, web_client: TestClient, shop: Shop,
                                                          codes: CodeCatcher) -> None:
        token = csrf(web_client)
        known = web_client.post("/portal/login", data={"identity": "0912000001", "csrf_token": token})
        unknown = web_client.post("/portal/login", data={"identity": "0987000999", "csrf_token": token})
        assert known.status_code == unknown.status_code == 200
        assert known.text.replace("0912000001", "X") == unknown.text.replace("0987000999", "X")
        assert "phone:+84987000999" not in codes.codes

    def test_bad_identity_is_a_form_error(self, web_client: TestClient, shop: Shop) -> None:
        token = csrf(web_client)
        response = web_client.post("/portal/login", data={"identity": "not a phone", "csrf_token": token})
        assert response.status_code == 422 and 'role="alert"' in response.text

    def test_wrong_code_is_refused_and_counted(self, web_client: TestClient, shop: Shop, codes: CodeCatcher,
                                               session: Session) -> None:
        token = csrf(web_client)
        web_client.post("/portal/login", data={"identity": "0912000001", "csrf_token": token})
        right = codes.code_for(shop.an_phone)
        wrong = f"{(int(right) + 1) % 10**6:06d}"
        response = web_client.post("/portal/login/verify",
                                   data={"identity": "0912000001", "code": wrong, "csrf_token": token})
        assert response.status_code == 401 and "Mã không đúng" in response.text
        assert session.scalar(select(PortalLoginCode.attempts)) == 1
        assert web_client.get("/portal/").status_code == 303  # still not logged in

    def test_expired_code_is_refused(self, web_client: TestClient, shop: Shop, codes: CodeCatcher,
                                     session: Session) -> None:
        token = csrf(web_client)
        web_client.post("/portal/login", data={"identity": "0912000001", "csrf_token": token})
        session.execute(update(PortalLoginCode).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
        response = web_client.post("/portal/login/verify", data={
            "identity": "0912000001", "code": codes.code_for(shop.an_phone), "csrf_token": token})
        assert response.status_code == 401 and "Mã đã hết hạn" in response.text
        assert web_client.get("/portal/").status_code == 303

    def test_a_code_works_once(self, web_client: TestClient, shop: Shop, codes: CodeCatcher) -> None:
        token = http_login(web_client, codes)
        assert web_client.post("/portal/logout", data={"csrf_token": token}).status_code == 303
        assert web_client.get("/portal/").status_code == 303
        token = csrf(web_client)
        again = web_client.post("/portal/login/verify", data={
            "identity": "0912000001", "code": codes.code_for(shop.an_phone), "csrf_token": token})
        assert again.status_code == 401 and "Mã đã được sử dụng" in again.text
        assert web_client.get("/portal/").status_code == 303

    def test_next_goes_back_inside_the_portal_only(self, web_client: TestClient, shop: Shop,
                                                   codes: CodeCatcher) -> None:
        for target, expected in (("/portal/history", "/portal/history"), ("//evil.example/", "/portal/"),
                                 ("https://evil.example/", "/portal/"), ("/staff/", "/portal/")):
            codes.codes.clear()
            web_client.cookies.clear()
            token = csrf(web_client)
            web_client.post("/portal/login", data={"identity": "0912000001", "next": target, "csrf_token": token})
            done = web_client.post("/portal/login/verify", data={
                "identity": "0912000001", "code": codes.code_for(shop.an_phone), "next": target,
                "csrf_token": token})
            assert done.headers["location"] == expected, target


class TestCsrf:
    def test_login_without_the_token_is_refused(self, web_client: TestClient, shop: Shop, codes: CodeCatcher) -> None:
        csrf(web_client)
        response = web_client.post("/portal/login", data={"identity": "0912000001"})
        assert response.status_code == 403
        assert codes.codes == {}

    def test_redeem_without_the_token_changes_nothing(self, web_client: TestClient, shop: Shop, codes: CodeCatcher,
                                                      session: Session) -> None:
        http_login(web_client, codes)
        key = REQUEST_KEY.search(web_client.get("/portal/rewards/COFFEE").text)
        assert key
        for token in (None, "forged-token-forged-token-forged-token"):
            data = {"request_key": key.group(1)} | ({"csrf_token": token} if token else {})
            response = web_client.post("/portal/rewards/COFFEE/redeem", data=data)
            assert response.status_code == 403, response.text
        assert session.scalar(select(func.count()).select_from(Voucher)) == 0
        assert balance_of(session, shop.an)[0] == 1500

    def test_a_token_from_before_login_is_useless_after_it(self, web_client: TestClient, shop: Shop,
                                                           codes: CodeCatcher) -> None:
        before = csrf(web_client)
        after = http_login(web_client, codes)
        assert before != after
        key = REQUEST_KEY.search(web_client.get("/portal/rewards/COFFEE").text)
        assert key
        assert web_client.post("/portal/rewards/COFFEE/redeem",
                               data={"request_key": key.group(1), "csrf_token": before}).status_code == 403


class TestRedeem:
    def test_redeem_shows_the_voucher_with_its_qr(self, web_client: TestClient, shop: Shop, codes: CodeCatcher,
                                                  session: Session) -> None:
        token = http_login(web_client, codes)
        location = redeem(web_client, token)
        voucher = session.scalars(select(Voucher)).one()
        assert location == f"/portal/vouchers/{voucher.code}?new=1"
        page = web_client.get(location)
        assert page.status_code == 200
        assert voucher.code in page.text and 'class="voucher-qr"' in page.text and "<svg" in page.text
        assert balance_of(session, shop.an)[0] == 1200
        assert voucher.code in web_client.get("/portal/vouchers").text

    def test_an_expired_voucher_shows_no_qr(self, web_client: TestClient, shop: Shop, codes: CodeCatcher,
                                            session: Session) -> None:
        token = http_login(web_client, codes)
        location = redeem(web_client, token).split("?")[0]
        session.execute(update(Voucher).values(expires_at=utcnow() - timedelta(days=1)))
        session.commit()
        page = web_client.get(location)
        assert page.status_code == 200 and "Đã hết hạn" in page.text and "voucher-qr" not in page.text

    def test_the_same_form_sent_twice_gives_one_voucher(self, web_client: TestClient, shop: Shop,
                                                        codes: CodeCatcher, session: Session) -> None:
        token = http_login(web_client, codes)
        page = web_client.get("/portal/rewards/COFFEE")
        key = REQUEST_KEY.search(page.text)
        assert key
        data = {"request_key": key.group(1), "csrf_token": token}
        first = web_client.post("/portal/rewards/COFFEE/redeem", data=data)
        second = web_client.post("/portal/rewards/COFFEE/redeem", data=data)
        assert first.headers["location"] == second.headers["location"]
        assert session.scalar(select(func.count()).select_from(Voucher)) == 1
        assert balance_of(session, shop.an)[0] == 1200

    def test_not_enough_points_is_a_message_and_changes_nothing(self, web_client: TestClient, shop: Shop,
                                                                codes: CodeCatcher, session: Session) -> None:
        token = http_login(web_client, codes)
        assert web_client.get("/portal/rewards/CAKE").status_code == 200  # shown, as within reach
        response = web_client.post("/portal/rewards/CAKE/redeem",
                                   data={"request_key": "a" * 32, "csrf_token": token})
        assert response.status_code == 409 and "Bạn chưa đủ điểm" in response.text
        assert session.scalar(select(func.count()).select_from(Voucher)) == 0

    def test_unknown_reward_and_bad_form_key(self, web_client: TestClient, shop: Shop, codes: CodeCatcher) -> None:
        token = http_login(web_client, codes)
        assert web_client.get("/portal/rewards/NOPE").status_code == 404
        missing = web_client.post("/portal/rewards/NOPE/redeem", data={"request_key": "a" * 32, "csrf_token": token})
        assert missing.status_code == 404
        bad = web_client.post("/portal/rewards/COFFEE/redeem", data={"request_key": "x", "csrf_token": token})
        assert bad.status_code == 422


class TestOwnData:
    def test_another_members_voucher_and_ticket_are_not_found(self, web_client: TestClient, shop: Shop,
                                                              codes: CodeCatcher, session: Session) -> None:
        token = http_login(web_client, codes, "0912000002", shop.binh_phone)
        binh_voucher = redeem(web_client, token).split("?")[0]
        web_client.post("/portal/tickets", data={"kind": "complaint", "category": "service", "subject": "Chậm",
                                                 "description": "Đợi 20 phút", "csrf_token": token})
        binh_ticket = session.scalars(select(Ticket)).one()
        assert web_client.get(binh_voucher).status_code == 200
        assert web_client.get(f"/portal/tickets/{binh_ticket.id}").status_code == 200
        web_client.post("/portal/logout", data={"csrf_token": token})

        http_login(web_client, codes)  # An
        for path in (binh_voucher, binh_voucher.lower(), f"/portal/tickets/{binh_ticket.id}"):
            response = web_client.get(path)
            assert response.status_code == 404, path
            # Nothing of Bình's: not the reward, the QR, the ticket (the page only echoes the address typed).
            assert "Chậm" not in response.text and "Cà phê sữa đá" not in response.text
            assert "voucher-qr" not in response.text and "Đợi 20 phút" not in response.text
        assert binh_voucher.rsplit("/", 1)[1] not in web_client.get("/portal/vouchers").text
        assert "Chậm" not in web_client.get("/portal/tickets").text
        assert "Trần Thị Bình" not in web_client.get("/portal/").text

    def test_a_customer_id_in_the_url_is_ignored(self, web_client: TestClient, shop: Shop,
                                                 codes: CodeCatcher) -> None:
        http_login(web_client, codes)
        for path in (f"/portal/?customer_id={shop.binh}", f"/portal/history?customer_id={shop.binh}",
                     f"/portal/profile?customer_id={shop.binh}"):
            text = web_client.get(path).text
            assert "Trần Thị Bình" not in text and "+84912000002" not in text
        assert "Nguyễn Văn An" in web_client.get(f"/portal/?customer_id={shop.binh}").text

    def test_odd_ids_in_urls_are_not_found_not_errors(self, web_client: TestClient, shop: Shop,
                                                      codes: CodeCatcher) -> None:
        http_login(web_client, codes)
        for path in ("/portal/tickets/0", "/portal/tickets/99999999999999999999", "/portal/tickets/abc",
                     "/portal/vouchers/%00", "/portal/vouchers/" + "A" * 500, "/portal/history?before=-1",
                     "/portal/history?before=abc"):
            assert web_client.get(path).status_code in (404, 422), path


class TestTickets:
    def test_complaint_and_feedback_forms(self, web_client: TestClient, shop: Shop, codes: CodeCatcher,
                                          session: Session) -> None:
        token = http_login(web_client, codes)
        sent = web_client.post("/portal/tickets", data={
            "kind": "complaint", "category": "store", "store_id": "HN01", "subject": "Cửa hàng đóng sớm",
            "description": "Cửa hàng đóng lúc 20:00", "csrf_token": token})
        assert sent.status_code == 303
        ticket = session.scalars(select(Ticket)).one()
        assert (ticket.customer_id, ticket.store_id, ticket.channel, ticket.priority) == (shop.an, "HN01", "web",
                                                                                          "normal")
        assert "Cửa hàng đóng sớm" in web_client.get(sent.headers["location"]).text
        web_client.post("/portal/tickets", data={"kind": "feedback", "category": "product", "subject": "Ngon",
                                                 "description": "Thêm vị dâu", "csrf_token": token})
        listing = web_client.get("/portal/tickets").text
        assert "Cửa hàng đóng sớm" in listing and "Ngon" in listing

    def test_bad_ticket_input_is_a_form_error(self, web_client: TestClient, shop: Shop, codes: CodeCatcher,
                                              session: Session) -> None:
        token = http_login(web_client, codes)
        for data in ({"kind": "complaint", "category": "weather", "subject": "x", "description": "y"},
                     {"kind": "praise", "category": "product", "subject": "x", "description": "y"},
                     {"kind": "complaint", "category": "product", "subject": "", "description": "y"},
                     {"kind": "complaint", "category": "product", "subject": "x", "description": ""},
                     {"kind": "complaint", "category": "store", "store_id": "NOPE", "subject": "x",
                      "description": "y"}):
            response = web_client.post("/portal/tickets", data=data | {"csrf_token": token})
            assert response.status_code == 422, (data, response.text[:500])
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0


class TestLanguage:
    def test_switch_to_english_and_back(self, web_client: TestClient, shop: Shop, codes: CodeCatcher,
                                        session: Session) -> None:
        token = http_login(web_client, codes)
        location = redeem(web_client, token, "VND250K").split("?")[0]
        vi = web_client.get(location).text
        assert "Giảm 250.000\xa0₫ cho đơn hàng" in vi and 'lang="vi"' in vi
        expires = session.scalars(select(Voucher)).one().expires_at
        from loyalty.portal.i18n import Translator
        assert Translator("vi").date(expires) in vi and re.search(r"\d{2}/\d{2}/\d{4}", vi)
        switched = web_client.post("/portal/lang", data={"lang": "en", "next": location, "csrf_token": token})
        assert switched.status_code == 303 and switched.headers["location"] == location
        en = web_client.get(location).text
        assert "₫250,000 off your purchase" in en and 'lang="en"' in en and Translator("en").date(expires) in en
        web_client.post("/portal/lang", data={"lang": "vi", "next": "//evil.example", "csrf_token": token})
        assert "Giảm 250.000" in web_client.get(location).text

    def test_the_login_page_switches_too(self, web_client: TestClient, shop: Shop) -> None:
        token = csrf(web_client)
        assert "Gửi mã cho tôi" in web_client.get("/portal/login").text
        moved = web_client.post("/portal/lang", data={"lang": "en", "next": "/portal/login", "csrf_token": token})
        assert moved.headers["location"] == "/portal/login"
        assert "Send me a code" in web_client.get("/portal/login").text


class TestHistory:
    def test_history_lists_the_members_entries_and_pages_with_htmx(self, web_client: TestClient, shop: Shop,
                                                                   codes: CodeCatcher) -> None:
        for _ in range(35):
            shop.give(shop.an, 1)
        http_login(web_client, codes)
        page = web_client.get("/portal/history")
        assert page.status_code == 200 and page.text.count('class="row entry"') == 30
        older = re.search(r'hx-get="/portal/history\?before=(\d+)"', page.text)
        assert older
        rows = web_client.get(f"/portal/history?before={older.group(1)}", headers={"HX-Request": "true"})
        assert rows.status_code == 200 and "<html" not in rows.text
        assert rows.text.count('class="row entry"') == 6  # 36 entries in all: the welcome points and 35 more


class TestHomeSlots:
    def test_stamp_cards_badges_and_next_goal_show_when_the_member_has_them(
            self, web_client: TestClient, shop: Shop, codes: CodeCatcher, session: Session) -> None:
        http_login(web_client, codes)
        plain = web_client.get("/portal/").text
        assert 'id="stamp-cards"' not in plain and 'id="badges"' not in plain and 'id="next-goal"' not in plain
        data = program_data()
        data["stamp_cards"] = [{"id": "ice", "name": "Kem ốc quế", "counts": {"categories": ["ice-cream"]},
                                "stamps_to_complete": 5, "reward": "COFFEE"}]
        data["goals"] = [{"id": "first", "name": "Lần đầu", "metric": "purchases", "target": 1,
                          "badge": {"name": "Lần đầu ghé thăm"}},
                         {"id": "five", "name": "5 lần mua hàng", "metric": "purchases", "target": 5,
                          "badge": {"name": "Khách quen"}}]
        apply_program(session, parse_program(data), "test", actor="test",
                      effective_from=datetime(2001, 1, 1, tzinfo=UTC))
        session.commit()
        for n in range(2):
            make_purchase(session, shop.an, 60_000, pos_id=f"ICE-{n}", lines=[
                {"sku": "ICE-1", "category": "ice-cream", "quantity": 2, "unit_price": 30_000}])
        page = web_client.get("/portal/").text
        assert 'id="stamp-cards"' in page and "Kem ốc quế" in page and "4 / 5" in page and "width:80%" in page
        assert "Lần đầu ghé thăm" in page
        # An also bought once before (the tiers fixture): 3 of 5 purchases.
        assert "Khách quen" in page and "3 / 5" in page and "width:60%" in page


class TestInviteFriends:
    """The profile's referral card (L13): the member's own code and link, or a plain note without referrals."""

    def test_without_referrals_in_the_program(self, web_client: TestClient, shop: Shop, codes: CodeCatcher) -> None:
        http_login(web_client, codes)
        page = web_client.get("/portal/profile")
        assert page.status_code == 200
        assert "referral-code" not in page.text and "giới thiệu bạn bè" in page.text

    def test_the_member_sees_their_code_and_link(self, web_client: TestClient, shop: Shop, codes: CodeCatcher,
                                                 session: Session) -> None:
        data = program_data()
        data["referrals"] = {"min_spend": 100000, "referrer": {"name": "Thanks", "points": 100}}
        apply_program(session, parse_program(data), "test", actor="test",
                      effective_from=datetime(2001, 1, 1, tzinfo=UTC))
        session.commit()
        http_login(web_client, codes)
        first = web_client.get("/portal/profile")
        assert first.status_code == 200
        code = re.search(r'class="referral-code">([A-Z0-9]+)<', first.text)
        assert code, first.text
        assert f"/join?ref={code.group(1)}" in first.text
        assert code.group(1) in web_client.get("/portal/profile").text  # created once, the same on every visit
        with reading(session) as reader:
            assert reader.scalar(select(ReferralCode.customer_id).where(ReferralCode.code == code.group(1))) == shop.an
