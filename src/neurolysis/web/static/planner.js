// Neurolysis Planner page: the form, the niivue viewer, jobs with live progress (SSE), results and cases.
// Vanilla JS, no build step; talks only to this server's /api (docs/web.md).
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  templates: [], methods: {}, indications: [], template: null, plan: null, recommended: null,
  jobId: null, nv: null, viewerReady: false, placingFromCode: false, checkTimer: null, caseId: null, loading: 0,
  source: "template", upload: null, frame: "RAS",
  needles: [],  // the listed needles (several lesions): {target, approach, tip_mm, direction, recommended}
  previewTimer: null, previewSeq: 0, previewLesion: null,  // the instant lesion (POST /api/preview) of the needle in the form
};
// The plan's frame: templates and NIfTI scans are RAS; an NRRD scan is usually LPS. niivue works in RAS,
// so an LPS plan's points and directions have x and y negated on their way to and from the viewer.
const FRAMES = { RAS: "RAS: x right, y anterior, z superior", LPS: "LPS: x left, y posterior, z superior; the viewer's RAS converted" };
const toViewer = (v) => (state.frame === "LPS" ? [-v[0], -v[1], v[2]] : [v[0], v[1], v[2]]);
const fromViewer = toViewer;  // the flip is its own inverse
const UPLOAD_PATH = /^upload:([0-9a-f]{16})\//;
// Every change that reloads the form takes a ticket; an answer arriving after a newer change is dropped.
const ticket = () => ++state.loading;
const stale = (t) => t !== state.loading;

// ---------------------------------------------------------------- HTTP

async function api(path, options = {}) {
  const init = { headers: { Accept: "application/json" }, credentials: "same-origin", ...options };
  if (options.json !== undefined) {
    init.method = init.method || "POST";
    init.body = JSON.stringify(options.json);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const detail = body && Array.isArray(body.detail) ? body.detail[0] : null;
    const error = new Error(detail ? detail.msg : `${response.status} ${response.statusText}`);
    error.loc = detail ? detail.loc : null;
    error.status = response.status;
    throw error;
  }
  return body;
}

function option(value, text, selected = false) {
  const o = document.createElement("option");
  o.value = value; o.textContent = text ?? value; o.selected = selected;
  return o;
}

const fmt = (v, digits = 1) => (v === null || v === undefined || Number.isNaN(v) ? "-" : Number(v).toFixed(digits));
const pct = (v) => (v === null || v === undefined ? "-" : `${(100 * v).toFixed(0)} %`);
const range = (r, digits = 1) => (r && r.median !== null && r.median !== undefined ? `${fmt(r.median, digits)} (p10-p90 ${fmt(r.p10, digits)}-${fmt(r.p90, digits)})` : null);
const vec = (v, digits = 1) => `[${v.map((x) => fmt(x, digits)).join(", ")}]`;

function showError(message) { $("form-error").textContent = message || ""; }

// ---------------------------------------------------------------- catalogues and the form

async function init() {
  const [templates, methods, indications] = await Promise.all([api("/api/templates"), api("/api/methods"), api("/api/indications")]);
  state.templates = templates.templates;
  for (const m of methods.methods) state.methods[m.method] = m;
  state.indications = indications.indications;
  for (const i of state.indications) $("indication").append(option(i.id, `${i.name} (${i.category})`));
  fillTemplates(null);
  fillMethods(null);
  $("template").value = state.templates.some((t) => t.name === "lumbar-medial-branch") ? "lumbar-medial-branch" : state.templates[0].name;
  $("method").value = "rf";
  initViewer();
  await chooseTemplate();
  await refreshCases();
}

function setFrame(frame) {
  state.frame = frame || "RAS";
  $("frame").textContent = FRAMES[state.frame] || state.frame;
}

function setStatus(element, ok, text) {
  element.textContent = text;
  element.className = `status ${ok ? "ok" : "bad"}`;
}

// The upload a plan's [anatomy] names (upload:<id>/<file>), or null.
function uploadOf(anatomy) {
  const first = [anatomy?.segmentation].flat()[0];
  const match = typeof first === "string" ? first.match(UPLOAD_PATH) : null;
  return match ? match[1] : null;
}

// ---------------------------------------------------------------- anatomy source: a template or my scan

function showSource(source) {
  state.source = source;
  $(source === "scan" ? "source-scan" : "source-template").checked = true;
  $("template-fields").hidden = source === "scan";
  $("scan-fields").hidden = source !== "scan";
  $("offset-rule").textContent = source === "scan" ? "a moved tip is an explicit placement, checked by the server" : "at most 50 mm per axis";
}

async function chooseSource() {
  showSource($("source-scan").checked ? "scan" : "template");
  state.caseId = null;
  showError("");
  if (state.source === "template") {
    setFrame("RAS");
    await chooseTemplate();
  } else if (state.upload) {
    await chooseUpload();
  } else {
    ticket();
    state.plan = null;
    $("target").replaceChildren();
    $("legend").replaceChildren();
    clearViewer();
    $("viewer-note").textContent = "Upload a scan (its segmentation, and the CT or MR if you have it) to plan on it.";
  }
}

