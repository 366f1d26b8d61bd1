"""A real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, page screenshots, axe-core.

Never `playwright install`: the browser is the system one. Tests here are skipped, with
the reason, where it is missing; `.ci/run` installs it.

axe-core (MPL-2.0) comes from the npm registry once: its tarball is checked against the
registry's sha512 integrity and `axe.min.js` kept in support/ (gitignored) for later runs.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent / "screenshots"
AXE_VERSION = "4.10.2"
AXE_TARBALL = f"https://registry.npmjs.org/axe-core/-/axe-core-{AXE_VERSION}.tgz"
AXE_INTEGRITY = "sha512-RE3mdQ7P3FRSe7eqCWoeQ/Z9QXrtniSjp1wUjt5nRC3WIpz5rSCve6o3fsZ2aCpJtrZjSZgjwXAoTO5k4tEI0w=="
AXE_FILE = Path(__file__).resolve().parent / "support" / f"axe-{AXE_VERSION}.min.js"
# WCAG 2.1 A and AA rules; the scan fails on serious or critical violations.
AXE_RUN = """() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
  .then(r => r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
  .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})))"""



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
    """`await screenshot(page, "name")` saves screenshots/<test>-<name>.png: the 1280x800 viewport and the full
    page (`-full`)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    test = request.node.name.removeprefix("test_")

    async def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{test}-{name}.png"
        await page.screenshot(path=str(path))
        await page.screenshot(path=str(ARTIFACTS / f"{test}-{name}-full.png"), full_page=True)
        return path
    return take


def _axe_source() -> str:
    if not AXE_FILE.exists():
        try:
            with urllib.request.urlopen(AXE_TARBALL, timeout=60) as answer:
                tarball = answer.read()
        except OSError as exc:
            pytest.skip(f"the accessibility scan needs axe-core from {AXE_TARBALL}: {exc}")
        digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
        assert digest == AXE_INTEGRITY, f"axe-core tarball does not match the registry's integrity: {digest}"
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            source = archive.extractfile("package/axe.min.js").read()
        AXE_FILE.parent.mkdir(exist_ok=True)
        AXE_FILE.write_bytes(source)
    return AXE_FILE.read_text()


@pytest.fixture(scope="session")
def axe_source() -> str:
    return _axe_source()


@pytest.fixture
def accessible(axe_source):
    """`await accessible(page)`: axe-core's WCAG 2.1 AA scan of the page as it is; fails on serious or critical
    violations. Evaluated through the DevTools protocol, so the page's CSP (no inline script) stays on."""
    async def scan(page) -> None:
        if not await page.evaluate("() => typeof axe !== 'undefined'"):
            await page.evaluate(axe_source)
        violations = await page.evaluate(AXE_RUN)
        assert violations == [], f"{page.url}: {violations}"
    return scan
