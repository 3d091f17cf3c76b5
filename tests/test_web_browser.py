"""The web page in headless Debian chromium, driven by Playwright: each flow a coder uses.

Flows: search as you type reached by keyboard alone ("diab" -> E11.65), the ICD-10-CM code page
with the Tabular's notes (E11.65: Excludes1 group, E10.- a link), the ICD-10-PCS table builder
(0DTJ4ZZ built from table 0DT), HCPCS fields and modifiers, the claim form (a bad diagnosis
pointer shown beside its line), release changes with CSV download. Every page is checked with
axe-core (no serious or critical violation) and screenshotted at desktop and phone width under
tests/out/. Page weight and search render time are measured and written to
tests/out/web-metrics.json (reported, never asserted as timings).

axe-core comes from npm (tests/web/package.json, pinned, installed by .ci/run with ``npm ci``
into tests/web/node_modules, gitignored): its 560 KB axe.min.js is a test tool, not part of
the page, so it is not committed. Skipped (with the reason) when /usr/bin/chromium, Playwright
or axe-core is missing, except in CI (CI=true), where their absence fails the run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from server_helpers import live_server

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
AXE_DIR = HERE / "web"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1200, "height": 900}
PHONE = {"width": 390, "height": 844}

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):  # .ci/run installs it: in CI a missing browser is a failure, not a skip
        raise RuntimeError("Debian chromium is not installed: .ci/run should have installed it")
    pytest.skip("Debian chromium is not installed (apt-get install chromium)", allow_module_level=True)

METRICS: dict[str, object] = {}
AXE_RESULTS: dict[str, list[dict[str, object]]] = {}


def _axe_source() -> str:
    if not AXE_JS.exists() and shutil.which("npm"):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(AXE_DIR)],
                       check=False, capture_output=True, timeout=300)
    if not AXE_JS.exists():
        if os.environ.get("CI"):
            raise RuntimeError("axe-core is not installed: .ci/run should have run npm ci in tests/web")
        pytest.skip("axe-core is not installed (npm ci --prefix tests/web)")
    return AXE_JS.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def axe() -> str:
    return _axe_source()


@pytest.fixture(scope="module")
def base(home, cb, tmp_path_factory):
    from medcodes import search

    search.prepare(cb)
    OUT.mkdir(exist_ok=True)
    with live_server(home, tmp_path_factory.mktemp("web") / "server.log") as url:
        yield url
    (OUT / "web-metrics.json").write_text(json.dumps(METRICS, indent=1))
    (OUT / "web-axe.json").write_text(json.dumps(AXE_RESULTS, indent=1))


@pytest.fixture(scope="module")
def browser(base):
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _local_only(ctx, base: str) -> list[str]:
    """Every request the page makes that is not to the medcodes server (must stay empty: offline)."""
    elsewhere: list[str] = []
    ctx.on("request", lambda req: None if req.url.startswith((base, "data:", "blob:"))
           else elsewhere.append(req.url))
    return elsewhere


@pytest.fixture()
def page(browser, base):
    ctx = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    elsewhere = _local_only(ctx, base)
    yield ctx.new_page()
    ctx.close()
    assert not elsewhere, f"the page fetched from outside the server: {elsewhere}"


@pytest.fixture()
def phone(browser, base):
    ctx = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    elsewhere = _local_only(ctx, base)
    yield ctx.new_page()
    ctx.close()
    assert not elsewhere, f"the page fetched from outside the server: {elsewhere}"


def check_axe(pg, axe: str, name: str) -> None:
    """axe-core on the page as it is now: no serious or critical violation."""
    if not pg.evaluate("typeof window.axe !== 'undefined'"):
        pg.add_script_tag(content=axe)
    found = pg.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
    }""")
    AXE_RESULTS[name] = found
    bad = [v for v in found if v["impact"] in ("serious", "critical")]
    assert not bad, f"{name}: axe-core violations {json.dumps(bad, indent=1)}"


def shoot(pg, name: str) -> None:
    """Full page at desktop width; at phone width the first 1,600 CSS pixels (readable when viewed)."""
    if pg.viewport_size["width"] < 600:
        height = min(1600, pg.evaluate("document.documentElement.scrollHeight"))
        pg.screenshot(path=str(OUT / f"web-{name}.png"), full_page=True,
                      clip={"x": 0, "y": 0, "width": pg.viewport_size["width"], "height": height})
    else:
        pg.screenshot(path=str(OUT / f"web-{name}.png"), full_page=True)


