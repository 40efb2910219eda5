"""Benchmark: lmmlite against R/lmmlite's C++ code, in the same run.

Cases (issue 2):

- ``recla``: heritability of all 26 recla phenotypes (REML, tol 1e-8, missing values
  handled): ``lmmlite.heritability`` against R/lmmlite looping over the phenotypes as its tests
  do (drop NAs, ``eigen_rotation``, ``fitLMM(use_cpp=TRUE)``).
- ``large``: 1,000 simulated samples and 10,000 traits sharing one kinship:
  ``eigen_rotation`` + batched ``fit_lmm`` against R/lmmlite's ``eigen_rotation`` and
  ``fitLMM`` looped over the traits (tol 1e-4).

Run from the repository root::

    python bench/bench_heritability.py            # both cases, 3 repeats, median
    python bench/bench_heritability.py --quick    # 2,000 traits in the large case
    python bench/bench_heritability.py --no-r     # lmmlite only

R/lmmlite is found through ``LMMLITE_R_LIBS`` (or ``R_LIBS``); see bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import lmmlite
from _blas import blas_line
from lmmlite.core import _kernels
from lmmlite.datasets import simulate

HERE = Path(__file__).resolve().parent
RECLA = HERE.parents[1] / "shared" / "data" / "recla"


def _median_time(func, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _r_available() -> str | None:
    if shutil.which("Rscript") is None:
        return "Rscript not found"
    env = _r_env()
    res = subprocess.run(
        ["Rscript", "-e", "library(lmmlite)"], env=env, capture_output=True, text=True
    )
    if res.returncode != 0:
        return "R package lmmlite not installed (set LMMLITE_R_LIBS, see bench/README.md)"
    return None


def _r_env() -> dict[str, str]:
    env = dict(os.environ)
    if os.environ.get("LMMLITE_R_LIBS"):
        env["R_LIBS"] = os.environ["LMMLITE_R_LIBS"]
    return env


def _run_r(case: str, folder: Path, repeats: int, out: Path) -> dict[str, float]:
    env = _r_env()
    env["BENCH_OUT"] = str(out)
    res = subprocess.run(
        ["Rscript", str(HERE / "r_lmmlite_bench.R"), case, str(folder), str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"R failed: {res.stderr.strip()}")
    times = {}
    for line in res.stdout.splitlines():
        if line.startswith("TIME "):
            _, step, sec = line.split()
            times[step] = float(sec)
    return times


def bench_recla(repeats: int, use_r: bool, out: Path) -> list[dict]:
    K = pd.read_csv(RECLA / "kinship.csv", index_col=0)
    P = pd.read_csv(RECLA / "pheno.csv", index_col=0)
    C = pd.read_csv(RECLA / "covar.csv", index_col=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # warm-up: start numba and load the compiled kernels (a fresh process fits a job this
        # small with their exact NumPy twins instead, without numba's start-up)
        _kernels.start()
        lmmlite.heritability(K, P, C, tol=1e-8)
        t_py, table = _median_time(lambda: lmmlite.heritability(K, P, C, tol=1e-8), repeats)
    row = {"case": "recla (26 phenotypes)", "step": "heritability, tol 1e-8", "lmmlite": t_py}
    if use_r:
        r = _run_r("recla", RECLA, repeats, out)
        row["R/lmmlite"] = r["total"]
        r_hsq = pd.read_csv(out / "r_recla_hsq.csv").set_index("phenotype")["hsq"]
        row["max |hsq diff|"] = float(np.max(np.abs(table["hsq"] - r_hsq.loc[table.index])))
    return [row]


def bench_large(repeats: int, use_r: bool, out: Path, n_traits: int) -> list[dict]:
    n = 1000
    sim = simulate(
        n_samples=n,
        n_traits=n_traits,
        n_markers=2000,
        hsq=np.linspace(0, 0.9, n_traits),
        missing_rate=0.0,
        seed=7,
    )
    K = sim.kinship.to_numpy()
    Y = sim.pheno.to_numpy()
    X = sim.covar.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = lmmlite.eigen_rotation(K, Y[:, :50], X)
        lmmlite.fit_lmm(e.Kva, e.y, e.X)  # warm-up
        t_rot, e = _median_time(lambda: lmmlite.eigen_rotation(K, Y, X), repeats)
        t_fit, fit = _median_time(lambda: lmmlite.fit_lmm(e.Kva, e.y, e.X), repeats)
    label = f"large ({n} x {n_traits} traits)"
    rows = [
        {"case": label, "step": "eigen_rotation", "lmmlite": t_rot},
        {"case": label, "step": "fit (tol 1e-4)", "lmmlite": t_fit},
        {"case": label, "step": "total", "lmmlite": t_rot + t_fit},
    ]
    if use_r:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for name, arr in (("K", K), ("Y", Y), ("X", X)):
                np.asfortranarray(arr).astype("<f8").ravel(order="F").tofile(folder / f"{name}.bin")
            (folder / "dims.txt").write_text(f"{n} {n_traits} {X.shape[1]}\n")
            r = _run_r("large", folder, repeats, out)
        for row, key in zip(rows, ("eigen_rotation", "fit", "total"), strict=True):
            row["R/lmmlite"] = r[key]
        r_hsq = pd.read_csv(out / "r_large_hsq.csv")["hsq"].to_numpy()
        rows[-1]["max |hsq diff|"] = float(np.max(np.abs(fit.hsq - r_hsq)))
    return rows


def _print(rows: list[dict]) -> None:
    head = f"{'case':<26} {'step':<24} {'lmmlite s':>10} {'R/lmmlite s':>12} {'speed-up':>9}"
    print(head)
    print("-" * len(head))
    for r in rows:
        rs = r.get("R/lmmlite")
        ratio = f"{rs / r['lmmlite']:.1f}x" if rs else "n/a"
        rtxt = f"{rs:.3f}" if rs else "n/a"
        print(f"{r['case']:<26} {r['step']:<24} {r['lmmlite']:>10.3f} {rtxt:>12} {ratio:>9}")
    for r in rows:
        if "max |hsq diff|" in r:
            print(f"{r['case']}: max |hsq(lmmlite) - hsq(R)| = {r['max |hsq diff|']:.2e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 traits in the large case")
    parser.add_argument("--no-r", action="store_true", help="time lmmlite only")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    use_r = not args.no_r
    if use_r and (why := _r_available()):
        print(f"note: R/lmmlite not timed: {why}", file=sys.stderr)
        use_r = False
    rows = bench_recla(args.repeats, use_r, out)
    rows += bench_large(args.repeats, use_r, out, 2000 if args.quick else 10_000)
    print(blas_line())
    _print(rows)
    (out / "bench_heritability.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
