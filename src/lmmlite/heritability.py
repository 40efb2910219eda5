"""Heritability of many phenotypes with sample ids and missing values: :func:`heritability`
(what most users call) and :func:`loglik_profile`.

Samples are matched by id, never by position (see :mod:`lmmlite.alignment`); phenotypes that
share a missing-data pattern share one eigendecomposition and are fitted together, in batches
of traits run as tasks (:mod:`lmmlite.planner`) in-process or on Dask.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd

from . import planner
from ._progress import Progress
from .alignment import align, kinship_frame, numeric_frame
from .core.checks import check_kinship, format_values
from .core.lmm import eigh_decreasing
from .core.model import RotatedModel
from .distributed import executor_for
from .exceptions import (
    BoundaryWarning,
    ConvergenceWarning,
    CovariateError,
    InputError,
    PhenotypeError,
)
from .options import HeritabilityOptions
from .results import HERITABILITY_COLUMNS

__all__ = ["HERITABILITY_COLUMNS", "heritability", "loglik_profile"]

_DEFAULT = HeritabilityOptions()


def heritability(
    kinship: pd.DataFrame,
    pheno: pd.DataFrame | pd.Series,
    covar: pd.DataFrame | None = None,
    *,
    reml: bool = _DEFAULT.reml,
    tol: float = _DEFAULT.tol,
    check_boundary: bool = _DEFAULT.check_boundary,
    samples: Literal["strict", "intersection"] = _DEFAULT.samples,
    intercept: bool | None = _DEFAULT.intercept,
    level: float = _DEFAULT.level,
    trait_batch: int = _DEFAULT.trait_batch,
    kinship_scale: float = _DEFAULT.kinship_scale,
    threads: int | None = None,
    client: Any = None,
    progress: bool | Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Estimate the heritability of every phenotype, handling ids and missing values.

    Parameters
    ----------
    kinship
        Kinship matrix with sample ids as both index and columns (any order). Extra samples
        not in ``pheno`` are ignored.
    pheno
        Phenotypes, one column per trait, indexed by sample id; NaN marks a missing value.
    covar
        Covariates indexed by sample id (no missing values for analysed samples). An intercept
        is added unless a column is constant (see ``intercept``).
    reml
        REML (default) or ML.
    tol
        Brent's tolerance on hsq, in (0, 0.5).
    check_boundary
        Compare the optimum with hsq = 0 and 1 (as R/lmmlite's C++ ``fitLMM``).
    samples
        ``"strict"`` (default): every phenotyped sample must be in the kinship and covariates,
        or a :class:`~lmmlite.SampleMismatchError` lists those that are not.
        ``"intersection"``: analyse only the samples present everywhere; the dropped ids are
        named in a :class:`~lmmlite.SamplesDroppedWarning` and listed in
        ``result.attrs["dropped_samples"]``.
    intercept
        Add an intercept column: ``None`` (default) adds one unless a covariate is constant.
    level
        Coverage of the profile-likelihood interval of hsq, in (0, 1).
    trait_batch
        Traits fitted together: a task is one batch of traits of one missing-data pattern.
    kinship_scale
        The genetic covariance is hsq x kinship_scale x K: 1 (R/lmmlite, GEMMA) or 2 (R/qtl2's
        ``est_herit``, which fits 2K). hsq on one scale maps to the other: with scale 2,
        hsq_2 = hsq_1 / (2 - hsq_1).
    threads
        Tasks run at once in-process (default: the CPU cores available), each
        single-threaded; the numbers do not depend on it. Not with ``client``.
    client
        A ``dask.distributed.Client``: the tasks run on its workers (for very many traits).
        Each pattern's eigendecomposition is computed here once and handed to the cluster.
        The results are the same numbers as in-process (see :mod:`lmmlite.executors`).
    progress
        ``True``: a progress bar on stderr; a callable is called as
        ``progress(tasks_done, tasks_total)`` after each task.

    Returns
    -------
    pandas.DataFrame
        One row per phenotype (index: phenotype names) with the columns
        :data:`HERITABILITY_COLUMNS` and ``beta_<covariate>`` for each covariate. Samples with a
        missing value are left out of that phenotype only; phenotypes that share a
        missing-data pattern share one eigendecomposition.

    Examples
    --------
    >>> from lmmlite.datasets import simulate
    >>> sim = simulate(n_samples=400, n_traits=3, hsq=0.5, missing_rate=0.1, seed=3)
    >>> out = heritability(sim.kinship, sim.pheno, sim.covar)
    >>> list(out.index)
    ['trait1', 'trait2', 'trait3']
    >>> bool(out["hsq"].between(0, 1).all())
    True
    """
    opts = HeritabilityOptions(
        reml=reml,
        tol=tol,
        check_boundary=check_boundary,
        level=level,
        samples=samples,
        intercept=intercept,
        trait_batch=trait_batch,
        kinship_scale=kinship_scale,
    )
    executor = executor_for(client, threads)
    K = kinship_frame(kinship)
    P = numeric_frame(pheno, "phenotypes", PhenotypeError)
    C = None if covar is None else numeric_frame(covar, "covariates", CovariateError)
    aligned = align(
        P,
        C,
        {"kinship": set(K.index)},
        samples=opts.samples,
        option="samples='intersection' (--samples intersection)",
        intercept=opts.intercept,
    )
    parts: list[pd.DataFrame] = []
    plan = planner.HeritabilityPlan(K, aligned, opts)
    bar = Progress(plan.n_tasks, unit_work="traits", report=progress, desc="heritability")
    try:
        executor.run(plan.stages(), parts.append, bar)
    finally:
        bar.close()
    out = pd.concat(parts).loc[aligned.traits]
    _warn(out)
    out.attrs["dropped_samples"] = aligned.dropped
    out.attrs["reml"] = opts.reml
    return out


