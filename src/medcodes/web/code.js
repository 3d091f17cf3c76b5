// The code page: ICD-10-CM as the Tabular prints it, ICD-10-PCS axes (to the table builder),
// HCPCS Level II fields in words and modifiers; breadcrumbs, date of service, history.
"use strict";
import { $, el, api, errorText, codeHref, pcsHref, hashUrl, billableTag, scroller, table, datePicker, releases }
  from "./util.js";

// Tabular note kinds, in the order the Tabular prints them, with their printed headings.
const NOTE_KINDS = [
  ["notes", "Note"], ["includes", "Includes"], ["inclusionTerm", "Inclusion terms"],
  ["excludes1", "Excludes1"], ["excludes2", "Excludes2"], ["codeFirst", "Code first"],
  ["useAdditionalCode", "Use additional code"], ["codeAlso", "Code also"],
];
const NOTE_HELP = {
  excludes1: "NOT CODED HERE: never used together with this code",
  excludes2: "Not included here: may be used together when both conditions are present",
  codeFirst: "Sequence the underlying condition first",
  useAdditionalCode: "Add a code for the following",
  codeAlso: "A second code may be needed; sequence by the circumstances",
};
const LEVEL_NAMES = { chapter: "chapter", block: "block", category: "category", header: "subcategory", code: "code" };

// ICD-10-CM codes and ranges in note text: E10.-, O24.4-, P70-P74, Z79.4, E05.8, S72.0-
const CODE_RE = /\b([A-Z]\d[0-9A-Z](?:\.[0-9A-Z]{1,4})?)(?:(\.?-)(?![A-Z]\d)|-([A-Z]\d[0-9A-Z](?:\.[0-9A-Z]{1,4})?))?/g;

export function linkCodes(text, system, date) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(CODE_RE)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const target = m[3] ? `${m[1]}-${m[3]}` : m[1];
    const label = m[0];
    out.push(el("a", { href: codeHref(system, target, date), class: "ref" }, label));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

export async function show(view, parts, params) {
  const [system, code] = parts;
  const date = params.get("date") || "";
  view.replaceChildren(el("p", { class: "status", role: "status" }, `Loading ${code}…`));
  const q = new URLSearchParams({ system });
  if (date) q.set("date", date);
  const [r, rels] = await Promise.all([api(`/codes/${encodeURIComponent(code)}?${q}`), releases()]);
  const pick = (d) => { location.hash = codeHref(system, code, d); };
  const sysReleases = rels.filter((x) => x.system === system);
  if (!r.ok) {
    const sugg = (r.body && r.body.suggestions) || [];
    const range = /^([A-Z]\d[0-9A-Z](?:\.[0-9A-Z]+)?)-([A-Z]\d[0-9A-Z](?:\.[0-9A-Z]+)?)$/.exec(code);
    view.replaceChildren(
      el("h1", { id: "code-title", tabindex: "-1" }, el("span", { class: "code" }, code)),
      range ? el("p", {}, `${code} is a range of codes, not one block of the Tabular: from `,
        el("a", { href: codeHref(system, range[1], date) }, range[1]), " to ",
        el("a", { href: codeHref(system, range[2], date) }, range[2]), ".")
        : el("p", { class: "verdict bad" }, errorText(r)),
      sugg.length ? el("p", {}, "Nearest: ", sugg.map((s) => [el("a", { href: codeHref(system, s, date) }, s), " "])) : null,
      datePicker("dos", date, pick, sysReleases));
    $("#code-title").focus();
    return;
  }
  const d = r.body;
  if (d.system === "icd10pcs" && d.kind === "table") { location.replace(pcsHref(d.code, "", date)); return; }
  const parts_ = [
    crumbs(d, date),
    el("h1", { id: "code-title", tabindex: "-1" }, el("span", { class: "code" }, d.code), " ", d.title),
    el("p", { class: "meta" }, el("span", {}, `${d.system_name} · release ${d.release} (${d.release_label})`),
      billableTag(d.billable), d.kind ? el("span", { class: "tag" }, d.kind) : null,
      d.noc ? el("span", { class: "tag", title: d.noc.meaning || null }, "NOC") : null,
      d.status && d.status.corrected ? el("span", { class: "tag" }, "corrected by CMS") : null,
      d.release_covers_date === false ? el("span", { class: "tag no" }, "no release covers this date: nearest shown") : null),
    d.coverage_note ? el("p", { class: "verdict bad" }, d.coverage_note) : null,
    datePicker("dos", date, pick, sysReleases),
  ];
  if (d.short_title && d.short_title !== d.title) parts_.push(el("p", {}, el("strong", {}, "Short title: "), d.short_title));
  if (d.system === "icd10cm") parts_.push(...await icd10cmParts(d, date));
  if (d.system === "icd10pcs") parts_.push(...pcsParts(d, date));
  if (d.system === "hcpcs") parts_.push(...hcpcsParts(d, date));
  if (d.system !== "icd10cm" && d.notes && d.notes.length) {   // e.g. HCPCS processing notes, CMS corrections
    parts_.push(el("h2", {}, "Notes"), el("ul", { class: "notes" }, d.notes.map((n) =>
      el("li", {}, el("strong", {}, n.kind), ": ", n.text))));
  }
  if (d.children && d.children.length) {
    parts_.push(el("h2", {}, `Codes below (${d.children.length})`), el("ul", { class: "children" }, d.children.map((c) =>
      el("li", {}, el("a", { href: codeHref(d.system, c.code, date), class: "code" }, c.code), " ", c.title, billableTag(c.billable)))));
  }
  const hist = el("div", { id: "history" }, el("p", { class: "status" }, "Loading history…"));
  parts_.push(el("h2", {}, "Validity across installed releases"), hist);
  view.replaceChildren(...parts_.filter(Boolean));
  document.title = `${d.code} ${d.title} · medcodes`;
  $("#code-title").focus();
  showHistory(hist, d.system, d.code, d.release);
}

