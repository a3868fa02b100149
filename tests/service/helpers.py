"""Factories for the service desk: staff members and their keys."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.orm import Session

from loyalty.auth.service import create_key
from loyalty.service.schemas import StaffIn
from loyalty.service.staff import create_staff

_emails = itertools.count(1)
PROBLEM = "application/problem+json"


def make_staff(session: Session, role: str = "agent", stores: tuple[str, ...] = ("HN01",),
               name: str | None = None) -> int:
    member = create_staff(session, StaffIn(name=name or f"{role.title()} {next(_emails)}",
                                           email=f"staff{next(_emails)}@shop.vn", role=role,
                                           stores=list(stores)))
    session.commit()
    return member.id


def staff_key(session: Session, staff_id: int, role: str = "agent") -> str:
    _, plaintext = create_key(session, role=role, store_id=None, name=f"test-{role}", staff_id=staff_id)
    session.commit()
    return plaintext


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body
