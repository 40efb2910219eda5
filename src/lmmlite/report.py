"""An interactive report: one self-contained HTML page of a scan, its peaks, permutation
thresholds and heritabilities (Plotly, an optional dependency: ``pip install 'lmmlite[report]'``).

:func:`report` reads the tables (or takes them as DataFrames), prepares what the page draws
(genome axis, thinned points, QQ points with lambda_GC and its 95% band, thresholds, peaks,
the trait-by-QTL position plot, the heritability table, provenance) and writes one HTML file
that opens offline: Plotly's JavaScript, the page's glue (``_report_app.js``, which only
builds Plotly figures from the data and wires the clicks) and the data are all inlined.

The data preparation is plain NumPy and tested on its own: :func:`thin_markers` (every point
at or above a LOD floor, below it one per cell of a grid), :func:`lambda_gc`,
:func:`qq_points`, :func:`genome_layout` and :func:`bonferroni_lod`.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import math
import os
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._version import __version__
from .exceptions import InputError
from .io.tables import atomic_write, sha256_file

__all__ = [
    "GRID",
    "LOD_FLOOR",
    "MAX_POINTS",
    "Report",
    "bonferroni_lod",
    "genome_layout",
    "lambda_gc",
    "qq_points",
    "report",
    "thin_markers",
]

#: Below this LOD a trait with more than :data:`MAX_POINTS` markers is thinned; every point at
#: or above it is drawn.
LOD_FLOOR = 2.0
#: A trait with at most this many markers is drawn whole.
MAX_POINTS = 50_000
#: Cells (along the genome, along the LOD axis below the floor) of the thinning grid: one point
#: per cell is kept. 3000 columns are more than a screen's pixels across the genome.
GRID = (3000, 20)
#: Cells per side of the QQ plot's grid (one point per cell; the extreme points always kept).
QQ_PIXELS = 500
#: Genome-wide levels whose permutation thresholds are drawn by default.
ALPHA = (0.05, 0.2)
#: p-value columns, in order of preference, for the QQ plot and the hover text.
P_COLUMNS = ("p_wald", "p_lrt", "p_score", "p")
#: A trait with more points than this is drawn with WebGL (``scattergl``); SVG below.
WEBGL_ABOVE = 15_000
#: The chi-square(1) median, :math:`\\chi^2_{1, 0.5}`, the denominator of lambda_GC.
CHI2_MEDIAN = 0.454936423119572


@dataclass(frozen=True)
class Report:
    """An HTML report built by :func:`report`."""

    html: str
    """The page: one self-contained HTML document."""
    traits: int
    """Traits in the scan table (0 without a scan)."""
    rows: int
    """Rows of the scan table."""
    shown: int
    """Scan rows drawn after thinning (every row at or above ``lod_floor`` among them)."""
    lod_floor: float | None
    """The LOD floor of the thinning; None when no trait had to be thinned."""
    plotly_bytes: int
    """Bytes of the page taken by Plotly's JavaScript (the rest is data and glue)."""

    @property
    def size(self) -> int:
        """Bytes of the page (UTF-8)."""
        return len(self.html.encode("utf-8"))

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the page to ``path`` atomically."""
        data = self.html.encode("utf-8")

        def _write(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                fh.write(data)

        atomic_write(path, _write)


# ---------------------------------------------------------------------------------------------
# Data preparation (arrays in, arrays out)


def _chrom_key(c: str) -> tuple[int, int, str]:
    s = str(c)
    return (0, int(s), "") if s.isdigit() else (1, 0, s)


def genome_layout(
    chrom: Sequence[str] | np.ndarray, pos: Sequence[float] | np.ndarray
) -> pd.DataFrame:
    """Chromosomes side by side on one genome axis, numbered ones first (1, 2, ..., 10, ...),
    then the others by name, with a 3% gap between them.

    Returns
    -------
    pandas.DataFrame
        One row per chromosome: ``chr``, ``offset`` (where it starts on the genome axis),
        ``lo`` (its first position), ``span`` (last - first position, at least 1). A position
        ``p`` on chromosome ``c`` is at ``offset + p - lo``.
    """
    table = pd.DataFrame({"chr": np.asarray(chrom).astype(str), "pos": np.asarray(pos, float)})
    table = table[np.isfinite(table["pos"])]
    ranges = table.groupby("chr", sort=False)["pos"].agg(["min", "max"])
    names = sorted(ranges.index, key=_chrom_key)
    lo = ranges.loc[names, "min"].to_numpy(float) if names else np.empty(0)
    span = np.maximum(ranges.loc[names, "max"].to_numpy(float) - lo, 1.0) if names else lo
    gap = 0.03 * float(span.sum()) / max(len(names), 1)
    offset = np.concatenate([[0.0], np.cumsum(span + gap)[:-1]]) if names else lo
    return pd.DataFrame({"chr": names, "offset": offset, "lo": lo, "span": span})


def _genome_x(
    layout: pd.DataFrame, chrom: np.ndarray, pos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(index of the chromosome in ``layout``, -1 if absent; position on the genome axis)."""
    where = pd.Index(layout["chr"]).get_indexer(pd.Series(chrom).astype(str))
    known = where >= 0
    x = np.full(len(where), np.nan)
    x[known] = (
        layout["offset"].to_numpy()[where[known]]
        + pos[known]
        - layout["lo"].to_numpy()[where[known]]
    )
    return where, x


