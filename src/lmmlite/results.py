"""Result tables: one schema per kind of result, declared once, and the conversions from the
core's dataclasses (:mod:`lmmlite.core.results`) to labelled pandas tables.

The core's result classes are re-exported here, since they are part of the public API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .core.results import EigenRotation, HsqInference, LMMFit, MLSolution

__all__ = [
    "HERITABILITY_COLUMNS",
    "INTERACTION_COLUMNS",
    "SCAN_COLUMNS",
    "EigenRotation",
    "HsqInference",
    "LMMFit",
    "MLSolution",
    "fit_table",
    "heritability_table",
]

#: Columns of a heritability table (:func:`lmmlite.heritability`, :func:`fit_table`), in
#: order, one row per trait (index: ``trait``); ``beta_<covariate>`` columns come after
#: ``lrt_pvalue``.
HERITABILITY_COLUMNS = (
    "n",
    "hsq",
    "hsq_se",
    "hsq_ci_lower",
    "hsq_ci_upper",
    "sigmasq",
    "sigmasq_g",
    "sigmasq_e",
    "loglik",
    "lrt_stat",
    "lrt_pvalue",
    "at_boundary",
    "converged",
    "n_eval",
)

#: Columns of a scan table (:func:`lmmlite.scan`), in order. k-column genotypes (probabilities)
#: add ``beta_<j>``/``se_<j>`` (j = 2..k, the effect of column j against column 1) at the end,
#: with ``beta``/``se`` NaN.
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
    "n_miss",
    "note",
)


#: Columns added to a scan table by interactive covariates (``intcovar``): the interaction
#: test (GEMMA's ``-gxe``), the marker-by-covariate products against the marker alone; the
#: effect and its se with one product column.
INTERACTION_COLUMNS = ("lod_gxe", "beta_gxe", "se_gxe", "p_wald_gxe", "p_lrt_gxe", "p_score_gxe")


def heritability_table(
    traits: Sequence[str],
    covariates: Sequence[str],
    fit: LMMFit,
    inference: HsqInference | None,
    n: int | np.ndarray,
) -> pd.DataFrame:
    """A heritability table from a (many-trait) fit: :data:`HERITABILITY_COLUMNS` then
    ``beta_<covariate>``, one row per trait (the interval and LRT columns NaN without
    ``inference``)."""
    t = len(traits)

    def col(value: Any) -> np.ndarray:
        return np.broadcast_to(np.atleast_1d(np.asarray(value)), (t,))

    nan = np.full(t, np.nan)
    data: dict[str, Any] = {
        "n": col(n).astype(int),
        "hsq": col(fit.hsq),
        "hsq_se": col(fit.hsq_se),
        "hsq_ci_lower": nan if inference is None else col(inference.hsq_ci_lower),
        "hsq_ci_upper": nan if inference is None else col(inference.hsq_ci_upper),
        "sigmasq": col(fit.sigmasq),
        "sigmasq_g": col(fit.sigmasq_g),
        "sigmasq_e": col(fit.sigmasq_e),
        "loglik": col(fit.loglik),
        "lrt_stat": nan if inference is None else col(inference.lrt_stat),
        "lrt_pvalue": nan if inference is None else col(inference.lrt_pvalue),
        "at_boundary": col(fit.at_boundary).astype(bool),
        "converged": col(fit.converged).astype(bool),
        "n_eval": col(fit.n_eval).astype(int),
    }
    beta = np.atleast_2d(fit.beta)
    data.update({f"beta_{c}": beta[:, k] for k, c in enumerate(covariates)})
    table = pd.DataFrame(data, index=pd.Index([str(v) for v in traits], name="trait"))
    return table


def fit_table(
    fit: LMMFit,
    *,
    traits: Sequence[str] | None = None,
    covariates: Sequence[str] | None = None,
    inference: HsqInference | None = None,
    n: int | None = None,
) -> pd.DataFrame:
    """The heritability table of a :func:`~lmmlite.fit_lmm` result (and, optionally, its
    :func:`~lmmlite.hsq_inference`): the columns of :func:`lmmlite.heritability`.

    Parameters
    ----------
    fit
        One trait's or many traits' fit.
    traits
        Row names (default ``trait1``, ``trait2``, ...).
    covariates
        Names of the covariate columns (default ``x0``, ``x1``, ...), for ``beta_<name>``.
    inference
        The interval and LRT columns (NaN without it).
    n
        Number of samples (NaN without it).
    """
    beta = np.atleast_2d(fit.beta)
    t, p = beta.shape
    names = [f"trait{j + 1}" for j in range(t)] if traits is None else [str(v) for v in traits]
    covs = [f"x{k}" for k in range(p)] if covariates is None else [str(c) for c in covariates]
    if len(names) != t or len(covs) != p:
        raise ValueError(
            f"got {len(names)} trait and {len(covs)} covariate names for a fit of {t} trait(s) "
            f"and {p} covariate(s)"
        )
    table = heritability_table(names, covs, fit, inference, 0 if n is None else n)
    if n is None:
        table["n"] = pd.array([pd.NA] * t, dtype="Int64")
    return table
