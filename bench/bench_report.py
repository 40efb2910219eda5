"""Benchmark: the HTML report at the two scales of issue 16, build time, file size and (with
chromium and chromedriver installed) the time the page takes to open and to switch traits.

    python bench/bench_report.py [--no-browser] [--markers 1000000] [--traits 35000]
    python bench/bench_report.py --example docs/example-report.html   # the README's example

Cases (simulated tables; the report draws tables, so the scan need not be run):

- **1M markers x 1 trait**: a full scan table (``keep=all``) written as Parquet; the report reads
  it, thins the markers below the LOD floor (every marker at or above it is kept), computes the
  QQ points and lambda_GC and finds the peaks above the Bonferroni line.
- **35,000 traits x 7,000 markers, keep=peaks**: a table of peaks (each trait's highest LOD on a
  chromosome when it reaches 3: about two rows per trait, cis and trans), the genes' positions
  and a heritability table of the 35,000 traits.

Build time is :func:`lmmlite.report` end to end (reading the files, writing the page). Opening
is measured in headless chromium from navigation to the page's ``data-ready`` flag (every plot
drawn); switching is one call of the page's ``selectTrait`` (redraws the LOD plot, the
chromosome curve, the QQ plot and the peak list).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from lmmlite.report import report


def full_scan(m: int, seed: int = 1) -> pd.DataFrame:
    """One trait, ``m`` markers on 20 chromosomes, chi-square(1) LODs and three peaks."""
    rng = np.random.default_rng(seed)
    chrom = np.repeat(np.arange(1, 21), np.diff(np.linspace(0, m, 21).astype(int)))
    pos = np.concatenate(
        [np.sort(rng.uniform(3e6, 1.9e8, (chrom == c).sum())) for c in range(1, 21)]
    )
    chi2 = rng.chisquare(1, m)
    for where, height in ((0.13, 60.0), (0.48, 35.0), (0.81, 28.0)):
        mid, width = int(where * m), m // 400
        chi2[mid - width : mid + width] += height * (1 - np.abs(np.linspace(-1, 1, 2 * width)))
    beta = rng.normal(0, 0.1, m)
    return pd.DataFrame(
        {
            "trait": "y",
            "chr": chrom.astype(str),
            "pos": pos,
            "marker": [f"rs{10_000_000 + i}" for i in range(m)],
            "n": 2000,
            "af": rng.uniform(0.01, 0.5, m),
            "beta": beta,
            "se": np.abs(beta) / np.sqrt(np.maximum(chi2, 1e-12)),
            "lod": chi2 / (2 * np.log(10)),
            "p_wald": stats.chi2.sf(chi2, 1),
        }
    )


def eqtl_peaks(t: int, m: int, seed: int = 2) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A keep=peaks table of ``t`` traits on ``m`` markers, the genes' positions and their
    heritabilities."""
    rng = np.random.default_rng(seed)
    chrom = np.repeat(np.arange(1, 21), np.diff(np.linspace(0, m, 21).astype(int)))
    pos = np.concatenate(
        [np.sort(rng.uniform(3e6, 1.9e8, (chrom == c).sum())) for c in range(1, 21)]
    )
    gene = rng.integers(0, m, t)
    traits = np.array([f"ENSMUSG{i:08d}" for i in range(t)])
    rows = []
    cis = rng.random(t) < 0.6
    rows.append(np.c_[np.flatnonzero(cis), gene[cis] + rng.integers(-3, 4, cis.sum())])
    trans = np.flatnonzero(rng.random(t) < 0.9)
    hotspot = rng.random(trans.size) < 0.05
    spot = np.where(hotspot, int(0.3 * m), rng.integers(0, m, trans.size))
    rows.append(np.c_[trans, spot])
    which = np.concatenate(rows)
    which[:, 1] = np.clip(which[:, 1], 0, m - 1)
    peaks = pd.DataFrame({"ti": which[:, 0], "mi": which[:, 1]})
    peaks["chr"] = chrom[peaks["mi"]].astype(str)
    lod = np.where(
        peaks.index < cis.sum(), rng.gamma(4, 3, len(peaks)) + 3, rng.gamma(2, 0.6, len(peaks)) + 3
    )
    peaks["lod"] = lod
    peaks = (
        peaks.sort_values("lod", ascending=False)
        .drop_duplicates(["ti", "chr"])
        .sort_values(["ti", "mi"])
    )
    table = pd.DataFrame(
        {
            "trait": traits[peaks["ti"]],
            "chr": peaks["chr"].to_numpy(),
            "pos": pos[peaks["mi"]],
            "marker": [f"rs{3_000_000 + i}" for i in peaks["mi"]],
            "n": 79,
            "af": 0.5,
            "beta": rng.normal(0, 0.5, len(peaks)),
            "se": 0.1,
            "lod": peaks["lod"].to_numpy(),
            "p_wald": stats.chi2.sf(peaks["lod"].to_numpy() * 2 * np.log(10), 1),
        }
    )
    genes = pd.DataFrame({"trait": traits, "chr": chrom[gene].astype(str), "pos": pos[gene]})
    hsq = np.clip(rng.beta(2, 3, t) + (rng.random(t) < 0.1), 0, 1)
    lo, hi = np.clip(hsq - 0.3, 0, 1), np.clip(hsq + 0.3, 0, 1)
    herit = pd.DataFrame(
        {
            "n": 79,
            "hsq": hsq,
            "hsq_se": np.where((hsq == 0) | (hsq == 1), np.nan, 0.15),
            "hsq_ci_lower": lo,
            "hsq_ci_upper": hi,
            "lrt_pvalue": rng.uniform(size=t),
            "at_boundary": (hsq == 0) | (hsq == 1),
            "converged": rng.random(t) > 0.001,
        },
        index=pd.Index(traits, name="trait"),
    )
    return table, genes, herit


