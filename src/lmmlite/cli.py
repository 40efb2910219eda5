"""The ``lmmlite`` command: a thin layer that reads files, calls the public API and prints.

Every error the user can cause ends with a one-line message on stderr and exit status 2;
warnings (boundary estimates, ...) are printed as one line each.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from . import __version__
from .exceptions import LmmliteError, LmmliteWarning
from .io.genotypes import GenotypeSource

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


def _add_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kinship",
        required=True,
        metavar="FILE",
        help="kinship matrix (CSV/TSV; first column and header: sample ids)",
    )
    p.add_argument(
        "--pheno",
        required=True,
        metavar="FILE",
        help="phenotypes (CSV/TSV; first column: sample id; NA for missing)",
    )
    p.add_argument(
        "--covar",
        metavar="FILE",
        help="covariates (CSV/TSV; first column: sample id); an intercept is added "
        "unless a column is constant",
    )
    p.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    p.add_argument(
        "--samples",
        choices=["strict", "intersection"],
        default="strict",
        help="strict (default): every phenotype id must be in the kinship and "
        "covariates; intersection: analyse the samples present in all",
    )


def _add_parallel(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dask",
        metavar="local|ADDRESS",
        help="run the tasks on Dask: 'local' starts a LocalCluster, else a scheduler address",
    )
    p.add_argument(
        "--workers", type=int, help="worker processes of --dask local (default: CPU count)"
    )
    p.add_argument(
        "--threads",
        type=int,
        help="tasks run at once in-process (default: the CPU cores available; each task is "
        "single-threaded)",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar (shown on a terminal)"
    )


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (``lmmlite: error: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"lmmlite: error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lmmlite",
        description="Linear mixed models for genetics: heritability of many traits with "
        "missing data.",
    )
    parser.add_argument("--version", action="version", version=f"lmmlite {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    h = sub.add_parser("herit", help="estimate the heritability of every phenotype")
    _add_inputs(h)
    h.add_argument("--tol", type=float, default=1e-4, help="Brent tolerance on hsq (1e-4)")
    h.add_argument(
        "--no-check-boundary",
        action="store_true",
        help="do not compare the optimum with hsq = 0 and 1",
    )
    h.add_argument(
        "--level",
        type=float,
        default=0.95,
        help="coverage of the profile-likelihood interval (0.95)",
    )
    h.add_argument("--out", metavar="FILE", help="write the full table (.csv or .tsv)")
    h.add_argument("--trait-batch", type=int, default=1024, help="traits per task (1024)")
    _add_parallel(h)

    pr = sub.add_parser("profile", help="log likelihood over a grid of hsq, with a plot")
    _add_inputs(pr)
    pr.add_argument(
        "--trait",
        action="append",
        metavar="NAME",
        help="phenotype to profile (repeatable; default: the first)",
    )
    pr.add_argument("--grid", type=int, default=101, help="number of grid points (101)")
    pr.add_argument("--plot", metavar="FILE.png", help="draw the curves to this image file")
    pr.add_argument("--out", metavar="FILE", help="write the grid table (.csv or .tsv)")

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
        help="one kinship per chromosome, leaving it out; written as OUT-STEM.chr<C>.EXT",
    )
    k.add_argument(
        "--pheno",
        metavar="FILE",
        help="compute the marker filters on the samples with a phenotype (as GEMMA)",
    )
    k.add_argument("--maf", type=float, default=0.01, help="minimum minor allele frequency")
    k.add_argument(
        "--max-missing", type=float, default=0.05, help="maximum fraction of missing genotypes"
    )
    k.add_argument("--out", required=True, metavar="FILE", help="output table (.csv or .tsv)")

    s = sub.add_parser("scan", help="LMM association test at every marker")
    _add_genotypes(s)
    s.add_argument(
        "--pheno",
        metavar="FILE",
        help="phenotypes (CSV/TSV with ids; BIMBAM: one column per trait, no ids, "
        "genotype-file order); default with --bfile: the .fam",
    )
    s.add_argument(
        "--pheno-col",
        type=int,
        action="append",
        metavar="N",
        help="1-based phenotype column to analyse (repeatable; default: all)",
    )
    s.add_argument("--covar", metavar="FILE", help="covariates (same conventions as --pheno)")
    kin = s.add_mutually_exclusive_group()
    kin.add_argument(
        "--kinship",
        metavar="FILE",
        help="kinship table (ids as first column and header) or bare square "
        "matrix in genotype-file order (as GEMMA writes it); default: the "
        "centred kinship of the genotypes",
    )
    kin.add_argument(
        "--loco",
        action="store_true",
        help="leave-one-chromosome-out kinships computed from the genotypes",
    )
    s.add_argument(
        "--mode",
        choices=["fixed", "exact"],
        default="fixed",
        help="fixed: null hsq held fixed (default); exact: hsq re-estimated per "
        "marker as GEMMA -lmm 4",
    )
    s.add_argument("--ml", action="store_true", help="ML instead of REML for the Wald test's hsq")
    s.add_argument(
        "--samples",
        choices=["strict", "drop"],
        default="strict",
        help="strict: phenotyped samples lacking genotypes/kinship/covariates are an "
        "error; drop: leave them out with a warning",
    )
    s.add_argument(
        "--center-kinship",
        action="store_true",
        help="double-centre the kinship over the analysed samples (as GEMMA does)",
    )
    s.add_argument("--chunk-size", type=int, default=2048, help="markers per chunk (2048)")
    s.add_argument("--trait-batch", type=int, default=2048, help="traits per task (2048)")
    s.add_argument(
        "--keep",
        choices=["all", "peaks", "max"],
        default="all",
        help="all: every test (default); peaks: per trait and chromosome the highest LOD if "
        "it reaches --threshold; max: per trait the highest LOD",
    )
    s.add_argument("--threshold", type=float, default=3.0, help="LOD threshold of --keep peaks (3)")
    s.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="results: a table (.tsv, .txt, .csv) or a Parquet dataset folder NAME.parquet "
        "(one file per task, resumable)",
    )
    s.add_argument(
        "--resume",
        action="store_true",
        help="complete an interrupted run in the --out folder (same inputs and options)",
    )
    _add_parallel(s)

    pl = sub.add_parser("plot", help="draw a scan table: manhattan, lod or qq")
    pl.add_argument("kind", choices=["manhattan", "lod", "qq"])
    pl.add_argument("--scan", required=True, metavar="FILE", help="table written by lmmlite scan")
    pl.add_argument("--trait", help="trait to draw (default: the first)")
    pl.add_argument("--column", help="column to draw (p_wald for manhattan/qq, lod for lod)")
    pl.add_argument("--out", required=True, metavar="FILE.png", help="image file")

    d = sub.add_parser("demo", help="simulate data, estimate heritabilities, save a plot")
    d.add_argument(
        "--samples", type=int, default=400, dest="n_samples", help="number of samples (400)"
    )
    d.add_argument("--traits", type=int, default=8, help="number of traits (8)")
    d.add_argument("--seed", type=int, default=1, help="random seed (1)")
    d.add_argument("--outdir", default="lmmlite_demo", help="output folder (lmmlite_demo)")
    return parser


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
        help="probabilities: arrays probs (n, k, m), samples, markers, chr, pos",
    )
    p.add_argument("--annot", metavar="FILE", help="BIMBAM annotation: marker position chr")


def _source(args: argparse.Namespace) -> GenotypeSource:
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


def _positional_table(path: str, ids: list[str], what: str) -> pd.DataFrame:
    """A GEMMA-style table without ids (whitespace separated, NA missing), rows in genotype
    order; empty trailing fields (GEMMA's trailing tab) are ignored."""
    from .exceptions import FileFormatError

    try:
        df = pd.read_csv(path, sep=r"\s+", header=None, na_values=["NA", "-9"])
    except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise FileFormatError(f"cannot read {what} file {path!r}: {exc}") from None
    if len(df) != len(ids):
        raise FileFormatError(
            f"{what} file {path!r} has {len(df)} rows but the genotype file "
            f"has {len(ids)} samples (BIMBAM files match by position)"
        )
    df.index = pd.Index(ids, name="id")
    df.columns = [f"{what}{j + 1}" for j in range(df.shape[1])]
    return df


def _read_kinship(path: str, ids: list[str]) -> pd.DataFrame:
    """A kinship table with ids, or a bare square matrix in genotype-file order."""
    from .exceptions import FileFormatError
    from .io.tables import read_table

    first = Path(path).read_text().split("\n", 1)[0] if Path(path).is_file() else ""
    # a table has a header (ids, often after an empty corner field); a bare matrix is numbers
    fields = re.split(r"[,\s]+", first.strip("\r\n"))
    try:
        [float(f) for f in fields]
        bare = bool(fields)
    except ValueError:
        bare = False
    if bare:
        sep = "," if "," in first else r"\s+"
        M = pd.read_csv(path, sep=sep, header=None, dtype=float).to_numpy()
        if M.shape != (len(ids), len(ids)):
            raise FileFormatError(
                f"kinship {path!r} is a bare {M.shape[0]} x {M.shape[1]} matrix but the "
                f"genotype file has {len(ids)} samples: its size matches neither"
            )
        return pd.DataFrame(M, index=ids, columns=ids)
    K = read_table(path, "kinship")
    if K.shape[0] != K.shape[1] or not set(K.index) <= set(ids) | set(K.index):
        raise FileFormatError(
            f"kinship {path!r} must be square with sample ids; got {K.shape[0]} x {K.shape[1]}"
        )
    return K


def _read_inputs(
    args: argparse.Namespace,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    from .io.tables import read_table

    K = read_table(args.kinship, "kinship")
    P = read_table(args.pheno, "phenotype")
    C = read_table(args.covar, "covariate") if args.covar else None
    return K, P, C


def _show(table: pd.DataFrame, extra: Sequence[str] = ()) -> None:
    cols = ["n", *extra, *[c for c in _SHOWN[1:] if c in table.columns]]
    with pd.option_context(
        "display.width",
        200,
        "display.max_columns",
        20,
        "display.max_rows",
        200,
        "display.float_format",
        "{:.6g}".format,
    ):
        print(table[cols].to_string())


def _parallel_options(args: argparse.Namespace, client: Any) -> dict[str, Any]:
    """Where the tasks run, and the progress bar (see _add_parallel)."""
    return {"threads": args.threads, "client": client, "progress": not args.no_progress}


def _herit(args: argparse.Namespace) -> None:
    from .heritability import heritability
    from .io.tables import write_table

    if not (np.isfinite(args.tol) and args.tol > 0):
        raise LmmliteError(f"--tol must be a positive number; got {args.tol}")
    if args.out:
        _check_output(args.out)
    K, P, C = _read_inputs(args)
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

    if args.out:
        _check_output(args.out)
    K, P, C = _read_inputs(args)
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
    if args.out:
        write_table(prof, args.out)
        print(f"wrote the grid to {args.out}")
    if args.plot:
        from .plot import plot_profile

        plot_profile(prof, args.plot, estimates=fits)
        print(f"wrote the plot to {args.plot}")


def _kinship(args: argparse.Namespace) -> None:
    from .io.tables import read_table, write_table
    from .kinship import kinship

    src = _source(args)
    method = args.method or ("probs" if src.k > 1 else "centered")
    filter_ids = None
    if args.pheno:
        P = (
            _positional_table(args.pheno, src.samples, "pheno")
            if src.positional
            else read_table(args.pheno, "phenotype")
        )
        filter_ids = [i for i in P.index[P.notna().any(axis=1)] if i in set(src.samples)]
    out = kinship(
        src,
        method=method,
        loco=args.loco,
        maf=args.maf,
        max_missing=args.max_missing,
        filter_samples=filter_ids,
    )
    if isinstance(out, dict):
        stem, ext = os.path.splitext(args.out)
        for c, K in out.items():
            write_table(K, f"{stem}.chr{c}{ext}")
        print(f"wrote {len(out)} LOCO kinships ({len(src.samples)} samples) to {stem}.chr<C>{ext}")
    else:
        write_table(out, args.out)
        print(
            f"wrote the {method} kinship of {len(src.samples)} samples from "
            f"{src.n_markers} markers to {args.out}"
        )


def _check_output(path: str) -> None:
    """Fail before any work on an output name that cannot be written."""
    from .exceptions import FileFormatError
    from .io.tables import separator_for

    if not path.lower().endswith(".parquet"):
        separator_for(path)
    folder = Path(path).parent
    if not folder.is_dir():
        raise FileFormatError(f"cannot write {path!r}: folder {str(folder)!r} does not exist")


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


def _scan(args: argparse.Namespace) -> None:
    from .io.tables import atomic_write, read_table, separator_for
    from .scan import scan

    out_path = args.out
    folder = out_path.lower().endswith(".parquet")
    _check_output(out_path)
    if args.resume and not folder:
        raise LmmliteError("--resume needs --out NAME.parquet (a dataset folder)")
    src = _source(args)
    if args.pheno:
        P = (
            _positional_table(args.pheno, src.samples, "pheno")
            if src.positional
            else read_table(args.pheno, "phenotype")
        )
    elif args.bfile:
        P = src.fam_phenotypes()  # type: ignore[attr-defined]
    else:
        raise LmmliteError("--pheno is needed (only --bfile can take phenotypes from the .fam)")
    if args.pheno_col:
        bad = [c for c in args.pheno_col if not 1 <= c <= P.shape[1]]
        if bad:
            raise LmmliteError(
                f"--pheno-col {bad} out of range: there are {P.shape[1]} phenotype columns"
            )
        P = P.iloc[:, [c - 1 for c in args.pheno_col]]
    C = None
    if args.covar:
        C = (
            _positional_table(args.covar, src.samples, "covar").dropna(axis=1, how="all")
            if src.positional
            else read_table(args.covar, "covariate")
        )
    K = _read_kinship(args.kinship, src.samples) if args.kinship else None
    with _dask_client(args) as client:
        table = scan(
            src,
            P,
            C,
            kinship=K,
            loco=args.loco,
            mode=args.mode,
            reml=not args.ml,
            samples=args.samples,
            center_kinship=args.center_kinship,
            chunk_size=args.chunk_size,
            trait_batch=args.trait_batch,
            keep=args.keep,
            threshold=args.threshold,
            out=out_path if folder else None,
            resume=args.resume,
            **_parallel_options(args, client),
        )
    if folder:
        rows = "" if table is None else f"{len(table)} rows, "
        print(
            f"wrote {rows}{P.shape[1]} trait(s) x {src.n_markers} markers, mode {args.mode}, "
            f"keep {args.keep}, to the Parquet dataset {out_path}"
        )
        return
    assert table is not None
    sep = separator_for(out_path)
    atomic_write(out_path, lambda tmp: table.to_csv(tmp, sep=sep, index=False, na_rep="NA"))
    n_traits = table["trait"].nunique()
    print(
        f"wrote {len(table)} rows ({n_traits} trait(s) x {src.n_markers} markers, "
        f"mode {args.mode}, keep {args.keep}) to {out_path}"
    )


def _plot(args: argparse.Namespace) -> None:
    from .exceptions import FileFormatError
    from .io.tables import separator_for
    from .plot import plot_scan

    path = args.scan
    if not Path(path).exists():
        raise FileFormatError(f"scan file {path!r} does not exist")
    if path.lower().endswith(".parquet"):
        table = pd.read_parquet(path)
    else:
        table = pd.read_csv(path, sep=separator_for(path), na_values=["NA"], dtype={"chr": str})
    plot_scan(table, args.out, kind=args.kind, column=args.column, trait=args.trait)
    print(f"wrote the {args.kind} plot to {args.out}")


def _demo(args: argparse.Namespace) -> None:
    from .datasets import simulate
    from .heritability import heritability, loglik_profile
    from .io.tables import write_table
    from .plot import plot_profile

    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
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
    write_table(out, outdir / "heritability.csv")
    traits = [str(sim.pheno.columns[0]), str(sim.pheno.columns[-1])]
    prof = loglik_profile(sim.kinship, sim.pheno, sim.covar, traits=traits)
    plot_profile(prof, outdir / "profile.png", estimates=out)
    print(f"\nwrote {outdir / 'heritability.csv'} and {outdir / 'profile.png'}")


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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lmmlite`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    handlers = {
        "herit": _herit,
        "profile": _profile,
        "kinship": _kinship,
        "scan": _scan,
        "plot": _plot,
        "demo": _demo,
    }
    caught: list[warnings.WarningMessage] = []
    try:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                handlers[args.command](args)
        finally:
            # replayed only after the recording context is closed: printing a warning inside
            # it would record it again (an endless loop on any foreign warning)
            _report_warnings(caught)
    except (LmmliteError, ValueError, OSError, ImportError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"lmmlite: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lmmlite: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
