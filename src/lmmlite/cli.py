"""The ``lmmlite`` command: parses arguments, calls the library, prints.

Files are read and written by :mod:`lmmlite.io`; every option's default comes from
:mod:`lmmlite.options`. Every error the user can cause ends with a one-line message on stderr and
exit status 2; warnings (boundary estimates, dropped samples, ...) are printed once each after
the command has run. Heavy modules (NumPy, pandas, numba) are imported only by the command that
runs, so ``--help`` and argument errors return at once.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .exceptions import LmmliteError, LmmliteWarning
from .options import HeritabilityOptions, ScanOptions

__all__ = ["main"]

#: Columns shown on the terminal by ``lmmlite herit`` (the file gets all of them).
_SHOWN = [
    "n",
    "hsq",
    "hsq_se",
    "hsq_ci_lower",
    "hsq_ci_upper",
    "sigmasq",
    "loglik",
    "lrt_pvalue",
    "at_boundary",
    "converged",
]
#: The defaults (class attributes: no instance, which would import NumPy to validate itself).
_HERIT = HeritabilityOptions
_SCAN = ScanOptions


# ---------------------------------------------------------------------------------------------
# Argument types: a value out of range is a usage error naming the option.


def _number(text: str, *, low: float, high: float, closed: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    ok_low = value >= low if closed[0] == "[" else value > low
    ok_high = value <= high if closed[1] == "]" else value < high
    if math.isnan(value) or not (ok_low and ok_high):
        interval = f"{closed[0]}{low:g}, {high:g}{closed[1]}"
        raise argparse.ArgumentTypeError(f"{what} must lie in {interval}; got {text}")
    return value


def _open_unit(text: str) -> float:
    return _number(text, low=0.0, high=1.0, closed="()", what="it")


def _tol(text: str) -> float:
    return _number(text, low=0.0, high=0.5, closed="()", what="a tolerance on hsq")


def _fraction(text: str) -> float:
    return _number(text, low=0.0, high=1.0, closed="[]", what="a fraction")


def _maf(text: str) -> float:
    return _number(text, low=0.0, high=0.5, closed="[]", what="a minor allele frequency")


def _lod(text: str) -> float:
    return _number(text, low=-math.inf, high=math.inf, closed="[]", what="a LOD score")


def _scale(text: str) -> float:
    return _number(text, low=0.0, high=math.inf, closed="()", what="a kinship scale")


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed must be at least 0; got {value}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (``lmmlite: error: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"lmmlite: error: {message} (see '{self.prog} --help')\n")


# ---------------------------------------------------------------------------------------------
# The parser, command by command


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lmmlite",
        description="Linear mixed models for genetics: heritability, kinship and genome scans "
        "of many traits with missing data.",
    )
    parser.add_argument("--version", action="version", version=f"lmmlite {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _herit_parser(sub)
    _profile_parser(sub)
    _kinship_parser(sub)
    _scan_parser(sub)
    _perm_parser(sub)
    _coef_parser(sub)
    _plot_parser(sub)
    _peaks_parser(sub)
    _report_parser(sub)
    _demo_parser(sub)
    return parser


def _add_tables(p: argparse.ArgumentParser, *, kinship: bool = True) -> None:
    if kinship:
        p.add_argument(
            "--kinship",
            required=True,
            metavar="FILE",
            help="kinship matrix: a table whose first column and header are sample ids, or "
            "an .npz written by lmmlite kinship",
        )
    p.add_argument(
        "--pheno",
        required=True,
        metavar="FILE",
        help="phenotypes (CSV/TSV; first column: sample id; NA or empty for missing)",
    )
    p.add_argument(
        "--covar",
        metavar="FILE",
        help="covariates (CSV/TSV; first column: sample id); an intercept is added "
        "unless a column is constant",
    )
    _add_missing_code(p)


def _add_missing_code(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--missing-code",
        action="append",
        default=[],
        metavar="VALUE",
        help="a value that marks a missing phenotype or covariate in CSV/TSV tables besides NA "
        "and empty fields, e.g. -9 (repeatable)",
    )


def _add_samples(p: argparse.ArgumentParser, choices: Sequence[str], default: str) -> None:
    p.add_argument(
        "--samples",
        choices=list(choices),
        default=default,
        help=f"strict (default): every phenotyped sample must be in every input; {choices[1]}: "
        "leave out those that are not, with a warning naming them",
    )


def _add_parallel(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dask",
        metavar="local|ADDRESS",
        help="run the tasks on Dask: 'local' starts a LocalCluster, else a scheduler address",
    )
    p.add_argument(
        "--workers", type=_positive, help="worker processes of --dask local (default: CPU count)"
    )
    p.add_argument(
        "--threads",
        type=_positive,
        help="tasks run at once in-process (default: the CPU cores available; each task is "
        "single-threaded)",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar (shown on a terminal)"
    )


def _herit_parser(sub: Any) -> None:
    h = sub.add_parser("herit", help="estimate the heritability of every phenotype")
    _add_tables(h)
    _add_samples(h, ("strict", "intersection"), _HERIT.samples)
    h.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    h.add_argument(
        "--tol", type=_tol, default=_HERIT.tol, help=f"Brent tolerance on hsq ({_HERIT.tol:g})"
    )
    h.add_argument(
        "--no-check-boundary",
        action="store_true",
        help="do not compare the optimum with hsq = 0 and 1",
    )
    h.add_argument(
        "--level",
        type=_open_unit,
        default=_HERIT.level,
        help=f"coverage of the profile-likelihood interval ({_HERIT.level:g})",
    )
    h.add_argument("--out", metavar="FILE", help="write the full table (.csv or .tsv)")
    h.add_argument(
        "--trait-batch",
        type=_positive,
        default=_HERIT.trait_batch,
        help=f"traits per task ({_HERIT.trait_batch})",
    )
    _add_parallel(h)


def _profile_parser(sub: Any) -> None:
    pr = sub.add_parser("profile", help="log likelihood over a grid of hsq, with a plot")
    _add_tables(pr)
    _add_samples(pr, ("strict", "intersection"), "strict")
    pr.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    pr.add_argument(
        "--trait",
        action="append",
        metavar="NAME",
        help="phenotype to profile (repeatable; default: the first)",
    )
    pr.add_argument("--grid", type=_positive, default=101, help="number of grid points (101)")
    pr.add_argument("--plot", metavar="FILE.png", help="draw the curves to this image file")
    pr.add_argument("--out", metavar="FILE", help="write the grid table (.csv or .tsv)")


def _add_genotypes(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--bfile", metavar="PREFIX", help="PLINK .bed/.bim/.fam fileset")
    g.add_argument("--bimbam", metavar="GENO", help="BIMBAM mean genotypes (needs --annot)")
    g.add_argument(
        "--dosage",
        metavar="FILE",
        help="CSV/TSV dosages: marker, chr, pos, then one column per sample id",
    )
    g.add_argument(
        "--probs",
        metavar="FILE.npz",
        help="probabilities (.npz): probs (n, k, m) or probs_<C> per chromosome; samples, "
        "markers, chr, pos",
    )
    p.add_argument("--annot", metavar="FILE", help="BIMBAM annotation: marker position chr")


def _kinship_parser(sub: Any) -> None:
    k = sub.add_parser("kinship", help="kinship matrix (or LOCO kinships) from genotypes")
    _add_genotypes(k)
    k.add_argument(
        "--method",
        choices=["centered", "standardized", "probs"],
        help="centered (GEMMA -gk 1; default for dosages), standardized (-gk 2) or "
        "probs (allele sharing; default for probabilities)",
    )
    k.add_argument(
        "--loco",
        action="store_true",
        help="one kinship per chromosome, leaving it out (--out K.npz, or a folder of "
        "chr<C>.tsv files)",
    )
    k.add_argument(
        "--pheno",
        metavar="FILE",
        help="compute the marker filters on the samples with a phenotype (as GEMMA)",
    )
    _add_missing_code(k)
    k.add_argument("--maf", type=_maf, default=0.01, help="minimum minor allele frequency")
    k.add_argument(
        "--max-missing", type=_fraction, default=0.05, help="maximum fraction of missing genotypes"
    )
    k.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="output: .npz (binary, loads in milliseconds), .csv/.tsv table, or with --loco a "
        "folder",
    )


def _scan_parser(sub: Any) -> None:
    s = sub.add_parser("scan", help="LMM association test at every marker")
    _add_scan_inputs(s)
    s.add_argument(
        "--mode",
        choices=["fixed", "exact"],
        default=_SCAN.mode,
        help="fixed: null hsq held fixed (default); exact: hsq re-estimated per "
        "marker as GEMMA -lmm 4",
    )
    s.add_argument(
        "--hsq-grid",
        type=float,
        metavar="STEP",
        help="fixed mode, opt-in: hold each trait's null hsq rounded to this grid (e.g. 0.01), "
        "so that traits of one grid value share their products: faster for many traits; "
        "LODs change slightly (see the README)",
    )
    s.add_argument("--ml", action="store_true", help="ML instead of REML for the Wald test's hsq")
    _add_scan_layout(s, _SCAN.trait_batch)
    s.add_argument(
        "--keep",
        choices=["all", "peaks", "max"],
        default=_SCAN.keep,
        help="all: every test (default); peaks: per trait and chromosome the highest LOD if "
        "it reaches --threshold; max: per trait the highest LOD",
    )
    s.add_argument(
        "--threshold",
        type=_lod,
        default=_SCAN.threshold,
        help=f"LOD threshold of --keep peaks ({_SCAN.threshold:g})",
    )
    s.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="results: a table (.tsv, .txt, .csv) or a Parquet dataset folder NAME.parquet "
        "(one file per task, resumable)",
    )
    _add_resume(s)
    _add_parallel(s)


def _add_resume(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--resume",
        action="store_true",
        help="complete an interrupted run in the --out folder (same inputs and options)",
    )


def _add_scan_inputs(s: argparse.ArgumentParser) -> None:
    """The inputs of a scan (genotypes, phenotypes, covariates, kinship, R/qtl2's options)."""
    _add_genotypes(s)
    s.add_argument(
        "--pheno",
        metavar="FILE",
        help="phenotypes (CSV/TSV with ids; BIMBAM: one column per trait, no ids, "
        "genotype-file order); default with --bfile: the .fam",
    )
    s.add_argument(
        "--pheno-col",
        type=_positive,
        action="append",
        metavar="N",
        help="1-based phenotype column to analyse (repeatable; default: all)",
    )
    s.add_argument("--covar", metavar="FILE", help="covariates (same conventions as --pheno)")
    _add_missing_code(s)
    kin = s.add_mutually_exclusive_group()
    kin.add_argument(
        "--kinship",
        metavar="FILE",
        help="kinship: a table with ids, a bare matrix in genotype-file order (GEMMA's), an "
        ".npz written by lmmlite kinship, or LOCO kinships (an .npz or a folder of chr<C> "
        "files: a LOCO scan); default: the centred kinship of the genotypes",
    )
    kin.add_argument(
        "--loco",
        action="store_true",
        help="leave-one-chromosome-out kinships computed from the genotypes",
    )
    kin.add_argument(
        "--no-kinship",
        action="store_true",
        help="a plain linear model (R/qtl2's Haley-Knott regression): no kinship, hsq 0",
    )
    _add_qtl2_options(s)
    _add_samples(s, ("strict", "drop"), _SCAN.samples)
    s.add_argument(
        "--center-kinship",
        action="store_true",
        help="double-centre the kinship over the analysed samples (as GEMMA does)",
    )


def _add_scan_layout(s: argparse.ArgumentParser, trait_batch: int | None) -> None:
    s.add_argument(
        "--chunk-size",
        type=_positive,
        default=_SCAN.chunk_size,
        help=f"markers per chunk ({_SCAN.chunk_size})",
    )
    s.add_argument(
        "--trait-batch",
        type=_positive,
        default=trait_batch,
        help=f"traits per task ({trait_batch or 'as many as fit in 128 MiB'})",
    )


def _perm_parser(sub: Any) -> None:
    s = sub.add_parser(
        "perm",
        help="genome-wide LOD thresholds from permutations (R/qtl2's scan1perm), every trait",
    )
    _add_scan_inputs(s)
    s.add_argument("--ml", action="store_true", help="ML instead of REML for the held hsq")
    _add_scan_layout(s, None)
    s.add_argument(
        "--n-perm", type=_positive, default=1000, metavar="N", help="permutations (1000)"
    )
    s.add_argument(
        "--seed",
        type=_seed,
        metavar="S",
        help="seed of the permutations (default: a random one, printed and recorded)",
    )
    s.add_argument(
        "--method",
        choices=["rotated", "genotypes"],
        default="rotated",
        help="rotated: permute each trait's whitened null residuals, all permutations in one "
        "product (default); genotypes: permute the genotype rows (R/qtl2's scan1perm)",
    )
    s.add_argument(
        "--strata",
        metavar="FILE:COL",
        help="permute within strata: a column of a table with ids (default with --xcovar: "
        "its distinct rows, as R/qtl2)",
    )
    s.add_argument(
        "--n-perm-x",
        type=_positive,
        metavar="N",
        help="permutations of the X chromosome (default: n-perm x autosome length / X length)",
    )
    s.add_argument(
        "--no-x-specific",
        action="store_true",
        help="one genome-wide maximum, the X chromosome with the autosomes (R/qtl2's "
        "perm_Xsp=FALSE); default: X apart, thresholds scaled by length",
    )
    s.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="the maxima: a table (.csv, .tsv) or a Parquet dataset folder NAME.parquet "
        "(one file per task, resumable)",
    )
    _add_resume(s)
    s.add_argument(
        "--thresholds",
        metavar="FILE",
        help="the LOD thresholds, trait x alpha (.csv or .tsv)",
    )
    s.add_argument(
        "--alpha",
        type=_open_unit,
        action="append",
        metavar="A",
        help="genome-wide level of --thresholds (repeatable; 0.01 0.05 0.1 0.2 0.63)",
    )
    s.add_argument(
        "--plot",
        metavar="FILE.png",
        help="histogram of the maxima with the thresholds (the first trait)",
    )
    _add_parallel(s)