def _warn(out: pd.DataFrame) -> None:
    """One BoundaryWarning and one ConvergenceWarning naming the traits flagged."""
    for flag, bad, what, category in (
        ("at_boundary", out["at_boundary"], "have hsq on the boundary of [0, 1]", BoundaryWarning),
        ("converged", ~out["converged"], "did not converge", ConvergenceWarning),
    ):
        nb = int(bad.sum())
        if nb:
            warnings.warn(
                f"{nb} of {len(out)} phenotype(s) {what}: "
                f"{format_values([str(v) for v in out.index[bad.to_numpy()]])} "
                f"(flagged in the {flag} column)",
                category,
                stacklevel=3,
            )


def loglik_profile(
    kinship: pd.DataFrame,
    pheno: pd.DataFrame | pd.Series,
    covar: pd.DataFrame | None = None,
    *,
    traits: list[str] | None = None,
    grid: np.ndarray | int = 101,
    reml: bool = True,
    samples: Literal["strict", "intersection"] = "strict",
    intercept: bool | None = None,
) -> pd.DataFrame:
    """Log likelihood over a grid of hsq for chosen phenotypes (R/lmmlite's vignette plot).

    Parameters
    ----------
    kinship, pheno, covar, reml, samples, intercept
        As in :func:`heritability`.
    traits
        Phenotype names (default: all).
    grid
        Number of equally spaced points on [0, 1], or the hsq values themselves.

    Returns
    -------
    pandas.DataFrame
        Index ``hsq`` (the grid), one column of log likelihoods per phenotype (each computed
        on that phenotype's observed samples).
    """
    P = numeric_frame(pheno, "phenotypes", PhenotypeError)
    names = list(P.columns) if traits is None else [str(t) for t in traits]
    unknown = [t for t in names if t not in P.columns]
    if unknown:
        raise PhenotypeError(
            f"unknown phenotype(s) {format_values(unknown)}; available: "
            f"{format_values(list(P.columns))}"
        )
    hs = _grid(grid)
    K = kinship_frame(kinship)
    C = None if covar is None else numeric_frame(covar, "covariates", CovariateError)
    aligned = align(
        P[names],
        C,
        {"kinship": set(K.index)},
        samples=samples,
        option="samples='intersection' (--samples intersection)",
        intercept=intercept,
    )
    Kfull = K.to_numpy()
    out = {}
    for pat in aligned.patterns:
        kpos = K.index.get_indexer(pd.Index(pat.ids))
        Kva, U, _ = eigh_decreasing(check_kinship(Kfull[np.ix_(kpos, kpos)]))
        Xt = U.T @ pat.X
        for j, name in enumerate(pat.traits):
            y = np.ascontiguousarray(pat.Y[:, j])
            model = RotatedModel(Kva, (U.T @ y)[:, None], Xt)
            out[name] = model.loglik(hs, np.zeros(hs.size, dtype=np.int64), reml)
    return pd.DataFrame({n: out[n] for n in names}, index=pd.Index(hs, name="hsq"))


def _grid(grid: np.ndarray | int) -> np.ndarray:
    """The hsq values of a profile: ``grid`` equally spaced points on [0, 1], or the values."""
    if isinstance(grid, (int, np.integer)):
        if grid < 2:
            raise InputError(f"grid must have at least 2 points; got {grid}")
        return np.linspace(0.0, 1.0, int(grid))
    hs = np.asarray(grid, dtype=float)
    if hs.ndim != 1 or hs.size == 0 or np.any((hs < 0) | (hs > 1)) or np.isnan(hs).any():
        raise InputError("grid values must be a non-empty vector within [0, 1]")
    return hs
