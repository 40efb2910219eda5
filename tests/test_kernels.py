"""The numba kernels against their NumPy twins (each public function of lmmlite.core._kernels
with ``use_numba=True`` and ``False``) and against plain formulas."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmmlite.core import _kernels

pytestmark = pytest.mark.skipif(not _kernels.NUMBA_ENABLED, reason="numba kernels disabled")


def _data(n, p, k, t, m_markers, seed=0, lam=None):
    rng = np.random.default_rng(seed)
    if lam is None:
        lam = np.sort(rng.uniform(0, 3, n))[::-1].copy()
    Q = np.linalg.qr(rng.standard_normal((n, p)))[0] if p else np.empty((n, 0))
    Yt = rng.standard_normal((t, n))
    Mt = rng.standard_normal((m_markers, k, n))
    logdet_mm = rng.standard_normal(m_markers)
    return lam, np.ascontiguousarray(Q.T), Yt, Mt, logdet_mm


@pytest.mark.parametrize(("p", "k"), [(1, 0), (2, 0), (3, 0), (1, 1), (2, 2), (3, 2), (4, 3)])
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("m", [5, 700])  # serial and parallel builds
def test_loglik_items__numba_equals_numpy(p, k, reml, m):
    n, t, mk = 257, 4, 3  # n not a multiple of the 64-factor block
    lam, Q, Yt, Mt, ldm = _data(n, p, k, t, mk, seed=p * 10 + k)
    rng = np.random.default_rng(1)
    h = rng.uniform(0, 1, m)
    h[:3] = [0.0, 1.0, 0.5]
    iy = rng.integers(0, t, m)
    im = rng.integers(0, mk, m)
    fast = _kernels.loglik_items(h, iy, im, lam, Q, Yt, Mt, ldm, reml, use_numba=True)
    slow = _kernels.loglik_items(h, iy, im, lam, Q, Yt, Mt, ldm, reml, use_numba=False)
    np.testing.assert_array_equal(fast, slow)  # the twin's numbers are the kernel's
    G1, L1 = _kernels.gram_items(h, iy, im, lam, Q, Yt, Mt, use_numba=True)
    G2, L2 = _kernels.gram_items(h, iy, im, lam, Q, Yt, Mt, use_numba=False)
    np.testing.assert_array_equal(G1, G2)
    np.testing.assert_array_equal(L1, L2)


_LAMS = {
    "uniform": None,
    "overflowing and underflowing blocks": lambda n: np.concatenate(
        [np.full(n // 3, 1e200), np.linspace(3, 1, n - 2 * (n // 3)), np.full(n // 3, 1e-300)]
    ),
    "zeros (d = 0 at h = 1)": lambda n: np.concatenate(
        [np.linspace(4, 1, n - n // 4), np.zeros(n // 4)]
    ),
}


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 200),
    p=st.integers(1, 3),
    k=st.integers(0, 2),
    kind=st.sampled_from(sorted(_LAMS)),
    reml=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_exact_twins__the_same_numbers_as_the_kernels_bit_for_bit(n, p, k, kind, reml, seed):
    """loglik, gram, residualise, derivs and fit have NumPy twins that give the kernels'
    numbers bit for bit (small calls use them while numba is not started): every sum in the kernel's
    order, the C library's log. Any n (block tails), one to six Gram columns (the fused and
    the four-lane sums), eigenvalues that overflow, underflow or vanish."""
    make = _LAMS[kind]
    lam = None if make is None else np.sort(make(n))[::-1].copy()
    if lam is not None and lam.size != n:
        lam = None
    t, mk = 3, 4
    lam, Q, Yt, Mt, ldm = _data(n, min(p, n), k, t, mk, seed=seed, lam=lam)
    rng = np.random.default_rng(seed)
    m = 12
    h = rng.uniform(0, 1, m)
    h[:3] = [0.0, 1.0, 1e-9]
    iy = rng.integers(0, t, m)
    im = rng.integers(0, mk, m)
    for use in (True, False):
        got = [_kernels.loglik_items(h, iy, im, lam, Q, Yt, Mt, ldm, reml, use_numba=use)]
        got += _kernels.gram_items(h, iy, im, lam, Q, Yt, Mt, use_numba=use)
        got += _kernels.residualise(Yt, Q, use_numba=use)
        got += _kernels.derivs_items(h, iy, im, lam, Q, Yt, Mt, ldm, reml, use_numba=use)
        if use:
            want = got
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(a, b)
    Mt0, ld0 = np.empty((1, 0, n)), np.zeros(1)
    args = (np.arange(t), np.zeros(t, dtype=np.int64), lam, Q, Yt, Mt0, ld0, reml, 0.0, 1.0, 1e-6)
    *fa, (Ga, La) = _kernels.fit_items(*args, ends=True, grams=True, use_numba=True)
    *fb, (Gb, Lb) = _kernels.fit_items(*args, ends=True, grams=True, use_numba=False)
    for a, b in zip([*fa, Ga, La], [*fb, Gb, Lb], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "lam",
    [
        np.concatenate([np.full(100, 1e-300), np.linspace(1, 5, 100)]),  # underflowing blocks
        np.concatenate([np.full(70, 1e200), np.ones(70)]),  # overflowing blocks
        np.concatenate([np.linspace(4, 1, 150), np.zeros(50)]),  # exact zeros at h = 1
    ],
)
def test_loglik_items__log_determinant_handles_extreme_eigenvalues(lam):
    lam = np.sort(lam)[::-1].copy()
    n = lam.size
    _, Q, Yt, Mt, _ = _data(n, 1, 0, 1, 1, lam=lam)
    for h in (0.3, 0.999999, 1.0):
        d = h * lam + (1 - h)  # the kernel's order: (h lam + 1) - h would lose 1e-300
        with np.errstate(divide="ignore"):
            want = np.sum(np.log(d))
        _, L = _kernels.gram_items(
            np.array([h]),
            np.zeros(1, np.int64),
            np.zeros(1, np.int64),
            lam,
            Q,
            Yt,
            Mt,
            use_numba=True,
        )
        if np.isfinite(want):
            assert L[0] == pytest.approx(want, rel=1e-13)
        else:
            assert L[0] == -np.inf


def test_residualise__equals_projection():
    rng = np.random.default_rng(3)
    Q = np.linalg.qr(rng.standard_normal((50, 3)))[0].T
    yT = rng.standard_normal((7, 50))
    coef, got, ss = _kernels.residualise(yT, Q, use_numba=True)
    np.testing.assert_allclose(coef, Q @ yT.T, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(got, yT - coef.T @ Q, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(got @ Q.T, 0, atol=1e-13)
    np.testing.assert_allclose(ss, [np.sum(yT**2, axis=1), np.sum(got**2, axis=1)], rtol=1e-13)
    coef2, got2, ss2 = _kernels.residualise(yT, Q, use_numba=False)  # the twin
    np.testing.assert_allclose(coef2, coef, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(got2, got, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(ss2, ss, rtol=1e-13)


@pytest.mark.parametrize(("p", "k"), [(1, 0), (1, 1), (2, 1), (3, 2)])
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("m", [6, 700])  # serial and parallel builds
def test_derivs_items__value_slope_and_curvature(p, k, reml, m):
    """The exact scan's Newton steps: the value is loglik_items' bit for bit, the first and
    second derivatives in h agree with central differences of loglik_items, Richardson-
    extrapolated (error O(eps^4) in the higher derivatives, plus rounding about
    |f| u / eps^2: far below the tolerances), and the NumPy twin agrees with the kernel."""
    n, t, mk = 130, 3, 4
    lam, Q, Yt, Mt, ldm = _data(n, p, k, t, mk, seed=3 + p + k)
    rng = np.random.default_rng(4)
    h = rng.uniform(0.05, 0.95, m)
    iy = rng.integers(0, t, m)
    im = rng.integers(0, mk, m)
    f, f1, f2 = _kernels.derivs_items(h, iy, im, lam, Q, Yt, Mt, ldm, reml, use_numba=True)
    ll = _kernels.loglik_items(h, iy, im, lam, Q, Yt, Mt, ldm, reml, use_numba=True)
    np.testing.assert_array_equal(f, ll)

    def central(eps):
        up, down = (
            _kernels.loglik_items(h + d, iy, im, lam, Q, Yt, Mt, ldm, reml, use_numba=True)
            for d in (eps, -eps)
        )
        return (up - down) / (2 * eps), (up - 2 * ll + down) / eps**2

    (a1, a2), (b1, b2) = central(2e-3), central(1e-3)
    np.testing.assert_allclose(f1, (4 * b1 - a1) / 3, rtol=1e-6, atol=1e-6 * np.abs(f1).max())
    np.testing.assert_allclose(f2, (4 * b2 - a2) / 3, rtol=1e-5, atol=1e-5 * np.abs(f2).max())
    g, g1, g2 = _kernels.derivs_items(h, iy, im, lam, Q, Yt, Mt, ldm, reml, use_numba=False)
    for a, b in ((g, f), (g1, f1), (g2, f2)):  # the twin's numbers are the kernel's
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("p", [1, 2])
def test_best_markers__numba_equals_numpy(p):
    """The running per-trait best marker of the fixed-hsq scan: same choice (first maximum,
    untestable zero columns and den <= 0 never win), same num/den, over several blocks, with
    traits sharing their m'Sm, m'SQ and C rows (equal heritabilities)."""
    rng = np.random.default_rng(p)
    t, u, mb = 40, 25, 33
    row = np.concatenate([np.arange(u), rng.integers(0, u, t - u)])  # shared rows
    state = [
        (
            np.full(t, -np.inf),
            np.full(t, -1, dtype=np.int64),
            np.full(t, np.nan),
            np.full(t, np.nan),
        )
        for _ in range(2)
    ]
    brute = []
    for offset in (0, mb, 2 * mb):
        num = rng.normal(size=(t, mb))
        msq = rng.normal(0, 0.1, size=(p, u, mb))
        msm = 1.0 + rng.random((u, mb))
        A = rng.normal(0, 0.3, size=(u, p, p))
        C = np.einsum("tab,tcb->tac", A, A)
        num[:, 3] = num[:, 7]  # a tie: the first of the two must win
        msm[:, 3] = msm[:, 7]
        msq[:, :, 3] = msq[:, :, 7]
        num[:, 5] = msm[:, 5] = msq[:, :, 5] = 0.0  # an untestable marker
        num[:2, 9] = 50.0  # the largest |num|, but den <= 0: must not win
        msm[row[:2], 9] = -1.0
        for use, (bq, bi, bn, bd) in zip((True, False), state, strict=True):
            _kernels.best_markers(num, msm, msq, C, row, offset, bq, bi, bn, bd, use_numba=use)
        # brute force: den per trait and marker, q = num^2 / den where den > 0
        den = msm[row] - np.einsum("atr,tab,btr->tr", msq[:, row], C[row], msq[:, row])
        with np.errstate(divide="ignore", invalid="ignore"):
            brute.append(np.where(den > 0.0, num * num / den, -np.inf))
    (q1, i1, n1, d1), (q2, i2, n2, d2) = state
    q_all = np.concatenate(brute, axis=1)
    np.testing.assert_array_equal(i1, np.argmax(q_all, axis=1))  # no near-ties but 3 and 7
    np.testing.assert_allclose(q1, q_all.max(axis=1), rtol=1e-13)
    np.testing.assert_array_equal(i1, i2)
    assert np.all(i1 % mb != 5) and np.all(i1 % mb != 7)  # untestable; tied behind marker 3
    assert np.all(i1[:2] % mb != 9)  # den <= 0 for the first two traits
    np.testing.assert_allclose(q1, q2, rtol=1e-13)
    np.testing.assert_array_equal(n1, n2)
    np.testing.assert_allclose(d1, d2, rtol=1e-13)


@pytest.mark.parametrize(("p", "k"), [(1, 0), (2, 0), (2, 1), (3, 2)])
@pytest.mark.parametrize("reml", [True, False])
def test_fit_items__compiled_search_equals_its_numpy_twin(p, k, reml):
    """The compiled lockstep Brent search against brent_lockstep over the NumPy likelihood:
    the same optimum (the likelihoods differ by rounding, so the paths may part at the end,
    within Brent's tolerance), the same convergence."""
    n, t, mk, tol = 120, 9, 9, 1e-8
    lam, Q, Yt, Mt, ldm = _data(n, p, k, t, mk, seed=7 + p + k)
    iy = np.arange(t)
    im = np.arange(t) % mk
    x1, f1, _, c1 = _kernels.fit_items(iy, im, lam, Q, Yt, Mt, ldm, reml, 0.0, 1.0, tol)
    x2, f2, _, c2 = _kernels.fit_items(
        iy, im, lam, Q, Yt, Mt, ldm, reml, 0.0, 1.0, tol, use_numba=False
    )
    np.testing.assert_allclose(x1, x2, atol=10 * tol)
    np.testing.assert_allclose(f1, f2, rtol=1e-10)
    assert c1.all() and c2.all()


@pytest.mark.parametrize(("p", "k"), [(2, 1), (1, 1), (1, 0), (2, 0)])  # general, fused
def test_kernels__same_numbers_serial_parallel_and_one_at_a_time(p, k):
    """Each item's arithmetic does not depend on the build or the batch: the parallel kernel,
    the serial one and one-item calls agree bit for bit."""
    n, t, mk = 300, 5, 4
    lam, Q, Yt, Mt, ldm = _data(n, p, k, t, mk, seed=3)
    rng = np.random.default_rng(0)
    m = 2000  # enough work for the parallel build
    h = rng.uniform(0, 1, m)
    iy = rng.integers(0, t, m)
    im = rng.integers(0, mk, m)
    par = _kernels.loglik_items(h, iy, im, lam, Q, Yt, Mt, ldm, True)
    with _kernels.serial():
        ser = _kernels.loglik_items(h, iy, im, lam, Q, Yt, Mt, ldm, True)
        one = [
            _kernels.loglik_items(
                h[j : j + 1], iy[j : j + 1], im[j : j + 1], lam, Q, Yt, Mt, ldm, True
            )[0]
            for j in range(0, m, 97)
        ]
    np.testing.assert_array_equal(par, ser)
    np.testing.assert_array_equal(ser[::97], one)


@pytest.mark.parametrize("p", [1, 2])  # two and three Gram columns: the lanes' cases
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize(
    "lam",
    [
        None,
        np.concatenate([np.full(70, 1e200), np.linspace(3, 1, 130), np.full(63, 1e-300)]),
        np.concatenate([np.linspace(4, 1, 200), np.zeros(63)]),  # d = 0 at h = 1
    ],
)
@pytest.mark.parametrize("shared", [False, True])  # one interval for all: lanes at one h
def test_fit_items__items_searched_across_lanes_equal_one_item_at_a_time(p, reml, lam, shared):
    """Blocks of at least _LANES_MIN items without marker columns are evaluated across lanes
    (the samples' loop outside, the items' inside; where every lane is at the same h, the
    weights once for all); an item searched alone is evaluated by itself. Every item's
    search must be the same, bit for bit: the same points, likelihoods, evaluations and
    convergence, whatever the block, its finished items and the build; the likelihoods at
    the intervals' ends those of loglik_items, and the Grams kept at the result and the ends
    those of gram_items."""
    # 16 blocks of 64 items and one of 20 (below _LANES_MIN); n % 64 = 7, n % 4 = 3; n x t
    # is enough work for the parallel build
    n, t = 263, 1044
    assert _kernels._LANES_MIN <= 64 and _kernels._LANES_BUILD_MIN <= t
    lam = None if lam is None else np.sort(lam)[::-1].copy()
    lam, Q, Yt, Mt, ldm = _data(n, p, 0, t, 1, seed=21 + p, lam=lam)
    Yt[:40] *= np.sqrt(lam + 0.2)  # some traits with heritability, some at the bound
    Yt[5] = 0.0  # rss 0: NaN likelihoods, taken as +inf
    Mt = np.empty((1, 0, n))
    rng = np.random.default_rng(5)
    iy = rng.permutation(t)
    im = np.zeros(t, dtype=np.int64)
    lo = np.zeros(t) if shared else rng.choice([0.0, 0.0, 0.2], t)
    hi = np.ones(t) if shared else rng.choice([1.0, 1.0, 0.6], t)
    for tol in (1e-4, 1e-9):  # items finish at different steps: lanes are closed up
        args = (iy, im, lam, Q, Yt, Mt, ldm, reml, lo, hi, tol)
        *par, (G, L) = _kernels.fit_items(*args, ends=True, grams=True)
        assert "fit_lanes_parallel" in _kernels._BUILT  # (the one-item calls: the plain build)
        with _kernels.serial():
            *ser, gl_ser = _kernels.fit_items(*args, ends=True, grams=True)
        one = []
        for j in range(t):
            sl = slice(j, j + 1)
            args1 = (iy[sl], im[sl], lam, Q, Yt, Mt, ldm, reml, lo[sl], hi[sl], tol)
            one.append(_kernels.fit_items(*args1, ends=True, grams=True))
        for a, b, c in zip(par, ser, zip(*(o[:-1] for o in one), strict=True), strict=True):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, np.concatenate(c))
        assert len(np.unique(par[2])) > 3  # the items took different numbers of steps
        for got, at in zip(par[4:], (lo, hi), strict=True):
            np.testing.assert_array_equal(got, _kernels.loglik_items(at, iy, im, *args[2:8]))
        np.testing.assert_array_equal(par[0], _kernels.fit_items(*args)[0])
        one_G = np.concatenate([g for *_, (g, _) in one], axis=1)
        one_L = np.concatenate([el for *_, (_, el) in one], axis=1)
        for side, at in enumerate((par[0], lo, hi)):
            want_G, want_L = _kernels.gram_items(at, iy, im, *args[2:6])
            for got_G, got_L in ((G, L), gl_ser, (one_G, one_L)):
                np.testing.assert_array_equal(got_G[side], want_G)
                np.testing.assert_array_equal(got_L[side], want_L)