function crumbs(d, date) {
  const items = (d.ancestors || []).map((a) => el("li", {},
    el("a", { href: codeHref(d.system, a.code, date), title: a.title }, a.code),
    el("span", { class: "crumb-title" }, " ", a.kind === "chapter" || a.kind === "block" || a.kind === "section" ? a.title : "")));
  return el("nav", { "aria-label": "Breadcrumb", class: "crumbs" }, el("ol", {},
    el("li", {}, el("a", { href: hashUrl("search", {}) }, d.system_name || d.system)),
    items, el("li", { "aria-current": "page" }, d.code)));
}

// ------------------------------------------------------------------ ICD-10-CM: the Tabular's notes
async function icd10cmParts(d, date) {
  const out = [];
  const levels = new Map();   // "from" code -> notes, nearest level first
  const kindOf = new Map((d.ancestors || []).map((a) => [a.code, a.kind]));
  const titleOf = new Map((d.ancestors || []).map((a) => [a.code, a.title]));
  for (const n of d.notes || []) {
    if (!levels.has(n.from)) levels.set(n.from, []);
    levels.get(n.from).push(n);
  }
  const own = levels.has(d.code) ? [d.code] : [];
  const inherited = [...levels.keys()].filter((k) => k !== d.code).reverse();   // nearest level first
  if (levels.size) {
    out.push(el("h2", { id: "notes-title" }, "Tabular notes"));
    for (const from of [...own, ...inherited]) {
      const isOwn = from === d.code;
      const lvl = isOwn ? (LEVEL_NAMES[d.kind] || d.kind) : (LEVEL_NAMES[kindOf.get(from)] || "level");
      const heading = isOwn ? `At ${from} itself`
        : `From ${from.startsWith("Chapter") ? "" : lvl + " "}${from}${titleOf.get(from) ? " " + titleOf.get(from) : ""}`;
      out.push(el("section", { class: "note-level" + (isOwn ? "" : " inherited"), "data-level": lvl, "data-from": from,
        "aria-label": heading },
        el("h3", {}, isOwn ? null : el("span", { class: "tag inh" }, `inherited from the ${lvl}`), " ", heading),
        noteGroups(levels.get(from), d.system, date)));
    }
  }
  const seventh = d.seven_chr_def || null;
  if (seventh) out.push(seventhTable(seventh.chars, seventh, null, d, date));
  else if (d.seventh_character) {
    const s = d.seventh_character;
    const q = new URLSearchParams({ system: "icd10cm" });
    if (date) q.set("date", date);
    const at = await api(`/codes/${encodeURIComponent(s.defined_at)}?${q}`);
    const def = at.ok && at.body.seven_chr_def ? at.body.seven_chr_def : { chars: { [s.char]: s.meaning }, defined_at: s.defined_at };
    out.push(seventhTable(def.chars, def, s.char, d, date));
  }
  return out;
}

