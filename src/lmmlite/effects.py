"""Effects along a chromosome: R/qtl2's ``scan1coef``.

At each position the phenotype is regressed, by generalised least squares under the LMM with
hsq held at the null model's REML estimate (or ordinary least squares without a kinship), on
*all* the genotype (or allele) probability columns and the covariates, without an intercept; with
``zerosum`` (the default) the genotype effects are then centred and their mean reported as the
``intercept``. Columns that are linearly dependent on the others (on the X chromosome, the
males' genotypes when sex is a covariate) are dropped by a QR decomposition with column
pivoting, as R/qtl2 does, and get NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import linalg

from .alignment import align, kinship_frame, numeric_frame
from .core.checks import check_kinship
from .core.lmm import eigh_decreasing
from .core.scan import fit_null
from .exceptions import InputError, PhenotypeError
from .io.genotypes import GenotypeSource

__all__ = ["scan_coef"]

#: A pivot of the QR decomposition below this fraction of the largest one marks a dependent
#: column (R/qtl2's tolerance for its Eigen ColPivHouseholderQR).
PIVOT_RTOL = 1e-12


def scan_coef(
    genotypes: GenotypeSource,
    pheno: pd.DataFrame | pd.Series,
    covar: pd.DataFrame | None = None,
    *,
    chromosome: str,
    kinship: pd.DataFrame | bool = False,
    kinship_scale: float = 1.0,
    zerosum: bool = True,
    samples: str = "strict",
) -> pd.DataFrame:
    """Genotype (or allele) effects and their standard errors at each position of a chromosome.

    Parameters
    ----------
    genotypes
        Genotype or allele probabilities (k columns per locus), or dosages.
    pheno
        One phenotype, indexed by sample id (NaN: the sample is left out).
    covar
        Additive covariates (no intercept is added: the genotype columns sum to one).
    chromosome
        The chromosome to scan.
    kinship
        The kinship (for a LOCO scan, the chromosome's LOCO kinship); ``False``: no kinship
        (ordinary least squares, R/qtl2's Haley-Knott ``scan1coef``).
    kinship_scale
        As in :func:`lmmlite.scan` (2 for R/qtl2's convention).
    zerosum
        Centre the genotype effects and report their mean as ``intercept`` (R/qtl2's default).
    samples
        As in :func:`lmmlite.scan`.

    Returns
    -------
    pandas.DataFrame
        Index ``marker``; columns ``chr``, ``pos``, one effect per genotype column (named by
        the genotypes where the source has names), one per covariate, ``intercept`` (with
        ``zerosum``), then ``se_<name>`` for each, and ``hsq``.
    """
    P = numeric_frame(pheno, "phenotype", PhenotypeError)
    if P.shape[1] != 1:
        raise InputError(f"scan_coef takes one phenotype; got {P.shape[1]} columns")
    C = None if covar is None else numeric_frame(covar, "covariates", InputError)
    chrom = genotypes.markers["chr"].astype(str).to_numpy()
    where = np.flatnonzero(chrom == str(chromosome))
    if where.size == 0:
        raise InputError(f"no marker on chromosome {chromosome!r}")
    available = {"genotypes": set(genotypes.samples)}
    K = None if kinship is False else kinship_frame(kinship)
    if K is not None:
        available["kinship"] = set(K.index)
    aligned = align(P, C, available, samples=samples, option="samples='drop'", intercept=True)
    pat = aligned.patterns[0]
    X = pat.X[:, 1:]  # the covariates without the intercept (the genotypes carry it)
    y = pat.Y[:, 0]
    Kva, U, hsq = _rotation_and_hsq(K, pat, kinship_scale)
    w = 1.0 / (hsq * Kva + 1.0 - hsq)
    rows = pd.Index(genotypes.samples).get_indexer(pd.Index(pat.ids))
    block = genotypes.read(int(where[0]), int(where[-1]) + 1)[rows]  # (n, k, m)
    names = _genotype_names(genotypes, str(chromosome), block.shape[1])
    covs = aligned.covariates[1:]
    out = [_gls(block[:, :, j], X, y, U, w) for j in range(block.shape[2])]
    coef = np.array([o[0] for o in out])
    se = np.array([o[1] for o in out])
    return _table(genotypes, where, names, covs, coef, se, block.shape[1], zerosum, hsq)


def _rotation_and_hsq(
    K: pd.DataFrame | None, pat: object, scale: float
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """The kinship's eigendecomposition over the samples and the null REML hsq (with the
    intercept and the covariates); no kinship: no rotation, hsq 0."""
    ids = pat.ids  # type: ignore[attr-defined]
    if K is None:
        return np.zeros(len(ids)), None, 0.0
    Kva, evecs, _ = eigh_decreasing(check_kinship(scale * K.loc[ids, ids].to_numpy()))
    U = np.ascontiguousarray(evecs)
    Y = pat.Y  # type: ignore[attr-defined]
    null = fit_null(Kva, U.T @ pat.X, (Y.T @ U).T, fits=("reml",))  # type: ignore[attr-defined]
    return Kva, U, float(null.hsq_reml[0])


def _gls(
    G: np.ndarray, X: np.ndarray, y: np.ndarray, U: np.ndarray | None, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Effects of [G, X] (no intercept) on y by weighted least squares in the rotated space,
    dependent columns (QR with column pivoting) NaN; and their standard errors."""
    A = np.column_stack([G, X])
    if U is not None:
        A, y = U.T @ A, U.T @ y
    sw = np.sqrt(w)
    Aw, yw = A * sw[:, None], y * sw
    Q, R, piv = linalg.qr(Aw, mode="economic", pivoting=True)
    diag = np.abs(np.diag(R))
    r = int(np.sum(diag > PIVOT_RTOL * diag[0])) if diag.size and diag[0] > 0 else 0
    coef = np.full(A.shape[1], np.nan)
    se = np.full(A.shape[1], np.nan)
    if r == 0:
        return coef, se
    Rr = R[:r, :r]
    z = Q[:, :r].T @ yw
    b = linalg.solve_triangular(Rr, z)
    resid = yw - Aw[:, piv[:r]] @ b
    sigma2 = float(resid @ resid) / (A.shape[0] - r)
    Rinv = linalg.solve_triangular(Rr, np.eye(r))
    coef[piv[:r]] = b
    se[piv[:r]] = np.sqrt(sigma2 * np.sum(Rinv * Rinv, axis=1))
    return coef, se


def _genotype_names(genotypes: GenotypeSource, chromosome: str, k: int) -> list[str]:
    names = getattr(genotypes, "genotypes", {}).get(chromosome)
    if names and len(names) == k:
        return [str(g) for g in names]
    return ["dosage"] if k == 1 else [f"g{j + 1}" for j in range(k)]


def _table(
    genotypes: GenotypeSource,
    where: np.ndarray,
    names: list[str],
    covs: list[str],
    coef: np.ndarray,
    se: np.ndarray,
    k: int,
    zerosum: bool,
    hsq: float,
) -> pd.DataFrame:
    cols = [*names, *covs]
    data = {c: coef[:, j] for j, c in enumerate(cols)}
    errs = {f"se_{c}": se[:, j] for j, c in enumerate(cols)}
    if zerosum and k > 1:
        geno = coef[:, :k]
        mu = np.nanmean(geno, axis=1)
        for j, c in enumerate(names):
            data[c] = geno[:, j] - mu
        data["intercept"] = mu
        errs["se_intercept"] = np.sqrt(np.nanmean(se[:, :k] ** 2, axis=1))
    meta = genotypes.markers.iloc[where]
    table = pd.DataFrame(
        {"chr": meta["chr"].to_numpy(), "pos": meta["pos"].to_numpy(), **data, **errs},
        index=pd.Index(meta["marker"].to_numpy(), name="marker"),
    )
    table["hsq"] = hsq
    table.attrs["genotypes"] = names
    return table
