"""The interactive HTML report: its data preparation against brute-force versions, and the page
itself opened in a real headless browser (Debian's chromium driven by Selenium through
chromium-driver; those tests skip, saying why, where the browser is not installed)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

pytest.importorskip("plotly", reason="the report needs plotly: pip install 'lmmlite[report]'")

from lmmlite.exceptions import InputError
from lmmlite.report import (
    CHI2_MEDIAN,
    bonferroni_lod,
    genome_layout,
    lambda_gc,
    qq_points,
    report,
    thin_markers,
)

#: Rounding of one chi-square quantile (scipy's chdtri) against another: both are accurate to a
#: few ulps, so 1e-12 relative leaves room for the division and the mean.
QUANTILE_RTOL = 1e-12


# ---------------------------------------------------------------------------------------------
# Example tables


def fake_scan(m: int, traits: int = 1, *, seed: int = 1, chromosomes: int = 5) -> pd.DataFrame:
    """A scan table of ``traits`` traits on ``m`` markers: chi-square(1) LODs, one strong peak
    per trait on chromosome 2 and a weaker one on 4."""
    rng = np.random.default_rng(seed)
    chrom = np.repeat(
        np.arange(1, chromosomes + 1), np.diff(np.linspace(0, m, chromosomes + 1).astype(int))
    )
    pos = np.concatenate(
        [np.sort(rng.uniform(1e6, 1e8, (chrom == c).sum())) for c in np.unique(chrom)]
    )
    frames = []
    for t in range(traits):
        chi2 = np.minimum(rng.chisquare(1, m), 12.0)  # no spurious peak
        for c, height in ((2, 40.0), (4, 25.0)):
            idx = np.flatnonzero(chrom == c)
            mid = idx[len(idx) // 2]
            width = max(len(idx) // 20, 2)
            chi2[mid - width : mid + width] += height * (1 - np.abs(np.linspace(-1, 1, 2 * width)))
        frames.append(
            pd.DataFrame(
                {
                    "trait": f"trait{t + 1}",
                    "chr": chrom.astype(str),
                    "pos": pos,
                    "marker": [f"rs{100 + j}" for j in range(m)],
                    "n": 200,
                    "af": rng.uniform(0.05, 0.5, m),
                    "beta": rng.normal(0, 0.2, m),
                    "se": 0.1,
                    "lod": chi2 / (2 * np.log(10)),
                    "p_wald": stats.chi2.sf(chi2, 1),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def fake_herit() -> pd.DataFrame:
    """A heritability table with boundary and non-converged fits."""
    hsq = np.array([0.3, 1.0, 0.0, 0.62, 0.15, 0.8])
    return pd.DataFrame(
        {
            "n": [200, 199, 200, 198, 200, 200],
            "hsq": hsq,
            "hsq_se": [0.1, np.nan, np.nan, 0.12, 0.08, 0.1],
            "hsq_ci_lower": [0.1, 0.7, 0.0, 0.4, 0.0, 0.6],
            "hsq_ci_upper": [0.5, 1.0, 0.2, 0.8, 0.3, 0.95],
            "lrt_pvalue": [0.01, 1e-8, 1.0, 1e-4, 0.2, 1e-6],
            "at_boundary": [False, True, True, False, False, False],
            "converged": [True, True, True, True, False, True],
        },
        index=pd.Index([f"trait{i}" for i in range(1, 7)], name="trait"),
    )


def payload(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="lmm-data">(.*?)</script>', html, re.S)
    assert m is not None
    return json.loads(m.group(1).replace("<\\/", "</"))


def decode(b64: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<" + dtype)


# ---------------------------------------------------------------------------------------------
# Data preparation


def naive_thin(x, lod, floor, grid):
    """Cell by cell: the points at or above the floor, and the highest of each cell below."""
    ok = np.isfinite(x) & np.isfinite(lod)
    keep = set(np.flatnonzero(ok & (lod >= floor)).tolist())
    below = np.flatnonzero(ok & (lod < floor))
    if below.size:
        x0, x1, y0 = x[ok].min(), x[ok].max(), lod[below].min()
        cells: dict[tuple[int, int], int] = {}
        for i in below:
            cx = min(int((x[i] - x0) / max(x1 - x0, 1e-300) * grid[0]), grid[0] - 1)
            cy = min(int((lod[i] - y0) / max(floor - y0, 1e-300) * grid[1]), grid[1] - 1)
            j = cells.get((cx, cy))
            if j is None or lod[i] > lod[j]:
                cells[(cx, cy)] = i
        keep |= set(cells.values())
    return sorted(keep)


@pytest.mark.parametrize("seed", range(4))
def test_thin_markers__keeps_every_point_above_the_floor_and_one_per_cell(seed):
    rng = np.random.default_rng(seed)
    m = 5000
    x = np.sort(rng.uniform(0, 1e6, m))
    lod = rng.chisquare(1, m) / (2 * np.log(10))
    lod[rng.integers(0, m, 20)] = np.nan
    kept = thin_markers(x, lod, floor=1.0, grid=(50, 5))
    above = np.flatnonzero(lod >= 1.0)
    assert np.isin(above, kept).all()
    assert kept.size < m and np.all(np.diff(kept) > 0)
    assert not np.isnan(lod[kept]).any()
    assert kept.tolist() == naive_thin(x, lod, 1.0, (50, 5))


def test_thin_markers__everything_above_the_floor_and_bad_input():
    x = np.arange(5.0)
    assert thin_markers(x, np.full(5, 3.0), floor=2.0).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(InputError, match="differ in shape"):
        thin_markers(x, np.ones(4), floor=1.0)
    with pytest.raises(InputError, match="grid"):
        thin_markers(x, np.ones(5), floor=1.0, grid=(0, 3))


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 1001])
def test_lambda_gc__equals_the_median_chi_square_over_its_expectation(n):
    rng = np.random.default_rng(n)
    p = rng.uniform(size=n) ** 1.3  # a little inflated
    chi2 = np.sort(stats.chi2.isf(p, 1))
    median = chi2[n // 2] if n % 2 else (chi2[n // 2 - 1] + chi2[n // 2]) / 2
    want = median / stats.chi2.ppf(0.5, 1)
    assert lambda_gc(np.r_[p, np.nan]) == pytest.approx(want, rel=QUANTILE_RTOL)
    assert CHI2_MEDIAN == pytest.approx(stats.chi2.ppf(0.5, 1), rel=QUANTILE_RTOL)
    assert np.isnan(lambda_gc(np.array([np.nan])))


def test_lambda_gc__uniform_p_values_give_about_one():
    p = np.random.default_rng(3).uniform(size=200_000)
    assert lambda_gc(p) == pytest.approx(1.0, abs=0.02)


def test_qq_points__extremes_kept_and_band_from_beta_order_statistics():
    rng = np.random.default_rng(5)
    p = np.r_[rng.uniform(size=20_000), 0.0]
    q = qq_points(p, pixels=100)
    n = p.size
    assert q["rank"][0] == 1 and q["rank"][-1] == n
    assert q["observed"][0] == pytest.approx(300.0)  # 0 drawn at 1e-300
    rank = q["rank"]
    assert np.allclose(q["expected"], -np.log10((rank - 0.5) / n))
    assert np.allclose(
        q["observed"], -np.log10(np.sort(np.where(p == 0, 1e-300, p))[rank.astype(int) - 1])
    )
    assert np.allclose(10 ** -q["lower"], stats.beta.ppf(0.975, rank, n - rank + 1))
    assert np.all(q["lower"] <= q["expected"] + 1e-12) and np.all(
        q["expected"] <= q["upper"] + 1e-12
    )
    assert q["rank"].size < 2 * 100 * 100


def test_bonferroni_lod__is_the_lod_whose_p_value_is_alpha_over_m():
    for m, df in ((1, 1), (7317, 1), (10**6, 2)):
        lod = bonferroni_lod(m, df=df)
        assert stats.chi2.sf(lod * 2 * np.log(10), df) == pytest.approx(0.05 / m, rel=1e-9)
    with pytest.raises(InputError):
        bonferroni_lod(0)


def test_genome_layout__numbered_chromosomes_first_side_by_side():
    layout = genome_layout(["X", "10", "2", "2", "1", "MT"], [5.0, 1.0, 3.0, 9.0, 4.0, 2.0])
    assert layout["chr"].tolist() == ["1", "2", "10", "MT", "X"]
    ends = layout["offset"] + layout["span"]
    assert np.all(layout["offset"].to_numpy()[1:] > ends.to_numpy()[:-1])
    assert layout.set_index("chr").loc["2", "span"] == 6.0


# ---------------------------------------------------------------------------------------------
# The page's content


def test_report__checksums_and_provenance(tmp_path):
    scan_file = tmp_path / "scan.tsv"
    fake_scan(500, 2).to_csv(scan_file, sep="\t", index=False)
    herit = fake_herit()
    out = tmp_path / "r.html"
    rep = report(scan_file, herit=herit, out=out, title="T")
    assert out.read_bytes() == rep.html.encode()
    prov = payload(rep.html)["provenance"]
    scan_rec, herit_rec = prov["inputs"]
    assert scan_rec["sha256"] == hashlib.sha256(scan_file.read_bytes()).hexdigest()
    assert scan_rec["bytes"] == scan_file.stat().st_size and scan_rec["rows"] == 1000
    from lmmlite._dataset import frame_sha256

    assert herit_rec["source"] == "DataFrame" and herit_rec["sha256"] == frame_sha256(herit)
    assert prov["lmmlite"] and re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", prov["created"])
    assert prov["options"]["alpha"] == [0.05, 0.2]


def test_report__self_contained_no_network():
    html = report(fake_scan(300)).html
    assert "<script src" not in html and "<link" not in html and "@import" not in html
    assert "Plotly" in html and html.count("<script") == 3  # plotly.js, the data, the glue
    # plotly="cdn": the same page with Plotly's JavaScript from its CDN, and nothing else
    cdn = report(fake_scan(300), plotly="cdn").html
    assert len(cdn) < len(html) - 1_000_000
    assert re.findall(r"<script src=\"([^\"]+)\"", cdn) == [
        re.search(r"https://cdn\.plot\.ly/plotly-[\d.]+\.min\.js", cdn).group(0)
    ]
    with pytest.raises(InputError, match="inline"):
        report(fake_scan(30), plotly="web")


def test_report__thinning_keeps_every_marker_above_the_floor():
    scan = fake_scan(60_000)
    rep = report(scan, max_points=10_000, lod_floor=2.0)
    data = payload(rep.html)["scan"]
    lod = decode(data["data"]["lod"], "f4")
    names = np.array(data["data"]["markers"]["name"])[decode(data["data"]["marker"], "i4")]
    above = set(scan.loc[scan["lod"] >= 2.0, "marker"])
    assert above <= set(names) and rep.lod_floor == 2.0
    assert rep.shown == lod.size < 60_000 and data["thin"]["thinned"]
    # every drawn LOD is the table's
    want = scan.set_index("marker").loc[names, "lod"].to_numpy()
    assert np.array_equal(lod, want.astype(np.float32))
    small = report(scan, max_points=100_000)
    assert small.shown == 60_000 and small.lod_floor is None


def test_report__thresholds_peaks_and_qq():
    scan = fake_scan(2000, 2)
    data = payload(report(scan).html)["scan"]
    th = data["thresholds"]
    assert th["kind"] == "bonferroni" and th["m"] == 2000
    assert th["all"][0]["A"] == pytest.approx(bonferroni_lod(2000))
    peaks = data["peaks"]
    assert peaks["n"] == 4 and decode(peaks["trait"], "i4").tolist() == [0, 0, 1, 1]
    chroms = np.array(data["chroms"]["chr"])[decode(peaks["chr"], "i4")]
    assert chroms.tolist() == ["2", "4", "2", "4"]
    q0 = data["qq"][0]
    p = scan.loc[scan["trait"] == "trait1", "p_wald"].to_numpy()
    assert q0["lambda"] == pytest.approx(lambda_gc(p)) and q0["n"] == 2000
    perm = pd.DataFrame(
        {
            "trait": np.repeat(["trait1", "trait2"], 100),
            "perm": np.tile(np.arange(100), 2),
            "max_lod": np.random.default_rng(1).gamma(9, 0.35, 200),
        }
    )
    data = payload(report(scan, perm=perm, alpha=0.05).html)["scan"]
    assert data["thresholds"]["kind"] == "perm"
    want = np.quantile(perm.loc[perm["trait"] == "trait2", "max_lod"], 0.95)
    assert data["thresholds"]["per_trait"]["1"][0]["A"] == pytest.approx(want)


def test_report__table_of_peaks_and_trait_positions():
    scan = fake_scan(3000, 6)
    from lmmlite.peaks import find_peaks

    peaks = find_peaks(scan, threshold=3.0)
    positions = pd.DataFrame({"trait": [f"trait{i}" for i in range(1, 7)], "chr": "3", "pos": 5e7})
    data = payload(report(peaks, trait_positions=positions).html)["scan"]
    assert data["keep"] == "peaks" and data["qq"] is None and data["thresholds"]["kind"] == "none"
    assert data["peaks"]["n"] == len(peaks) and data["peaks"]["by_position"]


def test_report__refuses_bad_input(tmp_path):
    with pytest.raises(InputError, match="needs a scan table"):
        report()
    with pytest.raises(InputError, match="lacks the column"):
        report(pd.DataFrame({"trait": ["a"], "chr": ["1"], "pos": [1.0]}))
    with pytest.raises(InputError, match="alpha"):
        report(fake_scan(100), alpha=1.5)
    with pytest.raises(InputError, match="keep"):
        report(fake_scan(100), keep="some")
    scan_file = tmp_path / "s.tsv"
    fake_scan(100).to_csv(scan_file, sep="\t", index=False)
    with pytest.raises(InputError):
        report(scan_file, out=scan_file)  # the output would replace an input


def test_cli_report__writes_the_page_and_says_how_big(tmp_path, capsys):
    from lmmlite.cli import main

    scan_file, herit_file, out = tmp_path / "s.tsv", tmp_path / "h.csv", tmp_path / "r.html"
    fake_scan(400, 2).to_csv(scan_file, sep="\t", index=False)
    fake_herit().to_csv(herit_file)
    argv = ["report", "--scan", str(scan_file), "--herit", str(herit_file), "--alpha", "0.1"]
    assert main([*argv, "--title", "mine", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"wrote {out}" in said and "MB" in said and "800 of 800 scan rows" in said
    data = payload(out.read_text())
    assert data["title"] == "mine" and len(data["herit"]["rows"]["trait"]) == 6
    assert data["provenance"]["options"]["command line"]["alpha"] == [0.1]
    assert main(["report", "--out", str(tmp_path / "x.html")]) == 2
    assert "give --scan, --herit or both" in capsys.readouterr().err
    assert main(["report", "--scan", str(scan_file), "--out", str(scan_file)]) == 2
    assert "is one of the inputs" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# In a real browser


def _browser():
    """A headless chromium driven by Selenium, or a skip saying what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    binary = next(
        (shutil.which(b) for b in ("chromium", "chromium-browser") if shutil.which(b)), None
    )
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip(
            "chromium and chromedriver are not installed (Debian: apt-get install chromium "
            "chromium-driver; .ci/run installs them where apt-get works)"
        )
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1300,1000",
        "--enable-unsafe-swiftshader",
        "--use-angle=swiftshader",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=opts)