def _add_qtl2_options(p: argparse.ArgumentParser, *, intcovar: bool = True) -> None:
    p.add_argument(
        "--kinship-scale",
        type=_scale,
        default=_SCAN.kinship_scale,
        metavar="S",
        help="genetic covariance hsq x S x K: 1 (R/lmmlite, GEMMA; default) or 2 (R/qtl2)",
    )
    p.add_argument(
        "--xcovar",
        metavar="FILE",
        help="R/qtl2's Xcovar (sex, cross direction; a table with ids): the X chromosome's "
        "null model adds these covariates, as R/qtl2 does",
    )
    if intcovar:
        p.add_argument(
            "--intcovar",
            metavar="COL[,COL]",
            help="covariates (columns of --covar) interacting with the marker (R/qtl2's "
            "intcovar, GEMMA's -gxe); adds the interaction test's *_gxe columns",
        )


def _coef_parser(sub: Any) -> None:
    c = sub.add_parser("coef", help="genotype effects along a chromosome (R/qtl2's scan1coef)")
    _add_genotypes(c)
    c.add_argument("--pheno", required=True, metavar="FILE", help="phenotypes (CSV/TSV with ids)")
    c.add_argument("--trait", metavar="NAME", help="phenotype (default: the first)")
    c.add_argument("--covar", metavar="FILE", help="additive covariates (no intercept is added)")
    _add_missing_code(c)
    c.add_argument("--chr", required=True, dest="chromosome", help="the chromosome")
    kin = c.add_mutually_exclusive_group()
    kin.add_argument("--kinship", metavar="FILE", help="kinship (LOCO: that chromosome's)")
    kin.add_argument("--no-kinship", action="store_true", help="ordinary least squares")
    c.add_argument(
        "--kinship-scale", type=_scale, default=_SCAN.kinship_scale, metavar="S",
        help="genetic covariance hsq x S x K (R/qtl2: 2)",
    )  # fmt: skip
    c.add_argument("--out", required=True, metavar="FILE", help="the effects (.csv or .tsv)")
    c.add_argument("--plot", metavar="FILE.png", help="draw the effects above the LOD curve")


