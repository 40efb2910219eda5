"""The planner: a heritability run or a genome scan described as stages of tasks, for an
executor (:mod:`lmmlite.executors`) to run in-process or on Dask.

A stage is one eigendecomposition of the kinship (per missing-data pattern, and per chromosome
left out with LOCO) and the tasks that use it:

- heritability: one task per batch of ``trait_batch`` traits (:func:`heritability_task`);
- scans: one task per (trait batch x marker chunk) (:func:`scan_task`); a batch's null fits
  are computed once, in the caller's process, and shared by its chunks' tasks.

Task functions are module-level and take plain data, so that Dask can ship them; each runs
single-threaded, and computes the same numbers wherever it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ._dataset import write_task
from .alignment import Alignment
from .core.checks import check_identifiable, check_kinship
from .core.lmm import eigh_decreasing, fit_rotated, inference_rotated
from .core.model import RotatedModel
from .core.results import CHUNK_STATS
from .core.scan import (
    FixedParts,
    NullModel,
    fit_null,
    fixed_hsq,
    fixed_parts,
    null_fits,
    rotate_chunk,
    scan_best,
    scan_chunk,
    scan_fixed_gemm,
)
from .executors import Call, Group, Stage, one_blas_thread, run_token
from .io.genotypes import GenotypeSource, chromosome_runs
from .options import HeritabilityOptions, ScanOptions
from .results import heritability_table

__all__ = [
    "BatchWork",
    "HeritabilityPlan",
    "Rotation",
    "ScanPlan",
    "ScanTask",
    "heritability_task",
    "rotation",
    "scan_task",
]


class Rotation(NamedTuple):
    """An eigendecomposition of the kinship over some samples, and their rotated covariates."""

    Kva: np.ndarray
    """Eigenvalues, decreasing (n,)."""
    U: np.ndarray
    """Eigenvectors as columns (n, n), C-contiguous."""
    Xt: np.ndarray
    """Rotated covariates U'X (n, p)."""


def rotation(K: np.ndarray, X: np.ndarray, traits: list[str]) -> Rotation:
    """Eigendecompose a (checked) kinship and rotate the covariates; refuse a kinship under
    which the heritability of ``traits`` cannot be estimated."""
    Kva, evecs, _ = eigh_decreasing(check_kinship(K))
    U = np.ascontiguousarray(evecs)
    Xt = U.T @ X
    check_identifiable(Kva, Xt, traits)
    return Rotation(Kva, U, Xt)


@dataclass(frozen=True)
class _HeritBatch:
    """What a heritability task needs besides the rotation."""

    Y: np.ndarray
    traits: list[str]
    covariates: list[str]
    opts: HeritabilityOptions


def heritability_task(rot: Rotation, batch: _HeritBatch) -> pd.DataFrame:
    """Fit a batch of traits sharing a missing-data pattern: rows of the heritability table."""
    opts = batch.opts
    model = RotatedModel(rot.Kva, (batch.Y.T @ rot.U).T, rot.Xt)
    fit = fit_rotated(model, reml=opts.reml, check_boundary=opts.check_boundary, tol=opts.tol)
    inference = inference_rotated(model, fit, opts.level)
    fit = replace(fit, hsq_se=inference.hsq_se)
    return heritability_table(batch.traits, batch.covariates, fit, inference, model.n)


