"""Finding customers by part of a name, a phone, an e-mail or a card."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from loyalty.customers.search import search_customers
from loyalty.errors import ValidationFailed
from tests.factories import make_customer


def test_by_name_phone_email_card_and_id(session: Session) -> None:
    mai = make_customer(session, name="Nguyễn Thị Mai", phone="0912345678", email="Mai@Example.vn", card="LC-0042")
    make_customer(session, name="Trần Văn Bình")
    session.rollback()
    for query in ("mai", "Thị M", "0912345678", "+84912345678", "mai@example.vn", "lc-0042", str(mai.id)):
        found = search_customers(session, query)
        assert [f.id for f in found] == [mai.id], query
    hit = search_customers(session, "0912345678")[0]
    assert hit.phone == "+84912345678" and hit.email == "mai@example.vn"
    assert search_customers(session, "nobody") == []
    assert search_customers(session, "100%_") == []  # LIKE wildcards are literal


def test_too_short_or_too_long_is_refused(session: Session) -> None:
    with pytest.raises(ValidationFailed):
        search_customers(session, " a ")
    with pytest.raises(ValidationFailed):
        search_customers(session, "x" * 201)


def test_results_are_capped(session: Session) -> None:
    for i in range(5):
        make_customer(session, name=f"Lê Văn {i}")
    session.rollback()
    assert len(search_customers(session, "lê văn", limit=3)) == 3
