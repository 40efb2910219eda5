"""Bad input gets a clear error naming the problem and the offending values."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import lmmlite
from lmmlite import (
    CovariateError,
    InputError,
    KinshipError,
    PhenotypeError,
    SampleMismatchError,
)


def _frames(small_problem):
    K, Y, X = small_problem
    ids = [f"id{i:02d}" for i in range(K.shape[0])]
    Kdf = pd.DataFrame(K, index=ids, columns=ids)
    Pdf = pd.DataFrame(Y, index=ids, columns=["a", "b"])
    Cdf = pd.DataFrame({"x": X[:, 1]}, index=ids)
    return Kdf, Pdf, Cdf


def _herit(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        return lmmlite.heritability(*args, **kw)


# --- sample ids ------------------------------------------------------------------------------


def test_heritability__pheno_id_missing_from_kinship_is_listed(small_problem):
    K, P, C = _frames(small_problem)
    with pytest.raises(SampleMismatchError, match=r"not in the kinship \(id03, id07\)"):
        _herit(K.drop(index=["id03", "id07"], columns=["id03", "id07"]), P, C)


def test_heritability__pheno_id_missing_from_covariates_is_listed(small_problem):
    K, P, C = _frames(small_problem)
    with pytest.raises(SampleMismatchError, match=r"not in the covariates \(id05\)"):
        _herit(K, P, C.drop(index="id05"))


def test_heritability__intersection_drops_and_reports(small_problem):
    K, P, C = _frames(small_problem)
    with pytest.warns(lmmlite.SamplesDroppedWarning, match="1 not in the kinship.*id05"):
        got = _herit(K.drop(index="id05", columns="id05"), P, C, samples="intersection")
    assert got.attrs["dropped_samples"] == ["id05"]
    want = _herit(K, P.drop(index="id05"), C)
    pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize("which", ["pheno", "kinship", "covar"])
def test_heritability__duplicated_ids_are_listed(small_problem, which):
    K, P, C = _frames(small_problem)
    if which == "pheno":
        P = pd.concat([P, P.iloc[[4]]])
    elif which == "covar":
        C = pd.concat([C, C.iloc[[4]]])
    else:
        K = pd.concat([K, K.iloc[[4]]])
    with pytest.raises(SampleMismatchError, match="duplicated sample ids: id04"):
        _herit(K, P, C)


def test_heritability__kinship_rows_and_columns_must_match(small_problem):
    K, P, C = _frames(small_problem)
    K = K.rename(columns={"id02": "zz"})
    with pytest.raises(SampleMismatchError, match="rows only id02; columns only zz"):
        _herit(K, P, C)


def test_heritability__row_order_of_inputs_does_not_matter(small_problem):
    K, P, C = _frames(small_problem)
    ref = _herit(K, P, C, tol=1e-8)
    rng = np.random.default_rng(3)
    n = len(K)
    got = _herit(
        K.iloc[rng.permutation(n), rng.permutation(n)],
        P.iloc[rng.permutation(n)],
        C.iloc[rng.permutation(n)],
        tol=1e-8,
    )
    # another sample order rounds the eigendecomposition differently, so Brent (tol 1e-8) may
    # stop ~1e-8 away: hsq and the interval ends absolutely, effects in units of sqrt(sigmasq)
    # (the covariates here are of unit scale: an effect's se is of that order), statistics
    # that may be near zero absolutely, the rest relatively
    np.testing.assert_allclose(got["hsq"], ref["hsq"], atol=1e-6)
    scale = np.sqrt(ref["sigmasq"].to_numpy())
    for col in [c for c in ref.columns if c.startswith("beta_")]:
        assert np.all(np.abs(got[col] - ref[col]).to_numpy() <= 1e-6 * scale), col
    for col in ("hsq_ci_lower", "hsq_ci_upper", "lrt_stat"):
        np.testing.assert_allclose(got[col], ref[col], rtol=1e-6, atol=1e-6, err_msg=col)
    rest = ["hsq", "hsq_ci_lower", "hsq_ci_upper", "lrt_stat", "n_eval"]  # n_eval: the path
    rest += [c for c in ref.columns if c.startswith("beta_")]
    pd.testing.assert_frame_equal(got.drop(columns=rest), ref.drop(columns=rest), rtol=1e-6)


def test_heritability__intercept_added_only_without_a_constant_column(small_problem):
    K, P, C = _frames(small_problem)
    assert "beta_intercept" in _herit(K, P, C).columns
    C2 = C.assign(const=1.0)
    out = _herit(K, P, C2)
    assert "beta_intercept" not in out.columns and "beta_const" in out.columns


# --- kinship ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_eigen_rotation__non_finite_kinship(small_problem, bad):
    K, Y, X = small_problem
    K = K.copy()
    K[3, 5] = K[5, 3] = bad
    with pytest.raises(KinshipError, match=r"NaN or infinite value\(s\), e.g. at index \(3, 5\)"):
        lmmlite.eigen_rotation(K, Y, X)


def test_heritability__non_finite_kinship_names_samples(small_problem):
    K, P, C = _frames(small_problem)
    K.loc["id01", "id02"] = np.nan
    with pytest.raises(KinshipError, match=r"\(id01, id02\)"):
        _herit(K, P, C)


def test_eigen_rotation__non_square_kinship(small_problem):
    K, Y, X = small_problem
    with pytest.raises(KinshipError, match=r"square; got shape \(40, 39\)"):
        lmmlite.eigen_rotation(K[:, :-1], Y, X)


def test_eigen_rotation__non_symmetric_kinship(small_problem):
    K, Y, X = small_problem
    K = K.copy()
    K[0, 1] += 0.01
    with pytest.raises(KinshipError, match=r"not symmetric: K\[0, 1\]"):
        lmmlite.eigen_rotation(K, Y, X)


@pytest.mark.parametrize("n", [1, 5, 127, 128, 129, 300])  # one block, several, a short one
def test_kinship_checks__blocked_helpers_equal_the_dense_formulas(n):
    from lmmlite.core import checks

    K = np.random.default_rng(n).standard_normal((n, n))
    assert checks.max_asymmetry(K) == np.max(np.abs(K - K.T))
    np.testing.assert_array_equal(checks.symmetrised(K), (K + K.T) * 0.5)
    assert checks.max_asymmetry(checks.symmetrised(K)) == 0.0
    assert checks.max_abs(K) == np.max(np.abs(K))


@pytest.mark.parametrize(("i", "j"), [(250, 3), (3, 250), (130, 129)])
def test_kinship_frame__asymmetry_anywhere_is_found_and_named(i, j):
    from lmmlite.alignment import kinship_frame

    n = 300
    A = np.random.default_rng(1).standard_normal((n, 40))
    ids = [f"s{k}" for k in range(n)]
    K = pd.DataFrame(A @ A.T / 40, index=ids, columns=ids)
    kinship_frame(K)  # symmetric: accepted
    K.iloc[i, j] += 1e-3
    a, b = sorted((i, j))  # the pair is named in row-major order
    with pytest.raises(KinshipError, match=rf"not symmetric: K\[s{a}, s{b}\]"):
        kinship_frame(K)


def test_eigen_rotation__clearly_negative_eigenvalues(small_problem):
    K, Y, X = small_problem
    with pytest.raises(KinshipError, match="not positive semidefinite"):
        lmmlite.eigen_rotation(K - 0.5 * np.eye(K.shape[0]), Y, X)


def test_eigen_rotation__rounding_negative_eigenvalues_are_clipped(small_problem):
    _K, Y, X = small_problem
    rng = np.random.default_rng(1)
    G = rng.standard_normal((40, 10))
    Klow = G @ G.T / 10 - 1e-12 * np.eye(40)  # rank 10: 30 eigenvalues of -1e-12
    e = lmmlite.eigen_rotation(Klow, Y, X)
    assert e.n_clipped > 0
    assert np.all(e.Kva >= 0)
    assert np.all(np.diff(e.Kva) <= 0)  # decreasing, as R's eigen


# --- covariates, phenotypes ------------------------------------------------------------------


def test_fit_lmm__collinear_covariates_are_named(small_problem):
    K, Y, X = small_problem
    e = lmmlite.eigen_rotation(K, Y, X)
    Xc = np.column_stack([e.X, 2 * e.X[:, 1]])
    with pytest.raises(
        CovariateError, match="rank 2; linearly dependent columns: column 1, column 2"
    ):
        lmmlite.fit_lmm(e.Kva, e.y, Xc)
    with pytest.raises(CovariateError, match="collinear"):
        lmmlite.eigen_rotation(K, Y, np.column_stack([X, X[:, 1] + 1.0]))


def test_heritability__collinear_covariates_are_named(small_problem):
    K, P, C = _frames(small_problem)
    with pytest.raises(CovariateError, match="x, x2"):
        _herit(K, P, C.assign(x2=C["x"] * 3))


def test_heritability__missing_covariate_names_sample(small_problem):
    K, P, C = _frames(small_problem)
    C.loc["id09", "x"] = np.nan
    with pytest.raises(CovariateError, match=r"missing values for 1 sample.*id09"):
        _herit(K, P, C)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_fit_lmm__non_finite_y_or_X(small_problem, bad):
    K, Y, X = small_problem
    e = lmmlite.eigen_rotation(K, Y, X)
    y = e.y.copy()
    y[4, 1] = bad
    with pytest.raises(PhenotypeError, match=r"y has 1 NaN or infinite.*\(4, 1\)"):
        lmmlite.fit_lmm(e.Kva, y, e.X)
    Xb = e.X.copy()
    Xb[2, 0] = bad
    with pytest.raises(CovariateError, match="covariate matrix X has 1 NaN or infinite"):
        lmmlite.fit_lmm(e.Kva, e.y, Xb)


def test_heritability__infinite_phenotype_is_named(small_problem):
    K, P, C = _frames(small_problem)
    P.loc["id01", "b"] = np.inf
    with pytest.raises(PhenotypeError, match=r"infinite values in column.*b"):
        _herit(K, P, C)


def test_fit_lmm__constant_phenotype(small_problem):
    K, Y, X = small_problem
    Y = Y.copy()
    Y[:, 1] = 7.0
    e = lmmlite.eigen_rotation(K, Y, X)
    with pytest.raises(PhenotypeError, match=r"constant.*column 1"):
        lmmlite.fit_lmm(e.Kva, e.y, e.X)


def test_heritability__constant_phenotype_is_named(small_problem):
    K, P, C = _frames(small_problem)
    P["b"] = 3.0
    with pytest.raises(PhenotypeError, match=r"constant.*: b"):
        _herit(K, P, C)


def test_fit_lmm__n_not_greater_than_p(small_problem):
    K, Y, _X = small_problem
    Xw = np.random.default_rng(0).standard_normal((40, 40))
    with pytest.raises(CovariateError, match="n = 40 samples and p = 40"):
        lmmlite.eigen_rotation(K, Y, Xw)


def test_heritability__too_few_observed_values(small_problem):
    K, P, C = _frames(small_problem)
    P.iloc[3:, 1] = np.nan  # trait b: 3 observations for 2 covariates: one residual df
    with pytest.raises(PhenotypeError, match=r"b have n = 3 observed samples; need at least 4"):
        _herit(K, P, C)


def test_heritability__non_numeric_column_is_named(small_problem):
    K, P, C = _frames(small_problem)
    P = P.astype(object)
    P.loc["id03", "a"] = "tall"
    with pytest.raises(PhenotypeError, match=r"non-numeric column.*a.*'tall' for sample id03"):
        _herit(K, P, C)


def test_heritability__empty_pheno(small_problem):
    K, P, C = _frames(small_problem)
    with pytest.raises(PhenotypeError, match="empty"):
        _herit(K, P.iloc[:, :0], C)


# --- options -----------------------------------------------------------------------------------


def test_calc_ll__hsq_outside_unit_interval(small_problem):
    K, Y, X = small_problem
    e = lmmlite.eigen_rotation(K, Y, X)
    with pytest.raises(InputError, match=r"\[0, 1\]; got 1.5"):
        lmmlite.calc_ll([0.2, 1.5], e.Kva, e.y, e.X)


@pytest.mark.parametrize("tol", [0.0, -1e-4, np.nan, 0.5, 2.0])
def test_fit_lmm__invalid_tol(small_problem, tol):
    K, Y, X = small_problem
    e = lmmlite.eigen_rotation(K, Y, X)
    with pytest.raises(InputError, match=r"tol must lie strictly between 0 and 0.5.*got"):
        lmmlite.fit_lmm(e.Kva, e.y, e.X, tol=tol)


def test_fit_lmm__unknown_engine(small_problem):
    K, Y, X = small_problem
    e = lmmlite.eigen_rotation(K, Y, X)
    with pytest.raises(InputError, match="engine must be 'fast' or 'reference'; got 'gpu'"):
        lmmlite.fit_lmm(e.Kva, e.y, e.X, engine="gpu")


def test_fit_lmm__mismatched_lengths(small_problem):
    K, Y, X = small_problem
    e = lmmlite.eigen_rotation(K, Y, X)
    with pytest.raises(InputError, match="y has 39 rows but there are 40 eigenvalues"):
        lmmlite.fit_lmm(e.Kva, e.y[:-1], e.X)


def test_errors_are_value_errors():
    assert issubclass(SampleMismatchError, ValueError)
    assert issubclass(KinshipError, lmmlite.LmmliteError)


def test_schemas__declared_columns_are_the_produced_ones(small_problem):
    """One schema per result kind (lmmlite.results): the tables have exactly those columns."""
    from lmmlite.io.genotypes import ArraySource

    K, P, C = _frames(small_problem)
    h = _herit(K, P, C)
    covs = [f"beta_{c}" for c in ("intercept", *C.columns)]
    assert list(h.columns) == [*lmmlite.HERITABILITY_COLUMNS, *covs]
    e = lmmlite.eigen_rotation(K.to_numpy(), P.to_numpy(), np.column_stack([np.ones(len(C)), C]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
        fit = lmmlite.fit_lmm(e.Kva, e.y, e.X)
    table = lmmlite.fit_table(fit, traits=list(P.columns), covariates=["intercept", *C.columns])
    assert list(table.columns) == list(h.columns)
    np.testing.assert_allclose(table["hsq"], _herit(K, P, C)["hsq"], atol=1e-4)
    rng = np.random.default_rng(0)
    ids = list(K.index)
    markers = pd.DataFrame({"marker": ["a", "b", "c"], "chr": "1", "pos": [1, 2, 3]})
    for k in (1, 3):
        G = rng.binomial(2, 0.4, (len(ids), 3)).astype(float)
        if k == 3:
            G = rng.dirichlet(np.ones(3), size=(len(ids), 3)).transpose(0, 2, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lmmlite.BoundaryWarning)
            s = lmmlite.scan(ArraySource(G, ids, markers), P, C, kinship=K)
        extra = [] if k == 1 else ["beta_2", "se_2", "beta_3", "se_3"]
        assert list(s.columns) == [*lmmlite.SCAN_COLUMNS, *extra]