def example(path: str) -> None:
    """The README's example page: a real scan (``lmmlite.scan``, every marker kept) of 40
    simulated expression traits of 79 recombinant inbred strains on 1,000 markers, with
    permutation thresholds, heritabilities and the genes' positions."""
    import warnings

    import lmmlite
    from lmmlite.io.genotypes import ArraySource
    from lmmlite.permutation import permutation_test

    rng = np.random.default_rng(16)
    n, m, t = 79, 1000, 40
    chrom = np.repeat(np.arange(1, 11), np.diff(np.linspace(0, m, 11).astype(int)))
    pos = np.concatenate(
        [
            np.sort(rng.uniform(3e6, 3e6 + (160 - 8 * c) * 1e6, (chrom == c).sum()))
            for c in range(1, 11)
        ]
    )
    G = np.empty((n, m))
    for c in range(1, 11):  # RIL haplotypes: runs of 0/2 with recombinations
        state = rng.integers(0, 2, n)
        for j in np.flatnonzero(chrom == c):
            state = np.where(rng.random(n) < 0.04, 1 - state, state)
            G[:, j] = 2.0 * state
    ids = [f"BXD{i + 1}" for i in range(n)]
    markers = pd.DataFrame(
        {
            "marker": [f"rs{31000000 + 7 * j}" for j in range(m)],
            "chr": chrom.astype(str),
            "pos": pos,
        }
    )
    src = ArraySource(G, ids, markers)
    gene = rng.integers(0, m, t)
    Y = rng.normal(size=(n, t)) + 0.3 * (G @ rng.normal(0, 0.05, (m, t)))  # polygenic part
    cis = rng.random(t) < 0.6
    Y[:, cis] += (G[:, gene[cis]] - 1.0) * rng.uniform(0.5, 1.2, cis.sum())
    hot = rng.random(t) < 0.25
    Y[:, hot] += (G[:, [int(np.flatnonzero(chrom == 6)[40])]] - 1.0) * 0.7
    names = [f"Gene{j + 1:02d}" for j in range(t)]
    P = pd.DataFrame(Y, index=ids, columns=names)
    genes = pd.DataFrame({"trait": names, "chr": chrom[gene].astype(str), "pos": pos[gene]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        K = lmmlite.kinship(src)
        scan = lmmlite.scan(src, P, kinship=K, progress=False)
        herit = lmmlite.heritability(K, P)
        perm = permutation_test(src, P, kinship=K, n_perm=200, seed=1, progress=False)
    rep = report(
        scan,
        herit=herit,
        perm=perm,
        trait_positions=genes,
        out=path,
        title="lmmlite report: 40 simulated expression traits (example)",
        # Plotly from its CDN: no other project's code in this repository (a page lmmlite
        # writes for a user inlines it and opens offline)
        plotly="cdn",
    )
    print(f"wrote {path}: {rep.size / 1e6:.1f} MB (Plotly from its CDN)")


def open_in_browser(paths: list[Path]) -> list[tuple[float, float] | None]:
    """(seconds to open, milliseconds to switch trait) per page in headless chromium."""
    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        binary = None
    if binary is None or driver_path is None:
        print("(chromium, chromedriver or selenium missing: no browser timings)")
        return [None] * len(paths)
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1300,1000",
        "--enable-unsafe-swiftshader",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    out: list[tuple[float, float] | None] = []
    try:
        driver.get("about:blank")
        for path in paths:
            t0 = time.perf_counter()
            driver.get(path.as_uri())
            WebDriverWait(driver, 300).until(
                lambda d: d.execute_script("return document.body.getAttribute('data-ready')")
            )
            opened = time.perf_counter() - t0
            switch = driver.execute_script(
                "var r = window.lmmReport, n = r.data.scan.traits.length, t0 = performance.now();"
                "r.selectTrait(Math.floor(n / 2)); return performance.now() - t0;"
            )
            out.append((opened, float(switch)))
    finally:
        driver.quit()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markers", type=int, default=1_000_000)
    parser.add_argument("--traits", type=int, default=35_000)
    parser.add_argument("--eqtl-markers", type=int, default=7_000)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--example", metavar="FILE.html", help="only write the README's example")
    args = parser.parse_args()
    if args.example:
        example(args.example)
        return
    folder = Path(tempfile.mkdtemp(prefix="lmmlite-report-bench."))
    scan_file = folder / "scan.parquet"
    full_scan(args.markers).to_parquet(scan_file, index=False)
    peaks, genes, herit = eqtl_peaks(args.traits, args.eqtl_markers)
    peaks_file, genes_file, herit_file = folder / "eqtl.tsv", folder / "genes.tsv", folder / "h.tsv"
    peaks.to_csv(peaks_file, sep="\t", index=False)
    genes.to_csv(genes_file, sep="\t", index=False)
    herit.to_csv(herit_file, sep="\t")
    cases = [
        (f"{args.markers:,} markers x 1 trait (keep=all)", {"scan": scan_file}),
        (
            f"{args.traits:,} traits x {args.eqtl_markers:,} markers (keep=peaks)",
            {"scan": peaks_file, "trait_positions": genes_file, "herit": herit_file},
        ),
    ]
    rows, pages = [], []
    for name, inputs in cases:
        out = folder / f"report{len(pages)}.html"
        t0 = time.perf_counter()
        rep = report(inputs.pop("scan"), out=out, **inputs)
        rows.append((name, rep, time.perf_counter() - t0))
        pages.append(out)
    browser = [None] * len(pages) if args.no_browser else open_in_browser(pages)
    print(f"\nreport build (lmmlite.report, files in and out) on {os.cpu_count()} cores")
    head = f"{'case':44s} {'rows':>9s} {'drawn':>8s} {'build s':>8s} {'MB':>6s} {'Plotly MB':>9s}"
    print(head + f" {'open s':>7s} {'switch ms':>9s}")
    for (name, rep, sec), b in zip(rows, browser, strict=True):
        opened, switch = (f"{b[0]:7.1f}", f"{b[1]:9.0f}") if b else (f"{'n/a':>7s}", f"{'n/a':>9s}")
        print(
            f"{name:44s} {rep.rows:9,d} {rep.shown:8,d} {sec:8.1f} {rep.size / 1e6:6.1f} "
            f"{rep.plotly_bytes / 1e6:9.1f} {opened} {switch}"
        )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
