// The page of `styletransfer serve`: a form, live progress by server-sent events, results side by side.
// Plain JavaScript, no build step, nothing from elsewhere: every request goes to this server.
"use strict";

const $ = (id) => document.getElementById(id);
const KINDS = ["content", "style"];
const FINISHED = ["done", "failed", "cancelled"];
const page = { options: null, current: null, points: [], source: null, jobs: new Map() };

async function api(path, init) {
  const response = await fetch(path, init);
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  return body;
}

const fileUrl = (job, name, download = false) =>
  `/api/jobs/${encodeURIComponent(job.id)}/files/${encodeURIComponent(name)}${download ? "?download=1" : ""}`;

function showError(message) { $("error").textContent = message || ""; }
function setStatus(text, steps = "") { $("status").textContent = text; $("steps-done").textContent = steps; }
function option(label, value) { const o = document.createElement("option"); o.textContent = label; o.value = value; return o; }
function methodInfo(name) { return page.options.methods.find((m) => m.name === name); }

function parseLosses(text) {
  const weights = new Map();
  for (const part of text.split(",")) {
    const [name, weight] = part.split(":");
    if (name) weights.set(name.trim(), weight === undefined ? 1 : Number(weight));
  }
  return weights;
}

function buildForm(options, samples) {
  for (const m of options.methods) {
    const o = option(m.available ? m.name : `${m.name} (start the server with --decoder)`, m.name);
    o.disabled = !m.available;
    $("method").add(o);
  }
  $("method").value = options.first_method;
  const chosen = parseLosses(options.defaults.losses);
  for (const name of options.losses) {
    const label = document.createElement("label");
    const box = Object.assign(document.createElement("input"), { type: "checkbox", checked: chosen.has(name) });
    box.dataset.loss = name;
    const weight = Object.assign(document.createElement("input"),
      { type: "number", min: "0", step: "0.1", value: String(chosen.get(name) ?? 1) });
    weight.dataset.weightOf = name;
    weight.setAttribute("aria-label", `weight of ${name}`);
    const text = document.createElement("span");
    text.append(box, ` ${name}`);
    label.append(text, weight);
    $("losses").append(label);
  }
  for (const w of options.weights) $("weights").add(option(w, w));
  $("weights").value = options.defaults.weights;
  for (const c of options.preserve_color) $("preserve-color").add(option(c, c));
  $("preserve-color").value = options.defaults.preserve_color;
  Object.assign($("size"), { value: options.defaults.size, max: options.limits.max_size });
  Object.assign($("steps"), { value: options.defaults.steps, max: options.limits.max_steps });
  $("alpha").value = options.defaults.alpha;
  for (const kind of KINDS) {
    for (const s of samples[kind]) $(`${kind}-sample`).add(option(s.name, s.id));
    if (samples[kind].length) $(`${kind}-sample`).value = samples[kind][0].id;
  }
}

function updateMethod() {
  const method = $("method").value, info = methodInfo(method);
  const show = (selector, visible) => document.querySelectorAll(selector).forEach((e) => { e.hidden = !visible; });
  show(".only-optimize", method === "optimize");
  show(".only-feedforward", info.feedforward);
  show(".only-encoder", method !== "magenta");  // magenta brings its own networks
  $("method-summary").textContent = info.summary;
  $("size-hint").textContent = info.feedforward
    ? "Size: the content's shorter side (as --content-size)."
    : "Size: the output's long edge (as --size); compare uses it too.";
}

function previewInput(kind) {
  const file = $(`${kind}-file`).files[0];
  const sample = $(`${kind}-sample`);
  if (file) {
    sample.value = "";
    $(`view-${kind}`).src = URL.createObjectURL(file);
    $(`${kind}-name`).textContent = file.name;
  } else if (sample.value) {
    $(`view-${kind}`).src = `/api/samples/${kind}/${encodeURIComponent(sample.value)}`;
    $(`${kind}-name`).textContent = sample.selectedOptions[0].textContent;
  }
}

function chooseSample(kind) {
  $(`${kind}-file`).value = "";
  previewInput(kind);
}

