"""Validation of the array arguments shared by the core functions."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import as_float_array, check_design, check_finite, format_values
from ..exceptions import InputError, KinshipError, PhenotypeError

__all__ = ["check_hsq", "check_model_arrays"]


def check_model_arrays(Kva: Any, y: Any, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Convert and check (Kva, y, X); return y as (n, t) and whether it was one-dimensional."""
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
