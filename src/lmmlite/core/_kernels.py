r"""Compiled kernels of the fast engine (numba), each with a plain-NumPy twin.

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

The kernels loop over items in parallel (``prange``); the sums over samples are written as
separate passes over contiguous arrays so that LLVM vectorises them. The log-determinant is
accumulated as products of 64 factors renormalised with ``frexp``, one logarithm per item
instead of one per sample; a block whose product leaves the safe range is summed term by term.

Fast-math flags allow reassociation (vectorised sums) and contraction (FMA) but not
``nnan``/``ninf``: infinities and NaN keep their IEEE meaning.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import types

import numpy as np

try:  # numba is a core dependency; the NumPy path keeps lmmlite usable where it cannot load
    import numba

    HAVE_NUMBA = os.environ.get("LMMLITE_DISABLE_NUMBA", "") == ""
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None
    HAVE_NUMBA = False

__all__ = [
    "HAVE_NUMBA",
    "best_markers",
    "fixed_den",
    "gram_items",
    "loglik_items",
    "residualise",
    "serial",
]

_LN2 = math.log(2.0)
_LOG_2PI = math.log(2.0 * math.pi)
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
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
#: Factors multiplied together before one frexp renormalisation in the log-determinant.
_BLOCK = 64


def _logdet_tail(h, lam, i0, i1):  # pragma: no cover - compiled
    """sum(log d) over lam[i0:i1], term by term (used when a block product leaves range)."""
    om = 1.0 - h
    acc = 0.0
    for i in range(i0, i1):
        acc += math.log(h * lam[i] + om)
    return acc


def _gram_small(h, lam, z0, z1, z2, z3, c, G):  # pragma: no cover - compiled
    """Fused pass: lower triangle of Z'SZ for c <= 4 columns and sum(log d), in one sweep.

    d = h*lam + (1 - h) and 1/d are formed on the fly and never stored. The log-determinant is
    the log of block products of ``_BLOCK`` factors, renormalised with frexp; a block whose
    product leaves the safe range (zero, subnormal or huge factors) is summed term by term.
    """
    n = lam.shape[0]
    om = 1.0 - h
    mant = 1.0
    expo = 0
    extra = 0.0
    g00 = g10 = g11 = g20 = g21 = g22 = g30 = g31 = g32 = g33 = 0.0
    for i0 in range(0, n, _BLOCK):
        i1 = min(i0 + _BLOCK, n)
        prod = 1.0
        if c == 2:
            for i in range(i0, i1):
                d = h * lam[i] + om
                s = 1.0 / d
                prod *= d
                w0 = s * z0[i]
                w1 = s * z1[i]
                g00 += w0 * z0[i]
                g10 += w1 * z0[i]
                g11 += w1 * z1[i]
        elif c == 3:
            for i in range(i0, i1):
                d = h * lam[i] + om
                s = 1.0 / d
                prod *= d
                w0 = s * z0[i]
                w1 = s * z1[i]
                w2 = s * z2[i]
                g00 += w0 * z0[i]
                g10 += w1 * z0[i]
                g11 += w1 * z1[i]
                g20 += w2 * z0[i]
                g21 += w2 * z1[i]
                g22 += w2 * z2[i]
        else:
            for i in range(i0, i1):
                d = h * lam[i] + om
                s = 1.0 / d
                prod *= d
                w0 = s * z0[i]
                w1 = s * z1[i]
                w2 = s * z2[i]
                w3 = s * z3[i]
                g00 += w0 * z0[i]
                g10 += w1 * z0[i]
                g11 += w1 * z1[i]
                g20 += w2 * z0[i]
                g21 += w2 * z1[i]
                g22 += w2 * z2[i]
                g30 += w3 * z0[i]
                g31 += w3 * z1[i]
                g32 += w3 * z2[i]
                g33 += w3 * z3[i]
        if prod > 1e-280 and prod < 1e280:
            m, e = math.frexp(prod * mant)
            mant = m
            expo += e
        else:
            extra += _logdet_tail(h, lam, i0, i1)
    G[0, 0] = g00
    G[1, 0] = g10
    G[1, 1] = g11
    if c > 2:
        G[2, 0] = g20
        G[2, 1] = g21
        G[2, 2] = g22
    if c > 3:
        G[3, 0] = g30
        G[3, 1] = g31
        G[3, 2] = g32
        G[3, 3] = g33
    return math.log(mant) + expo * _LN2 + extra


def _column(a, p, k, qcols, Mt, im, y, zero):  # pragma: no cover - compiled
    """Column ``a`` of Z = [Q, M_im, y], then zero columns (padding up to 4)."""
    if a < p:
        return qcols[a]
    if a < p + k:
        return Mt[im, a - p]
    if a == p + k:
        return y
    return zero


def _gram(h, lam, qcols, Mt, im, y, zero, s, G):  # pragma: no cover - compiled
    """Fill the lower triangle of G with Z'SZ, Z = [Q, M_im, y]; return sum(log d)."""
    p = len(qcols)
    k = Mt.shape[1]
    c = p + k + 1
    if c <= 4:
        return _gram_small(
            h,
            lam,
            _column(0, p, k, qcols, Mt, im, y, zero),
            _column(1, p, k, qcols, Mt, im, y, zero),
            _column(2, p, k, qcols, Mt, im, y, zero),
            _column(3, p, k, qcols, Mt, im, y, zero),
            c,
            G,
        )
    # Many columns: store 1/d once, then one pass per pair of columns.
    n = lam.shape[0]
    om = 1.0 - h
    mant = 1.0
    expo = 0
    extra = 0.0
    for i0 in range(0, n, _BLOCK):
        i1 = min(i0 + _BLOCK, n)
        prod = 1.0
        for i in range(i0, i1):
            d = h * lam[i] + om
            s[i] = 1.0 / d
            prod *= d
        if prod > 1e-280 and prod < 1e280:
            m, e = math.frexp(prod * mant)
            mant = m
            expo += e
        else:
            extra += _logdet_tail(h, lam, i0, i1)
    for a in range(c):
        za = _column(a, p, k, qcols, Mt, im, y, zero)
        for b in range(a + 1):
            zb = _column(b, p, k, qcols, Mt, im, y, zero)
            acc = 0.0
            for i in range(n):
                acc += s[i] * za[i] * zb[i]
            G[a, b] = acc
    return math.log(mant) + expo * _LN2 + extra


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


