"""Import history: runs started, followed and finished (or failed), their rejected rows kept in bulk, and CLI
imports recorded as started by "cli"."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from loyalty.cli.main import app
from loyalty.imports import history
from loyalty.imports.pipeline import run_recorded
from loyalty.imports.rows import CsvHeaderError
from loyalty.imports.service import BatchReport
from loyalty.models import Customer
from loyalty.models.imports import ImportRejection, ImportRun
from loyalty.timeutil import utcnow
from tests.factories import make_store


def start(session: Session, kind: str = "customers", **fields: Any) -> int:
    values: dict[str, Any] = {"file_name": "a.csv", "size_bytes": 10, "started_by": "test", **fields}
    run_id = history.start_run(session, kind=kind, **values).id
    session.commit()
    return run_id


def rejected_reason(session: Session, run_id: int, line: int) -> str:
    return next(r.reason for r in history.rejections_of(session, run_id) if r.line == line)


class TestRuns:
    def test_a_run_starts_running_moves_and_finishes_with_its_counts(self, session: Session) -> None:
        run_id = start(session, "transactions", file_name="sales.csv", size_bytes=1234, create_customers=True)
        run = history.get_run(session, run_id)
        assert (run.status, run.finished_at, run.rows_done, run.create_customers) == ("running", None, 0, True)
        history.record_progress(session, run_id, 500, 2000)
        session.commit()
        report = BatchReport(rows=2000, imported=1900, skipped=90, created_customers=4, points=777, rejected=10)
        history.finish_run(session, run_id, report, columns=["transaction_id", "amount"])
        session.commit()
        session.expire_all()
        run = history.get_run(session, run_id)
        assert (run.status, run.rows_done, run.imported, run.skipped, run.rejected, run.created_customers,
                run.points) == ("done", 2000, 1900, 90, 10, 4, 777)
        assert run.finished_at is not None and history.columns_of(run) == ["transaction_id", "amount"]
        history.record_progress(session, run_id, 1, 1)  # a late progress report does not undo the result
        session.commit()
        session.expire_all()
        assert history.get_run(session, run_id).rows_done == 2000

    def test_a_failed_run_keeps_why(self, session: Session) -> None:
        run_id = start(session)
        history.fail_run(session, run_id, "line 1: the header lacks transaction_id")
        session.commit()
        session.expire_all()
        run = history.get_run(session, run_id)
        assert (run.status, run.error) == ("failed", "line 1: the header lacks transaction_id")

    def test_recent_runs_newest_first_and_at_most_the_limit(self, session: Session) -> None:
        now = utcnow()
        ids = [history.start_run(session, kind="customers", file_name=f"{i}.csv", size_bytes=1, started_by="t",
                                 now=now - timedelta(minutes=30 - i)).id for i in range(25)]
        session.commit()
        recent = history.recent_runs(session, 20)
        assert [r.id for r in recent] == ids[::-1][:20]

    def test_an_unknown_run_is_not_found(self, session: Session) -> None:
        with pytest.raises(Exception, match="no import 999"):
            history.get_run(session, 999)


class TestRejections:
    def test_kept_in_file_order_with_their_fields_in_one_statement(self, engine: Engine, session: Session) -> None:
        run_id = start(session)
        rejections = [history.Rejection(line, f"reason {line}", [f"09{line:08d}", "Tên, có dấu phẩy"])
                      for line in range(600, 0, -1)]
        statements: list[str] = []

        def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if "import_rejections" in statement:
                statements.append(statement)

        event.listen(engine, "before_cursor_execute", seen)
        try:
            history.finish_run(session, run_id, BatchReport(rows=600, rejected=600), rejections)
            session.commit()
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        assert len(statements) == 1  # one executemany, not a statement per row
        first = list(history.rejections_of(session, run_id, limit=3))
        assert [(r.line, r.reason) for r in first] == [(1, "reason 1"), (2, "reason 2"), (3, "reason 3")]
        assert first[0].fields == ["0900000001", "Tên, có dấu phẩy"]
        assert len(list(history.rejections_of(session, run_id))) == 600


class TestRecordedImports:
    def test_a_recorded_import_keeps_the_rejected_rows_as_they_were(self, engine: Engine, session: Session,
                                                                     tmp_path: Path) -> None:
        path = tmp_path / "c.csv"
        path.write_text("phone,name,birthday\n0912000001,An,\n0912000002,Bình,not-a-date\n\"0912000003\",\"Chi, Lan\","
                        "\n0912000003,Chi again,\n", encoding="utf-8")
        run_id = start(session)
        seen: list[tuple[int, int]] = []
        report = run_recorded(engine, run_id, "customers", path, batch_size=2, on_rows=lambda d, t: seen.append((d, t)))
        assert seen == [(2, 4), (4, 4)]
        session.expire_all()
        run = history.get_run(session, run_id)
        assert (run.status, run.rows_done, run.imported, run.rejected) == ("done", 4, report.imported, 2)
        assert run.imported == 2 and "line 4" in rejected_reason(session, run_id, 5)
        rejected = list(history.rejections_of(session, run_id))
        assert [(r.line, r.fields) for r in rejected] == [(3, ["0912000002", "Bình", "not-a-date"]),
                                                          (5, ["0912000003", "Chi again", ""])]
        assert history.columns_of(run) == ["phone", "name", "birthday"]

    def test_an_import_that_fails_is_recorded_as_failed(self, engine: Engine, session: Session,
                                                         tmp_path: Path) -> None:
        path = tmp_path / "t.csv"
        path.write_text("transaction_id,amount\nT1,100\n", encoding="utf-8")
        run_id = start(session, "transactions")
        with pytest.raises(CsvHeaderError):
            run_recorded(engine, run_id, "transactions", path)
        session.expire_all()
        run = history.get_run(session, run_id)
        assert run.status == "failed" and run.error is not None and "the header lacks" in run.error

    def test_a_cli_import_records_a_run_started_by_cli(self, cli_db: str, session: Session, tmp_path: Path) -> None:
        make_store(session, "HN01")
        path = tmp_path / "khach.csv"
        path.write_text("phone,name\n0912000001,An\nnot-a-phone,Bình\n", encoding="utf-8")
        result = CliRunner().invoke(app, ["import", "customers", str(path)])
        assert result.exit_code == 1, result.output  # a row was rejected
        session.rollback()
        run = session.scalars(select(ImportRun)).one()
        assert (run.started_by, run.kind, run.file_name, run.status, run.imported, run.rejected) == (
            "cli", "customers", "khach.csv", "done", 1, 1)
        assert run.size_bytes == path.stat().st_size
        assert session.scalar(select(ImportRejection.line).where(ImportRejection.run_id == run.id)) == 3
        assert session.scalar(select(func.count()).select_from(Customer)) == 1
