"""Bad and unlucky input: each gives a clear error naming the problem and the values, or a
warning and a per-trait flag, never a silent answer (issue 11's catalogue, point 3 and 5)."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmmlite
from conftest import BXD, recla_files
from lmmlite.cli import main
from lmmlite.exceptions import (
    CovariateError,
    DataWarning,
    FileFormatError,
    FileFormatWarning,
    InputError,
    KinshipError,
    SamplesDroppedWarning,
)
from lmmlite.io.genotypes import ArraySource, BimbamSource, DosageSource, PlinkSource, ProbsSource
from lmmlite.io.kinship import read_kinship
from lmmlite.io.phenotypes import read_positional
from lmmlite.io.tables import read_table

bed_reader = pytest.importorskip("bed_reader")


def _sim(n=40, m=30, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"s{i}" for i in range(n)]
    G = rng.binomial(2, 0.4, (n, m)).astype(float)
    Z = G - G.mean(0)
    K = pd.DataFrame(Z @ Z.T / m, index=ids, columns=ids)
    P = pd.DataFrame({"y": rng.normal(size=n)}, index=ids)
    markers = pd.DataFrame({"marker": [f"m{j}" for j in range(m)], "chr": "1", "pos": range(m)})
    return ids, G, K, P, markers


# --- PLINK .fam that the .bed's size cannot tell apart -----------------------------------------


def _write_plink(folder: Path, n: int, m: int = 60, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    G = rng.binomial(2, 0.3, (n, m)).astype(np.float32)
    prefix = folder / "g"
    bed_reader.to_bed(
        f"{prefix}.bed",
        G,
        properties={"iid": [f"i{i}" for i in range(n)], "sid": [f"r{j}" for j in range(m)]},
    )
    return prefix


@pytest.mark.parametrize("change", ["drop_last", "drop_middle", "add_one"])
def test_plink__fam_off_by_one_line_is_refused(tmp_path, change):
    prefix = _write_plink(tmp_path, 150)  # 150, 149 and 151 samples all take 38 bytes per SNP
    fam = Path(f"{prefix}.fam").read_text().splitlines(keepends=True)
    if change == "drop_last":
        fam = fam[:-1]
    elif change == "drop_middle":
        fam = fam[:70] + fam[71:]
    else:
        fam = [*fam, "x x2 0 0 0 -9\n"]
    Path(f"{prefix}.fam").write_text("".join(fam))
    message = "a line too many" if change == "add_one" else "a line too few"
    with pytest.raises(FileFormatError, match=rf"does not match its .fam.*{message}"):
        PlinkSource(prefix)


def test_plink__matching_fileset_and_spaces_in_the_bim_are_read(tmp_path):
    prefix = _write_plink(tmp_path, 150)
    bim = Path(f"{prefix}.bim").read_text().replace("\t", " ")
    Path(f"{prefix}.bim").write_text(bim)  # PLINK allows any whitespace
    src = PlinkSource(prefix)
    assert len(src.samples) == 150 and src.n_markers == 60


def test_plink__fam_text_phenotype_and_case_control(tmp_path):
    prefix = _write_plink(tmp_path, 12, m=8)
    lines = Path(f"{prefix}.fam").read_text().splitlines()
    values = ["1.5", "abc"] + ["2"] * 10
    fam = [" ".join([*ln.split()[:5], v]) for ln, v in zip(lines, values, strict=True)]
    Path(f"{prefix}.fam").write_text("\n".join(fam) + "\n")
    with pytest.raises(FileFormatError, match=r"'abc' of sample i1 is not a number"):
        PlinkSource(prefix).fam_phenotypes()
    codes = ["1", "2", "0", "-9", "2", "1", "1", "2", "2", "1", "0", "2"]
    fam = [" ".join([*ln.split()[:5], v]) for ln, v in zip(lines, codes, strict=True)]
    Path(f"{prefix}.fam").write_text("\n".join(fam) + "\n")
    with pytest.warns(DataWarning, match=r"case/control"):
        ph = PlinkSource(prefix).fam_phenotypes()
    assert ph["pheno1"].isna().sum() == 3  # 0 and -9 are missing


# --- models that cannot be estimated ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["identity", "zeros", "constant_plus_identity"])
def test_heritability__unidentifiable_kinship_is_refused(kind):
    ids, _, _, P, _ = _sim()
    n = len(ids)
    M = {
        "identity": np.eye(n),
        "zeros": np.zeros((n, n)),
        "constant_plus_identity": 0.3 + 0.7 * np.eye(n),  # structure only along the intercept
    }[kind]
    with pytest.raises(KinshipError, match=r"cannot separate the heritability.*y"):
        lmmlite.heritability(pd.DataFrame(M, index=ids, columns=ids), P)


def test_fit_lmm__equal_eigenvalues_are_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(KinshipError, match=r"eigenvalues equal 1"):
        lmmlite.fit_lmm(np.ones(30), rng.normal(size=30), np.ones((30, 1)))


def test_scan__unidentifiable_kinship_is_refused():
    ids, G, _, P, markers = _sim()
    I = pd.DataFrame(np.eye(len(ids)), index=ids, columns=ids)
    with pytest.raises(KinshipError, match=r"cannot separate"):
        lmmlite.scan(ArraySource(G, ids, markers), P, kinship=I)


# --- options out of range, in the API as well as the CLI -----------------------------------------


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"level": 1.5}, "level must lie strictly between 0 and 1"),
        ({"level": 0.0}, "level must lie strictly between 0 and 1"),
        ({"level": float("nan")}, "level must lie strictly between 0 and 1"),
        ({"tol": 2.0}, "tol must lie strictly between 0 and 0.5"),
        ({"trait_batch": 0}, "trait_batch must be a positive integer"),
        ({"samples": "all"}, "samples must be one of"),
    ],
)
def test_heritability__options_out_of_range(kw, message):
    _, _, K, P, _ = _sim()
    with pytest.raises(InputError, match=message):
        lmmlite.heritability(K, P, **kw)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"threshold": float("nan")}, "threshold must be a LOD score"),
        ({"chunk_size": 0}, "chunk_size must be a positive integer"),
        ({"mode": "fast"}, "mode must be one of"),
        ({"threads": 0}, "threads must be a positive integer"),
    ],
)
def test_scan__options_out_of_range(kw, message):
    ids, G, K, P, markers = _sim()
    with pytest.raises(InputError, match=message):
        lmmlite.scan(ArraySource(G, ids, markers), P, kinship=K, **kw)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["herit", "--level", "1.5"], "argument --level: it must lie in (0, 1); got 1.5"),
        (["herit", "--level", "nan"], "argument --level"),
        (["herit", "--tol", "2"], "argument --tol"),
        (["herit", "--threads", "0"], "argument --threads: must be at least 1"),
        (["scan", "--bfile", "x", "--threshold", "nan", "--out", "o.tsv"], "--threshold"),
        (["scan", "--bfile", "x", "--pheno-col", "0", "--out", "o.tsv"], "--pheno-col"),
        (["kinship", "--bfile", "x", "--maf", "0.7", "--out", "k.tsv"], "--maf"),
        (["kinship", "--bfile", "x", "--max-missing", "2", "--out", "k.tsv"], "--max-missing"),
        (["demo", "--samples", "0"], "--samples: must be at least 1"),
    ],
)
def test_cli__options_out_of_range_are_usage_errors(capsys, args, message):
    if args[0] == "herit":
        files = recla_files()
        args = [*args, "--kinship", str(files["kinship"]), "--pheno", str(files["pheno"])]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("lmmlite: error:") and message in err


def test_kinship__filters_out_of_range_in_the_api():
    ids, G, _, _, markers = _sim()
    with pytest.raises(InputError, match=r"maf must lie in \[0, 0.5\]; got -0.1"):
        lmmlite.kinship(ArraySource(G, ids, markers), maf=-0.1)


# --- values out of their domain ----------------------------------------------------------------


def test_probabilities__negative_or_not_summing_to_one(tmp_path):
    ids, _, _, _, markers = _sim(m=5)
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(3), size=(len(ids), 5)).transpose(0, 2, 1)
    bad = P.copy()
    bad[3, :, 2] = [0.5, 0.6, 0.2]
    with pytest.raises(FileFormatError, match=r"sample s3 at marker m2 sum to 1.3"):
        ArraySource(bad, ids, markers)
    neg = P.copy()
    neg[4, :, 1] = [1.2, -0.2, 0.0]
    arrays = {"probs": neg, "samples": np.array(ids), "markers": markers["marker"].to_numpy(str)}
    np.savez(tmp_path / "p.npz", **arrays, chr=np.array(["1"] * 5), pos=np.arange(5.0))
    with pytest.raises(FileFormatError, match=r"sample s4 at marker m1 has a value outside"):
        ProbsSource(tmp_path / "p.npz")
    np.save(tmp_path / "p.npy", P)
    with pytest.raises(FileFormatError, match=r"single .npy array"):
        ProbsSource(tmp_path / "p.npy")
    objects = {**arrays, "samples": np.array(ids, dtype=object)}
    np.savez(tmp_path / "o.npz", **objects, chr=np.array(["1"] * 5), pos=np.arange(5.0))
    with pytest.raises(FileFormatError, match=r"holds Python objects"):
        ProbsSource(tmp_path / "o.npz")


def test_bimbam__doses_outside_0_2_and_conflicting_annotation(tmp_path):
    (tmp_path / "g.txt").write_text("rs1, A, T, 0, 1, 2\nrs2, A, T, 0, 2.5, 1\n")
    (tmp_path / "a.txt").write_text("rs1 100 1\nrs2 200 1\n")
    src = BimbamSource(tmp_path / "g.txt", tmp_path / "a.txt")
    with pytest.raises(FileFormatError, match=r"dosage 2.5 of sample 2 at marker rs2"):
        list(src.chunks())
    (tmp_path / "a2.txt").write_text("rs1 100 1\nrs2 200 1\nrs2 300 2\n")
    with pytest.raises(
        FileFormatError, match=r"twice with different positions or chromosomes, e.g. rs2"
    ):
        BimbamSource(tmp_path / "g.txt", tmp_path / "a2.txt")


def test_dosage__out_of_range_text_and_short_lines(tmp_path):
    (tmp_path / "d.csv").write_text("marker,chr,pos,a,b,c\nm1,1,10,0,1,3\n")
    with pytest.raises(FileFormatError, match=r"dosage 3 of sample c at marker m1"):
        list(DosageSource(tmp_path / "d.csv").chunks())
    (tmp_path / "t.csv").write_text("marker,chr,pos,a,b,c\nm1,1,10,0,x,1\n")
    with pytest.raises(FileFormatError, match=r"dose 'x' of sample b at marker m1"):
        list(DosageSource(tmp_path / "t.csv").chunks())
    (tmp_path / "s.csv").write_text("marker,chr,pos,a,b,c\nm1,1,10,0,1,1\nm2,1,20,0\n")
    with pytest.raises(FileFormatError, match=r"line 3 has 4 fields where the others have 6"):
        DosageSource(tmp_path / "s.csv")
    (tmp_path / "u.csv").write_text("marker,chr,pos,a,a,c\nm1,1,10,0,1,1\n")
    with pytest.raises(FileFormatError, match=r"duplicated sample ids: a"):
        DosageSource(tmp_path / "u.csv")


def test_bimbam_phenotype_file_with_an_id_column_is_refused(tmp_path):
    ids = [str(i + 1) for i in range(5)]
    (tmp_path / "p.txt").write_text("".join(f"BXD{i} {0.5 * i}\n" for i in range(5)))
    with pytest.raises(FileFormatError, match=r"column 1 holds text .'BXD0'.*no id column"):
        read_positional(tmp_path / "p.txt", ids, "pheno")
    (tmp_path / "q.txt").write_text("".join(f"{i + 1} {0.5 * i}\n" for i in range(5)))
    with pytest.raises(FileFormatError, match=r"column 1 counts 1, 2, ..., 5"):
        read_positional(tmp_path / "q.txt", ids, "pheno")
    y = read_positional(BXD / "BXD_pheno.txt", [str(i + 1) for i in range(198)], "pheno")
    assert y.shape == (198, 1) and y["pheno1"].notna().sum() == 67


def test_tables__duplicated_columns_semicolons_bom_and_trailing_separators(tmp_path):
    (tmp_path / "d.csv").write_text("id,a,a\n1,2,3\n")
    with pytest.raises(FileFormatError, match=r"duplicated column names: a"):
        read_table(tmp_path / "d.csv")
    (tmp_path / "s.csv").write_text("id;a;b\n1;2,5;3\n")
    with pytest.raises(FileFormatError, match=r"looks semicolon-delimited"):
        read_table(tmp_path / "s.csv")
    (tmp_path / "b.csv").write_bytes("\ufeffid,a\n1,2\n2,3\n".encode())
    assert list(read_table(tmp_path / "b.csv").columns) == ["a"]
    (tmp_path / "t.csv").write_text("id,a,b,\n1,2,3,\n2,4,5,\n")
    with pytest.warns(FileFormatWarning, match=r"ends with a separator"):
        assert list(read_table(tmp_path / "t.csv").columns) == ["a", "b"]
    (tmp_path / "l.csv").write_bytes("id,a\nj\xf6,2\n".encode("latin-1"))
    with pytest.raises(FileFormatError, match=r"is not UTF-8 text"):
        read_table(tmp_path / "l.csv")


def test_kinship_file__bom_bare_matrix_and_npy(tmp_path):
    path = tmp_path / "K.txt"
    text = gzip.decompress((BXD / "BXD.cXX.txt.gz").read_bytes())
    path.write_bytes(b"\xef\xbb\xbf" + text)  # a UTF-8 byte-order mark, as Windows tools add
    ids = [str(i + 1) for i in range(198)]
    K = read_kinship(path, ids)
    want = np.loadtxt(BXD / "BXD.cXX.txt.gz")
    np.testing.assert_array_equal(K.to_numpy(), want)
    with pytest.raises(FileFormatError, match=r"without sample ids"):
        read_kinship(path)
    np.save(tmp_path / "K.npy", K.to_numpy())
    with pytest.raises(FileFormatError, match=r".npy array without sample ids"):
        read_kinship(tmp_path / "K.npy")


# --- scale, codes, ids ------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e12, 1e-12])
def test_covariate_rank__does_not_depend_on_units(scale):
    ids, _, K, P, _ = _sim()
    sex = (np.arange(len(ids)) % 2).astype(float)
    C = pd.DataFrame({"sex": sex * scale}, index=ids)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        a = lmmlite.heritability(K, P, C)
        b = lmmlite.heritability(K, P, pd.DataFrame({"sex": sex}, index=ids))
    assert a["hsq"].iloc[0] == pytest.approx(b["hsq"].iloc[0], abs=1e-6)
    with pytest.raises(CovariateError, match=r"collinear.*centre it"):
        lmmlite.heritability(K, P, pd.DataFrame({"sex": sex + 1e12}, index=ids))


def test_minus_nine__warned_about_or_declared_missing(tmp_path):
    _, _, K, P, _ = _sim()
    P = P.copy()
    P.iloc[:4, 0] = -9.0
    with pytest.warns(DataWarning, match=r"value -9 in several samples: y \(4 samples\)"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
            lmmlite.heritability(K, P)
    P.to_csv(tmp_path / "p.csv")
    read = read_table(tmp_path / "p.csv", missing=["-9"])
    assert read["y"].isna().sum() == 4


def test_scan__plain_array_as_genotypes_is_refused():
    _, G, K, P, _ = _sim()
    with pytest.raises(InputError, match=r"ArraySource.*got ndarray"):
        lmmlite.scan(G, P, kinship=K)


def test_intersection__names_the_dropped_ids_in_api_and_cli(tmp_path, capsys):
    files = recla_files()
    K = read_table(files["kinship"])
    keep = K.index[3:]
    K.loc[keep, keep].to_csv(tmp_path / "k.csv")
    args = ["herit", "--kinship", str(tmp_path / "k.csv"), "--pheno", str(files["pheno"])]
    assert main([*args, "--samples", "intersection", "--covar", str(files["covar"])]) == 0
    err = capsys.readouterr().err
    dropped = ", ".join(K.index[:3])
    assert f"3 phenotyped sample(s) left out (3 not in the kinship): {dropped}" in err
    with pytest.warns(SamplesDroppedWarning, match=dropped):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
            lmmlite.heritability(
                K.loc[keep, keep], read_table(files["pheno"]), samples="intersection"
            )


def test_all_missing_snp__no_foreign_warning(tmp_path):
    ids, G, K, P, markers = _sim()
    G = G.copy()
    G[:, 4] = np.nan
    src = ArraySource(G, ids, markers)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a NumPy RuntimeWarning would fail here
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        out = lmmlite.scan(src, P, kinship=K)
        lmmlite.kinship(src)
    assert out.loc[out["marker"] == "m4", "note"].eq("monomorphic").all()


def test_plot__p_value_out_of_range_and_underflow(tmp_path):
    pytest.importorskip("matplotlib")
    from lmmlite.plot import plot_scan

    t = pd.DataFrame(
        {"trait": "y", "chr": "1", "pos": [1, 2, 3], "marker": ["a", "b", "c"],
         "p_wald": [0.5, 0.0, 0.01]}
    )  # fmt: skip
    with pytest.warns(DataWarning, match=r"1 p-value.*underflowed to 0"):
        plot_scan(t, tmp_path / "m.png")
    t.loc[0, "p_wald"] = 1.5
    with pytest.raises(InputError, match=r"outside \[0, 1\].*not p-values"):
        plot_scan(t, tmp_path / "m.png")


def test_cli__scan_table_without_its_columns(tmp_path, capsys):
    (tmp_path / "s.csv").write_text("a\tb\n1\t2\n")
    assert main(["plot", "qq", "--scan", str(tmp_path / "s.csv"), "--out", "q.png"]) == 2
    assert "does not look comma-separated" in capsys.readouterr().err
    (tmp_path / "s.tsv").write_text("a\tb\n1\t2\n")
    out = str(tmp_path / "q.png")
    assert main(["plot", "qq", "--scan", str(tmp_path / "s.tsv"), "--out", out]) == 2
    assert "lacks the column(s) trait, chr, pos, marker" in capsys.readouterr().err
