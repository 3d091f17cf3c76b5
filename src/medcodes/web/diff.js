// Release changes: what was added, deleted or retitled between two installed releases of a system,
// filterable by kind of change and text, downloadable as CSV. Every choice is in the page address.
"use strict";
import { $, el, api, errorText, codeHref, hashUrl, releases, scroller, SYSTEM_NAMES } from "./util.js";

const CHANGES = [
  ["added", "Added"], ["deleted", "Deleted"], ["title_revised", "Title revised"],
  ["short_title_revised", "Short title revised"], ["billable_changed", "Billable changed"],
];
const SHOW_MAX = 500;

export async function show(view, parts, params) {
  document.title = "Release changes · medcodes";
  const rels = (await releases()).filter((r) => SYSTEM_NAMES[r.system]);
  const systems = [...new Set(rels.map((r) => r.system))];
  const system = params.get("system") && systems.includes(params.get("system")) ? params.get("system") : systems[0] || "icd10cm";
  const mine = rels.filter((r) => r.system === system).map((r) => r.release);
  const to = mine.includes(params.get("to")) ? params.get("to") : mine[mine.length - 1];
  const from = mine.includes(params.get("from")) ? params.get("from") : mine[Math.max(0, mine.indexOf(to) - 1)];
  const change = params.get("change") || "";
  const text = params.get("q") || "";
  const go = (over) => {
    const p = { system, from, to, change, q: text, ...over };
    if (over.system) { p.from = ""; p.to = ""; }
    location.hash = hashUrl("diff", p);
  };

  const select = (id, label, value, options, onChange) => {
    const s = el("select", { id }, options.map(([v, t]) => el("option", { value: v, selected: v === value }, t)));
    s.addEventListener("change", () => onChange(s.value));
    return el("div", { class: "field" }, el("label", { for: id }, label), s);
  };
  const filter = el("input", { id: "diff-q", type: "search", value: text, placeholder: "code or words", spellcheck: "false" });
  const controls = el("form", { class: "grid", id: "diff-form", onsubmit: (ev) => ev.preventDefault() },
    select("diff-system", "System", system, systems.map((s) => [s, SYSTEM_NAMES[s] || s]), (v) => go({ system: v })),
    select("diff-from", "From release", from, mine.map((r) => [r, r]), (v) => go({ from: v })),
    select("diff-to", "To release", to, mine.map((r) => [r, r]), (v) => go({ to: v })),
    select("diff-change", "Change", change, [["", "All changes"], ...CHANGES], (v) => go({ change: v })),
    el("div", { class: "field" }, el("label", { for: "diff-q" }, "Filter"), filter));
  const status = el("p", { class: "status", role: "status", id: "diff-status" }, "Comparing…");
  const body = el("div", { id: "diff-rows" });
  const dl = el("p", { class: "downloads" });
  view.replaceChildren(el("h1", { id: "diff-title", tabindex: "-1" }, "Release changes"),
    el("p", { class: "help" }, "Codes added, deleted and retitled between two installed releases, as the official files give them."),
    controls, status, dl, body);
  $("#diff-title").focus();
  if (!from || !to || from === to) {
    status.textContent = mine.length < 2 ? `${SYSTEM_NAMES[system] || system}: two installed releases are needed for a comparison.` : "Pick two different releases.";
    return;
  }
  const r = await api(`/diff?${new URLSearchParams({ system, from, to, limit: "100000" })}`);
  if (!r.ok) { status.textContent = errorText(r); return; }
  const d = r.body;
  const all = [];
  for (const [key] of CHANGES) {
    for (const x of d[key] || []) {
      const added = key === "added";
      const deleted = key === "deleted";
      all.push({ change: key, code: x.code, kind: x.kind || "", field: x.field || "title",
        before: deleted ? x.title : added ? "" : fmt(x.before), after: added ? x.title : deleted ? "" : fmt(x.after) });
    }
  }
  const render = () => {
    const f = filter.value.trim().toLowerCase();
    const rows = all.filter((x) => (!change || x.change === change) &&
      (!f || x.code.toLowerCase().startsWith(f.replace(".", "")) || x.code.toLowerCase().startsWith(f) ||
        x.before.toLowerCase().includes(f) || x.after.toLowerCase().includes(f)));
    const counts = CHANGES.map(([k, label]) => `${label.toLowerCase()} ${(d.counts || {})[k] ?? 0}`).join(", ");
    status.textContent = `${SYSTEM_NAMES[system] || system} ${from} → ${to}: ${counts}. ${rows.length} row${rows.length === 1 ? " matches" : "s match"}` +
      (rows.length > SHOW_MAX ? `, first ${SHOW_MAX} shown (the CSV has all).` : ".");
    body.replaceChildren(scroller("Changes", el("table", { id: "diff-table" },
      el("thead", {}, el("tr", {}, ["Change", "Code", "Kind", "Before", "After"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.slice(0, SHOW_MAX).map((x) => el("tr", { class: "ch-" + x.change },
        el("td", {}, label(x.change)),
        el("td", {}, el("a", { class: "code", href: codeHref(system, x.code, x.change === "deleted" ? relStart(rels, system, from) : relStart(rels, system, to)) }, x.code)),
        el("td", {}, x.kind), el("td", {}, x.before), el("td", {}, x.after)))))));
    dl.replaceChildren(
      el("button", { type: "button", class: "chip", onclick: () => download(rows, `medcodes-${system}-${from}-${to}-filtered.csv`) },
        rows.length === 1 ? "Download these rows: 1 row (CSV)" : `Download these rows: ${rows.length} rows (CSV)`), " ",
      el("button", { type: "button", class: "chip", onclick: () => downloadAll(system, from, to) }, "Download the whole comparison (CSV)"));
  };
  let timer = null;
  filter.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { history.replaceState(null, "", hashUrl("diff", { system, from, to, change, q: filter.value.trim() })); render(); }, 150);
  });
  render();
}

const label = (k) => (CHANGES.find(([c]) => c === k) || [k, k])[1];
const fmt = (v) => (v === true ? "yes" : v === false ? "no" : v === null || v === undefined ? "" : String(v));
const relStart = (rels, system, release) => (rels.find((r) => r.system === system && r.release === release) || {}).effective_from;

function csvCell(v) {
  const s = String(v ?? "");
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function save(text, name) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" }));
  const a = el("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function download(rows, name) {
  const lines = [["change", "code", "kind", "field", "before", "after"], ...rows.map((x) => [x.change, x.code, x.kind, x.field, x.before, x.after])];
  save(lines.map((l) => l.map(csvCell).join(",")).join("\n") + "\n", name);
}

async function downloadAll(system, from, to) {
  const r = await api(`/diff.csv?${new URLSearchParams({ system, from, to })}`, { raw: true, headers: { Accept: "text/csv" } });
  if (!r.ok) { $("#diff-status").textContent = "Download failed: HTTP " + r.status; return; }
  save(r.body, `medcodes-diff-${system}-${from}-${to}.csv`);
}
