"""A real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, and page screenshots.

Never `playwright install`: the browser is the system one. Tests here are skipped, with
the reason, where it is missing; `.ci/run` installs it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "console"



@pytest.fixture
async def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is in the [test] extras")
    async with playwright_api.async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def screenshot(request):
    """`await screenshot(page, "name")` saves test-artifacts/console/<test>-<name>.png (a full page)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    test = request.node.name.removeprefix("test_")

    async def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{test}-{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path
    return take
