"""The HTML report in a real headless browser (Debian's ``chromium`` + ``chromium-driver``, driven by
selenium): every plot and the map draw, the map has one polygon per region, its slider and policy
buttons work, the console shows no error and the page loads nothing from the network.

Skips, saying why, only where no chromium/chromedriver binary or selenium is installed (``.ci/run``
installs them: ``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from drbalance.report import write_report

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "report_evaluation"
CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The fixture evaluation's report opened in headless chromium: ``(driver, console log)``."""
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("no chromium/chromedriver binary on PATH (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    out = write_report(FIXTURE, tmp_path_factory.mktemp("report") / "report.html")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--disable-background-networking", "--no-first-run"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        driver.get(out.as_uri())
        driver.implicitly_wait(5)
        driver.find_element("css selector", "#map-vacant .main-svg")   # waits until the last plot drew
        yield driver
    finally:
        driver.quit()


def test_every_plot_draws(page):
    """Each plotly div holds an SVG with drawn traces (lines or filled paths)."""
    counts = page.execute_script("""
        return Array.from(document.querySelectorAll('.plotly-graph-div')).map(d =>
            [d.id, d.querySelectorAll('.main-svg').length, d.querySelectorAll('g.trace path').length]);""")
    ids = [c[0] for c in counts]
    assert ids == ["profiles", "map-unserved", "map-vacant"], ids
    for div_id, svgs, paths in counts:
        assert svgs >= 1 and paths > 0, f"{div_id}: {svgs} svg, {paths} drawn paths"
    lines = page.execute_script("return document.querySelectorAll('#profiles g.trace.scatter').length")
    assert lines == 4 * 3    # four panels x three policies


def test_map_has_one_polygon_per_region_a_slider_and_policy_buttons(page):
    regions = pd.read_csv(FIXTURE / "regions.csv")["region"].nunique()
    filled = page.execute_script(
        "return document.getElementById('map-unserved').data.filter(t => t.fill === 'toself').length")
    assert filled == regions == 8
    drawn = page.execute_script("return document.querySelectorAll('#map-unserved g.trace.scatter').length")
    assert drawn == regions + 1     # the polygons and the centroid markers
    assert page.execute_script("return document.querySelectorAll('#map-unserved g.slider-container').length") == 1
    buttons = page.execute_script("return document.querySelectorAll('#map-unserved g.updatemenu-button').length")
    assert buttons == 3             # noop, nominal, dr


def test_slider_moves_the_map_through_the_day(page):
    """Animating to another slot's frame recolours the regions as that frame says."""
    result = page.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const gd = document.getElementById('map-unserved');
        const target = gd._transitionData._frames.find(f => f.name === 'dr|3');
        Plotly.animate(gd, ['dr|3'], {mode: 'immediate', frame: {duration: 0, redraw: true},
                                       transition: {duration: 0}})
          .then(() => done([gd.data.slice(0, 8).map(t => t.fillcolor), target.data.slice(0, 8).map(t => t.fillcolor)]));""")
    shown, wanted = result
    assert shown == wanted


def test_no_console_error_and_no_network(page):
    errors = [e for e in page.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors
    fetched = page.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('data:'))")
    assert fetched == [], f"the report fetched {fetched}"
    external = page.execute_script("""return Array.from(document.querySelectorAll('[src],[href]'))
        .map(e => e.getAttribute('src') || e.getAttribute('href')).filter(u => /^(https?:)?\\/\\//.test(u))""")
    assert external == []
