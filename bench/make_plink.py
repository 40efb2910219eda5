"""Simulate a PLINK fileset for bench_scan.py: structured genotypes and one phenotype.

    python bench/make_plink.py OUT_PREFIX [--samples 2000] [--snps 100000] [--seed 1]

Genotypes follow the Balding-Nichols model (3 subpopulations, Fst 0.1) on 10 chromosomes,
with 1% missing calls; the phenotype has heritability 0.5 (a polygenic term from 2,000
markers) plus 10 causal markers. Written in chunks, so memory stays small.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from bed_reader import create_bed

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--snps", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    n, m = args.samples, args.snps
    rng = np.random.default_rng(args.seed)
    pop = rng.integers(0, 3, n)
    fst = 0.1
    n_chr = 10
    chrom = np.repeat(np.arange(1, n_chr + 1), int(np.ceil(m / n_chr)))[:m]
    pos = np.concatenate([np.arange((chrom == c).sum()) * 1000 + 1 for c in range(1, n_chr + 1)])
    g_value = np.zeros(n)
    poly = set(rng.choice(m, 2000, replace=False).tolist())
    causal = rng.choice(m, 10, replace=False)
    chunk = 5000
    props = {
        "fid": [f"f{i}" for i in range(n)],
        "iid": [f"s{i}" for i in range(n)],
        "sid": [f"rs{j}" for j in range(m)],
        "chromosome": chrom.astype(str),
        "bp_position": pos,
        "allele_1": ["A"] * m,
        "allele_2": ["G"] * m,
    }
    with create_bed(args.out + ".bed", iid_count=n, sid_count=m, properties=props) as writer:
        for j0 in range(0, m, chunk):
            j1 = min(m, j0 + chunk)
            p_anc = rng.uniform(0.05, 0.95, j1 - j0)
            a = p_anc * (1 - fst) / fst
            b = (1 - p_anc) * (1 - fst) / fst
            p_pop = rng.beta(a, b, size=(3, j1 - j0))
            G = rng.binomial(2, p_pop[pop]).astype(np.float32)
            for j in range(j0, j1):
                if j in poly:
                    z = G[:, j - j0] - G[:, j - j0].mean()
                    g_value += z * rng.standard_normal() / np.sqrt(2000)
                if j in causal:
                    g_value += 0.15 * (G[:, j - j0] - G[:, j - j0].mean())
            G[rng.random(G.shape) < 0.01] = np.nan
            for col in G.T:
                writer.write(col)
    y = g_value / g_value.std() * np.sqrt(0.5) + rng.standard_normal(n) * np.sqrt(0.5)
    with open(args.out + ".fam", "w") as fh:
        for i in range(n):
            fh.write(f"f{i} s{i} 0 0 0 {y[i]:.6f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
