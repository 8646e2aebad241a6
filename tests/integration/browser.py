"""A real browser for the console's tests: Debian's chromium, headless, driven by
Selenium through Debian's chromedriver (nothing is downloaded at test time).

    from browser import chrome, screenshot, wait_for

    def test_x(broker, browser):          # the `browser` fixture (conftest.py)
        browser.get(broker.admin_url + "/topics")
        wait_for(browser, lambda d: "Topics" in d.title)
        screenshot(browser, "topics")     # target/console-screenshots/topics.png
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "target" / "console-screenshots"
CHROMIUM = os.environ.get("VLTAVA_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("VLTAVA_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT = 30.0  # a deadline, not a verdict


def chrome(width: int = 1280, height: int = 800) -> webdriver.Chrome:
    """A fresh headless chromium with its own empty profile."""
    # Selenium Manager must not try to download a driver or a browser
    os.environ["SE_OFFLINE"] = "true"
    profile = tempfile.mkdtemp(prefix="vltava-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-extensions",
        f"--user-data-dir={profile}", f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    driver._vltava_profile = profile  # removed by close()
    return driver


def close(driver: webdriver.Chrome) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(getattr(driver, "_vltava_profile", ""), ignore_errors=True)


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """Saves the page as target/console-screenshots/NAME.png (a test artifact)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".png")
    driver.save_screenshot(str(path))
    return path


def wait_for(driver: webdriver.Chrome, condition, timeout: float = WAIT, what: str = "condition"):
    """Waits until condition(driver) is truthy (returns it); fails after the deadline
    with the page's URL and text, so a failure says what the page showed."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = condition(driver)
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - the page may be mid-load
            last_error = e
        if time.monotonic() > deadline:
            body = ""
            try:
                body = driver.find_element("tag name", "body").text[:2000]
            except Exception:  # noqa: BLE001
                pass
            raise AssertionError(f"timed out waiting for {what} on {driver.current_url}: "
                                 f"last error {last_error!r}; page text:\n{body}")
        time.sleep(0.1)


def http(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    """(status, headers with lower-case names, body) of one request, for the console's
    JSON API; redirects are not followed (a 303 is returned as it is)."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **kw):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with opener.open(req, timeout=60) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def api(base: str, path: str, method: str = "GET", payload=None, headers: dict | None = None):
    """(status, decoded JSON) of a console API call with an optional JSON payload."""
    import json
    h = {"Accept": "application/json", **(headers or {})}
    body = None
    if payload is not None:
        body = json.dumps(payload).encode()
        h["Content-Type"] = "application/json"
    status, _, raw = http(base + path, method, body, h)
    return status, (json.loads(raw) if raw else None)
