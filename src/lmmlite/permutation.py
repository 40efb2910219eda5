"""Genome-wide significance from permutations: :func:`permutation_test`, thresholds and
adjusted p-values.

A permutation table (:func:`lmmlite.permutation_test`, ``lmmlite perm``) has one row per trait
and permutation: ``trait``, ``perm``, ``max_lod`` (the largest LOD over the genome, or over the
region), ``min_p`` (one-column markers: the smallest p-value, that of the Wald test at the
largest LOD), and, when the X chromosome was permuted apart from the autosomes (R/qtl2's
``perm_Xsp``), ``region`` (``"A"`` or ``"X"``) and ``length``: the region's total length (the
sum over its chromosomes of the range of marker positions, R/qtl2's ``chr_lengths``).
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import special

from ._dataset import ScanDataset, frame_sha256
from ._progress import Progress
from .alignment import Alignment
from .distributed import executor_for
from .exceptions import InputError
from .io.genotypes import GenotypeSource
from .options import PermOptions, ScanOptions
from .planner import PermPlan
from .scan import prepare_scan, scan_manifest

__all__ = [
    "ALPHAS",
    "PERM_COLUMNS",
    "genome_pvalues",
    "perm_pvalue_threshold",
    "perm_thresholds",
    "permutation_test",
]

#: Columns of a permutation table (``region`` and ``length`` only with X-specific permutations).
PERM_COLUMNS = ("trait", "perm", "max_lod", "min_p", "region", "length")
#: Pseudo-phenotypes (samples x permutations x traits) held per trait batch by the rotated
#: method: its default trait batch keeps them within this many numbers (128 MiB).
PSEUDO_BUDGET = 1 << 24

#: R/qtl2's usual significance levels (``summary(operm, alpha=...)``).
ALPHAS = (0.01, 0.05, 0.1, 0.2, 0.63)


def _check_perm(perm: pd.DataFrame) -> None:
    need = {"trait", "perm", "max_lod"}
    missing = sorted(need - set(perm.columns))
    if missing:
        raise InputError(
            f"a permutation table needs the columns trait, perm and max_lod; missing {missing}"
        )
    if ("region" in perm.columns) != ("length" in perm.columns):
        raise InputError("a permutation table with regions needs both 'region' and 'length'")


def _check_alpha(alpha: Sequence[float]) -> list[float]:
    out = [float(a) for a in np.atleast_1d(np.asarray(alpha, dtype=float))]
    bad = [a for a in out if not 0.0 < a < 1.0]
    if bad or not out:
        raise InputError(f"alpha must lie in (0, 1); got {bad or list(alpha)}")
    return out


def _region_shares(perm: pd.DataFrame) -> dict[str, float]:
    """Each region's share of the genome's length (1 for a table without regions)."""
    if "region" not in perm.columns:
        return {}
    lengths = perm.groupby("region", sort=True)["length"].first()
    total = float(lengths.sum())
    if not np.isfinite(total) or total <= 0 or (lengths <= 0).any():
        raise InputError(f"region lengths must be positive; got {lengths.to_dict()}")
    return {str(r): float(v) / total for r, v in lengths.items()}


def region_level(alpha: float, share: float) -> float:
    """The level of a region with ``share`` = L_r / L of the genome's length for a genome-wide
    level ``alpha``: ``1 - (1 - alpha)^share`` (R/qtl2's ``perm_Xsp``). With ``1 / share``,
    the inverse: a region's p-value as a genome-wide one."""
    return 1.0 - (1.0 - alpha) ** share


def perm_thresholds(perm: pd.DataFrame, alpha: Sequence[float] = ALPHAS) -> pd.DataFrame:
    """LOD thresholds per trait (and region) at genome-wide levels ``alpha``.

    The threshold at level alpha is the ``1 - alpha`` quantile of the permutation maxima (R's
    ``quantile`` type 7, as R/qtl2's ``summary.scan1perm``). With separate autosome and X
    permutations, the level of a region with a share L_r/L of the genome's length is
    ``1 - (1 - alpha)^(L_r/L)`` (R/qtl2's ``perm_Xsp``), so that the genome-wide level is
    alpha.

    Returns
    -------
    pandas.DataFrame
        Columns ``trait``, ``region`` (with regions), ``n_perm``, then one column per alpha
        (named ``f"{alpha:g}"``).
    """
    _check_perm(perm)
    alphas = _check_alpha(alpha)
    shares = _region_shares(perm)
    keys = ["trait", "region"] if shares else ["trait"]
    rows = []
    for key, group in perm.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        values = group["max_lod"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        share = shares.get(str(key[-1]), 1.0) if shares else 1.0
        row: dict[str, object] = dict(zip(keys, key, strict=True))
        row["n_perm"] = values.size
        for a in alphas:
            level = region_level(a, share)
            row[f"{a:g}"] = np.quantile(values, 1.0 - level) if values.size else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=[*keys, "n_perm", *(f"{a:g}" for a in alphas)])


def perm_pvalue_threshold(
    perm: pd.DataFrame, trait: str, alpha: float = 0.05
) -> float | dict[str, float]:
    """A trait's genome-wide p-value threshold at level ``alpha`` (SNP mode): the alpha
    quantile (R's type 7) of its permutations' smallest p-values (``min_p``). With separate
    X permutations, one per region, each at the region's level ``1 - (1 - alpha)^(L_r/L)``
    as in :func:`perm_thresholds`."""
    (alpha,) = _check_alpha([alpha])
    _check_perm(perm)
    if "min_p" not in perm.columns:
        raise InputError("the permutation table has no min_p column (SNP-mode permutations)")
    sub = perm[perm["trait"].astype(str) == str(trait)]
    shares = _region_shares(sub) if len(sub) else {}
    out: dict[str, float] = {}
    for region, part in sub.groupby("region") if shares else [("", sub)]:
        values = part["min_p"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if not values.size:
            raise InputError(f"no permutation p-values for trait {trait!r} (min_p is NA)")
        level = region_level(alpha, shares.get(str(region), 1.0))
        out[str(region)] = float(np.quantile(values, level))
    return out if shares else out[""]


def genome_pvalues(
    perm: pd.DataFrame,
    trait: Sequence[str],
    lod: Sequence[float],
    region: Sequence[str] | None = None,
) -> np.ndarray:
    """Genome-wide p-values of LODs: for each (trait, lod[, region]),
    ``(1 + #{maxima >= lod}) / (1 + n_perm)`` over that trait's (region's) permutation maxima,
    the estimate that is never 0 (Phipson and Smyth 2010); in a region with a share L_r/L of
    the genome, ``1 - (1 - p_r)^(L/L_r)``, the inverse of :func:`perm_thresholds`' scaling.
    NaN for a trait without permutations."""
    _check_perm(perm)
    shares = _region_shares(perm)
    traits = np.asarray(trait, dtype=object)
    lods = np.asarray(lod, dtype=float)
    if shares and region is None:
        raise InputError("the permutation table has regions (A, X): give each LOD's region")
    keys = ["trait", "region"] if shares else ["trait"]
    sorted_max: dict[tuple, np.ndarray] = {}
    for group_key, group in perm.groupby(keys, sort=False):
        labels = group_key if isinstance(group_key, tuple) else (group_key,)
        values = group["max_lod"].to_numpy(dtype=float)
        sorted_max[tuple(str(k) for k in labels)] = np.sort(values[np.isfinite(values)])
    out = np.full(lods.shape, np.nan)
    regions = None if not shares else np.asarray(region, dtype=object)
    for i, (t, value) in enumerate(zip(traits, lods, strict=True)):
        key: tuple[str, ...] = (str(t),) if regions is None else (str(t), str(regions[i]))
        v = sorted_max.get(key)
        if v is None or v.size == 0 or not np.isfinite(value):
            continue
        above = v.size - np.searchsorted(v, value, side="left")
        p = (1.0 + above) / (1.0 + v.size)
        if regions is not None:
            p = region_level(p, 1.0 / shares[str(key[1])])
        out[i] = p
    return out


def permutation_test(
    genotypes: GenotypeSource,
    pheno: pd.DataFrame | pd.Series,
    covar: pd.DataFrame | None = None,
    *,
    kinship: pd.DataFrame | dict[str, pd.DataFrame] | bool | None = None,
    loco: bool = False,
    kinship_scale: float = 1.0,
    xcovar: pd.DataFrame | None = None,
    intcovar: Sequence[str] = (),
    n_perm: int = 1000,
    seed: int | None = None,
    method: Literal["rotated", "genotypes"] = "rotated",
    strata: pd.Series | None = None,
    x_specific: bool | None = None,
    n_perm_x: int | None = None,
    chr_lengths: dict[str, float] | None = None,
    reml: bool = True,
    samples: Literal["strict", "drop"] = "strict",
    intercept: bool | None = None,
    center_kinship: bool = False,
    chunk_size: int = ScanOptions.chunk_size,
    trait_batch: int | None = None,
    out: str | None = None,
    resume: bool = False,
    client: Any = None,
    threads: int | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Permutation test of a fixed-hsq genome scan: per trait and permutation, the largest LOD
    over the genome, for genome-wide thresholds (:func:`perm_thresholds`) and adjusted
    p-values (:func:`genome_pvalues`).

    Each trait's heritability is held at its null estimate (per chromosome with LOCO), as in
    ``scan(mode="fixed")``, and the LODs are that scan's (R/qtl2's on the X chromosome with
    ``xcovar``). Inputs and their checks are :func:`lmmlite.scan`'s.

    Parameters
    ----------
    genotypes, pheno, covar, kinship, loco, kinship_scale, xcovar, intcovar
        As :func:`lmmlite.scan`.
    n_perm
        Permutations per trait (of the autosomes when the X chromosome is permuted apart).
    seed
        Seed of the permutations: with the same seed and analysed samples, the same
        permutations, whatever the other traits, the thread count or the cluster. None: a
        random seed, recorded in ``result.attrs["seed"]``.
    method
        ``"rotated"`` (default): each trait's whitened null residuals are permuted (within
        strata) and scanned as pseudo-phenotypes, every permutation of a trait in one matrix
        product per chunk of markers. ``"genotypes"``: the rows of the genotypes are permuted
        against phenotypes, covariates and kinship (R/qtl2's ``scan1perm``); slower (a
        rotation of the genotypes per permutation).
    strata
        A label per sample id (a Series): samples are permuted within their stratum (R/qtl2's
        ``perm_strata``). With ``xcovar`` and no strata, the strata are the distinct rows of
        Xcovar, as R/qtl2 does.
    x_specific
        Permute the X chromosome apart from the autosomes (R/qtl2's ``perm_Xsp``): the table
        gains ``region`` and ``length``, and the thresholds of each region are scaled by its
        share of the genome's length. Default: when the genotypes have both.
    n_perm_x
        Permutations of the X chromosome (default: R/qtl2's ``ceiling(n_perm * L_A / L_X)``).
    chr_lengths
        Chromosome lengths for ``x_specific`` (default: each chromosome's range of marker
        positions, R/qtl2's ``chr_lengths``).
    reml, samples, intercept, center_kinship, chunk_size, client, threads, progress
        As :func:`lmmlite.scan`.
    trait_batch
        Traits per task (default: as many as keep the rotated method's pseudo-phenotypes
        within 128 MiB per batch, at most 1024).
    out, resume
        A Parquet dataset folder (``NAME.parquet``) holding each finished task, so that an
        interrupted run can be resumed (``resume=True``, same inputs, options and seed); the
        table is published in it when complete.

    Returns
    -------
    pandas.DataFrame
        One row per (trait, [region,] permutation): ``trait``, ``perm``, ``max_lod`` (NaN where
        no marker could be tested), ``min_p`` (one-column markers without interactive
        covariates: the Wald test's p at the largest LOD, which is the smallest p; else NaN),
        and with ``x_specific`` ``region`` and ``length``. ``attrs`` hold the seed, method and
        numbers of permutations.
    """
    if seed is None:
        seed = _resumed_seed(out) if resume else None
        seed = secrets.randbits(63) if seed is None else seed
    opts = ScanOptions(
        mode="fixed", reml=reml, keep="max", chunk_size=chunk_size,
        trait_batch=trait_batch or 1024, samples=samples, intercept=intercept,
        center_kinship=center_kinship, kinship_scale=kinship_scale, intcovar=tuple(intcovar),
    )  # fmt: skip
    PermOptions(n_perm=n_perm, seed=seed, method=method)  # checks these before any work
    if resume and out is None:
        raise InputError("resume needs an output folder (out=...)")
    executor = executor_for(client, threads)
    inputs = {"pheno": pheno, "covar": covar, "xcovar": xcovar, "kinship": kinship}
    P, aligned, kin, Xc = prepare_scan(genotypes, inputs, loco, opts)
    lengths = _x_lengths(genotypes, x_specific, chr_lengths)
    n_x = 0
    if lengths is not None:
        n_x = n_perm_x or math.ceil(n_perm * lengths["A"] / lengths["X"])
    codes = _strata(strata, Xc, aligned)
    popts = PermOptions(
        n_perm=n_perm, seed=seed, method=method, x_specific=lengths is not None, n_perm_x=n_x,
        stratified=codes is not None,
    )  # fmt: skip
    if trait_batch is None:
        most = max(n_perm, n_x) * len(aligned.ids)
        opts = replace(opts, trait_batch=max(1, min(1024, PSEUDO_BUDGET // most)))
    plan = PermPlan(genotypes, aligned, kin, opts, popts, Xc, codes)
    dataset = None
    if out is not None:
        record = scan_manifest(genotypes, inputs, P, kin, aligned, opts)
        record["options"].update(asdict(popts))
        record["inputs"]["strata"] = frame_sha256(strata)
        dataset = ScanDataset(out, {**record, "tasks": len(plan.tasks)}, resume=resume)
    done = set() if dataset is None else dataset.done()
    todo = [task for task in plan.tasks if task.name not in done]
    regions = {"A": n_perm, "X": n_x} if lengths is not None else {"": n_perm}
    collect = _Maxima(len(aligned.traits), regions)
    if dataset is not None:
        for frame in dataset.task_frames():
            collect.add(frame)
    bar = Progress(
        len(plan.tasks), done=len(plan.tasks) - len(todo), report=progress,
        unit_work="marker scans", desc="permutations",
    )  # fmt: skip
    try:
        stages = plan.stages(
            todo, read_here=executor.shares_memory,
            task_path=None if dataset is None else dataset.task_path,
        )  # fmt: skip
        executor.run(stages, collect.add, bar)
    finally:
        bar.close()
    if dataset is not None:
        dataset.check_complete([task.name for task in plan.tasks])
    table = _perm_table(collect, aligned, lengths, genotypes, opts, Xc is not None)
    if dataset is not None:
        dataset.publish_table(table, "perm")
    table.attrs.update(seed=seed, method=method, n_perm=n_perm, n_perm_x=n_x)
    table.attrs["dropped_samples"] = aligned.dropped
    return table


def _resumed_seed(out: str | None) -> int | None:
    """The seed recorded in an output folder's manifest (a resumed run without a seed)."""
    if out is None:
        return None
    try:
        record = json.loads((Path(out) / "_manifest.json").read_text())
        return int(record["options"]["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _x_lengths(
    genotypes: GenotypeSource, x_specific: bool | None, chr_lengths: dict[str, float] | None
) -> dict[str, float] | None:
    """The total lengths of the autosomes ("A") and X ("X") when they are permuted apart."""
    chroms = [str(c) for c in dict.fromkeys(genotypes.markers["chr"].astype(str))]
    xs = [c for c in chroms if c in genotypes.x_chromosomes]
    both = bool(xs) and len(xs) < len(chroms)
    if x_specific is None:
        x_specific = both
    if not x_specific:
        return None
    if not both:
        raise InputError(
            "x_specific permutations need both autosomes and an X chromosome in the genotypes; "
            f"they have {'only X' if xs else 'no X chromosome'}"
        )
    if chr_lengths is None:
        pos = genotypes.markers["pos"].to_numpy(dtype=float)
        chrom = genotypes.markers["chr"].astype(str).to_numpy()
        chr_lengths = {c: float(np.ptp(pos[chrom == c])) for c in chroms}
    else:
        chr_lengths = {str(c): float(v) for c, v in chr_lengths.items()}
        missing = [c for c in chroms if c not in chr_lengths]
        if missing:
            raise InputError(f"chr_lengths lacks chromosomes {missing}")
    out = {
        "A": sum(chr_lengths[c] for c in chroms if c not in xs),
        "X": sum(chr_lengths[c] for c in xs),
    }
    if not (out["A"] > 0 and out["X"] > 0 and all(map(math.isfinite, out.values()))):
        raise InputError(
            f"x_specific permutations need positive lengths of the autosomes and the X "
            f"chromosome (the range of their marker positions, or chr_lengths); got {out}"
        )
    return out


def _strata(
    strata: pd.Series | None, Xc: pd.DataFrame | None, aligned: Alignment
) -> np.ndarray | None:
    """A stratum code per aligned sample: the given labels, or the distinct rows of Xcovar."""
    if strata is None:
        if Xc is None:
            return None
        return np.unique(Xc.to_numpy(dtype=float), axis=0, return_inverse=True)[1].reshape(-1)
    if isinstance(strata, pd.DataFrame):
        if strata.shape[1] != 1:
            raise InputError(f"strata must be one column of labels; got {strata.shape[1]}")
        strata = strata.iloc[:, 0]
    if not isinstance(strata, pd.Series):
        raise InputError("strata must be a pandas Series of labels indexed by sample id")
    strata = strata.copy()
    strata.index = strata.index.astype(str)
    missing = [i for i in aligned.ids if i not in strata.index or pd.isna(strata.get(i))]
    if missing:
        raise InputError(
            f"strata lack {len(missing)} analysed sample(s): {', '.join(missing[:10])}"
            f"{' ...' if len(missing) > 10 else ''}"
        )
    if strata.index.duplicated().any():
        dup = strata.index[strata.index.duplicated()].unique()[:10]
        raise InputError(f"strata have duplicated sample ids: {', '.join(map(str, dup))}")
    labels = strata.loc[aligned.ids].astype(str).to_numpy()
    return np.unique(labels, return_inverse=True)[1].reshape(-1)


class _Maxima:
    """Running maxima per (trait, permutation) of each region, filled by the tasks' frames."""

    def __init__(self, n_traits: int, regions: dict[str, int]) -> None:
        self.values = {r: np.full((n_traits, n), -np.inf) for r, n in regions.items()}

    def add(self, frame: pd.DataFrame) -> None:
        for region, part in frame.groupby("region", sort=False):
            arr = self.values[str(region)]
            t = part["_t"].to_numpy(dtype=np.int64)
            k = part["perm"].to_numpy(dtype=np.int64)
            arr[t, k] = np.maximum(arr[t, k], part["max_lod"].to_numpy(dtype=float))


def _perm_table(
    maxima: _Maxima,
    aligned: Alignment,
    lengths: dict[str, float] | None,
    genotypes: GenotypeSource,
    opts: ScanOptions,
    has_xcovar: bool,
) -> pd.DataFrame:
    """The long table: one row per (trait, [region,] permutation)."""
    n_of = np.zeros(len(aligned.traits))
    p_of = np.zeros(len(aligned.traits))
    for pat in aligned.patterns:
        n_of[pat.columns] = len(pat.ids)
        p_of[pat.columns] = pat.X.shape[1]
    snp = genotypes.k == 1 and not opts.intcovar
    parts = []
    for region, arr in maxima.values.items():
        T, n = arr.shape
        lod = np.where(np.isfinite(arr), arr, np.nan)
        frame = {
            "trait": np.repeat(np.asarray(aligned.traits, dtype=object), n),
            "perm": np.tile(np.arange(n), T),
            "max_lod": lod.reshape(-1),
            "min_p": np.full(T * n, np.nan),
        }
        if snp and not (region == "X" and has_xcovar):
            nn = np.repeat(n_of, n)
            nu = nn - np.repeat(p_of, n) - 1
            with np.errstate(invalid="ignore", over="ignore"):
                F = nu * np.expm1(2.0 * np.log(10.0) * frame["max_lod"] / nn)
                frame["min_p"] = special.fdtrc(1.0, nu, np.maximum(F, 0.0))
        if lengths is not None:
            frame["region"] = np.full(T * n, region, dtype=object)
            frame["length"] = np.full(T * n, lengths[region])
        parts.append(pd.DataFrame(frame))
    table = pd.concat(parts, ignore_index=True)
    if lengths is not None:  # trait by trait: its autosome rows, then its X rows
        order = {t: i for i, t in enumerate(aligned.traits)}
        key = table["trait"].map(order).to_numpy() * 2 + (table["region"] == "X").to_numpy()
        table = table.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
    return table