function noteGroups(notes, system, date) {
  const byKind = new Map();
  for (const n of notes) {
    if (!byKind.has(n.kind)) byKind.set(n.kind, []);
    byKind.get(n.kind).push(n.text);
  }
  const known = new Set(NOTE_KINDS.map(([k]) => k));
  const kinds = [...NOTE_KINDS, ...[...byKind.keys()].filter((k) => !known.has(k)).map((k) => [k, k])];
  return kinds.filter(([k]) => byKind.has(k)).map(([kind, label]) => el("div", { class: `note-group kind-${kind}`, "data-kind": kind },
    el("h4", {}, label, NOTE_HELP[kind] ? el("span", { class: "help" }, ` ${NOTE_HELP[kind]}`) : null),
    noteItems(byKind.get(kind), system, date)));
}

// A text ending in ":" is a heading ("code to identify control using:"): the items after it go beneath it.
function noteItems(texts, system, date) {
  const top = el("ul", { class: "notes" });
  let sub = null;
  for (const t of texts) {
    if (/:\s*$/.test(t)) {
      sub = el("ul", { class: "notes sub" });
      top.append(el("li", { class: "note-heading" }, el("span", {}, linkCodes(t, system, date)), sub));
    } else (sub || top).append(el("li", {}, linkCodes(t, system, date)));
  }
  return top;
}

function seventhTable(chars, def, current, d, date) {
  const rows = Object.entries(chars || {}).map(([c, meaning]) => el("tr", c === current ? { class: "current", "aria-current": "true" } : {},
    el("td", { class: "code" }, c), el("td", {}, meaning)));
  return el("section", { class: "seventh", "aria-labelledby": "seventh-title" },
    el("h2", { id: "seventh-title" }, "7th characters ",
      def.defined_at && def.defined_at !== d.code ? el("span", { class: "tag inh" }, `defined at ${def.defined_at}`) : null),
    def.note ? el("p", {}, linkCodes(def.note, d.system, date)) : null,
    table(["7th character", "Meaning"], rows, { class: "compact" }));
}

// ------------------------------------------------------------------ ICD-10-PCS code: axes, to the builder
function pcsParts(d, date) {
  const axes = d.axes || (d.structure && d.structure.axes) || [];
  const defs = new Map((d.definitions || []).map((x) => [x.position, x]));
  const out = [];
  if (axes.length) {
    const tbl = d.code.slice(0, 3);
    out.push(el("p", {}, el("a", { href: pcsHref(tbl, d.code.slice(3), date), class: "button-link" },
      `Open table ${tbl} in the table builder with this code's axes highlighted`)));
    out.push(el("h2", {}, "Axes"), scroller("Axes", table(["Position", "Axis", "Value", "Meaning", "Definition"],
      axes.map((a) => {
        const def = defs.get(a.position);
        return el("tr", {}, el("td", {}, a.position), el("td", {}, a.name || ""), el("td", { class: "code" }, a.char),
          el("td", {}, a.label || ""), el("td", {}, def ? definitionText(def) : ""));
      }))));
  }
  return out;
}

export function definitionText(def) {
  return [def.term ? el("em", {}, def.term + ": ") : null, def.definition || "",
    def.explanation ? el("span", { class: "help" }, " " + def.explanation) : null,
    def.includes && def.includes.length ? el("span", { class: "incl" }, ` Includes: ${def.includes.join("; ")}.`) : null,
    def.aggregates && def.aggregates.length ? el("span", { class: "incl" }, ` Device values: ${def.aggregates.join("; ")}.`) : null];
}

// ------------------------------------------------------------------ HCPCS: every field in words, modifiers
const HCPCS_FIELD_HELP = {
  "Pricing indicator": "how Medicare prices the code",
  "Multiple pricing indicator": "when more than one pricing method applies",
  "Coverage": "Medicare coverage status",
  "BETOS": "Berenson-Eggers type of service",
  "Type of service": "CMS type-of-service codes",
  "Action code": "what this release did to the code",
  "Code added": "date the code was added to HCPCS",
  "Action effective": "date this release's action takes effect",
  "Terminated": "last date the code may be used",
  "ASC payment group": "ambulatory surgical center payment group",
  "ASC payment group effective date": "date the ASC group took effect",
  "Processing note": "CMS processing note number",
  "Statute": "the Social Security Act section that governs the code",
  "Cross reference": "codes to use instead or alongside",
  "Lab certification": "CLIA laboratory certification categories",
  "Anesthesia base units": "base units for anesthesia services",
  "Coverage Issues Manual reference": "section of the Medicare Coverage Issues Manual",
  "Medicare Carriers Manual reference": "section of the Medicare Carriers Manual",
};

