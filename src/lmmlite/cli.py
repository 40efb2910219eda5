"""The ``lmmlite`` command: a thin layer that reads files, calls the public API and prints.

Every error the user can cause ends with a one-line message on stderr and exit status 2;
warnings (boundary estimates, ...) are printed as one line each.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from . import __version__
from .exceptions import LmmliteError, LmmliteWarning

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

    d = sub.add_parser("demo", help="simulate data, estimate heritabilities, save a plot")
    d.add_argument(
        "--samples", type=int, default=400, dest="n_samples", help="number of samples (400)"
    )
    d.add_argument("--traits", type=int, default=8, help="number of traits (8)")
    d.add_argument("--seed", type=int, default=1, help="random seed (1)")
    d.add_argument("--outdir", default="lmmlite_demo", help="output folder (lmmlite_demo)")
    return parser


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


def _herit(args: argparse.Namespace) -> None:
    from .io.tables import write_table
    from .labeled import heritability

    if not (np.isfinite(args.tol) and args.tol > 0):
        raise LmmliteError(f"--tol must be a positive number; got {args.tol}")
    K, P, C = _read_inputs(args)
    out = heritability(
        K,
        P,
        C,
        reml=not args.ml,
        tol=args.tol,
        check_boundary=not args.no_check_boundary,
        samples=args.samples,
        level=args.level,
    )
    _show(out)
    if args.out:
        write_table(out, args.out)
        print(f"\nwrote {len(out)} rows x {out.shape[1] + 1} columns to {args.out}")


def _profile(args: argparse.Namespace) -> None:
    from .io.tables import write_table
    from .labeled import heritability, loglik_profile

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


def _demo(args: argparse.Namespace) -> None:
    from .datasets import simulate
    from .io.tables import write_table
    from .labeled import heritability, loglik_profile
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


def _format_warning(
    message: Warning | str, category: type[Warning], *_: object, **__: object
) -> str:
    return f"lmmlite: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lmmlite`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    handlers = {"herit": _herit, "profile": _profile, "demo": _demo}
    old_format = warnings.formatwarning
    warnings.formatwarning = _format_warning
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", LmmliteWarning)
            handlers[args.command](args)
    except (LmmliteError, ValueError, OSError, ImportError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"lmmlite: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lmmlite: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = old_format
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
