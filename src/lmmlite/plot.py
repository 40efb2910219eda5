"""Pictures (matplotlib, an optional dependency: ``pip install 'lmmlite[plot]'``)."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import DataWarning, InputError
from .io.tables import atomic_write
from .permutation import ALPHAS

__all__ = ["plot_coef", "plot_peaks", "plot_perm", "plot_profile", "plot_scan"]


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
        right = hx > 0.75  # the label to the left of the line near the right edge
        ax.annotate(
            f"hsq = {hx:.3f}",
            (hx, lx),
            textcoords="offset points",
            xytext=(-6 if right else 6, -14),
            ha="right" if right else "left",
            color="mediumvioletred",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
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


def _chrom_layout(table: pd.DataFrame) -> dict[str, tuple[float, float, float]]:
    """Each chromosome's (offset on the genome axis, first position, span), in genome order
    (numbered chromosomes first), side by side with a 5% gap."""
    layout = {}
    offset = 0.0
    chr_col = table["chr"].astype(str).to_numpy()
    pos = table["pos"].to_numpy(dtype=float)
    for c in sorted(set(chr_col), key=_chrom_key):
        p = np.nan_to_num(pos[chr_col == c])
        lo, hi = (float(p.min()), float(p.max())) if p.size else (0.0, 1.0)
        span = max(hi - lo, 1.0)
        layout[c] = (offset, lo, span)
        offset += span * 1.05
    return layout


def _genome_axis(table: pd.DataFrame) -> tuple[np.ndarray, list[tuple[str, float]], np.ndarray]:
    """Cumulative x positions with chromosomes side by side; tick labels; chromosome index."""
    layout = _chrom_layout(table)
    chr_col = table["chr"].astype(str).to_numpy()
    pos = np.nan_to_num(table["pos"].to_numpy(dtype=float))
    x = np.empty(len(table))
    idx = np.empty(len(table), dtype=int)
    ticks = []
    for i, (c, (offset, lo, span)) in enumerate(layout.items()):
        sel = chr_col == c
        x[sel] = offset + (pos[sel] - lo)
        idx[sel] = i
        ticks.append((c, offset + span / 2))
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
            stacklevel=4,
        )


def _floored(p: np.ndarray) -> np.ndarray:
    return np.where(p == 0, P_FLOOR, p)


def _save(plt: Any, fig: Any, path: str | os.PathLike[str]) -> None:
    """Write the figure atomically (format by extension) and close it."""
    fmt = os.path.splitext(str(path))[1].lstrip(".") or "png"
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=100))
    finally:
        plt.close(fig)


def plot_scan(
    table: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    kind: str = "manhattan",
    column: str | None = None,
    trait: str | None = None,
    thresholds: float | Mapping[str, float] | None = None,
    peaks: pd.DataFrame | None = None,
    threshold: float | Mapping[str, float] | None = None,
    x_chromosomes: Collection[str] | None = None,
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
        p-value column (``p_wald`` by default) for manhattan and qq; the LOD column (``lod``)
        for lod.
    trait
        Trait to draw (default: the first).
    thresholds
        ``lod`` only: LOD thresholds drawn as dashed lines: a number, or one per region
        (``{"A": 3.1, "X": 3.7}``, as from :func:`lmmlite.peaks.peak_thresholds`), the X
        value drawn over the X chromosome only.
    peaks
        ``lod`` and ``manhattan``: a :func:`lmmlite.find_peaks` table; this trait's peaks are
        labelled with their marker, and (``lod``) their intervals ``ci_lo``..``ci_hi``
        shaded when the table has them.
    threshold
        ``manhattan`` only: a p-value drawn as a dashed line at its -log10, or one per
        region (``{"A": 1e-4, "X": 3e-4}``, as from
        :func:`lmmlite.permutation.perm_pvalue_threshold`); by default the Bonferroni
        threshold 0.05 / (number of markers with a p-value).
    x_chromosomes
        Names of the X chromosome (default: ``X`` or ``23``, any case), for ``thresholds``.

    Notes
    -----
    The QQ plot is square, shows the genomic-control inflation factor
    :math:`\\lambda_{GC}` = median of the 1-df chi-square statistics of the p-values / 0.4549
    (the chi-square median) and a pointwise 95% band: the i-th smallest of n uniform
    p-values follows Beta(i, n - i + 1). Points (and the band) that would fall on the same
    pixel are drawn once, so that a million p-values draw in about a second.
    """
    plt = _pyplot()
    if kind not in ("manhattan", "lod", "qq"):
        raise InputError(f"kind must be manhattan, lod or qq; got {kind!r}")
    if thresholds is not None and kind != "lod":
        raise InputError(f"thresholds (LOD lines) apply to kind='lod', not {kind!r}")
    if threshold is not None and kind != "manhattan":
        raise InputError(f"threshold (a p-value line) applies to kind='manhattan', not {kind!r}")
    name, sub = _one_trait(table, trait)
    col = column or ("lod" if kind == "lod" else "p_wald")
    if col not in sub.columns:
        raise InputError(f"column {col!r} is not in the scan table")
    if kind != "lod":
        _check_pvalues(sub[col].to_numpy(dtype=float), col)
    if kind == "qq":
        fig, ax = plt.subplots(figsize=(5.6, 5.6), constrained_layout=True)
        _draw_qq(ax, sub[col].to_numpy(dtype=float), col)
    else:
        fig, ax = plt.subplots(figsize=(9.0, 3.6), constrained_layout=True)
        mine = _trait_peaks(peaks, name)
        if kind == "manhattan":
            _draw_manhattan(ax, sub, col, threshold, mine, _x_names(x_chromosomes))
        else:
            _draw_lod(ax, sub, col, thresholds, mine, _x_names(x_chromosomes))
    ax.set_title(f"{name}: {kind}")
    _save(plt, fig, path)


