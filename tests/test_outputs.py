"""Never a lost or half file (issue 11, point 4): outputs that name an input are refused, outputs
are checked before any work, keep sensible modes, leave no temporary file behind on SIGTERM or
after a kill, and Parquet datasets are published atomically and verified when resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmmlite
from conftest import recla_files
from lmmlite.cli import main
from lmmlite.exceptions import FileFormatError, LmmliteError
from lmmlite.io.genotypes import ArraySource
from lmmlite.io.tables import atomic_write, check_output, write_table

pytest.importorskip("pyarrow")


def _herit_args(**files: str) -> list[str]:
    f = {k: str(v) for k, v in recla_files().items()} | files
    return ["herit", "--kinship", f["kinship"], "--pheno", f["pheno"], "--covar", f["covar"]]


def test_cli__output_naming_an_input_is_refused(tmp_path, capsys):
    pheno = tmp_path / "p.csv.gz"
    pheno.write_bytes(Path(recla_files()["pheno"]).read_bytes())
    before = pheno.read_bytes()
    assert main([*_herit_args(pheno=str(pheno)), "--out", str(pheno)]) == 2
    assert "is one of the inputs" in capsys.readouterr().err
    assert pheno.read_bytes() == before
    # also through another spelling of the same path
    other = str(tmp_path / "." / "p.csv.gz")
    assert main([*_herit_args(pheno=str(pheno)), "--out", other]) == 2


def test_output_checked_before_any_work(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(FileFormatError, match="it exists and is a folder"):
        check_output(tmp_path / "folder.csv")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileFormatError, match="is not a folder"):
        check_output(tmp_path / "file" / "out.csv")
    with pytest.raises(FileFormatError, match="is not writable"):
        check_output("/proc/out.csv")  # even for root
    check_output(tmp_path / "new.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.csv"]  # no probe left


def test_modes__umask_for_new_files_and_kept_when_replacing(tmp_path):
    old = os.umask(0o022)
    try:
        frame = pd.DataFrame({"a": [1.0]}, index=pd.Index(["x"], name="id"))
        write_table(frame, tmp_path / "new.csv")
        assert (tmp_path / "new.csv").stat().st_mode & 0o777 == 0o644
        (tmp_path / "old.csv").write_text("id,a\n")
        os.chmod(tmp_path / "old.csv", 0o640)
        write_table(frame, tmp_path / "old.csv")
        assert (tmp_path / "old.csv").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_stale_temporary_of_a_killed_writer_is_swept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    stale = tmp_path / f".out.csv.{dead.pid}.abcd.tmp"
    stale.write_text("half")
    mine = tmp_path / f".out.csv.{os.getpid()}.efgh.tmp"  # this process's: left alone
    mine.write_text("busy")
    atomic_write(tmp_path / "out.csv", lambda tmp: Path(tmp).write_text("done"))
    assert not stale.exists() and mine.exists()
    assert (tmp_path / "out.csv").read_text() == "done"


def test_sigterm_while_writing_leaves_no_temporary(tmp_path):
    code = (
        "import time, sys\n"
        "from pathlib import Path\n"
        "from lmmlite.io.tables import atomic_write, remove_temporaries_on_sigterm\n"
        "def slow(tmp):\n"
        "    Path(tmp).write_text('half')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(30)\n"
        "with remove_temporaries_on_sigterm():\n"
        f"    atomic_write({str(tmp_path / 'out.csv')!r}, slow)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 128 + signal.SIGTERM
    proc.stdout.close()
    assert not list(tmp_path.iterdir())


def _data(n=50, m=40, t=3, seed=4):
    rng = np.random.default_rng(seed)
    ids = [f"s{i}" for i in range(n)]
    G = rng.binomial(2, 0.4, (n, m)).astype(float)
    markers = pd.DataFrame(
        {"marker": [f"m{j}" for j in range(m)], "chr": np.repeat(["1", "2"], m // 2),
         "pos": np.arange(m)}
    )  # fmt: skip
    Y = G[:, :2] @ rng.normal(0, 0.5, (2, t)) + rng.normal(size=(n, t))
    return ArraySource(G, ids, markers), pd.DataFrame(Y, index=ids)


KW = {"chunk_size": 10, "trait_batch": 2}


def _scan(src, P, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        return lmmlite.scan(src, P, **KW, **kw)


def _sorted(t: pd.DataFrame) -> pd.DataFrame:
    return t.sort_values(["trait", "marker"]).reset_index(drop=True)


def test_dataset__published_in_one_step_and_readable_only_when_complete(tmp_path):
    src, P = _data()
    out = tmp_path / "d.parquet"
    seen = []

    def look(done, total):
        seen.append(len(pd.read_parquet(out)) if (out / "data").exists() else 0)

    assert _scan(src, P, out=out, progress=look) is None
    assert set(seen) == {0}  # nothing readable while tasks run
    assert not (out / "_tasks").exists() and len(list((out / "data").glob("*.parquet"))) == 8
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["complete"] and len(manifest["files"]) == 8
    pd.testing.assert_frame_equal(_sorted(pd.read_parquet(out)), _sorted(_scan(src, P)))


def test_resume__a_truncated_task_file_is_computed_again(tmp_path):
    src, P = _data()
    out = tmp_path / "d.parquet"

    class Stop(Exception):
        pass

    def stop(done, total):
        if done >= 4:
            raise Stop

    with pytest.raises(Stop):
        _scan(src, P, out=out, progress=stop, threads=1)
    files = sorted((out / "_tasks").glob("*.parquet"))
    assert len(files) >= 4
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2])  # cut short, as by a full disk or a kill
    assert _scan(src, P, out=out, resume=True) is None
    pd.testing.assert_frame_equal(_sorted(pd.read_parquet(out)), _sorted(_scan(src, P)))


def test_resume__a_damaged_published_part_is_computed_again(tmp_path):
    src, P = _data()
    out = tmp_path / "d.parquet"
    _scan(src, P, out=out)
    part = sorted((out / "data").glob("*.parquet"))[2]
    part.write_bytes(part.read_bytes()[:100])
    with pytest.raises((OSError, ValueError)):
        pd.read_parquet(out)
    assert _scan(src, P, out=out, resume=True) is None
    pd.testing.assert_frame_equal(_sorted(pd.read_parquet(out)), _sorted(_scan(src, P)))
    # a complete, intact dataset: resuming it computes nothing and changes nothing
    before = {p.name: p.stat().st_mtime_ns for p in (out / "data").glob("*.parquet")}
    time.sleep(0.01)
    assert _scan(src, P, out=out, resume=True) is None
    after = {p.name: p.stat().st_mtime_ns for p in (out / "data").glob("*.parquet")}
    assert before == after


def test_resume__keep_max_with_a_damaged_table(tmp_path):
    src, P = _data()
    out = tmp_path / "m.parquet"
    want = _scan(src, P, out=out, keep="max")
    (out / "data" / "part-max.parquet").write_bytes(b"PAR1 broken")
    got = _scan(src, P, out=out, keep="max", resume=True)
    pd.testing.assert_frame_equal(got, want)
    pd.testing.assert_frame_equal(pd.read_parquet(out), want, check_dtype=False)


def test_resume__unreadable_manifest_is_named(tmp_path):
    src, P = _data()
    out = tmp_path / "d.parquet"
    _scan(src, P, out=out)
    (out / "_manifest.json").write_text('{"inputs": ')
    with pytest.raises(LmmliteError, match=r"manifest of .* is unreadable.*remove it"):
        _scan(src, P, out=out, resume=True)
