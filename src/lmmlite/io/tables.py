"""Tables whose first column is the sample id (CSV/TSV), and safe output files.

The separator is chosen by extension (``.csv``: comma; ``.tsv``, ``.txt``, ``.tab``: tab;
optionally followed by ``.gz``); ids are always read as strings, so ``007`` stays ``007``.
R-style missing values (``NA``, empty fields) become NaN, and so do any ``missing`` codes the
caller names (e.g. PLINK's ``-9``). A UTF-8 byte-order mark is ignored; a file that is not
UTF-8, or whose separator does not match its extension, is refused with a message that says so;
duplicated column names are an error (pandas would rename them); a separator at the end of
every line is dropped with a warning.

Every output is written safely: to a temporary file in the same folder, then renamed over the
target (:func:`atomic_write`), so a reader never sees a half-written file; the temporary file
is removed on an error or a SIGTERM (see :func:`remove_temporaries_on_sigterm`), and left-over
temporaries of a killed run are swept by the next write of the same output. The output gets the
mode of the file it replaces, or the default mode under the umask (not the temporary file's
0600). :func:`check_output` refuses, before any work, an output that could not be written or
that names one of the run's inputs.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import os
import signal
import stat
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..core.checks import duplicated
from ..exceptions import FileFormatError, FileFormatWarning

__all__ = [
    "atomic_write",
    "check_field_counts",
    "check_output",
    "existing_file",
    "head_lines",
    "open_text",
    "parser_error",
    "read_table",
    "remove_temporaries_on_sigterm",
    "separator_for",
    "sha256_file",
    "write_table",
]

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


def existing_file(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileFormatError(f"{what} file {str(path)!r} does not exist")
    if p.is_dir():
        raise FileFormatError(f"{what} file {str(path)!r} is a folder, not a file")
    if not p.is_file():
        raise FileFormatError(f"{what} file {str(path)!r} is not a regular file")
    return p


def open_text(path: str | os.PathLike[str]) -> io.TextIOBase:
    """A text file (gzip-compressed if its name ends in ``.gz``) as UTF-8, a byte-order mark
    skipped."""
    p = Path(path)
    if p.name.lower().endswith(".gz"):
        import gzip

        return io.TextIOWrapper(gzip.open(p, "rb"), encoding="utf-8-sig")
    return open(p, encoding="utf-8-sig")


def head_lines(path: Path, what: str, lines: int = 6) -> list[str]:
    """The first ``lines`` lines of a text file (UTF-8 checked)."""
    try:
        with open_text(path) as fh:
            return [ln.rstrip("\r\n") for _, ln in zip(range(lines), fh, strict=False)]
    except UnicodeDecodeError as exc:
        raise FileFormatError(
            f"{what} file {str(path)!r} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
            f"position {exc.start}); save it as UTF-8"
        ) from None
    except (OSError, EOFError) as exc:
        raise FileFormatError(f"cannot read {what} file {str(path)!r}: {exc}") from None


def _check_separator(path: Path, what: str, head: list[str], sep: str) -> None:
    """Refuse a file whose lines are split by another separator than its extension's."""
    header = next((ln for ln in head if ln.strip()), "")
    if sep in header:
        return
    others = ((";", "semicolon", ""), ("\t", "tab", ".tsv"), (",", "comma", ".csv"))
    for other, name, ext in others:
        if other != sep and other in header:
            hint = f"; name it {ext}" if ext else "; save it with commas (or tabs, as .tsv)"
            raise FileFormatError(
                f"{what} file {str(path)!r} looks {name}-delimited but its extension says "
                f"{'comma' if sep == ',' else 'tab'}{hint}"
            )


def _header_fields(head: list[str], sep: str) -> list[list[str]]:
    rows = list(csv.reader([ln for ln in head if ln.strip()], delimiter=sep))
    return [[f.strip() for f in r] for r in rows]


