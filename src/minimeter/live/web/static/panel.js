// The Mini Meter web front panel: snapshots and output edges arrive by server-sent
// events, read in a worker (static/stream.js); LED changes are replayed at their own
// simulated times, a fixed short delay behind the meter, so the load LED blinks at its
// true duty cycle whatever the update rate. Every URL is relative (the panel may be
// mounted under a prefix). Quantities a snapshot does not carry show "not measured",
// never 0.
"use strict";

const PLAYBACK_DELAY_S = 0.3;      // wall seconds the display runs behind the meter
const LEDS = ["power", "load", "reverse"];
const CHART_HOURS = 6;
const COLOURS = ["#5fb3ff", "#ffb35f", "#7ee787", "#d2a8ff"];
const PQ_KINDS = new Set(["dip", "swell", "interruption"]);
const NOT_MEASURED = "not measured";

let snap = null;                    // latest snapshot
let arrivalMs = 0;                  // performance.now() when it arrived
let lastQueuedT = -Infinity;        // newest LED change already queued [s simulated]
let queue = [];                     // pending LED changes {led, state, t}
let shownClock = 0;
let history = [];                   // [{time_s, power_w: [...]}]
let eventsSeen = -1;
let faultCatalogue = [];            // [{kind, example, parameters: [{name, hint}]}] from api/faults
let spectrumElement = null;         // which element the spectrum shows (index; null: not chosen yet)
let edgesSeen = 0;

const $ = (id) => document.getElementById(id);

function fmt(x, digits) { return (x === null || x === undefined) ? "—" : Number(x).toFixed(digits); }
function measured(x) { return x !== null && x !== undefined && Number.isFinite(Number(x)); }

function clockText(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), r = s % 86400;
  const hh = String(Math.floor(r / 3600)).padStart(2, "0");
  const mm = String(Math.floor(r % 3600 / 60)).padStart(2, "0");
  const ss = String(r % 60).padStart(2, "0");
  return (d ? d + "d " : "") + `${hh}:${mm}:${ss}`;
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  Object.assign(e, attrs || {});
  if (text !== undefined) e.textContent = text;
  return e;
}

// ------------------------------------------------------------------ the meter's clock and LEDs
function simNow() {
  if (!snap) return 0;
  if (!(snap.speed > 0)) return snap.time_s;
  const elapsed = (performance.now() - arrivalMs) / 1000 - PLAYBACK_DELAY_S;
  return Math.min(snap.time_s, snap.time_s + elapsed * snap.speed);
}

function setLed(led, on, t) {
  const e = $("led-" + led);
  e.dataset.on = on ? "true" : "false";
  if (t !== undefined && t !== null) e.dataset.changedAt = String(t);
}

function onSnapshot(s) {
  const first = snap === null;
  snap = s;
  arrivalMs = performance.now();
  if (first || !(s.speed > 0)) {
    queue = [];
    LEDS.forEach((led) => setLed(led, s.leds[led]));
    // What this snapshot's LED states already show: its own changes. A change stamped at
    // its clock or later (the power-up at t = 0 before any cycle is fed) is still to come.
    lastQueuedT = s.led_changes.reduce((t, c) => Math.max(t, c[2]), -Infinity);
  } else {
    let newest = lastQueuedT;
    for (const [led, state, t] of s.led_changes) {
      if (t > lastQueuedT) { queue.push({led, state, t}); newest = Math.max(newest, t); }
    }
    lastQueuedT = Math.max(newest, lastQueuedT);
    queue.sort((a, b) => a.t - b.t);
    if (queue.length > 5000) queue = queue.slice(-5000);
  }
  renderMeter(s);
  renderReadings(s);
  renderRegisters(s);
  renderSpectrum(s);
  renderControls(s);
  const last = history.length ? history[history.length - 1].time_s : -Infinity;
  if (s.time_s - last >= 60) { history.push({time_s: s.time_s, power_w: s.power_w}); trimHistory(); drawChart(); }
  const total = Object.values(s.event_counts).reduce((a, b) => a + b, 0);
  if (total !== eventsSeen) { eventsSeen = total; loadEvents(); }
}

