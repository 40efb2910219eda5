r"""R/lmmlite's four functions: ``eigen_rotation``, ``get_ml_soln``, ``calc_ll``, ``fit_lmm``.

The model is :math:`y = X\beta + e`, :math:`e \sim N(0, \sigma^2_g K + \sigma^2_e I)`, with
:math:`\sigma^2 = \sigma^2_g + \sigma^2_e` and :math:`h^2 = \sigma^2_g / \sigma^2`. With
:math:`K = U \Lambda U^\top`, rotating by :math:`U^\top` makes the covariance diagonal,
:math:`\sigma^2 D`, :math:`D = \mathrm{diag}(h^2 \lambda_i + 1 - h^2)`, so every likelihood
evaluation costs O(n) per trait once the rotation is done.

All functions accept ``y`` as a vector (one trait) or an (n, t) matrix (t traits that share the
kinship and the covariates, fitted together). ``engine="fast"`` (default) uses the compiled,
batched engine; ``engine="reference"`` the formula-by-formula translation of R/lmmlite's plain R
code in :mod:`lmmlite.core.reference`.

Notes
-----
Log likelihoods follow R/lmmlite exactly, constants dropped:

.. math::

    \ell_{ML}(h) = -\tfrac12\Big(\sum_i \log d_i + n \log \mathrm{rss}\Big), \qquad
    \ell_{REML}(h) = \ell_{ML}(h) + \tfrac12\Big(p \log(2\pi\hat\sigma^2) + \log\det X^\top X
    - \log\det X^\top S X\Big),

with :math:`S = D^{-1}`, :math:`\mathrm{rss} = (y - X\hat\beta)^\top S (y - X\hat\beta)` and
:math:`\hat\sigma^2 = \mathrm{rss}/(n - p)` (for ML too, as in R/lmmlite).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any, Literal

import numpy as np

from ..exceptions import BoundaryWarning, ConvergenceWarning, InputError, PhenotypeError
from . import reference
from .checks import (
    check_finite,
    check_hsq,
    check_identifiable,
    check_kinship,
    check_level,
    check_model_arrays,
    check_phenotype_sumsq,
    check_tol,
    clip_eigenvalues,
)
from .inference import hsq_lrt, hsq_profile_ci, hsq_se, hsq_second_derivative
from .model import RotatedModel
from .results import EigenRotation, HsqInference, LMMFit, MLSolution

__all__ = [
    "LogLik",
    "at_hsq_boundary",
    "calc_ll",
    "eigen_rotation",
    "eigh_decreasing",
    "fit_lmm",
    "fit_rotated",
    "get_ml_soln",
    "hsq_inference",
    "inference_rotated",
]

Engine = Literal["fast", "reference"]


class LogLik(float):
    """A log likelihood (a float) carrying ``beta`` and ``sigmasq``, like R's attributes."""

    beta: np.ndarray
    sigmasq: float

    def __new__(cls, value: float, beta: np.ndarray, sigmasq: float) -> LogLik:
        obj = super().__new__(cls, value)
        obj.beta = beta
        obj.sigmasq = sigmasq
        return obj


def _check_engine(engine: str) -> None:
    if engine not in ("fast", "reference"):
        raise InputError(f"engine must be 'fast' or 'reference'; got {engine!r}")


