// The Mini Meter web front panel: snapshots arrive by server-sent events (/api/stream);
// LED changes are replayed at their own simulated times, a fixed short delay behind the
// meter, so the load LED blinks at its true duty cycle whatever the update rate.
"use strict";

const PLAYBACK_DELAY_S = 0.3;      // wall seconds the display runs behind the meter
const LEDS = ["power", "load", "reverse"];
const CHART_HOURS = 6;

let snap = null;                    // latest snapshot
let arrivalMs = 0;                  // performance.now() when it arrived
let lastQueuedT = -Infinity;        // newest LED change already queued [s simulated]
let queue = [];                     // pending LED changes {led, state, t}
let shownClock = 0;
let history = [];                   // [{time_s, power_w: [...]}]
let eventsSeen = -1;

const $ = (id) => document.getElementById(id);

function fmt(x, digits) { return (x === null || x === undefined) ? "—" : Number(x).toFixed(digits); }

function clockText(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), r = s % 86400;
  const hh = String(Math.floor(r / 3600)).padStart(2, "0");
  const mm = String(Math.floor(r % 3600 / 60)).padStart(2, "0");
  const ss = String(r % 60).padStart(2, "0");
  return (d ? d + "d " : "") + `${hh}:${mm}:${ss}`;
}

function simNow() {
  if (!snap) return 0;
  if (!(snap.speed > 0)) return snap.time_s;
  const elapsed = (performance.now() - arrivalMs) / 1000 - PLAYBACK_DELAY_S;
  return Math.min(snap.time_s, snap.time_s + elapsed * snap.speed);
}

function setLed(led, on, t) {
  const el = $("led-" + led);
  el.dataset.on = on ? "true" : "false";
  if (t !== undefined && t !== null) el.dataset.changedAt = String(t);
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
  renderStatic(s);
  const last = history.length ? history[history.length - 1].time_s : -Infinity;
  if (s.time_s - last >= 60) { history.push({time_s: s.time_s, power_w: s.power_w}); trimHistory(); drawChart(); }
  const total = Object.values(s.event_counts).reduce((a, b) => a + b, 0);
  if (total !== eventsSeen) { eventsSeen = total; loadEvents(); }
}

function renderStatic(s) {
  $("model").textContent = s.model;
  const lcd = $("lcd");
  lcd.textContent = s.lcd;
  lcd.dataset.registerQuanta = s.register_quanta;
  $("register-wh").textContent = fmt(s.watt_hours, 3);
  $("net-power").textContent = fmt(s.net_power_w, 1);
  $("frequency").textContent = fmt(s.frequency_hz, 2);
  $("speed").textContent = s.speed > 0 ? `× ${s.speed}` : "flat out";
  const outs = $("outputs").tBodies[0];
  outs.innerHTML = "";
  for (const o of s.outputs) {
    const tr = outs.insertRow();
    tr.id = "output-" + o.name;
    tr.insertCell().textContent = o.name === "counter" ? "counter" : o.name;
    tr.insertCell().textContent = o.kh_wh + " Wh";
    const st = tr.insertCell(); st.textContent = o.on ? "closed" : "open"; st.className = o.on ? "closed" : "";
    const c = tr.insertCell(); c.textContent = o.closures; c.className = "closures";
  }
  if (s.counter !== null && s.counter !== undefined) { $("counter").hidden = false; $("counter").textContent = String(s.counter).padStart(6, "0"); }
  const els = $("elements").tBodies[0];
  els.innerHTML = "";
  for (let k = 0; k < s.elements; k++) {
    const tr = els.insertRow();
    tr.id = "element-" + (k + 1);
    tr.insertCell().textContent = String(k + 1);
    tr.insertCell().textContent = fmt(s.power_w[k], 1);
    tr.insertCell().textContent = fmt(s.volts_rms[k], 1);
    tr.insertCell().textContent = fmt(s.amps_rms[k], 2);
    tr.insertCell().textContent = fmt(s.power_factor[k], 3);
  }
  const loads = $("loads");
  loads.innerHTML = "";
  s.loads.forEach((name, i) => {
    const li = document.createElement("li");
    li.textContent = name;
    const b = document.createElement("button");
    b.textContent = "remove"; b.type = "button"; b.className = "remove-load";
    b.onclick = () => control("DELETE", `/api/loads/${i}`);
    li.appendChild(b);
    loads.appendChild(li);
  });
  $("faults").textContent = s.faults.length ? s.faults.join(", ") : "none";
}

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

