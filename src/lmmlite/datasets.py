"""Example data: R/lmmlite's recla data set and a deterministic simulator.

:func:`load_recla` returns the Recla et al. (2014) mouse data that R/lmmlite ships (261 mice,
26 behavioural phenotypes, a kinship matrix and an intercept + sex covariate table).
:func:`simulate` generates structured genotypes, a kinship and traits of known heritability,
with missing values, of any size.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .exceptions import FileFormatError, InputError
from .io.tables import atomic_write, read_table, sha256_file

__all__ = ["RECLA_SHA256", "RECLA_URL", "Simulation", "load_recla", "simulate"]

#: R/lmmlite's public copy of the recla data (an R list of kinship, pheno and covar).
RECLA_URL = "https://raw.githubusercontent.com/kbroman/lmmlite/master/data/recla.RData"
#: SHA-256 of ``recla.RData`` as published in R/lmmlite; a download must match it.
RECLA_SHA256 = "701d63fa2a4dc13ff9452d99e64bc48629a38912dcd5ef91cfbc30686e3178da"


def cache_dir() -> Path:
    """lmmlite's user cache folder: ``$LMMLITE_CACHE``, else ``$XDG_CACHE_HOME/lmmlite``."""
    if os.environ.get("LMMLITE_CACHE"):
        return Path(os.environ["LMMLITE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lmmlite"


def _download_recla(url: str) -> Path:
    target = cache_dir() / "recla.RData"
    if target.is_file() and sha256_file(target) == RECLA_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)

    def fetch(tmp: str) -> None:
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:
                shutil.copyfileobj(resp, out)
        except OSError as exc:
            raise FileFormatError(f"could not download the recla data from {url}: {exc}") from None
        digest = sha256_file(Path(tmp))
        if digest != RECLA_SHA256:
            raise FileFormatError(
                f"downloaded recla data has SHA-256 {digest}, expected {RECLA_SHA256}; "
                "refusing to use it"
            )

    atomic_write(target, fetch)
    return target


def _read_rdata(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    try:
        import rdata
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading recla.RData needs the 'rdata' package: pip install 'lmmlite[rdata]'"
        ) from None
    obj = rdata.read_rda(str(path))["recla"]

    def frame(arr: object) -> pd.DataFrame:
        df = arr.to_pandas()  # type: ignore[attr-defined]
        df.index = pd.Index([str(v) for v in df.index], name="id")
        df.columns = [str(c) for c in df.columns]
        return df.astype(float)

    return frame(obj["kinship"]), frame(obj["pheno"]), frame(obj["covar"])


def load_recla(
    path: str | os.PathLike[str] | None = None, *, url: str = RECLA_URL
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The recla data: kinship, phenotypes and covariates, indexed by mouse id.

    Parameters
    ----------
    path
        A folder with ``kinship.csv``, ``pheno.csv`` and ``covar.csv`` (first column: id; each
        may be gzip-compressed, ``.csv.gz``), or a
        ``recla.RData`` file. If omitted, ``$LMMLITE_RECLA`` is used when set; otherwise
        R/lmmlite's ``recla.RData`` is downloaded once into the user cache (see
        :func:`cache_dir`) and its SHA-256 checked.
    url
        Where to download from (for mirrors).

    Returns
    -------
    kinship, pheno, covar : pandas.DataFrame
        261 x 261, 261 x 26 (with missing values) and 261 x 2 (``intercept``, ``sex``).
    """
    if path is None and os.environ.get("LMMLITE_RECLA"):
        path = os.environ["LMMLITE_RECLA"]
    if path is None:
        return _read_rdata(_download_recla(url))
    p = Path(path)
    if p.is_file():
        return _read_rdata(p)
    if not p.is_dir():
        raise FileFormatError(f"recla data not found at {str(p)!r}")
    tables = []
    for name in ("kinship", "pheno", "covar"):
        plain = p / f"{name}.csv"
        tables.append(read_table(plain if plain.is_file() else p / f"{name}.csv.gz", name))
    return tables[0], tables[1], tables[2]


@dataclass(frozen=True)
class Simulation:
    """Data made by :func:`simulate`."""

    kinship: pd.DataFrame
    """Centred genomic relationship matrix G G' / m (G centred by marker), ids on both axes."""
    pheno: pd.DataFrame
    """Traits (samples x traits), NaN where missing."""
    covar: pd.DataFrame
    """Covariates: ``intercept`` and ``x1``, ``x2``, ...; no missing values."""
    genotypes: pd.DataFrame
    """Allele counts 0/1/2 (samples x markers)."""
    hsq: pd.Series
    """The heritability each trait was simulated with."""
    population: pd.Series
    """Subpopulation of each sample."""


def simulate(
    n_samples: int = 500,
    n_traits: int = 10,
    *,
    n_markers: int = 2000,
    hsq: float | np.ndarray = 0.5,
    n_covariates: int = 1,
    n_populations: int = 3,
    fst: float = 0.1,
    missing_rate: float = 0.05,
    n_missing_patterns: int = 3,
    seed: int = 0,
) -> Simulation:
    """Simulate structured genotypes, their kinship and traits of known heritability.

    Parameters
    ----------
    n_samples, n_traits, n_markers
        Sizes.
    hsq
        Heritability of each trait (a scalar, or one value per trait), in [0, 1].
    n_covariates
        Number of normal covariates besides the intercept (their effects are 0.5 each).
    n_populations, fst
        Balding-Nichols population structure: allele frequencies of each subpopulation are
        drawn from Beta(p (1 - F)/F, (1 - p)(1 - F)/F) around ancestral frequencies
        p ~ U(0.05, 0.95).
    missing_rate
        Fraction of samples missing for each trait. Traits are split into
        ``n_missing_patterns`` groups that share their missing samples, as happens when
        phenotypes are measured in batches.
    n_missing_patterns
        Number of distinct missing-data patterns.
    seed
        Seed of the generator: the same arguments give the same data.

    Returns
    -------
    Simulation

    Notes
    -----
    The genetic value is :math:`g = Z\\beta/\\sqrt{m}` with :math:`Z` the centred genotypes and
    :math:`\\beta \\sim N(0, 1)`, so :math:`\\mathrm{cov}(g) = K` (the returned kinship), and
    :math:`y = X b + \\sqrt{h^2}\\, g + \\sqrt{1 - h^2}\\, e`: ``hsq`` is the model's
    :math:`\\sigma^2_g / (\\sigma^2_g + \\sigma^2_e)` for this kinship, the quantity lmmlite
    estimates.

    Examples
    --------
    >>> sim = simulate(n_samples=50, n_traits=2, n_markers=100, seed=1)
    >>> sim.pheno.shape, sim.kinship.shape
    ((50, 2), (50, 50))
    """
    for name, val in (
        ("n_samples", n_samples),
        ("n_traits", n_traits),
        ("n_markers", n_markers),
        ("n_populations", n_populations),
        ("n_missing_patterns", n_missing_patterns),
    ):
        if int(val) != val or val < 1:
            raise InputError(f"{name} must be a positive integer; got {val!r}")
    if not 0.0 < fst < 1.0:
        raise InputError(f"fst must lie strictly between 0 and 1; got {fst!r}")
    if not 0.0 <= missing_rate < 1.0:
        raise InputError(f"missing_rate must lie in [0, 1); got {missing_rate!r}")
    h = np.broadcast_to(np.asarray(hsq, dtype=float), (n_traits,)).copy()
    if np.any((h < 0) | (h > 1)):
        raise InputError(f"hsq must lie in [0, 1]; got {h[(h < 0) | (h > 1)]}")
    rng = np.random.default_rng(seed)
    pop = rng.integers(0, n_populations, n_samples)
    p_anc = rng.uniform(0.05, 0.95, n_markers)
    a = p_anc * (1 - fst) / fst
    b = (1 - p_anc) * (1 - fst) / fst
    p_pop = rng.beta(a, b, size=(n_populations, n_markers))
    geno = rng.binomial(2, p_pop[pop]).astype(float)
    Z = geno - geno.mean(axis=0)
    K = Z @ Z.T / n_markers
    g = Z @ rng.standard_normal((n_markers, n_traits)) / np.sqrt(n_markers)
    X = np.column_stack([np.ones(n_samples), rng.standard_normal((n_samples, n_covariates))])
    beta = np.concatenate([[1.0], np.full(n_covariates, 0.5)])
    e = rng.standard_normal((n_samples, n_traits))
    y = (X @ beta)[:, None] + np.sqrt(h) * g + np.sqrt(1 - h) * e
    if missing_rate > 0:
        group = np.arange(n_traits) % n_missing_patterns
        n_miss = round(missing_rate * n_samples)
        for k in range(n_missing_patterns):
            miss = rng.choice(n_samples, size=n_miss, replace=False)
            y[np.ix_(miss, np.flatnonzero(group == k))] = np.nan
    width = len(str(n_samples))
    ids = pd.Index([f"S{i + 1:0{width}d}" for i in range(n_samples)], name="id")
    traits = [f"trait{j + 1}" for j in range(n_traits)]
    markers = [f"snp{j + 1}" for j in range(n_markers)]
    covs = ["intercept"] + [f"x{j + 1}" for j in range(n_covariates)]
    return Simulation(
        kinship=pd.DataFrame(K, index=ids, columns=list(ids)),
        pheno=pd.DataFrame(y, index=ids, columns=traits),
        covar=pd.DataFrame(X, index=ids, columns=covs),
        genotypes=pd.DataFrame(geno, index=ids, columns=markers),
        hsq=pd.Series(h, index=traits, name="hsq"),
        population=pd.Series(pop, index=ids, name="population"),
    )
