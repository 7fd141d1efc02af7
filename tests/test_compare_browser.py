"""The compare page in real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from imagefit.cli import cli
from tests.conftest import TINY, make_folder

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
)
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="headless Chromium absent: apt-get install chromium chromium-driver"
)
SCRATCH = ["--strategy", "scratch", "--arch", "conv8@3-pool2-dense16", "--image-size", "24", "-j", "0"]


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def test_the_compare_page_shows_its_figures_and_tables(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    data = make_folder(tmp_path / "data", n_train=6, n_valid=3)
    runner = CliRunner()
    for name, flags in (("linear", TINY), ("scratch", [*SCRATCH, "--epochs", "2"])):
        result = runner.invoke(cli, ["train", str(data), "--out", str(tmp_path / name), *flags])
        assert result.exit_code == 0, result.output
    page = tmp_path / "compare.html"
    result = runner.invoke(
        cli, ["compare", str(tmp_path / "linear"), str(tmp_path / "scratch"), "-o", str(page)]
    )
    assert result.exit_code == 0, result.output
    browser.get(page.as_uri())
    images = browser.find_elements(By.TAG_NAME, "img")
    sizes = [
        browser.execute_script("return [arguments[0].naturalWidth, arguments[0].complete]", i) for i in images
    ]
    assert len(sizes) == 3 and all(width > 300 and done for width, done in sizes)  # decoded, not broken
    rows = browser.find_elements(By.CSS_SELECTOR, "#runs-table tr[data-run]")
    assert [r.get_attribute("data-run") for r in rows] == ["linear", "scratch"]
    scratch = rows[1].find_elements(By.TAG_NAME, "td")
    assert scratch[1].text == "scratch" and scratch[-4].text == "2"  # strategy, epochs
    panels = browser.find_elements(By.CSS_SELECTOR, "#confusion .confusion")
    assert len(panels) == 2
    tops = [p.rect["y"] for p in panels]
    assert tops[0] == tops[1]  # side by side at this width
    counts = panels[0].find_elements(By.CSS_SELECTOR, "td.num")
    assert sum(int(c.get_attribute("data-value")) for c in counts) == 6  # every validation image counted
