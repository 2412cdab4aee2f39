"""Headless Chromium for the browser tests and the report benchmark: Debian's chromium driven by
chromium-driver through Selenium (no browser download). `.ci/run` installs both with apt."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterator

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def _first(paths) -> str | None:
    import os

    return next((p for p in paths if os.access(p, os.X_OK)), None) or None


def why_no_browser() -> str | None:
    """None when a headless browser can be started here; else the reason (for pytest.skip)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install '.[browser-tests]')"
    if _first(CHROMIUM) is None:
        return "no Chromium (apt-get install chromium chromium-driver; .ci/run does)"
    if _first(CHROMEDRIVER) is None:
        return "no chromedriver (apt-get install chromium-driver; .ci/run does)"
    return None


@contextmanager
def chromium(width: int = 1360, height: int = 1000) -> Iterator["object"]:
    """A headless Chromium WebDriver with a fresh profile and the browser console log enabled."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="picinspector-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = _first(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
                f"--window-size={width},{height}", f"--user-data-dir={profile}",
                "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(_first(CHROMEDRIVER)))
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver) -> list[str]:
    """SEVERE entries of the browser console since the last call (errors, failed loads, CSP)."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def wait_ready(driver, timeout: float = 60) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script("return document.body && "
                                                                    "document.body.dataset.ready === 'true'"))
