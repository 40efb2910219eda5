"""Genome scans on a ``dask.distributed`` cluster (``pip install 'lmmlite[dask]'``).

The client computes each eigendecomposition and null fit once and ships them to the cluster
as data-holding tasks (unlike ``client.scatter``'d data, Dask can rebuild them if the worker
holding them dies); every task (trait batch x marker chunk) runs on a worker, which reads its
genotype chunk from the input file itself and, with an output folder, writes its own result
file (atomically). A worker lost mid-run has its tasks rescheduled by Dask. Tasks run
single-threaded (BLAS and numba), as in-process: the parallelism is across tasks, and a task
computes the same numbers wherever it runs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["local_client", "run_scan_tasks"]


def _require_dask() -> Any:
    try:
        import distributed
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("distributed runs need Dask: pip install 'lmmlite[dask]'") from None
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


_BLAS_LIMITED = False


def _blas_single_threaded() -> None:
    """Limit this worker process's BLAS to one thread, once (the parallelism is across
    tasks, and a task then computes the same numbers as in-process)."""
    global _BLAS_LIMITED
    if not _BLAS_LIMITED:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
        _BLAS_LIMITED = True


def _identity(x: Any) -> Any:
    return x


def _scan_task(source, work, task, opts, task_path):
    """Run on a worker: read the chunk, test it, write the task file; small results back."""
    from .scan import _task_output

    _blas_single_threaded()
    block = source.read(task.start, task.stop)
    meta = source.markers.iloc[task.start : task.stop]
    return _task_output(work, block, meta, task.start, opts, task_path)


def run_scan_tasks(client, genotypes, todo, chunk_key, works, opts, dataset, collect, bar):
    """Submit the scan's tasks, one kinship key and trait batch at a time (a batch's null
    fits handed over once, as soon as they are computed), and collect results as they
    finish."""
    distributed = _require_dask()
    from .scan import _key_order

    # shared inputs are handed over as tasks rather than with client.scatter: the scheduler
    # keeps their specification, so data lost with a worker is rebuilt, not fatal
    source = client.submit(_identity, genotypes, pure=False)
    pending = distributed.as_completed()
    info = {}
    for key, key_tasks in _key_order(todo, chunk_key).items():
        by_batch: dict[int, list] = {}
        for task in key_tasks:
            by_batch.setdefault(task.batch, []).append(task)
        for b, work in works(key, set(by_batch)):
            shared = client.submit(_identity, work, pure=False)
            for task in by_batch[b]:
                path = None if dataset is None else dataset.task_path(task.name)
                fut = client.submit(
                    _scan_task,
                    source,
                    shared,
                    task,
                    opts,
                    path,
                    key=f"lmmlite-scan-{task.name}-{id(todo):x}",
                    pure=False,
                )
                info[fut.key] = len(work.traits) * (task.stop - task.start)
                pending.add(fut)
            del work, shared
            _drain(pending, collect, bar, info, block=False)
    _drain(pending, collect, bar, info, block=True)


def _drain(pending, collect, bar, info, *, block: bool) -> None:
    while True:
        if not block and not pending.has_ready():
            return
        try:
            fut = next(pending)
        except StopIteration:
            return
        collect.add(fut.result())
        bar.update(info.pop(fut.key))
        fut.release()
