"""Scans and heritability on a ``dask.distributed`` cluster (``pip install 'lmmlite[dask]'``).

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

from ._tasks import one_blas_thread, run_token, serially
from .exceptions import InputError

__all__ = ["local_client", "run_groups", "run_scan_tasks"]


def _require_dask() -> Any:
    try:
        import distributed
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("distributed runs need Dask: pip install 'lmmlite[dask]'") from None
    return distributed


def local_client(workers: int | None = None) -> Any:
    """A client of a new ``LocalCluster`` with ``workers`` single-threaded worker processes."""
    if workers is not None and workers < 1:
        raise InputError(f"a local Dask cluster needs at least one worker; got {workers}")
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
        one_blas_thread()  # not used as a context manager: for the process's life
        _BLAS_LIMITED = True


def _identity(x: Any) -> Any:
    return x


def _on_worker(func, *args):
    """Run a task on a worker single-threaded (see :mod:`lmmlite._tasks`)."""
    _blas_single_threaded()
    return serially(func, *args)


def run_groups(client, groups, collect, bar) -> None:
    """Run groups of tasks on the cluster and collect their results as they finish.

    ``groups`` yields ``(shared, calls)``: an object the group's tasks share (handed over
    once, when the group is submitted) and its tasks ``(key, work, func, args)``, each run as
    ``func(shared, *args)`` on a worker; ``collect(result)`` and ``bar.update(work)`` follow
    in this thread. Futures in ``args`` are passed as their values. A new group is submitted
    only while fewer than two groups are unfinished or fewer than two tasks per worker thread
    are pending, so the workers hold a bounded number of shared objects however many groups
    there are (and the client computes the next group while they work).
    """
    distributed = _require_dask()
    pending = distributed.as_completed()
    info: dict[str, tuple[int, int]] = {}  # task key -> (work, group)
    left: dict[int, int] = {}  # group -> its unfinished tasks
    slots = 2 * max(1, sum(client.nthreads().values()))

    def finish_one() -> None:
        fut = next(pending)
        collect(fut.result())
        work, g = info.pop(fut.key)
        bar.update(work)
        left[g] -= 1
        if not left[g]:
            del left[g]
        fut.release()

    try:
        for g, (shared_obj, calls) in enumerate(groups):
            # handed over as a task rather than with client.scatter: the scheduler keeps its
            # specification, so data lost with a worker is rebuilt, not fatal
            shared = client.submit(_identity, shared_obj, pure=False)
            for key, work, func, args in calls:
                fut = client.submit(_on_worker, func, shared, *args, key=key, pure=False)
                info[fut.key] = (work, g)
                pending.add(fut)
            left[g] = len(calls)
            if not left[g]:
                del left[g]
            del shared_obj, shared
            while pending.has_ready() or (len(left) >= 2 and pending.count() >= slots):
                finish_one()
        while not pending.is_empty():
            finish_one()
    except BaseException:  # an error, or an interrupt: nothing left running for nothing
        client.cancel(list(pending.futures))
        raise


def _scan_task(work, U, source, task, opts, task_path):
    """A scan task on a worker: read the chunk, test it, write the task file (``U``: the
    batch's rotation, handed over once for all batches that share it)."""
    from .scan import _task_output

    work = work._replace(U=U)
    block = source.read(task.start, task.stop)
    meta = source.markers.iloc[task.start : task.stop]
    return _task_output(work, block, meta, task.start, opts, task_path)


def run_scan_tasks(client, genotypes, todo, chunk_key, works, opts, dataset, collect, bar):
    """The scan's tasks, one kinship key and trait batch at a time (a batch's null fits
    handed over once, as soon as they are computed); workers read their chunks themselves."""
    from .scan import _key_order

    source = client.submit(_identity, genotypes, pure=False)
    run = run_token()

    def groups():
        rotation = U = None
        for key, key_tasks in _key_order(todo, chunk_key).items():
            by_batch: dict[int, list] = {}
            for task in key_tasks:
                by_batch.setdefault(task.batch, []).append(task)
            for b, work in works(key, set(by_batch)):
                if work.U is not rotation:  # a new eigendecomposition: handed over once
                    rotation = work.U
                    U = client.submit(_identity, rotation, pure=False)
                work = work._replace(U=None)
                calls = []
                for task in by_batch[b]:
                    path = None if dataset is None else dataset.task_path(task.name)
                    tests = len(work.traits) * (task.stop - task.start)
                    args = (U, source, task, opts, path)
                    calls.append((f"lmmlite-scan-{task.name}-{run}", tests, _scan_task, args))
                yield work, calls

    run_groups(client, groups(), collect.add, bar)
