"""Headless Chromium from Debian, driven by Selenium, for tests that look at a page.

The set-up installs `chromium` and `chromium-driver` with apt-get when they are missing
and we are root; anywhere else the tests that need a browser are skipped, saying why.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.support.debian import CannotInstall, apt_install

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def ensure_chromium() -> None:
    """Install Debian's chromium and chromium-driver if needed, or skip the test."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    try:
        apt_install("chromium", "chromium-driver")
    except CannotInstall as exc:
        pytest.skip(f"chromium is missing and cannot be installed: {exc}")


@contextmanager
def chromium(authorization: str, *, width: int = 1280, height: int = 900) -> Iterator[object]:
    """A headless browser that sends `authorization` with every request."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="psa-ledger-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in [*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd(
                "Network.setExtraHTTPHeaders", {"headers": {"Authorization": authorization}}
            )
            yield driver
        finally:
            driver.quit()
