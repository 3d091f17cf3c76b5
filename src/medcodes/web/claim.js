// The claim form, laid out like a CMS-1500 (professional) or UB-04 (institutional) summary. Findings
// are shown next to the field their `location` names (diagnoses[i], procedures[j], lines[k].field),
// each with its rule and the rule's source. Claim contents never go into the URL (they are PHI).
"use strict";
import { $, $$, el, api, errorText, codeHref, SYSTEM_NAMES } from "./util.js";

const LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const FORMS = {
  professional: {
    name: "CMS-1500", dx: "Box 21: diagnoses (ICD Ind. 0), A is primary", lines: "Box 24: service lines",
    date: "Box 24A", code: "Box 24D", mods: "Box 24D modifier", ptr: "Box 24E", charge: "Box 24F", units: "Box 24G",
    sex: "Box 3", dob: "Box 3",
  },
  institutional: {
    name: "UB-04", dx: "FL 67: principal diagnosis, then FL 67A–Q other diagnoses", lines: "FL 42–47: service lines",
    procs: "FL 74: principal procedure, then FL 74a–e other procedures",
    date: "FL 45", code: "FL 44", mods: "FL 44 modifier", ptr: "pointer", charge: "FL 47", units: "FL 46",
    sex: "FL 11", dob: "FL 10",
  },
};
const OTHER_RELEASES = { ncci: "NCCI", msdrg: "MS-DRG", mce: "MCE" };
const FIELD_NAMES = { poa: "POA indicator", code: "code", modifiers: "modifier", diagnosis_pointers: "diagnosis pointer", charge: "charge", units: "units", date: "date" };

let seq = 0;
const uid = (p) => `${p}-${++seq}`;

export async function show(view) {
  document.title = "Check a claim · medcodes";
  const form = el("form", { id: "claim-form", novalidate: true, "aria-labelledby": "claim-title" },
    el("div", { id: "claim-findings", class: "claim-level" }),
    el("fieldset", { class: "box" }, el("legend", {}, "Claim and patient"),
      el("div", { class: "grid" },
        field("Claim id", el("input", { name: "id", value: "demo-1", required: true })),
        field("Claim form", el("select", { name: "type" },
          el("option", { value: "professional" }, "Professional (CMS-1500)"),
          el("option", { value: "institutional" }, "Institutional (UB-04)"))),
        field("Date of service", el("input", { name: "service_date", type: "date", required: true, value: new Date().toISOString().slice(0, 10) })),
        field("Setting", el("select", { name: "setting" })),
        field("Patient sex", el("select", { name: "sex" }, el("option", { value: "U" }, "Unknown"),
          el("option", { value: "F" }, "Female"), el("option", { value: "M" }, "Male")), "sex"),
        field("Birth date", el("input", { name: "birth_date", type: "date" }), "dob"))),
    el("fieldset", { class: "box" }, el("legend", { id: "dx-legend" }, ""),
      el("div", { class: "scroll", role: "region", "aria-label": "Diagnoses", tabindex: "0" },
        el("table", { class: "claim-table", id: "dx-table" },
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Ptr"), el("th", { scope: "col" }, "ICD-10-CM code"),
            el("th", { scope: "col", class: "inst" }, "POA"))),
          el("tbody", {}))),
      el("button", { type: "button", class: "chip", onclick: () => addDx(form) }, "Add a diagnosis")),
    el("fieldset", { class: "box inst", id: "proc-box" }, el("legend", { id: "proc-legend" }, ""),
      el("div", { class: "scroll", role: "region", "aria-label": "Procedures", tabindex: "0" },
        el("table", { class: "claim-table", id: "proc-table" },
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "#"), el("th", { scope: "col" }, "ICD-10-PCS code"),
            el("th", { scope: "col" }, "Date"))),
          el("tbody", {}))),
      el("button", { type: "button", class: "chip", onclick: () => addProc(form) }, "Add a procedure")),
    el("fieldset", { class: "box" }, el("legend", { id: "line-legend" }, ""),
      el("div", { class: "scroll", role: "region", "aria-label": "Service lines", tabindex: "0" },
        el("table", { class: "claim-table", id: "line-table" },
          el("thead", {}, el("tr", {}, ["#", "Date", "HCPCS / CPT code", "Modifiers", "Dx pointers", "Units", "Charge"]
            .map((h, i) => el("th", { scope: "col", "data-col": ["n", "date", "code", "mods", "ptr", "units", "charge"][i] }, h)))),
          el("tbody", {}))),
      el("button", { type: "button", class: "chip", onclick: () => addLine(form) }, "Add a service line")),
    el("button", { type: "submit" }, "Check claim"));
  view.replaceChildren(
    el("h1", { id: "claim-title", tabindex: "-1" }, "Check a claim"),
    el("p", { class: "help" }, "Laid out like the claim form; each finding appears beside the field it is about, with the rule and its source. Nothing you type leaves this server or goes into the page address."),
    el("div", { id: "claim-result", role: "status", "aria-live": "polite" }),
    form,
    el("div", { id: "drg-panel" }));
  for (let i = 0; i < 4; i++) addDx(form);
  for (let i = 0; i < 2; i++) addProc(form);
  for (let i = 0; i < 3; i++) addLine(form);
  form.elements.type.addEventListener("change", () => relabel(form));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); submit(form); });
  relabel(form);
  $("#claim-title").focus();
}

