"""Reports on small hand-computed data: NPS and CSAT with intervals, response times, trends, words, departures."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from loyalty.models.service import Departure, Survey, SurveyInvitation, SurveyResponse, Ticket
from loyalty.service import reports
from loyalty.service.text import fold, top_terms
from tests.factories import auth, make_customer, make_key, make_store
from tests.service.helpers import assert_problem, make_staff, staff_key

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
T = datetime(2026, 10, 14, 3, 0, tzinfo=UTC)  # Wednesday 10:00 in Ho Chi Minh City
_ids = itertools.count(1)


def _answers(session: Session, customer: int, kind: str, store: str, channel: str, scores: list[int],
             at: datetime = T) -> None:
    survey = Survey(name=kind, kind=kind, question="?", fields="[]", channel="email", after_purchase=False,
                    delay_hours=0, sample_percent=100, cooldown_days=0, link_days=14, active=True, created_at=at)
    session.add(survey)
    session.flush()
    for score in scores:
        invitation = SurveyInvitation(survey_id=survey.id, customer_id=customer, store_id=store, channel=channel,
                                      created_at=at, send_after=at, expires_at=at + timedelta(days=14),
                                      created_by="test")
        session.add(invitation)
        session.flush()
        session.add(SurveyResponse(invitation_id=invitation.id, survey_id=survey.id, kind=kind, customer_id=customer,
                                   store_id=store, channel=channel, score=score, comment="", answers="{}",
                                   language="vi", created_at=at))
    session.commit()


def _ticket(customer: int, store: str, category: str, created: datetime, **fields: Any) -> Ticket:
    return Ticket(customer_id=customer, store_id=store, channel="api", category=category, priority="normal",
                  subject="s", description=fields.pop("description", "d"), status=fields.pop("status", "new"),
                  created_at=created, created_by="test", first_response_due_at=created + timedelta(hours=24),
                  resolution_due_at=created + timedelta(hours=72), updated_at=created, **fields)


@pytest.fixture
def world(session: Session) -> dict[str, Any]:
    for store in ("HN01", "HN02", "SG01"):
        make_store(session, store)
    return {"customer": make_customer(session).id, "admin": make_key(session)}


class TestIntervals:
    def test_nps_of_nine_perfect_answers_is_not_certain(self) -> None:
        low, high = reports.nps_interval(9, 0, 9)
        assert (round(low, 1), high) == (41.3, 100.0)

    def test_nps_of_900_answers_is_narrow(self) -> None:
        low, high = reports.nps_interval(630, 90, 900)
        assert (round(low, 1), round(high, 1)) == (55.5, 64.1)

    def test_wilson(self) -> None:
        low, high = reports.wilson(3, 5)
        assert (round(low, 1), round(high, 1)) == (23.1, 88.2)

    def test_no_answers(self) -> None:
        assert reports.nps_interval(0, 0, 0) == (-100.0, 100.0) and reports.wilson(0, 0) == (0.0, 100.0)


class TestScores:
    def test_nps_per_store_with_counts(self, client: TestClient, session: Session, world: dict[str, Any]) -> None:
        _answers(session, world["customer"], "nps", "HN01", "email", [10, 9, 9, 8, 7, 6, 3, 10])
        rows = client.get("/v1/reports/nps?since=2026-10-01&until=2026-10-31",
                          headers=auth(world["admin"])).json()["rows"]
        assert len(rows) == 1
        row = rows[0]
        assert (row["store_id"], row["answers"], row["promoters"], row["passives"], row["detractors"],
                row["score"]) == ("HN01", 8, 4, 2, 2, 25.0)
        assert row["ci_low"] < 25.0 < row["ci_high"]

    def test_a_store_with_9_answers_is_not_ranked_above_one_with_900(
        self, client: TestClient, session: Session, world: dict[str, Any],
    ) -> None:
        _answers(session, world["customer"], "nps", "HN02", "sms", [10] * 9)
        _answers(session, world["customer"], "nps", "SG01", "email", [10] * 630 + [8] * 180 + [2] * 90)
        rows = client.get("/v1/reports/nps?since=2026-10-01&until=2026-10-31",
                          headers=auth(world["admin"])).json()["rows"]
        assert [(r["store_id"], r["answers"], r["score"]) for r in rows] == [("SG01", 900, 60.0), ("HN02", 9, 100.0)]

    def test_by_store_channel_and_month(self, client: TestClient, session: Session, world: dict[str, Any]) -> None:
        _answers(session, world["customer"], "nps", "HN01", "email", [10, 0])
        _answers(session, world["customer"], "nps", "HN01", "sms", [10])
        # 30 Oct 20:00 UTC is already 31 Oct... and 31 Oct 18:00 UTC is 1 November in Ho Chi Minh City.
        _answers(session, world["customer"], "nps", "HN01", "email", [9], at=datetime(2026, 10, 31, 18, 0, tzinfo=UTC))
        rows = client.get("/v1/reports/nps?by=store&by=channel&by=month&since=2026-10-01&until=2026-11-30",
                          headers=auth(world["admin"])).json()["rows"]
        found = sorted((r["store_id"], r["channel"], r["month"], r["answers"], r["score"]) for r in rows)
        assert found == [("HN01", "email", "2026-10", 2, 0.0), ("HN01", "email", "2026-11", 1, 100.0),
                         ("HN01", "sms", "2026-10", 1, 100.0)]

    def test_csat(self, client: TestClient, session: Session, world: dict[str, Any]) -> None:
        _answers(session, world["customer"], "csat", "HN01", "email", [5, 4, 4, 3, 1])
        row = client.get("/v1/reports/csat?since=2026-10-01&until=2026-10-31",
                         headers=auth(world["admin"])).json()["rows"][0]
        assert (row["answers"], row["satisfied"], row["score"], row["mean"], row["ci_low"], row["ci_high"]) == \
            (5, 3, 60.0, 3.4, 23.1, 88.2)

    def test_bad_range_and_grouping(self, client: TestClient, world: dict[str, Any]) -> None:
        assert_problem(client.get("/v1/reports/nps?since=2026-10-02&until=2026-10-01",
                                  headers=auth(world["admin"])), 422)
        assert_problem(client.get("/v1/reports/nps?by=weather", headers=auth(world["admin"])), 422)


class TestServiceTimes:
    def test_per_store_and_per_owner(self, client: TestClient, session: Session, world: dict[str, Any]) -> None:
        lan = make_staff(session, "agent", ("HN01",), name="Lan")
        c = world["customer"]
        session.add_all([
            _ticket(c, "HN01", "service", T, owner_id=lan, status="resolved", first_response_at=T + timedelta(hours=2),
                    resolved_at=T + timedelta(hours=10)),
            _ticket(c, "HN01", "service", T, owner_id=lan, status="assigned", first_response_at=T + timedelta(hours=30),
                    breached_at=T + timedelta(hours=24)),
            _ticket(c, "SG01", "price", T),
        ])
        session.commit()
        url = "/v1/reports/service-times?since=2026-10-01&until=2026-10-31"
        by_store = {r["key"]: r for r in client.get(url, headers=auth(world["admin"])).json()}
        hn = by_store["HN01"]
        assert (hn["tickets"], hn["responded"], hn["within_sla"], hn["breached"], hn["resolved"],
                hn["avg_first_response_hours"], hn["avg_resolution_hours"]) == (2, 2, 1, 1, 1, 16.0, 10.0)
        assert (by_store["SG01"]["tickets"], by_store["SG01"]["avg_first_response_hours"]) == (1, None)
        by_owner = client.get(url + "&by=owner", headers=auth(world["admin"])).json()
        assert [(r["key"], r["name"], r["tickets"]) for r in by_owner] == [(None, None, 1), (str(lan), "Lan", 2)] \
            or [(r["key"], r["name"], r["tickets"]) for r in by_owner] == [(str(lan), "Lan", 2), (None, None, 1)]
        manager = staff_key(session, make_staff(session, "manager", ("SG01",)), "manager")
        assert [r["key"] for r in client.get(url, headers=auth(manager)).json()] == ["SG01"]

    def test_agents_cannot_read_reports(self, client: TestClient, session: Session, world: dict[str, Any]) -> None:
        agent = staff_key(session, make_staff(session, "agent", ("HN01",)))
        assert_problem(client.get("/v1/reports/service-times", headers=auth(agent)), 403)
        assert_problem(client.get("/v1/reports/nps", headers=auth(agent)), 403)


class TestTrends:
    def test_the_rule(self) -> None:
        history = [2, 3, 2, 4, 3, 2, 3, 5]  # mean 3, sd 1, sqrt(mean) 1.73: threshold 6.46
        assert reports.rising(7, history) == (3.0, 6.46, True)
        assert reports.rising(6, history)[2] is False
        assert reports.rising(2, [0] * 8)[2] is False  # too few to mean anything
        assert reports.rising(3, [0] * 8) == (0.0, 2.0, True)
        assert reports.rising(12, [10, 10, 10, 10, 10, 10, 10, 10])[2] is False  # Poisson noise: 10 +- 6.3

    def test_weekly_review_flags_the_rising_category(self, client: TestClient, session: Session,
                                                     world: dict[str, Any]) -> None:
        c = world["customer"]
        week = date(2026, 10, 12)  # a Monday
        history = [2, 3, 2, 4, 3, 2, 3, 5]
        rows = []
        for back, n in zip(range(8, 0, -1), history, strict=True):
            day = datetime.combine(week - timedelta(weeks=back, days=-2), datetime.min.time(), tzinfo=HCM)
            rows += [_ticket(c, "HN01", "delivery", day + timedelta(hours=10)) for _ in range(n)]
            rows += [_ticket(c, "HN02", "service", day + timedelta(hours=10)) for _ in range(n)]
        this_week = datetime(2026, 10, 18, 23, 0, tzinfo=HCM)  # Sunday night still counts
        rows += [_ticket(c, "HN01", "delivery", this_week, description="Giao hàng chậm quá") for _ in range(7)]
        rows += [_ticket(c, "HN02", "service", this_week) for _ in range(6)]
        rows.append(_ticket(c, "HN02", "service", datetime(2026, 10, 19, 0, 0, tzinfo=HCM)))  # next week
        session.add_all(rows)
        session.commit()
        body = client.get("/v1/reports/weekly-review?week_of=2026-10-15", headers=auth(world["admin"])).json()
        assert datetime.fromisoformat(body["week_start"]) == datetime(2026, 10, 11, 17, 0, tzinfo=UTC)
        trends = {(t["dimension"], t["value"]): t for t in body["trends"]}
        delivery = trends[("category", "delivery")]
        assert (delivery["this_week"], delivery["previous"], delivery["mean"], delivery["threshold"],
                delivery["rising"]) == (7, history, 3.0, 6.46, True)
        assert (trends[("category", "service")]["this_week"], trends[("category", "service")]["rising"]) == (6, False)
        assert trends[("store", "HN01")]["rising"] and not trends[("store", "HN02")]["rising"]
        assert body["comments"] == 13
        assert body["words"][0]["term"] in {"giao", "hàng", "chậm"} and body["words"][0]["count"] == 7


class TestWords:
    def test_fold(self) -> None:
        assert fold("Đường CHẬM") == "duong cham"
        assert fold("chậm") == fold("cham") == fold("chằm")

    def test_top_words_and_phrases_with_examples(self) -> None:
        comments = ["Giao hàng chậm quá", "giao hang cham", "Nhân viên thân thiện", "Giao hàng rất chậm"]
        words, phrases = top_terms(comments)
        top = {w.term: w.count for w in words}
        assert top["chậm"] == 3 and top["giao"] == 3 and top["hàng"] == 3 and top["nhân"] == 1
        assert "rất" not in top and "quá" not in top
        assert [(p.term, p.count) for p in phrases] == [("giao hàng", 3), ("hàng chậm", 2)]
        assert phrases[0].examples == ["Giao hàng chậm quá", "giao hang cham"]

    def test_each_comment_counts_once(self) -> None:
        words, _ = top_terms(["chậm chậm chậm", "ok"])
        assert [(w.term, w.count) for w in words][:1] == [("chậm", 1)]


class TestDepartures:
    def test_reasons_are_counted(self, client: TestClient, session: Session, world: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        for kind, reason in [("cancelled", "price"), ("cancelled", "price"), ("cancelled", "service"),
                             ("won_back", "points")]:
            session.add(Departure(customer_id=world["customer"], kind=kind, reason=reason, note="", actor="t",
                                  created_at=now))
        session.commit()
        body = client.get("/v1/reports/departures", headers=auth(world["admin"])).json()
        assert body == [{"kind": "cancelled", "reason": "price", "count": 2},
                        {"kind": "cancelled", "reason": "service", "count": 1},
                        {"kind": "won_back", "reason": "points", "count": 1}]


@pytest.mark.parametrize("query", ["/v1/reports/weekly-review?week_of=0001-01-01",
                                   "/v1/reports/weekly-review?week_of=9999-12-31",
                                   "/v1/reports/nps?until=9999-12-31", "/v1/reports/csat?since=0001-01-01",
                                   "/v1/reports/service-times?since=0001-01-01&until=9999-12-31",
                                   "/v1/reports/departures?until=9999-12-31"])
def test_dates_at_the_ends_of_the_calendar_are_a_422(client: TestClient, session: Session, query: str) -> None:
    key = make_key(session, "admin")
    response = client.get(query, headers=auth(key))
    assert response.status_code == 422, response.text
    assert "out of range" in response.json()["detail"]