function onEdge(edge) {
  edgesSeen += 1;
  const e = $("last-edge");
  e.textContent = `output ${edge.output} ${edge.state} (${edge.cause}) at ${clockText(edge.time_s)}`;
  e.dataset.edges = String(edgesSeen);
  e.title = edge.time || "";
}

function renderMeter(s) {
  $("model").textContent = s.model;
  const lcd = $("lcd");
  lcd.textContent = s.lcd;
  lcd.dataset.registerQuanta = s.register_quanta;
  $("speed").textContent = s.speed > 0 ? `× ${s.speed}` : "flat out";
  const outs = $("outputs").tBodies[0];
  outs.innerHTML = "";
  for (const o of s.outputs) {
    const tr = outs.insertRow();
    tr.id = "output-" + o.name;
    tr.insertCell().textContent = o.name;
    tr.insertCell().textContent = o.kh_wh + " Wh";
    const st = tr.insertCell(); st.textContent = o.on ? "closed" : "open"; st.className = o.on ? "closed" : "";
    const c = tr.insertCell(); c.textContent = o.closures; c.className = "closures";
  }
  if (measured(s.counter)) { $("counter").hidden = false; $("counter").textContent = String(s.counter).padStart(6, "0"); }
}

// the readings table: one row per quantity, one column per element; the beyond-kWh rows
// (SPEC §12) show "not measured" where the snapshot has no value, never 0
const READING_ROWS = [["power_w", "P [W]", 1], ["volts_rms", "V [V]", 1], ["amps_rms", "I [A]", 2], ["power_factor", "PF", 3]];
const QUALITY_ROWS = [
  ["reactive_power_var", "Q₁ [var]", 1], ["apparent_power_va", "S [VA]", 1],
  ["displacement_pf", "PF₁ (displacement)", 3], ["thd_v_percent", "THD V [%]", 2], ["thd_i_percent", "THD I [%]", 2],
];

function renderReadings(s) {
  $("register-wh").textContent = fmt(s.watt_hours, 3);
  $("net-power").textContent = fmt(s.net_power_w, 1);
  $("frequency").textContent = fmt(s.frequency_hz, 2);
  const table = $("elements");
  table.tHead.innerHTML = "";
  const hr = table.tHead.insertRow();
  hr.appendChild(el("th", {}, "quantity"));
  for (let k = 0; k < s.elements; k++) hr.appendChild(el("th", {}, `element ${k + 1}`));
  const body = table.tBodies[0];
  body.innerHTML = "";
  const anyBeyond = QUALITY_ROWS.some(([key]) => (s[key] || []).some(measured));
  for (const [key, label, digits] of READING_ROWS.concat(anyBeyond ? QUALITY_ROWS : [])) {
    const tr = body.insertRow();
    tr.dataset.quantity = key;
    if (key === QUALITY_ROWS[0][0]) tr.className = "first-beyond";
    tr.insertCell().textContent = label;
    for (let k = 0; k < s.elements; k++) {
      const v = (s[key] || [])[k], td = tr.insertCell();
      if (measured(v)) td.textContent = Number(v).toFixed(digits);
      else if (READING_ROWS.some(([r]) => r === key)) td.textContent = "—";
      else { td.textContent = NOT_MEASURED; td.className = "not-measured"; }
    }
  }
  if (!anyBeyond) {
    const tr = body.insertRow();
    tr.className = "first-beyond"; tr.id = "quality-none";
    const td = tr.insertCell();
    td.colSpan = s.elements + 1; td.className = "not-measured";
    td.textContent = `Q₁, S, PF₁, THD: ${NOT_MEASURED}`;
  }
}

// ------------------------------------------------------------------ registers beyond kWh (SPEC §12)
function energyText(wh, unit) {                 // 'Wh' → '12.345 kWh' / '123.4 Wh'
  if (!measured(wh)) return NOT_MEASURED;
  return Math.abs(wh) >= 1000 ? `${(wh / 1000).toFixed(3)} k${unit}` : `${Number(wh).toFixed(1)} ${unit}`;
}

