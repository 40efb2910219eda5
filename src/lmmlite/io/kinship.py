"""Kinship files: read and written in the formats lmmlite and its peers use.

Reading (:func:`read_kinship`):

- an id-labelled table (CSV/TSV, ``.gz`` allowed): first column and header are the sample ids
  (R/qtl2 and lmmlite write these);
- a bare square matrix of numbers, whitespace- or comma-separated (GEMMA's ``.cXX.txt``), whose
  rows follow the genotype file's samples: it needs those ids (``ids=``), as its size must
  match;
- lmmlite's binary format, an ``.npz`` with ``ids`` and ``kinship`` (n x n), which loads in
  milliseconds; with LOCO kinships instead of ``kinship`` it holds ``chromosomes`` and one
  ``chr_<C>`` matrix per chromosome (all on the same ``ids``);
- a folder of LOCO kinships, one table per chromosome named ``chr<C>.<ext>`` (as
  ``lmmlite kinship --loco --out FOLDER`` writes them).

A LOCO file or folder reads as ``{chromosome: kinship}``; anything else as one DataFrame.
Every matrix is checked to be square with the same ids on both axes (no other checks here: the
analysis checks symmetry, finiteness and definiteness).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import FileFormatError
from .tables import atomic_write, existing_file, head_lines, read_table, write_table

__all__ = ["read_kinship", "write_kinship"]

_LOCO_FILE = re.compile(r"^chr(?P<chr>[^.]+)\.(csv|tsv|txt|tab|npz)(\.gz)?$")


def read_kinship(
    path: str | os.PathLike[str], ids: list[str] | None = None
) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """Read a kinship file (see the module's description for the formats).

    Parameters
    ----------
    path
        The file or LOCO folder.
    ids
        The genotype file's sample ids, in file order: needed for a bare matrix, whose rows
        follow them.
    """
    p = Path(path)
    if p.is_dir():
        return _read_folder(p, ids)
    p = existing_file(path, "kinship")
    if p.suffix.lower() == ".npz":
        return _read_npz(p)
    if p.suffix.lower() == ".npy":
        raise FileFormatError(
            f"kinship {str(path)!r} is a .npy array without sample ids; use an .npz with arrays "
            "'ids' and 'kinship' (as lmmlite kinship --out K.npz writes), or a table with ids"
        )
    head = head_lines(p, "kinship", lines=1)
    first = head[0] if head else ""
    fields = [f for f in re.split(r"[,\s]+", first.strip()) if f]
    if fields and all(_is_number(f) for f in fields):
        return _read_bare(p, first, ids)
    K = read_table(p, "kinship")
    _check_square(K, str(path))
    return K


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _read_bare(p: Path, first: str, ids: list[str] | None) -> pd.DataFrame:
    if "," in first:
        sep = ","
    elif "\t" in first and " " not in first.strip():
        sep = "\t"  # GEMMA's: a tab between numbers (the quicker parse)
    else:
        sep = r"\s+"
    try:
        M = pd.read_csv(p, sep=sep, header=None, dtype=np.float64, encoding="utf-8-sig").to_numpy()
    except (ValueError, pd.errors.ParserError) as exc:
        raise FileFormatError(
            f"cannot read kinship {str(p)!r} as a matrix of numbers: {' '.join(str(exc).split())}"
        ) from None
    if M.shape[0] != M.shape[1]:
        raise FileFormatError(f"kinship {str(p)!r} is not square: {M.shape[0]} x {M.shape[1]}")
    if ids is None:
        raise FileFormatError(
            f"kinship {str(p)!r} is a bare {M.shape[0]} x {M.shape[1]} matrix without sample "
            "ids: give it with genotypes (its rows follow the genotype file's samples), or as "
            "a table whose first column and header are the ids"
        )
    if M.shape[0] != len(ids):
        raise FileFormatError(
            f"kinship {str(p)!r} is a bare {M.shape[0]} x {M.shape[1]} matrix but the "
            f"genotype file has {len(ids)} samples: its size matches neither"
        )
    return pd.DataFrame(M, index=pd.Index(ids, name="id"), columns=ids, copy=False)


def _check_square(K: pd.DataFrame, where: str) -> None:
    if K.shape[0] != K.shape[1]:
        raise FileFormatError(
            f"kinship {where!r} must be square with sample ids on both axes; got "
            f"{K.shape[0]} rows and {K.shape[1]} columns"
        )


def _read_npz(p: Path) -> pd.DataFrame | dict[str, pd.DataFrame]:
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise FileFormatError(f"cannot read kinship {str(p)!r}: {exc}") from None
    if "ids" not in arrays:
        raise FileFormatError(f"kinship {str(p)!r} lacks the array 'ids' (the sample ids)")
    ids = [str(v) for v in arrays["ids"]]

    def frame(name: str) -> pd.DataFrame:
        M = np.asarray(arrays[name], dtype=np.float64)
        if M.shape != (len(ids), len(ids)):
            raise FileFormatError(
                f"kinship {str(p)!r}: array {name!r} is {M.shape} but there are {len(ids)} ids"
            )
        return pd.DataFrame(M, index=pd.Index(ids, name="id"), columns=ids)

    if "kinship" in arrays:
        return frame("kinship")
    chroms = [str(c) for c in arrays.get("chromosomes", [])]
    missing = [c for c in chroms if f"chr_{c}" not in arrays]
    if not chroms or missing:
        raise FileFormatError(
            f"kinship {str(p)!r} holds neither 'kinship' nor LOCO kinships ('chromosomes' and a "
            f"'chr_<C>' array each){'; missing ' + ', '.join(missing) if missing else ''}"
        )
    return {c: frame(f"chr_{c}") for c in chroms}


def _read_folder(p: Path, ids: list[str] | None) -> dict[str, pd.DataFrame]:
    files = {}
    for f in sorted(p.iterdir()):
        m = _LOCO_FILE.match(f.name)
        if m:
            files[m.group("chr")] = f
    if not files:
        raise FileFormatError(
            f"kinship folder {str(p)!r} holds no LOCO kinships (files named chr<C>.tsv, "
            "chr<C>.csv or chr<C>.npz, one per chromosome)"
        )
    out: dict[str, pd.DataFrame] = {}
    for c, f in files.items():
        K = read_kinship(f, ids)
        if isinstance(K, dict):
            raise FileFormatError(f"{str(f)!r} in a LOCO folder holds LOCO kinships itself")
        out[c] = K
    first = next(iter(out.values()))
    for c, K in out.items():
        if set(K.index) != set(first.index):
            raise FileFormatError(
                f"LOCO kinships in {str(p)!r} are not on the same samples (chr{c})"
            )
    return out


def write_kinship(
    kinship: pd.DataFrame | dict[str, pd.DataFrame], path: str | os.PathLike[str]
) -> list[Path]:
    """Write a kinship (or LOCO kinships) in a format :func:`read_kinship` reads: an ``.npz``
    (binary, quick to load), a table (``.csv``/``.tsv``/``.txt``), or, for LOCO kinships and a
    path without such an extension, a folder of ``chr<C>.tsv`` tables. Returns the files."""
    p = Path(path)
    if p.suffix.lower() == ".npz":
        if isinstance(kinship, dict):
            first = next(iter(kinship.values()))
            arrays = {
                f"chr_{c}": K.loc[first.index, first.index].to_numpy() for c, K in kinship.items()
            }
            arrays["chromosomes"] = np.array(list(kinship), dtype=str)
        else:
            first = kinship
            arrays = {"kinship": kinship.to_numpy()}
        arrays["ids"] = np.array([str(i) for i in first.index], dtype=str)

        def write(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

        atomic_write(p, write)
        return [p]
    if isinstance(kinship, dict):
        p.mkdir(exist_ok=True)
        files = []
        for c, K in kinship.items():
            files.append(p / f"chr{c}.tsv")
            write_table(K, files[-1])
        return files
    write_table(kinship, p)
    return [p]
