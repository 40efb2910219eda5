r"""Kinship matrices from genotypes, in one pass over the markers (LOCO included).

Methods:

``centered`` (GEMMA ``-gk 1``)
    :math:`K = \frac1m \sum_j z_j z_j^\top`, :math:`z_j = x_j - \bar x_j`, with missing
    genotypes set to the marker mean.
``standardized`` (GEMMA ``-gk 2``)
    As ``centered`` with :math:`z_j / \sqrt{v_j}`, :math:`v_j` the variance (divisor n) of the
    mean-imputed genotypes.
``probs`` (R/qtl2's ``calc_kinship``)
    :math:`K = \frac1m \sum_j P_j P_j^\top` over all m positions (the X chromosome
    included), :math:`P_j` (n x a) the allele probabilities at position j: for cross types
    with alleles (F2, DO, HS, ...) each genotype gives half to each of its two alleles and a
    hemizygous male (``AY``) all to its one; for the others (backcross, RIL) the genotype
    probabilities themselves, as R/qtl2 does. Positions are not weighted by map distance.

As GEMMA, markers are chosen by minor allele frequency and missingness computed on a subset of
samples (``filter_samples``, e.g. those with a phenotype) while means and variances use all
samples. LOCO kinships (one per chromosome, leaving it out) come from per-chromosome sums
accumulated in the same pass: :math:`K_{-c} = (\sum_{c'} S_{c'} - S_c)/(m - m_c)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .core.checks import format_values
from .exceptions import InputError
from .io.genotypes import GenotypeSource, chromosome_runs
from .options import CHUNK_SIZE

__all__ = ["KINSHIP_METHODS", "kinship"]

KINSHIP_METHODS = ("centered", "standardized", "probs")


def _standardise(G: np.ndarray, method: str) -> np.ndarray:
    """(n, m) dosages with NaN -> centred (and scaled) columns, missing set to the mean."""
    miss = np.isnan(G)
    mean = np.nanmean(np.where(miss.all(axis=0), 0.0, G), axis=0) if G.size else G[0]
    Z = np.where(miss, 0.0, G - mean)
    if method == "standardized":
        var = np.mean(Z * Z, axis=0)
        scale = np.where(var > 0, 1.0 / np.sqrt(np.where(var > 0, var, 1.0)), 1.0)
        Z = Z * scale
    return Z


def _keep(
    G: np.ndarray,
    rows: np.ndarray | None,
    maf: float,
    max_missing: float,
    W: np.ndarray | None = None,
    max_r2: float = 0.9999,
) -> np.ndarray:
    """GEMMA's marker filter on the ``rows`` samples: MAF, missingness, polymorphism and, when
    covariates ``W`` (more than one column) are given, the uncentred R^2 of the marker on them
    (missing genotypes set to the mean) at most ``max_r2``."""
    S = G if rows is None else G[rows]
    missing = np.isnan(S)
    miss_rate = np.mean(missing, axis=0)
    seen = ~missing.all(axis=0)  # an all-missing marker: no mean (and never kept)
    Sz = np.where(missing & ~seen, 0.0, S)
    af = np.nanmean(Sz, axis=0) / 2.0
    minor = np.minimum(af, 1.0 - af)
    ok = seen & (miss_rate <= max_missing) & (minor >= maf)
    # monomorphic markers carry no information whatever the threshold
    ok &= np.nanmax(Sz, axis=0) > np.nanmin(Sz, axis=0)
    if W is not None and W.shape[1] > 1:
        Si = np.where(np.isnan(S), 2.0 * af, S)
        coef = np.linalg.lstsq(W, Si, rcond=None)[0]
        fitted = W @ coef
        with np.errstate(invalid="ignore", divide="ignore"):
            r2 = np.sum(fitted * Si, axis=0) / np.sum(Si * Si, axis=0)
        ok &= ~(r2 > max_r2)
    return ok


def kinship(
    source: GenotypeSource,
    *,
    method: str = "centered",
    loco: bool = False,
    maf: float = 0.01,
    max_missing: float = 0.05,
    filter_samples: Sequence[str] | None = None,
    filter_covariates: np.ndarray | None = None,
    max_r2: float = 0.9999,
    chunk_size: int = CHUNK_SIZE,
) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """Kinship matrix (or LOCO kinships) from a genotype source, in one pass.

    Parameters
    ----------
    source
        A genotype source from :mod:`lmmlite.io.genotypes`.
    method
        ``"centered"``, ``"standardized"`` or ``"probs"`` (k-column probabilities).
    loco
        Return ``{chromosome: kinship without that chromosome}`` instead of one matrix.
    maf, max_missing
        Markers with minor allele frequency below ``maf`` (in [0, 0.5]) or a missing fraction
        above ``max_missing`` (in [0, 1]), both computed on ``filter_samples``, are not used
        (GEMMA's defaults). Ignored for ``probs``.
    filter_samples
        Sample ids on which the filters are computed (default: all).
    filter_covariates, max_r2
        Covariates of the ``filter_samples`` (rows in that order): markers whose uncentred
        R^2 on them exceeds ``max_r2`` are not used (GEMMA's ``-r2``; only with more than one
        covariate column, as GEMMA).
    chunk_size
        Markers per chunk (memory: n x chunk_size doubles).

    Returns
    -------
    pandas.DataFrame or dict of pandas.DataFrame
        Sample ids on both axes, in the genotype file's order.
    """
    _check_options(source, method, maf, max_missing, max_r2)
    rows = _filter_rows(source, filter_samples)
    W = None if filter_covariates is None else np.asarray(filter_covariates, dtype=float)
    n_filter = len(source.samples) if rows is None else len(rows)
    if W is not None and W.shape[0] != n_filter:
        raise InputError(f"filter_covariates has {W.shape[0]} rows for {n_filter} filter samples")
    sums, counts = _chromosome_sums(source, method, rows, maf, max_missing, W, max_r2, chunk_size)
    m = sum(counts.values())
    if m == 0:
        raise InputError(
            f"no marker passed the filters (minor allele frequency >= {maf:g}, missing "
            f"fraction <= {max_missing:g}, polymorphic) among {source.n_markers}; cannot "
            "compute a kinship"
        )
    ids = pd.Index(source.samples, name="id")
    total = sum(sums.values())
    assert isinstance(total, np.ndarray)
    if not loco:
        return pd.DataFrame(total / m, index=ids, columns=ids)
    out = {}
    for c in sums:
        rest = m - counts[c]
        if rest == 0:
            raise InputError(f"LOCO kinship for chromosome {c}: no markers on other chromosomes")
        out[c] = pd.DataFrame((total - sums[c]) / rest, index=ids, columns=ids)
    return out


def _check_options(
    source: GenotypeSource, method: str, maf: float, max_missing: float, max_r2: float
) -> None:
    if method not in KINSHIP_METHODS:
        raise InputError(f"method must be one of {KINSHIP_METHODS}; got {method!r}")
    if method == "probs" and source.k < 2:
        raise InputError("method 'probs' needs genotype/allele probabilities (k > 1 columns)")
    if method != "probs" and source.k != 1:
        raise InputError(
            f"method {method!r} needs dosages; these genotypes have k = "
            f"{source.k} columns per locus (use method='probs')"
        )
    for name, value, hi in (("maf", maf, 0.5), ("max_missing", max_missing, 1.0)):
        if not (isinstance(value, (int, float, np.floating)) and 0.0 <= value <= hi):
            raise InputError(f"{name} must lie in [0, {hi:g}]; got {value!r}")
    if not (isinstance(max_r2, (int, float, np.floating)) and 0.0 < max_r2 <= 1.0):
        raise InputError(f"max_r2 must lie in (0, 1]; got {max_r2!r}")


def _filter_rows(source: GenotypeSource, filter_samples: Sequence[str] | None) -> np.ndarray | None:
    if filter_samples is None:
        return None
    pos = pd.Index(source.samples).get_indexer(list(filter_samples))
    if (pos < 0).any():
        bad = [s for s, q in zip(filter_samples, pos, strict=True) if q < 0]
        raise InputError(f"filter samples not in the genotypes: {format_values(bad)}")
    return pos


def _chromosome_sums(
    source: GenotypeSource,
    method: str,
    rows: np.ndarray | None,
    maf: float,
    max_missing: float,
    W: np.ndarray | None,
    max_r2: float,
    chunk_size: int,
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Per chromosome, the sum of Z Z' over its markers and the number of markers used."""
    n = len(source.samples)
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    chrom = source.markers["chr"].to_numpy()
    if method == "probs":  # allele probabilities where R/qtl2 uses them (see ProbsSource)
        runs = chromosome_runs(chrom, chunk_size)
        blocks: Any = ((a, source.allele_block(a, z)) for a, z in runs)
    else:
        blocks = source.chunks(chunk_size)
    for start, block in blocks:
        c = str(chrom[start])
        if method == "probs":
            Z = _probs_columns(block)
            used = block.shape[2]
        else:
            G = block[:, 0, :]
            keep = _keep(G, rows, maf, max_missing, W, max_r2)
            Z = _standardise(G[:, keep], method)
            used = int(keep.sum())
        if c not in sums:
            sums[c] = np.zeros((n, n))
            counts[c] = 0
        sums[c] += Z @ Z.T
        counts[c] += used
    return sums, counts


def _probs_columns(block: np.ndarray) -> np.ndarray:
    """(n, k, m) probabilities as (n, k m) columns, a sample's missing locus (NaN) set to the
    locus's mean probabilities over the samples that have it."""
    miss = np.isnan(block)
    if miss.any():
        seen = ~miss.all(axis=0)
        mean = np.nanmean(np.where(seen, block, 0.0), axis=0)
        block = np.where(miss, mean[None], block)
    return block.reshape(block.shape[0], -1)
