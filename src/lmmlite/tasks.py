"""The task functions of heritability runs and genome scans, and the data they take.

Each task is a module-level function of plain data (picklable, for Dask), run single-threaded
by an executor (:mod:`lmmlite.executors`) as planned by :mod:`lmmlite.planner`; it computes
the same numbers wherever it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ._dataset import write_task
from .core.lmm import fit_rotated, inference_rotated
from .core.model import RotatedModel
from .core.permutation import PermNull, max_lod_rotated, stack_permuted
from .core.results import CHUNK_STATS, ChunkScan
from .core.scan import (
    FixedParts,
    NullModel,
    Whitening,
    rotate_chunk,
    scan_best,
    scan_chunk,
    scan_fixed_gemm,
)
from .io.genotypes import GenotypeSource
from .options import HeritabilityOptions, ScanOptions
from .results import INTERACTION_COLUMNS, heritability_table

__all__ = [
    "BatchWork",
    "HeritBatch",
    "PermWork",
    "Rotation",
    "ScanTask",
    "heritability_task",
    "perm_task",
    "scan_task",
]


class Rotation(NamedTuple):
    """An eigendecomposition of the kinship over some samples, and their rotated covariates."""

    Kva: np.ndarray
    """Eigenvalues, decreasing (n,)."""
    U: np.ndarray | None
    """Eigenvectors as columns (n, n), C-contiguous; None for no kinship (no rotation)."""
    Xt: np.ndarray
    """Rotated covariates U'X (n, p)."""
    K: np.ndarray | None = None
    """The kinship decomposed, where the whitened fixed-hsq scan will need it (V = h K +
    (1 - h) I, see :func:`lmmlite.core.scan.whitening`); else None."""


# ---------------------------------------------------------------------------------------------
# Heritability


@dataclass(frozen=True)
class HeritBatch:
    """What a heritability task needs besides the rotation."""

    Y: np.ndarray
    traits: list[str]
    covariates: list[str]
    opts: HeritabilityOptions


def heritability_task(rot: Rotation, batch: HeritBatch) -> pd.DataFrame:
    """Fit a batch of traits sharing a missing-data pattern: rows of the heritability table."""
    opts = batch.opts
    assert rot.U is not None
    model = RotatedModel(rot.Kva, (batch.Y.T @ rot.U).T, rot.Xt)
    fit = fit_rotated(model, reml=opts.reml, check_boundary=opts.check_boundary, tol=opts.tol)
    inference = inference_rotated(model, fit, opts.level)
    fit = replace(fit, hsq_se=inference.hsq_se)
    return heritability_table(batch.traits, batch.covariates, fit, inference, model.n)


# ---------------------------------------------------------------------------------------------
# Genome scans


@dataclass(frozen=True)
class ScanTask:
    """One scan task: a batch of traits against a chunk of markers ``start:stop``."""

    batch: int
    chunk: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        """The task's name (its file in a dataset folder)."""
        return f"b{self.batch:05d}-c{self.chunk:06d}"


class BatchWork(NamedTuple):
    """What a batch's tasks share besides the rotation: computed once, in the caller."""

    geno_rows: np.ndarray
    """The analysed samples' rows in the genotype file, in the rotation's order."""
    null: NullModel
    traits: list[str]
    order: np.ndarray
    n: int
    parts: FixedParts | None
    """The fixed-hsq GEMM path's per-trait quantities, where it applies."""
    interact: np.ndarray | None = None
    """Interactive covariates of the analysed samples (n, q), or None."""
    lod_null: NullModel | None = None
    """X chromosome with Xcovar (R/qtl2): the null without Xcovar, at the X null's hsq; the
    LOD is that of the alternative without Xcovar against the null with it."""
    lod_offset: np.ndarray | None = None
    """Per trait: the LOD of Xcovar (given the other covariates) at that hsq, subtracted."""
    whiten: Whitening | None = None
    """The fixed-hsq GEMM path of traits sharing one hsq, run in whitened coordinates (the
    chunks are not rotated: a triangular solve instead of the product U'G)."""
    skip_monomorphic: bool = False
    """The covariates span the constant vector (and there are no interactive covariates or
    X-chromosome LOD terms): monomorphic markers are untestable, so they are neither rotated
    nor searched (their rows are what the scan gives an untestable marker)."""


