// medcodes web page: search as you type, code pages, claim checker. Plain JS, no build step.
// Every value from the server is put in the page with textContent (never innerHTML).
"use strict";

const SYSTEM_NAMES = {
  icd10cm: "ICD-10-CM", icd10pcs: "ICD-10-PCS", hcpcs: "HCPCS Level II", cpt: "CPT", icd9cm: "ICD-9-CM",
};
const STRUCTURAL = new Set(["chapter", "block", "section", "body_system"]);
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// ------------------------------------------------------------------ API
async function api(path, options = {}) {
  const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
  const key = sessionStorage.getItem("medcodes-api-key");
  if (key) headers["X-API-Key"] = key;
  const resp = await fetch(path, Object.assign({}, options, { headers }));
  if (resp.status === 401 && !options.retried) {
    const given = window.prompt("This server needs an API key:");
    if (given) {
      sessionStorage.setItem("medcodes-api-key", given);
      return api(path, Object.assign({}, options, { retried: true }));
    }
  }
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  return { status: resp.status, ok: resp.ok, body };
}

const codeHref = (system, code) => `#/code/${encodeURIComponent(system)}/${encodeURIComponent(code)}`;

function billableTag(b) {
  if (b === true) return el("span", { class: "tag yes" }, "billable");
  if (b === false) return el("span", { class: "tag no" }, "not billable");
  return null;
}

// ------------------------------------------------------------------ search
let searchSeq = 0;
let searchTimer = null;
let searchAbort = null;

function scheduleSearch() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 120);
}

async function runSearch() {
  const q = $("#q").value.trim();
  const system = $("#system").value;
  const seq = ++searchSeq;
  const status = $("#search-status");
  const list = $("#results");
  if (!q) { list.replaceChildren(); status.textContent = ""; return; }
  if (searchAbort) searchAbort.abort();
  searchAbort = new AbortController();
  status.textContent = "Searching…";
  let hits;
  try {
    hits = await searchHits(q, system, searchAbort.signal);
  } catch (e) {
    if (e.name === "AbortError") return;
    status.textContent = "Search failed: " + e.message;
    return;
  }
  if (seq !== searchSeq) return;
  list.replaceChildren(...hits.map((h) => el("li", {},
    el("a", { href: codeHref(h.system, h.code) },
      el("span", { class: "code" }, h.code),
      el("span", { class: "sys" }, SYSTEM_NAMES[h.system] || h.system),
      el("span", {}, h.title || ""), billableTag(h.billable)))));
  status.textContent = hits.length ? `${hits.length} result${hits.length === 1 ? "" : "s"} for “${q}”` : `No results for “${q}”`;
}

async function searchHits(q, system, signal) {
  const params = new URLSearchParams({ q, limit: "25" });
  if (system) params.set("system", system);
  const r = await api("/search?" + params, { signal });
  if (r.status !== 501) {
    if (!r.ok) throw new Error((r.body && r.body.error) || r.status);
    return r.body.hits || [];
  }
  // search module absent: identify the string as a code, then list codes starting with it
  const found = [];
  const id = await api("/identify?" + new URLSearchParams({ q }), { signal });
  if (id.ok) for (const i of id.body) if (i.exists && (!system || i.system === system)) found.push(i);
  const pre = await api("/codes?" + new URLSearchParams({ prefix: q, system: system || "icd10cm", limit: "20" }), { signal });
  if (pre.ok) for (const c of pre.body.results) if (!found.some((f) => f.code === c.code)) found.push(c);
  return found;
}

function resultKeys(ev) {
  const links = [...document.querySelectorAll("#results a")];
  const i = links.indexOf(document.activeElement);
  if (ev.key === "ArrowDown") {
    ev.preventDefault();
    (links[i + 1] || links[0])?.focus();
  } else if (ev.key === "ArrowUp") {
    ev.preventDefault();
    if (i <= 0) $("#q").focus(); else links[i - 1].focus();
  } else if (ev.key === "Escape") {
    $("#q").focus();
  }
}