function renderRegisters(s) {
  const box = $("registers");
  box.innerHTML = "";
  const r = s.registers;
  if (!r) { box.appendChild(el("p", {className: "not-measured", id: "registers-none"}, `import/export, varh, VAh, max demand: ${NOT_MEASURED}`)); return; }
  const table = el("table", {className: "grid-table", id: "registers-table"});
  const hr = table.createTHead().insertRow();
  hr.appendChild(el("th", {}, "energy"));
  const elements = Math.max((r.import_wh || []).length, (r.export_wh || []).length);
  for (let k = 0; k < elements; k++) hr.appendChild(el("th", {}, `element ${k + 1}`));
  const body = table.createTBody();
  for (const [key, label] of [["import_wh", "import"], ["export_wh", "export"]]) {
    const tr = body.insertRow();
    tr.insertCell().textContent = label;
    for (let k = 0; k < elements; k++) tr.insertCell().textContent = energyText((r[key] || [])[k], "Wh");
  }
  box.appendChild(table);
  const dl = el("dl", {className: "registers", id: "registers-list"});
  const row = (label, value, wide) => { dl.appendChild(el("dt", {}, label)); dl.appendChild(el("dd", {className: wide ? "wide" : ""}, value)); };
  ["I", "II", "III", "IV"].forEach((q, i) => row(`reactive ${q}`, energyText((r.varh || [])[i], "varh")));
  row("apparent", energyText(r.vah, "VAh"));
  row("demand now", measured(r.demand_w) ? `${fmt(r.demand_w, 1)} W` : NOT_MEASURED);
  const maxDemand = !measured(r.max_demand_time_s) ? "none yet: no 15-min block completed"
    : measured(r.max_demand_w) ? `${fmt(r.max_demand_w, 1)} W in the 15 min from ${clockText(r.max_demand_time_s)}` : NOT_MEASURED;
  row("max demand", maxDemand, true);
  box.appendChild(dl);
  box.appendChild(el("p", {className: "hint"}, "reactive energy by quadrant of (P, Q): I (+, +) · II (−, +) · III (−, −) · IV (+, −)"));
}

// ------------------------------------------------------------------ canvases
function sizeCanvas(cv) {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(cv.clientWidth, 100), h = Math.max(cv.clientHeight, 80);
  if (cv.width !== Math.round(w * ratio) || cv.height !== Math.round(h * ratio)) {
    cv.width = Math.round(w * ratio); cv.height = Math.round(h * ratio);
  }
  const g = cv.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, w, h);
  g.font = "11px 'DejaVu Sans', sans-serif";
  return {g, w, h};
}