def wait_code(pg, code: str) -> None:
    pg.wait_for_function(f"document.querySelector('#code-title') && "
                         f"document.querySelector('#code-title').innerText.startsWith({code!r} + ' ')",
                         timeout=20_000)


# ---------------------------------------------------------------------- first page, search
def test_first_page_weight(base, page):
    transferred = []
    page.on("requestfinished", lambda req: transferred.append((req.url, req.sizes()["responseBodySize"]
                                                                + req.sizes()["responseHeadersSize"])))
    page.goto(base + "/")
    page.wait_for_load_state("networkidle")
    total = sum(n for _u, n in transferred)
    METRICS["first_page_bytes"] = total
    METRICS["first_page_files"] = {u.replace(base, ""): n for u, n in transferred}
    print(f"\nfirst page: {total} bytes transferred in {len(transferred)} files")
    assert total < 100_000, METRICS["first_page_files"]
    assert page.evaluate("document.activeElement.id") == "q"          # the search box has focus


def test_search_keyboard_to_e1165(base, page, phone, axe):
    page.goto(base + "/")
    page.locator("footer").click()                                   # focus away from the box
    page.keyboard.press("/")                                         # `/` focuses the search box
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("diab", delay=60)                             # results come as you type
    page.locator("#results a.hit", has_text="E11.65").wait_for(timeout=20_000)
    # grouped by system, with the index path that matched and billable marked
    groups = page.locator("#results .group h2").all_inner_texts()
    assert any(g.startswith("ICD-10-CM (") for g in groups) and any(g.startswith("HCPCS Level II (") for g in groups)
    e119 = page.locator("#results a.hit", has_text="Type 2 diabetes mellitus without complications").inner_text()
    assert e119.startswith("E11.9") and "Alphabetic Index: Diabetes, diabetic" in e119 and "billable" in e119
    assert "diab" in page.url                                         # the search is bookmarkable
    shoot(page, "search-desktop")
    check_axe(page, axe, "search")

    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement === document.querySelector('#results a.hit')")
    page.keyboard.press("Escape")                                    # back to the box
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.press("ArrowDown")
    for _ in range(60):                                              # arrows alone down to E11.65
        if page.evaluate("document.activeElement.innerText").startswith("E11.65"):
            break
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    wait_code(page, "E11.65")
    assert "Type 2 diabetes mellitus with hyperglycemia" in page.locator("#code-title").inner_text()

    page.goto(base + "/#/search?q=diabetes%20hyperglycemia")         # a bookmarked search
    page.locator("#results a.hit", has_text="E11.65").wait_for(timeout=20_000)
    page.goto(base + "/")
    for q in ("diab", "walker", "appendectomy", "E11.6", "fracture femur"):
        page.fill("#q", q)
        page.wait_for_function("window.medcodesTimings.some(t => t.q === %s)" % json.dumps(q), timeout=20_000)
    timings = page.evaluate("window.medcodesTimings")
    METRICS["search_render_ms"] = timings
    print("\nsearch: ms from response to results in the DOM / painted:",
          [(t["q"], round(t["dom_ms"], 1), round(t["painted_ms"], 1)) for t in timings])

    phone.goto(base + "/#/search?q=diab")
    phone.locator("#results a.hit", has_text="E11.9").wait_for(timeout=20_000)
    shoot(phone, "search-phone")
    check_axe(phone, axe, "search-phone")


def test_pcs_table_hit_opens_builder(base, page):
    page.goto(base + "/#/search?q=0DT&system=icd10pcs")
    hit = page.locator("#results a.hit", has_text="Gastrointestinal System, Resection")
    hit.wait_for(timeout=20_000)
    assert hit.get_attribute("href").startswith("#/pcs/0DT")
    hit.click()
    page.locator("table.pcs-row").first.wait_for()


