"""BG/NBD, Pareto/NBD and Gamma-Gamma: vectorised log-likelihoods, maximum-likelihood fits, predictions.

Formulas from Fader, Hardie & Lee, "Counting Your Customers the Easy Way" (2005) for BG/NBD,
Fader & Hardie, "A Note on Deriving the Pareto/NBD Model and Related Expressions" (2005) for
Pareto/NBD, and Fader, Hardie & Lee, "RFM and CLV: Using Iso-Value Curves" (2005) for Gamma-Gamma.
Inputs per customer: x repeat purchases, t_x the time of the last one and T the age, both measured
from the first purchase. Fits compress identical (x, t_x, T) rows and weight them by their count.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import optimize, special  # type: ignore[import-untyped]

from loyalty.errors import LoyaltyError

Array = npt.NDArray[np.float64]


class ModelFitFailed(LoyaltyError):
    """The data cannot identify the model (no repeat buyers, one customer, ...) or the optimiser failed."""

    status = 422
    type_slug = "model-fit-failed"
    title = "The model cannot be fitted to these data"


@dataclass(frozen=True, slots=True)
class Fit:
    params: dict[str, float]
    log_likelihood: float
    converged: bool
    iterations: int
    customers: int
    warnings: list[str] = field(default_factory=list)


def compress(*columns: Array) -> tuple[list[Array], Array]:
    """Unique rows of the given columns (sorted) and how often each occurs."""
    order = np.lexsort(columns[::-1])
    ordered = [np.asarray(c, dtype=np.float64)[order] for c in columns]
    same = np.ones(max(order.size - 1, 0), dtype=bool)
    for column in ordered:  # one pass per column, not per row
        same &= column[1:] == column[:-1]
    first = np.flatnonzero(np.concatenate([[order.size > 0], ~same]))
    counts = np.diff(np.append(first, order.size))
    return [c[first] for c in ordered], counts.astype(np.float64)


def _minimise(objective: Callable[[Array], float], start: Array, names: tuple[str, ...],
              customers: int, model: str,
              gradient: Callable[[Array], tuple[float, Array]] | None = None,
              ) -> tuple[Array, float, bool, int, list[str]]:
    """L-BFGS-B on log-parameters (bounded so exp() stays finite), with the analytic gradient where there is
    one; a Nelder-Mead retry if it stalls."""
    bounds = [(-12.0, 12.0)] * len(start)
    options = {"maxiter": 500, "ftol": 1e-12, "gtol": 1e-7}
    if gradient is not None:
        result = optimize.minimize(gradient, start, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    else:
        result = optimize.minimize(objective, start, method="L-BFGS-B", bounds=bounds, options=options)
    if not result.success or not np.isfinite(result.fun):
        retry = optimize.minimize(objective, result.x if np.all(np.isfinite(result.x)) else start,
                                  method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-7, "fatol": 1e-9})
        if np.isfinite(retry.fun) and (not np.isfinite(result.fun) or retry.fun <= result.fun):
            result = retry
    if not np.isfinite(result.fun):
        raise ModelFitFailed(f"{model}: the likelihood is not finite anywhere the optimiser looked "
                             f"({customers} customers); the data do not fit this model")
    warnings: list[str] = []
    if not result.success:
        warnings.append(f"{model}: the optimiser did not converge ({result.message}); treat estimates with care")
    at_bound = [name for name, value in zip(names, result.x, strict=True) if abs(value) > 11.5]
    if at_bound:
        warnings.append(f"{model}: {', '.join(at_bound)} ran to the edge of the search range; the data barely "
                        "identify it (too few repeat buyers, or purchases far more regular than the model allows)")
    return np.asarray(result.x, dtype=np.float64), float(result.fun), bool(result.success), int(result.nit), warnings


def _check_rfm(x: Array, t_x: Array, T: Array, model: str) -> None:
    if x.size < 2:
        raise ModelFitFailed(f"{model}: needs at least two customers, got {x.size}")
    if not np.any(x > 0):
        raise ModelFitFailed(f"{model}: no customer has a repeat purchase, so the purchase rate cannot be estimated "
                             "(every customer bought once, or on one day only)")
    if np.any(t_x > T + 1e-9) or np.any(x < 0) or np.any(T <= 0):
        raise ModelFitFailed(f"{model}: inconsistent inputs (t_x after T, negative counts, or zero ages)")


# --- BG/NBD ----------------------------------------------------------------------------------------

def bgnbd_log_likelihood(r: float, alpha: float, a: float, b: float, x: Array, t_x: Array, T: Array) -> Array:
    """Per-customer log-likelihood (FHL 2005, eq. 6)."""
    base = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) - special.betaln(a, b)
    alive = special.betaln(a, b + x) - (r + x) * np.log(alpha + T)
    repeat = x > 0
    dropped = np.full_like(alive, -np.inf)
    dropped[repeat] = (special.betaln(a + 1, b + x[repeat] - 1)
                       - (r + x[repeat]) * np.log(alpha + t_x[repeat]))
    return np.asarray(base + np.logaddexp(alive, dropped), dtype=np.float64)


def fit_bgnbd(x: Array, t_x: Array, T: Array, weights: Array | None = None) -> Fit:
    _check_rfm(x, t_x, T, "BG/NBD")
    if weights is None:
        (x, t_x, T), weights = compress(x, t_x, T)
    scale = 10.0 / float(np.max(T))
    ts, Ts = t_x * scale, T * scale
    total = float(weights.sum())
    w = weights / total
    # Special functions depend on x alone, and x takes few distinct values: evaluate them once per value.
    xs, at = np.unique(x, return_inverse=True)
    repeat = x > 0

    def terms(theta: Array) -> tuple[Array, Array, Array, Array, Array]:
        r, alpha, a, b = np.exp(theta)
        log_alive = (special.betaln(a, b + xs)[at] - (r + x) * np.log(alpha + Ts))
        log_gone = np.full_like(log_alive, -np.inf)
        xr = xs[xs > 0]
        gone = np.zeros_like(xs)
        gone[xs > 0] = special.betaln(a + 1, b + xr - 1)
        log_gone[repeat] = gone[at][repeat] - (r + x[repeat]) * np.log(alpha + ts[repeat])
        mix = np.logaddexp(log_alive, log_gone)
        base = (special.gammaln(r + xs)[at] - special.gammaln(r) + r * np.log(alpha) - special.betaln(a, b))
        return base + mix, log_alive, log_gone, mix, np.array([r, alpha, a, b])

    def objective(theta: Array) -> float:
        with np.errstate(all="ignore"):
            value = -float((w * terms(theta)[0]).sum())
        return value if math.isfinite(value) else 1e300

    def with_gradient(theta: Array) -> tuple[float, Array]:
        with np.errstate(all="ignore"):
            ll, _, log_gone, mix, (r, alpha, a, b) = terms(theta)
            value = -float((w * ll).sum())
            if not math.isfinite(value):
                return 1e300, np.zeros(4)
            share = np.exp(log_gone - mix)  # the weight of the "left after the last purchase" term
            psi = special.digamma
            d_r = (psi(r + xs)[at] - psi(r) + np.log(alpha)
                   - (1 - share) * np.log(alpha + Ts) - share * np.log(alpha + ts))
            d_alpha = r / alpha - (r + x) * ((1 - share) / (alpha + Ts) + share / (alpha + ts))
            ab_x = psi(a + b + xs)[at]
            d_a = (-(psi(a) - psi(a + b)) + (1 - share) * (psi(a) - ab_x) + share * (psi(a + 1) - ab_x))
            gone_b = np.where(repeat, psi(np.maximum(b + xs - 1, 1e-300))[at], 0.0)
            d_b = (-(psi(b) - psi(a + b)) + (1 - share) * (psi(b + xs)[at] - ab_x) + share * (gone_b - ab_x))
            # Plain multiply-and-sum, not np.dot: BLAS threads fight Polars' for two cores.
            grad = -np.array([(w * d).sum() for d in (d_r, d_alpha, d_a, d_b)]) * np.array([r, alpha, a, b])
        return value, grad

    theta, _, converged, iterations, warnings = _minimise(
        objective, np.zeros(4), ("r", "alpha", "a", "b"), int(total), "BG/NBD", with_gradient)
    r, alpha, a, b = np.exp(theta)
    params = {"r": float(r), "alpha": float(alpha / scale), "a": float(a), "b": float(b)}
    # Reported on the data's own time scale (the scaled fit differs by a constant Jacobian term).
    log_likelihood = float(np.dot(weights, bgnbd_log_likelihood(r, alpha / scale, a, b, x, t_x, T)))
    return Fit(params, log_likelihood, converged, iterations, int(total), warnings)


def bgnbd_p_alive(p: dict[str, float], x: Array, t_x: Array, T: Array) -> Array:
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds = (np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                    + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
    return np.where(x > 0, special.expit(-log_odds), 1.0).astype(np.float64)


def bgnbd_expected(p: dict[str, float], t: float | Array, x: Array, t_x: Array, T: Array) -> Array:
    """Expected purchases in the next t (FHL 2005, eq. 10)."""
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    # The closed form divides by a - 1; at exactly a = 1 it is the limit, which a tiny nudge reaches.
    a = a + 1e-7 if abs(a - 1) < 1e-7 else a
    z = np.asarray(t / (alpha + T + t), dtype=np.float64)
    with np.errstate(all="ignore"):
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        bracket = 1 - np.exp((r + x) * np.log((alpha + T) / (alpha + T + t))) * hyp
        value = (a + b + x - 1) / (a - 1) * bracket * bgnbd_p_alive(p, x, t_x, T)
    # Non-finite only where the hypergeometric series overflows (extreme frequencies); callers report it.
    return np.asarray(value, dtype=np.float64)


# --- Pareto/NBD ------------------------------------------------------------------------------------

def _log_hyp2f1_c_a_plus_1(a: Array, b: Array, z: Array) -> Array:
    """log 2F1(a, b; a+1; z) via Euler: (1-z)^(1-b) 2F1(1, a+1-b; a+1; z), well conditioned for z in [0, 1)."""
    return np.asarray((1 - b) * np.log1p(-z) + np.log(special.hyp2f1(1.0, a + 1 - b, a + 1, z)), dtype=np.float64)


def _pnbd_log_a0(r: float, alpha: float, s: float, beta: float, x: Array, t_x: Array, T: Array) -> Array:
    k = r + s + x
    if alpha >= beta:
        sec, base_tx, base_T, diff = np.full_like(x, s + 1.0), alpha + t_x, alpha + T, alpha - beta
    else:
        sec, base_tx, base_T, diff = r + x, beta + t_x, beta + T, beta - alpha
    first = _log_hyp2f1_c_a_plus_1(k, sec, diff / base_tx) - k * np.log(base_tx)
    last = _log_hyp2f1_c_a_plus_1(k, sec, diff / base_T) - k * np.log(base_T)
    with np.errstate(divide="ignore", invalid="ignore"):
        # log(e^first - e^last); first >= last because t_x <= T.
        return np.asarray(first + np.log(-np.expm1(np.minimum(last - first, 0.0))), dtype=np.float64)


def pareto_nbd_log_likelihood(r: float, alpha: float, s: float, beta: float,
                              x: Array, t_x: Array, T: Array) -> Array:
    """Per-customer log-likelihood (Fader & Hardie 2005 note, eq. 22)."""
    base = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    gone = np.log(s) - np.log(r + s + x) + _pnbd_log_a0(r, alpha, s, beta, x, t_x, T)
    return np.asarray(base + np.logaddexp(alive, gone), dtype=np.float64)


def fit_pareto_nbd(x: Array, t_x: Array, T: Array, weights: Array | None = None) -> Fit:
    _check_rfm(x, t_x, T, "Pareto/NBD")
    if weights is None:
        (x, t_x, T), weights = compress(x, t_x, T)
    scale = 10.0 / float(np.max(T))
    ts, Ts = t_x * scale, T * scale
    total = float(weights.sum())

    def objective(theta: Array) -> float:
        r, alpha, s, beta = np.exp(theta)
        with np.errstate(all="ignore"):
            value = -float(np.dot(weights, pareto_nbd_log_likelihood(r, alpha, s, beta, x, ts, Ts))) / total
        return value if math.isfinite(value) else 1e300

    theta, _, converged, iterations, warnings = _minimise(
        objective, np.zeros(4), ("r", "alpha", "s", "beta"), int(total), "Pareto/NBD")
    r, alpha, s, beta = np.exp(theta)
    params = {"r": float(r), "alpha": float(alpha / scale), "s": float(s), "beta": float(beta / scale)}
    with np.errstate(all="ignore"):
        log_likelihood = float(np.dot(weights, pareto_nbd_log_likelihood(r, alpha / scale, s, beta / scale, x, t_x, T)))
    return Fit(params, log_likelihood, converged, iterations, int(total), warnings)


def pareto_nbd_p_alive(p: dict[str, float], x: Array, t_x: Array, T: Array) -> Array:
    r, alpha, s, beta = p["r"], p["alpha"], p["s"], p["beta"]
    with np.errstate(all="ignore"):
        log_ratio = (np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + T) + s * np.log(beta + T)
                     + _pnbd_log_a0(r, alpha, s, beta, x, t_x, T))
    return np.asarray(special.expit(-log_ratio), dtype=np.float64)


def pareto_nbd_expected(p: dict[str, float], t: float | Array, x: Array, t_x: Array, T: Array) -> Array:
    """Expected purchases in the next t (Fader & Hardie 2005 note, eq. 27)."""
    r, alpha, s, beta = p["r"], p["alpha"], p["s"], p["beta"]
    if abs(s - 1) < 1e-9:
        rate = (r + x) * (beta + T) / (alpha + T) * np.log((beta + T + t) / (beta + T))
    else:
        rate = (r + x) * (beta + T) / ((alpha + T) * (s - 1)) * (1 - ((beta + T) / (beta + T + t)) ** (s - 1))
    return np.asarray(rate * pareto_nbd_p_alive(p, x, t_x, T), dtype=np.float64)


# --- Gamma-Gamma -----------------------------------------------------------------------------------

def gamma_gamma_log_likelihood(p: float, q: float, v: float, x: Array, m: Array) -> Array:
    """Per-customer log-likelihood of the mean spend m of x repeat purchases (FHL 2005b, eq. 3)."""
    px = p * x
    return np.asarray(special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(v)
                      + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(v + x * m), dtype=np.float64)


def fit_gamma_gamma(x: Array, m: Array, weights: Array | None = None) -> Fit:
    if x.size < 2:
        raise ModelFitFailed(f"Gamma-Gamma: needs at least two repeat buyers with positive spend, got {x.size}")
    if np.any(m <= 0) or np.any(x <= 0):
        raise ModelFitFailed("Gamma-Gamma: needs x > 0 and a positive mean spend for every customer")
    if weights is None:
        (x, m), weights = compress(x, m)
    scale = 1.0 / float(np.mean(m))
    ms = m * scale
    total = float(weights.sum())
    w = weights / total
    xs, at = np.unique(x, return_inverse=True)
    log_m, log_x = np.log(ms), np.log(x)

    def terms(theta: Array) -> tuple[Array, Array, Array]:
        p, q, v = np.exp(theta)
        pxs = p * xs
        log_vxm = np.log(v + x * ms)
        ll = ((special.gammaln(pxs + q) - special.gammaln(pxs))[at] - special.gammaln(q) + q * np.log(v)
              + (p * x - 1) * log_m + p * x * log_x - (p * x + q) * log_vxm)
        return ll, log_vxm, np.array([p, q, v])

    def objective(theta: Array) -> float:
        with np.errstate(all="ignore"):
            value = -float((w * terms(theta)[0]).sum())
        return value if math.isfinite(value) else 1e300

    def with_gradient(theta: Array) -> tuple[float, Array]:
        with np.errstate(all="ignore"):
            ll, log_vxm, (p, q, v) = terms(theta)
            value = -float((w * ll).sum())
            if not math.isfinite(value):
                return 1e300, np.zeros(3)
            psi_pxq = special.digamma(p * xs + q)
            d_p = x * ((psi_pxq - special.digamma(p * xs))[at] + log_m + log_x - log_vxm)
            d_q = psi_pxq[at] - special.digamma(q) + np.log(v) - log_vxm
            d_v = q / v - (p * x + q) / (v + x * ms)
            grad = -np.array([(w * d).sum() for d in (d_p, d_q, d_v)]) * np.array([p, q, v])
        return value, grad

    theta, _, converged, iterations, warnings = _minimise(
        objective, np.array([0.0, 1.0, 0.0]), ("p", "q", "v"), int(total), "Gamma-Gamma", with_gradient)
    p, q, v = np.exp(theta)
    if q <= 1:
        warnings.append("Gamma-Gamma: q <= 1, so the population mean spend is undefined; expected spend relies on "
                        "each customer's own history")
    log_likelihood = float(np.dot(weights, gamma_gamma_log_likelihood(p, q, v / scale, x, m)))
    return Fit({"p": float(p), "q": float(q), "v": float(v / scale)}, log_likelihood, converged, iterations,
               int(total), warnings)


def gamma_gamma_expected_spend(params: dict[str, float], x: Array, m: Array, population_mean: float) -> Array:
    """E[M | x, m] = (p (v + x m)) / (p x + q - 1); customers without repeats get the population mean."""
    p, q, v = params["p"], params["q"], params["v"]
    with np.errstate(divide="ignore", invalid="ignore"):
        conditional = p * (v + x * m) / (p * x + q - 1)
    prior = p * v / (q - 1) if q > 1 else population_mean
    return np.asarray(np.where((x > 0) & (m > 0) & np.isfinite(conditional), conditional, prior), dtype=np.float64)


def discounted_value(expected: Callable[[float], Array], spend: Array, horizon: float, steps: int,
                     rate_per_step: float) -> Array:
    """Sum over steps of (purchases expected in that step) x spend, discounted per step."""
    edges = np.linspace(0.0, horizon, steps + 1)
    cumulative = [np.zeros_like(spend)] + [expected(float(edge)) for edge in edges[1:]]
    value = np.zeros_like(spend)
    for step in range(1, steps + 1):
        value += (cumulative[step] - cumulative[step - 1]) * spend / (1 + rate_per_step) ** step
    return value


def summary(fit: Fit) -> dict[str, Any]:
    return {**fit.params, "log_likelihood": fit.log_likelihood, "converged": fit.converged,
            "iterations": fit.iterations, "customers": fit.customers}
