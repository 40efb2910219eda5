"""Genome scan with sample ids: :func:`scan`, the pandas layer over :mod:`lmmlite.core.scan`.

Samples are matched by id between genotypes, phenotypes, covariates and kinship. Phenotypes are
grouped by missing-data pattern; each pattern (and, with LOCO, each chromosome) gets its own
eigendecomposition and null model, fitted once and reused for every marker. Genotypes are read
in chunks, imputed by the marker mean over the analysed samples (as GEMMA does), rotated and
tested, as (trait batch x marker chunk) tasks planned by :class:`lmmlite.planner.ScanPlan`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, Literal

import numpy as np
import pandas as pd

from ._dataset import ScanDataset, frame_sha256
from ._progress import Progress
from .alignment import Alignment, align, kinship_frame, numeric_frame, sample_ids
from .core.checks import format_values
from .core.results import CHUNK_STATS
from .distributed import executor_for
from .exceptions import InputError, KinshipError, PhenotypeError
from .io.genotypes import GenotypeSource
from .kinship import kinship as compute_kinship
from .options import ScanOptions
from .planner import ScanPlan
from .results import SCAN_COLUMNS

__all__ = ["SCAN_COLUMNS", "scan"]

_DEFAULT = ScanOptions()


def scan(
    genotypes: GenotypeSource,
    pheno: pd.DataFrame | pd.Series,
    covar: pd.DataFrame | None = None,
    *,
    kinship: pd.DataFrame | dict[str, pd.DataFrame] | bool | None = None,
    loco: bool = False,
    xcovar: pd.DataFrame | None = None,
    intcovar: Sequence[str] = (),
    kinship_scale: float = _DEFAULT.kinship_scale,
    mode: Literal["fixed", "exact"] = _DEFAULT.mode,
    hsq_grid: float | None = _DEFAULT.hsq_grid,
    reml: bool = _DEFAULT.reml,
    samples: Literal["strict", "drop"] = _DEFAULT.samples,
    intercept: bool | None = _DEFAULT.intercept,
    center_kinship: bool = _DEFAULT.center_kinship,
    chunk_size: int = _DEFAULT.chunk_size,
    trait_batch: int = _DEFAULT.trait_batch,
    tol: float = _DEFAULT.tol,
    keep: Literal["all", "peaks", "max"] = _DEFAULT.keep,
    threshold: float = _DEFAULT.threshold,
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
        A source from :mod:`lmmlite.io.genotypes` (PLINK, BIMBAM, dosage table, probabilities,
        or arrays in memory: :class:`~lmmlite.io.genotypes.ArraySource`).
    pheno
        Phenotypes indexed by sample id (NaN = missing; such samples are left out of that trait).
    covar
        Covariates indexed by sample id; an intercept is added unless a column is constant.
    kinship
        A kinship DataFrame (ids on both axes), or ``{chromosome: kinship}`` for LOCO. If
        omitted, the centred kinship (``loco=True``: LOCO kinships) is computed from
        ``genotypes`` first (one extra pass); for probabilities, R/qtl2's kinship
        (:func:`lmmlite.kinship`, ``method="probs"``). ``False``: no kinship, a plain linear
        model (R/qtl2's Haley-Knott regression; the ``hsq`` column is 0).
    loco
        Leave-one-chromosome-out: test each chromosome's markers with the kinship from the
        other chromosomes (and the null hsq estimated with it).
    xcovar
        R/qtl2's ``Xcovar`` (``get_x_covar``: sex, cross direction), indexed by sample id: on
        the X chromosome (``genotypes.x_chromosomes``) the null model adds these covariates
        (and its hsq is estimated with them), and the LOD is R/qtl2's: the alternative
        (covariates and the marker) against that null. The other statistics test the marker
        given the covariates and Xcovar (the same test where, as with genotype
        probabilities, Xcovar lies in the span of the marker's columns). Fixed mode only.
    intcovar
        Names of ``covar`` columns that interact with the marker (R/qtl2's ``intcovar``,
        GEMMA's ``-gxe``): the alternative model adds the marker's products with them, and
        ``lod`` tests marker and products against the null (R/qtl2's LOD); the columns
        ``lod_gxe``, ``beta_gxe``, ``se_gxe``, ``p_wald_gxe``, ``p_lrt_gxe``, ``p_score_gxe``
        test the products given the marker (GEMMA's ``-gxe``: in exact mode the Wald test at
        the full model's REML hsq, the LRT between the ML fits of both models, the score
        test at the null model's ML hsq).
    kinship_scale
        The genetic covariance is hsq x kinship_scale x K: 1 (R/lmmlite, GEMMA) or 2 (R/qtl2,
        which fits 2K). It changes hsq, not the LODs of a fixed-hsq scan.
    mode
        ``"fixed"``: the null REML hsq held fixed (R/qtl2, FaST-LMM); ``"exact"``: hsq
        re-estimated at every marker, REML for the Wald test and ML for the LRT (GEMMA -lmm 4).
    hsq_grid
        ``fixed`` mode, opt-in: hold each trait's null hsq rounded to the nearest multiple of
        this step (e.g. 0.01; at most ``HSQ_MAX`` = 1e5/(1+1e5)), so that traits sharing a grid
        value share their weighted marker products (BulkLMM.jl's idea): faster for many traits
        with different heritabilities. The ``hsq`` column then holds the rounded value (the
        null fit is located to a ten-thousandth of the step before rounding). The
        LOD error this implies is measured in ``bench/bench_eqtl.py`` and documented in the
        README. None (default): each trait's own null hsq, exactly.
    reml
        ``False``: the Wald test's hsq is estimated by ML instead of REML (both modes).
    samples
        ``"strict"``: phenotyped samples without genotypes, kinship or covariates are an error
        naming them; ``"drop"``: they are left out with a warning naming them (and listed in
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
    opts = ScanOptions(
        mode=mode,
        hsq_grid=hsq_grid,
        reml=reml,
        keep=keep,
        threshold=threshold,
        chunk_size=chunk_size,
        trait_batch=trait_batch,
        tol=tol,
        center_kinship=center_kinship,
        samples=samples,
        intercept=intercept,
        kinship_scale=kinship_scale,
        intcovar=tuple(intcovar),
    )
    if resume and out is None:
        raise InputError("resume needs an output folder (out=...)")
    executor = executor_for(client, threads)
    # check and align
    inputs = {"pheno": pheno, "covar": covar, "xcovar": xcovar, "kinship": kinship}
    P, aligned, kin, Xc = prepare_scan(genotypes, inputs, loco, opts)
    # plan
    plan = ScanPlan(genotypes, aligned, kin, opts, Xc)
    dataset = None
    if out is not None:
        record = scan_manifest(genotypes, inputs, P, kin, aligned, opts)
        dataset = ScanDataset(out, {**record, "tasks": len(plan.tasks)}, resume=resume)
    done = set() if dataset is None else dataset.done()
    todo = [task for task in plan.tasks if task.name not in done]
    chrom_code = pd.factorize(genotypes.markers["chr"].astype(str))[0]
    collect = _Collector(opts.keep, chrom_code, in_memory=dataset is None)
    if dataset is not None and opts.keep != "all":
        for frame in dataset.task_frames():
            collect.add(frame)
    # run
    bar = Progress(len(plan.tasks), done=len(plan.tasks) - len(todo), report=progress)
    task_path = None if dataset is None else dataset.task_path
    try:
        stages = plan.stages(todo, read_here=executor.shares_memory, task_path=task_path)
        executor.run(stages, collect.add, bar)
    finally:
        bar.close()
    # finish
    return _finish(collect, dataset, plan, aligned, opts)


def prepare_scan(
    genotypes: Any, inputs: dict[str, Any], loco: bool, opts: ScanOptions
) -> tuple[pd.DataFrame, Alignment, dict[str, pd.DataFrame] | None, pd.DataFrame | None]:
    """Check a scan's inputs (``pheno``, ``covar``, ``xcovar``, ``kinship``, as the API takes
    them) and align them: the phenotypes as a checked table, the alignment, the kinships
    (None: no kinship) and Xcovar over the aligned samples."""
    P, C, Xc, kin = _check_inputs(
        genotypes, inputs["pheno"], inputs["covar"], inputs["xcovar"], inputs["kinship"], loco, opts
    )
    available = {"genotypes": set(genotypes.samples)}
    if kin is not None:
        available["kinship"] = set(next(iter(kin.values())).index)
    if Xc is not None:
        available["Xcovar"] = set(Xc.index)
    aligned = align(
        P,
        C,
        available,
        samples=opts.samples,
        option="samples='drop' (--samples drop)",
        intercept=opts.intercept,
        extra_columns=max(1, genotypes.k - 1) * (1 + len(opts.intcovar)),
    )
    return P, aligned, kin, None if Xc is None else Xc.loc[aligned.ids]


def _check_inputs(
    genotypes: Any,
    pheno: Any,
    covar: Any,
    xcovar: Any,
    kinship: Any,
    loco: bool,
    opts: ScanOptions,
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None, dict[str, pd.DataFrame] | None]:
    """The inputs as checked tables: phenotypes, covariates, Xcovar and the kinships."""
    _check_source(genotypes)
    P = numeric_frame(pheno, "phenotypes", PhenotypeError)
    C = None if covar is None else numeric_frame(covar, "covariates", InputError)
    unknown = [c for c in opts.intcovar if C is None or c not in C.columns]
    if unknown:
        have = [] if C is None else list(C.columns)
        raise InputError(
            f"intcovar {format_values(unknown)} must name covariate columns; the covariates "
            f"are {format_values(have) or 'none'}"
        )
    Xc = None
    if xcovar is not None:
        Xc = numeric_frame(xcovar, "Xcovar", InputError)
        if opts.mode != "fixed":
            raise InputError("xcovar (R/qtl2's X chromosome model) needs mode='fixed'")
        if not genotypes.x_chromosomes:
            raise InputError(
                "xcovar is given but no chromosome of the genotypes is the X chromosome "
                "(named X; PLINK: X or 23; probabilities: is_x_chr)"
            )
    if kinship is False:
        if loco:
            raise InputError("loco=True needs a kinship; kinship=False is a plain linear model")
        return P, C, Xc, None
    return P, C, Xc, _kinships(genotypes, kinship, loco, opts)


def _check_source(genotypes: Any) -> None:
    if not isinstance(genotypes, GenotypeSource):
        raise InputError(
            "genotypes must be a genotype source of lmmlite.io.genotypes (PlinkSource, "
            "BimbamSource, DosageSource, ProbsSource, or ArraySource(G, samples, markers) for "
            f"arrays in memory); got {type(genotypes).__name__}"
        )
    sample_ids(genotypes.samples, "genotype file")  # duplicated ids are an error


def _kinships(
    genotypes: GenotypeSource, kinship: Any, loco: bool, opts: ScanOptions
) -> dict[str, pd.DataFrame]:  # (None: no kinship, handled by the caller)
    """The kinships of the scan: ``{"all": K}``, or ``{chromosome: K}`` with LOCO (given, or
    computed from the genotypes)."""
    chroms = list(dict.fromkeys(genotypes.markers["chr"].astype(str)))
    if kinship is None:
        method = "probs" if genotypes.k > 1 else "centered"
        kinship = compute_kinship(genotypes, method=method, loco=loco, chunk_size=opts.chunk_size)
    if isinstance(kinship, dict):
        kin = {str(c): kinship_frame(K) for c, K in kinship.items()}
        unknown = [c for c in chroms if c not in kin]
        if unknown:
            raise KinshipError(
                f"LOCO kinships are given for chromosomes {format_values(sorted(kin))} but the "
                f"genotypes have markers on {format_values(unknown)}"
            )
        return kin
    if loco:
        raise InputError(
            "loco=True needs a dict of kinships per chromosome (or none, to "
            "compute them from the genotypes)"
        )
    return {"all": kinship_frame(kinship)}


def scan_manifest(
    genotypes: GenotypeSource,
    inputs: dict[str, Any],
    P: pd.DataFrame,
    kin: dict[str, pd.DataFrame] | None,
    aligned: Alignment,
    opts: ScanOptions,
) -> dict[str, Any]:
    """A dataset folder's record of a scan: input checksums and options."""
    pheno = inputs["pheno"]
    if inputs["kinship"] is None:
        kinship: Any = "computed from the genotypes"
    elif kin is None:
        kinship = "none (a linear model)"
    else:
        kinship = {str(c): frame_sha256(K) for c, K in kin.items()}
    record = {
        "inputs": {
            "genotypes": genotypes.fingerprint(),
            "phenotypes": frame_sha256(pheno if isinstance(pheno, pd.DataFrame) else P),
            "covariates": frame_sha256(inputs["covar"]),
            "xcovar": frame_sha256(inputs["xcovar"]),
            "kinship": kinship,
            "samples_analysed": len(aligned.ids),
        },
        "options": {**asdict(opts), "loco": kin is not None and "all" not in kin},
    }
    return json.loads(json.dumps(record))  # as read back from the file (tuples as lists)