function field(label, input, key) {
  const id = uid("f");
  input.id = id;
  return el("div", { class: "field" }, el("label", { for: id }, label, key ? el("span", { class: "box-no", "data-box": key }, "") : null), input);
}

// The claim's setting (the claim format's `setting`): it picks the NCCI MUE table, and an
// institutional inpatient claim gets the MCE edits, POA checks and the MS-DRG.
const SETTINGS = {
  professional: [["practitioner", "Practitioner"], ["dme-supplier", "DME supplier"]],
  institutional: [["inpatient", "Inpatient (MCE, POA, MS-DRG)"], ["outpatient-hospital", "Outpatient hospital"], ["other", "Other"]],
};

function relabel(form) {
  const type = form.elements.type.value;
  const f = FORMS[type];
  form.dataset.type = type;
  const setting = form.elements.setting;
  if (setting.dataset.type !== type) {
    setting.replaceChildren(...SETTINGS[type].map(([v, t]) => el("option", { value: v }, t)));
    setting.dataset.type = type;
  }
  $("#dx-legend").textContent = f.dx;
  $("#line-legend").textContent = f.lines;
  $("#proc-legend").textContent = FORMS.institutional.procs;
  for (const s of $$(".box-no", form)) s.textContent = ` (${f[s.dataset.box]})`;
  for (const th of $$("#line-table th[data-col]")) {
    const k = th.dataset.col;
    const base = { n: "#", date: "Date", code: "HCPCS / CPT code", mods: "Modifiers", ptr: "Dx pointers", units: "Units", charge: "Charge" }[k];
    th.textContent = f[k] ? `${base} (${f[k]})` : base;
  }
  $$("#dx-table tbody tr.entry").forEach((tr, i) => { tr.querySelector("th").textContent = ptrLabel(i, type); });
}

const ptrLabel = (i, type) => (type === "institutional" ? (i === 0 ? "Principal" : `67${LETTERS[i - 1]}`) : `${LETTERS[i] || i + 1} (${i + 1})`);

function cellInput(label, attrs, column) {
  const id = uid("c");
  return el("td", { "data-label": column || "" }, el("label", { for: id, class: "visually-hidden" }, label), el("input", Object.assign({ id, spellcheck: "false", autocomplete: "off" }, attrs)));
}

function addDx(form) {
  const body = $("#dx-table tbody");
  const i = body.querySelectorAll("tr.entry").length;
  const poaId = uid("c");
  body.append(el("tr", { class: "entry", "data-index": i },
    el("th", { scope: "row" }, ptrLabel(i, form.elements.type.value)),
    cellInput(`Diagnosis ${i + 1} code`, { name: "dx", class: "code-in", placeholder: i === 0 ? "E11.65" : "" }, "ICD-10-CM code"),
    el("td", { class: "inst", "data-label": "POA" }, el("label", { for: poaId, class: "visually-hidden" }, `Diagnosis ${i + 1} present on admission`),
      el("select", { id: poaId, name: "poa" }, ["", "Y", "N", "U", "W", "1"].map((v) => el("option", { value: v }, v || "–"))))));
}