async function uploadScan() {
  const status = $("upload-status");
  const files = [...$("scan-segmentation").files];
  const table = $("scan-names-table").files[0] || null;
  const image = $("scan-image").files[0] || null;
  if (!files.length) { setStatus(status, false, "segmentation: choose the label map file(s) first"); return; }
  const limit = Number($("scan-fields").dataset.uploadLimit);
  const total = [...files, table, image].filter(Boolean).reduce((n, f) => n + f.size, 0);
  if (total > limit) {
    setStatus(status, false, `upload: ${(total / 2 ** 20).toFixed(1)} MB; at most ${(limit / 2 ** 20).toFixed(0)} MB (crop or resample the scan)`);
    return;
  }
  let names = $("scan-names").value.split(",").map((n) => n.trim()).filter(Boolean);
  if (table && !names.includes("table")) names = [];  // the table names every layer
  const form = new FormData();
  for (const f of files) form.append("segmentation", f, f.name);
  for (const n of names) form.append("names", n);
  if (table) form.append("names_table", table, table.name);
  if (image) form.append("image", image, image.name);
  $("upload").disabled = true;
  setStatus(status, true, `uploading and reading ${(total / 2 ** 20).toFixed(1)} MB ...`);
  try {
    const up = await api("/api/anatomy", { method: "POST", body: form });
    state.upload = up;
    setStatus(status, true, `${up.created ? "stored" : "stored already"} as upload ${up.id}: ${up.summary.structures.length} structures, ${up.targets.length} targets`);
    await chooseUpload();
  } catch (error) {
    setStatus(status, false, error.message);
  } finally {
    $("upload").disabled = false;
  }
}

function fillSides(keep) {
  const target = state.upload.targets.find((x) => x.target === $("target").value);
  const sides = target ? target.sides : [];
  $("side").replaceChildren(...sides.map((side) => option(side, side, side === keep)));
  $("side-label").hidden = !sides.length;
}

// Show an uploaded scan: its targets and sides, the legend by tissue, the image and labels; then a new plan
// (``wanted``: target, side, approach to select, ``t`` a ticket already taken, ``noPlan`` to leave the plan to the caller).
async function chooseUpload(wanted = {}) {
  const t = wanted.t ?? ticket();
  const up = state.upload;
  if (!wanted.noPlan) setNeedles([]);
  setFrame(up.frame);
  const g = up.summary.grid;
  $("scan-summary").textContent = `${g.shape.join(" x ")} voxels of ${g.spacing_mm.join(" x ")} mm, ${g.frame}; ${up.summary.structures.length} structures`
    + ` (${up.summary.unmapped.length} unmapped); image: ${up.summary.image ? (up.summary.image.modality || "yes") : "none"}`;
  if (!up.targets.length) {
    $("target").replaceChildren();
    state.plan = null;
    showError("target: the landmarks of no rule are in this segmentation (see `neurolysis anatomy inspect`)");
  } else {
    const names = up.targets.map((x) => x.target);
    const keep = wanted.target || $("target").value;
    const target = names.includes(keep) ? keep : names[0];
    $("target").replaceChildren(...up.targets.map((x) => option(x.target, `${x.target} (${x.rule})`, x.target === target)));
    fillSides(wanted.side || $("side").value);
  }
  $("approach").replaceChildren(...["parallel", "perpendicular"].map((a) => option(a, a, a === (wanted.approach || "parallel"))));
  const tissues = new Map(up.viewer.regions.filter((r) => r.index > 0).map((r) => [r.tissue, r.rgb]));
  $("legend").replaceChildren(...[...tissues].map(([tissue, rgb]) => {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.style.background = `rgb(${rgb.join(",")})`;
    li.append(swatch, tissue);
    return li;
  }));
  $("viewer-note").textContent = `${up.viewer.image_url ? "The image in grey with the" : "The"} segmentation coloured by tissue; ${up.viewer.note}.`;
  await loadScan();
  if (!stale(t) && !wanted.noPlan && up.targets.length) await newPlan();
}

function currentIndication() { return state.indications.find((i) => i.id === $("indication").value) || null; }

function fillTemplates(indication) {
  const keep = $("template").value;
  $("template").replaceChildren(...state.templates.filter((t) => !indication || indication.templates.includes(t.name)).map((t) => option(t.name, t.name, t.name === keep)));
}

function fillMethods(indication) {
  const keep = $("method").value;
  const names = Object.keys(state.methods).filter((m) => !indication || !indication.methods.length || indication.methods.includes(m));
  $("method").replaceChildren(...names.map((m) => option(m, `${m}: ${state.methods[m].description}`, m === keep)));
  $("method-note").textContent = indication && Object.keys(indication.not_appropriate).length
    ? `Not appropriate here: ${Object.entries(indication.not_appropriate).map(([m, why]) => `${m} (${why})`).join("; ")}` : "";
}

async function chooseIndication() {
  const indication = currentIndication();
  fillTemplates(indication);
  fillMethods(indication);
  $("indication-note").textContent = indication ? `${indication.evidence_level.text} [${indication.evidence_level.tag}]; targets: ${indication.targets.join(", ")}` : "";
  await chooseTemplate();
}

async function chooseTemplate() {
  const t = ticket();
  const name = $("template").value;
  const template = await api(`/api/templates/${encodeURIComponent(name)}`);
  if (stale(t)) return;
  state.template = template;
  state.caseId = null;  // a plan on another template is no revision of a reopened case
  setNeedles([]);  // needles of another anatomy do not carry over
  const indication = currentIndication();
  const targets = state.template.targets.filter((name) => !indication || !indication.targets.length || indication.targets.includes(name));
  $("target").replaceChildren(...(targets.length ? targets : state.template.targets).map((name) => option(name, name, name === state.template.default_target)));
  $("approach").replaceChildren(...state.template.approaches.map((a) => option(a)));
  $("legend").replaceChildren(...state.template.regions.filter((r) => r.index > 0).map((r) => {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.style.background = `rgb(${r.rgb.join(",")})`;
    li.append(swatch, r.name);
    return li;
  }));
  await loadLabels();
  if (!stale(t)) await newPlan();
}

