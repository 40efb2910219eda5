"""Golden values from GEMMA 0.98.5 (see ../shared/data/README.md for the exact commands)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import DATA
from lmmlite.io.genotypes import BimbamSource, PlinkSource
from lmmlite.kinship import kinship
from lmmlite.scan import scan

BXD = DATA / "bxd"
I188 = DATA / "gemma_issue188"
#: GEMMA writes the kinship with 10 significant digits.
KINSHIP_ATOL = 1e-6
#: GEMMA's Newton step stops at |delta lambda| < 1e-5, so its per-marker hsq is accurate to
#: ~1e-7 only; beta moves with hsq (d beta/d hsq ~ se), which for a beta near zero is a large
#: relative change. Effects are therefore compared to 1e-4 relative *or* 1e-4 of their se.
EFFECT_RTOL = 1e-4
LOG10P_ATOL = 0.01


def _bxd():
    src = BimbamSource(BXD / "BXD_geno.txt.gz", BXD / "BXD_snps.txt")
    # BIMBAM phenotype and covariate files have no ids: they follow the genotype file's order
    y = pd.read_csv(BXD / "BXD_pheno.txt", header=None, names=["y"])
    y.index = src.samples
    cov = pd.read_csv(BXD / "BXD_covariates2.txt", sep="\t", header=None).iloc[:, :2]
    cov.index = src.samples
    cov.columns = ["c1", "c2"]
    return src, y, cov


def _centred(K: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    """GEMMA double-centres the kinship over the analysed samples before fitting."""
    n = len(ids)
    P = np.eye(n) - 1.0 / n
    return pd.DataFrame(P @ K.loc[ids, ids].to_numpy() @ P, index=ids, columns=ids)


def test_kinship__equals_gemma_cxx_on_bxd():
    # gemma -g BXD_geno.txt.gz -p BXD_pheno.txt -c BXD_covariates2.txt -a BXD_snps.txt -gk 1
    src, y, cov = _bxd()
    keep = y["y"].notna().to_numpy()
    ids = list(y.index[keep])
    W = np.column_stack([cov.to_numpy()[keep], np.ones(keep.sum())])  # GEMMA's trailing tab
    K = kinship(src, filter_samples=ids, filter_covariates=W)
    ref = np.loadtxt(BXD / "BXD.cXX.txt")
    np.testing.assert_allclose(K.to_numpy(), ref, rtol=0, atol=KINSHIP_ATOL)


def test_kinship__equals_gemma_cxx_on_plink():
    # gemma -bfile 2000 -gk 1 -o i188
    src = PlinkSource(I188 / "2000")
    ph = src.fam_phenotypes()
    K = kinship(src, filter_samples=list(ph.index[ph["pheno1"].notna()]))
    np.testing.assert_allclose(
        K.to_numpy(), np.loadtxt(I188 / "i188.cXX.txt"), rtol=0, atol=KINSHIP_ATOL
    )


def _compare(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    ours = ours.set_index("marker").loc[ref["rs"].astype(str)]
    assert ours["note"].eq("").all()
    cols = ["beta", "se", "p_wald", "p_lrt", "p_score", "hsq"]
    assert np.isfinite(ours[cols].to_numpy()).all()  # lmmlite gives a result everywhere
    # GEMMA's REML Newton step fails on a few markers (nan beta, se, l_remle and p_wald in its
    # table, "Newton did not converge"); compare where GEMMA has a value
    ok = np.isfinite(ref["l_remle"].to_numpy())
    assert ok.mean() > 0.99
    ours, ref = ours[ok], ref[ok]
    for col in ("beta", "se"):
        a, b = ours[col].to_numpy(), ref[col].to_numpy()
        tol = EFFECT_RTOL * np.maximum(np.abs(b), ref["se"].to_numpy())
        assert np.all(np.abs(a - b) <= tol), col
    assert np.all(np.abs(ours["se"] / ref["se"].to_numpy() - 1) <= EFFECT_RTOL)
    for col in ("p_wald", "p_lrt", "p_score"):
        diff = np.abs(np.log10(ours[col].to_numpy()) - np.log10(ref[col].to_numpy()))
        assert diff.max() <= LOG10P_ATOL, col
    np.testing.assert_allclose(ours["af"], ref["af"], atol=5e-4)  # GEMMA prints 3 decimals
    l_remle = ref["l_remle"].to_numpy()
    # GEMMA's hsq is bounded below by lambda = 1e-5 (hsq ~ 1e-5), lmmlite's by 0
    np.testing.assert_allclose(ours["hsq"], l_remle / (1 + l_remle), atol=2e-5)


def test_scan_exact__matches_gemma_lmm4_on_bxd():
    # gemma -g BXD_geno.txt.gz -p BXD_pheno.txt -c BXD_covariates2.txt -a BXD_snps.txt
    #       -k BXD.cXX.txt -lmm 4 -o BXD_lmm4
    src, y, cov = _bxd()
    ids = list(y.index[y["y"].notna()])
    K = pd.DataFrame(np.loadtxt(BXD / "BXD.cXX.txt"), index=src.samples, columns=src.samples)
    out = scan(src, y, cov, kinship=_centred(K, ids), mode="exact")
    ref = pd.read_csv(BXD / "BXD_lmm4.assoc.txt", sep="\t")
    assert len(ref) == 7317
    _compare(out, ref)


def test_scan_exact__matches_gemma_lmm4_on_plink():
    # gemma -bfile 2000 -lmm 4 -n 1 -k i188.cXX.txt -o i188_lmm4
    src = PlinkSource(I188 / "2000")
    ph = src.fam_phenotypes()
    ids = list(ph.index[ph["pheno1"].notna()])
    K = pd.DataFrame(np.loadtxt(I188 / "i188.cXX.txt"), index=src.samples, columns=src.samples)
    out = scan(src, ph, kinship=_centred(K, ids), mode="exact")
    ref = pd.read_csv(I188 / "i188_lmm4.assoc.txt", sep="\t")
    assert len(ref) == 1850
    _compare(out, ref)


def test_scan__center_kinship_option_equals_explicit_centring():
    src = PlinkSource(I188 / "2000")
    ph = src.fam_phenotypes()
    ids = list(ph.index[ph["pheno1"].notna()])
    K = pd.DataFrame(np.loadtxt(I188 / "i188.cXX.txt"), index=src.samples, columns=src.samples)
    a = scan(src, ph, kinship=K, mode="fixed", center_kinship=True)
    b = scan(src, ph, kinship=_centred(K, ids), mode="fixed")
    # two centring computations (means vs P K P) round differently at 1e-16; the null hsq and
    # hence the effects follow to ~1e-8
    for col in ("se", "p_wald", "p_lrt", "p_score", "hsq"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-6, err_msg=col)
    # LOD ~ log(rss0/rss1) cancels for null markers: compare it absolutely
    np.testing.assert_allclose(a["lod"], b["lod"], rtol=1e-6, atol=1e-8)
    assert np.all(np.abs(a["beta"] - b["beta"]) <= 1e-6 * (np.abs(b["beta"]) + b["se"]))


def test_scan__null_hsq_equals_gemma_vg_over_vg_plus_ve():
    # BXD_lmm4.log.txt: vg = 0.000921085, ve = 0.222324 (REML null model)
    src, y, cov = _bxd()
    ids = list(y.index[y["y"].notna()])
    K = pd.DataFrame(np.loadtxt(BXD / "BXD.cXX.txt"), index=src.samples, columns=src.samples)
    out = scan(src, y, cov, kinship=_centred(K, ids), mode="fixed")
    assert out["hsq"].nunique() == 1
    assert out["hsq"].iloc[0] == pytest.approx(0.000921085 / (0.000921085 + 0.222324), rel=1e-5)