function hcpcsParts(d, date) {
  const out = [];
  const fields = d.fields && typeof d.fields === "object" ? d.fields : {};
  if (Object.keys(fields).length) {
    out.push(el("h2", {}, "CMS fields"), el("dl", { class: "fields" },
      Object.entries(fields).map(([k, v]) => [
        el("dt", {}, k, HCPCS_FIELD_HELP[k] ? el("span", { class: "help" }, ` (${HCPCS_FIELD_HELP[k]})`) : null),
        el("dd", {}, Array.isArray(v) ? el("ul", { class: "plain" }, v.map((x) => el("li", {}, String(x)))) : String(v))])));
  }
  if (d.status) {
    out.push(el("p", {}, el("strong", {}, "Status on the date of service: "), d.status.state,
      d.status.termination ? ` (terminated ${d.status.termination})` : ""));
  }
  if (d.noc) out.push(el("p", {}, el("strong", {}, "NOC: "), d.noc.meaning || "not otherwise classified",
    d.noc.source ? el("span", { class: "help" }, ` (${d.noc.source})`) : null));
  const box = el("div", { id: "modifiers" });
  const det = el("details", { class: "modifiers" }, el("summary", {}, "HCPCS Level II modifiers of this release"), box);
  det.addEventListener("toggle", () => { if (det.open && !box.childElementCount) showModifiers(box, date); }, { once: false });
  out.push(el("h2", {}, "Modifiers"), det);
  return out;
}

async function showModifiers(box, date) {
  box.replaceChildren(el("p", { class: "status" }, "Loading modifiers…"));
  const r = await api("/hcpcs/modifiers" + (date ? `?date=${encodeURIComponent(date)}` : ""));
  if (!r.ok) { box.replaceChildren(el("p", { class: "status" }, errorText(r))); return; }
  const mods = r.body.modifiers || [];
  const filter = el("input", { type: "search", id: "mod-filter", placeholder: "e.g. LT, bilateral" });
  const body = el("tbody", {});
  const render = () => {
    const f = filter.value.trim().toLowerCase();
    // modifiers whose code starts with the filter first, then (from 3 letters on) those whose meaning has it
    const byCode = mods.filter((m) => !f || m.code.toLowerCase().startsWith(f));
    const byTitle = f.length >= 3 ? mods.filter((m) => !m.code.toLowerCase().startsWith(f) && m.title.toLowerCase().includes(f)) : [];
    body.replaceChildren(...[...byCode, ...byTitle]
      .map((m) => el("tr", {}, el("td", {}, el("a", { href: codeHref("hcpcs", m.code, date), class: "code" }, m.code)), el("td", {}, m.title))));
  };
  filter.addEventListener("input", render);
  render();
  box.replaceChildren(el("label", { for: "mod-filter" }, `Filter ${mods.length} modifiers (release ${r.body.release})`), filter,
    scroller("Modifiers", el("table", { class: "compact" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Modifier"), el("th", { scope: "col" }, "Meaning"))), body)));
}

// ------------------------------------------------------------------ validity across releases
async function showHistory(box, system, code, shown) {
  const r = await api(`/history/${encodeURIComponent(code)}?system=${encodeURIComponent(system)}`);
  if (!r.ok) { box.replaceChildren(el("p", { class: "status" }, errorText(r))); return; }
  const rows = r.body.releases || [];
  box.replaceChildren(scroller("Validity across releases", table(["Release", "In effect", "In the release", "Title", "Changes"],
    rows.map((s) => el("tr", s.release === shown ? { class: "current", "aria-current": "true" } : {},
      el("td", {}, el("a", { href: codeHref(system, code, s.effective_from), "aria-label": `Show ${code} in release ${s.release}` }, s.release)),
      el("td", {}, `${s.effective_from} – ${s.effective_to || "open"}`),
      el("td", {}, s.present ? ["present", billableTag(s.billable)] : el("span", { class: "tag no" }, "absent")),
      el("td", {}, s.title || ""), el("td", {}, (s.changes || []).join("; ")))))));
}
