"""Genome scan: definition checks against fit_lmm, LOCO, chunking, sample handling, bad input."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmmlite
from conftest import EXACT_HSQ_ATOL, assert_exact_scans_close
from lmmlite.exceptions import FileFormatError, KinshipError, SampleMismatchError
from lmmlite.io.genotypes import ArraySource, BimbamSource, DosageSource, PlinkSource
from lmmlite.kinship import kinship
from lmmlite.scan import scan


def _data(n=90, m=40, k=1, seed=3, t=2):
    rng = np.random.default_rng(seed)
    ids = [f"s{i:03d}" for i in range(n)]
    if k == 1:
        G = rng.binomial(2, rng.uniform(0.1, 0.9, m), size=(n, m)).astype(float)
    else:
        G = rng.dirichlet(np.ones(k), size=(n, m)).transpose(0, 2, 1)  # (n, k, m)
    markers = pd.DataFrame(
        {
            "marker": [f"m{j}" for j in range(m)],
            "chr": np.repeat(["1", "2", "X"], [m // 2, m // 4, m - m // 2 - m // 4]),
            "pos": np.arange(m) * 1000,
        }
    )
    src = ArraySource(G, ids, markers)
    Z = G if k == 1 else G.reshape(n, -1)  # allele sharing for probabilities
    Z = Z - Z.mean(axis=0)
    K = Z @ Z.T / m + 0.05 * np.eye(n)
    X = np.column_stack([np.ones(n), rng.standard_normal(n)])
    h = 0.5
    Y = X @ [1.0, 0.3] if t == 1 else (X @ [1.0, 0.3])[:, None] + 0 * np.ones((n, t))
    Y = Y + (
        np.linalg.cholesky(h * K + (1 - h) * np.eye(n)) @ rng.standard_normal((n, t))
        if t > 1
        else 0
    )
    pheno = pd.DataFrame(Y, index=ids, columns=[f"t{j}" for j in range(t)])
    covar = pd.DataFrame({"x": X[:, 1]}, index=ids)
    G3 = G[:, None, :] if k == 1 else G
    return src, pd.DataFrame(K, index=ids, columns=ids), pheno, covar, G3, X


def _quiet():
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
    return ctx


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("mode", ["fixed", "exact"])
def test_scan__one_marker_equals_fit_lmm_with_marker_as_covariate(k, mode):
    src, K, pheno, covar, G, X = _data(k=k)
    out = scan(src, pheno, covar, kinship=K, mode=mode)
    j, trait = 5, "t1"
    row = out[(out["marker"] == f"m{j}") & (out["trait"] == trait)].iloc[0]
    y = pheno[trait].to_numpy()
    Mj = G[:, 0, j] if k == 1 else G[:, 1:, j]
    Xa = np.column_stack([X, Mj])
    e0 = lmmlite.eigen_rotation(K.to_numpy(), y, X)
    e1 = lmmlite.eigen_rotation(K.to_numpy(), y, Xa)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        null = lmmlite.fit_lmm(e0.Kva, e0.y, e0.X, tol=1e-10)
        if mode == "fixed":
            h = null.hsq
        else:
            h = lmmlite.fit_lmm(e1.Kva, e1.y, e1.X, tol=1e-10).hsq
        ml1 = lmmlite.fit_lmm(e1.Kva, e1.y, e1.X, tol=1e-10, reml=False)
        ml0 = lmmlite.fit_lmm(e0.Kva, e0.y, e0.X, tol=1e-10, reml=False)
    sol = lmmlite.get_ml_soln(h, e1.Kva, e1.y, e1.X)
    n, p = Xa.shape
    S = 1.0 / (h * e1.Kva + 1 - h)
    cov_beta = sol.rss / (n - p) * np.linalg.inv((e1.X * S[:, None]).T @ e1.X)
    assert row["hsq"] == pytest.approx(h, abs=1e-6)
    if k == 1:
        assert row["beta"] == pytest.approx(sol.beta[-1], rel=1e-5)
        assert row["se"] == pytest.approx(np.sqrt(cov_beta[-1, -1]), rel=1e-5)
    else:
        got = [row[f"beta_{c}"] for c in range(2, k + 1)]
        np.testing.assert_allclose(got, sol.beta[-(k - 1) :], rtol=1e-5)
        np.testing.assert_allclose(
            [row[f"se_{c}"] for c in range(2, k + 1)],
            np.sqrt(np.diag(cov_beta)[-(k - 1) :]),
            rtol=1e-5,
        )
    if mode == "exact":
        lrt = 2 * (ml1.loglik - ml0.loglik)
        assert row["loglik"] == pytest.approx(ml1.loglik, rel=1e-9)
    else:
        r0 = lmmlite.get_ml_soln(h, e0.Kva, e0.y, e0.X).rss
        lrt = n * np.log(r0 / sol.rss)
    from scipy import stats

    df = 1 if k == 1 else k - 1  # probabilities sum to one: k - 1 free columns
    assert row["p_lrt"] == pytest.approx(stats.chi2.sf(lrt, df), rel=1e-4)
    assert row["lod"] == pytest.approx(lrt / (2 * np.log(10)), rel=1e-5)
    # Wald F on (k, n - p) df at the hsq used
    b = sol.beta[-(k - 1 if k > 1 else 1) :]
    V = cov_beta[-len(b) :, -len(b) :]
    F = b @ np.linalg.solve(V, b) / len(b)
    assert row["p_wald"] == pytest.approx(stats.f.sf(F, len(b), n - p), rel=1e-4)


def test_kinship__loco_equals_kinship_without_each_chromosome():
    src, *_ = _data(m=60)
    loco = kinship(src, loco=True, maf=0.0)
    assert set(loco) == {"1", "2", "X"}
    markers = src.markers
    for c, K in loco.items():
        keep = (markers["chr"] != c).to_numpy()
        sub = ArraySource(src.G[:, :, keep], src.samples, markers[keep])
        np.testing.assert_allclose(
            K.to_numpy(), kinship(sub, maf=0.0).to_numpy(), rtol=1e-12, atol=1e-14
        )


def test_kinship__probs_is_mean_allele_sharing():
    src, *_ = _data(k=4, m=12)
    K = kinship(src, method="probs").to_numpy()
    P = src.G
    want = np.einsum("ikm,jkm->ij", P, P) / P.shape[2]
    np.testing.assert_allclose(K, want, rtol=1e-12)


@pytest.mark.parametrize("mode", ["fixed", "exact"])
def test_scan__independent_of_chunk_size(mode):
    src, K, pheno, covar, *_ = _data()
    a = scan(src, pheno, covar, kinship=K, mode=mode, chunk_size=7)
    b = scan(src, pheno, covar, kinship=K, mode=mode, chunk_size=1000)
    # BLAS blocks the rotation U'G differently for different chunk widths (1e-16 rounding);
    # fixed mode passes that straight through, exact mode's Brent (tol 1e-7) may move within
    # its tolerance
    if mode == "fixed":
        pd.testing.assert_frame_equal(a, b, rtol=1e-10)
    else:
        assert_exact_scans_close(a, b)


def test_scan__independent_of_sample_order_in_inputs(tmp_path):
    src, K, pheno, covar, G, _ = _data()
    ref = scan(src, pheno, covar, kinship=K, mode="exact")
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(src.samples))
    # a dosage file whose sample columns are in another order, and shuffled tables
    ids = np.array(src.samples)[perm]
    table = pd.concat(
        [src.markers[["marker", "chr", "pos"]], pd.DataFrame(G[perm, 0, :].T, columns=ids)], axis=1
    )
    table.to_csv(tmp_path / "dose.csv", index=False)
    got = scan(
        DosageSource(tmp_path / "dose.csv"),
        pheno.iloc[rng.permutation(len(pheno))],
        covar.iloc[rng.permutation(len(covar))],
        kinship=K.iloc[perm[::-1], perm[::-1]],
        mode="exact",
    )
    assert_exact_scans_close(got, ref)


def test_scan__missing_phenotypes_and_extra_genotyped_samples():
    src, K, pheno, covar, *_ = _data(t=2)
    pheno = pheno.copy()
    pheno.iloc[:10, 0] = np.nan  # t0 misses 10 samples, t1 none
    out = scan(src, pheno.iloc[5:], covar, kinship=K)  # 5 genotyped samples have no phenotype
    n = out.groupby("trait")["n"].first()
    assert n["t0"] == 80 and n["t1"] == 85


def test_scan__phenotyped_sample_without_genotypes_is_an_error_or_dropped():
    src, K, pheno, covar, *_ = _data()
    extra = pheno.iloc[:2].copy()
    extra.index = ["ghost1", "ghost2"]
    P = pd.concat([pheno, extra])
    with pytest.raises(SampleMismatchError, match="ghost1"):
        scan(src, P, covar, kinship=K, samples="strict")
    with pytest.warns(lmmlite.SamplesDroppedWarning, match="ghost2"):
        out = scan(src, P, covar.reindex(P.index).fillna(0.0), kinship=K, samples="drop")
    assert out.attrs["dropped_samples"] == ["ghost1", "ghost2"]
    pd.testing.assert_frame_equal(out, scan(src, pheno, covar, kinship=K), rtol=1e-12)


def test_scan__untestable_markers_are_nan_with_a_reason():
    src, K, pheno, covar, G, X = _data()
    G = G.copy()
    G[:, 0, 0] = 1.0  # monomorphic
    G[:, 0, 1] = 2 * X[:, 1] + 1  # collinear with the covariate
    out = scan(ArraySource(G, src.samples, src.markers), pheno, covar, kinship=K)
    m0 = out[out["marker"] == "m0"]
    m1 = out[out["marker"] == "m1"]
    assert m0["note"].eq("monomorphic").all() and m0["p_wald"].isna().all()
    assert m1["note"].eq("collinear with covariates").all() and m1["beta"].isna().all()
    assert out[~out["marker"].isin(["m0", "m1"])]["p_wald"].notna().all()


@pytest.mark.parametrize(
    ("mode", "keep", "k"),
    [("exact", "all", 1), ("fixed", "all", 1), ("fixed", "max", 1), ("exact", "all", 3)],
)
def test_scan__monomorphic_markers_skipped_as_if_tested(monkeypatch, mode, keep, k):
    """Where the covariates span the constant vector, monomorphic markers are neither rotated
    nor searched: the table is the one that testing them (and finding them untestable) gives,
    to rounding (the products run over fewer markers)."""
    import lmmlite.planner

    src, K, pheno, covar, G, _ = _data(k=k, t=3)
    G = G.copy()
    for j in (0, 3, 4, 17):  # monomorphic among the analysed samples, in several chunks
        G[:, :, j] = G[0, :, j]
    src = ArraySource(G if k > 1 else G[:, 0, :], src.samples, src.markers)
    pheno += 3.0 * G[:, -1, 5][:, None]  # a QTL just after three monomorphic markers
    pheno.iloc[:5, 0] = np.nan  # two missing-data patterns
    kw = dict(kinship=K, mode=mode, keep=keep, chunk_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        skipped = scan(src, pheno, covar, **kw)
        monkeypatch.setattr(lmmlite.planner, "spans_constant", lambda X: False)
        tested = scan(src, pheno, covar, **kw)
    if keep == "all":
        mono = tested["marker"].isin(["m0", "m3", "m4", "m17"])
        assert tested.loc[mono, "note"].eq("monomorphic").all()
    else:
        assert tested["marker"].eq("m5").all()
    pd.testing.assert_frame_equal(skipped, tested, rtol=1e-9, atol=1e-12)


def test_spans_constant():
    from lmmlite.core.checks import spans_constant

    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 2))
    assert spans_constant(np.column_stack([np.ones(50), x]))
    assert spans_constant(np.column_stack([x[:, 0], 3.0 + 0.0 * x[:, 1]]))
    assert spans_constant(np.column_stack([x[:, 0] > 0, x[:, 0] <= 0]).astype(float))  # sexes
    assert not spans_constant(x)
    assert not spans_constant(np.column_stack([x, 1.0 + 1e-6 * rng.standard_normal(50)]))
    assert not spans_constant(np.empty((50, 0)))


def test_scan__loco_chromosomes_must_match():
    src, K, pheno, covar, *_ = _data()
    with pytest.raises(KinshipError, match="X"):
        scan(src, pheno, covar, kinship={"1": K, "2": K})


def test_plink__truncated_bed_is_reported(tmp_path, i188):
    for suffix in (".bim", ".fam"):
        (tmp_path / f"t{suffix}").write_bytes(Path(f"{i188}{suffix}").read_bytes())
    data = Path(f"{i188}.bed").read_bytes()
    (tmp_path / "t.bed").write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match="truncated"):
        PlinkSource(tmp_path / "t")


def test_bimbam__wrong_number_of_fields_is_reported(tmp_path):
    (tmp_path / "g.txt").write_text("rs1, A, T, 0, 1, 2\nrs2, A, T, 0, 1\n")
    (tmp_path / "a.txt").write_text("rs1 100 1\nrs2 200 1\n")
    with pytest.raises(FileFormatError, match="line 2"):
        BimbamSource(tmp_path / "g.txt", tmp_path / "a.txt")


def test_bimbam__marker_missing_from_annotation_is_reported(tmp_path):
    (tmp_path / "g.txt").write_text("rs1, A, T, 0, 1, 2\nrs9, A, T, 0, 1, 1\n")
    (tmp_path / "a.txt").write_text("rs1 100 1\nrs2 200 1\n")
    with pytest.raises(FileFormatError, match="rs9"):
        BimbamSource(tmp_path / "g.txt", tmp_path / "a.txt")


def test_scan__ml_fits_share_gemmas_bound_with_a_centred_kinship():
    # A centred kinship has a zero eigenvalue along the intercept, so the ML likelihood grows
    # without bound as hsq -> 1. Null and alternative fits must use the same interval (GEMMA's
    # lambda <= 1e5); otherwise the LRT compares different suprema and goes negative.
    from lmmlite.core.scan import fit_null

    gemma_bound = 1e5 / (1 + 1e5)
    rng = np.random.default_rng(8)
    n, m = 80, 30
    Z = rng.binomial(2, 0.5, size=(n, 400)).astype(float)
    Z -= Z.mean(axis=0)
    K = Z @ Z.T / 400  # centred: singular
    y = np.linalg.cholesky(0.97 * K + 0.03 * np.eye(n) + 1e-9 * np.eye(n)) @ rng.standard_normal(n)
    e = lmmlite.eigen_rotation(K, y, np.ones(n))
    null = fit_null(e.Kva, e.X, e.y[:, None])
    assert null.hsq_ml[0] == pytest.approx(gemma_bound, abs=1e-12)  # the supremum is the bound
    ids = [f"s{i}" for i in range(n)]
    G = rng.binomial(2, 0.5, size=(n, m)).astype(float)
    markers = pd.DataFrame({"marker": [f"m{j}" for j in range(m)], "chr": "1", "pos": np.arange(m)})
    out = scan(
        ArraySource(G, ids, markers),
        pd.DataFrame({"y": y}, index=ids),
        kinship=pd.DataFrame(K, index=ids, columns=ids),
        mode="exact",
    )
    assert out["p_lrt"].lt(1.0).mean() > 0.9  # LRT statistics are positive, not clipped at 0


def test_scan__missing_genotypes_are_mean_imputed_and_counted():
    src, K, pheno, covar, G, _ = _data()
    Gm = G.copy()
    Gm[[3, 7, 11], 0, 4] = np.nan
    got = scan(ArraySource(Gm, src.samples, src.markers), pheno, covar, kinship=K)
    Gi = Gm.copy()
    Gi[[3, 7, 11], 0, 4] = np.nanmean(Gm[:, 0, 4])
    want = scan(ArraySource(Gi, src.samples, src.markers), pheno, covar, kinship=K)
    pd.testing.assert_frame_equal(got.drop(columns="n_miss"), want.drop(columns="n_miss"))
    assert got.loc[got["marker"] == "m4", "n_miss"].eq(3).all()
    assert got.loc[got["marker"] != "m4", "n_miss"].eq(0).all()


def test_kinship__standardized_is_gemma_gk2_formula():
    # GEMMA -gk 2: centre each marker by its mean, divide by its standard deviation (divisor n,
    # missing genotypes set to the mean), average x x' over markers
    src, *_ = _data(m=30)
    G = src.G[:, 0, :].copy()
    G[[1, 5], 3] = np.nan
    K = kinship(
        ArraySource(G, src.samples, src.markers), method="standardized", maf=0.0, max_missing=1.0
    ).to_numpy()
    Gi = np.where(np.isnan(G), np.nanmean(G, axis=0), G)
    Z = (Gi - Gi.mean(axis=0)) / Gi.std(axis=0)
    np.testing.assert_allclose(K, Z @ Z.T / G.shape[1], rtol=1e-12, atol=1e-14)


def test_fixed_gemm__traits_sharing_an_hsq_equal_the_per_pair_kernel():
    """The GEMM path computes m'Sm and m'SQ once per distinct held hsq: with repeated values
    (0 and interior) it must equal the per-(marker, trait) Gram kernel, table and maxima."""
    from lmmlite.core.scan import fit_null, scan_best, scan_chunk, scan_fixed_gemm

    rng = np.random.default_rng(5)
    n, m, t = 70, 25, 7
    Z = rng.normal(size=(n, 30))
    K = Z @ Z.T / 30
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    Y = rng.normal(size=(n, t))
    e = lmmlite.eigen_rotation(K, Y, X)
    null = fit_null(e.Kva, e.X, e.y)
    h = np.array([0.0, 0.4, 0.0, 0.4, 0.9, 0.0, 0.4])
    G = rng.binomial(2, 0.3, size=(n, m)).astype(float)
    Mt = (G.T @ e.Kve_t.T)[:, None, :]
    want = scan_chunk(null, Mt.copy(), mode="fixed", hsq_fixed=h)
    got = scan_fixed_gemm(null, Mt.copy(), hsq_fixed=h)
    for key in ("lod", "beta", "se", "p_wald", "loglik"):
        np.testing.assert_allclose(getattr(got, key), getattr(want, key), rtol=1e-9, atol=1e-12)
    null.hsq_reml = h  # scan_best holds the null REML fits
    idx, best = scan_best(null, Mt.copy(), mode="fixed")
    np.testing.assert_array_equal(idx, np.argmax(want.lod, axis=0))
    np.testing.assert_allclose(best.lod, want.lod.max(axis=0), rtol=1e-9)


def test_scan__exact_with_many_traits_equals_each_trait_alone():
    """Six traits of one pattern are searched without series (more than SERIES_MAX_TRAITS:
    the kernels' searches); each alone, on its series: the same tests within the search's
    tolerance (effects to 1e-6 of their se, log10 p to 1e-6, hsq to 1e-6)."""
    from lmmlite.core.scan import SERIES_MAX_TRAITS

    rng = np.random.default_rng(77)
    n, m, t = 90, 60, SERIES_MAX_TRAITS + 2
    ids = [f"s{i}" for i in range(n)]
    G = rng.binomial(2, rng.uniform(0.1, 0.5, m), size=(n, m)).astype(float)
    Z = G - G.mean(axis=0)
    K = pd.DataFrame(Z @ Z.T / m + 0.05 * np.eye(n), index=ids, columns=ids)
    h = np.linspace(0.1, 0.9, t)
    Y = rng.standard_normal((n, t)) * np.sqrt(1 - h) + (
        np.linalg.cholesky(K.to_numpy()) @ rng.standard_normal((n, t))
    ) * np.sqrt(h)
    Y[:, 0] += 1.2 * (G[:, 5] - G[:, 5].mean())
    markers = pd.DataFrame({"marker": [f"m{j}" for j in range(m)], "chr": "1", "pos": range(m)})
    src = ArraySource(G, ids, markers)
    pheno = pd.DataFrame(Y, index=ids, columns=[f"t{j}" for j in range(t)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        together = scan(src, pheno, kinship=K, mode="exact").set_index(["trait", "marker"])
        alone = pd.concat(
            [scan(src, pheno[[c]], kinship=K, mode="exact") for c in pheno.columns]
        ).set_index(["trait", "marker"])
    got = together.loc[alone.index]
    assert np.all(np.abs(got["beta"] - alone["beta"]) <= 1e-6 * alone["se"])
    np.testing.assert_allclose(got["hsq"], alone["hsq"], rtol=0, atol=1e-6)
    for col in ("p_wald", "p_lrt", "p_score"):
        diff = np.abs(np.log10(got[col]) - np.log10(alone[col]))
        assert diff.max() <= 1e-6, (col, diff.max())


def _whitening_case(rng, n=80, m=40, t=3):
    """Rotated and sample-order markers of a small scan, with a monomorphic marker, one in the
    covariates' span and two identical pairs."""
    from lmmlite.core.scan import fit_null

    Z = rng.normal(size=(n, 25))
    K = Z @ Z.T / 25
    X = np.column_stack([np.ones(n), rng.binomial(1, 0.5, n)])
    G = rng.binomial(2, rng.uniform(0.1, 0.5, m), size=(n, m)).astype(float)
    G[:, 3] = 1.0  # monomorphic
    G[:, 5] = 2.0 * X[:, 1]  # in the covariates' span
    G[:, 9] = G[:, 8]
    G[:, 30] = G[:, 2]
    Y = rng.normal(size=(n, t)) + 0.8 * (G[:, [12]] - G[:, [12]].mean())
    e = lmmlite.eigen_rotation(K, Y, X)
    null = fit_null(e.Kva, e.X, e.y)
    U = e.Kve_t.T
    return null, K, U, X, G, (G.T @ U)[:, None, :]


def test_fixed_gemm__whitened_equals_rotated():
    """Traits sharing one held hsq, scanned in whitened coordinates (markers in sample order,
    a triangular solve) give the rotated scan's tests: effects to 1e-9 of their se, LODs and
    log10 p-values to 1e-9, the same untestable markers; the best marker per trait is the
    same, the first of identical markers. Distinct held hsq, or V not positive definite: no
    whitening."""
    from lmmlite.core.scan import fixed_parts, scan_best, scan_fixed_gemm, whitening

    rng = np.random.default_rng(31)
    null, K, U, X, G, Mt = _whitening_case(rng)
    for h in (0.0, 0.45, 0.97):
        parts = fixed_parts(null, np.full(null.model.t, h))
        wh = whitening(null, K, U, X, parts)
        assert wh is not None
        want = scan_fixed_gemm(null, Mt.copy(), parts=parts)
        got = scan_fixed_gemm(null, G.T[:, None, :].copy(), whiten=wh)
        np.testing.assert_array_equal(got.testable, want.testable)
        assert not got.testable[3] and not got.testable[5] and got.testable.sum() == 38
        ok = want.testable
        assert np.all(np.abs(got.beta[ok] - want.beta[ok]) <= 1e-9 * want.se[ok])
        np.testing.assert_allclose(got.se[ok], want.se[ok], rtol=1e-9)
        np.testing.assert_allclose(got.lod[ok], want.lod[ok], rtol=1e-9, atol=1e-9)
        for key in ("p_wald", "p_lrt", "p_score"):
            a, b = np.log10(getattr(got, key)[ok]), np.log10(getattr(want, key)[ok])
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-9, err_msg=key)
        np.testing.assert_allclose(got.loglik[ok], want.loglik[ok], rtol=1e-12)
        assert np.all(np.isnan(got.lod[~ok]))
        null.hsq_reml = np.full(null.model.t, h)  # scan_best holds the null REML fits
        i_want, b_want = scan_best(null, Mt.copy(), mode="fixed", parts=parts)
        i_got, b_got = scan_best(null, G.T[:, None, :].copy(), mode="fixed", whiten=wh)
        np.testing.assert_array_equal(i_got, i_want)
        np.testing.assert_allclose(b_got.lod, b_want.lod, rtol=1e-9)
    assert whitening(null, K, U, X, fixed_parts(null, np.array([0.2, 0.5, 0.5]))) is None
    lam, V = np.linalg.eigh(K)
    bad = (V * np.where(lam == lam.min(), -1.0, lam)) @ V.T  # an eigenvalue -1
    parts = fixed_parts(null, np.full(null.model.t, 0.9))  # 0.9 (-1) + 0.1 < 0
    assert whitening(null, bad, U, X, parts) is None