function jobForm(kind) {
  const form = new FormData();
  form.append("kind", kind);
  for (const k of KINDS) {
    const file = $(`${k}-file`).files[0];
    if (file) form.append(k, file, file.name);
    else if ($(`${k}-sample`).value) form.append(`${k}_sample`, $(`${k}-sample`).value);
  }
  const method = $("method").value, info = methodInfo(method);
  form.append("weights", $("weights").value);
  form.append("size", $("size").value);
  if (kind === "compare" || method === "optimize") form.append("steps", $("steps").value);
  if (kind === "stylize") {
    form.append("method", method);
    form.append("preserve_color", $("preserve-color").value);
    if (info.feedforward) form.append("alpha", $("alpha").value);
    if (method === "optimize") {
      const losses = [...document.querySelectorAll("#losses input[type=checkbox]")].filter((b) => b.checked)
        .map((b) => `${b.dataset.loss}:${document.querySelector(`[data-weight-of="${b.dataset.loss}"]`).value || 1}`);
      form.append("losses", losses.join(","));
    }
  }
  return form;
}

async function submit(kind) {
  showError("");
  setStatus("sending…");
  try {
    const job = await api("/api/jobs", { method: "POST", body: jobForm(kind) });
    watch(job);
  } catch (error) {
    showError(error.message);
    setStatus(page.current ? $("status").textContent : "Pick a content and a style image.");
  }
}

function watch(job) {
  if (page.source) page.source.close();
  page.current = job.id;
  page.points = [];
  $("view-result").removeAttribute("src");
  $("download").hidden = true;
  $("compare-view").hidden = true;
  $("result-figure").hidden = job.kind === "compare";
  $("curve").hidden = job.steps === null;
  drawCurve();
  update(job);
  const source = new EventSource(`/api/jobs/${encodeURIComponent(job.id)}/events`);
  page.source = source;
  source.onmessage = (event) => {
    const state = JSON.parse(event.data);
    update(state);
    if (FINISHED.includes(state.status)) source.close();
  };
}

function describe(state) {
  const names = state.names || {};
  const what = state.kind === "compare" ? "compare" : state.method;
  return `${what} · ${names.content || "?"} × ${names.style || "?"}`;
}

function update(state) {
  page.jobs.set(state.id, { ...page.jobs.get(state.id), ...state, points: undefined });
  renderHistory();
  if (state.id !== page.current) return;
  if (state.since === page.points.length) page.points.push(...state.points);
  drawCurve();
  const steps = state.steps ? `step ${state.step} / ${state.steps}` : "";
  const seconds = state.seconds === null ? "" : ` in ${state.seconds.toFixed(1)} s`;
  const text = { queued: "waiting in the queue…", running: "running…", done: `done${seconds}`,
                 failed: "failed", cancelled: "cancelled" }[state.status];
  setStatus(`${describe(state)}: ${text}`, steps);
  $("cancel").disabled = FINISHED.includes(state.status);
  if (state.status === "failed") showError(state.message);
  showInputs(state);
  if (state.status === "done") showResult(state);
}

function showInputs(state) {
  for (const kind of KINDS) {
    if (state.files.includes(`${kind}.png`)) {
      const url = fileUrl(state, `${kind}.png`);
      if ($(`view-${kind}`).getAttribute("src") !== url) $(`view-${kind}`).src = url;
      $(`${kind}-name`).textContent = (state.names || {})[kind] || "";
    }
  }
}

function showResult(state) {
  if (state.kind === "compare") {
    $("view-result").removeAttribute("src");
    $("compare-view").hidden = false;
    $("grid").src = fileUrl(state, "grid.png");
    $("report-link").href = fileUrl(state, "report.md", true);
    api(fileUrl(state, "report.json")).then(renderMatrix).catch((error) => showError(error.message));
  } else {
    $("view-result").src = fileUrl(state, "result.png");
    Object.assign($("download"), { href: fileUrl(state, "result.png", true), hidden: false });
  }
}

function cell(tag, text, className) {
  const element = document.createElement(tag);
  element.textContent = text;
  if (className) element.className = className;
  return element;
}