function trimHistory() {
  if (!history.length) return;
  const cut = history[history.length - 1].time_s - CHART_HOURS * 3600;
  while (history.length && history[0].time_s < cut) history.shift();
}

function drawChart() {
  const cv = $("chart"), g = cv.getContext("2d");
  const w = cv.width, h = cv.height, pad = 34;
  g.clearRect(0, 0, w, h);
  g.fillStyle = "#889"; g.font = "11px sans-serif";
  if (history.length < 2) { g.fillText("waiting for data…", pad, h / 2); return; }
  const t0 = history[0].time_s, t1 = history[history.length - 1].time_s;
  let lo = 0, hi = 1;
  for (const p of history) for (const x of p.power_w) { if (x !== null) { lo = Math.min(lo, x); hi = Math.max(hi, x); } }
  const X = (t) => pad + (w - pad - 6) * (t - t0) / Math.max(t1 - t0, 1);
  const Y = (v) => h - 18 - (h - 28) * (v - lo) / (hi - lo);
  g.strokeStyle = "#444"; g.beginPath(); g.moveTo(pad, Y(0)); g.lineTo(w - 6, Y(0)); g.stroke();
  g.fillText(`${Math.round(hi)} W`, 2, 12); g.fillText(`${Math.round(lo)} W`, 2, h - 20);
  g.fillText(clockText(t0), pad, h - 4); g.fillText(clockText(t1), w - 70, h - 4);
  const colours = ["#5fb3ff", "#ffb35f"];
  for (let k = 0; k < history[0].power_w.length; k++) {
    g.strokeStyle = colours[k % colours.length]; g.beginPath();
    history.forEach((p, i) => { const x = X(p.time_s), y = Y(p.power_w[k] || 0); i ? g.lineTo(x, y) : g.moveTo(x, y); });
    g.stroke();
    g.fillStyle = colours[k % colours.length]; g.fillText(`element ${k + 1}`, w - 80, 14 + 12 * k);
  }
}

async function loadEvents() {
  try {
    const rows = await (await fetch("/api/events")).json();
    const ol = $("events");
    ol.innerHTML = "";
    for (const e of rows.slice().reverse().slice(0, 100)) {
      const li = document.createElement("li");
      li.className = e.active ? "raised" : "cleared";
      li.textContent = `${clockText(e.time_s)} ${e.active ? "▲" : "▽"} ${e.kind}: ${e.message}`;
      ol.appendChild(li);
    }
  } catch (err) { /* next snapshot retries */ }
}

async function control(method, url, body) {
  const headers = {"Content-Type": "application/json"};
  const token = $("token").value;
  if (token) headers["X-Minimeter-Token"] = token;
  $("control-error").textContent = "";
  try {
    const r = await fetch(url, {method, headers, body: body ? JSON.stringify(body) : undefined});
    const data = await r.json();
    if (!r.ok) $("control-error").textContent = data.error || r.statusText;
  } catch (err) { $("control-error").textContent = String(err); }
}

function parseParams(text) {
  const params = {};
  for (const part of text.split(/[,\s]+/).filter(Boolean)) {
    const [k, v] = part.split("=");
    params[k] = v === undefined ? true : (isNaN(Number(v)) ? v : Number(v));
  }
  return params;
}

async function start() {
  try {
    const st = await (await fetch("/api/state")).json();
    $("token-row").hidden = !st.token_required;
    history = (await (await fetch("/api/history")).json());
    const f = await (await fetch("/api/faults")).json();
    const sel = $("fault-kind");
    for (const k of f.kinds) { const o = document.createElement("option"); o.value = o.textContent = k; sel.appendChild(o); }
    if (!f.kinds.length) { const o = document.createElement("option"); o.textContent = "(no fault models)"; o.disabled = true; sel.appendChild(o); }
    onSnapshot(st);
    drawChart();
  } catch (err) { /* the stream below retries */ }
  const es = new EventSource("/api/stream");
  es.onopen = () => { $("link").textContent = "live"; $("link").className = "link ok"; };
  es.onerror = () => { $("link").textContent = "reconnecting…"; $("link").className = "link down"; };
  es.onmessage = (m) => onSnapshot(JSON.parse(m.data));
  $("load-form").onsubmit = (ev) => { ev.preventDefault(); control("POST", "/api/loads", {load: $("load-spec").value}); };
  $("fault-form").onsubmit = (ev) => {
    ev.preventDefault();
    control("POST", "/api/faults", {kind: $("fault-kind").value, params: parseParams($("fault-params").value)});
  };
  $("clear-faults").onclick = () => control("DELETE", "/api/faults");
  requestAnimationFrame(frame);
}

start();
