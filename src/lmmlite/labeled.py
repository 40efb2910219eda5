"""The pandas layer: samples matched by id, phenotypes batched by missing-data pattern.

:func:`heritability` is what most users call. It never matches samples by position: the
kinship, phenotype and covariate tables are aligned on their sample ids, and every id problem
(missing, duplicated) is an error that lists the ids, unless the intersection is asked for.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from ._checks import (
    SYMMETRY_RTOL,
    check_design,
    check_kinship,
    check_phenotypes,
    format_values,
)
from ._progress import Progress
from ._tasks import LocalTasks, run_token, task_threads
from .core._fast import RotatedModel
from .core.inference import hsq_lrt, hsq_profile_ci, hsq_second_derivative
from .core.lmm import _fit_fast, eigh_decreasing
from .exceptions import (
    BoundaryWarning,
    ConvergenceWarning,
    CovariateError,
    InputError,
    KinshipError,
    PhenotypeError,
    SampleMismatchError,
)

__all__ = ["HERITABILITY_BATCH", "HERITABILITY_COLUMNS", "heritability", "loglik_profile"]

#: Default number of traits per heritability task.
HERITABILITY_BATCH = 1024

#: Columns of :func:`heritability`'s table, in order (``beta_<covariate>`` columns come
#: after ``lrt_pvalue``).
HERITABILITY_COLUMNS = (
    "n",
    "hsq",
    "hsq_se",
    "hsq_ci_lower",
    "hsq_ci_upper",
    "sigmasq",
    "sigmasq_g",
    "sigmasq_e",
    "loglik",
    "lrt_stat",
    "lrt_pvalue",
    "at_boundary",
    "converged",
)


def _ids(index: pd.Index, what: str) -> pd.Index:
    ids = pd.Index([str(v).strip() for v in index], dtype=object)
    dup = ids[ids.duplicated()].unique()
    if len(dup):
        raise SampleMismatchError(f"{what} has duplicated sample ids: {format_values(list(dup))}")
    return ids


def _numeric_frame(df: Any, what: str, error: type[InputError]) -> pd.DataFrame:
    if isinstance(df, pd.Series):
        df = df.to_frame()
    if not isinstance(df, pd.DataFrame):
        raise InputError(
            f"{what} must be a pandas DataFrame indexed by sample id; got {type(df).__name__}"
        )
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise error(f"{what} is empty (shape {df.shape})")
    numeric = [pd.api.types.is_numeric_dtype(dt) for dt in df.dtypes]
    bad = [c for c, ok in zip(df.columns, numeric, strict=True) if not ok]
    if bad:
        examples = []
        for c in bad[:3]:
            col = df[c]
            vals = pd.to_numeric(col, errors="coerce")
            first = col[vals.isna() & col.notna()]
            if len(first):
                examples.append(f"{c!s} (e.g. {first.iloc[0]!r} for sample {first.index[0]!s})")
            else:
                examples.append(str(c))
        raise error(f"{what} has non-numeric column(s): {', '.join(examples)}")
    return pd.DataFrame(
        df.to_numpy(dtype=float), index=_ids(df.index, what), columns=[str(c) for c in df.columns]
    )


def _kinship_frame(kinship: Any) -> pd.DataFrame:
    if not isinstance(kinship, pd.DataFrame):
        raise InputError(
            "kinship must be a pandas DataFrame with sample ids as index and "
            f"columns; got {type(kinship).__name__}"
        )
    K = _numeric_frame(kinship, "kinship", KinshipError)
    if K.shape[0] != K.shape[1]:
        raise KinshipError(
            f"kinship must be square; got {K.shape[0]} rows and {K.shape[1]} columns"
        )
    cols = _ids(pd.Index(K.columns), "kinship columns")
    if set(cols) != set(K.index):
        col_set, row_set = set(cols), set(K.index)
        only_rows = [i for i in K.index if i not in col_set]
        only_cols = [c for c in cols if c not in row_set]
        raise SampleMismatchError(
            "kinship row and column ids differ: rows only "
            f"{format_values(only_rows)}; columns only {format_values(only_cols)}"
        )
    K.columns = cols
    K = K.loc[:, K.index]
    vals = K.to_numpy()
    bad = np.argwhere(~np.isfinite(vals))
    if bad.size:
        pairs = [f"({K.index[i]}, {K.columns[j]})" for i, j in bad[:5]]
        raise KinshipError(
            f"kinship has {len(bad)} NaN or infinite value(s), e.g. at {format_values(pairs, 5)}"
        )
    diff = np.abs(vals - vals.T)
    if diff.max() > SYMMETRY_RTOL * max(float(np.abs(vals).max()), np.finfo(float).tiny):
        i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
        raise KinshipError(
            f"kinship is not symmetric: K[{K.index[i]}, {K.columns[j]}] = {vals[i, j]:.6g} but "
            f"K[{K.index[j]}, {K.columns[i]}] = {vals[j, i]:.6g}"
        )
    return K


def _align(
    K: pd.DataFrame, P: pd.DataFrame, C: pd.DataFrame | None, samples: str
) -> tuple[pd.Index, list[str]]:
    ids = P.index
    k_ids = set(K.index)
    missing = {"kinship": [i for i in ids if i not in k_ids]}
    if C is not None:
        c_ids = set(C.index)
        missing["covariates"] = [i for i in ids if i not in c_ids]
    dropped = sorted({i for v in missing.values() for i in v})
    if dropped and samples == "strict":
        parts = [f"{len(v)} not in the {k} ({format_values(v)})" for k, v in missing.items() if v]
        raise SampleMismatchError(
            f"phenotype sample ids must all appear in the kinship and covariates: "
            f"{'; '.join(parts)}. Pass samples='intersection' to analyse only the samples "
            "present in every input"
        )
    gone = set(dropped)
    keep = pd.Index([i for i in ids if i not in gone], dtype=object)
    return keep, dropped


def _design(C: pd.DataFrame | None, ids: pd.Index, intercept: bool | None) -> pd.DataFrame:
    if C is None:
        return pd.DataFrame({"intercept": np.ones(len(ids))}, index=ids)
    X = C.loc[ids]
    if X.isna().any().any():
        bad = X.index[X.isna().any(axis=1)]
        raise CovariateError(
            f"covariates have missing values for {len(bad)} sample(s): "
            f"{format_values(list(bad))}; remove those samples or impute the covariates"
        )
    has_const = any(np.ptp(X[c].to_numpy()) == 0 and X[c].iloc[0] != 0 for c in X.columns)
    add = (not has_const) if intercept is None else intercept
    if add:
        if "intercept" in X.columns:
            raise CovariateError("covariates already have a column named 'intercept'")
        X = pd.concat([pd.DataFrame({"intercept": np.ones(len(ids))}, index=ids), X], axis=1)
    return X


def heritability(
    kinship: pd.DataFrame,
    pheno: pd.DataFrame | pd.Series,
    covar: pd.DataFrame | None = None,
    *,
    reml: bool = True,
    tol: float = 1e-4,
    check_boundary: bool = True,
    samples: Literal["strict", "intersection"] = "strict",
    intercept: bool | None = None,
    level: float = 0.95,
    trait_batch: int = HERITABILITY_BATCH,
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
        Brent's tolerance on hsq.
    check_boundary
        Compare the optimum with hsq = 0 and 1 (as R/lmmlite's C++ ``fitLMM``).
    samples
        ``"strict"`` (default): every phenotype id must be in the kinship and covariates, or a
        :class:`~lmmlite.SampleMismatchError` lists those that are not. ``"intersection"``:
        analyse only the samples present everywhere (the dropped ids are listed in
        ``result.attrs["dropped_samples"]``).
    intercept
        Add an intercept column: ``None`` (default) adds one unless a covariate is constant.
    level
        Coverage of the profile-likelihood interval of hsq.
    trait_batch
        Traits fitted together: a task is one batch of traits of one missing-data pattern.
    threads
        Tasks run at once in-process (default: the CPU cores available), each
        single-threaded; the numbers do not depend on it. Not with ``client``.
    client
        A ``dask.distributed.Client``: the tasks run on its workers (for very many traits).
        Each pattern's eigendecomposition is computed here once and handed to the cluster.
        The results are the same numbers as in-process (see :mod:`lmmlite._tasks`).
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
    if samples not in ("strict", "intersection"):
        raise InputError(f"samples must be 'strict' or 'intersection'; got {samples!r}")
    K = _kinship_frame(kinship)
    P = _numeric_frame(pheno, "phenotypes", PhenotypeError)
    C = None if covar is None else _numeric_frame(covar, "covariates", CovariateError)
    infinite = [c for c in P.columns if np.isinf(P[c].to_numpy()).any()]
    if infinite:
        raise PhenotypeError(
            f"phenotypes have infinite values in column(s) {format_values(infinite)}"
        )
    ids, dropped = _align(K, P, C, samples)
    P = P.loc[ids]
    X_all = _design(C, ids, intercept)
    cov_names = list(X_all.columns)
    observed = P.notna().to_numpy()
    empty = [c for c, k in zip(P.columns, observed.sum(axis=0), strict=True) if k == 0]
    if empty:
        raise PhenotypeError(f"phenotype(s) with no observed values: {format_values(empty)}")
    if trait_batch < 1:
        raise InputError(f"trait_batch must be positive; got {trait_batch}")
    threads = task_threads(threads, client)
    Kfull = K.to_numpy()
    kpos = K.index.get_indexer(ids)
    Yall = P.to_numpy()
    groups = pattern_groups(observed)  # one per distinct missing-data pattern
    opts = {
        "cov_names": cov_names,
        "reml": reml,
        "tol": tol,
        "check_boundary": check_boundary,
        "level": level,
    }

    run = run_token()

    def tasks():
        """Per pattern: its rotation (computed here) and its tasks, one per trait batch."""
        for cols in groups:
            mask = observed[:, cols[0]]
            names = [P.columns[j] for j in cols]
            K_pat = Kfull[np.ix_(kpos[mask], kpos[mask])]
            rot = _rotation(K_pat, X_all.to_numpy()[mask], names, cov_names)
            calls = []
            for b0 in range(0, len(cols), trait_batch):
                Yb = Yall[np.ix_(mask, cols[b0 : b0 + trait_batch])]
                nb = names[b0 : b0 + trait_batch]
                key = f"lmmlite-hsq-{run}-{cols[b0]}"
                calls.append((key, len(nb), _fit_batch, (Yb, nb, opts)))
            yield rot, calls

    rows: dict[Hashable, dict[str, Any]] = {}
    n_tasks = sum(-(-len(cols) // trait_batch) for cols in groups)
    bar = Progress(n_tasks, unit_work="traits", report=progress, desc="heritability")
    try:
        if client is None:
            with LocalTasks(threads, rows.update, bar) as pool:
                for rot, calls in tasks():
                    with pool.single_threaded():
                        for _, work, func, args in calls:
                            pool.submit(work, func, rot, *args)
        else:
            from .distributed import run_groups

            run_groups(client, tasks(), rows.update, bar)
    finally:
        bar.close()
    out = pd.DataFrame.from_dict(rows, orient="index").loc[list(P.columns)]
    out.index.name = "trait"
    out["n"] = out["n"].astype(int)
    out["at_boundary"] = out["at_boundary"].astype(bool)
    out["converged"] = out["converged"].astype(bool)
    _warn(out)
    out.attrs["dropped_samples"] = dropped
    out.attrs["reml"] = reml
    return out


class _Rotation(NamedTuple):
    """A missing-data pattern's eigendecomposition of the kinship and rotated covariates."""

    Kva: np.ndarray
    U: np.ndarray
    Xt: np.ndarray


