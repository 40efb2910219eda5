"""The Dask executor: stages of tasks on a ``dask.distributed`` cluster
(``pip install 'lmmlite[dask]'``).

The client runs each stage's setup (an eigendecomposition) and plans its groups; each group's
shared objects are handed to the cluster once, as data-holding tasks (unlike
``client.scatter``'d data, Dask can rebuild them if the worker holding them dies), and every
task runs on a worker. A worker lost mid-run has its tasks rescheduled by Dask. Tasks run
single-threaded (BLAS and numba), as in-process: the parallelism is across tasks, and a task
computes the same numbers wherever it runs. This module knows nothing of what the tasks do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .exceptions import InputError
from .executors import (
    Executor,
    LocalExecutor,
    Stage,
    available_cores,
    one_blas_thread,
    serially,
)

__all__ = ["DaskExecutor", "executor_for", "local_client", "require_dask"]


def require_dask() -> Any:
    """The ``distributed`` module, or an ImportError saying how to install it."""
    try:
        import distributed
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("distributed runs need Dask: pip install 'lmmlite[dask]'") from None
    return distributed


def local_client(workers: int | None = None) -> Any:
    """A client of a new ``LocalCluster`` with ``workers`` single-threaded worker processes."""
    if workers is not None and workers < 1:
        raise InputError(f"a local Dask cluster needs at least one worker; got {workers}")
    distributed = require_dask()
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
        import scipy.linalg  # noqa: F401  (its BLAS, if it has its own, is limited too)

        one_blas_thread()  # not used as a context manager: for the process's life
        _BLAS_LIMITED = True


def _identity(x: Any) -> Any:
    return x


def _on_worker(func: Callable[..., Any], *args: Any) -> Any:
    """Run a task on a worker single-threaded (see :mod:`lmmlite.executors`)."""
    _blas_single_threaded()
    return serially(func, *args)


class DaskExecutor:
    """Runs stages on the cluster of ``client``, collecting results as they finish.

    A new group is submitted only while fewer than two groups are unfinished or fewer than
    two tasks per worker thread are pending, so the workers hold a bounded number of shared
    objects however many groups there are (and the client plans the next group while they
    work). A shared object is handed over once for as long as consecutive groups share it
    (the same Python object).
    """

    shares_memory = False

    def __init__(self, client: Any) -> None:
        self.client = client

    def run(self, stages: Iterable[Stage], collect: Callable[[Any], None], bar: Any) -> None:
        distributed = require_dask()
        client = self.client
        pending = distributed.as_completed()
        info: dict[str, tuple[int, int]] = {}  # task key -> (work, group)
        left: dict[int, int] = {}  # group -> its unfinished tasks
        slots = 2 * max(1, sum(client.nthreads().values()))
        handed: dict[int, tuple[Any, Any]] = {}  # id(object) -> (object, its future)

        def finish_one() -> None:
            fut = next(pending)
            collect(fut.result())
            work, g = info.pop(fut.key)
            bar.update(work)
            left[g] -= 1
            if not left[g]:
                del left[g]
            fut.release()

        def hand_over(objects: tuple[Any, ...]) -> list[Any]:
            nonlocal handed
            now = {}
            for obj in objects:
                old = handed.get(id(obj))
                # handed over as a task rather than with client.scatter: the scheduler keeps
                # its specification, so data lost with a worker is rebuilt, not fatal
                fut = old[1] if old is not None else client.submit(_identity, obj, pure=False)
                now[id(obj)] = (obj, fut)
            handed = now  # objects no longer shared are released once their tasks finish
            return [now[id(obj)][1] for obj in objects]

        g = 0
        try:
            for stage in stages:
                context = stage.setup()
                for group in stage.groups(context):
                    shared = hand_over(group.shared)
                    n = 0
                    for call in group.calls:
                        fut = client.submit(
                            _on_worker, call.func, *shared, *call.args, key=call.key, pure=False
                        )
                        info[fut.key] = (call.work, g)
                        pending.add(fut)
                        n += 1
                    if n:
                        left[g] = n
                    g += 1
                    del shared
                    while pending.has_ready() or (len(left) >= 2 and pending.count() >= slots):
                        finish_one()
            while not pending.is_empty():
                finish_one()
        except BaseException:  # an error, or an interrupt: nothing left running for nothing
            client.cancel(list(pending.futures))
            raise


def executor_for(client: Any, threads: int | None) -> Executor:
    """The executor of a run: Dask's with a ``client``, else a thread pool of ``threads``
    (default: the cores available)."""
    if client is not None:
        if threads is not None:
            raise InputError(
                f"threads={threads} is for in-process runs; with a Dask client the cluster's "
                "worker threads run the tasks"
            )
        return DaskExecutor(client)
    threads = available_cores() if threads is None else threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"threads must be a positive integer; got {threads!r}")
    return LocalExecutor(threads)