def _one_trait(table: pd.DataFrame, trait: str | None) -> tuple[str, pd.DataFrame]:
    traits = list(dict.fromkeys(table["trait"].astype(str)))
    if not traits:
        raise InputError("the scan table is empty")
    name = traits[0] if trait is None else str(trait)
    if name not in traits:
        raise InputError(f"trait {name!r} is not in the scan table; it has {traits[:10]}")
    return name, table[table["trait"].astype(str) == name]


def _trait_peaks(peaks: pd.DataFrame | None, trait: str) -> pd.DataFrame | None:
    if peaks is None:
        return None
    missing = [c for c in ("trait", "chr", "pos", "marker") if c not in peaks.columns]
    if missing:
        raise InputError(f"peaks is not a find_peaks table: it lacks {', '.join(missing)}")
    return peaks[peaks["trait"].astype(str) == trait]


def _x_names(x_chromosomes: Collection[str] | None) -> frozenset[str]:
    from .peaks import x_names

    return x_names(x_chromosomes)


def _genome_ticks(ax: Any, ticks: list[tuple[str, float]]) -> None:
    ax.set_xticks([t[1] for t in ticks])
    ax.set_xticklabels([t[0] for t in ticks], fontsize=8 if len(ticks) > 12 else None)
    ax.set_xlabel("chromosome")


def _draw_manhattan(
    ax: Any,
    sub: pd.DataFrame,
    col: str,
    threshold: float | Mapping[str, float] | None,
    peaks: pd.DataFrame | None,
    x_names: frozenset[str],
) -> None:
    x, ticks, idx = _genome_axis(sub)
    p = sub[col].to_numpy(dtype=float)
    y = -np.log10(_floored(p))
    colors = np.where(idx % 2 == 0, "slateblue", "darkorange")
    ax.scatter(x, y, s=4, c=colors)
    if isinstance(threshold, Mapping):  # one p-value per region (A, X), as -log10 lines
        bad = {r: v for r, v in threshold.items() if not 0.0 < float(v) <= 1.0}
        if bad:
            raise InputError(f"threshold must hold p-values in (0, 1]; got {bad}")
        lines = {r: -math.log10(float(v)) for r, v in threshold.items()}
        _draw_thresholds(ax, lines, _chrom_layout(sub), x_names, what="-log10 p")
        line = min(threshold.values())
    elif threshold is None:
        tested = int(np.isfinite(p).sum())
        if tested:
            line = 0.05 / tested
            label = f"Bonferroni 0.05/{tested} = {line:.2g}"
        else:
            line = math.nan
    else:
        line = float(threshold)
        if not 0.0 < line <= 1.0:
            raise InputError(f"threshold must be a p-value in (0, 1]; got {threshold!r}")
        label = f"p = {line:.2g}"
    if np.isfinite(line) and not isinstance(threshold, Mapping):
        ax.axhline(-np.log10(line), color="firebrick", ls="--", lw=1, label=label)
        ax.legend(loc="upper right", fontsize=8, frameon=False)
    if peaks is not None and len(peaks):
        where = pd.Series(np.arange(len(sub)), index=sub["marker"].astype(str).to_numpy())
        where = where[~where.index.duplicated()]
        for m in peaks["marker"].astype(str):
            if m in where.index:
                i = int(where[m])
                _label(ax, x[i], y[i], m)
    ax.set_ylabel(f"-log10 {col}")
    finite = y[np.isfinite(y)]
    top = max([1.0, *finite.max(initial=0.0, keepdims=True).tolist()])
    if np.isfinite(line):
        top = max(top, -math.log10(line))
    ax.set_ylim(0, top * 1.12 + 0.2)
    _genome_ticks(ax, ticks)


