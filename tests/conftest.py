"""Shared fixtures. Reference data live beside the project in ../shared/data (never copied)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

#: ../shared/data relative to the repository root (CI has it there too).
DATA = Path(
    os.environ.get("LMMLITE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
RECLA = DATA / "recla"


@pytest.fixture(scope="session")
def recla() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """kinship, pheno, covar of R/lmmlite's recla data, from ../shared/data/recla."""
    if not RECLA.is_dir():
        pytest.fail(f"reference data not found at {RECLA} (set LMMLITE_SHARED_DATA)")

    def read(name: str) -> pd.DataFrame:
        return pd.read_csv(RECLA / f"{name}.csv", index_col=0, dtype={0: str})

    return read("kinship"), read("pheno"), read("covar")


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
