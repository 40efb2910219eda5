"""Progress reporting of long runs: a tqdm bar (tasks done, throughput, time left)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Progress"]


class Progress:
    """Counts finished tasks; ``report`` is None (silent), True (a bar on stderr, shown when
    stderr is a terminal) or a callable ``report(done, total)``."""

    def __init__(
        self,
        total: int,
        *,
        done: int = 0,
        unit_work: str = "tests",
        report: bool | Callable[[int, int], None] | None = None,
        desc: str = "scan",
    ) -> None:
        self.total = total
        self.done = done
        self.work = 0
        self.unit_work = unit_work
        self.start = time.perf_counter()
        self.callback = report if callable(report) else None
        self.bar: Any = None
        if report is True and _is_terminal(sys.stderr):  # tqdm's disable=None, without
            from tqdm.auto import tqdm  # importing it (and asyncio) where it would not show

            self.bar = tqdm(
                total=total,
                initial=done,
                unit="task",
                desc=desc,
                file=sys.stderr,
                disable=None,
                dynamic_ncols=True,
            )

    def update(self, work: int) -> None:
        self.done += 1
        self.work += work
        if self.bar is not None:
            rate = self.work / max(time.perf_counter() - self.start, 1e-9)
            self.bar.set_postfix_str(f"{_si(rate)} {self.unit_work}/s", refresh=False)
            self.bar.update(1)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.1f}{unit}"
    return f"{x:.0f}"


def _is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is a terminal (where tqdm's ``disable=None`` shows a bar)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
