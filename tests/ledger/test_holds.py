"""Two-phase redemption: hold (authorise) → capture all or part, or void; uncaptured holds lapse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from loyalty.errors import HoldNotActive, InsufficientPoints
from loyalty.ledger import service
from loyalty.models import Hold
from tests.factories import auth, make_customer, make_key, make_purchase, make_store
from tests.readers import assert_ledger_ok, balance_of, count, reading

PROBLEM = "application/problem+json"


class Till:
    """A member with 100 points, a store and an admin key."""

    def __init__(self, client: TestClient, session: Session) -> None:
        make_store(session)
        self.client, self.session = client, session
        self.customer_id = make_customer(session).id
        make_purchase(session, self.customer_id, 1_000_000)
        self.key = make_key(session)

    def hold(self, points: int, key: str | None = None, **extra: Any) -> Any:
        return self.client.post(f"/v1/customers/{self.customer_id}/holds", json={"points": points, **extra},
                                headers=auth(key or self.key))

    def capture(self, hold_id: int, points: int | None = None, key: str | None = None) -> Any:
        body = {"points": points} if points is not None else None
        return self.client.post(f"/v1/holds/{hold_id}/capture", json=body, headers=auth(key or self.key))

    def void(self, hold_id: int, key: str | None = None) -> Any:
        return self.client.post(f"/v1/holds/{hold_id}/void", headers=auth(key or self.key))

    def balance(self) -> tuple[int, int, int, int]:
        return balance_of(self.session, self.customer_id)


@pytest.fixture
def till(client: TestClient, session: Session) -> Till:
    return Till(client, session)


def _assert_not_active(response: Any) -> None:
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"].endswith("/hold-not-active")
    assert body["status"] == 409  # RFC 9457: the HTTP status, whatever state the hold is in


class TestCreateHold:
    def test_moves_points_from_available_to_held(self, till: Till) -> None:
        response = till.hold(40, reference="basket-7", store_id="HN01")
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["status"], body["points"], body["captured_points"], body["reference"]) == ("held", 40, 0,
                                                                                                "basket-7")
        assert body["balance"] == {"available": 60, "pending": 0, "held": 40, "owed": 0}
        assert till.balance() == (60, 0, 40, 0)
        assert_ledger_ok(till.session)

    def test_lasts_the_programs_timeout_unless_asked(self, till: Till) -> None:
        default = till.hold(10).json()
        short = till.hold(10, expires_in_seconds=10).json()
        for body, seconds in ((default, 15 * 60), (short, 10)):
            created = datetime.fromisoformat(body["created_at"])
            expires = datetime.fromisoformat(body["expires_at"])
            assert expires - created == timedelta(seconds=seconds)

    def test_more_than_the_balance_is_409_insufficient_points(self, till: Till) -> None:
        till.hold(70)
        response = till.hold(31)
        assert response.status_code == 409
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"].endswith("/insufficient-points")
        assert till.balance() == (30, 0, 70, 0)
        assert count(till.session, Hold) == 1
        assert_ledger_ok(till.session)

    def test_all_of_the_balance_can_be_held(self, till: Till) -> None:
        assert till.hold(100).status_code == 201
        assert till.balance() == (0, 0, 100, 0)

    @pytest.mark.parametrize("points", [0, -5])
    def test_points_must_be_positive(self, till: Till, points: int) -> None:
        assert till.hold(points).status_code == 422
        assert till.balance() == (100, 0, 0, 0)

    def test_unknown_customer_is_404(self, till: Till) -> None:
        response = till.client.post("/v1/customers/424242/holds", json={"points": 1}, headers=auth(till.key))
        assert response.status_code == 404
        assert count(till.session, Hold) == 0

    def test_unknown_store_is_refused(self, till: Till) -> None:
        response = till.hold(10, store_id="NOPE")
        assert response.status_code in (404, 422)
        assert till.balance() == (100, 0, 0, 0)


class TestCapture:
    def test_whole_hold(self, till: Till) -> None:
        hold = till.hold(40).json()
        response = till.capture(hold["id"])
        assert response.status_code == 200, response.text
        assert (response.json()["status"], response.json()["captured_points"]) == ("captured", 40)
        assert till.balance() == (60, 0, 0, 0)
        assert_ledger_ok(till.session)

    def test_part_returns_the_rest(self, till: Till) -> None:
        hold = till.hold(40).json()
        response = till.capture(hold["id"], 25)
        assert response.status_code == 200, response.text
        assert (response.json()["status"], response.json()["captured_points"]) == ("captured", 25)
        assert response.json()["balance"] == {"available": 75, "pending": 0, "held": 0, "owed": 0}
        assert till.balance() == (75, 0, 0, 0)
        assert_ledger_ok(till.session)

    @pytest.mark.parametrize("points", [41, 0])
    def test_outside_the_hold_is_refused(self, till: Till, points: int) -> None:
        hold = till.hold(40).json()
        assert till.capture(hold["id"], points).status_code == 422
        assert till.balance() == (60, 0, 40, 0)

    def test_twice_is_409(self, till: Till) -> None:
        hold = till.hold(40).json()
        till.capture(hold["id"], 10)
        _assert_not_active(till.capture(hold["id"], 10))
        assert till.balance() == (90, 0, 0, 0)

    def test_after_void_is_409(self, till: Till) -> None:
        hold = till.hold(40).json()
        assert till.void(hold["id"]).status_code == 200
        _assert_not_active(till.capture(hold["id"]))
        assert till.balance() == (100, 0, 0, 0)
        assert_ledger_ok(till.session)

    def test_unknown_hold_is_404(self, till: Till) -> None:
        assert till.capture(999).status_code == 404


class TestVoid:
    def test_returns_every_point(self, till: Till) -> None:
        hold = till.hold(40).json()
        response = till.void(hold["id"])
        assert response.status_code == 200
        assert response.json()["status"] == "voided"
        assert till.balance() == (100, 0, 0, 0)
        assert_ledger_ok(till.session)

    def test_after_capture_is_409(self, till: Till) -> None:
        hold = till.hold(40).json()
        till.capture(hold["id"])
        _assert_not_active(till.void(hold["id"]))
        assert till.balance() == (60, 0, 0, 0)

    def test_twice_is_409(self, till: Till) -> None:
        hold = till.hold(40).json()
        till.void(hold["id"])
        _assert_not_active(till.void(hold["id"]))
        assert till.balance() == (100, 0, 0, 0)


class TestStoreKeys:
    def test_a_store_holds_and_captures_its_own(self, till: Till) -> None:
        key = make_key(till.session, "store", "HN01")
        hold = till.hold(30, key=key)
        assert hold.status_code == 201
        assert hold.json()["store_id"] == "HN01"
        assert till.capture(hold.json()["id"], key=key).status_code == 200

    def test_a_store_cannot_touch_another_stores_hold(self, till: Till) -> None:
        make_store(till.session, "HN02")
        other = make_key(till.session, "store", "HN02")
        hold = till.hold(30, store_id="HN01").json()
        assert till.capture(hold["id"], key=other).status_code == 404
        assert till.void(hold["id"], key=other).status_code == 404
        assert till.client.get(f"/v1/holds/{hold['id']}", headers=auth(other)).status_code == 404
        assert till.hold(10, key=other, store_id="HN01").status_code == 403
        assert till.balance() == (70, 0, 30, 0)

    def test_a_readonly_key_cannot_hold(self, till: Till) -> None:
        assert till.hold(10, key=make_key(till.session, "readonly")).status_code == 403


class TestLapse:
    def test_uncaptured_holds_return_their_points(self, till: Till) -> None:
        hold = till.hold(40, expires_in_seconds=10).json()
        later = datetime.now(UTC) + timedelta(seconds=11)
        assert service.lapse_holds(till.session, later) == 1
        till.session.commit()
        assert till.balance() == (100, 0, 0, 0)
        with reading(till.session) as reader:
            lapsed = reader.get(Hold, hold["id"])
            assert lapsed is not None and lapsed.status == "expired"
        assert_ledger_ok(till.session)
        assert service.lapse_holds(till.session, later + timedelta(hours=1)) == 0
        till.session.commit()
        assert till.balance() == (100, 0, 0, 0)
        _assert_not_active(till.capture(hold["id"]))

    def test_only_holds_past_their_time_lapse(self, session: Session, till: Till) -> None:
        now = datetime.now(UTC)
        early = service.create_hold(session, customer_id=till.customer_id, points=10, store_id=None,
                                    reference=None, timeout=timedelta(minutes=5), actor="test", now=now)
        late = service.create_hold(session, customer_id=till.customer_id, points=20, store_id=None,
                                   reference=None, timeout=timedelta(minutes=30), actor="test", now=now)
        session.commit()
        assert service.lapse_holds(session, now + timedelta(minutes=5)) == 1
        session.commit()
        assert (early.status, late.status) == ("expired", "held")
        assert till.balance() == (80, 0, 20, 0)
        assert_ledger_ok(session)

    def test_a_hold_past_its_time_cannot_be_captured(self, session: Session, till: Till) -> None:
        now = datetime.now(UTC)
        hold = service.create_hold(session, customer_id=till.customer_id, points=10, store_id=None,
                                   reference=None, timeout=timedelta(minutes=5), actor="test", now=now)
        session.commit()
        with pytest.raises(HoldNotActive):
            service.capture_hold(session, hold.id, points=None, actor="test", now=now + timedelta(minutes=6))
        session.rollback()
        assert till.balance() == (90, 0, 10, 0)


class TestService:
    def test_hold_beyond_the_balance_raises_and_writes_nothing(self, session: Session, till: Till) -> None:
        with pytest.raises(InsufficientPoints):
            service.create_hold(session, customer_id=till.customer_id, points=101, store_id=None, reference=None,
                                timeout=timedelta(minutes=5), actor="test", now=datetime.now(UTC))
        session.rollback()
        assert count(session, Hold) == 0
        assert till.balance() == (100, 0, 0, 0)
