"""Customer lifetime value: BG/NBD (or Pareto/NBD) for repeat purchases, Gamma-Gamma for spend, discounted CLV."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import numpy as np
import polars as pl

from loyalty.analytics import models
from loyalty.analytics.loader import Dataset
from loyalty.analytics.report import Report
from loyalty.analytics.summary import PURCHASE, TIME_UNITS, model_inputs
from loyalty.errors import ValidationFailed

ModelName = Literal["bgnbd", "pareto-nbd"]
MODELS: tuple[str, ...] = ("bgnbd", "pareto-nbd")


@dataclass(frozen=True, slots=True)
class ClvOptions:
    model: str = "bgnbd"
    time_unit: str = "W"
    horizon_months: int = 12
    annual_discount_rate: float = 0.10
    calibration_end: date | None = None

    def check(self) -> None:
        if self.model not in MODELS:
            raise ValidationFailed(f"unknown model {self.model!r}; use one of {', '.join(MODELS)}")
        if self.time_unit not in TIME_UNITS:
            raise ValidationFailed(f"unknown time unit {self.time_unit!r}; use D, W or M")
        if not 1 <= self.horizon_months <= 600:
            raise ValidationFailed("horizon must be 1 to 600 months")
        if not 0 <= self.annual_discount_rate < 10:
            raise ValidationFailed("discount rate must be between 0 and 10 (0.1 = 10% a year)")


@dataclass(slots=True)
class Scored:
    """The fitted models and the per-customer predictions churn and win-back reuse."""

    table: pl.DataFrame
    purchase_fit: models.Fit
    spend_fit: models.Fit | None
    warnings: list[str] = field(default_factory=list)


def _arrays(frame: pl.DataFrame) -> tuple[models.Array, models.Array, models.Array]:
    return (frame["x"].to_numpy().astype(np.float64), frame["t_x"].to_numpy().astype(np.float64),
            frame["T"].to_numpy().astype(np.float64))


def fit_purchases(frame: pl.DataFrame, model: str) -> models.Fit:
    x, t_x, T = _arrays(frame)
    # Identical (x, t_x, T) rows are one row with a weight: the compression that makes fits fast.
    (ux, ut, uT), weights = models.compress(x, t_x, T)
    if model == "pareto-nbd":
        return models.fit_pareto_nbd(ux, ut, uT, weights)
    return models.fit_bgnbd(ux, ut, uT, weights)


def expected(fit: models.Fit, model: str, t: float, x: models.Array, t_x: models.Array,
             T: models.Array) -> models.Array:
    if model == "pareto-nbd":
        return models.pareto_nbd_expected(fit.params, t, x, t_x, T)
    return models.bgnbd_expected(fit.params, t, x, t_x, T)


def p_alive(fit: models.Fit, model: str, x: models.Array, t_x: models.Array, T: models.Array) -> models.Array:
    if model == "pareto-nbd":
        return models.pareto_nbd_p_alive(fit.params, x, t_x, T)
    return models.bgnbd_p_alive(fit.params, x, t_x, T)


def fit_spend(frame: pl.DataFrame, warnings: list[str]) -> tuple[models.Fit | None, models.Array]:
    """Gamma-Gamma on repeat buyers' mean repeat spend; returns the fit and each customer's expected spend."""
    x = frame["x"].to_numpy().astype(np.float64)
    m = frame["m"].to_numpy().astype(np.float64)
    repeat = x > 0
    usable = repeat & (m > 0)
    dropped = int(np.sum(repeat & ~usable))
    if dropped:
        warnings.append(f"Gamma-Gamma: {dropped} repeat buyers with a mean repeat spend that is not positive "
                        "were left out of the fit")
    observed_mean = float(np.mean(m[usable])) if usable.any() else float(
        frame["day_revenue"].sum() / max(int(frame["days"].sum()), 1))
    try:
        (ux, um), weights = models.compress(x[usable], m[usable])
        fit = models.fit_gamma_gamma(ux, um, weights)
    except models.ModelFitFailed as exc:
        warnings.append(f"{exc.detail}; expected spend falls back to each customer's own average")
        own = frame["day_revenue"].to_numpy() / np.maximum(frame["days"].to_numpy(), 1)
        return None, np.asarray(own, dtype=np.float64)
    warnings.extend(fit.warnings)
    return fit, models.gamma_gamma_expected_spend(fit.params, x, np.where(usable, m, 0.0), observed_mean)


def score_customers(data: Dataset, options: ClvOptions, as_of: date | None = None) -> Scored:
    """Fits on purchases up to `as_of` (the data's by default) and predicts per customer."""
    options.check()
    as_of = as_of or data.as_of
    frame = model_inputs(data.summary(as_of), options.time_unit)
    # Customers whose first purchase is today have no observation period yet: T = 0 identifies nothing.
    frame = frame.filter(pl.col("T") > 0)
    warnings: list[str] = []
    if frame.height < 2:
        raise models.ModelFitFailed(f"{options.model}: needs at least two customers whose first purchase is before "
                                    f"{as_of}, got {frame.height}")
    purchase_fit = fit_purchases(frame, options.model)
    warnings.extend(purchase_fit.warnings)
    x, t_x, T = _arrays(frame)
    unit = TIME_UNITS[options.time_unit]
    horizon = options.horizon_months * (365.25 / 12) / unit
    alive = p_alive(purchase_fit, options.model, x, t_x, T)
    purchases = expected(purchase_fit, options.model, horizon, x, t_x, T)
    bad = ~np.isfinite(purchases)
    if bad.any():
        warnings.append(f"{options.model}: expected purchases could not be computed for {int(bad.sum())} customers "
                        "(extreme frequencies overflow the closed form); they are reported as empty")
    spend_fit, spend = fit_spend(frame, warnings)
    monthly_rate = (1 + options.annual_discount_rate) ** (1 / 12) - 1
    clv = models.discounted_value(lambda t: expected(purchase_fit, options.model, t, x, t_x, T), spend,
                                  horizon, options.horizon_months, monthly_rate)
    table = frame.select("customer", "x", "t_x", "T", "m", "revenue", "last").with_columns(
        p_alive=pl.Series(alive),
        expected_purchases=pl.Series(np.where(bad, np.nan, purchases)).fill_nan(None),
        expected_spend=pl.Series(spend),
        clv=pl.Series(np.where(np.isfinite(clv), clv, np.nan)).fill_nan(None),
    )
    return Scored(table, purchase_fit, spend_fit, warnings)


def holdout(data: Dataset, options: ClvOptions) -> tuple[Scored, pl.DataFrame, dict[str, Any]]:
    """Fits up to the calibration end and compares predicted with actual purchase days after it."""
    end = options.calibration_end
    assert end is not None
    if not end < data.as_of:
        raise ValidationFailed(f"--calibration-end {end} must be before the as-of date {data.as_of}")
    scored = score_customers(data, ClvOptions(options.model, options.time_unit, options.horizon_months,
                                              options.annual_discount_rate), as_of=end)
    unit = TIME_UNITS[options.time_unit]
    length = (data.as_of - end).days / unit
    table = scored.table
    x, t_x, T = _arrays(table)
    predicted = expected(scored.purchase_fit, options.model, length, x, t_x, T)
    later = (data.transactions.filter((pl.col("day") > end) & PURCHASE)
             .group_by("customer").agg(actual=pl.col("day").n_unique().cast(pl.Int64)))
    compared = (table.select("customer", "x").with_columns(predicted=pl.Series(predicted))
                .join(later, on="customer", how="left").with_columns(pl.col("actual").fill_null(0)))
    by_x = (compared.with_columns(bucket=pl.col("x").clip(upper_bound=7).cast(pl.Int64))
            .group_by("bucket").agg(customers=pl.len(), predicted=pl.col("predicted").mean(),
                                    actual=pl.col("actual").mean())
            .sort("bucket").rename({"bucket": "calibration_repeats"})
            .with_columns(pl.col("calibration_repeats").cast(pl.String).replace({"7": "7+"})))
    totals = {"calibration_end": end.isoformat(), "holdout_length": length, "holdout_unit": options.time_unit,
              "predicted": float(np.nansum(predicted)), "actual": int(compared["actual"].sum())}
    return scored, by_x, totals


def clv_report(data: Dataset, options: ClvOptions) -> Report:
    warnings: list[str] = []
    sections: dict[str, pl.DataFrame] = {}
    summary: dict[str, Any] = {}
    plot: dict[str, Any] = {}
    if options.calibration_end is not None:
        calibrated, by_x, totals = holdout(data, options)
        sections["holdout_by_calibration_repeats"] = by_x
        summary["holdout"] = {**totals, "fit": models.summary(calibrated.purchase_fit)}
        warnings.extend(f"calibration: {w}" for w in calibrated.warnings)
        plot["holdout"] = by_x
    scored = score_customers(data, options)
    warnings.extend(scored.warnings)
    fit = scored.purchase_fit
    key = "pareto_nbd" if options.model == "pareto-nbd" else "bgnbd"
    summary[key] = {**fit.params, "log_likelihood": fit.log_likelihood, "converged": fit.converged}
    summary["gamma_gamma"] = (
        {**scored.spend_fit.params, "log_likelihood": scored.spend_fit.log_likelihood}
        if scored.spend_fit else None)
    table = scored.table.sort("clv", descending=True, nulls_last=True)
    summary.update({
        "model": options.model, "time_unit": options.time_unit, "horizon_months": options.horizon_months,
        "annual_discount_rate": options.annual_discount_rate, "customers": table.height,
        "expected_purchases": float(table["expected_purchases"].sum()), "total_clv": float(table["clv"].sum()),
        "mean_p_alive": float(np.mean(table["p_alive"].to_numpy())) if table.height else 0.0,
    })
    return Report("clv", "Customer lifetime value", data.as_of, table, summary=summary, sections=sections,
                  warnings=warnings, plot_data=plot,
                  display=["customer", "x", "revenue", "last", "p_alive", "expected_purchases", "expected_spend",
                           "clv"])