def _label(ax: Any, x: float, y: float, text: str) -> None:
    ax.annotate(
        text, (x, y), textcoords="offset points", xytext=(0, 5), ha="center", va="bottom",
        fontsize=7, color="black",
        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7},
    )  # fmt: skip


def _draw_lod(
    ax: Any,
    sub: pd.DataFrame,
    col: str,
    thresholds: float | Mapping[str, float] | None,
    peaks: pd.DataFrame | None,
    x_names: frozenset[str],
) -> None:
    layout = _chrom_layout(sub)
    chr_col = sub["chr"].astype(str).to_numpy()
    pos = sub["pos"].to_numpy(dtype=float)
    y = sub[col].to_numpy(dtype=float)
    for k, (c, (offset, lo, span)) in enumerate(layout.items()):
        if k % 2:
            ax.axvspan(offset, offset + span, color="0.93", lw=0, zorder=0)
        sel = chr_col == c
        order = np.argsort(pos[sel], kind="stable")
        ax.plot(offset + pos[sel][order] - lo, y[sel][order], color="slateblue", lw=1.5)
    if thresholds is not None:
        _draw_thresholds(ax, thresholds, layout, x_names)
    if peaks is not None and len(peaks):
        _draw_lod_peaks(ax, peaks, layout, float(np.nanmax(y)))
    ax.set_ylabel(col.upper() if col == "lod" else col)
    finite = y[np.isfinite(y)]
    lines = [] if thresholds is None else _values(thresholds)
    top = max([1.0, *finite.tolist(), *lines])
    ax.set_ylim(min(0.0, float(finite.min(initial=0.0))), top * 1.15 + 0.1)
    ticks = [(c, offset + span / 2) for c, (offset, _, span) in layout.items()]
    _genome_ticks(ax, ticks)


def _values(thresholds: float | Mapping[str, float]) -> list[float]:
    values = thresholds.values() if isinstance(thresholds, Mapping) else [thresholds]
    return [float(v) for v in values if np.isfinite(float(v))]


def _draw_thresholds(
    ax: Any,
    thresholds: float | Mapping[str, float],
    layout: Mapping[str, tuple[float, float, float]],
    x_names: frozenset[str],
    what: str = "threshold",
) -> None:
    """Dashed threshold lines: the autosomes' over the autosomes, X's over X (one line and
    label when they are equal)."""
    if isinstance(thresholds, Mapping):
        a_value = float(thresholds.get("A", math.nan))
        x_value = float(thresholds.get("X", a_value))
    else:
        a_value = x_value = float(thresholds)
    same = a_value == x_value
    for region, value, color in (("A", a_value, "firebrick"), ("X", x_value, "darkgreen")):
        spans = [
            (offset, offset + span)
            for c, (offset, _, span) in layout.items()
            if same or (c.lower() in x_names) == (region == "X")
        ]
        if not spans or not np.isfinite(value):
            continue
        starts, ends = zip(*spans, strict=True)
        label = f"{what} {value:.3g}" if same or region == "A" else f"X {what} {value:.3g}"
        ax.hlines([value] * len(spans), starts, ends, colors=color, linestyles="--", lw=1,
                  label=label)  # fmt: skip
        if same:
            break
    ax.legend(loc="upper right", fontsize=8, frameon=False)