def thin_markers(
    x: np.ndarray, lod: np.ndarray, *, floor: float, grid: tuple[int, int] = GRID
) -> np.ndarray:
    """Indexes of the points to draw: every point with LOD >= ``floor``, and below it the
    highest point of each cell of a ``grid[0]`` (along ``x``) by ``grid[1]`` (LOD from the
    lowest value to ``floor``) grid. Points whose x or LOD is not finite are left out.

    The result is sorted. The picture is unchanged at the grid's resolution: a cell holds at
    least one point wherever the full scan has one.

    Examples
    --------
    >>> x = np.arange(10.0); lod = np.array([0, .1, .2, 5, .1, 0, 0, 3, .2, 0])
    >>> thin_markers(x, lod, floor=2.0, grid=(2, 1)).tolist()
    [2, 3, 7, 8]
    """
    x = np.asarray(x, dtype=float)
    lod = np.asarray(lod, dtype=float)
    if x.shape != lod.shape:
        raise InputError(f"x and lod differ in shape: {x.shape} and {lod.shape}")
    nx, ny = int(grid[0]), int(grid[1])
    if nx < 1 or ny < 1:
        raise InputError(f"grid must have at least one cell each way; got {grid}")
    ok = np.isfinite(x) & np.isfinite(lod)
    above = np.flatnonzero(ok & (lod >= floor))
    below = np.flatnonzero(ok & (lod < floor))
    if below.size == 0:
        return above
    xb, yb = x[below], lod[below]
    x0, x1 = float(x[ok].min()), float(x[ok].max())
    y0 = float(yb.min())
    cx = np.minimum(((xb - x0) / max(x1 - x0, 1e-300) * nx).astype(np.int64), nx - 1)
    cy = np.minimum(((yb - y0) / max(floor - y0, 1e-300) * ny).astype(np.int64), ny - 1)
    cell = cx * ny + cy
    order = np.lexsort((-yb, cell))  # by cell, the highest LOD first within a cell
    first = order[np.r_[True, cell[order][1:] != cell[order][:-1]]]
    return np.sort(np.concatenate([above, below[first]]))