def test_fit_items__ends_of_the_numpy_twin_are_its_likelihoods_at_the_interval_ends():
    n, t = 90, 30
    lam, Q, Yt, _, ldm = _data(n, 1, 0, t, 1, seed=4)
    Mt = np.empty((1, 0, n))
    iy, im = np.arange(t), np.zeros(t, dtype=np.int64)
    lo, hi = np.full(t, 0.1), np.full(t, 0.9)
    args = (iy, im, lam, Q, Yt, Mt, ldm, True, lo, hi, 1e-6)
    res = _kernels.fit_items(*args, ends=True, use_numba=False)
    for got, at in zip(res[4:], (lo, hi), strict=True):
        want = _kernels.loglik_items(at, iy, im, lam, Q, Yt, Mt, ldm, True, use_numba=False)
        np.testing.assert_array_equal(got, want)
    for a, b in zip(res[:4], _kernels.fit_items(*args, use_numba=False), strict=True):
        np.testing.assert_array_equal(a, b)
    *_, (G, L) = _kernels.fit_items(*args, ends=True, grams=True, use_numba=False)
    for side, at in enumerate((res[0], lo, hi)):
        want_G, want_L = _kernels.gram_items(at, iy, im, lam, Q, Yt, Mt, use_numba=False)
        np.testing.assert_array_equal(G[side], want_G)
        np.testing.assert_array_equal(L[side], want_L)