function newPlanQuery() {
  const common = { method: $("method").value, target: $("target").value, approach: $("approach").value };
  if (state.source !== "scan") return new URLSearchParams({ template: $("template").value, ...common });
  const q = new URLSearchParams({ upload: state.upload.id, ...common });
  if (!$("side-label").hidden && $("side").value) q.set("side", $("side").value);
  return q;
}

async function newPlan() {
  const t = ticket();
  if (state.source === "scan" && !state.upload) return;
  try {
    const fresh = await api(`/api/plans/new?${newPlanQuery()}`);
    if (stale(t)) return;
    setFrame(fresh.frame);
    applyPlan(fresh.plan, fresh.placement);
    showError("");
  } catch (error) {
    showError(error.message);
  }
}

function recommendedPose(target, approach) {
  return state.template.placements.find((p) => p.target === target && p.approach === approach) || null;
}

// Put a resolved plan (sections) and its needle pose into the form.
function applyPlan(plan, placement, origin = "recommended") {
  state.plan = plan;
  if (state.source === "scan") {
    if (origin === "recommended") state.recommended = { tip_mm: placement.tip_mm, direction: placement.direction };
  } else {
    const approach = plan.placement?.approach || plan.needles?.[0]?.approach || "parallel";
    state.recommended = recommendedPose(plan.target?.nerve || plan.needles?.[0]?.target || state.template.default_target, approach === "explicit" ? "parallel" : approach);
  }
  renderMethodFields(plan.procedure);
  setTip(placement.tip_mm, placement.direction);
  $("weight-kg").value = plan.patient?.weight_kg ?? "";
  $("age-years").value = plan.patient?.age_years ?? "";
  $("monte-carlo").value = plan.uncertainty?.samples ?? "";
  $("monte-carlo").max = 5000;
  setPlacementStatus(true, `needle tip valid (${origin})`);
}

function renderMethodFields(procedure) {
  const method = state.methods[procedure.method];
  const box = $("method-fields");
  box.querySelectorAll("label").forEach((l) => l.remove());
  for (const f of method.form) {
    const value = procedure[f.name] ?? f.default;
    const label = document.createElement("label");
    label.dataset.field = f.name;
    const title = document.createElement("span");
    title.textContent = `${f.label}${f.unit ? ` (${f.unit})` : ""}`;
    let input;
    if (f.choices && f.kind === "list") {
      input = document.createElement("select");
      input.multiple = true;
      for (const c of f.choices) input.append(option(c, c, (value || []).includes(c)));
    } else if (f.choices) {
      input = document.createElement("select");
      for (const c of f.choices) input.append(option(c, c, c === value));
    } else if (f.kind === "boolean") {
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = Boolean(value);
    } else if (f.kind === "number" || f.kind === "integer") {
      input = document.createElement("input");
      input.type = "number";
      input.step = f.kind === "integer" ? "1" : "any";
      if (f.range) { input.min = f.range.low; input.max = f.range.high; }
      input.value = value ?? "";
      input.placeholder = "default (device or generator)";
    } else {
      input = document.createElement("input");
      input.value = value === undefined || value === null ? "" : (typeof value === "string" ? value : JSON.stringify(value));
    }
    input.id = `field-${f.name}`;
    input.dataset.kind = f.kind;
    input.addEventListener("change", () => { if (f.name === "agent") updateRanges(); scheduleCheck(); });
    const hint = document.createElement("span");
    hint.className = "hint";
    hint.id = `hint-${f.name}`;
    label.append(title, input, hint);
    box.append(label);
  }
  updateRanges();
}

// The allowed range shown beside each number, following another choice where it moves it (the agent).
function updateRanges() {
  const method = state.methods[$("method").value];
  if (!method) return;
  for (const f of method.form) {
    const hint = $(`hint-${f.name}`);
    const input = $(`field-${f.name}`);
    if (!hint) continue;
    let r = f.range ? [f.range.low, f.range.high] : null;
    for (const [chooser, byChoice] of Object.entries(method.ranges_by_choice?.[f.name] || {})) {
      const chosen = $(`field-${chooser}`)?.value;
      if (chosen && byChoice[chosen]) r = byChoice[chosen];
    }
    if (r && input.type === "number") { input.min = r[0]; input.max = r[1]; }
    const parts = [];
    if (f.default !== null && f.default !== undefined) parts.push(`default ${typeof f.default === "object" ? JSON.stringify(f.default) : f.default}`);
    if (r) parts.push(`allowed ${f.range && !f.range.low_inclusive ? "(" : "["}${r[0]}, ${r[1]}]${f.unit ? " " + f.unit : ""}`);
    if (f.help && !parts.length) parts.push(f.help);
    hint.textContent = parts.join("; ");
  }
}

function fieldValue(input) {
  const kind = input.dataset.kind;
  if (input.multiple) return [...input.selectedOptions].map((o) => o.value);
  if (kind === "boolean") return input.checked;
  if (input.value === "") return undefined;
  if (kind === "number" || kind === "integer") return Number(input.value);
  if (kind === "list") { try { return JSON.parse(input.value); } catch { return input.value; } }
  return input.value;
}

const round1 = (v) => Math.round(v * 10) / 10;

function tipFromFields() { return ["tip-x", "tip-y", "tip-z"].map((id) => Number($(id).value)); }

