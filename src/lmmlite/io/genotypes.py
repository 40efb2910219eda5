"""Genotype sources read in chunks of markers, so memory does not grow with their number.

Every source has ``samples`` (ids, in file order), ``markers`` (a DataFrame with ``marker``,
``chr``, ``pos`` and, where the format has them, ``allele1``/``allele0``), ``k`` (columns per
locus: 1 for dosages, k for genotype or allele probabilities) and ``chunks(size)``, which yields
``(start, array)`` with ``array`` of shape ``(n_samples, k, m_chunk)``, float64, NaN where
missing. Chunks never straddle two chromosomes.

Formats: PLINK 1 binary (:class:`PlinkSource`, via ``bed-reader``), BIMBAM mean genotypes as
GEMMA reads them (:class:`BimbamSource`), a CSV/TSV dosage matrix with sample ids
(:class:`DosageSource`), and R/qtl2-style probabilities in ``.npz`` (:class:`ProbsSource`).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import itertools
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.checks import duplicated
from ..exceptions import DataWarning, FileFormatError, InputError
from ..options import CHUNK_SIZE
from .tables import (
    check_field_counts,
    existing_file,
    head_lines,
    parser_error,
    separator_for,
    sha256_file,
)

__all__ = [
    "ArraySource",
    "BimbamSource",
    "DosageSource",
    "GenotypeSource",
    "PlinkSource",
    "ProbsSource",
    "chromosome_runs",
]


def chromosome_runs(chrom: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Split marker indices into consecutive ranges of at most ``size`` within one chromosome."""
    out = []
    m = chrom.shape[0]
    start = 0
    while start < m:
        stop = start + 1
        while stop < m and stop - start < size and chrom[stop] == chrom[start]:
            stop += 1
        out.append((start, stop))
        start = stop
    return out


class GenotypeSource:
    """Base class: subclasses set ``samples``, ``markers``, ``k`` and implement ``_read``."""

    samples: list[str]
    markers: pd.DataFrame
    k: int = 1
    positional: bool = False
    """True when samples have no ids in the file (BIMBAM): other files match by position."""
    random_access: bool = True
    """False for text formats, whose ``read`` scans the file from its start."""
    spans_chromosomes: bool = True
    """Whether ``read`` takes markers of several chromosomes at once (False where each
    chromosome is its own array: probabilities)."""

    def _read(self, start: int, stop: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    #: Chromosome names taken for the X chromosome (R/qtl2's Xcovar applies there).
    X_NAMES: tuple[str, ...] = ("X",)

    @property
    def x_chromosomes(self) -> frozenset[str]:
        """The chromosomes that are the X (by name: :attr:`X_NAMES`, case aside)."""
        names = {str(c) for c in self.markers["chr"].unique()}
        return frozenset(c for c in names if c.upper() in self.X_NAMES)

    @property
    def n_markers(self) -> int:
        return len(self.markers)

    def k_of(self, start: int) -> int:
        """Columns per locus of the chunk starting at marker ``start`` (probabilities of the
        X chromosome may have other genotypes than the autosomes)."""
        return self.k

    def allele_block(self, start: int, stop: int) -> np.ndarray:
        """What a probabilities kinship sums over for markers start:stop (see
        :meth:`ProbsSource.allele_block`)."""
        return self.read(start, stop)

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, genotypes (n, k, m_chunk))`` over all markers, within chromosomes."""
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise InputError(f"chunk size must be a positive integer; got {size!r}")
        runs = chromosome_runs(self.markers["chr"].to_numpy(), size)
        for (start, _), block in zip(runs, self.iter_runs(runs), strict=True):
            yield start, block

    def iter_runs(self, runs: list[tuple[int, int]]) -> Iterator[np.ndarray]:
        """Genotypes of the marker ranges ``runs`` (``(start, stop)``, increasing and
        disjoint), one array (n, k, stop - start) each, in one pass over the file (text
        formats) or by random access."""
        for start, stop in runs:
            yield self._read(start, stop)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Genotypes of markers ``start:stop`` (n, k, stop - start): random access, as the
        workers of a distributed scan read their own chunks."""
        return self._read(start, stop)

    def files(self) -> list[Path]:
        """The files the genotypes are read from (for checksums in a run's manifest)."""
        return []

    def fingerprint(self) -> dict[str, str]:
        """SHA-256 of each input file (or of the in-memory genotypes), keyed by file name."""
        return {p.name: sha256_file(p) for p in self.files()}


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_doses(block: np.ndarray, markers: Any, samples: list[str], path: Path) -> None:
    """Refuse dosages outside [0, 2] (block: markers x samples)."""
    with np.errstate(invalid="ignore"):
        bad = (block < 0) | (block > 2)
    if bad.any():
        r, i = np.argwhere(bad)[0]
        raise FileFormatError(
            f"{str(path)!r}: dosage {block[r, i]:g} of sample {samples[i]} at marker "
            f"{list(markers)[r]} is outside [0, 2] ({int(bad.sum())} such value(s) in this "
            "chunk)"
        )


