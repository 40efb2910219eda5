"""Brent's minimiser: the same iterates as R's optimize, scalar (the reference engine's) and in
lockstep over many items (the NumPy twin of the compiled search; the compiled search itself is
held to the twin in test_kernels.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmmlite.core._kernels import brent_lockstep
from lmmlite.core.brent import brent_fmin


def _f(x: float) -> float:
    return math.sin(3 * x) + (x - 0.4) ** 2


@pytest.mark.parametrize(
    ("tol", "r_minimum"),
    [
        # R: o <- optimize(function(x) sin(3*x) + (x-0.4)^2, c(0,1), tol=tol)
        #    sprintf("%.17g", o$minimum)
        (1e-4, 6.6106961351896086e-05),
        (1e-8, 3.7376859853623659e-09),
    ],
)
def test_brent_fmin__reproduces_r_optimize_digits(tol, r_minimum):
    # same arithmetic in the same order as R's Brent_fmin: identical to the last bit or two
    assert brent_fmin(_f, 0.0, 1.0, tol) == pytest.approx(r_minimum, rel=1e-12)


def test_brent_fmin__interior_minimum_within_tol():
    # R: optimize(function(x) -dbeta(x, 3, 5), c(0, 1), tol=1e-6)$minimum = 0.33333332884438649
    x = brent_fmin(lambda x: -(x**2) * (1 - x) ** 4, 0.0, 1.0, 1e-6)
    assert x == pytest.approx(0.33333332884438649, abs=1e-6)
    assert x == pytest.approx(1 / 3, abs=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    centres=st.lists(st.floats(-0.5, 1.5), min_size=1, max_size=20),
    tol=st.sampled_from([1e-3, 1e-4, 1e-6, 1e-8]),
)
def test_brent_lockstep__identical_to_scalar_per_item(centres, tol):
    funcs = [
        (lambda x, c=c: (x - c) ** 2 * (1 + math.sin(5 * x) ** 2) + 0.1 * math.cos(9 * x))
        for c in centres
    ]

    def batch(x, idx):
        return np.array([funcs[i](float(v)) for i, v in zip(idx, x, strict=True)])

    x, fx, _, converged = brent_lockstep(batch, len(funcs), 0.0, 1.0, tol)
    scalar = np.array([brent_fmin(f, 0.0, 1.0, tol) for f in funcs])
    np.testing.assert_array_equal(x, scalar)
    assert converged.all()
    np.testing.assert_array_equal(fx, [f(v) for f, v in zip(funcs, scalar, strict=True)])


def test_brent_lockstep__infinite_values_are_avoided():
    # +inf (lmmlite's stand-in for an undefined likelihood) right of 0.9: the search stays left
    def f(x, idx):
        return np.where(x > 0.9, np.inf, (x - 0.95) ** 2)

    x = brent_lockstep(f, 3, 0.0, 1.0, 1e-8)[0]
    assert np.all(x <= 0.9) and np.all(x > 0.9 - 1e-6)
    assert brent_fmin(lambda v: math.inf if v > 0.9 else (v - 0.95) ** 2, 0, 1, 1e-8) == x[0]
