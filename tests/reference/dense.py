"""Dense likelihood of the LMM, computed without any eigendecomposition or rotation.

``V(h) = h K + (1 - h) I``; beta and sigma^2 are profiled out by generalised least squares with
a dense solve, and the log density comes from ``scipy.stats.multivariate_normal``. R/lmmlite's
log likelihood differs from that density by constants, which are added back here so the two
can be compared directly:

- ML: R's ``-0.5 (sum log d + n log rss)`` equals ``logpdf(y; X b, s2_ml V) + n/2 (log(2 pi / n)
  + 1)`` with ``s2_ml = rss / n`` (since ``log det(s2 V) = n log s2 + log det V``).
- REML: R adds ``0.5 (p log(2 pi s2) + log det X'X - log det X'V^-1 X)`` with ``s2 = rss/(n-p)``.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats


def dense_gls(h: float, K: np.ndarray, y: np.ndarray, X: np.ndarray) -> dict[str, object]:
    """GLS at heritability ``h`` with the dense covariance."""
    n = K.shape[0]
    V = h * K + (1.0 - h) * np.eye(n)
    Vi_X = np.linalg.solve(V, X)
    Vi_y = np.linalg.solve(V, y)
    XViX = X.T @ Vi_X
    beta = np.linalg.solve(XViX, X.T @ Vi_y)
    r = y - X @ beta
    rss = float(r @ np.linalg.solve(V, r))
    return {"V": V, "beta": beta, "rss": rss, "XViX": XViX}


def dense_loglik(h: float, K: np.ndarray, y: np.ndarray, X: np.ndarray, *, reml: bool) -> float:
    """R/lmmlite's log likelihood at ``h``, from the dense multivariate normal density."""
    n, p = X.shape
    g = dense_gls(h, K, y, X)
    s2_ml = g["rss"] / n
    mvn = stats.multivariate_normal(mean=X @ g["beta"], cov=s2_ml * g["V"], allow_singular=False)
    ll = float(mvn.logpdf(y)) + 0.5 * n * (np.log(2.0 * np.pi / n) + 1.0)
    if reml:
        s2 = g["rss"] / (n - p)
        ll += 0.5 * (
            p * np.log(2.0 * np.pi * s2)
            + np.linalg.slogdet(X.T @ X)[1]
            - np.linalg.slogdet(g["XViX"])[1]
        )
    return ll


def brute_force_fit(
    K: np.ndarray, y: np.ndarray, X: np.ndarray, *, reml: bool
) -> tuple[float, float]:
    """Global maximiser of the dense log likelihood on [0, 1]: grid of 401 points, then a
    bounded scalar search around the best grid point (hsq to ~1e-10)."""
    grid = np.linspace(0.0, 1.0, 401)
    vals = np.array([dense_loglik(h, K, y, X, reml=reml) if h < 1 else -np.inf for h in grid])
    k = int(np.argmax(vals))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    res = optimize.minimize_scalar(
        lambda h: -dense_loglik(h, K, y, X, reml=reml),
        bounds=(lo, min(hi, 1.0 - 1e-12)),
        method="bounded",
        options={"xatol": 1e-11},
    )
    best_h, best_ll = float(res.x), -float(res.fun)
    for edge in (0.0, 1.0 - 1e-12):  # the bounded search never evaluates the ends themselves
        ll = dense_loglik(edge, K, y, X, reml=reml)
        if ll > best_ll:
            best_h, best_ll = edge, ll
    return best_h, best_ll
