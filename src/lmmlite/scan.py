"""Genome scan with sample ids: ``lmmlite.scan`` (the pandas layer over :mod:`lmmlite.core.scan`).

Samples are matched by id between genotypes, phenotypes, covariates and kinship. Phenotypes are
grouped by missing-data pattern; each pattern (and, with LOCO, each chromosome) gets its own
eigendecomposition and null model, fitted once and reused for every marker. Genotypes are read
in chunks, imputed by the marker mean over the analysed samples (as GEMMA does), rotated and
tested.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd

from ._checks import check_design, check_kinship, check_phenotypes, clip_eigenvalues, format_values
from .core.scan import NullModel, fit_null, scan_chunk
from .exceptions import (
    InputError,
    KinshipError,
    PhenotypeError,
    SampleMismatchError,
    SamplesDroppedWarning,
)
from .io.genotypes import CHUNK_SIZE, GenotypeSource
from .kinship import kinship as compute_kinship
from .labeled import _design, _kinship_frame, _numeric_frame

__all__ = ["SCAN_COLUMNS", "scan"]

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
    """Samples and traits sharing a missing-data pattern, with their rotations (cached)."""

    def __init__(
        self, ids: list[str], geno_rows: np.ndarray, traits: list[str], Y: np.ndarray, X: np.ndarray
    ) -> None:
        self.ids = ids
        self.geno_rows = geno_rows
        self.traits = traits
        self.Y = Y
        self.X = X
        self.cache: dict[str, tuple[np.ndarray, NullModel]] = {}

    def model(
        self, key: str, K: pd.DataFrame, tol: float, center: bool
    ) -> tuple[np.ndarray, NullModel]:
        if key not in self.cache:
            Ks = check_kinship(K.loc[self.ids, self.ids].to_numpy())
            if center:  # GEMMA: K <- P K P, P = I - 11'/n, over the analysed samples
                Ks = Ks - Ks.mean(axis=0, keepdims=True)
                Ks = Ks - Ks.mean(axis=1, keepdims=True)
            evals, evecs = np.linalg.eigh(Ks)
            Kva, _ = clip_eigenvalues(evals[::-1].copy())
            U = np.ascontiguousarray(evecs[:, ::-1])
            null = fit_null(Kva, U.T @ self.X, (self.Y.T @ U).T, tol=tol)
            self.cache = {key: (U, null)}  # one chromosome at a time: bounded memory
        return self.cache[key]


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
    tol: float = 1e-7,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
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
    tol
        Brent tolerance for the null fits and, in ``exact`` mode, the per-marker fits.
    progress
        Called as ``progress(markers_done, markers_total)`` after each chunk.

    Returns
    -------
    pandas.DataFrame
        One row per (trait, marker), columns :data:`SCAN_COLUMNS` (``n_miss``: genotypes
        missing among the trait's samples and set to the marker mean); untestable markers
        (monomorphic or collinear with the covariates among the analysed samples) have NaN
        statistics and the reason in ``note``.
    """
    if mode not in ("fixed", "exact"):
        raise InputError(f"mode must be 'fixed' or 'exact'; got {mode!r}")
    if samples not in ("strict", "drop"):
        raise InputError(f"samples must be 'strict' or 'drop'; got {samples!r}")
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
    patterns, group = np.unique(observed.T, axis=0, return_inverse=True)
    group = np.asarray(group).reshape(-1)
    pats = []
    for g in range(patterns.shape[0]):
        mask = patterns[g]
        traits = [str(P.columns[j]) for j in np.flatnonzero(group == g)]
        pid = [str(i) for i in ids[mask]]
        n, p = len(pid), X_all.shape[1]
        if n <= p + genotypes.k:
            raise PhenotypeError(
                f"phenotype(s) {format_values(traits)} have n = {n} observed "
                f"samples, too few for {p} covariates and a marker"
            )
        Y = P.loc[pid, traits].to_numpy()
        X = X_all.loc[pid].to_numpy()
        check_design(X, cov_names)
        check_phenotypes(Y - X @ np.linalg.lstsq(X, Y, rcond=None)[0], Y, traits)
        pats.append(_Pattern(pid, geno_ids.get_indexer(pid), traits, Y, X))
    markers = genotypes.markers
    frames = []
    total = len(markers)
    done = 0
    for start, block in genotypes.chunks(chunk_size):
        m = block.shape[2]
        c = str(markers["chr"].iat[start])
        meta = markers.iloc[start : start + m]
        for pat in pats:
            key = c if loco else "all"
            U, null = pat.model(key, kin[key], tol, center_kinship)
            G = block[pat.geno_rows]  # (n, k, m)
            if genotypes.k > 1:
                G = G[:, 1:, :]  # probabilities sum to 1: drop the first column
            missing = np.isnan(G)
            n_miss = missing.any(axis=1).sum(axis=0)  # samples imputed, per marker
            mean = np.nanmean(np.where(missing.all(axis=0), 0.0, G), axis=0)
            G = np.where(missing, mean[None], G)
            mono = np.all(np.ptp(G, axis=0) == 0, axis=0)
            # rotate straight into the marker-major layout the kernels use: (U'G)' = G'U
            kk = G.shape[1]
            Gt = G[:, 0, :].T if kk == 1 else G.transpose(2, 1, 0).reshape(m * kk, -1)
            Mt = (Gt @ U).reshape(m, kk, -1)
            res = scan_chunk(null, Mt, mode=mode, reml=reml)
            frames.append(_table(res, pat, meta, mean, mono, n_miss, genotypes.k))
        done += m
        if progress is not None:
            progress(done, total)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCAN_COLUMNS)
    # rows: trait-major in phenotype order, markers in file order
    order = {t: i for i, t in enumerate(P.columns.astype(str))}
    out["_t"] = out["trait"].map(order)
    out["_m"] = out.pop("_marker_index")
    out = out.sort_values(["_t", "_m"], kind="stable").drop(columns=["_t", "_m"])
    out = out.reset_index(drop=True)
    out.attrs["dropped_samples"] = dropped
    out.attrs["mode"] = mode
    return out