def _plot_parser(sub: Any) -> None:
    pl = sub.add_parser("plot", help="draw a scan table: manhattan, lod or qq")
    pl.add_argument("kind", choices=["manhattan", "lod", "qq"])
    pl.add_argument("--scan", required=True, metavar="FILE", help="table written by lmmlite scan")
    pl.add_argument("--trait", help="trait to draw (default: the first)")
    pl.add_argument("--column", help="column to draw (p_wald for manhattan/qq, lod for lod)")
    pl.add_argument(
        "--threshold",
        type=float,
        metavar="T",
        help="a line: a LOD (lod) or a p-value (manhattan; default Bonferroni 0.05/markers)",
    )
    pl.add_argument(
        "--perm",
        metavar="FILE",
        help="permutation table (lmmlite perm): the genome-wide line at --alpha, a LOD "
        "threshold per region (lod) or the alpha quantile of min_p (manhattan)",
    )
    pl.add_argument(
        "--alpha", type=_open_unit, default=0.05, help="level of the --perm line (0.05)"
    )
    pl.add_argument("--peaks", metavar="FILE", help="peaks to label (lmmlite peaks)")
    pl.add_argument("--out", required=True, metavar="FILE.png", help="image file")


def _peaks_parser(sub: Any) -> None:
    def drop(text: str) -> float:
        return _number(text, low=0.0, high=math.inf, closed="[]", what="a LOD drop")

    pk = sub.add_parser(
        "peaks", help="peaks of a scan with LOD or Bayes intervals (R/qtl2's find_peaks)"
    )
    pk.add_argument("--scan", required=True, metavar="FILE", help="table written by lmmlite scan")
    pk.add_argument("--threshold", type=_lod, metavar="T", help="LOD a peak must exceed (3)")
    pk.add_argument(
        "--perm",
        metavar="FILE",
        help="permutation table (trait, perm, max_lod[, region, length]; CSV/TSV/Parquet): "
        "adds each peak's genome-wide p-value p_genome",
    )
    pk.add_argument(
        "--alpha",
        type=_open_unit,
        help="with --perm: take the thresholds at this genome-wide level from the "
        "permutations instead of --threshold",
    )
    pk.add_argument(
        "--peakdrop",
        type=drop,
        default=math.inf,
        metavar="D",
        help="LOD drop between two peaks on a chromosome (default inf: one peak each)",
    )
    ci = pk.add_mutually_exclusive_group()
    ci.add_argument("--drop", type=drop, metavar="D", help="LOD support intervals, e.g. 1.5")
    ci.add_argument(
        "--prob", type=_open_unit, metavar="P", help="Bayes credible intervals, e.g. 0.95"
    )
    pk.add_argument(
        "--expand-to-markers",
        action="store_true",
        help="move interval ends on R/qtl2 pseudomarkers (c16.loc8) out to real markers "
        "(R/qtl2's default expand2markers=TRUE)",
    )
    pk.add_argument("--threshold-x", type=_lod, metavar="T", help="X chromosome threshold")
    pk.add_argument("--peakdrop-x", type=drop, metavar="D", help="X chromosome peakdrop")
    pk.add_argument("--drop-x", type=drop, metavar="D", help="X chromosome LOD drop")
    pk.add_argument("--prob-x", type=_open_unit, metavar="P", help="X chromosome coverage")
    pk.add_argument("--out", required=True, metavar="FILE", help="the peaks (.csv or .tsv)")
    pk.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw the LOD curves of (the first 6) traits with peaks, thresholds and intervals",
    )


