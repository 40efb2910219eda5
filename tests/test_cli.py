"""Command line: lmmlite herit, profile and demo."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

import lmmlite
from conftest import recla_files
from lmmlite.cli import main
from lmmlite.io.tables import read_table

FILES = recla_files()
INPUTS = [
    "--kinship",
    str(FILES["kinship"]),
    "--pheno",
    str(FILES["pheno"]),
    "--covar",
    str(FILES["covar"]),
]


def _api(**kw):
    K, P, C = (read_table(FILES[n]) for n in ("kinship", "pheno", "covar"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        return lmmlite.heritability(K, P, C, **kw)


@pytest.mark.parametrize("name", ["h.csv", "h.tsv"])
def test_herit__writes_the_full_table(tmp_path, capsys, name):
    out = tmp_path / name
    assert main(["herit", *INPUTS, "--out", str(out)]) == 0
    table = read_table(out)
    want = _api()
    assert list(table.index) == list(want.index) and len(table) == 26
    np.testing.assert_allclose(table["hsq"], want["hsq"], rtol=1e-12)
    printed = capsys.readouterr()
    assert "OF_distance_first4" in printed.out and "0.764284" in printed.out
    assert "lmmlite: warning:" in printed.err  # boundary estimates are reported, one line


def test_herit__options_are_passed_through(tmp_path):
    out = tmp_path / "h.csv"
    assert (
        main(["herit", *INPUTS, "--ml", "--tol", "1e-6", "--no-check-boundary", "--out", str(out)])
        == 0
    )
    want = _api(reml=False, tol=1e-6, check_boundary=False)
    np.testing.assert_allclose(read_table(out)["hsq"], want["hsq"], rtol=1e-12)
    np.testing.assert_allclose(read_table(out)["loglik"], want["loglik"], rtol=1e-12)


def _bad(tmp_path, capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmmlite: error:") and err.count("\n") == 1, err
    assert message in err


def test_herit__missing_and_empty_files(tmp_path, capsys):
    _bad(
        tmp_path,
        capsys,
        ["herit", "--kinship", str(tmp_path / "k.csv"), "--pheno", "p.csv"],
        "does not exist",
    )
    (tmp_path / "p.csv").write_text("")
    _bad(
        tmp_path,
        capsys,
        ["herit", "--kinship", str(FILES["kinship"]), "--pheno", str(tmp_path / "p.csv")],
        "is empty",
    )


def test_herit__non_numeric_column_and_mismatched_ids(tmp_path, capsys):
    P = read_table(FILES["pheno"])
    P2 = P.astype(object)
    P2.iloc[3, 2] = "n/a?"
    P2.to_csv(tmp_path / "p.csv")
    _bad(
        tmp_path,
        capsys,
        ["herit", "--kinship", str(FILES["kinship"]), "--pheno", str(tmp_path / "p.csv")],
        "non-numeric column",
    )
    P.rename(index={P.index[0]: "ghost"}).to_csv(tmp_path / "q.csv")
    _bad(
        tmp_path,
        capsys,
        ["herit", "--kinship", str(FILES["kinship"]), "--pheno", str(tmp_path / "q.csv")],
        "ghost",
    )


def test_herit__bad_output_leaves_nothing(tmp_path, capsys):
    _bad(
        tmp_path,
        capsys,
        ["herit", *INPUTS, "--out", str(tmp_path / "h.xlsx")],
        "cannot tell the format",
    )
    _bad(
        tmp_path,
        capsys,
        ["herit", *INPUTS, "--out", str(tmp_path / "no" / "h.csv")],
        "does not exist",
    )
    assert not list(tmp_path.iterdir())


def test_herit__subprocess_error_is_one_line_without_traceback(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmmlite",
            "herit",
            "--kinship",
            str(tmp_path / "missing.csv"),
            "--pheno",
            "x.csv",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2
    assert res.stderr.startswith("lmmlite: error:") and res.stderr.count("\n") == 1
    assert "Traceback" not in res.stderr


def test_command__quick_exit_writes_everything_first(tmp_path):
    """``python -m lmmlite`` ends the process without the interpreter's teardown
    (``cli.run``): the table is complete, the summary and the warnings are on stdout and
    stderr, the status is main's."""
    out = tmp_path / "h.csv"
    res = subprocess.run(
        [sys.executable, "-m", "lmmlite", "herit", *INPUTS, "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    got = read_table(out)
    np.testing.assert_allclose(got["hsq"], _api()["hsq"].to_numpy(), rtol=1e-12)
    assert res.stdout.rstrip().endswith(f"wrote 26 rows x 17 columns to {out}")
    # (after the compilation notice where this process was the first to need a kernel)
    err = [line for line in res.stderr.splitlines() if "compiling numerical kernels" not in line]
    assert err[0].startswith("lmmlite: warning: 11 of 26 phenotype(s) have hsq on the")


def test_profile__plot_and_grid(tmp_path, capsys):
    import matplotlib.image as mpimg

    png, grid = tmp_path / "p.png", tmp_path / "g.csv"
    assert (
        main(
            [
                "profile",
                *INPUTS,
                "--trait",
                "OF_distance_first4",
                "--plot",
                str(png),
                "--out",
                str(grid),
            ]
        )
        == 0
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert mpimg.imread(png).std() > 0.01
    table = read_table(grid)
    assert len(table) == 101 and list(table.columns) == ["OF_distance_first4"]
    # the curve's maximum on the grid is next to the fitted hsq
    assert abs(float(table.index[np.argmax(table.iloc[:, 0])]) - 0.7643) <= 0.01
    _bad(tmp_path, capsys, ["profile", *INPUTS, "--trait", "nope"], "unknown phenotype")


def test_demo__writes_table_and_plot(tmp_path):
    assert main(["demo", "--samples", "120", "--traits", "3", "--outdir", str(tmp_path)]) == 0
    assert (tmp_path / "profile.png").stat().st_size > 1000
    assert len(read_table(tmp_path / "heritability.csv")) == 3


def test_main__returns_promptly_after_a_foreign_warning():
    # A command whose work emits a warning of another library (NumPy, Dask): main() once
    # replayed such warnings inside its recording context, which recorded them again while
    # iterating over them, an endless loop that filled memory. Run in a subprocess so that a
    # regression fails on the timeout instead of hanging the suite.
    code = (
        "import warnings, lmmlite.cli as cli\n"
        "def handler(args):\n"
        "    warnings.warn('Mean of empty slice', RuntimeWarning)\n"
        "    warnings.warn('Mean of empty slice', RuntimeWarning)\n"
        "    warnings.warn('Port 8787 is already in use', UserWarning)\n"
        "cli._demo = handler\n"
        "raise SystemExit(cli.main(['demo']))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    # each distinct foreign warning is shown once, with its class
    assert lines == [
        "lmmlite: warning: RuntimeWarning: Mean of empty slice",
        "lmmlite: warning: UserWarning: Port 8787 is already in use",
    ]
