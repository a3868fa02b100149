"""`loyalty tiers show | recompute` and the review inside `loyalty jobs run`."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from loyalty.cli.main import app
from loyalty.jobs import run_jobs
from loyalty.models.tiers import MemberTier
from loyalty.tiers.service import set_override
from tests.factories import make_customer, make_store
from tests.tiers.helpers import add_purchase, history, use_tiers, vn

runner = CliRunner()


def test_recompute_then_show(cli_db: str, session: Session) -> None:
    make_store(session)
    use_tiers(session)
    silver, gold = make_customer(session).id, make_customer(session).id
    make_customer(session)
    add_purchase(session, silver, 5_000_000, vn(2026, 3, 1))
    add_purchase(session, gold, 30_000_000, vn(2026, 3, 2))
    session.commit()
    result = runner.invoke(app, ["tiers", "recompute", "--at", "2026-06-01T00:00:00+07:00"])
    assert result.exit_code == 0, result.output
    assert "2 members moved up a tier" in result.output
    result = runner.invoke(app, ["tiers", "show", "--at", "2026-06-01T00:00:00+07:00"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line for line in result.output.splitlines() if line.strip()[:1] == "│"
             and len(line.split()) > 2}
    assert lines["MEMBER"].rstrip(" │").endswith("1") and lines["SILVER"].rstrip(" │").endswith("1")
    assert "5,000,000" in lines["SILVER"] and "20,000,000" in lines["GOLD"]


def test_show_without_tiers_says_so(cli_db: str) -> None:
    result = runner.invoke(app, ["tiers", "show"])
    assert result.exit_code == 2 and "no tiers" in result.output


def test_jobs_run_reviews_tiers_once(engine: Engine, session: Session) -> None:
    make_store(session)
    use_tiers(session, window={"rolling_months": 3}, every="month", grace_days=10)
    falls, overridden = make_customer(session).id, make_customer(session).id
    add_purchase(session, falls, 6_000_000, vn(2025, 10, 15))
    session.commit()
    from loyalty.programs.service import program_at
    from loyalty.tiers.service import recompute_all

    recompute_all(session, program_at(session), vn(2025, 12, 1))
    set_override(session, overridden, tier="GOLD", reason="x", until=vn(2026, 1, 5), actor="a", now=vn(2025, 12, 1))
    session.commit()
    first = {r.name: r.count for r in run_jobs(engine, vn(2026, 2, 11, 1))}
    second = {r.name: r.count for r in run_jobs(engine, vn(2026, 2, 12))}
    assert first["review tiers"] == 2 and second["review tiers"] == 0
    session.expire_all()
    assert session.scalar(select(MemberTier.tier).where(MemberTier.customer_id == falls)) == "MEMBER"
    assert history(session, falls)[-1] == ("SILVER", "MEMBER", "review_downgrade")
    assert history(session, overridden)[-1] == ("GOLD", "MEMBER", "override_end")
