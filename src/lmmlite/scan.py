"""Genome scan with sample ids: ``lmmlite.scan`` (the pandas layer over :mod:`lmmlite.core.scan`).

Samples are matched by id between genotypes, phenotypes, covariates and kinship. Phenotypes are
grouped by missing-data pattern; each pattern (and, with LOCO, each chromosome) gets its own
eigendecomposition and null model, fitted once and reused for every marker. Genotypes are read
in chunks, imputed by the marker mean over the analysed samples (as GEMMA does), rotated and
tested.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from ._checks import check_design, check_kinship, check_phenotypes, format_values
from ._dataset import ScanDataset, frame_sha256, write_task
from ._progress import Progress
from ._tasks import LocalTasks, one_blas_thread, task_threads
from .core.lmm import eigh_decreasing
from .core.scan import (
    FixedParts,
    NullModel,
    fit_null,
    fixed_hsq,
    fixed_parts,
    null_fits,
    scan_best,
    scan_chunk,
    scan_fixed_gemm,
)
from .exceptions import (
    InputError,
    KinshipError,
    PhenotypeError,
    SampleMismatchError,
    SamplesDroppedWarning,
)
from .io.genotypes import CHUNK_SIZE, GenotypeSource, chromosome_runs
from .kinship import kinship as compute_kinship
from .labeled import _design, _kinship_frame, _numeric_frame, pattern_groups

__all__ = ["SCAN_COLUMNS", "TRAIT_BATCH", "scan"]

#: Default number of traits per task.
TRAIT_BATCH = 2048

#: Columns of the scan table (k-column genotypes add ``beta_<j>``/``se_<j>`` for j = 2..k).
SCAN_COLUMNS = (
    "trait",
    "chr",
    "pos",
    "marker",
    "n",
    "af",
    "beta",
    "se",
    "lod",
    "p_wald",
    "p_lrt",
    "p_score",
    "hsq",
    "loglik",
    "note",
)


def _match(
    ids: pd.Index, available: dict[str, set[str]], samples: str
) -> tuple[pd.Index, list[str]]:
    missing = {what: [i for i in ids if i not in have] for what, have in available.items()}
    dropped = sorted({i for v in missing.values() for i in v})
    if dropped and samples == "strict":
        parts = [f"{len(v)} not in the {k} ({format_values(v)})" for k, v in missing.items() if v]
        raise SampleMismatchError(
            "samples with a phenotype must have genotypes, a kinship row and covariates: "
            f"{'; '.join(parts)}. Pass samples='drop' to leave them out"
        )
    if dropped:
        warnings.warn(
            f"{len(dropped)} sample(s) left out (no genotypes, kinship or covariates): "
            f"{format_values(dropped)}",
            SamplesDroppedWarning,
            stacklevel=3,
        )
    gone = set(dropped)
    return pd.Index([i for i in ids if i not in gone], dtype=object), dropped


class _Pattern:
    """Samples and traits sharing a missing-data pattern."""

    def __init__(
        self, ids: list[str], geno_rows: np.ndarray, traits: list[str], Y: np.ndarray, X: np.ndarray
    ) -> None:
        self.ids = ids
        self.geno_rows = geno_rows
        self.traits = traits
        self.Y = Y
        self.X = X

    def rotation(self, K: pd.DataFrame, center: bool) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues and eigenvectors of the kinship over the pattern's samples."""
        Ks = check_kinship(K.loc[self.ids, self.ids].to_numpy())
        if center:  # GEMMA: K <- P K P, P = I - 11'/n, over the analysed samples
            Ks = Ks - Ks.mean(axis=0, keepdims=True)
            Ks = Ks - Ks.mean(axis=1, keepdims=True)
        Kva, evecs, _ = eigh_decreasing(Ks)
        return Kva, np.ascontiguousarray(evecs)


class _Batch:
    """A batch of at most ``trait_batch`` traits of one pattern: the unit of a scan task."""

    def __init__(self, pattern: int, cols: np.ndarray, traits: list[str], order: np.ndarray):
        self.pattern = pattern
        self.cols = cols  # columns of the pattern's Y
        self.traits = traits
        self.order = order  # positions of the traits among all phenotypes (row order)


class _Task(NamedTuple):
    batch: int
    chunk: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"b{self.batch:05d}-c{self.chunk:06d}"