class HeritabilityPlan:
    """The stages of a heritability run: per missing-data pattern, its eigendecomposition and
    one task per batch of ``opts.trait_batch`` traits."""

    def __init__(self, K: pd.DataFrame, aligned: Alignment, opts: HeritabilityOptions) -> None:
        self.K = K
        self.aligned = aligned
        self.opts = opts
        b = opts.trait_batch
        self.n_tasks = sum(-(-len(pat.traits) // b) for pat in aligned.patterns)

    def stages(self) -> Iterator[Stage]:
        Kfull = self.K.to_numpy()
        kpos = self.K.index.get_indexer(self.aligned.ids)
        run = run_token()
        for g, pat in enumerate(self.aligned.patterns):
            pos = kpos[pat.mask]

            def setup(pos: np.ndarray = pos, pat: Any = pat) -> Rotation:
                return rotation(Kfull[np.ix_(pos, pos)], pat.X, pat.traits)

            def groups(rot: Rotation, g: int = g, pat: Any = pat) -> Iterator[Group]:
                b = self.opts.trait_batch
                calls = []
                for b0 in range(0, len(pat.traits), b):
                    traits = pat.traits[b0 : b0 + b]
                    Y = np.ascontiguousarray(pat.Y[:, b0 : b0 + b])
                    batch = _HeritBatch(Y, traits, self.aligned.covariates, self.opts)
                    key = f"lmmlite-hsq-{run}-{g}-{b0}"
                    calls.append(Call(key, len(traits), heritability_task, (batch,)))
                yield Group((rot,), calls)

            yield Stage(setup, groups)


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


@dataclass(frozen=True)
class _Batch:
    """At most ``trait_batch`` traits of one pattern: the trait side of a scan task."""

    pattern: int
    cols: np.ndarray  # the traits' columns of the pattern's Y
    traits: list[str]
    order: np.ndarray  # the traits' positions among all phenotypes (the table's row order)


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


def scan_task(
    source: GenotypeSource,
    U: np.ndarray,
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
    frame = _task_frame(work, U, block, meta, task.start, source.k, opts)
    if path is not None:
        write_task(path, frame.drop(columns=["_t", "_m"]) if opts.keep == "all" else frame)
        if opts.keep == "all":
            return len(frame)
    return frame


def _task_frame(
    work: BatchWork,
    U: np.ndarray,
    block: np.ndarray,
    meta: pd.DataFrame,
    start: int,
    k: int,
    opts: ScanOptions,
) -> pd.DataFrame:
    """A task's tests: with ``keep="all"`` every (marker, trait) row with the published
    columns; with ``"max"``/``"peaks"`` each trait's best row, numbers only (labels are added
    to the few rows that survive the reduction). ``_t`` and ``_m`` are the trait's and the
    marker's positions, the keys of the reduction and of the table's order."""
    Mt, mean, mono, n_miss = rotate_chunk(block, work.geno_rows, k, U)
    m = Mt.shape[0]
    t = len(work.traits)
    af = mean[0] / 2.0 if k == 1 else np.full(m, np.nan)
    data: dict[str, Any] = {}
    if opts.keep == "all":
        if work.parts is not None:
            res = scan_fixed_gemm(work.null, Mt, reml=opts.reml, parts=work.parts)
        else:
            res = scan_chunk(work.null, Mt, mode=opts.mode, reml=opts.reml)
        note = np.where(
            res.testable, "", np.where(mono, "monomorphic", "collinear with covariates")
        )
        idx = np.repeat(np.arange(m), t)  # marker-major, trait-minor
        tidx = np.tile(np.arange(t), m)
        beta = res.beta.reshape(m * t, -1)
        se = res.se.reshape(m * t, -1)
        stats = {key: getattr(res, key).reshape(m * t) for key in CHUNK_STATS}
        extra = {"n_miss": np.repeat(n_miss, t), "note": np.repeat(note, t)}
        data["trait"] = np.array(work.traits, dtype=object)[tidx]
        for col in ("chr", "pos", "marker"):
            data[col] = meta[col].to_numpy()[idx]
    else:
        best, bres = scan_best(work.null, Mt, mode=opts.mode, reml=opts.reml, parts=work.parts)
        found = best >= 0
        idx = best[found]
        tidx = np.flatnonzero(found)
        beta = bres.beta[found]
        se = bres.se[found]
        stats = {key: getattr(bres, key)[found] for key in CHUNK_STATS}
        extra = {"n_miss": n_miss[idx]}
    data["n"] = np.full(idx.shape[0], work.n)
    data["af"] = af[idx]
    data["beta"] = beta[:, 0] if k == 1 else np.nan
    data["se"] = se[:, 0] if k == 1 else np.nan
    data.update(stats)
    data.update(extra)
    if k > 1:
        for j in range(beta.shape[1]):
            data[f"beta_{j + 2}"] = beta[:, j]
            data[f"se_{j + 2}"] = se[:, j]
    data["_t"] = work.order[tidx]
    data["_m"] = start + idx
    return pd.DataFrame(data)


class ScanPlan:
    """The tasks of a scan and the stages that run them.

    Parameters
    ----------
    source
        The genotypes.
    aligned
        Phenotypes and covariates aligned with the genotypes, kinship and covariates.
    kinships
        ``{"all": K}``, or with LOCO ``{chromosome: K}`` (DataFrames checked by
        :func:`lmmlite.alignment.kinship_frame`).
    opts
        The scan's options.
    """

    def __init__(
        self,
        source: GenotypeSource,
        aligned: Alignment,
        kinships: dict[str, pd.DataFrame],
        opts: ScanOptions,
    ) -> None:
        self.source = source
        self.aligned = aligned
        self.kinships = kinships
        self.opts = opts
        self.loco = "all" not in kinships
        geno_ids = pd.Index(source.samples)
        self.geno_rows = [geno_ids.get_indexer(pat.ids) for pat in aligned.patterns]
        self.batches: list[_Batch] = []
        b = opts.trait_batch
        for g, pat in enumerate(aligned.patterns):
            for s0 in range(0, len(pat.traits), b):
                cols = np.arange(s0, min(len(pat.traits), s0 + b))
                self.batches.append(_Batch(g, cols, pat.traits[s0 : s0 + b], pat.columns[cols]))
        chrom = source.markers["chr"].to_numpy()
        self.runs = chromosome_runs(chrom, opts.chunk_size)
        self.chunk_key = [str(chrom[a]) if self.loco else "all" for a, _ in self.runs]
        self.tasks = [
            ScanTask(bi, c, a, z)
            for c, (a, z) in enumerate(self.runs)
            for bi in range(len(self.batches))
        ]

    def stages(
        self, todo: list[ScanTask], *, read_here: bool, task_path: Any = None
    ) -> Iterator[Stage]:
        """Stages running the tasks ``todo``: per kinship (one per chromosome with LOCO) and
        missing-data pattern, its eigendecomposition, then per trait batch its null fits and
        its tasks. ``read_here``: the caller reads the chunks of sequential (text) formats,
        in one pass per batch, and hands them to the tasks (in-process runs); otherwise each
        task reads its own chunk. ``task_path(name)``: a task's output file, or None."""
        by_key: dict[str, dict[int, list[ScanTask]]] = {}
        for task in todo:
            key = self.chunk_key[task.chunk]
            by_key.setdefault(key, {}).setdefault(task.batch, []).append(task)
        run = run_token()
        for key, by_batch in by_key.items():
            by_pattern: dict[int, list[int]] = {}
            for bi in sorted(by_batch):
                by_pattern.setdefault(self.batches[bi].pattern, []).append(bi)
            for g, batches in by_pattern.items():

                def setup(g: int = g, key: str = key) -> tuple[np.ndarray, np.ndarray]:
                    return self._rotation(g, key)

                def groups(
                    rot: tuple[np.ndarray, np.ndarray],
                    batches: list[int] = batches,
                    by_batch: dict[int, list[ScanTask]] = by_batch,
                ) -> Iterator[Group]:
                    for bi in batches:
                        work = self._work(rot, bi)
                        calls = self._calls(by_batch[bi], work, run, read_here, task_path)
                        yield Group((self.source, rot[1], work), calls)

                yield Stage(setup, groups)

    def _rotation(self, g: int, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues and eigenvectors of kinship ``key`` over pattern ``g``'s samples."""
        pat = self.aligned.patterns[g]
        Ks = check_kinship(self.kinships[key].loc[pat.ids, pat.ids].to_numpy())
        if self.opts.center_kinship:  # GEMMA: K <- P K P, P = I - 11'/n, over the samples
            Ks = Ks - Ks.mean(axis=0, keepdims=True)
            Ks = Ks - Ks.mean(axis=1, keepdims=True)
        Kva, evecs, _ = eigh_decreasing(Ks)
        U = np.ascontiguousarray(evecs)
        check_identifiable(Kva, U.T @ pat.X, pat.traits)
        return Kva, U

    def _work(self, rot: tuple[np.ndarray, np.ndarray], bi: int) -> BatchWork:
        """Batch ``bi``'s null fits (and fixed-hsq parts) under its pattern's rotation (small
        products: one BLAS thread, whose idle siblings would otherwise spin beside the tasks)."""
        Kva, U = rot
        batch = self.batches[bi]
        pat = self.aligned.patterns[batch.pattern]
        opts = self.opts
        Yb = pat.Y[:, batch.cols]
        with one_blas_thread():
            fits = null_fits(opts.mode, opts.reml)
            null = fit_null(Kva, U.T @ pat.X, (Yb.T @ U).T, tol=opts.tol, fits=fits)
            parts = None
            if opts.mode == "fixed" and self.source.k == 1:  # the GEMM path: for all chunks
                parts = fixed_parts(null, fixed_hsq(null, opts.reml))
        rows = self.geno_rows[batch.pattern]
        return BatchWork(rows, null, batch.traits, batch.order, len(pat.ids), parts)

    def _calls(
        self,
        tasks: list[ScanTask],
        work: BatchWork,
        run: str,
        read_here: bool,
        task_path: Any,
    ) -> Iterator[Call]:
        """The batch's tasks, in marker order, with their chunks read here if asked for (a
        generator: a chunk is read when the executor takes its task)."""
        blocks: Iterator[np.ndarray | None]
        if read_here and not self.source.random_access:
            blocks = self.source.iter_runs([(t.start, t.stop) for t in tasks])
        else:
            blocks = iter([None] * len(tasks))
        for task, block in zip(tasks, blocks, strict=True):
            path = None if task_path is None else task_path(task.name)
            tests = len(work.traits) * (task.stop - task.start)
            key = f"lmmlite-scan-{task.name}-{run}"
            yield Call(key, tests, scan_task, (task, self.opts, path, block))
