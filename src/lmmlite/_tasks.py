"""Running many independent tasks: in-process on a thread pool, or on Dask workers.

Every task runs single-threaded, BLAS (limited with threadpoolctl) and numba (the serial
kernels) alike, and the parallelism is across tasks. A task therefore computes the same
numbers whether it runs in-process, with any number of threads, or on a Dask worker. The
caller computes what tasks share (eigendecompositions, null fits) once, outside the tasks.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Any

from threadpoolctl import threadpool_limits

from .core import _kernels
from .exceptions import InputError

__all__ = [
    "LocalTasks",
    "available_cores",
    "one_blas_thread",
    "run_token",
    "serially",
    "task_threads",
]


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def task_threads(threads: int | None, client: Any) -> int:
    """The in-process thread count (default: the cores available); refused with a client,
    whose workers' threads are the cluster's."""
    if client is not None and threads is not None:
        raise InputError(
            f"threads={threads} is for in-process runs; with a Dask client the cluster's "
            "worker threads run the tasks"
        )
    threads = available_cores() if threads is None else threads
    if threads < 1:
        raise InputError(f"threads must be positive; got {threads}")
    return threads


def run_token() -> str:
    """A token unique to one run, for its task keys (keys of an earlier run on the same Dask
    cluster, possibly still known to its scheduler, are never reused)."""
    return uuid.uuid4().hex


def one_blas_thread() -> Any:
    """Context manager: BLAS limited to one thread in this process while it is open."""
    return threadpool_limits(limits=1, user_api="blas")


def serially(func: Callable[..., Any], *args: Any) -> Any:
    """``func(*args)`` with the serial numba kernels (in this thread)."""
    with _kernels.serial():
        return func(*args)


class LocalTasks:
    """A pool of ``threads`` threads running tasks serially; finished tasks' results are
    passed to ``collect`` and counted on ``bar`` in the caller's thread, at most
    ``2 x threads`` tasks being pending (bounded memory). Use as a context manager, and
    submit within :meth:`single_threaded`."""

    def __init__(self, threads: int, collect: Callable[[Any], None], bar: Any) -> None:
        self.threads = threads
        self.collect = collect
        self.bar = bar
        self.pending: dict[futures.Future, int] = {}
        self.pool = futures.ThreadPoolExecutor(threads, thread_name_prefix="lmmlite")

    def submit(self, work: int, func: Callable[..., Any], *args: Any) -> None:
        """Run ``func(*args)`` (``work``: its units of work, for the progress bar)."""
        self.pending[self.pool.submit(serially, func, *args)] = work
        self.wait(2 * self.threads)

    def wait(self, at_most: int = 0) -> None:
        """Collect finished tasks until at most ``at_most`` are pending."""
        while len(self.pending) > at_most:
            done, _ = futures.wait(self.pending, return_when=futures.FIRST_COMPLETED)
            for fut in done:
                work = self.pending.pop(fut)
                self.collect(fut.result())
                self.bar.update(work)

    @contextmanager
    def single_threaded(self) -> Iterator[LocalTasks]:
        """BLAS limited to one thread while tasks are submitted and run. On leaving, every
        task submitted is finished before the limit is lifted: collected normally, or, on an
        error or interrupt, the tasks not started are cancelled and the running ones waited
        for (they may write their task files: they must compute single-threaded, as always,
        for a resumed run to equal an uninterrupted one)."""
        with one_blas_thread():
            try:
                yield self
                self.wait()
            except BaseException:
                self.abandon()
                raise

    def abandon(self) -> None:
        """Cancel the tasks not started and wait for the running ones, uncollected."""
        for fut in self.pending:
            fut.cancel()
        futures.wait(self.pending)
        self.pending.clear()

    def __enter__(self) -> LocalTasks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abandon()
        self.pool.shutdown(wait=True)