def _finish(
    collect: _Collector,
    dataset: ScanDataset | None,
    plan: ScanPlan,
    aligned: Alignment,
    opts: ScanOptions,
) -> pd.DataFrame | None:
    """Publish a dataset folder, and/or return the table."""
    if dataset is not None:
        dataset.check_complete([task.name for task in plan.tasks])
        if opts.keep == "all":
            dataset.publish_all()
            return None
    markers = plan.source.markers
    names = np.array(aligned.traits, dtype=object)
    result = _table(collect.frame(), opts, names, markers, collect.chrom_code)
    if dataset is not None:
        dataset.publish_table(result, opts.keep)
    result.attrs["dropped_samples"] = aligned.dropped
    result.attrs["mode"] = opts.mode
    result.attrs["keep"] = opts.keep
    return result


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


def _table(
    frame: pd.DataFrame,
    opts: ScanOptions,
    names: np.ndarray,
    markers: pd.DataFrame,
    chrom_code: np.ndarray,
) -> pd.DataFrame:
    """The result table: reduced (``max``/``peaks``), labelled and in (trait, marker) order."""
    keep = opts.keep
    if keep != "all":
        frame = _reduce_best(frame, keep, chrom_code)
        if keep == "peaks":
            frame = frame[frame["lod"].to_numpy() >= opts.threshold]
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


#: Rows of best-per-task results held before they are reduced (bounds keep="max"/"peaks").
_REDUCE_ROWS = 1_000_000


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
            numbers = ["n", "af", "beta", "se", *CHUNK_STATS, "n_miss"]
            cols = [*SCAN_COLUMNS[:4], *numbers, "note"] if self.keep == "all" else numbers
            return pd.DataFrame(columns=[*cols, "_t", "_m"])
        if self.keep == "all":
            return pd.concat(self.frames, ignore_index=True)
        # numbers only (see planner._task_frame): column-wise concatenation, quicker than
        # pandas'; chunks with other genotype columns (the X chromosome's) fill with NaN
        columns = list(dict.fromkeys(c for f in self.frames for c in f.columns))

        def column(f: pd.DataFrame, c: str) -> np.ndarray:
            return f[c].to_numpy() if c in f.columns else np.full(len(f), np.nan)

        return pd.DataFrame(
            {c: np.concatenate([column(f, c) for f in self.frames]) for c in columns}
        )
