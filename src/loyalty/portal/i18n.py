"""Vietnamese and English for the portal: Babel message catalogs and locale formats for money, points and dates.

The catalogs are the .po files beside this module, read and compiled in memory once per process
(babel.messages: read_po, write_mo). Loading the .po itself means there is no build step to
forget, no binary .mo in git that can drift from its source, and nothing to download: it costs
a few milliseconds on the first page. `tests/portal/test_i18n.py` checks that every message the
templates and views use has a Vietnamese translation.
"""

from __future__ import annotations

import gettext
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "messages"
# The portal's languages and the Babel locale whose formats each uses.
LANGUAGES: dict[str, str] = {"vi": "vi_VN", "en": "en"}
DATE_FORMATS: dict[str, str] = {"vi": "dd/MM/yyyy", "en": "d MMM yyyy"}
DATETIME_FORMATS: dict[str, str] = {"vi": "HH:mm dd/MM/yyyy", "en": "d MMM yyyy, HH:mm"}


@cache
def translations(lang: str) -> gettext.NullTranslations:
    path = LOCALES_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=LANGUAGES.get(lang, lang))
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def pick_language(requested: str | None, default: str = "vi") -> str:
    return requested if requested in LANGUAGES else default


@dataclass(frozen=True)
class Translator:
    """Everything a page needs to speak one language: gettext plus money, points and date formats."""

    lang: str
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Ho_Chi_Minh"))

    @property
    def locale(self) -> str:
        return LANGUAGES[self.lang]

    def gettext(self, message: str, **values: object) -> str:
        text = translations(self.lang).gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        text = translations(self.lang).ngettext(singular, plural, n)
        return text % {"num": n, **values}

    def money(self, amount: int, currency: str = "VND") -> str:
        """250.000 ₫ in Vietnamese, ₫250,000 in English."""
        return format_currency(amount, currency, locale=self.locale)

    def number(self, value: int) -> str:
        """Points: 12.345 in Vietnamese, 12,345 in English."""
        return format_decimal(value, locale=self.locale)

    def date(self, value: date | datetime | None) -> str:
        """23/11/2026 in Vietnamese, 23 Nov 2026 in English; a moment is shown in the business's time zone."""
        if value is None:
            return ""
        if isinstance(value, datetime):
            value = value.astimezone(self.tz).date()
        return format_date(value, DATE_FORMATS[self.lang], locale=self.locale)

    def datetime(self, value: datetime | None) -> str:
        if value is None:
            return ""
        return format_datetime(value, DATETIME_FORMATS[self.lang], tzinfo=self.tz, locale=self.locale)
