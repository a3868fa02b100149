"""Identities: every spelling of a phone, e-mail or card resolves to the same customer."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.customers.identities import guess_identity, normalise_card, normalise_email, normalise_phone
from loyalty.customers.schemas import CustomerCreate
from loyalty.customers.service import create_customer, lookup
from loyalty.errors import Conflict, ValidationFailed
from loyalty.models import CustomerIdentity
from tests.factories import make_customer


class TestPhoneNormalisation:
    @pytest.mark.parametrize("raw", ["0912 345 678", "+84912345678", "84912345678", "0912.345.678",
                                     "(0912) 345-678", " +84 912 345 678 "])
    def test_vietnamese_spellings_are_one_number(self, raw: str) -> None:
        assert normalise_phone(raw) == "+84912345678"

    def test_different_numbers_stay_different(self) -> None:
        assert normalise_phone("0912345678") != normalise_phone("0912345679")

    @pytest.mark.parametrize("raw", ["", "abc", "0912", "12345678901234567890", "+84 12"])
    def test_rubbish_is_refused(self, raw: str) -> None:
        with pytest.raises(ValidationFailed):
            normalise_phone(raw)

    def test_every_spelling_finds_the_customer(self, session: Session) -> None:
        customer = make_customer(session, phone="0912 345 678")
        for spelling in ("0912345678", "+84912345678", "84912345678", "+84 912 345 678"):
            assert lookup(session, phone=spelling).id == customer.id

    def test_a_second_customer_cannot_take_the_number_in_another_spelling(self, session: Session) -> None:
        owner = make_customer(session, phone="0912 345 678")
        with pytest.raises(Conflict) as caught:
            create_customer(session, CustomerCreate(phone="84912345678", name="Trần Thị Bình"))
        session.rollback()
        assert caught.value.extra["customer_id"] == owner.id
        count = session.scalar(select(func.count()).select_from(CustomerIdentity)
                               .where(CustomerIdentity.kind == "phone"))
        assert count == 1


class TestEmailNormalisation:
    def test_case_and_spaces_do_not_matter(self) -> None:
        assert normalise_email("  An.Nguyen@Example.COM ") == "an.nguyen@example.com"

    @pytest.mark.parametrize("raw", ["", "an", "an@", "@example.com", "an@example", "a n@example.com"])
    def test_rubbish_is_refused(self, raw: str) -> None:
        with pytest.raises(ValidationFailed):
            normalise_email(raw)

    def test_lookup_is_case_insensitive(self, session: Session) -> None:
        customer = make_customer(session, email="An.Nguyen@Example.com")
        assert lookup(session, email="AN.NGUYEN@EXAMPLE.COM").id == customer.id
        assert lookup(session, email="an.nguyen@example.com").id == customer.id

    def test_the_same_address_in_another_case_is_taken(self, session: Session) -> None:
        make_customer(session, email="an@example.com")
        with pytest.raises(Conflict):
            create_customer(session, CustomerCreate(phone="0987654321", email="AN@EXAMPLE.COM"))
        session.rollback()


class TestCards:
    def test_spaces_and_case_are_ignored(self) -> None:
        assert normalise_card(" ab 1234-5678 ") == "AB1234-5678"

    @pytest.mark.parametrize("raw", ["", "ab", "card#1", "x" * 41])
    def test_rubbish_is_refused(self, raw: str) -> None:
        with pytest.raises(ValidationFailed):
            normalise_card(raw)

    def test_lookup_by_card(self, session: Session) -> None:
        customer = make_customer(session, card="vip 0001")
        assert lookup(session, card="VIP0001").id == customer.id

    def test_one_card_one_customer(self, session: Session) -> None:
        make_customer(session, card="VIP0001")
        with pytest.raises(Conflict):
            create_customer(session, CustomerCreate(phone="0987654321", card="vip0001"))
        session.rollback()


class TestExternalIds:
    def test_namespaced_per_issuer(self, session: Session) -> None:
        shopee = make_customer(session, external_ids=[{"namespace": "shopee", "value": "u-1"}])
        lazada = make_customer(session, external_ids=[{"namespace": "lazada", "value": "u-1"}])
        assert shopee.id != lazada.id
        assert lookup(session, external_id="u-1", namespace="shopee").id == shopee.id
        assert lookup(session, external_id="u-1", namespace="lazada").id == lazada.id

    def test_needs_its_namespace(self, session: Session) -> None:
        make_customer(session, external_ids=[{"namespace": "shopee", "value": "u-1"}])
        with pytest.raises(ValidationFailed):
            lookup(session, external_id="u-1")


class TestGuessIdentity:
    @pytest.mark.parametrize(("raw", "expected"), [
        ("An@Example.com", ("email", "an@example.com")),
        ("0912 345 678", ("phone", "+84912345678")),
        ("+84912345678", ("phone", "+84912345678")),
        ("vip-0001", ("card", "VIP-0001")),
    ])
    def test_reads_free_form_references(self, raw: str, expected: tuple[str, str]) -> None:
        assert guess_identity(raw) == expected