function addProc() {
  const body = $("#proc-table tbody");
  const i = body.querySelectorAll("tr.entry").length;
  body.append(el("tr", { class: "entry", "data-index": i },
    el("th", { scope: "row" }, i === 0 ? "Principal" : `74${"abcde"[i - 1] || i}`),
    cellInput(`Procedure ${i + 1} code`, { name: "proc", class: "code-in", placeholder: i === 0 ? "0DTJ4ZZ" : "" }, "ICD-10-PCS code"),
    cellInput(`Procedure ${i + 1} date`, { name: "proc_date", type: "date" }, "Date")));
}

function addLine() {
  const body = $("#line-table tbody");
  const i = body.querySelectorAll("tr.entry").length;
  const n = i + 1;
  body.append(el("tr", { class: "entry", "data-index": i },
    el("th", { scope: "row" }, String(n)),
    cellInput(`Line ${n} date`, { name: "date", type: "date" }, "Date"),
    cellInput(`Line ${n} code`, { name: "code", class: "code-in", placeholder: i === 0 ? "E0130" : "" }, "Code"),
    cellInput(`Line ${n} modifiers`, { name: "modifiers", class: "mods-in", placeholder: i === 0 ? "NU" : "" }, "Modifiers"),
    cellInput(`Line ${n} diagnosis pointers`, { name: "diagnosis_pointers", class: "ptr-in", placeholder: i === 0 ? "A" : "" }, "Dx pointers"),
    cellInput(`Line ${n} units`, { name: "units", class: "num-in", inputmode: "decimal", placeholder: "1" }, "Units"),
    cellInput(`Line ${n} charge`, { name: "charge", class: "num-in", inputmode: "decimal" }, "Charge")));
}

const val = (tr, name) => (tr.querySelector(`[name=${name}]`)?.value || "").trim();

function pointers(text) {
  return text.split(/[\s,;]+/).filter(Boolean).map((t) => (/^[A-Za-z]$/.test(t) ? LETTERS.indexOf(t.toUpperCase()) + 1 : Number(t)));
}

// The claim in the JSON claim format, and for each list the form row each item came from.
function readForm(form) {
  const e = form.elements;
  const claim = { id: e.id.value.trim(), type: e.type.value, service_date: e.service_date.value,
    patient: { sex: e.sex.value }, diagnoses: [], procedures: [], lines: [] };
  if (e.birth_date.value) claim.patient.birth_date = e.birth_date.value;
  if (e.setting.value) claim.setting = e.setting.value;
  const rows = { diagnoses: [], procedures: [], lines: [] };
  for (const tr of $$("#dx-table tbody tr.entry")) {
    const code = val(tr, "dx");
    if (!code) continue;
    const poa = claim.type === "institutional" ? val(tr, "poa") : "";
    claim.diagnoses.push(poa ? { code, poa } : code);
    rows.diagnoses.push(tr);
  }
  if (claim.type === "institutional") {
    for (const tr of $$("#proc-table tbody tr.entry")) {
      const code = val(tr, "proc");
      if (!code) continue;
      claim.procedures.push(val(tr, "proc_date") ? { code, date: val(tr, "proc_date") } : code);
      rows.procedures.push(tr);
    }
  }
  for (const tr of $$("#line-table tbody tr.entry")) {
    const code = val(tr, "code");
    if (!code) continue;
    const line = { code, modifiers: val(tr, "modifiers").split(/[\s,;]+/).filter(Boolean).map((m) => m.toUpperCase()),
      diagnosis_pointers: pointers(val(tr, "diagnosis_pointers")) };
    if (val(tr, "units")) line.units = val(tr, "units");
    if (val(tr, "charge")) line.charge = val(tr, "charge");
    if (val(tr, "date")) line.date = val(tr, "date");
    claim.lines.push(line);
    rows.lines.push(tr);
  }
  return { claim, rows };
}

