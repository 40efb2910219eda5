"""A scan's results as a Parquet dataset folder that an interrupted run can resume.

Layout of ``NAME.parquet/``::

    _manifest.json        inputs (checksums), options, lmmlite version and layout of the run
    _tasks/<task>.parquet one file per finished task, each written atomically
    part-*.parquet        the results, published when every task is done

Names starting with ``_`` or ``.`` are skipped by Parquet readers, so
``pandas.read_parquet("NAME.parquet")`` reads the published results as one table, and reads
nothing from an unfinished run. With ``keep="all"`` each task file is renamed to a
``part-<task>.parquet`` when the run completes; with ``keep="max"``/``"peaks"`` the task files
hold each task's best rows, reduced into one ``part-<keep>.parquet`` at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ._version import __version__
from .exceptions import InputError, LmmliteError
from .io.tables import atomic_write

__all__ = ["ScanDataset", "frame_sha256", "write_task"]

MANIFEST = "_manifest.json"
TASKS = "_tasks"
#: Version of the folder's layout (task naming and task-file columns): a folder of another
#: layout is not resumed.
LAYOUT = 2


def frame_sha256(df: pd.DataFrame | pd.Series | None) -> str | None:
    """Checksum of a table's content (values, index and column names)."""
    if df is None:
        return None
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
    names = list(df.columns) if isinstance(df, pd.DataFrame) else [df.name]
    h.update(json.dumps([str(c) for c in names]).encode())
    return h.hexdigest()


def write_task(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    """Write ``frame`` to ``path`` atomically: a hidden temporary file, then a rename."""
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def _differences(old: Any, new: Any, where: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(key), new.get(key), f"{where}.{key}" if where else key)
        return out
    if old != new:
        return [f"{where} ({old!r} there, {new!r} now)"]
    return []


class ScanDataset:
    """The output folder of a scan: created new, or reopened with ``resume=True``."""

    def __init__(self, path: str | os.PathLike[str], manifest: dict[str, Any], *, resume: bool):
        # absolute: Dask workers, whatever their working folder, write into this folder
        self.path = Path(path).resolve()
        self.tasks = self.path / TASKS
        record = {"lmmlite_version": __version__, "layout": LAYOUT, **manifest}
        mfile = self.path / MANIFEST
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"output {str(path)!r} exists and is not a folder")
        if not self.path.parent.is_dir():
            raise InputError(
                f"cannot write {str(path)!r}: folder {str(self.path.parent)!r} does not exist"
            )
        if mfile.is_file():
            if not resume:
                raise InputError(
                    f"output folder {str(path)!r} holds a scan already: pass --resume "
                    "(resume=True) to complete it, or remove it"
                )
            old = json.loads(mfile.read_text())
            diff = _differences(
                {k: v for k, v in old.items() if k != "complete"},
                {k: v for k, v in record.items() if k != "complete"},
            )
            if diff:
                raise InputError(
                    f"cannot resume {str(path)!r}: it was started with other inputs or "
                    f"options: {'; '.join(diff)}"
                )
        elif self.path.is_dir() and any(self.path.iterdir()):
            raise InputError(
                f"output folder {str(path)!r} exists, is not empty and has no lmmlite "
                "manifest: remove it or choose another name"
            )
        self.tasks.mkdir(parents=True, exist_ok=True)
        for stale in self.tasks.glob(".*.tmp"):  # left by a killed run
            stale.unlink(missing_ok=True)
        if not mfile.is_file():
            self._write_manifest({**record, "complete": False})
        self.record = record

    def _write_manifest(self, record: dict[str, Any]) -> None:
        text = json.dumps(record, indent=1, sort_keys=True)

        def write(tmp: str) -> None:
            Path(tmp).write_text(text)

        atomic_write(self.path / MANIFEST, write)

    def task_path(self, name: str) -> Path:
        return self.tasks / f"{name}.parquet"

    def done(self) -> set[str]:
        """Names of the tasks whose results are on disk (pending or published)."""
        names = {p.stem for p in self.tasks.glob("*.parquet")}
        names |= {p.stem[len("part-") :] for p in self.path.glob("part-b*.parquet")}
        return names

    def task_frames(self) -> Iterator[pd.DataFrame]:
        """The finished tasks' frames, one at a time (a resumed reduction stays bounded)."""
        for p in sorted(self.tasks.glob("*.parquet")):
            yield pd.read_parquet(p)

    def check_complete(self, names: list[str]) -> None:
        """Raise unless every task in ``names`` has its file (a worker that wrote elsewhere,
        e.g. without access to this folder, must not leave a dataset marked complete)."""
        missing = sorted(set(names) - self.done())
        if missing:
            shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
            raise LmmliteError(
                f"{len(missing)} of {len(names)} task results are missing from "
                f"{str(self.tasks)!r} ({shown}), though their tasks finished: the workers "
                "must write to the same folder as this process (a shared file system). "
                "Rerun with --resume (resume=True) to compute them."
            )

    def publish_all(self) -> None:
        """keep="all": move every task file into the dataset (renames: atomic, resumable)."""
        for p in sorted(self.tasks.glob("*.parquet")):
            os.replace(p, self.path / f"part-{p.stem}.parquet")
        self._write_manifest({**self.record, "complete": True})

    def publish_table(self, table: pd.DataFrame, keep: str) -> None:
        """keep="max"/"peaks": the reduced table as one file."""
        write_task(self.path / f"part-{keep}.parquet", table)
        self._write_manifest({**self.record, "complete": True})