class _Work(NamedTuple):
    """What one task needs besides its genotype chunk (shipped once per batch and rotation)."""

    geno_rows: np.ndarray
    U: np.ndarray
    null: NullModel
    traits: list[str]
    order: np.ndarray
    n: int
    parts: FixedParts | None  # the fixed-hsq GEMM path's per-trait quantities, if it applies


def _prepare_chunk(block: np.ndarray, rows: np.ndarray, k: int, U: np.ndarray):
    """Impute by the marker mean over the analysed samples, rotate into (m, k', n) layout."""
    G = block[rows]  # (n, k, m)
    if k > 1:
        G = G[:, 1:, :]  # probabilities sum to 1: drop the first column
    m = G.shape[2]
    missing = np.isnan(G)
    n_miss = missing.any(axis=1).sum(axis=0)  # samples imputed, per marker
    mean = np.nanmean(np.where(missing.all(axis=0), 0.0, G), axis=0)
    G = np.where(missing, mean[None], G)
    mono = np.all(np.ptp(G, axis=0) == 0, axis=0)
    # rotate straight into the marker-major layout the kernels use: (U'G)' = G'U
    kk = G.shape[1]
    Gt = G[:, 0, :].T if kk == 1 else G.transpose(2, 1, 0).reshape(m * kk, -1)
    Mt = (Gt @ U).reshape(m, kk, -1)
    return Mt, mean, mono, n_miss


def _run_task(
    work: _Work,
    block: np.ndarray,
    meta: pd.DataFrame,
    start: int,
    *,
    k: int,
    mode: str,
    reml: bool,
    keep: str,
) -> pd.DataFrame:
    """Test one chunk of markers (``meta``: their rows of the marker table, from ``start``)
    against one batch of traits: every row, or each trait's best.

    With ``keep="all"`` the frame has the published columns; with ``"max"``/``"peaks"`` only
    the numbers (labels are added to the few rows that survive the reduction). ``_t`` and
    ``_m`` are the trait's and the marker's positions, the keys of the reduction and order."""
    Mt, mean, mono, n_miss = _prepare_chunk(block, work.geno_rows, k, work.U)
    m = Mt.shape[0]
    t = len(work.traits)
    af = mean[0] / 2.0 if k == 1 else np.full(m, np.nan)
    data: dict[str, Any] = {}
    if keep == "all":
        if work.parts is not None:
            res = scan_fixed_gemm(work.null, Mt, reml=reml, parts=work.parts)
        else:
            res = scan_chunk(work.null, Mt, mode=mode, reml=reml)
        rep = lambda v: np.repeat(np.asarray(v), t)  # noqa: E731 - marker-major, trait-minor
        note = np.where(
            res["testable"], "", np.where(mono, "monomorphic", "collinear with covariates")
        )
        beta = res["beta"].reshape(m * t, -1)
        se = res["se"].reshape(m * t, -1)
        stats = {key: res[key].reshape(m * t) for key in _STATS}
        idx = rep(np.arange(m))
        tidx = np.tile(np.arange(t), m)
        extra = {"n_miss": rep(n_miss), "note": rep(note)}
        data["trait"] = np.array(work.traits, dtype=object)[tidx]
        data["chr"] = meta["chr"].to_numpy()[idx]
        data["pos"] = meta["pos"].to_numpy()[idx]
        data["marker"] = meta["marker"].to_numpy()[idx]
    else:
        best, bstats = scan_best(work.null, Mt, mode=mode, reml=reml, parts=work.parts)
        found = best >= 0
        idx = best[found]
        tidx = np.flatnonzero(found)
        beta = bstats["beta"][found]
        se = bstats["se"][found]
        stats = {key: bstats[key][found] for key in _STATS}
        extra = {"n_miss": n_miss[idx]}
    data["n"] = np.full(idx.shape[0], work.n)
    data["af"] = af[idx]
    if k == 1:
        data["beta"] = beta[:, 0]
        data["se"] = se[:, 0]
    else:
        data["beta"] = np.nan
        data["se"] = np.nan
    data.update(stats)
    data.update(extra)
    if k > 1:
        for j in range(beta.shape[1]):
            data[f"beta_{j + 2}"] = beta[:, j]
            data[f"se_{j + 2}"] = se[:, j]
    data["_t"] = work.order[tidx]
    data["_m"] = start + idx
    return pd.DataFrame(data)


