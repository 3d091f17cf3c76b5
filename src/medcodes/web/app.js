// medcodes web page: the router and search as you type (the first page). Plain JS modules, no build
// step; the other pages (code, PCS table builder, claim, release changes) load when first opened.
"use strict";
import { $, $$, el, api, hashUrl, codeHref, billableTag, SYSTEM_NAMES } from "./util.js";

// ------------------------------------------------------------------ search
let searchSeq = 0;
let searchTimer = null;
let searchAbort = null;
let shownQuery = null;
window.medcodesTimings = [];   // per search: ms from the response to results on screen (read by the tests)

function scheduleSearch() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 100);
}

function matchedText(m) {
  if (["title", "code", "short_title", "short title"].includes(m)) return `matched the ${m.replace("_", " ")}`;
  return m;   // e.g. "ICD-10-CM Alphabetic Index: Diabetes, diabetic > with > hyperglycemia"
}

function hitItem(h) {
  const pcsTable = h.system === "icd10pcs" && h.code.length === 3;
  const matched = (h.matched || []).filter((m) => m !== "title" || (h.matched || []).length === 1);
  return el("li", {},
    el("a", { href: codeHref(h.system, h.code), class: "hit" },
      el("span", { class: "code" }, h.code),
      el("span", { class: "hit-title" }, h.title || "",
        pcsTable ? el("span", { class: "tag" }, "table: open the builder") : null, billableTag(h.billable)),
      matched.length ? el("span", { class: "matched" }, matched.map(matchedText).join(" · ")) : null));
}

function renderHits(hits) {
  // grouped by system, in the order each system first appears in the ranking
  const groups = new Map();
  for (const h of hits) {
    if (!groups.has(h.system)) groups.set(h.system, []);
    groups.get(h.system).push(h);
  }
  return [...groups].map(([system, items]) => {
    const id = `group-${system}`;
    return el("section", { class: "group", "aria-labelledby": id },
      el("h2", { id, class: "group-title" }, `${SYSTEM_NAMES[system] || system} `, el("span", { class: "count" }, `(${items.length})`)),
      el("ol", {}, items.map(hitItem)));
  });
}

async function runSearch() {
  const q = $("#q").value.trim();
  const system = $("#system").value;
  const seq = ++searchSeq;
  const status = $("#search-status");
  const box = $("#results");
  history.replaceState(null, "", hashUrl("search", { q, system }));
  shownQuery = null;
  if (!q) { box.replaceChildren(); status.textContent = ""; return; }
  if (searchAbort) searchAbort.abort();
  searchAbort = new AbortController();
  status.textContent = "Searching…";
  const params = new URLSearchParams({ q, limit: "50" });
  if (system) params.set("system", system);
  let r;
  try {
    r = await api("/search?" + params, { signal: searchAbort.signal });
  } catch (e) {
    if (e.name !== "AbortError") status.textContent = "Search failed: " + e.message;
    return;
  }
  if (seq !== searchSeq) return;
  if (!r.ok) { box.replaceChildren(); status.textContent = (r.body && r.body.error) || `Search failed (HTTP ${r.status})`; return; }
  const hits = r.body.hits || [];
  box.replaceChildren(...renderHits(hits));
  shownQuery = q + "\0" + system;
  const total = r.body.total ?? hits.length;
  status.textContent = hits.length
    ? `${total} result${total === 1 ? "" : "s"} for “${q}”${total > hits.length ? `, best ${hits.length} shown` : ""}`
    : `No results for “${q}”`;
  const dom = performance.now() - r.received;
  requestAnimationFrame(() => setTimeout(() => {
    window.medcodesTimings.push({ q, hits: hits.length, dom_ms: dom, painted_ms: performance.now() - r.received });
  }, 0));
}

function resultLinks() { return $$("#results a.hit"); }

function resultKeys(ev) {
  const links = resultLinks();
  const i = links.indexOf(document.activeElement);
  if (ev.key === "ArrowDown") {
    ev.preventDefault();
    (links[i + 1] || links[links.length - 1])?.focus();
  } else if (ev.key === "ArrowUp") {
    ev.preventDefault();
    if (i <= 0) $("#q").focus(); else links[i - 1].focus();
  } else if (ev.key === "Home" && i >= 0) {
    ev.preventDefault(); links[0].focus();
  } else if (ev.key === "End" && i >= 0) {
    ev.preventDefault(); links[links.length - 1].focus();
  } else if (ev.key === "Escape") {
    ev.preventDefault();
    $("#q").focus();
  }
}

function boxKeys(ev) {
  if (ev.key === "ArrowDown") {
    ev.preventDefault();
    clearTimeout(searchTimer);
    resultLinks()[0]?.focus();
  } else if (ev.key === "Enter") {
    ev.preventDefault();
    clearTimeout(searchTimer);
    const first = resultLinks()[0];
    // results already shown for what is typed: Enter opens the best one; otherwise search now
    if (first && shownQuery === $("#q").value.trim() + "\0" + $("#system").value) location.hash = first.getAttribute("href");
    else runSearch();
  } else if (ev.key === "Escape") {
    if ($("#q").value) { ev.preventDefault(); $("#q").value = ""; runSearch(); }
  }
}

// ------------------------------------------------------------------ routing
const PAGES = {
  code: () => import("./code.js"),
  pcs: () => import("./pcs.js"),
  claim: () => import("./claim.js"),
  diff: () => import("./diff.js"),
};

async function route() {
  const hash = location.hash || "#/";
  const [pathPart, query] = hash.slice(2).split("?");
  const parts = pathPart.split("/").map(decodeURIComponent);
  const params = new URLSearchParams(query || "");
  const page = PAGES[parts[0]];
  const view = $("#view");
  if (!page) {
    $("#search-view").hidden = false;
    view.hidden = true;
    document.title = "medcodes: US medical billing codes";
    const q = params.get("q") || "";
    if (parts[0] === "search" && (q !== $("#q").value || (params.get("system") || "") !== $("#system").value)) {
      $("#q").value = q;
      $("#system").value = params.get("system") || "";
      runSearch();
    }
    $("#q").focus();
    return;
  }
  $("#search-view").hidden = true;
  view.hidden = false;
  view.replaceChildren(el("p", { class: "status", role: "status" }, "Loading…"));
  try {
    const mod = await page();
    await mod.show(view, parts.slice(1), params);
  } catch (e) {
    view.replaceChildren(el("h1", {}, "Something went wrong"), el("p", { class: "verdict bad" }, String(e.message || e)));
  }
}

function slashFocus(ev) {
  if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target;
  if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
  ev.preventDefault();
  if (!$("#search-view").hidden) { $("#q").focus(); $("#q").select(); return; }
  location.hash = hashUrl("search", { q: $("#q").value, system: $("#system").value });
}

function start() {
  $("#q").addEventListener("input", scheduleSearch);
  $("#q").addEventListener("keydown", boxKeys);
  $("#system").addEventListener("change", runSearch);
  $("#results").addEventListener("keydown", resultKeys);
  document.addEventListener("keydown", slashFocus);
  window.addEventListener("hashchange", route);
  route();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