def _report_parser(sub: Any) -> None:
    r = sub.add_parser(
        "report", help="one interactive HTML page (offline) of a scan, its peaks and heritabilities"
    )
    r.add_argument("--scan", metavar="FILE", help="table written by lmmlite scan (or a .parquet)")
    r.add_argument("--herit", metavar="FILE", help="table written by lmmlite herit")
    r.add_argument(
        "--perm", metavar="FILE", help="permutation table: its thresholds replace Bonferroni's"
    )
    r.add_argument(
        "--peaks",
        metavar="FILE",
        help="table written by lmmlite peaks, the peaks labelled (default: found above the "
        "first threshold)",
    )
    r.add_argument(
        "--trait-positions",
        metavar="FILE",
        help="trait, chr, pos of each trait (e.g. its gene): the y axis of the plot of all peaks",
    )
    r.add_argument(
        "--alpha",
        type=_open_unit,
        action="append",
        metavar="A",
        help="genome-wide level of a permutation threshold line (repeatable; 0.05 and 0.2)",
    )
    r.add_argument(
        "--lod-floor",
        type=_lod,
        metavar="L",
        help="a trait with more than --max-points markers shows every marker with LOD >= L "
        "and thins those below (2)",
    )
    r.add_argument(
        "--max-points", type=_positive, metavar="N", help="markers per trait shown whole (50000)"
    )
    r.add_argument("--title", help="the page's title")
    r.add_argument("--out", required=True, metavar="FILE.html", help="the report")


def _demo_parser(sub: Any) -> None:
    d = sub.add_parser("demo", help="simulate data, estimate heritabilities, save a plot")
    d.add_argument(
        "--samples",
        type=_positive,
        default=400,
        dest="n_samples",
        help="number of samples (400)",
    )
    d.add_argument("--traits", type=_positive, default=8, help="number of traits (8)")
    d.add_argument("--seed", type=int, default=1, help="random seed (1)")
    d.add_argument("--outdir", default="lmmlite_demo", help="output folder (lmmlite_demo)")


# ---------------------------------------------------------------------------------------------
# Commands


def _read_tables(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """Kinship, phenotypes and covariates of herit/profile."""
    from .io.kinship import read_kinship
    from .io.tables import read_table

    K = read_kinship(args.kinship)
    if isinstance(K, dict):
        raise LmmliteError(f"{args.kinship!r} holds LOCO kinships; herit needs one kinship")
    P = read_table(args.pheno, "phenotype", missing=args.missing_code)
    C = read_table(args.covar, "covariate", missing=args.missing_code) if args.covar else None
    return K, P, C


def _inputs(args: argparse.Namespace) -> list[str]:
    """The files a command reads (an output must not be one of them)."""
    names = ["kinship", "pheno", "covar", "xcovar", "annot", "bimbam", "dosage", "probs"]
    files = [getattr(args, a, None) for a in names]
    if getattr(args, "strata", None):
        files.append(args.strata.rpartition(":")[0])
    if getattr(args, "bfile", None):
        base = str(args.bfile)
        for suffix in (".bed", ".bim", ".fam"):
            base = base[: -len(suffix)] if base.endswith(suffix) else base
        files += [base + s for s in (".bed", ".bim", ".fam")]
    return [f for f in files if f]


def _check_out(
    args: argparse.Namespace, path: str | None, *, folder: bool = False, table: bool = True
) -> None:
    """Refuse an output that cannot be written, or that is one of the inputs, before any work
    (``table``: a CSV/TSV whose extension must say which)."""
    if path:
        from .io.tables import check_output, separator_for

        if table and not folder:
            separator_for(path)
        check_output(path, inputs=_inputs(args), folder=folder)


def _show(table: Any, extra: Sequence[str] = ()) -> None:
    import pandas as pd

    cols = ["n", *extra, *[c for c in _SHOWN[1:] if c in table.columns]]
    with pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.max_rows", 200,
        "display.float_format", "{:.6g}".format,
    ):  # fmt: skip
        print(table[cols].to_string())


