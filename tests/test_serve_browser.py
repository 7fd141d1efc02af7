"""The pages in real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from imagefit.serve.app import create_app
from imagefit.serve.audit import AuditFolder
from imagefit.serve.model import ServedModel
from tests._audit_folder import make_audit
from tests._serve import running, tiny_run
from tests.conftest import SHARED_DATA

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
DOGS_CATS = SHARED_DATA / "dogs-vs-cats"
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
)
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="headless Chromium absent: apt-get install chromium chromium-driver"
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


def wait_for(condition, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting in the browser")


def dogs_cats_run(root: Path) -> Path:
    """A linear run of the bundled EfficientNet-Lite0 on 20 cats and 20 dogs (links to the shared photos)."""
    from imagefit.train import train

    for split, count in (("train", 20), ("valid", 5)):
        for cls in ("cats", "dogs"):
            dest = root / "data" / split / cls
            dest.mkdir(parents=True)
            for src in sorted((DOGS_CATS / split / cls).glob("*.jpg"))[:count]:
                (dest / src.name).symlink_to(src)
    train(root / "data", out=root / "run", engine="torch", workers=0, progress=False)
    return root / "run"


@pytest.mark.realdata
@pytest.mark.skipif(not DOGS_CATS.is_dir(), reason=f"real data not found at {DOGS_CATS}")
def test_upload_a_real_photo_and_read_its_class(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    model = ServedModel.from_run(dogs_cats_run(tmp_path), engine="torch", max_batch=4)
    photos = [DOGS_CATS / "valid" / "cats" / "cat.4101.jpg", DOGS_CATS / "valid" / "dogs" / "dog.4101.jpg"]
    with running(create_app(model)) as (port, _):
        browser.get(f"http://127.0.0.1:{port}/")
        wait_for(lambda: "cats, dogs" in browser.find_element(By.ID, "model-line").text)
        browser.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in photos))
        done = wait_for(
            lambda: len(cards := browser.find_elements(By.CSS_SELECTOR, ".result.done")) == 2 and cards
        )
        shown = {c.find_element(By.CSS_SELECTOR, ".name").text: c for c in done}
        assert shown["cat.4101.jpg"].find_element(By.CSS_SELECTOR, ".top-class").text == "cats"
        assert shown["dog.4101.jpg"].find_element(By.CSS_SELECTOR, ".top-class").text == "dogs"
        bars = shown["cat.4101.jpg"].find_elements(By.CSS_SELECTOR, ".bar-row")
        assert [b.get_attribute("data-class") for b in bars] == ["cats", "dogs"]
        assert float(bars[0].find_element(By.CSS_SELECTOR, ".value").text.split()[0]) > 50
        browser.save_screenshot(str(tmp_path / "predict-page.png"))
    assert (tmp_path / "predict-page.png").stat().st_size > 10_000


def test_mark_a_finding_relabel_and_download_fixes(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    model = ServedModel.from_run(tiny_run(tmp_path / "tiny"), engine="torch", max_batch=4)
    photos = None
    if DOGS_CATS.is_dir():
        photos = {"train/red/red_07.jpg": DOGS_CATS / "valid" / "cats" / "cat.4085.jpg"}
    audit = AuditFolder(make_audit(tmp_path, photos))
    with running(create_app(model, audit=audit)) as (port, _):
        browser.get(f"http://127.0.0.1:{port}/audit")
        cards = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".finding"))
        assert len(cards) == 4
        wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".finding img")) == 3)
        first = browser.find_element(By.CSS_SELECTOR, '.finding[data-id="0"]')
        first.find_element(By.CSS_SELECTOR, 'input[value="relabel"]').click()
        Select(first.find_element(By.TAG_NAME, "select")).select_by_visible_text("blue")
        outlier = browser.find_element(By.CSS_SELECTOR, '.finding[data-id="2"]')
        outlier.find_element(By.CSS_SELECTOR, 'input[value="keep"]').click()
        assert browser.find_element(By.ID, "count").text == "2 of 4 marked"
        browser.save_screenshot(str(tmp_path / "audit-page.png"))
        browser.find_element(By.ID, "download").click()
        fixes = wait_for(
            lambda: (browser.downloads / "FIXES.csv").is_file() and browser.downloads / "FIXES.csv"
        )
    text = wait_for(lambda: fixes.read_text(encoding="utf-8"))
    assert text.splitlines() == [
        "path,action,label",
        "train/red/red_07.jpg,relabel,blue",
        "train/blue/odd.jpg,keep,",
    ]


@pytest.mark.realdata
@pytest.mark.skipif(not DOGS_CATS.is_dir(), reason=f"real data not found at {DOGS_CATS}")
def test_an_image_unlike_the_training_photos_is_shown_as_such(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    model = ServedModel.from_run(dogs_cats_run(tmp_path), engine="torch", max_batch=4)
    cat = DOGS_CATS / "valid" / "cats" / "cat.4101.jpg"
    aerial = SHARED_DATA / "ucmerced" / "valid" / "harbor" / "harbor93.jpg"
    judged = model.classifier.predict([cat, aerial], engine="torch", workers=0, progress=False)
    assert judged.familiarity[1] < judged.familiarity[0]  # an aerial harbour is less like the cat photos
    model.classifier.familiarity.threshold = float(judged.familiarity.mean())  # between the two
    with running(create_app(model)) as (port, _):
        browser.get(f"http://127.0.0.1:{port}/")
        wait_for(lambda: "cats, dogs" in browser.find_element(By.ID, "model-line").text)
        browser.find_element(By.ID, "files").send_keys(f"{cat}\n{aerial}")
        done = wait_for(
            lambda: len(cards := browser.find_elements(By.CSS_SELECTOR, ".result.done")) == 2 and cards
        )
        shown = {c.find_element(By.CSS_SELECTOR, ".name").text: c for c in done}
        assert shown["cat.4101.jpg"].find_element(By.CSS_SELECTOR, ".top-class").text == "cats"
        assert "unfamiliar" not in shown["cat.4101.jpg"].get_attribute("class")
        text = shown["harbor93.jpg"].find_element(By.CSS_SELECTOR, ".top-class").text
        assert text.startswith("unlike the training images (closest: ")
        assert "unfamiliar" in shown["harbor93.jpg"].get_attribute("class")
        browser.save_screenshot(str(tmp_path.parent / "unfamiliar-page.png"))
