"""Result objects: frozen dataclasses whose fields follow R/lmmlite's names.

For many traits at once every per-trait field is an array with one entry per trait (``beta``
has shape ``(t, p)``); for a single trait (``y`` one-dimensional) they are Python floats and
``beta`` has shape ``(p,)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["EigenRotation", "HsqInference", "LMMFit", "MLSolution"]


def _rows(value: Any) -> np.ndarray:
    return np.atleast_1d(np.asarray(value))


def _trait_names(t: int, names: Sequence[str] | None) -> list[str]:
    if names is None:
        return [f"trait{j + 1}" for j in range(t)]
    if len(names) != t:
        raise ValueError(f"got {len(names)} trait names for {t} traits")
    return [str(v) for v in names]


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
    sigmasq: Any
    """Total variance ``rss / (n - p)`` (R/lmmlite divides by n - p for ML too)."""
    rss: Any
    """Weighted residual sum of squares ``(y - X beta)' S (y - X beta)``."""
    logdet_XSX: Any
    """log det(X' S X), S = diag(1 / (hsq Kva + 1 - hsq))."""


@dataclass(frozen=True)
class LMMFit:
    """Maximum (restricted) likelihood fit of the heritability (R/lmmlite's ``fitLMM``)."""

    beta: np.ndarray
    """Fixed-effect coefficients at the estimate, (p,) or (t, p)."""
    sigmasq: Any
    """Total variance sigmasq_g + sigmasq_e."""
    hsq: Any
    """Heritability sigmasq_g / sigmasq, in [0, 1]."""
    sigmasq_g: Any
    """Genetic variance hsq * sigmasq."""
    sigmasq_e: Any
    """Residual variance (1 - hsq) * sigmasq."""
    loglik: Any
    """Log likelihood at the estimate, with R/lmmlite's constants dropped."""
    hsq_se: Any
    """Standard error of hsq from the exact second derivative of the profile log likelihood;
    NaN unless ``compute_se`` was asked for, or when the estimate is at a boundary (where the
    curvature does not give a standard error: use the profile interval instead)."""
    at_boundary: Any
    """True where the estimate is within ``tol`` of 0 or 1."""
    converged: Any
    """True where Brent's stopping rule was met and the log likelihood at the estimate is finite."""
    n_eval: Any
    """Number of log-likelihood evaluations used by the search."""
    reml: bool
    """REML (True) or ML (False)."""

    def to_dataframe(
        self,
        names: Sequence[str] | None = None,
        covariate_names: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """One row per trait, one column per field (``beta_<covariate>`` for coefficients)."""
        beta = np.atleast_2d(self.beta)
        t, p = beta.shape
        covs = [f"x{k}" for k in range(p)] if covariate_names is None else list(covariate_names)
        data: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ("beta", "reml"):
                continue
            data[f.name] = _rows(getattr(self, f.name))
        for k, c in enumerate(covs):
            data[f"beta_{c}"] = beta[:, k]
        return pd.DataFrame(data, index=pd.Index(_trait_names(t, names), name="trait"))


@dataclass(frozen=True)
class HsqInference:
    """Uncertainty of the heritability: exact standard error, profile interval, LRT of hsq = 0."""

    hsq_se: Any
    """Standard error from the exact (analytic) second derivative of the profile log
    likelihood; NaN at a boundary estimate or where the curvature is not negative."""
    hsq_ci_lower: Any
    """Lower end of the profile-likelihood interval (0 if the bound is inside the interval)."""
    hsq_ci_upper: Any
    """Upper end of the profile-likelihood interval (1 if the bound is inside the interval)."""
    lrt_stat: Any
    """Likelihood-ratio statistic 2 (loglik(hsq) - loglik(0)), at least 0."""
    lrt_pvalue: Any
    """P-value of hsq = 0 from the 50:50 mixture of chi-square(0) and chi-square(1)."""
    level: float
    """Coverage of the interval."""
