"""Where the portal sends a member after login or a language switch: never off the portal."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from loyalty.web.portal.member import HOME, safe_next


@given(st.text(max_size=60) | st.builds(lambda tail: "/portal" + tail, st.text(max_size=40)))
def test_next_always_stays_in_the_portal(target: str) -> None:
    chosen = safe_next(target)
    assert chosen.startswith("/portal") and not chosen.startswith("//") and "\\" not in chosen
    assert not chosen.startswith(("/portal/login", "/portal/logout"))


def test_known_targets() -> None:
    assert safe_next("/portal/history?before=5") == "/portal/history?before=5"
    for bad in (None, "", "//evil.example", "https://evil.example/portal", "/staff/", "/portal/login", "/\\evil"):
        assert safe_next(bad) == HOME

