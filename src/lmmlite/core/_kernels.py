r"""Compiled kernels of the fast engine (numba), each with a plain-NumPy twin (those of the
likelihood, Gram, residualisation and Brent search give the same numbers bit for bit, and take
small calls while numba is not started).

Everything the fast engine evaluates at a heritability :math:`h` reduces to two quantities
per *item* (a trait, or a trait-marker pair in a scan), each item having its own :math:`h_j`:

.. math::

    L_j = \sum_i \log d_{ij}, \qquad
    G_j = Z_j^\top S_j Z_j, \qquad
    d_{ij} = h_j \lambda_i + 1 - h_j, \quad S_j = \mathrm{diag}(1/d_{ij}),

where :math:`\lambda` are the kinship eigenvalues and the columns of :math:`Z_j` are the
rotated, orthonormalised covariates ``Q`` (shared by all items), the item's own extra columns
``M`` (a marker's genotype columns in a scan; none for heritability) and the item's rotated
phenotype ``y``. The log likelihood follows from a Cholesky factorisation of :math:`G_j`.

The kernels loop over items in parallel (``prange``). Sums over samples are taken in a fixed
order (sample order in the fused two- and three-column passes, four explicit lanes added in a
fixed order elsewhere); the reciprocals 1/d come from a loop of their own, which the compiler
vectorises. No fast-math flag is used, so an item's numbers are the same bit for bit whatever
the build (serial or parallel, freshly compiled or loaded from numba's cache) and whatever
the number of items. The log-determinant is accumulated as products of 64 factors
renormalised with ``frexp``, one logarithm per item instead of one per sample; a block whose
product leaves the safe range is summed term by term. Every kernel takes the covariate basis as
one 2-D array, so each is compiled once whatever the number of covariates. ``fit_items`` has a
second build for many items (1,024 or more) without marker columns (heritability and null fits
with one or two covariates): it evaluates a block's items together, the samples' loop outside
and the items' inside, each item's sums in the same order as one item alone (the same
numbers), the inner loop vectorised across items, and where every item of the block is at the
same h (the first Brent point and the interval's ends, for items sharing an interval) the
weights, log-determinant and covariate sums once for the block; it is compiled only by the
commands that use it. ``fit_items`` also keeps, from its evaluations, each item's Gram at its
result and at the interval's ends, so that the solution there needs no further pass over the
data; ``residualise`` also returns the sums of squares its callers' checks need.
``derivs_items`` adds the first and second derivatives in h of G and L (one more pass over the
samples), from which :func:`slope_curvature` gives the likelihood's, for the exact scan's
Newton steps.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import sys
import threading
import types
from typing import Any

import numpy as np

from .brent import GOLDEN, MAX_ITER, SQRT_EPS

#: The one switch between the compiled kernels and their NumPy twins: numba is used unless
#: ``LMMLITE_DISABLE_NUMBA`` is set (or numba is not installed). numba itself is imported only
#: when a kernel is first needed, so commands that never compute stay quick to start.
NUMBA_ENABLED = (
    os.environ.get("LMMLITE_DISABLE_NUMBA", "") == ""
    and importlib.util.find_spec("numba") is not None
)

__all__ = [
    "NUMBA_ENABLED",
    "best_markers",
    "brent_lockstep",
    "derivs_items",
    "fit_items",
    "fixed_den",
    "gram_items",
    "loglik_items",
    "residualise",
    "serial",
    "shuffle_rows",
    "slope_curvature",
    "start",
]

_LN2 = math.log(2.0)
_LOG_2PI = math.log(2.0 * math.pi)
#: Below this many (items x samples) the serial kernel is used: thread start-up dominates.
_PARALLEL_MIN_WORK = 200_000

_state = threading.local()


@contextlib.contextmanager
def serial():
    """Use the serial kernels in this thread (the scan's tasks run single-threaded and in
    parallel with each other; numba's parallel kernels are not for concurrent launches)."""
    before = getattr(_state, "serial", False)
    _state.serial = True
    try:
        yield
    finally:
        _state.serial = before


def _parallel(work: int) -> bool:
    return work >= _PARALLEL_MIN_WORK and not getattr(_state, "serial", False)


#: Items handled by one parallel task (scratch arrays are allocated once per task).
_CHUNK = 64
#: Factors multiplied together before one frexp renormalisation in the log-determinant (a
#: multiple of 4: the lanes of _weights).
_BLOCK = 64
_U1, _U2, _U3 = np.uint64(1), np.uint64(2), np.uint64(3)


def _logdet_tail(h, lam, i0, i1):  # pragma: no cover - compiled
    """sum(log d) over lam[i0:i1] where the block's product leaves range (zero, subnormal or
    huge factors): each factor split by frexp, mantissas multiplied (renormalised) and
    exponents added, one logarithm at the end; zero, infinite, negative and NaN factors give
    what the sum of the logarithms would (-inf, +inf, NaN)."""
    om = 1.0 - h
    mant = 1.0
    expo = 0
    zero = False
    huge = False
    for i in range(i0, i1):
        d = h * lam[i] + om
        if not (d > 0.0 and d < math.inf):
            if d == 0.0:
                zero = True
            elif d == math.inf:
                huge = True
            else:  # negative or NaN
                return math.nan
            continue
        m, e = math.frexp(d)
        mant *= m
        expo += e
        if mant < 1e-200:
            m, e = math.frexp(mant)
            mant = m
            expo += e
    if zero and huge:
        return math.nan
    if zero:
        return -math.inf
    if huge:
        return math.inf
    return math.log(mant) + expo * _LN2


#: The Python function (the global name is rebound to its compiled build with the kernels):
#: the NumPy twins call it for the rare out-of-range blocks.
_logdet_tail_py = _logdet_tail


def _weights(h, lam, s):  # pragma: no cover - compiled
    """Fill ``s`` with 1/d, d = h*lam + (1 - h), and return sum(log d).

    The reciprocals come first, in a loop of their own that the compiler vectorises (a
    division is the costliest step of an evaluation). The log-determinant is then the log of
    block products of ``_BLOCK`` factors (four lanes of 16, multiplied in a fixed order; d is
    recomputed, the same expression giving the same bits), renormalised with frexp: one
    logarithm per item instead of one per sample. A block whose product leaves the safe range
    (zero, subnormal or huge factors) is summed term by term.
    """
    n = lam.shape[0]
    om = 1.0 - h
    for i in range(n):
        s[i] = 1.0 / (h * lam[i] + om)
    mant = 1.0
    expo = 0
    extra = 0.0
    for i0 in range(0, n, _BLOCK):
        i1 = min(i0 + _BLOCK, n)
        i4 = i0 + (i1 - i0) // 4 * 4
        p0 = p1 = p2 = p3 = 1.0
        for r in range(i0 // 4, i4 // 4):
            i = np.uint64(4 * r)
            p0 *= h * lam[i] + om
            p1 *= h * lam[i + _U1] + om
            p2 *= h * lam[i + _U2] + om
            p3 *= h * lam[i + _U3] + om
        for i in range(i4, i1):
            p0 *= h * lam[i] + om
        prod = (p0 * p1) * (p2 * p3)
        if prod > 1e-280 and prod < 1e280:
            m, e = math.frexp(prod * mant)
            mant = m
            expo += e
        else:
            extra += _logdet_tail(h, lam, i0, i1)
    return math.log(mant) + expo * _LN2 + extra


#: Fewest items evaluated across lanes by :func:`_lane_pass` (below this the compiler's vector
#: loop is not entered and the per-item passes are faster).
_LANES_MIN = 24
#: Fewest items for which ``fit_items`` uses its lanes build: it saves about a nanosecond per
#: sample and evaluation, and costs about 2 s to compile (once per installation, and on top
#: of the plain build where a command needs both), so it is kept for many traits at once.
_LANES_BUILD_MIN = 1024


def _lane_pass(hb, lam, Q, YT, k, W, expo, reml, G, out, GS, slot):  # pragma: no cover
    """Log likelihoods into ``out[:k]`` of the items in lanes l < k, item l at heritability
    ``hb[l]`` with its y in column l of ``YT`` (n, lanes) and no marker column (Z = [Q', y]:
    two or three columns), ``W[14, l]`` its logdet_zz; the Gram and sum(log d) of lane l go
    to ``GS[slot[l]]`` (:func:`_keep_gram`) where ``slot[l] >= 0``.

    The same arithmetic in the same order as :func:`_weights` with :func:`_wdot2` or
    :func:`_wdot3`, then :func:`_assemble` (so the same numbers, bit for bit), with the loops
    exchanged: the inner loop runs across items, whose sums are independent, so the compiler
    vectorises it without reordering any sum. Scratch: ``W`` rows 0-5 the sums, 6-9 the
    log-determinant's block products (row 6, at the end, the sum(log d)), 10 and 11 its
    mantissas and tails; ``expo`` its exponents; G (c, c)."""
    n = lam.shape[0]
    c = Q.shape[0] + 1
    for l in range(k):
        for r in range(6):
            W[r, l] = 0.0
        W[10, l] = 1.0
        W[11, l] = 0.0
        expo[l] = 0
    q0 = Q[0]
    q1 = Q[c - 2]  # Q[1] when c == 3 (unused when c == 2)
    for i0 in range(0, n, _BLOCK):
        i1 = min(i0 + _BLOCK, n)
        i4 = i0 + (i1 - i0) // 4 * 4
        for r in range(6, 10):
            for l in range(k):
                W[r, l] = 1.0
        for i in range(i0, i1):
            li = lam[i]
            a = q0[i]
            r = 6 + ((i & 3) if i < i4 else 0)  # _weights' lane of sample i
            # two loops, not one with the test of c inside: that measured 20-50% slower
            if c == 3:
                b = q1[i]
                for l in range(k):
                    h = hb[l]
                    d = h * li + (1.0 - h)
                    W[r, l] *= d
                    w = 1.0 / d
                    y = YT[i, l]
                    wa = w * a
                    wb = w * b
                    wc = w * y
                    W[0, l] += wa * a
                    W[1, l] += wb * a
                    W[2, l] += wb * b
                    W[3, l] += wc * a
                    W[4, l] += wc * b
                    W[5, l] += wc * y
            else:
                for l in range(k):
                    h = hb[l]
                    d = h * li + (1.0 - h)
                    W[r, l] *= d
                    w = 1.0 / d
                    y = YT[i, l]
                    wa = w * a
                    wb = w * y
                    W[0, l] += wa * a
                    W[1, l] += wb * a
                    W[2, l] += wb * y
        for l in range(k):
            prod = (W[6, l] * W[7, l]) * (W[8, l] * W[9, l])
            if prod > 1e-280 and prod < 1e280:
                m, e = math.frexp(prod * W[10, l])
                W[10, l] = m
                expo[l] += e
            else:
                W[11, l] += _logdet_tail(hb[l], lam, i0, i1)
    for l in range(k):
        W[6, l] = math.log(W[10, l]) + expo[l] * _LN2 + W[11, l]
    _lane_finish(n, c, k, W, reml, G, out, GS, slot)


def _lane_finish(n, c, k, W, reml, G, out, GS, slot):  # pragma: no cover - compiled
    """The end of :func:`_lane_pass`: each lane's sums (``W`` rows 0-5) and sum(log d) (row
    6) assembled."""
    for l in range(k):
        L = W[6, l]
        G[0, 0] = W[0, l]
        G[1, 0] = W[1, l]
        G[1, 1] = W[2, l]
        if c == 3:
            G[2, 0] = W[3, l]
            G[2, 1] = W[4, l]
            G[2, 2] = W[5, l]
        if slot[l] >= 0:
            _keep_gram(G, L, GS, slot[l])
        out[l] = _assemble(G, L, n, c - 1, reml, W[14, l])


def _lane_pass_shared(h, lam, Q, YT, k, W, s, reml, G, out, GS, slot):  # pragma: no cover
    """:func:`_lane_pass` with every lane at the same heritability ``h`` (the first Brent
    point, and the interval's ends, of items sharing an interval): the weights and the
    log-determinant (:func:`_weights`, into the scratch ``s``) and the covariates' sums are
    the same for every lane and are computed once, by the same arithmetic, so the numbers are
    the same bit for bit; only the sums with y run across lanes."""
    n = lam.shape[0]
    c = Q.shape[0] + 1
    L = _weights(h, lam, s)
    y0 = 3 if c == 3 else 1  # the first row of W with a sum of y
    for l in range(k):
        for r in range(y0, y0 + c):
            W[r, l] = 0.0
    q0 = Q[0]
    q1 = Q[c - 2]
    g00 = g10 = g11 = 0.0
    for i in range(n):
        w = s[i]
        a = q0[i]
        wa = w * a
        g00 += wa * a
        if c == 3:
            b = q1[i]
            wb = w * b
            g10 += wb * a
            g11 += wb * b
            for l in range(k):
                y = YT[i, l]
                wc = w * y
                W[3, l] += wc * a
                W[4, l] += wc * b
                W[5, l] += wc * y
        else:
            for l in range(k):
                y = YT[i, l]
                wb = w * y
                W[1, l] += wb * a
                W[2, l] += wb * y
    for l in range(k):
        W[0, l] = g00
        if c == 3:
            W[1, l] = g10
            W[2, l] = g11
        W[6, l] = L
    _lane_finish(n, c, k, W, reml, G, out, GS, slot)


def _wdot(s, x, y):  # pragma: no cover - compiled
    """sum(s * x * y) in four lanes summed in a fixed order: four independent chains that the
    processor overlaps, without letting the compiler reorder the sums, so that the result is
    the same bit for bit whatever the build (serial, parallel, freshly compiled or loaded from
    numba's cache). Unsigned indices spare numba's negative-index checks."""
    n = s.shape[0]
    a0 = a1 = a2 = a3 = 0.0
    for r in range(n // 4):
        i = np.uint64(4 * r)
        a0 += s[i] * x[i] * y[i]
        a1 += s[i + _U1] * x[i + _U1] * y[i + _U1]
        a2 += s[i + _U2] * x[i + _U2] * y[i + _U2]
        a3 += s[i + _U3] * x[i + _U3] * y[i + _U3]
    tail = 0.0
    for i in range(n // 4 * 4, n):
        tail += s[i] * x[i] * y[i]
    return ((a0 + a1) + (a2 + a3)) + tail


def _column(a, p, k, Q, Mt, im, y):  # pragma: no cover - compiled
    """Column ``a`` of Z = [Q', M_im, y] (``Q``: the covariate basis, one vector per row)."""
    if a < p:
        return Q[a]
    if a < p + k:
        return Mt[im, a - p]
    return y


def _wdot3(s, x0, x1, x2, G):  # pragma: no cover - compiled
    """The lower triangle of Z'SZ for three columns in one pass (each sum in sample order):
    the columns are read once, not once per product."""
    g00 = g10 = g11 = g20 = g21 = g22 = 0.0
    for i in range(s.shape[0]):
        w = s[i]
        a = x0[i]
        b = x1[i]
        c = x2[i]
        wa = w * a
        wb = w * b
        wc = w * c
        g00 += wa * a
        g10 += wb * a
        g11 += wb * b
        g20 += wc * a
        g21 += wc * b
        g22 += wc * c
    G[0, 0] = g00
    G[1, 0] = g10
    G[1, 1] = g11
    G[2, 0] = g20
    G[2, 1] = g21
    G[2, 2] = g22


def _wdot2(s, x0, x1, G):  # pragma: no cover - compiled
    """As :func:`_wdot3` for two columns."""
    g00 = g10 = g11 = 0.0
    for i in range(s.shape[0]):
        w = s[i]
        a = x0[i]
        b = x1[i]
        wa = w * a
        wb = w * b
        g00 += wa * a
        g10 += wb * a
        g11 += wb * b
    G[0, 0] = g00
    G[1, 0] = g10
    G[1, 1] = g11


def _gram(h, lam, Q, Mt, im, y, s, G):  # pragma: no cover - compiled
    """Fill the lower triangle of G with Z'SZ, Z = [Q', M_im, y]; return sum(log d). ``s``
    is scratch of length n. Two or three columns (an intercept and a marker, or a null model
    with one or two covariates: the common cases) take one fused pass over the samples."""
    p = Q.shape[0]
    k = Mt.shape[1]
    c = p + k + 1
    L = _weights(h, lam, s)
    # the last column is y; the others are picked by a computed index (c - 3, c - 2), so that
    # numba compiles _column once, not once for each literal index
    if c == 3:
        _wdot3(s, _column(c - 3, p, k, Q, Mt, im, y), _column(c - 2, p, k, Q, Mt, im, y), y, G)
        return L
    if c == 2:
        _wdot2(s, _column(c - 2, p, k, Q, Mt, im, y), y, G)
        return L
    for a in range(c):
        za = _column(a, p, k, Q, Mt, im, y)
        for b in range(a + 1):
            G[a, b] = _wdot(s, za, _column(b, p, k, Q, Mt, im, y))
    return L


def _assemble(G, L, n, r, reml, logdet_zz):  # pragma: no cover - compiled
    """Profile log likelihood (R/lmmlite's convention) from G = Z'SZ, Z = [X-part (r), y].

    Factorises G in place (Cholesky of the augmented matrix: its last pivot is the residual sum
    of squares). Returns NaN if the covariate block is not positive definite or rss <= 0.
    """
    c = r + 1
    logdet = 0.0
    rss = math.nan
    for a in range(c):
        for b in range(a + 1):
            v = G[a, b]
            for q in range(b):
                v -= G[a, q] * G[b, q]
            if a == b:
                if a < r:
                    if not v > 0.0:
                        return math.nan
                    v = math.sqrt(v)
                    logdet += 2.0 * math.log(v)
                    G[a, a] = v
                else:
                    rss = v
            else:
                G[a, b] = v / G[b, b]
    if not rss > 0.0:
        return math.nan
    ll = -0.5 * (L + n * math.log(rss))
    if reml:
        ll += 0.5 * (r * (_LOG_2PI + math.log(rss / (n - r))) + logdet_zz - logdet)
    return ll


def _keep_gram(G, L, GS, row):  # pragma: no cover - compiled
    """Copy the lower triangle of G (row by row) and then L into ``GS[row]``."""
    q = 0
    for a in range(G.shape[0]):
        for b in range(a + 1):
            GS[row, q] = G[a, b]
            q += 1
    GS[row, q] = L


def _loglik_items(h, iy, im, lam, Q, Yt, Mt, logdet_mm, reml, out):  # pragma: no cover
    m = h.shape[0]
    n = lam.shape[0]
    c = Q.shape[0] + Mt.shape[1] + 1
    nchunk = (m + _CHUNK - 1) // _CHUNK
    for ch in numba.prange(nchunk):
        s = np.empty(n)
        G = np.empty((c, c))
        for j in range(ch * _CHUNK, min(m, (ch + 1) * _CHUNK)):
            L = _gram(h[j], lam, Q, Mt, im[j], Yt[iy[j]], s, G)
            out[j] = _assemble(G, L, n, c - 1, reml, logdet_mm[im[j]])


def _gram_items(h, iy, im, lam, Q, Yt, Mt, out_G, out_L):  # pragma: no cover - compiled
    m = h.shape[0]
    n = lam.shape[0]
    c = out_G.shape[1]
    nchunk = (m + _CHUNK - 1) // _CHUNK
    for ch in numba.prange(nchunk):
        s = np.empty(n)
        G = np.zeros((c, c))
        for j in range(ch * _CHUNK, min(m, (ch + 1) * _CHUNK)):
            out_L[j] = _gram(h[j], lam, Q, Mt, im[j], Yt[iy[j]], s, G)
            for a in range(c):
                for b in range(a + 1):
                    out_G[j, a, b] = G[a, b]
                    out_G[j, b, a] = G[a, b]


def _dgram(lam, Q, Mt, im, y, s, w1, w2, G1, G2):  # pragma: no cover - compiled
    """The first and second derivatives in h of Z'SZ (lower triangles of G1, G2) and of
    sum(log d) (returned), from ``s`` = 1/d as :func:`_gram` left it: with e = (lam - 1)/d,
    dS/dh = -S e and d2S/dh2 = 2 S e^2. ``w1``, ``w2``: scratch (n,)."""
    p = Q.shape[0]
    k = Mt.shape[1]
    c = p + k + 1
    n = lam.shape[0]
    for i in range(n):  # a loop the compiler vectorises
        e = (lam[i] - 1.0) * s[i]
        w1[i] = s[i] * e
        w2[i] = w1[i] * e
    a0 = a1 = a2 = a3 = 0.0  # sum(e) and sum(e^2) in four lanes
    b0 = b1 = b2 = b3 = 0.0
    for r in range(n // 4):
        i = np.uint64(4 * r)
        e0 = (lam[i] - 1.0) * s[i]
        e1 = (lam[i + _U1] - 1.0) * s[i + _U1]
        e2 = (lam[i + _U2] - 1.0) * s[i + _U2]
        e3 = (lam[i + _U3] - 1.0) * s[i + _U3]
        a0 += e0
        a1 += e1
        a2 += e2
        a3 += e3
        b0 += e0 * e0
        b1 += e1 * e1
        b2 += e2 * e2
        b3 += e3 * e3
    for i in range(n // 4 * 4, n):
        e0 = (lam[i] - 1.0) * s[i]
        a0 += e0
        b0 += e0 * e0
    l1 = (a0 + a1) + (a2 + a3)
    l2 = (b0 + b1) + (b2 + b3)
    if c == 3:  # the fused three-column pass of _gram, once per weight
        x0 = _column(c - 3, p, k, Q, Mt, im, y)
        x1 = _column(c - 2, p, k, Q, Mt, im, y)
        _wdot3(w1, x0, x1, y, G1)
        _wdot3(w2, x0, x1, y, G2)
    else:
        for a in range(c):
            za = _column(a, p, k, Q, Mt, im, y)
            for b in range(a + 1):
                zb = _column(b, p, k, Q, Mt, im, y)
                G1[a, b] = _wdot(w1, za, zb)
                G2[a, b] = _wdot(w2, za, zb)
    for a in range(c):
        for b in range(a + 1):
            G1[a, b] = -G1[a, b]
            G2[a, b] = 2.0 * G2[a, b]
    return l1, -l2


def _derivs_items(
    h, iy, im, lam, Q, Yt, Mt, logdet_mm, reml, out_f, out_G, out_G1, out_G2, out_L
):  # pragma: no cover - compiled
    """Profile log likelihood of each item at its h (``out_f``, as :func:`_loglik_items`, bit
    for bit), its Z'SZ and that matrix's first and second derivatives in h (``out_G``,
    ``out_G1``, ``out_G2``, (m, c, c), symmetric) and those of sum(log d) (``out_L`` (m, 2));
    :func:`slope_curvature` turns them into the likelihood's derivatives."""
    m = h.shape[0]
    n = lam.shape[0]
    c = Q.shape[0] + Mt.shape[1] + 1
    nchunk = (m + _CHUNK - 1) // _CHUNK
    for ch in numba.prange(nchunk):
        s = np.empty(n)
        w1 = np.empty(n)
        w2 = np.empty(n)
        G = np.empty((c, c))
        G1 = np.empty((c, c))
        G2 = np.empty((c, c))
        for j in range(ch * _CHUNK, min(m, (ch + 1) * _CHUNK)):
            y = Yt[iy[j]]
            L = _gram(h[j], lam, Q, Mt, im[j], y, s, G)
            l1, l2 = _dgram(lam, Q, Mt, im[j], y, s, w1, w2, G1, G2)
            for a in range(c):
                for b in range(a + 1):
                    out_G[j, a, b] = G[a, b]
                    out_G[j, b, a] = G[a, b]
                    out_G1[j, a, b] = G1[a, b]
                    out_G1[j, b, a] = G1[a, b]
                    out_G2[j, a, b] = G2[a, b]
                    out_G2[j, b, a] = G2[a, b]
            out_L[j, 0] = l1
            out_L[j, 1] = l2
            out_f[j] = _assemble(G, L, n, c - 1, reml, logdet_mm[im[j]])


def _residualise(yT, Q, coef, out, ss):  # pragma: no cover - compiled
    """coef[:, j] = Q @ yT[j] and out[j] = yT[j] - coef[:, j] @ Q, trait by trait, with the
    sums of squares of yT[j] and of out[j] in ``ss[:, j]`` (for the checks: the data are at
    hand; four lanes, as :func:`_wdot`, so that they do not wait on each addition).

    Each trait's arithmetic is the same whatever the number of traits, so a batch gives
    bit-for-bit the results of one-trait calls (a matrix product would round differently).
    """
    t = yT.shape[0]
    p = Q.shape[0]
    for j in numba.prange(t):
        row = out[j]
        n = row.shape[0]
        for i in range(n):  # not row[:] = yT[j]: its shape check costs 2 s to compile
            row[i] = yT[j, i]
        for k in range(p):
            qk = Q[k]
            c = 0.0
            for i in range(n):
                c += qk[i] * yT[j, i]
            coef[k, j] = c
            for i in range(n):
                row[i] -= c * qk[i]
        ss[0, j] = _sumsq(yT[j])
        ss[1, j] = _sumsq(row)


def _sumsq(x):  # pragma: no cover - compiled
    """sum(x * x) in four lanes added in a fixed order, then the tail (as :func:`_wdot`)."""
    n = x.shape[0]
    a0 = a1 = a2 = a3 = 0.0
    for r in range(n // 4):
        i = np.uint64(4 * r)
        a0 += x[i] * x[i]
        a1 += x[i + _U1] * x[i + _U1]
        a2 += x[i + _U2] * x[i + _U2]
        a3 += x[i + _U3] * x[i + _U3]
    tail = 0.0
    for i in range(n // 4 * 4, n):
        tail += x[i] * x[i]
    return ((a0 + a1) + (a2 + a3)) + tail


def _brent_propose(active, a, b, x, w, v, fx, fw, fv, d, e, tol3, sqrt_eps, golden, u, done):
    """One step of R's Brent_fmin for each active item (see brent.py): the stopping test, then
    the next point ``u``. Compacts ``active`` in place to the items still running and returns
    their number (``u[:k]`` holds their points). Exact IEEE arithmetic (no fast-math)."""
    k = 0
    for idx in range(active.shape[0]):
        j = active[idx]
        xj = x[j]
        xm = (a[j] + b[j]) * 0.5
        tol1 = sqrt_eps * abs(xj) + tol3
        t2 = tol1 * 2.0
        if abs(xj - xm) <= t2 - (b[j] - a[j]) * 0.5:
            done[j] = True
            continue
        p = 0.0
        q = 0.0
        r = 0.0
        if abs(e[j]) > tol1:
            r = (xj - w[j]) * (fx[j] - fv[j])
            q = (xj - v[j]) * (fx[j] - fw[j])
            p = (xj - v[j]) * q - (xj - w[j]) * r
            q = (q - r) * 2.0
            if q > 0.0:
                p = -p
            else:
                q = -q
            r = e[j]
            e[j] = d[j]
        bad = math.isnan(p) or math.isnan(q) or math.isnan(r)
        if bad or abs(p) >= abs(q * 0.5 * r) or p <= q * (a[j] - xj) or p >= q * (b[j] - xj):
            e[j] = (b[j] - xj) if xj < xm else (a[j] - xj)
            d[j] = golden * e[j]
        else:
            d[j] = p / q
            uu = xj + d[j]
            if uu - a[j] < t2 or b[j] - uu < t2:
                d[j] = tol1 if xj < xm else -tol1
        if abs(d[j]) >= tol1:
            uu = xj + d[j]
        elif d[j] > 0.0:
            uu = xj + tol1
        else:
            uu = xj - tol1
        active[k] = j
        u[k] = uu
        k += 1
    return k


def _brent_update(active, u, fu, a, b, x, w, v, fx, fw, fv):
    """Brent_fmin's update of (a, b, v, w, x) after evaluating the active items at ``u``."""
    for idx in range(active.shape[0]):
        j = active[idx]
        uu = u[idx]
        f = fu[idx]
        if f <= fx[j]:
            if uu < x[j]:
                b[j] = x[j]
            else:
                a[j] = x[j]
            v[j] = w[j]
            fv[j] = fw[j]
            w[j] = x[j]
            fw[j] = fx[j]
            x[j] = uu
            fx[j] = f
        else:
            if uu < x[j]:
                a[j] = uu
            else:
                b[j] = uu
            if f <= fw[j] or w[j] == x[j]:
                v[j] = w[j]
                fv[j] = fw[j]
                w[j] = uu
                fw[j] = f
            elif f <= fv[j] or v[j] == x[j] or v[j] == w[j]:
                v[j] = uu
                fv[j] = f


#: Items searched together (in lockstep) by one parallel task of ``fit_items``: their data
#: (64 traits x n doubles) stays in the core's cache for the whole search; in the lanes build,
#: the lanes of one evaluation.
_FIT_BLOCK = 64
_MAX_ITER = MAX_ITER
_GOLDEN = GOLDEN
_SQRT_EPS = SQRT_EPS


def _evaluate(
    u, active, k, j0, iy, im, lam, Q, Yt, Mt, logdet_mm, reml, s, G,
    YT, lane_of, held, x, W, I, out, GS,
):  # fmt: skip  # pragma: no cover - compiled
    """Log likelihoods (NaN kept) of the block's items ``active[:k]`` (block positions) at
    ``u[:k]`` into ``out[:k]``, and their Grams into ``GS[:k]`` (:func:`_keep_gram`), one by
    one: the evaluation step of :func:`_fit_items`' plain build (the other arguments are
    those of :func:`_evaluate_lanes`). Returns 0."""
    n = lam.shape[0]
    c = G.shape[0]
    for ii in range(k):
        j = j0 + active[ii]
        L = _gram(u[ii], lam, Q, Mt, im[j], Yt[iy[j]], s, G)
        _keep_gram(G, L, GS, ii)
        out[ii] = _assemble(G, L, n, c - 1, reml, logdet_mm[im[j]])
    return 0


def _evaluate_lanes(
    u, active, k, j0, iy, im, lam, Q, Yt, Mt, logdet_mm, reml, s, G,
    YT, lane_of, held, x, W, I, out, GS,
):  # fmt: skip  # pragma: no cover - compiled
    """As :func:`_evaluate` (the same numbers), the evaluation step of the lanes build: across
    lanes (:func:`_lane_pass`) while they hold items (``held``; the item in lane l is
    ``lane_of[l]``, its y in column l of ``YT``) and at least ``_LANES_MIN`` are searching,
    else one by one. Returns the lanes held afterwards (0 from the first call with too few
    items: one by one from there on). Scratch: ``W`` (15, lanes), ``I`` (2, lanes)."""
    if held == 0 or k < _LANES_MIN:
        return _evaluate(
            u, active, k, j0, iy, im, lam, Q, Yt, Mt, logdet_mm, reml, s, G,
            YT, lane_of, 0, x, W, I, out, GS,
        )  # fmt: skip
    if 4 * k <= 3 * held:
        # a quarter of the lanes idle: move the searching items' columns (an ordered
        # subsequence of the lanes') to lanes 0..k-1
        src = 0
        for l in range(k):
            item = active[l]
            while lane_of[src] != item:
                src += 1
            if src != l:
                for i in range(YT.shape[0]):
                    YT[i, l] = YT[i, src]
                lane_of[l] = item
            src += 1
        held = k
    # each lane's point: its item's u if searching (I[1, l]: its place in active), else its
    # x (evaluated between compactions, the result dropped)
    q = 0
    for l in range(held):
        item = lane_of[l]
        W[14, l] = logdet_mm[im[j0 + item]]
        if q < k and active[q] == item:
            W[12, l] = u[q]
            I[1, l] = q
            q += 1
        else:
            W[12, l] = x[item]
            I[1, l] = -1
    shared = True
    for l in range(1, held):
        shared = shared and W[12, l] == W[12, 0]
    if shared:
        _lane_pass_shared(W[12, 0], lam, Q, YT, held, W, s, reml, G, W[13], GS, I[1])
    else:
        _lane_pass(W[12], lam, Q, YT, held, W, I[0], reml, G, W[13], GS, I[1])
    for l in range(held):
        if I[1, l] >= 0:
            out[I[1, l]] = W[13, l]
    return held


#: The lanes build of _fit_items binds these names otherwise (see _VARIANTS).
_LANES = False


def _fit_items(
    iy,
    im,
    lam,
    Q,
    Yt,
    Mt,
    logdet_mm,
    reml,
    lower,
    upper,
    tol3,
    sqrt_eps,
    golden,
    x_out,
    fx_out,
    neval_out,
    done_out,
    ends,
    lo_out,
    hi_out,
    g_out,
):
    """Brent's search (R's Brent_fmin, step for step) of every item on its own interval
    ``[lower[j], upper[j]]``, in lockstep within blocks of ``_FIT_BLOCK`` items; blocks run in
    parallel. Minimises -loglik (NaN taken as +inf). With ``ends``, the log likelihoods at
    the interval's ends go to ``lo_out`` and ``hi_out``. ``g_out[0, j]`` gets the Gram and
    sum(log d) (:func:`_keep_gram`) of item j at its result x, and with ``ends``
    ``g_out[1, j]`` and ``g_out[2, j]`` those at its ends: those evaluated in the search,
    for the solution there without another pass over the data.

    Items without marker columns and with two or three Gram columns (heritability and null
    fits with one or two covariates) are evaluated across lanes (:func:`_lane_pass`, the same
    numbers) while at least ``_LANES_MIN`` of the block's items are searching; the rest one
    by one."""
    m = iy.shape[0]
    n = lam.shape[0]
    c = Q.shape[0] + Mt.shape[1] + 1
    nblk = (m + _FIT_BLOCK - 1) // _FIT_BLOCK
    for blk in numba.prange(nblk):
        j0 = blk * _FIT_BLOCK
        nb = min(m, j0 + _FIT_BLOCK) - j0
        s = np.empty(n)
        G = np.empty((c, c))
        a = lower[j0 : j0 + nb].copy()
        b = upper[j0 : j0 + nb].copy()
        v = a + golden * (b - a)
        w = v.copy()
        x = v.copy()
        d = np.zeros(nb)
        e = np.zeros(nb)
        fx = np.empty(nb)
        fv = np.empty(nb)
        fw = np.empty(nb)
        # items without marker columns, with two or three Gram columns, enough of them:
        # evaluated across lanes, their y copied to the columns of YT
        lanes = _LANES and Mt.shape[1] == 0 and (c == 2 or c == 3) and nb >= _LANES_MIN
        held = nb if lanes else 0  # items held in the lanes
        YT = np.empty((n, held))
        for i0 in range(0, n, 16):  # a transpose, 16 samples at a time
            i1 = min(i0 + 16, n)
            for l in range(held):
                y = Yt[iy[j0 + l]]
                for i in range(i0, i1):
                    YT[i, l] = y[i]
        lane_of = np.arange(held)
        W = np.empty((15, held))
        I = np.empty((2, held), dtype=np.int64)
        neval = np.ones(nb, dtype=np.int64)
        done = np.zeros(nb, dtype=np.bool_)
        active = np.arange(nb)
        u = np.empty(nb)
        fu = np.empty(nb)
        ns = g_out.shape[2]
        GS = np.empty((nb, ns))  # the Grams of one evaluation step
        GX = np.empty((nb, ns))  # the Grams at x
        # steps -2 and -1: the interval's ends (with ``ends``), 0: the first point, then
        # Brent's; one evaluation call for all (each call site is compiled on its own)
        for step in range(-2 if ends else 0, _MAX_ITER + 1):
            if step <= 0:
                k = nb
                for i in range(nb):
                    u[i] = a[i] if step == -2 else (b[i] if step == -1 else x[i])
            else:
                k = _brent_propose(
                    active, a, b, x, w, v, fx, fw, fv, d, e, tol3, sqrt_eps, golden, u, done
                )
                if k == 0:
                    break
                active = active[:k]
            held = _evaluate(
                u, active, k, j0, iy, im, lam, Q, Yt, Mt, logdet_mm, reml, s, G,
                YT, lane_of, held, x, W, I, fu, GS,
            )  # fmt: skip
            if step < 0:
                out = lo_out if step == -2 else hi_out
                for i in range(nb):
                    out[j0 + i] = fu[i]
                    for q in range(ns):  # loops, not slices: quicker to compile
                        g_out[step + 3, j0 + i, q] = GS[i, q]
                continue
            for ii in range(k):
                fu[ii] = math.inf if math.isnan(fu[ii]) else -fu[ii]
            if step == 0:
                for i in range(nb):
                    fx[i] = fu[i]
                    fv[i] = fu[i]
                    fw[i] = fu[i]
                    for q in range(ns):
                        GX[i, q] = GS[i, q]
                continue
            for ii in range(k):
                neval[active[ii]] += 1
                if fu[ii] <= fx[active[ii]]:  # _brent_update's test: x moves to u
                    for q in range(ns):
                        GX[active[ii], q] = GS[ii, q]
            _brent_update(active, u[:k], fu[:k], a, b, x, w, v, fx, fw, fv)
        for i in range(nb):
            for q in range(ns):
                g_out[0, j0 + i, q] = GX[i, q]
            x_out[j0 + i] = x[i]
            fx_out[j0 + i] = fx[i]
            neval_out[j0 + i] = neval[i]
            done_out[j0 + i] = done[i]


def _best_markers(
    num, msm, msq, C, row, offset, den, rden, best_q, best_i, best_num, best_den
):  # pragma: no cover
    """Running per-trait maximum of q = num^2 / den over a block of markers (fixed-hsq scan).

    Trait-major blocks: ``num`` (t, mb); ``msm`` (u, mb), ``msq`` (p, u, mb) and ``C``
    (u, p, p) per distinct heritability, trait j's being row ``row[j]``; den = msm - msq' C
    msq. ``den`` and ``rden`` (u, mb) are scratch: den and 1/den (NaN where den <= 0) are
    computed once per distinct heritability, so that traits sharing one (``hsq_grid``) share
    them, and q = num^2 * (1/den) costs no division per trait. Untestable markers come as
    zero columns (den = 0). Updates ``best_*`` (t,) where q is strictly larger (the first
    marker wins ties); a marker with den <= 0 or NaN q never wins. Each trait's row is
    reduced to its maximum in four lanes (a maximum does not depend on the order), and the
    index is looked for only when the row beats the running best.
    """
    t, mb = num.shape
    u = msm.shape[0]
    p = msq.shape[0]
    used = np.zeros(u, dtype=np.bool_)
    for j in range(t):
        used[row[j]] = True
    for k in numba.prange(u):
        if not used[k]:
            continue
        if p == 1:  # the common case (an intercept only): a loop LLVM vectorises
            c = C[k, 0, 0]
            for r in range(mb):
                v = msq[0, k, r]
                den[k, r] = msm[k, r] - v * c * v
        else:
            for r in range(mb):
                d = msm[k, r]
                for a in range(p):
                    for b in range(p):
                        d -= msq[a, k, r] * C[k, a, b] * msq[b, k, r]
                den[k, r] = d
        for r in range(mb):
            d = den[k, r]
            rden[k, r] = 1.0 / d if d > 0.0 else math.nan
    for j in numba.prange(t):
        k = row[j]
        m0 = m1 = m2 = m3 = -1.0
        for rr in range(mb // 4):
            r = np.uint64(4 * rr)
            q0 = num[j, r] * num[j, r] * rden[k, r]
            q1 = num[j, r + _U1] * num[j, r + _U1] * rden[k, r + _U1]
            q2 = num[j, r + _U2] * num[j, r + _U2] * rden[k, r + _U2]
            q3 = num[j, r + _U3] * num[j, r + _U3] * rden[k, r + _U3]
            m0 = q0 if q0 > m0 else m0
            m1 = q1 if q1 > m1 else m1
            m2 = q2 if q2 > m2 else m2
            m3 = q3 if q3 > m3 else m3
        for r in range(mb // 4 * 4, mb):
            q = num[j, r] * num[j, r] * rden[k, r]
            m0 = q if q > m0 else m0
        top = max(max(m0, m1), max(m2, m3))
        if top >= 0.0 and top > best_q[j]:
            for r in range(mb):
                if num[j, r] * num[j, r] * rden[k, r] == top:
                    best_q[j] = top
                    best_i[j] = offset + r
                    best_num[j] = num[j, r]
                    best_den[j] = den[k, r]
                    break


def _shuffle_rows(block, where, draws):  # pragma: no cover - compiled
    """Fisher-Yates shuffle, in place, of the entries ``where`` (ns,) of every row of ``block``
    (P, n): at step i, from ns - 1 down to 1, entries ``where[i]`` and ``where[draws[r, i]]``
    (``draws[r, i]`` in 0..i) of row r are swapped."""
    P = block.shape[0]
    ns = where.shape[0]
    for r in numba.prange(P):
        for i in range(ns - 1, 0, -1):
            a = where[i]
            b = where[draws[r, i]]
            held = block[r, b]
            block[r, b] = block[r, a]
            block[r, a] = held


def _row_max_scaled_sq(C, scale, out):  # pragma: no cover - compiled
    """``out[r] = max(out[r], max_j C[r, j]^2 scale[j])`` for every row r of C (P, m)."""
    P, m = C.shape
    for r in numba.prange(P):
        top = out[r]
        for j in range(m):
            v = C[r, j] * C[r, j] * scale[j]
            if v > top:
                top = v
        out[r] = top


# ---------------------------------------------------------------------------------------------
# Building the compiled kernels, lazily: numba is imported and a kernel compiled (or loaded from
# numba's on-disk cache) only when first used.

numba: Any = None  # the numba module, once imported (the kernels' prange refers to it)
_BUILT: dict[str, Any] = {}
_BUILD_LOCK = threading.Lock()
_ANNOUNCED = False
#: No fast-math flags: every sum is taken in the order written (sample order, or explicit
#: lanes), so the numbers do not depend on how a kernel was built (serial or parallel, freshly
#: compiled or loaded from numba's cache), and Brent's decisions see exact IEEE arithmetic.
_OPTS = {"cache": True, "nogil": True, "error_model": "numpy"}
#: Helpers compiled first, in this order, and called by the kernels (module globals, which
#: numba resolves when it compiles a caller).
_HELPERS = (
    "_logdet_tail",
    "_weights",
    "_wdot",
    "_wdot2",
    "_wdot3",
    "_column",
    "_gram",
    "_assemble",
    "_keep_gram",
    "_sumsq",
    "_evaluate",
    "_lane_finish",
    "_lane_pass",
    "_lane_pass_shared",
    "_evaluate_lanes",
    "_dgram",
    "_brent_propose",
    "_brent_update",
)
#: The kernels: name -> (Python function, numba options). Each has a serial and a parallel
#: build under distinct names (numba's on-disk cache is keyed by qualified name and line).
_KERNELS = {
    "loglik": _loglik_items,
    "gram": _gram_items,
    "derivs": _derivs_items,
    "residualise": _residualise,
    "fit": _fit_items,
    "best": _best_markers,
    "shuffle": _shuffle_rows,
    "rowmax": _row_max_scaled_sq,
}


#: Kernels built from another's code with some of its global names bound otherwise: the
#: lanes build of fit (items evaluated across lanes, the same numbers as the plain build's),
#: compiled only by the commands that fit many traits at once.
_VARIANTS = {"fit_lanes": ("fit", {"_LANES": True, "_evaluate": "_evaluate_lanes"})}


def _renamed(func, name, binds=None):
    """A copy of ``func`` under another name (for a separate numba cache entry), with the
    global names in ``binds`` bound to the values of the globals named."""
    g = func.__globals__
    if binds:
        g = dict(g)
        g.update({k: v if not isinstance(v, str) else g[v] for k, v in binds.items()})
    copy = types.FunctionType(func.__code__, g, name, func.__defaults__)
    copy.__qualname__ = name
    return copy


def _announce(dispatcher: Any) -> None:
    """Say once on stderr that kernels are being compiled, when numba has no cached build of
    this one (the first run after installing lmmlite; later runs load the cache)."""
    global _ANNOUNCED
    if _ANNOUNCED:
        return
    try:
        cached = os.path.exists(dispatcher._cache._cache_file._index_path)
    except AttributeError:  # pragma: no cover - numba internals changed: say nothing
        return
    if not cached:
        _ANNOUNCED = True
        print(
            "lmmlite: compiling numerical kernels for first use (once after installing; "
            "the compiled code is cached)",
            file=sys.stderr,
            flush=True,
        )


def _kernel(name: str, parallel: bool) -> Any:
    """The compiled kernel ``name`` (serial or parallel build), built on first use."""
    key = f"{name}_{'parallel' if parallel else 'serial'}"
    kernel = _BUILT.get(key)
    if kernel is not None:
        return kernel
    with _BUILD_LOCK:
        if key not in _BUILT:
            global numba
            if numba is None:
                import numba as nb

                numba = nb
                g = globals()
                for helper in _HELPERS:
                    g[helper] = numba.njit(**_OPTS)(g[helper])
            base, binds = _VARIANTS.get(name, (name, None))
            func = _KERNELS[base]
            suffix = name[len(base) :]  # "_lanes" for a variant
            if parallel:
                func = _renamed(func, func.__name__ + suffix, binds) if binds else func
                _BUILT[key] = numba.njit(parallel=True, **_OPTS)(func)
            else:
                copy = _renamed(func, f"{func.__name__}{suffix}_serial", binds)
                _BUILT[key] = numba.njit(**_OPTS)(copy)
            _announce(_BUILT[key])
    return _BUILT[key]


def start() -> None:
    """Start numba now, in this thread (import it and load, or compile, the search kernel),
    when compiled kernels will be needed anyway: small calls then use the kernels rather than
    the twins, and numba's start-up is not paid later by a task."""
    if NUMBA_ENABLED:
        _kernel("fit", False)


#: Kernels whose NumPy twins give their numbers bit for bit, with the cost of a call in
#: sample-evaluations per unit of work (a fit evaluates each item about 30 times).
_EXACT_TWINS = {"loglik": 1, "gram": 1, "residualise": 1, "fit": 32, "derivs": 3}
#: Sample-evaluations (about 0.2 s) the exact twins take on before numba is started, for
#: small calls: starting numba costs 0.3-0.5 s (and, after installing, seconds of
#: compilation), so a command whose only such work is small (the null fit of a scan of one
#: trait) does without it. Once numba is started, the kernels are used.
_TWIN_BUDGET = 3_000_000
_twin_left = [_TWIN_BUDGET]
_TWIN_LOCK = threading.Lock()


def _compiled(name: str, work: int, use_numba: bool | None) -> Any:
    """The compiled kernel to call (serial below ``_PARALLEL_MIN_WORK`` or in a task), or None
    for the NumPy twin: with numba switched off, and (by default) for a small call with an
    exact twin while numba has not been started and the twins' budget lasts."""
    if not (NUMBA_ENABLED if use_numba is None else use_numba):
        return None
    if use_numba is None and numba is None and name in _EXACT_TWINS:
        cost = work * _EXACT_TWINS[name]
        with _TWIN_LOCK:
            if numba is None and cost <= _twin_left[0]:
                _twin_left[0] -= cost
                return None
    return _kernel(name, _parallel(work))


# ---------------------------------------------------------------------------------------------
# NumPy twins: the same quantities, vectorised over items; used when numba is switched off
# (``LMMLITE_DISABLE_NUMBA=1``) and in the tests as the kernels' oracle. Each item's arithmetic
# is the same whatever the number of items, so a batch equals one-at-a-time calls bit for bit,
# as with the kernels. The twins of loglik, gram, residualise and fit are the kernels' numbers
# bit for bit (each sum in the kernel's order, as a cumulative sum; the C library's log, which
# the kernels call, rather than NumPy's): small calls use them until numba is started
# (:func:`_compiled`), so that a command with little such work (a fixed-hsq scan of one
# trait) does not pay numba's start-up.


def _columns_numpy(iy, im, Q, Yt, Mt):
    """The columns of Z = [Q', M_im, y] of each item, each an (items, n) array."""
    m = iy.shape[0]
    cols = [np.broadcast_to(Q[a], (m, Q.shape[1])) for a in range(Q.shape[0])]
    cols += [Mt[im, b] for b in range(Mt.shape[1])]
    cols.append(Yt[iy])
    return cols


def _logs(a: np.ndarray) -> np.ndarray:
    """math.log element by element: the kernels' logarithm (the C library's), bit for bit;
    NumPy's vectorised log can differ from it in the last bit."""
    a = np.asarray(a, dtype=float)
    return np.array([_log(v) for v in a.ravel().tolist()], dtype=float).reshape(a.shape)


def _log(v: float) -> float:
    """math.log, with the compiled code's values where it raises: -inf at 0, NaN below."""
    return math.log(v) if v > 0.0 else (-math.inf if v == 0.0 else math.nan)


def _seqsum(T: np.ndarray) -> np.ndarray:
    """Sums along the last axis taken term after term from 0.0, as a kernel's ``g += t``
    loop (a cumulative sum is sequential; ``+ 0.0`` gives the loop's +0.0 where every term
    is a zero)."""
    if T.shape[-1] == 0:
        return np.zeros(T.shape[:-1])
    return np.cumsum(T, axis=-1)[..., -1] + 0.0


def _lanesum(T: np.ndarray) -> np.ndarray:
    """:func:`_wdot`'s sum of the terms T along the last axis: four lanes, their sums added
    in a fixed order, then the tail."""
    n = T.shape[-1]
    n4 = n // 4 * 4
    a = _seqsum(np.moveaxis(T[..., :n4].reshape(*T.shape[:-1], n4 // 4, 4), -1, -2))
    return ((a[..., 0] + a[..., 1]) + (a[..., 2] + a[..., 3])) + _seqsum(T[..., n4:])


def _weights_numpy(h: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Twin of :func:`_weights` for items at heritabilities h (m,): the weights 1/d (m, n)
    and sum(log d) (m,), by the same operations in the same order (the block products'
    lanes as cumulative products, the out-of-range blocks by the kernel's own Python code)."""
    m = h.shape[0]
    n = lam.shape[0]
    om = 1.0 - h
    D = h[:, None] * lam[None, :] + om[:, None]
    mant = np.ones(m)
    expo = np.zeros(m, dtype=np.int64)
    extra = np.zeros(m)
    with np.errstate(all="ignore"):
        for i0 in range(0, n, _BLOCK):
            i1 = min(i0 + _BLOCK, n)
            i4 = i0 + (i1 - i0) // 4 * 4
            P = np.ones((m, 4))
            if i4 > i0:
                P = np.cumprod(D[:, i0:i4].reshape(m, -1, 4), axis=1)[:, -1, :]
            p0 = P[:, 0]
            for i in range(i4, i1):
                p0 = p0 * D[:, i]
            prod = (p0 * P[:, 1]) * (P[:, 2] * P[:, 3])
            ok = (prod > 1e-280) & (prod < 1e280)
            fm, fe = np.frexp(prod * mant)
            mant = np.where(ok, fm, mant)
            expo += np.where(ok, fe, 0)
            for j in np.flatnonzero(~ok):
                extra[j] += _logdet_tail_py(float(h[j]), lam, i0, i1)
        return 1.0 / D, _logs(mant) + expo * _LN2 + extra


def _gram_numpy(h, iy, im, lam, Q, Yt, Mt):
    """Twin of :func:`_gram` for many items: the same numbers, bit for bit (the sums in the
    kernel's order: :func:`_wdot2`/:func:`_wdot3`'s sample order for two or three columns,
    :func:`_wdot`'s lanes otherwise)."""
    s, L = _weights_numpy(h, lam)
    cols = _columns_numpy(iy, im, Q, Yt, Mt)
    c = len(cols)
    G = np.empty((h.shape[0], c, c))
    with np.errstate(all="ignore"):
        for a in range(c):
            ws = s * cols[a]
            for b in range(a + 1):
                # the fused passes form (w x_a) x_b for b <= a; _wdot, s x_a x_b: the same
                g = _seqsum(ws * cols[b]) if c <= 3 else _lanesum(ws * cols[b])
                G[:, a, b] = G[:, b, a] = g
    return G, L


def _assemble_numpy(G, L, n, reml, logdet_zz):
    """Twin of :func:`_assemble` for many items (m, c, c): the same Cholesky steps in the same
    order, NaN where the kernel returns NaN."""
    m, c, _ = G.shape
    r = c - 1
    G = G.copy()  # factorised in place, as the kernel's
    ok = np.ones(m, dtype=bool)
    logdet = np.zeros(m)
    rss = np.full(m, np.nan)
    with np.errstate(all="ignore"):
        for a in range(c):
            for b in range(a + 1):
                v = G[:, a, b].copy()
                for q in range(b):
                    v -= G[:, a, q] * G[:, b, q]
                if a != b:
                    G[:, a, b] = v / G[:, b, b]
                elif a < r:
                    ok &= v > 0.0
                    v = np.sqrt(np.where(ok, v, 1.0))
                    logdet += 2.0 * _logs(v)
                    G[:, a, a] = v
                else:
                    rss = v
        ok &= rss > 0.0
        rss = np.where(ok, rss, 1.0)
        ll = -0.5 * (L + n * _logs(rss))
        if reml:
            ll += 0.5 * (r * (_LOG_2PI + _logs(rss / (n - r))) + logdet_zz - logdet)
    return np.where(ok, ll, np.nan)


def _derivs_numpy(h, iy, im, lam, Q, Yt, Mt, logdet_mm, reml):
    """Twin of :func:`_derivs_items`: (f, G, G1, G2, L'), the kernel's numbers bit for bit
    (:func:`_dgram`'s sums in its order: sample order for three columns, :func:`_wdot`'s
    lanes otherwise; sum(e) and sum(e^2) in four lanes with the tail added to the first)."""
    G, L = _gram_numpy(h, iy, im, lam, Q, Yt, Mt)
    f = _assemble_numpy(G, L, lam.shape[0], reml, logdet_mm[im])
    s = _weights_numpy(h, lam)[0]
    with np.errstate(all="ignore"):
        e = (lam - 1.0)[None, :] * s
        w1 = s * e
        w2 = w1 * e
        cols = _columns_numpy(iy, im, Q, Yt, Mt)
        c = len(cols)
        G1 = np.empty(G.shape)
        G2 = np.empty(G.shape)
        for a in range(c):
            w1a, w2a = w1 * cols[a], w2 * cols[a]
            for b in range(a + 1):
                add = _seqsum if c == 3 else _lanesum
                G1[:, a, b] = G1[:, b, a] = -add(w1a * cols[b])
                G2[:, a, b] = G2[:, b, a] = 2.0 * add(w2a * cols[b])
        dL = np.stack([_dgram_lanes(e), -_dgram_lanes(e * e)], axis=1)
    return f, G, G1, G2, dL


def _dgram_lanes(T: np.ndarray) -> np.ndarray:
    """:func:`_dgram`'s sum of the terms T along the last axis: four lanes, the tail added to
    the first lane, then the lanes added in a fixed order."""
    n = T.shape[-1]
    n4 = n // 4 * 4
    a = _seqsum(np.moveaxis(T[..., :n4].reshape(*T.shape[:-1], n4 // 4, 4), -1, -2))
    a0 = _seqsum(np.concatenate([a[..., :1], T[..., n4:]], axis=-1))
    return (a0 + a[..., 1]) + (a[..., 2] + a[..., 3])


def _inv_or_nan(A: np.ndarray) -> np.ndarray:
    """Inverses of the matrices A (m, r, r); NaN for one that is exactly singular (a block
    whose Cholesky factorisation succeeded by rounding)."""
    try:
        return np.linalg.inv(A)
    except np.linalg.LinAlgError:
        out = np.full(A.shape, np.nan)
        for j in range(A.shape[0]):
            try:
                out[j] = np.linalg.inv(A[j])
            except np.linalg.LinAlgError:
                pass
        return out


def slope_curvature(f, G, G1, G2, dL, n: int, reml: bool):
    """First and second derivatives in h of the profile log likelihood (NaN where ``f`` is),
    from Z'SZ (``G``), its derivatives (``G1``, ``G2``) and those of sum(log d) (``dL``: (m, 2)).

    With A, b, g the covariate block, its cross products with y and y'Sy, beta = A^-1 b,
    rss = g - b.beta and u = b1 - A1 beta (1, 2: first and second derivatives):
    rss1 = g1 - 2 b1.beta + beta.A1.beta, rss2 = g2 - 2 b2.beta + beta.A2.beta - 2 u.A^-1.u,
    (log det A)1 = tr(A^-1 A1), (log det A)2 = tr(A^-1 A2) - tr(A^-1 A1 A^-1 A1); ML:
    ll = -(L + n log rss)/2, REML: -(L + (n - r) log rss + log det A)/2 (constants aside)."""
    r = G.shape[1] - 1
    ok = np.isfinite(f)
    Ai = np.full((G.shape[0], r, r), np.nan)
    Ai[ok] = _inv_or_nan(G[ok, :r, :r])
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        beta = np.einsum("mab,mb->ma", Ai, G[:, :r, r])
        rss = G[:, r, r] - np.einsum("ma,ma->m", G[:, :r, r], beta)
        rss1 = G1[:, r, r] - 2.0 * np.einsum("ma,ma->m", G1[:, :r, r], beta)
        rss1 += np.einsum("ma,mab,mb->m", beta, G1[:, :r, :r], beta)
        u = G1[:, :r, r] - np.einsum("mab,mb->ma", G1[:, :r, :r], beta)
        rss2 = G2[:, r, r] - 2.0 * np.einsum("ma,ma->m", G2[:, :r, r], beta)
        rss2 += np.einsum("ma,mab,mb->m", beta, G2[:, :r, :r], beta)
        rss2 -= 2.0 * np.einsum("ma,mab,mb->m", u, Ai, u)
        q1 = rss1 / rss
        q2 = rss2 / rss - q1 * q1
        if reml:
            M1 = Ai @ G1[:, :r, :r]
            ld1 = np.trace(M1, axis1=1, axis2=2)
            ld2 = np.trace(Ai @ G2[:, :r, :r], axis1=1, axis2=2)
            ld2 -= np.einsum("mab,mba->m", M1, M1)
            f1 = -0.5 * (dL[:, 0] + (n - r) * q1 + ld1)
            f2 = -0.5 * (dL[:, 1] + (n - r) * q2 + ld2)
        else:
            f1 = -0.5 * (dL[:, 0] + n * q1)
            f2 = -0.5 * (dL[:, 1] + n * q2)
    return np.where(ok, f1, np.nan), np.where(ok, f2, np.nan)


def _residualise_numpy(yT, Q):
    """Twin of :func:`_residualise`: each coefficient a sum in sample order, then the same
    sequence of subtractions (the same numbers, bit for bit)."""
    coef = np.empty((Q.shape[0], yT.shape[0]))
    out = yT.copy()
    with np.errstate(all="ignore"):  # NaN from non-finite y: the caller's to report
        for k in range(Q.shape[0]):
            coef[k] = _seqsum(Q[k][None, :] * yT)
            out -= coef[k][:, None] * Q[k][None, :]
        ss = np.stack([_lanesum(yT * yT), _lanesum(out * out)])
    return coef, out, ss


def brent_lockstep(f, m: int, lower, upper, tol: float):
    """Brent's minimiser (R's ``Brent_fmin``, step for step) of ``m`` independent functions
    at once: the NumPy twin of the compiled search :func:`_fit_items`, for any objective.

    ``f(x, idx)`` returns the values of items ``idx`` at points ``x``; the items still running
    are evaluated together, one call of ``f`` per iteration. Each item visits exactly the
    points the scalar :func:`lmmlite.core.brent.brent_fmin` visits. ``lower`` and ``upper``:
    one interval for all, or one per item. Returns ``(x, fx, n_eval, converged)``.
    """
    a = np.broadcast_to(np.asarray(lower, dtype=float), (m,)).copy()
    b = np.broadcast_to(np.asarray(upper, dtype=float), (m,)).copy()
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
    for _ in range(_MAX_ITER):
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
        para = np.abs(E) > tol1  # fit a parabola
        with np.errstate(invalid="ignore"):
            rr = (X - W) * (FX - FV)
            qq = (X - V) * (FX - FW)
            pp = (X - V) * qq - (X - W) * rr
            qq = (qq - rr) * 2.0
        pp = np.where(qq > 0.0, -pp, pp)
        qq = np.abs(qq)
        p = np.where(para, pp, 0.0)
        q = np.where(para, qq, 0.0)
        r = np.where(para, E, 0.0)
        E = np.where(para, D, E)
        with np.errstate(invalid="ignore"):
            golden = (np.abs(p) >= np.abs(q * 0.5 * r)) | (p <= q * (A - X)) | (p >= q * (B - X))
        golden |= np.isnan(p) | np.isnan(q) | np.isnan(r)  # infinite f values
        eg = np.where(X < xm, B - X, A - X)
        E = np.where(golden, eg, E)
        with np.errstate(invalid="ignore", divide="ignore"):
            dp = p / q
        u = X + dp
        near = (u - A < t2) | (B - u < t2)  # not too close to the ends
        dp = np.where(near, np.where(X < xm, tol1, -tol1), dp)
        D = np.where(golden, _GOLDEN * eg, dp)
        big = np.abs(D) >= tol1
        u = np.where(big, X + D, np.where(D > 0.0, X + tol1, X - tol1))
        fu = np.asarray(f(u, active), dtype=float)
        n_eval[active] += 1
        better = fu <= FX
        left = u < X
        # fu <= fx: shrink towards u and shift (v, w, x); else shrink away from u
        A_new = np.where(better, np.where(left, A, X), np.where(left, u, A))
        B_new = np.where(better, np.where(left, X, B), np.where(left, B, u))
        c1 = ~better & ((fu <= FW) | (W == X))
        c2 = ~better & ~c1 & ((fu <= FV) | (V == X) | (V == W))
        a[active], b[active] = A_new, B_new
        v[active] = np.where(better | c1, W, np.where(c2, u, V))
        fv[active] = np.where(better | c1, FW, np.where(c2, fu, FV))
        w[active] = np.where(better, X, np.where(c1, u, W))
        fw[active] = np.where(better, FX, np.where(c1, fu, FW))
        x[active] = np.where(better, u, X)
        fx[active] = np.where(better, fu, FX)
        d[active], e[active] = D, E
    return x, fx, n_eval, converged


# ---------------------------------------------------------------------------------------------
# The public functions: each calls the compiled kernel, or its NumPy twin when numba is switched
# off or ``use_numba=False`` is passed (the tests compare the two).


def loglik_items(h, iy, im, lam, Q, Yt, Mt, logdet_mm, reml, *, use_numba=None):
    """Profile log likelihood of each item at its own heritability.

    Parameters
    ----------
    h : (m,) float64
        Heritability of each item.
    iy, im : (m,) int64
        Row of ``Yt`` (phenotype) and first index of ``Mt`` (extra columns) of each item.
    lam : (n,) float64
        Kinship eigenvalues.
    Q : (p, n) float64, C-contiguous
        Shared orthonormal covariate basis, one row per basis vector.
    Yt : (t, n) float64
        Rotated phenotypes, one row per phenotype.
    Mt : (m_markers, k, n) float64
        Extra columns per marker (k = 0 for heritability).
    logdet_mm : (m_markers,) float64
        log det(M'M) of each marker's extra columns (0 when k = 0), for REML.
    reml : bool
        REML (True) or ML.
    use_numba : bool, optional
        Force the compiled kernel (True) or the NumPy twin (False); default: the switch
        :data:`NUMBA_ENABLED`.
    """
    kernel = _compiled("loglik", h.shape[0] * lam.shape[0], use_numba)
    if kernel is None:
        G, L = _gram_numpy(h, iy, im, lam, Q, Yt, Mt)
        return _assemble_numpy(G, L, lam.shape[0], reml, logdet_mm[im])
    out = np.empty(h.shape[0])
    kernel(h, iy, im, lam, Q, Yt, Mt, logdet_mm, reml, out)
    return out


def gram_items(h, iy, im, lam, Q, Yt, Mt, *, use_numba=None):
    """Gram matrices Z'SZ (m, c, c) and sum(log d) (m,) of each item at its heritability
    (arguments as :func:`loglik_items`)."""
    kernel = _compiled("gram", h.shape[0] * lam.shape[0], use_numba)
    if kernel is None:
        return _gram_numpy(h, iy, im, lam, Q, Yt, Mt)
    c = Q.shape[0] + Mt.shape[1] + 1
    out_G = np.empty((h.shape[0], c, c))
    out_L = np.empty(h.shape[0])
    kernel(h, iy, im, lam, Q, Yt, Mt, out_G, out_L)
    return out_G, out_L


def derivs_items(h, iy, im, lam, Q, Yt, Mt, logdet_mm, reml, *, use_numba=None):
    """Profile log likelihood of each item at its own heritability, with its first and second
    derivatives in h: ``(ll, d ll/dh, d2 ll/dh2)``, each (m,) (arguments as
    :func:`loglik_items`, whose value the compiled kernel gives bit for bit; NaN where the
    likelihood is). The kernel (or its twin) forms the Grams; :func:`slope_curvature` the
    derivatives."""
    kernel = _compiled("derivs", h.shape[0] * lam.shape[0], use_numba)
    if kernel is None:
        f, G, G1, G2, dL = _derivs_numpy(h, iy, im, lam, Q, Yt, Mt, logdet_mm, reml)
    else:
        m = h.shape[0]
        c = Q.shape[0] + Mt.shape[1] + 1
        f = np.empty(m)
        G, G1, G2 = (np.empty((m, c, c)) for _ in range(3))
        dL = np.empty((m, 2))
        kernel(h, iy, im, lam, Q, Yt, Mt, logdet_mm, reml, f, G, G1, G2, dL)
    return (f, *slope_curvature(f, G, G1, G2, dL, lam.shape[0], reml))


def residualise(yT: np.ndarray, Q: np.ndarray, *, use_numba=None):
    """Least-squares coefficients (p, t) of the rows of ``yT`` (t, n) on the orthonormal rows
    of ``Q`` (p, n), the residuals (t, n), and the sums of squares (2, t) of the rows of
    ``yT`` and of the residuals. Q has orthonormal rows, so coef = Q yT'.

    The residual is taken against all rows of Q at once (classical Gram-Schmidt, which is
    exact for orthonormal Q up to rounding). Each trait's arithmetic is the same whatever the
    number of traits.
    """
    kernel = _compiled("residualise", yT.shape[0] * yT.shape[1], use_numba)
    if kernel is None:
        return _residualise_numpy(yT, Q)
    out = np.empty(yT.shape)
    coef = np.empty((Q.shape[0], yT.shape[0]))
    ss = np.empty((2, yT.shape[0]))
    kernel(yT, np.ascontiguousarray(Q), coef, out, ss)
    return coef, out, ss


def fit_items(
    iy, im, lam, Q, Yt, Mt, logdet_mm, reml, lower, upper, tol, *, ends=False, grams=False,
    use_numba=None,
):  # fmt: skip
    """Brent's search (R's ``optimize``, step for step) of the heritability of every item on
    ``[lower, upper]`` (floats, or one interval per item), maximising its log likelihood (NaN
    taken as -inf); arguments as :func:`loglik_items`. Returns ``(x, -loglik, n_eval,
    converged)``, and with ``ends`` the log likelihoods at ``lower`` and ``upper`` too (those
    of :func:`loglik_items`, for R's boundary check), computed with the search's data at hand.
    With ``grams``, the last element is ``(G, L)``: the Grams (3, m, c, c) and sums of
    log d (3, m) of :func:`gram_items` at x, lower and upper (at x only, (1, m, ...), without
    ``ends``), the same numbers, kept from the search's evaluations.

    The compiled kernel runs the items in lockstep within cache-sized blocks, blocks in
    parallel; its twin is :func:`brent_lockstep` over :func:`loglik_items`' twin.
    """
    m = iy.shape[0]
    iy = np.ascontiguousarray(iy, dtype=np.int64)
    im = np.ascontiguousarray(im, dtype=np.int64)
    # writable copies: a read-only array (one item's broadcast bound) would be another type
    # to numba, and another compilation of the kernel
    lower = np.array(np.broadcast_to(np.asarray(lower, dtype=float), (m,)))
    upper = np.array(np.broadcast_to(np.asarray(upper, dtype=float), (m,)))
    c = Q.shape[0] + Mt.shape[1] + 1
    lanes = Mt.shape[1] == 0 and c in (2, 3) and m >= _LANES_BUILD_MIN
    kernel = _compiled("fit_lanes" if lanes else "fit", m * lam.shape[0], use_numba)
    if kernel is None:

        def objective(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
            ll = loglik_items(x, iy[idx], im[idx], lam, Q, Yt, Mt, logdet_mm, reml, use_numba=False)
            return np.where(np.isnan(ll), np.inf, -ll)

        res = brent_lockstep(objective, m, lower, upper, tol)
        # the ends' Grams once, for their log likelihoods (loglik_items' twin) and the Grams
        at_ends = [_gram_numpy(e, iy, im, lam, Q, Yt, Mt) for e in (lower, upper)] if ends else []
        at = [_assemble_numpy(G, L, lam.shape[0], reml, logdet_mm[im]) for G, L in at_ends]
        if not grams:
            return (*res, *at)
        GL = [_gram_numpy(res[0], iy, im, lam, Q, Yt, Mt), *at_ends]
        return (*res, *at, (np.stack([g for g, _ in GL]), np.stack([el for _, el in GL])))
    x = np.empty(m)
    fx = np.empty(m)
    neval = np.empty(m, dtype=np.int64)
    done = np.empty(m, dtype=bool)
    ll_lower = np.empty(m if ends else 0)
    ll_upper = np.empty(m if ends else 0)
    g_out = np.empty((3 if ends else 1, m, c * (c + 1) // 2 + 1))
    kernel(
        iy, im, lam, Q, Yt, Mt, logdet_mm, reml, lower, upper, tol / 3.0,
        _SQRT_EPS, _GOLDEN, x, fx, neval, done, ends, ll_lower, ll_upper, g_out,
    )  # fmt: skip
    out = (x, fx, neval, done, ll_lower, ll_upper) if ends else (x, fx, neval, done)
    if not grams:
        return out
    r, a = np.tril_indices(c)  # _keep_gram's order: row by row
    G = np.empty((g_out.shape[0], m, c, c))
    G[:, :, r, a] = g_out[:, :, :-1]
    G[:, :, a, r] = g_out[:, :, :-1]
    return (*out, (G, g_out[:, :, -1]))


def fixed_den(msm, msq, C, row):
    """den = m'Sm - (m'SQ) C (Q'Sm) per trait and marker (t, mb) of the fixed-hsq scan, from
    ``msm`` (u, mb), ``msq`` (p, u, mb) and ``C`` (u, p, p) per distinct heritability, trait
    j's being row ``row[j]`` (NumPy; the kernel :func:`_best_markers` fuses it)."""
    msq = msq[:, row]
    return msm[row] - np.einsum("atr,tab,btr->tr", msq, C[row], msq)


def best_markers(
    num, msm, msq, C, row, offset, best_q, best_i, best_num, best_den, *, scratch=None,
    use_numba=None,
):  # fmt: skip
    """Update the running per-trait best marker (largest num^2/den) with a block of markers.

    See :func:`_best_markers` (``scratch``: two (u, mb) work arrays, or None); the NumPy twin
    gives the same choice (first maximum) from the same q = num^2 * (1/den).
    """
    kernel = _compiled("best", num.size, use_numba)
    if kernel is not None:
        den, rden = (np.empty(msm.shape), np.empty(msm.shape)) if scratch is None else scratch
        kernel(num, msm, msq, C, row, offset, den, rden, best_q, best_i, best_num, best_den)
        return
    den_u = fixed_den(msm, msq, C, np.arange(msm.shape[0]))
    with np.errstate(invalid="ignore", divide="ignore"):
        rden = np.where(den_u > 0.0, 1.0 / den_u, np.nan)
        q = num * num * rden[row]
    q = np.where(np.isnan(q), -1.0, q)
    r = np.argmax(q, axis=1)
    rows = np.arange(num.shape[0])
    top = q[rows, r]
    better = (top >= 0.0) & (top > best_q)
    best_q[better] = top[better]
    best_i[better] = offset + r[better]
    best_num[better] = num[rows, r][better]
    best_den[better] = den_u[row[rows], r][better]


def shuffle_rows(block: np.ndarray, where: np.ndarray, draws: np.ndarray, *, use_numba=None):
    """Shuffle the entries ``where`` of every row of ``block`` (P, n) in place, by
    Fisher-Yates with the given draws (``draws[r, i]`` in 0..i, (P, len(where))): the compiled
    kernel, or its twin swapping one entry of every row at a time."""
    kernel = _compiled("shuffle", block.size, use_numba)
    if kernel is not None:
        kernel(block, where, draws)
        return
    rows = np.arange(block.shape[0])
    for i in range(where.shape[0] - 1, 0, -1):
        a = where[i]
        b = where[draws[:, i]]
        held = block[rows, b]
        block[rows, b] = block[:, a]
        block[:, a] = held


def row_max_scaled_sq(
    C: np.ndarray, scale: np.ndarray, out: np.ndarray, *, use_numba=None
) -> np.ndarray:
    """``out = max(out, max over columns of C^2 scale)`` row by row, in place (C (P, m),
    scale (m,), out (P,)): one pass over C. The twin squares, scales and reduces; the products
    are the same (C C s, in that order), so the two agree bit for bit."""
    kernel = _compiled("rowmax", C.size, use_numba)
    if kernel is not None:
        kernel(C, scale, out)
        return out
    if C.shape[1]:
        np.maximum(out, ((C * C) * scale).max(axis=1), out=out)
    return out
