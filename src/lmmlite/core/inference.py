r"""Uncertainty of the heritability: exact curvature, profile interval, likelihood-ratio test.

Notes
-----
Write :math:`d_i = h\lambda_i + 1 - h`, :math:`s_i = 1/d_i`, :math:`a_i = \lambda_i - 1`
(so :math:`d_i' = a_i`), :math:`S = \mathrm{diag}(s)`, :math:`A = \mathrm{diag}(a)`,
:math:`M = X^\top S X`, :math:`P = S - S X M^{-1} X^\top S` and :math:`r = y - X\hat\beta`.
Since :math:`dP/dh = -PAP`,

.. math::

    \mathrm{rss}' = -\sum_i a_i s_i^2 r_i^2, \qquad
    \mathrm{rss}'' = 2\, u^\top P u, \quad u_i = a_i s_i r_i,

and with :math:`B = X^\top \mathrm{diag}(a s^2) X`, :math:`C = X^\top \mathrm{diag}(a^2 s^3) X`,
:math:`(\log\det M)'' = 2\,\mathrm{tr}(M^{-1}C) - \mathrm{tr}\big((M^{-1}B)^2\big)`. The profile
log likelihoods (R/lmmlite's, constants dropped) then have second derivatives

.. math::

    \ell_{ML}'' = -\tfrac12\Big[-\sum_i a_i^2 s_i^2
        + n\,\Delta\Big], \qquad
    \Delta = \frac{\mathrm{rss}''}{\mathrm{rss}} - \Big(\frac{\mathrm{rss}'}{\mathrm{rss}}\Big)^2,

    \ell_{REML}'' = -\tfrac12\Big[-\sum_i a_i^2 s_i^2
        + (n-p)\,\Delta
        + 2\,\mathrm{tr}(M^{-1}C) - \mathrm{tr}\big((M^{-1}B)^2\big)\Big],

and :math:`\mathrm{se}(\hat h) = (-\ell''(\hat h))^{-1/2}`. Any basis of the column space of
:math:`X` gives the same values; the orthonormal one of the fast engine is used.

The profile-likelihood interval is :math:`\{h \in [0, 1] : 2(\ell(\hat h) - \ell(h)) \le
\chi^2_{1}(\text{level})\}`; an end is 0 or 1 when the bound itself lies inside. The LRT of
:math:`h = 0` compares :math:`2(\ell(\hat h) - \ell(0))` with the 50:50 mixture of
:math:`\chi^2_0` and :math:`\chi^2_1` (Self & Liang 1987), since :math:`h = 0` lies on the
boundary of the parameter space.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from .model import RotatedModel

__all__ = ["hsq_lrt", "hsq_profile_ci", "hsq_se", "hsq_second_derivative"]

#: Traits per block in the O(t n) vectorised second derivative (bounds temporary memory).
_BLOCK = 2048
#: The profile interval's ends are located to this accuracy in hsq.
CI_XTOL = 1e-7
_CI_MAXITER = 200


def _chi2_1_sf(x: np.ndarray) -> np.ndarray:
    """Upper tail of chi-square(1): P(Z^2 > x) = erfc(sqrt(x / 2)) (scipy.stats imports slowly)."""
    return special.erfc(np.sqrt(np.asarray(x, dtype=float) / 2.0))


def _chi2_1_ppf(level: float) -> float:
    """Quantile of chi-square(1): (sqrt(2) erfinv(level))^2."""
    return float(2.0 * special.erfinv(level) ** 2)


def hsq_second_derivative(
    model: RotatedModel, hsq: np.ndarray, items: np.ndarray, reml: bool
) -> np.ndarray:
    """Exact second derivative of the profile log likelihood at ``hsq`` (one per item)."""
    out = np.empty(items.shape[0])
    lam = model.lam
    a = lam - 1.0
    Q = np.ascontiguousarray(model.Q.T)  # (n, p)
    n, p = model.n, model.p
    for j0 in range(0, items.shape[0], _BLOCK):
        sl = slice(j0, j0 + _BLOCK)
        h = hsq[sl][:, None]
        idx = items[sl]
        s = 1.0 / (h * lam + 1.0 - h)  # (m, n)
        y = model.Yt[idx]  # residualised on Q: r = y - Q bq
        M = np.einsum("ni,mi,ik->mnk", Q.T, s, Q, optimize=True)
        Msy = np.einsum("ni,mi->mn", Q.T, s * y)
        bq = np.linalg.solve(M, Msy[..., None])[..., 0]
        r = y - bq @ Q.T
        rss = np.sum(s * r * r, axis=1)
        d_rss = -np.sum(a * s * s * r * r, axis=1)
        u = a * s * r
        Mu = np.einsum("ni,mi->mn", Q.T, s * u)
        uPu = np.sum(s * u * u, axis=1) - np.einsum(
            "mn,mn->m", Mu, np.linalg.solve(M, Mu[..., None])[..., 0]
        )
        d2_rss = 2.0 * uPu
        sum_a2s2 = np.sum((a * s) ** 2, axis=1)
        core = d2_rss / rss - (d_rss / rss) ** 2
        if reml:
            B = np.einsum("ni,mi,ik->mnk", Q.T, a * s * s, Q, optimize=True)
            C = np.einsum("ni,mi,ik->mnk", Q.T, a * a * s**3, Q, optimize=True)
            MiB = np.linalg.solve(M, B)
            MiC = np.linalg.solve(M, C)
            tr_c = np.trace(MiC, axis1=1, axis2=2)
            tr_bb = np.einsum("mij,mji->m", MiB, MiB)
            out[sl] = -0.5 * (-sum_a2s2 + (n - p) * core + 2.0 * tr_c - tr_bb)
        else:
            out[sl] = -0.5 * (-sum_a2s2 + n * core)
    return out


def hsq_se(d2: np.ndarray, interior: np.ndarray) -> np.ndarray:
    r"""Standard error :math:`(-\ell'')^{-1/2}` from the curvature ``d2`` at the estimates; NaN
    where the estimate is not ``interior`` (at a boundary the curvature is not a standard
    error) or the curvature is not negative."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(interior & (d2 < 0), np.sqrt(-1.0 / d2), np.nan)


