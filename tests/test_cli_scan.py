"""Command line: lmmlite kinship, scan and plot."""

from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import BXD
from lmmlite.cli import main
from lmmlite.io.genotypes import PlinkSource
from lmmlite.io.tables import read_table
from lmmlite.scan import scan
from reference.gemma import compare_with_gemma


def _bimbam_args():
    return ["--bimbam", str(BXD / "BXD_geno.txt.gz"), "--annot", str(BXD / "BXD_snps.txt.gz")]


@pytest.fixture
def bxd_kinship_txt(tmp_path):
    """GEMMA's BXD.cXX.txt as GEMMA wrote it: a bare tab-separated matrix."""
    path = tmp_path / "BXD.cXX.txt"
    path.write_bytes(gzip.decompress((BXD / "BXD.cXX.txt.gz").read_bytes()))
    return path


def test_kinship_cli__bimbam_equals_gemma(tmp_path, capsys):
    out = tmp_path / "k.tsv"
    # gemma -gk 1 also used the covariates for its r2 filter, which changes nothing here but
    # three markers; compare with the loose tolerance that allows for them
    assert (
        main(["kinship", *_bimbam_args(), "--pheno", str(BXD / "BXD_pheno.txt"), "--out", str(out)])
        == 0
    )
    K = read_table(out)
    ref = np.loadtxt(BXD / "BXD.cXX.txt.gz")
    assert K.shape == (198, 198)
    np.testing.assert_allclose(K.to_numpy(), ref, atol=5e-3)
    assert "wrote the centered kinship" in capsys.readouterr().out


def test_scan_cli__plink_fam_phenotype_equals_api(tmp_path, i188):
    out = tmp_path / "scan.tsv"
    K = tmp_path / "k.csv"
    assert main(["kinship", "--bfile", str(i188), "--out", str(K)]) == 0
    assert main(["scan", "--bfile", str(i188), "--kinship", str(K), "--out", str(out)]) == 0
    got = pd.read_csv(out, sep="\t", dtype={"chr": str, "marker": str})
    src = PlinkSource(i188)
    want = scan(src, src.fam_phenotypes(), kinship=read_table(K))
    assert list(got.columns) == list(want.columns)
    np.testing.assert_allclose(got["p_wald"], want["p_wald"], rtol=1e-9)


