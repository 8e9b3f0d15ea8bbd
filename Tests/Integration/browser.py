"""A real browser for the dashboard tests: Debian's chromium, headless, driven by selenium
through Debian's chromium-driver (scripts/install-deps.sh installs both; a missing one fails
the tests, it never skips them)."""
from __future__ import annotations

import re
import shutil
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def start_chromium(width: int = 1280, height: int = 1500) -> webdriver.Chrome:
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            raise RuntimeError(f"{path} is missing: scripts/install-deps.sh installs chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", f"--window-size={width},{height}", "--disable-dev-shm-usage",
                "--disable-gpu", "--no-first-run", "--disable-extensions",
                f"--user-data-dir={tempfile.mkdtemp(prefix='trading-api-chromium-')}",
                # The tests run as root in CI's container, where chromium's sandbox cannot start;
                # the browser only ever loads the test stack's own page.
                "--no-sandbox"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def text_of(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Polls `predicate` (exceptions count as not yet) until it returns truthy; that value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 — a page in the middle of a render
            last = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f" (last error: {last})" if last else ""))


def console_problems(driver) -> list[str]:
    """The page's console errors and CSP violations since the last call."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] in ("SEVERE", "ERROR") or "Content Security Policy" in e["message"]]


def sign_in(driver, token: str) -> None:
    """Pastes `token` into the sign-in form and submits it."""
    box = driver.find_element(By.ID, "token")
    box.clear()
    box.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#sign-in-form button[type=submit]").click()


def number(text: str) -> float:
    """A number as the page shows it: "+1,234.50", "-29.33", "15.00 %"."""
    return float(re.sub(r"[^0-9.+-]", "", text.replace("\u2212", "-")))


def set_hidden(driver, hidden: bool) -> None:
    """What a browser does when the tab is hidden or shown again: document.hidden and a
    visibilitychange event (headless chromium has no tabs to switch)."""
    driver.execute_script(
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => arguments[0]});"
        "document.dispatchEvent(new Event('visibilitychange'));", hidden)


def set_offline(driver, offline: bool) -> None:
    """Chrome's network emulation: every request fails as with the network gone."""
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
