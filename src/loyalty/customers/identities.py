"""Normalising identities so the same phone, e-mail or card always finds the same customer."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

from loyalty.errors import ValidationFailed

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CARD = re.compile(r"^[A-Z0-9-]{4,40}$")


def normalise_phone(raw: str, region: str = "VN") -> str:
    """E.164: '0912 345 678', '+84 912 345 678' and '84912345678' are all '+84912345678'."""
    text = raw.strip()
    digits = re.sub(r"[\s().-]", "", text)
    if digits.startswith("84") and len(digits) in (11, 12):
        digits = "+" + digits
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed(f"{raw!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationFailed(f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str:
    text = raw.strip().lower()
    if not _EMAIL.match(text) or len(text) > 200:
        raise ValidationFailed(f"{raw!r} is not an e-mail address")
    return text


def normalise_card(raw: str) -> str:
    text = re.sub(r"\s", "", raw).upper()
    if not _CARD.match(text):
        raise ValidationFailed(f"{raw!r} is not a card number (4-40 letters, digits or dashes)")
    return text


def normalise_external(raw: str) -> str:
    text = raw.strip()
    if not text or len(text) > 200:
        raise ValidationFailed("an external id is 1-200 characters")
    return text


@lru_cache(maxsize=200_000)
def guess_identity(raw: str) -> tuple[str, str]:
    """Reads a free-form customer reference (CSV column, CLI argument): e-mail, phone or card.

    Memoised: an import sees the same customers batch after batch, and parsing a phone
    number is the costliest step per row (invalid input raises, and is not cached).
    """
    text = raw.strip()
    if "@" in text:
        return "email", normalise_email(text)
    if re.fullmatch(r"\+?[\d\s().-]{8,20}", text):
        return "phone", normalise_phone(text)
    return "card", normalise_card(text)
