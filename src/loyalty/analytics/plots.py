"""Figures for --plot: the RFM grid, Pareto curve, cohort heatmap, predicted vs actual, lifecycle flows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from loyalty.analytics.report import Report
from loyalty.errors import ValidationFailed

FORMATS = (".png", ".svg")


def _heatmap(ax: Any, matrix: np.ndarray, rows: list[str], cols: list[str], fmt: str,
             labels: list[list[str]] | None = None) -> None:
    image = ax.imshow(matrix, cmap="viridis", aspect="auto")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xticks(range(len(cols)), cols)
    if matrix.size <= 400:
        bright = 0.6 * float(np.nanmax(matrix)) if np.isfinite(matrix).any() else 0.0
        for (i, j), value in np.ndenumerate(matrix):
            if np.isfinite(value):
                text = format(value, fmt) if labels is None else f"{labels[i][j]}\n{format(value, fmt)}"
                # viridis is light at the top of its range: dark text there, white below.
                ax.text(j, i, text, ha="center", va="center", color="black" if value > bright else "white",
                        fontsize=7)
    ax.figure.colorbar(image, ax=ax)


def draw(report: Report, path: Path) -> None:
    if path.suffix.lower() not in FORMATS:
        raise ValidationFailed(f"--plot {path}: use a .png or .svg file name")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    try:
        _draw(report, ax)
        ax.set_title(f"{report.title} (as of {report.as_of})")
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


def _draw(report: Report, ax: Any) -> None:
    if report.name == "rfm":
        grid = report.sections["grid"]
        matrix = np.zeros((5, 5))
        for r, f, customers in grid.select("r", "f", "customers").iter_rows():
            matrix[5 - r, f - 1] = customers
        from loyalty.analytics.rfm import SEGMENT_MAP

        names = [list(SEGMENT_MAP[r - 1]) for r in range(5, 0, -1)]
        _heatmap(ax, matrix, [f"R{r}" for r in range(5, 0, -1)], [f"F{f}" for f in range(1, 6)], ".0f", names)
    elif report.name == "pareto":
        curve = report.plot_data["curve"]
        ax.plot(curve["customer_share"], curve["revenue_share"], label="customers by revenue")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="equal")
        ax.axvline(0.2, color="red", linewidth=0.8)
        ax.set_xlabel("share of customers (best first)")
        ax.set_ylabel("share of revenue")
        ax.legend()
    elif report.name == "cohorts":
        heat = report.plot_data["retention"]
        if heat.height:
            cols = [c for c in heat.columns if c != "cohort"]
            matrix = heat.select(cols).to_numpy().astype(np.float64)
            _heatmap(ax, matrix, heat["cohort"].to_list(), cols, ".0%")
        ax.set_xlabel("months since first purchase")
    elif report.name == "clv" and "holdout" in report.plot_data:
        by_x: pl.DataFrame = report.plot_data["holdout"]
        ax.plot(by_x["calibration_repeats"], by_x["actual"], marker="o", label="actual")
        ax.plot(by_x["calibration_repeats"], by_x["predicted"], marker="x", linestyle="--", label="predicted")
        ax.set_xlabel("repeat purchases in the calibration period")
        ax.set_ylabel("purchases per customer in the holdout period")
        ax.legend()
    elif report.name in ("clv", "churn"):
        values = (report.plot_data["p_alive"] if "p_alive" in report.plot_data else report.table["p_alive"]).to_numpy()
        ax.hist(values, bins=20)
        ax.set_xlabel("P(alive)")
        ax.set_ylabel("customers")
    elif report.name == "lifecycle":
        flows: pl.DataFrame = report.plot_data["flows"]
        froms, tos = sorted(set(flows["from"])), sorted(set(flows["to"]))
        matrix = np.full((len(froms), len(tos)), np.nan)
        for source, target, n in flows.iter_rows():
            matrix[froms.index(source), tos.index(target)] = n
        _heatmap(ax, matrix, froms, tos, ".0f")
        ax.set_ylabel("stage at the start of the period")
        ax.set_xlabel("stage now")
    elif report.name == "program":
        members = report.sections["members_by_month"]
        ax.plot(members["month"].to_list(), members["members"].to_list())
        ax.set_ylabel("enrolled members")
        ax.tick_params(axis="x", rotation=90)
    else:
        top = report.table.head(20)
        ax.barh([f"{d}:{k}" for d, k in top.select("dimension", "key").iter_rows()], top["revenue_after_points"])
        ax.set_xlabel("revenue after points cost")
