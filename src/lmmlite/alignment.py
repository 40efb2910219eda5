"""Sample alignment, shared by heritability and scans: tables checked and indexed by sample id,
ids matched across inputs (never by position), the design matrix, and the phenotypes grouped by
missing-data pattern.

Every id problem (missing, duplicated) is an error listing the ids, unless the caller asked to
analyse the samples present everywhere; then the dropped ids are named in a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .core.checks import (
    MAX_ABS,
    SYMMETRY_RTOL,
    asymmetric_pair,
    check_design,
    check_kinship_scale,
    check_phenotypes,
    duplicated,
    format_values,
    max_abs,
    max_asymmetry,
    nonfinite,
)
from .exceptions import (
    CovariateError,
    DataWarning,
    InputError,
    KinshipError,
    PhenotypeError,
    SampleMismatchError,
    SamplesDroppedWarning,
)

__all__ = [
    "Alignment",
    "Pattern",
    "align",
    "design_matrix",
    "kinship_frame",
    "match_samples",
    "numeric_frame",
    "pattern_groups",
    "sample_ids",
]


def sample_ids(index: Sequence[Any] | pd.Index, what: str) -> pd.Index:
    """Sample ids as stripped strings; duplicated ids are an error naming them."""
    ids = pd.Index([str(v).strip() for v in index], dtype=object)
    blank = [i for i, v in enumerate(index) if v is None or v != v or str(v).strip() == ""]
    if blank:
        raise SampleMismatchError(
            f"{what} has {len(blank)} sample(s) without an id (empty or NaN), e.g. at row "
            f"{blank[0] + 1}"
        )
    dup = ids[ids.duplicated()].unique()
    if len(dup):
        raise SampleMismatchError(f"{what} has duplicated sample ids: {format_values(list(dup))}")
    return ids


def labels(index: pd.Index) -> list[str]:
    """An index's labels as strings (by way of a NumPy array: iterating a pandas index of
    Arrow strings is a Python call per label)."""
    return [str(v) for v in index.to_numpy(dtype=object)]


def numeric_frame(df: Any, what: str, error: type[InputError] = InputError) -> pd.DataFrame:
    """A DataFrame (or Series) of numbers indexed by sample id, as float64 with string ids.

    Raises ``error`` for another type, an empty table or a non-numeric column (naming an
    offending value and its sample).
    """
    if isinstance(df, pd.Series):
        df = df.to_frame()
    if not isinstance(df, pd.DataFrame):
        raise InputError(
            f"{what} must be a pandas DataFrame indexed by sample id; got {type(df).__name__}"
        )
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise error(f"{what} is empty (shape {df.shape})")
    dtypes = df.dtypes
    kinds = {dt: pd.api.types.is_numeric_dtype(dt) for dt in dtypes.unique()}  # few dtypes
    bad = []
    if not all(kinds.values()):
        bad = [c for c, dt in zip(df.columns, dtypes, strict=True) if not kinds[dt]]
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
    names = labels(df.columns)
    dup = duplicated(names)
    if dup:
        raise error(f"{what} has duplicated column names: {format_values(dup)}")
    # no copy of a float table: pandas' copy-on-write keeps the caller's frame and this apart
    values = df.to_numpy(dtype=float)
    return pd.DataFrame(values, index=sample_ids(df.index, what), columns=names, copy=False)


def kinship_frame(kinship: Any) -> pd.DataFrame:
    """A kinship DataFrame checked: square, the same ids on both axes (put in the same order),
    finite and symmetric (to :data:`~lmmlite.core.checks.SYMMETRY_RTOL`)."""
    if not isinstance(kinship, pd.DataFrame):
        raise InputError(
            "kinship must be a pandas DataFrame with sample ids as index and "
            f"columns; got {type(kinship).__name__}"
        )
    K = numeric_frame(kinship, "kinship", KinshipError)
    if K.shape[0] != K.shape[1]:
        raise KinshipError(
            f"kinship must be square; got {K.shape[0]} rows and {K.shape[1]} columns"
        )
    cols = sample_ids(pd.Index(K.columns), "kinship columns")
    if set(cols) != set(K.index):
        col_set, row_set = set(cols), set(K.index)
        only_rows = [i for i in K.index if i not in col_set]
        only_cols = [c for c in cols if c not in row_set]
        raise SampleMismatchError(
            "kinship row and column ids differ: rows only "
            f"{format_values(only_rows)}; columns only {format_values(only_cols)}"
        )
    K.columns = cols
    if not K.columns.equals(K.index):
        K = K.loc[:, K.index]
    vals = K.to_numpy()
    bad = nonfinite(vals)
    if bad.size:
        pairs = [f"({K.index[i]}, {K.columns[j]})" for i, j in bad[:5]]
        raise KinshipError(
            f"kinship has {len(bad)} NaN or infinite value(s), e.g. at {format_values(pairs, 5)}"
        )
    top = max_abs(vals)
    check_kinship_scale(vals, top)
    if max_asymmetry(vals) > SYMMETRY_RTOL * max(top, np.finfo(float).tiny):
        i, j = asymmetric_pair(vals)
        raise KinshipError(
            f"kinship is not symmetric: K[{K.index[i]}, {K.columns[j]}] = {vals[i, j]:.6g} but "
            f"K[{K.index[j]}, {K.columns[i]}] = {vals[j, i]:.6g}"
        )
    return K


def match_samples(
    ids: pd.Index, available: Mapping[str, set[str]], samples: str, *, option: str
) -> tuple[pd.Index, list[str]]:
    """The ``ids`` present in every input of ``available`` (input name -> its ids), in order.

    With ``samples="strict"`` a missing id is an error naming it and the input; otherwise
    (``"intersection"``, ``"drop"``) the missing ids are left out with a
    :class:`~lmmlite.SamplesDroppedWarning` naming them. ``option`` names the way to ask for
    that in the error message. Returns the kept ids and the dropped ones.
    """
    missing = {what: [i for i in ids if i not in have] for what, have in available.items()}
    dropped = sorted({i for v in missing.values() for i in v})
    if dropped and samples == "strict":
        parts = [f"{len(v)} not in the {k} ({format_values(v)})" for k, v in missing.items() if v]
        raise SampleMismatchError(
            "every phenotyped sample must appear in the "
            f"{' and '.join(available)}: {'; '.join(parts)}. Pass {option} to analyse only "
            "the samples present in every input"
        )
    if dropped:
        parts = [f"{len(v)} not in the {k}" for k, v in missing.items() if v]
        warnings.warn(
            f"{len(dropped)} phenotyped sample(s) left out ({'; '.join(parts)}): "
            f"{format_values(dropped)}",
            SamplesDroppedWarning,
            stacklevel=3,
        )
    gone = set(dropped)
    kept = pd.Index([i for i in ids if i not in gone], dtype=object)
    if len(kept) == 0:
        shown = "; ".join(
            f"{what}: {format_values(sorted(have)[:3], 3)}" for what, have in available.items()
        )
        raise SampleMismatchError(
            "no phenotyped sample is in every input: their ids do not overlap (phenotypes: "
            f"{format_values(list(ids)[:3], 3)}; {shown})"
        )
    return kept, dropped


def design_matrix(C: pd.DataFrame | None, ids: pd.Index, intercept: bool | None) -> pd.DataFrame:
    """The covariates of ``ids`` (no missing values allowed), with an intercept column first
    unless a covariate is constant (``intercept=None``) or as ``intercept`` says."""
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


def pattern_groups(observed: np.ndarray) -> list[np.ndarray]:
    """Columns of ``observed`` (samples x traits, True where observed) grouped by missing-data
    pattern, groups in order of their first trait."""
    keys = np.ascontiguousarray(np.packbits(observed, axis=0).T)
    rows = keys.view(np.dtype((np.void, keys.shape[1]))).reshape(-1)
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    rank = np.empty(first.shape[0], dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.shape[0])
    group = rank[inverse.reshape(-1)]  # patterns numbered in order of their first trait
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    return np.split(order, bounds)


@dataclass(frozen=True)
class Pattern:
    """Traits sharing a missing-data pattern: the samples they are analysed on, their values
    and the design matrix over those samples."""

    ids: list[str]
    """The analysed samples' ids."""
    mask: np.ndarray
    """Which of the aligned samples these are (boolean, over :attr:`Alignment.ids`)."""
    traits: list[str]
    """The traits' names."""
    columns: np.ndarray
    """The traits' positions among all phenotypes."""
    Y: np.ndarray
    """Phenotypes (n, t)."""
    X: np.ndarray
    """Covariates (n, p), full column rank."""


