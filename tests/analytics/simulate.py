"""Simulators for the purchase models, vectorised over customers with a seeded numpy Generator."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


def ages(rng: np.random.Generator, n: int, low: float = 30.0, high: float = 78.0) -> Array:
    return rng.uniform(low, high, n)


def bgnbd(rng: np.random.Generator, n: int, r: float, alpha: float, a: float, b: float,
          T: Array) -> tuple[Array, Array, Array]:
    """(x, t_x, T): Poisson(λ) repeat purchases from time 0; after each one the customer leaves with prob p."""
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    arrivals = rng.poisson(lam * T)
    # The repeat purchase after which the customer leaves (1, 2, ...).
    leaves_after = rng.geometric(p)
    x = np.minimum(arrivals, leaves_after)
    # The x-th of N uniform arrival times on [0, T] is T times a Beta(x, N - x + 1) draw.
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(arrivals - x + 1, 1)), 0.0)
    return x.astype(np.float64), t_x, T


def pareto_nbd(rng: np.random.Generator, n: int, r: float, alpha: float, s: float, beta: float,
               T: Array) -> tuple[Array, Array, Array]:
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    alive_for = np.minimum(rng.exponential(1.0 / mu), T)
    x = rng.poisson(lam * alive_for)
    # The last of x uniform arrivals on [0, alive_for].
    t_x = np.where(x > 0, alive_for * rng.uniform(size=n) ** (1.0 / np.maximum(x, 1)), 0.0)
    return x.astype(np.float64), t_x, T


def gamma_gamma(rng: np.random.Generator, x: Array, p: float, q: float, v: float) -> Array:
    """Mean of x spends z ~ Gamma(p, rate ν), ν ~ Gamma(q, rate v): a Gamma(p x, rate ν x) draw."""
    nu = rng.gamma(q, 1.0 / v, x.size)
    return np.asarray(rng.gamma(p * x, 1.0 / (nu * x)), dtype=np.float64)


def bgnbd_transactions(rng: np.random.Generator, n: int, r: float, alpha: float, a: float, b: float,
                       days: int, amount: tuple[float, float, float] | None = None) -> dict[str, Array]:
    """Purchase days from a BG/NBD process (rates per week, time in days): first purchases spread over the
    first 12 weeks, then Poisson arrivals, leaving after each repeat purchase with probability p.
    Vectorised over customers; the loop runs once per purchase step. `amount` = Gamma-Gamma (p, q, v)."""
    lam = rng.gamma(r, 1.0 / alpha, n) / 7.0
    p = rng.beta(a, b, n)
    nu = rng.gamma(amount[1], 1.0 / amount[2], n) if amount else np.ones(n)
    now = rng.uniform(0, 84, n)
    customers, times = [np.arange(n)], [now.copy()]
    alive = np.ones(n, dtype=bool)
    while alive.any():
        now = now + rng.exponential(1.0 / lam)
        alive &= now < days
        customers.append(np.flatnonzero(alive))
        times.append(now[alive])
        alive &= rng.uniform(size=n) >= p
    who = np.concatenate(customers)
    when = np.floor(np.concatenate(times))
    spend = (rng.gamma(amount[0], 1.0 / nu[who]) if amount else np.full(who.size, 100.0))
    return {"customer": who.astype(np.float64), "day": when, "amount": np.maximum(np.round(spend * 1000), 1.0)}


def pareto_nbd_transactions(rng: np.random.Generator, n: int, r: float, alpha: float, s: float, beta: float,
                            days: int) -> dict[str, Array]:
    """Purchase days from a Pareto/NBD process (rates per week, time in days), first purchases over the first
    12 weeks: Poisson purchases until an exponential lifetime ends. No loop: given the count, a Poisson
    process's arrival times are uniform on the alive period."""
    lam = rng.gamma(r, 1.0 / alpha, n) / 7.0
    mu = rng.gamma(s, 1.0 / beta, n) / 7.0
    first = rng.uniform(0, 84, n)
    alive = np.minimum(rng.exponential(1.0 / mu), days - first)
    repeats = rng.poisson(lam * alive)
    who = np.concatenate([np.arange(n), np.repeat(np.arange(n), repeats)])
    when = np.concatenate([first, first[who[n:]] + rng.uniform(0, 1, who.size - n) * alive[who[n:]]])
    return {"customer": who.astype(np.float64), "day": np.floor(when), "amount": np.full(who.size, 100_000.0)}