def _herit(args: argparse.Namespace) -> None:
    from .heritability import heritability
    from .io.tables import write_table

    _check_out(args, args.out)
    K, P, C = _read_tables(args)
    with _dask_client(args) as client:
        out = heritability(
            K,
            P,
            C,
            reml=not args.ml,
            tol=args.tol,
            check_boundary=not args.no_check_boundary,
            samples=args.samples,
            level=args.level,
            trait_batch=args.trait_batch,
            **_parallel_options(args, client),
        )
    _show(out)
    if args.out:
        write_table(out, args.out)
        print(f"\nwrote {len(out)} rows x {out.shape[1] + 1} columns to {args.out}")


def _profile(args: argparse.Namespace) -> None:
    from .heritability import heritability, loglik_profile
    from .io.tables import write_table

    _check_out(args, args.out)
    _check_out(args, args.plot, table=False)
    K, P, C = _read_tables(args)
    traits = args.trait or [str(P.columns[0])]
    prof = loglik_profile(
        K, P, C, traits=traits, grid=args.grid, reml=not args.ml, samples=args.samples
    )
    fits = heritability(K, P[traits], C, reml=not args.ml, tol=1e-8, samples=args.samples)
    for name in traits:
        print(
            f"{name}: hsq = {fits.loc[name, 'hsq']:.6g}, loglik = "
            f"{fits.loc[name, 'loglik']:.10g} (grid of {len(prof)} points)"
        )
    if args.plot:  # drawn first: a plot that fails leaves no table behind
        from .plot import plot_profile

        plot_profile(prof, args.plot, estimates=fits)
        print(f"wrote the plot to {args.plot}")
    if args.out:
        write_table(prof, args.out)
        print(f"wrote the grid to {args.out}")


def _source(args: argparse.Namespace) -> Any:
    from .io import genotypes as gt

    if args.bimbam and not args.annot:
        raise LmmliteError("--bimbam needs --annot (marker position chromosome)")
    if args.annot and not args.bimbam:
        raise LmmliteError("--annot is only used with --bimbam")
    if args.bfile:
        return gt.PlinkSource(args.bfile)
    if args.bimbam:
        return gt.BimbamSource(args.bimbam, args.annot)
    if args.dosage:
        return gt.DosageSource(args.dosage)
    return gt.ProbsSource(args.probs)


def _table(args: argparse.Namespace, src: Any, path: str, what: str) -> Any:
    """A phenotype or covariate file: positional (BIMBAM) or a table with ids."""
    if src.positional:
        from .io.phenotypes import read_positional

        return read_positional(path, src.samples, what)
    from .io.tables import read_table

    return read_table(path, what, missing=args.missing_code)


def _kinship(args: argparse.Namespace) -> None:
    from .io.kinship import write_kinship
    from .kinship import kinship

    npz = args.out.lower().endswith(".npz")
    _check_out(args, args.out, folder=args.loco and not npz, table=not npz)
    src = _source(args)
    method = args.method or ("probs" if src.k > 1 else "centered")
    filter_ids = None
    if args.pheno:
        P = _table(args, src, args.pheno, "pheno")
        filter_ids = [i for i in P.index[P.notna().any(axis=1)] if i in set(src.samples)]
    out = kinship(
        src,
        method=method,
        loco=args.loco,
        maf=args.maf,
        max_missing=args.max_missing,
        filter_samples=filter_ids,
    )
    files = write_kinship(out, args.out)
    what = f"{len(files) if len(files) > 1 else ''} LOCO kinships" if args.loco else "kinship"
    print(
        f"wrote the {method} {what.strip()} of {len(src.samples)} samples from "
        f"{src.n_markers} markers to {args.out}"
    )


def _kinship_soon(args: argparse.Namespace, src: Any) -> Callable[[], Any] | None:
    """Start reading ``--kinship`` (for ``src``'s samples) in a thread; return a function
    that waits for it and returns the kinship (or raises its error), or None without one.

    pandas' text parser releases the interpreter lock, so a text kinship (the slow format:
    about 0.2 s for 2,000 samples) is parsed while the caller imports the analysis modules
    and reads the phenotypes."""
    if not args.kinship:
        return None
    from concurrent.futures import ThreadPoolExecutor

    from .io.kinship import read_kinship

    pool = ThreadPoolExecutor(1, thread_name_prefix="lmmlite-kinship")
    future = pool.submit(read_kinship, args.kinship, src.samples)
    pool.shutdown(wait=False)
    return future.result


def _scan_inputs(
    args: argparse.Namespace, src: Any, kinship: Callable[[], Any] | None = None
) -> tuple[Any, Any, Any, Any, list[str]]:
    """Phenotypes (the selected columns), covariates, kinship, Xcovar and the interactive
    covariates of ``lmmlite scan`` and ``lmmlite perm`` (the kinship from ``kinship`` where
    its read was started early: :func:`_kinship_soon`)."""
    if args.pheno:
        P = _table(args, src, args.pheno, "pheno")
    elif args.bfile:
        P = src.fam_phenotypes()
    else:
        raise LmmliteError("--pheno is needed (only --bfile can take phenotypes from the .fam)")
    if args.pheno_col:
        bad = [c for c in args.pheno_col if c > P.shape[1]]
        if bad:
            raise LmmliteError(
                f"--pheno-col {bad} out of range: there are {P.shape[1]} phenotype columns"
            )
        P = P.iloc[:, [c - 1 for c in args.pheno_col]]
    C = _table(args, src, args.covar, "covar") if args.covar else None
    K: Any = False if args.no_kinship else None
    if kinship is not None:
        K = kinship()
    elif args.kinship:
        from .io.kinship import read_kinship

        K = read_kinship(args.kinship, src.samples)
    Xc = _table(args, src, args.xcovar, "xcovar") if args.xcovar else None
    intcovar = [c.strip() for c in args.intcovar.split(",")] if args.intcovar else []
    return P, C, K, Xc, intcovar