@dataclass(frozen=True)
class Alignment:
    """Phenotypes and covariates aligned by sample id and grouped by missing-data pattern."""

    ids: pd.Index
    """The analysed samples (observed for at least one trait), in phenotype-table order."""
    dropped: list[str]
    """Phenotyped samples left out because an input lacks them."""
    traits: list[str]
    """All traits, in table order."""
    covariates: list[str]
    """The design matrix's columns (``intercept`` first when added)."""
    patterns: list[Pattern]
    """The missing-data patterns, in order of their first trait."""


def align(
    pheno: pd.DataFrame,
    covar: pd.DataFrame | None,
    available: Mapping[str, set[str]],
    *,
    samples: str,
    option: str,
    intercept: bool | None,
    extra_columns: int = 0,
) -> Alignment:
    """Match the phenotyped samples to the other inputs, build the design matrix and group
    the traits by missing-data pattern, checking each pattern's design (rank, enough samples
    for the covariates, ``extra_columns`` more per test, and the heritability) and that no
    trait is constant.

    ``pheno`` and ``covar`` come from :func:`numeric_frame`; ``available`` maps each other
    input to its sample ids (see :func:`match_samples`).
    """
    vals = pheno.to_numpy(dtype=float)  # column checks on the whole array at once
    columns = labels(pheno.columns)
    infinite = [columns[j] for j in np.flatnonzero(np.isinf(vals).any(axis=0))]
    if infinite:
        raise PhenotypeError(
            f"phenotypes have infinite values in column(s) {format_values(infinite)}"
        )
    with np.errstate(invalid="ignore"):
        big = np.any(np.abs(vals) > MAX_ABS, axis=0)
    huge = [columns[j] for j in np.flatnonzero(big)]
    if huge:
        raise PhenotypeError(
            f"phenotype(s) {format_values(huge)} have values beyond {MAX_ABS:g} in size, too "
            "large for sums of squares in double precision: rescale them"
        )
    empty = [columns[j] for j in np.flatnonzero(np.isnan(vals).all(axis=0))]
    if empty:
        raise PhenotypeError(f"phenotype(s) with no observed values: {format_values(empty)}")
    _warn_missing_codes(pheno)
    have = dict(available)
    if covar is not None:
        have["covariates"] = set(covar.index)
    P = pheno[pheno.notna().any(axis=1)]  # samples with no observed phenotype: not analysed
    ids, dropped = match_samples(P.index, have, samples, option=option)
    P = P.loc[ids]
    X_all = design_matrix(covar, ids, intercept)
    covariates = [str(c) for c in X_all.columns]
    observed = P.notna().to_numpy()
    values = P.to_numpy()
    Xv = X_all.to_numpy()
    names = np.array(labels(P.columns), dtype=object)
    patterns = []
    for cols in pattern_groups(observed):
        mask = observed[:, cols[0]]
        traits = [str(v) for v in names[cols]]
        n, p = int(mask.sum()), Xv.shape[1]
        _check_enough_samples(traits, n, p, extra_columns)
        X = Xv[mask]
        check_design(X, covariates)
        every = cols.shape[0] == values.shape[1] and bool(np.all(np.diff(cols) == 1))
        Y = values[mask] if every else values[np.ix_(mask, cols)]  # (one pattern: no gather)
        Qx = np.linalg.qr(X)[0]  # X has full column rank (check_design)
        check_phenotypes(Y - Qx @ (Qx.T @ Y), Y, traits)
        patterns.append(Pattern([str(i) for i in ids[mask]], mask, traits, cols, Y, X))
    return Alignment(ids, dropped, list(names), covariates, patterns)


