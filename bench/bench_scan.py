"""Benchmark: genome scan of a simulated PLINK fileset against GEMMA and FaST-LMM (issue 3).

    python bench/bench_scan.py [--samples 2000] [--snps 100000] [--no-fastlmm]
    python bench/bench_scan.py --bfile DATA/mouse_hs1940   # GEMMA's mouse GWAS example

In one run, on the same simulated data (bench/make_plink.py) and the same kinship (GEMMA's
``-gk 1`` file):

- ``lmmlite scan --mode exact --center-kinship`` against ``gemma -lmm 4`` (Debian's gemma),
  with the largest difference of their p-values;
- ``lmmlite scan`` (``--mode fixed``) against the rotation alone (eigendecomposition, reading
  the genotypes and the product U'G: the unavoidable cost) and against FaST-LMM's
  ``single_snp`` (its own virtual environment, ``bench/out/fastlmm-venv``, made on first use
  with ``pip install fastlmm six``; or the Python named by ``FASTLMM_PYTHON``).

Wall time and peak memory (max RSS) of each command come from ``/usr/bin/time -v`` where
available (else not reported). Every command runs ``--repeat`` times (3 by default), all
of them in turn, the order reversed every other round (a command run right after another
program's is often slower on a small machine); the medians are reported. Each command runs
with Python's bytecode cache on (see ``_timed``), as an installed package's would.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _blas import blas_line

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

ROTATION = r"""
import sys, time, numpy as np, pandas as pd
from bed_reader import open_bed
prefix, kin = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
K = pd.read_csv(kin, sep=r"\s+", header=None, dtype=float).to_numpy()
bed = open_bed(prefix + ".bed")
y = pd.read_csv(prefix + ".fam", sep=r"\s+", header=None)[5].to_numpy()
keep = np.flatnonzero(np.isfinite(y) & (y != -9))
w, U = np.linalg.eigh(K[np.ix_(keep, keep)])
m = bed.sid_count
for j in range(0, m, 2048):
    G = bed.read(index=np.s_[keep, j:j + 2048], dtype="float64")
    G = np.where(np.isnan(G), np.nanmean(G, axis=0), G)
    R = U.T @ G
print(time.perf_counter() - t0)
"""

FASTLMM = r"""
import sys, time, numpy as np, pandas as pd
t0 = time.perf_counter()
from pysnptools.snpreader import Bed, Pheno
from pysnptools.kernelreader import KernelData
from fastlmm.association import single_snp
prefix, kin = sys.argv[1], sys.argv[2]
bed = Bed(prefix + ".bed", count_A1=True)
K = pd.read_csv(kin, sep=r"\s+", header=None, dtype=float).to_numpy()
fam = pd.read_csv(prefix + ".fam", sep=r"\s+", header=None, dtype={0: str, 1: str})
iid = fam[[0, 1]].to_numpy().astype(str)
from pysnptools.snpreader import SnpData
pheno = SnpData(iid=iid, sid=["y"], val=fam[[5]].to_numpy(float))
res = single_snp(bed, pheno, K0=KernelData(iid=iid, val=K), count_A1=True,
                 leave_out_one_chrom=False)