// The plan (sections) the form describes: the resolved plan, with the form's fields over it.
function planFromForm() {
  const p = structuredClone(state.plan);
  const method = $("method").value;
  const scan = state.source === "scan";
  if (scan) {
    p.anatomy = { ...state.plan.anatomy, ...state.upload.anatomy };
    delete p.anatomy.side;
    if (!$("side-label").hidden && $("side").value) p.anatomy.side = $("side").value;
  } else {
    p.anatomy = { template: $("template").value };
  }
  p.target = { nerve: $("target").value };
  p.procedure = { method };
  for (const f of state.methods[method].form) {
    const value = fieldValue($(`field-${f.name}`));
    if (value !== undefined) p.procedure[f.name] = value;
  }
  const tip = tipFromFields();
  const moved = state.recommended && tip.some((v, i) => Math.abs(v - state.recommended.tip_mm[i]) > 0.05);
  if (p.placement?.approach === "explicit") {
    p.placement = { approach: "explicit", tip_mm: tip, direction: p.placement.direction };
  } else if (scan && moved) {  // a scan: the clicked tip in the plan's frame, along the recommended direction
    p.placement = { approach: "explicit", tip_mm: tip, direction: state.recommended.direction };
  } else {
    p.placement = { approach: $("approach").value, offset_mm: tip.map((v, i) => round1(v - state.recommended.tip_mm[i])) };
  }
  if (state.needles.length) {  // several lesions: the listed needles replace the one [placement]
    p.needles = state.needles.map(needleSpec);
    p.target = { nerve: state.needles[0].target };
    delete p.placement;
  } else {
    delete p.needles;
  }
  p.patient = {};
  if ($("weight-kg").value !== "") p.patient.weight_kg = Number($("weight-kg").value);
  if ($("age-years").value !== "") p.patient.age_years = Number($("age-years").value);
  p.indication = !scan && $("indication").value ? { name: $("indication").value } : {};
  if (p.uncertainty) delete p.uncertainty.samples;
  return p;
}

// ---------------------------------------------------------------- several needles

// One [[needles]] table: on a template, the recommended pose of its target moved by an offset; on a scan
// (or when the tip was typed as explicit) the tip and direction themselves.
function needleSpec(n) {
  if (state.source === "scan" || !n.recommended) return { target: n.target, approach: "explicit", tip_mm: n.tip_mm, direction: n.direction };
  return { target: n.target, approach: n.approach, offset_mm: n.tip_mm.map((v, i) => round1(v - n.recommended.tip_mm[i])) };
}

function setNeedles(needles) {
  state.needles = needles;
  $("needles").tBodies[0].replaceChildren(...needles.map((n, k) => {
    const tr = document.createElement("tr");
    tr.dataset.needle = String(k);
    for (const text of [String(k + 1), n.target, vec(n.tip_mm)]) tr.append(Object.assign(document.createElement("td"), { textContent: text }));
    const edit = Object.assign(document.createElement("button"), { type: "button", textContent: "Edit", className: "edit-needle", title: "back into the form above (taken off the list)" });
    edit.addEventListener("click", () => editNeedle(k));
    const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "Remove", className: "remove-needle" });
    remove.addEventListener("click", () => { setNeedles(state.needles.filter((_, i) => i !== k)); scheduleCheck(); });
    const td = document.createElement("td");
    td.append(edit, remove);
    tr.append(td);
    return tr;
  }));
  $("needles-note").textContent = needles.length
    ? `${needles.length} needle(s) in the plan, made one after another; the needle above is not in it until added.`
    : "To treat several nerves: place the needle above, add it, choose the next target, place it, add it.";
  if (state.direction) drawNeedle(tipFromFields(), state.direction);
}

function addNeedle() {
  if (!state.plan) { showError("plan: choose an anatomy and a target first"); return; }
  const recommended = state.recommended ? { tip_mm: [...state.recommended.tip_mm], direction: [...state.recommended.direction] } : null;
  setNeedles([...state.needles, { target: $("target").value, approach: $("approach").value, tip_mm: tipFromFields(), direction: state.direction, recommended }]);
  scheduleCheck();
}

async function editNeedle(k) {
  const n = state.needles[k];
  setNeedles(state.needles.filter((_, i) => i !== k));
  $("target").value = n.target;
  $("approach").value = n.approach;
  await newPlan();
  setTip(n.tip_mm, n.direction);
  scheduleCheck();
}

function monteCarlo() { return $("monte-carlo").value === "" ? null : Number($("monte-carlo").value); }

function setTip(tip, direction) {
  ["tip-x", "tip-y", "tip-z"].forEach((id, i) => { $(id).value = round1(tip[i]); });
  if (direction) state.direction = direction;
  $("direction").textContent = state.direction ? vec(state.direction, 2) : "-";
  const offset = state.recommended ? tip.map((v, i) => round1(v - state.recommended.tip_mm[i])) : [0, 0, 0];
  $("offset-mm").textContent = vec(offset);
  drawNeedle(tip, state.direction);
}

function setPlacementStatus(ok, text) {
  const s = $("placement-status");
  s.textContent = text;
  s.className = `status ${ok ? "ok" : "bad"}`;
}

function scheduleCheck() {
  clearTimeout(state.checkTimer);
  state.checkTimer = setTimeout(checkPlan, 250);
  clearTimeout(state.previewTimer);
  state.previewTimer = setTimeout(showPreview, 40);
}

