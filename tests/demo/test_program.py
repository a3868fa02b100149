"""The demo chain's program file, its use by `loyalty demo`, and the CSV export of its purchases."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from loyalty.cli.main import app
from loyalty.demo.build import DEMO_PROGRAM_FILE, build_demo
from loyalty.demo.export import export_transactions
from loyalty.demo.rewards_data import CATALOGUE
from loyalty.imports.rows import TRANSACTION_OPTIONAL, TRANSACTION_REQUIRED
from loyalty.models.transactions import TransactionAward
from loyalty.programs.service import load_program_file, program_at
from loyalty.programs.simulate import load_history, simulate


def test_the_demo_program_is_valid_and_complete() -> None:
    definition, _ = load_program_file(DEMO_PROGRAM_FILE)
    assert [rate.points for rate in definition.earn] == [10, 5]
    assert len(definition.rules) >= 5
    assert definition.tiers is not None
    assert [level.name for level in definition.tiers.levels] == ["Thành viên", "Bạc", "Vàng", "Kim cương"]
    assert definition.rewards is not None
    assert [r.model_dump() for r in definition.rewards] == [r.model_dump() for r in CATALOGUE]


def test_export_writes_the_import_format(tmp_path: Path) -> None:
    path = tmp_path / "out" / "tx.csv"
    rows = export_transactions(path, seed=7, customers=40, purchases=300)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert rows == len(lines) - 1 > 250
    header = lines[0].split(",")
    assert set(TRANSACTION_REQUIRED) <= set(header) <= set(TRANSACTION_REQUIRED + TRANSACTION_OPTIONAL)
    result = CliRunner().invoke(app, ["demo", "--export-transactions", str(tmp_path / "cli.csv"), "--seed", "7",
                                      "--customers", "40", "--purchases", "300"])
    assert result.exit_code == 0 and (tmp_path / "cli.csv").read_text(encoding="utf-8") == path.read_text("utf-8")


def test_a_small_demo_earns_under_the_demo_program(engine: Engine, session: Session) -> None:
    summary = build_demo(engine, seed=11, customers=80, purchases=1500, console=Console(quiet=True))
    assert summary.ledger_ok and summary.purchases > 1000
    active = program_at(session).definition
    assert active.tiers is not None and active.name == "Chương trình thành viên"
    recorded = dict(session.execute(select(TransactionAward.rule_id, func.sum(TransactionAward.points))
                                    .group_by(TransactionAward.rule_id)).all())
    assert recorded.get("earn[0]", 0) > 0 and recorded.get("mua-lan-dau", 0) > 0
    report = simulate(load_history(session, [active]), active, active)
    simulated = report.active.points_by_rule
    # Every rule gives what the import recorded; the simulator adds tier perks replayed over time.
    assert {k: v for k, v in simulated.items() if not k.startswith("tier:")} == {k: int(v) for k, v in recorded.items()}