def _task_output(work: _Work, block, meta, start: int, opts: dict[str, Any], task_path):
    """One task as run in-process or on a Dask worker (single-threaded, see
    :mod:`lmmlite._tasks`): test the chunk, write the task file (with an output folder);
    return the frame, or its number of rows when they stay on disk (``keep="all"`` with a
    folder)."""
    frame = _run_task(work, block, meta, start, **opts)
    if task_path is not None:
        write_task(task_path, _on_disk(frame, opts["keep"]))
        if opts["keep"] == "all":
            return len(frame)
    return frame


_STATS = ("lod", "p_wald", "p_lrt", "p_score", "hsq", "loglik")


def _on_disk(frame: pd.DataFrame, keep: str) -> pd.DataFrame:
    """A task's frame as written: with keep="all" the published columns only (the row
    bookkeeping columns serve the reduction of keep="max"/"peaks")."""
    return frame.drop(columns=["_t", "_m"]) if keep == "all" else frame


def _reduce_best(frame: pd.DataFrame, keep: str, chrom_code: np.ndarray) -> pd.DataFrame:
    """Each trait's (``max``) or each trait and chromosome's (``peaks``) highest-LOD row; ties
    go to the first marker. ``chrom_code``: an integer code of each marker's chromosome.
    (Rows are unique per trait and marker.) Untestable markers (LOD NaN) are never a best
    row, as in the per-chunk reduction (``scan_best``): a trait (or trait and chromosome)
    without a testable marker has no row."""
    frame = frame[frame["lod"].notna().to_numpy()]
    t = frame["_t"].to_numpy(dtype=np.int64)
    m = frame["_m"].to_numpy(dtype=np.int64)
    group = t if keep == "max" else t * (int(chrom_code.max(initial=0)) + 1) + chrom_code[m]
    _, gi = np.unique(group, return_inverse=True)
    gi = gi.reshape(-1)
    size = int(gi.max(initial=-1)) + 1
    lod = frame["lod"].to_numpy(dtype=float)
    best = np.full(size, -np.inf)
    np.maximum.at(best, gi, lod)
    top = lod == best[gi]
    first = np.full(size, np.iinfo(np.int64).max)
    np.minimum.at(first, gi[top], m[top])
    return frame[top & (m == first[gi])]


def _finish(
    frame: pd.DataFrame,
    keep: str,
    threshold: float,
    names: np.ndarray,
    markers: pd.DataFrame,
    chrom_code: np.ndarray,
) -> pd.DataFrame:
    """The result table: reduced (``max``/``peaks``), labelled and in (trait, marker) order."""
    if keep != "all":
        frame = _reduce_best(frame, keep, chrom_code)
        if keep == "peaks":
            frame = frame[frame["lod"].to_numpy() >= threshold]
    t = frame["_t"].to_numpy(dtype=np.int64)
    m = frame["_m"].to_numpy(dtype=np.int64)
    order = np.lexsort((m, t))
    frame = frame.iloc[order].drop(columns=["_t", "_m"]).reset_index(drop=True)
    if keep != "all":
        t, m = t[order], m[order]
        labels = {
            "trait": names[t],
            "chr": markers["chr"].to_numpy()[m],
            "pos": markers["pos"].to_numpy()[m],
            "marker": markers["marker"].to_numpy()[m],
        }
        frame = pd.concat([pd.DataFrame(labels), frame], axis=1)
        at = list(frame.columns).index("n_miss") + 1
        frame.insert(at, "note", np.full(len(frame), "", dtype=object))
    return frame


