"""Input checks shared by the array-level core and the labelled layer.

The core checks its arrays here (:func:`check_model_arrays`, :func:`check_hsq`); the
labelled layer uses the same rules on its tables.

Each check raises an :class:`~lmmlite.exceptions.InputError` subclass whose message states the
rule and the offending values; none of them uses ``assert``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..exceptions import CovariateError, InputError, KinshipError, PhenotypeError

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


#: Values beyond this size would overflow sums of squares (and below its inverse underflow):
#: phenotypes and kinships of such a scale are refused with a request to rescale them.
MAX_ABS = 1e100


def max_abs(a: np.ndarray) -> float:
    """max |a| (0 for an empty array), without an array of absolute values."""
    return max(float(a.max()), -float(a.min())) if a.size else 0.0


#: Rows per block of the kinship checks' transposed comparisons: a block and its transposed
#: counterpart stay in cache (a whole transposed matrix does not, and its temporaries are
#: fresh memory each time).
_BLOCK_ROWS = 128


def max_asymmetry(K: np.ndarray) -> float:
    """max |K - K'| of a square matrix, block by block over the upper triangle."""
    n = K.shape[0]
    top = 0.0
    for i0 in range(0, n, _BLOCK_ROWS):
        i1 = min(n, i0 + _BLOCK_ROWS)
        top = max(top, max_abs(K[i0:i1, i0:] - K[i0:, i0:i1].T))
    return top


def symmetrised(K: np.ndarray) -> np.ndarray:
    """(K + K') / 2, computed as ``(K + K.T) * 0.5`` element by element (the same numbers),
    block by block."""
    n = K.shape[0]
    out = np.empty_like(K)
    for i0 in range(0, n, _BLOCK_ROWS):
        i1 = min(n, i0 + _BLOCK_ROWS)
        block = out[i0:i1]
        np.add(K[i0:i1], K[:, i0:i1].T, out=block)
        block *= 0.5
    return out


def check_kinship_scale(K: np.ndarray, top: float | None = None) -> None:
    """Refuse a kinship whose entries are all zero-like or of an absurd scale (beyond
    :data:`MAX_ABS`, or all below its inverse): a kinship is of order 1. ``top``: max |K|,
    if known."""
    top = max_abs(K) if top is None else top
    if top > MAX_ABS or 0.0 < top < 1.0 / MAX_ABS:
        raise KinshipError(
            f"kinship entries are of size {top:.3g}: too {'large' if top > 1 else 'small'} "
            "for double precision; a kinship is of order 1 (rescale it)"
        )


def duplicated(values: Iterable[Any]) -> list[Any]:
    """The values that occur more than once, each once, sorted (counted in one pass)."""
    return sorted(v for v, k in Counter(values).items() if k > 1)


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


def nonfinite(a: np.ndarray) -> np.ndarray:
    """The positions (``np.argwhere``) of the NaN and infinite entries of ``a``; found by one
    sum when there are none (a finite sum means none)."""
    if a.size == 0 or np.isfinite(np.sum(a)):
        return np.empty((0, a.ndim), dtype=np.intp)
    return np.argwhere(~np.isfinite(a))


def asymmetric_pair(K: np.ndarray) -> tuple[int, int]:
    """The position (i, j), i <= j, of the largest |K - K'| (for an error message)."""
    diff = np.abs(K - K.T)
    i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
    return int(i), int(j)


