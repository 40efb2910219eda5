"""Executors: they run tasks, in-process on a thread pool or on Dask workers
(:mod:`lmmlite.distributed`), and know nothing of what the tasks compute.

Work comes as :class:`Stage` objects (planned by :mod:`lmmlite.planner`). A stage's ``setup``
is the expensive step its tasks share (an eigendecomposition); the executor runs it with no
task running, so that it may use every core. Its ``groups`` then yield :class:`Group` objects:
objects shared by some tasks (handed to a cluster once) and the tasks themselves,
:class:`Call` objects run as ``func(*shared, *args)``. Results go to a ``collect`` callable in
the caller's thread, in completion order.

Every task runs single-threaded, BLAS (limited with threadpoolctl) and numba (the serial
kernels) alike, and the parallelism is across tasks. A task therefore computes the same numbers
whether it runs in-process, with any number of threads, or on a Dask worker.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from threadpoolctl import ThreadpoolController

from .core import _kernels

__all__ = [
    "Call",
    "Executor",
    "Group",
    "LocalExecutor",
    "Stage",
    "available_cores",
    "one_blas_thread",
    "run_token",
    "serially",
]


@dataclass(frozen=True)
class Call:
    """One task: ``func(*shared, *args)``, ``func`` a module-level function (picklable)."""

    key: str
    """A name unique to this task and run (its Dask key)."""
    work: int
    """Units of work, for the progress bar's throughput."""
    func: Callable[..., Any]
    args: tuple[Any, ...]


@dataclass
class Group:
    """Tasks sharing some objects (passed first to each task; handed to a cluster once)."""

    shared: tuple[Any, ...]
    calls: Iterable[Call]
    """May be a generator: tasks are planned as the executor takes them (memory stays
    bounded)."""


@dataclass
class Stage:
    """Groups sharing an expensive setup, run by the executor with no task running."""

    setup: Callable[[], Any]
    groups: Callable[[Any], Iterator[Group]]
    """Called with ``setup()``'s result; runs in the caller's thread with one BLAS thread."""


class Executor(Protocol):
    """Runs stages of tasks; results go to ``collect``, progress to ``bar.update(work)``."""

    shares_memory: bool
    """True when tasks run in this process (they may be handed arrays read here)."""

    def run(
        self, stages: Iterable[Stage], collect: Callable[[Any], None], bar: Any
    ) -> None: ...  # pragma: no cover


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run_token() -> str:
    """A token unique to one run, for its task keys (keys of an earlier run on the same Dask
    cluster, possibly still known to its scheduler, are never reused)."""
    return uuid.uuid4().hex


_controller: ThreadpoolController | None = None
_controller_sees_scipy = False


def one_blas_thread() -> Any:
    """Context manager: BLAS limited to one thread in this process while it is open. The
    controller (inspecting the loaded libraries takes milliseconds) is made once, and again
    once SciPy's linear algebra, which may bring a BLAS of its own, has been imported (by the
    commands that use it: importing it only for this would cost 30 ms)."""
    global _controller, _controller_sees_scipy
    if _controller is None or (not _controller_sees_scipy and "scipy.linalg" in sys.modules):
        _controller_sees_scipy = "scipy.linalg" in sys.modules
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def serially(func: Callable[..., Any], *args: Any) -> Any:
    """``func(*args)`` with the serial numba kernels (in this thread)."""
    with _kernels.serial():
        return func(*args)


class LocalExecutor:
    """A pool of ``threads`` threads running tasks serially, at most ``2 x threads`` pending
    (bounded memory)."""

    shares_memory = True

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def run(self, stages: Iterable[Stage], collect: Callable[[Any], None], bar: Any) -> None:
        with _Pool(self.threads, collect, bar) as pool:
            for stage in stages:
                context = stage.setup()  # the pool is idle: BLAS on every core
                with pool.single_threaded():
                    for group in stage.groups(context):
                        for call in group.calls:
                            pool.submit(call.work, call.func, *group.shared, *call.args)


class _Pool:
    """The thread pool of :class:`LocalExecutor`: finished tasks' results are collected and
    counted in the caller's thread."""

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
    def single_threaded(self) -> Iterator[_Pool]:
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

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abandon()
        self.pool.shutdown(wait=True)
