"""Plain reference engine: R/lmmlite's R code translated formula by formula, one trait at a time.

Nothing here is fast or clever; it exists so that the fast engine can be checked against an
independent, readable implementation (as R/lmmlite keeps its plain R code beside the C++).
Each function names the R function it follows. Arguments are assumed checked by the caller.
"""

from __future__ import annotations

import math

import numpy as np

from .brent import brent_fmin
from .results import LMMFit, MLSolution

__all__ = ["calc_ll", "fit_lmm", "get_ml_soln", "numerical_hsq_se"]

#: ``optim(method = "Brent")`` calls ``optimize`` with ``tol = reltol = sqrt(eps)``.
_OPTIM_RELTOL = math.sqrt(np.finfo(float).eps)
#: ``optimHess``'s default step ``ndeps``.
_NDEPS = 1e-3


def get_ml_soln(hsq: float, Kva: np.ndarray, y: np.ndarray, X: np.ndarray) -> MLSolution:
    """R/lmmlite's ``getMLsoln`` (plain R): weighted least squares at ``hsq``."""
    n, p = X.shape
    S = 1.0 / (hsq * Kva + 1.0 - hsq)
    XSt = (X * S[:, None]).T
    XSX = XSt @ X
    XSy = XSt @ y
    ySy = (y * S) @ y
    evals, evecs = np.linalg.eigh(XSX)
    logdet_XSX = float(np.sum(np.log(evals)))
    beta = evecs @ ((evecs.T @ XSy) / evals)
    rss = float(ySy - XSy @ beta)
    return MLSolution(beta=beta, sigmasq=rss / (n - p), rss=rss, logdet_XSX=logdet_XSX)


def calc_ll(hsq: float, Kva: np.ndarray, y: np.ndarray, X: np.ndarray, *, reml: bool) -> float:
    """R/lmmlite's ``calcLL`` (plain R) for one heritability."""
    n, p = X.shape
    sol = get_ml_soln(hsq, Kva, y, X)
    with np.errstate(invalid="ignore", divide="ignore"):
        ll = -0.5 * (np.sum(np.log(hsq * Kva + 1.0 - hsq)) + n * np.log(sol.rss))
        if reml:
            logdet_XpX = float(np.sum(np.log(np.linalg.eigvalsh(X.T @ X))))
            ll += 0.5 * (p * np.log(2.0 * np.pi * sol.sigmasq) + logdet_XpX - sol.logdet_XSX)
    return float(ll)


def numerical_hsq_se(
    hsq: float, Kva: np.ndarray, y: np.ndarray, X: np.ndarray, *, reml: bool
) -> float:
    """R/lmmlite's ``compute_se``: ``optim(method="Brent", hessian=TRUE)`` on -calcLL.

    ``optim`` re-runs the search with ``tol = sqrt(eps)`` and then ``optimHess`` takes central
    differences of central differences with step 1e-3, i.e. a second difference with step 2e-3.
    """

    def f(h: float) -> float:
        return -calc_ll(h, Kva, y, X, reml=reml)

    x = brent_fmin(f, 0.0, 1.0, _OPTIM_RELTOL)
    e = _NDEPS
    hess = ((f(x + 2 * e) - f(x)) / (2 * e) - (f(x) - f(x - 2 * e)) / (2 * e)) / (2 * e)
    return float(math.sqrt(1.0 / hess)) if hess > 0 else math.nan


def fit_lmm(
    Kva: np.ndarray,
    y: np.ndarray,
    X: np.ndarray,
    *,
    reml: bool,
    check_boundary: bool,
    tol: float,
    compute_se: bool,
) -> LMMFit:
    """R/lmmlite's ``fitLMM``: ``optimize`` over [0, 1], then the C++ boundary check; one
    trait (``hsq_se`` is R's numerical Hessian, NaN unless ``compute_se``)."""

    n_eval = 0

    def f(h: float) -> float:
        nonlocal n_eval
        n_eval += 1
        v = calc_ll(h, Kva, y, X, reml=reml)
        return math.inf if math.isnan(v) else -v

    hsq = brent_fmin(f, 0.0, 1.0, tol)
    loglik = calc_ll(hsq, Kva, y, X, reml=reml)
    if check_boundary:
        n_eval += 2
        for edge in (0.0, 1.0):
            ll_edge = calc_ll(edge, Kva, y, X, reml=reml)
            if ll_edge > loglik:
                hsq, loglik = edge, ll_edge
    sol = get_ml_soln(hsq, Kva, y, X)
    sig = float(sol.sigmasq)
    return LMMFit(
        beta=sol.beta,
        sigmasq=sig,
        hsq=hsq,
        sigmasq_g=hsq * sig,
        sigmasq_e=(1.0 - hsq) * sig,
        loglik=loglik,
        hsq_se=numerical_hsq_se(hsq, Kva, y, X, reml=reml) if compute_se else math.nan,
        at_boundary=bool(hsq <= tol or hsq >= 1.0 - tol),
        converged=bool(np.isfinite(loglik)),
        n_eval=n_eval,
        reml=reml,
    )