def scan_task(
    source: GenotypeSource,
    U: np.ndarray | None,
    work: BatchWork,
    task: ScanTask,
    opts: ScanOptions,
    path: Path | None,
    block: np.ndarray | None,
) -> pd.DataFrame | int:
    """Test one chunk of markers against one batch of traits (``block``: the chunk's
    genotypes if read by the caller, else read here), write the task file (with an output
    folder), and return the frame, or its number of rows when they stay on disk
    (``keep="all"`` with a folder)."""
    if block is None:
        block = source.read(task.start, task.stop)
    meta = source.markers.iloc[task.start : task.stop]
    frame = _task_frame(work, U, block, meta, task.start, opts)
    if path is not None:
        write_task(path, frame.drop(columns=["_t", "_m"]) if opts.keep == "all" else frame)
        if opts.keep == "all":
            return len(frame)
    return frame


class _Picked(NamedTuple):
    """A chunk's tests of the kept (marker, trait) pairs, as columns."""

    columns: dict[str, np.ndarray]
    idx: np.ndarray  # the pairs' markers (chunk-relative)
    tidx: np.ndarray  # the pairs' traits (within the batch)
    testable: np.ndarray | None  # per marker of the chunk (keep="all")
    mean: np.ndarray
    mono: np.ndarray
    n_miss: np.ndarray
    k: int  # the genotype columns of the chunk


_INTERACTION_ORDER = ("lod", "beta", "se", "p_wald", "p_lrt", "p_score")


def _columns(res: ChunkScan, take: Any) -> dict[str, np.ndarray]:
    """The effects, statistics and interaction tests of ``res``, each indexed by ``take``."""
    out = {key: getattr(res, key)[take] for key in ("beta", "se", *CHUNK_STATS)}
    if res.interaction is not None:
        for name, field in zip(INTERACTION_COLUMNS, _INTERACTION_ORDER, strict=True):
            out[name] = getattr(res.interaction, field)[take]
    return out


def _rotated(work: BatchWork, U: np.ndarray | None, block: np.ndarray, skip_monomorphic: bool):
    """:func:`rotate_chunk` of a chunk for the batch: rotated by U, or left in the samples'
    order where the batch's scan runs whitened."""
    rot = U if work.whiten is None else None
    return rotate_chunk(
        block, work.geno_rows, block.shape[1], rot, work.interact, skip_monomorphic=skip_monomorphic
    )


def _chunk_tests(
    work: BatchWork, U: np.ndarray | None, block: np.ndarray, opts: ScanOptions
) -> _Picked:
    """The chunk's tests: every (marker, trait) pair, or (keep max/peaks) each trait's best."""
    k = block.shape[1]
    Mt, mean, mono, n_miss = _rotated(work, U, block, work.skip_monomorphic)
    kk = Mt.shape[1]
    split = None if work.interact is None else kk // (1 + work.interact.shape[1])
    m, t = mono.shape[0], len(work.traits)
    varying = np.flatnonzero(~mono) if Mt.shape[0] < m else None  # Mt's markers, if not all
    if opts.keep != "all" and work.lod_null is None:  # never the full table
        best, res = scan_best(
            work.null, Mt, mode=opts.mode, reml=opts.reml, parts=work.parts, split=split,
            whiten=work.whiten,
        )  # fmt: skip
        if varying is not None:
            best = np.where(best >= 0, varying[np.maximum(best, 0)], -1)
        found = best >= 0
        cols = _columns(res, found)
        return _Picked(cols, best[found], np.flatnonzero(found), None, mean, mono, n_miss, k)
    if work.lod_null is not None:
        lod = scan_chunk(work.lod_null, Mt.copy(), mode="fixed", split=split).lod
    if work.parts is not None and kk == 1:
        res = scan_fixed_gemm(
            work.null, Mt, reml=opts.reml, parts=work.parts, whiten=work.whiten
        )  # fmt: skip
    else:
        res = scan_chunk(work.null, Mt, mode=opts.mode, reml=opts.reml, split=split)
    if varying is not None:
        res = _widen(res, varying, m)
    if work.lod_null is not None:  # R/qtl2's X LOD: without Xcovar against the null with it
        assert work.lod_offset is not None
        res = replace(res, lod=np.where(res.testable[:, None], lod - work.lod_offset, np.nan))
    if opts.keep == "all":
        idx = np.repeat(np.arange(m), t)  # marker-major, trait-minor
        tidx = np.tile(np.arange(t), m)
    else:
        score = np.where(np.isnan(res.lod), -np.inf, res.lod)
        top = np.argmax(score, axis=0)
        tidx = np.flatnonzero(np.isfinite(score[top, np.arange(t)]))
        idx = top[tidx]
    return _Picked(_columns(res, (idx, tidx)), idx, tidx, res.testable, mean, mono, n_miss, k)