function clearFindings(form) {
  $$(".finding-row", form).forEach((r) => r.remove());
  $$("[aria-invalid]", form).forEach((i) => { i.removeAttribute("aria-invalid"); i.removeAttribute("aria-describedby"); });
  $("#claim-findings").replaceChildren();
}

// "lines[0].diagnosis_pointers[1]" -> {list: "lines", index: 0, field: "diagnosis_pointers"}
function parseLocation(loc) {
  const m = /^(diagnoses|procedures|lines)\[(\d+)\](?:\.([a-z_]+))?/.exec(loc || "");
  return m ? { list: m[1], index: Number(m[2]), field: m[3] || null } : null;
}

function findingItem(f, type) {
  const where = parseLocation(f.location);
  const fieldName = where && where.field ? FIELD_NAMES[where.field] || where.field : null;
  const formRef = where && where.list === "lines" && where.field
    ? FORMS[type][{ code: "code", modifiers: "mods", diagnosis_pointers: "ptr", charge: "charge", units: "units", date: "date" }[where.field]] : null;
  return el("li", { class: "finding sev-" + f.severity, "data-rule": f.rule },
    el("span", { class: "sev" }, f.severity), " ",
    fieldName ? el("span", { class: "where" }, `${fieldName}${formRef ? ` (${formRef})` : ""}: `) : null,
    f.message, " ",
    el("span", { class: "rule" }, "Rule ", el("code", {}, f.rule)), " ",
    f.source ? el("span", { class: "source" }, "Source: ", f.source) : null);
}

async function submit(form) {
  clearFindings(form);
  const out = $("#claim-result");
  const { claim, rows } = readForm(form);
  out.replaceChildren(el("p", { class: "status" }, "Checking…"));
  const r = await api("/claims/check", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(claim) });
  if (!r.ok) { out.replaceChildren(el("p", { class: "verdict bad", id: "claim-verdict", tabindex: "-1" }, errorText(r))); $("#claim-verdict").focus(); return; }
  const res = r.body;
  const findings = res.findings || [];
  const type = claim.type;
  const placed = new Map();   // form row -> findings
  const claimLevel = [];
  for (const f of findings) {
    const where = parseLocation(f.location);
    const tr = where ? rows[where.list][where.index] : null;
    if (!tr) { claimLevel.push(f); continue; }
    if (!placed.has(tr)) placed.set(tr, []);
    placed.get(tr).push(f);
  }
  for (const [tr, fs] of placed) {
    const id = uid("fnd");
    const cols = tr.children.length;
    tr.after(el("tr", { class: "finding-row" }, el("td", { colspan: String(cols) },
      el("ul", { id, class: "findings", "aria-label": `Findings for ${tr.querySelector("th").textContent}` }, fs.map((f) => findingItem(f, type))))));
    for (const f of fs) {
      const where = parseLocation(f.location);
      const name = where.field || (where.list === "diagnoses" ? "dx" : where.list === "procedures" ? "proc" : "code");
      const input = tr.querySelector(`[name=${name}]`);
      if (input && f.severity !== "info") { input.setAttribute("aria-invalid", "true"); input.setAttribute("aria-describedby", id); }
    }
  }
  if (claimLevel.length) {
    $("#claim-findings").replaceChildren(el("h2", {}, "About the whole claim"),
      el("ul", { class: "findings" }, claimLevel.map((f) => findingItem(f, type))));
  }
  const errors = findings.filter((x) => x.severity === "error").length;
  out.replaceChildren(
    el("p", { id: "claim-verdict", class: "verdict " + (res.ok ? "ok" : "bad"), tabindex: "-1" },
      res.ok ? `Claim ${res.claim}: no errors` : `Claim ${res.claim}: ${errors} error${errors === 1 ? "" : "s"}`,
      ` (${findings.length} finding${findings.length === 1 ? "" : "s"}, shown beside their fields)`),
    el("p", { class: "status" }, "Releases used: " + Object.entries(res.releases || {})
      .map(([s, v]) => `${SYSTEM_NAMES[s] || OTHER_RELEASES[s] || s} ${v}`).join(", ")),
    claim.diagnoses.length ? el("p", { class: "help" }, "Diagnoses: ", claim.diagnoses.map((d, i) => {
      const c = typeof d === "string" ? d : d.code;
      return [i ? ", " : "", el("a", { href: codeHref("icd10cm", c, claim.service_date) }, c)];
    })) : null);
  $("#claim-verdict").focus();
  const panel = $("#drg-panel");
  panel.replaceChildren();
  if (claim.type === "institutional" && claim.setting === "inpatient" && claim.diagnoses.length) drgPanel(panel, claim, rows);
}