def test_solve_lower__equals_a_dense_solve_with_or_without_the_lock():
    from lmmlite.core._blas import solve_lower

    rng = np.random.default_rng(2)
    A = rng.normal(size=(50, 50))
    L = np.asfortranarray(np.linalg.cholesky(A @ A.T + 50 * np.eye(50)))
    L[np.triu_indices(50, 1)] = 7.0  # the upper triangle is not read
    B = rng.normal(size=(50, 6))
    want = np.linalg.solve(np.tril(L), B)
    for nogil in (True, False):
        got = solve_lower(L, np.asfortranarray(B), nogil=nogil)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="Fortran-ordered float64"):
        solve_lower(L, np.ascontiguousarray(B))
    with pytest.raises(ValueError, match="square with B's rows"):
        solve_lower(L[:40, :40], np.asfortranarray(B))


@pytest.mark.parametrize("keep", ["all", "max"])
def test_scan__whitened_fixed_scan_equals_the_rotated_one(monkeypatch, keep):
    """The planner's whitened fixed-hsq scan (one trait per batch: its only hsq) against the
    same scan with whitening switched off, with missing genotypes and phenotypes, and the
    permutation test of the permuted genotypes (which scans whitened copies too)."""
    from lmmlite.permutation import permutation_test
    from lmmlite.planner import ScanPlan

    rng = np.random.default_rng(40)
    n, m = 90, 120
    ids = [f"s{i}" for i in range(n)]
    G = rng.binomial(2, rng.uniform(0.1, 0.5, m), size=(n, m)).astype(float)
    Z = G - G.mean(axis=0)
    K = pd.DataFrame(Z @ Z.T / m + 0.05 * np.eye(n), index=ids, columns=ids)
    y = rng.normal(size=n) + 0.9 * (G[:, 17] - G[:, 17].mean())
    y[[4, 40]] = np.nan
    G[rng.random((n, m)) < 0.02] = np.nan
    markers = pd.DataFrame({"marker": [f"m{j}" for j in range(m)], "chr": "1", "pos": range(m)})
    src = ArraySource(G, ids, markers)
    pheno = pd.DataFrame({"y": y}, index=ids)
    made = []
    whitening = lmmlite.planner.whitening

    def counted(*args):
        made.append(whitening(*args))
        return made[-1]

    monkeypatch.setattr(lmmlite.planner, "whitening", counted)
    got = scan(src, pheno, kinship=K, keep=keep)
    perm = permutation_test(src, pheno, kinship=K, n_perm=20, seed=3, method="genotypes")
    assert len(made) == 2 and all(w is not None for w in made)
    monkeypatch.setattr(ScanPlan, "_whitens", lambda self: False)
    want = scan(src, pheno, kinship=K, keep=keep)
    want_perm = permutation_test(src, pheno, kinship=K, n_perm=20, seed=3, method="genotypes")
    assert len(made) == 2
    pd.testing.assert_frame_equal(
        got.drop(columns=["beta", "se", "lod", "p_wald", "p_lrt", "p_score", "loglik"]),
        want.drop(columns=["beta", "se", "lod", "p_wald", "p_lrt", "p_score", "loglik"]),
    )
    assert np.all(np.abs(got["beta"] - want["beta"]) <= 1e-9 * want["se"])
    for col in ("se", "lod", "p_wald", "p_lrt", "p_score", "loglik"):
        np.testing.assert_allclose(got[col], want[col], rtol=1e-9, atol=1e-10, err_msg=col)
    np.testing.assert_allclose(perm["max_lod"], want_perm["max_lod"], rtol=1e-9, atol=1e-10)