// The instant lesion at the needle in the form (POST /api/preview: milliseconds), redrawn as it moves.
async function showPreview() {
  const out = $("preview");
  if (state.needles.length) { out.textContent = ""; return; }
  const asked = ++state.previewSeq;
  try {
    const p = await api("/api/preview", { json: { plan: planFromForm() } });
    if (asked !== state.previewSeq) return;  // a newer move is on its way
    if (!p.in_range) { out.textContent = `instant lesion: ${p.reason}; Simulate for the full solve`; state.previewLesion = null; return; }
    const touched = p.critical.filter((c) => c.touched).map((c) => c.name);
    out.textContent = `instant lesion ${p.lesion.width_mm.toFixed(1)} x ${p.lesion.length_mm.toFixed(1)} mm: ` +
      `${(100 * p.target.pain_fibres_reached_fraction).toFixed(0)} % of ${p.target.nerve}'s pain fibres reached; ` +
      (touched.length ? `touches ${touched.join(", ")}` : "no critical structure touched") + " (screen; Simulate for the 3D solve)";
    out.dataset.reached = p.target.pain_fibres_reached_fraction;
    state.previewLesion = p.lesion;
    drawNeedle(tipFromFields(), state.direction);
  } catch (error) {
    if (asked === state.previewSeq) out.textContent = "";
  }
}

async function checkPlan() {
  try {
    const checked = await api("/api/plans/check", { json: { plan: planFromForm(), monte_carlo: monteCarlo() } });
    if (state.needles.length) {  // the listed needles were checked; the needle in the form is a draft until added
      setPlacementStatus(true, `plan with ${state.needles.length} needle(s) valid`);
    } else {
      state.direction = checked.placement.direction;
      $("direction").textContent = vec(state.direction, 2);
      setPlacementStatus(true, `needle tip valid at ${vec(checked.placement.tip_mm)} mm`);
    }
    showError("");
    return true;
  } catch (error) {
    if ((error.loc || []).includes("placement")) setPlacementStatus(false, error.message);
    showError(error.message);
    return false;
  }
}

// ---------------------------------------------------------------- the viewer (niivue)

function initViewer() {
  const canvas = $("viewer");
  const gl = canvas.getContext("webgl2");
  if (!gl || !window.niivue) {
    $("viewer-box").hidden = true;
    $("webgl-fallback").hidden = false;
    return;
  }
  const nv = new window.niivue.Niivue({ backColor: [0.05, 0.05, 0.08, 1], crosshairColor: [0.1, 1, 0.3, 1], show3Dcrosshair: true, isColorbar: false,
    multiplanarShowRender: window.niivue.SHOW_RENDER.ALWAYS, loadingText: "loading anatomy", logLevel: "error", meshThicknessOn2D: 3 });
  nv.attachToCanvas(canvas);
  nv.setSliceType(nv.sliceTypeMultiplanar);
  nv.onLocationChange = (location) => {
    if (state.placingFromCode || !location || !location.mm || !state.plan) return;
    setTip(fromViewer([location.mm[0], location.mm[1], location.mm[2]]));
    scheduleCheck();
  };
  state.nv = nv;
}

function clearViewer() {
  const nv = state.nv;
  if (!nv) return;
  state.viewerReady = false;
  for (const v of [...nv.volumes]) nv.removeVolume(v);
  for (const m of [...nv.meshes]) nv.removeMesh(m);
  nv.drawScene();
}

// Volumes in the viewer: the last is the label volume (coloured by ``regions``), drawn over an image where there is one.
async function loadVolumes(volumes, regions) {
  const nv = state.nv;
  if (!nv) return;
  clearViewer();
  await nv.loadVolumes(volumes.map((v) => ({ url: v.url, name: v.name, colormap: "gray" })));
  const labels = nv.volumes[nv.volumes.length - 1];
  labels.setColormapLabel({
    R: regions.map((r) => r.rgb[0]), G: regions.map((r) => r.rgb[1]), B: regions.map((r) => r.rgb[2]),
    A: regions.map((r) => (r.index === 0 ? 0 : 255)), I: regions.map((r) => r.index), labels: regions.map((r) => r.name),
  });
  labels.opacity = volumes.length > 1 ? 0.45 : 0.9;
  nv.updateGLVolume();
  state.viewerReady = true;
}

function loadLabels() {
  $("viewer-note").textContent = "";
  return loadVolumes([{ url: state.template.labels_url, name: `${state.template.name}.nii.gz` }], state.template.regions);
}

function loadScan() {
  const v = state.upload.viewer;
  const volumes = v.image_url ? [{ url: v.image_url, name: `${state.upload.id}-image.nii.gz` }] : [];
  return loadVolumes([...volumes, { url: v.labels_url, name: `${state.upload.id}-labels.nii.gz` }], v.regions);
}

