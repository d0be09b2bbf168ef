"""A real headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by Selenium, for page tests.

Why these flags: the machine's network is closed, and without them Chromium waits on its own
background connections (updates, sync, QUIC); a fresh profile keeps tests independent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1000")


def chromium(profile: Path):
    """A Selenium WebDriver on the system Chromium; skips the test when it or its driver is absent."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (extra: test)")
    from selenium.webdriver.chrome.service import Service

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("Chromium and its driver are not installed (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(service=Service(driver), options=options)
