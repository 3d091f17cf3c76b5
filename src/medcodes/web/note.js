// "Code a note": POST /code, then the note with each span marked by the code it produced
// (or the reason it was not coded). The note stays in this page and that request only.
"use strict";
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const codeHref = (system, code) => `/#/code/${encodeURIComponent(system)}/${encodeURIComponent(code)}`;

function marks(text, res) {
  const spans = [];
  res.codes.forEach((c, i) => c.spans.forEach(([a, b]) => spans.push({a, b, kind: "coded", label: `${c.code} ${c.title}`, ref: `code-${i}`})));
  res.not_coded.forEach((s, i) => spans.push({a: s.span[0], b: s.span[1], kind: "skipped", label: `not coded: ${s.reason}`, ref: `skip-${i}`}));
  spans.sort((x, y) => x.a - y.a || (y.b - y.a) - (x.b - x.a));
  let out = "", at = 0;
  for (const s of spans) {
    if (s.a < at) continue;            // overlapping spans: the first, longest one is shown
    out += esc(text.slice(at, s.a));
    out += `<a href="#${s.ref}" class="mark ${s.kind}" title="${esc(s.label)}">${esc(text.slice(s.a, s.b))}<span class="visually-hidden"> (${esc(s.label)})</span></a>`;
    at = s.b;
  }
  return out + esc(text.slice(at));
}

function render(text, res) {
  $("marked").innerHTML = marks(text, res);
  $("codes").innerHTML = res.codes.map((c, i) => `<li id="code-${i}">
      <a href="${codeHref(c.system, c.code)}"><strong>${esc(c.code)}</strong></a> ${esc(c.title)}
      <span class="badge">${esc(c.role)}</span> <span class="badge">${esc(c.system)}</span>${c.billable ? "" : ' <span class="badge bad">not billable / incomplete</span>'}
      <div class="status">${esc(c.evidence.index || "")}${c.evidence.guideline ? " · " + esc(c.evidence.guideline) : ""}</div>
      ${c.queries.map((q) => `<div class="warn">Query: ${esc(q)}</div>`).join("")}
    </li>`).join("") || "<li>No codes found.</li>";
  $("skipped").innerHTML = res.not_coded.map((s, i) => `<li id="skip-${i}">“${esc(s.text)}”: ${esc(s.reason)}${s.would_be ? ` (would be ${esc(s.would_be)})` : ""}</li>`).join("") || "<li>Nothing.</li>";
  $("note-result").hidden = false;
}

$("note-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = $("note").value;
  const body = {text, setting: $("setting").value};
  if ($("date").value) body.date = $("date").value;
  $("note-status").textContent = "Coding…";
  try {
    const r = await fetch("/code", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    const res = await r.json();
    if (!r.ok) { $("note-status").textContent = res.detail || res.error || `error ${r.status}`; return; }
    render(text, res);
    $("note-status").textContent = `${res.codes.length} codes suggested, ${res.not_coded.length} mentions not coded.`;
  } catch (e) {
    $("note-status").textContent = "The service did not answer.";
  }
});
