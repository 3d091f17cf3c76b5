"""The web page in headless Debian chromium, driven by Playwright: search, code page, claim form.

Screenshots are saved under tests/out/. Skipped (with the reason) when
/usr/bin/chromium or Playwright is not installed, except in CI (CI=true), where
.ci/run installs chromium from .ci/apt-packages and its absence fails the run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from server_helpers import live_server

OUT = Path(__file__).resolve().parent / "out"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):  # .ci/run installs it: in CI a missing browser is a failure, not a skip
        raise RuntimeError("Debian chromium is not installed: .ci/run should have installed it")
    pytest.skip("Debian chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def base(home, cb, tmp_path_factory):
    from medcodes import search

    search.prepare(cb)
    with live_server(home, tmp_path_factory.mktemp("web") / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def page(base):
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1100, "height": 900})
        yield pg
        browser.close()


def test_search_code_page_and_claim(base, page):
    OUT.mkdir(exist_ok=True)
    page.goto(base + "/")
    box = page.get_by_label("Search a code or words")
    box.press_sequentially("diabetes hyperglycemia", delay=20)   # results come as the user types
    link = page.locator("#results a", has_text="E11.65")
    link.wait_for(timeout=20_000)
    page.screenshot(path=str(OUT / "web-search.png"), full_page=True)

    page.keyboard.press("ArrowDown")                           # keyboard: into the result list
    link.click()
    page.locator("#code-title").wait_for()
    assert "Type 2 diabetes mellitus with hyperglycemia" in page.locator("#code-title").inner_text()
    page.locator("nav[aria-label=Hierarchy] a", has_text="E11.6").wait_for()
    page.locator("#history table").wait_for(timeout=20_000)
    page.screenshot(path=str(OUT / "web-code.png"), full_page=True)

    page.locator("nav[aria-label=Hierarchy] a", has_text="E11").first.click()   # hierarchy links work
    page.wait_for_function("document.querySelector('#code-title') && "
                           "document.querySelector('#code-title').innerText.startsWith('E11 ')")

    page.goto(base + "/#/claim")
    page.get_by_label("Date of service").fill("2026-05-01")
    page.get_by_label("Patient sex").select_option("F")
    page.get_by_label("Diagnoses").fill("E11.65, E11")
    page.get_by_label("Service lines").fill("E0130 x1 -> 1")
    page.get_by_role("button", name="Check claim").click()
    verdict = page.locator("#claim-verdict")
    verdict.wait_for(timeout=20_000)
    # E11 is a header; E0130 (a walker) has practitioner MUE 0 in NCCI 2026 Q2 (a DME supplier bills it)
    assert "2 errors" in verdict.inner_text()
    assert "dx-header" in page.locator("#findings").inner_text()
    assert "ncci-mue" in page.locator("#findings").inner_text()
    page.screenshot(path=str(OUT / "web-claim.png"), full_page=True)


def test_pcs_axes_and_hcpcs_fields(base, page):
    page.goto(base + "/#/code/icd10pcs/0DTJ4ZZ")
    page.locator("text=ICD-10-PCS axes").wait_for()
    assert "Appendix" in page.locator("table").first.inner_text()
    page.goto(base + "/#/code/hcpcs/E0130")
    page.locator("text=HCPCS fields").wait_for()
    assert "BETOS" in page.locator("dl.fields").inner_text()
    page.screenshot(path=str(OUT / "web-hcpcs.png"), full_page=True)


def test_hcpcs_2026_code_page_shows_notes_noc_and_correction(base, page):
    """January 2026 HCPCS on the page: S0189 (corrected: terminated), its processing note; J3490 is NOC."""
    page.goto(base + "/#/code/hcpcs/S0189")
    page.locator("text=corrected by CMS").wait_for()
    text = page.locator("#code-view").inner_text()
    assert "release 2026-01" in text and "processing note 0088" in text
    assert "Terminate effective 2026-01-01" in text
    page.goto(base + "/#/code/hcpcs/J3490")
    page.locator("span.tag:text-is('NOC')").wait_for()