def eigh_decreasing(K: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Eigendecomposition of a checked kinship (:func:`check_kinship`) in R's ``eigen``
    order: eigenvalues decreasing, clipped by :func:`clip_eigenvalues`; the eigenvectors as
    columns in the same order (a reversed view of LAPACK's); the number of negative
    eigenvalues set to zero."""
    evals, evecs = np.linalg.eigh(K)
    Kva, n_clipped = clip_eigenvalues(evals[::-1].copy())
    return Kva, evecs[:, ::-1], n_clipped


def eigen_rotation(K: Any, y: Any, X: Any = None) -> EigenRotation:
    """Eigendecompose the kinship and rotate phenotypes and covariates.

    Parameters
    ----------
    K : (n, n) array_like
        Kinship matrix: finite, symmetric and positive semi-definite (eigenvalues down to
        ``-1e-6 * max`` are taken as rounding error and set to zero; more negative ones are an
        error).
    y : (n,) or (n, t) array_like
        Phenotypes, no missing values (see :func:`lmmlite.heritability` for those).
    X : (n, p) array_like, optional
        Covariates; an intercept column by default.

    Returns
    -------
    EigenRotation
        ``Kva`` (decreasing, like R's ``eigen``), ``Kve_t``, rotated ``y`` and ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> K = np.array([[1.0, 0.5], [0.5, 1.0]])
    >>> e = eigen_rotation(K, np.array([1.0, 3.0]))
    >>> e.Kva
    array([1.5, 0.5])
    """
    K = check_kinship(K)
    n = K.shape[0]
    X = np.ones((n, 1)) if X is None else X
    Kva_unclipped = np.zeros(n)
    # y and X are checked against n before the decomposition (cheap errors first)
    _Kva, y2, X2, single = check_model_arrays(Kva_unclipped, y, X)
    evals, evecs, n_clipped = eigh_decreasing(K)
    Kve_t = np.ascontiguousarray(evecs.T)
    # (y' U)' is Kve_t @ y laid out trait by trait in memory, the fast engine's layout
    y_rot = (y2.T @ Kve_t.T).T
    X_rot = Kve_t @ X2
    _sign, logdet = np.linalg.slogdet(X2.T @ X2)
    return EigenRotation(
        Kva=evals,
        Kve_t=Kve_t,
        y=y_rot[:, 0] if single else y_rot,
        X=X_rot,
        logdet_XpX=float(logdet),
        n_clipped=n_clipped,
    )


def get_ml_soln(
    hsq: float, Kva: Any, y: Any, X: Any, *, reml: bool = True, engine: Engine = "fast"
) -> MLSolution:
    """Generalised least-squares estimates at a fixed heritability (R's ``getMLsoln``).

    Parameters
    ----------
    hsq
        Heritability in [0, 1].
    Kva, y, X
        Eigenvalues and rotated data, as returned by :func:`eigen_rotation`.
    reml
        Kept for R's signature: the estimates do not depend on it (``logdet_XSX`` is always
        returned).
    engine
        ``"fast"`` or ``"reference"``.

    Returns
    -------
    MLSolution
    """
    _check_engine(engine)
    h, scalar = check_hsq(hsq)
    if not scalar:
        raise InputError("get_ml_soln takes a single hsq; use calc_ll for a vector of hsq")
    Kva, y2, X2, single = check_model_arrays(Kva, y, X)
    if engine == "reference":
        sols = [reference.get_ml_soln(float(h[0]), Kva, y2[:, j], X2) for j in range(y2.shape[1])]
        beta = np.array([s.beta for s in sols])
        sig = np.array([s.sigmasq for s in sols])
        rss = np.array([s.rss for s in sols])
        ld = np.array([s.logdet_XSX for s in sols])
    else:
        model = RotatedModel(Kva, y2, X2)
        items = np.arange(model.t)
        sol = model.solution(np.full(model.t, h[0]), items)
        beta, rss, ld = sol.beta, sol.rss, sol.logdet_XSX
        sig = rss / (model.n - model.p)
    if single:
        return MLSolution(
            beta=beta[0], sigmasq=float(sig[0]), rss=float(rss[0]), logdet_XSX=float(ld[0])
        )
    return MLSolution(beta=beta, sigmasq=sig, rss=rss, logdet_XSX=ld)


def calc_ll(
    hsq: Any, Kva: Any, y: Any, X: Any, *, reml: bool = True, engine: Engine = "fast"
) -> Any:
    """Log likelihood at one or many heritabilities (R's ``calcLL``).

    Parameters
    ----------
    hsq : float or (k,) array_like
        Heritabilities in [0, 1].
    Kva, y, X
        Eigenvalues and rotated data, as returned by :func:`eigen_rotation`.
    reml
        REML (default) or ML.
    engine
        ``"fast"`` or ``"reference"``.

    Returns
    -------
    LogLik, ndarray
        For a scalar ``hsq`` and one trait, a :class:`LogLik` (a float with ``beta`` and
        ``sigmasq``); for a scalar ``hsq`` and t traits, an array (t,); for a vector of k
        heritabilities, an array (k,) for one trait or (k, t) for t traits.
    """
    _check_engine(engine)
    h, scalar = check_hsq(hsq)
    Kva, y2, X2, single = check_model_arrays(Kva, y, X)
    t = y2.shape[1]
    if engine == "reference":
        ll = np.array(
            [
                [reference.calc_ll(float(hk), Kva, y2[:, j], X2, reml=reml) for j in range(t)]
                for hk in h
            ]
        )
    else:
        model = RotatedModel(Kva, y2, X2)
        items = np.tile(np.arange(t), h.size)
        ll = model.loglik(np.repeat(h, t), items, reml).reshape(h.size, t)
    if scalar and single:
        sol = get_ml_soln(float(h[0]), Kva, y2[:, 0], X2, engine=engine)
        return LogLik(float(ll[0, 0]), sol.beta, float(sol.sigmasq))
    if scalar:
        return ll[0]
    return ll[:, 0] if single else ll


def fit_lmm(
    Kva: Any,
    y: Any,
    X: Any,
    *,
    reml: bool = True,
    check_boundary: bool = True,
    tol: float = 1e-4,
    compute_se: bool = False,
    engine: Engine = "fast",
) -> LMMFit:
    """Estimate the heritability by maximum (restricted) likelihood (R's ``fitLMM``).

    Brent's method on [0, 1], iteration for iteration as R's ``optimize``; with
    ``check_boundary`` the log likelihood at 0 and 1 is then compared with the optimum and a
    bound taken if strictly better (as R/lmmlite's C++ code does). With t traits, all are
    searched together in lockstep.

    Parameters
    ----------
    Kva, y, X
        Eigenvalues and rotated data, as returned by :func:`eigen_rotation`; ``y`` is (n,) or
        (n, t).
    reml
        REML (default) or ML.
    check_boundary
        Compare with the log likelihood at hsq = 0 and 1 after the search.
    tol
        Brent's tolerance on hsq.
    compute_se
        Also compute ``hsq_se`` (exact second derivative for the fast engine; R's numerical
        Hessian for the reference engine).
    engine
        ``"fast"`` or ``"reference"``.

    Returns
    -------
    LMMFit
        Boundary estimates and failed searches are flagged in ``at_boundary`` and
        ``converged``; a :class:`~lmmlite.BoundaryWarning` or
        :class:`~lmmlite.ConvergenceWarning` says how many traits are affected.

    Examples
    --------
    >>> from lmmlite.datasets import simulate
    >>> sim = simulate(n_samples=200, n_traits=1, hsq=0.6, seed=1, missing_rate=0.0)
    >>> e = eigen_rotation(sim.kinship.to_numpy(), sim.pheno.to_numpy()[:, 0],
    ...                    sim.covar.to_numpy())
    >>> fit = fit_lmm(e.Kva, e.y, e.X, tol=1e-6)
    >>> 0.0 <= fit.hsq <= 1.0
    True
    """
    _check_engine(engine)
    check_tol(tol)
    Kva, y2, X2, single = check_model_arrays(Kva, y, X, finite_y=False)
    check_identifiable(Kva, X2)
    model = RotatedModel(Kva, y2, X2)
    if not np.all(np.isfinite(model.sumsq[0])):  # a NaN or infinite y (or y*y overflowing)
        check_finite("y", y2, PhenotypeError)
    check_phenotype_sumsq(model.sumsq, model.n)
    if engine == "reference":
        fits = [
            reference.fit_lmm(
                Kva,
                y2[:, j],
                X2,
                reml=reml,
                check_boundary=check_boundary,
                tol=tol,
                compute_se=compute_se,
            )
            for j in range(model.t)
        ]
        fit = LMMFit(reml=reml, **{f: np.array([getattr(r, f) for r in fits]) for f in _FIT_FIELDS})
    else:
        fit = fit_rotated(model, reml=reml, check_boundary=check_boundary, tol=tol)
        if compute_se:
            hsq = np.asarray(fit.hsq)
            d2 = hsq_second_derivative(model, hsq, np.arange(model.t), reml)
            fit = replace(fit, hsq_se=hsq_se(d2, ~np.asarray(fit.at_boundary)))
    _warn_flags(np.asarray(fit.at_boundary), np.asarray(fit.converged))
    if single:
        first = {f: getattr(fit, f)[0] for f in _FIT_FIELDS}
        return LMMFit(reml=reml, **{f: v if f == "beta" else v.item() for f, v in first.items()})
    return fit


#: LMMFit's per-trait fields (all but ``reml``).
_FIT_FIELDS = (
    "beta",
    "sigmasq",
    "hsq",
    "sigmasq_g",
    "sigmasq_e",
    "loglik",
    "hsq_se",
    "at_boundary",
    "converged",
    "n_eval",
)


def fit_rotated(model: RotatedModel, *, reml: bool, check_boundary: bool, tol: float) -> LMMFit:
    """fit_lmm's fast engine for every trait of a rotated model (``hsq_se`` left NaN: see
    :func:`inference_rotated`)."""
    fit = model.fit(reml, check_boundary, tol)
    hsq, sig = fit.hsq, fit.sigmasq
    return LMMFit(
        beta=fit.beta,
        sigmasq=sig,
        hsq=hsq,
        sigmasq_g=hsq * sig,
        sigmasq_e=(1.0 - hsq) * sig,
        loglik=fit.loglik,
        hsq_se=np.full(model.t, np.nan),
        at_boundary=at_hsq_boundary(hsq, tol),
        converged=fit.converged,
        n_eval=fit.n_eval,
        reml=reml,
    )


def inference_rotated(model: RotatedModel, fit: LMMFit, level: float) -> HsqInference:
    """Standard error, profile interval and LRT of hsq = 0 for every trait of a rotated
    model fitted by :func:`fit_rotated` (arrays; see :func:`hsq_inference`)."""
    hsq = np.atleast_1d(np.asarray(fit.hsq, dtype=float))
    loglik = np.atleast_1d(np.asarray(fit.loglik, dtype=float))
    items = np.arange(model.t)
    d2 = hsq_second_derivative(model, hsq, items, fit.reml)
    interior = (hsq > 0.0) & (hsq < 1.0) & ~np.atleast_1d(np.asarray(fit.at_boundary))
    lower, upper = hsq_profile_ci(model, hsq, loglik, items, fit.reml, level)
    stat, pval = hsq_lrt(model, loglik, items, fit.reml)
    return HsqInference(
        hsq_se=hsq_se(d2, interior),
        hsq_ci_lower=lower,
        hsq_ci_upper=upper,
        lrt_stat=stat,
        lrt_pvalue=pval,
        level=level,
    )


def at_hsq_boundary(hsq: np.ndarray, tol: float) -> np.ndarray:
    """True where an estimate is within ``tol`` of 0 or 1 (the ``at_boundary`` flag)."""
    return (hsq <= tol) | (hsq >= 1.0 - tol)


def _warn_flags(at_boundary: np.ndarray, converged: np.ndarray) -> None:
    nb = int(np.sum(at_boundary))
    if nb:
        warnings.warn(
            f"{nb} of {at_boundary.size} trait(s) have hsq on the boundary of [0, 1] "
            "(see the at_boundary flag); the standard error is not defined there",
            BoundaryWarning,
            stacklevel=3,
        )
    nc = int(np.sum(~converged))
    if nc:
        warnings.warn(
            f"{nc} of {converged.size} trait(s) did not converge (see the converged flag)",
            ConvergenceWarning,
            stacklevel=3,
        )


def hsq_inference(Kva: Any, y: Any, X: Any, fit: LMMFit, *, level: float = 0.95) -> HsqInference:
    """Standard error, profile-likelihood interval and LRT of hsq = 0 for a fitted model.

    Parameters
    ----------
    Kva, y, X
        The rotated data ``fit`` was computed from.
    fit
        Result of :func:`fit_lmm` on these data.
    level
        Coverage of the profile interval.

    Returns
    -------
    HsqInference
        See :mod:`lmmlite.core.inference` for the formulas.
    """
    check_level(level)
    Kva, y2, X2, single = check_model_arrays(Kva, y, X)
    model = RotatedModel(Kva, y2, X2)
    if np.atleast_1d(np.asarray(fit.hsq)).shape[0] != model.t:
        raise InputError(f"fit has {np.size(fit.hsq)} traits but y has {model.t}")
    inf = inference_rotated(model, fit, level)
    if single:
        return HsqInference(
            level=level,
            **{f: float(getattr(inf, f)[0]) for f in _INFERENCE_FIELDS},
        )
    return inf


_INFERENCE_FIELDS = ("hsq_se", "hsq_ci_lower", "hsq_ci_upper", "lrt_stat", "lrt_pvalue")
