"""Result objects of the core: frozen dataclasses of arrays, no labels (the pandas layer,
:mod:`lmmlite.results`, turns them into tables).

The public results' fields follow R/lmmlite's names. For many traits at once every per-trait
field is an array with one entry per trait (``beta`` has shape ``(t, p)``); for a single trait
(``y`` one-dimensional) they are Python floats and ``beta`` has shape ``(p,)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "CHUNK_STATS",
    "BatchFit",
    "ChunkScan",
    "EigenRotation",
    "GLSSolution",
    "HsqInference",
    "InteractionScan",
    "LMMFit",
    "MLSolution",
]

#: A per-trait value: a float for one trait, an array (t,) for many.
PerTrait = float | np.ndarray
#: A per-trait flag: a bool for one trait, a boolean array (t,) for many.
PerTraitFlag = bool | np.ndarray


@dataclass(frozen=True)
class EigenRotation:
    """Eigendecomposition of the kinship and the rotated data (R/lmmlite's ``eigen_rotation``)."""

    Kva: np.ndarray
    """Eigenvalues of the kinship, in decreasing order as R's ``eigen`` returns them, (n,).
    Negative values within rounding error of zero are set to zero (see ``n_clipped``)."""
    Kve_t: np.ndarray
    """Transposed eigenvectors, (n, n): row ``i`` is the eigenvector of ``Kva[i]``."""
    y: np.ndarray
    """Rotated phenotypes ``Kve_t @ y``, (n,) or (n, t)."""
    X: np.ndarray
    """Rotated covariates ``Kve_t @ X``, (n, p)."""
    logdet_XpX: float
    """log det(X'X) (the same before and after rotation), used by REML."""
    n_clipped: int = 0
    """Number of slightly negative eigenvalues (rounding error) that were set to zero."""


@dataclass(frozen=True)
class MLSolution:
    """Estimates at a fixed heritability (R/lmmlite's ``getMLsoln``)."""

    beta: np.ndarray
    """Generalised least-squares coefficients, (p,) or (t, p)."""
    sigmasq: PerTrait
    """Total variance ``rss / (n - p)`` (R/lmmlite divides by n - p for ML too)."""
    rss: PerTrait
    """Weighted residual sum of squares ``(y - X beta)' S (y - X beta)``."""
    logdet_XSX: PerTrait
    """log det(X' S X), S = diag(1 / (hsq Kva + 1 - hsq))."""


@dataclass(frozen=True)
class LMMFit:
    """Maximum (restricted) likelihood fit of the heritability (R/lmmlite's ``fitLMM``)."""

    beta: np.ndarray
    """Fixed-effect coefficients at the estimate, (p,) or (t, p)."""
    sigmasq: PerTrait
    """Total variance sigmasq_g + sigmasq_e."""
    hsq: PerTrait
    """Heritability sigmasq_g / sigmasq, in [0, 1]."""
    sigmasq_g: PerTrait
    """Genetic variance hsq * sigmasq."""
    sigmasq_e: PerTrait
    """Residual variance (1 - hsq) * sigmasq."""
    loglik: PerTrait
    """Log likelihood at the estimate, with R/lmmlite's constants dropped."""
    hsq_se: PerTrait
    """Standard error of hsq from the exact second derivative of the profile log likelihood;
    NaN unless ``compute_se`` was asked for, or when the estimate is at a boundary (where the
    curvature does not give a standard error: use the profile interval instead)."""
    at_boundary: PerTraitFlag
    """True where the estimate is within ``tol`` of 0 or 1."""
    converged: PerTraitFlag
    """True where Brent's stopping rule was met and the log likelihood at the estimate is finite."""
    n_eval: int | np.ndarray
    """Number of log-likelihood evaluations used by the search."""
    reml: bool
    """REML (True) or ML (False)."""


@dataclass(frozen=True)
class HsqInference:
    """Uncertainty of the heritability: exact standard error, profile interval, LRT of hsq = 0."""

    hsq_se: PerTrait
    """Standard error from the exact (analytic) second derivative of the profile log
    likelihood; NaN at a boundary estimate or where the curvature is not negative."""
    hsq_ci_lower: PerTrait
    """Lower end of the profile-likelihood interval (0 if the bound is inside the interval)."""
    hsq_ci_upper: PerTrait
    """Upper end of the profile-likelihood interval (1 if the bound is inside the interval)."""
    lrt_stat: PerTrait
    """Likelihood-ratio statistic 2 (loglik(hsq) - loglik(0)), at least 0."""
    lrt_pvalue: PerTrait
    """P-value of hsq = 0 from the 50:50 mixture of chi-square(0) and chi-square(1)."""
    level: float
    """Coverage of the interval."""


@dataclass(frozen=True)
class BatchFit:
    """Fits of many traits of one rotated model (:meth:`lmmlite.core.model.RotatedModel.fit`),
    each field an array with one entry per trait."""

    hsq: np.ndarray
    """Heritability at the maximum, (t,)."""
    loglik: np.ndarray
    """Log likelihood there (R/lmmlite's constants), (t,)."""
    beta: np.ndarray
    """Fixed effects, (t, p)."""
    sigmasq: np.ndarray
    """Total variance rss / (n - p), (t,)."""
    converged: np.ndarray
    """Brent's stopping rule met and a finite log likelihood, (t,)."""
    n_eval: np.ndarray
    """Log-likelihood evaluations, (t,)."""


@dataclass(frozen=True)
class GLSSolution:
    """Generalised least squares of many items, each at its own heritability."""

    beta: np.ndarray
    """Fixed effects, (m, p)."""
    rss: np.ndarray
    """Weighted residual sum of squares, (m,)."""
    logdet_XSX: np.ndarray
    """log det(X' S X), (m,)."""
    sum_log_d: np.ndarray
    """sum_i log(h lambda_i + 1 - h), (m,)."""


@dataclass(frozen=True)
class ChunkScan:
    """Tests of every (marker, trait) pair of a chunk of markers (:mod:`lmmlite.core.scan`):
    arrays (m, t), or (t,) for each trait's best marker; effects with a last axis of k."""

    beta: np.ndarray
    """The marker's effects, (..., k)."""
    se: np.ndarray
    """Their standard errors, (..., k)."""
    lod: np.ndarray
    """LRT / (2 ln 10)."""
    p_wald: np.ndarray
    """Wald F test p-value."""
    p_lrt: np.ndarray
    """Likelihood-ratio test p-value (chi-square, k df)."""
    p_score: np.ndarray
    """Score test p-value."""
    hsq: np.ndarray
    """The heritability of the Wald test (held, or re-estimated per marker)."""
    loglik: np.ndarray
    """ML log likelihood of the alternative model."""
    testable: np.ndarray
    """Per marker (m,): False where the marker is constant or collinear with the covariates
    (its statistics are NaN)."""
    interaction: InteractionScan | None = None
    """With an interactive covariate: the test of the marker-by-covariate columns given the
    marker's own (GEMMA's ``-gxe``); None otherwise."""


@dataclass(frozen=True)
class InteractionScan:
    """The interaction test of every (marker, trait) pair: the full model (covariates, marker,
    marker x interactive covariates) against the additive one (without the products), arrays
    (m, t); NaN where the marker's columns are not independent."""

    beta: np.ndarray
    """Effect of the product column (one interaction column only; else NaN)."""
    se: np.ndarray
    """Its standard error."""
    lod: np.ndarray
    """LRT / (2 ln 10) of full against additive."""
    p_wald: np.ndarray
    """Wald F test p-value, at the full model's hsq."""
    p_lrt: np.ndarray
    """Likelihood-ratio test p-value (chi-square, as many df as product columns)."""
    p_score: np.ndarray
    """Score test p-value, at the null model's ML hsq (exact mode) or the held one."""


#: The statistics of a :class:`ChunkScan` besides the effects, in table order.
CHUNK_STATS = ("lod", "p_wald", "p_lrt", "p_score", "hsq", "loglik")
