"""Input checks shared by the array-level core and the labelled layer.

Each check raises an :class:`~lmmlite.exceptions.InputError` subclass whose message states the
rule and the offending values; none of them uses ``assert``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .exceptions import CovariateError, InputError, KinshipError, PhenotypeError

#: Relative asymmetry of a kinship matrix, max|K - K'| / max|K|, above which it is rejected.
#: Files written with 10 significant digits (GEMMA) are symmetric to about 1e-10.
SYMMETRY_RTOL = 1e-8

#: Negative eigenvalues of a kinship matrix down to -PSD_RTOL * (largest eigenvalue) are rounding
#: error and are set to zero; below that the matrix is rejected as not positive semidefinite.
#: 1e-6 admits kinships stored with about 7 significant digits.
PSD_RTOL = 1e-6

#: A column of X whose singular value is below this fraction of the largest one makes X
#: rank-deficient (collinear covariates).
RANK_RTOL = 1e-10
#: Eigenvalues this small relative to the largest are an exact zero up to rounding (eigh's
#: backward error is about n * eps * max|K|; 1e-12 covers n up to ~1e4 with margin).
ZERO_RTOL = 1e-12


def format_values(values: Sequence[Any] | np.ndarray, limit: int = 10) -> str:
    """Format offending values for an error message: at most ``limit``, then a count."""
    vals = [str(v) for v in list(values)]
    if len(vals) <= limit:
        return ", ".join(vals)
    return ", ".join(vals[:limit]) + f" and {len(vals) - limit} more"


def as_float_array(name: str, a: Any, *, ndim: tuple[int, ...] = (1, 2)) -> np.ndarray:
    """Convert ``a`` to a float64 array with one of the allowed dimensions.

    Raises
    ------
    InputError
        If ``a`` is not numeric or has a dimension not in ``ndim``.
    """
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numeric: {exc}") from None
    if arr.ndim not in ndim:
        allowed = " or ".join(str(d) for d in ndim)
        raise InputError(f"{name} must have {allowed} dimension(s); got shape {arr.shape}")
    return arr


def check_finite(name: str, a: np.ndarray, error: type[InputError] = InputError) -> None:
    """Raise ``error`` naming the positions of NaN or infinite entries of ``a``."""
    if a.size == 0 or np.isfinite(np.sum(a)):  # a finite sum means no NaN or inf (one pass)
        return
    bad = ~np.isfinite(a)
    if bad.any():
        where = np.argwhere(bad)
        shown = [tuple(int(i) for i in w) if len(w) > 1 else int(w[0]) for w in where[:5]]
        raise error(
            f"{name} has {int(bad.sum())} NaN or infinite value(s), e.g. at index "
            f"{format_values(shown, 5)}"
        )


def check_kinship(K: Any) -> np.ndarray:
    """Check that ``K`` is a finite, square, symmetric matrix; return it symmetrised.

    Asymmetry up to :data:`SYMMETRY_RTOL` (relative to max|K|) is rounding and is averaged away.
    """
    K = as_float_array("kinship matrix K", K, ndim=(2,))
    if K.shape[0] != K.shape[1]:
        raise KinshipError(f"kinship matrix must be square; got shape {K.shape}")
    if K.shape[0] == 0:
        raise KinshipError("kinship matrix is empty")
    check_finite("kinship matrix", K, KinshipError)
    scale = float(np.max(np.abs(K)))
    asym = float(np.max(np.abs(K - K.T)))
    if asym > SYMMETRY_RTOL * max(scale, np.finfo(float).tiny):
        i, j = np.unravel_index(int(np.argmax(np.abs(K - K.T))), K.shape)
        raise KinshipError(
            f"kinship matrix is not symmetric: K[{i}, {j}] = {K[i, j]:.6g} but "
            f"K[{j}, {i}] = {K[j, i]:.6g} (max |K - K'| = {asym:.3g}, tolerance "
            f"{SYMMETRY_RTOL:g} x max|K|)"
        )
    return (K + K.T) * 0.5


def clip_eigenvalues(Kva: np.ndarray) -> tuple[np.ndarray, int]:
    """Set rounding-error eigenvalues to exactly zero; reject clearly negative ones.

    Eigenvalues within ``ZERO_RTOL`` x the largest of zero (either sign) are rounding error of
    an exact zero (a centred kinship always has one) and become 0, so that hsq = 1, where the
    covariance is then singular, is recognised as such instead of giving a spurious likelihood
    of ``log(1e-17)`` size. Negative eigenvalues down to ``-PSD_RTOL`` x the largest are also
    rounding error and become 0. Returns the clipped eigenvalues and how many were negative.
    """
    top = float(np.max(np.abs(Kva))) if Kva.size else 0.0
    low = float(np.min(Kva)) if Kva.size else 0.0
    if low < -PSD_RTOL * top:
        n_neg = int(np.sum(Kva < -PSD_RTOL * top))
        raise KinshipError(
            f"kinship matrix is not positive semidefinite: {n_neg} eigenvalue(s) below "
            f"-{PSD_RTOL:g} x the largest, the smallest being {low:.6g} (largest {top:.6g}); "
            "only negative eigenvalues that small are treated as rounding error"
        )
    n_clipped = int(np.sum(Kva < 0))
    zero = (Kva < 0) | (np.abs(Kva) <= ZERO_RTOL * top)
    if zero.any():
        Kva = np.where(zero, 0.0, Kva)
    return Kva, n_clipped


def column_names(p: int, names: Sequence[str] | None) -> list[str]:
    """Names for ``p`` columns: the given ones, or ``column 0``, ``column 1``, ..."""
    if names is None:
        return [f"column {k}" for k in range(p)]
    return [str(v) for v in names]


def check_design(X: np.ndarray, names: Sequence[str] | None = None) -> None:
    """Check that the covariate matrix is finite, leaves degrees of freedom and has full rank."""
    n, p = X.shape
    labels = column_names(p, names)
    check_finite("covariate matrix X", X, CovariateError)
    if p == 0:
        raise CovariateError("the covariate matrix X has no columns; include at least an intercept")
    if n <= p:
        raise CovariateError(
            f"need more samples than covariates (n > p); got n = {n} samples and p = {p} "
            f"covariates ({format_values(labels)})"
        )
    sv, vt = np.linalg.svd(X, full_matrices=False)[1:]
    small = sv <= RANK_RTOL * sv[0] if sv[0] > 0 else np.ones_like(sv, dtype=bool)
    if small.any():
        # Columns taking part in the (near) linear dependence: non-negligible loadings on the
        # right singular vectors of the smallest singular values.
        null = vt[small]
        involved = np.flatnonzero(np.max(np.abs(null), axis=0) > 1e-6)
        rank = int((~small).sum())
        raise CovariateError(
            f"covariates are collinear: the {p} columns have rank {rank}; linearly dependent "
            f"columns: {format_values([labels[k] for k in involved])}"
        )


def check_phenotypes(y0: np.ndarray, y: np.ndarray, names: Sequence[str] | None = None) -> None:
    """Reject phenotypes whose residual after the covariates is zero (constant phenotypes).

    ``y0`` holds the residuals of ``y`` (n x t) after least squares on the covariates.
    """
    res = np.sqrt(np.einsum("ij,ij->j", y0, y0))
    scale = np.sqrt(np.einsum("ij,ij->j", y, y))
    n = y.shape[0]
    bad = np.flatnonzero(res <= 64 * n * np.finfo(float).eps * np.maximum(scale, 1e-300))
    if bad.size:
        labels = column_names(y.shape[1], names)
        raise PhenotypeError(
            "phenotype is constant (or an exact linear combination of the covariates), so "
            "its variance components cannot be estimated: "
            f"{format_values([labels[k] for k in bad])}"
        )