def _loglik_items(h, iy, im, lam, qcols, Yt, Mt, logdet_mm, reml, out):  # pragma: no cover
    m = h.shape[0]
    n = lam.shape[0]
    c = len(qcols) + Mt.shape[1] + 1
    zero = np.zeros(n)
    nchunk = (m + _CHUNK - 1) // _CHUNK
    for ch in numba.prange(nchunk):
        s = np.empty(n)
        G = np.empty((c, c))
        for j in range(ch * _CHUNK, min(m, (ch + 1) * _CHUNK)):
            L = _gram(h[j], lam, qcols, Mt, im[j], Yt[iy[j]], zero, s, G)
            out[j] = _assemble(G, L, n, c - 1, reml, logdet_mm[im[j]])


def _gram_items(h, iy, im, lam, qcols, Yt, Mt, out_G, out_L):  # pragma: no cover - compiled
    m = h.shape[0]
    n = lam.shape[0]
    c = out_G.shape[1]
    zero = np.zeros(n)
    nchunk = (m + _CHUNK - 1) // _CHUNK
    for ch in numba.prange(nchunk):
        s = np.empty(n)
        G = np.zeros((c, c))
        for j in range(ch * _CHUNK, min(m, (ch + 1) * _CHUNK)):
            out_L[j] = _gram(h[j], lam, qcols, Mt, im[j], Yt[iy[j]], zero, s, G)
            for a in range(c):
                for b in range(a + 1):
                    out_G[j, a, b] = G[a, b]
                    out_G[j, b, a] = G[a, b]


