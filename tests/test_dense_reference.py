"""Definition checks: the rotated, compiled likelihood against the dense one without rotation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

import lmmlite
from lmmlite.core.inference import CI_XTOL, hsq_second_derivative
from lmmlite.core.model import RotatedModel
from reference.dense import brute_force_fit, dense_gls, dense_loglik

#: Rotation and dense solves agree to rounding; the log likelihood is O(100), so 1e-10
#: relative leaves a margin of about 1e3 over double precision.
DENSE_RTOL = 1e-10
#: The brute-force optimiser locates hsq to 1e-10; lmmlite stops at Brent's tol (1e-9 here)
#: and a maximum's location is only determined to about sqrt(eps) ~ 1e-8 by function values.
BRUTE_HSQ_ATOL = 1e-6
#: Rounding error of one dense log likelihood (Cholesky of a 60 x 60 covariance whose condition
#: number is below 1/(0.02 (1 - h)), then a log density): a few thousand eps relative, bounded
#: here by 1e-12; it sets the accuracy of finite differences of the dense likelihood.
DENSE_LOGLIK_RTOL = 1e-12
HSQ_GRID = np.array([0.0, 1e-6, 0.05, 0.2, 0.37, 0.5, 0.81, 0.99, 1.0 - 1e-9, 1.0])


@pytest.mark.parametrize("engine", ["fast", "reference"])
@pytest.mark.parametrize("reml", [True, False])
def test_calc_ll__equals_dense_likelihood(small_problem, engine, reml):
    K, Y, X = small_problem
    e = lmmlite.eigen_rotation(K, Y, X)
    got = lmmlite.calc_ll(HSQ_GRID, e.Kva, e.y, e.X, reml=reml, engine=engine)
    assert got.shape == (HSQ_GRID.size, Y.shape[1])
    for j in range(Y.shape[1]):
        want = [dense_loglik(h, K, Y[:, j], X, reml=reml) for h in HSQ_GRID]
        np.testing.assert_allclose(got[:, j], want, rtol=DENSE_RTOL, atol=0)


def test_calc_ll__large_mean_phenotype_stays_accurate(small_problem):
    # y with mean 1e6 and sd ~1: without residualising on the covariates first, the weighted
    # sums would cancel 12 digits
    K, Y, X = small_problem
    y = Y[:, 0] + 1e6
    e = lmmlite.eigen_rotation(K, y, X)
    for h in (0.1, 0.6, 0.95):
        assert lmmlite.calc_ll(h, e.Kva, e.y, e.X) == pytest.approx(
            dense_loglik(h, K, y, X, reml=True), rel=DENSE_RTOL
        )


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_get_ml_soln__equals_dense_gls(small_problem, engine):
    K, Y, X = small_problem
    e = lmmlite.eigen_rotation(K, Y[:, 1], X)
    n, p = X.shape
    for h in (0.0, 0.3, 0.9):
        sol = lmmlite.get_ml_soln(h, e.Kva, e.y, e.X, engine=engine)
        g = dense_gls(h, K, Y[:, 1], X)
        np.testing.assert_allclose(sol.beta, g["beta"], rtol=1e-10)
        assert sol.rss == pytest.approx(g["rss"], rel=1e-10)
        assert sol.sigmasq == pytest.approx(g["rss"] / (n - p), rel=1e-10)
        assert sol.logdet_XSX == pytest.approx(np.linalg.slogdet(g["XViX"])[1], rel=1e-10)


@pytest.mark.parametrize("reml", [True, False])
def test_fit_lmm__agrees_with_brute_force_optimiser(small_problem, reml):
    K, Y, X = small_problem
    e = lmmlite.eigen_rotation(K, Y, X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        fit = lmmlite.fit_lmm(e.Kva, e.y, e.X, reml=reml, tol=1e-9)
    for j in range(Y.shape[1]):
        h, ll = brute_force_fit(K, Y[:, j], X, reml=reml)
        assert fit.hsq[j] == pytest.approx(h, abs=BRUTE_HSQ_ATOL)
        assert fit.loglik[j] == pytest.approx(ll, rel=1e-10)
        g = dense_gls(fit.hsq[j], K, Y[:, j], X)
        np.testing.assert_allclose(fit.beta[j], g["beta"], rtol=1e-9)


def _simulated(hsq: float, seed: int, n: int = 80):
    rng = np.random.default_rng(seed)
    G = rng.binomial(2, 0.3, size=(n, 200)).astype(float)
    G -= G.mean(axis=0)
    K = G @ G.T / 200 + 0.02 * np.eye(n)
    X = np.column_stack([np.ones(n), rng.standard_normal((n, 2))])
    V = hsq * K + (1 - hsq) * np.eye(n)
    y = X @ [1.0, 0.5, -0.5] + np.linalg.cholesky(V) @ rng.standard_normal(n)
    return K, y, X


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize(("hsq", "seed"), [(0.3, 1), (0.6, 2), (0.8, 3), (0.5, 4)])
def test_hsq_second_derivative__equals_numerical_curvature(hsq, seed, reml):
    K, y, X = _simulated(hsq, seed)
    e = lmmlite.eigen_rotation(K, y, X)
    model = RotatedModel(e.Kva, e.y[:, None], e.X)
    step = 1e-3

    def second_difference(h: float, s: float) -> float:
        f = [dense_loglik(h + k * s, K, y, X, reml=reml) for k in (-1, 0, 1)]
        return (f[0] - 2 * f[1] + f[2]) / s**2

    for h in (0.2, 0.5, 0.7):
        d2 = hsq_second_derivative(model, np.array([h]), np.array([0]), reml)[0]
        # Richardson extrapolation of second differences with steps s and 2s: truncation
        # O(s^4) ~ 1e-12; rounding of the dense log likelihood (DENSE_LOGLIK_RTOL x |l|)
        # divided by s^2, times (4 x 4 + 4 / 4) / 3 < 6. The curvature itself may be near
        # zero, so the tolerance is that absolute error bound, not a relative one.
        numeric = (4 * second_difference(h, step) - second_difference(h, 2 * step)) / 3
        ll = abs(dense_loglik(h, K, y, X, reml=reml))
        tol = 6 * DENSE_LOGLIK_RTOL * ll / step**2 + 1e-6 * abs(numeric)
        assert abs(d2 - numeric) <= tol


def test_hsq_inference__profile_interval_ends_hit_the_chi_square_cut(small_problem):
    K, Y, X = small_problem
    e = lmmlite.eigen_rotation(K, Y, X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        fit = lmmlite.fit_lmm(e.Kva, e.y, e.X, tol=1e-10)
    inf = lmmlite.hsq_inference(e.Kva, e.y, e.X, fit, level=0.9)
    q = stats.chi2.ppf(0.9, 1)
    for j in range(Y.shape[1]):
        lo, hi = inf.hsq_ci_lower[j], inf.hsq_ci_upper[j]
        assert lo <= fit.hsq[j] <= hi
        for end, bound in ((lo, 0.0), (hi, 1.0)):
            drop = 2 * (fit.loglik[j] - dense_loglik(end, K, Y[:, j], X, reml=True))
            if end == bound:
                assert drop <= q  # the bound itself is inside the interval
            else:
                # the slope of 2*drop is O(10-100) per unit hsq; ends are within CI_XTOL
                assert drop == pytest.approx(q, abs=200 * CI_XTOL)


def test_profile_root__an_exact_hit_closes_the_bracket():
    """A step landing exactly on the root ends the search with the bracket on it (it used to
    keep the far end: an interval end off by up to the bracket's width)."""
    from lmmlite.core.inference import _root

    def g(x, _):
        return x - 0.25  # the first secant step from (0, -0.25), (1, 0.75) is 0.25 exactly

    lo, hi = _root(g, np.zeros(2), np.ones(2), np.full(2, -0.25), np.full(2, 0.75))
    assert list(lo) == [0.25, 0.25] and list(hi) == [0.25, 0.25]


def test_hsq_inference__lrt_uses_the_boundary_mixture(small_problem):
    K, Y, X = small_problem
    e = lmmlite.eigen_rotation(K, Y[:, 0], X)
    fit = lmmlite.fit_lmm(e.Kva, e.y, e.X, tol=1e-10)
    inf = lmmlite.hsq_inference(e.Kva, e.y, e.X, fit)
    stat = 2 * (fit.loglik - dense_loglik(0.0, K, Y[:, 0], X, reml=True))
    assert inf.lrt_stat == pytest.approx(stat, rel=1e-9)
    assert inf.lrt_pvalue == pytest.approx(0.5 * stats.chi2.sf(stat, 1), rel=1e-9)
    assert inf.hsq_se == pytest.approx(
        1
        / np.sqrt(
            -hsq_second_derivative(
                RotatedModel(e.Kva, e.y[:, None], e.X), np.array([fit.hsq]), np.array([0]), True
            )[0]
        )
    )


def test_hsq_inference__estimate_at_zero_gives_p_one_and_no_se():
    rng = np.random.default_rng(5)
    n = 60
    G = rng.binomial(2, 0.5, size=(n, 100)).astype(float)
    G -= G.mean(axis=0)
    K = G @ G.T / 100 + 0.05 * np.eye(n)
    X = np.ones((n, 1))
    for seed in range(50):  # find pure-noise data whose REML estimate is exactly 0
        y = np.random.default_rng(seed).standard_normal(n)
        e = lmmlite.eigen_rotation(K, y, X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
            fit = lmmlite.fit_lmm(e.Kva, e.y, e.X)
        if fit.hsq == 0.0:
            break
    else:
        pytest.fail("no boundary estimate found")
    assert fit.at_boundary
    inf = lmmlite.hsq_inference(e.Kva, e.y, e.X, fit)
    assert inf.lrt_stat == 0.0 and inf.lrt_pvalue == 1.0
    assert np.isnan(inf.hsq_se) and inf.hsq_ci_lower == 0.0 and 0 < inf.hsq_ci_upper <= 1
