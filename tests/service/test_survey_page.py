"""The answer page /s/{token}: a phone-sized form in Vietnamese or English that answers once."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from loyalty.models.service import SurveyResponse, Ticket
from tests.factories import auth, make_customer, make_key, make_store
from tests.readers import count


@pytest.fixture
def token(client: TestClient, session: Session) -> str:
    make_store(session, "HN01")
    key = make_key(session)
    customer = make_customer(session, consents={"sms": True}).id
    survey = client.post("/v1/surveys", json={"name": "NPS", "kind": "nps", "channel": "sms"}, headers=auth(key)).json()
    invitation = client.post(f"/v1/surveys/{survey['id']}/invitations", json={"customer_id": customer},
                             headers=auth(key)).json()
    link: str = invitation["link"]
    return link.rsplit("/", 1)[1]


def _post(client: TestClient, token: str, **form: Any) -> Any:
    return client.post(f"/s/{token}", data=form)


class TestPage:
    def test_vietnamese_by_default(self, client: TestClient, token: str) -> None:
        page = client.get(f"/s/{token}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<html lang="vi">' in page.text and "Vì sao bạn chọn điểm này?" in page.text
        assert 'name="viewport"' in page.text  # phone-friendly
        assert page.text.count('type="radio" name="score"') == 11
        assert "http" not in page.text.split("<body>")[0].replace("http-equiv", "")  # no CDN

    def test_english_by_parameter_or_header(self, client: TestClient, token: str) -> None:
        assert "Why did you choose this score?" in client.get(f"/s/{token}?lang=en").text
        page = client.get(f"/s/{token}", headers={"Accept-Language": "en-GB,en;q=0.8"})
        assert '<html lang="en">' in page.text

    def test_answer_once(self, client: TestClient, session: Session, token: str) -> None:
        done = _post(client, token, score="10", comment="Tuyệt vời", lang="vi")
        assert done.status_code == 200 and "Cảm ơn bạn!" in done.text
        again = _post(client, token, score="3", lang="en")
        assert again.status_code == 409 and "Already answered" in again.text
        assert client.get(f"/s/{token}").status_code == 409
        assert count(session, SurveyResponse) == 1

    def test_a_detractor_is_told_someone_will_call(self, client: TestClient, session: Session, token: str) -> None:
        done = _post(client, token, score="1", comment="Chờ lâu", lang="en")
        assert done.status_code == 200 and "within 24 hours" in done.text
        assert count(session, Ticket) == 1

    @pytest.mark.parametrize("score", ["", "11", "-1", "abc"])
    def test_a_bad_score_shows_the_form_again(self, client: TestClient, session: Session, token: str,
                                              score: str) -> None:
        page = _post(client, token, score=score, comment="giữ lại", lang="vi")
        assert page.status_code == 422 and "Vui lòng chọn một điểm." in page.text and "giữ lại" in page.text
        assert count(session, SurveyResponse) == 0

    def test_a_forged_link(self, client: TestClient, token: str) -> None:
        page = client.get(f"/s/{token[:-2]}xx?lang=en")
        assert page.status_code == 404 and "This link is not valid" in page.text
        assert _post(client, "nonsense", score="9").status_code == 404

    def test_comments_are_escaped(self, client: TestClient, token: str) -> None:
        page = _post(client, token, score="99", comment="<script>alert(1)</script>")
        assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