// The needle: the crosshair at the tip, and a line (a two-node connectome) from 40 mm back to the tip
// (``tip`` and ``direction`` in the plan's frame; drawn in the viewer's RAS).
function drawNeedle(planTip, planDirection) {
  const nv = state.nv;
  if (!nv || !state.viewerReady) return;
  const tip = toViewer(planTip);
  const direction = planDirection ? toViewer(planDirection) : null;
  state.placingFromCode = true;
  try {
    nv.scene.crosshairPos = nv.mm2frac(tip);
    if (direction) {
      for (const m of [...nv.meshes]) nv.removeMesh(m);
      // the needle in the form and every listed needle: a hub-tip pair of nodes joined by an edge each
      const poses = [[tip, direction], ...state.needles.map((n) => [toViewer(n.tip_mm), toViewer(n.direction)])];
      const nodes = { names: [], X: [], Y: [], Z: [], Color: [], Size: [] };
      for (const [k, [t, d]] of poses.entries()) {
        const hub = t.map((v, i) => v - 40 * d[i]);
        for (const [name, point, color, size] of [[`hub ${k}`, hub, 0.3, 0.4], [`tip ${k}`, t, 1, 1.2]]) {
          nodes.names.push(name); nodes.X.push(point[0]); nodes.Y.push(point[1]); nodes.Z.push(point[2]); nodes.Color.push(color); nodes.Size.push(size);
        }
      }
      if (state.previewLesion && !state.needles.length) {  // the instant lesion: a node at its centre, its size the lesion's width
        const c = toViewer(state.previewLesion.centre_mm);
        nodes.names.push("lesion"); nodes.X.push(c[0]); nodes.Y.push(c[1]); nodes.Z.push(c[2]); nodes.Color.push(0.6); nodes.Size.push(state.previewLesion.width_mm / 2);
      }
      const n = nodes.names.length;
      const edges = Array(n * n).fill(0);
      for (let k = 0; k + 1 < n; k += 2) { edges[k * n + k + 1] = 1; edges[(k + 1) * n + k] = 1; }
      nv.loadConnectome({
        name: "needle", nodeColormap: "warm", nodeColormapNegative: "winter", nodeMinColor: 0, nodeMaxColor: 1, nodeScale: 1.2,
        edgeColormap: "warm", edgeColormapNegative: "winter", edgeMin: 0, edgeMax: 1, edgeScale: 0.6, showLegend: false, nodes, edges,
      });
    }
    nv.drawScene();
    nv.createOnLocationChange();
  } finally {
    state.placingFromCode = false;
  }
}

// Where the needle tip is drawn on the canvas (CSS pixels), for clicks near it (tests, docs).
function tipOnCanvas() {
  const nv = state.nv;
  const pos = nv.frac2canvasPos(nv.mm2frac(toViewer(tipFromFields())));
  const canvas = $("viewer");
  const scale = canvas.width / canvas.clientWidth;
  return pos ? { x: pos[0] / scale, y: pos[1] / scale } : null;
}

// ---------------------------------------------------------------- jobs

function follow(jobId, onDone) {
  $("progress-box").hidden = false;
  $("progress").value = 0;
  $("progress-text").textContent = "queued";
  const events = new EventSource(`/api/jobs/${jobId}/events`);
  const update = (e) => {
    const d = JSON.parse(e.data);
    $("progress").value = d.progress;
    $("progress-text").textContent = `${d.status} ${(100 * d.progress).toFixed(0)} %`;
  };
  state.followed = jobId;
  $("cancel-job").hidden = false;
  const end = () => { events.close(); $("cancel-job").hidden = true; setBusy(false); };
  events.addEventListener("progress", update);
  events.addEventListener("done", async (e) => { update(e); end(); onDone(await api(`/api/jobs/${jobId}`)); });
  events.addEventListener("failed", (e) => { update(e); end(); showError(`job failed: ${JSON.parse(e.data).error}`); });
  events.addEventListener("cancelled", (e) => { update(e); end(); });
  events.onerror = () => { if (events.readyState === EventSource.CLOSED) end(); };
}

async function cancelJob() {
  if (!state.followed) return;
  try {
    await api(`/api/jobs/${state.followed}`, { method: "DELETE" });
  } catch (error) {
    showError(error.message);
  }
}

function setBusy(busy) { $("run").disabled = busy; $("compare").disabled = busy; }

async function run(event) {
  event.preventDefault();
  if (!state.plan) { showError("plan: upload a scan and choose its target first"); return; }
  showError("");
  setBusy(true);
  try {
    const job = await api("/api/simulate", { json: { plan: planFromForm(), monte_carlo: monteCarlo() } });
    state.jobId = job.job_id;
    follow(job.job_id, (done) => showOutcome(done.result, done.lights, { figure: done.links.figure, report: done.links.report, jobId: done.job_id }));
  } catch (error) {
    showError(error.message);
    setBusy(false);
  }
}

async function compare() {
  if (!state.plan) { showError("plan: upload a scan and choose its target first"); return; }
  showError("");
  setBusy(true);
  try {
    const job = await api("/api/compare", { json: { plan: planFromForm(), monte_carlo: monteCarlo() } });
    follow(job.job_id, (done) => showComparison(done.result));
  } catch (error) {
    showError(error.message);
    setBusy(false);
  }
}

// ---------------------------------------------------------------- results

function verdict(outcome, lights) {
  const t = outcome.target;
  const u = outcome.uncertainty;
  let block, relief;
  if (outcome.method === "block") {
    block = "yes, temporarily";
    relief = `${range(outcome.block.sensory_block_h)} hours of sensory block; ${outcome.block.blocks_needed} blocks for ${outcome.block.horizon_months} months`;
  } else if (outcome.needles && outcome.territory) {  // several needles: the territory they share
    const tr = outcome.territory;
    block = tr.pain_block ? `yes (${tr.name})` : `no (${tr.name}: not every treated nerve blocked)`;
    const r = u && u.relief_months ? u.relief_months : (tr.pain_block ? tr.relief_months : null);
    relief = range(r) ? `${range(r)} months${u && u.relief_months ? " over the cohort (failed blocks count 0)" : ""}` : "none predicted";
  } else {
    block = t.pain_block ? "yes" : "no";
    const r = u && u.relief_months ? u.relief_months : (t.pain_block ? t.relief_months : null);
    relief = range(r) ? `${range(r)} months${u && u.relief_months ? " over the cohort (failed blocks count 0)" : ""}` : `none predicted${t.relief_note ? ": " + t.relief_note : ""}`;
  }
  const sure = u ? `P(block) ${pct(u.p_block)} (95 % CI ${pct(u.p_block_95ci[0])}-${pct(u.p_block_95ci[1])}) over ${u.samples} needle placements`
    : "the planned pose only (set Monte Carlo placements for P(block) with its 95 % interval)";
  const worst = lights.find((l) => l.light === "red") || lights.find((l) => l.light === "amber");
  const risk = worst ? { level: worst.light, text: `${worst.light === "red" ? "INJURED" : "near a threshold"}: ${worst.name} (${worst.why})` }
    : { level: "green", text: "no critical structure injured" };
  return { block, relief, sure, risk };
}

