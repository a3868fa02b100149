"""Keeping the portal's message catalogs in step with the templates and views (Babel extraction).

`python -m loyalty.portal.catalog` rewrites locales/{vi,en}/LC_MESSAGES/messages.po from what the
portal's templates and views use, keeping every translation already there; a new message lands
with an empty Vietnamese translation, which tests/portal/test_i18n.py then refuses until filled.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from loyalty.portal.i18n import DOMAIN, LANGUAGES, LOCALES_DIR

WEB_DIR = Path(__file__).resolve().parents[1] / "web" / "portal"
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
KEYWORDS: dict[str, object] = {"_": None, "gettext": None, "N_": None}


def used_messages() -> dict[str, list[tuple[str, int]]]:
    """Every message the portal's views and templates use, with where."""
    found: dict[str, list[tuple[str, int]]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(WEB_DIR), METHODS, keywords=KEYWORDS):  # type: ignore[arg-type]
        if isinstance(message, str):
            found.setdefault(message, []).append((filename, lineno))
    return found


def po_path(lang: str) -> Path:
    return LOCALES_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(lang: str) -> Catalog:
    path = po_path(lang)
    if not path.exists():
        return Catalog(locale=LANGUAGES[lang], domain=DOMAIN)
    with path.open("rb") as source:
        return read_po(source, locale=LANGUAGES[lang], domain=DOMAIN)


def update() -> None:
    used = used_messages()
    for lang in LANGUAGES:
        old = read_catalog(lang)
        new = Catalog(locale=LANGUAGES[lang], domain=DOMAIN, project="loyalty member portal",
                      copyright_holder="loyalty contributors", fuzzy=False)
        for message, places in sorted(used.items()):
            previous = old.get(message)
            text = previous.string if previous is not None and previous.string else ""
            new.add(message, text, locations=sorted(places))
        path = po_path(lang)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as target:
            write_po(target, new, width=120, omit_header=False, sort_output=True, include_lineno=False)


if __name__ == "__main__":
    update()
