"""Benchmark: permutation thresholds (issue 14), lmmlite against R/qtl2's scan1perm.

    python bench/bench_perm.py [--traits 1000] [--perms 1000] [--calibration 1000] [--no-r]

In one run:

- **eQTL shape**: 79 BXD mice x 7,321 markers (the first 79 of the 198 genotyped strains of
  ``../shared/data/bxd``, else of the copy in ``tests/data/bxd``), ``--traits`` simulated
  traits (hsq spread over [0.05, 0.95]), ``--perms`` permutations each with the rotated
  method: a million genome scans at the defaults. Wall time and peak memory (max RSS of the
  process: only the maxima are kept, so memory does not grow with traits x permutations).
  R/qtl2's ``scan1perm`` (LMM, the same kinship) runs 20 permutations of one trait on the
  same data, and its time per genome scan gives the ratio. The X chromosome is scanned with
  the autosomes (one maximum per permutation, no ``perm_Xsp``), so that the run is exactly
  traits x permutations genome scans.
- **iron**: R/qtl2's iron F2 (``tests/data/qtl2``), liver, LOCO kinships, sex and Xcovar,
  1,000 permutations with X apart (``perm_Xsp``), both methods, against ``scan1perm`` with the
  same settings, in the same run.
- **calibration** (``--calibration T``): T null traits (polygenic, hsq 0.5) on BXD, 1,000
  permutations each (``--calibration-perms``), both methods; the fraction of traits whose
  genome-wide p-value is <= 0.05, with its binomial 99% interval around 0.05.

R/qtl2 is found with ``QTL2_R_LIBS`` (a library folder holding qtl2; see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
SHARED_BXD = ROOT.parent / "shared" / "data" / "bxd"
TESTS = ROOT / "tests" / "data"

R_SCAN1PERM = r"""
suppressMessages(library(qtl2))
args <- commandArgs(TRUE)
what <- args[1]
if (what == "iron") {
  iron <- read_cross2(system.file("extdata", "iron.zip", package = "qtl2"))
  pr <- calc_genoprob(iron, iron$gmap, error_prob = 0.002)
  K <- calc_kinship(pr, "loco")
  sex <- (iron$covar$sex == "m") * 1; names(sex) <- rownames(iron$covar)
  Xcovar <- get_x_covar(iron)
  set.seed(1)
  t <- system.time(scan1perm(pr, iron$pheno[, "liver", drop = FALSE], kinship = K,
                             addcovar = sex, Xcovar = Xcovar, n_perm = as.integer(args[2]),
                             perm_Xsp = TRUE, chr_lengths = chr_lengths(iron$gmap),
                             cores = 1))
  cat(t[["elapsed"]], "\n")
} else {
  # an eQTL-shaped problem from files: genotypes as probabilities of 2 genotypes per marker
  G <- as.matrix(read.csv(args[3], row.names = 1, check.names = FALSE))
  chr <- read.csv(args[4], colClasses = "character")$chr
  y <- as.matrix(read.csv(args[5], row.names = 1))[, 1, drop = FALSE]
  K <- as.matrix(read.csv(args[6], row.names = 1, check.names = FALSE))
  probs <- list()
  for (c in unique(chr)) {
    g <- G[, chr == c, drop = FALSE]
    a <- array(0, dim = c(nrow(g), 2, ncol(g)),
               dimnames = list(rownames(g), c("A", "B"), colnames(g)))
    a[, 1, ] <- 1 - g / 2; a[, 2, ] <- g / 2
    probs[[c]] <- a
  }
  pr <- structure(probs, is_x_chr = setNames(rep(FALSE, length(probs)), names(probs)),
                  crosstype = "risib", alleles = c("A", "B"), alleleprobs = FALSE,
                  class = c("calc_genoprob", "list"))
  set.seed(1)
  t <- system.time(scan1perm(pr, y, kinship = K, n_perm = as.integer(args[2]),
                             perm_Xsp = FALSE, cores = 1))
  cat(t[["elapsed"]], "\n")
}
"""


#: The eQTL shape: BulkLMM.jl's BXD liver data has 79 mice; the GEMMA BXD example has 198
#: genotyped strains, of which the first 79 are taken.
N_SAMPLES = 79


def _bxd(n_samples: int | None = None):
    from lmmlite.io.genotypes import ArraySource, BimbamSource

    if (SHARED_BXD / "BXD_snps.txt").exists():
        src = BimbamSource(SHARED_BXD / "BXD_geno.txt.gz", SHARED_BXD / "BXD_snps.txt")
    else:
        src = BimbamSource(TESTS / "bxd" / "BXD_geno.txt.gz", TESTS / "bxd" / "BXD_snps.txt.gz")
    G = src.read(0, src.n_markers)[:, 0, :]
    G = np.where(np.isnan(G), np.nanmean(G, axis=0), G)
    keep = slice(0, n_samples)
    return ArraySource(G[keep], src.samples[keep], src.markers)


def _traits(K: pd.DataFrame, t: int, hsq: np.ndarray, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lam, U = np.linalg.eigh(K.to_numpy())
    root = U * np.sqrt(np.clip(lam, 0, None) / max(lam.mean(), 1e-12))
    g = root @ rng.standard_normal((K.shape[0], t))
    e = rng.standard_normal((K.shape[0], t))
    Y = np.sqrt(hsq) * g + np.sqrt(1 - hsq) * e
    return pd.DataFrame(Y, index=K.index, columns=[f"t{j}" for j in range(t)])


def _quiet(func, *args, **kw):
    import lmmlite

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        return func(*args, **kw)


def _child_eqtl(traits: int, perms: int, method: str) -> None:
    """In a child process (its own max RSS): the eQTL-shaped run; prints JSON."""
    import lmmlite

    src = _bxd(N_SAMPLES)
    K = lmmlite.kinship(src)
    P = _traits(K, traits, np.linspace(0.05, 0.95, traits), seed=1)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    # one genome-wide maximum per permutation (X with the autosomes): a million genome scans
    table = _quiet(lmmlite.permutation_test, src, P, kinship=K, n_perm=perms, seed=1,
                   method=method, x_specific=False, progress=False)  # fmt: skip
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"wall_s": wall, "rows": len(table), "maxrss_mb": rss / 1024,
                      "rss_before_mb": rss0 / 1024}))  # fmt: skip


def _child_iron(perms: int, method: str) -> None:
    import lmmlite
    from lmmlite.io.genotypes import ProbsSource

    q2 = TESTS / "qtl2"

    def frame(name):
        return pd.read_csv(q2 / name, dtype={"id": str}).set_index("id")

    src = ProbsSource(q2 / "iron_probs.npz")
    # as R's system.time(scan1perm(...)): the kinships are made before the clock starts
    loco = lmmlite.kinship(src, method="probs", loco=True)
    lengths = pd.read_csv(q2 / "iron_chr_lengths.csv", dtype={"chr": str})
    chr_lengths = dict(zip(lengths["chr"], lengths["length_cM"], strict=True))
    walls = []
    for _ in range(2):  # the first call in a process also loads the compiled kernels
        t0 = time.perf_counter()
        table = _quiet(
            lmmlite.permutation_test, src, frame("iron_pheno.csv")[["liver"]],
            frame("iron_sex.csv"), kinship=loco, loco=True, kinship_scale=2.0,
            xcovar=frame("iron_Xcovar.csv"), n_perm=perms, seed=1, method=method,
            progress=False, chr_lengths=chr_lengths,
        )  # fmt: skip
        walls.append(time.perf_counter() - t0)
    thr = lmmlite.perm_thresholds(table, [0.05]).set_index("region")["0.05"].to_dict()
    print(json.dumps({"wall_s": walls[1], "first_s": walls[0], "thresholds": thr}))


def _run_child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _r(script_args: list[str]) -> float | None:
    libs = os.environ.get("QTL2_R_LIBS")
    if not libs or not shutil.which("Rscript"):
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as f:
        f.write(R_SCAN1PERM)
    try:
        out = subprocess.run(
            ["Rscript", f.name, *script_args], check=True, capture_output=True, text=True,
            env={**os.environ, "R_LIBS": libs},
        )  # fmt: skip
    finally:
        os.unlink(f.name)
    return float(out.stdout.split()[-1])


def _r_eqtl(perms: int) -> float | None:
    """R/qtl2's seconds per genome scan on the BXD data (one trait, ``perms`` permutations)."""
    if not os.environ.get("QTL2_R_LIBS"):
        return None
    import lmmlite

    src = _bxd(N_SAMPLES)
    K = lmmlite.kinship(src)
    P = _traits(K, 1, np.array([0.5]), seed=2)
    with tempfile.TemporaryDirectory() as tmp:
        G = pd.DataFrame(src.G[:, 0, :], index=src.samples, columns=src.markers["marker"])
        G.to_csv(f"{tmp}/G.csv")
        src.markers[["marker", "chr"]].to_csv(f"{tmp}/chr.csv", index=False)
        P.to_csv(f"{tmp}/y.csv")
        K.to_csv(f"{tmp}/K.csv")
        secs = _r(["eqtl", str(perms), f"{tmp}/G.csv", f"{tmp}/chr.csv", f"{tmp}/y.csv",
                   f"{tmp}/K.csv"])  # fmt: skip
    return None if secs is None else secs / perms