def check_finite(name: str, a: np.ndarray, error: type[InputError] = InputError) -> None:
    """Raise ``error`` naming the positions of NaN or infinite entries of ``a``."""
    where = nonfinite(a)
    if where.size:
        shown = [tuple(int(i) for i in w) if len(w) > 1 else int(w[0]) for w in where[:5]]
        raise error(
            f"{name} has {len(where)} NaN or infinite value(s), e.g. at index "
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
    scale = max_abs(K)
    check_kinship_scale(K, scale)
    asym = max_asymmetry(K)
    if asym > SYMMETRY_RTOL * max(scale, np.finfo(float).tiny):
        i, j = asymmetric_pair(K)
        raise KinshipError(
            f"kinship matrix is not symmetric: K[{i}, {j}] = {K[i, j]:.6g} but "
            f"K[{j}, {i}] = {K[j, i]:.6g} (max |K - K'| = {asym:.3g}, tolerance "
            f"{SYMMETRY_RTOL:g} x max|K|)"
        )
    return symmetrised(K)


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
    norms = np.sqrt(np.einsum("ij,ij->j", X, X))
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise CovariateError(
            f"covariate column(s) {format_values([labels[k] for k in zero])} are all zero"
        )
    # rank of the columns scaled to unit norm: a covariate's units (sex x 1e12) do not matter
    sv, vt = np.linalg.svd(X / norms, full_matrices=False)[1:]
    small = sv <= RANK_RTOL * sv[0]
    if small.any():
        # Columns taking part in the (near) linear dependence: non-negligible loadings on the
        # right singular vectors of the smallest singular values.
        null = vt[small]
        involved = np.flatnonzero(np.max(np.abs(null), axis=0) > 1e-6)
        rank = int((~small).sum())
        raise CovariateError(
            f"covariates are collinear: the {p} columns have rank {rank}; linearly dependent "
            f"columns: {format_values([labels[k] for k in involved])} (to within "
            f"{RANK_RTOL:g} of their size: a column such as 1e12 + x is collinear with an "
            "intercept in double precision; centre it)"
        )


def check_phenotypes(y0: np.ndarray, y: np.ndarray, names: Sequence[str] | None = None) -> None:
    """Reject phenotypes whose residual after the covariates is zero (constant phenotypes).

    ``y0`` holds the residuals of ``y`` (n x t) after least squares on the covariates.
    """
    sumsq = np.stack([np.einsum("ij,ij->j", y, y), np.einsum("ij,ij->j", y0, y0)])
    check_phenotype_sumsq(sumsq, y.shape[0], names)


def check_phenotype_sumsq(sumsq: np.ndarray, n: int, names: Sequence[str] | None = None) -> None:
    """:func:`check_phenotypes` from the sums of squares (2, t) of the phenotypes (row 0) and
    of their residuals (row 1) over ``n`` samples."""
    scale = np.sqrt(sumsq[0])
    res = np.sqrt(sumsq[1])
    bad = np.flatnonzero(res <= 64 * n * np.finfo(float).eps * np.maximum(scale, 1e-300))
    if bad.size:
        labels = column_names(sumsq.shape[1], names)
        raise PhenotypeError(
            "phenotype is constant (or an exact linear combination of the covariates), so "
            "its variance components cannot be estimated: "
            f"{format_values([labels[k] for k in bad])}"
        )


def check_model_arrays(
    Kva: Any, y: Any, X: Any, *, finite_y: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Convert and check (Kva, y, X); return y as (n, t) and whether it was one-dimensional.
    ``finite_y=False`` leaves y's NaN and infinities to the caller (who checks them in a
    pass it makes anyway)."""
    Kva = as_float_array("Kva", Kva, ndim=(1,))
    n = Kva.shape[0]
    check_finite("kinship eigenvalues Kva", Kva, KinshipError)
    if np.any(Kva < 0):
        bad = Kva[Kva < 0]
        raise KinshipError(
            f"kinship eigenvalues must be non-negative; got {bad.size} negative values "
            f"({format_values(bad)}); eigen_rotation clips rounding-error negatives to zero"
        )
    y = as_float_array("y", y)
    single = y.ndim == 1
    if single:
        y = y[:, None]
    if y.shape[0] != n:
        raise InputError(f"y has {y.shape[0]} rows but there are {n} eigenvalues (samples)")
    if y.shape[1] == 0:
        raise PhenotypeError("y has no columns (no traits)")
    if finite_y:
        check_finite("y", y, PhenotypeError)
    X = as_float_array("X", X)
    if X.ndim == 1:
        X = X[:, None]
    if X.shape[0] != n:
        raise InputError(f"X has {X.shape[0]} rows but there are {n} eigenvalues (samples)")
    check_design(X)
    return Kva, y, X, single


def check_hsq(hsq: Any) -> tuple[np.ndarray, bool]:
    """Heritabilities as a 1-D array (and whether a scalar was given); must lie in [0, 1]."""
    arr = np.asarray(hsq, dtype=float)
    scalar = arr.ndim == 0
    arr = np.atleast_1d(arr)
    if arr.ndim != 1:
        raise InputError(f"hsq must be a scalar or a vector; got shape {arr.shape}")
    bad = ~((arr >= 0.0) & (arr <= 1.0))
    if bad.any():
        raise InputError(f"hsq must lie in [0, 1]; got {format_values(arr[bad])}")
    return arr, scalar


def check_tol(tol: Any, name: str = "tol") -> float:
    """Brent's tolerance on hsq: a number in (0, 0.5) (estimates within ``tol`` of 0 or 1 are
    flagged as on the boundary, so a larger one would flag the whole interval)."""
    try:
        value = float(tol)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number; got {tol!r}") from None
    if not 0.0 < value < 0.5:
        raise InputError(
            f"{name} must lie strictly between 0 and 0.5 (a tolerance on hsq in [0, 1]); "
            f"got {tol!r}"
        )
    return value


def check_level(level: Any) -> float:
    """Coverage of an interval: a number strictly between 0 and 1."""
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise InputError(f"level must be a number; got {level!r}") from None
    if not 0.0 < value < 1.0:
        raise InputError(f"level must lie strictly between 0 and 1; got {level!r}")
    return value


#: The kinship's eigenvalues on the space orthogonal to the covariates, if their spread (root
#: mean square deviation from their mean) is below this fraction of the largest eigenvalue, are
#: all equal up to rounding: hsq cannot be told from the residual variance.
IDENTIFIABLE_RTOL = 1e-8


def check_identifiable(
    Kva: np.ndarray, Xt: np.ndarray, traits: Sequence[str] | None = None
) -> None:
    """Refuse a kinship under which the heritability cannot be estimated.

    With eigenvalues :math:`\\lambda` and rotated covariates ``Xt``, the likelihood depends
    on hsq only through the eigenvalues of :math:`P \\Lambda P` on the range of
    :math:`P = I - QQ'` (Q an orthonormal basis of ``Xt``'s columns). If these are all equal
    (an identity or all-zero kinship, or one whose only structure lies along the covariates,
    e.g. ``a I + b 11'`` with an intercept), every hsq fits equally well. Their spread is
    computed without cancellation, as the Frobenius norm of :math:`P(\\Lambda - c)P`, c their
    mean. Raises :class:`KinshipError` naming ``traits``.
    """
    n, p = Xt.shape
    r = n - p
    if r < 1:
        return
    Q = np.linalg.qr(Xt)[0]
    w = np.einsum("ij,ij->i", Q, Q)  # squared norms of Q's rows
    top = float(np.max(np.abs(Kva))) if Kva.size else 0.0
    c = (float(np.sum(Kva)) - float(np.sum(Kva * w))) / r
    dev = Kva - c
    B = Q.T @ (dev[:, None] * Q)
    ss = float(np.sum(dev * dev) - 2.0 * np.sum(dev * dev * w) + np.sum(B * B))
    spread = np.sqrt(max(ss, 0.0) / r)
    if spread <= IDENTIFIABLE_RTOL * top or top == 0.0:
        who = f" for {format_values(list(traits))}" if traits else ""
        raise KinshipError(
            f"the kinship cannot separate the heritability from the residual variance{who}: "
            f"on the {r} dimensions left by the covariates all its eigenvalues equal {c:.6g} "
            "(an identity or all-zero kinship, or one whose only structure lies along the "
            "covariates, over the samples analysed); every hsq fits equally well"
        )


#: A column whose residual on others has a norm below this fraction of its own lies in their
#: span (rounding aside).
DEPENDENT_RTOL = 1e-8


def independent_columns(X: np.ndarray, extra: np.ndarray) -> list[int]:
    """The columns of ``extra`` that add to the span of ``X`` (and of the ones kept before
    them), in order: a column whose residual on those has a norm below :data:`DEPENDENT_RTOL`
    x its own is dropped (R/qtl2's drop_depcols)."""
    basis = np.linalg.qr(X)[0] if X.shape[1] else np.empty((X.shape[0], 0))
    keep = []
    for j in range(extra.shape[1]):
        col = extra[:, j]
        norm = float(np.sqrt(col @ col))
        resid = col - basis @ (basis.T @ col)
        rn = float(np.sqrt(resid @ resid))
        if norm > 0 and rn > DEPENDENT_RTOL * norm:
            keep.append(j)
            basis = np.column_stack([basis, resid / rn])
    return keep


def spans_constant(X: np.ndarray) -> bool:
    """Whether the constant vector lies in the span of the columns of ``X`` (n, p), with a
    residual below 1e-2 x :data:`DEPENDENT_RTOL` of its norm: a constant marker is then
    collinear with covariates ``X`` by a margin no rounding of the scan's own test (which
    uses the same tolerance as ``DEPENDENT_RTOL``) can undo."""
    if X.shape[1] == 0:
        return False
    ones = np.ones(X.shape[0])
    basis = np.linalg.qr(X)[0]
    resid = ones - basis @ (basis.T @ ones)
    return bool(np.sqrt(resid @ resid) <= 1e-2 * DEPENDENT_RTOL * np.sqrt(X.shape[0]))
