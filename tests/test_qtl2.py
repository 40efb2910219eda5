"""Golden values from R/qtl2 0.43-5 (tests/data/README.md gives the R commands): its kinship,
heritability, genome scans (Haley-Knott and LMM, overall and LOCO kinships, the X chromosome
with Xcovar, interactive covariates) and scan1coef, on its iron (F2), grav2 (RIL), a simulated
backcross and a small Diversity Outbred cross; and GEMMA's -gxe on the BXD example.

The R setup (iron) is::

    library(qtl2)
    iron <- read_cross2(system.file("extdata", "iron.zip", package="qtl2"))
    pr <- calc_genoprob(iron, iron$gmap, error_prob=0.002)
    sex <- (iron$covar$sex == "m")*1; names(sex) <- rownames(iron$covar)
    Xcovar <- get_x_covar(iron)
    K <- calc_kinship(pr); K_loco <- calc_kinship(pr, "loco")
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import lmmlite
from conftest import BXD, DATA
from lmmlite.cli import main
from lmmlite.effects import scan_coef
from lmmlite.io.genotypes import ArraySource, ProbsSource, allele_probabilities

Q2 = DATA / "qtl2"
#: Kinships are sums of products of probabilities: equal to rounding.
KINSHIP_ATOL = 1e-12
#: Haley-Knott LODs: the same least squares (R/qtl2's QR, lmmlite's Gram matrices): rounding.
HK_RTOL = 1e-10
#: LMM LODs move with hsq, a maximum located by Brent (tol 1e-12 in R/qtl2, 1e-10 here) on a
#: likelihood that each implementation rounds differently: ~1e-7 in hsq, 1e-6 of the LOD
#: (compared relative to max(1, LOD)).
LMM_RTOL = 1e-6
HSQ_ATOL = 1e-6


def _frame(name: str, **kw) -> pd.DataFrame:
    return pd.read_csv(Q2 / name, dtype={"id": str}, **kw).set_index("id")


def _quiet(func, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        return func(*args, **kw)


@pytest.fixture(scope="module")
def iron():
    src = ProbsSource(Q2 / "iron_probs.npz")
    pheno = _frame("iron_pheno.csv")
    sex = _frame("iron_sex.csv")
    xcovar = _frame("iron_Xcovar.csv")
    return src, pheno, sex, xcovar


@pytest.fixture(scope="module")
def iron_kinships(iron):
    src = iron[0]
    return lmmlite.kinship(src, method="probs"), lmmlite.kinship(src, method="probs", loco=True)


def _rows(name: str) -> pd.DataFrame:
    K = pd.read_csv(Q2 / name, index_col=0, dtype={"id": str})
    K.index = K.index.astype(str)
    return K


def _assert_lod(ours: pd.DataFrame, ref: pd.Series, trait: str, rtol: float) -> None:
    got = ours[ours["trait"] == trait].set_index("marker")["lod"].loc[ref.index]
    diff = np.abs(got.to_numpy() - ref.to_numpy()) / np.maximum(1.0, np.abs(ref.to_numpy()))
    assert diff.max() <= rtol, (trait, diff.max(), ref.index[np.argmax(diff)])


# --- kinship --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cross", "files"),
    [
        ("iron", {"overall": "iron_kinship_overall_rows1-20.csv.gz",
                  "16": "iron_kinship_loco_chr16_rows1-20.csv.gz",
                  "X": "iron_kinship_loco_chrX_rows1-20.csv.gz"}),
        ("grav2", {"overall": "grav2_kinship_overall_rows1-20.csv.gz",
                   "3": "grav2_kinship_loco_chr3_rows1-20.csv.gz"}),
        ("DOtiny", {"overall": "DOtiny_kinship_overall.csv.gz",
                    "2": "DOtiny_kinship_loco_chr2.csv.gz",
                    "X": "DOtiny_kinship_loco_chrX.csv.gz"}),
    ],
)  # fmt: skip
def test_kinship__equals_calc_kinship(cross, files):
    # R: calc_kinship(pr); calc_kinship(pr, "loco") (allele probabilities for F2 and DO, the
    #    X chromosome included overall, left out of K_loco[["X"]])
    src = ProbsSource(Q2 / f"{cross}_probs.npz")
    overall = lmmlite.kinship(src, method="probs")
    loco = lmmlite.kinship(src, method="probs", loco=True)
    for key, name in files.items():
        ref = _rows(name)
        ours = overall if key == "overall" else loco[key]
        got = ours.loc[ref.index, ref.columns].to_numpy()
        np.testing.assert_allclose(got, ref.to_numpy(), rtol=0, atol=KINSHIP_ATOL, err_msg=key)


def test_kinship__backcross_uses_genotype_probabilities():
    # R: calc_kinship(pr) of a backcross: no allele conversion (qtl2 has no allele matrix)
    src = ProbsSource(Q2 / "bcsim_probs.npz")
    z = np.load(Q2 / "bcsim_kinship.npz")
    ids = [str(s) for s in z["samples"]]
    K = lmmlite.kinship(src, method="probs").loc[ids, ids].to_numpy()
    np.testing.assert_allclose(K, z["K_overall"], rtol=0, atol=KINSHIP_ATOL)
    loco = lmmlite.kinship(src, method="probs", loco=True)
    for c in ("1", "X"):
        got = loco[c].loc[ids, ids].to_numpy()
        np.testing.assert_allclose(got, z[f"K_loco_chr{c}"], rtol=0, atol=KINSHIP_ATOL)


# --- heritability --------------------------------------------------------------------------


@pytest.mark.parametrize("covariates", ["none", "sex"])
@pytest.mark.parametrize("reml", [True, False])
def test_heritability__equals_est_herit_with_kinship_scale_2(iron, iron_kinships, covariates, reml):
    # R: est_herit(iron$pheno, K, addcovar=<NULL or sex>, reml=<reml>, tol=1e-12)
    _, pheno, sex, _ = iron
    ref = pd.read_csv(Q2 / "iron_est_herit.csv")
    ref = ref[ref["variant"] == f"addcovar={covariates};reml={str(reml).upper()};tol=1e-12"]
    ref = ref.set_index("phenotype")
    C = sex if covariates == "sex" else None
    out = _quiet(
        lmmlite.heritability, iron_kinships[0], pheno, C, kinship_scale=2, reml=reml, tol=1e-10
    )
    np.testing.assert_allclose(out["hsq"], ref.loc[out.index, "hsq"], rtol=0, atol=HSQ_ATOL)
    # R/qtl2's resid_sd^2 is rss/(n - p) with REML and rss/n with ML; lmmlite's is rss/(n - p)
    # in both (R/lmmlite's convention)
    p = 1 if C is None else 2
    sigmasq = out["sigmasq"] if reml else out["sigmasq"] * (out["n"] - p) / out["n"]
    np.testing.assert_allclose(sigmasq, ref.loc[out.index, "sigmasq"], rtol=1e-5)


def test_heritability__kinship_scale_maps_hsq(iron, iron_kinships):
    # hsq on 2K = hsq on K / (2 - hsq on K), both at their maxima
    _, pheno, _, _ = iron
    h1 = _quiet(lmmlite.heritability, iron_kinships[0], pheno, tol=1e-10)["hsq"]
    h2 = _quiet(lmmlite.heritability, iron_kinships[0], pheno, tol=1e-10, kinship_scale=2)["hsq"]
    np.testing.assert_allclose(h2, h1 / (2 - h1), atol=HSQ_ATOL)


# --- scans of the F2 (iron) ----------------------------------------------------------------


SCANS = {
    # name: (kinship, covariates, Xcovar, intcovar, reml), as scan1(pr, iron$pheno, ...)
    "hk": (None, False, False, False, True),
    "hk_sex": (None, True, False, False, True),
    "hk_Xcovar": (None, False, True, False, True),
    "hk_sex_Xcovar": (None, True, True, False, True),
    "hk_sex_int_Xcovar": (None, True, True, True, True),
    "lmmK": ("overall", False, False, False, True),
    "lmmK_sex_Xcovar": ("overall", True, True, False, True),
    "loco": ("loco", False, False, False, True),
    "loco_sex_Xcovar": ("loco", True, True, False, True),
    "loco_sex_Xcovar_ML": ("loco", True, True, False, False),
    "loco_sex_int_Xcovar": ("loco", True, True, True, True),
}


@pytest.mark.parametrize("name", list(SCANS))
def test_scan__equals_scan1_on_iron(iron, iron_kinships, name):
    # R: scan1(pr, iron$pheno, kinship=<K or K_loco>, addcovar=sex, Xcovar=Xcovar,
    #          intcovar=sex, reml=...) as the name says; hk: no kinship
    src, pheno, sex, xcovar = iron
    kin, covariates, use_x, inter, reml = SCANS[name]
    kinship = {None: False, "overall": iron_kinships[0], "loco": iron_kinships[1]}[kin]
    out = _quiet(
        lmmlite.scan,
        src,
        pheno,
        sex if covariates else None,
        kinship=kinship,
        kinship_scale=2,
        xcovar=xcovar if use_x else None,
        intcovar=["sex"] if inter else [],
        reml=reml,
    )
    ref = pd.read_csv(Q2 / "iron_scan1_lod.csv.gz", dtype={"chr": str}, index_col=0)
    for trait in ("liver", "spleen"):
        _assert_lod(out, ref[f"{name}.{trait}"], trait, HK_RTOL if kin is None else LMM_RTOL)
    hsq_file = Q2 / f"iron_scan1_{name}_hsq.csv"
    if hsq_file.exists():  # one row per chromosome (LOCO), or autosomes and X (with Xcovar)
        hsq = pd.read_csv(hsq_file, index_col=0)
        hsq.index = hsq.index.astype(str)
        ours = out.groupby(["chr", "trait"])["hsq"].first().unstack()
        if len(hsq) < ours.shape[0]:  # "1" stands for every autosome
            ours = ours.loc[[c for c in hsq.index]]
        np.testing.assert_allclose(ours.loc[hsq.index, hsq.columns], hsq, atol=HSQ_ATOL)
    if kin is None:
        assert (out["hsq"] == 0).all()


@pytest.mark.parametrize("kin", ["hk", "loco"])
def test_scan__allele_dosages_on_x_equal_scan1_of_allele_probabilities(iron, iron_kinships, kin):
    # R: apr <- genoprob_to_alleleprob(pr); scan1(apr, iron$pheno, [kinship=K_loco,] addcovar=sex,
    #    Xcovar=Xcovar). A dosage of allele B (hemizygous males 0/2, as PLINK codes them) is
    #    apr's B column x 2: the same scan, X included, where R/qtl2's null (with Xcovar's
    #    direction) is not nested in its alternative and LODs may be negative
    src, pheno, sex, xcovar = iron
    runs = [(a, z) for a, z in _runs(src)]
    doses = np.concatenate(
        [2 * allele_probabilities(src.read(a, z), _genos(src, a))[0][:, 1, :] for a, z in runs],
        axis=1,
    )
    dosage = ArraySource(doses, src.samples, src.markers)
    kinship = False if kin == "hk" else iron_kinships[1]
    out = _quiet(lmmlite.scan, dosage, pheno, sex, kinship=kinship, kinship_scale=2, xcovar=xcovar)
    ref = pd.read_csv(Q2 / "iron_scan1_lod.csv.gz", dtype={"chr": str}, index_col=0)
    for trait in ("liver", "spleen"):
        col = f"apr_{kin}_sex_Xcovar.{trait}"
        _assert_lod(out, ref[col], trait, HK_RTOL if kin == "hk" else LMM_RTOL)
    assert (ref["apr_hk_sex_Xcovar.liver"] < 0).any() and (out["lod"] < 0).any()


def _runs(src):
    chrom = src.markers["chr"].to_numpy()
    starts = [0, *np.flatnonzero(chrom[1:] != chrom[:-1]) + 1]
    return zip(starts, [*starts[1:], len(chrom)], strict=True)


def _genos(src, start):
    return src.genotypes[str(src.markers["chr"].iat[start])]


# --- other crosses -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hk", "lmmK", "loco"])
def test_scan__equals_scan1_on_grav2_ril(name):
    # R: grav2 <- read_cross2(system.file("extdata","grav2.zip",package="qtl2"));
    #    pr <- calc_genoprob(grav2, grav2$gmap, error_prob=0.002);
    #    scan1(pr, grav2$pheno[,1:3], [kinship=calc_kinship(pr) | calc_kinship(pr, "loco")])
    src = ProbsSource(Q2 / "grav2_probs.npz")
    pheno = _frame("grav2_pheno.csv").iloc[:, :3]
    kinship = {
        "hk": False,
        "lmmK": lmmlite.kinship(src, method="probs"),
        "loco": lmmlite.kinship(src, method="probs", loco=True),
    }[name]
    out = _quiet(lmmlite.scan, src, pheno, kinship=kinship, kinship_scale=2)
    ref = pd.read_csv(Q2 / "grav2_scan1_lod.csv.gz", dtype={"chr": str}, index_col=0)
    for trait in pheno.columns:
        _assert_lod(out, ref[f"{name}.{trait}"], trait, HK_RTOL if name == "hk" else LMM_RTOL)


def test_heritability__equals_est_herit_on_grav2():
    # R: est_herit(grav2$pheno[,1:5], calc_kinship(pr), tol=1e-12)
    src = ProbsSource(Q2 / "grav2_probs.npz")
    ref = pd.read_csv(Q2 / "grav2_est_herit.csv")
    ref = ref[ref["variant"].str.contains("reml=TRUE") & ref["variant"].str.contains("1e-12")]
    pheno = _frame("grav2_pheno.csv").iloc[:, :3]
    out = _quiet(
        lmmlite.heritability,
        lmmlite.kinship(src, method="probs"),
        pheno,
        kinship_scale=2,
        tol=1e-10,
    )
    want = ref.set_index("phenotype").loc[out.index, "hsq"]
    np.testing.assert_allclose(out["hsq"], want, atol=HSQ_ATOL)


@pytest.mark.parametrize("kin", ["hk", "loco"])
def test_scan__equals_scan1_on_a_backcross_with_x(kin):
    # R (a simulated backcross, bcsim.yaml): scan1(pr, bc$pheno, Xcovar=get_x_covar(bc)
    #    [, kinship=calc_kinship(pr, "loco")])
    src = ProbsSource(Q2 / "bcsim_probs.npz")
    pheno = _frame("bcsim_pheno.csv")
    xcovar = _frame("bcsim_Xcovar.csv")
    kinship = False if kin == "hk" else lmmlite.kinship(src, method="probs", loco=True)
    out = _quiet(lmmlite.scan, src, pheno, kinship=kinship, kinship_scale=2, xcovar=xcovar)
    ref_name = "bcsim_scan1_hk_Xcovar.csv" if kin == "hk" else "bcsim_scan1_loco_Xcovar.csv"
    ref = pd.read_csv(Q2 / ref_name, dtype={"chr": str}).set_index("marker")
    for trait in pheno.columns:
        _assert_lod(out, ref[trait], trait, HK_RTOL if kin == "hk" else LMM_RTOL)


@pytest.mark.parametrize("kin", ["hk", "loco"])
def test_scan__equals_scan1_of_do_allele_probabilities(kin):
    # R: DOex[40 mice, chr 2 and X, 12 markers each]; pr <- calc_genoprob(...);
    #    apr <- genoprob_to_alleleprob(pr); scan1(apr, pheno, addcovar=sex, Xcovar=get_x_covar(D)
    #    [, kinship=calc_kinship(pr, "loco")]). lmmlite derives apr from the 36 (X: 44)
    #    genotype probabilities itself
    src = ProbsSource(Q2 / "DOtiny_probs.npz")
    blocks = [allele_probabilities(src.read(a, z), _genos(src, a))[0] for a, z in _runs(src)]
    apr = ArraySource(np.concatenate(blocks, axis=2), src.samples, src.markers)
    pheno, sex, xcovar = (
        _frame("DOtiny_pheno.csv"),
        _frame("DOtiny_sex.csv"),
        _frame("DOtiny_Xcovar.csv"),
    )
    kinship = False if kin == "hk" else lmmlite.kinship(src, method="probs", loco=True)
    out = _quiet(lmmlite.scan, apr, pheno, sex, kinship=kinship, kinship_scale=2, xcovar=xcovar)
    ref = pd.read_csv(Q2 / f"DOtiny_scan1_apr_{kin}_sex_Xcovar.csv").set_index("marker")
    for trait in pheno.columns:
        _assert_lod(out, ref[trait], trait, HK_RTOL if kin == "hk" else LMM_RTOL)


# --- effects -------------------------------------------------------------------------------


@pytest.mark.parametrize("kin", ["hk", "loco"])
def test_scan_coef__equals_scan1coef_on_chr16(iron, iron_kinships, kin):
    # R: scan1coef(pr[,"16"], iron$pheno[,"liver"], [kinship=K_loco[["16"]],] addcovar=sex,
    #              se=TRUE)
    src, pheno, sex, _ = iron
    kinship = False if kin == "hk" else iron_kinships[1]["16"]
    got = _quiet(
        scan_coef,
        src,
        pheno[["liver"]],
        sex.rename(columns={"sex": "ac1"}),
        chromosome="16",
        kinship=kinship,
        kinship_scale=2,
    )
    ref = pd.read_csv(Q2 / f"iron_scan1coef_chr16_{kin}_sex_se.csv").set_index("marker")
    cols = [c for c in ref.columns if c not in ("chr", "pos_cM")]
    ours = got.rename(columns=lambda c: "SE_" + c[3:] if c.startswith("se_") else c)[cols]
    diff = (ours - ref[cols]).abs() / np.maximum(1.0, ref[cols].abs())
    assert diff.to_numpy().max() <= (HK_RTOL if kin == "hk" else 1e-5)


def test_scan_coef__x_chromosome_fits_the_same_genotype_means(iron, iron_kinships):
    # R: scan1coef(pr[,"X"], iron$pheno[,"liver"], kinship=K_loco[["X"]], addcovar=sex)
    # Sex is the sum of the males' columns: one of SY, BY and sex is dropped (NaN); which one
    # depends on the pivoting's tie-breaking, but the fitted mean of every genotype class is
    # the same whichever is dropped
    src, pheno, sex, _ = iron
    got = _quiet(
        scan_coef, src, pheno[["liver"]], sex.rename(columns={"sex": "ac1"}),
        chromosome="X", kinship=iron_kinships[1]["X"], kinship_scale=2,
    )  # fmt: skip
    ref = pd.read_csv(Q2 / "iron_scan1coef_chrX_loco_sex_se.csv").set_index("marker")

    def class_means(t):
        raw = t[["SS", "SB", "BS", "BB", "SY", "BY"]].add(t["intercept"], axis=0)
        raw = raw.where(t[["SS", "SB", "BS", "BB", "SY", "BY"]].notna(), 0.0)
        raw[["SY", "BY"]] = raw[["SY", "BY"]].add(t["ac1"], axis=0)
        return raw

    np.testing.assert_allclose(class_means(got), class_means(ref.loc[got.index]), rtol=1e-5)


# --- GEMMA -gxe ----------------------------------------------------------------------------


def test_scan__interaction_test_equals_gemma_gxe_on_bxd():
    # gemma -g BXD_geno.txt.gz -p BXD_pheno.txt -c <column 2 of BXD_covariates2.txt>
    #       -gxe <column 1> -a BXD_snps.txt -k BXD.cXX.txt -lmm 4   (GEMMA 0.98.5, its BIMBAM
    #       -gxe reading fixed: upstream issues 241/261; see tests/data/README.md)
    # GEMMA's per-SNP null is [1, c2, E, SNP], its alternative adds SNP x E: lmmlite's
    # covariates [c1, c2] with intcovar=["c1"]. Its score test uses the hsq of a null without
    # E (GEMMA's global null), lmmlite the null's with it: p_score is not compared.
    from reference.gemma import EFFECT_RTOL, LOG10P_ATOL
    from test_gemma import _centred, bxd_inputs

    src, y, cov = bxd_inputs()
    ids = list(y.index[y["y"].notna()])
    K = pd.DataFrame(np.loadtxt(BXD / "BXD.cXX.txt.gz"), index=src.samples, columns=src.samples)
    out = _quiet(lmmlite.scan, src, y, cov, kinship=_centred(K, ids), mode="exact", intcovar=["c1"])
    ref = pd.read_csv(BXD / "BXD_gxe_c2only.assoc.txt.gz", sep="\t")
    ref = ref[np.isfinite(ref["beta"]) & np.isfinite(ref["l_remle"])]
    assert len(ref) > 7000
    ours = out.set_index("marker").loc[ref["rs"].astype(str)]
    se = ref["se"].to_numpy()
    assert np.all(np.abs(ours["beta_gxe"].to_numpy() - ref["beta"]) <= EFFECT_RTOL * se)
    np.testing.assert_allclose(ours["se_gxe"], ref["se"], rtol=EFFECT_RTOL)
    for col in ("p_wald", "p_lrt"):
        diff = np.abs(np.log10(ours[f"{col}_gxe"].to_numpy()) - np.log10(ref[col].to_numpy()))
        assert diff.max() <= LOG10P_ATOL, col
    lam = ref["l_remle"].to_numpy()
    np.testing.assert_allclose(ours["hsq"], lam / (1 + lam), atol=2e-5)  # GEMMA: lambda >= 1e-5


# --- the command line ----------------------------------------------------------------------


def test_cli__loco_npz_xcovar_intcovar_equal_the_api(iron, iron_kinships, tmp_path, capsys):
    src, pheno, sex, xcovar = iron
    probs = str(Q2 / "iron_probs.npz")
    k = tmp_path / "loco.npz"
    assert main(["kinship", "--probs", probs, "--loco", "--out", str(k)]) == 0
    args = [
        "scan", "--probs", probs, "--pheno", str(Q2 / "iron_pheno.csv"),
        "--covar", str(Q2 / "iron_sex.csv"), "--xcovar", str(Q2 / "iron_Xcovar.csv"),
        "--kinship", str(k), "--kinship-scale", "2", "--intcovar", "sex",
        "--out", str(tmp_path / "s.tsv"),
    ]  # fmt: skip
    assert main(args) == 0
    got = pd.read_csv(tmp_path / "s.tsv", sep="\t", dtype={"chr": str})
    want = _quiet(
        lmmlite.scan, src, pheno, sex, kinship=iron_kinships[1], kinship_scale=2,
        xcovar=xcovar, intcovar=["sex"],
    )  # fmt: skip
    np.testing.assert_allclose(got["lod"], want["lod"], rtol=1e-12)
    np.testing.assert_allclose(got["lod_gxe"], want["lod_gxe"], rtol=1e-12)
    # on X the products with sex are the males' columns again: no interaction test, and a note
    x = got["chr"] == "X"
    assert got.loc[x, "lod_gxe"].isna().all() and got.loc[~x, "lod_gxe"].notna().all()
    assert (got.loc[x, "note"] == "interaction in the span of marker and covariates").all()


def test_cli__coef_equals_the_api_and_draws_its_plot(iron, iron_kinships, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    src, pheno, sex, _ = iron
    probs = str(Q2 / "iron_probs.npz")
    k = tmp_path / "loco.npz"
    assert main(["kinship", "--probs", probs, "--loco", "--out", str(k)]) == 0
    base = [
        "coef", "--probs", probs, "--pheno", str(Q2 / "iron_pheno.csv"), "--trait", "liver",
        "--covar", str(Q2 / "iron_sex.csv"), "--kinship", str(k), "--kinship-scale", "2",
    ]  # fmt: skip
    out, png = tmp_path / "coef.csv", tmp_path / "coef.png"
    assert main([*base, "--chr", "16", "--out", str(out), "--plot", str(png)]) == 0
    got = pd.read_csv(out).set_index("marker")
    want = _quiet(
        scan_coef, src, pheno[["liver"]], sex, chromosome="16",
        kinship=iron_kinships[1]["16"], kinship_scale=2,
    )  # fmt: skip
    cols = [c for c in want.columns if c not in ("chr", "pos")]
    np.testing.assert_allclose(got[cols], want[cols], rtol=1e-12)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    # a chromosome the genotypes do not have, a trait that is not a phenotype: one line each
    assert main([*base, "--chr", "99", "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmmlite: error:") and "99" in err and err.count("\n") == 1
    wrong_trait = ["iron" if a == "liver" else a for a in base]
    assert main([*wrong_trait, "--chr", "16", "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert "'iron' is not a phenotype" in err and "liver" in err
    assert not (tmp_path / "x.csv").exists()