@pytest.mark.parametrize("mode", ["fixed", "exact"])
def test_scan_cli__one_trait_scan_does_without_numba(tmp_path, i188, monkeypatch, mode):
    """A fixed-hsq scan of one trait needs matrix products and one small null fit; an exact
    one, per-marker searches on series formed by matrix products, and a few markers' kernel
    evaluations. The kernels' exact NumPy twins compute those: numba (0.3-0.5 s to start,
    seconds to compile after installing) is never imported, and the table is byte for byte
    the one the kernels give."""
    out = tmp_path / "twins.tsv"
    args = ["scan", "--bfile", str(i188), "--mode", mode]
    code = (
        "import sys, lmmlite.cli as cli\n"
        f"assert cli.main({[*args, '--out', str(out)]!r}) == 0\n"
        "assert 'numba' not in sys.modules, 'numba was imported'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    from lmmlite.core import _kernels

    monkeypatch.setattr(_kernels, "_twin_left", [0])  # no budget left: the kernels
    ref = tmp_path / "kernels.tsv"
    assert main([*args, "--out", str(ref)]) == 0
    assert out.read_bytes() == ref.read_bytes()


def test_scan_cli__hsq_grid_holds_grid_values(tmp_path, i188):
    out = tmp_path / "scan.tsv"
    assert main(["scan", "--bfile", str(i188), "--hsq-grid", "0.1", "--out", str(out)]) == 0
    h = pd.read_csv(out, sep="\t")["hsq"].to_numpy()
    np.testing.assert_allclose(h * 10, np.round(h * 10), atol=1e-9)


def test_scan_cli__gemma_bare_kinship_and_positional_files_equal_gemma(tmp_path, bxd_kinship_txt):
    # gemma -g BXD_geno.txt.gz -p BXD_pheno.txt -c BXD_covariates2.txt -a BXD_snps.txt
    #       -k BXD.cXX.txt -lmm 4 -o BXD_lmm4 (GEMMA double-centres the kinship: --center-kinship)
    out = tmp_path / "bxd.parquet"
    assert (
        main(
            [
                "scan",
                *_bimbam_args(),
                "--pheno",
                str(BXD / "BXD_pheno.txt"),
                "--covar",
                str(BXD / "BXD_covariates2.txt"),
                "--kinship",
                str(bxd_kinship_txt),
                "--center-kinship",
                "--mode",
                "exact",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    table = pd.read_parquet(out)
    assert len(table) == 7320 and table["n"].eq(67).all()
    # the covariate file's trailing tab is not a covariate (an intercept is added instead,
    # which is what GEMMA's reading of it amounts to)
    compare_with_gemma(table, pd.read_csv(BXD / "BXD_lmm4.assoc.txt.gz", sep="\t"))


def test_scan_cli__kinship_read_beside_the_imports_reports_its_error(tmp_path, capsys):
    """The kinship is read in a thread while the scan's modules load: its error still ends
    the command with a clear message and no output; an earlier input's error comes first."""
    kin = tmp_path / "k.txt"
    kin.write_text("0.5\t0.1\n0.1\t0.5\n")  # a bare matrix of 2 samples: BXD has 198
    out = tmp_path / "scan.tsv"
    args = ["scan", *_bimbam_args(), "--pheno", str(BXD / "BXD_pheno.txt")]
    assert main([*args, "--kinship", str(kin), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is a bare 2 x 2 matrix but the genotype file has 198 samples" in err
    assert main([*args, "--pheno-col", "9", "--kinship", str(kin), "--out", str(out)]) == 2
    assert "--pheno-col [9] out of range" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("kind", ["manhattan", "lod", "qq"])
def test_plot_cli__writes_a_non_blank_png(tmp_path, kind):
    import matplotlib.image as mpimg

    table = tmp_path / "s.tsv"
    assert (
        main(["scan", *_bimbam_args(), "--pheno", str(BXD / "BXD_pheno.txt"), "--out", str(table)])
        == 0
    )
    png = tmp_path / f"{kind}.png"
    assert main(["plot", kind, "--scan", str(table), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(png)
    assert img.std() > 0.01  # not a single colour


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["scan", "--bimbam", str(BXD / "BXD_geno.txt.gz"), "--pheno", "x", "--out", "o.tsv"],
            "--annot",
        ),
        (
            ["scan", "--bfile", "{i188}", "--kinship", "{bxd_kinship}", "--out", "o.tsv"],
            "matches neither",
        ),
        (["scan", "--bfile", "{i188}", "--out", "o.xyz"], "extension"),
        (
            [
                "scan",
                "--bfile",
                "{i188}",
                "--mode",
                "exact",
                "--hsq-grid",
                "0.01",
                "--out",
                "o.tsv",
            ],
            "mode='fixed'",
        ),
        (["scan", "--bfile", "{i188}", "--pheno-col", "3", "--out", "o.tsv"], "out of range"),
        (
            ["kinship", "--bfile", "{i188}", "--loco", "--out", "k.tsv"],
            "no markers on other chromosomes",
        ),
        (["plot", "qq", "--scan", "missing.tsv", "--out", "q.png"], "does not exist"),
    ],
)
def test_cli__bad_input_gives_one_line_error(
    tmp_path, monkeypatch, capsys, i188, bxd_kinship_txt, args, message
):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    args = [a.format(i188=i188, bxd_kinship=bxd_kinship_txt) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmmlite: error:") and err.count("\n") == 1
    assert message in err
    assert not list(work.iterdir())  # nothing half-written