def _draw_lod_peaks(
    ax: Any, peaks: pd.DataFrame, layout: Mapping[str, tuple[float, float, float]], top: float
) -> None:
    """Mark and label each peak; shade its interval when the table has one."""
    chrom = peaks["chr"].astype(str).to_numpy()
    pos = peaks["pos"].to_numpy(dtype=float)
    lod = peaks["lod"].to_numpy(dtype=float) if "lod" in peaks.columns else np.full(len(pos), top)
    marker = peaks["marker"].astype(str).to_numpy()
    has_ci = {"ci_lo", "ci_hi"} <= set(peaks.columns)
    ci_lo = peaks["ci_lo"].to_numpy(dtype=float) if has_ci else pos
    ci_hi = peaks["ci_hi"].to_numpy(dtype=float) if has_ci else pos
    for i, c in enumerate(chrom):
        if c not in layout:
            continue
        offset, lo, _ = layout[c]
        if has_ci and ci_hi[i] > ci_lo[i]:
            ax.axvspan(
                offset + ci_lo[i] - lo, offset + ci_hi[i] - lo, color="gold", alpha=0.3, lw=0
            )
        elif has_ci:  # an interval of one position: a line, visible
            ax.axvline(offset + ci_lo[i] - lo, color="gold", alpha=0.6, lw=2)
        ax.plot([offset + pos[i] - lo], [lod[i]], "v", color="mediumvioletred", ms=5)
        _label(ax, offset + pos[i] - lo, lod[i], marker[i])


def _draw_qq(ax: Any, pvalues: np.ndarray, col: str) -> None:
    from scipy import stats

    p = np.sort(_floored(pvalues[np.isfinite(pvalues)]))
    if p.size == 0:
        raise InputError(f"no finite p-values in column {col!r}")
    n = p.size
    observed = -np.log10(p)
    expected = -np.log10((np.arange(1, n + 1) - 0.5) / n)
    top = float(max(expected[0], observed.max())) * 1.05 + 0.05
    keep = _one_per_pixel(expected, observed, top)
    ranks = np.arange(1, n + 1)[keep]
    lower = -np.log10(stats.beta.ppf(0.975, ranks, n - ranks + 1))
    upper = -np.log10(stats.beta.ppf(0.025, ranks, n - ranks + 1))
    ax.fill_between(expected[keep], lower, upper, color="gray", alpha=0.25, lw=0,
                    label="95% band")  # fmt: skip
    ax.plot([0, top], [0, top], color="gray", lw=1)
    ax.plot(expected[keep], observed[keep], ".", color="slateblue", ms=3)
    median_chi2 = float(np.median(stats.chi2.isf(p, 1)))
    lam = median_chi2 / stats.chi2.ppf(0.5, 1)
    ax.text(0.04, 0.96, f"$\\lambda_{{GC}}$ = {lam:.3f}\nn = {n}", transform=ax.transAxes,
            va="top", ha="left", fontsize=10)  # fmt: skip
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("expected -log10 p")
    ax.set_ylabel(f"observed -log10 {col}")
    ax.legend(loc="lower right", fontsize=8, frameon=False)


def _one_per_pixel(x: np.ndarray, y: np.ndarray, top: float, pixels: int = 800) -> np.ndarray:
    """Indexes of the points to draw: the first of those falling on each cell of a
    ``pixels`` x ``pixels`` grid over [0, top]^2 (the plot is at most that many pixels wide);
    the extreme points are always kept."""
    if x.size <= 2 * pixels:
        return np.arange(x.size)
    cell = np.floor(x / top * pixels).astype(np.int64) * (pixels + 1) + np.floor(
        y / top * pixels
    ).astype(np.int64)
    _, first = np.unique(cell, return_index=True)
    return np.union1d(first, [0, x.size - 1])