class _Prepare:
    """What a scan's tasks share, computed once by the caller: each missing-data pattern's
    rotation (an eigendecomposition, BLAS on every core) and each trait batch's null fits
    (small products: one BLAS thread, whose idle siblings would otherwise spin beside the
    tasks)."""

    def __init__(self, pats, batches, kin, center, tol, mode, reml, k) -> None:
        self.pats = pats
        self.batches = batches
        self.kin = kin
        self.center = center
        self.tol = tol
        self.mode = mode
        self.reml = reml
        self.k = k
        self.fits = null_fits(mode, reml)

    def rotations(self, key: str, needed: set[int]) -> Iterator[tuple[Any, list[int]]]:
        """Per pattern among the ``needed`` batches: its rotation under kinship ``key`` and
        its batches."""
        by_pattern: dict[int, list[int]] = {}
        for b in sorted(needed):
            by_pattern.setdefault(self.batches[b].pattern, []).append(b)
        for g, bs in by_pattern.items():
            yield (g, *self.pats[g].rotation(self.kin[key], self.center)), bs

    def work(self, rot: tuple[int, np.ndarray, np.ndarray], b: int) -> _Work:
        """Batch ``b``'s null fits (and fixed-hsq parts) under its pattern's rotation."""
        g, Kva, U = rot
        batch = self.batches[b]
        pat = self.pats[g]
        Yb = pat.Y[:, batch.cols]
        with one_blas_thread():
            null = fit_null(Kva, U.T @ pat.X, (Yb.T @ U).T, tol=self.tol, fits=self.fits)
            parts = None
            if self.mode == "fixed" and self.k == 1:  # the GEMM path: for all chunks
                parts = fixed_parts(null, fixed_hsq(null, self.reml))
        return _Work(pat.geno_rows, U, null, batch.traits, batch.order, len(pat.ids), parts)

    def works(self, key: str, needed: set[int]) -> Iterator[tuple[int, _Work]]:
        """Every needed batch's work, batch by batch (a distributed run starts a batch's
        tasks while the next one is fitted)."""
        for rot, bs in self.rotations(key, needed):
            for b in bs:
                yield b, self.work(rot, b)


