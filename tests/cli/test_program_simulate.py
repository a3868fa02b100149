"""`loyalty program simulate`: the draft beside the program in force, as a table or JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from loyalty.cli.main import app
from loyalty.models import LedgerEntry
from tests.factories import make_customer, make_purchase, make_store

runner = CliRunner()
DRAFT = "name: Nháp\nearn:\n  - store_kinds: [retail]\n    points: 20\n    per_amount: 100000\n"


def _history(session: Session) -> None:
    make_store(session)
    member = make_customer(session, phone="0912000222").id
    for days in (3, 2, 1):
        make_purchase(session, member, 1_000_000, occurred_at=datetime.now(UTC) - timedelta(days=days))


def test_table_with_the_difference(cli_db: str, session: Session, tmp_path: Path) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    _history(session)
    entries = session.scalar(select(func.count()).select_from(LedgerEntry))
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFT, encoding="utf-8")
    result = runner.invoke(app, ["program", "simulate", str(draft)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "draft: Nháp" in result.output and "points issued" in result.output
    assert "600" in result.output and "300" in result.output and "+300" in result.output
    session.rollback()
    assert session.scalar(select(func.count()).select_from(LedgerEntry)) == entries  # nothing written


def test_json_and_csv(cli_db: str, session: Session, tmp_path: Path) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    _history(session)
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFT, encoding="utf-8")
    csv = tmp_path / "tx.csv"
    csv.write_text("transaction_id,store_id,customer,occurred_at,amount\nX1,HN01,0912000222,2026-01-05T09:00:00,"
                   "500000\n", encoding="utf-8")
    result = runner.invoke(app, ["program", "simulate", str(draft), "--transactions", str(csv), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["purchases"] == 1 and body["draft"]["points_issued"] == 100 and body["active"]["points_issued"] == 50
    assert body["difference"]["cost"] == 50_000


def test_date_range_and_bad_files(cli_db: str, session: Session, tmp_path: Path) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    _history(session)
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFT, encoding="utf-8")
    day = (datetime.now(UTC) - timedelta(days=2)).astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
    result = runner.invoke(app, ["program", "simulate", str(draft), "--from", day, "--to", day, "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["purchases"] == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nearn: [{points: 1}]\n", encoding="utf-8")
    result = runner.invoke(app, ["program", "simulate", str(bad)])
    assert result.exit_code == 2 and "earn[0]" in result.output
    result = runner.invoke(app, ["program", "simulate", str(draft), "--transactions", str(tmp_path / "none.csv")])
    assert result.exit_code == 2 and "cannot read" in result.output