def plot_peaks(
    scan: pd.DataFrame,
    peaks: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    thresholds: float | Mapping[str, Any] | None = None,
    column: str = "lod",
    max_traits: int = 6,
    x_chromosomes: Collection[str] | None = None,
) -> None:
    """Draw the LOD curves of the traits that have peaks, one panel each (the first
    ``max_traits`` in the peak table's order), with threshold lines, each peak labelled with
    its marker and its interval shaded.

    Parameters
    ----------
    scan
        The scan table the peaks were found in.
    peaks
        A :func:`lmmlite.find_peaks` table.
    path
        Image file, written atomically.
    thresholds
        A number, a region mapping (``{"A": 3, "X": 3.5}``), or a mapping trait -> either
        (:func:`lmmlite.peaks.peak_thresholds`).
    column
        The LOD column of ``scan``.
    max_traits
        At most this many panels.
    x_chromosomes
        Names of the X chromosome (default: ``X`` or ``23``, any case).
    """
    plt = _pyplot()
    traits = list(dict.fromkeys(peaks["trait"].astype(str)))[:max_traits]
    if not traits:
        raise InputError("no peaks to draw")
    x_names = _x_names(x_chromosomes)
    fig, axes = plt.subplots(
        len(traits), 1, figsize=(9.0, 2.9 * len(traits)), squeeze=False, constrained_layout=True
    )
    for ax, name in zip(axes[:, 0], traits, strict=True):
        _, sub = _one_trait(scan, name)
        if column not in sub.columns:
            raise InputError(f"column {column!r} is not in the scan table")
        lines = thresholds
        if isinstance(thresholds, Mapping) and name in thresholds:
            lines = thresholds[name]
        elif isinstance(thresholds, Mapping) and not ({"A", "X"} & set(thresholds)):
            lines = None
        _draw_lod(ax, sub, column, lines, _trait_peaks(peaks, name), x_names)
        ax.set_title(str(name), loc="left", fontsize=10)
    _save(plt, fig, path)


def plot_perm(
    perm: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    trait: str | None = None,
    alpha: Sequence[float] = ALPHAS,
) -> None:
    """Histogram of a trait's permutation maxima (one panel per region, autosomes and X, when
    the table has regions) with the thresholds of
    :func:`lmmlite.permutation.perm_thresholds` drawn as vertical lines labelled with their
    genome-wide level alpha.

    Parameters
    ----------
    perm
        A permutation table (``trait``, ``perm``, ``max_lod``[, ``region``, ``length``]).
    path
        Image file, written atomically.
    trait
        Trait to draw (default: the first).
    alpha
        Genome-wide significance levels of the lines.
    """
    from .permutation import perm_thresholds

    plt = _pyplot()
    missing = [c for c in ("trait", "perm", "max_lod") if c not in perm.columns]
    if missing:
        raise InputError(f"the permutation table lacks the column(s) {', '.join(missing)}")
    perm = perm.assign(trait=perm["trait"].astype(str))
    name, sub = _one_trait(perm, trait)
    table = perm_thresholds(sub, alpha)
    regions = list(table["region"].astype(str)) if "region" in table.columns else [None]
    fig, axes = plt.subplots(
        1, len(regions), figsize=(5.2 * len(regions), 3.6), squeeze=False, constrained_layout=True
    )
    levels = [c for c in table.columns if c not in ("trait", "region", "n_perm")]
    colors = plt.get_cmap("plasma")(np.linspace(0.1, 0.8, len(levels)))
    for i, (ax, region) in enumerate(zip(axes[0], regions, strict=True)):
        values = sub["max_lod"].to_numpy(dtype=float)
        if region is not None:
            values = values[sub["region"].astype(str).to_numpy() == region]
        values = values[np.isfinite(values)]
        ax.hist(values, bins=min(60, max(10, values.size // 20)), color="lightsteelblue",
                edgecolor="white")  # fmt: skip
        for level, color in zip(levels, colors, strict=True):
            value = float(table[level].to_numpy(dtype=float)[i])
            ax.axvline(value, color=color, lw=1.3, ls="--", label=f"alpha {level}: {value:.2f}")
        ax.legend(
            loc="upper right", fontsize=8, framealpha=0.9, edgecolor="none",
            title="genome-wide threshold", title_fontsize=8,
        )  # fmt: skip
        where = "" if region is None else (" (autosomes)" if region == "A" else " (X)")
        ax.set_title(f"{name}{where}: {values.size} permutations", fontsize=10)
        ax.set_xlabel("maximum LOD")
        ax.set_ylabel("permutations")
    _save(plt, fig, path)


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