def scan(
    genotypes: GenotypeSource,
    pheno: pd.DataFrame | pd.Series,
    covar: pd.DataFrame | None = None,
    *,
    kinship: pd.DataFrame | dict[str, pd.DataFrame] | None = None,
    loco: bool = False,
    mode: Literal["fixed", "exact"] = "fixed",
    reml: bool = True,
    samples: Literal["strict", "drop"] = "strict",
    intercept: bool | None = None,
    center_kinship: bool = False,
    chunk_size: int = CHUNK_SIZE,
    trait_batch: int = TRAIT_BATCH,
    tol: float = 1e-7,
    keep: Literal["all", "peaks", "max"] = "all",
    threshold: float = 3.0,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    client: Any = None,
    threads: int | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
) -> pd.DataFrame | None:
    """LMM association test of every marker with every phenotype.

    Parameters
    ----------
    genotypes
        A source from :mod:`lmmlite.io.genotypes` (PLINK, BIMBAM, dosage table, probabilities).
    pheno
        Phenotypes indexed by sample id (NaN = missing; such samples are left out of that trait).
    covar
        Covariates indexed by sample id; an intercept is added unless a column is constant.
    kinship
        A kinship DataFrame (ids on both axes), or ``{chromosome: kinship}`` for LOCO. If
        omitted, the centred kinship (``loco=True``: LOCO kinships) is computed from
        ``genotypes`` first (one extra pass).
    loco
        Leave-one-chromosome-out: test each chromosome's markers with the kinship from the
        other chromosomes (and the null hsq estimated with it).
    mode
        ``"fixed"``: the null REML hsq held fixed (R/qtl2, FaST-LMM); ``"exact"``: hsq
        re-estimated at every marker, REML for the Wald test and ML for the LRT (GEMMA -lmm 4).
    reml
        ``False``: the Wald test's hsq is estimated by ML instead of REML (both modes).
    samples
        ``"strict"``: phenotyped samples without genotypes, kinship or covariates are an error
        naming them; ``"drop"``: they are left out with a warning (and listed in
        ``result.attrs["dropped_samples"]``).
    intercept
        As in :func:`lmmlite.heritability`.
    center_kinship
        Double-centre the kinship over each set of analysed samples before use, as GEMMA does
        (changes ML fits and betas slightly, not REML hsq when there is an intercept).
    chunk_size
        Markers read and tested at a time (memory: n x chunk_size doubles per chunk).
    trait_batch
        Traits tested together; a task is (trait batch x marker chunk). Memory per task is
        about 3 x 8 x trait_batch x chunk_size bytes (more with ``keep="all"``: the rows).
    tol
        Brent tolerance for the null fits and, in ``exact`` mode, the per-marker fits.
    keep
        ``"all"``: every (trait, marker) test; ``"peaks"``: per trait and chromosome the
        marker with the highest LOD, if it reaches ``threshold`` (R/qtl2's ``find_peaks``
        with ``peakdrop=Inf``); ``"max"``: per trait the marker with the highest LOD. With
        ``peaks`` and ``max`` memory stays bounded by the task size (ties: the first marker;
        a trait without a testable marker, e.g. all monomorphic, has no row).
    threshold
        LOD threshold of ``keep="peaks"``.
    out
        A folder (``NAME.parquet``) to write the results to as a Parquet dataset, one file per
        finished task, with a manifest of inputs and options (see :mod:`lmmlite._dataset`).
        ``pandas.read_parquet(out)`` reads it as one table once the run is complete.
    resume
        Complete an interrupted run in ``out``: only the missing tasks are computed. Refused
        (:class:`~lmmlite.exceptions.InputError`) if the inputs, options or lmmlite version
        differ from the manifest's.
    client
        A ``dask.distributed.Client``: tasks run on its workers, which read their genotype
        chunks from the input files; the eigendecompositions and null fits are computed here
        once and handed to the cluster. Results are the same numbers as the in-process run's
        (the default): every task runs single-threaded in both.
    threads
        In-process: tasks run at once in a thread pool (default: the CPU cores available),
        each single-threaded (BLAS and numba), so that a task computes the same numbers
        whatever the number of threads, and on a Dask worker. Not with ``client``.
    progress
        ``True``: a progress bar on stderr (tasks done, throughput, time left); a callable is
        called as ``progress(tasks_done, tasks_total)`` after each task.

    Returns
    -------
    pandas.DataFrame or None
        One row per (trait, marker) (``keep="all"``), or per trait (and chromosome) with
        ``max``/``peaks``; columns :data:`SCAN_COLUMNS` (``n_miss``: genotypes missing among
        the trait's samples and set to the marker mean); untestable markers (monomorphic or
        collinear with the covariates among the analysed samples) have NaN statistics and
        the reason in ``note``. ``None`` with ``keep="all"`` and ``out``: read the folder.
    """
    if mode not in ("fixed", "exact"):
        raise InputError(f"mode must be 'fixed' or 'exact'; got {mode!r}")
    if samples not in ("strict", "drop"):
        raise InputError(f"samples must be 'strict' or 'drop'; got {samples!r}")
    if keep not in ("all", "peaks", "max"):
        raise InputError(f"keep must be 'all', 'peaks' or 'max'; got {keep!r}")
    if chunk_size < 1 or trait_batch < 1:
        raise InputError(
            f"chunk_size and trait_batch must be positive; got {chunk_size}, {trait_batch}"
        )
    if resume and out is None:
        raise InputError("resume needs an output folder (out=...)")
    threads = task_threads(threads, client)
    kinship_arg = kinship
    P = _numeric_frame(pheno, "phenotypes", PhenotypeError)
    C = None if covar is None else _numeric_frame(covar, "covariates", InputError)
    geno_ids = pd.Index(genotypes.samples)
    if geno_ids.duplicated().any():
        raise SampleMismatchError(
            f"genotype file has duplicated sample ids: "
            f"{format_values(list(geno_ids[geno_ids.duplicated()].unique()))}"
        )
    chroms = list(dict.fromkeys(genotypes.markers["chr"].astype(str)))
    if kinship is None:
        kinship = compute_kinship(
            genotypes,
            method="probs" if genotypes.k > 1 else "centered",
            loco=loco,
            chunk_size=chunk_size,
        )
    if isinstance(kinship, dict):
        kin = {str(c): _kinship_frame(K) for c, K in kinship.items()}
        unknown = [c for c in chroms if c not in kin]
        if unknown:
            raise KinshipError(
                f"LOCO kinships are given for chromosomes {format_values(sorted(kin))} but the "
                f"genotypes have markers on {format_values(unknown)}"
            )
        loco = True
    else:
        if loco:
            raise InputError(
                "loco=True needs a dict of kinships per chromosome (or none, to "
                "compute them from the genotypes)"
            )
        kin = {"all": _kinship_frame(kinship)}
    any_K = next(iter(kin.values()))
    available = {"genotypes": set(geno_ids), "kinship": set(any_K.index)}
    if C is not None:
        available["covariates"] = set(C.index)
    P = P[P.notna().any(axis=1)]  # samples with no observed phenotype are not analysed at all
    ids, dropped = _match(P.index, available, samples)
    P = P.loc[ids]
    X_all = _design(C, ids, intercept)
    cov_names = list(X_all.columns)
    observed = P.notna().to_numpy()
    values = P.to_numpy()
    trait_names = np.array([str(c) for c in P.columns], dtype=object)
    pats = []
    positions = []  # each pattern's traits' positions among the phenotypes
    for cols in pattern_groups(observed):
        mask = observed[:, cols[0]]
        traits = list(trait_names[cols])
        pid = [str(i) for i in ids[mask]]
        n, p = len(pid), X_all.shape[1]
        if n <= p + genotypes.k:
            raise PhenotypeError(
                f"phenotype(s) {format_values(traits)} have n = {n} observed "
                f"samples, too few for {p} covariates and a marker"
            )
        Y = values[np.ix_(mask, cols)]
        X = X_all.to_numpy()[mask]
        check_design(X, cov_names)
        check_phenotypes(Y - X @ np.linalg.lstsq(X, Y, rcond=None)[0], Y, traits)
        pats.append(_Pattern(pid, geno_ids.get_indexer(pid), traits, Y, X))
        positions.append(cols)
    markers = genotypes.markers
    batches: list[_Batch] = []
    for g, pat in enumerate(pats):
        for s0 in range(0, len(pat.traits), trait_batch):
            cols = np.arange(s0, min(len(pat.traits), s0 + trait_batch))
            names = pat.traits[s0 : s0 + trait_batch]
            batches.append(_Batch(g, cols, names, positions[g][cols]))
    runs = chromosome_runs(markers["chr"].to_numpy(), chunk_size)
    chunk_key = [str(markers["chr"].iat[a]) if loco else "all" for a, _ in runs]
    tasks = [_Task(b, c, a, z) for c, (a, z) in enumerate(runs) for b in range(len(batches))]
    dataset = None
    done: set[str] = set()
    if out is not None:
        manifest = {
            "inputs": {
                "genotypes": genotypes.fingerprint(),
                "phenotypes": frame_sha256(pheno if isinstance(pheno, pd.DataFrame) else P),
                "covariates": frame_sha256(covar),
                "kinship": "computed from the genotypes"
                if kinship_arg is None
                else {str(c): frame_sha256(K) for c, K in kin.items()},
                "samples_analysed": len(ids),
            },
            "options": {
                "mode": mode,
                "reml": reml,
                "loco": loco,
                "samples": samples,
                "intercept": intercept,
                "center_kinship": center_kinship,
                "chunk_size": chunk_size,
                "trait_batch": trait_batch,
                "tol": tol,
                "keep": keep,
                "threshold": threshold,
            },
            "tasks": len(tasks),
        }
        dataset = ScanDataset(out, manifest, resume=resume)
        done = dataset.done()
    todo = [task for task in tasks if task.name not in done]
    chrom_code = pd.factorize(markers["chr"].astype(str))[0]
    collect = _Collector(keep, chrom_code, in_memory=dataset is None)
    if dataset is not None and keep != "all":
        for frame in dataset.task_frames():
            collect.add(frame)
    bar = Progress(len(tasks), done=len(tasks) - len(todo), report=progress)
    opts = {"k": genotypes.k, "mode": mode, "reml": reml, "keep": keep}

    prep = _Prepare(pats, batches, kin, center_kinship, tol, mode, reml, genotypes.k)
    try:
        if client is None:
            _run_local(
                genotypes, todo, chunk_size, chunk_key, prep, opts, dataset, collect, bar, threads
            )
        else:
            from .distributed import run_scan_tasks

            run_scan_tasks(
                client, genotypes, todo, chunk_key, prep.works, opts, dataset, collect, bar
            )
    finally:
        bar.close()
    if dataset is not None:
        dataset.check_complete([task.name for task in tasks])
    if dataset is not None and keep == "all":
        dataset.publish_all()
        return None
    result = _finish(collect.frame(), keep, threshold, trait_names, markers, chrom_code)
    if dataset is not None:
        dataset.publish_table(result, keep)
    result.attrs["dropped_samples"] = dropped
    result.attrs["mode"] = mode
    result.attrs["keep"] = keep
    return result


