r"""Brent's one-dimensional minimiser, as R's ``optimize`` runs it, for one function.

R/lmmlite maximises the log likelihood over :math:`h^2 \in [0, 1]` with Brent's method
(``stats::optimize`` in plain R, a copy of R's ``Brent_fmin`` in C++). To reproduce its numbers
to the last digits, not merely to within ``tol``, lmmlite follows the same iteration:
:func:`brent_fmin` is a line-by-line translation for one function (the reference engine's).
The same iteration for many items at once is the compiled search of
:mod:`lmmlite.core._kernels` (``fit_items``) and its NumPy twin ``brent_lockstep``: each item
visits exactly the points this scalar version would.

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

__all__ = ["GOLDEN", "MAX_ITER", "SQRT_EPS", "BrentResult", "brent_fmin"]

#: The golden-section ratio (3 - sqrt(5)) / 2 of Brent's method.
GOLDEN = _GOLDEN = (3.0 - math.sqrt(5.0)) * 0.5
#: sqrt of the machine epsilon: Brent's relative tolerance on x.
SQRT_EPS = _SQRT_EPS = math.sqrt(np.finfo(float).eps)
#: Brent's interval shrinks geometrically; this many steps exceed any tol >= 1e-300 on [0, 1].
MAX_ITER = 500


@dataclass(frozen=True)
class BrentResult:
    """Minima of many items' searches (``lmmlite.core._kernels.fit_items``)."""

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
