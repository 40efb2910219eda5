"""Phenotype and covariate files that are not id-labelled tables, and scan tables.

- :func:`read_positional`: GEMMA's BIMBAM phenotype and covariate files: whitespace-separated
  numbers without ids, one row per sample *in the genotype file's order* (BIMBAM is positional
  by definition). ``NA`` and ``-9`` mark missing values, as in GEMMA. A column that is not
  numbers, or that counts 1, 2, ..., n, is an id column, which these files must not have.
- :func:`read_scan_table`: a table written by ``lmmlite scan`` (TSV/CSV, or a Parquet file or
  dataset folder), checked to have the columns a plot or a peak finder needs.
- :func:`read_perm_table`: a permutation table (``lmmlite perm``: ``trait``, ``perm``,
  ``max_lod`` and optionally ``region``, ``length``), TSV/CSV or Parquet.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import FileFormatError
from .tables import existing_file, head_lines, parser_error, separator_for

__all__ = [
    "PERM_TABLE_NEEDS",
    "SCAN_TABLE_NEEDS",
    "read_peaks_table",
    "read_perm_table",
    "read_positional",
    "read_results",
    "read_scan_table",
]


def read_positional(path: str | os.PathLike[str], ids: list[str], what: str) -> pd.DataFrame:
    """A BIMBAM phenotype or covariate file (no ids, rows in genotype-file order), indexed by
    the genotype file's sample ids; columns ``<what>1``, ``<what>2``, ...; empty trailing
    fields (GEMMA's trailing tab) are ignored."""
    p = existing_file(path, what)
    head_lines(p, what)  # UTF-8 checked
    try:
        df = pd.read_csv(
            p, sep=r"\s+", header=None, na_values=["NA", "-9"], dtype=str, encoding="utf-8-sig"
        )
    except (OSError, pd.errors.ParserError, ValueError) as exc:
        raise FileFormatError(
            f"cannot read {what} file {str(path)!r}: {parser_error(exc)}"
        ) from None
    if len(df) != len(ids):
        raise FileFormatError(
            f"{what} file {str(path)!r} has {len(df)} rows but the genotype file "
            f"has {len(ids)} samples (BIMBAM files match by position)"
        )
    df = df.dropna(axis=1, how="all")
    values = df.apply(pd.to_numeric, errors="coerce")
    for j, col in enumerate(df.columns):
        bad = df[col].notna() & values[col].isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise FileFormatError(
                f"{what} file {str(path)!r} column {j + 1} holds text ({df[col].iat[row]!r} on "
                f"row {row + 1}): BIMBAM {what} files have no id column and only numbers (NA "
                "or -9 for missing)"
            )
        v = values[col].to_numpy()
        if len(v) > 2 and np.array_equal(v, np.arange(1, len(v) + 1)):
            raise FileFormatError(
                f"{what} file {str(path)!r} column {j + 1} counts 1, 2, ..., {len(v)}: it looks "
                "like an id column, which BIMBAM files do not have (rows follow the genotype "
                "file's order); remove it"
            )
    values.index = pd.Index(ids, name="id")
    values.columns = [f"{what}{j + 1}" for j in range(values.shape[1])]
    return values


#: Columns a scan table must have to be drawn or searched for peaks.
SCAN_TABLE_NEEDS = ("trait", "chr", "pos", "marker")


def read_scan_table(
    path: str | os.PathLike[str], needs: Sequence[str] = SCAN_TABLE_NEEDS
) -> pd.DataFrame:
    """A table written by ``lmmlite scan``: TSV/CSV (``chr`` and ``marker`` kept as text), a
    Parquet file or a Parquet dataset folder; refused without the columns ``needs``."""
    table = read_results(path, "scan", "scan", {"chr": str, "marker": str, "trait": str})
    missing = [c for c in needs if c not in table.columns]
    if missing:
        raise FileFormatError(
            f"scan file {str(path)!r} lacks the column(s) {', '.join(missing)} of a table "
            f"written by lmmlite scan (it has {', '.join(map(str, table.columns[:8]))}"
            f"{', ...' if table.shape[1] > 8 else ''})"
        )
    return table


def read_peaks_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A table written by ``lmmlite peaks`` (TSV/CSV or Parquet), with at least ``trait``,
    ``chr``, ``pos``, ``marker`` and ``lod``."""
    table = read_results(path, "peaks", "peaks", {"chr": str, "marker": str, "trait": str})
    missing = [c for c in ("trait", "chr", "pos", "marker", "lod") if c not in table.columns]
    if missing:
        raise FileFormatError(
            f"peaks file {str(path)!r} lacks the column(s) {', '.join(missing)} of a table "
            "written by lmmlite peaks"
        )
    return table


#: Columns a permutation table must have (``region`` and ``length`` come together or not at all).
PERM_TABLE_NEEDS = ("trait", "perm", "max_lod")


def read_perm_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A permutation table (``lmmlite perm``): TSV/CSV (``.gz`` too) or Parquet, with the
    columns ``trait`` (read as text), ``perm``, ``max_lod`` (numbers; NA allowed) and,
    for separate X permutations, both ``region`` (text, ``A`` or ``X``) and ``length``."""
    table = read_results(path, "permutation", "perm", {"trait": str, "region": str})
    missing = [c for c in PERM_TABLE_NEEDS if c not in table.columns]
    if missing:
        raise FileFormatError(
            f"permutation file {str(path)!r} lacks the column(s) {', '.join(missing)} (a "
            "permutation table has trait, perm, max_lod[, region, length]; it has "
            f"{', '.join(map(str, table.columns[:8]))}{', ...' if table.shape[1] > 8 else ''})"
        )
    if ("region" in table.columns) != ("length" in table.columns):
        raise FileFormatError(
            f"permutation file {str(path)!r} has only one of the columns region and length: "
            "separate X permutations need both"
        )
    if table["trait"].isna().any():
        row = int(np.flatnonzero(table["trait"].isna().to_numpy())[0])
        raise FileFormatError(f"permutation file {str(path)!r} has no trait on row {row + 1}")
    table["trait"] = table["trait"].astype(str)
    numeric = ["max_lod", *(["length"] if "length" in table.columns else [])]
    for col in numeric:
        values = pd.to_numeric(table[col], errors="coerce")
        bad = values.isna() & table[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise FileFormatError(
                f"permutation file {str(path)!r}: {col} is not a number on row {row + 1} "
                f"({table[col].iat[row]!r})"
            )
        table[col] = values.astype(float)
    if "region" in table.columns:
        table["region"] = table["region"].astype(str)
        odd = sorted(set(table["region"]) - {"A", "X"})
        if odd:
            raise FileFormatError(
                f"permutation file {str(path)!r}: region must be A or X; found {odd[:5]}"
            )
    return table


def read_results(
    path: str | os.PathLike[str],
    what: str,
    command: str | None = None,
    dtype: dict[str, type] | None = None,
) -> pd.DataFrame:
    """A results table: TSV/CSV (by extension; the ``dtype`` columns as given), a Parquet file
    or a Parquet dataset folder. ``command``: the lmmlite command that writes such tables (for
    the message on a file separated otherwise than its extension says)."""
    p = Path(path)
    if not p.exists():
        raise FileFormatError(f"{what} file {str(path)!r} does not exist")
    if p.name.lower().endswith(".parquet"):
        try:
            return pd.read_parquet(p)
        except (OSError, ValueError) as exc:
            raise FileFormatError(
                f"cannot read the Parquet {what} {str(path)!r}: {' '.join(str(exc).split())}"
            ) from None
    existing_file(p, what)
    sep = separator_for(p)
    head = head_lines(p, what, lines=1)
    if head and sep not in head[0]:
        writer = f" (lmmlite {command} writes .tsv with tabs)" if command else ""
        raise FileFormatError(
            f"{what} file {str(path)!r} does not look {'comma' if sep == ',' else 'tab'}-"
            f"separated as its extension says{writer}"
        )
    try:
        return pd.read_csv(p, sep=sep, na_values=["NA"], dtype=dtype)
    except (OSError, pd.errors.ParserError, ValueError) as exc:
        raise FileFormatError(
            f"cannot read {what} file {str(path)!r}: {parser_error(exc)}"
        ) from None