@pytest.mark.parametrize("use_numba", [True, False])
def test_fit_items__per_item_intervals_are_each_a_scalar_brent_search(use_numba):
    """One interval per item: each item's search is R's optimize on its own interval."""
    from lmmlite.core.brent import brent_fmin

    n, p, k, t, mk, tol = 80, 1, 1, 6, 6, 1e-9
    lam, Q, Yt, Mt, ldm = _data(n, p, k, t, mk, seed=11)
    iy, im = np.arange(t), np.arange(t)
    lo = np.array([0.0, 0.1, 0.25, 0.5, 0.0, 0.9])
    hi = np.array([1.0, 0.3, 0.5, 0.75, 0.05, 1.0])
    x, _, _, done = _kernels.fit_items(
        iy, im, lam, Q, Yt, Mt, ldm, True, lo, hi, tol, use_numba=use_numba
    )
    assert done.all()
    for j in range(t):

        def f(h, j=j):
            return -_kernels.loglik_items(
                np.array([h]), iy[j : j + 1], im[j : j + 1], lam, Q, Yt, Mt, ldm, True,
                use_numba=use_numba,
            )[0]  # fmt: skip

        assert lo[j] <= x[j] <= hi[j]
        assert x[j] == pytest.approx(brent_fmin(f, lo[j], hi[j], tol), abs=10 * tol)