// ------------------------------------------------------------------ code page
async function showCode(system, code) {
  const view = $("#code-view");
  view.replaceChildren(el("p", { class: "status" }, `Loading ${code}…`));
  const r = await api(`/codes/${encodeURIComponent(code)}?system=${encodeURIComponent(system)}`);
  if (!r.ok) {
    const sugg = (r.body && r.body.suggestions) || [];
    view.replaceChildren(el("h2", {}, code), el("p", { class: "verdict bad" }, (r.body && r.body.error) || `HTTP ${r.status}`),
      sugg.length ? el("p", {}, "Nearest: ", ...sugg.map((s) => [el("a", { href: codeHref(system, s) }, s), " "])) : null);
    return;
  }
  const d = r.body;
  const parts = [
    el("h2", { id: "code-title" }, el("span", { class: "code" }, d.code), " ", d.title),
    el("p", {}, `${d.system_name} · release ${d.release} (${d.release_label}) · `, d.maintainer, " ",
      billableTag(d.billable), d.kind ? el("span", { class: "tag" }, d.kind) : null,
      d.noc ? el("span", { class: "tag" }, "NOC") : null,
      d.status && d.status.corrected ? el("span", { class: "tag" }, "corrected by CMS") : null),
  ];
  if (d.coverage_note) parts.push(el("p", { class: "verdict bad" }, d.coverage_note));
  if (d.short_title && d.short_title !== d.title) parts.push(el("p", {}, "Short title: ", d.short_title));
  if (d.ancestors && d.ancestors.length) {
    parts.push(el("h3", {}, "Hierarchy"), el("nav", { "aria-label": "Hierarchy" }, el("ol", { class: "crumbs" },
      ...d.ancestors.map((a) => el("li", {}, STRUCTURAL.has(a.kind)
        ? el("span", { title: a.kind }, `${a.code} ${a.title}`)
        : el("a", { href: codeHref(d.system, a.code) }, a.code), STRUCTURAL.has(a.kind) ? null : " " + a.title)),
      el("li", { "aria-current": "page" }, d.code))));
  }
  if (d.seventh_character) {
    parts.push(el("p", {}, el("strong", {}, "7th character "), `${d.seventh_character.char}: ${d.seventh_character.meaning}`));
  }
  const axes = d.axes || (d.structure && d.structure.axes);
  if (axes && axes.length) {
    parts.push(el("h3", {}, "ICD-10-PCS axes"), el("table", {},
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Position"), el("th", { scope: "col" }, "Axis"),
        el("th", { scope: "col" }, "Value"), el("th", { scope: "col" }, "Meaning"))),
      el("tbody", {}, ...axes.map((a) => el("tr", {}, el("td", {}, a.position), el("td", {}, a.name),
        el("td", { class: "code" }, a.char), el("td", {}, a.label))))));
  }
  if (d.fields && typeof d.fields === "object" && Object.keys(d.fields).length) {
    parts.push(el("h3", {}, "HCPCS fields"), el("dl", { class: "fields" },
      ...Object.entries(d.fields).map(([k, v]) => [el("dt", {}, k), el("dd", {}, Array.isArray(v) ? v.join("; ") : String(v))])));
  }
  const notes = d.notes || [];
  if (notes.length) {
    parts.push(el("h3", {}, "Notes"), el("ul", {}, ...notes.map((n) => el("li", {},
      el("span", { class: "note-kind" }, n.kind), n.inherited ? ` (from ${n.from})` : "", ": ", n.text))));
  }
  if (d.children && d.children.length) {
    parts.push(el("h3", {}, `Codes below (${d.children.length})`), el("ul", {}, ...d.children.map((c) =>
      el("li", {}, el("a", { href: codeHref(d.system, c.code) }, c.code), " ", c.title, billableTag(c.billable)))));
  }
  const hist = el("div", { id: "history" }, el("p", { class: "status" }, "Loading history…"));
  parts.push(el("h3", {}, "History across installed releases"), hist);
  view.replaceChildren(...parts);
  document.title = `${d.code} ${d.title} · medcodes`;
  $("#code-title").setAttribute("tabindex", "-1");
  $("#code-title").focus();
  showHistory(hist, d.system, d.code);
}

