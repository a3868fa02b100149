"""The `loyalty` command line, run in-process against the test database."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text
from typer.testing import CliRunner

from loyalty.cli.main import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


class TestProgramFiles:
    def test_validate_reports_every_error_with_its_path(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.yaml"
        path.write_text("name: x\nearn:\n  - store_kinds: [retail]\n    points: 10\n    per_amount: 0\n"
                        "  - store_kinds: [shop]\n    points: 5\n    per_amount: 100\nredemption:\n  point_value: -1\n")
        code, output = run("program", "validate", str(path))
        assert code == 2
        assert "earn[0].per_amount" in output and "earn[1].store_kinds" in output
        assert "redemption.point_value" in output

    def test_invalid_yaml_names_the_line(self, tmp_path: Path) -> None:
        path = tmp_path / "broken.yaml"
        path.write_text("name: x\nearn: [\n")
        code, output = run("program", "validate", str(path))
        assert code == 2 and "line" in output

    def test_apply_and_show(self, cli_db: str, tmp_path: Path) -> None:
        assert run("init")[0] == 0
        path = tmp_path / "p.yaml"
        path.write_text("name: Café\nearn:\n  - store_kinds: [retail]\n    points: 1\n    per_amount: 10000\n")
        code, output = run("program", "apply", str(path))
        assert code == 0 and "version 2" in output
        code, output = run("program", "show")
        assert code == 0 and "Café" in output and "per_amount: 10000" in output


class TestOperations:
    def test_init_keys_import_show_jobs_and_verify(self, cli_db: str, tmp_path: Path) -> None:
        assert run("init")[0] == 0
        assert run("stores", "add", "HN01", "--name", "Hoàn Kiếm", "--kind", "retail")[0] == 0
        code, output = run("keys", "create", "--role", "store", "--store", "HN01")
        assert code == 0 and output.strip().startswith("lk_")
        assert run("keys", "create", "--role", "store")[0] == 2  # a store key needs its store

        customers = tmp_path / "customers.csv"
        customers.write_text("phone,name\n0912345678,Nguyễn Văn An\n", encoding="utf-8")
        assert run("import", "customers", str(customers))[0] == 0
        tx = tmp_path / "tx.csv"
        tx.write_text("transaction_id,store_id,customer,occurred_at,amount\n"
                      "T1,HN01,0912345678,2026-11-01T10:00:00+07:00,250000\n"
                      "T2,HN01,0912345678,not-a-date,100000\n", encoding="utf-8")
        code, output = run("import", "transactions", str(tx))
        assert code == 1 and "tx.csv:3" in output and "1 imported" in output

        code, output = run("customer", "show", "0912 345 678")
        assert code == 0 and "available 20" in output and "Nguyễn Văn An" in output
        assert run("customer", "show", "0999999999")[0] == 2

        code, output = run("jobs", "run", "--now", "2028-01-01T00:00:00")
        assert code == 0 and "expire points: 20 points" in output
        code, output = run("ledger", "verify")
        assert code == 0 and "ledger verified" in output

    def test_verify_fails_on_a_corrupted_balance(self, cli_db: str, engine: Engine, tmp_path: Path) -> None:
        assert run("init")[0] == 0
        assert run("stores", "add", "HN01", "--name", "Hoàn Kiếm", "--kind", "retail")[0] == 0
        tx = tmp_path / "tx.csv"
        tx.write_text("transaction_id,store_id,customer,occurred_at,amount\n"
                      "T1,HN01,0912345678,2026-11-01T10:00:00+07:00,250000\n", encoding="utf-8")
        assert run("import", "transactions", str(tx), "--create-customers")[0] == 0
        with engine.begin() as conn:
            conn.execute(text("UPDATE member_balances SET available = available + 5"))
        code, output = run("ledger", "verify")
        assert code == 1 and "violation" in output
