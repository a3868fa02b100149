"""BG/NBD, Pareto/NBD and Gamma-Gamma: likelihoods against independent computations, parameter recovery
from simulated data, published values, and clear failures where the data cannot identify a model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate  # type: ignore[import-untyped]

from loyalty.analytics import models
from tests.analytics import simulate as sim

# Published CDNOW estimates: BG/NBD (Fader, Hardie & Lee 2005), Pareto/NBD (same data, Fader & Hardie),
# Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV").
CDNOW_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
CDNOW_PNBD = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
CDNOW_GG = {"p": 6.25, "q": 3.74, "v": 15.44}

CUSTOMERS = [(0.0, 0.0, 38.86), (2.0, 30.43, 38.86), (1.0, 1.71, 38.86), (7.0, 29.43, 32.71), (25.0, 77.0, 78.0)]


def betaln(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def bgnbd_one(r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float) -> float:
    """FHL 2005 eq. 6 for one customer, written out in plain math."""
    common = math.exp(math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha))
    first = math.exp(betaln(a, b + x) - betaln(a, b)) * (alpha + T) ** -(r + x)
    second = (math.exp(betaln(a + 1, b + x - 1) - betaln(a, b)) * (alpha + t_x) ** -(r + x)) if x > 0 else 0.0
    return math.log(common * (first + second))


def pareto_nbd_by_integration(r: float, alpha: float, s: float, beta: float, x: float, t_x: float,
                              T: float) -> float:
    """The individual Pareto/NBD likelihood integrated over the gamma-distributed λ and μ, numerically."""
    def individual(mu: float, lam: float) -> float:
        own = (lam ** x * mu / (lam + mu) * math.exp(-(lam + mu) * t_x)
               + lam ** (x + 1) / (lam + mu) * math.exp(-(lam + mu) * T))
        density = (math.exp(r * math.log(alpha) + (r - 1) * math.log(lam) - alpha * lam - math.lgamma(r))
                   * math.exp(s * math.log(beta) + (s - 1) * math.log(mu) - beta * mu - math.lgamma(s)))
        return own * density
    # Substitute u = F(λ) style bounds: integrate on log scale for the heavy tails near zero.
    def in_logs(v: float, u: float) -> float:
        lam, mu = math.exp(u), math.exp(v)
        return individual(mu, lam) * lam * mu
    value, _ = integrate.dblquad(in_logs, -40, 5, -40, 5, epsabs=1e-14, epsrel=1e-9)
    return math.log(value)


def gamma_gamma_one(p: float, q: float, v: float, x: float, m: float) -> float:
    return (math.lgamma(p * x + q) - math.lgamma(p * x) - math.lgamma(q) + q * math.log(v)
            + (p * x - 1) * math.log(m) + p * x * math.log(x) - (p * x + q) * math.log(v + x * m))


def columns(rows: list[tuple[float, float, float]]) -> tuple[models.Array, models.Array, models.Array]:
    data = np.array(rows, dtype=np.float64)
    return data[:, 0], data[:, 1], data[:, 2]


class TestLikelihoods:
    def test_bgnbd_matches_the_written_out_formula(self) -> None:
        x, t_x, T = columns(CUSTOMERS)
        got = models.bgnbd_log_likelihood(*CDNOW_BGNBD.values(), x, t_x, T)
        expected = [bgnbd_one(*CDNOW_BGNBD.values(), *row) for row in CUSTOMERS]
        np.testing.assert_allclose(got, expected, rtol=1e-10)

    def test_pareto_nbd_matches_numerical_integration(self) -> None:
        rows = CUSTOMERS[:4]
        x, t_x, T = columns(rows)
        for params in (CDNOW_PNBD, {"r": 0.9, "alpha": 5.0, "s": 1.3, "beta": 20.0}):  # alpha > and < beta
            got = models.pareto_nbd_log_likelihood(*params.values(), x, t_x, T)
            expected = [pareto_nbd_by_integration(*params.values(), *row) for row in rows]
            np.testing.assert_allclose(got, expected, rtol=1e-6)

    def test_gamma_gamma_matches_the_written_out_formula(self) -> None:
        x, m = np.array([1.0, 2.0, 5.0, 30.0]), np.array([20.0, 35.5, 12.0, 80.0])
        got = models.gamma_gamma_log_likelihood(*CDNOW_GG.values(), x, m)
        expected = [gamma_gamma_one(*CDNOW_GG.values(), a, b) for a, b in zip(x, m, strict=True)]
        np.testing.assert_allclose(got, expected, rtol=1e-10)


class TestPublishedValues:
    def test_bgnbd_conditional_expectation_of_the_worked_example(self) -> None:
        # FHL 2005's spreadsheet example: x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases in 39 weeks.
        value = models.bgnbd_expected(CDNOW_BGNBD, 39.0, np.array([2.0]), np.array([30.43]), np.array([38.86]))
        assert value[0] == pytest.approx(1.226, abs=1e-3)

    def test_p_alive_is_one_without_repeats_and_falls_with_silence(self) -> None:
        x, t_x, T = columns([(0.0, 0.0, 30.0), (5.0, 29.0, 30.0), (5.0, 2.0, 30.0)])
        alive = models.bgnbd_p_alive(CDNOW_BGNBD, x, t_x, T)
        # 1 / (1 + a/(b+x-1) ((α+T)/(α+t_x))^(r+x)) = 1 / (1 + 0.1234 * 1.167) = 0.874 for the second.
        assert alive[0] == 1.0 and alive[1] == pytest.approx(0.874, abs=1e-3) and alive[2] < 0.2
        alive_pnbd = models.pareto_nbd_p_alive(CDNOW_PNBD, x, t_x, T)
        assert alive_pnbd[1] > 0.9 and alive_pnbd[2] < 0.2 and 0 < alive_pnbd[0] < 1

    def test_gamma_gamma_population_mean(self) -> None:
        # E[M] = p v / (q - 1) = 35.22 with the published estimates.
        spend = models.gamma_gamma_expected_spend(CDNOW_GG, np.array([0.0]), np.array([0.0]), 0.0)
        assert spend[0] == pytest.approx(35.22, abs=0.01)


def close(fitted: dict[str, float], truth: dict[str, float], tolerance: float) -> None:
    for name, value in truth.items():
        assert fitted[name] == pytest.approx(value, rel=tolerance), (name, fitted, truth)


class TestParameterRecovery:
    def test_bgnbd(self) -> None:
        rng = np.random.default_rng(20050101)
        T = np.round(sim.ages(rng, 150_000)) * 1.0  # whole weeks, so identical rows compress
        x, t_x, T = sim.bgnbd(rng, T.size, *CDNOW_BGNBD.values(), T)
        fit = models.fit_bgnbd(x, np.round(t_x * 7) / 7, T)
        assert fit.converged and not fit.warnings
        close(fit.params, CDNOW_BGNBD, 0.05)

    def test_pareto_nbd(self) -> None:
        rng = np.random.default_rng(20050102)
        T = np.round(sim.ages(rng, 150_000)) * 1.0
        x, t_x, T = sim.pareto_nbd(rng, T.size, *CDNOW_PNBD.values(), T)
        fit = models.fit_pareto_nbd(x, np.round(t_x * 7) / 7, T)
        assert fit.converged
        close(fit.params, CDNOW_PNBD, 0.06)

    def test_gamma_gamma(self) -> None:
        rng = np.random.default_rng(20050103)
        x = rng.integers(1, 15, 100_000).astype(np.float64)
        m = sim.gamma_gamma(rng, x, *CDNOW_GG.values())
        fit = models.fit_gamma_gamma(x, m)
        assert fit.converged
        close(fit.params, CDNOW_GG, 0.05)

    def test_fitted_likelihood_beats_the_truth(self) -> None:
        rng = np.random.default_rng(7)
        T = np.round(sim.ages(rng, 5000)) * 1.0
        x, t_x, T = sim.bgnbd(rng, T.size, *CDNOW_BGNBD.values(), T)
        fit = models.fit_bgnbd(x, t_x, T)
        truth = float(models.bgnbd_log_likelihood(*CDNOW_BGNBD.values(), x, t_x, T).sum())
        assert fit.log_likelihood >= truth
        assert fit.log_likelihood == pytest.approx(
            float(models.bgnbd_log_likelihood(*fit.params.values(), x, t_x, T).sum()), rel=1e-9)


class TestFailures:
    def test_nobody_repeats(self) -> None:
        x, t_x, T = columns([(0.0, 0.0, 10.0), (0.0, 0.0, 20.0)])
        for fit in (models.fit_bgnbd, models.fit_pareto_nbd):
            with pytest.raises(models.ModelFitFailed, match="no customer has a repeat purchase"):
                fit(x, t_x, T)

    def test_a_single_customer(self) -> None:
        x, t_x, T = columns([(3.0, 5.0, 10.0)])
        with pytest.raises(models.ModelFitFailed, match="at least two customers"):
            models.fit_bgnbd(x, t_x, T)

    def test_gamma_gamma_needs_positive_spend_and_repeat_buyers(self) -> None:
        with pytest.raises(models.ModelFitFailed, match="at least two"):
            models.fit_gamma_gamma(np.array([1.0]), np.array([5.0]))
        with pytest.raises(models.ModelFitFailed, match="positive"):
            models.fit_gamma_gamma(np.array([1.0, 2.0]), np.array([5.0, 0.0]))

    def test_huge_frequencies_are_reported_not_hidden(self) -> None:
        # Clockwork buyers: every customer buys every day. The fit either works or says the data barely
        # identify it; it never returns silently broken numbers.
        T = np.full(50, 700.0)
        x, t_x = np.full(50, 699.0), np.full(50, 699.0)
        try:
            fit = models.fit_bgnbd(x, t_x, T)
        except models.ModelFitFailed:
            return
        assert all(math.isfinite(v) for v in fit.params.values())
        assert fit.warnings


class TestOptimum:
    """The fits use analytic gradients; at their optimum the numerical gradient of the independent
    per-customer log-likelihood must vanish."""

    @staticmethod
    def numerical_gradient(total: object, theta: np.ndarray) -> np.ndarray:
        step = 1e-5
        return np.array([(total(theta + step * e) - total(theta - step * e)) / (2 * step)  # type: ignore[operator]
                         for e in np.eye(theta.size)])

    def test_bgnbd_gradient_vanishes_at_the_fit(self) -> None:
        rng = np.random.default_rng(11)
        T = np.round(sim.ages(rng, 3000)) * 1.0
        x, t_x, T = sim.bgnbd(rng, T.size, *CDNOW_BGNBD.values(), T)
        fit = models.fit_bgnbd(x, t_x, T)

        def total(theta: np.ndarray) -> float:
            return float(models.bgnbd_log_likelihood(*np.exp(theta), x, t_x, T).sum()) / x.size

        grad = self.numerical_gradient(total, np.log(list(fit.params.values())))
        assert np.max(np.abs(grad)) < 1e-5, grad

    def test_gamma_gamma_gradient_vanishes_at_the_fit(self) -> None:
        rng = np.random.default_rng(12)
        x = rng.integers(1, 10, 3000).astype(np.float64)
        m = sim.gamma_gamma(rng, x, *CDNOW_GG.values())
        fit = models.fit_gamma_gamma(x, m)

        def total(theta: np.ndarray) -> float:
            return float(models.gamma_gamma_log_likelihood(*np.exp(theta), x, m).sum()) / x.size

        grad = self.numerical_gradient(total, np.log(list(fit.params.values())))
        assert np.max(np.abs(grad)) < 1e-5, grad


class TestCompress:
    def test_unique_rows_with_counts(self) -> None:
        (x, t), counts = models.compress(np.array([2.0, 1.0, 2.0, 1.0, 2.0]), np.array([5.0, 3.0, 5.0, 4.0, 6.0]))
        assert x.tolist() == [1.0, 1.0, 2.0, 2.0] and t.tolist() == [3.0, 4.0, 5.0, 6.0]
        assert counts.tolist() == [1.0, 1.0, 2.0, 1.0]

    def test_empty(self) -> None:
        (x,), counts = models.compress(np.array([], dtype=np.float64))
        assert x.size == 0 and counts.size == 0