function niceStep(span, count) {               // 1, 2, 5 × 10^n giving about `count` steps
  const raw = span / Math.max(count, 1), mag = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

const TIME_STEPS_S = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

function hoursMinutes(t) {
  const m = Math.floor(t / 60), d = Math.floor(m / 1440), r = m % 1440;
  return (d ? d + "d " : "") + `${Math.floor(r / 60)}:${String(r % 60).padStart(2, "0")}`;
}

function axes(g, box, yTicks, yLabel, xTicks, xLabel) {
  g.strokeStyle = "#2e353e"; g.fillStyle = "#9aa5b1"; g.lineWidth = 1;
  g.textAlign = "right"; g.textBaseline = "middle";
  for (const [y, text] of yTicks) {
    g.beginPath(); g.moveTo(box.l, y); g.lineTo(box.r, y); g.stroke();
    g.fillText(text, box.l - 5, y);
  }
  g.textAlign = "center"; g.textBaseline = "top";
  for (const [x, text] of xTicks) {
    g.beginPath(); g.moveTo(x, box.b); g.lineTo(x, box.b + 4); g.stroke();
    const half = g.measureText(String(text)).width / 2;        // labels kept inside the canvas
    g.fillText(text, Math.min(Math.max(x, half + 2), g.canvas.clientWidth - half - 2), box.b + 6);
  }
  g.strokeStyle = "#56606d"; g.strokeRect(box.l, box.t, box.r - box.l, box.b - box.t);
  g.fillText(xLabel, (box.l + box.r) / 2, box.b + 21);
  g.save(); g.translate(12, (box.t + box.b) / 2); g.rotate(-Math.PI / 2); g.textBaseline = "middle";
  g.fillText(yLabel, 0, 0); g.restore();
}

function legend(id, entries) {
  const box = $(id);
  box.innerHTML = "";
  for (const [colour, text] of entries) {
    const item = el("span", {});
    const sw = el("span", {className: "swatch"}); sw.style.background = colour;
    item.appendChild(sw); item.appendChild(document.createTextNode(text));
    box.appendChild(item);
  }
}

function trimHistory() {
  if (!history.length) return;
  const cut = history[history.length - 1].time_s - CHART_HOURS * 3600;
  while (history.length && history[0].time_s < cut) history.shift();
}

function drawChart() {
  const cv = $("chart");
  const {g, w, h} = sizeCanvas(cv);
  const elements = history.length ? history[0].power_w.length : (snap ? snap.elements : 0);
  legend("chart-legend", Array.from({length: elements}, (_, k) => [COLOURS[k % COLOURS.length], `element ${k + 1}`]));
  if (history.length < 2) {
    g.fillStyle = "#9aa5b1"; g.textAlign = "center";
    g.fillText("Waiting for the first simulated minutes of data…", w / 2, h / 2); return;
  }
  const t0 = history[0].time_s, t1 = history[history.length - 1].time_s;
  let lo = 0, hi = 1;
  for (const p of history) for (const x of p.power_w) if (measured(x)) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
  const yStep = niceStep(hi - lo, 4);
  lo = Math.floor(lo / yStep) * yStep; hi = Math.ceil(hi * 1.05 / yStep) * yStep;
  const box = {l: 62, r: w - 12, t: 10, b: h - 38};
  const X = (t) => box.l + (box.r - box.l) * (t - t0) / Math.max(t1 - t0, 1);
  const Y = (v) => box.b - (box.b - box.t) * (v - lo) / (hi - lo);
  const yTicks = [];
  for (let v = lo; v <= hi + yStep / 2; v += yStep) yTicks.push([Y(v), String(Math.round(v))]);
  const tStep = TIME_STEPS_S.find((s) => (t1 - t0) / s <= Math.max(2, Math.floor((box.r - box.l) / 90))) || 86400;
  const xTicks = [];
  for (let t = Math.ceil(t0 / tStep) * tStep; t <= t1; t += tStep) xTicks.push([X(t), hoursMinutes(t)]);
  axes(g, box, yTicks, "power [W]", xTicks, "simulated time [h:mm]");
  g.lineWidth = 1.8;
  for (let k = 0; k < elements; k++) {
    g.strokeStyle = COLOURS[k % COLOURS.length]; g.beginPath();
    let started = false;
    for (const p of history) {
      const v = p.power_w[k];
      if (!measured(v)) { started = false; continue; }
      const x = X(p.time_s), y = Y(v);
      started ? g.lineTo(x, y) : g.moveTo(x, y); started = true;
    }
    g.stroke();
  }
}

// ------------------------------------------------------------------ harmonic spectrum
function renderSpectrum(s) {
  const hm = s.harmonics;
  const has = hm && Array.isArray(hm.orders) && hm.orders.length && (hm.volts_rms || []).length;
  $("spectrum-empty").hidden = !!has;
  $("spectrum-box").hidden = !has;
  $("spectrum-legend").hidden = !has;
  const seg = $("spectrum-elements");
  if (!has) { seg.innerHTML = ""; $("thd").textContent = ""; return; }
  const count = hm.volts_rms.length;
  if (spectrumElement === null) {                // first shown: the element with the most current distortion
    const thd = (hm.thd_i_percent || []).map((x) => (measured(x) ? x : -1));
    spectrumElement = thd.length ? thd.indexOf(Math.max(...thd)) : 0;
  }
  spectrumElement = Math.max(0, Math.min(spectrumElement, count - 1));
  if (seg.children.length !== (count > 1 ? count : 0)) {
    seg.innerHTML = "";
    if (count > 1) for (let k = 0; k < count; k++) {
      const b = el("button", {type: "button"}, `element ${k + 1}`);
      b.onclick = () => { spectrumElement = k; renderSpectrum(snap); };
      seg.appendChild(b);
    }
  }
  Array.from(seg.children).forEach((b, k) => b.setAttribute("aria-pressed", String(k === spectrumElement)));
  const k = spectrumElement, thdV = (hm.thd_v_percent || [])[k], thdI = (hm.thd_i_percent || [])[k];
  const v1 = hm.volts_rms[k][0], i1 = (hm.amps_rms[k] || [])[0];
  $("thd").textContent = `element ${k + 1}: THD V ${measured(thdV) ? fmt(thdV, 2) + " %" : NOT_MEASURED} · ` +
    `THD I ${measured(thdI) ? fmt(thdI, 2) + " %" : NOT_MEASURED} · fundamental ${fmt(v1, 1)} V, ${fmt(i1, 2)} A`;
  legend("spectrum-legend", [[COLOURS[0], "voltage, % of V₁"], [COLOURS[1], "current, % of I₁"]]);
  drawSpectrum(hm.orders, hm.volts_rms[k], hm.amps_rms[k] || []);
}

function percentOfFundamental(row) {
  const f = row[0];
  return row.map((x) => (measured(x) && measured(f) && f > 0) ? 100 * x / f : null);
}

function drawSpectrum(orders, volts, amps) {
  const cv = $("spectrum");
  const {g, w, h} = sizeCanvas(cv);
  const series = [percentOfFundamental(volts), percentOfFundamental(amps)];
  // scaled to the largest harmonic (orders ≥ 2); the fundamental's 100 % bar is cut at the top, labelled
  let top = 0;
  series.forEach((row) => row.slice(1).forEach((x) => { if (measured(x)) top = Math.max(top, x); }));
  const step = niceStep(Math.max(top * 1.15, 2), 4), ceil = Math.ceil(Math.max(top * 1.15, 2) / step) * step;
  const box = {l: 50, r: w - 10, t: 14, b: h - 38};
  const slot = (box.r - box.l) / orders.length, bar = Math.max(slot * 0.38, 1);
  const Y = (p) => box.b - (box.b - box.t) * Math.min(p, ceil) / ceil;
  const yTicks = [];
  for (let p = 0; p <= ceil + step / 2; p += step) yTicks.push([Y(p), `${+p.toFixed(2)}`]);
  const xTicks = orders.map((n, i) => [box.l + slot * (i + 0.5), n]).filter(([, n]) => n === 1 || n % 5 === 0);
  axes(g, box, yTicks, "% of fundamental", xTicks, "harmonic order");
  const cut = new Map();                        // order index → the largest bar cut at the top [%]
  series.forEach((row, j) => {
    g.fillStyle = COLOURS[j];
    row.forEach((p, i) => {
      if (!measured(p) || p <= 0) return;
      const x = box.l + slot * i + slot * 0.1 + j * bar, y = Y(p);
      g.fillRect(x, y, bar, box.b - y);
      if (p > ceil) cut.set(i, Math.max(cut.get(i) || 0, p));
    });
  });
  g.fillStyle = "#e8ebef"; g.textAlign = "left"; g.textBaseline = "top";
  cut.forEach((p, i) => g.fillText(`${Math.round(p)} % ↑`, box.l + slot * (i + 1) + 2, box.t + 2));
}

// ------------------------------------------------------------------ event log
async function loadEvents() {
  try {
    const rows = await (await fetch("api/events")).json();
    const ol = $("events");
    ol.innerHTML = "";
    for (const e of rows.slice().reverse().slice(0, 100)) {
      const li = el("li", {className: (e.active ? "raised" : "cleared") + (PQ_KINDS.has(e.kind) ? " pq" : "")});
      li.dataset.kind = e.kind;
      li.appendChild(el("span", {className: "t", title: e.time || ""}, clockText(e.time_s)));
      li.appendChild(el("span", {className: "mark", title: e.active ? "raised" : "cleared"}, e.active ? "▲" : "▽"));
      const body = el("span", {});
      body.appendChild(el("span", {className: "kind"}, e.kind + (e.element ? ` (element ${e.element})` : "")));
      body.appendChild(document.createTextNode(" " + (e.message || "")));   // PQ events: depth/height and duration
      li.appendChild(body);
      ol.appendChild(li);
    }
    $("events-empty").hidden = rows.length > 0;
  } catch (err) { /* the next snapshot retries */ }
}

// ------------------------------------------------------------------ trainer controls
function renderControls(s) {
  const loads = $("loads");
  loads.innerHTML = "";
  s.loads.forEach((name, i) => {
    const li = el("li", {}, name);
    const b = el("button", {type: "button", className: "remove-load", title: `remove ${name}`}, "remove");
    b.onclick = () => control("DELETE", `api/loads/${i}`);
    li.appendChild(b);
    loads.appendChild(li);
  });
  $("loads-empty").hidden = s.loads.length > 0;
  $("faults").textContent = s.faults.length ? s.faults.join(", ") : "none";
}

async function control(method, url, body) {
  const headers = {"Content-Type": "application/json"};
  const token = $("token").value;
  if (token) headers["X-Minimeter-Token"] = token;
  $("control-error").textContent = "";
  try {
    const r = await fetch(url, {method, headers, body: body ? JSON.stringify(body) : undefined});
    const data = await r.json();
    if (!r.ok) { $("control-error").textContent = data.error || r.statusText; return false; }
    if (snap) renderControls(Object.assign({}, snap, {loads: data.loads, faults: data.faults}));
    return true;
  } catch (err) { $("control-error").textContent = String(err); return false; }
}

function showFaultHint() {
  const entry = faultCatalogue.find((f) => f.kind === $("fault-kind").value);
  const input = $("fault-params"), hint = $("fault-hint");
  hint.innerHTML = "";
  if (!entry) return;
  input.value = "";
  input.disabled = entry.parameters.length === 0;
  input.placeholder = entry.parameters.length ? `e.g. ${entry.example}` : "no parameters";
  if (!entry.parameters.length) hint.appendChild(el("li", {}, `${entry.kind} takes no parameters.`));
  for (const p of entry.parameters) {
    const li = el("li", {});
    li.appendChild(el("code", {}, p.name));
    li.appendChild(document.createTextNode(` — ${p.hint}`));
    hint.appendChild(li);
  }
}

function setUpControls() {
  $("load-form").onsubmit = async (ev) => {
    ev.preventDefault();
    if (await control("POST", "api/loads", {load: $("load-spec").value})) $("load-spec").value = "";
  };
  $("fault-kind").onchange = showFaultHint;
  $("fault-form").onsubmit = async (ev) => {
    ev.preventDefault();
    if (await control("POST", "api/faults", {kind: $("fault-kind").value, params: $("fault-params").value})) $("fault-params").value = "";
  };
  $("clear-faults").onclick = () => control("DELETE", "api/faults");
}

async function loadFaults() {
  const f = await (await fetch("api/faults")).json();
  faultCatalogue = f.faults || [];
  const sel = $("fault-kind");
  sel.innerHTML = "";
  for (const entry of faultCatalogue) sel.appendChild(el("option", {value: entry.kind}, entry.kind));
  if (!faultCatalogue.length) sel.appendChild(el("option", {disabled: true}, "(no fault models)"));
  showFaultHint();
}

// ------------------------------------------------------------------ start
function frame() {
  const now = simNow();
  while (queue.length && queue[0].t <= now) {
    const c = queue.shift();
    setLed(c.led, c.state, c.t);
  }
  if (snap && !queue.length && now >= snap.time_s) LEDS.forEach((led) => {
    if ($("led-" + led).dataset.on !== String(snap.leds[led])) setLed(led, snap.leds[led]);
  });
  shownClock = Math.max(shownClock, now);
  $("clock").textContent = clockText(shownClock);
  $("clock").dataset.simTime = String(shownClock);
  requestAnimationFrame(frame);
}

function openStream() {
  const worker = new Worker("static/stream.js");
  const link = $("link");
  worker.onmessage = (m) => {
    const msg = m.data;
    if (msg.type === "snapshot") onSnapshot(JSON.parse(msg.data));
    else if (msg.type === "edge") onEdge(JSON.parse(msg.data));
    else if (msg.type === "edges-lost") $("last-edge").dataset.lost = String(JSON.parse(msg.data).lost);
    else if (msg.type === "open") { link.textContent = "live"; link.className = "link ok"; }
    else if (msg.type === "error") { link.textContent = "reconnecting…"; link.className = "link down"; }
  };
}

async function start() {
  setUpControls();
  try {
    const st = await (await fetch("api/state")).json();
    $("token-row").hidden = !st.token_required;
    history = await (await fetch("api/history")).json();
    await loadFaults();
    onSnapshot(st);
    drawChart();
  } catch (err) { /* the stream below retries */ }
  openStream();
  new ResizeObserver(() => { drawChart(); if (snap) renderSpectrum(snap); }).observe(document.body);
  requestAnimationFrame(frame);
}

start();
