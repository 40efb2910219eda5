"""The BLAS a benchmark ran with, for its table: numpy's kernel and the OpenBLAS settings.

Some machines set ``OPENBLAS_CORETYPE`` (and ``OPENBLAS_L2_SIZE``) for every process, because
older OpenBLAS builds mis-detect or mis-handle their processor; a current numpy's OpenBLAS
then runs an older processor's kernels (e.g. Haswell's on an AVX-512 machine) and its matrix
products and eigendecompositions are slower. Timings mean little without saying which
kernel ran, so each benchmark prints this line. Child processes (the lmmlite commands and the
peers) inherit the same environment.
"""

from __future__ import annotations

import os

_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def blas_line() -> str:
    """``BLAS: <library> <version> (<kernel>) ...; <OpenBLAS variables or 'unset'>``."""
    import numpy  # noqa: F401  (loads numpy's BLAS before the query)
    from threadpoolctl import threadpool_info

    libs = [
        f"{_owner(i.get('filepath', ''))}{i.get('internal_api', '?')} {i.get('version', '?')} "
        f"({i.get('architecture', '?')} kernels)"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    env = ", ".join(f"{k}={os.environ[k]}" for k in _VARS if k in os.environ)
    return (
        f"BLAS: {'; '.join(libs) or 'none found'}; "
        f"{env or ' and '.join(_VARS) + ' unset'} (child processes inherit this environment)"
    )


def _owner(path: str) -> str:
    """``numpy's `` or ``scipy's `` for a wheel's bundled BLAS, else nothing."""
    for pkg in ("numpy", "scipy"):
        if f"{os.sep}{pkg}.libs{os.sep}" in path:
            return f"{pkg}'s "
    return ""
