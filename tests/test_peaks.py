"""Peaks and their intervals (R/qtl2's find_peaks, lod_int, bayes_int), their command and the
pictures: golden values from R/qtl2 0.43-5, naive versions of the rules written here from
their definitions, invariants checked with Hypothesis, and bad input.

The R setup (tests/data/README.md) is::

    library(qtl2)
    iron <- read_cross2(system.file("extdata", "iron.zip", package="qtl2"))
    pr <- calc_genoprob(iron, iron$gmap, error_prob=0.002)
    sex <- (iron$covar$sex == "m")*1; names(sex) <- rownames(iron$covar)
    Xcovar <- get_x_covar(iron); K_loco <- calc_kinship(pr, "loco")
    out <- scan1(pr, iron$pheno, kinship=K_loco, addcovar=sex, Xcovar=Xcovar)
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import lmmlite
from conftest import DATA
from lmmlite.cli import main
from lmmlite.exceptions import FileFormatError, InputError
from lmmlite.io.phenotypes import read_perm_table
from lmmlite.peaks import PEAK_COLUMNS, find_peaks, peak_thresholds

Q2 = DATA / "qtl2"
#: Averaged positions (ties): R's mean() and NumPy's may round the last bit differently.
POS_ATOL = 1e-12
#: LODs are copied from the scan, never computed: equal to rounding (they are equal).
LOD_ATOL = 1e-12
#: Thresholds: the same type-7 quantile of the same maxima as R's quantile().
THRESHOLD_ATOL = 1e-12
PNG = b"\x89PNG\r\n\x1a\n"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- R/qtl2's outputs -----------------------------------------------------------------------


def _iron_scan(name: str = "loco_sex_Xcovar") -> pd.DataFrame:
    """R/qtl2's LOCO scan ``out`` as an lmmlite scan table (liver, then spleen)."""
    lods = pd.read_csv(Q2 / "iron_scan1_lod.csv.gz", dtype={"chr": str, "marker": str})
    labels = lods[["chr", "pos", "marker"]]
    parts = [
        labels.assign(trait=trait, lod=lods[f"{name}.{trait}"]) for trait in ("liver", "spleen")
    ]
    return pd.concat(parts, ignore_index=True)[["trait", "chr", "pos", "marker", "lod"]]


def _pseudomarker_scan() -> pd.DataFrame:
    """``scan1(pr16, pheno, kinship=K_loco["16"], addcovar=sex)``, pseudomarkers every cM."""
    s = pd.read_csv(Q2 / "iron_scan1_chr16_pseudomarkers_step1_loco_sex.csv", dtype={"chr": str})
    return pd.DataFrame(
        {"trait": "liver", "chr": s["chr"], "pos": s["pos_cM"], "marker": s["marker"],
         "lod": s["liver"]}
    )  # fmt: skip


def _assert_same_peaks(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    assert list(ours["trait"]) == list(ref["lodcolumn"])
    assert list(ours["chr"]) == list(ref["chr"].astype(str))
    np.testing.assert_allclose(ours["pos"], ref["pos"], rtol=0, atol=POS_ATOL)
    np.testing.assert_allclose(ours["lod"], ref["lod"], rtol=0, atol=LOD_ATOL)
    if "ci_lo" in ref.columns:  # interval ends are positions of the map: exactly equal
        np.testing.assert_array_equal(ours["ci_lo"], ref["ci_lo"])
        np.testing.assert_array_equal(ours["ci_hi"], ref["ci_hi"])


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        # find_peaks(out, iron$gmap, threshold=3)
        ({}, "iron_peaks_loco_thr3.csv"),
        # find_peaks(out, iron$gmap, threshold=3, drop=1.5)
        ({"drop": 1.5, "expand_to_markers": True}, "iron_peaks_loco_thr3_drop1.5.csv"),
        # ... expand2markers=FALSE
        ({"drop": 1.5}, "iron_peaks_loco_thr3_drop1.5_noexpand.csv"),
        # find_peaks(out, iron$gmap, threshold=3, prob=0.95)
        ({"prob": 0.95, "expand_to_markers": True}, "iron_peaks_loco_thr3_prob0.95.csv"),
        ({"prob": 0.95}, "iron_peaks_loco_thr3_prob0.95_noexpand.csv"),
        # find_peaks(out, iron$gmap, threshold=3, peakdrop=1.8, drop=1.5)
        ({"peakdrop": 1.8, "drop": 1.5, "expand_to_markers": True},
         "iron_peaks_loco_thr3_peakdrop1.8_drop1.5.csv"),
    ],
)  # fmt: skip
def test_find_peaks__equals_qtl2_on_iron(kw, name):
    ref = pd.read_csv(Q2 / name, dtype={"chr": str})
    ours = find_peaks(_iron_scan(), threshold=3, **kw)
    _assert_same_peaks(ours, ref)
    expected = list(PEAK_COLUMNS[:9]) if "ci_lo" in ref.columns else list(PEAK_COLUMNS[:5])
    assert list(ours.columns) == expected