def _widen(res: ChunkScan, rows: np.ndarray, m: int) -> ChunkScan:
    """The tests of ``res`` (markers ``rows`` of a chunk of m) as those of all m markers, the
    others untestable: NaN statistics, ``testable`` False (no interaction tests here)."""
    assert res.interaction is None

    def wide(a: np.ndarray) -> np.ndarray:
        out = np.full((m, *a.shape[1:]), np.nan)
        out[rows] = a
        return out

    fields = ("beta", "se", *CHUNK_STATS)
    testable = np.zeros(m, dtype=bool)
    testable[rows] = res.testable
    widened: dict[str, Any] = {f: wide(getattr(res, f)) for f in fields}
    return replace(res, testable=testable, **widened)


def _task_frame(
    work: BatchWork,
    U: np.ndarray | None,
    block: np.ndarray,
    meta: pd.DataFrame,
    start: int,
    opts: ScanOptions,
) -> pd.DataFrame:
    """A task's tests: with ``keep="all"`` every (marker, trait) row with the published
    columns; with ``"max"``/``"peaks"`` each trait's best row, numbers only (labels are added
    to the few rows that survive the reduction). ``_t`` and ``_m`` are the trait's and the
    marker's positions, the keys of the reduction and of the table's order."""
    got = _chunk_tests(work, U, block, opts)
    cols, idx, tidx, k = got.columns, got.idx, got.tidx, got.k
    data: dict[str, Any] = {}
    if opts.keep == "all":
        assert got.testable is not None
        note = np.where(
            got.testable, "", np.where(got.mono, "monomorphic", "collinear with covariates")
        )
        data["trait"] = np.array(work.traits, dtype=object)[tidx]
        for col in ("chr", "pos", "marker"):
            data[col] = meta[col].to_numpy()[idx]
    beta, se = cols.pop("beta"), cols.pop("se")
    data["n"] = np.full(idx.shape[0], work.n)
    data["af"] = got.mean[0][idx] / 2.0 if k == 1 else np.full(idx.shape[0], np.nan)
    data["beta"] = beta[:, 0] if k == 1 else np.nan
    data["se"] = se[:, 0] if k == 1 else np.nan
    data.update({key: cols.pop(key) for key in CHUNK_STATS})
    data["n_miss"] = got.n_miss[idx]
    if opts.keep == "all":
        data["note"] = note[idx]
    if k > 1 and work.interact is None:  # probabilities: effects of columns 2..k against 1
        for j in range(k - 1):
            data[f"beta_{j + 2}"] = beta[:, j]
            data[f"se_{j + 2}"] = se[:, j]
    data.update(cols)  # the interaction test's columns, if any
    if opts.keep == "all" and "lod_gxe" in data:
        untested = (data["note"] == "") & np.isnan(data["lod_gxe"])
        data["note"] = np.where(
            untested, "interaction in the span of marker and covariates", data["note"]
        )
    data["_t"] = work.order[tidx]
    data["_m"] = start + idx
    return pd.DataFrame(data)


