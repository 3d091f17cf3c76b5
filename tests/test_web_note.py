"""The "Code a note" page in headless Debian chromium: the note's spans marked with their codes
and the skipped mentions with why. Screenshots at desktop and phone width in tests/out/."""

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
    if os.environ.get("CI"):
        raise RuntimeError("Debian chromium is not installed: .ci/run should have installed it")
    pytest.skip("Debian chromium is not installed (apt-get install chromium)", allow_module_level=True)


def test_code_a_note_marks_spans(home, cb, tmp_path):
    cb.code("warm up", date="2026-05-01")
    with live_server(home, tmp_path / "server.log", env={"MEDCODES_TIMEOUT": "60"}) as url, \
            sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(url + "/")
        page.get_by_role("link", name="Code a note").click()
        note = "58-year-old man with type 2 diabetes, poorly controlled with hyperglycemia, on metformin. Denies chest pain."
        page.get_by_label("Clinical note").fill(note)
        page.get_by_label("Date of service").fill("2026-05-01")
        page.get_by_role("button", name="Code the note").click()
        page.locator("#codes li").first.wait_for(timeout=60_000)
        coded = page.locator("#marked a.mark.coded")
        assert "type 2 diabetes" in coded.first.inner_text()
        assert "E11.65" in coded.first.get_attribute("title")
        assert "E11.65" in page.locator("#codes").inner_text()
        skipped = page.locator("#marked a.mark.skipped", has_text="chest pain")
        assert "negated" in skipped.get_attribute("title")
        assert "negated" in page.locator("#skipped").inner_text()
        OUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUT / "web-note.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(OUT / "web-note-phone.png"), full_page=True)
        browser.close()
