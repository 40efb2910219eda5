"""Scale-out: Dask execution, keep=peaks|max, resumable Parquet datasets, interruptions.

A real ``dask.distributed.LocalCluster`` with 2 worker processes on loopback runs the tasks;
results must be the same numbers, bit for bit, as the in-process run's: the same task split,
the rotations and null fits computed once by the caller in both, and every task run
single-threaded (BLAS and numba) in both, in-process in a thread pool and on the workers.
(Other chunkings are other computations: they agree to rounding, see test_chunkings__agree.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmmlite
from lmmlite.exceptions import InputError
from lmmlite.io.genotypes import ArraySource, PlinkSource

distributed = pytest.importorskip("distributed")
# Dask's own sockets and clusters shut down at their pace: not lmmlite's warnings to fail on
pytestmark = [
    pytest.mark.slow,  # clusters, subprocesses, kills: run by CI, not by `pytest -m "not slow"`
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]
#: in-process and on the workers: the same numbers (see the module's docstring)
SAME = {"check_exact": True}
bed_reader = pytest.importorskip("bed_reader")


def _simulate(n=120, m=600, t=12, seed=0):
    rng = np.random.default_rng(seed)
    G = rng.binomial(2, rng.uniform(0.1, 0.5, m), (n, m)).astype(float)
    G[:, 10] = G[:, 11]  # duplicated marker: ties in LOD
    G[:, 20] = 1.0  # monomorphic
    G[rng.random((n, m)) < 0.01] = np.nan
    ids = [f"s{i}" for i in range(n)]
    chrom = np.repeat(["1", "2", "3"], [m // 2, m // 3, m - m // 2 - m // 3])
    markers = pd.DataFrame(
        {"marker": [f"m{j}" for j in range(m)], "chr": chrom, "pos": np.arange(m)}
    )
    Gf = np.where(np.isnan(G), np.nanmean(G, axis=0), G)
    Y = Gf[:, [5, 300, 450]] @ rng.normal(0, 0.6, (3, t)) + rng.normal(size=(n, t))
    P = pd.DataFrame(Y, index=ids, columns=[f"t{j}" for j in range(t)])
    P.iloc[:7, 2] = np.nan  # a second missing-data pattern
    return G, ids, markers, P


@pytest.fixture(scope="module")
def data():
    return _simulate()


def _local_cluster():
    """2 single-threaded worker processes on loopback."""
    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        host="127.0.0.1",
    )


@pytest.fixture(scope="module")
def client():
    cluster = _local_cluster()
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.mark.parametrize(
    ("chunk_size", "trait_batch", "mode"),
    [(64, 5, "fixed"), (37, 12, "fixed"), (600, 3, "fixed"), (97, 5, "exact")],
)
def test_dask__equals_in_process(data, client, chunk_size, trait_batch, mode):
    G, ids, markers, P = data
    src = ArraySource(G, ids, markers)
    kw = {"chunk_size": chunk_size, "trait_batch": trait_batch, "mode": mode, "tol": 1e-10}
    local = lmmlite.scan(src, P, **kw)
    remote = lmmlite.scan(src, P, client=client, **kw)
    assert len(local) == P.shape[1] * G.shape[1]
    pd.testing.assert_frame_equal(local, remote, **SAME)


@pytest.mark.parametrize("mode", ["fixed", "exact"])
def test_threads__same_numbers(data, mode):
    G, ids, markers, P = data
    src = ArraySource(G, ids, markers)
    kw = {"chunk_size": 50, "trait_batch": 5, "mode": mode}
    one = lmmlite.scan(src, P, threads=1, **kw)
    pd.testing.assert_frame_equal(one, lmmlite.scan(src, P, threads=2, **kw), **SAME)
    pd.testing.assert_frame_equal(one, lmmlite.scan(src, P, threads=3, **kw), **SAME)


@pytest.fixture(scope="module")
def many_traits():
    from lmmlite.datasets import simulate

    return simulate(
        n_samples=150, n_traits=40, hsq=0.4, missing_rate=0.05, n_missing_patterns=8, seed=11
    )


@pytest.mark.filterwarnings("ignore::lmmlite.exceptions.BoundaryWarning")
def test_heritability__dask_equals_in_process(many_traits, client):
    """Very many traits: batches of traits as tasks, on the cluster as in-process."""
    sim = many_traits
    patterns = sim.pheno.notna().T.drop_duplicates().shape[0]
    assert patterns > 5  # several patterns, several batches each
    kw = {"trait_batch": 3, "tol": 1e-8}
    local = lmmlite.heritability(sim.kinship, sim.pheno, sim.covar, **kw)
    seen = []
    remote = lmmlite.heritability(
        sim.kinship,
        sim.pheno,
        sim.covar,
        client=client,
        progress=lambda done, total: seen.append((done, total)),
        **kw,
    )
    pd.testing.assert_frame_equal(local, remote, **SAME)
    assert list(local.index) == list(sim.pheno.columns)
    assert seen[-1][0] == seen[-1][1] >= patterns
    # another batching is another computation (other shapes of Y'U round differently): as
    # for the scan's chunkings, a flat likelihood turns that rounding into up to ~1e-6 in hsq
    # (Brent's evaluation counts follow that rounding: n_eval is left out, as pandas >= 3
    # compares integer columns exactly whatever check_exact says)
    whole = lmmlite.heritability(sim.kinship, sim.pheno, sim.covar, tol=1e-8, trait_batch=1000)
    pd.testing.assert_frame_equal(
        local.drop(columns="n_eval"), whole.drop(columns="n_eval"),
        check_exact=False, rtol=1e-5, atol=1e-7,
    )  # fmt: skip


@pytest.mark.filterwarnings("ignore::lmmlite.exceptions.BoundaryWarning")
def test_heritability__threads_same_numbers(many_traits):
    sim = many_traits
    one = lmmlite.heritability(sim.kinship, sim.pheno, sim.covar, trait_batch=4, threads=1)
    two = lmmlite.heritability(sim.kinship, sim.pheno, sim.covar, trait_batch=4, threads=2)
    pd.testing.assert_frame_equal(one, two, **SAME)


def test_in_process__one_trait_batch_at_a_time(data):
    """Memory does not grow with the number of traits: the null fits of at most two trait
    batches (the one being tested and the next) are alive at any time."""
    import gc

    from lmmlite.planner import BatchWork

    G, ids, markers, P = data
    src = ArraySource(G, ids, markers)
    alive = []

    def count(done=0, total=0):
        alive.append(sum(isinstance(o, BatchWork) for o in gc.get_objects()))

    gc.collect()
    count()  # left by earlier tests (the Dask client's caches)
    before = alive.pop()

    out = lmmlite.scan(src, P, chunk_size=50, trait_batch=1, threads=2, progress=count)
    assert len(out) == P.shape[1] * G.shape[1]
    assert len(alive) == 12 * 12  # 12 batches of one trait x 12 chunks
    assert max(alive) - before <= 2


def test_chunkings__agree(data):
    G, ids, markers, P = data
    src = ArraySource(G, ids, markers)
    a = lmmlite.scan(src, P, chunk_size=64, trait_batch=5)
    b = lmmlite.scan(src, P, chunk_size=600, trait_batch=12)
    # other shapes of U'Y and U'G round differently; where a trait's likelihood is flat that
    # moves its null hsq by up to ~1e-6 (the square root of the rounding in the log
    # likelihood over its curvature: the conditioning of any minimiser)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-5, atol=1e-7)


def test_dask__plink_read_by_workers(tmp_path, data, client):
    G, ids, markers, P = data
    prefix = _write_plink(tmp_path, G, ids, markers)
    src = PlinkSource(prefix)
    local = lmmlite.scan(src, P, chunk_size=50, trait_batch=4, keep="peaks", threshold=2.0)
    remote = lmmlite.scan(
        src, P, chunk_size=50, trait_batch=4, keep="peaks", threshold=2.0, client=client
    )
    assert len(local) > 0
    pd.testing.assert_frame_equal(local, remote, **SAME)


def test_dask__worker_killed_mid_run(data):
    """One worker SIGKILLed after the first task: Dask reruns its tasks, results unchanged."""
    G, ids, markers, P = data
    src = ArraySource(G, ids, markers)
    kw = {"chunk_size": 20, "trait_batch": 4, "mode": "exact", "tol": 1e-10}
    local = lmmlite.scan(src, P, **kw)
    cluster = _local_cluster()
    with distributed.Client(cluster) as c:
        pids = c.run(os.getpid)
        killed = []

        def kill_one(done, total):
            if not killed:
                pid = next(iter(pids.values()))
                os.kill(pid, signal.SIGKILL)
                killed.append((pid, done, total))

        remote = lmmlite.scan(src, P, client=c, progress=kill_one, **kw)
        after = set(c.run(os.getpid).values())
    cluster.close()
    pid, done, total = killed[0]
    assert done < total  # the kill happened with tasks still to run
    assert pid not in after  # that worker process is gone (the nanny started a new one)
    pd.testing.assert_frame_equal(local, remote, **SAME)


def _best_from_full(full: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    rows = []
    for _, grp in full.dropna(subset=["lod"]).groupby(by, sort=False):
        rows.append(grp.loc[grp["lod"].idxmax()])
    return pd.DataFrame(rows)


@pytest.mark.parametrize("mode", ["fixed", "exact"])
@pytest.mark.parametrize("threshold", [0.0, 1.5, 3.0])
def test_keep_peaks_and_max__equal_the_full_table(data, mode, threshold):
    G, ids, markers, P = data
    src = ArraySource(G, ids, markers)
    kw = {"chunk_size": 45, "trait_batch": 5, "mode": mode}
    full = lmmlite.scan(src, P, **kw)
    for keep, by in (("max", ["trait"]), ("peaks", ["trait", "chr"])):
        got = lmmlite.scan(src, P, keep=keep, threshold=threshold, **kw)
        want = _best_from_full(full, by)
        if keep == "peaks":
            want = want[want["lod"] >= threshold]
        assert len(got) == len(want) > 0
        got = got.set_index(by).sort_index()
        want = want.set_index(by).sort_index()
        # the same maximum LOD (to rounding: keep=max never forms the full table) ...
        np.testing.assert_allclose(got["lod"], want["lod"], rtol=1e-10, atol=1e-12)
        for col in ("beta", "se", "p_wald", "p_lrt", "hsq"):
            np.testing.assert_allclose(got[col], want[col], rtol=1e-8, atol=1e-12)
        # ... at the same marker, or at one whose LOD ties with it (duplicated markers)
        for key, row in got.iterrows():
            if row["marker"] != want.loc[key, "marker"]:
                tr = key if isinstance(key, str) else key[0]
                tied = full[(full["trait"] == tr) & (full["marker"] == row["marker"])]
                assert abs(tied["lod"].iloc[0] - want.loc[key, "lod"]) < 1e-10


def test_dataset__equals_in_memory_and_is_one_table(tmp_path, data, client):
    G, ids, markers, P = data
    src = ArraySource(G, ids, markers)
    kw = {"chunk_size": 64, "trait_batch": 5}
    mem = lmmlite.scan(src, P, **kw)
    for i, c in enumerate([None, client]):
        out = tmp_path / f"run{i}.parquet"
        assert lmmlite.scan(src, P, out=out, client=c, **kw) is None
        disk = pd.read_parquet(out)
        key = ["trait", "marker"]
        disk = disk.set_index(key).loc[mem.set_index(key).index].reset_index()
        pd.testing.assert_frame_equal(disk[mem.columns], mem, check_dtype=False, **SAME)
        assert not (out / "_tasks").exists()  # published: the task folder became data/
        best = lmmlite.scan(src, P, out=tmp_path / f"max{i}.parquet", keep="max", client=c, **kw)
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / f"max{i}.parquet"), best, check_dtype=False
        )


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("keep", ["peaks", "max"])
def test_dataset__reduced_run_interrupted_then_resumed(tmp_path, data, keep, threads):
    """keep=peaks|max: the task files hold each task's best rows; a resumed run reduces the
    old ones with the new ones into the uninterrupted run's table (with 2 threads, the
    tasks running at the interrupt finish, single-threaded as ever, and are kept)."""
    G, ids, markers, P = data
    src = ArraySource(G, ids, markers)
    kw = {"keep": keep, "threshold": 1.0, "chunk_size": 40, "trait_batch": 5}
    want = lmmlite.scan(src, P, **kw)

    class Stop(Exception):
        pass

    def stop_after_7(done, total):
        if done >= 7:
            raise Stop

    out = tmp_path / "cut.parquet"
    with pytest.raises(Stop):
        lmmlite.scan(src, P, out=out, progress=stop_after_7, threads=threads, **kw)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "_tasks").glob("*.parquet")}
    # batches: 5 + 5 + 1 traits, 1 (own pattern); chunks of 40 markers: 8 + 5 + 3 within the
    # 3 chromosomes for peaks, 15 across them for max (its chunks span chromosomes)
    n_tasks = 4 * (16 if keep == "peaks" else 15)
    assert 7 <= len(before) < n_tasks and not (out / "data").exists()
    got = lmmlite.scan(src, P, out=out, resume=True, **kw)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "_tasks").glob("*.parquet")}
    assert len(after) == n_tasks and all(after[k] == v for k, v in before.items())
    pd.testing.assert_frame_equal(got, want, **SAME)
    pd.testing.assert_frame_equal(pd.read_parquet(out), want, check_dtype=False, **SAME)


def test_dataset__exists_and_resume_refused_on_changes(tmp_path, data):
    G, ids, markers, P = data
    src = ArraySource(G, ids, markers)
    out = tmp_path / "r.parquet"
    lmmlite.scan(src, P, out=out, keep="max", chunk_size=100)
    with pytest.raises(InputError, match="holds a scan already"):
        lmmlite.scan(src, P, out=out, keep="max", chunk_size=100)
    with pytest.raises(InputError, match=r"other inputs or options: options\.mode"):
        lmmlite.scan(src, P, out=out, keep="max", chunk_size=100, mode="exact", resume=True)
    P2 = P.copy()
    P2.iloc[0, 0] += 1.0
    with pytest.raises(InputError, match=r"inputs\.phenotypes"):
        lmmlite.scan(src, P2, out=out, keep="max", chunk_size=100, resume=True)
    G2 = G.copy()
    G2[0, 0] = 2.0 - np.nan_to_num(G2[0, 0])
    with pytest.raises(InputError, match=r"inputs\.genotypes"):
        lmmlite.scan(
            ArraySource(G2, ids, markers), P, out=out, keep="max", chunk_size=100, resume=True
        )
    # resuming a complete run recomputes nothing and gives the same table
    again = lmmlite.scan(src, P, out=out, keep="max", chunk_size=100, resume=True)
    pd.testing.assert_frame_equal(pd.read_parquet(out), again, check_dtype=False)


def _write_plink(folder: Path, G, ids, markers) -> str:
    prefix = str(folder / "geno")
    bed_reader.to_bed(
        prefix + ".bed",
        np.where(np.isnan(G), np.nan, G).astype(np.float32),
        properties={
            "iid": ids,
            "fid": ids,
            "sid": markers["marker"].to_numpy(),
            "chromosome": markers["chr"].to_numpy(),
            "bp_position": markers["pos"].to_numpy(),
        },
        count_A1=True,
    )
    return prefix


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "lmmlite", "scan", *args]


def _cli_inputs(folder: Path, sim) -> list[str]:
    """A simulation written as a PLINK fileset and a phenotype CSV: the CLI's input options."""
    G, ids, markers, P = sim
    P.to_csv(folder / "pheno.csv", index_label="id")
    return ["--bfile", _write_plink(folder, G, ids, markers), "--pheno", str(folder / "pheno.csv")]