def _residualise(yT, Q, coef, out):  # pragma: no cover - compiled
    """coef[:, j] = Q @ yT[j] and out[j] = yT[j] - coef[:, j] @ Q, trait by trait.

    Each trait's arithmetic is the same whatever the number of traits, so a batch gives
    bit-for-bit the results of one-trait calls (a matrix product would round differently).
    """
    t = yT.shape[0]
    p = Q.shape[0]
    for j in numba.prange(t):
        row = out[j]
        row[:] = yT[j]
        for k in range(p):
            qk = Q[k]
            c = 0.0
            for i in range(row.shape[0]):
                c += qk[i] * yT[j, i]
            coef[k, j] = c
            for i in range(row.shape[0]):
                row[i] -= c * qk[i]


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
#: (64 traits x n doubles) stays in the core's cache for the whole search.
_FIT_BLOCK = 64
_MAX_ITER = 500


def _neg_loglik(h, j, iy, im, lam, qcols, Yt, Mt, logdet_mm, reml, zero, s, G):
    c = G.shape[0]
    L = _gram(h, lam, qcols, Mt, im[j], Yt[iy[j]], zero, s, G)
    ll = _assemble(G, L, lam.shape[0], c - 1, reml, logdet_mm[im[j]])
    return math.inf if math.isnan(ll) else -ll


def _fit_items(
    iy,
    im,
    lam,
    qcols,
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
):
    """Brent's search (R's Brent_fmin, step for step) of every item, in lockstep within blocks
    of ``_FIT_BLOCK`` items; blocks run in parallel. Minimises -loglik (NaN taken as +inf)."""
    m = iy.shape[0]
    n = lam.shape[0]
    c = len(qcols) + Mt.shape[1] + 1
    zero = np.zeros(n)
    nblk = (m + _FIT_BLOCK - 1) // _FIT_BLOCK
    for blk in numba.prange(nblk):
        j0 = blk * _FIT_BLOCK
        nb = min(m, j0 + _FIT_BLOCK) - j0
        s = np.empty(n)
        G = np.empty((c, c))
        a = np.full(nb, lower)
        b = np.full(nb, upper)
        v = a + golden * (b - a)
        w = v.copy()
        x = v.copy()
        d = np.zeros(nb)
        e = np.zeros(nb)
        fx = np.empty(nb)
        for i in range(nb):
            fx[i] = _neg_loglik(
                x[i], j0 + i, iy, im, lam, qcols, Yt, Mt, logdet_mm, reml, zero, s, G
            )
        fv = fx.copy()
        fw = fx.copy()
        neval = np.ones(nb, dtype=np.int64)
        done = np.zeros(nb, dtype=np.bool_)
        active = np.arange(nb)
        u = np.empty(nb)
        fu = np.empty(nb)
        for _ in range(_MAX_ITER):
            k = _brent_propose(
                active, a, b, x, w, v, fx, fw, fv, d, e, tol3, sqrt_eps, golden, u, done
            )
            if k == 0:
                break
            active = active[:k]
            for ii in range(k):
                fu[ii] = _neg_loglik(
                    u[ii], j0 + active[ii], iy, im, lam, qcols, Yt, Mt, logdet_mm, reml, zero, s, G
                )
                neval[active[ii]] += 1
            _brent_update(active, u[:k], fu[:k], a, b, x, w, v, fx, fw, fv)
        for i in range(nb):
            x_out[j0 + i] = x[i]
            fx_out[j0 + i] = fx[i]
            neval_out[j0 + i] = neval[i]
            done_out[j0 + i] = done[i]


