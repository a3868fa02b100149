"""`loyalty analytics <report>` on CSV files and on the database: tables, --json, --out, --plot, errors."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from loyalty.cli.main import app
from tests.analytics import simulate as sim
from tests.factories import make_customer, make_purchase, make_store

runner = CliRunner()
START = date(2024, 1, 1)


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["analytics", *args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def simulated_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A year of purchases by 4,000 customers from BG/NBD (CDNOW parameters) with Gamma-Gamma spend."""
    rng = np.random.default_rng(2005)
    data = sim.bgnbd_transactions(rng, 4000, 0.243, 4.414, 0.793, 2.426, days=364, amount=(6.25, 3.74, 15.44))
    frame = pl.DataFrame({
        "customer": data["customer"].astype(np.int64),
        "days": data["day"].astype(np.int64),
        "amount": data["amount"].astype(np.int64),
    }).select("customer", date=pl.lit(START) + pl.duration(days=pl.col("days")), amount="amount",
              store=pl.lit("HN01"))
    path = tmp_path_factory.mktemp("sim") / "transactions.csv"
    frame.write_csv(path)
    return path


class TestOnACsvFile:
    def test_rfm_json(self, small_csv: Path) -> None:
        code, output = run("rfm", "--transactions", str(small_csv), "--json", "--as-of", "2024-03-31")
        assert code == 0, output
        body = json.loads(output)
        assert body["as_of"] == "2024-03-31" and body["total_rows"] == 5
        assert {s["segment"] for s in body["segments"] if s["members"]} == {
            "Champions", "Loyal Customers", "About to Sleep", "Hibernating", "At Risk"}

    @pytest.mark.parametrize("report", ["rfm", "pareto", "cohorts", "lifecycle", "profitability"])
    def test_table_out_and_plot(self, report: str, small_csv: Path, tmp_path: Path) -> None:
        out, plot = tmp_path / f"{report}.csv", tmp_path / f"{report}.png"
        code, output = run(report, "--transactions", str(small_csv), "--out", str(out), "--plot", str(plot))
        assert code == 0, output
        assert pl.read_csv(out).height > 0
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_svg_plot(self, small_csv: Path, tmp_path: Path) -> None:
        code, output = run("pareto", "--transactions", str(small_csv), "--plot", str(tmp_path / "p.svg"))
        assert code == 0, output
        assert "<svg" in (tmp_path / "p.svg").read_text()

    def test_clv_with_calibration_and_parameters_in_json(self, simulated_csv: Path, tmp_path: Path) -> None:
        end = (START + timedelta(days=272)).isoformat()
        code, output = run("clv", "--transactions", str(simulated_csv), "--json", "--calibration-end", end,
                           "--plot", str(tmp_path / "holdout.png"))
        assert code == 0, output
        body = json.loads(output)
        assert set(body["bgnbd"]) >= {"r", "alpha", "a", "b", "log_likelihood"}
        assert set(body["gamma_gamma"]) >= {"p", "q", "v"}
        holdout = body["holdout"]
        # The model predicts the last quarter's purchases from the first three quarters.
        assert holdout["predicted"] == pytest.approx(holdout["actual"], rel=0.12)
        by_x = body["tables"]["holdout_by_calibration_repeats"]
        assert by_x[0]["calibration_repeats"] == "0" and by_x[-1]["calibration_repeats"] == "7+"
        row = body["rows"][0]
        assert 0 <= row["p_alive"] <= 1 and row["clv"] > 0

    def test_clv_pareto_nbd_and_daily_units(self, simulated_csv: Path) -> None:
        code, output = run("clv", "--transactions", str(simulated_csv), "--json", "--model", "pareto-nbd",
                           "--time-unit", "D")
        assert code == 0, output
        body = json.loads(output)
        assert set(body["pareto_nbd"]) >= {"r", "alpha", "s", "beta"} and body["time_unit"] == "D"

    def test_churn_winback_list(self, simulated_csv: Path, tmp_path: Path) -> None:
        out = tmp_path / "winback.csv"
        code, output = run("churn", "--transactions", str(simulated_csv), "--out", str(out), "--plot",
                           str(tmp_path / "churn.png"))
        assert code == 0, output
        assert (tmp_path / "churn.png").stat().st_size > 1000
        winback = pl.read_csv(out)
        assert winback.height > 0
        values = winback["expected_value_recovered"].to_list()
        assert values == sorted(values, reverse=True)
        assert (winback["p_alive"] < 0.5).all() and set(winback["last_store"]) == {"HN01"}

    def test_unknown_report_exits_2(self, small_csv: Path) -> None:
        code, _ = run("horoscope", "--transactions", str(small_csv))
        assert code == 2

    def test_bad_csv_names_the_line(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.csv"
        path.write_text("customer,date,amount\n1,2024-01-01,5\n2,2024-13-01,5\n")
        code, output = run("rfm", "--transactions", str(path))
        # Rich wraps at the terminal's width, where a long temporary path may put a line break.
        flat = "".join(output.split())
        assert code == 2 and "bad.csv:3:date:notanISOdate" in flat

    def test_program_needs_the_database(self, small_csv: Path) -> None:
        code, output = run("program", "--transactions", str(small_csv))
        assert code == 2 and "needs the loyalty database" in " ".join(output.split())

    def test_one_buyer_only_says_the_model_cannot_be_fitted(self, tmp_path: Path) -> None:
        path = tmp_path / "one.csv"
        path.write_text("customer,date,amount\n1,2024-01-01,5\n1,2024-02-01,5\n")
        code, output = run("clv", "--transactions", str(path), "--as-of", "2024-03-01")
        assert code == 2 and "at least two customers" in " ".join(output.split())


class TestOnTheDatabase:
    def test_rfm_table(self, cli_db: str, session: Session) -> None:
        make_store(session)
        customer = make_customer(session).id
        make_purchase(session, customer, 300_000)
        code, output = run("rfm")
        assert code == 0, output
        assert "RFM segments" in output and "300,000" in output

    def test_program_table_and_plot(self, cli_db: str, session: Session, tmp_path: Path) -> None:
        make_store(session)
        make_purchase(session, make_customer(session).id, 300_000)
        code, output = run("program", "--plot", str(tmp_path / "members.svg"))
        assert code == 0, output
        assert "member share of revenue" in output and "100.0%" in output
        assert "<svg" in (tmp_path / "members.svg").read_text()