def _calibration(traits: int, perms: int) -> list[dict]:
    from scipy import stats

    import lmmlite

    src = _bxd()
    K = lmmlite.kinship(src)
    rows = []
    for method in ("rotated", "genotypes"):
        P = _traits(K, traits, np.full(traits, 0.5), seed=3)
        t0 = time.perf_counter()
        perm = _quiet(lmmlite.permutation_test, src, P, kinship=K, n_perm=perms, seed=4,
                      method=method, x_specific=False, progress=False)  # fmt: skip
        wall = time.perf_counter() - t0
        scan = _quiet(lmmlite.scan, src, P, kinship=K, mode="fixed", keep="max")
        observed = scan.set_index("trait")["lod"].loc[P.columns]
        p = lmmlite.genome_pvalues(perm, list(P.columns), observed.to_numpy())
        lo, hi = stats.binom.interval(0.99, traits, 0.05)
        rows.append({"method": method, "traits": traits, "perms": perms,
                     "fraction_p<=0.05": float(np.mean(p <= 0.05)),
                     "99% interval": f"[{lo / traits:.3f}, {hi / traits:.3f}]",
                     "seconds": round(wall, 1)})  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--traits", type=int, default=1000)
    ap.add_argument("--perms", type=int, default=1000)
    ap.add_argument("--r-perms", type=int, default=20, help="R/qtl2's permutations (eQTL)")
    ap.add_argument("--iron-perms", type=int, default=1000)
    ap.add_argument("--calibration", type=int, default=0, metavar="T")
    ap.add_argument("--calibration-perms", type=int, default=1000)
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        if a.child[0] == "eqtl":
            _child_eqtl(int(a.child[1]), int(a.child[2]), a.child[3])
        else:
            _child_iron(int(a.child[1]), a.child[2])
        return
    if a.no_r:
        os.environ.pop("QTL2_R_LIBS", None)
    rows = []
    eq = _run_child("eqtl", str(a.traits), str(a.perms), "rotated")
    r_scan = _r_eqtl(a.r_perms)
    scans = a.traits * a.perms
    rows.append({
        "case": f"BXD eQTL {a.traits} traits x {a.perms} perms (rotated)",
        "lmmlite_s": round(eq["wall_s"], 1),
        "peer": "R/qtl2 scan1perm",
        "peer_s": None if r_scan is None else round(r_scan * scans, 0),
        "ratio": None if r_scan is None else round(r_scan * scans / eq["wall_s"], 0),
        "note": f"max RSS {eq['maxrss_mb']:.0f} MB; R/qtl2 timed on {a.r_perms} scans, "
        "extrapolated",
    })  # fmt: skip
    n_iron = str(a.iron_perms)
    r_iron = _r(["iron", n_iron]) if os.environ.get("QTL2_R_LIBS") else None
    for method in ("rotated", "genotypes"):
        iron = _run_child("iron", n_iron, method)
        thr = iron["thresholds"]
        rows.append({
            "case": f"iron liver {n_iron} perms LOCO, X apart ({method})",
            "lmmlite_s": round(iron["wall_s"], 2),
            "peer": "R/qtl2 scan1perm",
            "peer_s": r_iron,
            "ratio": None if r_iron is None else round(r_iron / iron["wall_s"], 0),
            "note": f"first call {iron['first_s']:.2f} s; 5% thresholds A {thr['A']:.2f}, "
            f"X {thr['X']:.2f} (R/qtl2's run: 3.16, 3.72)",
        })  # fmt: skip
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 220, "display.max_colwidth", 80):
        print(table.to_string(index=False))
    if a.calibration:
        calib = pd.DataFrame(_calibration(a.calibration, a.calibration_perms))
        print()
        print(calib.to_string(index=False))
    OUT.mkdir(exist_ok=True)
    (OUT / "bench_perm.json").write_text(table.to_json(orient="records", indent=1))


if __name__ == "__main__":
    main()