# ---------------------------------------------------------------------- ICD-10-CM code page
def test_e1165_tabular_notes(base, page, phone, axe):
    page.goto(base + "/#/code/icd10cm/E11.65")
    wait_code(page, "E11.65")
    crumbs = page.locator("nav[aria-label=Breadcrumb]").inner_text()
    for part in ("Chapter 4", "E08-E13", "E11", "E11.6"):
        assert part in crumbs
    cat = page.locator(".note-level.inherited[data-from=E11]")
    assert cat.get_attribute("data-level") == "category"
    assert "inherited" in cat.locator("h3").inner_text()
    ex1 = cat.locator(".note-group[data-kind=excludes1]")
    assert ex1.locator("h4").inner_text().startswith("Excludes1")
    assert ex1.locator("li").count() == 8                             # the agency's eight Excludes1 items at E11
    link = ex1.locator("a.ref", has_text="E10.-")
    assert link.get_attribute("href") == "#/code/icd10cm/E10"
    # "code to identify control using:" is a heading with its items beneath
    heading = cat.locator(".note-group[data-kind=useAdditionalCode] li.note-heading")
    assert heading.locator("> span").inner_text() == "code to identify control using:"
    assert heading.locator("ul li").count() == 4
    assert heading.locator("a.ref", has_text="Z79.4").count() == 1
    chapter = page.locator(".note-level.inherited[data-level=chapter]")
    assert "P70-P74" in chapter.locator(".note-group[data-kind=excludes1]").inner_text()
    page.locator("#history table").wait_for(timeout=20_000)
    shoot(page, "code-icd10cm-desktop")
    check_axe(page, axe, "code-icd10cm")

    # the date of service picks the release shown, and goes into the address
    page.fill("#dos", "2017-06-01")
    page.dispatch_event("#dos", "change")
    page.wait_for_function("document.querySelector('.meta') && "
                           "document.querySelector('.meta').innerText.includes('release 2017 ')")
    assert "date=2017-06-01" in page.url

    link = page.locator(".note-group[data-kind=excludes1] a.ref", has_text="E10.-").first
    link.click()
    wait_code(page, "E10")

    phone.goto(base + "/#/code/icd10cm/E11.65")
    wait_code(phone, "E11.65")
    shoot(phone, "code-icd10cm-phone")
    check_axe(phone, axe, "code-icd10cm-phone")


def test_seventh_character_table(base, page, axe):
    page.goto(base + "/#/code/icd10cm/S72.001A")
    wait_code(page, "S72.001A")
    sev = page.locator("section.seventh")
    assert "defined at S72" in sev.locator("h2").inner_text()
    current = sev.locator("tr.current")
    assert current.inner_text().replace("\t", " ").strip() == "A initial encounter for closed fracture"
    assert sev.locator("tbody tr").count() == 16
    shoot(page, "code-seventh-desktop")
    check_axe(page, axe, "code-seventh")


# ---------------------------------------------------------------------- ICD-10-PCS table builder
def test_build_0dtj4zz(base, page, phone, axe):
    page.goto(base + "/#/code/icd10pcs/0DTJ4ZZ")
    wait_code(page, "0DTJ4ZZ")
    shoot(page, "code-icd10pcs-desktop")
    check_axe(page, axe, "code-icd10pcs")
    page.get_by_role("link", name="Open table 0DT in the table builder").click()
    page.locator("#pcs-complete").wait_for()                         # its axes highlighted
    assert page.locator("#pcs-complete").inner_text() == "0DTJ4ZZ"
    assert page.locator("button.value.picked").count() >= 4

    page.get_by_role("button", name="Clear picks").click()
    assert page.locator("button.value.picked").count() == 0
    status = page.locator("#pcs-status")
    assert "valid codes can still be built" in status.inner_text()

    def pick(pos: int, char: str) -> None:
        page.locator(f"button.value[data-key='v-{pos}-{char}']:not([disabled])").first.click()

    pick(4, "1")                                                     # Esophagus, Upper
    # invalid combination cannot be built: no row of 0DT has Esophagus, Upper with qualifier G
    assert page.locator("button.value[data-key='v-7-G']:not([disabled])").count() == 0
    pick(4, "1")                                                     # undo
    pick(4, "J")                                                     # Appendix
    pick(5, "4")                                                     # Percutaneous Endoscopic
    assert "valid codes can still be built" in status.inner_text() or "valid code can" in status.inner_text()
    pick(6, "Z")
    pick(7, "Z")
    done = page.locator("#pcs-complete")
    done.wait_for()
    assert done.inner_text() == "0DTJ4ZZ"
    page.wait_for_function("document.querySelector('#pcs-complete-title').innerText.includes("
                           "'Resection of Appendix, Percutaneous Endoscopic Approach')")
    assert "pick=J4ZZ" in page.url                                   # the built code is bookmarkable
    legend = page.locator("section.legend").inner_text()
    assert "Vermiform appendix" in legend                            # body part term (definitions file)
    assert "Entry, by puncture or minor incision" in legend         # approach definition
    shoot(page, "pcs-builder-desktop")
    check_axe(page, axe, "pcs-builder")

    phone.goto(base + "/#/code/icd10pcs/0DTJ4ZZ")
    wait_code(phone, "0DTJ4ZZ")
    shoot(phone, "code-icd10pcs-phone")
    phone.goto(base + "/#/pcs/0DT?pick=J4")
    phone.locator("table.pcs-row").first.wait_for()
    shoot(phone, "pcs-builder-phone")
    check_axe(phone, axe, "pcs-builder-phone")