def _key_order(todo: list[_Task], chunk_key: list[str]) -> dict[str, list[_Task]]:
    by_key: dict[str, list[_Task]] = {}
    for task in todo:
        by_key.setdefault(chunk_key[task.chunk], []).append(task)
    return by_key


def _run_local(genotypes, todo, chunk_size, chunk_key, prep, opts, dataset, collect, bar, threads):
    """In-process, trait batch by trait batch (memory holds one batch's null fits, whatever
    the number of traits): each batch's chunks are read (text formats: one pass over the
    file per batch) and tested by ``threads`` single-threaded tasks (:mod:`lmmlite._tasks`),
    while the next batch is fitted. A pattern's eigendecomposition waits for the pool to be
    idle, so that it may use every core, as in a Dask run's client."""
    with LocalTasks(threads, collect.add, bar) as pool:
        for key, key_tasks in _key_order(todo, chunk_key).items():
            by_batch: dict[int, dict[int, _Task]] = {}
            for task in key_tasks:
                by_batch.setdefault(task.batch, {})[task.start] = task
            for rot, bs in prep.rotations(key, set(by_batch)):
                with pool.single_threaded():
                    for b in bs:
                        work = prep.work(rot, b)
                        for tests, args in _batch_tasks(
                            genotypes, chunk_size, work, by_batch[b], opts, dataset
                        ):
                            pool.submit(tests, _task_output, *args)
                        del work