// ------------------------------------------------------------------ MS-DRG (POST /claims/group, when the server has it)
async function drgPanel(panel, claim, rows) {
  panel.replaceChildren(el("p", { class: "status" }, "Grouping (MS-DRG)…"));
  const r = await api("/claims/group", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(claim) });
  if (r.status === 404 || r.status === 405 || r.status === 501) {
    panel.replaceChildren(el("p", { class: "status", id: "drg-absent" }, "MS-DRG grouping is not available on this server."));
    return;
  }
  if (!r.ok) { panel.replaceChildren(el("section", { class: "box drg" }, el("h2", {}, "MS-DRG"), el("p", { class: "verdict bad" }, errorText(r)))); return; }
  const g = r.body;
  const dl = (pairs) => el("dl", { class: "fields" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
  const secondary = g.secondary || [];
  const whatIf = new Map((g.what_if || []).map((w) => [w.position, w]));
  // the CC/MCC level beside each secondary diagnosis of the form
  for (const s of secondary) {
    const tr = rows.diagnoses[s.position];
    const cell = tr && tr.querySelector("td");
    if (cell) cell.append(el("span", { class: "tag drg-level" + (s.counts_as !== "non-CC" ? " yes" : "") }, s.counts_as));
  }
  panel.replaceChildren(el("section", { class: "box drg", "aria-labelledby": "drg-title" },
    el("h2", { id: "drg-title" }, "MS-DRG ", el("span", { class: "code" }, g.drg || "?"), " ", g.title || ""),
    dl([["MDC", g.mdc ? `${g.mdc} ${g.mdc_title || ""}` : null], ["Type", g.type], ["Relative weight", g.weight],
      ["Geometric mean LOS", g.gmlos], ["Arithmetic mean LOS", g.amlos], ["Severity", g.severity],
      ["Principal diagnosis", g.principal && g.principal.code]]),
    el("h3", {}, "Secondary diagnoses: CC / MCC"),
    secondary.length ? el("div", { class: "scroll", role: "region", "aria-label": "Secondary diagnoses", tabindex: "0" },
      el("table", { id: "drg-secondary" },
        el("thead", {}, el("tr", {}, ["Dx", "Code", "Level (Tables 6I/6J)", "Counts as", "Excluded by the principal (6K)", "What if removed"]
          .map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, secondary.map((s) => {
          const w = whatIf.get(s.position);
          return el("tr", {}, el("td", {}, ptrLabel(s.position, "institutional")),
            el("td", {}, el("a", { class: "code", href: codeHref("icd10cm", s.code, claim.service_date) }, s.code)),
            el("td", {}, s.level), el("td", {}, el("strong", {}, s.counts_as)),
            el("td", {}, s.excluded_by_principal ? `yes (collection ${s.exclusion_collection})` : "no"),
            el("td", {}, w ? `MS-DRG ${w.drg} ${w.title || ""}${w.weight_change !== null && w.weight_change !== undefined ? ` (weight ${w.weight_change > 0 ? "+" : ""}${w.weight_change})` : ""}` : "no change"));
        })))) : el("p", {}, "No secondary diagnoses."),
    el("p", { class: "help" }, "Source: ", g.source || g.grouper || "")));
}
