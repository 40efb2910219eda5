"""Peaks of genome scans and their intervals: R/qtl2's ``find_peaks``, ``lod_int`` and
``bayes_int``.

Two layers, as elsewhere in lmmlite. The array functions work on one LOD curve (one trait, one
chromosome, positions in increasing order) and return indexes: :func:`find_peaks_valleys`
(R/qtl2's ``find_peaks_plain``/``find_peaks_valleys``), :func:`tied_run` (the ties of its
``find_peaks``), :func:`lod_int_indices` (``lod_int_contained``), :func:`bayes_int_indices`
(``bayes_int_contained``) and :func:`expand_to_markers` (``expand_interval_to_markers``).
:func:`find_peaks` applies them to a scan table of many traits and chromosomes and labels the
result; :func:`peak_thresholds` gives each trait's thresholds, from a number or from
permutations.

The rules follow R/qtl2 0.43-5 (``src/find_peaks.cpp``, ``src/lod_int.cpp``,
``src/bayes_int.cpp``, ``R/find_peaks_and_lodint.R``); the differences, all in corner cases
R/qtl2 does not handle, are listed in :func:`find_peaks`'s Notes.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import InputError

__all__ = [
    "PEAK_COLUMNS",
    "PSEUDOMARKER_PATTERN",
    "X_CHROMOSOMES",
    "bayes_int_indices",
    "expand_to_markers",
    "find_peaks",
    "find_peaks_valleys",
    "lod_int_indices",
    "peak_thresholds",
    "tied_run",
    "x_names",
]

#: Columns of a :func:`find_peaks` table: always the first five; ``ci_*`` with ``drop`` or
#: ``prob``; ``threshold`` and ``p_genome`` with ``perm``.
PEAK_COLUMNS = (
    "trait",
    "chr",
    "pos",
    "marker",
    "lod",
    "ci_lo",
    "ci_hi",
    "ci_lo_marker",
    "ci_hi_marker",
    "threshold",
    "p_genome",
)

#: Names of R/qtl2's pseudomarkers (``insert_pseudomarkers``: ``c16.loc8``, ``cX.loc-2.5``),
#: as R/qtl2's ``expand_interval_to_markers`` recognises them.
PSEUDOMARKER_PATTERN = re.compile(r"^c.+\.loc-*[0-9]+(\.[0-9]+)*$")

#: Chromosome names taken as the X chromosome by default (compared case-insensitively).
X_CHROMOSOMES = frozenset({"x", "23"})

_NEEDS = ("trait", "chr", "pos", "marker")


# ---------------------------------------------------------------------------------------------
# One LOD curve: arrays in, indexes out


def find_peaks_valleys(
    lod: np.ndarray, threshold: float, peakdrop: float = math.inf
) -> tuple[list[int], list[int]]:
    """Peaks of one LOD curve and the valleys between them (R/qtl2's ``find_peaks_valleys``).

    The curve is read from left to right. The first position with ``lod > threshold`` starts
    a peak; a later position above the threshold starts a new peak when both the current peak
    and it exceed the lowest LOD since the current peak by more than ``peakdrop``; otherwise a
    higher LOD moves the current peak there. With ``peakdrop = inf`` this is the first
    position of the curve's maximum, if the maximum exceeds the threshold.

    Parameters
    ----------
    lod
        LOD scores in position order (finite).
    threshold
        A peak's LOD must exceed it (strictly).
    peakdrop
        How far the LOD must fall between two peaks (>= 0; ``inf``: one peak at most).

    Returns
    -------
    peaks, valleys
        Indexes of the peaks (increasing), and the ``len(peaks) + 1`` boundaries of the
        regions that hold them: 0, the lowest position between each pair of peaks, ``n - 1``.
    """
    n = lod.size
    if n == 0 or not lod.max() > threshold:
        return [], [0, max(n - 1, 0)]
    if math.isinf(peakdrop):
        return [int(np.argmax(lod))], [0, n - 1]
    above = np.flatnonzero(lod > threshold)
    first, last = int(above[0]), int(above[-1])
    values = lod.tolist()
    peaks = [first]
    valleys = [0]
    last_peak = low = values[first]
    low_at = first
    # before the first peak nothing matters: the state is reset there, and the lowest point
    # is found again before any second peak can start; after the last candidate nothing
    # changes
    for i in range(first + 1, last + 1):
        v = values[i]
        if v < low:
            low, low_at = v, i
        if not v > threshold:
            continue
        if last_peak > low + peakdrop and v > low + peakdrop:  # a new peak
            peaks.append(i)
            valleys.append(low_at)
            last_peak = low = v
            low_at = i
        elif v > last_peak:  # the current peak moves
            peaks[-1] = i
            last_peak = low = v
            low_at = i
    valleys.append(n - 1)
    return peaks, valleys


def tied_run(lod: np.ndarray, peak: int) -> np.ndarray:
    """The positions sharing the peak's LOD found by R/qtl2's ``find_peaks`` (no interval):
    walking away from the peak on each side, the positions with an equal LOD, until one with
    a lower LOD. Returns increasing indexes."""
    value = lod[peak]
    lower_left = np.flatnonzero(lod[:peak] < value)
    lo = int(lower_left[-1]) + 1 if lower_left.size else 0
    lower_right = np.flatnonzero(lod[peak + 1 :] < value)
    hi = peak + int(lower_right[0]) if lower_right.size else lod.size - 1
    return np.flatnonzero(lod[lo : hi + 1] == value) + lo


def lod_int_indices(
    lod: np.ndarray, peak: int, drop: float, start: int = 0, end: int | None = None
) -> tuple[int, int, np.ndarray]:
    """LOD support interval of a peak within ``[start, end]`` (R/qtl2's ``lod_int_contained``).

    The interval runs from the leftmost to the rightmost position of ``[start, end]`` with
    ``lod > lod[peak] - drop`` (the peak itself if there is none on a side), each end then
    moved one position further out and clipped to ``[start, end]``.

    Returns
    -------
    left, right, ties
        The interval's end indexes, and the indexes in ``[start, end]`` whose LOD equals the
        peak's (increasing).
    """
    end = lod.size - 1 if end is None else end
    cut = lod[peak] - drop
    right_above = np.flatnonzero(lod[peak + 1 : end + 1] > cut)
    right = peak + 1 + int(right_above[-1]) if right_above.size else peak
    left_above = np.flatnonzero(lod[start:peak] > cut)
    left = start + int(left_above[0]) if left_above.size else peak
    ties = np.flatnonzero(lod[start : end + 1] == lod[peak]) + start
    return max(left - 1, start), min(right + 1, end), ties


def bayes_int_indices(
    lod: np.ndarray,
    pos: np.ndarray,
    peak: int,
    prob: float,
    start: int = 0,
    end: int | None = None,
) -> tuple[int, int, np.ndarray]:
    """Bayes credible interval of a peak within ``[start, end]`` (R/qtl2's
    ``bayes_int_contained``).

    Each position carries the area ``10^lod * width``, with width half the distance between
    its neighbours (the distance to its one neighbour at either end of the chromosome).
    Positions are taken by decreasing LOD (equal LODs in position order) until their share of
    the total area of ``[start, end]`` reaches ``prob``; the interval spans them and the peak.
    No step outward is made.

    Returns
    -------
    left, right, ties
        As :func:`lod_int_indices`. A chromosome with one position gives that position.
    """
    n = lod.size
    end = n - 1 if end is None else end
    ties = np.flatnonzero(lod[start : end + 1] == lod[peak]) + start
    if n < 2:
        return peak, peak, ties
    width = np.empty(n)
    width[0] = pos[1] - pos[0]
    width[-1] = pos[-1] - pos[-2]
    width[1:-1] = (pos[2:] - pos[:-2]) / 2.0
    region = slice(start, end + 1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_area = lod[region] * math.log(10.0) + np.log(width[region])
        top = log_area.max()
        total = top + math.log(np.exp(log_area - top).sum()) if np.isfinite(top) else top
        share = np.exp(log_area - total)
    order = np.argsort(-lod[region], kind="stable")
    reached = np.flatnonzero(np.cumsum(share[order]) >= prob)
    taken = order[: int(reached[0]) + 1] if reached.size else order
    left = min(start + int(taken.min()), peak)
    right = max(start + int(taken.max()), peak)
    return left, right, ties


def expand_to_markers(
    left: int, right: int, pseudo: Sequence[bool] | np.ndarray
) -> tuple[int, int]:
    """Move interval ends that are pseudomarkers outward to the nearest real marker (R/qtl2's
    ``expand_interval_to_markers``); an end with no real marker beyond it goes to the first
    (last) position. ``pseudo[i]``: whether position i is a pseudomarker."""
    flags = np.asarray(pseudo, dtype=bool)
    if flags[left]:
        real = np.flatnonzero(~flags[: left + 1])
        left = int(real[-1]) if real.size else 0
    if flags[right]:
        real = np.flatnonzero(~flags[right:])
        right = right + int(real[0]) if real.size else flags.size - 1
    return left, right


# ---------------------------------------------------------------------------------------------
# Thresholds


def peak_thresholds(
    traits: Sequence[str],
    *,
    threshold: float = 3.0,
    threshold_x: float | None = None,
    perm: pd.DataFrame | None = None,
    alpha: float | None = None,
) -> dict[str, dict[str, float]]:
    """Each trait's LOD thresholds for the autosomes (``"A"``) and the X chromosome (``"X"``).

    Without ``alpha``: ``threshold`` and ``threshold_x`` (default: ``threshold``) for every
    trait. With ``perm`` and ``alpha``: the ``1 - alpha`` genome-wide thresholds of
    :func:`lmmlite.permutation.perm_thresholds`; with separate X permutations (a ``region``
    column) X gets its own, otherwise both regions get the trait's single threshold.
    ``threshold`` and ``threshold_x`` are then not used.
    """
    names = [str(t) for t in dict.fromkeys(traits)]
    if alpha is None:
        a = _finite_threshold(threshold, "threshold")
        x = a if threshold_x is None else _finite_threshold(threshold_x, "threshold_x")
        return {t: {"A": a, "X": x} for t in names}
    if perm is None:
        raise InputError(f"alpha={alpha!r} needs a permutation table (perm)")
    alpha = _open_unit(alpha, "alpha")
    from .permutation import perm_thresholds

    perm = _perm_for(perm, names)
    table = perm_thresholds(perm, [alpha])
    col = f"{alpha:g}"
    out: dict[str, dict[str, float]] = {}
    if "region" in table.columns:
        for t, region, value in zip(table["trait"], table["region"], table[col], strict=True):
            out.setdefault(str(t), {})[str(region)] = float(value)
    else:
        for t, value in zip(table["trait"], table[col], strict=True):
            out[str(t)] = {"A": float(value), "X": float(value)}
    return {t: out[t] for t in names}


def _finite_threshold(value: float, what: str) -> float:
    v = float(value)
    if math.isnan(v):
        raise InputError(f"{what} must be a number; got {value!r}")
    return v


def _open_unit(value: float, what: str) -> float:
    v = float(value)
    if not 0.0 < v < 1.0:
        raise InputError(f"{what} must lie in (0, 1); got {value!r}")
    return v


def _perm_for(perm: pd.DataFrame, traits: Sequence[str]) -> pd.DataFrame:
    """The permutation table with ``trait`` as text, checked to cover ``traits``."""
    if not isinstance(perm, pd.DataFrame):
        raise InputError(f"perm must be a pandas DataFrame; got {type(perm).__name__}")
    missing_cols = [c for c in ("trait", "perm", "max_lod") if c not in perm.columns]
    if missing_cols:
        raise InputError(
            f"the permutation table lacks the column(s) {', '.join(missing_cols)} (it needs "
            f"trait, perm, max_lod[, region, length]; it has {', '.join(map(str, perm.columns))})"
        )
    perm = perm.assign(trait=perm["trait"].astype(str))
    have = set(perm["trait"])
    absent = [t for t in traits if t not in have]
    if absent:
        shown = ", ".join(repr(t) for t in absent[:5]) + (", ..." if len(absent) > 5 else "")
        raise InputError(
            f"trait(s) {shown} of the scan are not in the permutation table (it has "
            f"{', '.join(repr(t) for t in sorted(have)[:5])}{', ...' if len(have) > 5 else ''})"
        )
    return perm


# ---------------------------------------------------------------------------------------------
# A scan table: many traits and chromosomes


def find_peaks(
    scan: pd.DataFrame,
    *,
    threshold: float = 3.0,
    peakdrop: float = math.inf,
    drop: float | None = None,
    prob: float | None = None,
    expand_to_markers: bool = False,
    threshold_x: float | None = None,
    peakdrop_x: float | None = None,
    drop_x: float | None = None,
    prob_x: float | None = None,
    x_chromosomes: Collection[str] | None = None,
    perm: pd.DataFrame | None = None,
    alpha: float | None = None,
    column: str = "lod",
) -> pd.DataFrame:
    """Peaks of every trait's LOD curve on every chromosome, with LOD support or Bayes credible
    intervals: R/qtl2's ``find_peaks`` (with ``lod_int`` and ``bayes_int``).

    Parameters
    ----------
    scan
        A scan table (:func:`lmmlite.scan`): columns ``trait``, ``chr``, ``pos``, ``marker``
        and ``column``, one row per trait and marker, in any order (sorted here by position
        within each trait and chromosome; equal positions keep their order). Rows whose LOD
        is NaN (markers that could not be tested) are left out.
    threshold
        A peak's LOD must exceed it (strictly).
    peakdrop
        For more than one peak per chromosome: how far the LOD must fall between two peaks
        (``inf``, the default: the highest peak only).
    drop
        Add LOD support intervals: the positions within ``drop`` of the peak's LOD, one more
        position outward on each side (R/qtl2's ``lod_int``). Must not exceed ``peakdrop``.
    prob
        Add Bayes credible intervals of this coverage, in (0, 1) (R/qtl2's ``bayes_int``).
        Not with ``drop``.
    expand_to_markers
        Move interval ends that fall on R/qtl2 pseudomarkers (marker names matching
        :data:`PSEUDOMARKER_PATTERN`) outward to the nearest real marker (R/qtl2's
        ``expand2markers``). **R/qtl2's default is TRUE, ours False**; the results are the
        same unless the scan has pseudomarkers.
    threshold_x, peakdrop_x, drop_x, prob_x
        The same for the X chromosome (default: the autosomes' values; R/qtl2's
        ``thresholdX``, ...).
    x_chromosomes
        Names of the X chromosome(s) (default: ``X`` or ``23``, in any case).
    perm
        A permutation table (:func:`lmmlite.permutation_test`; columns ``trait``, ``perm``,
        ``max_lod`` and, with separate X permutations, ``region`` and ``length``) covering
        every trait of the scan. Adds the columns ``threshold`` and ``p_genome`` (the
        genome-wide p-value of the peak's LOD, :func:`lmmlite.permutation.genome_pvalues`).
    alpha
        With ``perm``: the genome-wide significance level whose permutation threshold
        (:func:`peak_thresholds`) replaces ``threshold`` and ``threshold_x``.
    column
        The column holding the LOD scores.

    Returns
    -------
    pandas.DataFrame
        One row per peak, columns (:data:`PEAK_COLUMNS`) ``trait``, ``chr``, ``pos`` (the
        mean position of the positions sharing the peak's LOD, as R/qtl2), ``marker`` (the
        first of those), ``lod`` (the value of ``column``); with ``drop`` or ``prob`` the
        interval's ends ``ci_lo``, ``ci_hi`` (positions) and ``ci_lo_marker``,
        ``ci_hi_marker``; with ``perm`` the ``threshold`` used and ``p_genome``. Rows follow
        the traits' order of first appearance in ``scan``, then the chromosomes', then
        position. No peak: an empty table with these columns.

    Raises
    ------
    InputError
        A missing column, a duplicated (trait, marker), a missing position, an infinite LOD,
        a negative ``drop`` or ``peakdrop``, ``drop > peakdrop``, ``prob`` outside (0, 1),
        both ``drop`` and ``prob``, ``alpha`` without ``perm``, or a trait missing from
        ``perm``.

    Notes
    -----
    Along a chromosome (positions in order) a peak is a position with LOD > threshold; a new
    peak begins once the LOD has fallen more than ``peakdrop`` below the current peak and
    risen again by more than ``peakdrop`` (:func:`find_peaks_valleys`). With intervals, each
    peak's interval is sought only between the lowest points separating it from its
    neighbours. The LOD support interval's ends are the outermost positions with
    :math:`\\mathrm{LOD} > \\mathrm{LOD}_{\\max} - \\mathrm{drop}`, each moved one position
    outward. The Bayes interval gives position :math:`i` the weight
    :math:`10^{\\mathrm{LOD}_i} w_i` (:math:`w_i` half the distance between its neighbours)
    and takes positions by decreasing LOD until their weight reaches ``prob`` of the total.

    Where this differs from R/qtl2 0.43-5:

    - With ``prob``, R/qtl2 reports the first of several positions sharing the maximum
      (``bayes_int_contained`` records the peak's index again instead of each tie's), not
      their mean as it does everywhere else; here ties are averaged with ``prob`` too, over
      the positions between the valleys, as with ``drop``.
    - R/qtl2 stops on a chromosome with a single position when asked for Bayes intervals;
      here the interval is that position.
    - Equal LODs are taken by the Bayes interval in position order (R/qtl2's unstable sort
      leaves their order to the compiler).
    - R/qtl2 keeps NaN LODs in the curve (where no comparison holds); here they are dropped.

    Examples
    --------
    >>> import pandas as pd
    >>> scan = pd.DataFrame({"trait": "y", "chr": "1", "pos": [0.0, 10.0, 20.0, 30.0],
    ...                      "marker": ["m1", "m2", "m3", "m4"], "lod": [1.0, 4.0, 3.5, 0.5]})
    >>> find_peaks(scan, threshold=3, drop=1.5)[["marker", "pos", "lod", "ci_lo", "ci_hi"]]
      marker   pos  lod  ci_lo  ci_hi
    0     m2  10.0  4.0    0.0   30.0
    """
    checked = _check_scan(scan, column)
    interval, settings = _region_settings(
        threshold, peakdrop, drop, prob, threshold_x, peakdrop_x, drop_x, prob_x
    )
    if alpha is not None and perm is None:
        raise InputError(f"alpha={alpha!r} needs a permutation table (perm)")
    xs = x_names(x_chromosomes)
    traits = list(dict.fromkeys(checked["trait"]))
    if perm is not None:
        perm = _perm_for(perm, traits)
    thresholds = peak_thresholds(
        traits, threshold=threshold, threshold_x=threshold_x, perm=perm, alpha=alpha
    )
    rows: list[tuple[Any, ...]] = []
    for (trait, chrom), curve in _curves(checked):
        region = "X" if chrom.lower() in xs else "A"
        limit = _required(thresholds[trait], region, trait)
        found = _chromosome_peaks(curve, limit, settings[region], interval, expand_to_markers)
        rows += [(trait, chrom, *row, region, limit) for row in found]
    columns = list(PEAK_COLUMNS[:9] if interval else PEAK_COLUMNS[:5])
    out = pd.DataFrame(rows, columns=[*columns, "region", "threshold"])
    floats = ["pos", "lod", "threshold", *(["ci_lo", "ci_hi"] if interval else [])]
    out = out.astype(dict.fromkeys(floats, float))
    if perm is None:
        return out[columns]
    from .permutation import genome_pvalues

    out["p_genome"] = (
        genome_pvalues(perm, list(out["trait"]), out["lod"].to_numpy(), list(out["region"]))
        if len(out)
        else np.empty(0)
    )
    return out[[*columns, "threshold", "p_genome"]]


@dataclass(frozen=True)
class _Settings:
    """find_peaks' settings for one region (autosomes or X), checked."""

    peakdrop: float
    drop: float = math.nan
    prob: float = math.nan


def _region_settings(
    threshold: float,
    peakdrop: float,
    drop: float | None,
    prob: float | None,
    threshold_x: float | None,
    peakdrop_x: float | None,
    drop_x: float | None,
    prob_x: float | None,
) -> tuple[str | None, dict[str, _Settings]]:
    """The kind of interval ("drop", "prob" or None) and the settings of regions A and X."""
    if drop is not None and prob is not None:
        raise InputError(
            f"give drop (LOD support intervals) or prob (Bayes intervals), not both; got "
            f"drop={drop!r} and prob={prob!r}"
        )
    if drop_x is not None and drop is None:
        raise InputError(f"drop_x={drop_x!r} needs drop (LOD support intervals)")
    if prob_x is not None and prob is None:
        raise InputError(f"prob_x={prob_x!r} needs prob (Bayes intervals)")
    _finite_threshold(threshold, "threshold")
    if threshold_x is not None:
        _finite_threshold(threshold_x, "threshold_x")
    settings = {}
    for region, suffix, pdrop, d, p in (
        ("A", "", peakdrop, drop, prob),
        ("X", "_x", peakdrop if peakdrop_x is None else peakdrop_x, drop_x, prob_x),
    ):
        pdrop = _non_negative(pdrop, f"peakdrop{suffix}")
        if drop is not None:
            d = _non_negative(drop if d is None else d, f"drop{suffix}")
            if d > pdrop:
                raise InputError(
                    f"drop{suffix} must not exceed peakdrop{suffix} (R/qtl2's rule: an interval "
                    f"lies between the valleys around its peak); got drop{suffix}={d:g}, "
                    f"peakdrop{suffix}={pdrop:g}"
                )
            settings[region] = _Settings(pdrop, drop=d)
        elif prob is not None:
            settings[region] = _Settings(
                pdrop, prob=_open_unit(prob if p is None else p, f"prob{suffix}")
            )
        else:
            settings[region] = _Settings(pdrop)
    interval = "drop" if drop is not None else "prob" if prob is not None else None
    return interval, settings


def _non_negative(value: float, what: str) -> float:
    v = float(value)
    if math.isnan(v) or v < 0:
        raise InputError(f"{what} must be >= 0; got {value!r}")
    return v


def x_names(x_chromosomes: Collection[str] | None) -> frozenset[str]:
    """The names (lower case) that mark the X chromosome: ``x_chromosomes``, or by default
    ``X_CHROMOSOMES``."""
    if x_chromosomes is None:
        return X_CHROMOSOMES
    if isinstance(x_chromosomes, str):
        x_chromosomes = [x_chromosomes]
    return frozenset(str(c).lower() for c in x_chromosomes)


def _required(thresholds: Mapping[str, float], region: str, trait: str) -> float:
    value = thresholds.get(region)
    if value is None or math.isnan(value):
        raise InputError(
            f"the permutation table has no {region} region threshold for trait {trait!r} "
            f"(it has {sorted(thresholds)})"
        )
    return value


def _check_scan(scan: pd.DataFrame, column: str) -> pd.DataFrame:
    """The scan's trait, chr, pos, marker and LOD columns, as text and floats; NaN LODs
    dropped."""
    if not isinstance(scan, pd.DataFrame):
        raise InputError(f"scan must be a pandas DataFrame; got {type(scan).__name__}")
    needs = [*_NEEDS, column]
    missing = [c for c in needs if c not in scan.columns]
    if missing:
        raise InputError(
            f"the scan table lacks the column(s) {', '.join(missing)} (it needs "
            f"{', '.join(needs)}; it has {', '.join(map(str, scan.columns[:10]))})"
        )
    for c in ("trait", "marker", "chr"):
        if scan[c].isna().any():
            row = int(np.flatnonzero(scan[c].isna().to_numpy())[0])
            raise InputError(f"the scan table's {c!r} is missing on row {row + 1}")
    out = pd.DataFrame(
        {c: scan[c].astype(str).to_numpy() for c in ("trait", "chr", "marker")},
        index=pd.RangeIndex(len(scan)),
    )
    for c, name in (("pos", "pos"), (column, "lod")):
        try:
            out[name] = pd.to_numeric(scan[c], errors="raise").to_numpy(dtype=float)
        except (ValueError, TypeError):
            raise InputError(f"the scan table's {c!r} column is not numeric") from None
    bad_pos = ~np.isfinite(out["pos"].to_numpy())
    if bad_pos.any():
        i = int(np.flatnonzero(bad_pos)[0])
        raise InputError(
            f"{int(bad_pos.sum())} position(s) are missing or infinite, e.g. marker "
            f"{out['marker'].iat[i]!r} of trait {out['trait'].iat[i]!r}"
        )
    lod = out["lod"].to_numpy()
    if np.isinf(lod).any():
        i = int(np.flatnonzero(np.isinf(lod))[0])
        raise InputError(
            f"{column!r} is infinite at marker {out['marker'].iat[i]!r} of trait "
            f"{out['trait'].iat[i]!r}: LOD scores must be finite (or NaN: not tested)"
        )
    dup = out.duplicated(["trait", "marker"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(
            f"marker {out['marker'].iat[i]!r} appears more than once for trait "
            f"{out['trait'].iat[i]!r} ({int(dup.sum())} duplicated (trait, marker) rows)"
        )
    return out[~np.isnan(lod)]


def _curves(
    table: pd.DataFrame,
) -> Iterator[tuple[tuple[str, str], dict[str, np.ndarray]]]:
    """(trait, chr), curve for each trait and chromosome, in the order of first appearance;
    a curve holds ``pos``, ``lod`` and ``marker`` arrays sorted by position (stably)."""
    t_code, _ = pd.factorize(table["trait"])
    c_code, _ = pd.factorize(table["chr"])
    pos = table["pos"].to_numpy()
    order = np.lexsort((np.arange(len(table)), pos, c_code, t_code))
    key = (t_code.astype(np.int64) * (int(c_code.max(initial=0)) + 1) + c_code)[order]
    bounds = [0, *(np.flatnonzero(np.diff(key)) + 1).tolist(), len(order)]
    lod_all = table["lod"].to_numpy()[order]
    pos_all = pos[order]
    marker_all = table["marker"].to_numpy()[order]
    trait_all = table["trait"].to_numpy()[order]
    chr_all = table["chr"].to_numpy()[order]
    for a, b in itertools.pairwise(bounds):
        if b > a:
            curve = {"lod": lod_all[a:b], "pos": pos_all[a:b], "marker": marker_all[a:b]}
            yield (trait_all[a], chr_all[a]), curve


def _chromosome_peaks(
    curve: Mapping[str, np.ndarray],
    threshold: float,
    settings: _Settings,
    interval: str | None,
    expand: bool,
) -> list[tuple[Any, ...]]:
    """(pos, marker, lod[, ci_lo, ci_hi, ci_lo_marker, ci_hi_marker]) of each peak of one
    trait on one chromosome."""
    lod, pos, marker = curve["lod"], curve["pos"], curve["marker"]
    peaks, valleys = find_peaks_valleys(lod, threshold, settings.peakdrop)
    pseudo = None
    rows = []
    for i, peak in enumerate(peaks):
        start, end = valleys[i], valleys[i + 1]
        ci: tuple[Any, ...] = ()
        if interval is None:
            ties = tied_run(lod, peak)
        else:
            if interval == "drop":
                left, right, ties = lod_int_indices(lod, peak, settings.drop, start, end)
            else:
                left, right, ties = bayes_int_indices(lod, pos, peak, settings.prob, start, end)
            if expand:
                if pseudo is None:
                    pseudo = np.array([bool(PSEUDOMARKER_PATTERN.match(m)) for m in marker])
                left, right = expand_to_markers(left, right, pseudo)
            ci = (pos[left], pos[right], marker[left], marker[right])
        rows.append((float(np.mean(pos[ties])), marker[ties[0]], lod[peak], *ci))
    return rows