# ---------------------------------------------------------------------- HCPCS
def test_hcpcs_fields_and_modifiers(base, page, phone, axe):
    page.goto(base + "/#/code/hcpcs/E0130")
    wait_code(page, "E0130")
    fields = page.locator("dl.fields").inner_text()
    assert "D1E (Other DME)" in fields                               # BETOS in words
    assert "D (Special coverage instructions apply)" in fields       # coverage in words
    page.locator("details.modifiers summary").click()
    page.locator("#modifiers table").wait_for(timeout=20_000)
    page.fill("#mod-filter", "LT")
    assert "Left side" in page.locator("#modifiers tbody").inner_text()
    shoot(page, "code-hcpcs-desktop")
    check_axe(page, axe, "code-hcpcs")
    page.locator("#modifiers a", has_text="LT").first.click()
    wait_code(page, "LT")
    phone.goto(base + "/#/code/hcpcs/E0130")
    wait_code(phone, "E0130")
    shoot(phone, "code-hcpcs-phone")
    check_axe(phone, axe, "code-hcpcs-phone")


def test_hcpcs_2026_code_page_shows_notes_noc_and_correction(base, page):
    """January 2026 HCPCS on the page: S0189 (corrected: terminated), its processing note; J3490 is NOC."""
    page.goto(base + "/#/code/hcpcs/S0189")
    page.locator("text=corrected by CMS").wait_for()
    text = page.locator("#view").inner_text()
    assert "release 2026-01" in text and "processing note 0088" in text
    assert "Terminate effective 2026-01-01" in text
    page.goto(base + "/#/code/hcpcs/J3490")
    page.locator("span.tag:text-is('NOC')").wait_for()


