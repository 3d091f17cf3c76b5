// The ICD-10-PCS table builder: a table laid out as the agency publishes it (the table's first three
// axes, then its rows of body part / approach / device / qualifier). The user picks one value per
// axis; only values that still lead to a valid code can be picked, so an invalid code cannot be built.
"use strict";
import { $, el, api, errorText, codeHref, pcsHref, hashUrl, datePicker, releases, scroller } from "./util.js";
import { definitionText } from "./code.js";

const POSITIONS = [4, 5, 6, 7];

export async function show(view, parts, params) {
  const tbl = (parts[0] || "").toUpperCase();
  const date = params.get("date") || "";
  if (!tbl) { chooser(view, date); return; }
  view.replaceChildren(el("p", { class: "status", role: "status" }, `Loading table ${tbl}…`));
  const [r, rels] = await Promise.all([
    api(`/pcs/tables/${encodeURIComponent(tbl)}` + (date ? `?date=${encodeURIComponent(date)}` : "")), releases()]);
  if (!r.ok) {
    view.replaceChildren(el("h1", { id: "pcs-title", tabindex: "-1" }, `Table ${tbl}`), el("p", { class: "verdict bad" }, errorText(r)));
    chooserForm(view, date);
    $("#pcs-title").focus();
    return;
  }
  const state = new Builder(view, r.body, params.get("pick") || "", date, rels.filter((x) => x.system === "icd10pcs"));
  state.render(true);
}

function chooser(view, date) {
  document.title = "ICD-10-PCS table builder · medcodes";
  view.replaceChildren(el("h1", { id: "pcs-title", tabindex: "-1" }, "ICD-10-PCS table builder"),
    el("p", {}, "Open a table by its first three characters (section, body system, operation), or search words such as ",
      el("a", { href: hashUrl("search", { q: "resection appendix", system: "icd10pcs" }) }, "resection appendix"),
      " and pick a table in the results."));
  chooserForm(view, date);
  $("#pcs-title").focus();
}

function chooserForm(view, date) {
  const input = el("input", { id: "pcs-table", name: "table", maxlength: "3", size: "5", spellcheck: "false",
    autocomplete: "off", placeholder: "0DT" });
  const form = el("form", { class: "inline" }, el("label", { for: "pcs-table" }, "Table"), input,
    el("button", { type: "submit" }, "Open table"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (input.value.trim()) location.hash = pcsHref(input.value.trim().toUpperCase(), "", date);
  });
  view.append(form);
}

class Builder {
  constructor(view, rec, pick, date, rels) {
    this.view = view;
    this.rec = rec;
    this.date = date;
    this.rels = rels;
    this.defs = rec.value_definitions || {};
    // rows: [{row, codes, axes: {pos: {name, values: Map(char -> label)}}}]
    this.rows = (rec.rows || []).map((r) => ({
      row: r.row, codes: r.codes,
      axes: Object.fromEntries(r.axes.map((a) => [a.position, { name: a.name, values: new Map(a.values.map((v) => [v.char, v.label])) }])),
    }));
    this.picks = {};
    const chars = pick.toUpperCase().replace(/[^0-9A-Z_-]/g, "").slice(0, 4);
    [...chars].forEach((c, i) => { if (c !== "-" && c !== "_") this.picks[POSITIONS[i]] = c; });
    // a bookmarked pick that no longer fits this release is dropped, position by position
    for (const p of POSITIONS) if (this.picks[p] && !this.rows.some((r) => this.fits(r, p, this.picks[p]))) delete this.picks[p];
    this.titleCache = new Map();
  }

  has(row, pos, char) { return row.axes[pos] && row.axes[pos].values.has(char); }

  // can `char` at `pos` be picked in `row`, given the other picks?
  fits(row, pos, char) {
    if (!this.has(row, pos, char)) return false;
    return POSITIONS.every((q) => q === pos || !this.picks[q] || this.has(row, q, this.picks[q]));
  }

  liveRows() {
    return this.rows.filter((r) => POSITIONS.every((q) => !this.picks[q] || this.has(r, q, this.picks[q])));
  }

