"""RFM, Pareto, cohorts and lifecycle on small hand-computed data sets."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from loyalty.analytics.cohorts import cohorts_report
from loyalty.analytics.lifecycle import lifecycle_report
from loyalty.analytics.loader import Dataset
from loyalty.analytics.pareto import concentration, pareto_report
from loyalty.analytics.rfm import SEGMENT_MAP, SEGMENTS, rfm_report
from tests.analytics.conftest import AS_OF, frame


class TestRfm:
    def test_scores_and_segments_by_hand(self, small: Dataset) -> None:
        table = rfm_report(small).table.sort("customer")
        assert table["recency_days"].to_list() == [1, 6, 30, 59, 88]
        assert table["frequency"].to_list() == [5, 4, 1, 2, 3]
        assert table["monetary"].to_list() == [500, 200, 1000, 20, 15]
        assert table["r"].to_list() == [5, 4, 3, 2, 1]
        assert table["f"].to_list() == [5, 4, 1, 2, 3]
        assert table["m"].to_list() == [4, 3, 5, 2, 1]
        assert table["segment"].to_list() == ["Champions", "Loyal Customers", "About to Sleep", "Hibernating",
                                              "At Risk"]

    def test_segment_table_shares(self, small: Dataset) -> None:
        segments = rfm_report(small).sections["segments"]
        champions = segments.filter(pl.col("segment") == "Champions").row(0, named=True)
        assert champions["members"] == 1
        assert champions["share_of_customers"] == pytest.approx(0.2)
        assert champions["share_of_revenue"] == pytest.approx(500 / 1735)
        assert champions["average_value"] == pytest.approx(500)
        assert segments["members"].sum() == 5
        assert set(segments["segment"]) == set(SEGMENTS)

    def test_ties_keep_quintiles_balanced(self) -> None:
        # Ten customers who all bought once on the same day: every score ties, yet each quintile gets two.
        data = Dataset(frame([(c, "2024-03-01", 100) for c in range(10)]), AS_OF, "test")
        table = rfm_report(data).table
        for column in ("r", "f", "m"):
            assert sorted(table[column].value_counts()["count"].to_list()) == [2, 2, 2, 2, 2]

    def test_segment_map_covers_every_cell_with_the_ten_segments(self) -> None:
        cells = {name for row in SEGMENT_MAP for name in row}
        assert cells == set(SEGMENTS)
        assert SEGMENT_MAP[4][4] == "Champions" and SEGMENT_MAP[0][4] == "Can't Lose Them"


class TestPareto:
    def test_top_shares_by_hand(self) -> None:
        top, curve, gini = concentration(np.array([10, 100, 25, 50, 15]))
        shares = dict(zip(top["top_percent"].to_list(), top["revenue_share"].to_list(), strict=True))
        # ceil(p% of 5): 1 customer for 1-20%, 3 for 50%.
        assert shares == {1: 0.5, 5: 0.5, 10: 0.5, 20: 0.5, 50: pytest.approx(175 / 200)}
        assert curve["revenue_share"][0] == 0 and curve["revenue_share"][-1] == pytest.approx(1.0)
        assert 0 < gini < 1

    def test_report_on_small_data(self, small: Dataset) -> None:
        report = pareto_report(small)
        assert report.summary["top_20_percent_share"] == pytest.approx(1000 / 1735)

    def test_equal_customers_have_no_concentration(self) -> None:
        _, _, gini = concentration(np.full(100, 7))
        assert gini == pytest.approx(0.0, abs=1e-9)


class TestCohorts:
    def test_retention_and_revenue_by_hand(self) -> None:
        data = Dataset(frame([(1, "2024-01-05", 10), (1, "2024-03-02", 30), (2, "2024-01-20", 5),
                              (2, "2024-02-01", 7), (2, "2024-02-03", 8), (3, "2024-02-10", 100)]),
                       date(2024, 3, 31), "test")
        table = cohorts_report(data).table
        assert table.rows() == [
            ("2024-01", 0, 2, 2, 1.0, 15, 7.5),
            ("2024-01", 1, 2, 1, 0.5, 15, 7.5),
            ("2024-01", 2, 2, 1, 0.5, 30, 15.0),
            ("2024-02", 0, 1, 1, 1.0, 100, 100.0),
        ]


class TestLifecycle:
    def test_stages_and_flows_by_hand(self, small: Dataset) -> None:
        report = lifecycle_report(small, period_days=30, lapsed_after_days=60, lost_after_days=90,
                                  loyal_min_purchases=3)
        stages = dict(report.table.select("customer", "stage").rows())
        assert stages == {1: "loyal", 2: "loyal", 3: "first purchase", 4: "repeat", 5: "lapsed"}
        flows = {(f, t): n for f, t, n in report.sections["flows"].rows()}
        assert flows == {("repeat", "loyal"): 1, ("loyal", "loyal"): 1, ("first purchase", "first purchase"): 1,
                         ("repeat", "repeat"): 1, ("loyal", "lapsed"): 1}

    def test_lost_and_prospects(self) -> None:
        customers = pl.DataFrame({"customer": [1, 2], "enrolled_on": [date(2023, 1, 1), date(2024, 3, 1)]})
        data = Dataset(frame([(1, "2023-06-01", 100)]), AS_OF, "test", customers=customers)
        stages = dict(lifecycle_report(data, lapsed_after_days=30, lost_after_days=90).table
                      .select("customer", "stage").rows())
        assert stages == {1: "lost", 2: "prospect"}

    def test_default_thresholds_follow_the_purchase_cycle(self, small: Dataset) -> None:
        thresholds = lifecycle_report(small).summary["thresholds"]
        assert thresholds["lapsed_after_days"] >= 14
        assert thresholds["lost_after_days"] > thresholds["lapsed_after_days"]


class TestUplift:
    def test_difference_in_differences_by_hand(self) -> None:
        from loyalty.analytics.program import uplift

        # 1 and 2 join in July 2024; 3 and 4 only in January 2025, so they are the comparison for July-December.
        history = [(1, "2024-03-05", 100), (1, "2024-08-05", 300), (2, "2024-02-05", 200), (2, "2024-09-05", 200),
                   (3, "2024-03-05", 100), (3, "2024-10-05", 150), (4, "2024-04-05", 100), (4, "2024-11-05", 50),
                   (3, "2025-02-01", 999)]
        customers = pl.DataFrame({"customer": [1, 2, 3, 4], "enrolled_on": [
            date(2024, 7, 10), date(2024, 7, 20), date(2025, 1, 15), date(2025, 1, 15)]})
        result = uplift(Dataset(frame(history), date(2025, 2, 28), "test", customers=customers))
        # Members: +200 and 0 (mean 100); others: +50 and -50 (mean 0).
        assert result["estimate"] == pytest.approx(100.0)
        se = (20000 / 2 + 5000 / 2) ** 0.5
        assert result["standard_error"] == pytest.approx(se)
        assert result["ci95"] == pytest.approx([100 - 1.96 * se, 100 + 1.96 * se])
        assert result["members"] == 2 and result["enrolment_months"] == 1

    def test_not_estimable_says_why(self, small: Dataset) -> None:
        from loyalty.analytics.program import uplift

        assert uplift(small)["reason"] == "needs enrolment dates"


def simulated(n: int = 3000, seed: int = 5) -> pl.DataFrame:
    from tests.analytics import simulate as sim

    data = sim.bgnbd_transactions(np.random.default_rng(seed), n, 0.243, 4.414, 0.793, 2.426, days=364,
                                  amount=(6.25, 3.74, 15.44))
    return pl.DataFrame({"customer": data["customer"].astype(np.int64), "days": data["day"].astype(np.int64),
                         "amount": data["amount"].astype(np.int64)}).select(
        "customer", day=pl.lit(date(2024, 1, 1)) + pl.duration(days=pl.col("days")), amount="amount",
        store=pl.lit("HN01"))


class TestClvSpend:
    def test_repeat_buyers_without_positive_spend_are_left_out_with_a_warning(self) -> None:
        from loyalty.analytics.clv import ClvOptions, clv_report

        frame = simulated()
        # Customers buying on at least 3 distinct days have x >= 2; sorted, as group_by's order varies by run.
        counts = (frame.group_by("customer").agg(pl.col("day").n_unique().alias("days"))
                  .filter(pl.col("days") >= 3).sort("customer")["customer"].head(2).to_list())
        # Two repeat buyers whose purchases after the first are free (zero amount): their mean repeat spend is 0.
        first = frame.group_by("customer").agg(pl.col("day").min().alias("first"))
        zeroed = frame.join(first, on="customer").with_columns(
            amount=pl.when(pl.col("customer").is_in(counts) & (pl.col("day") > pl.col("first")))
            .then(0).otherwise(pl.col("amount"))).drop("first")
        report = clv_report(Dataset(zeroed, date(2024, 12, 29), "test"), ClvOptions())
        assert any("2 repeat buyers with a mean repeat spend that is not positive" in w for w in report.warnings)
        assert report.summary["gamma_gamma"] is not None
        rows = report.table.filter(pl.col("customer").is_in(counts))
        # They still count their purchases, and get an expected spend from the population.
        assert (rows["x"] >= 2).all() and (rows["expected_spend"] > 0).all()

    def test_no_usable_spend_at_all_falls_back_and_says_so(self) -> None:
        from loyalty.analytics.clv import ClvOptions, clv_report

        frame = simulated(seed=6)
        first = frame.group_by("customer").agg(pl.col("day").min().alias("first"))
        zeroed = frame.join(first, on="customer").with_columns(
            amount=pl.when(pl.col("day") > pl.col("first")).then(0).otherwise(pl.col("amount"))).drop("first")
        report = clv_report(Dataset(zeroed, date(2024, 12, 29), "test"), ClvOptions())
        assert report.summary["gamma_gamma"] is None
        assert any("Gamma-Gamma: needs at least two repeat buyers" in w for w in report.warnings)
        assert any("falls back to each customer's own average" in w for w in report.warnings)

    def test_returns_in_an_export_are_revenue_not_purchases(self) -> None:
        data = Dataset(frame([(1, "2024-01-05", 100), (1, "2024-02-05", -40), (1, "2024-03-05", 50)]),
                       date(2024, 3, 31), "test")
        row = rfm_report(data).table.row(0, named=True)
        assert row["frequency"] == 2 and row["monetary"] == 110


class TestHoldout:
    """Fit on three quarters, predict the fourth: the conditional expectations of both models must match
    what the simulated customers then did."""

    @staticmethod
    def dataset(data: dict[str, np.ndarray]) -> Dataset:
        frame_ = pl.DataFrame({"customer": data["customer"].astype(np.int64), "days": data["day"].astype(np.int64),
                               "amount": data["amount"].astype(np.int64)}).select(
            "customer", day=pl.lit(date(2024, 1, 1)) + pl.duration(days=pl.col("days")), amount="amount",
            store=pl.lit(None, dtype=pl.String))
        return Dataset(frame_, date(2024, 12, 29), "test")

    def test_pareto_nbd_predicts_the_holdout(self) -> None:
        from loyalty.analytics.clv import ClvOptions, holdout
        from tests.analytics import simulate as sim

        data = self.dataset(sim.pareto_nbd_transactions(np.random.default_rng(8), 8000, 0.55, 10.58, 0.61, 11.67,
                                                        days=364))
        _, by_x, totals = holdout(data, ClvOptions(model="pareto-nbd", calibration_end=date(2024, 9, 29)))
        assert totals["predicted"] == pytest.approx(totals["actual"], rel=0.1)
        assert by_x["customers"].sum() == data.transactions["customer"].filter(
            data.transactions["day"] < date(2024, 9, 29)).n_unique()

    def test_bgnbd_predicts_the_holdout(self) -> None:
        from loyalty.analytics.clv import ClvOptions, holdout
        from tests.analytics import simulate as sim

        data = self.dataset(sim.bgnbd_transactions(np.random.default_rng(9), 8000, 0.243, 4.414, 0.793, 2.426,
                                                   days=364))
        _, by_x, totals = holdout(data, ClvOptions(calibration_end=date(2024, 9, 29)))
        assert totals["predicted"] == pytest.approx(totals["actual"], rel=0.1)
        # Customers with more calibration purchases are expected, and seen, to buy more.
        assert by_x["predicted"].to_list() == sorted(by_x["predicted"].to_list())