# ---------------------------------------------------------------------- claim form
def test_claim_bad_pointer_beside_its_line(base, page, phone, axe):
    page.goto(base + "/#/claim")
    page.get_by_label("Date of service").fill("2026-05-01")
    page.get_by_label("Patient sex").select_option("F")
    page.get_by_label("Diagnosis 1 code").fill("E11.65")
    page.get_by_label("Line 1 code").fill("E0130")
    page.get_by_label("Line 1 diagnosis pointers").fill("A")
    page.get_by_label("Line 2 code").fill("E0130")
    page.get_by_label("Line 2 diagnosis pointers").fill("C")            # points at no diagnosis
    page.get_by_role("button", name="Check claim").click()
    page.locator("#claim-verdict").wait_for(timeout=20_000)
    rows = page.locator("#line-table tbody tr")
    line2 = page.locator("#line-table tbody tr.entry").nth(1)
    after = line2.locator("xpath=following-sibling::tr[1]")
    assert "finding-row" in after.get_attribute("class")
    text = after.inner_text()
    assert "line-diagnosis-pointer" in text and "Diagnosis pointer 3" in text
    assert line2.get_by_label("Line 2 diagnosis pointers").get_attribute("aria-invalid") == "true"
    # line 1's pointer is fine; E0130 (a walker) has practitioner MUE 0 in NCCI 2026 Q2 (a DME supplier
    # bills it), and that finding is about line 1's units (Box 24G)
    line1 = page.locator("#line-table tbody tr.entry").nth(0)
    line1_next = line1.locator("xpath=following-sibling::tr[1]").inner_text()
    assert "ncci-mue" in line1_next and "Box 24G" in line1_next and "line-diagnosis-pointer" not in line1_next
    assert line1.get_by_label("Line 1 units").get_attribute("aria-invalid") == "true"
    assert line1.get_by_label("Line 1 diagnosis pointers").get_attribute("aria-invalid") is None
    assert rows.count() >= 4
    shoot(page, "claim-desktop")
    check_axe(page, axe, "claim")

    phone.goto(base + "/#/claim")
    phone.get_by_label("Claim form").select_option("institutional")
    phone.get_by_label("Date of service").fill("2026-05-01")
    phone.get_by_label("Diagnosis 1 code").fill("E11")
    phone.get_by_label("Procedure 1 code").fill("0DTJ4ZZ")
    phone.get_by_role("button", name="Check claim").click()
    phone.locator("#claim-verdict").wait_for(timeout=20_000)
    dx1 = phone.locator("#dx-table tbody tr.entry").nth(0).locator("xpath=following-sibling::tr[1]")
    assert "dx-header" in dx1.inner_text()
    shoot(phone, "claim-phone")
    check_axe(phone, axe, "claim-phone")


# ---------------------------------------------------------------------- release changes
def test_release_diff_filter_and_csv(base, page, phone, axe):
    api = httpx.get(base + "/diff", params={"system": "icd10cm", "from": "2025", "to": "2026", "limit": 1}, timeout=120)
    counts = api.json()["counts"]
    page.goto(base + "/#/diff?system=icd10cm&from=2025&to=2026&change=added")
    page.locator("#diff-table").wait_for(timeout=60_000)
    status = page.locator("#diff-status").inner_text()
    assert f"added {counts['added']}" in status and f"{counts['added']} rows match" in status
    page.fill("#diff-q", "E11.")
    page.wait_for_function("document.querySelector('#diff-status').innerText.includes(' match') && "
                           "location.hash.includes('q=E11.')")
    codes = page.locator("#diff-table tbody td:nth-child(2)").all_inner_texts()
    assert codes and all(c.startswith("E11.") for c in codes)
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download these").click()
    lines = Path(dl.value.path()).read_text().splitlines()
    assert lines[0] == "change,code,kind,field,before,after" and len(lines) == len(codes) + 1
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download the whole comparison").click()
    full = Path(dl.value.path()).read_text().splitlines()
    assert len(full) == 1 + sum(counts[k] for k in ("added", "deleted", "title_revised",
                                                    "short_title_revised", "billable_changed"))
    shoot(page, "diff-desktop")
    check_axe(page, axe, "diff")
    phone.goto(base + "/#/diff?system=hcpcs&from=2020-10&to=2026-01&change=deleted")
    phone.locator("#diff-table").wait_for(timeout=60_000)
    shoot(phone, "diff-phone")
    check_axe(phone, axe, "diff-phone")


