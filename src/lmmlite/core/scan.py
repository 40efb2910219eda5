r"""Genome scan on rotated data: one LMM per (marker, trait), the marker added to the covariates.

Two modes:

``fixed`` (R/qtl2, FaST-LMM)
    hsq is the null model's REML estimate, held fixed; each marker is a weighted least squares.
``exact`` (GEMMA ``-lmm 4``)
    hsq is re-estimated at every marker: by REML for the Wald test, by ML for the LRT.

Notes
-----
For a marker with k genotype columns :math:`M`, at heritability :math:`h` with weights
:math:`S = D^{-1}`, let :math:`\mathrm{rss}_0(h)` and :math:`\mathrm{rss}_1(h)` be the weighted
residual sums of squares without and with :math:`M`. With :math:`n` samples, :math:`p`
covariates and :math:`\nu = n - p - k`:

- Wald: :math:`F = \frac{(\mathrm{rss}_0 - \mathrm{rss}_1)/k}{\mathrm{rss}_1/\nu}` at the
  alternative's REML :math:`h` (exact) or the null :math:`h` (fixed), on (k, :math:`\nu`) df;
  for k = 1 this is GEMMA's :math:`(P_{yy} - P_{x,yy})\,\tau`.
- LRT: :math:`2(\ell_1 - \ell_0)` of the ML log likelihoods (exact: each at its own ML
  :math:`h`; fixed: both at the null :math:`h`, i.e. :math:`n \log(\mathrm{rss}_0/\mathrm{rss}_1)`),
  chi-square with k df.
- Score: GEMMA's :math:`F = n (\mathrm{rss}_0 - \mathrm{rss}_1) / (k\,\mathrm{rss}_0)` at the
  null model's ML :math:`h` (exact) or the null :math:`h` (fixed), on (k, :math:`\nu`) df.
- hsq is searched on :math:`[0, 10^5/(1 + 10^5)]`, GEMMA's :math:`\lambda \le 10^5`, for the
  null and every marker alike (see ``HSQ_MAX``). In ``exact`` mode every marker's likelihoods
  are first evaluated on a grid of ``GRID_POINTS`` values by matrix products; Newton's method,
  with the likelihood's exact derivatives, then starts at the vertex of the grid parabola at
  the marker's best grid point (Brent's search of the grid intervals either side where it does
  not converge there), and the ends are checked against the grid (``_search_many``).
- LOD: :math:`\mathrm{LRT} / (2 \ln 10)`, which for ``fixed`` is R/qtl2's
  :math:`\frac n2 \log_{10}(\mathrm{rss}_0/\mathrm{rss}_1)`.

The marker columns are first residualised on the covariates (ordinary least squares), which
changes neither test nor effect, and is where untestable markers show up: a residual norm below
``COLLINEAR_RTOL`` times the column norm means the marker is constant or collinear with the
covariates, and its results are NaN with a reason.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import special

from . import _kernels
from ._blas import solve_lower
from .brent import SQRT_EPS
from .model import RotatedModel
from .results import CHUNK_STATS, ChunkScan, InteractionScan

__all__ = [
    "FixedParts",
    "NullModel",
    "fit_null",
    "fixed_hsq",
    "fixed_parts",
    "grid_hsq",
    "null_fits",
    "rotate_chunk",
    "scan_best",
    "scan_chunk",
    "scan_fixed_gemm",
]

#: A marker whose residual on the covariates has a norm below this fraction of its own norm is
#: treated as untestable (monomorphic or collinear with the covariates).
COLLINEAR_RTOL = 1e-8
_LN10 = float(np.log(10.0))
_LOG_2PI = math.log(2.0 * math.pi)
#: Upper bound of hsq in the scan's fits: GEMMA's lambda = vg/ve <= 1e5. With a singular
#: kinship whose null space lies in the covariates' span (a centred kinship and an intercept),
#: the ML likelihood grows without bound as hsq -> 1 (like -log(1 - hsq) / 2); null and
#: alternative models must then be compared on the same interval, and this one is GEMMA's.
HSQ_MAX = 1e5 / (1.0 + 1e5)
#: Brent tolerance of the null fits (done once per trait; cheap to make tight).
NULL_TOL = 1e-10


@dataclass
class NullModel:
    """The null model of traits sharing one rotation (fitted once, reused for every marker)."""

    model: RotatedModel
    """Rotated data (eigenvalues, orthonormal covariate basis, residualised traits)."""
    Q: np.ndarray
    """Orthonormal basis of the rotated covariates, (n, p)."""
    hsq_reml: np.ndarray
    """REML heritability of each trait under the null."""
    hsq_ml: np.ndarray
    """ML heritability under the null."""
    loglik_ml: np.ndarray
    """Null ML log likelihood (R/lmmlite's constants) at ``hsq_ml``."""
    tol: float
    """Brent tolerance used for per-marker searches."""


def fit_null(
    Kva: np.ndarray,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    tol: float = 1e-7,
    fits: tuple[str, ...] = ("reml", "ml"),
    hsq: np.ndarray | float | None = None,
    hsq_grid: float | None = None,
) -> NullModel:
    """Fit the null model of every trait; inputs are rotated, checked arrays.

    ``fits`` names the fits needed (a fixed-hsq scan with REML needs only ``"reml"``); the
    others are left NaN. ``hsq`` (one per trait, or one for all) holds the heritability
    instead of fitting it: 0 for a plain linear model (no kinship), or another model's
    estimate. ``hsq_grid`` (with one fit) holds the fitted heritability rounded to that grid
    (:func:`grid_hsq`).
    """
    model = RotatedModel(Kva, Y, X)
    nan = np.full(model.t, np.nan)
    # the null model is fitted once: locate it to the limit of double precision; or, when it
    # is rounded to a grid, to a ten-thousandth of the grid's step (enough to round it: the
    # eQTL benchmark's 35,556 traits round alike at 1e-6 and 1e-10, with 19 evaluations per
    # trait instead of 30)
    tol_null = NULL_TOL if hsq_grid is None else max(NULL_TOL, 1e-4 * hsq_grid)
    reml = model.fit(True, True, tol_null, HSQ_MAX) if "reml" in fits and hsq is None else None
    ml = model.fit(False, True, tol_null, HSQ_MAX) if "ml" in fits and hsq is None else None
    if hsq is None and hsq_grid is not None:
        (fit,) = [f for f in (reml, ml) if f is not None]
        hsq = grid_hsq(fit.hsq, hsq_grid)
    if hsq is not None:
        h = np.broadcast_to(np.asarray(hsq, dtype=float), (model.t,)).copy()
        return NullModel(
            model=model,
            Q=np.ascontiguousarray(model.Q.T),
            hsq_reml=h,
            hsq_ml=h,
            loglik_ml=model.loglik(h, np.arange(model.t), False),
            tol=tol,
        )
    return NullModel(
        model=model,
        Q=np.ascontiguousarray(model.Q.T),
        hsq_reml=nan if reml is None else reml.hsq,
        hsq_ml=nan if ml is None else ml.hsq,
        loglik_ml=nan if ml is None else ml.loglik,
        tol=tol,
    )


def rotate_chunk(
    block: np.ndarray,
    rows: np.ndarray,
    k: int,
    U: np.ndarray | None,
    interact: np.ndarray | None = None,
    skip_monomorphic: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A chunk of genotypes ready for the scan: the analysed samples' rows, missing values
    set to the marker mean over them (as GEMMA does), rotated by ``U`` into the kernels'
    marker-major layout; with ``skip_monomorphic``, only the markers that vary (where some
    do), the others being untestable whenever the covariates span the constant vector.

    Parameters
    ----------
    block : (n_all, k, m)
        Genotypes of m markers (NaN where missing); probabilities (k > 1) sum to one, so
        their first column is dropped.
    rows
        The analysed samples' rows of ``block``, in the order of ``U``'s rows.
    k
        Columns per locus.
    U : (n, n)
        Eigenvectors of the kinship of the analysed samples; None: no rotation (a plain
        linear model).
    interact : (n, q), optional
        Interactive covariates: the marker's columns are followed by their products with
        each covariate (after imputation), k' (1 + q) columns in all.

    Returns
    -------
    Mt : (m, k', n)
        ``(U' G)'``, k' = 1 for dosages, k - 1 for probabilities (with ``skip_monomorphic``,
        of the markers ``flatnonzero(~monomorphic)`` where fewer than m).
    mean : (k', m)
        The means used to impute.
    monomorphic : (m,)
        Markers with no variation among the analysed samples.
    n_miss : (m,)
        Samples imputed at each marker.
    """
    G = block[rows]  # (n, k, m)
    if k > 1:
        G = G[:, 1:, :]  # probabilities sum to 1: drop the first column
    m = G.shape[2]
    missing = np.isnan(G)
    n_miss = missing.any(axis=1).sum(axis=0)  # samples imputed, per marker
    # nanmean's arithmetic in fewer passes (an all-missing marker gets 0, and is then
    # monomorphic); arrays without missing values are left alone
    if missing.any():
        count = G.shape[0] - missing.sum(axis=0)
        mean = np.where(missing, 0.0, G).sum(axis=0) / np.maximum(count, 1)
        G = np.where(missing, mean[None], G)
    else:
        mean = G.sum(axis=0) / G.shape[0]
    mono = np.all(np.ptp(G, axis=0) == 0, axis=0)
    if skip_monomorphic and mono.any() and not mono.all():
        G = G[:, :, ~mono]
        m = G.shape[2]
    if interact is not None:
        G = np.concatenate(
            [G, *(G * interact[:, j, None, None] for j in range(interact.shape[1]))], axis=1
        )
    # rotate straight into the marker-major layout the kernels use: (U'G)' = G'U
    kk = G.shape[1]
    Gt = G[:, 0, :].T if kk == 1 else G.transpose(2, 1, 0).reshape(m * kk, -1)
    Mt = (Gt if U is None else Gt @ U).reshape(m, kk, -1)
    return Mt, mean, mono, n_miss


def null_fits(mode: str, reml: bool) -> tuple[str, ...]:
    """The null fits a scan needs: fixed mode uses one hsq; exact mode needs the ML fit too."""
    if mode == "fixed":
        return ("reml",) if reml else ("ml",)
    return ("reml", "ml")


def _residualise_markers(
    Q: np.ndarray, Mt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Residualise marker columns (m, k, n) on the orthonormal columns of Q (n, p) (the null
    model's rotated covariates), in place; return them, log det(M'M)
    of the residuals and each marker's rank (the number of independent residual columns).

    A marker whose residual columns are independent keeps them. One of rank r < k (some
    columns in the span of the covariates or of each other: genotypes absent among the
    analysed samples, the X chromosome's male genotypes with sex among the covariates) gets,
    in its first r columns, a basis of the same space (U S of the residuals' SVD) and zeros
    after: the test of the marker is that of the space, on r degrees of freedom. Rank 0 is
    an untestable marker (monomorphic, or collinear with the covariates)."""
    m, k, n = Mt.shape
    norms0 = np.sqrt(np.einsum("mkn,mkn->mk", Mt, Mt))
    tiny = np.finfo(float).tiny
    flat = Mt.reshape(m * k, n)
    flat -= (flat @ Q) @ Q.T  # two matrix products (BLAS)
    if k == 1:
        diag = np.sqrt(np.einsum("mn,mn->m", flat, flat))[:, None]
    else:  # QR of each marker's k residual columns: log det(M'M) from R's diagonal
        R = np.linalg.qr(np.transpose(Mt, (0, 2, 1)), mode="r")  # (m, k, k)
        diag = np.abs(np.diagonal(R, axis1=1, axis2=2))
    ok = np.all(diag > COLLINEAR_RTOL * np.maximum(norms0, tiny), axis=1)
    with np.errstate(divide="ignore"):
        logdet = 2.0 * np.sum(np.log(diag), axis=1)
    logdet = np.where(ok, logdet, 0.0)
    rank = np.where(ok, k, 0)
    short = np.flatnonzero(~ok) if k > 1 else np.empty(0, dtype=np.int64)
    if short.size:
        U, sv, _ = np.linalg.svd(np.transpose(Mt[short], (0, 2, 1)), full_matrices=False)
        scale = np.maximum(norms0[short].max(axis=1), tiny)
        r = np.sum(sv > COLLINEAR_RTOL * scale[:, None], axis=1)
        for i, j in enumerate(short):
            basis = U[i, :, : r[i]] * sv[i, : r[i]]  # (n, r): the residuals' column space
            Mt[j] = 0.0
            Mt[j, : r[i]] = basis.T
            logdet[j] = 2.0 * np.sum(np.log(sv[i, : r[i]])) if r[i] else 0.0
        rank[short] = r
    return Mt, logdet, rank


def _grams(null: NullModel, h: np.ndarray, iy: np.ndarray, im: np.ndarray, Mt: np.ndarray):
    return _kernels.gram_items(h, iy, im, null.model.lam, null.model.Q, null.model.Yt, Mt)


def _rss_and_effects(G: np.ndarray, p: int, k: int, split: int | None = None):
    """From Grams of [Q, M, y]: rss0, rss1, marker effects (m, k) and their (A^-1)_MM (m,k,k);
    with ``split``, also the rss with Q and the first ``split`` columns of M only (the
    additive model of an interaction test)."""
    c = p + k
    A = G[:, :c, :c]
    b = G[:, :c, c]
    yy = G[:, c, c]
    with np.errstate(invalid="ignore", divide="ignore"):
        L = np.linalg.cholesky(A)
        z = np.linalg.solve(L, b[..., None])[..., 0]
        rss1 = yy - np.sum(z * z, axis=1)
        zq = z[:, :p]  # the Q block's Cholesky factor is the leading block of L
        rss0 = yy - np.sum(zq * zq, axis=1)
        Ainv = np.linalg.inv(A)
        coef = np.einsum("mab,mb->ma", Ainv, b)
        if split is not None:
            za = z[:, : p + split]
            rss_add = yy - np.sum(za * za, axis=1)
            return rss0, rss1, coef[:, p:], Ainv[:, p:, p:], rss_add
    return rss0, rss1, coef[:, p:], Ainv[:, p:, p:]


#: Heritabilities at which every item's ML and REML log likelihoods are evaluated together,
#: with matrix products, before its searches (the interval's ends included): they place each
#: search (see ``_search_many``), and the ends' values serve its boundary check.
GRID_POINTS = 17
#: Items whose grid evaluations are formed at once (bounds the products' memory).
_GRID_BLOCK = 512


def shared_h_grams(null: NullModel, hs: np.ndarray, iy, im, Mt) -> tuple[np.ndarray, np.ndarray]:
    """Z'SZ of every item at each heritability of ``hs`` (the same for all items), with
    Z = [Q', M_im, y_iy] as in :func:`lmmlite.core._kernels.loglik_items`, and the log
    determinant sum(log d) at each: ``(G (len(hs), m, c, c), L (len(hs),))``. The weighted
    products of all items are matrix products with the (n, len(hs)) weights."""
    W, L = _shared_h_weights(null.model.lam, np.asarray(hs, dtype=float))
    return weighted_grams(null, W, iy, im, Mt), L


def _shared_h_weights(lam: np.ndarray, hs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The weights 1/d (n, g), d = h lam + (1 - h), at each heritability of ``hs``, and
    sum(log d) (g,) at each."""
    d = np.multiply.outer(lam, hs) + (1.0 - hs)
    return 1.0 / d, np.sum(np.log(d), axis=0)


def weighted_grams(null: NullModel, W: np.ndarray, iy, im, Mt) -> np.ndarray:
    """Z'diag(w)Z (g, m, c, c) of every item (Z as in :func:`shared_h_grams`) for each
    column w of the weights ``W`` (n, g), shared by all items: matrix products."""
    Q, Yt = null.model.Q, null.model.Yt
    g = W.shape[1]
    p, n = Q.shape
    k = Mt.shape[1]
    c = p + k + 1
    m = iy.shape[0]
    out = np.empty((g, m, c, c))
    ut, t_of = np.unique(iy, return_inverse=True)
    um, m_of = np.unique(im, return_inverse=True)
    Y = Yt[ut]
    M = Mt[um]
    QQ = ((Q[:, None, :] * Q[None, :, :]).reshape(p * p, n) @ W).reshape(p, p, g)
    Qy = ((Q[:, None, :] * Y[None, :, :]).reshape(p * len(ut), n) @ W).reshape(p, len(ut), g)
    yy = (Y * Y) @ W  # (t, g)
    MQ = ((M[:, :, None, :] * Q[None, None, :, :]).reshape(-1, n) @ W).reshape(len(um), k, p, g)
    MM = ((M[:, :, None, :] * M[:, None, :, :]).reshape(-1, n) @ W).reshape(len(um), k, k, g)
    My = ((Mt[im] * Yt[iy][:, None, :]).reshape(m * k, n) @ W).reshape(m, k, g)
    out[:, :, :p, :p] = np.moveaxis(QQ, 2, 0)[:, None]
    out[:, :, p : p + k, :p] = np.moveaxis(MQ[m_of], 3, 0)
    out[:, :, :p, p : p + k] = np.swapaxes(out[:, :, p : p + k, :p], 2, 3)
    out[:, :, p : p + k, p : p + k] = np.moveaxis(MM[m_of], 3, 0)
    out[:, :, c - 1, :p] = np.moveaxis(Qy[:, t_of], 2, 0).transpose(0, 2, 1)
    out[:, :, c - 1, p : p + k] = np.moveaxis(My, 2, 0)
    out[:, :, :-1, c - 1] = out[:, :, c - 1, :-1]
    out[:, :, c - 1, c - 1] = yy[t_of].T
    return out


def profile_loglik(
    G: np.ndarray, L: np.ndarray | float, n: int, reml: bool, logdet_zz
) -> np.ndarray:
    """R/lmmlite's profile log likelihood from Grams ``G`` (..., c, c) of Z = [X-part, y], as
    the compiled ``_assemble`` does it (Cholesky of the augmented matrix, its last pivot the
    residual sum of squares), vectorised over the leading axes; NaN where the covariate block
    is not positive definite or rss <= 0. ``L`` and ``logdet_zz`` broadcast against them."""
    c = G.shape[-1]
    r = c - 1
    A = np.array(G, dtype=float)
    logdet = np.zeros(G.shape[:-2])
    ok = np.ones(G.shape[:-2], dtype=bool)
    rss = np.zeros(G.shape[:-2])
    with np.errstate(invalid="ignore", divide="ignore"):
        for a in range(c):
            for b in range(a + 1):
                v = A[..., a, b].copy()
                for q in range(b):
                    v -= A[..., a, q] * A[..., b, q]
                if a == b and a < r:
                    ok &= v > 0.0
                    v = np.sqrt(np.where(v > 0.0, v, np.nan))
                    logdet += 2.0 * np.log(v)
                    A[..., a, a] = v
                elif a == b:
                    rss = v
                else:
                    A[..., a, b] = v / A[..., b, b]
        ok &= rss > 0.0
        ll = -0.5 * (L + n * np.log(rss))
        if reml:
            ll = ll + 0.5 * (r * (_LOG_2PI + np.log(rss / (n - r))) + logdet_zz - logdet)
    return np.where(ok, ll, np.nan)


#: Newton steps an item's search may take from its grid vertex before Brent's search of its
#: grid intervals takes over (a good start converges in three).
_NEWTON_STEPS = 8
#: An item's Newton search starts from the step from its null heritability (its series at
#: h0, :class:`_Series`) where that point is within this fraction of the grid's spacing of
#: the grid's parabola vertex (else from the vertex).
_NEAR = 0.5
#: Most traits in a block of items whose series are formed with the grid's products.
SERIES_MAX_TRAITS = 4


def _brackets(ll: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each item's search interval and start: ``(lo, hi)``, the grid intervals either side of
    its best grid point (the whole grid where every value is NaN), ``x0``, the vertex of the
    parabola through the best grid point and its neighbours, ``ok``, whether that vertex is a
    finite maximum inside ``(lo, hi)`` (else ``x0`` is the best grid point), and ``best``, the
    best grid point's index (-1 where every value is NaN). ``ll``: (g, m)."""
    g, m = ll.shape
    filled = np.where(np.isnan(ll), -np.inf, ll)
    best = np.argmax(filled, axis=0)
    none = np.all(np.isnan(ll), axis=0)
    lo = np.where(none, grid[0], grid[np.maximum(best - 1, 0)])
    hi = np.where(none, grid[-1], grid[np.minimum(best + 1, g - 1)])
    b = np.clip(best, 1, g - 2)
    cols = np.arange(m)
    f0, f1, f2 = ll[b - 1, cols], ll[b, cols], ll[b + 1, cols]
    step = grid[1] - grid[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        curv = f0 - 2.0 * f1 + f2
        off = 0.5 * step * (f0 - f2) / curv
    ok = (best == b) & ~none & (curv < 0.0) & (np.abs(off) < step)  # a finite, inner vertex
    x0 = grid[best] + np.where(ok, off, 0.0)
    return lo, hi, x0, ok, np.where(none, -1, best)


def _newton(
    null: NullModel,
    iy,
    im,
    Mt,
    logdet_mm,
    reml: bool,
    x0,
    lo,
    hi,
    items: np.ndarray,
    ser: _Series | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Newton's method, with the likelihood's exact first and second derivatives (from the
    items' series where they cover them, else ``derivs_items``: :func:`_derivs`), on each of
    ``items`` from ``x0`` (as GEMMA polishes its estimates).
    An item converges where its step is within Brent's tolerance (``SQRT_EPS |h| + tol/3``):
    ``h`` is then that point, ``loglik`` its value. An item whose curvature is not negative,
    whose step leaves ``(lo, hi)`` or that has not converged in ``_NEWTON_STEPS`` steps is left
    to the caller (``done`` False). Returns ``(h, loglik, done)`` over all items."""
    m = iy.shape[0]
    h = np.full(m, np.nan)
    ll = np.full(m, np.nan)
    done = np.zeros(m, dtype=bool)
    act = np.asarray(items, dtype=np.int64)
    x = x0[act]
    for _ in range(_NEWTON_STEPS):
        if not act.size:
            break
        f, f1, f2 = _derivs(null, iy, im, Mt, logdet_mm, reml, x, act, ser)
        with np.errstate(invalid="ignore", divide="ignore"):
            step = -f1 / f2
        good = np.isfinite(f) & (f2 < 0.0) & np.isfinite(step)
        conv = good & (np.abs(step) <= SQRT_EPS * np.abs(x) + null.tol / 3.0)
        hit = act[conv]
        h[hit] = x[conv]
        ll[hit] = f[conv]
        done[hit] = True
        xn = x + np.where(good, step, 0.0)
        keep = good & ~conv & (xn > lo[act]) & (xn < hi[act])
        act = act[keep]
        x = xn[keep]
    return h, ll, done


#: Terms of each item's series about its trait's null heritability (:class:`_Series`), and the
#: largest rho = max|e| |h - h0| at which it is used: its truncation error is below
#: rho^(K+1)/(1 - rho) of the terms' scale, 1.1e-19 at K = 18, rho = 0.1 (a trait whose
#: null hsq is near 0, where max|e| is about 1, covers the first grid interval).
_SERIES_TERMS = 18
_SERIES_RHO = 0.1


class _Series(NamedTuple):
    """Each item's Grams as series about its trait's null heritability h0, in t = h0 - h:
    with s = 1/d(h0) and e = (lam - 1) s, 1/d(h) = s / (1 - e t) = s sum_k (e t)^k, so
    Z'S(h)Z = sum_k t^k G_k with G_k = Z' diag(s e^k) Z: matrix products shared by every item
    of the trait, formed with the grid's (:func:`weighted_grams`). sum(log d) and the
    derivatives in h follow from the sums of e^k. Used where rho = max|e| |t| <=
    ``_SERIES_RHO`` (most markers move a trait's heritability little): there an evaluation
    costs no pass over the samples. NaN for items without a series."""

    G: np.ndarray
    """(K + 3, m, c, c): G_k, k = 0 .. K + 2 (the derivatives need two more terms)."""
    h0: np.ndarray
    """(m,) the item's trait's null heritability."""
    L0: np.ndarray
    """(m,) sum(log d(h0))."""
    S: np.ndarray
    """(m, K + 3) sums of e^k."""
    emax: np.ndarray
    """(m,) max |e|."""


def _series_weights(lam: np.ndarray, h0: float) -> tuple[np.ndarray, float, np.ndarray, float]:
    """A trait's series at h0: the weights s e^k (n, K + 3), sum(log d(h0)), the sums of e^k
    (K + 3,) and max |e|."""
    d = h0 * lam + (1.0 - h0)
    s = 1.0 / d
    e = (lam - 1.0) * s
    P = _powers(e, _SERIES_TERMS + 3)
    return s[:, None] * P, float(np.sum(np.log(d))), P.sum(axis=0), float(np.max(np.abs(e)))


def _powers(v: np.ndarray, k: int) -> np.ndarray:
    """v^j (len(v), k), j = 0 .. k - 1, by repeated products (faster than a float power)."""
    P = np.empty((v.shape[0], k))
    P[:, 0] = 1.0
    for j in range(1, k):
        np.multiply(P[:, j - 1], v, out=P[:, j])
    return P


def _in_series(ser: _Series, items: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Which of ``items``, at heritabilities ``x``, their series covers."""
    with np.errstate(invalid="ignore"):
        return np.abs(ser.h0[items] - x) * ser.emax[items] <= _SERIES_RHO


def _series_at(ser: _Series, items: np.ndarray, x: np.ndarray, n: int, reml: bool, logdet_mm):
    """``(f, f', f'', G)`` of ``items`` at heritabilities ``x`` (all covered by the series):
    the profile log likelihood, its derivatives in h and Z'S(h)Z, from the series."""
    K = _SERIES_TERMS
    pw, j = _series_powers(ser, items, x)
    Gk = ser.G[:, items]
    G = np.einsum("mj,jmab->mab", pw, Gk[: K + 1])
    G1 = -np.einsum("mj,jmab->mab", pw * (j + 1), Gk[1 : K + 2])
    G2 = np.einsum("mj,jmab->mab", pw * ((j + 1) * (j + 2)), Gk[2 : K + 3])
    S = ser.S[items]
    L = ser.L0[items] - np.sum(pw[:, 1:] * S[:, 1 : K + 1] / j[1:], axis=1)
    dL = np.stack(
        [np.sum(pw * S[:, 1 : K + 2], axis=1), -np.sum(pw * (j + 1) * S[:, 2 : K + 3], axis=1)],
        axis=1,
    )
    f = profile_loglik(G, L, n, reml, logdet_mm)
    f1, f2 = _kernels.slope_curvature(f, G, G1, G2, dL, n, reml)
    return f, f1, f2, G


def _series_centres(
    null: NullModel, fits: tuple[bool, ...], traits
) -> dict[tuple[bool, int], float]:
    """The heritability each (fit, trait) series is about: the trait's null hsq of that fit,
    or, where its ML and REML null hsq are close enough for one series about their midpoint
    to cover both (max|e| |h0 - midpoint| <= ``_SERIES_RHO`` / 4), the midpoint for both (one
    set of weights instead of two). None of the trait's where its null hsq is NaN or outside
    [0, HSQ_MAX]."""
    out: dict[tuple[bool, int], float] = {}
    lam = null.model.lam
    for t in traits:
        t = int(t)
        h0 = {reml: float((null.hsq_reml if reml else null.hsq_ml)[t]) for reml in fits}
        ok = {reml: 0.0 <= h <= HSQ_MAX for reml, h in h0.items()}
        if len(fits) == 2 and all(ok.values()):
            mid = 0.5 * (h0[True] + h0[False])
            emax = float(np.max(np.abs((lam - 1.0) / (mid * lam + (1.0 - mid)))))
            if abs(h0[True] - mid) * emax <= _SERIES_RHO / 4:
                out[True, t] = out[False, t] = mid
                continue
        for reml in fits:
            if ok[reml]:
                out[reml, t] = h0[reml]
    return out


def _series_powers(ser: _Series, items: np.ndarray, x: np.ndarray):
    """The powers t^j (m, K + 1) of t = h0 - x, and j."""
    return _powers(ser.h0[items] - x, _SERIES_TERMS + 1), np.arange(_SERIES_TERMS + 1)


def _derivs(null: NullModel, iy, im, Mt, logdet_mm, reml: bool, x, items, ser: _Series | None):
    """``(f, f', f'')`` of ``items`` at ``x``: from their series where it covers them, else
    from the kernel (``derivs_items``)."""
    lam, Q, Yt = null.model.lam, null.model.Q, null.model.Yt
    inside = np.zeros(items.shape[0], dtype=bool) if ser is None else _in_series(ser, items, x)
    out = [np.empty(items.shape[0]) for _ in range(3)]
    if inside.any():
        assert ser is not None
        got = _series_at(
            ser, items[inside], x[inside], lam.shape[0], reml, logdet_mm[im[items[inside]]]
        )
        for o, g in zip(out, got[:3], strict=True):
            o[inside] = g
    if not inside.all():
        rest = items[~inside]
        got = _kernels.derivs_items(x[~inside], iy[rest], im[rest], lam, Q, Yt, Mt, logdet_mm, reml)
        for o, g in zip(out, got, strict=True):
            o[~inside] = g
    return out


def grams_at(null: NullModel, h, iy, im, Mt, ser: _Series | None) -> np.ndarray:
    """Z'S(h)Z (m, c, c) of every item at its heritability ``h``: from its series where it
    covers it, else from the kernel (``gram_items``)."""
    items = np.arange(iy.shape[0])
    inside = np.zeros(items.shape[0], dtype=bool) if ser is None else _in_series(ser, items, h)
    if not inside.any():
        return _grams(null, h, iy, im, Mt)[0]
    assert ser is not None
    c = null.model.Q.shape[0] + Mt.shape[1] + 1
    G = np.empty((items.shape[0], c, c))
    pw, _ = _series_powers(ser, items[inside], h[inside])
    G[inside] = np.einsum("mj,jmab->mab", pw, ser.G[: _SERIES_TERMS + 1, items[inside]])
    if not inside.all():
        rest = items[~inside]
        G[~inside] = _grams(null, h[rest], iy[rest], im[rest], Mt)[0]
    return G


def _edge_optima(
    null: NullModel,
    iy,
    im,
    Mt,
    logdet_mm,
    reml: bool,
    grid,
    best,
    items: np.ndarray,
    ser: _Series | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Items of ``items`` whose best grid point (``best``, as :func:`_brackets` gives it) is
    an end of the grid and whose likelihood
    falls away from it across the whole end interval: slope pointing out of the interval and
    negative curvature at both of its ends (exact derivatives, from the items' series where
    they cover them, else ``derivs_items``: :func:`_derivs`). Their optimum is that end, as
    Brent's search of the interval followed by the check of its end finds (the end's log
    likelihood is the kernel's, bit for bit: ``loglik_items``); they are spared that search.
    An item whose likelihood rises from the end into the interval gets, in ``start``, the
    Newton step from the end when it lands inside the interval (else NaN). Returns
    ``(h, loglik, done, start)`` over all items (``done`` False for the others)."""
    lam, Q, Yt = null.model.lam, null.model.Q, null.model.Yt
    m = iy.shape[0]
    g = grid.shape[0]
    h = np.full(m, np.nan)
    ll = np.full(m, np.nan)
    done = np.zeros(m, dtype=bool)
    start = np.full(m, np.nan)
    for end, inner, outward in ((0, 1, -1.0), (g - 1, g - 2, 1.0)):
        sel = items[best[items] == end]
        if not sel.size:
            continue
        k = sel.shape[0]
        x = np.concatenate([np.full(k, grid[end]), np.full(k, grid[inner])])
        two = np.concatenate([sel, sel])
        f, f1, f2 = _derivs(null, iy, im, Mt, logdet_mm, reml, x, two, ser)
        with np.errstate(invalid="ignore"):
            away = (outward * f1[:k] >= 0.0) & (outward * f1[k:] >= 0.0)
            away &= (f2[:k] < 0.0) & (f2[k:] < 0.0) & np.isfinite(f[:k])
        hit = sel[away]
        h[hit] = grid[end]
        if hit.size:
            ll[hit] = _kernels.loglik_items(
                h[hit], iy[hit], im[hit], lam, Q, Yt, Mt, logdet_mm, reml
            )  # fmt: skip
        done[hit] = True
        with np.errstate(invalid="ignore", divide="ignore"):
            x1 = grid[end] - f1[:k] / f2[:k]
        lo, hi = min(grid[end], grid[inner]), max(grid[end], grid[inner])
        inside = ~away & (f2[:k] < 0.0) & (x1 > lo) & (x1 < hi)
        start[sel[inside]] = x1[inside]
    return h, ll, done, start


def _search_many(
    null: NullModel,
    iy,
    im,
    Mt,
    logdet_mm,
    fits: tuple[bool, ...],
    series: dict[bool, _Series | None] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per-item search of hsq on [0, HSQ_MAX], maximising the REML (True) or ML (False) log
    likelihood for each of ``fits``; returns (h, loglik) per fit.

    Every item is first evaluated on ``GRID_POINTS`` heritabilities (matrix products, shared by
    the fits), and, where the items are of at most ``SERIES_MAX_TRAITS`` traits, its series
    about its trait's null heritability h0 is formed with the same products (:class:`_Series`; given
    ``series``, they are stored there per fit). Newton's method (``_newton``) then starts at
    the Newton step from h0 where that point lies within ``_NEAR`` grid spacings of the vertex
    of the parabola through its best grid point and that point's neighbours and inside their
    intervals, else at the vertex; its evaluations come from the series where it covers them
    (most markers: no pass over the samples). An item whose best grid point is an end
    takes that end where the likelihood falls away from it over the end interval, and
    otherwise starts Newton at the Newton step from the end (``_edge_optima``). Any other
    item, or one whose Newton steps do not converge inside the two grid intervals around its
    best point, is searched there by Brent (``fit_items``). The intervals' ends are checked as
    ``fit_lmm`` checks them: an end whose log likelihood exceeds the search's optimum is taken
    (its value recomputed by the kernel)."""
    lam, Q, Yt = null.model.lam, null.model.Q, null.model.Yt
    n, m = lam.shape[0], iy.shape[0]
    grid = np.linspace(0.0, HSQ_MAX, GRID_POINTS)
    W_grid, L_grid = _shared_h_weights(lam, grid)
    lls = {reml: np.empty((GRID_POINTS, m)) for reml in fits}
    K3 = _SERIES_TERMS + 3
    c = Q.shape[0] + Mt.shape[1] + 1
    # series for a few traits at most (items are marker-major: a block holds every trait)
    use_series = np.unique(iy).size <= SERIES_MAX_TRAITS
    sers: dict[bool, _Series | None] = {
        reml: _Series(
            G=np.full((K3, m, c, c), np.nan), h0=np.full(m, np.nan), L0=np.full(m, np.nan),
            S=np.full((m, K3), np.nan), emax=np.full(m, np.nan),
        ) if use_series else None
        for reml in fits
    }  # fmt: skip
    centres = _series_centres(null, fits, np.unique(iy)) if use_series else {}
    made: dict[float, tuple[np.ndarray, float, np.ndarray, float]] = {}
    for j0 in range(0, m, _GRID_BLOCK):
        sl = slice(j0, min(m, j0 + _GRID_BLOCK))
        # the series' weights go into the same products as the grid's (their cost is mostly
        # the elementwise products, shared by all weights)
        traits = np.unique(iy[sl])
        cols = [W_grid]
        col_of: dict[tuple[int, float], int] = {}
        for (_reml, t), h0 in centres.items():
            if t in traits and (t, h0) not in col_of:
                if h0 not in made:
                    made[h0] = _series_weights(lam, h0)
                col_of[t, h0] = GRID_POINTS + K3 * len(col_of)
                cols.append(made[h0][0])
        G = weighted_grams(null, np.hstack(cols), iy[sl], im[sl], Mt)
        for reml in fits:
            lls[reml][:, sl] = profile_loglik(
                G[:GRID_POINTS], L_grid[:, None], n, reml, logdet_mm[im[sl]]
            )  # fmt: skip
        for (reml, t), h0 in centres.items():
            if t not in traits:
                continue
            j = col_of[t, h0]
            items = j0 + np.flatnonzero(iy[sl] == t)
            ser = sers[reml]
            assert ser is not None
            ser.G[:, items] = G[j : j + K3, items - j0]
            _, ser.L0[items], ser.S[items], ser.emax[items] = made[h0]
            ser.h0[items] = h0
    out = []
    for reml in fits:
        ser = sers[reml]
        if series is not None:
            series[reml] = ser
        ll_grid = lls[reml]
        lo, hi, x0, ok, best = _brackets(ll_grid, grid)
        # the Newton step from h0 (its series at h0), where it is short and inside
        x1 = np.full(m, np.nan)
        has = np.flatnonzero(~np.isnan(ser.h0)) if ser is not None else np.empty(0, int)
        if has.size:
            assert ser is not None
            _, f1, f2, _ = _series_at(ser, has, ser.h0[has], n, reml, logdet_mm[im[has]])
            with np.errstate(invalid="ignore", divide="ignore"):
                x1[has] = np.where(f2 < 0.0, ser.h0[has] - f1 / f2, np.nan)
        with np.errstate(invalid="ignore"):
            near = (np.abs(x1 - x0) < _NEAR * (grid[1] - grid[0])) & (x1 > lo) & (x1 < hi)
        x0 = np.where(near, x1, x0)
        h, ll, done = _newton(
            null, iy, im, Mt, logdet_mm, reml, x0, lo, hi, np.flatnonzero(ok), ser
        )  # fmt: skip
        rest = np.flatnonzero(~done)
        if rest.size:  # best at an end of the grid: the optimum there, or Newton from it
            he, lle, at_end, x1 = _edge_optima(
                null, iy, im, Mt, logdet_mm, reml, grid, best, rest, ser
            )  # fmt: skip
            h[at_end], ll[at_end] = he[at_end], lle[at_end]
            done |= at_end
            hn, lln, dn = _newton(
                null, iy, im, Mt, logdet_mm, reml, x1, lo, hi, np.flatnonzero(np.isfinite(x1)),
                ser,
            )  # fmt: skip
            h[dn], ll[dn] = hn[dn], lln[dn]
            rest = np.flatnonzero(~(done | dn))
        if rest.size:
            h2, fx2, _, _ = _kernels.fit_items(
                iy[rest], im[rest], lam, Q, Yt, Mt, logdet_mm, reml, lo[rest], hi[rest], null.tol
            )  # fmt: skip
            h[rest] = h2
            ll[rest] = -fx2
        for i, edge in ((0, 0.0), (GRID_POINTS - 1, HSQ_MAX)):
            with np.errstate(invalid="ignore"):
                cand = np.flatnonzero(~(ll_grid[i] <= ll) & ~np.isnan(ll_grid[i]))
            if cand.size:
                le = _kernels.loglik_items(
                    np.full(cand.size, edge), iy[cand], im[cand], lam, Q, Yt, Mt, logdet_mm, reml
                )  # fmt: skip
                better = le > ll[cand]
                h[cand[better]] = edge
                ll[cand[better]] = le[better]
        out.append((h, ll))
    return out


def _search(null: NullModel, iy, im, Mt, logdet_mm, reml: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-item search of hsq (as fit_lmm, with the boundary check); returns (h, loglik)."""
    return _search_many(null, iy, im, Mt, logdet_mm, (reml,))[0]


def _f_sf(F: np.ndarray, d1: float, d2: float) -> np.ndarray:
    """Upper tail of the F distribution (F(d1, d2) > F)."""
    with np.errstate(invalid="ignore"):
        return special.fdtrc(d1, d2, np.maximum(F, 0.0))


def _chi2_sf(x: np.ndarray, k: int) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return special.chdtrc(k, np.maximum(x, 0.0))


def scan_chunk(
    null: NullModel,
    Mt: np.ndarray,
    *,
    mode: str,
    reml: bool = True,
    hsq_fixed: np.ndarray | None = None,
    split: int | None = None,
) -> ChunkScan:
    """Test every marker of a rotated chunk against every trait.

    Parameters
    ----------
    null
        Null model of the traits (same rotation as ``G``).
    Mt : (m, k, n)
        Rotated genotype columns of m markers (k columns each), marker-major (the layout of
        ``(U' G)'``), missing values imputed before the rotation. Modified in place.
    mode
        ``"fixed"`` or ``"exact"``.
    reml
        Estimate the hsq of the Wald test by REML (default, as GEMMA) or ML: in ``fixed`` mode
        the null model's estimate, in ``exact`` mode each marker's.
    hsq_fixed : (t,), optional
        hsq to hold fixed in ``fixed`` mode (default: the null REML estimates).
    split
        With interactive covariates: the marker's first ``split`` columns are its own, the
        others its products with the covariates; the interaction test (the products given
        the marker, GEMMA's ``-gxe``) comes in ``interaction``.

    Returns
    -------
    ChunkScan
        ``beta`` and ``se`` (m, t, k); the statistics (m, t); ``testable`` (m,). A marker
        whose k columns are not independent (given the covariates) is tested on its rank's
        degrees of freedom, without effects; its interaction test is NaN.
    """
    m, k, _ = Mt.shape
    t = null.model.t
    Mt, logdet_mm, rank = _residualise_markers(null.Q, Mt)
    nan = np.full((m, t), np.nan)
    out = _chunk(
        {
            "beta": np.full((m, t, k), np.nan),
            "se": np.full((m, t, k), np.nan),
            **{key: nan.copy() for key in CHUNK_STATS},
        },
        rank > 0,
        None if split is None else InteractionScan(*(nan.copy() for _ in _INTERACTION_FIELDS)),
    )
    for r in np.unique(rank[rank > 0]):  # markers of the same rank: tested together
        sel = np.flatnonzero(rank == r)
        full = r == k
        res = _rank_group(null, Mt, logdet_mm, sel, int(r), mode, reml, hsq_fixed,
                          split if full else None)  # fmt: skip
        for key in CHUNK_STATS:
            getattr(out, key)[sel] = getattr(res, key)
        if full:  # effects of the marker's own columns (a reduced basis has none)
            out.beta[sel] = res.beta
            out.se[sel] = res.se
            if res.interaction is not None and out.interaction is not None:
                for f in _INTERACTION_FIELDS:
                    getattr(out.interaction, f)[sel] = getattr(res.interaction, f)
    return out


_INTERACTION_FIELDS = ("beta", "se", "lod", "p_wald", "p_lrt", "p_score")


def _chunk(
    arrays: dict[str, np.ndarray], testable: np.ndarray, interaction: InteractionScan | None = None
) -> ChunkScan:
    """A ChunkScan from its arrays by name (effects and the statistics of CHUNK_STATS)."""
    return ChunkScan(
        beta=arrays["beta"],
        se=arrays["se"],
        lod=arrays["lod"],
        p_wald=arrays["p_wald"],
        p_lrt=arrays["p_lrt"],
        p_score=arrays["p_score"],
        hsq=arrays["hsq"],
        loglik=arrays["loglik"],
        testable=testable,
        interaction=interaction,
    )


def _rank_group(
    null: NullModel,
    Mt: np.ndarray,
    logdet_mm: np.ndarray,
    sel: np.ndarray,
    r: int,
    mode: str,
    reml: bool,
    hsq_fixed: np.ndarray | None,
    split: int | None,
) -> ChunkScan:
    """The tests of markers ``sel``, all of rank r (their first r columns)."""
    t, n = null.model.t, Mt.shape[2]
    sub = np.ascontiguousarray(Mt[sel, :r, :])
    ms = sel.size
    pairs = _Pairs(np.tile(np.arange(t), ms), np.repeat(np.arange(ms), t), sub, logdet_mm[sel])
    if mode == "fixed":
        fits = _fixed_mode(null, pairs, fixed_hsq(null, reml, hsq_fixed), split)
    elif mode == "exact":
        fits = _exact_mode(null, pairs, reml, split)
    else:
        raise ValueError(f"mode must be 'fixed' or 'exact'; got {mode!r}")
    return _chunk_scan(fits, (ms, t, r), n - null.model.p - r, np.ones(ms, bool), split)


class _Pairs(NamedTuple):
    """The (marker, trait) pairs of a chunk: trait and marker index of each, the markers'
    residualised rotated columns and log det(M'M)."""

    iy: np.ndarray
    im: np.ndarray
    Mt: np.ndarray
    logdet_mm: np.ndarray


class _PairFits(NamedTuple):
    """What a mode's fits give for each pair, from which :func:`_chunk_scan` derives tests."""

    rss0: np.ndarray  # y'Py at the Wald test's hsq
    rss1: np.ndarray  # the same with the marker
    beta: np.ndarray  # (pairs, k)
    Ainv: np.ndarray  # (pairs, k, k): the marker block of (Z'SZ)^-1
    lrt: np.ndarray
    score_F: np.ndarray
    hsq: np.ndarray
    loglik: np.ndarray
    inter: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    """With an interaction split: the additive model's rss at the Wald test's hsq, the
    interaction's LRT statistic and its score F."""


def _fixed_mode(
    null: NullModel, pairs: _Pairs, h0: np.ndarray, split: int | None = None
) -> _PairFits:
    """Every pair at its trait's held hsq ``h0``: LRT n log(rss0/rss1), score at that hsq."""
    iy, im, Mt, logdet_mm = pairs
    p, k, n = null.model.p, Mt.shape[1], Mt.shape[2]
    Gm, _ = _grams(null, h0[iy], iy, im, Mt)
    rss0, rss1, beta, Ainv, *rest = _rss_and_effects(Gm, p, k, split)
    inter = None
    if split is not None:
        (rss_add,) = rest
        with np.errstate(invalid="ignore", divide="ignore"):
            score = n * (rss_add - rss1) / ((k - split) * rss_add)
            inter = (rss_add, n * np.log(rss_add / rss1), score)
    # ML log likelihood of the alternative at the fixed h (R/lmmlite's constants)
    loglik = _kernels.loglik_items(
        h0[iy], iy, im, null.model.lam, null.model.Q, null.model.Yt, Mt, logdet_mm, False
    )
    return _PairFits(
        rss0=rss0,
        rss1=rss1,
        beta=beta,
        Ainv=Ainv,
        lrt=n * np.log(rss0 / rss1),
        score_F=n * (rss0 - rss1) / (k * rss0),
        hsq=h0[iy],
        loglik=loglik,
        inter=inter,
    )


def _exact_mode(null: NullModel, pairs: _Pairs, reml: bool, split: int | None = None) -> _PairFits:
    """GEMMA's -lmm 4: hsq searched per pair (REML for the Wald test, ML for the LRT), the
    score test at the null model's ML hsq. With an interaction split (GEMMA's -gxe), the
    additive model's ML fit is searched per pair too, for the interaction's LRT."""
    iy, im, Mt, logdet_mm = pairs
    p, k, n = null.model.p, Mt.shape[1], Mt.shape[2]
    series: dict[bool, _Series | None] = {}
    fits = (False, True) if reml else (False,)
    searched = _search_many(null, iy, im, Mt, logdet_mm, fits, series)
    h_ml, ll_ml = searched[0]
    h_reml = searched[1][0] if reml else h_ml
    Gm = grams_at(null, h_reml, iy, im, Mt, series[reml])
    rss0, rss1, beta, Ainv, *rest = _rss_and_effects(Gm, p, k, split)
    Gs = grams_at(null, null.hsq_ml[iy], iy, im, Mt, series[False])
    s_rss0, s_rss1, _, _, *s_rest = _rss_and_effects(Gs, p, k, split)
    inter = None
    if split is not None:
        add = np.ascontiguousarray(Mt[:, :split, :])
        ll_add = _search(null, iy, im, add, np.zeros(add.shape[0]), False)[1]
        (s_add,) = s_rest
        with np.errstate(invalid="ignore", divide="ignore"):
            score = n * (s_add - s_rss1) / ((k - split) * s_add)
        inter = (rest[0], 2.0 * (ll_ml - ll_add), score)
    return _PairFits(
        rss0=rss0,
        rss1=rss1,
        beta=beta,
        Ainv=Ainv,
        lrt=2.0 * (ll_ml - null.loglik_ml[iy]),
        score_F=n * (s_rss0 - s_rss1) / (k * s_rss0),
        hsq=h_reml,
        loglik=ll_ml,
        inter=inter,
    )


def _chunk_scan(
    fits: _PairFits,
    shape: tuple[int, int, int],
    nu: int,
    ok: np.ndarray,
    split: int | None = None,
) -> ChunkScan:
    """The tests of every pair, shaped (m, t) (effects (m, t, k)), NaN for untestable markers;
    with ``split``, the interaction test of the columns after the first ``split``."""
    m, t, k = shape
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma2 = fits.rss1 / nu
        se = np.sqrt(sigma2[:, None] * np.diagonal(fits.Ainv, axis1=1, axis2=2))
        wald_F = (fits.rss0 - fits.rss1) / k / sigma2
        out = {
            "beta": fits.beta.reshape(m, t, k),
            "se": se.reshape(m, t, k),
            "lod": (np.maximum(fits.lrt, 0.0) / (2.0 * _LN10)).reshape(m, t),
            "p_wald": _f_sf(wald_F, k, nu).reshape(m, t),
            "p_lrt": _chi2_sf(fits.lrt, k).reshape(m, t),
            "p_score": _f_sf(fits.score_F, k, nu).reshape(m, t),
            "hsq": fits.hsq.reshape(m, t),
            "loglik": fits.loglik.reshape(m, t),
        }
    for val in out.values():
        val[~ok] = np.nan
    interaction = None
    if split is not None and fits.inter is not None:
        interaction = _interaction(fits, out["beta"], out["se"], (m, t, k - split), nu)
    return _chunk(out, ok, interaction)


def _interaction(
    fits: _PairFits, beta: np.ndarray, se: np.ndarray, shape: tuple[int, int, int], nu: int
) -> InteractionScan:
    """The interaction test of q product columns (shape (m, t, q)): F = ((rss_add - rss1) / q)
    / (rss1 / nu) at the Wald test's hsq, the LRT on q df, the score F; the product's effect
    when there is one product column (the last of the marker's)."""
    assert fits.inter is not None
    m, t, q = shape
    rss_add, lrt, score = fits.inter
    with np.errstate(invalid="ignore", divide="ignore"):
        wald = (rss_add - fits.rss1) / q / (fits.rss1 / nu)
        nan = np.full((m, t), np.nan)
        return InteractionScan(
            beta=beta[..., -1] if q == 1 else nan,
            se=se[..., -1] if q == 1 else nan,
            lod=(np.maximum(lrt, 0.0) / (2.0 * _LN10)).reshape(m, t),
            p_wald=_f_sf(wald, q, nu).reshape(m, t),
            p_lrt=_chi2_sf(lrt, q).reshape(m, t),
            p_score=_f_sf(score, q, nu).reshape(m, t),
        )


# ---------------------------------------------------------------------------------------------
# Fixed-hsq scan of one-column markers as matrix products (many traits at once).
#
# With hsq held fixed per trait, S_t = diag(w_t) and P_t = S_t - S_t Q C_t Q' S_t
# (C_t = (Q' S_t Q)^-1), every statistic of marker m and trait t follows from
#   num = m' P_t y_t = m' (w_t * r_t),  r_t = y_t - Q C_t Q' S_t y_t,
#   den = m' P_t m  = (m*m)' w_t - (m' (w_t * Q)) C_t (Q' (w_t * m)),
# i.e. from 2 + p products of the (markers x samples) block with (samples x traits) matrices:
# BLAS GEMMs instead of one small Gram matrix per (marker, trait) pair. S_t depends on the trait
# only through h_t, so m'S_t m and m'S_t Q are computed once per distinct h_t: traits whose
# null fit sits on a boundary (hsq = 0, frequent with small samples) share them.

#: Markers per GEMM block in the fixed-hsq path (bounds the (traits x block) products; 512
#: keeps a 2048-trait block's products within a core's share of L3 for the reduction).
GEMM_BLOCK = 512


@dataclass
class FixedParts:
    """Per-trait quantities of the fixed-hsq scan at heritabilities ``h`` (t,)."""

    h: np.ndarray
    row: np.ndarray  # (t,) each trait's row among the distinct heritabilities (u of them)
    Wu: np.ndarray  # (u, n) weights 1/d of the distinct heritabilities
    L: np.ndarray  # (t,) sum log d
    C: np.ndarray  # (u, p, p) (Q'SQ)^-1 of the distinct heritabilities
    B: np.ndarray  # (t + p u, n): rows w*r (t), then w*q_j (u each) for each column of Q
    rss0: np.ndarray  # (t,) y'P y
    R: np.ndarray  # (t, n) the traits' GLS residuals r (rotated)


def fixed_parts(null: NullModel, h: np.ndarray) -> FixedParts:
    """Weights and projected traits of the fixed-hsq scan (computed once per trait batch)."""
    lam = null.model.lam
    Q = null.Q
    Y = null.model.Yt
    h = np.asarray(h, dtype=float)
    hu, row = np.unique(h, return_inverse=True)
    row = row.reshape(-1)
    d = hu[:, None] * lam[None, :] + (1.0 - hu)[:, None]
    with np.errstate(divide="ignore"):
        L = np.log(d).sum(axis=1)[row]
        Wu = 1.0 / d
    W = Wu[row]
    C = np.linalg.inv(np.einsum("ui,ia,ib->uab", Wu, Q, Q))
    QSy = np.einsum("ti,ia,ti->ta", W, Q, Y)
    R = Y - np.einsum("tab,tb->ta", C[row], QSy) @ Q.T
    rss0 = np.einsum("ti,ti,ti->t", W, Y, R)
    B = np.concatenate([W * R, *(Wu * Q[:, j][None, :] for j in range(Q.shape[1]))], axis=0)
    return FixedParts(h=h, row=row, Wu=Wu, L=L, C=C, B=B, rss0=rss0, R=R)


class Whitening(NamedTuple):
    """The fixed-hsq scan of traits that share one heritability h, in the samples' own
    coordinates instead of the eigenvectors': with V = U diag(d) U' = L L' (Cholesky),
    a marker g enters as L^-1 g, a triangular solve that costs half the product U'g, and
    the statistics (m'Sm, m'Sr, m'SQ of :func:`fixed_parts`) are the same sums of the whitened
    vectors with unit weights: g'V^-1 g = (L^-1 g)'(L^-1 g). Made by :func:`whitening`."""

    L: np.ndarray
    """(n, n) the lower Cholesky factor of V, Fortran order (the rest of it zero)."""
    Qx: np.ndarray
    """(n, p) an orthonormal basis of the covariates (the markers are residualised on it, as
    on the rotated covariates: the same residual norms, so the same markers testable)."""
    parts: FixedParts
    """:func:`fixed_parts` in the whitened coordinates: unit weights, the whitened residuals
    of the traits and an orthonormal basis of the whitened covariates."""


def whitening(
    null: NullModel, K: np.ndarray, U: np.ndarray, X: np.ndarray, parts: FixedParts
) -> Whitening | None:
    """The whitened coordinates of a fixed-hsq scan whose traits share one heritability h
    (``parts`` at it; None where they do not, or where V = h K + (1 - h) I is not numerically
    positive definite). ``K``: the kinship (n, n) whose eigenvectors are ``U`` (the null
    model's rotation), ``X``: the covariates (n, p), both in the samples' order. Costs one
    Cholesky factorisation (n^3/3), paid back by the first n/3 markers."""
    from scipy.linalg import lapack

    if parts.Wu.shape[0] != 1:
        return None
    h = float(parts.h[0])
    d = h * null.model.lam + (1.0 - h)
    if not np.all(d > 0.0):
        return None
    V = (K * h).T  # a Fortran-ordered array (K is symmetric: the transpose is V)
    V[np.diag_indices(V.shape[0])] += 1.0 - h
    L, info = lapack.dpotrf(V, lower=1, clean=1, overwrite_a=1)
    if info != 0:
        return None
    Qx = np.linalg.qr(X)[0]
    Rw = _whiten(L, U @ parts.R.T)  # (n, t): the traits' residuals, whitened
    Qw = np.linalg.qr(_whiten(L, np.array(X, dtype=float)))[0]  # the whitened covariates
    t, n = parts.R.shape[0], d.shape[0]
    wparts = FixedParts(
        h=parts.h,
        row=np.zeros(t, dtype=parts.row.dtype),
        Wu=np.ones((1, n)),
        L=parts.L,
        C=np.linalg.inv(Qw.T @ Qw)[None],
        B=np.ascontiguousarray(np.concatenate([Rw.T, Qw.T], axis=0)),
        rss0=parts.rss0,
        R=Rw.T,
    )
    return Whitening(L=L, Qx=Qx, parts=wparts)


def _whiten(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """L^-1 B for B (n, c): a triangular solve (BLAS trsm, the interpreter lock released), in
    place where B is a Fortran array of float64."""
    return solve_lower(L, np.asfortranarray(B, dtype=float))


def _fixed_setup(
    null: NullModel,
    Mt: np.ndarray,
    reml: bool,
    hsq_fixed: np.ndarray | None,
    parts: FixedParts | None,
    whiten: Whitening | None,
) -> tuple[FixedParts, np.ndarray, np.ndarray]:
    """The GEMM path's parts (``whiten``'s, the caller's, or computed here) and
    :func:`_fixed_markers` of ``Mt`` in its coordinates: rotated markers residualised on the
    rotated covariates, or, with ``whiten``, markers in the samples' own order residualised
    on the covariates (not yet whitened: :func:`_whitened`). ``(parts, testable, M)``."""
    if whiten is not None:
        ok, M = _fixed_markers(whiten.Qx, np.ascontiguousarray(Mt))
        return whiten.parts, ok, M
    if parts is None:
        parts = fixed_parts(null, fixed_hsq(null, reml, hsq_fixed))
    return parts, *_fixed_markers(null.Q, Mt)


def _whitened(M: np.ndarray, whiten: Whitening | None) -> np.ndarray:
    """The residualised markers M (m, n) in ``whiten``'s coordinates (as they are without)."""
    if whiten is None:
        return M
    return _whiten(whiten.L, M.T).T  # M (m, n) C order is M.T (n, m) Fortran order


_scratch_space = threading.local()


def _scratch(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A work array of this thread, reused from call to call (a task's large temporaries
    would otherwise be fresh pages each time, slow where ``MALLOC_TRIM_THRESHOLD_`` is set, as
    in Dask's workers)."""
    size = math.prod(shape)
    buf = getattr(_scratch_space, name, None)
    if buf is None or buf.size < size:
        buf = np.empty(size)
        setattr(_scratch_space, name, buf)
    return buf[:size].reshape(shape)


def _products(parts: FixedParts, M: np.ndarray):
    """num (t, mb), then m'Sm (u, mb) and m'SQ (p, u, mb) per distinct heritability (trait j's
    row: ``parts.row[j]``) of the markers M (mb, n), in this thread's work arrays (valid until
    its next call)."""
    mb, n = M.shape
    t = parts.row.shape[0]
    u = parts.Wu.shape[0]
    P = _scratch("products", (parts.B.shape[0], mb))
    np.matmul(parts.B, M.T, out=P)
    MM = _scratch("squares", (mb, n))
    np.multiply(M, M, out=MM)
    msm = _scratch("msm", (u, mb))
    np.matmul(parts.Wu, MM.T, out=msm)
    return P[:t], msm, P[t:].reshape(-1, u, mb)


def _fixed_stats(parts: FixedParts, num, den, n: int, p: int) -> dict[str, np.ndarray]:
    """Statistics of (trait, marker) pairs from num and den: (t,) or (t, m) arrays."""
    rss0 = parts.rss0 if np.ndim(num) == 1 else parts.rss0[:, None]
    h = parts.h if np.ndim(num) == 1 else parts.h[:, None]
    L = parts.L if np.ndim(num) == 1 else parts.L[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = num / den
        rss1 = rss0 - num * beta
        nu = n - p - 1
        sigma2 = rss1 / nu
        lrt = n * np.log(rss0 / rss1)
        return {
            "beta": beta,
            "se": np.sqrt(sigma2 / den),
            "lod": np.maximum(lrt, 0.0) / (2.0 * _LN10),
            "p_wald": _f_sf((rss0 - rss1) / sigma2, 1, nu),
            "p_lrt": _chi2_sf(lrt, 1),
            "p_score": _f_sf(n * (rss0 - rss1) / rss0, 1, nu),
            "hsq": np.broadcast_to(h, np.shape(num)).copy(),
            "loglik": -0.5 * (L + n * np.log(rss1)),
        }


def fixed_hsq(null: NullModel, reml: bool, hsq_fixed: np.ndarray | None = None) -> np.ndarray:
    """The heritabilities a fixed-hsq scan holds: the null REML (or ML) fits by default."""
    default = null.hsq_reml if reml else null.hsq_ml
    return default if hsq_fixed is None else np.asarray(hsq_fixed, dtype=float)


def grid_hsq(h: np.ndarray, step: float) -> np.ndarray:
    """Heritabilities rounded to the nearest multiple of ``step`` (at most ``HSQ_MAX``): the
    values an ``hsq_grid`` scan holds (NaN stays NaN)."""
    r = np.round(np.round(np.asarray(h, dtype=float) / step) * step, 12)
    return np.minimum(r, HSQ_MAX)


def _fixed_markers(Q: np.ndarray, Mt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-column markers residualised on Q (n, p), untestable ones zeroed:
    ``(testable, M (m, n))``."""
    Mt, _, rank = _residualise_markers(Q, Mt)
    ok = rank > 0
    M = Mt[:, 0, :]
    M[~ok] = 0.0
    return ok, M


def _fixed_blocks(parts: FixedParts, M: np.ndarray):
    """The fixed-hsq scan's GEMM blocks: ``(start, num, m'Sm, m'SQ)`` over blocks of the
    markers M (m, n)."""
    m = M.shape[0]
    return ((s, *_products(parts, M[s : s + GEMM_BLOCK])) for s in range(0, m, GEMM_BLOCK))


#: Odd 64-bit multipliers (a fixed seed) hashing a row's bit patterns in _distinct_rows.
_HASH_SEED = 20261207


def distinct_rows(M: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``M`` that differ from every earlier row, in order (the first
    of each set of identical rows; identical markers are common in crosses, where nearby
    markers share every genotype). Rows are compared bit for bit, found by a hash of their
    bit patterns (integer arithmetic, exact): a row kept that equals an earlier one would
    only cost time, a row dropped is always equal to one kept."""
    m, n = M.shape
    if m < 2:
        return np.arange(m)
    mult = np.random.default_rng(_HASH_SEED).integers(0, 2**63, n, dtype=np.uint64) * 2 + 1
    key = (np.ascontiguousarray(M).view(np.uint64) * mult).sum(axis=1)  # modulo 2^64
    order = np.argsort(key, kind="stable")
    k = key[order]
    same = np.flatnonzero(k[1:] == k[:-1])
    if not same.size:
        return np.arange(m)
    a, b = order[same], order[same + 1]  # a < b: the sort is stable
    drop = np.zeros(m, dtype=bool)
    drop[b[np.all(M[a] == M[b], axis=1)]] = True
    return np.flatnonzero(~drop)


def scan_fixed_gemm(
    null: NullModel,
    Mt: np.ndarray,
    *,
    reml: bool = True,
    hsq_fixed: np.ndarray | None = None,
    parts: FixedParts | None = None,
    whiten: Whitening | None = None,
) -> ChunkScan:
    """``scan_chunk(mode="fixed")`` for one-column markers, as matrix products (same output).

    ``parts``: :func:`fixed_parts` of the null at the held heritabilities, when the caller
    keeps them across chunks (otherwise computed here). ``whiten``: the markers ``Mt`` are
    not rotated but in the samples' own order, and the scan runs in these whitened
    coordinates (:class:`Whitening`; ``parts`` then unused)."""
    m, k, n = Mt.shape
    if k != 1:
        raise ValueError("the GEMM path takes one-column markers")
    t = null.model.t
    parts, ok, M = _fixed_setup(null, Mt, reml, hsq_fixed, parts, whiten)
    blocks = _fixed_blocks(parts, _whitened(M, whiten))
    num = np.empty((t, m))
    den = np.empty((t, m))
    for s, nb, msm, msq in blocks:
        e = s + nb.shape[1]
        num[:, s:e] = nb
        den[:, s:e] = _kernels.fixed_den(msm, msq, parts.C, parts.row)
    out = _fixed_stats(parts, num, den, n, null.model.p)
    res: dict[str, np.ndarray] = {}
    for key, val in out.items():
        val = np.ascontiguousarray(np.asarray(val, dtype=float).T)  # (m, t)
        val[~ok] = np.nan
        res[key] = val
    res["beta"] = res["beta"][..., None]
    res["se"] = res["se"][..., None]
    return _chunk(res, ok)


def scan_best(
    null: NullModel,
    Mt: np.ndarray,
    *,
    mode: str,
    reml: bool = True,
    parts: FixedParts | None = None,
    split: int | None = None,
    whiten: Whitening | None = None,
) -> tuple[np.ndarray, ChunkScan]:
    """Per trait, the marker of the chunk with the largest LOD and its statistics.

    Returns ``(index, best)``: the chunk-relative marker index of each trait (-1 where no
    marker is testable) and the tests of :func:`scan_chunk` at that marker, each (t,)
    (``beta``/``se`` (t, k); ``testable``: a marker was found). Ties go to the first marker.
    One-column markers in ``fixed`` mode never form the full (markers x traits) table:
    memory is (traits x block); ``parts`` and ``whiten`` as in :func:`scan_fixed_gemm`. Of
    identical markers only the first is tested (the others tie with it, and the first marker
    wins; they are found before whitening, which need not round identical columns alike).
    """
    _, k, n = Mt.shape
    t = null.model.t
    if mode == "fixed" and k == 1:
        parts, _, M = _fixed_setup(null, Mt, reml, None, parts, whiten)
        kept = distinct_rows(M)
        blocks = _fixed_blocks(
            parts, _whitened(M[kept] if kept.shape[0] < M.shape[0] else M, whiten)
        )  # fmt: skip
        best_q = np.full(t, -np.inf)
        best_i = np.full(t, -1, dtype=np.int64)
        best_num = np.full(t, np.nan)
        best_den = np.full(t, np.nan)
        u = parts.Wu.shape[0]
        for s, num, msm, msq in blocks:
            mb = num.shape[1]
            scratch = (_scratch("den", (u, mb)), _scratch("rden", (u, mb)))
            _kernels.best_markers(
                num, msm, msq, parts.C, parts.row, s, best_q, best_i, best_num, best_den,
                scratch=scratch,
            )  # fmt: skip
        stats = {
            key: np.asarray(v, dtype=float)
            for key, v in _fixed_stats(parts, best_num, best_den, n, null.model.p).items()
        }
        stats["beta"] = stats["beta"][:, None]
        stats["se"] = stats["se"][:, None]
        found = best_i >= 0
        return np.where(found, kept[np.maximum(best_i, 0)], -1), _chunk(stats, found)
    res = scan_chunk(null, Mt, mode=mode, reml=reml, split=split)
    lod = np.where(np.isnan(res.lod), -np.inf, res.lod)  # (m, t)
    idx = np.argmax(lod, axis=0)
    cols = np.arange(t)
    found = np.isfinite(lod[idx, cols])
    stats = {f: getattr(res, f)[idx, cols] for f in ("beta", "se", *CHUNK_STATS)}
    for val in stats.values():
        val[~found] = np.nan
    inter = None
    if res.interaction is not None:
        inter = InteractionScan(
            *(getattr(res.interaction, f)[idx, cols] for f in _INTERACTION_FIELDS)
        )
    return np.where(found, idx, -1), _chunk(stats, found, inter)