def lambda_gc(p: np.ndarray) -> float:
    """Genomic-control inflation factor of p-values: the median of their 1-df chi-square
    statistics over the chi-square(1) median, ignoring p-values that are not finite.
    NaN without any.

    Notes
    -----
    .. math::

        \\lambda_{GC} = \\mathrm{median}_i\\, F^{-1}_{\\chi^2_1}(1 - p_i) / F^{-1}_{\\chi^2_1}(0.5)

    (Devlin and Roeder 1999). The statistics are computed from the p-values, whatever test
    produced them.
    """
    from scipy import stats

    p = np.asarray(p, dtype=float)
    p = p[np.isfinite(p)]
    if p.size == 0:
        return math.nan
    # the statistic decreases with p, so its median comes from the one or two middle p-values
    # (no need to transform them all)
    k = (p.size - 1) // 2
    middle = np.partition(p, [k, p.size // 2])[[k, p.size // 2]]
    return float(np.mean(stats.chi2.isf(middle, 1)) / CHI2_MEDIAN)


def qq_points(p: np.ndarray, *, pixels: int = QQ_PIXELS) -> dict[str, np.ndarray]:
    """The points of a QQ plot of p-values (-log10 scale) and its pointwise 95% band, thinned
    to one point per cell of a ``pixels`` x ``pixels`` grid (the smallest and largest p-value
    always kept).

    Returns
    -------
    dict
        ``expected`` (-log10 of (i - 0.5) / n), ``observed`` (-log10 of the i-th smallest
        p-value, 0 drawn at 1e-300), ``lower``, ``upper`` (the 97.5% and 2.5% quantiles of
        Beta(i, n - i + 1), the i-th smallest of n uniform p-values, on the -log10 scale),
        ``rank`` (i), all for the kept points in order of rank.
    """
    from scipy import stats

    p = np.asarray(p, dtype=float)
    p = p[np.isfinite(p)]
    p = np.sort(np.where(p == 0, 1e-300, p))
    n = p.size
    if n == 0:
        empty = np.empty(0)
        return {"expected": empty, "observed": empty, "lower": empty, "upper": empty, "rank": empty}
    observed = -np.log10(p)
    expected = -np.log10((np.arange(1, n + 1) - 0.5) / n)
    top = max(float(expected[0]), float(observed.max()), 1e-12)
    cell = np.floor(expected / top * pixels).astype(np.int64) * (pixels + 1) + np.floor(
        np.clip(observed, 0, top) / top * pixels
    ).astype(np.int64)
    _, first = np.unique(cell, return_index=True)
    keep = np.union1d(first, [0, n - 1])
    rank = keep + 1
    lower = -np.log10(stats.beta.ppf(0.975, rank, n - rank + 1))
    upper = -np.log10(stats.beta.ppf(0.025, rank, n - rank + 1))
    return {
        "expected": expected[keep],
        "observed": observed[keep],
        "lower": lower,
        "upper": upper,
        "rank": rank.astype(float),
    }


def bonferroni_lod(n_tests: int, *, df: int = 1, alpha: float = 0.05) -> float:
    """The LOD of a likelihood-ratio test with ``df`` degrees of freedom whose p-value is the
    Bonferroni threshold ``alpha / n_tests``: :math:`\\chi^2_{df}` quantile / (2 ln 10).

    >>> round(bonferroni_lod(10_000), 3)
    4.525
    """
    from scipy import stats

    if n_tests < 1:
        raise InputError(f"n_tests must be at least 1; got {n_tests}")
    return float(stats.chi2.isf(alpha / n_tests, df) / (2.0 * math.log(10.0)))


# ---------------------------------------------------------------------------------------------
# Inputs: tables or files, each with its provenance record

#: Columns read as text from a table file.
_TEXT: dict[str, type] = {"trait": str, "chr": str, "marker": str}


def _checksum(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of a file; for a Parquet dataset folder, of its manifest (which holds
    every published part's checksum) or, without one, of its files' checksums in name order."""
    if path.is_file():
        return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    manifest = path / "_manifest.json"
    if manifest.is_file():
        return {
            "bytes": manifest.stat().st_size,
            "sha256": sha256_file(manifest),
            "note": "sha256 of the dataset's _manifest.json",
        }
    import hashlib

    h = hashlib.sha256()
    files = sorted(f for f in path.rglob("*") if f.is_file())
    for f in files:
        h.update(f"{f.relative_to(path)}\0{sha256_file(f)}\n".encode())
    size = sum(f.stat().st_size for f in files)
    return {"bytes": size, "sha256": h.hexdigest(), "note": "sha256 of the files' checksums"}


def _load(
    value: pd.DataFrame | str | os.PathLike[str] | None,
    what: str,
    reader: Any,
) -> tuple[pd.DataFrame | None, dict[str, Any] | None]:
    """(table, provenance record) of an input given as a table or a file."""
    if value is None:
        return None, None
    if isinstance(value, pd.DataFrame):
        from ._dataset import frame_sha256

        return value, {
            "input": what,
            "source": "DataFrame",
            "rows": len(value),
            "sha256": frame_sha256(value),
            "note": "sha256 of the table's content",
        }
    if not isinstance(value, (str, os.PathLike)):
        raise InputError(f"{what} must be a DataFrame or a file path; got {type(value).__name__}")
    table = reader(value)
    record = {"input": what, "source": str(value), "rows": len(table), **_checksum(Path(value))}
    return table, record


def _scan_manifest(value: Any) -> dict[str, Any] | None:
    if isinstance(value, (str, os.PathLike)):
        manifest = Path(value) / "_manifest.json"
        if manifest.is_file():
            try:
                out: dict[str, Any] = json.loads(manifest.read_text())
                return out
            except (OSError, ValueError):
                return None
    return None


# ---------------------------------------------------------------------------------------------
# The page's data


def _b64(values: np.ndarray, dtype: str) -> str:
    """Little-endian bytes of ``values`` as ``dtype`` (``f4``, ``f8``, ``i4``), base64."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<" + dtype).tobytes()).decode()


def _clean(value: Any) -> Any:
    """JSON-ready: NaN and infinities as None, NumPy scalars as Python ones."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _column(table: pd.DataFrame, name: str | None) -> np.ndarray:
    if name is None or name not in table.columns:
        return np.full(len(table), np.nan)
    return pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)


def _pick_pvalue(table: pd.DataFrame, pvalue: str | None) -> str | None:
    if pvalue is not None:
        if pvalue not in table.columns:
            raise InputError(f"p-value column {pvalue!r} is not in the scan table")
        return pvalue
    return next((c for c in P_COLUMNS if c in table.columns), None)


def _infer_keep(scan: pd.DataFrame, manifest: dict[str, Any] | None) -> str:
    """``all`` (every marker), ``peaks`` or ``max`` (a reduced table) as the scan was run."""
    if manifest and isinstance(manifest.get("options"), dict) and "keep" in manifest["options"]:
        return str(manifest["options"]["keep"])
    if len(scan) == 0:
        return "all"
    per_chr = scan.groupby(["trait", "chr"], sort=False).size()
    if int(per_chr.max()) > 1:
        return "all"
    return "max" if int(scan.groupby("trait", sort=False).size().max()) == 1 else "peaks"


@dataclass(frozen=True)
class _Scan:
    """A scan table checked and put on the genome axis."""

    table: pd.DataFrame
    traits: list[str]
    code: np.ndarray  # trait index of each row
    layout: pd.DataFrame
    chrom: np.ndarray  # chromosome index (in layout) of each row
    x: np.ndarray
    lod: np.ndarray
    pcol: str | None
    keep: str


def _check_scan(
    scan: pd.DataFrame,
    layout_extra: pd.DataFrame | None,
    keep: str | None,
    manifest: dict[str, Any] | None,
    pvalue: str | None,
) -> _Scan:
    missing = [c for c in ("trait", "chr", "pos", "marker", "lod") if c not in scan.columns]
    if missing:
        raise InputError(
            f"the scan table lacks the column(s) {', '.join(missing)} (a table written by "
            f"lmmlite scan has them; it has {', '.join(map(str, scan.columns[:8]))})"
        )
    if keep is not None and keep not in ("all", "peaks", "max"):
        raise InputError(f"keep must be 'all', 'peaks' or 'max'; got {keep!r}")
    table = scan.reset_index(drop=True)
    table = table.assign(
        trait=table["trait"].astype(str),
        chr=table["chr"].astype(str),
        marker=table["marker"].astype(str),
    )
    pos = _column(table, "pos")
    chr_all = table["chr"].to_numpy()
    if layout_extra is not None:
        layout = genome_layout(
            np.concatenate([chr_all, layout_extra["chr"].to_numpy(str)]),
            np.concatenate([pos, _column(layout_extra, "pos")]),
        )
    else:
        layout = genome_layout(chr_all, pos)
    chrom, x = _genome_x(layout, chr_all, pos)
    codes, uniques = pd.factorize(table["trait"], sort=False)
    return _Scan(
        table=table,
        traits=[str(t) for t in uniques],
        code=np.asarray(codes),
        layout=layout,
        chrom=chrom,
        x=x,
        lod=_column(table, "lod"),
        pcol=_pick_pvalue(table, pvalue),
        keep=keep or _infer_keep(table, manifest),
    )


def _effect_columns(table: pd.DataFrame) -> list[str]:
    """``beta`` for one-column genotypes; ``beta_<j>`` for k-column ones."""
    multi = [c for c in table.columns if re.fullmatch(r"beta_\d+", str(c))]
    if multi:
        return multi
    return ["beta"] if "beta" in table.columns else []


def _thin_scan(s: _Scan, floor: float, max_points: int) -> tuple[np.ndarray, bool]:
    """Rows to draw, grouped by trait (traits in order, rows by genome position within), and
    whether any trait was thinned."""
    order = np.lexsort((s.x, s.code))
    starts = np.searchsorted(s.code[order], np.arange(len(s.traits) + 1))
    parts, thinned = [], False
    for t in range(len(s.traits)):
        rows = order[starts[t] : starts[t + 1]]
        if rows.size > max_points:
            keep = thin_markers(s.x[rows], s.lod[rows], floor=floor)
            thinned = thinned or keep.size < rows.size
            rows = rows[keep]
        else:
            rows = rows[np.isfinite(s.x[rows]) & np.isfinite(s.lod[rows])]
        parts.append(rows)
    return (np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)), thinned


def _scan_data(s: _Scan, rows: np.ndarray) -> dict[str, Any]:
    """The drawn rows: a marker table (each marker once) and per row its marker, LOD, p, beta,
    se, af and effects; ``offsets[t]:offsets[t + 1]`` are trait t's rows."""
    table = s.table
    mcode, markers = pd.factorize(table["marker"].to_numpy()[rows], sort=False)
    first = np.zeros(len(markers), dtype=np.int64)
    first[mcode[::-1]] = rows[::-1]  # the first row of each marker
    offsets = np.searchsorted(s.code[rows], np.arange(len(s.traits) + 1))
    columns: dict[str, str | None] = {}
    for name, col in (("beta", "beta"), ("se", "se"), ("af", "af")):
        columns[name] = _b64(_column(table, col)[rows], "f4") if col in table.columns else None
    if s.pcol is not None:  # -log10 p: float32 keeps 7 digits of it, even for p = 1e-300
        p = _column(table, s.pcol)[rows]
        with np.errstate(divide="ignore"):
            columns["mlog10p"] = _b64(-np.log10(np.where(p == 0, 1e-300, p)), "f4")
    else:
        columns["mlog10p"] = None
    # effect curves: k-column genotypes' beta_j (one-column genotypes: beta, already there)
    effects = [e for e in _effect_columns(table) if e != "beta"] if s.keep == "all" else []
    return {
        "markers": {
            "name": [str(m) for m in markers],
            "chr": _b64(s.chrom[first], "i4"),
            "pos": _b64(_column(table, "pos")[first], "f8"),
        },
        "offsets": _b64(offsets, "i4"),
        "marker": _b64(mcode, "i4"),
        "lod": _b64(s.lod[rows], "f4"),
        **columns,
        "pcol": s.pcol,
        "effects": {e: _b64(_column(table, e)[rows], "f4") for e in effects},
    }


def _qq_data(s: _Scan) -> list[Any] | None:
    """Per trait: QQ points, band and lambda_GC (None for a table of peaks or maxima)."""
    if s.keep != "all" or s.pcol is None:
        return None
    p = _column(s.table, s.pcol)
    order = np.argsort(s.code, kind="stable")
    starts = np.searchsorted(s.code[order], np.arange(len(s.traits) + 1))
    out: list[Any] = []
    for t in range(len(s.traits)):
        pt = p[order[starts[t] : starts[t + 1]]]
        pt = pt[np.isfinite(pt)]
        if pt.size == 0:
            out.append(None)
            continue
        q = qq_points(pt)
        out.append(
            {k: _b64(q[k], "f4") for k in ("expected", "observed", "lower", "upper")}
            | {"lambda": lambda_gc(pt), "n": int(pt.size)}
        )
    return out


def _thresholds(s: _Scan, perm: pd.DataFrame | None, alpha: Sequence[float]) -> dict[str, Any]:
    """LOD lines: per trait and level from permutations (autosomes ``A``, X chromosome
    ``X``), or one Bonferroni line for every trait (a full scan only)."""
    if perm is not None:
        from .permutation import perm_thresholds

        table = perm_thresholds(perm.assign(trait=perm["trait"].astype(str)), alpha)
        where = {t: i for i, t in enumerate(s.traits)}
        per: dict[int, list[dict[str, Any]]] = {}
        for row in table.to_dict("records"):
            t = where.get(str(row["trait"]))
            if t is None:
                continue
            region = str(row.get("region", "A"))
            for a in alpha:
                value = float(row[f"{a:g}"])
                lines = per.setdefault(t, [])
                line = next((ln for ln in lines if ln["alpha"] == a), None)
                if line is None:
                    line = {"alpha": a, "label": f"{a:g} (perm)", "A": None, "X": None}
                    lines.append(line)
                line[region] = value
                if "region" not in table.columns:
                    line["X"] = value
        return {
            "kind": "perm",
            "per_trait": {str(k): v for k, v in per.items()},
            "n_perm": int(table["n_perm"].max()) if len(table) else 0,
        }
    if s.keep != "all" or not len(s.table):
        return {
            "kind": "none",
            "why": "a table of peaks does not tell how many markers were "
            "tested: give a permutation table for thresholds",
        }
    tested = np.isfinite(s.lod)
    m = int(np.max(np.bincount(s.code[tested], minlength=len(s.traits)))) if tested.any() else 0
    if m == 0:
        return {"kind": "none", "why": "no finite LOD"}
    df = max(len(_effect_columns(s.table)), 1)
    value = bonferroni_lod(m, df=df)
    label = f"Bonferroni 0.05/{m:,} (LOD {value:.2f}, χ²<sub>{df}</sub>)"
    return {
        "kind": "bonferroni",
        "all": [{"alpha": 0.05, "label": label, "A": value, "X": value}],
        "m": m,
        "df": df,
    }


def _peak_table(
    s: _Scan,
    peaks: pd.DataFrame | None,
    perm: pd.DataFrame | None,
    thresholds: dict[str, Any],
    alpha: Sequence[float],
) -> tuple[pd.DataFrame, str]:
    """The peaks to label: the table given; else a table of peaks itself; else
    :func:`lmmlite.find_peaks` above the (first) threshold."""
    if peaks is not None:
        missing = [c for c in ("trait", "chr", "pos") if c not in peaks.columns]
        if missing:
            raise InputError(f"the peaks table lacks the column(s) {', '.join(missing)}")
        return peaks, "the peaks table given"
    if s.keep != "all":
        return s.table, f"the rows of the scan table (keep={s.keep})"
    from .peaks import find_peaks

    # The highest LOD above the threshold on each chromosome (find_peaks without intervals and
    # peakdrop=inf) is found among the rows above the lowest threshold alone: searched there.
    if perm is not None:
        lines = thresholds["per_trait"].values()
        low = min(
            (v for ls in lines for ln in ls for v in (ln["A"], ln["X"]) if v is not None),
            default=-math.inf,
        )
        found = find_peaks(s.table[s.lod > low], perm=perm, alpha=float(alpha[0]))
        return found, f"lmmlite.find_peaks above the {alpha[0]:g} permutation threshold"
    if thresholds["kind"] == "bonferroni":
        value = float(thresholds["all"][0]["A"])
        found = find_peaks(s.table[s.lod > value], threshold=value)
        return found, "lmmlite.find_peaks above the Bonferroni LOD"
    return s.table.iloc[:0], "none"


def _peak_data(s: _Scan, peaks: pd.DataFrame, trait_pos: pd.DataFrame | None) -> dict[str, Any]:
    """Peaks per trait (sorted by trait), with the trait's own position when known."""
    peaks = peaks.assign(trait=peaks["trait"].astype(str), chr=peaks["chr"].astype(str))
    where = {t: i for i, t in enumerate(s.traits)}
    mapped = peaks["trait"].map(where)
    chrom, x = _genome_x(s.layout, peaks["chr"].to_numpy(), _column(peaks, "pos"))
    ok = mapped.notna().to_numpy() & (chrom >= 0)
    dropped = int((~ok).sum())
    code = mapped[ok].to_numpy(dtype=np.int64)
    peaks, chrom, x = peaks[ok], chrom[ok], x[ok]
    order = np.argsort(code, kind="stable")
    peaks, code, chrom, x = peaks.iloc[order], code[order], chrom[order], x[order]
    lod = _column(peaks, "lod")
    if trait_pos is not None:
        tp = trait_pos.assign(trait=trait_pos["trait"].astype(str)).drop_duplicates("trait")
        tp = tp.set_index("trait").reindex(peaks["trait"])
        _, ty = _genome_x(s.layout, tp["chr"].fillna("").to_numpy(str), _column(tp, "pos"))
    else:
        ty = code.astype(float)
    out: dict[str, Any] = {
        "n": len(peaks),
        "dropped": dropped,
        "offsets": _b64(np.searchsorted(code, np.arange(len(s.traits) + 1)), "i4"),
        "trait": _b64(code, "i4"),
        "chr": _b64(chrom, "i4"),
        "pos": _b64(_column(peaks, "pos"), "f8"),
        "lod": _b64(lod, "f4"),
        "y": _b64(ty, "f8"),
        "marker": [str(m) for m in peaks["marker"]] if "marker" in peaks.columns else None,
        "by_position": trait_pos is not None,
    }
    for col in ("ci_lo", "ci_hi"):
        out[col] = _b64(_column(peaks, col), "f8") if col in peaks.columns else None
    return out


def _herit_data(herit: pd.DataFrame) -> dict[str, Any]:
    """Rows of the heritability table: trait, n, hsq, its interval (profile interval, else
    hsq +- 1.96 se clipped to [0, 1]), se, LRT p-value and the flags."""
    h = herit.copy()
    if "trait" not in h.columns:
        h = h.reset_index()
        h = h.rename(columns={h.columns[0]: "trait"})
    if "hsq" not in h.columns:
        raise InputError(
            "the heritability table has no hsq column (it has "
            f"{', '.join(map(str, h.columns[:8]))})"
        )
    hsq, se = _column(h, "hsq"), _column(h, "hsq_se")
    lo_col = next((c for c in ("hsq_ci_lower", "ci_lo") if c in h.columns), None)
    hi_col = next((c for c in ("hsq_ci_upper", "ci_hi") if c in h.columns), None)
    if lo_col and hi_col:
        lo, hi, kind = _column(h, lo_col), _column(h, hi_col), "profile likelihood interval"
    else:
        lo, hi, kind = (
            np.clip(hsq - 1.96 * se, 0, 1),
            np.clip(hsq + 1.96 * se, 0, 1),
            "hsq ± 1.96 se",
        )

    def flag(name: str, default: bool) -> list[bool]:
        if name not in h.columns:
            return [default] * len(h)
        v = h[name]
        if v.dtype == object:
            v = v.astype(str).str.lower().isin(["true", "1", "yes"])
        return [bool(b) for b in v.fillna(default)]

    def rounded(v: np.ndarray, digits: int) -> list[float]:
        return [float(f"{x:.{digits}g}") for x in v]

    hsq, lo, hi, se = (np.round(v, 4) for v in (hsq, lo, hi, se))
    return {
        "interval": kind,
        "rows": _clean(
            {
                "trait": [str(t) for t in h["trait"]],
                "n": _column(h, "n").tolist(),
                "hsq": hsq.tolist(),
                "lo": lo.tolist(),
                "hi": hi.tolist(),
                "se": se.tolist(),
                "p": rounded(_column(h, "lrt_pvalue"), 3),
                "boundary": flag("at_boundary", False),
                "converged": flag("converged", True),
            }
        ),
    }


# ---------------------------------------------------------------------------------------------
# The page


def _asset(name: str) -> str:
    return resources.files("lmmlite").joinpath(name).read_text(encoding="utf-8")


def _plotly_js() -> tuple[str, str]:
    try:
        import plotly
        from plotly.offline import get_plotlyjs
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("the report needs plotly: pip install 'lmmlite[report]'") from None
    return get_plotlyjs(), str(plotly.__version__)


def _script_json(payload: dict[str, Any]) -> str:
    """JSON safe inside a ``<script>`` element (no ``</`` or ``<!--``)."""
    text = json.dumps(_clean(payload), allow_nan=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _plotly_tag(plotly: str) -> tuple[str, str, int]:
    """The page's Plotly ``<script>``: inlined (offline) or from Plotly's CDN; its version and
    the bytes it adds to the page."""
    if plotly not in ("inline", "cdn"):
        raise InputError(f"plotly must be 'inline' or 'cdn'; got {plotly!r}")
    js, version = _plotly_js()
    if plotly == "cdn":
        tag = f'<script src="https://cdn.plot.ly/plotly-{_plotlyjs_version()}.min.js"></script>'
        return tag, version, len(tag)
    return f"<script>\n{js}\n</script>", version, len(js.encode())


def _plotlyjs_version() -> str:
    """The version of the plotly.js that the plotly package ships (its CDN file's name)."""
    from plotly.offline.offline import get_plotlyjs_version

    return str(get_plotlyjs_version())


def _page(title: str, payload: dict[str, Any], plotly_js: str) -> str:
    import html

    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="lmmlite {html.escape(__version__)}">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{_asset('_report_app.css')}\n</style>\n"
        f"{plotly_js}\n</head>\n<body>\n"
        f"{_asset('_report_app.html')}\n"
        f'<script type="application/json" id="lmm-data">{_script_json(payload)}</script>\n'
        f"<script>\n{_asset('_report_app.js')}\n</script>\n</body>\n</html>\n"
    )


def report(
    scan: pd.DataFrame | str | os.PathLike[str] | None = None,
    *,
    herit: pd.DataFrame | str | os.PathLike[str] | None = None,
    perm: pd.DataFrame | str | os.PathLike[str] | None = None,
    peaks: pd.DataFrame | str | os.PathLike[str] | None = None,
    trait_positions: pd.DataFrame | str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    title: str | None = None,
    alpha: float | Sequence[float] = ALPHA,
    lod_floor: float = LOD_FLOOR,
    max_points: int = MAX_POINTS,
    pvalue: str | None = None,
    keep: str | None = None,
    options: Mapping[str, Any] | None = None,
    plotly: str = "inline",
) -> Report:
    """An interactive, self-contained HTML report of a scan and/or heritabilities.

    Parameters
    ----------
    scan
        A scan table (:func:`lmmlite.scan`; at least ``trait``, ``chr``, ``pos``, ``marker``,
        ``lod``) or the file ``lmmlite scan`` wrote (TSV/CSV or Parquet dataset folder).
    herit
        A heritability table (:func:`lmmlite.heritability`) or its file.
    perm
        A permutation table (``trait``, ``perm``, ``max_lod``[, ``region``, ``length``]) or its
        file: its thresholds at ``alpha`` replace the Bonferroni line.
    peaks
        A :func:`lmmlite.find_peaks` table or its file, the peaks labelled. Without it: the
        rows of a table of peaks (``keep="peaks"``), else the peaks of a full scan above the
        first threshold.
    trait_positions
        Each trait's own position (``trait``, ``chr``, ``pos``; e.g. expression traits'
        genes): the y axis of the trait-by-QTL plot. Without it, traits in table order.
    out
        The HTML file to write (atomically); None: only return the page.
    title
        The page's title.
    alpha
        Genome-wide levels of the permutation threshold lines.
    lod_floor
        A trait with more than ``max_points`` markers draws every marker with LOD at or above
        this floor and, below it, one per cell of a :data:`GRID` grid (said on the page).
    max_points
        Markers per trait drawn without thinning.
    pvalue
        The p-value column for the QQ plot and hover (default: the first of ``p_wald``,
        ``p_lrt``, ``p_score``, ``p``).
    keep
        How the scan was reduced: ``"all"`` (every marker), ``"peaks"`` or ``"max"``; by
        default read from a dataset folder's manifest, else inferred (at most one row per trait
        and chromosome: ``peaks``).
    options
        Extra options to record in the provenance (the command line passes its arguments).
    plotly
        ``"inline"`` (default): Plotly's JavaScript inside the page, which opens offline;
        ``"cdn"``: loaded from Plotly's CDN (a small page that needs the network).

    Returns
    -------
    Report
        The page and what it shows.
    """
    if scan is None and herit is None:
        raise InputError("a report needs a scan table, a heritability table or both")
    alphas = [float(a) for a in np.atleast_1d(np.asarray(alpha, dtype=float))]
    if not alphas or any(not 0.0 < a < 1.0 for a in alphas):
        raise InputError(f"alpha must lie in (0, 1); got {alpha!r}")
    if not math.isfinite(lod_floor):
        raise InputError(f"lod_floor must be a number; got {lod_floor!r}")
    if int(max_points) < 1:
        raise InputError(f"max_points must be at least 1; got {max_points!r}")
    if out is not None:
        from .io.tables import check_output

        check_output(
            out,
            inputs=[
                v
                for v in (scan, herit, perm, peaks, trait_positions)
                if isinstance(v, (str, os.PathLike))
            ],
        )
    from .io.phenotypes import read_peaks_table, read_perm_table, read_results, read_scan_table

    inputs: list[dict[str, Any]] = []
    tables: dict[str, pd.DataFrame | None] = {}
    for name, value, reader in (
        (
            "scan",
            scan,
            lambda p: read_scan_table(p, needs=("trait", "chr", "pos", "marker", "lod")),
        ),
        ("heritability", herit, lambda p: read_results(p, "heritability", "herit", _TEXT)),
        ("permutations", perm, read_perm_table),
        ("peaks", peaks, read_peaks_table),
        (
            "trait positions",
            trait_positions,
            lambda p: read_results(p, "trait positions", dtype=_TEXT),
        ),
    ):
        tables[name], record = _load(value, name, reader)
        if record is not None:
            inputs.append(record)
    tp = tables["trait positions"]
    if tp is not None:
        missing = [c for c in ("trait", "chr", "pos") if c not in tp.columns]
        if missing:
            raise InputError(f"the trait positions table lacks the column(s) {', '.join(missing)}")
    manifest = _scan_manifest(scan)
    opts = {
        "alpha": alphas,
        "lod_floor": float(lod_floor),
        "max_points": int(max_points),
        "pvalue": pvalue,
        "keep": keep,
        **dict(options or {}),
    }
    plotly_js, plotly_version, plotly_bytes = _plotly_tag(plotly)
    payload: dict[str, Any] = {"title": title or "lmmlite report"}
    shown, rows_total, n_traits, thinned = 0, 0, 0, False
    if tables["scan"] is not None:
        s = _check_scan(tables["scan"], tp, keep, manifest, pvalue)
        rows, thinned = _thin_scan(s, float(lod_floor), int(max_points))
        shown, rows_total, n_traits = int(rows.size), len(s.table), len(s.traits)
        thresholds = _thresholds(s, tables["permutations"], alphas)
        peak_table, peak_source = _peak_table(
            s, tables["peaks"], tables["permutations"], thresholds, alphas
        )
        payload["scan"] = {
            "traits": s.traits,
            "keep": s.keep,
            "chroms": _clean(
                s.layout.assign(x=[str(c).lower() in {"x", "23"} for c in s.layout["chr"]]).to_dict(
                    "list"
                )
            ),
            "rows": rows_total,
            "shown": shown,
            "thin": {
                "floor": float(lod_floor),
                "grid": list(GRID),
                "max_points": int(max_points),
                "thinned": thinned,
            },
            "webgl_above": WEBGL_ABOVE,
            "data": _scan_data(s, rows),
            "qq": _qq_data(s),
            "thresholds": thresholds,
            "peaks": _peak_data(s, peak_table, tp) | {"source": peak_source},
        }
    if tables["heritability"] is not None:
        payload["herit"] = _herit_data(tables["heritability"])
    payload["provenance"] = {
        "lmmlite": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "python": platform.python_version(),
        "plotly": plotly_version,
        "inputs": inputs,
        "options": opts,
        "scan_manifest": {
            k: manifest[k] for k in ("lmmlite_version", "options", "inputs") if k in manifest
        }
        if manifest
        else None,
    }
    page = _page(str(payload["title"]), payload, plotly_js)
    result = Report(
        html=page,
        traits=n_traits,
        rows=rows_total,
        shown=shown,
        lod_floor=float(lod_floor) if thinned else None,
        plotly_bytes=plotly_bytes,
    )
    if out is not None:
        result.write(out)
    return result
