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
from .brent import GOLDEN, SQRT_EPS, BrentResult, brent_fmin_lockstep

__all__ = ["RotatedModel"]


class RotatedModel:
    """Rotated data of traits sharing one kinship eigendecomposition (internal).

    Parameters
    ----------
    Kva : (n,)
        Kinship eigenvalues (non-negative).
    y : (n, t)
        Rotated phenotypes.
    X : (n, p)
        Rotated covariates, full column rank.
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
        self.qcols = tuple(np.ascontiguousarray(Q[:, k]) for k in range(p))
        # Least-squares coefficients on Q (p, t) and residuals stored trait by trait (t, n);
        # cheapest when y is F-ordered (y.T contiguous)
        self.coef_q, self.Yt = _kernels.residualise(y.T, Q.T)
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
            self.qcols,
            self.Yt,
            self._Mt,
            self._logdet_mm,
            reml,
        )

    def search(self, reml: bool, tol: float, upper: float = 1.0) -> BrentResult:
        """Brent's search of every trait's hsq on [0, upper] (R's iteration, all traits together:
        compiled, in lockstep within cache-sized blocks; or NumPy lockstep without numba)."""
        t = self.t
        if _kernels.HAVE_NUMBA:
            x, fx, n_eval, done = _kernels.fit_items(
                np.arange(t),
                np.zeros(t, dtype=np.int64),
                self.lam,
                self.qcols,
                self.Yt,
                self._Mt,
                self._logdet_mm,
                reml,
                0.0,
                upper,
                tol,
                SQRT_EPS,
                GOLDEN,
            )
            return BrentResult(x=x, fx=fx, n_eval=n_eval, converged=done)

        def objective(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
            ll = self.loglik(x, idx, reml)
            return np.where(np.isnan(ll), np.inf, -ll)

        return brent_fmin_lockstep(objective, t, 0.0, upper, tol)

    def solution(self, h: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
        """beta (m, p), rss, logdet_XSX, sum log d and the Cholesky factor of Q'SQ."""
        h = np.ascontiguousarray(h, dtype=float)
        items = np.ascontiguousarray(items, dtype=np.int64)
        G, L = _kernels.gram_items(
            h,
            items,
            np.zeros(items.shape[0], dtype=np.int64),
            self.lam,
            self.qcols,
            self.Yt,
            self._Mt,
        )
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
        return {
            "beta": beta,
            "rss": rss,
            "logdet_XSX": logdet_qsq + self.logdet_XpX,
            "sum_log_d": L,
        }
