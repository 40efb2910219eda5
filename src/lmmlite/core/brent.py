r"""Brent's one-dimensional minimiser, as R's ``optimize`` runs it, for one item or many.

R/lmmlite maximises the log likelihood over :math:`h^2 \in [0, 1]` with Brent's method
(``stats::optimize`` in plain R, a copy of R's ``Brent_fmin`` in C++). To reproduce its numbers
to the last digits, not merely to within ``tol``, lmmlite follows the same iteration:
:func:`brent_fmin` is a line-by-line translation for one function, and
:func:`brent_fmin_lockstep` runs the identical iteration for many independent items at once,
vectorised across items, so that each item visits exactly the points the scalar version would.

Notes
-----
The algorithm is Brent (1973), *Algorithms for Minimization without Derivatives*, ch. 5, in
the form of R's ``src/library/stats/src/optimize.c``: golden-section steps with
:math:`c = (3 - \sqrt 5)/2`, parabolic steps when acceptable, and the stopping rule
:math:`|x - m| \le 2\,\mathrm{tol}_1 - (b - a)/2` with
:math:`\mathrm{tol}_1 = \sqrt{\epsilon}\,|x| + \mathrm{tol}/3`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import _kernels

__all__ = ["BrentResult", "brent_fmin", "brent_fmin_lockstep"]

GOLDEN = _GOLDEN = (3.0 - math.sqrt(5.0)) * 0.5
SQRT_EPS = _SQRT_EPS = math.sqrt(np.finfo(float).eps)
#: Brent's interval shrinks geometrically; this many steps exceed any tol >= 1e-300 on [0, 1].
MAX_ITER = 500


@dataclass(frozen=True)
class BrentResult:
    """Minima found by :func:`brent_fmin_lockstep`."""

    x: np.ndarray
    """Minimiser of each item."""
    fx: np.ndarray
    """Function value at ``x``."""
    n_eval: np.ndarray
    """Number of function evaluations of each item."""
    converged: np.ndarray
    """True where the stopping rule was met (False only if ``MAX_ITER`` was reached)."""


def brent_fmin(f: Callable[[float], float], lower: float, upper: float, tol: float) -> float:
    """Minimise ``f`` on ``[lower, upper]`` exactly as R's ``optimize`` does.

    Parameters
    ----------
    f
        Function of one float.
    lower, upper
        Interval ends.
    tol
        R's ``tol``.

    Returns
    -------
    float
        The minimiser R would return.

    Examples
    --------
    >>> round(brent_fmin(lambda x: (x - 0.3) ** 2, 0.0, 1.0, 1e-8), 6)
    0.3
    """
    a, b = lower, upper
    v = a + _GOLDEN * (b - a)
    w = x = v
    d = e = 0.0
    fx = f(x)
    fv = fw = fx
    tol3 = tol / 3.0
    for _ in range(MAX_ITER):
        xm = (a + b) * 0.5
        tol1 = _SQRT_EPS * abs(x) + tol3
        t2 = tol1 * 2.0
        if abs(x - xm) <= t2 - (b - a) * 0.5:
            break
        p = q = r = 0.0
        if abs(e) > tol1:  # fit a parabola
            r = (x - w) * (fx - fv)
            q = (x - v) * (fx - fw)
            p = (x - v) * q - (x - w) * r
            q = (q - r) * 2.0
            if q > 0.0:
                p = -p
            else:
                q = -q
            r = e
            e = d
        bad = math.isnan(p) or math.isnan(q) or math.isnan(r)  # infinite f values
        if bad or abs(p) >= abs(q * 0.5 * r) or p <= q * (a - x) or p >= q * (b - x):
            e = (b - x) if x < xm else (a - x)  # golden-section step
            d = _GOLDEN * e
        else:  # parabolic-interpolation step
            d = p / q
            u = x + d
            if u - a < t2 or b - u < t2:  # not too close to the ends
                d = tol1 if x < xm else -tol1
        if abs(d) >= tol1:
            u = x + d
        elif d > 0.0:
            u = x + tol1
        else:
            u = x - tol1
        fu = f(u)
        if fu <= fx:
            if u < x:
                b = x
            else:
                a = x
            v, w, x = w, x, u
            fv, fw, fx = fw, fx, fu
        else:
            if u < x:
                a = u
            else:
                b = u
            if fu <= fw or w == x:
                v, fv = w, fw
                w, fw = u, fu
            elif fu <= fv or v == x or v == w:
                v, fv = u, fu
    return x


def brent_fmin_lockstep(
    f: Callable[[np.ndarray, np.ndarray], np.ndarray],
    m: int,
    lower: float,
    upper: float,
    tol: float,
) -> BrentResult:
    """Minimise ``m`` independent functions on ``[lower, upper]``, all in one loop.

    Each item follows exactly the iteration of :func:`brent_fmin`; the items still running
    are evaluated together, one call of ``f`` per iteration.

    Parameters
    ----------
    f
        ``f(x, idx)`` returns the values of items ``idx`` (int array) at points ``x``.
    m
        Number of items.
    lower, upper, tol
        As in :func:`brent_fmin`.

    Returns
    -------
    BrentResult
    """
    if _kernels.HAVE_NUMBA:
        return _lockstep_compiled(f, m, lower, upper, tol)
    a = np.full(m, float(lower))
    b = np.full(m, float(upper))
    v = a + _GOLDEN * (b - a)
    w = v.copy()
    x = v.copy()
    d = np.zeros(m)
    e = np.zeros(m)
    fx = np.asarray(f(x, np.arange(m)), dtype=float).copy()
    fv = fx.copy()
    fw = fx.copy()
    n_eval = np.ones(m, dtype=np.int64)
    converged = np.zeros(m, dtype=bool)
    tol3 = tol / 3.0
    active = np.arange(m)
    for _ in range(MAX_ITER):
        A, B, X = a[active], b[active], x[active]
        xm = (A + B) * 0.5
        tol1 = _SQRT_EPS * np.abs(X) + tol3
        t2 = tol1 * 2.0
        done = np.abs(X - xm) <= t2 - (B - A) * 0.5
        if done.any():
            converged[active[done]] = True
            keep = ~done
            active, A, B, X, xm, tol1, t2 = (z[keep] for z in (active, A, B, X, xm, tol1, t2))
            if active.size == 0:
                break
        W, V, FX, FW, FV = w[active], v[active], fx[active], fw[active], fv[active]
        D, E = d[active], e[active]
        p = np.zeros(active.size)
        q = np.zeros(active.size)
        r = np.zeros(active.size)
        para = np.abs(E) > tol1
        with np.errstate(invalid="ignore"):
            rr = (X - W) * (FX - FV)
            qq = (X - V) * (FX - FW)
            pp = (X - V) * qq - (X - W) * rr
            qq = (qq - rr) * 2.0
        pp = np.where(qq > 0.0, -pp, pp)
        qq = np.abs(qq)
        p = np.where(para, pp, p)
        q = np.where(para, qq, q)
        r = np.where(para, E, r)
        E = np.where(para, D, E)
        with np.errstate(invalid="ignore"):
            golden = (np.abs(p) >= np.abs(q * 0.5 * r)) | (p <= q * (A - X)) | (p >= q * (B - X))
        golden |= np.isnan(p) | np.isnan(q) | np.isnan(r)
        eg = np.where(X < xm, B - X, A - X)
        E = np.where(golden, eg, E)
        with np.errstate(invalid="ignore", divide="ignore"):
            dp = p / q
        u = X + dp
        near = (u - A < t2) | (B - u < t2)
        dp = np.where(near, np.where(X < xm, tol1, -tol1), dp)
        D = np.where(golden, _GOLDEN * eg, dp)
        big = np.abs(D) >= tol1
        u = np.where(big, X + D, np.where(D > 0.0, X + tol1, X - tol1))
        fu = np.asarray(f(u, active), dtype=float)
        n_eval[active] += 1
        better = fu <= FX
        left = u < X
        # fu <= fx: shrink towards u, shift (v, w, x)
        A_new = np.where(better, np.where(left, A, X), np.where(left, u, A))
        B_new = np.where(better, np.where(left, X, B), np.where(left, B, u))
        c1 = ~better & ((fu <= FW) | (W == X))
        c2 = ~better & ~c1 & ((fu <= FV) | (V == X) | (V == W))
        V_new = np.where(better | c1, W, np.where(c2, u, V))
        FV_new = np.where(better | c1, FW, np.where(c2, fu, FV))
        W_new = np.where(better, X, np.where(c1, u, W))
        FW_new = np.where(better, FX, np.where(c1, fu, FW))
        X_new = np.where(better, u, X)
        FX_new = np.where(better, fu, FX)
        a[active], b[active] = A_new, B_new
        v[active], fv[active] = V_new, FV_new
        w[active], fw[active] = W_new, FW_new
        x[active], fx[active] = X_new, FX_new
        d[active], e[active] = D, E
    return BrentResult(x=x, fx=fx, n_eval=n_eval, converged=converged)


def _lockstep_compiled(
    f: Callable[[np.ndarray, np.ndarray], np.ndarray],
    m: int,
    lower: float,
    upper: float,
    tol: float,
) -> BrentResult:
    """:func:`brent_fmin_lockstep` with the per-item steps compiled (same arithmetic)."""
    a = np.full(m, float(lower))
    b = np.full(m, float(upper))
    v = a + _GOLDEN * (b - a)
    w = v.copy()
    x = v.copy()
    d = np.zeros(m)
    e = np.zeros(m)
    fx = np.array(f(x, np.arange(m)), dtype=float)
    fv = fx.copy()
    fw = fx.copy()
    n_eval = np.ones(m, dtype=np.int64)
    done = np.zeros(m, dtype=bool)
    active = np.arange(m, dtype=np.int64)
    u = np.empty(m)
    for _ in range(MAX_ITER):
        k = _kernels.brent_propose(
            active, a, b, x, w, v, fx, fw, fv, d, e, tol / 3.0, _SQRT_EPS, _GOLDEN, u, done
        )
        if k == 0:
            break
        active = active[:k].copy()
        uk = u[:k].copy()
        fu = np.asarray(f(uk, active), dtype=float)
        n_eval[active] += 1
        _kernels.brent_update(active, uk, fu, a, b, x, w, v, fx, fw, fv)
    return BrentResult(x=x, fx=fx, n_eval=n_eval, converged=done)
