"""A triangular solve (BLAS ``dtrsm``) that releases the interpreter lock.

``scipy.linalg.blas.dtrsm`` holds the lock for the whole call, so the scan's tasks, which run
in threads, would solve one at a time. SciPy's Cython BLAS (``scipy.linalg.cython_blas``, a
public API) exports the same routine as a C function pointer; called through :mod:`ctypes`,
which releases the lock during a foreign call, the threads' solves run side by side. Where
that pointer cannot be had, the wrapper of :mod:`scipy.linalg.blas` is used.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np

__all__ = ["solve_lower"]

_D = ctypes.POINTER(ctypes.c_double)
_I = ctypes.POINTER(ctypes.c_int)
_C = ctypes.c_char_p
_lock = threading.Lock()
_dtrsm: list[Any] = []  # [the ctypes function, or None]


def _cython_dtrsm() -> Any:
    """SciPy's Cython BLAS dtrsm as a ctypes function, or None."""
    try:
        from scipy.linalg import cython_blas

        capsule = cython_blas.__pyx_capi__["dtrsm"]
        api = ctypes.pythonapi
        api.PyCapsule_GetName.restype = ctypes.c_char_p
        api.PyCapsule_GetName.argtypes = [ctypes.py_object]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        address = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
    except Exception:  # pragma: no cover - SciPy without its Cython BLAS
        return None
    if not address:  # pragma: no cover
        return None
    proto = ctypes.CFUNCTYPE(None, _C, _C, _C, _C, _I, _I, _D, _D, _I, _D, _I)
    return proto(address)


def solve_lower(L: np.ndarray, B: np.ndarray, *, nogil: bool = True) -> np.ndarray:
    """``L^-1 B`` for a lower-triangular L (n, n) and B (n, c), both Fortran-ordered float64
    (L's upper triangle is not read). B is overwritten with the result, which is returned.
    ``nogil=False``: through :mod:`scipy.linalg.blas` (which holds the interpreter lock)."""
    n, c = B.shape
    if L.shape != (n, n):
        raise ValueError(f"L is {L.shape}, B {B.shape}: L must be square with B's rows")
    for name, a in (("L", L), ("B", B)):
        if a.dtype != np.float64 or not a.flags.f_contiguous:
            raise ValueError(f"{name} must be a Fortran-ordered float64 array")
    if not _dtrsm:
        with _lock:
            if not _dtrsm:
                _dtrsm.append(_cython_dtrsm())
    func = _dtrsm[0] if nogil else None
    if func is None or n == 0 or c == 0:
        from scipy.linalg import blas

        return blas.dtrsm(1.0, L, B, lower=1, overwrite_b=1)
    rows, cols, one = ctypes.c_int(n), ctypes.c_int(c), ctypes.c_double(1.0)
    func(
        b"L", b"L", b"N", b"N", ctypes.byref(rows), ctypes.byref(cols), ctypes.byref(one),
        L.ctypes.data_as(_D), ctypes.byref(rows), B.ctypes.data_as(_D), ctypes.byref(rows),
    )  # fmt: skip
    return B
