"""The browser for ``make e2e``: one headless Debian Chromium driven through chromedriver.

Nothing is downloaded: the browser and the driver are Debian's ``chromium`` and
``chromium-driver`` packages (``make e2e`` installs them when missing), and Selenium is told
where both are, so Selenium Manager never looks for its own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

#: Seconds a page may take to load; every browser step is bounded by it.
PAGE_LOAD_TIMEOUT = 15


def _binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        f"{names[0]} is not installed: run `make e2e`, which installs Debian's chromium and "
        "chromium-driver packages"
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    """A headless Chromium for the whole session (cookies are cleared by each test)."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not fetch anything
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium", "chromium-browser")
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container: Chromium's sandbox needs user namespaces
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--window-size=1024,768",
    ):
        options.add_argument(argument)
    service = Service(executable_path=_binary("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
    driver.set_script_timeout(PAGE_LOAD_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()