@pytest.mark.parametrize(("p", "k"), [(1, 1), (2, 1), (3, 2)])
@pytest.mark.parametrize("reml", [True, False])
def test_shared_h_grams__equal_the_kernels_per_item_likelihoods(p, k, reml):
    """The exact scan's grid stage (matrix products for all items at one heritability) against
    the compiled per-item likelihood, at every grid point, the interval's ends included."""
    from types import SimpleNamespace

    from lmmlite.core.scan import HSQ_MAX, profile_loglik, shared_h_grams

    n, t, mk, m = 150, 3, 5, 40
    lam, Q, Yt, Mt, ldm = _data(n, p, k, t, mk, seed=5 + p + k)
    rng = np.random.default_rng(2)
    iy, im = rng.integers(0, t, m), rng.integers(0, mk, m)
    null = SimpleNamespace(model=SimpleNamespace(lam=lam, Q=Q, Yt=Yt))
    grid = np.array([0.0, 0.2, 0.6, 0.95, HSQ_MAX])
    G, L = shared_h_grams(null, grid, iy, im, Mt)
    ll = profile_loglik(G, L[:, None], n, reml, ldm[im])
    for g, h in enumerate(grid):
        want = _kernels.loglik_items(np.full(m, h), iy, im, lam, Q, Yt, Mt, ldm, reml)
        np.testing.assert_allclose(ll[g], want, rtol=1e-10)
        G1, L1 = _kernels.gram_items(np.full(m, h), iy, im, lam, Q, Yt, Mt)
        np.testing.assert_allclose(G[g], G1, rtol=1e-10, atol=1e-10 * np.abs(G1).max())
        assert L[g] == pytest.approx(L1[0], rel=1e-12)


