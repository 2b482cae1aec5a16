"""Debian's headless Chromium driven by Playwright, with every request beyond what a test allows aborted and
recorded: a page that tries to reach another host fails the test that checks `aborted`."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def browser_page(allowed: Callable[[str], bool]) -> Iterator:
    """(page, aborted): a page whose requests go out only where `allowed(url)`; the others are aborted and their
    URLs listed in `aborted`. Skips the test, saying why, where there is no Chromium or no Playwright."""
    executable = next((p for p in map(shutil.which, BROWSERS) if p), None)
    if executable is None:
        pytest.skip(f"no Chromium to drive: none of {', '.join(BROWSERS)} is on PATH "
                    "(Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install -e '.[test]')")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            aborted: list[str] = []

            def route(r):
                if allowed(r.request.url):
                    r.continue_()
                else:
                    aborted.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            yield page, aborted
        finally:
            browser.close()