def _dataset_out(args: argparse.Namespace) -> bool:
    """Check ``--out`` (and ``--resume``) of scan and perm: True for a Parquet dataset folder
    (``NAME.parquet``), False for a table."""
    folder = args.out.lower().endswith(".parquet")
    if args.resume and not folder:
        raise LmmliteError("--resume needs --out NAME.parquet (a dataset folder)")
    _check_out(args, args.out, folder=folder, table=not folder)
    return folder


def _scan(args: argparse.Namespace) -> None:
    from .io.tables import write_table

    out_path = args.out
    folder = _dataset_out(args)
    src = _source(args)
    kinship = _kinship_soon(args, src)
    from .scan import scan  # imported while the kinship is read

    P, C, K, Xc, intcovar = _scan_inputs(args, src, kinship)
    with _dask_client(args) as client:
        table = scan(
            src, P, C,
            kinship=K, loco=args.loco, xcovar=Xc, intcovar=intcovar,
            kinship_scale=args.kinship_scale, mode=args.mode, hsq_grid=args.hsq_grid,
            reml=not args.ml,
            samples=args.samples, center_kinship=args.center_kinship,
            chunk_size=args.chunk_size, trait_batch=args.trait_batch, keep=args.keep,
            threshold=args.threshold, out=out_path if folder else None, resume=args.resume,
            **_parallel_options(args, client),
        )  # fmt: skip
    what = f"{P.shape[1]} trait(s) x {src.n_markers} markers, mode {args.mode}, keep {args.keep}"
    if folder:
        rows = "" if table is None else f"{len(table)} rows, "
        print(f"wrote {rows}{what}, to the Parquet dataset {out_path}")
        return
    assert table is not None  # a table is returned without an output folder
    write_table(table, out_path, index=False)
    print(f"wrote {len(table)} rows ({what}) to {out_path}")


def _strata(args: argparse.Namespace, src: Any) -> Any:
    """The --strata column (FILE:COL) as a Series by sample id."""
    if not args.strata:
        return None
    path, sep, column = args.strata.rpartition(":")
    if not sep or not path or not column:
        raise LmmliteError(f"--strata must be FILE:COLUMN; got {args.strata!r}")
    table = _table(args, src, path, "strata")
    if column not in table.columns:
        raise LmmliteError(
            f"--strata: {path!r} has no column {column!r}; it has {list(table.columns)[:10]}"
        )
    return table[column]


def _perm(args: argparse.Namespace) -> None:
    from .io.tables import write_table
    from .permutation import ALPHAS, perm_thresholds, permutation_test

    out_path = args.out
    if args.alpha and not args.thresholds and not args.plot:
        raise LmmliteError("--alpha needs --thresholds or --plot (where the thresholds go)")
    folder = _dataset_out(args)
    _check_out(args, args.thresholds)
    _check_out(args, args.plot, table=False)
    src = _source(args)
    P, C, K, Xc, intcovar = _scan_inputs(args, src)
    with _dask_client(args) as client:
        table = permutation_test(
            src, P, C,
            kinship=K, loco=args.loco, xcovar=Xc, intcovar=intcovar,
            kinship_scale=args.kinship_scale, n_perm=args.n_perm, seed=args.seed,
            method=args.method, strata=_strata(args, src), n_perm_x=args.n_perm_x,
            x_specific=False if args.no_x_specific else None, reml=not args.ml,
            samples=args.samples, center_kinship=args.center_kinship,
            chunk_size=args.chunk_size, trait_batch=args.trait_batch,
            out=out_path if folder else None, resume=args.resume,
            **_parallel_options(args, client),
        )  # fmt: skip
    seed = table.attrs["seed"]
    n_x = f" (X: {table.attrs['n_perm_x']})" if table.attrs.get("n_perm_x") else ""
    what = f"{P.shape[1]} trait(s) x {args.n_perm}{n_x} permutations, method {args.method}"
    alphas = args.alpha or list(ALPHAS)
    thresholds = perm_thresholds(table, alphas)
    if args.plot:  # drawn before the tables: a plot that fails leaves no table behind
        from .plot import plot_perm

        plot_perm(table, args.plot, alpha=alphas)
    if folder:
        print(f"wrote {len(table)} rows ({what}, seed {seed}) to the Parquet dataset {out_path}")
    else:
        write_table(table, out_path, index=False)
        print(f"wrote {len(table)} rows ({what}, seed {seed}) to {out_path}")
    if args.thresholds:
        write_table(thresholds, args.thresholds, index=False)
        print(f"wrote the LOD thresholds to {args.thresholds}")
    if args.plot:
        print(f"wrote the plot to {args.plot}")
    import pandas as pd

    with pd.option_context(
        "display.width", 200, "display.max_columns", 12, "display.max_rows", 20,
        "display.float_format", "{:.4g}".format,
    ):  # fmt: skip
        print(thresholds.to_string(index=False))


