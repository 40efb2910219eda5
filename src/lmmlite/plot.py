"""Pictures (matplotlib, an optional dependency: ``pip install 'lmmlite[plot]'``)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from .io.tables import atomic_write

__all__ = ["plot_profile"]


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'lmmlite[plot]'") from None
    return plt


def plot_profile(
    profile: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    estimates: pd.DataFrame | None = None,
    title: str | None = None,
) -> None:
    """Draw log likelihood against hsq, one curve per phenotype, with each maximum marked.

    Parameters
    ----------
    profile
        Output of :func:`lmmlite.loglik_profile` (index: hsq grid; a column per phenotype).
    path
        Image file (format by extension, e.g. ``.png``, ``.pdf``); written atomically.
    estimates
        Output of :func:`lmmlite.heritability` for the same phenotypes: marks the fitted
        (hsq, loglik). Without it, the grid maximum is marked.
    title
        Figure title.
    """
    plt = _pyplot()
    names = list(profile.columns)
    fig, axes = plt.subplots(
        len(names), 1, figsize=(6.0, 3.2 * len(names)), squeeze=False, constrained_layout=True
    )
    hs = profile.index.to_numpy(dtype=float)
    for ax, name in zip(axes[:, 0], names, strict=True):
        ll = profile[name].to_numpy(dtype=float)
        ax.plot(hs, ll, color="slateblue", lw=2)
        if estimates is not None and name in estimates.index:
            row = estimates.loc[name]
            hx, lx = float(row["hsq"]), float(row["loglik"])
        else:
            k = int(np.nanargmax(ll))
            hx, lx = hs[k], ll[k]
        ax.axvline(hx, color="mediumvioletred", lw=1, ls="--")
        ax.plot([hx], [lx], "o", color="mediumvioletred")
        ax.annotate(
            f"hsq = {hx:.3f}",
            (hx, lx),
            textcoords="offset points",
            xytext=(6, -14),
            color="mediumvioletred",
        )
        ax.set_xlim(0, 1)
        ax.set_xlabel("heritability (hsq)")
        ax.set_ylabel("log likelihood")
        ax.set_title(str(name))
    if title:
        fig.suptitle(title)
    fmt = os.path.splitext(str(path))[1].lstrip(".") or "png"
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=100))
    finally:
        plt.close(fig)