@pytest.fixture(scope="module")
def browser():
    driver = _browser()
    yield driver
    driver.quit()


def _open(driver, path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.as_uri())
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return document.body.getAttribute('data-ready')") == "1"
    )


def _errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _not_blank(png: bytes) -> int:
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    return len(np.unique(pixels, axis=0))


def _points(driver, div: str) -> int:
    return driver.execute_script(
        f"return document.querySelectorAll('#{div} .scatterlayer .point').length"
    )


@pytest.fixture(scope="module")
def page_scan():
    return fake_scan(1500, 6)


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory, page_scan):
    folder = tmp_path_factory.mktemp("report")
    path = folder / "report.html"
    report(page_scan, herit=fake_herit(), out=path, title="browser test")
    _open(browser, path)
    return browser


def test_browser__opens_without_errors_and_draws_every_plot(page):
    from selenium.webdriver.common.by import By

    assert _errors(page) == []
    assert _points(page, "manhattan") > 1000
    assert _points(page, "qq") > 10
    assert _points(page, "cistrans") == 12  # two peaks of each of 6 traits
    assert (
        page.execute_script(
            "return document.querySelectorAll('#chrplot .scatterlayer .js-line').length"
        )
        == 1
    )
    for div in ("manhattan", "chrplot", "qq", "cistrans"):
        assert _not_blank(page.find_element(By.ID, div).screenshot_as_png) > 20, div
    # the QQ plot is square: equal pixels per unit on both axes
    ratio = page.execute_script(
        "var l = document.getElementById('qq')._fullLayout;"
        "return (l.xaxis._length / (l.xaxis.range[1] - l.xaxis.range[0])) /"
        "       (l.yaxis._length / (l.yaxis.range[1] - l.yaxis.range[0]));"
    )
    assert ratio == pytest.approx(1.0, rel=0.02)
    assert "λ" in page.find_element(By.ID, "qq").text


