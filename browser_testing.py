"""Playwright with Debian's Chromium, shared by the browser tests (never `playwright install`)."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@pytest.fixture
def page():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make browser-deps` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        context.set_default_timeout(15_000)
        yield context.new_page()
        # While Playwright's event loop runs, Django gives the test body's queries a connection of
        # their own (connections are per asyncio context, not per thread). Close it here, inside that
        # context: left open, it keeps PostgreSQL from dropping the test database at the session's end.
        from django.db import connections

        connections.close_all()
        context.close()
        browser.close()


def settled(page) -> None:
    """Wait until the page's scripts have run and htmx has finished its last swap.

    A key pressed in the milliseconds between a swap (or a full page load) and htmx setting the new
    content up reaches no handler, or submits a form the browser's own way. People are not that
    quick; a test is, so it waits here before acting on what it has just seen appear.
    """
    page.wait_for_function(
        "() => document.readyState === 'complete' && window.htmx !== undefined"
        " && !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"
    )