  remaining() {
    let n = 0;
    for (const r of this.liveRows()) n += POSITIONS.reduce((acc, p) => acc * (this.picks[p] ? 1 : r.axes[p].values.size), 1);
    return n;
  }

  completions(limit) {
    const out = [];
    for (const r of this.liveRows()) {
      const walk = (i, prefix, labels) => {
        if (out.length >= limit) return;
        if (i === POSITIONS.length) { out.push({ code: this.rec.code + prefix, labels }); return; }
        const p = POSITIONS[i];
        const chars = this.picks[p] ? [this.picks[p]] : [...r.axes[p].values.keys()];
        for (const c of chars) walk(i + 1, prefix + c, [...labels, r.axes[p].values.get(c)]);
      };
      walk(0, "", []);
    }
    return out;
  }

  pickString() { return POSITIONS.map((p) => this.picks[p] || "-").join("").replace(/-+$/, ""); }

  toggle(pos, char) {
    if (this.picks[pos] === char) delete this.picks[pos]; else this.picks[pos] = char;
    history.replaceState(null, "", pcsHref(this.rec.code, this.pickString(), this.date));
    this.render(false, `v-${pos}-${char}`);
  }

  clear() {
    this.picks = {};
    history.replaceState(null, "", pcsHref(this.rec.code, "", this.date));
    this.render(false, null);
    $("#pcs-code").focus();
  }

  render(first, focusKey) {
    const rec = this.rec;
    const head = (rec.axes || []).slice(0, 3);
    const complete = POSITIONS.every((p) => this.picks[p]);
    const code = rec.code + POSITIONS.map((p) => this.picks[p] || "").join("");
    const parts = [
      el("nav", { "aria-label": "Breadcrumb", class: "crumbs" }, el("ol", {},
        el("li", {}, el("a", { href: "#/pcs" }, "ICD-10-PCS tables")),
        (rec.ancestors || []).map((a) => el("li", {}, `${a.code} ${a.title}`)),
        el("li", { "aria-current": "page" }, rec.code))),
      el("h1", { id: "pcs-title", tabindex: "-1" }, "Table ", el("span", { class: "code" }, rec.code), " ", rec.title),
      el("p", { class: "meta" }, `ICD-10-PCS release ${rec.release} (${rec.release_label})`),
      datePicker("dos", this.date, (d) => { location.hash = pcsHref(rec.code, this.pickString(), d); }, this.rels),
      scroller(`Table ${rec.code} axes 1 to 3`, el("table", { class: "pcs-head" }, el("tbody", {}, head.map((a) => {
        const def = (this.defs[String(a.position)] || {})[a.char];
        return el("tr", {}, el("th", { scope: "row" }, `${a.position}. ${a.name}`),
          el("td", { class: "code" }, a.char), el("td", {}, a.label, def && def.definition ? el("span", { class: "help" }, `: ${def.definition}`) : null));
      })))),
      this.summary(code, complete),
      el("h2", {}, `Rows of table ${rec.code}`),
      el("p", { class: "help" }, "Pick one value in each column. Values that cannot make a valid code with what you picked are greyed out and cannot be picked; pick a value again to undo it."),
      this.rows.map((r) => this.rowTable(r)),
      this.legend(),
    ];
    this.view.replaceChildren(...parts.flat());
    document.title = `${complete ? code : "Table " + rec.code} · ICD-10-PCS table builder · medcodes`;
    if (first) $("#pcs-title").focus();
    else if (focusKey) (document.querySelector(`[data-key="${focusKey}"]:not([disabled])`) || $("#pcs-code"))?.focus();
    if (complete) this.fillTitle(code);
  }

