"""Vietnamese and English: every message the portal shows is translated, and money and dates follow the locale."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from loyalty.portal.catalog import read_catalog, used_messages
from loyalty.portal.i18n import LANGUAGES, Translator, pick_language, translations

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


class TestCatalogs:
    def test_every_message_used_has_a_vietnamese_translation(self) -> None:
        catalog = read_catalog("vi")
        used = used_messages()
        assert len(used) > 100
        missing = [m for m in used if catalog.get(m) is None or not catalog.get(m).string]  # type: ignore[union-attr]
        assert missing == [], f"run `python -m loyalty.portal.catalog` and translate: {missing}"

    @pytest.mark.parametrize("lang", sorted(LANGUAGES))
    def test_catalogs_hold_exactly_the_messages_used(self, lang: str) -> None:
        in_catalog = {m.id for m in read_catalog(lang) if m.id}
        assert in_catalog == set(used_messages()), "run `python -m loyalty.portal.catalog`"

    def test_translations_keep_the_placeholders(self) -> None:
        for message in read_catalog("vi"):
            if message.id and message.string:
                assert isinstance(message.id, str) and isinstance(message.string, str)
                assert sorted(PLACEHOLDER.findall(message.id)) == sorted(PLACEHOLDER.findall(message.string)), \
                    message.id
                assert message.id.count("%%") == message.string.count("%%"), message.id

    def test_gettext_in_both_languages(self) -> None:
        assert Translator("vi").gettext("Log in") == "Đăng nhập"
        assert Translator("en").gettext("Log in") == "Log in"
        assert Translator("vi").gettext("%(points)s points", points="1.500") == "1.500 điểm"
        assert Translator("vi").gettext("not in the catalog") == "not in the catalog"
        assert translations("xx").gettext("Log in") == "Log in"


class TestFormats:
    def test_vietnamese_money_points_and_dates(self) -> None:
        t = Translator("vi", ZoneInfo("Asia/Ho_Chi_Minh"))
        assert t.money(250_000) == "250.000\xa0₫"
        assert t.number(1_234_567) == "1.234.567"
        assert t.date(date(2026, 11, 23)) == "23/11/2026"
        # 20:00 UTC on the 22nd is already the 23rd in Hà Nội.
        assert t.date(datetime(2026, 11, 22, 20, 0, tzinfo=UTC)) == "23/11/2026"
        assert t.datetime(datetime(2026, 11, 22, 20, 5, tzinfo=UTC)) == "03:05 23/11/2026"

    def test_english_money_points_and_dates(self) -> None:
        t = Translator("en", ZoneInfo("Asia/Ho_Chi_Minh"))
        assert t.money(250_000) == "₫250,000"
        assert t.number(1_234_567) == "1,234,567"
        assert t.date(date(2026, 11, 23)) == "23 Nov 2026"
        assert t.date(None) == "" and t.datetime(None) == ""

    @pytest.mark.parametrize(("asked", "got"), [("vi", "vi"), ("en", "en"), ("fr", "vi"), (None, "vi"), ("", "vi")])
    def test_unknown_languages_fall_back_to_the_default(self, asked: str | None, got: str) -> None:
        assert pick_language(asked) == got
