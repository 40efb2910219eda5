"""Pictures (matplotlib, an optional dependency: ``pip install 'lmmlite[plot]'``)."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import DataWarning, InputError
from .io.tables import atomic_write

__all__ = ["plot_coef", "plot_profile", "plot_scan"]


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


def _chrom_key(c: str) -> tuple[int, Any]:
    s = str(c)
    return (0, int(s)) if s.isdigit() else (1, s)


def _genome_axis(table: pd.DataFrame) -> tuple[np.ndarray, list[tuple[str, float]], np.ndarray]:
    """Cumulative x positions with chromosomes side by side; tick labels; chromosome index."""
    chroms = sorted(table["chr"].astype(str).unique(), key=_chrom_key)
    x = np.empty(len(table))
    ticks = []
    idx = np.empty(len(table), dtype=int)
    offset = 0.0
    chr_col = table["chr"].astype(str).to_numpy()
    pos = table["pos"].to_numpy(dtype=float)
    for i, c in enumerate(chroms):
        sel = chr_col == c
        p = np.nan_to_num(pos[sel])
        lo, hi = (p.min(), p.max()) if p.size else (0.0, 1.0)
        span = max(hi - lo, 1.0)
        x[sel] = offset + (p - lo)
        idx[sel] = i
        ticks.append((c, offset + span / 2))
        offset += span * 1.05
    return x, ticks, idx


#: p-values that underflowed to 0 are drawn at this floor (-log10: 300).
P_FLOOR = 1e-300


def _check_pvalues(p: np.ndarray, col: str) -> None:
    with np.errstate(invalid="ignore"):
        bad = (p < 0) | (p > 1)
    if bad.any():
        raise InputError(
            f"column {col!r} holds {int(bad.sum())} value(s) outside [0, 1] (e.g. "
            f"{p[bad][0]:g}): not p-values"
        )
    zero = int(np.sum(p == 0))
    if zero:
        warnings.warn(
            f"{zero} p-value(s) in {col!r} underflowed to 0; they are drawn at "
            f"-log10 p = {-np.log10(P_FLOOR):g}",
            DataWarning,
            stacklevel=3,
        )


def _floored(p: np.ndarray) -> np.ndarray:
    return np.where(p == 0, P_FLOOR, p)


def plot_scan(
    table: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    kind: str = "manhattan",
    column: str | None = None,
    trait: str | None = None,
) -> None:
    """Draw a scan table: ``manhattan`` (-log10 p by position), ``lod`` (LOD curves by
    chromosome) or ``qq`` (observed against expected -log10 p).

    Parameters
    ----------
    table
        Output of :func:`lmmlite.scan` (or the file it wrote).
    path
        Image file, written atomically.
    kind
        ``"manhattan"``, ``"lod"`` or ``"qq"``.
    column
        p-value column (``p_wald`` by default) for manhattan and qq.
    trait
        Trait to draw (default: the first).
    """
    plt = _pyplot()
    if kind not in ("manhattan", "lod", "qq"):
        raise InputError(f"kind must be manhattan, lod or qq; got {kind!r}")
    traits = list(dict.fromkeys(table["trait"].astype(str)))
    if not traits:
        raise InputError("the scan table is empty")
    name = traits[0] if trait is None else str(trait)
    if name not in traits:
        raise InputError(f"trait {name!r} is not in the scan table; it has {traits[:10]}")
    sub = table[table["trait"].astype(str) == name]
    col = column or ("lod" if kind == "lod" else "p_wald")
    if col not in sub.columns:
        raise InputError(f"column {col!r} is not in the scan table")
    if kind != "lod":
        _check_pvalues(sub[col].to_numpy(dtype=float), col)
    fig, ax = plt.subplots(figsize=(9.0, 3.6), constrained_layout=True)
    if kind == "qq":
        p = np.sort(_floored(sub[col].to_numpy(dtype=float)))
        p = p[np.isfinite(p) & (p > 0)]
        if p.size == 0:
            raise InputError(f"no finite p-values in column {col!r}")
        expected = -np.log10((np.arange(1, p.size + 1) - 0.5) / p.size)
        ax.plot(expected, -np.log10(p), ".", color="slateblue", ms=3)
        top = float(max(expected.max(), -np.log10(p).max()))
        ax.plot([0, top], [0, top], color="gray", lw=1)
        ax.set_xlabel("expected -log10 p")
        ax.set_ylabel(f"observed -log10 {col}")
    else:
        x, ticks, idx = _genome_axis(sub)
        y = sub[col].to_numpy(dtype=float)
        if kind == "manhattan":
            y = -np.log10(_floored(y))
            colors = np.where(idx % 2 == 0, "slateblue", "darkorange")
            ax.scatter(x, y, s=4, c=colors)
            ax.set_ylabel(f"-log10 {col}")
        else:
            for i in np.unique(idx):
                sel = idx == i
                order = np.argsort(x[sel])
                ax.plot(x[sel][order], y[sel][order], color="slateblue", lw=1.5)
            ax.set_ylabel(col.upper() if col == "lod" else col)
        ax.set_xticks([t[1] for t in ticks])
        ax.set_xticklabels([t[0] for t in ticks])
        ax.set_xlabel("chromosome")
    ax.set_title(f"{name}: {kind}")
    fmt = os.path.splitext(str(path))[1].lstrip(".") or "png"
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=100))
    finally:
        plt.close(fig)


def plot_coef(
    coef: pd.DataFrame,
    lod: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> None:
    """Draw genotype effects along a chromosome (:func:`lmmlite.effects.scan_coef`) above its
    LOD curve (a scan table of the same chromosome and trait), R/qtl2's ``plot_coef`` style.

    Parameters
    ----------
    coef
        Effects, one column per genotype (``se_<name>`` columns give the +-1 se bands); the
        genotype columns are those named in ``coef.attrs["genotypes"]``.
    lod
        Scan rows of the chromosome (columns ``pos``, ``lod``).
    path
        Image file, written atomically.
    title
        Figure title.
    """
    plt = _pyplot()
    genos = list(coef.attrs.get("genotypes", []))
    if not genos:  # a table read back from a file: the columns before the covariates'
        skip = {"chr", "pos", "hsq", "intercept"}
        genos = [c for c in coef.columns if not c.startswith("se_") and c not in skip]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(7.5, 5.5), sharex=True, constrained_layout=True,
        gridspec_kw={"height_ratios": [3, 2]},
    )  # fmt: skip
    pos = coef["pos"].to_numpy(dtype=float)
    for name in genos:
        eff = coef[name].to_numpy(dtype=float)
        (line,) = top.plot(pos, eff, lw=1.8, label=name)
        if f"se_{name}" in coef.columns:
            se = coef[f"se_{name}"].to_numpy(dtype=float)
            top.fill_between(pos, eff - se, eff + se, color=line.get_color(), alpha=0.12, lw=0)
    top.axhline(0, color="gray", lw=0.8)
    top.set_ylabel("effect")
    top.legend(ncol=min(len(genos), 6), fontsize=8, frameon=False)
    order = np.argsort(lod["pos"].to_numpy(dtype=float))
    bottom.plot(
        lod["pos"].to_numpy(dtype=float)[order],
        lod["lod"].to_numpy(dtype=float)[order],
        color="slateblue",
        lw=1.8,
    )
    bottom.set_ylabel("LOD")
    bottom.set_xlabel("position")
    if title:
        top.set_title(title)
    fmt = os.path.splitext(str(path))[1].lstrip(".") or "png"
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=100))
    finally:
        plt.close(fig)