def test_profile_loglik__nan_where_the_covariates_are_singular():
    from lmmlite.core.scan import profile_loglik

    G = np.array([[1.0, 1.0, 0.5], [1.0, 1.0, 0.5], [0.5, 0.5, 2.0]])  # rank-1 X'SX
    assert np.isnan(profile_loglik(G[None], np.zeros(1), 10, True, np.zeros(1)))[0]
    G2 = np.array([[2.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.4]])  # rss < 0
    assert np.isnan(profile_loglik(G2[None], np.zeros(1), 10, False, np.zeros(1)))[0]


@pytest.mark.parametrize("newton", [True, False])  # Newton from the grid vertex; Brent only
@pytest.mark.parametrize("reml", [True, False])
def test_search_many__finds_the_maximum_of_a_fine_grid(monkeypatch, newton, reml):
    """The exact scan's per-item search (grid, Newton's method from the grid parabola's
    vertex, the ends' shortcut, Brent on the grid intervals where neither settles an item, the
    ends' check) against the best of 4,001 likelihood evaluations per item; with Newton and
    the shortcut switched off, every item takes Brent's search and still lands on the
    maximum."""
    from types import SimpleNamespace

    from lmmlite.core import scan as core_scan

    calls = []
    fit = _kernels.fit_items

    def counted(iy, *args, **kw):
        calls.append(len(iy))
        return fit(iy, *args, **kw)

    monkeypatch.setattr(_kernels, "fit_items", counted)
    if not newton:  # neither Newton's steps nor the ends' shortcut

        def nothing(null, iy, *args):
            nan = np.full(iy.shape[0], np.nan)
            return nan, nan, np.zeros(iy.shape[0], dtype=bool), nan

        monkeypatch.setattr(core_scan, "_NEWTON_STEPS", 0)
        monkeypatch.setattr(core_scan, "_edge_optima", nothing)
    n, p, k, t, mk, m = 60, 1, 1, 4, 30, 60
    rng = np.random.default_rng(8)
    lam = np.sort(rng.gamma(0.4, 2.5, n))[::-1].copy()
    lam[-3:] = 0.0  # a singular kinship, as a centred one is
    Q = np.linalg.qr(rng.standard_normal((n, p)))[0].T.copy()
    h_true = np.array([0.0, 0.3, 0.8, 0.97])
    Yt = rng.standard_normal((t, n)) * np.sqrt(h_true[:, None] * lam + 1 - h_true[:, None])
    Yt -= (Yt @ Q.T) @ Q
    Mt = rng.standard_normal((mk, k, n))
    Mt -= np.einsum("mkn,pn->mkp", Mt, Q) @ Q
    ldm = np.log(np.einsum("mkn,mkn->m", Mt, Mt))
    iy, im = np.repeat(np.arange(t), m // t), rng.integers(0, mk, m)
    null = SimpleNamespace(
        model=SimpleNamespace(lam=lam, Q=Q, Yt=Yt), tol=1e-7, hsq_reml=h_true, hsq_ml=h_true
    )  # the Newton searches start from the traits' heritabilities where that is near
    ((h, ll),) = core_scan._search_many(null, iy, im, Mt, ldm, (reml,))
    fine = np.linspace(0.0, core_scan.HSQ_MAX, 4001)
    grid_ll = np.array(
        [_kernels.loglik_items(np.full(m, x), iy, im, lam, Q, Yt, Mt, ldm, reml) for x in fine]
    )
    best = np.nanmax(grid_ll, axis=0)
    assert np.all(ll >= best - 1e-9 * np.abs(best))  # at least as high as any grid point
    np.testing.assert_allclose(h, fine[np.nanargmax(grid_ll, axis=0)], atol=2.5e-4)
    assert len(np.unique(np.round(h, 2))) > 3  # optima spread over [0, 1], ends included
    if newton:  # Newton, or the ends' shortcut, settled most items (half are at or near an end)
        assert sum(calls) <= m // 4
    else:
        assert calls == [m]


@pytest.mark.parametrize("reml", [True, False])
def test_search_many__ends_shortcut_equals_brent_and_the_ends_check(monkeypatch, reml):
    """Items whose optimum is an end of [0, HSQ_MAX] (traits with no kinship signal, and
    ones with almost only kinship signal): the ends' shortcut gives what Brent's search of
    the end interval and the ends' check give, h and log likelihood bit for bit."""
    from types import SimpleNamespace

    from lmmlite.core import scan as core_scan

    n, p, k, mk = 300, 1, 1, 20
    rng = np.random.default_rng(12)
    lam = np.sort(rng.gamma(0.5, 2.0, n))[::-1].copy()
    Q = np.linalg.qr(rng.standard_normal((n, p)))[0].T.copy()
    h_true = np.array([0.0, 0.0, 0.0, 1.0])
    Yt = rng.standard_normal((4, n)) * np.sqrt(h_true[:, None] * lam + 1 - h_true[:, None])
    Yt -= (Yt @ Q.T) @ Q
    Mt = rng.standard_normal((mk, k, n))
    Mt -= np.einsum("mkn,pn->mkp", Mt, Q) @ Q
    ldm = np.log(np.einsum("mkn,mkn->m", Mt, Mt))
    iy, im = np.repeat(np.arange(4), mk), np.tile(np.arange(mk), 4)
    null = SimpleNamespace(
        model=SimpleNamespace(lam=lam, Q=Q, Yt=Yt), tol=1e-7, hsq_reml=h_true, hsq_ml=h_true
    )
    calls = []
    edge = core_scan._edge_optima

    def counted(*args):
        out = edge(*args)
        calls.append(int(out[2].sum()))
        return out

    monkeypatch.setattr(core_scan, "_edge_optima", counted)
    ((h, ll),) = core_scan._search_many(null, iy, im, Mt, ldm, (reml,))
    assert sum(calls) >= iy.shape[0] // 4  # settled by the shortcut
    monkeypatch.setattr(core_scan, "_edge_optima", lambda null, iy, *a: (
        *(np.full(iy.shape[0], np.nan),) * 2, np.zeros(iy.shape[0], dtype=bool),
        np.full(iy.shape[0], np.nan),
    ))  # fmt: skip
    monkeypatch.setattr(core_scan, "_NEWTON_STEPS", 0)
    ((h0, ll0),) = core_scan._search_many(null, iy, im, Mt, ldm, (reml,))
    at_end = (h == 0.0) | (h == core_scan.HSQ_MAX)
    assert at_end.sum() >= sum(calls)
    np.testing.assert_array_equal(h[at_end], h0[at_end])
    np.testing.assert_array_equal(ll[at_end], ll0[at_end])
    np.testing.assert_allclose(h, h0, rtol=0, atol=1e-6)  # the others: within the tolerance


@pytest.mark.parametrize("reml", [True, False])
def test_search_many__series_and_null_starts_find_the_kernel_search_optimum(monkeypatch, reml):
    """Markers of small effect (most of a genome scan): Newton's search started from the step
    from each trait's null heritability, evaluated on each item's series about it, lands where
    the kernel's search from the grid's parabola lands (within the search's tolerance, and no
    lower), with few kernel evaluations; a marker of large effect, whose optimum is far from
    the null's, is still found."""
    from lmmlite.core import scan as core_scan

    n, t, mk = 400, 2, 120
    rng = np.random.default_rng(21)
    lam = np.sort(rng.gamma(0.5, 2.0, n))[::-1].copy()
    lam[-2:] = 0.0
    X = np.column_stack([np.ones(n), rng.standard_normal(n)])
    G = rng.standard_normal((n, mk))
    h_true = np.array([0.35, 0.8])
    Y = rng.standard_normal((n, t)) * np.sqrt(h_true * lam[:, None] + 1 - h_true)
    Y[:, 1] += 2.0 * G[:, 0]  # a large QTL of trait 1: its null hsq is far from its hsq
    null = core_scan.fit_null(lam, X, Y)
    Q = null.model.Q
    Mt = G.T[:, None, :] - np.einsum("mkn,pn->mkp", G.T[:, None, :], Q) @ Q
    ldm = np.log(np.einsum("mkn,mkn->m", Mt, Mt))
    iy, im = np.tile(np.arange(t), mk), np.repeat(np.arange(mk), t)
    evals = []
    derivs = _kernels.derivs_items

    def counted(h, *args, **kw):
        evals.append(h.shape[0])
        return derivs(h, *args, **kw)

    monkeypatch.setattr(_kernels, "derivs_items", counted)
    ((h, ll),) = core_scan._search_many(null, iy, im, Mt, ldm, (reml,))
    with_starts, evals[:] = sum(evals), []
    monkeypatch.setattr(core_scan, "SERIES_MAX_TRAITS", 0)  # no series: the kernel's search
    ((h0, ll0),) = core_scan._search_many(null, iy, im, Mt, ldm, (reml,))
    assert with_starts < 0.1 * sum(evals)
    tol = core_scan.SQRT_EPS * np.abs(h0) + null.tol / 3.0  # Newton's stopping step
    np.testing.assert_array_less(np.abs(h - h0), 2.0 * tol)
    assert np.all(ll >= ll0 - 1e-12 * np.abs(ll0))
    h_null = null.hsq_reml if reml else null.hsq_ml
    assert abs(h[1] - h_null[1]) > 0.2  # the QTL itself, found far from the null's hsq


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("p", [1, 2])
def test_series__equals_the_kernels_where_it_covers_an_item(reml, p):
    """An item's series about its trait's null hsq h0 (matrix products) gives the kernels'
    Gram, log likelihood and its derivatives wherever rho = max|e| |h - h0| <= _SERIES_RHO
    (to rounding: the truncation error is below 1e-16 of the terms), and covers exactly
    those points."""
    from lmmlite.core import scan as core_scan

    n, t, mk = 250, 2, 6
    rng = np.random.default_rng(50 + p)
    lam = np.sort(rng.gamma(0.5, 2.0, n))[::-1].copy()
    lam[-p:] = 0.0  # a centred kinship's zero eigenvalues: e = -1/(1 - h0), its largest |e|
    X = np.column_stack([np.ones(n), rng.standard_normal((n, p - 1))])
    Y = rng.standard_normal((n, t)) * np.sqrt(0.6 * lam[:, None] + 0.4)
    null = core_scan.fit_null(lam, X, Y)
    Q = null.model.Q
    Mt = rng.standard_normal((mk, 1, n))
    Mt -= np.einsum("mkn,pn->mkp", Mt, Q) @ Q
    ldm = np.log(np.einsum("mkn,mkn->m", Mt, Mt))
    iy, im = np.repeat(np.arange(t), mk), np.tile(np.arange(mk), t)
    h0 = (null.hsq_reml if reml else null.hsq_ml)[iy]
    K3 = core_scan._SERIES_TERMS + 3
    G = np.empty((K3, iy.size, p + 2, p + 2))
    parts = [core_scan._series_weights(lam, float(h)) for h in h0]
    for j, (W, *_) in enumerate(parts):
        G[:, j] = core_scan.weighted_grams(null, W, iy[j : j + 1], im[j : j + 1], Mt)[:, 0]
    ser = core_scan._Series(
        G=G, h0=h0, L0=np.array([q[1] for q in parts]), S=np.array([q[2] for q in parts]),
        emax=np.array([q[3] for q in parts]),
    )  # fmt: skip
    items = np.arange(iy.size)
    for frac in (0.0, 0.3, -0.7, 0.999, -0.999):
        x = h0 + frac * core_scan._SERIES_RHO / ser.emax
        assert core_scan._in_series(ser, items, x).all()
        f, f1, f2, Gs = core_scan._series_at(ser, items, x, n, reml, ldm[im])
        g, g1, g2 = _kernels.derivs_items(x, iy, im, lam, Q, null.model.Yt, Mt, ldm, reml)
        Gk, _ = _kernels.gram_items(x, iy, im, lam, Q, null.model.Yt, Mt)
        scale = np.abs(Gk).max(axis=(1, 2))[:, None, None]
        np.testing.assert_allclose(Gs / scale, Gk / scale, rtol=0, atol=1e-13)
        np.testing.assert_allclose(f, g, rtol=1e-13)
        np.testing.assert_allclose(f1, g1, rtol=1e-9, atol=1e-9 * np.abs(g1).max())
        np.testing.assert_allclose(f2, g2, rtol=1e-9, atol=1e-9 * np.abs(g2).max())
        got = core_scan.grams_at(null, x, iy, im, Mt, ser)
        np.testing.assert_array_equal(got, Gs)
    x = h0 + 1.01 * core_scan._SERIES_RHO / ser.emax
    assert not core_scan._in_series(ser, items, x).any()
    got = core_scan.grams_at(null, x, iy, im, Mt, ser)  # outside: the kernel's Grams
    np.testing.assert_array_equal(got, _kernels.gram_items(x, iy, im, lam, Q, null.model.Yt, Mt)[0])


def test_search_many__ml_and_reml_share_a_series_where_their_null_hsq_are_close(monkeypatch):
    """Both fits of a trait whose ML and REML null hsq are close use one series about their
    midpoint (one set of weights); a trait whose are far apart, one each. Both fits' searches
    land where the kernels' do, within the search's tolerance."""
    from types import SimpleNamespace

    from lmmlite.core import scan as core_scan

    n, mk = 300, 40
    rng = np.random.default_rng(23)
    lam = np.sort(rng.gamma(0.5, 2.0, n))[::-1].copy()
    lam[-1] = 0.0
    X = np.ones((n, 1))
    Y = rng.standard_normal((n, 2)) * np.sqrt(0.6 * lam[:, None] + 0.4)
    null = core_scan.fit_null(lam, X, Y)
    null.hsq_ml = null.hsq_ml.copy()
    null.hsq_ml[1] = null.hsq_reml[1] - 0.2  # trait 1: far apart (as in a small sample)
    centres = core_scan._series_centres(null, (False, True), np.arange(2))
    assert centres[False, 0] == centres[True, 0] == 0.5 * (null.hsq_ml[0] + null.hsq_reml[0])
    assert centres[False, 1] == null.hsq_ml[1] and centres[True, 1] == null.hsq_reml[1]
    one = SimpleNamespace(
        **{**vars(null), "hsq_ml": null.hsq_ml[:1], "hsq_reml": null.hsq_reml[:1]}
    )
    one.model = SimpleNamespace(lam=lam, Q=null.model.Q, Yt=null.model.Yt[:1])
    Q = null.model.Q
    Mt = rng.standard_normal((mk, 1, n))
    Mt -= np.einsum("mkn,pn->mkp", Mt, Q) @ Q
    ldm = np.log(np.einsum("mkn,mkn->m", Mt, Mt))
    iy, im = np.zeros(mk, dtype=np.int64), np.arange(mk)
    got = core_scan._search_many(one, iy, im, Mt, ldm, (False, True))
    monkeypatch.setattr(core_scan, "SERIES_MAX_TRAITS", 0)  # the kernels' searches
    want = core_scan._search_many(one, iy, im, Mt, ldm, (False, True))
    for (h, ll), (h0, ll0) in zip(got, want, strict=True):
        tol = core_scan.SQRT_EPS * np.abs(h0) + null.tol / 3.0
        np.testing.assert_array_less(np.abs(h - h0), 2.0 * tol)
        assert np.all(ll >= ll0 - 1e-12 * np.abs(ll0))


def test_loglik_items__log_determinant_of_zero_and_negative_factors():
    """A block with a zero factor sums to -inf, one with a negative factor to NaN (as the sum
    of the logarithms)."""
    for tail, want in ((0.0, -np.inf), (-1e-300, np.nan)):
        lam = np.concatenate([np.linspace(5, 1, 100), np.full(27, 1e-300), [tail]])
        _, Q, Yt, Mt, _ = _data(lam.size, 1, 0, 1, 1, lam=lam)
        _, L = _kernels.gram_items(
            np.array([1.0]), np.zeros(1, np.int64), np.zeros(1, np.int64), lam, Q, Yt, Mt,
            use_numba=True,
        )  # fmt: skip
        np.testing.assert_equal(L[0], want)
