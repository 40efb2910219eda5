"""Tables on disk, atomic writes, the recla loader and the simulator."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lmmlite
from conftest import RECLA
from lmmlite.datasets import RECLA_SHA256, load_recla, simulate
from lmmlite.exceptions import FileFormatError, InputError
from lmmlite.io.tables import atomic_write, read_table, write_table


@pytest.mark.parametrize(("name", "sep"), [("t.csv", ","), ("t.tsv", "\t"), ("t.txt", "\t")])
def test_read_table__separator_by_extension_ids_as_strings(tmp_path, name, sep):
    (tmp_path / name).write_text(
        sep.join(["id", "a", "b"])
        + "\n"
        + sep.join(["007", "1.5", "NA"])
        + "\n"
        + sep.join(["8", "2", "3"])
        + "\n"
    )
    df = read_table(tmp_path / name)
    assert list(df.index) == ["007", "8"]
    assert np.isnan(df.loc["007", "b"]) and df.loc["8", "a"] == 2.0


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ("", "e.csv", "is empty"),
        ("id,a\n", "h.csv", "has no data"),
        ("id,a\nx,1\nx,2\n", "d.csv", "duplicated sample ids: x"),
        ("id,a\nx,1\n", "t.xls", "cannot tell the format"),
    ],
)
def test_read_table__bad_files(tmp_path, content, name, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(FileFormatError, match=message):
        read_table(tmp_path / name)


def test_read_table__missing_file(tmp_path):
    with pytest.raises(FileFormatError, match="does not exist"):
        read_table(tmp_path / "nope.csv")


@pytest.mark.parametrize("name", ["o.csv", "o.tsv", "o.csv.gz"])
def test_write_table__round_trip(tmp_path, name):
    df = pd.DataFrame(
        {"x": [1.25, np.nan], "y": [1e-300, 3.0]}, index=pd.Index(["a", "b"], name="id")
    )
    write_table(df, tmp_path / name)
    back = read_table(tmp_path / name)
    pd.testing.assert_frame_equal(back, df, check_names=False)


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)
_FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 1e16, 1e-5, 5e-324, 0.1, 1 / 3, 123456789012345680.0]
)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(0, 8),
    data=st.data(),
    sep=st.sampled_from([",", "\t"]),
    index=st.booleans(),
    strings=st.sampled_from(["object", "str"]),
)
def test_csv_text__equals_pandas_to_csv(rows, data, sep, index, strings):
    """write_table formats tables itself (twice as fast): the text must be pandas' to_csv's,
    character for character, or None (pandas then writes it): floats by their shortest
    repr, NaN as NA, integers, booleans, strings (NA for missing ones), index or not, and
    fields that would need quoting."""
    from lmmlite.io.tables import csv_text

    cols = {
        "f": data.draw(st.lists(_FLOATS, min_size=rows, max_size=rows)),
        "i": data.draw(st.lists(st.integers(-(2**62), 2**62), min_size=rows, max_size=rows)),
        "b": data.draw(st.lists(st.booleans(), min_size=rows, max_size=rows)),
        "s": data.draw(st.lists(_TEXT | st.none(), min_size=rows, max_size=rows)),
    }
    df = pd.DataFrame(cols).astype({"f": float, "i": np.int64, "b": bool, "s": strings})
    df.index = pd.Index(data.draw(st.lists(_TEXT, min_size=rows, max_size=rows)), name="id")
    got = csv_text(df, sep, index=index)
    want = df.to_csv(sep=sep, na_rep="NA", index=index)
    if got is None:  # only where a field needs quoting
        fields = [*df["s"].dropna(), *df.index] if index else list(df["s"].dropna())
        assert any(sep in v or '"' in v or "\n" in v or "\r" in v for v in fields)
    else:
        assert got == want
    one = df[["s"]]  # one field a row: pandas quotes an empty string there
    assert csv_text(one, sep, index=False) in (None, one.to_csv(sep=sep, na_rep="NA", index=False))


def test_atomic_write__failure_keeps_old_content_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")

    def broken(tmp: str) -> None:
        with open(tmp, "w") as fh:
            fh.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_load_recla__csv_folder_equals_rdata():
    K1, P1, C1 = load_recla(RECLA)
    K2, P2, C2 = load_recla(RECLA / "recla.RData")
    assert K1.shape == (261, 261) and P1.shape == (261, 26) and C1.shape == (261, 2)
    for a, b in ((K1, K2), (P1, P2), (C1, C2)):
        np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
        assert list(a.index) == list(b.index)


def test_load_recla__downloads_once_into_cache_with_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMLITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LMMLITE_RECLA", raising=False)
    K, _, _ = load_recla(url=(RECLA / "recla.RData").as_uri())
    cached = tmp_path / "cache" / "recla.RData"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == RECLA_SHA256
    # second call: served from the cache, the URL is not used
    K2, _, _ = load_recla(url=(tmp_path / "does-not-exist").as_uri())
    np.testing.assert_array_equal(K.to_numpy(), K2.to_numpy())


def test_load_recla__corrupted_download_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMLITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LMMLITE_RECLA", raising=False)
    bad = tmp_path / "bad.RData"
    bad.write_bytes(b"not the data")
    with pytest.raises(FileFormatError, match="SHA-256"):
        load_recla(url=bad.as_uri())
    assert not list((tmp_path / "cache").iterdir())


def test_simulate__deterministic_and_shaped():
    a = simulate(n_samples=60, n_traits=5, n_markers=50, missing_rate=0.1, seed=4)
    b = simulate(n_samples=60, n_traits=5, n_markers=50, missing_rate=0.1, seed=4)
    c = simulate(n_samples=60, n_traits=5, n_markers=50, missing_rate=0.1, seed=5)
    pd.testing.assert_frame_equal(a.pheno, b.pheno)
    assert not a.pheno.equals(c.pheno)
    assert a.kinship.shape == (60, 60) and a.genotypes.shape == (60, 50)
    assert list(a.kinship.index) == list(a.pheno.index) == list(a.covar.index)
    assert int(a.pheno.isna().sum().sum()) == 5 * 6  # 10% of 60 samples in each trait
    assert a.pheno.notna().T.drop_duplicates().shape[0] == 3  # three missing-data patterns


@pytest.mark.parametrize(
    "kw", [{"n_samples": 0}, {"fst": 1.5}, {"missing_rate": 1.0}, {"hsq": 1.2}]
)
def test_simulate__bad_arguments(kw):
    with pytest.raises(InputError):
        simulate(**kw)


def test_simulate__heritability_is_recovered_on_average():
    # 30 traits at hsq = 0.5 with n = 1000: each estimate has SE ~ 0.1, so the mean of 30 has
    # SE ~ 0.02; a 0.1 window is 5 SE wide (and the seed is fixed)
    sim = simulate(n_samples=1000, n_traits=30, hsq=0.5, missing_rate=0.0, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        out = lmmlite.heritability(sim.kinship, sim.pheno, sim.covar)
    assert abs(out["hsq"].mean() - 0.5) < 0.1
