"""A naive genome scan: for every trait and marker, generalised least squares with the dense
covariance V = h K + (1 - h) I (inverted directly; no eigendecomposition, no rotation), and
heritabilities found by brute force. Slow and obviously correct: the fast scan is checked
against it (tests/test_scan.py).

The definitions are GEMMA's (``-lmm 4``) and R/qtl2's, as documented in lmmlite.core.scan:

- fixed mode: h is the null model's REML estimate; LRT = n log(rss0 / rss1) at that h;
- exact mode: the Wald test at the alternative's REML h; LRT = 2 (l1 - l0) of the ML log
  likelihoods, each at its own ML h; the score test at the null model's ML h;
- Wald F = (rss0 - rss1) / (rss1 / (n - p - 1)) on (1, n - p - 1) df, score F =
  n (rss0 - rss1) / rss0 on the same df, LOD = LRT / (2 ln 10);
- hsq is searched on [0, 1e5 / (1 + 1e5)] (GEMMA's lambda <= 1e5);
- a missing genotype is set to the marker's mean over the trait's analysed samples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats

HSQ_MAX = 1e5 / (1.0 + 1e5)


def gls(h: float, K: np.ndarray, y: np.ndarray, X: np.ndarray) -> dict[str, float | np.ndarray]:
    """beta, rss = r' V^-1 r and (X' V^-1 X)^-1 at heritability h, by a dense solve."""
    n = K.shape[0]
    Vi = np.linalg.inv(h * K + (1.0 - h) * np.eye(n))
    A = X.T @ Vi @ X
    Ainv = np.linalg.inv(A)
    beta = Ainv @ (X.T @ Vi @ y)
    r = y - X @ beta
    return {
        "beta": beta,
        "rss": float(r @ Vi @ r),
        "Ainv": Ainv,
        "logdet_A": np.linalg.slogdet(A)[1],
    }


def loglik(h: float, K: np.ndarray, y: np.ndarray, X: np.ndarray, *, reml: bool) -> float:
    """Profile log likelihood up to constants that depend on n and p only."""
    n, p = X.shape
    g = gls(h, K, y, X)
    logdet_V = np.linalg.slogdet(h * K + (1.0 - h) * np.eye(n))[1]
    if reml:
        return -0.5 * (logdet_V + (n - p) * np.log(g["rss"]) + g["logdet_A"])
    return -0.5 * (logdet_V + n * np.log(g["rss"]))


def fit(K: np.ndarray, y: np.ndarray, X: np.ndarray, *, reml: bool) -> tuple[float, float]:
    """Maximiser of the log likelihood on [0, HSQ_MAX]: a grid of 101 points, then a bounded
    search around the best one, and both ends."""
    grid = np.linspace(0.0, HSQ_MAX, 101)
    vals = [loglik(h, K, y, X, reml=reml) for h in grid]
    k = int(np.argmax(vals))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    res = optimize.minimize_scalar(
        lambda h: -loglik(h, K, y, X, reml=reml),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-10},
    )
    best = (float(res.x), -float(res.fun))
    for edge in (0.0, HSQ_MAX):
        ll = loglik(edge, K, y, X, reml=reml)
        if ll > best[1]:
            best = (edge, ll)
    return best


def naive_scan(
    G: np.ndarray,
    K: np.ndarray,
    Y: np.ndarray,
    X: np.ndarray,
    *,
    mode: str,
    markers: list[int],
    hsq_grid: float | None = None,
) -> pd.DataFrame:
    """Tests of markers ``markers`` (columns of G, NaN = missing) against every trait (columns
    of Y, NaN = missing): one row per (trait, marker). ``hsq_grid`` (fixed mode): the null hsq
    rounded to the nearest multiple of this step (at most 1e5 / (1 + 1e5)) is held."""
    rows = []
    ln10 = np.log(10.0)
    for j in range(Y.shape[1]):
        obs = ~np.isnan(Y[:, j])
        Kj, y, Xj = K[np.ix_(obs, obs)], Y[obs, j], X[obs]
        n, p = Xj.shape
        nu = n - p - 1
        h0 = fit(Kj, y, Xj, reml=True)[0]
        if hsq_grid is not None:
            h0 = min(round(h0 / hsq_grid) * hsq_grid, 1e5 / (1 + 1e5))
        h0_ml, l0_ml = fit(Kj, y, Xj, reml=False)
        for m in markers:
            g = G[obs, m].copy()
            g[np.isnan(g)] = np.nanmean(g)
            Xa = np.column_stack([Xj, g])
            h = h0 if mode == "fixed" else fit(Kj, y, Xa, reml=True)[0]
            g1, r0 = gls(h, Kj, y, Xa), gls(h, Kj, y, Xj)["rss"]
            rss1 = g1["rss"]
            se = np.sqrt(rss1 / nu * g1["Ainv"][-1, -1])
            if mode == "fixed":
                lrt = n * np.log(r0 / rss1)
                s0, s1 = r0, rss1
            else:
                lrt = 2.0 * (fit(Kj, y, Xa, reml=False)[1] - l0_ml)
                s0, s1 = gls(h0_ml, Kj, y, Xj)["rss"], gls(h0_ml, Kj, y, Xa)["rss"]
            rows.append(
                {
                    "trait": f"t{j}",
                    "marker": f"m{m}",
                    "beta": g1["beta"][-1],
                    "se": se,
                    "hsq": h,
                    "lod": max(lrt, 0.0) / (2 * ln10),
                    "p_wald": stats.f.sf((r0 - rss1) / (rss1 / nu), 1, nu),
                    "p_lrt": stats.chi2.sf(max(lrt, 0.0), 1),
                    "p_score": stats.f.sf(n * (s0 - s1) / s0, 1, nu),
                }
            )
    return pd.DataFrame(rows)