function showOutcome(outcome, lights, links) {
  const v = verdict(outcome, lights);
  $("result-none").hidden = true;
  $("result").hidden = false;
  $("verdict-block").textContent = v.block;
  $("verdict-relief").textContent = v.relief;
  $("verdict-sure").textContent = v.sure;
  $("verdict-risk").textContent = v.risk.text;
  const several = (outcome.targets || []).length > 1;
  $("targets-row").hidden = !several;
  $("targets-text").textContent = several
    ? outcome.targets.map((x) => `${x.nerve}: ${x.pain_block ? "blocked" : "not blocked"}, ${pct(x.pain_fibres_killed_fraction)} of pain fibres killed`).join("; ")
    : "";
  $("verdict-risk").className = `risk-${v.risk.level}`;
  $("warnings").replaceChildren(...outcome.warnings.map((w) => Object.assign(document.createElement("li"), { textContent: w })));
  $("lights").tBodies[0].replaceChildren(...lights.map((l) => {
    const tr = document.createElement("tr");
    tr.dataset.structure = l.name;
    const temperature = l.min_temp_c === null || l.min_temp_c === undefined ? `peak ${fmt(l.peak_temp_c)}` : `min ${fmt(l.min_temp_c)}`;  // cold methods: the lowest reached
    const cells = ["", l.name, l.kind, temperature, fmt(l.distance_to_lesion_mm), l.p_injury === null ? "-" : pct(l.p_injury), l.why];
    for (const c of cells) tr.append(Object.assign(document.createElement("td"), { textContent: c }));
    tr.cells[0].className = `light light-${l.light}`;
    tr.cells[0].replaceChildren(Object.assign(document.createElement("span"), { title: l.light }));
    tr.cells[0].dataset.light = l.light;
    return tr;
  }));
  const u = outcome.uncertainty;
  $("uncertainty").hidden = !u;
  if (u) {
    $("uncertainty-text").textContent = `${u.samples} needle placements: P(block) ${pct(u.p_block)} (95 % CI ${pct(u.p_block_95ci[0])}-${pct(u.p_block_95ci[1])}); `
      + `relief ${range(u.relief_months) || "-"} months; P(motor deficit) ${pct(u.p_motor_deficit)}; `
      + `P(injury): ${u.critical.map((c) => `${c.name} ${pct(c.p_injury)}`).join(", ")}`;
  }
  $("report-link").href = links.report;
  $("figure").hidden = !links.figure;
  if (links.figure) $("figure").src = links.figure;
  $("figure-note").textContent = links.figure ? "" : "(the figures are in the report)";
  state.jobId = links.jobId || null;
  $("save-form").hidden = !state.jobId;
  $("save-status").textContent = "";
}

function showComparison(result) {
  $("comparison").hidden = false;
  $("comparison-note").textContent = `at ${result.target} (${result.template}), ${result.horizon_months} months${result.samples ? `, ${result.samples} placements each` : ""}`;
  $("comparison-table").tBodies[0].replaceChildren(...result.methods.map((m) => {
    const tr = document.createElement("tr");
    if (m.method === $("method").value) tr.className = "current";
    const ci = m.p_block_95ci ? ` (${pct(m.p_block_95ci[0])}-${pct(m.p_block_95ci[1])})` : "";
    const cells = [m.method, m.p_block === null ? "-" : pct(m.p_block) + ci, range(m.relief_months) || "-", m.procedures_needed ?? "-",
      m.worst_p_injury === null || m.worst_p_injury === undefined ? "-" : pct(m.worst_p_injury), m.applicable ? "" : `not simulated: ${m.reason}`];
    for (const c of cells) tr.append(Object.assign(document.createElement("td"), { textContent: c }));
    return tr;
  }));
}

// ---------------------------------------------------------------- cases

async function save(event) {
  event.preventDefault();
  const tags = $("save-tags").value.split(",").map((t) => t.trim()).filter(Boolean);
  try {
    const saved = await api("/api/cases", { json: { job_id: state.jobId, tags, notes: $("save-notes").value, parent_id: state.caseId } });
    $("save-status").textContent = `saved as case ${saved.id}`;
    $("save-status").className = "status ok";
    state.caseId = saved.id;
    await refreshCases();
  } catch (error) {
    $("save-status").textContent = error.message;
    $("save-status").className = "status bad";
  }
}