def _rotation(
    K: np.ndarray, X: np.ndarray, names: list[Hashable], cov_names: list[str]
) -> _Rotation:
    n = K.shape[0]
    p = X.shape[1]
    if n <= p:
        raise PhenotypeError(
            f"phenotype(s) {format_values([str(v) for v in names])} have only n = {n} observed "
            f"samples for p = {p} covariates; need n > p"
        )
    check_design(X, cov_names)
    Kva, evecs, _ = eigh_decreasing(check_kinship(K))
    U = np.ascontiguousarray(evecs)
    return _Rotation(Kva, U, U.T @ X)


def _fit_batch(
    rot: _Rotation, Y: np.ndarray, names: list[Hashable], opts: dict[str, Any]
) -> dict[Hashable, dict[str, Any]]:
    """Fit a batch of traits sharing a pattern (a task: run single-threaded, see _tasks)."""
    reml, tol, level = opts["reml"], opts["tol"], opts["level"]
    n = Y.shape[0]
    model = RotatedModel(rot.Kva, (Y.T @ rot.U).T, rot.Xt)
    check_phenotypes(model.Yt.T, Y, [str(v) for v in names])
    fit = _fit_fast(model, reml, opts["check_boundary"], tol)
    items = np.arange(model.t)
    hsq = fit["hsq"]
    at_boundary = (hsq <= tol) | (hsq >= 1.0 - tol)
    d2 = hsq_second_derivative(model, hsq, items, reml)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.where(~at_boundary & (d2 < 0), np.sqrt(-1.0 / d2), np.nan)
    lower, upper = hsq_profile_ci(model, hsq, fit["loglik"], items, reml, level)
    stat, pval = hsq_lrt(model, fit["loglik"], items, reml)
    sig = fit["sigmasq"]
    rows = {}
    for j, name in enumerate(names):
        row: dict[str, Any] = {
            "n": n,
            "hsq": hsq[j],
            "hsq_se": se[j],
            "hsq_ci_lower": lower[j],
            "hsq_ci_upper": upper[j],
            "sigmasq": sig[j],
            "sigmasq_g": hsq[j] * sig[j],
            "sigmasq_e": (1.0 - hsq[j]) * sig[j],
            "loglik": fit["loglik"][j],
            "lrt_stat": stat[j],
            "lrt_pvalue": pval[j],
        }
        for k, c in enumerate(opts["cov_names"]):
            row[f"beta_{c}"] = fit["beta"][j, k]
        row["at_boundary"] = bool(at_boundary[j])
        row["converged"] = bool(fit["converged"][j])
        rows[name] = row
    return rows


