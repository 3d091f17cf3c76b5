// Shared helpers of the medcodes page: DOM building, the API client, URLs of pages.
// Every value from the server goes into the page as text (textContent), never as HTML.
"use strict";

export const SYSTEM_NAMES = {
  icd10cm: "ICD-10-CM", icd10pcs: "ICD-10-PCS", hcpcs: "HCPCS Level II", cpt: "CPT", icd9cm: "ICD-9-CM",
};
export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// ------------------------------------------------------------------ API
export async function api(path, options = {}) {
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
  const received = performance.now();
  let body = null;
  if (options.raw) body = await resp.text();
  else { try { body = await resp.json(); } catch (e) { body = null; } }
  return { status: resp.status, ok: resp.ok, body, received };
}

export const errorText = (r) => (r.body && r.body.error) || `HTTP ${r.status}`;

// ------------------------------------------------------------------ page URLs (hash routes, bookmarkable)
export function hashUrl(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  const s = q.toString();
  return "#/" + path + (s ? "?" + s : "");
}
const PCS_TABLE = /^[0-9A-HJ-NP-Z]{3}$/;
export function codeHref(system, code, date) {
  if (system === "icd10pcs" && PCS_TABLE.test(code)) return pcsHref(code, "", date);
  return hashUrl(`code/${encodeURIComponent(system)}/${encodeURIComponent(code)}`, { date });
}
export function pcsHref(table, pick, date) {
  return hashUrl(`pcs/${encodeURIComponent(table)}`, { pick, date });
}

export function billableTag(b) {
  if (b === true) return el("span", { class: "tag yes" }, "billable");
  if (b === false) return el("span", { class: "tag no" }, "not billable");
  return null;
}

// A wide table in a keyboard-scrollable region (phones scroll it sideways).
export function scroller(label, table) {
  return el("div", { class: "scroll", role: "region", "aria-label": label, tabindex: "0" }, table);
}

export function table(head, rows, attrs) {
  return el("table", attrs || {},
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows));
}

export function datePicker(id, value, onPick, releases) {
  // The date of service decides which release is shown; each installed release is one click away.
  const input = el("input", { type: "date", id, value: value || "" });
  input.addEventListener("change", () => onPick(input.value));
  const quick = (releases || []).map((r) => el("button", {
    type: "button", class: "chip", "aria-label": `Show release ${r.release} (from ${r.effective_from})`,
    onclick: () => onPick(r.effective_from),
  }, r.release));
  return el("div", { class: "dos" },
    el("label", { for: id }, "Date of service"), input,
    el("button", { type: "button", class: "chip", onclick: () => onPick("") }, "Today"),
    quick.length ? el("span", { class: "chips", role: "group", "aria-label": "Installed releases" }, quick) : null);
}

let releaseCache = null;
export async function releases() {
  if (!releaseCache) {
    const r = await api("/releases");
    releaseCache = r.ok ? r.body : [];
  }
  return releaseCache;
}