def _table(
    res: dict[str, Any],
    pat: _Pattern,
    meta: pd.DataFrame,
    mean: np.ndarray,
    mono: np.ndarray,
    n_miss: np.ndarray,
    k: int,
) -> pd.DataFrame:
    m = len(meta)
    t = len(pat.traits)
    rep = lambda v: np.repeat(np.asarray(v), t)  # noqa: E731 - marker-major, trait-minor
    note = np.where(res["testable"], "", np.where(mono, "monomorphic", "collinear with covariates"))
    data: dict[str, Any] = {
        "trait": np.tile(np.array(pat.traits, dtype=object), m),
        "chr": rep(meta["chr"].to_numpy()),
        "pos": rep(meta["pos"].to_numpy()),
        "marker": rep(meta["marker"].to_numpy()),
        "n": len(pat.ids),
        "af": rep(mean[0] / 2.0 if k == 1 else np.full(m, np.nan)),
    }
    beta = res["beta"].reshape(m * t, -1)
    se = res["se"].reshape(m * t, -1)
    if k == 1:
        data["beta"] = beta[:, 0]
        data["se"] = se[:, 0]
    else:
        data["beta"] = np.nan
        data["se"] = np.nan
    for key in ("lod", "p_wald", "p_lrt", "p_score", "hsq", "loglik"):
        data[key] = res[key].reshape(m * t)
    data["n_miss"] = rep(n_miss)
    data["note"] = rep(note)
    if k > 1:
        for j in range(beta.shape[1]):
            data[f"beta_{j + 2}"] = beta[:, j]
            data[f"se_{j + 2}"] = se[:, j]
    data["_marker_index"] = rep(meta.index.to_numpy())
    return pd.DataFrame(data)
