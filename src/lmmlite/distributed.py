"""Genome scans on a ``dask.distributed`` cluster (``pip install 'lmmlite[dask]'``).

The client computes each eigendecomposition and null fit once and ships them to the cluster
as data-holding tasks (unlike ``client.scatter``'d data, Dask can rebuild them if the worker
holding them dies); every task (trait batch x marker chunk) runs on a worker, which reads its
genotype chunk from the input file itself and, with an output folder, writes its own result
file (atomically). A worker lost mid-run has its tasks rescheduled by Dask. Workers run
single-threaded kernels: the parallelism is across tasks.
"""

from __future__ import annotations

from typing import Any

__all__ = ["local_client", "run_scan_tasks"]


def _require_dask() -> Any:
    try:
        import distributed
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "distributed runs need Dask: pip install 'lmmlite[dask]'"
        ) from None
    return distributed


def local_client(workers: int | None = None) -> Any:
    """A client of a new ``LocalCluster`` with ``workers`` single-threaded worker processes."""
    distributed = _require_dask()
    cluster = distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
    )
    return distributed.Client(cluster)


def _single_threaded() -> None:
    try:
        import numba

        numba.set_num_threads(1)
    except (ImportError, ValueError):  # pragma: no cover
        pass


def _identity(x: Any) -> Any:
    return x


def _scan_task(source, work, task, meta, opts, task_path):
    """Run on a worker: read the chunk, test it, write the task file; small results back."""
    from ._dataset import write_task
    from .scan import _on_disk, _run_task

    _single_threaded()
    block = source.read(task.start, task.stop)
    frame = _run_task(work, block, meta, **opts)
    if task_path is not None:
        write_task(task_path, _on_disk(frame, opts["keep"]))
        if opts["keep"] == "all":
            return len(frame)  # the rows stay on disk, not shipped through the client
    return frame


def run_scan_tasks(client, genotypes, todo, chunk_key, works, opts, dataset, collect, bar):
    """Submit the scan's tasks, one kinship key at a time (its rotations and null fits
    handed over once), and collect results as they finish."""
    distributed = _require_dask()
    from .scan import _key_order

    markers = genotypes.markers
    # shared inputs are handed over as tasks rather than with client.scatter: the scheduler
    # keeps their specification, so data lost with a worker is rebuilt, not fatal
    source = client.submit(_identity, genotypes, pure=False)
    pending = distributed.as_completed()
    info = {}
    for key, key_tasks in _key_order(todo, chunk_key).items():
        local = works(key, {t.batch for t in key_tasks})
        shared = {b: client.submit(_identity, w, pure=False) for b, w in local.items()}
        for task in key_tasks:
            path = None if dataset is None else dataset.task_path(task.name)
            fut = client.submit(
                _scan_task,
                source,
                shared[task.batch],
                task,
                markers.iloc[task.start : task.stop],
                opts,
                path,
                key=f"lmmlite-scan-{task.name}-{id(todo):x}",
                pure=False,
            )
            info[fut.key] = len(local[task.batch].traits) * (task.stop - task.start)
            pending.add(fut)
        del local, shared
        _drain(pending, collect, bar, info, block=False)
    _drain(pending, collect, bar, info, block=True)


def _drain(pending, collect, bar, info, *, block: bool) -> None:
    import pandas as pd

    while True:
        if not block and not pending.has_ready():
            return
        try:
            fut = next(pending)
        except StopIteration:
            return
        result = fut.result()
        if isinstance(result, pd.DataFrame):
            collect.add(result)
        bar.update(info.pop(fut.key))
        fut.release()
