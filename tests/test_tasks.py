"""Running tasks in-process: BLAS single-threaded until every task has finished, even on an
interrupt; output folders that lose a task file are not published; the best-row reductions."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import lmmlite
from lmmlite._dataset import ScanDataset
from lmmlite.exceptions import InputError, LmmliteError
from lmmlite.executors import Call, Group, LocalExecutor, Stage
from lmmlite.io.genotypes import ArraySource

_BLAS = [i for i in threadpool_info() if i["user_api"] == "blas"]


def _blas_threads() -> int:
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


class _Bar:
    def update(self, work):
        pass


@pytest.mark.skipif(not _BLAS, reason="no BLAS that threadpoolctl controls")
def test_local_executor__interrupted_run_finishes_its_tasks_single_threaded():
    """Tasks still running when the caller is interrupted are waited for (they may write
    task files that a resumed run trusts) before BLAS gets its threads back."""
    seen: list[int] = []
    started = threading.Event()

    def task(i):
        started.set()
        time.sleep(0.2)
        seen.append(_blas_threads())
        return i

    def calls():
        yield Call("a", 1, task, (0,))
        yield Call("b", 1, task, (1,))
        started.wait(5)
        raise KeyboardInterrupt  # the caller is interrupted while tasks run

    def groups(_):
        yield Group((), calls())

    with threadpool_limits(limits=2, user_api="blas"):
        with pytest.raises(KeyboardInterrupt):
            LocalExecutor(2).run([Stage(lambda: None, groups)], lambda r: None, _Bar())
        assert _blas_threads() == 2  # the limit is lifted afterwards
    assert seen and set(seen) == {1}


def _simulate(n=60, m=90, t=4, seed=2):
    rng = np.random.default_rng(seed)
    G = rng.binomial(2, 0.4, (n, m)).astype(float)
    G[:, 30:60] = 1.0  # chromosome 2: every marker monomorphic (untestable)
    ids = [f"s{i}" for i in range(n)]
    markers = pd.DataFrame(
        {
            "marker": [f"m{j}" for j in range(m)],
            "chr": np.repeat(["1", "2", "3"], 30),
            "pos": np.arange(m),
        }
    )
    Y = G[:, [3, 70]] @ rng.normal(0, 0.8, (2, t)) + rng.normal(size=(n, t))
    return ArraySource(G, ids, markers), pd.DataFrame(Y, index=ids)


def test_keep__a_chromosome_without_testable_markers_has_no_best_row():
    src, P = _simulate()
    full = lmmlite.scan(src, P, chunk_size=20)
    assert full.loc[full["chr"] == "2", "lod"].isna().all()
    want = full.dropna(subset=["lod"]).sort_values(["trait", "chr"], kind="stable")
    want = want.loc[want.groupby(["trait", "chr"], sort=False)["lod"].idxmax()]
    peaks = lmmlite.scan(src, P, chunk_size=20, keep="peaks", threshold=-np.inf)
    assert set(peaks["chr"]) == {"1", "3"}
    pd.testing.assert_series_equal(
        peaks.set_index(["trait", "chr"])["marker"].sort_index(),
        want.set_index(["trait", "chr"])["marker"].sort_index(),
    )


@pytest.mark.parametrize(
    ("keep", "trait_batch", "loco", "spans"),
    [
        ("max", 2, False, True),  # several batches: chunks run across chromosomes
        ("max", 4, False, False),  # one batch: per-chromosome chunks keep the threads busy
        ("peaks", 2, False, False),  # best rows per chromosome
        ("all", 2, False, False),
        ("max", 2, True, False),  # LOCO: each chromosome has its own kinship
    ],
)
def test_plan__keep_max_chunks_span_chromosomes_sharing_a_null_model(
    keep, trait_batch, loco, spans
):
    import importlib

    from lmmlite.options import ScanOptions
    from lmmlite.planner import ScanPlan

    src, P = _simulate()
    opts = ScanOptions(keep=keep, trait_batch=trait_batch, chunk_size=40)
    inputs = {"pheno": P, "covar": None, "xcovar": None, "kinship": None}
    _, aligned, kin, xc = importlib.import_module("lmmlite.scan").prepare_scan(
        src, inputs, loco, opts
    )
    plan = ScanPlan(src, aligned, kin, opts, xc)
    within = [(0, 30), (30, 60), (60, 90)]
    assert plan.runs == ([(0, 40), (40, 80), (80, 90)] if spans else within)
    assert len(plan.tasks) == len(plan.runs) * -(-P.shape[1] // trait_batch)


def test_keep__reduced_again_and_again_equals_reduced_once(monkeypatch):
    """The running reduction of keep=max|peaks, forced after every task, gives the same
    table as one reduction at the end."""
    import importlib

    scan_module = importlib.import_module("lmmlite.scan")
    src, P = _simulate()
    kw = {"chunk_size": 7, "trait_batch": 3, "threshold": 0.5}
    once = {keep: lmmlite.scan(src, P, keep=keep, **kw) for keep in ("max", "peaks")}
    monkeypatch.setattr(scan_module, "_REDUCE_ROWS", 1)
    for keep, want in once.items():
        pd.testing.assert_frame_equal(lmmlite.scan(src, P, keep=keep, **kw), want)


def test_dataset__a_lost_task_file_is_not_published(tmp_path):
    """A task whose file is missing at the end (e.g. written by a worker elsewhere) fails
    the run instead of publishing an incomplete dataset; --resume computes it."""
    src, P = _simulate()
    kw = {"chunk_size": 20, "trait_batch": 2}
    out = tmp_path / "lost.parquet"
    removed = []

    def lose_one(done, total):
        files = sorted((out / "_tasks").glob("*.parquet"))
        if files and not removed:
            files[0].unlink()
            removed.append(files[0].stem)

    with pytest.raises(LmmliteError, match=r"1 of 12 task results are missing .*\(b\d{5}-c\d{6}\)"):
        lmmlite.scan(src, P, out=out, progress=lose_one, threads=1, **kw)
    assert removed and not (out / "data").exists()
    assert lmmlite.scan(src, P, out=out, resume=True, **kw) is None
    key = ["trait", "marker"]
    got = pd.read_parquet(out).set_index(key).sort_index()
    want = lmmlite.scan(src, P, **kw).set_index(key).sort_index()
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)


def test_dataset__relative_folder_is_made_absolute(tmp_path, monkeypatch):
    """Dask workers may run in another working folder: task paths are absolute."""
    monkeypatch.chdir(tmp_path)
    ds = ScanDataset("rel.parquet", {"inputs": {}}, resume=False)
    assert ds.task_path("b00000-c000000").is_absolute()
    assert ds.task_path("b00000-c000000").parent == tmp_path / "rel.parquet" / "_tasks"


def test_threads_with_a_client_is_refused():
    src, P = _simulate()
    with pytest.raises(InputError, match="threads=2 is for in-process runs"):
        lmmlite.scan(src, P, threads=2, client=object())
    K = pd.DataFrame(np.eye(len(P)), index=P.index, columns=P.index)
    with pytest.raises(InputError, match="threads=1 is for in-process runs"):
        lmmlite.heritability(K, P, threads=1, client=object())
