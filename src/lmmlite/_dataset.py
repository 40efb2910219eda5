"""A scan's results as a Parquet dataset folder that an interrupted run can resume.

Layout of ``NAME.parquet/``::

    _manifest.json            inputs (checksums), options, lmmlite version, and once complete
                              the size and SHA-256 of every published file
    _tasks/<task>.parquet     one file per finished task, each written atomically
    _checksums/<task>.json    its size and SHA-256, written once the task file is in place
    data/part-*.parquet       the results, published when every task is done

Names starting with ``_`` or ``.`` are skipped by Parquet readers, so
``pandas.read_parquet("NAME.parquet")`` reads the published results as one table, and nothing
from an unfinished run. Publication is atomic: with ``keep="all"`` the task folder is renamed to
``data`` in one step (its files become ``data/<task>.parquet``); with ``keep="max"``/``"peaks"``
the reduced table is written to a hidden folder renamed to ``data``. A reader therefore sees all
of the results or none.

A resumed run trusts a task file only if its checksum record matches the file (a file cut short
by a kill, or corrupted later, is computed again), and a published folder only if every part
matches the manifest (otherwise it is unpublished and the bad parts recomputed).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ._version import __version__
from .exceptions import InputError, LmmliteError
from .io.tables import atomic_write, sha256_file

__all__ = ["ScanDataset", "frame_sha256", "write_task"]

MANIFEST = "_manifest.json"
TASKS = "_tasks"
CHECKSUMS = "_checksums"
DATA = "data"
#: Version of the folder's layout (task naming, task-file columns, publication): a folder of
#: another layout is not resumed.
LAYOUT = 3


def frame_sha256(df: pd.DataFrame | pd.Series | None) -> str | None:
    """Checksum of a table's content (values, index and column names)."""
    if df is None:
        return None
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
    names = list(df.columns) if isinstance(df, pd.DataFrame) else [df.name]
    h.update(json.dumps([str(c) for c in names]).encode())
    return h.hexdigest()


def _record(path: Path) -> dict[str, Any]:
    return {"size": path.stat().st_size, "sha256": sha256_file(path)}


def _write_json(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=1, sort_keys=True)

    def write(tmp: str) -> None:
        Path(tmp).write_text(text)

    atomic_write(path, write)


def write_task(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    """Write a task's ``frame`` to ``path`` atomically, then its checksum record (in the
    sibling ``_checksums`` folder): a resumed run trusts the file only with a matching record."""
    p = Path(path)
    atomic_write(p, lambda tmp: frame.to_parquet(tmp, index=False))
    _write_json(p.parent.parent / CHECKSUMS / f"{p.stem}.json", _record(p))


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
        self.checksums = self.path / CHECKSUMS
        self.data = self.path / DATA
        self.record = {"lmmlite_version": __version__, "layout": LAYOUT, **manifest}
        self._open(str(path), resume)
        if not self.data.is_dir():  # else published (keep="all": the tasks became the data)
            self.tasks.mkdir(parents=True, exist_ok=True)
        self.checksums.mkdir(parents=True, exist_ok=True)
        for folder in (self.tasks, self.checksums, self.path):  # left by a killed run
            for stale in folder.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
        shutil.rmtree(self.path / f".{DATA}.staging", ignore_errors=True)
        if not (self.path / MANIFEST).is_file():
            _write_json(self.path / MANIFEST, {**self.record, "complete": False})

    def _open(self, shown: str, resume: bool) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"output {shown!r} exists and is not a folder")
        if not self.path.parent.is_dir():
            raise InputError(
                f"cannot write {shown!r}: folder {str(self.path.parent)!r} does not exist"
            )
        mfile = self.path / MANIFEST
        if not mfile.is_file():
            if self.path.is_dir() and any(self.path.iterdir()):
                raise InputError(
                    f"output folder {shown!r} exists, is not empty and has no lmmlite "
                    "manifest: remove it or choose another name"
                )
            return
        if not resume:
            raise InputError(
                f"output folder {shown!r} holds a scan already: pass --resume "
                "(resume=True) to complete it, or remove it"
            )
        try:
            old = json.loads(mfile.read_text())
        except (ValueError, OSError):
            raise LmmliteError(
                f"the manifest of {shown!r} is unreadable (cut short, or not lmmlite's); the "
                "folder cannot be resumed: remove it to start again"
            ) from None
        skip = ("complete", "files")
        diff = _differences(
            {k: v for k, v in old.items() if k not in skip},
            {k: v for k, v in self.record.items() if k not in skip},
        )
        if diff:
            raise InputError(
                f"cannot resume {shown!r}: it was started with other inputs or "
                f"options: {'; '.join(diff)}"
            )
        if self.data.is_dir():
            self._unpublish_if_damaged(old.get("files", {}))

    def _unpublish_if_damaged(self, files: dict[str, Any]) -> None:
        """A published folder whose parts do not all match the manifest goes back to being
        unfinished: the damaged parts are removed (their tasks are computed again)."""
        bad = [
            name
            for name, rec in files.items()
            if not (self.data / name).is_file() or _record(self.data / name) != rec
        ]
        if not bad and files:
            return
        for name in bad:
            (self.data / name).unlink(missing_ok=True)
            (self.checksums / f"{Path(name).stem}.json").unlink(missing_ok=True)
        if self.tasks.exists():  # keep="max"/"peaks": the task files are there; drop the table
            shutil.rmtree(self.data)
        else:  # keep="all": the parts are the task files
            os.replace(self.data, self.tasks)
        _write_json(self.path / MANIFEST, {**self.record, "complete": False})

    def task_path(self, name: str) -> Path:
        return self.tasks / f"{name}.parquet"

    def done(self) -> set[str]:
        """Names of the tasks whose files are on disk and match their checksum records; a file
        without a matching record (cut short by a kill, corrupted) is removed."""
        names = set()
        for p in self.tasks.glob("*.parquet"):
            rec = self.checksums / f"{p.stem}.json"
            try:
                good = rec.is_file() and json.loads(rec.read_text()) == _record(p)
            except (ValueError, OSError):
                good = False
            if good:
                names.add(p.stem)
            else:
                p.unlink(missing_ok=True)
                rec.unlink(missing_ok=True)
        if self.data.is_dir() and not self.tasks.exists():  # published, checked on opening
            names |= {p.stem for p in self.data.glob("*.parquet")}
        return names

    def task_frames(self) -> Iterator[pd.DataFrame]:
        """The finished tasks' frames (verified by :meth:`done`), one at a time (a resumed
        reduction stays bounded)."""
        self.done()
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

    def _finish(self) -> None:
        files = {p.name: _record(p) for p in sorted(self.data.glob("*.parquet"))}
        _write_json(self.path / MANIFEST, {**self.record, "complete": True, "files": files})

    def publish_all(self) -> None:
        """keep="all": the task folder becomes the data folder, in one rename."""
        if self.tasks.exists():
            if self.data.exists():
                shutil.rmtree(self.data)
            os.replace(self.tasks, self.data)
        self._finish()

    def publish_table(self, table: pd.DataFrame, keep: str) -> None:
        """keep="max"/"peaks": the reduced table as ``data/part-<keep>.parquet``, written in a
        hidden folder renamed into place."""
        staging = self.path / f".{DATA}.staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        table.to_parquet(staging / f"part-{keep}.parquet", index=False)
        if self.data.exists():
            shutil.rmtree(self.data)
        os.replace(staging, self.data)
        self._finish()