async function showHistory(box, system, code) {
  const r = await api(`/history/${encodeURIComponent(code)}?system=${encodeURIComponent(system)}`);
  if (!r.ok) { box.replaceChildren(el("p", { class: "status" }, (r.body && r.body.error) || "no history")); return; }
  const rows = r.body.releases || [];
  box.replaceChildren(el("table", {},
    el("thead", {}, el("tr", {}, ...["Release", "In effect", "Present", "Title", "Changes"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows.map((s) => el("tr", {}, el("td", {}, s.release),
      el("td", {}, `${s.effective_from} – ${s.effective_to || "open"}`), el("td", {}, s.present ? "yes" : "no"),
      el("td", {}, s.title || ""), el("td", {}, (s.changes || []).join("; ")))))));
}

// ------------------------------------------------------------------ claim form
function splitCodes(text) {
  return text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
}

function parseLine(text) {
  // CODE [MOD ...] [xUNITS] [-> 1,2]
  const [left, ptrs] = text.split("->");
  const tokens = left.trim().split(/\s+/).filter(Boolean);
  const line = { code: tokens.shift(), modifiers: [], units: 1 };
  for (const t of tokens) {
    const m = /^x(\d+(?:\.\d+)?)$/i.exec(t);
    if (m) line.units = Number(m[1]); else if (t.toLowerCase() !== "x") line.modifiers.push(t.toUpperCase());
  }
  if (ptrs) line.diagnosis_pointers = splitCodes(ptrs).map(Number).filter((n) => n > 0);
  return line;
}

function claimFromForm(form) {
  const f = new FormData(form);
  const claim = {
    id: f.get("id"), type: f.get("type"), service_date: f.get("service_date"),
    patient: { sex: f.get("sex") },
    diagnoses: splitCodes(f.get("diagnoses") || ""),
    procedures: splitCodes(f.get("procedures") || ""),
    lines: (f.get("lines") || "").split("\n").map((s) => s.trim()).filter(Boolean).map(parseLine),
  };
  if (f.get("birth_date")) claim.patient.birth_date = f.get("birth_date");
  return claim;
}

async function submitClaim(ev) {
  ev.preventDefault();
  const out = $("#claim-result");
  out.replaceChildren(el("p", { class: "status" }, "Checking…"));
  const r = await api("/claims/check", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(claimFromForm(ev.target)),
  });
  if (!r.ok) {
    out.replaceChildren(el("p", { class: "verdict bad" }, (r.body && r.body.error) || `HTTP ${r.status}`));
    return;
  }
  const res = r.body;
  const findings = res.findings || [];
  const errors = findings.filter((x) => x.severity === "error").length;
  out.replaceChildren(
    el("h3", { id: "claim-verdict", class: "verdict " + (res.ok ? "ok" : "bad"), tabindex: "-1" },
      res.ok ? `Claim ${res.claim}: no errors` : `Claim ${res.claim}: ${errors} error${errors === 1 ? "" : "s"}`,
      ` (${findings.length} finding${findings.length === 1 ? "" : "s"})`),
    el("p", { class: "status" }, "Releases used: " + Object.entries(res.releases || {}).map(([s, v]) => `${SYSTEM_NAMES[s] || s} ${v}`).join(", ")),
    findings.length ? el("table", { id: "findings" },
      el("thead", {}, el("tr", {}, ...["Severity", "Rule", "Where", "Codes", "Finding", "Source"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...findings.map((x) => el("tr", {},
        el("td", { class: "sev-" + x.severity }, x.severity), el("td", {}, x.rule), el("td", {}, x.location),
        el("td", { class: "code" }, (x.codes || []).join(" ")), el("td", {}, x.message), el("td", {}, x.source))))) : null);
  $("#claim-verdict").focus();
}

// ------------------------------------------------------------------ routing
function route() {
  const hash = location.hash || "#/";
  const show = (id) => {
    for (const v of ["search-view", "code-view", "claim-view"]) $("#" + v).hidden = v !== id;
  };
  const m = /^#\/code\/([^/]+)\/(.+)$/.exec(hash);
  if (m) {
    show("code-view");
    showCode(decodeURIComponent(m[1]), decodeURIComponent(m[2]));
  } else if (hash.startsWith("#/claim")) {
    show("claim-view");
    document.title = "Check a claim · medcodes";
  } else {
    show("search-view");
    document.title = "medcodes: US medical billing codes";
    $("#q").focus();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#q").addEventListener("input", scheduleSearch);
  $("#system").addEventListener("change", scheduleSearch);
  $("#q").addEventListener("keydown", (ev) => { if (ev.key === "ArrowDown") resultKeys(ev); if (ev.key === "Enter") runSearch(); });
  $("#results").addEventListener("keydown", resultKeys);
  $("#claim-form").addEventListener("submit", submitClaim);
  $("#claim-form").elements.service_date.value = new Date().toISOString().slice(0, 10);
  window.addEventListener("hashchange", route);
  route();
});