@pytest.mark.parametrize("expand", [True, False])
@pytest.mark.parametrize(
    ("scan", "stem"),
    [
        # lod_int(out, iron$gmap, chr="16", lodcolumn=1, drop=1.5, expand2markers=)
        # bayes_int(out, iron$gmap, chr="16", lodcolumn=1, prob=0.95, expand2markers=)
        ("markers", "iron_{kind}_loco_chr16_liver"),
        # map16 <- insert_pseudomarkers(iron$gmap["16"], step=1); the same on
        # scan1(calc_genoprob(iron[,"16"], map16, error_prob=0.002), pheno, K_loco["16"], sex)
        ("pseudomarkers", "iron_{kind}_chr16_pseudomarkers_liver"),
    ],
)
@pytest.mark.parametrize(
    ("kind", "kw", "suffix"),
    [("lod_int", {"drop": 1.5}, "drop1.5"), ("bayes_int", {"prob": 0.95}, "prob0.95")],
)
def test_lod_int_and_bayes_int__equal_qtl2_on_chromosome_16(scan, stem, expand, kind, kw, suffix):
    table = _iron_scan() if scan == "markers" else _pseudomarker_scan()
    table = table[(table["trait"] == "liver") & (table["chr"] == "16")]
    name = f"{stem.format(kind=kind)}_{suffix}_{'expand' if expand else 'noexpand'}.csv"
    ref = pd.read_csv(Q2 / name)
    # lod_int and bayes_int have threshold=0
    ours = find_peaks(table, threshold=0, expand_to_markers=expand, **kw)
    assert len(ours) == len(ref) == 1
    np.testing.assert_allclose(ours["pos"], ref["pos"], rtol=0, atol=POS_ATOL)
    np.testing.assert_array_equal(ours[["ci_lo", "ci_hi"]], ref[["ci_lo", "ci_hi"]])
    if scan == "pseudomarkers":  # where expand2markers matters
        is_marker = ~ours[["ci_lo_marker", "ci_hi_marker"]].apply(
            lambda c: c.str.match(r"^c.+\.loc-*[0-9]+(\.[0-9]+)*$")
        )
        assert is_marker.to_numpy().all() == expand


def _iron_perm() -> tuple[pd.DataFrame, pd.DataFrame]:
    """R/qtl2's permutation maxima of liver as an lmmlite permutation table (A and X apart),
    and ``summary(operm, alpha=c(0.01, 0.05, 0.1, 0.2, 0.63))``::

        set.seed(20260701)
        operm <- scan1perm(pr, iron$pheno[,"liver",drop=FALSE], kinship=K_loco,
                           addcovar=sex, Xcovar=Xcovar, n_perm=1000, perm_Xsp=TRUE,
                           chr_lengths=chr_lengths(iron$gmap), cores=1)
    """
    summary = pd.read_csv(Q2 / "iron_perm_loco_Xsp_summary.csv")
    parts = []
    for region, length in (("A", summary["L_A"].iat[0]), ("X", summary["L_X"].iat[0])):
        m = pd.read_csv(Q2 / f"iron_perm_loco_Xsp_{region}.csv.gz", index_col=0)
        parts.append(
            pd.DataFrame({"trait": "liver", "perm": m["perm"], "max_lod": m["liver"],
                          "region": region, "length": length})
        )  # fmt: skip
    return pd.concat(parts, ignore_index=True), summary