  summary(code, complete) {
    const n = this.remaining();
    const slots = [...code.padEnd(7, "_")].map((c, i) => el("span", { class: "slot" + (i >= 3 && c !== "_" ? " picked" : "") }, c));
    const box = el("section", { class: "pcs-summary", "aria-labelledby": "pcs-code" },
      el("h2", { id: "pcs-code", tabindex: "-1" }, el("span", { class: "visually-hidden" }, "Code so far: "),
        el("span", { class: "slots", "aria-label": code.padEnd(7, "_").split("").join(" ") }, slots)),
      el("p", { role: "status", id: "pcs-status" }, complete
        ? ["Complete valid code ", el("a", { href: codeHref("icd10pcs", code, this.date), id: "pcs-complete", class: "code" }, code),
          el("span", { id: "pcs-complete-title" }, "")]
        : `${n} valid code${n === 1 ? "" : "s"} can still be built from here.`),
      POSITIONS.some((p) => this.picks[p])
        ? el("button", { type: "button", class: "chip", onclick: () => this.clear() }, "Clear picks") : null);
    if (!complete && n <= 24) {
      box.append(el("ul", { class: "completions", "aria-label": "Valid completions" }, this.completions(24).map((c) =>
        el("li", {}, el("a", { href: codeHref("icd10pcs", c.code, this.date), class: "code" }, c.code), " ", c.labels.join(", ")))));
    }
    return box;
  }

  async fillTitle(code) {
    let title = this.titleCache.get(code);
    if (title === undefined) {
      const q = new URLSearchParams({ system: "icd10pcs" });
      if (this.date) q.set("date", this.date);
      const r = await api(`/codes/${code}?${q}`);
      title = r.ok ? r.body.title : "";
      this.titleCache.set(code, title);
    }
    const span = $("#pcs-complete-title");
    if (span) span.textContent = title ? `: ${title}` : "";
  }

  rowTable(r) {
    const live = POSITIONS.every((q) => !this.picks[q] || this.has(r, q, this.picks[q]));
    const cols = POSITIONS.map((p) => r.axes[p]);
    const cell = (p) => el("td", {}, el("ul", { class: "values" }, [...r.axes[p].values].map(([c, label]) => {
      const fits = this.fits(r, p, c);
      const picked = live && this.picks[p] === c;   // shown as picked only in rows that fit the picks
      const def = (this.defs[String(p)] || {})[c];
      const defId = def ? `def-${p}-${c}` : null;
      const tip = def ? [def.definition, def.includes && def.includes.length ? `Includes: ${def.includes.join("; ")}` : ""].filter(Boolean).join(" · ") : null;
      return el("li", {}, el("button", {
        type: "button", class: "value" + (picked ? " picked" : ""), "data-key": `v-${p}-${c}`,
        "aria-pressed": picked ? "true" : "false", disabled: !fits,
        "aria-describedby": defId, "aria-label": `${r.axes[p].name} ${c} ${label}`, title: tip || null,
        onclick: () => this.toggle(p, c),
      }, el("span", { class: "code" }, c), " ", label));
    })));
    return scroller(`Row ${r.row}`, el("table", { class: "pcs-row" + (live ? "" : " out"), "data-row": r.row },
      el("caption", {}, `Row ${r.row} · ${r.codes} code${r.codes === 1 ? "" : "s"}${live ? "" : " · does not fit your picks"}`),
      el("thead", {}, el("tr", {}, cols.map((a, i) => el("th", { scope: "col" }, `${POSITIONS[i]}. ${a.name}`)))),
      el("tbody", {}, el("tr", {}, POSITIONS.map(cell)))));
  }

  legend() {
    const names = {};
    for (const r of this.rows) for (const p of POSITIONS) names[p] = names[p] || r.axes[p].name;
    const sections = [3, ...POSITIONS].map((p) => {
      const entries = Object.entries(this.defs[String(p)] || {});
      if (!entries.length) return null;
      return el("section", { class: "defs" }, el("h3", {}, `${p}. ${p === 3 ? "Operation" : names[p]}`),
        el("dl", {}, entries.map(([c, def]) => [
          el("dt", { class: this.picks[p] === c ? "picked" : null }, el("span", { class: "code" }, c), " ", def.label),
          el("dd", { id: `def-${p}-${c}` }, definitionText(def))])));
    });
    return el("section", { class: "legend", "aria-labelledby": "defs-title" },
      el("h2", { id: "defs-title" }, "Definitions (ICD-10-PCS definitions file)"), sections);
  }
}