def hsq_lrt(
    model: RotatedModel, loglik: np.ndarray, items: np.ndarray, reml: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Likelihood-ratio statistic and boundary-aware p-value of hsq = 0."""
    ll0 = model.loglik(np.zeros(items.shape[0]), items, reml)
    stat = np.maximum(2.0 * (loglik - ll0), 0.0)
    pval = np.where(stat > 0.0, 0.5 * _chi2_1_sf(stat), 1.0)
    pval = np.where(np.isfinite(stat), pval, np.nan)
    return stat, pval


def _root(g, lo, hi, glo, ghi):
    """Vectorised bracketed root of ``g`` by the Illinois method (regula falsi that halves the
    value kept at an end replaced twice on the other side); bisection where an end value is
    not finite. Returns the final bracket (lo, hi).
    """
    lo, hi, glo, ghi = (np.array(v, dtype=float) for v in (lo, hi, glo, ghi))
    side = np.zeros(lo.shape[0], dtype=np.int8)
    active = np.flatnonzero(np.abs(hi - lo) > CI_XTOL)
    for _ in range(_CI_MAXITER):
        if active.size == 0:
            break
        L, H, GL, GH, SD = lo[active], hi[active], glo[active], ghi[active], side[active]
        finite = np.isfinite(GL) & np.isfinite(GH) & (GL != GH)
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.where(finite, (L * GH - H * GL) / (GH - GL), 0.5 * (L + H))
        inside = (x > np.minimum(L, H)) & (x < np.maximum(L, H))
        x = np.where(inside, x, 0.5 * (L + H))
        gx = g(x, active)
        new_lo = np.sign(gx) == np.sign(GL)
        hit = gx == 0  # x is the root: the bracket closes on it
        lo[active] = np.where(new_lo | hit, x, L)
        hi[active] = np.where(new_lo & ~hit, H, x)
        glo[active] = np.where(new_lo, gx, np.where(SD == -1, 0.5 * GL, GL))
        ghi[active] = np.where(new_lo, np.where(SD == 1, 0.5 * GH, GH), gx)
        side[active] = np.where(new_lo, 1, -1)
        done = (np.abs(hi[active] - lo[active]) <= CI_XTOL) | (gx == 0)
        active = active[~done]
    return lo, hi


def hsq_profile_ci(
    model: RotatedModel,
    hsq: np.ndarray,
    loglik: np.ndarray,
    items: np.ndarray,
    reml: bool,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Profile-likelihood interval of hsq within [0, 1] (one per item)."""
    m = items.shape[0]
    cut = loglik - 0.5 * _chi2_1_ppf(level)

    def g(x: np.ndarray, sub: np.ndarray) -> np.ndarray:
        ll = model.loglik(x, items[sub], reml)
        return np.where(np.isnan(ll), -np.inf, ll) - cut[sub]

    all_ = np.arange(m)
    g0 = g(np.zeros(m), all_)
    g1 = g(np.ones(m), all_)
    ghat = np.maximum(loglik - cut, 0.0)  # = half the chi-square quantile
    lower = np.zeros(m)
    upper = np.ones(m)
    need = np.flatnonzero(g0 < 0)
    if need.size:
        # bracket [0, hsq]: g(0) < 0 <= g(hsq); the root is where g crosses 0
        lo, hi = _root(
            lambda x, s: g(x, need[s]), np.zeros(need.size), hsq[need], g0[need], ghat[need]
        )
        lower[need] = np.minimum(lo, hi)
    need = np.flatnonzero(g1 < 0)
    if need.size:
        lo, hi = _root(
            lambda x, s: g(x, need[s]), hsq[need], np.ones(need.size), ghat[need], g1[need]
        )
        upper[need] = np.maximum(lo, hi)
    bad = ~np.isfinite(loglik)
    lower[bad] = np.nan
    upper[bad] = np.nan
    return lower, upper