def _best_markers(
    num, msm, msq, C, row, offset, best_q, best_i, best_num, best_den
):  # pragma: no cover
    """Running per-trait maximum of q = num^2 / den over a block of markers (fixed-hsq scan).

    Trait-major blocks: ``num`` (t, mb); ``msm`` (u, mb) and ``msq`` (p, u, mb), trait j's
    being row ``row[j]`` (traits sharing a heritability share them); ``C`` (t, p, p);
    den = msm - msq' C msq. Untestable markers come as zero columns (den = 0). Updates
    ``best_*`` (t,) where q is strictly larger (the first marker wins ties); a marker with
    den <= 0 or NaN q never wins. Each trait's row is reduced with a vectorised max first;
    the index is looked for only when the row beats the running best.
    """
    t, mb = num.shape
    p = msq.shape[0]
    for j in numba.prange(t):
        q = np.empty(mb)
        den = np.empty(mb)
        k = row[j]
        if p == 1:  # the common case (an intercept only): a loop LLVM vectorises
            c = C[j, 0, 0]
            for r in range(mb):
                v = msq[0, k, r]
                den[r] = msm[k, r] - v * c * v
        else:
            for r in range(mb):
                d = msm[k, r]
                for a in range(p):
                    for b in range(p):
                        d -= msq[a, k, r] * C[j, a, b] * msq[b, k, r]
                den[r] = d
        for r in range(mb):
            nm = num[j, r]
            q[r] = nm * nm / den[r] if den[r] > 0.0 else -1.0
        top = -1.0
        for r in range(mb):
            top = max(top, q[r])
        if top >= 0.0 and top > best_q[j]:
            for r in range(mb):
                if q[r] == top:
                    best_q[j] = top
                    best_i[j] = offset + r
                    best_num[j] = num[j, r]
                    best_den[j] = den[r]
                    break


def _renamed(func, name):
    """A copy of ``func`` under another name (for a separate numba cache entry)."""
    copy = types.FunctionType(func.__code__, func.__globals__, name, func.__defaults__)
    copy.__qualname__ = name
    return copy


if HAVE_NUMBA:
    _opts = {"fastmath": _FASTMATH, "cache": True, "nogil": True, "error_model": "numpy"}
    _logdet_tail = numba.njit(**_opts)(_logdet_tail)
    _gram_small = numba.njit(**_opts)(_gram_small)
    _column = numba.njit(**_opts)(_column)
    _gram = numba.njit(**_opts)(_gram)
    _assemble = numba.njit(**_opts)(_assemble)
    # The serial and parallel builds need distinct names: numba's on-disk cache is keyed by
    # qualified name and line, and a shared key would load one build in place of the other.
    _loglik_serial = numba.njit(**_opts)(_renamed(_loglik_items, "_loglik_serial"))
    _loglik_parallel = numba.njit(parallel=True, **_opts)(_loglik_items)
    _gram_serial = numba.njit(**_opts)(_renamed(_gram_items, "_gram_serial"))
    _gram_parallel = numba.njit(parallel=True, **_opts)(_gram_items)
    _residualise_parallel = numba.njit(parallel=True, **_opts)(_residualise)
    _residualise_serial = numba.njit(**_opts)(_renamed(_residualise, "_residualise_serial"))
    _exact = {"cache": True, "nogil": True}  # Brent's decisions need exact IEEE semantics
    brent_propose = _brent_propose = numba.njit(**_exact)(_brent_propose)
    brent_update = _brent_update = numba.njit(**_exact)(_brent_update)
    _neg_loglik = numba.njit(**_opts)(_neg_loglik)
    _fit_items_parallel = numba.njit(parallel=True, **_exact)(_fit_items)
    _fit_items_serial = numba.njit(**_exact)(_renamed(_fit_items, "_fit_items_serial"))
    _best_markers_parallel = numba.njit(parallel=True, **_opts)(_best_markers)
    _best_markers_serial = numba.njit(**_opts)(_renamed(_best_markers, "_best_markers_serial"))