def test_find_peaks__permutation_thresholds_equal_qtl2_summary():
    perm, summary = _iron_perm()
    scan = _iron_scan()
    scan = scan[scan["trait"] == "liver"]
    for alpha, a, x in summary[["alpha", "A", "X"]].itertuples(index=False):
        t = peak_thresholds(["liver"], perm=perm, alpha=alpha)["liver"]
        assert t["A"] == pytest.approx(a, abs=THRESHOLD_ATOL)
        assert t["X"] == pytest.approx(x, abs=THRESHOLD_ATOL)
    ours = find_peaks(scan, perm=perm, alpha=0.05, drop=1.5)
    a05 = summary.loc[np.isclose(summary["alpha"], 0.05), "A"].iat[0]
    np.testing.assert_allclose(ours["threshold"], a05, rtol=0, atol=THRESHOLD_ATOL)
    # every R/qtl2 peak exceeds the 5% threshold (3.16) except none: all five kept
    assert list(ours["chr"]) == ["2", "7", "8", "13", "16"]
    assert list(ours.columns[-2:]) == ["threshold", "p_genome"]
    # p_genome: the autosomal maxima's tail, scaled to the genome (L_A / (L_A + L_X))
    a_max = perm.loc[perm["region"] == "A", "max_lod"].to_numpy()
    share = summary["L_A"].iat[0] / (summary["L_A"].iat[0] + summary["L_X"].iat[0])
    for lod, p in ours[["lod", "p_genome"]].itertuples(index=False):
        p_a = (1 + np.sum(a_max >= lod)) / (1 + a_max.size)
        assert p == pytest.approx(1 - (1 - p_a) ** (1 / share), rel=1e-12)


def test_find_peaks__perm_without_alpha_adds_p_genome_with_the_given_threshold():
    perm, _ = _iron_perm()
    scan = _iron_scan()
    scan = scan[scan["trait"] == "liver"]
    ours = find_peaks(scan, perm=perm, threshold=4.5, threshold_x=1.0)
    assert list(ours["chr"]) == ["2", "7", "8", "16", "X"]
    assert list(ours["threshold"]) == [4.5, 4.5, 4.5, 4.5, 1.0]
    assert ours["p_genome"].between(0, 1).all()
    assert ours["p_genome"].iat[-1] > 0.5  # the X peak (LOD 2.2) is nothing genome-wide


def test_find_peaks__x_chromosome_settings():
    scan = _iron_scan()
    x_max = scan.loc[(scan["chr"] == "X"), ["trait", "lod"]].groupby("trait")["lod"].max()
    ours = find_peaks(scan, threshold=3, threshold_x=0.0, drop=1.5, drop_x=0.5)
    on_x = ours[ours["chr"] == "X"]
    assert list(on_x["trait"]) == ["liver", "spleen"]
    np.testing.assert_array_equal(on_x["lod"], x_max.loc[["liver", "spleen"]])
    # without x_chromosomes naming it, "X" is an autosome with the autosomal threshold
    assert "X" not in set(find_peaks(scan, threshold_x=0.0, x_chromosomes=["nope"])["chr"])


# --- Naive versions of the rules, from their definitions ------------------------------------


def naive_peaks(lod: list[float], threshold: float, peakdrop: float) -> tuple[list, list]:
    """R/qtl2's peak rule read literally, over every position from the first."""
    peaks: list[int] = []
    valleys = [0]
    last_peak = low = 0.0
    low_at = 0
    for i, v in enumerate(lod):
        if v < low:
            low, low_at = v, i
        if not v > threshold:
            continue
        if not peaks:
            peaks.append(i)
            last_peak = low = v
        elif last_peak > low + peakdrop and v > low + peakdrop:
            peaks.append(i)
            valleys.append(low_at)
            last_peak = low = v
            low_at = i
        elif v > last_peak:
            peaks[-1] = i
            last_peak = low = v
            low_at = i
    return peaks, [*valleys, len(lod) - 1]


def naive_run(lod: list[float], peak: int) -> list[int]:
    """Positions with the peak's LOD, walking out from the peak until a lower LOD."""
    out = [peak]
    for step in (-1, 1):
        j = peak + step
        while 0 <= j < len(lod) and not lod[j] < lod[peak]:
            if lod[j] == lod[peak]:
                out.append(j)
            j += step
    return sorted(out)


def naive_lod_int(lod, peak, drop, start, end) -> tuple[int, int]:
    above = [j for j in range(start, end + 1) if lod[j] > lod[peak] - drop] + [peak]
    return max(min(above) - 1, start), min(max(above) + 1, end)


