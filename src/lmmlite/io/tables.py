"""CSV/TSV tables whose first column is the sample id, and atomic writes.

The separator is chosen by extension (``.csv``: comma; ``.tsv``, ``.txt``, ``.tab``: tab;
optionally followed by ``.gz``); ids are always read as strings, so ``007`` stays ``007``.
R-style missing values (``NA``, empty fields) become NaN.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pandas as pd

from ..exceptions import FileFormatError

__all__ = ["atomic_write", "read_table", "separator_for", "write_table"]

_NA = ["NA", "NaN", "nan", "", "-"]


def separator_for(path: str | os.PathLike[str]) -> str:
    """Field separator for a file name: comma for ``.csv``, tab for ``.tsv``/``.txt``/``.tab``."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(".csv"):
        return ","
    if name.endswith((".tsv", ".txt", ".tab")):
        return "\t"
    raise FileFormatError(
        f"cannot tell the format of {str(path)!r} from its extension: use .csv (comma) or "
        ".tsv/.txt (tab)"
    )


def read_table(path: str | os.PathLike[str], what: str = "table") -> pd.DataFrame:
    """Read a CSV/TSV file whose first column holds sample ids (the index).

    Raises
    ------
    FileFormatError
        If the file is missing, unreadable, empty, has no data columns or duplicated ids.
    """
    sep = separator_for(path)
    p = Path(path)
    if not p.is_file():
        raise FileFormatError(f"{what} file {str(path)!r} does not exist")
    try:
        df = pd.read_csv(
            p, sep=sep, index_col=0, dtype={0: str}, na_values=_NA, keep_default_na=False
        )
    except pd.errors.EmptyDataError:
        raise FileFormatError(f"{what} file {str(path)!r} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FileFormatError(f"cannot read {what} file {str(path)!r}: {first}") from None
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise FileFormatError(
            f"{what} file {str(path)!r} has no data: {df.shape[0]} rows and {df.shape[1]} "
            "columns after the id column (is the separator right for the extension?)"
        )
    df.index = pd.Index([str(v).strip() for v in df.index], name=df.index.name)
    df.columns = [str(c).strip() for c in df.columns]
    dup = df.index[df.index.duplicated()].unique()
    if len(dup):
        shown = ", ".join(map(str, list(dup)[:10]))
        raise FileFormatError(f"{what} file {str(path)!r} has duplicated sample ids: {shown}")
    return df


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path``.

    The temporary file sits in the same folder (so the rename is atomic) and is removed if
    ``write`` fails: a reader never sees a half-written file.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise FileFormatError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``df`` (index included) as CSV or TSV by extension, atomically."""
    sep = separator_for(path)
    compression: Literal["gzip"] | None = "gzip" if str(path).lower().endswith(".gz") else None
    atomic_write(
        path,
        lambda tmp: df.to_csv(tmp, sep=sep, na_rep="NA", compression=compression),
    )


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
