r"""The fast engine: profile likelihood of many traits, each at its own heritability.

A :class:`RotatedModel` is built once from the rotated covariates and phenotypes of traits
that share a kinship (and a missing-data pattern) and then evaluated at any vector of
heritabilities, one per trait.

Notes
-----
With the rotated covariates factored as :math:`X = QR` (:math:`Q^\top Q = I`), every quantity
R/lmmlite computes from :math:`X^\top S X` follows from the small Gram matrix of
:math:`Z = [Q, y]`:

.. math::

    \mathrm{rss}(h) = y^\top S y - y^\top S Q (Q^\top S Q)^{-1} Q^\top S y, \qquad
    \log\det X^\top S X = \log\det Q^\top S Q + \log\det X^\top X,

and :math:`\hat\beta = R^{-1} \hat\beta_Q`. ``rss`` is unchanged when :math:`y` is replaced by
its ordinary least-squares residual on :math:`Q`, which is done once up front: the weighted sums
then no longer cancel large intercept terms, which keeps the log likelihood accurate to about
1e-13 relative even for phenotypes with a large mean.
"""

from __future__ import annotations

import numpy as np

from . import _kernels
from .brent import BrentResult
from .results import BatchFit, GLSSolution

__all__ = ["RotatedModel"]


class RotatedModel:
    """Rotated data of traits sharing one kinship eigendecomposition.

    Parameters
    ----------
    Kva : (n,)
        Kinship eigenvalues (non-negative).
    y : (n, t)
        Rotated phenotypes.
    X : (n, p)
        Rotated covariates, full column rank.

    Attributes
    ----------
    lam : (n,)
        The eigenvalues.
    Q : (p, n)
        Orthonormal basis of the covariates' column space, one basis vector per row.
    R : (p, p)
        ``X = Q' R``.
    Yt : (t, n)
        The phenotypes' residuals on ``Q``, trait by trait.
    coef_q : (p, t)
        Their least-squares coefficients on ``Q``.
    sumsq : (2, t)
        Sums of squares of the phenotypes (row 0) and of their residuals (row 1), for the
        checks (NaN or infinite in row 0 where a phenotype is).
    """

    def __init__(self, Kva: np.ndarray, y: np.ndarray, X: np.ndarray) -> None:
        n, p = X.shape
        self.n = n
        self.p = p
        self.t = y.shape[1]
        self.lam = np.ascontiguousarray(Kva, dtype=float)
        Q, R = np.linalg.qr(X)
        self.R = R
        self.logdet_XpX = float(2.0 * np.sum(np.log(np.abs(np.diag(R)))))
        self.Q = np.ascontiguousarray(Q.T)
        # Least-squares coefficients on Q (p, t) and residuals stored trait by trait (t, n);
        # cheapest when y is F-ordered (y.T contiguous)
        self.coef_q, self.Yt, self.sumsq = _kernels.residualise(y.T, Q.T)
        self._Mt = np.empty((1, 0, n))
        self._logdet_mm = np.zeros(1)

    def loglik(self, h: np.ndarray, items: np.ndarray, reml: bool) -> np.ndarray:
        """Log likelihood of traits ``items`` at heritabilities ``h`` (same length)."""
        h = np.ascontiguousarray(h, dtype=float)
        items = np.ascontiguousarray(items, dtype=np.int64)
        return _kernels.loglik_items(
            h,
            items,
            np.zeros(items.shape[0], dtype=np.int64),
            self.lam,
            self.Q,
            self.Yt,
            self._Mt,
            self._logdet_mm,
            reml,
        )

    def search(
        self, reml: bool, tol: float, upper: float = 1.0, ends: bool = False
    ) -> tuple[BrentResult, tuple[np.ndarray, np.ndarray] | None]:
        """Brent's search of every trait's hsq on [0, upper] (R's iteration, all traits
        together: see :func:`lmmlite.core._kernels.fit_items`), and with ``ends`` the log
        likelihoods at 0 and ``upper``."""
        out = self._search(reml, tol, upper, ends, grams=False)
        res = BrentResult(x=out[0], fx=out[1], n_eval=out[2], converged=out[3])
        return res, (out[4], out[5]) if ends else None

    def _search(self, reml: bool, tol: float, upper: float, ends: bool, grams: bool) -> tuple:
        t = self.t
        return _kernels.fit_items(
            np.arange(t),
            np.zeros(t, dtype=np.int64),
            self.lam,
            self.Q,
            self.Yt,
            self._Mt,
            self._logdet_mm,
            reml,
            0.0,
            upper,
            tol,
            ends=ends,
            grams=grams,
        )

    def fit(self, reml: bool, check_boundary: bool, tol: float, upper: float = 1.0) -> BatchFit:
        """Maximum (restricted) likelihood of every trait's hsq on [0, upper]: Brent's search,
        then, with ``check_boundary``, a bound taken where its likelihood is strictly better
        (as R/lmmlite's C++ ``fitLMM``)."""
        t = self.t
        *out, (G, L) = self._search(reml, tol, upper, check_boundary, grams=True)
        hsq = out[0].copy()
        loglik = -out[1]
        n_eval = out[2].copy()
        at = np.zeros(t, dtype=np.int64)  # where each trait's estimate is: x, lower, upper
        if check_boundary:
            for side, (edge, ll_edge) in enumerate(zip((0.0, upper), out[4:], strict=True)):
                n_eval += 1
                better = ll_edge > loglik
                hsq[better] = edge
                loglik[better] = ll_edge[better]
                at[better] = side + 1
        items = np.arange(t)
        # the Grams there, as evaluated in the search: gram_items' numbers without its pass
        sol = self._solve(G[at, items], L[at, items], items)
        return BatchFit(
            hsq=hsq,
            loglik=loglik,
            beta=sol.beta,
            sigmasq=sol.rss / (self.n - self.p),
            converged=out[3] & np.isfinite(loglik),
            n_eval=n_eval,
        )

    def solution(self, h: np.ndarray, items: np.ndarray) -> GLSSolution:
        """Generalised least squares of traits ``items`` at heritabilities ``h``."""
        h = np.ascontiguousarray(h, dtype=float)
        items = np.ascontiguousarray(items, dtype=np.int64)
        G, L = _kernels.gram_items(
            h,
            items,
            np.zeros(items.shape[0], dtype=np.int64),
            self.lam,
            self.Q,
            self.Yt,
            self._Mt,
        )
        return self._solve(G, L, items)

    def _solve(self, G: np.ndarray, L: np.ndarray, items: np.ndarray) -> GLSSolution:
        """:meth:`solution` from the Grams (m, p + 1, p + 1) and sums of log d (m,) of traits
        ``items``."""
        p = self.p
        A = G[:, :p, :p]
        b = G[:, :p, p]
        C = np.linalg.cholesky(A)
        z = np.linalg.solve(C, b[..., None])[..., 0]
        bq = np.linalg.solve(np.swapaxes(C, 1, 2), z[..., None])[..., 0]
        rss = G[:, p, p] - np.sum(z * z, axis=1)
        logdet_qsq = 2.0 * np.sum(np.log(np.diagonal(C, axis1=1, axis2=2)), axis=1)
        coef = bq + self.coef_q[:, items].T  # coefficients on Q of the original y
        beta = np.linalg.solve(self.R, coef.T).T
        return GLSSolution(beta=beta, rss=rss, logdet_XSX=logdet_qsq + self.logdet_XpX, sum_log_d=L)
