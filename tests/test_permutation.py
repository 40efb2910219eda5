"""Permutation tests (lmmlite.permutation_test, lmmlite perm): the permutations themselves,
both methods against brute force written here (a permuted genome scan; a dense GLS scan of
pseudo-phenotypes V^{1/2} P V^{-1/2} e), reproducibility (threads, Dask, resume), R/qtl2's
scan1perm on its iron cross (in distribution: a two-sample KS test of 1,000 maxima), and the
calibration under the null at a size CI can afford (full size in bench/bench_perm.py).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import lmmlite
from conftest import BXD, DATA
from lmmlite.core import _kernels
from lmmlite.core.permutation import permutation_entropy, sample_permutations
from lmmlite.exceptions import InputError
from lmmlite.io.genotypes import ArraySource, BimbamSource, ProbsSource
from lmmlite.permutation import genome_pvalues, perm_thresholds, permutation_test

Q2 = DATA / "qtl2"
#: Maxima computed two ways (marker order, chunking, products vs per-marker solves) agree to
#: rounding, relative to max(1, LOD).
LOD_RTOL = 1e-8
#: Significance of the two-sample KS tests against R/qtl2's maxima (a fixed seed: the test is
#: deterministic, and a failure means the distributions differ beyond Monte Carlo error).
KS_LEVEL = 1e-3


def _quiet(func, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        return func(*args, **kw)


def _simulate(n=36, m=30, t=3, seed=5, miss=False):
    """Dosages on 2 chromosomes, a kinship from them, traits with a polygenic part."""
    rng = np.random.default_rng(seed)
    G = rng.binomial(2, rng.uniform(0.2, 0.8, m), size=(n, m)).astype(float)
    ids = [f"s{i:02d}" for i in range(n)]
    markers = pd.DataFrame(
        {"marker": [f"m{j}" for j in range(m)], "chr": ["1"] * (m // 2) + ["2"] * (m - m // 2),
         "pos": np.arange(m, dtype=float)}
    )  # fmt: skip
    Gc = G - G.mean(axis=0)
    K = Gc @ Gc.T / m + 0.05 * np.eye(n)
    L = np.linalg.cholesky(K)
    Y = L @ rng.standard_normal((n, t)) + rng.standard_normal((n, t))
    P = pd.DataFrame(Y, index=ids, columns=[f"t{j}" for j in range(t)])
    if miss:
        P.iloc[:5, 1] = np.nan
    covar = pd.DataFrame({"x": rng.standard_normal(n)}, index=ids)
    Kf = pd.DataFrame(K, index=ids, columns=ids)
    return ArraySource(G, ids, markers), P, covar, Kf


def _perms_by_id(ids, n_perm, seed, region="", strata=None):
    """Permutation k as a map: sample id -> id of the sample whose data it receives."""
    perms = sample_permutations(ids, n_perm, permutation_entropy(seed, ids, region), strata)
    return [dict(zip(ids, np.asarray(ids)[p], strict=True)) for p in perms]


# --- the permutations -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    n_perm=st.integers(1, 30),
    seed=st.integers(0, 2**63 - 1),
    n_strata=st.integers(1, 4),
    order_seed=st.integers(0, 1000),
)
def test_sample_permutations__permute_within_strata_whatever_the_input_order(
    n, n_perm, seed, n_strata, order_seed
):
    ids = [f"id{i}" for i in range(n)]
    strata = np.arange(n) % n_strata
    perms = sample_permutations(ids, n_perm, permutation_entropy(seed, ids, "A"), strata)
    assert perms.shape == (n_perm, n) and perms.dtype == np.int32
    for p in perms:
        assert sorted(p) == list(range(n))  # a permutation
        np.testing.assert_array_equal(strata[p], strata)  # within strata
    # the same samples given in another order: the same permutations, sample by sample
    order = np.random.default_rng(order_seed).permutation(n)
    shuffled = [ids[i] for i in order]
    again = sample_permutations(
        shuffled, n_perm, permutation_entropy(seed, shuffled, "A"), strata[order]
    )
    for p, q in zip(perms, again, strict=True):
        want = {ids[i]: ids[p[i]] for i in range(n)}
        got = {shuffled[i]: shuffled[q[i]] for i in range(n)}
        assert got == want


def test_sample_permutations__uniform_and_seeded():
    ids = [f"s{i}" for i in range(4)]
    perms = sample_permutations(ids, 24_000, permutation_entropy(7, ids, ""))
    # the 24 permutations of 4 samples, each about 1,000 times: a chi-square test of uniformity
    _, counts = np.unique(perms, axis=0, return_counts=True)
    assert counts.size == 24
    assert stats.chisquare(counts).pvalue > 1e-4
    same = sample_permutations(ids, 50, permutation_entropy(7, ids, ""))
    np.testing.assert_array_equal(same, perms[:50])
    for other in (permutation_entropy(8, ids, ""), permutation_entropy(7, ids, "X")):
        assert not np.array_equal(sample_permutations(ids, 50, other), same)


def test_shuffle_rows__numba_equals_numpy():
    if not _kernels.NUMBA_ENABLED:
        pytest.skip("numba kernels disabled")
    rng = np.random.default_rng(3)
    n, P = 50, 200
    where = np.sort(rng.choice(n, 30, replace=False)).astype(np.int32)
    draws = (rng.random((P, where.size)) * np.arange(1, where.size + 1)).astype(np.int32)
    base = np.tile(np.arange(n, dtype=np.int32), (P, 1))
    a, b = base.copy(), base.copy()
    _kernels.shuffle_rows(a, where, draws, use_numba=True)
    _kernels.shuffle_rows(b, where, draws, use_numba=False)
    np.testing.assert_array_equal(a, b)
    assert (a != base).any()


# --- both methods against brute force -------------------------------------------------------


def test_genotypes_method__equals_scans_of_permuted_genotypes():
    src, P, covar, K = _simulate()
    seed, n_perm = 11, 6
    table = _quiet(
        permutation_test, src, P, covar, kinship=K, n_perm=n_perm, seed=seed,
        method="genotypes", chunk_size=7,
    )  # fmt: skip
    assert list(table.columns) == ["trait", "perm", "max_lod", "min_p"]
    assert len(table) == 3 * n_perm and table.attrs["seed"] == seed
    maps = _perms_by_id(src.samples, n_perm, seed)
    for k, receives in enumerate(maps):
        rows = [src.samples.index(receives[i]) for i in src.samples]
        permuted = ArraySource(src.G[rows], src.samples, src.markers)
        scan = _quiet(lmmlite.scan, permuted, P, covar, kinship=K, mode="fixed")
        want = scan.groupby("trait", sort=False)["lod"].max()
        got = table[table["perm"] == k].set_index("trait")["max_lod"]
        np.testing.assert_allclose(got, want.loc[got.index], rtol=LOD_RTOL, atol=LOD_RTOL)
        # the smallest p-value is that of the largest LOD
        best_p = scan.groupby("trait", sort=False)["p_wald"].min()
        minp = table[table["perm"] == k].set_index("trait")["min_p"]
        np.testing.assert_allclose(
            np.log10(minp), np.log10(best_p.loc[minp.index]), rtol=1e-6, atol=1e-8
        )


def _dense_max_lod(K, y, X, G, h, receives_rows):
    """The rotated method's maximum for one pseudo-phenotype, densely: with V = h K + (1-h) I,
    e the GLS residual of y on X, y* = V^{1/2} P V^{-1/2} e, and the largest over markers of
    n/2 log10(rss0 / rss1) (GLS residual sums of squares at h)."""
    n = len(y)
    lam, U = np.linalg.eigh(h * K + (1 - h) * np.eye(n))
    root, inv_root = (U * np.sqrt(lam)) @ U.T, (U / np.sqrt(lam)) @ U.T
    Vinv = inv_root @ inv_root

    def rss(y, A):
        beta = np.linalg.solve(A.T @ Vinv @ A, A.T @ Vinv @ y)
        r = y - A @ beta
        return r @ Vinv @ r

    e = y - X @ np.linalg.solve(X.T @ Vinv @ X, X.T @ Vinv @ y)
    ystar = root @ (inv_root @ e)[receives_rows]
    rss0 = rss(ystar, X)
    lods = [n / 2 * np.log10(rss0 / rss(ystar, np.column_stack([X, g]))) for g in G.T]
    return max(lods)


@pytest.mark.parametrize("miss", [False, True])
def test_rotated_method__equals_a_dense_scan_of_pseudo_phenotypes(miss):
    src, P, covar, K = _simulate(miss=miss)
    seed, n_perm = 4, 5
    table = _quiet(
        permutation_test, src, P, covar, kinship=K, n_perm=n_perm, seed=seed, chunk_size=9
    )
    hsq = _quiet(lmmlite.scan, src, P, covar, kinship=K, mode="fixed").groupby("trait")["hsq"]
    for trait in P.columns:
        ids = [i for i in src.samples if not np.isnan(P.loc[i, trait])]
        rows = [src.samples.index(i) for i in ids]
        y = P.loc[ids, trait].to_numpy()
        X = np.column_stack([np.ones(len(ids)), covar.loc[ids, "x"]])
        Kt = K.loc[ids, ids].to_numpy()
        h = float(hsq.first()[trait])
        for k, receives in enumerate(_perms_by_id(ids, n_perm, seed)):
            where = [ids.index(receives[i]) for i in ids]
            want = _dense_max_lod(Kt, y, X, src.G[rows, 0, :], h, where)
            got = table[(table["trait"] == trait) & (table["perm"] == k)]["max_lod"].item()
            np.testing.assert_allclose(got, want, rtol=LOD_RTOL, atol=LOD_RTOL)


# --- reproducible: threads, Dask, resume ----------------------------------------------------


#: Other trait batches rotate a trait with another BLAS product (a lone trait's is a
#: matrix-vector product), rounded differently in the last bit; its null hsq, a Brent search
#: whose last steps are sqrt(eps) x hsq (~1e-8) long, may then stop one step apart, and a
#: fixed-hsq LOD moves with hsq to first order: ~1e-8 relative, compared at 1e-7.
BATCH_RTOL = 1e-7


@pytest.mark.parametrize("method", ["rotated", "genotypes"])
def test_same_numbers_whatever_the_threads_chunks_and_trait_order(method):
    src, P, covar, K = _simulate(t=5, miss=True)
    kw = {"kinship": K, "n_perm": 8, "seed": 99, "method": method}
    one = _quiet(permutation_test, src, P, covar, threads=1, chunk_size=7, trait_batch=2, **kw)
    two = _quiet(permutation_test, src, P, covar, threads=2, chunk_size=11, trait_batch=5, **kw)
    pd.testing.assert_frame_equal(one, two, check_exact=False, rtol=BATCH_RTOL)
    with_threads = _quiet(permutation_test, src, P, covar, threads=2, chunk_size=7, **kw)
    # bit for bit when only the thread count changes
    three = _quiet(permutation_test, src, P, covar, threads=1, chunk_size=7, **kw)
    pd.testing.assert_frame_equal(with_threads, three, check_exact=True)
    # a trait's permutations do not depend on the other traits
    alone = _quiet(permutation_test, src, P[["t3"]], covar, threads=1, chunk_size=7, **kw)
    pd.testing.assert_frame_equal(
        alone.reset_index(drop=True),
        three[three["trait"] == "t3"].reset_index(drop=True),
        check_exact=False, rtol=BATCH_RTOL,
    )  # fmt: skip
    # a random seed, recorded
    random = _quiet(permutation_test, src, P, covar, kinship=K, n_perm=2)
    assert isinstance(random.attrs["seed"], int)


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    src, P, covar, K = _simulate(t=4)
    kw = {"kinship": K, "n_perm": 7, "chunk_size": 5, "trait_batch": 1, "threads": 1}
    want = _quiet(permutation_test, src, P, covar, seed=3, **kw)

    class Stop(Exception):
        pass

    def stop_after_5(done, total):
        if done >= 5:
            raise Stop

    out = tmp_path / "perm.parquet"
    with pytest.raises(Stop):
        _quiet(permutation_test, src, P, covar, seed=3, out=out, progress=stop_after_5, **kw)
    # the seed is read back from the folder's record
    got = _quiet(permutation_test, src, P, covar, out=out, resume=True, **kw)
    assert got.attrs["seed"] == 3
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    pd.testing.assert_frame_equal(pd.read_parquet(out), want, check_dtype=False)
    with pytest.raises(InputError, match="cannot resume"):
        _quiet(permutation_test, src, P, covar, seed=4, out=out, resume=True, **kw)


@pytest.mark.slow
def test_dask__same_numbers_as_in_process():
    distributed = pytest.importorskip("distributed")
    src, P, covar, K = _simulate(t=4, miss=True)
    kw = {"kinship": K, "n_perm": 6, "seed": 8, "chunk_size": 7, "trait_batch": 2}
    want = _quiet(permutation_test, src, P, covar, threads=1, **kw)
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
        host="127.0.0.1",
    )  # fmt: skip
    with cluster, distributed.Client(cluster) as client:
        got = _quiet(permutation_test, src, P, covar, client=client, **kw)
    pd.testing.assert_frame_equal(got, want, check_exact=True)


# --- thresholds and p-values ----------------------------------------------------------------


def test_thresholds_and_pvalues__from_the_definitions():
    rng = np.random.default_rng(0)
    perm = pd.DataFrame(
        {"trait": np.repeat(["a", "b"], 50), "perm": np.tile(np.arange(50), 2),
         "max_lod": rng.gamma(3, 1, 100)}
    )  # fmt: skip
    thr = perm_thresholds(perm, alpha=[0.05, 0.2])
    for trait in ("a", "b"):
        v = perm.loc[perm["trait"] == trait, "max_lod"].to_numpy()
        row = thr.set_index("trait").loc[trait]
        # R's quantile type 7: the linear interpolation of the order statistics
        s = np.sort(v)
        h = (len(v) - 1) * 0.95
        assert row["0.05"] == pytest.approx(s[int(h)] + (h - int(h)) * (s[int(h) + 1] - s[int(h)]))
        assert row["n_perm"] == 50
        lod = s[40]
        p = genome_pvalues(perm, [trait], [lod])[0]
        assert p == (1 + (v >= lod).sum()) / 51
    assert np.isnan(genome_pvalues(perm, ["c"], [3.0])[0])
    with pytest.raises(InputError, match="alpha"):
        perm_thresholds(perm, alpha=[1.5])


# --- R/qtl2's scan1perm on iron -------------------------------------------------------------


@pytest.fixture(scope="module")
def iron():
    def frame(name):
        return pd.read_csv(Q2 / name, dtype={"id": str}).set_index("id")

    src = ProbsSource(Q2 / "iron_probs.npz")
    loco = lmmlite.kinship(src, method="probs", loco=True)
    return (
        src,
        frame("iron_pheno.csv")[["liver"]],
        frame("iron_sex.csv"),
        frame("iron_Xcovar.csv"),
        loco,
    )


def _r_maxima(name: str) -> np.ndarray:
    return pd.read_csv(Q2 / name, index_col=0)["liver"].to_numpy()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["rotated", "genotypes"])
def test_iron__distribution_of_maxima_equals_scan1perm(iron, method):
    # R: scan1perm(pr, iron$pheno[, "liver", drop=FALSE], kinship=K_loco, addcovar=sex,
    #    Xcovar=Xcovar, n_perm=1000, perm_Xsp=TRUE, chr_lengths=chr_lengths(iron$gmap))
    src, pheno, sex, xcovar, loco = iron
    chr_lengths = pd.read_csv(Q2 / "iron_chr_lengths.csv", dtype={"chr": str})
    lengths = dict(zip(chr_lengths["chr"], chr_lengths["length_cM"], strict=True))
    ours = _quiet(
        permutation_test, src, pheno, sex, kinship=loco, loco=True, kinship_scale=2.0,
        xcovar=xcovar, n_perm=1000, n_perm_x=3000 if method == "genotypes" else None,
        seed=20261201, method=method, chr_lengths=lengths,
    )  # fmt: skip
    assert set(ours["region"]) == {"A", "X"}
    for region in ("A", "X"):
        r = _r_maxima(f"iron_perm_loco_Xsp_{region}.csv.gz")
        mine = ours.loc[ours["region"] == region, "max_lod"].to_numpy()
        assert stats.ks_2samp(mine, r).pvalue > KS_LEVEL, region
    # thresholds within Monte Carlo error of R/qtl2's summary (0.05 level)
    summary = pd.read_csv(Q2 / "iron_perm_loco_Xsp_summary.csv")
    thr = perm_thresholds(ours, alpha=[0.05]).set_index("region")["0.05"]
    for region in ("A", "X"):
        want = summary.loc[np.isclose(summary["alpha"], 0.05), region].item()
        assert abs(thr[region] - want) < 0.4, (region, thr[region], want)


@pytest.mark.slow
def test_iron__stratified_by_sex_like_scan1perm(iron):
    # R: scan1perm(..., n_perm=200, perm_strata=mat2strata(cbind(sex))), no perm_Xsp
    src, pheno, sex, xcovar, loco = iron
    ours = _quiet(
        permutation_test, src, pheno, sex, kinship=loco, loco=True, xcovar=xcovar,
        n_perm=1000, seed=5, strata=sex["sex"], x_specific=False,
    )  # fmt: skip
    assert "region" not in ours.columns
    r = _r_maxima("iron_perm_loco_strata_sex.csv.gz")
    assert stats.ks_2samp(ours["max_lod"], r).pvalue > KS_LEVEL


# --- calibration under the null, at a size CI affords ---------------------------------------


@pytest.fixture(scope="module")
def bxd():
    src = BimbamSource(BXD / "BXD_geno.txt.gz", BXD / "BXD_snps.txt.gz")
    # every 5th marker: the calibration needs a realistic genome, not every marker of it
    keep = np.arange(0, src.n_markers, 5)
    G = src.read(0, src.n_markers)[:, :, keep]
    sub = ArraySource(np.nan_to_num(G, nan=1.0), src.samples, src.markers.iloc[keep])
    return sub, lmmlite.kinship(sub), lmmlite.kinship(sub, loco=True)


def _null_traits(K: pd.DataFrame, t: int, seed: int, miss: bool, strata: pd.Series):
    """Traits with no QTL: a polygenic part (hsq 0.5), a stratum effect, some missing."""
    rng = np.random.default_rng(seed)
    n = K.shape[0]
    lam, U = np.linalg.eigh(K.to_numpy())
    root = U * np.sqrt(np.clip(lam, 0, None))
    Y = np.sqrt(0.5) * root @ rng.standard_normal((n, t)) / np.sqrt(lam.mean())
    Y += np.sqrt(0.5) * rng.standard_normal((n, t)) + 0.8 * strata.to_numpy()[:, None]
    P = pd.DataFrame(Y, index=K.index, columns=[f"t{j}" for j in range(t)])
    if miss:  # four missing-data patterns (each one eigendecomposition)
        patterns = [rng.choice(n, 8, replace=False) for _ in range(4)]
        for j in range(t):
            P.iloc[patterns[j % 4], j] = np.nan
    return P


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "loco", "stratified", "miss"),
    [("rotated", False, False, False), ("rotated", True, True, True),
     ("genotypes", False, False, False), ("genotypes", True, True, True)],
)  # fmt: skip
def test_calibration__genome_wide_level_holds_under_the_null(bxd, method, loco, stratified, miss):
    """Null traits: a polygenic background (hsq 0.5), a stratum effect, no QTL.

    Without LOCO the background is drawn from the kinship of the whole genome, which the
    model holds. With LOCO such a trait is not null: a LOCO scan of a chromosome leaves its
    share of the background out of the kinship, and its markers pick it up (what LOCO is
    for). The LOCO null draws the background from chromosomes 1-10 and scans the others (and
    X), with LOCO kinships of the whole genome: the scanned markers carry no effect."""
    src, K, K_loco = bxd
    n_traits = 400 if method == "rotated" else 200
    n_perm = 199  # (1 + #) / (1 + 199): p <= 0.05 has probability 10/200 exactly
    ids = pd.Index(src.samples)
    strata = pd.Series(np.arange(len(ids)) % 2, index=ids)
    background = K
    if loco:
        chrom = src.markers["chr"].astype(str).to_numpy()
        bg = np.isin(chrom, [str(c) for c in range(1, 11)])
        background = lmmlite.kinship(ArraySource(src.G[:, :, bg], src.samples, src.markers[bg]))
        src = ArraySource(src.G[:, :, ~bg], src.samples, src.markers[~bg])
        K_loco = {c: k for c, k in K_loco.items() if c in set(chrom[~bg])}
    seed = 7 + 2 * loco + (method == "rotated")
    P = _null_traits(background, n_traits, seed=seed, miss=miss, strata=strata)
    covar = strata.to_frame("stratum").astype(float)
    kw = {"kinship": K_loco if loco else K, "loco": loco, "n_perm": n_perm, "seed": 1}
    kw["n_perm_x"] = n_perm  # X's p-values are valid with any number (the default is ~20x)
    perm = _quiet(
        permutation_test, src, P, covar, method=method,
        strata=strata if stratified else None, **kw,
    )  # fmt: skip
    assert set(perm["region"]) == {"A", "X"}  # BXD's X apart (perm_Xsp), the default
    scan = _quiet(
        lmmlite.scan, src, P, covar, kinship=kw["kinship"], loco=loco, mode="fixed",
        keep="peaks", threshold=-np.inf,
    )  # fmt: skip
    scan["region"] = np.where(scan["chr"] == "X", "X", "A")
    observed = scan.groupby(["trait", "region"])["lod"].max().reset_index()
    p_region = genome_pvalues(perm, observed["trait"], observed["lod"], observed["region"])
    # genome-wide: a trait is a hit when either region reaches its share of the level
    p = pd.Series(p_region).groupby(observed["trait"].to_numpy()).min()
    hits = int((p <= 0.05).sum())
    lo, hi = stats.binom.interval(0.99, n_traits, 0.05)
    assert lo <= hits <= hi, (hits, n_traits, (lo, hi))


# --- the command ----------------------------------------------------------------------------


def _iron_cli_args(tmp_path):
    pheno = tmp_path / "pheno.csv"
    pd.read_csv(Q2 / "iron_pheno.csv", dtype={"id": str})[["id", "liver"]].to_csv(
        pheno, index=False
    )
    return [
        "perm", "--probs", str(Q2 / "iron_probs.npz"), "--pheno", str(pheno),
        "--covar", str(Q2 / "iron_sex.csv"), "--xcovar", str(Q2 / "iron_Xcovar.csv"),
        "--loco", "--kinship-scale", "2", "--no-progress",
    ]  # fmt: skip


def test_cli_perm__equals_the_api_and_writes_thresholds(tmp_path, capsys, iron):
    from lmmlite.cli import main

    args = _iron_cli_args(tmp_path)
    out, thr, png = tmp_path / "perm.csv", tmp_path / "thr.tsv", tmp_path / "perm.png"
    base = [*args, "--n-perm", "50", "--n-perm-x", "60", "--seed", "17"]
    assert main([*base, "--out", str(out), "--thresholds", str(thr), "--plot", str(png)]) == 0
    printed = capsys.readouterr().out
    assert "seed 17" in printed
    src, pheno, sex, xcovar, loco = iron
    want = _quiet(
        permutation_test, src, pheno, sex, kinship=loco, loco=True, kinship_scale=2.0,
        xcovar=xcovar, n_perm=50, n_perm_x=60, seed=17,
    )  # fmt: skip
    got = pd.read_csv(out, dtype={"trait": str})
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
    thresholds = pd.read_csv(thr, sep="\t")
    assert list(thresholds.columns) == ["trait", "region", "n_perm", "0.01", "0.05", "0.1",
                                        "0.2", "0.63"]  # fmt: skip
    pd.testing.assert_frame_equal(thresholds, perm_thresholds(want), check_dtype=False)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # strata from a table column, one genome-wide maximum, a Parquet dataset
    strata = tmp_path / "strata.csv"
    pd.DataFrame({"id": sex.index, "group": sex["sex"].map({0: "f", 1: "m"})}).to_csv(
        strata, index=False
    )
    folder = tmp_path / "perm.parquet"
    assert main([*base, "--strata", f"{strata}:group", "--no-x-specific",
                 "--out", str(folder)]) == 0  # fmt: skip
    table = pd.read_parquet(folder)
    assert "region" not in table.columns and len(table) == 50
    want = _quiet(
        permutation_test, src, pheno, sex, kinship=loco, loco=True, kinship_scale=2.0,
        xcovar=xcovar, n_perm=50, seed=17, x_specific=False, strata=sex["sex"],
    )  # fmt: skip
    np.testing.assert_allclose(table["max_lod"], want["max_lod"], rtol=1e-12)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strata", "nofile"], "--strata must be FILE:COLUMN"),
        (["--strata", "{strata}:nope"], "has no column 'nope'"),
        (["--resume"], "--resume needs --out NAME.parquet"),
        (["--alpha", "0.05"], "--alpha needs --thresholds or --plot"),
        (["--seed", "-3"], "a seed must be at least 0"),
        (["--method", "shuffle"], "invalid choice"),
    ],
)
def test_cli_perm__bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, extra, message):
    from lmmlite.cli import main

    strata = tmp_path / "strata.csv"
    pd.read_csv(Q2 / "iron_sex.csv").to_csv(strata, index=False)
    work = tmp_path / "work"
    work.mkdir()
    extra = [e.format(strata=strata) for e in extra]
    argv = [*_iron_cli_args(tmp_path), "--n-perm", "5", "--out", str(work / "p.csv"), *extra]
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("lmmlite: error:") and err.count("\n") == 1
    assert message in err
    assert not list(work.iterdir())


def test_pvalue_threshold_and_plots_with_permutation_lines(tmp_path, iron):
    from lmmlite.cli import main
    from lmmlite.permutation import perm_pvalue_threshold

    rng = np.random.default_rng(2)
    perm = pd.DataFrame(
        {"trait": "a", "perm": np.r_[np.arange(100), np.arange(300)],
         "max_lod": rng.gamma(3, 1, 400), "min_p": rng.uniform(0, 1e-2, 400),
         "region": np.repeat(["A", "X"], [100, 300]), "length": np.repeat([900.0, 100.0],
                                                                          [100, 300])}
    )  # fmt: skip
    got = perm_pvalue_threshold(perm, "a", 0.05)
    for region, share in (("A", 0.9), ("X", 0.1)):
        v = perm.loc[perm["region"] == region, "min_p"].to_numpy()
        assert got[region] == pytest.approx(np.quantile(v, 1 - 0.95**share), rel=1e-12)
    plain = perm.drop(columns=["region", "length"]).iloc[:100]
    assert perm_pvalue_threshold(plain, "a", 0.1) == pytest.approx(
        np.quantile(plain["min_p"], 0.1), rel=1e-12
    )
    # the command draws them: a LOD line per region, a p-value line per region
    src, pheno, sex, xcovar, loco = iron
    table = _quiet(lmmlite.scan, src, pheno, sex, kinship=loco, loco=True, xcovar=xcovar)
    scan_file, perm_file = tmp_path / "scan.tsv", tmp_path / "perm.csv"
    table.to_csv(scan_file, sep="\t", index=False)
    small = _quiet(
        permutation_test, src, pheno, sex, kinship=loco, loco=True, xcovar=xcovar, n_perm=20,
        n_perm_x=20, seed=1,
    )  # fmt: skip
    small.to_csv(perm_file, index=False)
    for kind in ("lod", "manhattan"):
        png = tmp_path / f"{kind}.png"
        argv = ["plot", kind, "--scan", str(scan_file), "--perm", str(perm_file), "--out", str(png)]
        if kind == "manhattan":  # probabilities: no Wald p-value minimum in the table
            with pytest.raises(InputError, match="no permutation p-values"):
                perm_pvalue_threshold(small, "liver")
            assert main(argv) == 2
            continue
        assert main(argv) == 0 and png.read_bytes()[:4] == b"\x89PNG"


def test_row_max_scaled_sq__numba_equals_numpy():
    if not _kernels.NUMBA_ENABLED:
        pytest.skip("numba kernels disabled")
    rng = np.random.default_rng(4)
    C = rng.standard_normal((300, 77))
    scale = rng.uniform(0.1, 3.0, 77)
    start = np.full(300, -np.inf)
    start[:5] = 1e9  # kept where already larger
    a = _kernels.row_max_scaled_sq(C, scale, start.copy(), use_numba=True)
    b = _kernels.row_max_scaled_sq(C, scale, start.copy(), use_numba=False)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[5:], ((C * C) * scale).max(axis=1)[5:])
    assert (a[:5] == 1e9).all()
