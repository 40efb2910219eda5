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

import gzip
import hashlib
import io
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import FileFormatError
from ..options import CHUNK_SIZE
from .tables import separator_for, sha256_file

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

    def _read(self, start: int, stop: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def n_markers(self) -> int:
        return len(self.markers)

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, genotypes (n, k, m_chunk))`` over all markers, within chromosomes."""
        if size < 1:
            raise ValueError(f"chunk size must be positive; got {size}")
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


def _chrom_str(values: Any) -> np.ndarray:
    return np.array([str(v).strip() for v in values], dtype=object)


class PlinkSource(GenotypeSource):
    """PLINK 1 binary fileset ``PREFIX.bed/.bim/.fam`` (counts of the .bim's allele 1)."""

    def __init__(self, prefix: str | os.PathLike[str]) -> None:
        try:
            from bed_reader import open_bed
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
        try:
            self._bed = open_bed(base + ".bed", num_threads=1)
            fam_iid = self._bed.iid
            sid = self._bed.sid
            chrom = self._bed.chromosome
            pos = self._bed.bp_position
            a1, a2 = self._bed.allele_1, self._bed.allele_2
        except Exception as exc:  # bed-reader raises several types for malformed files
            raise FileFormatError(f"cannot read PLINK fileset {base!r}: {exc}") from None
        n, m = len(fam_iid), len(sid)
        expected = 3 + m * ((n + 3) // 4)
        size = Path(base + ".bed").stat().st_size
        if size != expected:
            raise FileFormatError(
                f"PLINK .bed {base + '.bed'!r} has {size} bytes but {n} samples x {m} SNPs "
                f"(from .fam and .bim) need {expected}: the file is truncated or does not match"
            )
        self.samples = [str(v) for v in fam_iid]
        self.markers = pd.DataFrame(
            {
                "marker": sid.astype(str),
                "chr": _chrom_str(chrom),
                "pos": pos.astype(np.int64),
                "allele1": a1.astype(str),
                "allele0": a2.astype(str),
            }
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_bed"] = None  # reopened where it is unpickled (a Dask worker)
        return state

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

    def files(self) -> list[Path]:
        return [Path(self.prefix + s) for s in (".bed", ".bim", ".fam")]

    def fam_phenotypes(self) -> pd.DataFrame:
        """Phenotypes from the .fam (column 6 onwards; -9 and NA are missing)."""
        fam = pd.read_csv(self.prefix + ".fam", sep=r"\s+", header=None, dtype=str)
        if fam.shape[1] < 6:
            raise FileFormatError(f"{self.prefix + '.fam'!r} has no phenotype column")
        ph = fam.iloc[:, 5:].replace({"-9": np.nan, "NA": np.nan})
        ph = ph.apply(pd.to_numeric, errors="coerce")
        ph.index = pd.Index(fam.iloc[:, 1].astype(str), name="id")
        ph.columns = [f"pheno{j + 1}" for j in range(ph.shape[1])]
        return ph

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
        ann = pd.read_csv(annot, sep=r"[\s,]+", header=None, engine="python", dtype=str)
        if ann.shape[1] < 3:
            raise FileFormatError(
                f"annotation file {str(annot)!r} needs 3 columns "
                f"(marker position chromosome); got {ann.shape[1]}"
            )
        ann = ann.iloc[:, :3]
        ann.columns = ["marker", "pos", "chr"]
        names, first = self._scan_names()
        self.samples = [str(i + 1) for i in range(first)]
        lookup = ann.drop_duplicates("marker").set_index("marker")
        missing = [nm for nm in names if nm not in lookup.index]
        if missing:
            shown = ", ".join(missing[:10])
            raise FileFormatError(
                f"{len(missing)} marker(s) of {str(geno)!r} are not in the annotation file "
                f"{str(annot)!r} (chromosome unknown): {shown}"
            )
        sub = lookup.loc[names]
        self.markers = pd.DataFrame(
            {
                "marker": names,
                "chr": _chrom_str(sub["chr"]),
                "pos": pd.to_numeric(sub["pos"], errors="coerce").to_numpy(),
                "allele1": self._alleles[0],
                "allele0": self._alleles[1],
            }
        )

    @staticmethod
    def _split(line: str) -> list[str]:
        return line.replace(",", " ").split()

    def _scan_names(self) -> tuple[list[str], int]:
        names: list[str] = []
        a1: list[str] = []
        a0: list[str] = []
        n_fields = None
        with _open_text(self.path) as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                fields = self._split(line)
                if n_fields is None:
                    n_fields = len(fields)
                    if n_fields < 4:
                        raise FileFormatError(
                            f"{str(self.path)!r} line {lineno}: expected marker, allele1, "
                            f"allele0 and doses; got {n_fields} field(s)"
                        )
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
        block = np.empty((stop - start, len(self.samples)))
        for r in range(stop - start):
            fields = self._split(next(lines))[3:]
            try:
                block[r] = [np.nan if f == "NA" else float(f) for f in fields]
            except ValueError as exc:
                raise FileFormatError(
                    f"{str(self.path)!r} marker {self.markers['marker'].iat[start + r]}: {exc}"
                ) from None
        return block.T[:, None, :].copy()

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
        if not self.path.is_file():
            raise FileFormatError(f"dosage file {str(path)!r} does not exist")
        try:
            meta = pd.read_csv(self.path, sep=self.sep, usecols=[0, 1, 2], dtype=str)
            header = pd.read_csv(self.path, sep=self.sep, nrows=0).columns
        except (pd.errors.EmptyDataError, ValueError) as exc:
            raise FileFormatError(f"cannot read dosage file {str(path)!r}: {exc}") from None
        if [c.lower() for c in header[:3]] != ["marker", "chr", "pos"]:
            raise FileFormatError(
                f"dosage file {str(path)!r} must start with the columns "
                f"marker, chr, pos; got {list(header[:3])}"
            )
        self.samples = [str(c).strip() for c in header[3:]]
        if not self.samples:
            raise FileFormatError(f"dosage file {str(path)!r} has no sample columns")
        meta.columns = ["marker", "chr", "pos"]
        meta["chr"] = _chrom_str(meta["chr"])
        meta["pos"] = pd.to_numeric(meta["pos"], errors="coerce")
        self.markers = meta

    def iter_runs(self, runs: list[tuple[int, int]]) -> Iterator[np.ndarray]:
        size = max((stop - start for start, stop in runs), default=1)
        with pd.read_csv(
            self.path, sep=self.sep, chunksize=size, na_values=["NA"], dtype={0: str, 1: str}
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
        try:
            vals = block.iloc[:, 3:].to_numpy(dtype=float)
        except ValueError as exc:
            raise FileFormatError(
                f"dosage file {str(self.path)!r}: non-numeric dose near marker "
                f"{block.iloc[0, 0]!s}: {exc}"
            ) from None
        return vals.T[:, None, :].copy()

    def _read(self, start: int, stop: int) -> np.ndarray:
        block = pd.read_csv(
            self.path,
            sep=self.sep,
            skiprows=range(1, start + 1),
            nrows=stop - start,
            na_values=["NA"],
            dtype={0: str, 1: str},
        )
        return self._doses(block)

    def files(self) -> list[Path]:
        return [self.path]


class ProbsSource(GenotypeSource):
    """Genotype or allele probabilities, k columns per locus, from an ``.npz`` with arrays
    ``probs`` (n, k, m), ``samples`` (n,), ``markers``, ``chr``, ``pos`` (m,) each."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {key: z[key] for key in z.files}
        except (OSError, ValueError) as exc:
            raise FileFormatError(f"cannot read probabilities {str(path)!r}: {exc}") from None
        need = {"probs", "samples", "markers", "chr", "pos"}
        if not need <= set(arrays):
            raise FileFormatError(f"{str(path)!r} lacks arrays {sorted(need - set(arrays))}")
        P = np.asarray(arrays["probs"], dtype=float)
        if P.ndim != 3:
            raise FileFormatError(f"probs in {str(path)!r} must be (n, k, m); got {P.shape}")
        n, k, m = P.shape
        if len(arrays["samples"]) != n or len(arrays["markers"]) != m:
            raise FileFormatError(
                f"{str(path)!r}: probs is {P.shape} but there are "
                f"{len(arrays['samples'])} samples and "
                f"{len(arrays['markers'])} markers"
            )
        self.path = Path(path)
        self.P: np.ndarray | None = P
        self.k = k
        self.samples = [str(s) for s in arrays["samples"]]
        self.markers = pd.DataFrame(
            {
                "marker": arrays["markers"].astype(str),
                "chr": _chrom_str(arrays["chr"]),
                "pos": np.asarray(arrays["pos"], dtype=float),
            }
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["P"] = None  # a Dask worker loads the file itself
        return state

    def _read(self, start: int, stop: int) -> np.ndarray:
        if self.P is None:
            with np.load(self.path, allow_pickle=False) as z:
                self.P = np.asarray(z["probs"], dtype=float)
        return self.P[:, :, start:stop].copy()

    def files(self) -> list[Path]:
        return [self.path]


class ArraySource(GenotypeSource):
    """Genotypes already in memory: an (n, m) dosage or (n, k, m) probability array."""

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

    def _read(self, start: int, stop: int) -> np.ndarray:
        return self.G[:, :, start:stop].copy()

    def fingerprint(self) -> dict[str, str]:
        h = hashlib.sha256(np.ascontiguousarray(self.G).tobytes())
        h.update(pd.util.hash_pandas_object(self.markers, index=False).to_numpy().tobytes())
        h.update("\0".join(self.samples).encode())
        return {"<array>": h.hexdigest()}