@pytest.fixture(scope="module")
def cut_inputs(tmp_path_factory):
    """CLI inputs of the interrupted runs, and the dataset of an uninterrupted run."""
    folder = tmp_path_factory.mktemp("cut")
    common = [
        *_cli_inputs(folder, _simulate(n=200, m=3000, t=4, seed=3)),
        "--mode",
        "exact",
        "--chunk-size",
        "15",
        "--trait-batch",
        "2",
        "--no-progress",
    ]
    whole = folder / "whole.parquet"
    subprocess.run(_cli(*common, "--out", str(whole)), check=True, capture_output=True)
    return common, whole


@pytest.mark.parametrize("where", ["in-process", "dask"])
def test_cli__client_killed_then_resumed(tmp_path, cut_inputs, where):
    """SIGKILL the CLI mid-run (with --dask local: its whole process group, the client with
    its scheduler and workers); --resume computes only the missing tasks (files already
    written are left untouched) and the final table equals an uninterrupted run's."""
    common, whole = cut_inputs
    n_tasks = len(list((whole / "data").glob("*.parquet")))
    assert n_tasks == 3 * 201  # 3 trait batches (2 missing-data patterns) x 201 chunks
    run_on = ["--dask", "local", "--workers", "2"] if where == "dask" else []

    out = tmp_path / "cut.parquet"
    proc = subprocess.Popen(
        _cli(*common, *run_on, "--out", str(out)), stderr=subprocess.PIPE, start_new_session=True
    )
    tasks = out / "_tasks"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # 20 tasks written with their checksum records
        if len(list((out / "_checksums").glob("*.json"))) >= 20:
            break
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # SIGKILL'd processes write nothing more
    # a task file counts as written once its checksum record is (a kill between the two
    # leaves a file that a resumed run cannot trust, and computes again)
    recorded = {p.stem for p in (out / "_checksums").glob("*.json")}
    before = {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in tasks.glob("*.parquet")
        if p.stem in recorded
    }
    assert 19 <= len(before) < n_tasks, "the run must be cut before its end"
    try:  # an unfinished dataset has no data files: an error or an empty table, never a part
        assert len(pd.read_parquet(out)) == 0
    except (OSError, ValueError):
        pass

    changed = subprocess.run(
        _cli(
            *common[:-5],
            "--chunk-size",
            "30",
            "--trait-batch",
            "2",
            "--no-progress",
            "--out",
            str(out),
            "--resume",
        ),
        capture_output=True,
        text=True,
    )
    assert changed.returncode == 2
    assert "cannot resume" in changed.stderr and "chunk_size (15 there, 30 now)" in changed.stderr

    resume = _cli(*common, *run_on, "--out", str(out), "--resume")
    subprocess.run(resume, check=True, capture_output=True)
    parts = {p.name: p.stat() for p in (out / "data").glob("*.parquet")}
    assert len(parts) == n_tasks
    for name, (ino, mtime) in before.items():  # not recomputed: the same file, untouched
        assert (parts[name].st_ino, parts[name].st_mtime_ns) == (ino, mtime)
    key = ["trait", "marker"]
    a = pd.read_parquet(out).sort_values(key).reset_index(drop=True)
    b = pd.read_parquet(whole).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, **SAME)  # the in-process run's numbers, bit for bit


