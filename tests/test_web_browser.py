"""The page in a real browser: Debian's headless Chromium (selenium, the system's chromedriver; no
browser download) uploads two images, runs the real-time method and sees the result appear.

The screenshot goes to $STYLETRANSFER_SCREENSHOT when set (docs/web/page.png is made so), else
into the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path

import pytest

from styletransfer.imageio import read_metadata
from styletransfer.web.settings import SAMPLES, ServerSettings

pytest.importorskip("fastapi", reason="the web extra is not installed: pip install -e \".[web]\"")
pytest.importorskip("selenium", reason="selenium is not installed: pip install -e \".[test]\"")

from tests.helpers.web_helpers import live_server  # noqa: E402

BROWSER = next((path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))),
               None)
DRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(BROWSER is None or DRIVER is None,
                       reason="no system Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
WAIT_SECONDS = 120  # bounds, not timings: a loaded CI machine is slow
WINDOW = (1440, 1000)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={WINDOW[0]},{WINDOW[1]}", "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_page_uploads_a_pair_runs_magenta_and_shows_the_result_beside_the_inputs(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    content, style = SAMPLES / "content" / "chelsea.jpg", SAMPLES / "style" / "mosaic.jpg"
    with live_server(ServerSettings(weights="magenta")) as url:
        browser.get(url + "/")
        wait = WebDriverWait(browser, WAIT_SECONDS)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
        browser.find_element(By.ID, "content-file").send_keys(str(content))
        browser.find_element(By.ID, "style-file").send_keys(str(style))
        Select(browser.find_element(By.ID, "method")).select_by_value("magenta")
        size = browser.find_element(By.ID, "size")
        size.clear()
        size.send_keys("256")
        browser.find_element(By.ID, "run").click()
        loaded = ("const i = document.getElementById(arguments[0]); "
                  "return !!i.getAttribute('src') && i.complete && i.naturalWidth > 0;")
        wait.until(lambda d: d.execute_script(loaded, "view-result"))
        for image in ("view-content", "view-style"):
            assert browser.execute_script(loaded, image), f"{image} is not shown beside the result"
        assert "done" in browser.find_element(By.ID, "status").text
        assert browser.find_element(By.ID, "error").text == ""
        assert "chelsea.jpg" in browser.find_element(By.ID, "history").text
        download = browser.find_element(By.ID, "download").get_attribute("href")
        assert download.startswith(url) and download.endswith("result.png?download=1")
        fetched = tmp_path / "downloaded.png"
        with urllib.request.urlopen(download, timeout=30) as answer:
            fetched.write_bytes(answer.read())
        assert read_metadata(fetched)["method"] == "magenta"  # the settings travel in the PNG, as the CLI writes
        shot = Path(os.environ.get("STYLETRANSFER_SCREENSHOT") or tmp_path / "page.png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(shot))
        print(f"\nscreenshot: {shot}")