def pattern_groups(observed: np.ndarray) -> list[np.ndarray]:
    """Columns of ``observed`` (samples x traits, True where observed) grouped by missing-data
    pattern, groups in order of their first trait."""
    keys = np.ascontiguousarray(np.packbits(observed, axis=0).T)
    first: dict[bytes, int] = {}
    group = np.fromiter(
        (first.setdefault(row.tobytes(), len(first)) for row in keys),
        dtype=np.int64,
        count=keys.shape[0],
    )
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    return np.split(order, bounds)


def _warn(out: pd.DataFrame) -> None:
    nb = int(out["at_boundary"].sum())
    if nb:
        warnings.warn(
            f"{nb} of {len(out)} phenotype(s) have hsq on the boundary of [0, 1]: "
            f"{format_values([str(v) for v in out.index[out['at_boundary']]])} "
            "(flagged in the at_boundary column)",
            BoundaryWarning,
            stacklevel=3,
        )
    nc = int((~out["converged"]).sum())
    if nc:
        warnings.warn(
            f"{nc} of {len(out)} phenotype(s) did not converge: "
            f"{format_values([str(v) for v in out.index[~out['converged']]])} "
            "(flagged in the converged column)",
            ConvergenceWarning,
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
    P = _numeric_frame(pheno, "phenotypes", PhenotypeError)
    names = list(P.columns) if traits is None else [str(t) for t in traits]
    unknown = [t for t in names if t not in P.columns]
    if unknown:
        raise PhenotypeError(
            f"unknown phenotype(s) {format_values(unknown)}; available: "
            f"{format_values(list(P.columns))}"
        )
    if isinstance(grid, (int, np.integer)):
        if grid < 2:
            raise InputError(f"grid must have at least 2 points; got {grid}")
        hs = np.linspace(0.0, 1.0, int(grid))
    else:
        hs = np.asarray(grid, dtype=float)
        if hs.ndim != 1 or hs.size == 0 or np.any((hs < 0) | (hs > 1)) or np.isnan(hs).any():
            raise InputError("grid values must be a non-empty vector within [0, 1]")
    K = _kinship_frame(kinship)
    C = None if covar is None else _numeric_frame(covar, "covariates", CovariateError)
    P = P[names]
    ids, _ = _align(K, P, C, samples)
    P = P.loc[ids]
    X_all = _design(C, ids, intercept)
    kpos = K.index.get_indexer(ids)
    Kfull = K.to_numpy()
    out = {}
    for name in names:
        mask = P[name].notna().to_numpy()
        n, p = int(mask.sum()), X_all.shape[1]
        if n <= p:
            raise PhenotypeError(
                f"phenotype {name!r} has n = {n} observed samples for "
                f"p = {p} covariates; need n > p"
            )
        Kva, U, _ = eigh_decreasing(check_kinship(Kfull[np.ix_(kpos[mask], kpos[mask])]))
        y = P[name].to_numpy()[mask]
        X = X_all.to_numpy()[mask]
        check_design(X, list(X_all.columns))
        model = RotatedModel(Kva, (U.T @ y)[:, None], U.T @ X)
        check_phenotypes(model.Yt.T, y[:, None], [name])
        out[name] = model.loglik(hs, np.zeros(hs.size, dtype=np.int64), reml)
    return pd.DataFrame(out, index=pd.Index(hs, name="hsq"))