def naive_areas(lod, pos) -> list[float]:
    n = len(lod)
    width = [
        (pos[1] - pos[0]) if i == 0 else (pos[-1] - pos[-2]) if i == n - 1
        else (pos[i + 1] - pos[i - 1]) / 2
        for i in range(n)
    ]  # fmt: skip
    return [10.0 ** lod[i] * width[i] for i in range(n)]


def naive_bayes_int(lod, pos, peak, prob, start, end) -> tuple[int, int, list[float]]:
    """The interval, and the cumulative shares along the way (to avoid prob on a tie)."""
    if len(lod) < 2:
        return peak, peak, []
    area = naive_areas(lod, pos)
    total = sum(area[start : end + 1])
    if not total > 0:  # positions all in one place: no area to share, the whole region
        return min(start, peak), max(end, peak), []
    taken, shares, cum = [peak], [], 0.0
    for j in sorted(range(start, end + 1), key=lambda j: -lod[j]):
        cum += area[j] / total
        shares.append(cum)
        taken.append(j)
        if cum >= prob:
            break
    return min(taken), max(taken), shares


def naive_find_peaks(scan, threshold, peakdrop, drop=None, prob=None) -> pd.DataFrame:
    rows = []
    order = {"trait": list(dict.fromkeys(scan["trait"])), "chr": list(dict.fromkeys(scan["chr"]))}
    for trait in order["trait"]:
        for chrom in order["chr"]:
            sub = scan[(scan["trait"] == trait) & (scan["chr"] == chrom)]
            sub = sub.sort_values("pos", kind="stable")
            lod, pos = sub["lod"].tolist(), sub["pos"].tolist()
            marker = sub["marker"].tolist()
            peaks, valleys = naive_peaks(lod, threshold, peakdrop)
            for k, p in enumerate(peaks):
                start, end = valleys[k], valleys[k + 1]
                if drop is None and prob is None:
                    ties = naive_run(lod, p)
                    ci = ()
                else:
                    ties = [j for j in range(start, end + 1) if lod[j] == lod[p]]
                    if drop is not None:
                        lo, hi = naive_lod_int(lod, p, drop, start, end)
                    else:
                        lo, hi, _ = naive_bayes_int(lod, pos, p, prob, start, end)
                    ci = (pos[lo], pos[hi], marker[lo], marker[hi])
                where = sum(pos[j] for j in ties) / len(ties)
                rows.append((trait, chrom, where, marker[min(ties)], lod[p], *ci))
    n = 5 if drop is None and prob is None else 9
    return pd.DataFrame(rows, columns=list(PEAK_COLUMNS[:n]))


# --- Properties -----------------------------------------------------------------------------