def read_table(
    path: str | os.PathLike[str], what: str = "table", *, missing: Sequence[str] = ()
) -> pd.DataFrame:
    """Read a CSV/TSV file whose first column holds sample ids (the index).

    Parameters
    ----------
    path
        The file (``.csv``, ``.tsv``, ``.txt``, ``.tab``, optionally ``.gz``).
    what
        What the file is, for messages ("phenotype", "kinship", ...).
    missing
        Further values that mark a missing value (besides ``NA``, ``NaN`` and empty fields).

    Raises
    ------
    FileFormatError
        If the file is missing, unreadable, not UTF-8, split by another separator than its
        extension's, empty, has no data columns, duplicated column names or duplicated ids.
    """
    sep = separator_for(path)
    p = existing_file(path, what)
    head = head_lines(p, what)
    if not any(ln.strip() for ln in head):
        raise FileFormatError(f"{what} file {str(path)!r} is empty")
    _check_separator(p, what, head, sep)
    rows = _header_fields(head, sep)
    header, data = rows[0], rows[1:]
    # a separator at the end of every line: after the header too, or only after the data
    ends_empty = bool(data) and all(r and r[-1] == "" for r in data)
    header_trailing = len(header) > 1 and header[-1] == "" and ends_empty
    data_trailing = ends_empty and all(len(r) == len(header) + 1 for r in data)
    names = header[1:-1] if header_trailing else header[1:]
    dup = [c for c in duplicated(names) if c]
    if dup:
        raise FileFormatError(
            f"{what} file {str(path)!r} has duplicated column names: {', '.join(dup)}"
        )
    try:
        df = pd.read_csv(
            p,
            sep=sep,
            index_col=False,
            header=None,
            skiprows=1,
            dtype={0: str},
            # missing values in the data columns only: an id "NA" stays an id
            na_values=_data_na(len(header), [*_NA, *missing]),
            keep_default_na=False,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError:
        df = pd.DataFrame(columns=range(len(names) + 1))
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise FileFormatError(
            f"cannot read {what} file {str(path)!r}: {parser_error(exc)}"
        ) from None
    check_field_counts(p, what, sep, df.shape[1])
    if (header_trailing or data_trailing) and df.shape[1] == len(names) + 2:
        df = df.iloc[:, :-1]
        warnings.warn(
            f"{what} file {str(path)!r}: every line ends with a separator; the empty last "
            "column is ignored",
            FileFormatWarning,
            stacklevel=2,
        )
    ncol = len(names) + 1
    if df.shape[1] != ncol:
        raise FileFormatError(
            f"{what} file {str(path)!r} has {ncol} column names but {df.shape[1]} fields per "
            "line; check the separator and the header"
        )
    df = df.set_axis([header[0] or "id", *names], axis=1).set_index(header[0] or "id")
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise FileFormatError(
            f"{what} file {str(path)!r} has no data: {df.shape[0]} rows and {df.shape[1]} "
            "columns after the id column (is the separator right for the extension?)"
        )
    ids = [str(v).strip() for v in df.index]
    if any(v in ("", "nan") for v in ids):
        raise FileFormatError(f"{what} file {str(path)!r} has rows without a sample id")
    df.index = pd.Index(ids, name=df.index.name)
    dups = df.index[df.index.duplicated()].unique()
    if len(dups):
        shown = ", ".join(map(str, list(dups)[:10]))
        raise FileFormatError(f"{what} file {str(path)!r} has duplicated sample ids: {shown}")
    return df


def _data_na(columns: int, values: list[str]) -> Any:
    """pandas' per-column missing values for every column but the first (the ids)."""
    return {j: values for j in range(1, columns + 1)}


def parser_error(exc: BaseException) -> str:
    """A parser's error in words: pandas' "Expected 2 fields in line 3, saw 3" as a sentence."""
    import re

    text = " ".join(str(exc).split())
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if m:
        return f"line {m.group(2)} has {m.group(3)} fields where the lines before have {m.group(1)}"
    return text or type(exc).__name__


def check_field_counts(path: Path, what: str, sep: str, fields: int) -> None:
    """Refuse a line with fewer fields than the others (pandas would fill it with missing
    values without a word). Lines with quotes are skipped (a quoted field may hold the
    separator)."""
    with open_text(path) as fh:
        next(fh, None)  # the header
        for lineno, line in enumerate(fh, start=2):
            if not line.strip() or '"' in line:
                continue
            n = line.count(sep) + 1
            if n < fields:
                raise FileFormatError(
                    f"{what} file {str(path)!r} line {lineno} has {n} fields where the others "
                    f"have {fields}"
                )


# ---------------------------------------------------------------------------------------------
# Safe output files

#: Temporary files being written by this process (removed on SIGTERM).
_LIVE: set[str] = set()
_LIVE_LOCK = threading.Lock()


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)  # pragma: no cover - not Linux
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


def _sweep(folder: Path, name: str) -> None:
    """Remove temporaries of ``name`` left by processes that no longer run (killed mid-write)."""
    for tmp in folder.glob(f".{name}.*.tmp"):
        parts = tmp.name[len(name) + 2 : -len(".tmp")].split(".")
        if not parts or not parts[0].isdigit():
            continue
        pid = int(parts[0])
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except PermissionError:  # pragma: no cover - another user's live process
            continue


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path``.

    The temporary file (``.<name>.<pid>.<random>.tmp``) sits in the same folder (so the rename
    is atomic) and is removed if ``write`` fails, or on SIGTERM: a reader never sees a
    half-written file. The result gets the mode of the file it replaces, else 0666 under the
    umask.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise FileFormatError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist")
    if target.is_dir():
        raise FileFormatError(f"cannot write {str(path)!r}: it is a folder")
    _sweep(folder, target.name)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=folder
        )
    except OSError as exc:
        raise FileFormatError(f"cannot write {str(path)!r}: {exc.strerror}") from None
    os.close(fd)
    with _LIVE_LOCK:
        _LIVE.add(tmp)
    try:
        write(tmp)
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(tmp)