async function refreshCases() {
  const listing = await api("/api/cases?limit=50");
  $("cases-none").hidden = listing.cases.length > 0;
  $("cases").tBodies[0].replaceChildren(...listing.cases.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.case = c.id;
    const s = c.settings;
    const on = s.anatomy.template || `scan ${uploadOf(s.anatomy) || "(a file)"}`;
    const cells = [c.id, c.created_at.replace("T", " ").slice(0, 19), `${s.procedure.method} at ${c.outcome.anatomy.target_nerve} (${on})`,
      c.outcome.target.pain_block ? "yes" : "no", c.tags.join(", ")];
    for (const text of cells) tr.append(Object.assign(document.createElement("td"), { textContent: text }));
    const button = Object.assign(document.createElement("button"), { type: "button", textContent: "Reopen", className: "reopen" });
    button.addEventListener("click", () => reopen(c.id));
    const td = document.createElement("td");
    td.append(button);
    tr.append(td);
    return tr;
  }));
}

// A case on an uploaded scan: the upload (by its content hash) back in the viewer, or, when it is no longer
// on this server, the stored outcome and report only.
async function reopenScan(c, uploadId, t) {
  const s = c.settings;
  let up;
  try {
    up = await api(`/api/anatomy/${uploadId}`);
  } catch (error) {
    if (stale(t)) return;
    showOutcome(c.outcome, c.lights, { report: c.links.report, figure: null, jobId: null });
    showError(`case ${c.id}: its scan (upload ${uploadId}) is not on this server; its outcome and report are the stored ones (upload the same files again to plan on it)`);
    return;
  }
  if (stale(t)) return;
  state.upload = up;
  showSource("scan");
  $("method").value = s.procedure.method;
  const approach = s.placement?.approach === "perpendicular" ? "perpendicular" : "parallel";
  await chooseUpload({ target: c.outcome.anatomy.target_nerve, side: s.anatomy.side, approach, t, noPlan: true });
  if (stale(t)) return;
  const fresh = await api(`/api/plans/new?${newPlanQuery()}`);
  if (stale(t)) return;
  state.recommended = { tip_mm: fresh.placement.tip_mm, direction: fresh.placement.direction };
  setFrame(fresh.frame);
  applyPlan(s, c.outcome.placement, `as saved in case ${c.id}`);
  restoreNeedles(s, c.outcome);
  state.caseId = c.id;
  showOutcome(c.outcome, c.lights, { report: c.links.report, figure: null, jobId: null });
  $("save-status").textContent = `case ${c.id} reopened`;
}

async function reopen(caseId) {
  const t = ticket();
  showError("");
  const c = await api(`/api/cases/${caseId}`);
  const uploadId = uploadOf(c.settings.anatomy);
  if (uploadId) { await reopenScan(c, uploadId, t); return; }
  const template = await api(`/api/templates/${encodeURIComponent(c.settings.anatomy.template)}`);
  if (stale(t)) return;
  showSource("template");
  setFrame("RAS");
  const s = c.settings;
  $("indication").value = s.indication?.name || "";
  fillTemplates(currentIndication());
  fillMethods(currentIndication());
  $("template").value = s.anatomy.template;
  state.template = template;
  $("target").replaceChildren(...state.template.targets.map((name) => option(name, name, name === c.outcome.anatomy.target_nerve)));
  $("approach").replaceChildren(...state.template.approaches.map((a) => option(a, a, a === s.placement?.approach)));
  $("method").value = s.procedure.method;
  await loadLabels();
  if (stale(t)) return;
  applyPlan(s, c.outcome.placement, `as saved in case ${c.id}`);
  restoreNeedles(s, c.outcome);
  state.caseId = c.id;
  showOutcome(c.outcome, c.lights, { report: c.links.report, figure: null, jobId: null });
  $("save-status").textContent = `case ${c.id} reopened`;
}

// A saved plan's [[needles]] back in the list, each at the tip the outcome recorded.
function restoreNeedles(settings, outcome) {
  const saved = settings.needles || [];
  setNeedles(saved.map((n, k) => {
    const placed = (outcome.needles || [])[k] || {};
    const approach = n.approach === "explicit" ? "parallel" : (n.approach || "parallel");
    const recommended = state.source === "scan" ? null : recommendedPose(n.target, approach);
    return { target: n.target, approach, tip_mm: placed.tip_mm || n.tip_mm, direction: placed.direction || n.direction, recommended };
  }));
}

// ---------------------------------------------------------------- wiring

$("indication").addEventListener("change", chooseIndication);
$("template").addEventListener("change", chooseTemplate);
for (const id of ["source-template", "source-scan"]) $(id).addEventListener("change", chooseSource);
$("upload").addEventListener("click", uploadScan);
$("target").addEventListener("change", () => { if (state.source === "scan") fillSides($("side").value); newPlan(); });
for (const id of ["approach", "method", "side"]) $(id).addEventListener("change", newPlan);
for (const id of ["tip-x", "tip-y", "tip-z"]) $(id).addEventListener("change", () => { setTip(tipFromFields()); scheduleCheck(); });
for (const id of ["weight-kg", "age-years", "monte-carlo"]) $(id).addEventListener("change", scheduleCheck);
$("add-needle").addEventListener("click", addNeedle);
$("reset-tip").addEventListener("click", () => { setTip(state.recommended.tip_mm, state.recommended.direction); scheduleCheck(); });
$("plan-form").addEventListener("submit", run);
$("compare").addEventListener("click", compare);
$("cancel-job").addEventListener("click", cancelJob);
$("save-form").addEventListener("submit", save);
window.planner = { state, tipOnCanvas, checkPlan, planFromForm, setNeedles, ready: init().then(() => true).catch((error) => { showError(`could not start: ${error.message}`); return false; }) };