@st.composite
def scans(draw, max_chr: int = 3, max_len: int = 14):
    """Scan tables with many ties (integer LODs, repeated positions), rows shuffled."""
    rows = []
    for t in range(draw(st.integers(1, 2))):
        for c in range(draw(st.integers(1, max_chr))):
            n = draw(st.integers(1, max_len))
            lod = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
            steps = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
            pos = np.cumsum(steps).astype(float)
            rows += [(f"t{t}", str(c + 1), pos[i], f"m{c}_{i}", float(lod[i])) for i in range(n)]
    table = pd.DataFrame(rows, columns=["trait", "chr", "pos", "marker", "lod"])
    seed = draw(st.integers(0, 2**16))
    return table.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _compare(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    assert list(ours.columns) == list(ref.columns)
    assert len(ours) == len(ref)
    for c in ref.columns:
        if c in ("pos",):
            np.testing.assert_allclose(
                ours[c].to_numpy(float), ref[c].to_numpy(float), rtol=0, atol=POS_ATOL
            )
        else:
            assert list(ours[c]) == list(ref[c]), c


@SETTINGS
@given(
    scan=scans(),
    threshold=st.integers(-1, 5).map(lambda v: v + 0.5),
    peakdrop=st.sampled_from([math.inf, 0.0, 0.5, 1.0, 2.5]),
)
def test_find_peaks__equals_the_naive_rule(scan, threshold, peakdrop):
    ours = find_peaks(scan, threshold=threshold, peakdrop=peakdrop)
    _compare(ours, naive_find_peaks(scan, threshold, peakdrop))
    if math.isinf(peakdrop):  # at most one peak per chromosome: its maximum, if above
        best = scan.groupby(["trait", "chr"], sort=False)["lod"].max()
        best = best[best > threshold]
        assert len(ours) == len(best)
        at = pd.MultiIndex.from_frame(ours[["trait", "chr"]])
        np.testing.assert_array_equal(ours["lod"], best.reindex(at))


@SETTINGS
@given(
    scan=scans(),
    threshold=st.sampled_from([-1.0, 0.5, 2.5]),
    peakdrop=st.sampled_from([math.inf, 1.0, 3.0]),
    drop=st.sampled_from([0.0, 0.5, 1.0, 1.5]),
)
def test_find_peaks__lod_intervals_equal_the_naive_rule(scan, threshold, peakdrop, drop):
    assume(drop <= peakdrop)  # R/qtl2's rule (a larger drop is refused, tested below)
    ours = find_peaks(scan, threshold=threshold, peakdrop=peakdrop, drop=drop)
    _compare(ours, naive_find_peaks(scan, threshold, peakdrop, drop=drop))
    # with drop 0 the interval is the first maximum alone, while pos averages its ties
    if math.isinf(peakdrop) and drop > 0:
        for row in ours.itertuples(index=False):
            curve = scan[(scan["trait"] == row.trait) & (scan["chr"] == row.chr)]
            assert row.ci_lo <= row.pos <= row.ci_hi
            # outside the interval nothing comes within drop of the peak; the interval
            # reaches one position beyond the outermost that do (dips inside may not)
            outside = curve[(curve["pos"] < row.ci_lo) | (curve["pos"] > row.ci_hi)]
            assert (outside["lod"] <= row.lod - drop).all()
            within = curve.loc[curve["lod"] > row.lod - drop, "pos"]
            assert row.ci_lo <= within.min() and within.max() <= row.ci_hi


@SETTINGS
@given(
    scan=scans(max_chr=2),
    peakdrop=st.sampled_from([math.inf, 1.0]),
    prob=st.floats(0.05, 0.99),
)
def test_find_peaks__bayes_intervals_equal_the_naive_rule(scan, peakdrop, prob):
    threshold = 0.5
    # a prob equal (to rounding) to a cumulative share makes the rule's answer a coin toss
    for (_, _), curve in scan.groupby(["trait", "chr"]):
        curve = curve.sort_values("pos", kind="stable")
        lod, pos = curve["lod"].tolist(), curve["pos"].tolist()
        peaks, valleys = naive_peaks(lod, threshold, peakdrop)
        for k, p in enumerate(peaks):
            shares = naive_bayes_int(lod, pos, p, prob, valleys[k], valleys[k + 1])[2]
            assume(all(abs(s - prob) > 1e-9 for s in shares))
    ours = find_peaks(scan, threshold=threshold, peakdrop=peakdrop, prob=prob)
    _compare(ours, naive_find_peaks(scan, threshold, peakdrop, prob=prob))
    if math.isinf(peakdrop):  # the interval holds at least prob of the area
        for row in ours.itertuples(index=False):
            curve = scan[(scan["trait"] == row.trait) & (scan["chr"] == row.chr)]
            curve = curve.sort_values("pos", kind="stable")
            if len(curve) < 2:
                continue
            area = np.array(naive_areas(curve["lod"].tolist(), curve["pos"].tolist()))
            if not area.sum() > 0:
                continue
            inside = curve["pos"].between(row.ci_lo, row.ci_hi).to_numpy()
            assert area[inside].sum() >= prob * area.sum() * (1 - 1e-12)


@SETTINGS
@given(data=st.data(), n=st.integers(2, 16))
def test_find_peaks__expanded_ends_are_markers_and_contain_the_plain_interval(data, n):
    lod = data.draw(st.lists(st.floats(0, 6), min_size=n, max_size=n))
    pseudo = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    names = [f"c1.loc{i}" if p else f"D1M{i}" for i, p in enumerate(pseudo)]
    scan = pd.DataFrame(
        {"trait": "y", "chr": "1", "pos": np.arange(n, dtype=float), "marker": names, "lod": lod}
    )
    for kw in ({"drop": 1.0}, {"prob": 0.9}):
        plain = find_peaks(scan, threshold=-1, **kw).iloc[0]
        wide = find_peaks(scan, threshold=-1, expand_to_markers=True, **kw).iloc[0]
        assert wide["ci_lo"] <= plain["ci_lo"] and plain["ci_hi"] <= wide["ci_hi"]
        lo, hi = int(wide["ci_lo"]), int(wide["ci_hi"])
        # an end is a real marker unless none lies beyond it
        assert not pseudo[lo] or not any(p is False for p in pseudo[:lo])
        assert not pseudo[hi] or not any(p is False for p in pseudo[hi:])
        # nothing moved that was a marker already
        if not pseudo[int(plain["ci_lo"])]:
            assert lo == plain["ci_lo"]
        if not pseudo[int(plain["ci_hi"])]:
            assert hi == plain["ci_hi"]


# --- Tables: order, NaN, empty --------------------------------------------------------------


def test_find_peaks__row_order_and_untested_markers():
    scan = _iron_scan()
    shuffled = scan.sample(frac=1.0, random_state=3)

    def ordered(t: pd.DataFrame) -> pd.DataFrame:
        return t.sort_values(["trait", "chr", "pos"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(
        ordered(find_peaks(shuffled, drop=1.5)), ordered(find_peaks(scan, drop=1.5))
    )
    # traits in order of first appearance
    spleen_first = pd.concat([scan[scan["trait"] == "spleen"], scan[scan["trait"] == "liver"]])
    assert list(dict.fromkeys(find_peaks(spleen_first)["trait"])) == ["spleen", "liver"]
    # an untested marker (NaN LOD) is no position of the curve
    with_nan = scan.copy()
    at_peak = (with_nan["marker"] == "D9Mit182") & (with_nan["trait"] == "spleen")
    with_nan.loc[at_peak, "lod"] = np.nan
    peaks = find_peaks(with_nan)
    assert "D9Mit182" not in set(peaks["marker"])
    assert peaks.loc[peaks["chr"] == "9", "lod"].iat[0] < 12


def test_find_peaks__no_peak_gives_an_empty_table_with_its_columns():
    scan = _iron_scan()
    empty = find_peaks(scan, threshold=100, prob=0.9)
    assert empty.empty and list(empty.columns) == list(PEAK_COLUMNS[:9])
    perm, _ = _iron_perm()
    empty = find_peaks(scan[scan["trait"] == "liver"], threshold=100, perm=perm)
    assert empty.empty and list(empty.columns) == [*PEAK_COLUMNS[:5], "threshold", "p_genome"]
    assert find_peaks(scan.iloc[:0]).columns.tolist() == list(PEAK_COLUMNS[:5])
    assert lmmlite.find_peaks is find_peaks


def test_find_peaks__ties_are_averaged_and_the_first_marker_named():
    scan = pd.DataFrame(
        {"trait": "y", "chr": "1", "pos": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
         "marker": list("abcdef"), "lod": [1.0, 5.0, 5.0, 2.0, 5.0, 0.0]}
    )  # fmt: skip
    # find_peaks: the run of equal LODs next to the peak
    plain = find_peaks(scan)
    assert plain[["pos", "marker"]].values.tolist() == [[1.5, "b"]]
    # with an interval (R/qtl2's lod_int): every position between the valleys with that LOD
    for kw in ({"drop": 1.0}, {"prob": 0.9}):
        assert find_peaks(scan, **kw)[["pos", "marker"]].values.tolist() == [[7 / 3, "b"]]


# --- Bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"drop": 1.5, "prob": 0.9}, "not both"),
        ({"drop": -1}, "drop must be >= 0"),
        ({"drop": 2.0, "peakdrop": 1.0}, "must not exceed peakdrop"),
        ({"drop": 1.0, "drop_x": 2.0, "peakdrop_x": 1.5}, "drop_x must not exceed peakdrop_x"),
        ({"prob": 1.0}, r"prob must lie in \(0, 1\)"),
        ({"prob": 0.0}, r"prob must lie in \(0, 1\)"),
        ({"prob": 0.9, "prob_x": 1.2}, r"prob_x must lie in \(0, 1\)"),
        ({"peakdrop": -0.5}, "peakdrop must be >= 0"),
        ({"peakdrop": math.nan}, "peakdrop must be >= 0"),
        ({"threshold": math.nan}, "threshold must be a number"),
        ({"drop_x": 1.0}, "drop_x=1.0 needs drop"),
        ({"prob_x": 0.9}, "prob_x=0.9 needs prob"),
        ({"alpha": 0.05}, "needs a permutation table"),
        ({"column": "lod_gxe"}, "lacks the column"),
    ],
)
def test_find_peaks__bad_options(kw, message):
    with pytest.raises(InputError, match=message):
        find_peaks(_iron_scan(), **kw)


def test_find_peaks__bad_tables():
    scan = _iron_scan()
    with pytest.raises(InputError, match=r"lacks the column.*marker"):
        find_peaks(scan.drop(columns="marker"))
    with pytest.raises(InputError, match="must be a pandas DataFrame"):
        find_peaks(scan.to_numpy())
    dup = pd.concat([scan, scan.iloc[[5]]])
    with pytest.raises(InputError, match=r"marker 'D2Mit\d+' appears more than once"):
        find_peaks(dup)
    bad = scan.copy()
    bad.loc[3, "pos"] = np.nan
    with pytest.raises(InputError, match=r"1 position.*missing"):
        find_peaks(bad)
    bad = scan.copy()
    bad.loc[3, "lod"] = np.inf
    with pytest.raises(InputError, match="infinite"):
        find_peaks(bad)
    bad = scan.astype({"lod": object})
    bad.loc[3, "lod"] = "high"
    with pytest.raises(InputError, match="not numeric"):
        find_peaks(bad)
    bad = scan.copy()
    bad.loc[3, "trait"] = None
    with pytest.raises(InputError, match="'trait' is missing on row 4"):
        find_peaks(bad)


def test_find_peaks__bad_permutation_tables():
    perm, _ = _iron_perm()
    scan = _iron_scan()
    with pytest.raises(InputError, match="'spleen' of the scan are not in the permutation"):
        find_peaks(scan, perm=perm, alpha=0.05)
    liver = scan[scan["trait"] == "liver"]
    with pytest.raises(InputError, match=r"lacks the column.*max_lod"):
        find_peaks(liver, perm=perm.drop(columns="max_lod"))
    with pytest.raises(InputError, match=r"alpha must lie in \(0, 1\)"):
        find_peaks(liver, perm=perm, alpha=1.5)
    with pytest.raises(InputError, match="no X region threshold for trait 'liver'"):
        find_peaks(liver, perm=perm[perm["region"] == "A"], alpha=0.05)


# --- Reading permutation tables -------------------------------------------------------------


def test_read_perm_table__csv_tsv_parquet_and_bad_files(tmp_path):
    perm, _ = _iron_perm()
    perm = perm.assign(trait="007")
    for name in ("p.csv", "p.tsv", "p.csv.gz"):
        perm.to_csv(tmp_path / name, sep="," if ".csv" in name else "\t", index=False)
        back = read_perm_table(tmp_path / name)
        assert back["trait"].iat[0] == "007"  # text, not the number 7
        np.testing.assert_array_equal(back["max_lod"], perm["max_lod"])
    pytest.importorskip("pyarrow")
    perm.to_parquet(tmp_path / "p.parquet")
    assert read_perm_table(tmp_path / "p.parquet")["trait"].iat[0] == "007"
    perm.drop(columns="length").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(FileFormatError, match="only one of the columns region and length"):
        read_perm_table(tmp_path / "bad.csv")
    perm.drop(columns="perm").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(FileFormatError, match=r"lacks the column.*perm"):
        read_perm_table(tmp_path / "bad.csv")
    perm.assign(region="Y").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(FileFormatError, match="region must be A or X"):
        read_perm_table(tmp_path / "bad.csv")
    with pytest.raises(FileFormatError, match="does not exist"):
        read_perm_table(tmp_path / "none.csv")


# --- Command line ---------------------------------------------------------------------------


def test_cli_peaks__equals_qtl2_and_draws(tmp_path, capsys):
    scan = tmp_path / "scan.tsv"
    _iron_scan().to_csv(scan, sep="\t", index=False)
    out, png = tmp_path / "peaks.csv", tmp_path / "peaks.png"
    args = ["peaks", "--scan", str(scan), "--drop", "1.5", "--out", str(out)]
    assert main([*args, "--plot", str(png)]) == 0
    assert "wrote 7 peak(s) of 2 trait(s)" in capsys.readouterr().out
    ref = pd.read_csv(Q2 / "iron_peaks_loco_thr3_drop1.5.csv", dtype={"chr": str})
    _assert_same_peaks(pd.read_csv(out, dtype={"chr": str}), ref)
    assert png.read_bytes()[:8] == PNG
    # thresholds from permutations, as a TSV
    perm_file = tmp_path / "perm.tsv"
    _iron_perm()[0].to_csv(perm_file, sep="\t", index=False)
    liver = tmp_path / "liver.tsv"
    _iron_scan().query("trait == 'liver'").to_csv(liver, sep="\t", index=False)
    out = tmp_path / "peaks.tsv"
    base = ["peaks", "--scan", str(liver), "--perm", str(perm_file), "--out", str(out)]
    assert main([*base, "--alpha", "0.05", "--prob", "0.95"]) == 0
    table = pd.read_csv(out, sep="\t")
    assert {"threshold", "p_genome"} <= set(table.columns) and len(table) == 5


def _exit_status(argv: list[str]) -> int:
    """``main``'s status; argparse's usage errors exit (status 2) instead of returning."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--drop", "1.5", "--prob", "0.9"], "not allowed with argument --drop"),
        (["--alpha", "0.05"], "--alpha needs --perm"),
        (["--alpha", "2"], r"must lie in \(0, 1\)"),
        (["--drop", "-1"], r"must lie in \[0, inf\]"),
        (["--drop", "2", "--peakdrop", "1"], "must not exceed peakdrop"),
        (["--drop-x", "1"], "--drop-x needs --drop"),
    ],
)
def test_cli_peaks__bad_input_gives_one_line_error(tmp_path, capsys, monkeypatch, extra, message):
    scan = tmp_path / "scan.tsv"
    _iron_scan().to_csv(scan, sep="\t", index=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert _exit_status(["peaks", "--scan", str(scan), "--out", "p.csv", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmmlite: error:") and err.count("\n") == 1 and re.search(message, err)
    assert not list(work.iterdir())  # nothing written


def test_cli_peaks__missing_files_and_outputs_over_inputs(tmp_path, capsys):
    scan = tmp_path / "scan.tsv"
    _iron_scan().to_csv(scan, sep="\t", index=False)
    for args, message in (
        (["--scan", str(tmp_path / "none.tsv"), "--out", str(tmp_path / "p.csv")],
         "does not exist"),
        (["--scan", str(scan), "--perm", str(tmp_path / "none.csv"), "--out",
          str(tmp_path / "p.csv")], "does not exist"),
        (["--scan", str(scan), "--out", str(scan)], "is one of the inputs"),
    ):  # fmt: skip
        assert main(["peaks", *args]) == 2
        assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.tsv"]


# --- Pictures -------------------------------------------------------------------------------


def test_plots__lod_manhattan_qq_perm_and_peaks(tmp_path):
    pytest.importorskip("matplotlib")
    from lmmlite.plot import plot_peaks, plot_perm, plot_scan

    scan = _iron_scan()
    rng = np.random.default_rng(0)
    scan["p_wald"] = rng.uniform(size=len(scan)) ** 2
    perm, _ = _iron_perm()
    peaks = find_peaks(scan, drop=1.5)
    thresholds = peak_thresholds(["liver"], perm=perm, alpha=0.05)["liver"]
    files = {
        "lod.png": lambda p: plot_scan(scan, p, kind="lod", thresholds=thresholds, peaks=peaks),
        "lod_plain.png": lambda p: plot_scan(scan, p, kind="lod", trait="spleen"),
        "manhattan.png": lambda p: plot_scan(scan, p, peaks=peaks, threshold=1e-3),
        "qq.png": lambda p: plot_scan(scan, p, kind="qq"),
        "perm.png": lambda p: plot_perm(perm, p, alpha=[0.05, 0.2]),
        "perm_one.png": lambda p: plot_perm(perm.drop(columns=["region", "length"]), p),
        "peaks.png": lambda p: plot_peaks(scan, peaks, p, thresholds={"A": 3.0, "X": 3.5}),
    }
    for name, draw in files.items():
        draw(tmp_path / name)
        assert (tmp_path / name).read_bytes()[:8] == PNG, name
    with pytest.raises(InputError, match="apply to kind='lod'"):
        plot_scan(scan, tmp_path / "x.png", kind="qq", thresholds=3.0)
    with pytest.raises(InputError, match="p-value in"):
        plot_scan(scan, tmp_path / "x.png", threshold=3.0)
    with pytest.raises(InputError, match="no peaks"):
        plot_peaks(scan, peaks.iloc[:0], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