def _batch_tasks(genotypes, chunk_size, work, mine, opts, dataset):
    """A trait batch's in-process tasks (``mine``: by first marker) with their chunks read:
    ``(tests, arguments of _task_output)``. Text formats are read in one sequential pass,
    skipping the chunks done and stopping after the last one needed."""
    if genotypes.random_access:
        blocks: Any = ((a, genotypes.read(a, t.stop)) for a, t in mine.items())
    else:
        blocks = genotypes.chunks(chunk_size)
    last = max(mine)
    for start, block in blocks:
        task = mine.get(start)
        if task is not None:
            path = None if dataset is None else dataset.task_path(task.name)
            meta = genotypes.markers.iloc[task.start : task.stop]
            tests = len(work.traits) * (task.stop - task.start)
            yield tests, (work, block, meta, task.start, opts, path)
        if start >= last:
            break


class _Collector:
    """Results kept in memory: every frame (keep="all" without a folder), or a running
    reduction to each trait's (and chromosome's) best rows."""

    def __init__(self, keep: str, chrom_code: np.ndarray, *, in_memory: bool) -> None:
        self.keep = keep
        self.chrom_code = chrom_code
        self.active = in_memory or keep != "all"
        self.frames: list[pd.DataFrame] = []
        self.rows = 0
        self.limit = _REDUCE_ROWS

    def add(self, frame: pd.DataFrame | int) -> None:
        """A task's frame (a row count: the rows stayed on disk)."""
        if not self.active or not isinstance(frame, pd.DataFrame):
            return
        self.frames.append(frame)
        self.rows += len(frame)
        if self.keep != "all" and self.rows > self.limit:
            self.frames = [_reduce_best(self.frame(), self.keep, self.chrom_code)]
            self.rows = len(self.frames[0])
            # the reduced table (a row per trait, or per trait and chromosome) may itself be
            # large: reduce again only once it has doubled, not after every task
            self.limit = max(_REDUCE_ROWS, 2 * self.rows)

    def frame(self) -> pd.DataFrame:
        if not self.frames:
            numbers = ["n", "af", "beta", "se", *_STATS, "n_miss"]
            cols = [*SCAN_COLUMNS[:4], *numbers, "note"] if self.keep == "all" else numbers
            return pd.DataFrame(columns=[*cols, "_t", "_m"])
        if self.keep == "all":
            return pd.concat(self.frames, ignore_index=True)
        # numbers only (see _run_task): column-wise concatenation, far quicker than pandas'
        return pd.DataFrame(
            {c: np.concatenate([f[c].to_numpy() for f in self.frames]) for c in self.frames[0]}
        )


#: Rows of best-per-task results held before they are reduced (bounds keep="max"/"peaks").
_REDUCE_ROWS = 1_000_000