def _coef(args: argparse.Namespace) -> None:
    import numpy as np

    from .effects import scan_coef
    from .io.tables import write_table

    _check_out(args, args.out)
    _check_out(args, args.plot, table=False)
    src = _source(args)
    P = _table(args, src, args.pheno, "pheno")
    trait = args.trait or str(P.columns[0])
    if trait not in P.columns:
        raise LmmliteError(f"--trait {trait!r} is not a phenotype; they are {list(P.columns)}")
    C = _table(args, src, args.covar, "covar") if args.covar else None
    K: Any = False
    if args.kinship:
        from .io.kinship import read_kinship

        K = read_kinship(args.kinship, src.samples)
        if isinstance(K, dict):
            K = K.get(str(args.chromosome))
            if K is None:
                raise LmmliteError(
                    f"{args.kinship!r} has no kinship for chromosome {args.chromosome}"
                )
    kw = {"chromosome": args.chromosome, "kinship": K, "kinship_scale": args.kinship_scale}
    table = scan_coef(src, P[[trait]], C, **kw)
    write_table(table, args.out)
    print(f"wrote the effects of {trait} along chromosome {args.chromosome} to {args.out}")
    if args.plot:
        from .io.genotypes import ArraySource
        from .plot import plot_coef
        from .scan import scan

        where = np.flatnonzero(src.markers["chr"].astype(str) == str(args.chromosome))
        a, z = int(where[0]), int(where[-1]) + 1
        one = ArraySource(src.read(a, z), src.samples, src.markers.iloc[a:z])
        lod = scan(one, P[[trait]], C, kinship=K, kinship_scale=args.kinship_scale)
        assert lod is not None
        plot_coef(table, lod, args.plot, title=f"{trait}, chromosome {args.chromosome}")
        print(f"wrote the plot to {args.plot}")


def _plot(args: argparse.Namespace) -> None:
    from .io.phenotypes import read_peaks_table, read_perm_table, read_scan_table
    from .io.tables import check_output
    from .peaks import peak_thresholds
    from .permutation import perm_pvalue_threshold
    from .plot import plot_scan

    _check_out(args, args.out, table=False)
    check_output(args.out, inputs=[args.scan, args.perm, args.peaks])
    if args.perm and args.threshold is not None:
        raise LmmliteError("give --threshold or --perm, not both")
    if (args.perm or args.peaks or args.threshold is not None) and args.kind == "qq":
        raise LmmliteError("--threshold, --perm and --peaks draw on lod and manhattan plots")
    table = read_scan_table(args.scan)
    trait = str(args.trait or (table["trait"].iloc[0] if "trait" in table.columns else ""))
    peaks = read_peaks_table(args.peaks) if args.peaks else None
    lines: dict[str, Any] = {}
    if args.kind == "lod" and args.threshold is not None:
        lines["thresholds"] = args.threshold
    elif args.kind == "manhattan" and args.threshold is not None:
        lines["threshold"] = _open_unit(str(args.threshold))
    elif args.perm:
        perm = read_perm_table(args.perm)
        if args.kind == "lod":
            lines["thresholds"] = peak_thresholds([trait], perm=perm, alpha=args.alpha)[trait]
        else:
            lines["threshold"] = perm_pvalue_threshold(perm, trait, args.alpha)
    plot_scan(
        table, args.out, kind=args.kind, column=args.column, trait=trait or None, peaks=peaks,
        **lines,
    )  # fmt: skip
    print(f"wrote the {args.kind} plot to {args.out}")


def _peaks(args: argparse.Namespace) -> None:
    import pandas as pd

    from .io.phenotypes import read_perm_table, read_scan_table
    from .io.tables import check_output, write_table
    from .peaks import find_peaks, peak_thresholds

    if args.alpha is not None and not args.perm:
        raise LmmliteError("--alpha needs --perm (the permutation table it reads thresholds from)")
    if args.alpha is not None and (args.threshold is not None or args.threshold_x is not None):
        raise LmmliteError("give --threshold or --perm with --alpha, not both")
    if args.drop_x is not None and args.drop is None:
        raise LmmliteError("--drop-x needs --drop")
    if args.prob_x is not None and args.prob is None:
        raise LmmliteError("--prob-x needs --prob")
    for path, table in ((args.out, True), (args.plot, False)):
        _check_out(args, path, table=table)
        if path:
            check_output(path, inputs=[args.scan, args.perm])
    scan = read_scan_table(args.scan, needs=("trait", "chr", "pos", "marker", "lod"))
    perm = read_perm_table(args.perm) if args.perm else None
    threshold = 3.0 if args.threshold is None else args.threshold
    peaks = find_peaks(
        scan, threshold=threshold, peakdrop=args.peakdrop, drop=args.drop, prob=args.prob,
        expand_to_markers=args.expand_to_markers, threshold_x=args.threshold_x,
        peakdrop_x=args.peakdrop_x, drop_x=args.drop_x, prob_x=args.prob_x, perm=perm,
        alpha=args.alpha,
    )  # fmt: skip
    traits = list(dict.fromkeys(scan["trait"].astype(str)))
    with pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.max_rows", 60,
        "display.float_format", "{:.6g}".format,
    ):  # fmt: skip
        print(peaks.to_string(index=False) if len(peaks) else "no peaks")
    if args.plot and len(peaks):  # drawn first: a plot that fails leaves no table behind
        from .plot import plot_peaks

        lines = peak_thresholds(
            traits, threshold=threshold, threshold_x=args.threshold_x, perm=perm,
            alpha=args.alpha,
        )  # fmt: skip
        plot_peaks(scan, peaks, args.plot, thresholds=lines)
        print(f"wrote the plot to {args.plot}")
    elif args.plot:
        print(f"no peaks: {args.plot} not drawn")
    write_table(peaks, args.out, index=False)
    print(f"wrote {len(peaks)} peak(s) of {len(traits)} trait(s) to {args.out}")


def _report(args: argparse.Namespace) -> None:
    from .report import report

    if not args.scan and not args.herit:
        raise LmmliteError("give --scan, --herit or both")
    given = {"alpha": args.alpha, "lod_floor": args.lod_floor, "max_points": args.max_points}
    options = {k: v for k, v in vars(args).items() if k != "command" and v is not None}
    rep = report(
        args.scan, herit=args.herit, perm=args.perm, peaks=args.peaks,
        trait_positions=args.trait_positions, out=args.out, title=args.title,
        options={"command line": options}, **{k: v for k, v in given.items() if v is not None},
    )  # fmt: skip
    shown = f"{rep.shown:,} of {rep.rows:,} scan rows drawn" if rep.rows else "no scan"
    print(
        f"wrote {args.out}: {rep.size / 1e6:.1f} MB ({rep.plotly_bytes / 1e6:.1f} MB of it "
        f"Plotly's JavaScript); {rep.traits:,} trait(s), {shown}"
    )