def test_scan__whitened_solves_run_on_one_blas_thread(i188, tmp_path):
    """The tasks' triangular solves use SciPy's BLAS: during each, every BLAS library loaded
    (NumPy's and SciPy's) is limited to one thread (the tasks run side by side). In a fresh
    process, where SciPy's linear algebra is not loaded before the scan (it loads it before
    it sets the limits: threadpoolctl limits the libraries loaded)."""
    out = tmp_path / "scan.tsv"
    code = f"""
import sys, threadpoolctl
import lmmlite.cli as cli
from lmmlite.core import scan as core_scan
assert "scipy.linalg" not in sys.modules
seen, solve = [], core_scan.solve_lower
def watched(L, B, **kw):
    info = threadpoolctl.threadpool_info()
    seen.append({{i["filepath"]: i["num_threads"] for i in info if i["user_api"] == "blas"}})
    return solve(L, B, **kw)
core_scan.solve_lower = watched
assert cli.main(["scan", "--bfile", {str(i188)!r}, "--threads", "2", "--out", {str(out)!r}]) == 0
assert len(seen) > 1 and all(set(s.values()) == {{1}} for s in seen), seen
assert any("scipy" in path and "64" not in path for path in seen[-1]), seen
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr


#: The naive scan's brute-force hsq is located to ~1e-10, the fast scan's null to 1e-10 and (in
#: exact mode) each marker's to Brent's 1e-7: effects agree in units of their se, p-values in
#: log10, to these bounds (rounding alone would give ~1e-12).
NAIVE_FIXED_RTOL = 1e-6
NAIVE_EXACT_SE_ATOL = 1e-3
NAIVE_EXACT_LOG10P_ATOL = 1e-4


@pytest.mark.parametrize("mode", ["fixed", "exact"])
def test_scan__equals_a_naive_dense_gls_scan(mode):
    """Both modes against per-marker GLS with a dense V^-1 (tests/reference/gls.py), several
    traits with missing values (each its own pattern) and missing genotypes."""
    from reference.gls import naive_scan

    rng = np.random.default_rng(12)
    n, m, t = 70, 300 if mode == "fixed" else 25, 3
    ids = [f"s{i}" for i in range(n)]
    G = rng.binomial(2, rng.uniform(0.1, 0.9, m), size=(n, m)).astype(float)
    Z = G - G.mean(axis=0)
    K = Z @ Z.T / m + 0.05 * np.eye(n)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    noise = np.linalg.cholesky(0.6 * K + 0.4 * np.eye(n)) @ rng.normal(size=(n, t))
    Y = (X @ [1.0, 0.5])[:, None] + noise
    Y[:, :2] += 1.5 * (G[:, [7]] - 1.0)
    Y[rng.random((n, t)) < 0.1] = np.nan
    Gm = G.copy()
    Gm[rng.random((n, m)) < 0.02] = np.nan
    markers = pd.DataFrame({"marker": [f"m{j}" for j in range(m)], "chr": "1", "pos": range(m)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        got = scan(
            ArraySource(Gm, ids, markers),
            pd.DataFrame(Y, index=ids, columns=[f"t{j}" for j in range(t)]),
            pd.DataFrame({"x": X[:, 1]}, index=ids),
            kinship=pd.DataFrame(K, index=ids, columns=ids),
            mode=mode,
        )
    want = naive_scan(Gm, K, Y, X, mode=mode, markers=list(range(m)))
    got = got.set_index(["trait", "marker"]).loc[
        pd.MultiIndex.from_frame(want[["trait", "marker"]])
    ]
    se = want["se"].to_numpy()
    if mode == "fixed":
        # a maximiser is located only to ~sqrt(eps): the log likelihood changes by ~1e-13
        # (its rounding) over 2e-7 of hsq near its top, so hsq is compared absolutely
        np.testing.assert_allclose(got["hsq"], want["hsq"], rtol=0, atol=EXACT_HSQ_ATOL)
        for col in ("se", "p_wald", "p_lrt", "p_score"):
            np.testing.assert_allclose(got[col], want[col], rtol=NAIVE_FIXED_RTOL, err_msg=col)
        # LOD ~ log(rss0/rss1) of nearly equal numbers at null markers: absolutely there
        np.testing.assert_allclose(got["lod"], want["lod"], rtol=NAIVE_FIXED_RTOL, atol=1e-7)
        assert np.all(np.abs(got["beta"].to_numpy() - want["beta"]) <= 1e-6 * se)
    else:
        assert np.all(np.abs(got["beta"].to_numpy() - want["beta"]) <= NAIVE_EXACT_SE_ATOL * se)
        np.testing.assert_allclose(got["se"], want["se"], rtol=NAIVE_EXACT_SE_ATOL)
        np.testing.assert_allclose(got["hsq"], want["hsq"], atol=1e-5)
        for col in ("p_wald", "p_lrt", "p_score"):
            diff = np.abs(np.log10(got[col].to_numpy()) - np.log10(want[col].to_numpy()))
            assert diff.max() <= NAIVE_EXACT_LOG10P_ATOL, (col, diff.max())
    assert want.groupby("trait")["lod"].max()[["t0", "t1"]].min() > 3  # a real QTL is tested


@pytest.mark.parametrize(
    "lines",
    [
        ["rs#1, A, T, 0, NA, 2", "rsNA, A, T, 0.5, 1, 1.5"],  # comma-separated, NA, '#'
        ["rs1 A T 0 NA 2", "rsNA A T 0.5 1 1.5"],  # whitespace-separated
        ["rs1,A,T,0,NA,2", "rsNA, A , T,0.5 , 1,1.5"],  # spaces here and there
        ["rs1, A, T, 0, NA, 2", "rsNA A T 0.5 1 1.5"],  # mixed lines
    ],
)
def test_bimbam__fast_parser_reads_what_the_field_splitter_reads(tmp_path, lines):
    (tmp_path / "g.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "a.txt").write_text(
        "rs#1 100 1\nrsNA 200 1\n" if "#" in lines[0] else "rs1 100 1\nrsNA 200 1\n"
    )
    src = BimbamSource(tmp_path / "g.txt", tmp_path / "a.txt")
    got = next(src.iter_runs([(0, 2)]))[:, 0, :].T
    want = np.array([[0.0, np.nan, 2.0], [0.5, 1.0, 1.5]])
    np.testing.assert_array_equal(got, want)
    assert list(src.markers["marker"]) == [lines[0].split(",")[0].split()[0], "rsNA"]
    assert list(src.markers["allele1"]) == ["A", "A"]


def test_bimbam__bad_dose_is_named(tmp_path):
    (tmp_path / "g.txt").write_text("rs1, A, T, 0, 1, 2\nrs2, A, T, 0, x1, 1\n")
    (tmp_path / "a.txt").write_text("rs1 100 1\nrs2 200 1\n")
    src = BimbamSource(tmp_path / "g.txt", tmp_path / "a.txt")
    with pytest.raises(FileFormatError, match=r"rs2.*'x1'"):
        next(src.iter_runs([(0, 2)]))


def test_scan__hsq_grid_holds_the_rounded_null_hsq_as_a_naive_gls_scan_does():
    """--hsq-grid: each trait's null REML hsq rounded to the grid is held; every statistic is
    that of a dense GLS scan at the rounded hsq."""
    from reference.gls import naive_scan

    rng = np.random.default_rng(21)
    n, m, t, step = 60, 80, 4, 0.05
    ids = [f"s{i}" for i in range(n)]
    G = rng.binomial(2, rng.uniform(0.1, 0.9, m), size=(n, m)).astype(float)
    Z = G - G.mean(axis=0)
    K = Z @ Z.T / m + 0.05 * np.eye(n)
    X = np.ones((n, 1))
    Y = np.linalg.cholesky(0.5 * K + 0.5 * np.eye(n)) @ rng.normal(size=(n, t))
    Y[:, 0] += G[:, 3] - 1.0
    Y[rng.random((n, t)) < 0.05] = np.nan
    markers = pd.DataFrame({"marker": [f"m{j}" for j in range(m)], "chr": "1", "pos": range(m)})
    args = (
        ArraySource(G, ids, markers),
        pd.DataFrame(Y, index=ids, columns=[f"t{j}" for j in range(t)]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        kin = pd.DataFrame(K, index=ids, columns=ids)
        got = scan(*args, kinship=kin, hsq_grid=step)
        plain = scan(*args, kinship=kin)
    want = naive_scan(G, K, Y, X, mode="fixed", markers=list(range(m)), hsq_grid=step)
    got = got.set_index(["trait", "marker"]).loc[
        pd.MultiIndex.from_frame(want[["trait", "marker"]])
    ]
    h = got["hsq"].to_numpy()
    np.testing.assert_allclose(h, want["hsq"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(h / step, np.round(h / step), rtol=0, atol=1e-9)
    assert not np.allclose(h, plain.set_index(["trait", "marker"]).loc[got.index, "hsq"])
    for col in ("se", "p_wald", "p_lrt", "p_score"):
        np.testing.assert_allclose(got[col], want[col], rtol=NAIVE_FIXED_RTOL, err_msg=col)
    np.testing.assert_allclose(got["lod"], want["lod"], rtol=NAIVE_FIXED_RTOL, atol=1e-7)


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"hsq_grid": 0.0}, "grid step"), ({"hsq_grid": 0.7}, "grid step"),
     ({"hsq_grid": 0.01, "mode": "exact"}, "mode='fixed'")],
)  # fmt: skip
def test_scan__bad_hsq_grid_is_refused(kw, match):
    src, K, pheno, covar, *_ = _data()
    with pytest.raises(lmmlite.InputError, match=match):
        scan(src, pheno, covar, kinship=K, **kw)


def test_distinct_rows__first_of_each_set_of_identical_rows():
    """Identical markers are tested once (keep=max, fixed mode): the rows kept are the first
    of each set of bit-identical rows, against a brute force by bytes; a row differing in its
    last bit, or only by the sign of a zero, is kept."""
    from lmmlite.core.scan import distinct_rows

    rng = np.random.default_rng(5)
    M = rng.normal(size=(300, 17))
    src = rng.integers(0, 300, 120)
    dst = rng.integers(0, 300, 120)
    M[dst] = M[src]  # duplicates, some of rows that are themselves copied over later
    M[7] = np.nextafter(M[3], np.inf)  # one bit away from row 3
    M[8] = 0.0
    M[9] = -0.0  # equal to row 8 numerically, not bit for bit
    first: dict[bytes, int] = {}
    for i, row in enumerate(M):
        first.setdefault(row.tobytes(), i)
    want = np.array(sorted(first.values()))
    got = distinct_rows(M)
    np.testing.assert_array_equal(got, want)
    assert 7 in got and 8 in got and 9 in got
    np.testing.assert_array_equal(distinct_rows(M[:1]), [0])
    np.testing.assert_array_equal(distinct_rows(M[want]), np.arange(want.size))


def test_scan_best__identical_markers_tested_once_give_the_full_scans_best():
    """keep=max tests one of each set of identical markers: the same best marker (the first
    of its set) and statistics as the best row of the full table."""
    rng = np.random.default_rng(8)
    n, m, t = 70, 120, 6
    ids = [f"s{i}" for i in range(n)]
    G = rng.binomial(2, 0.5, (n, m)).astype(float)
    G[:, 1::2] = G[:, 0::2]  # every odd marker repeats the one before it
    Y = G[:, [10, 41]] @ rng.normal(0, 1.0, (2, t)) + rng.normal(size=(n, t))
    markers = pd.DataFrame({"marker": [f"m{j}" for j in range(m)], "chr": "1", "pos": range(m)})
    src = ArraySource(G, ids, markers)
    P = pd.DataFrame(Y, index=ids, columns=[f"t{j}" for j in range(t)])
    full = scan(src, P, chunk_size=50)
    best = scan(src, P, chunk_size=50, keep="max").set_index("trait")
    want = full.loc[full.groupby("trait")["lod"].idxmax()].set_index("trait").loc[best.index]
    assert (best["marker"].str[1:].astype(int) % 2 == 0).all()  # the first of each pair
    assert (best["marker"] == want["marker"]).all()
    for col in ("lod", "beta", "se", "p_wald"):
        np.testing.assert_allclose(best[col], want[col], rtol=1e-10, err_msg=col)