#: Values that programs write for a missing phenotype (PLINK: -9).
_MISSING_CODES = (-9.0,)


def _warn_missing_codes(pheno: pd.DataFrame) -> None:
    """A value such as -9 repeated in a phenotype is likely a missing-value code that was
    read as a number: say so (a warning; the value is analysed as given)."""
    for code in _MISSING_CODES:
        counts = (pheno == code).sum()
        hit = counts[counts >= 2]
        if len(hit):
            shown = format_values([f"{c} ({int(n)} samples)" for c, n in hit.items()])
            warnings.warn(
                f"phenotype(s) with the value {code:g} in several samples: {shown}; if it marks "
                f"missing values, declare it (--missing-code {code:g}, or "
                f"read_table(..., missing=['{code:g}'])); analysed as a value",
                DataWarning,
                stacklevel=3,
            )


def _check_enough_samples(traits: list[str], n: int, p: int, extra: int) -> None:
    """The heritability needs two residual degrees of freedom beyond the covariates (with
    one, hsq and the residual variance cannot be told apart), and a test ``extra`` more."""
    need = p + extra + 2
    if n < need:
        more = f", {extra} marker column(s)" if extra else ""
        raise PhenotypeError(
            f"phenotype(s) {format_values(traits)} have n = {n} observed samples; need at "
            f"least {need} ({p} covariate(s){more} and 2 more to separate the heritability "
            "from the residual variance)"
        )
