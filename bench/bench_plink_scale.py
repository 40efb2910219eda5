"""GWAS-scale scan: 5,000 samples x 200,000 SNPs (simulated PLINK), peak memory per process.

Simulates the PLINK fileset once (bench/make_plink.py, into bench/out/), computes the centred
kinship once, then times the scan of the .fam phenotype (fixed hsq, every test kept) in a
fresh process in-process and on a fresh 2-worker LocalCluster, and reports each process's
peak resident memory (the workers' as measured inside them). The genotype file is read by
the scanning processes in chunks; the kinship and its eigenvectors (5,000 x 5,000 doubles,
200 MB each) are the fixed cost.

    python bench/bench_plink_scale.py [--samples 5000] [--snps 200000] [--chunk-size 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def _mib(kib: float) -> float:
    return kib / 1024.0


def _run(prefix: str, how: str, chunk_size: int) -> dict:
    """In this (fresh) process: one scan, its time and the peak memory of each process."""
    import numpy as np
    import pandas as pd

    import lmmlite
    from lmmlite.io.genotypes import PlinkSource

    src = PlinkSource(prefix)
    ids = list(src.samples)
    K = pd.DataFrame(np.load(prefix + ".kin.npy"), index=ids, columns=ids)
    P = src.fam_phenotypes()
    client = None
    if how == "dask":
        from lmmlite.distributed import local_client

        client = local_client(2)
    t0 = time.perf_counter()
    res = lmmlite.scan(src, P, kinship=K, chunk_size=chunk_size, client=client)
    sec = time.perf_counter() - t0
    out = {
        "seconds": sec,
        "rows": len(res),
        "max_lod": float(res["lod"].max()),
        "client_peak_mib": _mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
    }
    if client is not None:
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        out["worker_peak_mib"] = [_mib(v) for v in peaks.values()]
        client.close()
    res.to_parquet(f"{prefix}.{how}.parquet")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--snps", type=int, default=200_000)
    ap.add_argument("--chunk-size", type=int, default=2048)
    ap.add_argument("--run", choices=["local", "dask"], help=argparse.SUPPRESS)
    ap.add_argument("--prefix", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run:  # the child process
        print(json.dumps(_run(args.prefix, args.run, args.chunk_size)))
        return
    OUT.mkdir(exist_ok=True)
    prefix = str(OUT / f"plink_{args.samples}x{args.snps}")
    if not Path(prefix + ".bed").exists():
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                str(HERE / "make_plink.py"),
                prefix,
                f"--samples={args.samples}",
                f"--snps={args.snps}",
            ],
            check=True,
        )
        print(f"simulated {prefix}.bed in {time.perf_counter() - t0:.0f} s")
    if not Path(prefix + ".kin.npy").exists():
        import numpy as np

        from lmmlite.io.genotypes import PlinkSource
        from lmmlite.kinship import kinship

        t0 = time.perf_counter()
        K = kinship(PlinkSource(prefix))
        np.save(prefix + ".kin.npy", K.to_numpy())
        print(f"kinship in {time.perf_counter() - t0:.0f} s (computed once, not in the times)")
    rows = {}
    for how in ("local", "dask"):
        cmd = [sys.executable, __file__, "--run", how, "--prefix", prefix]
        cmd.append(f"--chunk-size={args.chunk_size}")
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        rows[how] = json.loads(done.stdout.strip().splitlines()[-1])
    import pandas as pd

    a = pd.read_parquet(f"{prefix}.local.parquet")
    b = pd.read_parquet(f"{prefix}.dask.parquet")
    same = a.equals(b)
    loc, dsk = rows["local"], rows["dask"]
    print(
        f"\nPLINK scan: {args.samples} samples x {args.snps} SNPs, 1 trait, fixed hsq, "
        f"keep=all, chunk {args.chunk_size}"
    )
    print(f"{'run':36s} {'seconds':>8s} {'peak MiB per process':>32s}")
    print(f"{'in-process, 2 threads':36s} {loc['seconds']:8.1f} {loc['client_peak_mib']:32.0f}")
    workers = " + ".join(f"{v:.0f}" for v in dsk["worker_peak_mib"])
    mem = f"client {dsk['client_peak_mib']:.0f}, workers {workers}"
    print(f"{'LocalCluster, 2 workers x 1 thread':36s} {dsk['seconds']:8.1f} {mem:>32s}")
    print(f"LocalCluster / in-process time: {dsk['seconds'] / loc['seconds']:.2f}")
    print(f"tables identical: {same}; rows {loc['rows']}; max LOD {loc['max_lod']:.2f}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