def test_inpatient_claim_drg_panel(base, page, axe):
    """The MS-DRG panel of an inpatient claim when the server groups claims (POST /claims/group),
    else the page says grouping is not available."""
    claim = {"id": "demo-1", "type": "institutional", "setting": "inpatient", "service_date": "2026-03-01",
             "patient": {"sex": "M", "birth_date": "1950-01-01"}, "diagnoses": ["I21.4", "E11.65", "J96.01"],
             "procedures": [], "lines": []}                        # what the form below sends
    probe = httpx.post(base + "/claims/group", json=claim, timeout=120)
    page.goto(base + "/#/claim")
    page.get_by_label("Claim form").select_option("institutional")
    page.get_by_label("Setting").select_option("inpatient")
    page.get_by_label("Date of service").fill("2026-03-01")
    page.get_by_label("Patient sex").select_option("M")
    page.get_by_label("Birth date").fill("1950-01-01")
    page.get_by_label("Diagnosis 1 code").fill("I21.4")          # NSTEMI, principal
    page.get_by_label("Diagnosis 2 code").fill("E11.65")
    page.get_by_label("Diagnosis 3 code").fill("J96.01")         # acute respiratory failure with hypoxia
    page.get_by_role("button", name="Check claim").click()
    page.locator("#claim-verdict").wait_for(timeout=20_000)
    if probe.status_code in (404, 405, 501):
        page.locator("#drg-absent").wait_for(timeout=20_000)
        return
    assert probe.status_code == 200, probe.text
    g = probe.json()
    page.locator("#drg-title").wait_for(timeout=30_000)
    assert page.locator("#drg-title").inner_text().startswith(f"MS-DRG {g['drg']}")
    table = page.locator("#drg-secondary").inner_text()
    for s in g["secondary"]:
        assert s["code"] in table
    levels = {s["code"]: s["counts_as"] for s in page.evaluate("""() =>
        [...document.querySelectorAll('#dx-table tr.entry')]
        .filter(tr => tr.querySelector('.drg-level'))
        .map(tr => ({code: tr.querySelector('input').value, counts_as: tr.querySelector('.drg-level').innerText}))""")}
    assert levels == {s["code"]: s["counts_as"] for s in g["secondary"]}
    shoot(page, "claim-drg-desktop")
    check_axe(page, axe, "claim-drg")


def test_table_chooser_range_and_unknown_code(base, page, phone, axe):
    page.goto(base + "/#/pcs")
    page.get_by_label("Table").fill("0dt")
    shoot(page, "pcs-chooser-desktop")
    check_axe(page, axe, "pcs-chooser")
    page.get_by_role("button", name="Open table").click()
    page.locator("table.pcs-row").first.wait_for()
    assert page.locator("#pcs-title").inner_text().startswith("Table 0DT")
    # a range in a note that is no block of the Tabular (Chapter 4's "E16-E31") links to both ends
    page.goto(base + "/#/code/icd10cm/E16-E31")
    page.locator("#code-title").wait_for()
    page.get_by_role("link", name="E16", exact=True).wait_for()
    page.get_by_role("link", name="E31", exact=True).wait_for()
    check_axe(page, axe, "code-range")
    page.goto(base + "/#/code/icd10cm/E11.99")                         # no such code: the nearest ones
    page.locator(".verdict.bad").wait_for()
    assert page.locator("p", has_text="Nearest:").last.locator("a").count() >= 1
    check_axe(page, axe, "code-unknown")
    phone.goto(base + "/#/pcs")
    phone.locator("#pcs-title").wait_for()
    shoot(phone, "pcs-chooser-phone")
    check_axe(phone, axe, "pcs-chooser-phone")


def test_code_a_note(base, page, phone, axe):
    """The "Code a note" page: each span of the note marked with the code it produced (E11.65 from
    "type 2 diabetes ... hyperglycemia"), the negated "chest pain" marked with why it was not coded."""
    import time

    deadline = time.monotonic() + 180          # the first note loads the books (seconds, more under load)
    while httpx.post(base + "/code", json={"text": "Gout.", "date": "2026-05-01"}, timeout=60).status_code != 200:
        assert time.monotonic() < deadline, "POST /code never answered 200"
        time.sleep(2)
    note = ("58-year-old man with type 2 diabetes, poorly controlled with hyperglycemia, on metformin. "
            "Denies chest pain.")
    for pg, name in ((page, "note"), (phone, "note-phone")):
        pg.goto(base + "/")
        pg.get_by_role("link", name="Code a note").click()
        pg.get_by_label("Clinical note").fill(note)
        pg.get_by_label("Date of service").fill("2026-05-01")
        pg.get_by_role("button", name="Code the note").click()
        pg.locator("#codes li").first.wait_for(timeout=60_000)
        coded = pg.locator("#marked a.mark.coded").first
        assert "type 2 diabetes" in coded.inner_text() and "E11.65" in coded.get_attribute("title")
        assert "E11.65" in pg.locator("#codes").inner_text() and "Z79.84" in pg.locator("#codes").inner_text()
        skipped = pg.locator("#marked a.mark.skipped", has_text="chest pain")
        assert "negated" in skipped.get_attribute("title")
        assert "negated" in pg.locator("#skipped").inner_text()
        check_axe(pg, axe, name)
        shoot(pg, name)