def _demo(args: argparse.Namespace) -> None:
    import numpy as np

    from .datasets import simulate
    from .heritability import heritability, loglik_profile
    from .io.tables import write_table
    from .plot import plot_profile

    if args.n_samples < 10:
        raise LmmliteError(f"--samples must be at least 10; got {args.n_samples}")
    outdir = Path(args.outdir)
    true_h = np.linspace(0.1, 0.9, args.traits)
    sim = simulate(
        n_samples=args.n_samples, n_traits=args.traits, hsq=true_h, missing_rate=0.1, seed=args.seed
    )
    n_pat = sim.pheno.notna().T.drop_duplicates().shape[0]
    print(
        f"simulated {args.n_samples} samples, {args.traits} traits "
        f"({int(sim.pheno.isna().sum().sum())} missing values in {n_pat} patterns)\n"
    )
    out = heritability(sim.kinship, sim.pheno, sim.covar)
    out.insert(1, "true_hsq", sim.hsq)
    _show(out, extra=["true_hsq"])
    traits = [str(sim.pheno.columns[0]), str(sim.pheno.columns[-1])]
    prof = loglik_profile(sim.kinship, sim.pheno, sim.covar, traits=traits)
    outdir.mkdir(parents=True, exist_ok=True)  # made only once there is something to write
    write_table(out, outdir / "heritability.csv")
    plot_profile(prof, outdir / "profile.png", estimates=out)
    print(f"\nwrote {outdir / 'heritability.csv'} and {outdir / 'profile.png'}")


# ---------------------------------------------------------------------------------------------
# Where tasks run


def _parallel_options(args: argparse.Namespace, client: Any) -> dict[str, Any]:
    """Where the tasks run, and the progress bar (see _add_parallel)."""
    return {"threads": args.threads, "client": client, "progress": not args.no_progress}


@contextlib.contextmanager
def _dask_client(args: argparse.Namespace) -> Iterator[Any]:
    """The Dask client of --dask (None: in-process), closed (with its LocalCluster) after."""
    if not args.dask:
        if args.workers is not None:
            raise LmmliteError("--workers needs --dask local")
        yield None
        return
    if args.threads is not None:
        raise LmmliteError("--threads is for in-process runs; with --dask use --workers")
    from .distributed import local_client, require_dask

    if args.dask == "local":
        client = local_client(args.workers)
    else:
        if args.workers is not None:
            raise LmmliteError("--workers applies to --dask local, not to a running scheduler")
        try:
            client = require_dask().Client(args.dask, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise LmmliteError(f"cannot reach the Dask scheduler at {args.dask!r}: {exc}") from None
    try:
        yield client
    finally:
        cluster = client.cluster
        client.close()
        if args.dask == "local" and cluster is not None:
            cluster.close()


# ---------------------------------------------------------------------------------------------
# Entry point


def _report_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Print the warnings recorded during a command, once each, after it has run.

    lmmlite's own warnings (boundary estimates, dropped samples, ...) are meant for the user
    and are printed as ``lmmlite: warning: <message>``. Warnings of other libraries (a NumPy
    RuntimeWarning, a Dask UserWarning) are printed too, with their class named
    (``lmmlite: warning: RuntimeWarning: <message>``), so that nothing is hidden; lmmlite
    avoids causing them for conditions it expects. Each distinct warning is printed once.
    """
    seen: set[tuple[str, str]] = set()
    for w in caught:
        key = (w.category.__name__, str(w.message))
        if key in seen:
            continue
        seen.add(key)
        msg = " ".join(str(w.message).split())
        if issubclass(w.category, LmmliteWarning):
            print(f"lmmlite: warning: {msg}", file=sys.stderr)
        else:
            print(f"lmmlite: warning: {w.category.__name__}: {msg}", file=sys.stderr)


_HANDLERS: dict[str, str] = {
    "herit": "_herit",
    "profile": "_profile",
    "kinship": "_kinship",
    "scan": "_scan",
    "perm": "_perm",
    "coef": "_coef",
    "plot": "_plot",
    "peaks": "_peaks",
    "report": "_report",
    "demo": "_demo",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lmmlite`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], None] = globals()[_HANDLERS[args.command]]
    from .io.tables import remove_temporaries_on_sigterm

    caught: list[warnings.WarningMessage] = []
    try:
        try:
            with remove_temporaries_on_sigterm(), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                handler(args)
        finally:
            # replayed only after the recording context is closed: printing a warning inside
            # it would record it again (an endless loop on any foreign warning)
            _report_warnings(caught)
    except (LmmliteError, ValueError, OSError, ImportError, MemoryError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, MemoryError):
            msg = "out of memory (try a smaller --chunk-size or --trait-batch)"
        print(f"lmmlite: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lmmlite: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in lmmlite: say so, without a traceback unless asked
        if os.environ.get("LMMLITE_DEBUG"):
            raise
        print(
            f"lmmlite: internal error: {type(exc).__name__}: {' '.join(str(exc).split())} "
            "(a bug in lmmlite: please report it; LMMLITE_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 3
    return 0


def run() -> NoReturn:  # pragma: no cover - exits the process (tested through subprocesses)
    """The ``lmmlite`` command: :func:`main`, then the process ends without the interpreter's
    teardown, once every output is written and the standard streams are flushed. The
    teardown adds nothing but time (half a second: numba's and the thread pools'
    finalizers); after a run with Dask the usual exit runs, for its shutdown handlers."""
    code = main()
    if "distributed" in sys.modules:
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: the usual exit reports what it reports
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