@contextlib.contextmanager
def remove_temporaries_on_sigterm() -> Iterator[None]:
    """Within this context, SIGTERM removes the temporary files being written and ends the
    process with status 143 (as a killed process), instead of leaving them behind. Only in the
    main thread (signal handlers are installed there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        with _LIVE_LOCK:
            for tmp in list(_LIVE):
                Path(tmp).unlink(missing_ok=True)
        os._exit(128 + signum)

    before = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def check_output(
    path: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    folder: bool = False,
) -> None:
    """Refuse, before any work, an output that cannot be written: its folder missing or not
    writable, a folder where a file is expected (or a file where a folder is), or one of the
    run's ``inputs`` (whose content it would replace)."""
    target = Path(path)
    resolved = target.resolve()
    for inp in inputs:
        if inp is None:
            continue
        q = Path(inp)
        same = q.resolve() == resolved
        if not same and q.exists() and target.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(q, target)
        if same:
            raise FileFormatError(
                f"output {str(path)!r} is one of the inputs ({str(inp)!r}): choose another name; "
                "it would be replaced by the results"
            )
    if target.exists() and target.is_dir() != folder:
        what = "a folder, not a file" if target.is_dir() else "a file, not a folder"
        raise FileFormatError(f"cannot write {str(path)!r}: it exists and is {what}")
    parent = resolved.parent
    if not parent.is_dir():
        shown = str(target.parent) or "."
        if parent.exists():
            raise FileFormatError(f"cannot write {str(path)!r}: {shown!r} is not a folder")
        raise FileFormatError(f"cannot write {str(path)!r}: folder {shown!r} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=".lmmlite-probe.", dir=parent)
    except OSError as exc:
        raise FileFormatError(
            f"cannot write {str(path)!r}: folder {str(parent)!r} is not writable ({exc.strerror})"
        ) from None
    os.close(fd)
    os.unlink(probe)


def write_table(df: pd.DataFrame, path: str | os.PathLike[str], *, index: bool = True) -> None:
    """Write ``df`` as CSV or TSV by extension (gzip with ``.gz``), atomically; NaN as NA."""
    sep = separator_for(path)
    gz = str(path).lower().endswith(".gz")
    compression: Literal["gzip"] | None = "gzip" if gz else None

    def write(tmp: str) -> None:
        text = csv_text(df, sep, index=index)
        if text is None:
            df.to_csv(tmp, sep=sep, na_rep="NA", compression=compression, index=index)
            return
        with gzip.open(tmp, "wt", encoding="utf-8") if gz else open(tmp, "w") as fh:
            fh.write(text)

    atomic_write(path, write)


#: Characters that make pandas quote a field (csv.QUOTE_MINIMAL, besides the separator).
_QUOTED = ('"', "\n", "\r")


def csv_text(df: pd.DataFrame, sep: str, *, index: bool) -> str | None:
    """The text of ``df.to_csv(sep=sep, na_rep="NA", index=index)``, formatted column by column
    (about twice as fast as pandas on a scan's table): float64 columns by Python's repr (the
    shortest representation that reads back exactly, as pandas writes them), integers, booleans
    and plain strings; None where pandas must write the table (another column type, a
    multi-level index, a label or string that would need quoting, or a single column)."""
    if isinstance(df.index, pd.MultiIndex) or isinstance(df.columns, pd.MultiIndex):
        return None
    head: list[Any] = ([df.index.name] if index else []) + list(df.columns)
    if len(head) < 2:  # one field a row: the csv module quotes an empty one
        return None
    columns: list[Any] = ([df.index] if index else []) + [df.iloc[:, j] for j in range(df.shape[1])]
    fields = []
    for label in head:
        text = "" if label is None else label
        if not isinstance(text, str) or _needs_quotes(text, sep):
            return None
        fields.append(text)
    lines = [sep.join(fields)]
    cells = []
    for col in columns:
        cell = _column_text(col, sep)
        if cell is None:
            return None
        cells.append(cell)
    lines.extend(map(sep.join, zip(*cells, strict=True)))
    return "\n".join(lines) + "\n"


def _needs_quotes(text: str, sep: str) -> bool:
    return sep in text or any(ch in text for ch in _QUOTED)


def _column_text(col: pd.Series | pd.Index, sep: str) -> list[str] | None:
    """A column's fields as pandas writes them, or None (see :func:`csv_text`)."""
    dtype = col.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return [str(v) for v in col.to_numpy().tolist()]
    if isinstance(dtype, np.dtype) and dtype == np.float64:
        values = col.to_numpy()
        if not np.isnan(values).any():
            return list(map(repr, values.tolist()))
        return [repr(v) if v == v else "NA" for v in values.tolist()]
    if (isinstance(dtype, np.dtype) and dtype.kind == "O") or isinstance(dtype, pd.StringDtype):
        values = col.to_numpy(dtype=object).tolist()
        if all(type(v) is str for v in values):  # the common case: one search of them all
            return None if _needs_quotes("".join(values), sep) else values
        out = []
        for v in values:
            if isinstance(v, str):
                if _needs_quotes(v, sep):
                    return None
                out.append(v)
            elif v is None or v is pd.NA or (isinstance(v, float) and v != v):
                out.append("NA")
            else:
                return None  # other objects: pandas' formatting
        return out
    return None


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