def test_browser__hover_shows_the_marker(page, page_scan):
    text = page.execute_script(
        "var gd = document.getElementById('manhattan');"
        "Plotly.Fx.hover(gd, [{curveNumber: 1, pointNumber: 3}]);"
        "var t = gd.querySelector('.hovertext'); return t ? t.textContent : null;"
    )
    # the 4th marker of chromosome 2 of the first trait, by position
    rows = page_scan[(page_scan["trait"] == "trait1") & (page_scan["chr"] == "2")]
    row = rows.sort_values("pos").iloc[3]
    assert text is not None and text.startswith(row["marker"])
    assert f"chr 2 at {row['pos']:,.0f}" in text and f"LOD {row['lod']:.3f}" in text
    for field in ("p_wald", "beta", "se", "af"):
        assert field in text


def test_browser__clicking_a_chromosome_shows_its_curve(page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    title = "return document.getElementById('chrplot').layout.title.text"
    points = page.find_elements(
        By.CSS_SELECTOR, "#manhattan .scatterlayer .trace:nth-of-type(3) .point"
    )
    assert points
    ActionChains(page).move_to_element(points[len(points) // 2]).click().perform()
    for _ in range(50):
        if page.execute_script(title).startswith("chr 3"):
            break
        time.sleep(0.1)
    assert page.execute_script(title).startswith("chr 3")
    n = page.execute_script("return document.getElementById('chrplot').data[0].x.length")
    assert n == 300  # every marker of chromosome 3 (1500 markers on 5 chromosomes)
    page.find_element(By.CSS_SELECTOR, "#chr-buttons button[data-chr='5']").click()
    assert page.execute_script(title).startswith("chr 5")
    assert _errors(page) == []


def test_browser__sorting_and_filtering_the_heritability_table(page):
    from selenium.webdriver.common.by import By

    def column(k):
        return [
            r.find_elements(By.TAG_NAME, "td")[k].text
            for r in page.find_elements(By.CSS_SELECTOR, "#herit tbody tr")
        ]

    header = page.find_element(By.CSS_SELECTOR, "#herit th[data-key='hsq']")
    header.click()
    values = [float(v) for v in column(2)]
    assert values == sorted(values) and len(values) == 6
    header.click()
    assert [float(v) for v in column(2)] == sorted(values, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"
    flags = page.find_element(By.ID, "herit").text
    assert "boundary" in flags and "not converged" in flags
    page.find_element(By.ID, "herit-flagged").click()
    assert sorted(column(0)) == ["trait2", "trait3", "trait5"]
    page.find_element(By.ID, "herit-flagged").click()
    page.find_element(By.ID, "herit-filter").send_keys("trait4")
    assert column(0) == ["trait4"]
    assert _errors(page) == []


def test_browser__clicking_a_peak_opens_its_trait(page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    dots = page.find_elements(By.CSS_SELECTOR, "#cistrans .scatterlayer .point")
    page.execute_script("arguments[0].scrollIntoView({block: 'center'})", dots[-1])
    ActionChains(page).move_to_element(dots[-1]).click().perform()
    for _ in range(50):
        if page.find_element(By.ID, "trait-input").get_attribute("value") == "trait6":
            break
        time.sleep(0.1)
    assert page.find_element(By.ID, "trait-input").get_attribute("value") == "trait6"
    assert "trait6" in page.execute_script(
        "return document.getElementById('manhattan').layout.title.text"
    )
    assert _errors(page) == []


def test_browser__a_thinned_scan_draws_with_webgl(browser, tmp_path):
    path = tmp_path / "large.html"
    rep = report(fake_scan(120_000), max_points=20_000, out=path)
    assert rep.shown > 15_000  # above WEBGL_ABOVE: scattergl
    _open(browser, path)
    assert _errors(browser) == []
    assert (
        browser.execute_script("return document.getElementById('manhattan').data[0].type")
        == "scattergl"
    )
    assert (
        browser.execute_script("return document.querySelectorAll('#manhattan canvas').length") > 0
    )
    from selenium.webdriver.common.by import By

    assert _not_blank(browser.find_element(By.ID, "manhattan").screenshot_as_png) > 20
    assert "Thinned" in browser.find_element(By.ID, "summary").text
