"""The program file's `rewards:` list: validated with paths, synced into the catalogue on apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from loyalty.cli.main import app
from loyalty.errors import ConfigError
from loyalty.models.rewards import Reward
from loyalty.programs.schemas import parse_program
from loyalty.programs.service import apply_program, load_program_file, program_at
from tests.readers import assert_ledger_ok, reading
from tests.rewards.helpers import Counter


def program(*rewards: dict[str, Any], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "Chương trình", **extra}
    if rewards or "rewards" not in extra:
        data["rewards"] = list(rewards)
    return data


def coffee(**overrides: Any) -> dict[str, Any]:
    return {"code": "COFFEE", "name": "Cà phê sữa đá", "kind": "free_product", "sku": "CF-01", "points_cost": 50,
            "stock": 100, **overrides}


def apply(session: Session, data: dict[str, Any]) -> None:
    apply_program(session, parse_program(data), "test", actor="test")
    session.commit()


def catalogue(session: Session) -> dict[str, tuple[bool, int | None, int]]:
    with reading(session) as reader:
        return {r.code: (r.active, r.stock, r.points_cost) for r in reader.scalars(select(Reward))}


class TestValidation:
    def test_errors_name_their_path_in_the_file(self) -> None:
        with pytest.raises(ConfigError) as caught:
            parse_program(program(coffee(), coffee(code="TEA"), coffee(code="CAKE", points_cost=0),
                                  coffee(code="OFF", kind="voucher_percent", sku=None)))
        errors = caught.value.extra["errors"]
        assert "rewards[2].points_cost: Input should be greater than 0" in errors
        assert any(e.startswith("rewards[3]: a voucher_percent reward needs percent") for e in errors), errors

    def test_duplicate_codes_are_refused(self) -> None:
        with pytest.raises(ConfigError, match=r"'COFFEE' is listed twice: rewards\[0\] and rewards\[1\]"):
            parse_program(program(coffee(), coffee(name="again")))

    def test_unknown_fields_are_refused(self) -> None:
        with pytest.raises(ConfigError, match=r"rewards\[0\]\.price: Extra inputs are not permitted"):
            parse_program(program(coffee(price=5)))

    def test_yaml_file_with_rewards(self, tmp_path: Path) -> None:
        path = tmp_path / "program.yaml"
        path.write_text("name: x\nrewards:\n  - code: SHIP\n    name: Free shipping\n    kind: free_shipping\n"
                        "    points_cost: 30\n    valid_until: 2027-01-01T00:00:00+07:00\n", encoding="utf-8")
        definition, _ = load_program_file(path)
        assert definition.rewards is not None
        assert definition.rewards[0].code == "SHIP"


class TestSync:
    def test_apply_creates_the_catalogue(self, session: Session) -> None:
        apply(session, program(coffee(), {"code": "V50", "name": "50k off", "kind": "voucher_amount",
                                          "amount": 50_000, "points_cost": 400}))
        assert catalogue(session) == {"COFFEE": (True, 100, 50), "V50": (True, None, 400)}

    def test_stock_is_kept_unless_the_file_changes_it(self, client: TestClient, session: Session) -> None:
        counter = Counter(client, session)
        apply(session, program(coffee(stock=3)))
        member = counter.member()
        counter.issued(member)
        assert catalogue(session)["COFFEE"] == (True, 2, 50)
        apply(session, program(coffee(stock=3, points_cost=60)))  # stock unchanged in the file: kept at 2
        assert catalogue(session)["COFFEE"] == (True, 2, 60)
        apply(session, program(coffee(stock=10, points_cost=60)))  # the file changed it: set
        assert catalogue(session)["COFFEE"] == (True, 10, 60)
        assert_ledger_ok(session)

    def test_rewards_missing_from_the_file_become_inactive_never_deleted(
        self, client: TestClient, session: Session,
    ) -> None:
        counter = Counter(client, session)
        apply(session, program(coffee(), coffee(code="TEA", sku="TEA-01")))
        voucher = counter.issued(counter.member(), "TEA")
        apply(session, program(coffee()))
        assert catalogue(session) == {"COFFEE": (True, 100, 50), "TEA": (False, 99, 50)}
        # The member's voucher still works at the till.
        assert counter.redeem(voucher["code"]).status_code == 200
        # Listed again (say, next season), it is offered again with the stock the file now gives it.
        apply(session, program(coffee(), coffee(code="TEA", sku="TEA-01")))
        assert catalogue(session)["TEA"] == (True, 100, 50)

    def test_a_file_without_rewards_leaves_the_catalogue_alone(self, client: TestClient, session: Session) -> None:
        counter = Counter(client, session)
        counter.reward("API", stock=4)
        apply(session, {"name": "earn rates only"})
        assert catalogue(session) == {"API": (True, 4, 100)}
        apply(session, program())  # an empty list is a catalogue with nothing in it
        assert catalogue(session) == {"API": (False, 4, 100)}

    def test_rewards_survive_the_stored_program_round_trip(self, session: Session) -> None:
        apply(session, program(coffee(valid_until="2030-01-01T00:00:00+07:00")))
        with reading(session) as reader:
            stored = program_at(reader).definition.rewards
        assert stored is not None and stored[0].code == "COFFEE"



class TestCommandLine:
    def test_a_bad_catalogue_is_reported_with_its_path_and_nothing_is_applied(
        self, cli_db: str, session: Session, tmp_path: Path,
    ) -> None:
        path = tmp_path / "program.yaml"
        path.write_text("name: x\nrewards:\n  - {code: A, name: A, kind: item, points_cost: 5}\n"
                        "  - {code: B, name: B, kind: item, points_cost: 5}\n"
                        "  - {code: C, name: C, kind: item, points_cost: -5}\n", encoding="utf-8")
        result = CliRunner().invoke(app, ["program", "apply", str(path)])
        assert result.exit_code == 2
        assert "rewards[2].points_cost" in result.output
        assert catalogue(session) == {}
        path.write_text(path.read_text(encoding="utf-8").replace("-5", "5"), encoding="utf-8")
        result = CliRunner().invoke(app, ["program", "apply", str(path)])
        assert result.exit_code == 0, result.output
        assert set(catalogue(session)) == {"A", "B", "C"}
