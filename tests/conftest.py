"""Shared fixtures. The reference data the tests need are committed under tests/data (see its
README for where each file comes from); nothing outside the repository is read."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

#: The committed fixtures (taken from ../shared/data; see tests/data/README.md).
DATA = Path(__file__).resolve().parent / "data"
RECLA = DATA / "recla"
BXD = DATA / "bxd"
I188 = DATA / "gemma_issue188"


def recla_files() -> dict[str, Path]:
    """Paths of the recla kinship, phenotype and covariate tables."""
    return {
        "kinship": RECLA / "kinship.csv.gz",
        "pheno": RECLA / "pheno.csv.gz",
        "covar": RECLA / "covar.csv",
    }


@pytest.fixture(scope="session")
def recla() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """kinship, pheno, covar of R/lmmlite's recla data."""

    def read(path: Path) -> pd.DataFrame:
        return pd.read_csv(path, index_col=0, dtype={0: str})

    files = recla_files()
    return read(files["kinship"]), read(files["pheno"]), read(files["covar"])


@pytest.fixture(scope="session")
def i188(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prefix of GEMMA's issue188 PLINK fileset, its .bed decompressed into a temporary folder."""
    folder = tmp_path_factory.mktemp("i188")
    with gzip.open(I188 / "2000.bed.gz", "rb") as src, open(folder / "2000.bed", "wb") as dst:
        shutil.copyfileobj(src, dst)
    for suffix in (".bim", ".fam"):
        shutil.copy(I188 / f"2000{suffix}", folder / f"2000{suffix}")
    return folder / "2000"


@pytest.fixture
def small_problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random positive definite kinship (n=40), two traits, intercept + covariate design.

    The centred genomic relationship matrix is singular (its rows sum to zero); a small ridge
    keeps the dense reference (which inverts hsq K + (1 - hsq) I) well defined up to hsq = 1.
    """
    rng = np.random.default_rng(11)
    n = 40
    G = rng.binomial(2, 0.4, size=(n, 120)).astype(float)
    G -= G.mean(axis=0)
    K = G @ G.T / G.shape[1] + 0.05 * np.eye(n)
    X = np.column_stack([np.ones(n), rng.standard_normal(n)])
    y = (X @ [3.0, -1.0])[:, None] + rng.multivariate_normal(
        np.zeros(n), 0.6 * K + 0.4 * np.eye(n), 2
    ).T
    return K, y, X


#: In ``exact`` mode each marker's hsq is a Brent search (tol 1e-7): two computations that
#: round differently (another chunk width, another sample order) may stop at points up to
#: ~1e-6 apart on a flat likelihood.
EXACT_HSQ_ATOL = 1e-6
#: An effect moves with hsq by about (d beta / d hsq) x delta hsq, with d beta / d hsq of the
#: order of the effect's standard error: compared in units of se, never relative to a beta that
#: may be near zero.
EXACT_BETA_SE_ATOL = 1e-4
#: se, the LOD (a maximum: first-order insensitive to hsq) and log10 p-values move little.
EXACT_SE_RTOL = 1e-5
EXACT_LOD_ATOL = 1e-6
EXACT_LOG10P_ATOL = 1e-5


def assert_exact_scans_close(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Two ``mode="exact"`` scan tables of the same data, computed in different ways (row
    order and labels identical), agree within the tolerances above."""
    assert list(a.columns) == list(b.columns)
    for col in a.columns:
        if not pd.api.types.is_float_dtype(a[col]):
            pd.testing.assert_series_equal(a[col], b[col])
    np.testing.assert_allclose(a["hsq"], b["hsq"], rtol=0, atol=EXACT_HSQ_ATOL)
    betas = [c for c in a.columns if c == "beta" or c.startswith("beta_")]
    for col in betas:
        se = b["se" + col[len("beta") :]].to_numpy()
        diff = np.abs(a[col].to_numpy() - b[col].to_numpy())
        both_nan = np.isnan(a[col].to_numpy()) & np.isnan(b[col].to_numpy())
        assert np.all(both_nan | (diff <= EXACT_BETA_SE_ATOL * se)), col
    for col in [c for c in a.columns if c == "se" or c.startswith("se_")]:
        np.testing.assert_allclose(a[col], b[col], rtol=EXACT_SE_RTOL, err_msg=col)
    np.testing.assert_allclose(a["lod"], b["lod"], rtol=EXACT_LOD_ATOL, atol=EXACT_LOD_ATOL)
    np.testing.assert_allclose(a["loglik"], b["loglik"], rtol=1e-9)
    for col in ("p_wald", "p_lrt", "p_score"):
        np.testing.assert_allclose(
            np.log10(a[col]), np.log10(b[col]), rtol=0, atol=EXACT_LOG10P_ATOL, err_msg=col
        )
    for col in ("n", "af", "n_miss"):
        if col in a.columns:
            np.testing.assert_allclose(a[col], b[col], rtol=1e-12, err_msg=col)