def test_cli__dask_local_keep_max(tmp_path):
    common = [
        *_cli_inputs(tmp_path, _simulate(n=80, m=600, t=6, seed=4)),
        "--keep",
        "max",
        "--chunk-size",
        "70",
        "--trait-batch",
        "4",
        "--no-progress",
    ]
    subprocess.run(_cli(*common, "--out", str(tmp_path / "a.tsv")), check=True)
    res = subprocess.run(
        _cli(*common, "--out", str(tmp_path / "b.tsv"), "--dask", "local", "--workers", "2"),
        check=True,
        capture_output=True,
        text=True,
    )
    assert "keep max" in res.stdout
    a = pd.read_csv(tmp_path / "a.tsv", sep="\t")
    b = pd.read_csv(tmp_path / "b.tsv", sep="\t")
    assert len(a) == 6
    pd.testing.assert_frame_equal(a, b, **SAME)
    bad = subprocess.run(
        _cli(*common, "--out", str(tmp_path / "c.tsv"), "--resume"),
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--resume needs --out NAME.parquet" in bad.stderr


def test_cli__herit_dask_local(tmp_path, many_traits):
    sim = many_traits
    sim.kinship.to_csv(tmp_path / "K.csv", index_label="id")
    sim.pheno.to_csv(tmp_path / "P.csv", index_label="id")
    sim.covar.to_csv(tmp_path / "C.csv", index_label="id")
    common = [sys.executable, "-m", "lmmlite", "herit", "--no-progress", "--trait-batch", "4"]
    common += ["--kinship", str(tmp_path / "K.csv"), "--pheno", str(tmp_path / "P.csv")]
    common += ["--covar", str(tmp_path / "C.csv")]
    subprocess.run([*common, "--out", str(tmp_path / "a.csv")], check=True, capture_output=True)
    dask = [*common, "--dask", "local", "--workers", "2", "--out", str(tmp_path / "b.csv")]
    subprocess.run(dask, check=True, capture_output=True)
    a = pd.read_csv(tmp_path / "a.csv", index_col=0)
    b = pd.read_csv(tmp_path / "b.csv", index_col=0)
    assert len(a) == sim.pheno.shape[1]
    pd.testing.assert_frame_equal(a, b, **SAME)
    refused = subprocess.run([*common, "--threads", "2", "--dask", "local"], capture_output=True)
    assert refused.returncode != 0 and b"--threads is for in-process runs" in refused.stderr
    assert b"Traceback" not in refused.stderr
    none = subprocess.run([*common, "--dask", "local", "--workers", "0"], capture_output=True)
    assert none.returncode == 2 and b"--workers: must be at least 1; got 0" in none.stderr
    assert b"Traceback" not in none.stderr
