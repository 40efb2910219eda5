"""Golden values from GEMMA 0.98.5 (tests/data/README.md gives the exact commands)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import BXD, I188
from lmmlite.io.genotypes import BimbamSource, PlinkSource
from lmmlite.kinship import kinship
from lmmlite.scan import scan
from reference.gemma import compare_with_gemma

#: GEMMA writes the kinship with 10 significant digits.
KINSHIP_ATOL = 1e-6


def bxd_inputs():
    """The BXD example as the API takes it: genotype source, phenotype and covariates (BIMBAM
    phenotype and covariate files have no ids: they follow the genotype file's order)."""
    src = BimbamSource(BXD / "BXD_geno.txt.gz", BXD / "BXD_snps.txt.gz")
    y = pd.read_csv(BXD / "BXD_pheno.txt", header=None, names=["y"])
    y.index = src.samples
    cov = pd.read_csv(BXD / "BXD_covariates2.txt", sep="\t", header=None).iloc[:, :2]
    cov.index = src.samples
    cov.columns = ["c1", "c2"]
    return src, y, cov


@pytest.fixture(scope="module")
def i188_kinship(i188) -> pd.DataFrame:
    """GEMMA's -gk 1 kinship of the issue188 set, recomputed (GEMMA's 14 MB file is checked on
    its first 40 rows and its diagonal in test_kinship__equals_gemma_cxx_on_plink)."""
    src = PlinkSource(i188)
    ph = src.fam_phenotypes()
    return kinship(src, filter_samples=list(ph.index[ph["pheno1"].notna()]))


def _centred(K: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    """GEMMA double-centres the kinship over the analysed samples before fitting."""
    n = len(ids)
    P = np.eye(n) - 1.0 / n
    return pd.DataFrame(P @ K.loc[ids, ids].to_numpy() @ P, index=ids, columns=ids)


def test_kinship__equals_gemma_cxx_on_bxd():
    # gemma -g BXD_geno.txt.gz -p BXD_pheno.txt -c BXD_covariates2.txt -a BXD_snps.txt -gk 1
    src, y, cov = bxd_inputs()
    keep = y["y"].notna().to_numpy()
    ids = list(y.index[keep])
    W = np.column_stack([cov.to_numpy()[keep], np.ones(keep.sum())])  # GEMMA's trailing tab
    K = kinship(src, filter_samples=ids, filter_covariates=W)
    ref = np.loadtxt(BXD / "BXD.cXX.txt.gz")
    np.testing.assert_allclose(K.to_numpy(), ref, rtol=0, atol=KINSHIP_ATOL)


def test_kinship__equals_gemma_cxx_on_plink(i188_kinship):
    # gemma -bfile 2000 -gk 1 -o i188; the fixture keeps GEMMA's first 40 rows and diagonal
    K = i188_kinship.to_numpy()
    rows = np.loadtxt(I188 / "i188.cXX.rows1-40.txt.gz")
    assert rows.shape == (40, 1008)
    np.testing.assert_allclose(K[:40], rows, rtol=0, atol=KINSHIP_ATOL)
    diag = np.loadtxt(I188 / "i188.cXX.diagonal.txt")
    np.testing.assert_allclose(np.diag(K), diag, rtol=0, atol=KINSHIP_ATOL)


def test_scan_exact__matches_gemma_lmm4_on_bxd():
    # gemma -g BXD_geno.txt.gz -p BXD_pheno.txt -c BXD_covariates2.txt -a BXD_snps.txt
    #       -k BXD.cXX.txt -lmm 4 -o BXD_lmm4
    src, y, cov = bxd_inputs()
    ids = list(y.index[y["y"].notna()])
    K = pd.DataFrame(np.loadtxt(BXD / "BXD.cXX.txt.gz"), index=src.samples, columns=src.samples)
    out = scan(src, y, cov, kinship=_centred(K, ids), mode="exact")
    ref = pd.read_csv(BXD / "BXD_lmm4.assoc.txt.gz", sep="\t")
    assert len(ref) == 7317
    compare_with_gemma(out, ref)


def test_scan_exact__matches_gemma_lmm4_on_plink(i188, i188_kinship):
    # gemma -bfile 2000 -lmm 4 -n 1 -k i188.cXX.txt -o i188_lmm4
    src = PlinkSource(i188)
    ph = src.fam_phenotypes()
    ids = list(ph.index[ph["pheno1"].notna()])
    out = scan(src, ph, kinship=_centred(i188_kinship, ids), mode="exact")
    ref = pd.read_csv(I188 / "i188_lmm4.assoc.txt.gz", sep="\t")
    assert len(ref) == 1850
    compare_with_gemma(out, ref)


def test_scan__center_kinship_option_equals_explicit_centring(i188, i188_kinship):
    src = PlinkSource(i188)
    ph = src.fam_phenotypes()
    ids = list(ph.index[ph["pheno1"].notna()])
    K = i188_kinship
    a = scan(src, ph, kinship=K, mode="fixed", center_kinship=True)
    b = scan(src, ph, kinship=_centred(K, ids), mode="fixed")
    # two centring computations (means vs P K P) round differently at 1e-16; the null hsq, a
    # maximum located by Brent to 1e-10 on a flat likelihood, then moves by up to ~1e-7 (more
    # with the NumPy twins' rounding), and the statistics with it: hsq absolutely, p-values in
    # log10, the LOD (log(rss0/rss1), cancelling at null markers) absolutely, effects in se
    np.testing.assert_allclose(a["hsq"], b["hsq"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(a["se"], b["se"], rtol=1e-5)
    for col in ("p_wald", "p_lrt", "p_score"):
        np.testing.assert_allclose(np.log10(a[col]), np.log10(b[col]), atol=1e-5, err_msg=col)
    np.testing.assert_allclose(a["lod"], b["lod"], rtol=1e-5, atol=1e-7)
    assert np.all(np.abs(a["beta"] - b["beta"]) <= 1e-5 * b["se"])


def test_scan__null_hsq_equals_gemma_vg_over_vg_plus_ve():
    # BXD_lmm4.log.txt: vg = 0.000921085, ve = 0.222324 (REML null model)
    src, y, cov = bxd_inputs()
    ids = list(y.index[y["y"].notna()])
    K = pd.DataFrame(np.loadtxt(BXD / "BXD.cXX.txt.gz"), index=src.samples, columns=src.samples)
    out = scan(src, y, cov, kinship=_centred(K, ids), mode="fixed")
    assert out["hsq"].nunique() == 1
    hsq = out["hsq"].iloc[0]
    assert hsq == pytest.approx(0.000921085 / (0.000921085 + 0.222324), rel=1e-5)
    # GEMMA's pve = 0.00100086 scales vg by the centred kinship's mean diagonal t (README)
    Kc = _centred(K, ids).loc[ids, ids].to_numpy()
    t = np.trace(Kc) / len(ids)
    assert hsq * t / (hsq * t + 1 - hsq) == pytest.approx(0.00100086, rel=1e-5)