# ---------------------------------------------------------------------------------------------
# Permutation tests


class PermWork(NamedTuple):
    """What a batch's permutation tasks share: the scan's, and the permutations."""

    scan: BatchWork
    perms: np.ndarray
    """(P, n): permutation k gives sample i the genotypes (or whitened residual) of sample
    ``perms[k, i]``."""
    pseudo: list[PermNull] | None
    """Per trait, the whitened null and pseudo-phenotypes (rotated method); None: the
    genotypes are permuted."""
    region: str
    """``"A"``/``"X"`` (autosomes and X permuted apart), or ``""``."""


#: Largest (marker copies x traits) of a permuted-genotypes scan at once (bounds memory).
PERM_PAIRS = 1 << 18


def perm_task(
    source: GenotypeSource,
    U: np.ndarray | None,
    work: PermWork,
    task: ScanTask,
    opts: ScanOptions,
    path: Path | None,
    block: np.ndarray | None,
) -> pd.DataFrame:
    """The largest LOD over one chunk of every permutation of a batch of traits: a frame of
    ``_t`` (the trait's position), ``perm``, ``max_lod`` (-inf: no testable marker) and
    ``region``, written as the task file with an output folder."""
    if block is None:
        block = source.read(task.start, task.stop)
    scan = work.scan
    if work.pseudo is not None:
        Mt = rotate_chunk(block, scan.geno_rows, block.shape[1], U, scan.interact)[0]
        best = max_lod_rotated(Mt, work.pseudo, U)
    else:
        best = _permuted_genotypes_max(scan, U, block, work.perms, opts)
    t, P = best.shape
    frame = pd.DataFrame(
        {
            "_t": np.repeat(scan.order, P),
            "perm": np.tile(np.arange(P), t),
            "max_lod": best.reshape(-1),
            "region": work.region,
        }
    )
    if path is not None:
        write_task(path, frame)
    return frame


def _permuted_genotypes_max(
    scan: BatchWork, U: np.ndarray | None, block: np.ndarray, perms: np.ndarray, opts: ScanOptions
) -> np.ndarray:
    """(t, P): the chunk's largest LOD under each permutation of the genotypes' rows, the
    permuted copies scanned side by side as markers, a block of permutations at a time."""
    m = block.shape[2]
    t = len(scan.traits)
    P = perms.shape[0]
    step = max(1, min(max(1, opts.chunk_size // m), PERM_PAIRS // max(1, t * m)))
    best = np.full((t, P), -np.inf)
    identity = np.arange(len(scan.geno_rows))
    for p0 in range(0, P, step):
        stacked = stack_permuted(block, scan.geno_rows, perms[p0 : p0 + step])
        work = scan._replace(geno_rows=identity)
        lod = _chunk_lod(work, U, stacked, opts)  # (copies x m, t)
        lod = np.where(np.isnan(lod), -np.inf, lod).reshape(-1, m, t)
        best[:, p0 : p0 + step] = lod.max(axis=1).T
    return best


def _chunk_lod(work: BatchWork, U: np.ndarray | None, block: np.ndarray, opts: ScanOptions):
    """(m, t) LODs of a chunk (fixed hsq), R/qtl2's on the X chromosome with Xcovar."""
    Mt = _rotated(work, U, block, False)[0]
    kk = Mt.shape[1]
    split = None if work.interact is None else kk // (1 + work.interact.shape[1])
    if work.lod_null is not None:
        assert work.lod_offset is not None
        alt = scan_chunk(work.lod_null, Mt, mode="fixed", split=split)
        return alt.lod - work.lod_offset
    if work.parts is not None and kk == 1:
        fixed = scan_fixed_gemm(work.null, Mt, reml=opts.reml, parts=work.parts, whiten=work.whiten)
        return fixed.lod
    return scan_chunk(work.null, Mt, mode="fixed", reml=opts.reml, split=split).lod