print(time.perf_counter() - t0)
res.to_csv(sys.argv[3], sep="\t", index=False)
"""


def _timed(cmd: list[str], **kw) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run ``cmd``; return (wall seconds, peak RSS in MiB, result). Python's bytecode cache
    is on (``PYTHONDONTWRITEBYTECODE`` removed): an installed package's modules are compiled
    when it is installed, so a user's run reads them compiled; a source checkout's would
    otherwise be compiled again in every run (lmmlite's: about 0.08 s)."""
    kw.setdefault("env", {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    t0 = time.perf_counter()
    if gnu_time:
        res = subprocess.run([gnu_time, "-v", *cmd], capture_output=True, text=True, **kw)
        wall = time.perf_counter() - t0
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr)
        rss = int(m.group(1)) / 1024 if m else float("nan")
    else:
        res = subprocess.run(cmd, capture_output=True, text=True, **kw)
        wall = time.perf_counter() - t0
        rss = float("nan")
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed:\n{res.stderr[-2000:]}")
    return wall, rss, res


def _fastlmm_python() -> Path:
    if os.environ.get("FASTLMM_PYTHON"):  # an existing environment with fastlmm
        return Path(os.environ["FASTLMM_PYTHON"])
    venv = OUT / "fastlmm-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "fastlmm", "six", "pandas"], check=True
        )
    return py


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--snps", type=int, default=100_000)
    ap.add_argument("--no-fastlmm", action="store_true")
    ap.add_argument("--no-gemma", action="store_true")
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of every command (in turn, alternating the order); medians are reported",
    )
    ap.add_argument(
        "--bfile",
        metavar="PREFIX",
        help="a PLINK fileset to use instead of simulating one (phenotype: the .fam's 6th "
        "column), e.g. GEMMA's example/mouse_hs1940",
    )
    args = ap.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    if args.bfile:
        prefix = OUT / Path(args.bfile).name
        for ext in (".bed", ".bim", ".fam"):  # GEMMA writes beside the data: work on copies
            if not Path(str(prefix) + ext).exists():
                shutil.copy(args.bfile + ext, str(prefix) + ext)
    else:
        prefix = OUT / f"sim{args.samples}x{args.snps}"
    if not Path(str(prefix) + ".bed").exists():
        print(f"simulating {prefix} ...", file=sys.stderr)
        subprocess.run(
            [
                sys.executable,
                str(HERE / "make_plink.py"),
                str(prefix),
                "--samples",
                str(args.samples),
                "--snps",
                str(args.snps),
            ],
            check=True,
        )
    gemma = shutil.which("gemma")
    kin = OUT / "output" / f"{prefix.name}.cXX.txt"
    if not kin.exists():
        if gemma is None:
            raise SystemExit("GEMMA is needed for the shared kinship (apt-get install gemma)")
        subprocess.run(
            [gemma, "-bfile", str(prefix), "-gk", "1", "-o", prefix.name],
            cwd=OUT,
            check=True,
            capture_output=True,
        )
    lmm = [sys.executable, "-m", "lmmlite", "scan", "--bfile", str(prefix), "--kinship", str(kin)]
    lmm += ["--pheno-col", "1"]  # the .fam's first phenotype, as GEMMA's -n 1 and FaST-LMM here
    # warm the numba cache so that compilation is not timed
    _timed([*lmm, "--mode", "exact", "--out", str(OUT / "warm.tsv")])
    runs: dict[str, tuple[list[str], dict]] = {
        "lmmlite scan --mode exact": (
            [*lmm, "--mode", "exact", "--center-kinship", "--out", str(OUT / "lmmlite_exact.tsv")],
            {},
        ),
        "lmmlite scan --mode fixed": ([*lmm, "--out", str(OUT / "lmmlite_fixed.tsv")], {}),
        "rotation alone (eigh + read + U'G)": (
            [sys.executable, "-c", ROTATION, str(prefix), str(kin)],
            {},
        ),
    }
    if gemma and not args.no_gemma:
        cmd = [
            gemma,
            "-bfile",
            str(prefix),
            "-k",
            str(kin),
            "-lmm",
            "4",
            "-o",
            f"{prefix.name}_lmm4",
        ]
        runs["gemma -lmm 4"] = (cmd, {"cwd": OUT})
    if not args.no_fastlmm:
        py = _fastlmm_python()
        cmd = [str(py), "-c", FASTLMM, str(prefix), str(kin), str(OUT / "fastlmm.tsv")]
        runs["FaST-LMM single_snp"] = (cmd, {})
    # every command once per repeat, in turn, the order reversed every other repeat (a run
    # right after another program's is often slower here); the median of each
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for r in range(args.repeat):
        for name in list(runs)[:: 1 if r % 2 == 0 else -1]:
            cmd, kw = runs[name]
            wall, rss, _ = _timed(cmd, **kw)
            times[name].append((wall, rss))
    rows = [
        [name, statistics.median(t for t, _ in v), max(m for _, m in v)]
        for name, v in times.items()
    ]
    if "gemma -lmm 4" in runs:
        ours = pd.read_csv(OUT / "lmmlite_exact.tsv", sep="\t", dtype={"marker": str, "note": str})
        theirs = pd.read_csv(
            OUT / "output" / f"{prefix.name}_lmm4.assoc.txt", sep="\t", dtype={"rs": str}
        )
        merged = theirs.merge(ours, left_on="rs", right_on="marker", suffixes=("_g", ""))
        diffs = {
            c: float(np.nanmax(np.abs(np.log10(merged[c]) - np.log10(merged[c + "_g"]))))
            for c in ("p_wald", "p_lrt", "p_score")
        }
        print(f"exact vs GEMMA on {len(merged)} markers: max |log10 p diff| {diffs}")
    by = {r[0]: r[1] for r in rows}
    t_exact = by["lmmlite scan --mode exact"]
    t_fixed = by["lmmlite scan --mode fixed"]
    t_rot = by["rotation alone (eigh + read + U'G)"]
    shape = prefix.name if args.bfile else f"{args.samples} samples x {args.snps} SNPs"
    print(f"\n{shape}, wall seconds (median of {args.repeat}) and peak memory (whole process)")
    print(blas_line())
    print(f"{'command':<38} {'seconds':>9} {'peak MiB':>9}")
    for name, t, rss in rows:
        print(f"{name:<38} {t:>9.2f} {rss:>9.0f}")
    if "gemma -lmm 4" in by:
        print(f"exact: {by['gemma -lmm 4'] / t_exact:.1f}x faster than GEMMA -lmm 4")
    print(f"exact: {t_exact / t_rot:.2f}x the rotation's time")
    print(f"fixed: {t_fixed / t_rot:.2f}x the rotation's time")
    if "FaST-LMM single_snp" in by:
        print(f"fixed: {by['FaST-LMM single_snp'] / t_fixed:.1f}x faster than FaST-LMM")
    (OUT / "bench_scan.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
