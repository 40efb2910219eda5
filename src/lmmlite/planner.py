"""The planner: a heritability run or a genome scan described as stages of tasks, for an
executor (:mod:`lmmlite.executors`) to run in-process or on Dask.

A stage is one eigendecomposition of the kinship (per missing-data pattern, per chromosome left
out with LOCO, and for the X chromosome when its null model has its own covariates, R/qtl2's
``Xcovar``) and the tasks that use it:

- heritability: one task per batch of ``trait_batch`` traits (:func:`tasks.heritability_task`);
- scans: one task per (trait batch x marker chunk) (:func:`tasks.scan_task`); a batch's null
  fits are computed once, in the caller's process, and shared by its chunks' tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .alignment import Alignment, Pattern
from .core import _kernels
from .core.checks import (
    check_identifiable,
    check_kinship,
    independent_columns,
    spans_constant,
    symmetrised,
)
from .core.lmm import eigh_decreasing
from .core.permutation import perm_null, permutation_entropy, sample_permutations
from .core.scan import (
    SERIES_MAX_TRAITS,
    fit_null,
    fixed_hsq,
    fixed_parts,
    null_fits,
    whitening,
)
from .executors import Call, Group, Stage, one_blas_thread, run_token
from .io.genotypes import GenotypeSource, chromosome_runs
from .options import HeritabilityOptions, PermOptions, ScanOptions
from .tasks import (
    BatchWork,
    HeritBatch,
    PermWork,
    Rotation,
    ScanTask,
    heritability_task,
    perm_task,
    scan_task,
)

__all__ = ["HeritabilityPlan", "PermPlan", "ScanPlan", "rotation"]


def rotation(
    K: np.ndarray | None, X: np.ndarray, traits: list[str], *, checked: bool = False
) -> Rotation:
    """Eigendecompose a kinship and rotate the covariates; refuse a kinship under which the
    heritability of ``traits`` cannot be estimated. ``K=None``: no kinship (a plain linear
    model): no rotation. ``checked``: K has passed ``check_kinship`` (finite, symmetric: it was
    symmetrised after centring)."""
    if K is None:
        return Rotation(np.zeros(X.shape[0]), None, X)
    Kva, evecs, _ = eigh_decreasing(K if checked else check_kinship(K))
    U = np.ascontiguousarray(evecs)
    Xt = U.T @ X
    check_identifiable(Kva, Xt, traits)
    return Rotation(Kva, U, Xt)


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
        if self.opts.kinship_scale != 1.0:
            Kfull = Kfull * self.opts.kinship_scale
        kpos = self.K.index.get_indexer(self.aligned.ids)
        run = run_token()
        for g, pat in enumerate(self.aligned.patterns):
            pos = kpos[pat.mask]

            def setup(pos: np.ndarray = pos, pat: Pattern = pat) -> Rotation:
                return rotation(Kfull[np.ix_(pos, pos)], pat.X, pat.traits)

            def groups(rot: Rotation, g: int = g, pat: Pattern = pat) -> Iterator[Group]:
                b = self.opts.trait_batch
                calls = []
                for b0 in range(0, len(pat.traits), b):
                    traits = pat.traits[b0 : b0 + b]
                    Y = np.ascontiguousarray(pat.Y[:, b0 : b0 + b])
                    batch = HeritBatch(Y, traits, self.aligned.covariates, self.opts)
                    key = f"lmmlite-hsq-{run}-{g}-{b0}"
                    calls.append(Call(key, len(traits), heritability_task, (batch,)))
                yield Group((rot,), calls)

            yield Stage(setup, groups)


# ---------------------------------------------------------------------------------------------
# Genome scans


@dataclass(frozen=True)
class _Batch:
    """At most ``trait_batch`` traits of one pattern: the trait side of a scan task."""

    pattern: int
    cols: np.ndarray  # the traits' columns of the pattern's Y
    traits: list[str]
    order: np.ndarray  # the traits' positions among all phenotypes (the table's row order)


#: A chunk's kinship and null model: the kinship's key ("all", or a chromosome with LOCO),
#: whether the chunk is on the X chromosome with Xcovar (its null model has those covariates),
#: and its region in a permutation test ("A" or "X" when they are permuted apart, else "").
_Key = tuple[str, bool, str]


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
        :func:`lmmlite.alignment.kinship_frame`); None for no kinship (a plain linear model).
    opts
        The scan's options.
    xcovar
        R/qtl2's ``Xcovar`` over the aligned samples: the X chromosome's null model adds these
        covariates (and has its own hsq), its LOD is the alternative's (without them) against
        that null. None: the X chromosome is scanned like the others.
    """

    def __init__(
        self,
        source: GenotypeSource,
        aligned: Alignment,
        kinships: dict[str, pd.DataFrame] | None,
        opts: ScanOptions,
        xcovar: pd.DataFrame | None = None,
    ) -> None:
        self.source = source
        self.aligned = aligned
        self.kinships = kinships
        self.opts = opts
        self.xcovar = xcovar
        self.loco = kinships is not None and "all" not in kinships
        geno_ids = pd.Index(source.samples)
        self.geno_rows = [geno_ids.get_indexer(pd.Index(pat.ids)) for pat in aligned.patterns]
        self.batches: list[_Batch] = []
        b = opts.trait_batch
        for g, pat in enumerate(aligned.patterns):
            for s0 in range(0, len(pat.traits), b):
                cols = np.arange(s0, min(len(pat.traits), s0 + b))
                self.batches.append(_Batch(g, cols, pat.traits[s0 : s0 + b], pat.columns[cols]))
        chrom = source.markers["chr"].to_numpy()
        on_x = source.x_chromosomes if xcovar is not None else frozenset()

        def key_of(c: Any) -> _Key:
            return (str(c) if self.loco else "all", str(c) in on_x, self._region(c))

        runs_of = chrom
        if opts.keep == "max" and len(self.batches) > 1 and source.spans_chromosomes:
            # Chunks run across chromosomes that share their kinship and null model: with
            # many trait batches, a task per (batch x chromosome) is mostly overhead (20
            # chromosomes x 18 batches of the eQTL benchmark: 360 tasks of 366 markers).
            # Not for peaks (per chromosome) nor for a single batch (its few, large chunks
            # would leave threads idle); "all" keeps per-chromosome tasks too.
            uniq, code = np.unique(chrom.astype(str), return_inverse=True)
            keys = [key_of(c) for c in uniq]
            key_code = np.array([keys.index(k) for k in keys])
            runs_of = key_code[code.reshape(-1)]
        self.runs = chromosome_runs(runs_of, opts.chunk_size)
        self.chunk_key: list[_Key] = [key_of(chrom[a]) for a, _ in self.runs]
        self.tasks = [
            ScanTask(bi, c, a, z)
            for c, (a, z) in enumerate(self.runs)
            for bi in range(len(self.batches))
        ]
        self.interact_cols = [aligned.covariates.index(c) for c in opts.intcovar]

    def stages(
        self, todo: list[ScanTask], *, read_here: bool, task_path: Any = None
    ) -> Iterator[Stage]:
        """Stages running the tasks ``todo``: per kinship (one per chromosome with LOCO), null
        model (the X chromosome's with Xcovar) and missing-data pattern, its
        eigendecomposition, then per trait batch its null fits and its tasks. ``read_here``:
        the caller reads the chunks of sequential (text) formats, in one pass per batch, and
        hands them to the tasks (in-process runs); otherwise each task reads its own chunk.
        ``task_path(name)``: a task's output file, or None."""
        by_key: dict[_Key, dict[int, list[ScanTask]]] = {}
        for task in todo:
            key = self.chunk_key[task.chunk]
            by_key.setdefault(key, {}).setdefault(task.batch, []).append(task)
        run = run_token()
        for key, by_batch in by_key.items():
            by_pattern: dict[int, list[int]] = {}
            for bi in sorted(by_batch):
                by_pattern.setdefault(self.batches[bi].pattern, []).append(bi)
            for g, batches in by_pattern.items():

                def setup(g: int = g, key: _Key = key) -> Rotation:
                    return self._rotation(g, key)

                def groups(
                    rot: Rotation,
                    batches: list[int] = batches,
                    by_batch: dict[int, list[ScanTask]] = by_batch,
                    key: _Key = key,
                ) -> Iterator[Group]:
                    for bi in batches:
                        work = self._work(rot, bi, key)
                        calls = self._calls(by_batch[bi], work, run, read_here, task_path)
                        yield Group((self.source, rot.U, work), calls)

                yield Stage(setup, groups)

    def _region(self, chromosome: Any) -> str:
        """A chunk's region (scans have none)."""
        return ""

    def _rotation(self, g: int, key: _Key) -> Rotation:
        """Kinship ``key`` over pattern ``g``'s samples: eigenvalues, eigenvectors and the
        rotated covariates (those of the X chromosome's null too)."""
        pat = self.aligned.patterns[g]
        X = self._design(pat, key[1])
        if self.kinships is None:
            return rotation(None, X, pat.traits)
        Kf = self.kinships[key[0]]
        ids = pd.Index(pat.ids)
        rows, cols = Kf.index.get_indexer(ids), Kf.columns.get_indexer(ids)
        if (rows < 0).any() or (cols < 0).any():  # the alignment has made sure they are there
            raise KeyError(f"samples missing from the kinship: {ids[int(np.argmin(rows))]}")
        # by position (pandas' label lookup of both axes takes up to 0.1 s on 1,940 samples),
        # in the layout pandas gives (Fortran order: the centring's sums run as they did)
        Ks = check_kinship(Kf.to_numpy().T[np.ix_(cols, rows)].T)
        if self.opts.center_kinship:  # GEMMA: K <- P K P, P = I - 11'/n, over the samples
            Ks -= Ks.mean(axis=0, keepdims=True)  # in place: Ks is check_kinship's copy
            Ks -= Ks.mean(axis=1, keepdims=True)
            Ks = symmetrised(Ks)  # symmetric to rounding
        if self.opts.kinship_scale != 1.0:
            Ks = Ks * self.opts.kinship_scale
        rot = rotation(Ks, X, pat.traits, checked=True)
        if not self._whitens():
            return rot
        # the whitened scan solves with SciPy's BLAS: loaded now, before the tasks' BLAS
        # limits are set (executors.one_blas_thread limits the BLAS libraries loaded)
        import scipy.linalg  # noqa: F401

        return rot._replace(K=Ks)

    def _design(self, pat: Pattern, on_x: bool) -> np.ndarray:
        """The null model's covariates: the pattern's, and on the X chromosome the Xcovar
        columns that are not already in their span (R/qtl2's drop_depcols)."""
        if not on_x or self.xcovar is None:
            return pat.X
        extra = self.xcovar.loc[pat.ids].to_numpy(dtype=float)
        return np.column_stack([pat.X, extra[:, independent_columns(pat.X, extra)]])

    def _work(self, rot: Rotation, bi: int, key: _Key) -> Any:
        """Batch ``bi``'s null fits (and fixed-hsq parts) under its pattern's rotation (small
        products: one BLAS thread, whose idle siblings would otherwise spin beside the tasks)."""
        on_x = key[1]
        batch = self.batches[bi]
        pat = self.aligned.patterns[batch.pattern]
        opts = self.opts
        Yb = pat.Y[:, batch.cols]
        U = rot.U
        if self._tasks_use_kernels(on_x, len(batch.traits)):
            _kernels.start()  # here, with the pool idle, rather than in the first task
        with one_blas_thread():
            Yt = Yb if U is None else (Yb.T @ U).T
            hsq = 0.0 if U is None else None  # no kinship: hsq is 0, not estimated
            null = fit_null(
                rot.Kva, rot.Xt, Yt, tol=opts.tol, fits=null_fits(opts.mode, opts.reml), hsq=hsq,
                hsq_grid=opts.hsq_grid,
            )  # fmt: skip
            extra = self._x_lod(rot, pat, Yt, null) if on_x else {}
            parts = None
            if self._gemm_path():
                parts = fixed_parts(null, fixed_hsq(null, opts.reml))
        design = self._design(pat, on_x)
        whiten = None
        if parts is not None and rot.K is not None and U is not None and not extra:
            whiten = whitening(null, rot.K, U, design, parts)
        interact = pat.X[:, self.interact_cols] if self.interact_cols else None
        rows = self.geno_rows[batch.pattern]
        skip = interact is None and not extra and spans_constant(design)
        return BatchWork(
            rows, null, batch.traits, batch.order, len(pat.ids), parts, interact, **extra,
            whiten=whiten, skip_monomorphic=skip,
        )  # fmt: skip

    def _gemm_path(self) -> bool:
        """Whether the tasks take the fixed-hsq matrix-product path (one-column markers, no
        interactive covariates)."""
        o = self.opts
        return o.mode == "fixed" and self.source.k == 1 and not o.intcovar

    def _whitens(self) -> bool:
        """Whether the GEMM path of a batch whose traits share one hsq runs in whitened
        coordinates (:class:`lmmlite.core.scan.Whitening`): a triangular solve per chunk
        instead of the product U'G, half its cost."""
        return self._gemm_path()

    def _tasks_use_kernels(self, on_x: bool, n_traits: int) -> bool:
        """Whether the tasks call compiled kernels for most of their work: all but the
        fixed-hsq matrix-product path keeping every test, and the exact scan of a few traits
        (whose per-marker searches run on series formed by matrix products). Their remaining
        kernel work (null fits, the few markers a series does not cover) goes to the kernels'
        exact twins while their budget lasts (numba is started only when it runs out)."""
        x_lod = on_x and self.xcovar is not None  # R/qtl2's X LOD: per-pair kernels
        if self.opts.mode == "exact" and not x_lod:
            return n_traits > SERIES_MAX_TRAITS
        return not (self._gemm_path() and self.opts.keep == "all" and not x_lod)

    def _x_lod(self, rot: Rotation, pat: Pattern, Yt: np.ndarray, null: Any) -> dict[str, Any]:
        """R/qtl2's X LOD: a null without Xcovar at the X null's hsq, and the LOD of Xcovar."""
        p = pat.X.shape[1]
        h = fixed_hsq(null, self.opts.reml)
        base = fit_null(rot.Kva, rot.Xt[:, :p], Yt, tol=self.opts.tol, hsq=h)
        items = np.arange(null.model.t)
        rss_base = base.model.solution(h, items).rss
        rss_x = null.model.solution(h, items).rss
        offset = null.model.n / 2.0 * np.log10(rss_base / rss_x)
        return {"lod_null": base, "lod_offset": offset}

    #: The task function (a module-level function of :mod:`lmmlite.tasks`).
    task_func: Any = staticmethod(scan_task)

    def _tests(self, work: Any, task: ScanTask) -> int:
        """A task's units of work, for the progress bar's throughput."""
        return len(work.traits) * (task.stop - task.start)

    def _calls(
        self,
        tasks: list[ScanTask],
        work: Any,
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
            key = f"lmmlite-scan-{task.name}-{run}"
            yield Call(key, self._tests(work, task), self.task_func, (task, self.opts, path, block))


# ---------------------------------------------------------------------------------------------
# Permutation tests


class PermPlan(ScanPlan):
    """The tasks of a permutation test: a scan's (trait batch x marker chunk) tasks, each
    keeping the largest LOD of every permutation (:func:`tasks.perm_task`).

    Parameters
    ----------
    source, aligned, kinships, opts, xcovar
        As :class:`ScanPlan` (``opts.mode`` is ``"fixed"``).
    perm
        The permutations' options.
    strata
        A stratum code per aligned sample, or None.
    """

    task_func = staticmethod(perm_task)

    def __init__(
        self,
        source: GenotypeSource,
        aligned: Alignment,
        kinships: dict[str, pd.DataFrame] | None,
        opts: ScanOptions,
        perm: PermOptions,
        xcovar: pd.DataFrame | None = None,
        strata: np.ndarray | None = None,
    ) -> None:
        self.perm = perm
        self.x_set = source.x_chromosomes if perm.x_specific else frozenset()
        super().__init__(source, aligned, kinships, opts, xcovar)
        self.strata = strata
        self._perms: dict[tuple[int, str], np.ndarray] = {}

    def _tasks_use_kernels(self, on_x: bool, n_traits: int) -> bool:
        """Permutation tasks always do (the best LOD of each permutation)."""
        return True

    def _region(self, chromosome: Any) -> str:
        if not self.perm.x_specific:
            return ""
        return "X" if str(chromosome) in self.x_set else "A"

    def n_perm(self, region: str) -> int:
        """The number of permutations of a region."""
        return self.perm.n_perm_x if region == "X" else self.perm.n_perm

    def permutations(self, g: int, region: str) -> np.ndarray:
        """Pattern ``g``'s permutations of region ``region`` (made once, in the caller)."""
        if (g, region) not in self._perms:
            pat = self.aligned.patterns[g]
            codes = None
            if self.strata is not None:
                codes = self.strata[np.asarray(pat.mask)]
            entropy = permutation_entropy(self.perm.seed, list(pat.ids), region)
            self._perms[(g, region)] = sample_permutations(
                list(pat.ids), self.n_perm(region), entropy, codes
            )
        return self._perms[(g, region)]

    def _whitens(self) -> bool:
        """Not for the rotated method: it scans whitened pseudo-phenotypes of its own."""
        return self.perm.method != "rotated" and super()._whitens()

    def _work(self, rot: Rotation, bi: int, key: _Key) -> PermWork:
        scan = super()._work(rot, bi, key)
        batch = self.batches[bi]
        perms = self.permutations(batch.pattern, key[2])
        pseudo = None
        if self.perm.method == "rotated":
            null = scan.null
            h = fixed_hsq(null, self.opts.reml)
            pa = self.aligned.patterns[batch.pattern].X.shape[1]
            # sample space when the stage's marker columns are fewer than the permutations
            columns = (1 + len(self.opts.intcovar)) * sum(
                (b - a) * max(1, self.source.k_of(a) - 1)
                for (a, b), k in zip(self.runs, self.chunk_key, strict=True)
                if k == key
            )
            sample_space = columns < perms.shape[0]
            with one_blas_thread():
                pseudo = [
                    perm_null(
                        rot.Kva, rot.Xt, pa, null.model.Yt[j], float(h[j]), rot.U, perms,
                        sample_space=sample_space,
                    )
                    for j in range(null.model.t)
                ]  # fmt: skip
        return PermWork(scan, perms, pseudo, key[2])

    def _tests(self, work: Any, task: ScanTask) -> int:
        return len(work.scan.traits) * work.perms.shape[0] * (task.stop - task.start)