function renderMatrix(report) {
  const matrix = report.matrix, judge = report.judge || {};
  const judged = Object.keys(judge).length > 0;
  const table = $("matrix");
  table.replaceChildren();
  const head = document.createElement("tr");
  head.append(cell("th", "method \\ measured by"), ...matrix.losses.map((l) => cell("th", l)));
  if (judged) head.append(cell("th", "judge"));
  head.append(cell("th", "seconds"));
  table.append(head);
  const number = (v) => (v === null || v === undefined ? "—" : Number(v).toPrecision(3));
  for (const method of matrix.methods) {
    const row = document.createElement("tr");
    row.append(cell("th", method));
    for (const loss of matrix.losses) row.append(cell("td", number(matrix.normalized[method][loss]), loss === method ? "own" : ""));
    if (judged) row.append(cell("td", number(judge[method])));
    row.append(cell("td", number(report.runs[method].seconds)));
    table.append(row);
  }
}

function drawCurve() {
  const canvas = $("curve"), context = canvas.getContext("2d");
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  const points = page.points.filter(([, total]) => total > 0);
  if (points.length < 2) return;
  const logs = points.map(([, total]) => Math.log10(total));
  const low = Math.min(...logs), high = Math.max(...logs), last = points[points.length - 1][0] || 1;
  const pad = 22;
  const x = (step) => pad + (width - 2 * pad) * (step / last);
  const y = (value) => height - pad - (height - 2 * pad) * (high === low ? 0.5 : (value - low) / (high - low));
  context.strokeStyle = "#2f5f9e";
  context.lineWidth = 1.5;
  context.beginPath();
  points.forEach(([step], i) => (i ? context.lineTo(x(step), y(logs[i])) : context.moveTo(x(step), y(logs[i]))));
  context.stroke();
  context.fillStyle = "#5d6875";
  context.font = "11px system-ui, sans-serif";
  context.fillText(`loss ${points[0][1].toPrecision(3)} → ${points[points.length - 1][1].toPrecision(3)} (log scale)`, pad, 14);
}

function renderHistory() {
  const list = $("history");
  list.replaceChildren();
  for (const state of [...page.jobs.values()].reverse()) {
    const item = document.createElement("li");
    item.append(cell("span", `${describe(state)} — `), cell("span", state.status, `state ${state.status}`));
    if (state.status === "failed" && state.message) item.append(cell("span", `: ${state.message}`));
    const show = cell("a", "show");
    show.href = "#";
    show.addEventListener("click", (event) => { event.preventDefault(); api(`/api/jobs/${encodeURIComponent(state.id)}`).then(watch); });
    item.append(show);
    if (state.status === "done" && state.kind === "stylize") {
      const download = cell("a", "PNG");
      download.href = fileUrl(state, "result.png", true);
      item.append(download);
    }
    list.append(item);
  }
}

async function cancel() {
  if (!page.current) return;
  try { update(await api(`/api/jobs/${encodeURIComponent(page.current)}/cancel`, { method: "POST" })); }
  catch (error) { showError(error.message); }
}

async function init() {
  try {
    const [options, samples, listing] = await Promise.all([api("/api/options"), api("/api/samples"), api("/api/jobs")]);
    page.options = options;
    buildForm(options, samples);
    for (const state of listing.jobs) page.jobs.set(state.id, state);
    renderHistory();
  } catch (error) {
    showError(`cannot reach the server: ${error.message}`);
    return;
  }
  $("method").addEventListener("change", updateMethod);
  for (const kind of KINDS) {
    $(`${kind}-file`).addEventListener("change", () => previewInput(kind));
    $(`${kind}-sample`).addEventListener("change", () => chooseSample(kind));
    previewInput(kind);
  }
  $("job-form").addEventListener("submit", (event) => { event.preventDefault(); submit("stylize"); });
  $("compare").addEventListener("click", () => submit("compare"));
  $("cancel").addEventListener("click", cancel);
  updateMethod();
  document.body.dataset.ready = "true";
}

init();