# ---------------------------------------------------------------------------------------------
# NumPy twins: the same quantities, vectorised over items with einsum; used when numba is not
# available (or LMMLITE_DISABLE_NUMBA is set) and in the tests as the kernels' oracle.


def _gram_numpy(h, iy, im, lam, qcols, Yt, Mt):
    n = lam.shape[0]
    d = h[:, None] * lam[None, :] + (1.0 - h)[:, None]
    with np.errstate(divide="ignore"):
        L = np.log(d).sum(axis=1)
        s = 1.0 / d
    Q = np.stack(qcols) if len(qcols) else np.empty((0, n))
    Z = np.concatenate(
        [
            np.broadcast_to(Q, (h.shape[0], *Q.shape)),
            Mt[im],
            Yt[iy][:, None, :],
        ],
        axis=1,
    )
    with np.errstate(invalid="ignore"):
        G = np.einsum("jai,ji,jbi->jab", Z, s, Z, optimize=True)
    return G, L


def _assemble_numpy(G, L, n, reml, logdet_zz):
    r = G.shape[1] - 1
    A = G[:, :r, :r]
    b = G[:, :r, r]
    out = np.full(G.shape[0], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = np.all(np.isfinite(G.reshape(G.shape[0], -1)), axis=1)
        ok &= np.all(np.linalg.eigvalsh(np.where(ok[:, None, None], A, 1.0)) > 0, axis=1)
        if not ok.any():
            return out
        C = np.linalg.cholesky(A[ok])
        z = np.linalg.solve(C, b[ok][..., None])[..., 0]
        rss = G[ok, r, r] - np.sum(z * z, axis=1)
        logdet = 2.0 * np.sum(np.log(np.diagonal(C, axis1=1, axis2=2)), axis=1)
        ll = -0.5 * (L[ok] + n * np.log(rss))
        if reml:
            ll = ll + 0.5 * (r * (_LOG_2PI + np.log(rss / (n - r))) + logdet_zz[ok] - logdet)
        out[ok] = np.where(rss > 0, ll, np.nan)
    return out


def loglik_items(h, iy, im, lam, qcols, Yt, Mt, logdet_mm, reml, *, use_numba=None):
    """Profile log likelihood of each item at its own heritability.

    Parameters
    ----------
    h : (m,) float64
        Heritability of each item.
    iy, im : (m,) int64
        Row of ``Yt`` (phenotype) and first index of ``Mt`` (extra columns) of each item.
    lam : (n,) float64
        Kinship eigenvalues.
    qcols : tuple of (n,) float64 arrays
        Shared orthonormal covariate columns.
    Yt : (t, n) float64
        Rotated phenotypes, one row per phenotype.
    Mt : (m_markers, k, n) float64
        Extra columns per marker (k = 0 for heritability).
    logdet_mm : (m_markers,) float64
        log det(M'M) of each marker's extra columns (0 when k = 0), for REML.
    reml : bool
        REML (True) or ML.
    """
    use = HAVE_NUMBA if use_numba is None else use_numba
    if use:
        out = np.empty(h.shape[0])
        big = _parallel(h.shape[0] * lam.shape[0])
        kernel = _loglik_parallel if big else _loglik_serial
        kernel(h, iy, im, lam, qcols, Yt, Mt, logdet_mm, reml, out)
        return out
    G, L = _gram_numpy(h, iy, im, lam, qcols, Yt, Mt)
    return _assemble_numpy(G, L, lam.shape[0], reml, logdet_mm[im])


def gram_items(h, iy, im, lam, qcols, Yt, Mt, *, use_numba=None):
    """Gram matrices Z'SZ (m, c, c) and sum(log d) (m,) of each item at its heritability."""
    use = HAVE_NUMBA if use_numba is None else use_numba
    if use:
        c = len(qcols) + Mt.shape[1] + 1
        out_G = np.empty((h.shape[0], c, c))
        out_L = np.empty(h.shape[0])
        big = _parallel(h.shape[0] * lam.shape[0])
        kernel = _gram_parallel if big else _gram_serial
        kernel(h, iy, im, lam, qcols, Yt, Mt, out_G, out_L)
        return out_G, out_L
    return _gram_numpy(h, iy, im, lam, qcols, Yt, Mt)


def residualise(yT: np.ndarray, Q: np.ndarray, *, use_numba=None):
    """Least-squares coefficients (p, t) of the rows of ``yT`` (t, n) on the orthonormal rows
    of ``Q`` (p, n), and the residuals (t, n). Q has orthonormal rows, so coef = Q yT'.

    The residual is taken against all columns of Q at once (classical Gram-Schmidt, which is
    exact for orthonormal Q up to rounding).
    """
    use = HAVE_NUMBA if use_numba is None else use_numba
    out = np.empty(yT.shape)
    coef = np.empty((Q.shape[0], yT.shape[0]))
    if use:
        big = _parallel(yT.shape[0] * yT.shape[1])
        kernel = _residualise_parallel if big else _residualise_serial
        kernel(yT, np.ascontiguousarray(Q), coef, out)
    else:
        coef = Q @ yT.T
        np.subtract(yT, coef.T @ Q, out=out)
    return coef, out


def fit_items(iy, im, lam, qcols, Yt, Mt, logdet_mm, reml, lower, upper, tol, sqrt_eps, golden):
    """Compiled Brent search of every item (numba only); returns (x, fx, n_eval, converged)."""
    m = iy.shape[0]
    x = np.empty(m)
    fx = np.empty(m)
    neval = np.empty(m, dtype=np.int64)
    done = np.empty(m, dtype=bool)
    big = _parallel(m * lam.shape[0])
    kernel = _fit_items_parallel if big else _fit_items_serial
    kernel(
        np.ascontiguousarray(iy, dtype=np.int64),
        np.ascontiguousarray(im, dtype=np.int64),
        lam,
        qcols,
        Yt,
        Mt,
        logdet_mm,
        reml,
        float(lower),
        float(upper),
        tol / 3.0,
        sqrt_eps,
        golden,
        x,
        fx,
        neval,
        done,
    )
    return x, fx, neval, done


def fixed_den(msm, msq, C, row):
    """den = m'Sm - (m'SQ) C (Q'Sm) per trait and marker (t, mb) of the fixed-hsq scan, from
    ``msm`` (u, mb) and ``msq`` (p, u, mb) per distinct heritability, trait j's being row
    ``row[j]``, and ``C`` (t, p, p) (NumPy; the kernel :func:`_best_markers` fuses it)."""
    msq = msq[:, row]
    return msm[row] - np.einsum("atr,tab,btr->tr", msq, C, msq)


def best_markers(
    num, msm, msq, C, row, offset, best_q, best_i, best_num, best_den, *, use_numba=None
):
    """Update the running per-trait best marker (largest num^2/den) with a block of markers.

    See :func:`_best_markers`; the NumPy twin gives the same choice (first maximum).
    """
    use = HAVE_NUMBA if use_numba is None else use_numba
    if use:
        kernel = _best_markers_parallel if _parallel(num.size) else _best_markers_serial
        kernel(num, msm, msq, C, row, offset, best_q, best_i, best_num, best_den)
        return
    den = fixed_den(msm, msq, C, row)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(den > 0.0, num * num / den, -1.0)
    q = np.where(np.isnan(q), -1.0, q)
    r = np.argmax(q, axis=1)
    rows = np.arange(num.shape[0])
    top = q[rows, r]
    better = (top >= 0.0) & (top > best_q)
    best_q[better] = top[better]
    best_i[better] = offset + r[better]
    best_num[better] = num[rows, r][better]
    best_den[better] = den[rows, r][better]
