"""Invariants checked with Hypothesis."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import lmmlite

#: At tol = 1e-8 the estimate is determined to ~1e-6 by the likelihood's flatness; rounding
#: differences of a permuted or rescaled problem may change Brent's last steps within that.
HSQ_ATOL = 1e-6
LOGLIK_RTOL = 1e-10

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _problem(seed: int, n: int = 30, t: int = 2, p: int = 2):
    rng = np.random.default_rng(seed)
    G = rng.binomial(2, rng.uniform(0.1, 0.9, 80), size=(n, 80)).astype(float)
    G -= G.mean(axis=0)
    K = G @ G.T / 80 + 0.01 * np.eye(n)
    X = np.column_stack([np.ones(n), rng.standard_normal((n, p - 1))])
    h = rng.uniform(0.1, 0.9)
    Y = (X @ rng.standard_normal((p, t))) + np.linalg.cholesky(
        h * K + (1 - h) * np.eye(n)
    ) @ rng.standard_normal((n, t))
    return K, Y, X


def _fit(K, Y, X, **kw):
    e = lmmlite.eigen_rotation(K, Y, X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        return lmmlite.fit_lmm(e.Kva, e.y, e.X, tol=1e-8, **kw)


@SETTINGS
@given(seed=st.integers(0, 10_000), perm_seed=st.integers(0, 10_000), reml=st.booleans())
def test_fit_lmm__permuting_samples_changes_nothing(seed, perm_seed, reml):
    K, Y, X = _problem(seed)
    perm = np.random.default_rng(perm_seed).permutation(K.shape[0])
    a = _fit(K, Y, X, reml=reml)
    b = _fit(K[np.ix_(perm, perm)], Y[perm], X[perm], reml=reml)
    np.testing.assert_allclose(b.hsq, a.hsq, rtol=0, atol=HSQ_ATOL)
    np.testing.assert_allclose(b.loglik, a.loglik, rtol=LOGLIK_RTOL)
    np.testing.assert_allclose(b.beta, a.beta, rtol=1e-5, atol=1e-8)


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    scale=st.floats(1e-3, 1e3).flatmap(lambda v: st.sampled_from([v, -v])),
    shift=st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=2),
    reml=st.booleans(),
)
def test_fit_lmm__affine_phenotype_change(seed, scale, shift, reml):
    # y -> a y + X c: hsq unchanged, sigmasq * a^2, beta -> a beta + c, and the log likelihood
    # shifts by -(n - p) log|a| (REML) or -n log|a| (ML)
    K, Y, X = _problem(seed, t=1)
    y = Y[:, 0]
    c = np.asarray(shift)
    a = _fit(K, y, X, reml=reml)
    b = _fit(K, scale * y + X @ c, X, reml=reml)
    n, p = X.shape
    assert b.hsq == pytest.approx(a.hsq, abs=HSQ_ATOL)
    assert b.sigmasq == pytest.approx(scale**2 * a.sigmasq, rel=1e-5)
    np.testing.assert_allclose(
        b.beta, scale * a.beta + c, rtol=1e-5, atol=1e-6 * (abs(scale) + np.abs(c).max())
    )
    df = (n - p) if reml else n
    assert b.loglik == pytest.approx(a.loglik - df * np.log(abs(scale)), rel=1e-9, abs=1e-9)


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    t=st.integers(1, 9),
    reml=st.booleans(),
    tol=st.sampled_from([1e-4, 1e-8]),
)
def test_fit_lmm__batched_equals_one_at_a_time(seed, t, reml, tol):
    K, Y, X = _problem(seed, t=t)
    e = lmmlite.eigen_rotation(K, Y, X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        batch = lmmlite.fit_lmm(e.Kva, e.y, e.X, reml=reml, tol=tol)
        for j in range(t):
            one = lmmlite.fit_lmm(e.Kva, e.y[:, j], e.X, reml=reml, tol=tol)
            # same rotated data, same per-trait arithmetic: identical, not merely close
            assert one.hsq == batch.hsq[j]
            assert one.loglik == batch.loglik[j]
            assert one.n_eval == batch.n_eval[j]
            np.testing.assert_allclose(one.beta, batch.beta[j], rtol=1e-12)


@SETTINGS
@given(seed=st.integers(0, 10_000), data=st.data())
def test_heritability__row_order_of_each_input_is_irrelevant(seed, data):
    K, Y, X = _problem(seed, t=3, p=2)
    n = K.shape[0]
    rng = np.random.default_rng(seed)
    Y[rng.random(Y.shape) < 0.15] = np.nan  # missing values: several patterns
    assume(np.all(np.sum(~np.isnan(Y), axis=0) > 5))
    ids = [f"m{i:03d}" for i in range(n)]
    Kdf = pd.DataFrame(K, index=ids, columns=ids)
    Pdf = pd.DataFrame(Y, index=ids, columns=["a", "b", "c"])
    Cdf = pd.DataFrame(X[:, 1:], index=ids, columns=["x"])
    pk, pp, pc, pcol = (data.draw(st.permutations(range(n))) for _ in range(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        ref = lmmlite.heritability(Kdf, Pdf, Cdf, tol=1e-8)
        got = lmmlite.heritability(Kdf.iloc[pk, pcol], Pdf.iloc[pp], Cdf.iloc[pc], tol=1e-8)
    assert list(got.index) == ["a", "b", "c"]
    np.testing.assert_array_equal(got["n"], ref["n"])
    np.testing.assert_allclose(got["hsq"], ref["hsq"], rtol=0, atol=HSQ_ATOL)
    np.testing.assert_allclose(got["loglik"], ref["loglik"], rtol=LOGLIK_RTOL)