def _chrom_str(values: Any) -> np.ndarray:
    return np.array([str(v).strip() for v in values], dtype=object)


def _read_fields(path: str, what: str, columns: int) -> pd.DataFrame:
    """A whitespace-separated text file of ``columns`` fields per line, as strings."""
    try:
        df = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise FileFormatError(f"{what} {path!r} is empty") from None
    except (OSError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise FileFormatError(f"cannot read {what} {path!r}: {parser_error(exc)}") from None
    if df.shape[1] < columns:
        raise FileFormatError(
            f"{what} {path!r} has {df.shape[1]} fields per line; PLINK's has {columns}"
        )
    return df


#: SNPs whose last .bed byte is checked for padding (evenly spread; all if fewer).
_PADDING_SNPS = 20_000


class PlinkSource(GenotypeSource):
    """PLINK 1 binary fileset ``PREFIX.bed/.bim/.fam`` (counts of the .bim's allele 1).

    The .fam and .bim are read here (whitespace-separated, as PLINK allows); the .bed is
    checked against them: its size, and the padding bits of each SNP's last byte, which a .fam
    with one sample more or fewer than the .bed was written for would break (149, 150 and 151
    samples all take 38 bytes per SNP)."""

    #: PLINK codes the X chromosome as X or 23.
    X_NAMES = ("X", "23")

    def __init__(self, prefix: str | os.PathLike[str]) -> None:
        try:
            import bed_reader  # noqa: F401
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(
                "PLINK input needs bed-reader: pip install 'lmmlite[plink]'"
            ) from None
        base = str(prefix)
        for suffix in (".bed", ".bim", ".fam"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        self.prefix = base
        for suffix in (".bed", ".bim", ".fam"):
            if not Path(base + suffix).is_file():
                raise FileFormatError(f"PLINK file {base + suffix!r} does not exist")
        fam = _read_fields(base + ".fam", "PLINK .fam", 5)
        bim = _read_fields(base + ".bim", "PLINK .bim", 6)
        pos = pd.to_numeric(bim[3], errors="coerce")
        if pos.isna().any():
            j = int(np.flatnonzero(pos.isna().to_numpy())[0])
            raise FileFormatError(
                f"PLINK .bim {base + '.bim'!r} line {j + 1}: position {bim[3].iat[j]!r} is not a "
                "number"
            )
        self._fam = fam
        self.samples = [str(v) for v in fam[1]]
        self.markers = pd.DataFrame(
            {
                "marker": bim[1].to_numpy(str),
                "chr": _chrom_str(bim[0]),
                "pos": pos.to_numpy(np.int64),
                "allele1": bim[4].to_numpy(str),
                "allele0": bim[5].to_numpy(str),
            }
        )
        self._check_bed()
        self._bed = None

    def _check_bed(self) -> None:
        """The .bed's magic number, size and padding agree with the .fam and .bim."""
        path = self.prefix + ".bed"
        n, m = len(self.samples), len(self.markers)
        per_snp = (n + 3) // 4
        expected = 3 + m * per_snp
        size = Path(path).stat().st_size
        with open(path, "rb") as fh:
            magic = fh.read(3)
        if magic != b"\x6c\x1b\x01":
            raise FileFormatError(
                f"{path!r} is not a SNP-major PLINK .bed file (its first bytes are "
                f"{magic.hex()}, not 6c1b01)"
            )
        if size != expected:
            raise FileFormatError(
                f"PLINK .bed {path!r} has {size} bytes but {n} samples x {m} SNPs "
                f"(from .fam and .bim) need {expected}: the file is truncated or does not match"
            )
        if m == 0:
            return
        snps = np.unique(np.linspace(0, m - 1, min(m, _PADDING_SNPS)).astype(np.int64))
        last = np.memmap(path, dtype=np.uint8, mode="r")[3 + (snps + 1) * per_snp - 1]
        used = n - 4 * (per_snp - 1)  # samples in the last byte, 1 to 4
        if used < 4 and np.any(last >> (2 * used)):
            raise FileFormatError(
                f"PLINK .bed {path!r} does not match its .fam: the .fam lists {n} samples but "
                "the .bed holds genotypes beyond them (non-zero padding bits): a line too few "
                "in the .fam?"
            )
        top = (last >> (2 * (used - 1))) & 3
        if snps.size >= 20 and np.all(top == 0):
            raise FileFormatError(
                f"PLINK .bed {path!r} does not match its .fam: the last sample of the .fam "
                f"({self.samples[-1]}) is homozygous for allele 1 at every SNP checked, as the "
                "padding of a .bed written for fewer samples would be: a line too many in the "
                ".fam?"
            )

    def _open(self) -> Any:
        if self._bed is None:
            from bed_reader import open_bed

            self._bed = open_bed(
                self.prefix + ".bed",
                num_threads=1,
                iid_count=len(self.samples),
                sid_count=len(self.markers),
            )
        return self._bed

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_bed"] = None  # reopened where it is unpickled (a Dask worker)
        return state

    def files(self) -> list[Path]:
        return [Path(self.prefix + s) for s in (".bed", ".bim", ".fam")]

    def fam_phenotypes(self) -> pd.DataFrame:
        """Phenotypes from the .fam (column 6 onwards): -9 and NA are missing (PLINK's codes);
        a column of 1, 2 (and 0, -9) is case/control (2 = case), where 0 is missing too, as
        PLINK reads it (with a warning: it is analysed as a quantitative trait). Other text is
        an error naming the sample."""
        path = self.prefix + ".fam"
        fam = self._fam
        if fam.shape[1] < 6:
            raise FileFormatError(
                f"PLINK .fam {path!r} has no phenotype column (5 fields per line): give the "
                "phenotypes in their own file (--pheno)"
            )
        ph = fam.iloc[:, 5:].replace({"-9": np.nan, "NA": np.nan, "-9.0": np.nan})
        values = ph.apply(pd.to_numeric, errors="coerce")
        bad = ph.notna() & values.isna()
        if bad.to_numpy().any():
            i, j = np.argwhere(bad.to_numpy())[0]
            raise FileFormatError(
                f"PLINK .fam {path!r}: phenotype {ph.iat[i, j]!r} of sample {self.samples[i]} is "
                "not a number (missing values are -9 or NA)"
            )
        values = values.astype(float)
        for j in range(values.shape[1]):
            col = values.iloc[:, j]
            seen = set(col.dropna().unique())
            if seen <= {0.0, 1.0, 2.0} and {1.0, 2.0} <= seen:
                values[values.columns[j]] = col.where(col != 0.0)
                warnings.warn(
                    f"PLINK .fam {path!r}: phenotype {j + 1} is case/control (1 = control, 2 = "
                    "case; 0 and -9 missing), analysed as a quantitative trait",
                    DataWarning,
                    stacklevel=2,
                )
        values.index = pd.Index(self.samples, name="id")
        values.columns = [f"pheno{j + 1}" for j in range(values.shape[1])]
        return values

    def _read(self, start: int, stop: int) -> np.ndarray:
        try:
            G = self._open().read(index=np.s_[:, start:stop], dtype="float64", num_threads=1)
        except Exception as exc:
            raise FileFormatError(
                f"cannot read SNPs {start}..{stop} of {self.prefix!r}: {exc}"
            ) from None
        return G[:, None, :]


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


#: More chromosomes than this in an annotation file suggests swapped columns (a warning).
_MANY_CHROMOSOMES = 100


def _annotation(path: Path, names: list[str], geno: str) -> dict[str, np.ndarray]:
    """``chr`` and ``pos`` of the markers ``names`` from a BIMBAM annotation file (``marker
    position chromosome``), refusing unknown markers, conflicting lines for one marker and
    positions that are not numbers."""
    try:
        ann = pd.read_csv(path, sep=r"[\s,]+", header=None, engine="python", dtype=str)
    except pd.errors.EmptyDataError:
        raise FileFormatError(f"annotation file {str(path)!r} is empty") from None
    except (OSError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise FileFormatError(f"cannot read annotation file {str(path)!r}: {exc}") from None
    if ann.shape[1] < 3:
        raise FileFormatError(
            f"annotation file {str(path)!r} needs 3 columns "
            f"(marker position chromosome); got {ann.shape[1]}"
        )
    ann = ann.iloc[:, :3]
    ann.columns = ["marker", "pos", "chr"]
    ann = ann.drop_duplicates()
    conflict = ann["marker"][ann["marker"].duplicated()].unique()
    if len(conflict):
        rows = ann[ann["marker"] == conflict[0]]
        places = "; ".join(
            f"chr {c} pos {q}" for c, q in zip(rows["chr"], rows["pos"], strict=True)
        )
        raise FileFormatError(
            f"annotation file {str(path)!r} lists {len(conflict)} marker(s) twice with "
            f"different positions or chromosomes, e.g. {conflict[0]}: {places}"
        )
    lookup = ann.set_index("marker")
    missing = [nm for nm in names if nm not in lookup.index]
    if missing:
        raise FileFormatError(
            f"{len(missing)} marker(s) of {geno!r} are not in the annotation file "
            f"{str(path)!r} (chromosome unknown): {', '.join(missing[:10])}"
        )
    sub = lookup.loc[names]
    pos = pd.to_numeric(sub["pos"], errors="coerce")
    bad = pos.isna() & sub["pos"].notna() & (sub["pos"] != "NA")
    if bad.any():
        k = int(np.flatnonzero(bad.to_numpy())[0])
        raise FileFormatError(
            f"annotation file {str(path)!r}: marker {names[k]} has position "
            f"{sub['pos'].iat[k]!r}, not a number (columns: marker position chromosome)"
        )
    chrom = _chrom_str(sub["chr"])
    n_chr = len(set(chrom))
    if n_chr > _MANY_CHROMOSOMES:
        warnings.warn(
            f"annotation file {str(path)!r} puts the markers on {n_chr} chromosomes: are its "
            "columns in BIMBAM's order, marker position chromosome?",
            DataWarning,
            stacklevel=3,
        )
    return {"chr": chrom, "pos": pos.to_numpy(dtype=float)}


class BimbamSource(GenotypeSource):
    """BIMBAM mean genotypes as GEMMA reads them: ``marker, allele1, allele0, dose...`` per line
    (comma and/or whitespace separated, optionally gzipped), with an annotation file
    ``marker position chromosome``. Samples are positional: ids ``"1"``, ``"2"``, ..."""

    positional = True
    random_access = False

    def __init__(self, geno: str | os.PathLike[str], annot: str | os.PathLike[str]) -> None:
        self.path = Path(geno)
        if not self.path.is_file():
            raise FileFormatError(f"BIMBAM genotype file {str(geno)!r} does not exist")
        if not Path(annot).is_file():
            raise FileFormatError(f"BIMBAM annotation file {str(annot)!r} does not exist")
        self.annot = Path(annot)
        names, first = self._scan_names()
        self.samples = [str(i + 1) for i in range(first)]
        self.markers = pd.DataFrame(
            {
                "marker": names,
                **_annotation(self.annot, names, str(geno)),
                "allele1": self._alleles[0],
                "allele0": self._alleles[1],
            }
        )

    @staticmethod
    def _split(line: str) -> list[str]:
        return line.replace(",", " ").split()

    def _scan_names(self) -> tuple[list[str], int]:
        """Markers and alleles, and the number of fields checked on every line. A
        comma-separated file (spaces allowed around the commas) has its commas counted and is
        split only at its first three here (its doses are parsed later); any other layout is
        split in full."""
        names: list[str] = []
        a1: list[str] = []
        a0: list[str] = []
        n_fields = None
        self._commas = False
        commas = -1  # commas per line of a comma-separated file
        with _open_text(self.path) as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                if self._commas and line.count(",") == commas:
                    head = [f.strip() for f in line.split(",", 3)[:3]]
                    if all(f and len(f.split()) == 1 for f in head):
                        names.append(head[0])
                        a1.append(head[1])
                        a0.append(head[2])
                        continue
                fields = self._split(line)
                if n_fields is None:
                    n_fields = len(fields)
                    if n_fields < 4:
                        raise FileFormatError(
                            f"{str(self.path)!r} line {lineno}: expected marker, allele1, "
                            f"allele0 and doses; got {n_fields} field(s)"
                        )
                    self._commas = line.count(",") == n_fields - 1
                    commas = n_fields - 1
                elif len(fields) != n_fields:
                    raise FileFormatError(
                        f"{str(self.path)!r} line {lineno} ({fields[0]}): {len(fields)} fields "
                        f"where the first line has {n_fields}"
                    )
                names.append(fields[0])
                a1.append(fields[1])
                a0.append(fields[2])
        if n_fields is None:
            raise FileFormatError(f"BIMBAM genotype file {str(self.path)!r} is empty")
        self._alleles = (a1, a0)
        return names, n_fields - 3

    def iter_runs(self, runs: list[tuple[int, int]]) -> Iterator[np.ndarray]:
        with _open_text(self.path) as fh:
            lines = (ln for ln in fh if ln.strip())
            pos = 0
            for start, stop in runs:
                for _ in itertools.islice(lines, start - pos):  # skip to the run
                    pass
                yield self._parse(lines, start, stop)
                pos = stop

    def _parse(self, lines: Iterator[str], start: int, stop: int) -> np.ndarray:
        """Doses of markers start:stop from the next stop - start lines, as (n, 1, m)."""
        raw = list(itertools.islice(lines, stop - start))
        n = len(self.samples)
        try:  # NumPy's C parser
            if self._commas:  # the doses after the third comma; loadtxt checks their number
                text = "".join([ln.split(",", 3)[3] for ln in raw]).replace("NA", "nan")
                block = np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2, comments=None)
            else:  # fields counted when the file was opened
                text = "".join(raw).replace(",", " ").replace("NA", "nan")
                block = np.loadtxt(
                    io.StringIO(text), usecols=range(3, 3 + n), ndmin=2, comments=None
                )
            if block.shape != (len(raw), n):
                raise ValueError("unexpected shape")
        except (ValueError, IndexError):  # say which line or dose is wrong
            block = self._parse_slowly(raw, start)
        _check_doses(block, self.markers["marker"].iloc[start:stop], self.samples, self.path)
        return block.T[:, None, :].copy()

    def _parse_slowly(self, raw: list[str], start: int) -> np.ndarray:
        block = np.empty((len(raw), len(self.samples)))
        for r, line in enumerate(raw):
            fields = self._split(line)[3:]
            if len(fields) != len(self.samples):
                raise FileFormatError(
                    f"{str(self.path)!r} marker {self.markers['marker'].iat[start + r]}: "
                    f"{len(fields)} doses where the first line has {len(self.samples)}"
                )
            try:
                block[r] = [np.nan if f == "NA" else float(f) for f in fields]
            except ValueError:
                bad = next(f for f in fields if f != "NA" and not _is_float(f))
                raise FileFormatError(
                    f"{str(self.path)!r} marker {self.markers['marker'].iat[start + r]}: dose "
                    f"{bad!r} is not a number (NA for missing)"
                ) from None
        return block

    def _read(self, start: int, stop: int) -> np.ndarray:
        with _open_text(self.path) as fh:
            lines = itertools.islice((ln for ln in fh if ln.strip()), start, None)
            return self._parse(lines, start, stop)

    def files(self) -> list[Path]:
        return [self.path, self.annot]


class DosageSource(GenotypeSource):
    """CSV/TSV dosage matrix: one row per marker, columns ``marker, chr, pos`` then one column
    per sample id (the header names the samples). NA marks a missing genotype."""

    random_access = False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.sep = separator_for(path)
        existing_file(path, "dosage")
        head = head_lines(self.path, "dosage", lines=1)
        header = next(csv.reader(head, delimiter=self.sep), []) if head else []
        header = [c.strip() for c in header]
        if [c.lower() for c in header[:3]] != ["marker", "chr", "pos"]:
            raise FileFormatError(
                f"dosage file {str(path)!r} must start with the columns "
                f"marker, chr, pos; got {header[:3]}"
            )
        self.samples = header[3:]
        if not self.samples:
            raise FileFormatError(f"dosage file {str(path)!r} has no sample columns")
        dup = duplicated(self.samples)
        if dup:
            raise FileFormatError(
                f"dosage file {str(path)!r} has duplicated sample ids: {', '.join(dup[:10])}"
            )
        try:
            meta = pd.read_csv(self.path, sep=self.sep, usecols=[0, 1, 2], dtype=str)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, ValueError) as exc:
            raise FileFormatError(
                f"cannot read dosage file {str(path)!r}: {parser_error(exc)}"
            ) from None
        if meta.empty:
            raise FileFormatError(f"dosage file {str(path)!r} has no markers (a header only)")
        check_field_counts(self.path, "dosage", self.sep, len(header))
        meta.columns = ["marker", "chr", "pos"]
        meta["chr"] = _chrom_str(meta["chr"])
        pos = pd.to_numeric(meta["pos"], errors="coerce")
        bad = pos.isna() & meta["pos"].notna()
        if bad.any():
            k = int(np.flatnonzero(bad.to_numpy())[0])
            raise FileFormatError(
                f"dosage file {str(path)!r}: marker {meta['marker'].iat[k]} has position "
                f"{meta['pos'].iat[k]!r}, not a number"
            )
        meta["pos"] = pos
        self.markers = meta

    def iter_runs(self, runs: list[tuple[int, int]]) -> Iterator[np.ndarray]:
        size = max((stop - start for start, stop in runs), default=1)
        with pd.read_csv(
            self.path,
            sep=self.sep,
            chunksize=size,
            na_values=["NA"],
            keep_default_na=False,
            dtype={0: str, 1: str, 2: str},
        ) as reader:
            buf: pd.DataFrame = pd.DataFrame()
            first = 0  # marker index of buf's first row
            for start, stop in runs:
                while first + len(buf) < stop:
                    nxt = next(reader)
                    buf = nxt if buf.empty else pd.concat([buf, nxt])
                    if first + len(buf) <= start:  # rows before the run: not kept
                        first += len(buf)
                        buf = buf.iloc[0:0]
                block = buf.iloc[start - first : stop - first]
                buf, first = buf.iloc[stop - first :], stop
                yield self._doses(block)

    def _doses(self, block: pd.DataFrame) -> np.ndarray:
        if block.shape[1] != 3 + len(self.samples):
            raise FileFormatError(
                f"dosage file {str(self.path)!r}: {block.shape[1]} columns near marker "
                f"{block.iloc[0, 0]!s} where the header names {3 + len(self.samples)}"
            )
        raw = block.iloc[:, 3:]
        try:
            doses = raw.to_numpy(dtype=float)
        except (ValueError, TypeError):
            for i, col in enumerate(raw.columns):  # the first text value, to name it
                vals = pd.to_numeric(raw[col], errors="coerce")
                bad = (raw[col].notna() & vals.isna()).to_numpy()
                if bad.any():
                    r = int(np.flatnonzero(bad)[0])
                    raise FileFormatError(
                        f"dosage file {str(self.path)!r}: dose {raw[col].iat[r]!r} of sample "
                        f"{self.samples[i]} at marker {block.iat[r, 0]!s} is not a number (NA "
                        "for missing)"
                    ) from None
            raise
        _check_doses(doses, block.iloc[:, 0], self.samples, self.path)
        return doses.T[:, None, :].copy()

    def _read(self, start: int, stop: int) -> np.ndarray:
        block = pd.read_csv(
            self.path,
            sep=self.sep,
            skiprows=range(1, start + 1),
            nrows=stop - start,
            na_values=["NA"],
            keep_default_na=False,
            dtype={0: str, 1: str, 2: str},
        )
        return self._doses(block)

    def files(self) -> list[Path]:
        return [self.path]


def _load_npz(path: str | os.PathLike[str], what: str) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file (no pickled objects), or a message saying why not."""
    p = existing_file(path, what)
    with open(p, "rb") as fh:
        magic = fh.read(6)
    if magic.startswith(b"\x93NUMPY"):
        raise FileFormatError(
            f"{what} {str(path)!r} is a single .npy array; an .npz archive of named arrays is "
            "expected (as np.savez writes)"
        )
    if not magic.startswith(b"PK"):
        raise FileFormatError(f"{what} {str(path)!r} is not an .npz archive (np.savez)")
    objects = FileFormatError(
        f"{what} {str(path)!r} holds Python objects (e.g. sample ids saved as objects); "
        "save text arrays as strings, e.g. np.asarray(ids).astype(str)"
    )
    try:
        with np.load(p, allow_pickle=False) as z:
            return {key: z[key] for key in z.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise objects from None
        raise FileFormatError(f"cannot read {what} {str(path)!r}: {exc}") from None
    except (OSError, EOFError) as exc:
        raise FileFormatError(
            f"cannot read {what} {str(path)!r} as an .npz archive: {exc}"
        ) from None


#: Genotype probabilities of a sample and locus must sum to 1 within this (files written with
#: 6 or more significant digits pass).
PROB_SUM_ATOL = 1e-4


def check_probabilities(P: np.ndarray, samples: Any, markers: Any, where: str) -> None:
    """Refuse probabilities (n, k, m) that are negative (beyond rounding), above 1, or whose
    k columns do not sum to 1 (NaN marks a missing locus of a sample)."""
    with np.errstate(invalid="ignore"):
        low = P < -PROB_SUM_ATOL
        high = P > 1.0 + PROB_SUM_ATOL
        sums = np.sum(P, axis=1)  # (n, m)
        off = np.abs(sums - 1.0) > PROB_SUM_ATOL
    markers = list(markers)
    samples = list(samples)
    if low.any() or high.any():
        i, _, j = np.argwhere(low | high)[0]
        raise FileFormatError(
            f"probabilities in {where}: sample {samples[i]} at marker {markers[j]} has a value "
            f"outside [0, 1] ({int((low | high).sum())} such value(s))"
        )
    if off.any():
        i, j = np.argwhere(off)[0]
        raise FileFormatError(
            f"probabilities in {where}: those of sample {samples[i]} at marker {markers[j]} sum to "
            f"{sums[i, j]:.6g}, not 1 ({int(off.sum())} sample-locus pair(s) off by more than "
            f"{PROB_SUM_ATOL:g})"
        )


#: R/qtl2 cross types whose genotype probabilities are converted to allele probabilities for
#: the kinship (qtl2's genoprob_to_alleleprob, which has an allele matrix for these). For the
#: others (bc, riself, risib, dh, haploid, ...) qtl2 uses the genotype probabilities as they are.
ALLELE_CROSSES = ("f2", "do", "hs", "dof1", "hsf1", "cc", "genail", "magic19")


def allele_probabilities(block: np.ndarray, genotypes: list[str]) -> tuple[np.ndarray, list[str]]:
    """Allele probabilities (n, a, m) from genotype probabilities (n, k, m) with genotype names
    of two allele letters (``"AB"``), or an allele and ``Y`` for a hemizygous male (``"AY"``):
    each genotype gives half to each of its alleles, a hemizygote all to its allele (as
    R/qtl2's genoprob_to_alleleprob, males counting as homozygous on the X chromosome)."""
    alleles: list[str] = []
    for g in genotypes:
        for a in g:
            if a != "Y" and a not in alleles:
                alleles.append(a)
    W = np.zeros((len(genotypes), len(alleles)))
    for i, g in enumerate(genotypes):
        if len(g) != 2 or not all(a in alleles or a == "Y" for a in g):
            raise FileFormatError(
                f"genotype {g!r} is not two allele letters (or an allele and Y): cannot derive "
                "allele probabilities"
            )
        if g[1] == "Y":
            W[i, alleles.index(g[0])] = 1.0
        else:
            W[i, alleles.index(g[0])] += 0.5
            W[i, alleles.index(g[1])] += 0.5
    return np.einsum("nkm,ka->nam", block, W), alleles


class ProbsSource(GenotypeSource):
    """Genotype or allele probabilities, k columns per locus, from an ``.npz``.

    Arrays: ``samples`` (n,), and per marker ``markers``, ``chr``, ``pos`` (m,), in chromosome
    order; then either ``probs`` (n, k, m) (every chromosome with the same k columns) or one
    ``probs_<C>`` (n, k_C, m_C) per chromosome C (the X chromosome has other genotypes than the
    autosomes: R/qtl2's F2 has SS, SB, BS, BB for females and SY, BY for males). Optional:
    ``genotypes_<C>`` (column names), ``crosstype`` (R/qtl2's, e.g. ``"f2"``, ``"bc"``,
    ``"riself"``, ``"do"``), ``chrnames`` and ``is_x_chr`` (which chromosome is X; by default
    the one named X). The README shows how to export them from R/qtl2.
    """

    spans_chromosomes = False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        arrays = _load_npz(path, "probabilities")
        need = {"samples", "markers", "chr", "pos"}
        if not need <= set(arrays) or not (
            "probs" in arrays or any(k.startswith("probs_") for k in arrays)
        ):
            missing = sorted(need - set(arrays)) + (
                [] if any(k.startswith("probs") for k in arrays) else ["probs"]
            )
            raise FileFormatError(
                f"probabilities {str(path)!r} lack the array(s) {missing} (an .npz with "
                "samples, markers, chr, pos and probs (n, k, m) or probs_<C> per chromosome)"
            )
        self.path = Path(path)
        self.samples = [str(s) for s in arrays["samples"]]
        chrom = _chrom_str(arrays["chr"])
        self.markers = pd.DataFrame(
            {
                "marker": arrays["markers"].astype(str),
                "chr": chrom,
                "pos": np.asarray(arrays["pos"], dtype=float),
            }
        )
        self.crosstype = str(arrays["crosstype"]) if "crosstype" in arrays else None
        names = list(dict.fromkeys(chrom))
        self._x: frozenset[str] | None = None
        if "chrnames" in arrays and "is_x_chr" in arrays:
            flags = dict(
                zip(
                    [str(c) for c in arrays["chrnames"]],
                    np.asarray(arrays["is_x_chr"], bool),
                    strict=True,
                )
            )
            self._x = frozenset(c for c in names if flags.get(c, False))
        self.blocks, self.genotypes = self._blocks(arrays, names, str(path))
        self.k = max(b.shape[1] for b in self.blocks.values())
        self._first = {c: int(np.flatnonzero(chrom == c)[0]) for c in names}
        for c, P in self.blocks.items():
            rows = self.markers["marker"].iloc[self._first[c] : self._first[c] + P.shape[2]]
            check_probabilities(P, self.samples, rows, str(path))

    def _blocks(
        self, arrays: dict[str, np.ndarray], names: list[str], where: str
    ) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
        """Each chromosome's probabilities (n, k_C, m_C) and genotype names."""
        n = len(self.samples)
        counts = self.markers["chr"].value_counts()
        blocks: dict[str, np.ndarray] = {}
        genos: dict[str, list[str]] = {}
        if "probs" in arrays:
            P = np.asarray(arrays["probs"], dtype=float)
            if P.ndim != 3:
                raise FileFormatError(f"probs in {where!r} must be (n, k, m); got {P.shape}")
            if P.shape[0] != n or P.shape[2] != len(self.markers):
                raise FileFormatError(
                    f"{where!r}: probs is {P.shape} but there are {n} samples and "
                    f"{len(self.markers)} markers"
                )
            start = 0
            for c in names:
                blocks[c] = P[:, :, start : start + counts[c]]
                start += counts[c]
        else:
            for c in names:
                key = f"probs_{c}"
                if key not in arrays:
                    raise FileFormatError(f"{where!r} has markers on chromosome {c} but no {key}")
                P = np.asarray(arrays[key], dtype=float)
                if P.ndim != 3 or P.shape[0] != n or P.shape[2] != counts[c]:
                    raise FileFormatError(
                        f"{where!r}: {key} is {P.shape} but there are {n} samples and "
                        f"{counts[c]} markers on chromosome {c}"
                    )
                blocks[c] = P
        for c, P in blocks.items():
            key = f"genotypes_{c}" if f"genotypes_{c}" in arrays else "genotypes"
            names_c = [str(g) for g in arrays[key]] if key in arrays else []
            if names_c and len(names_c) != P.shape[1]:
                raise FileFormatError(
                    f"{where!r}: {key} names {len(names_c)} genotypes for {P.shape[1]} columns"
                )
            genos[c] = names_c or [f"g{j + 1}" for j in range(P.shape[1])]
        return blocks, genos

    @property
    def x_chromosomes(self) -> frozenset[str]:
        return super().x_chromosomes if self._x is None else self._x

    def k_of(self, start: int) -> int:
        return int(self.blocks[str(self.markers["chr"].iat[start])].shape[1])

    def allele_block(self, start: int, stop: int) -> np.ndarray:
        """The probabilities R/qtl2's kinship uses for markers start:stop: allele
        probabilities for cross types with alleles (:data:`ALLELE_CROSSES`), else the
        genotype probabilities."""
        block = self._read(start, stop)
        if self.crosstype in ALLELE_CROSSES:
            c = str(self.markers["chr"].iat[start])
            block = allele_probabilities(block, self.genotypes[c])[0]
        return block

    def _read(self, start: int, stop: int) -> np.ndarray:
        c = str(self.markers["chr"].iat[start])
        a = start - self._first[c]
        return self.blocks[c][:, :, a : a + stop - start].copy()

    def files(self) -> list[Path]:
        return [self.path]


class ArraySource(GenotypeSource):
    """Genotypes already in memory: an (n, m) dosage or (n, k, m) probability array (whose k
    columns must sum to 1). Dosages are taken as given (any coding: 0/1/2, centred, ...)."""

    def __init__(self, genotypes: Any, samples: Any, markers: pd.DataFrame) -> None:
        G = np.asarray(genotypes, dtype=float)
        if G.ndim == 2:
            G = G[:, None, :]
        if G.ndim != 3:
            raise FileFormatError(f"genotypes must be (n, m) or (n, k, m); got {G.shape}")
        if len(samples) != G.shape[0]:
            raise FileFormatError(f"{len(samples)} sample ids for {G.shape[0]} genotype rows")
        need = {"marker", "chr", "pos"}
        if not need <= set(markers.columns) or len(markers) != G.shape[2]:
            raise FileFormatError(
                f"markers must be a table of {G.shape[2]} rows with columns marker, chr, pos"
            )
        self.G = G
        self.k = G.shape[1]
        self.samples = [str(s) for s in samples]
        self.markers = markers.reset_index(drop=True).assign(chr=_chrom_str(markers["chr"]))
        if self.k > 1:
            check_probabilities(G, self.samples, self.markers["marker"], "the array")

    def _read(self, start: int, stop: int) -> np.ndarray:
        return self.G[:, :, start:stop].copy()

    def fingerprint(self) -> dict[str, str]:
        h = hashlib.sha256(np.ascontiguousarray(self.G).tobytes())
        h.update(pd.util.hash_pandas_object(self.markers, index=False).to_numpy().tobytes())
        h.update("\0".join(self.samples).encode())
        return {"<array>": h.hexdigest()}
