// socktab dashboard: plain script, no libraries, everything from this server.
// Untrusted strings (process names, unix paths) only ever go in textContent.
"use strict";

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const k of kids) {
    if (k == null) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function showError(msg) {
  const p = $("#error");
  p.textContent = msg || "";
  p.hidden = !msg;
}

async function getJSON(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({ error: "bad response (" + r.status + ")" }));
  if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
  return body;
}

// Namespace selector: "*" shows every namespace the server reads.
const nsSel = $("#netns");
function nsWanted() { return nsSel.value; }
function nsShown(ns) { return nsWanted() === "*" || ns === nsWanted(); }
function nsName(ns) { return ns === "" ? "(own)" : ns; }
function setNamespaces(list) {
  const have = new Set([...nsSel.options].map((o) => o.value));
  for (const ns of list) {
    if (!have.has(ns)) nsSel.append(el("option", { value: ns }, nsName(ns)));
  }
}

function owners(s) {
  if (!s.processes || s.processes.length === 0) return "";
  return s.processes.map((p) => p.command + "(" + p.pid + ")").join(",");
}

// ---------------------------------------------------------------- sockets
const table = { sort: "", desc: false, offset: 0, limit: 200 };

async function loadSockets() {
  const q = new URLSearchParams({ offset: table.offset, limit: table.limit });
  if (table.sort) { q.set("sort", table.sort); if (table.desc) q.set("desc", "1"); }
  const f = $("#filter").value.trim();
  if (f) q.set("q", f);
  if ($("#proto").value) q.set("proto", $("#proto").value);
  if ($("#state").value) q.set("state", $("#state").value);
  if (nsWanted() !== "*") q.set("netns", nsWanted());
  const page = await getJSON("/api/sockets?" + q);
  setNamespaces(page.namespaces);
  const body = document.createElement("tbody");
  for (const s of page.sockets) {
    body.append(el("tr", { "data-local": s.local || "" },
      el("td", {}, nsName(s.netns)), el("td", {}, s.proto), el("td", {}, s.state),
      el("td", { class: "num" }, s.recv_q), el("td", { class: "num" }, s.send_q),
      el("td", {}, s.local), el("td", {}, s.remote == null ? "*" : s.remote),
      el("td", { class: "num" }, s.uid), el("td", { class: "num" }, s.inode), el("td", {}, owners(s))));
  }
  $("#sockets-table tbody").replaceWith(body);
  const last = Math.min(page.offset + page.sockets.length, page.matched);
  $("#sockets-count").textContent = page.matched + " of " + page.total + " sockets match";
  $("#page").textContent = page.matched ? (page.offset + 1) + "–" + last : "none";
  $("#prev").disabled = page.offset === 0;
  $("#next").disabled = last >= page.matched;
  for (const th of document.querySelectorAll("#sockets-table th")) {
    th.classList.toggle("sorted", th.dataset.sort === table.sort);
    th.classList.toggle("desc", th.dataset.sort === table.sort && table.desc);
  }
}

let filterTimer;
$("#filter").addEventListener("input", () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => { table.offset = 0; refresh(); }, 250);
});
$("#sockets-form").addEventListener("submit", (e) => { e.preventDefault(); table.offset = 0; refresh(); });
for (const id of ["#proto", "#state"]) $(id).addEventListener("change", () => { table.offset = 0; refresh(); });
$("#prev").addEventListener("click", () => { table.offset = Math.max(0, table.offset - table.limit); refresh(); });
$("#next").addEventListener("click", () => { table.offset += table.limit; refresh(); });
for (const th of document.querySelectorAll("#sockets-table th")) {
  th.addEventListener("click", () => {
    if (table.sort === th.dataset.sort) table.desc = !table.desc;
    else { table.sort = th.dataset.sort; table.desc = false; }
    table.offset = 0;
    refresh();
  });
}

// --------------------------------------------------------------- exposure
async function loadExposure() {
  const list = await getJSON("/api/exposure");
  setNamespaces([...new Set(list.map((x) => x.netns))]);
  const box = el("div", { id: "exposure-map" });
  for (const x of list) {
    if (!nsShown(x.netns)) continue;
    const accepts = el("div", { class: "addrs" });
    for (const a of x.accepts) {
      accepts.append(el("span", { class: "chip " + a.class, "data-addr": a.addr }, a.addr, el("small", {}, a.class)));
    }
    if (x.accepts.length === 0) accepts.append(el("span", { class: "muted" }, "receives on no address"));
    const shadows = el("div", { class: "shadows" });
    for (const s of x.shadowed) {
      shadows.append(el("div", { class: "shadow" },
        el("span", { class: "chip shadowed " + s.class }, s.addr, el("small", {}, s.class)),
        " taken by the more specific ", el("b", {}, s.by.proto + " " + s.by.local), " " + owners(s.by)));
    }
    box.append(el("div", { class: "listener sev-" + x.severity, "data-local": x.socket.local },
      el("div", { class: "who" }, el("b", {}, x.socket.proto + " " + x.socket.local),
        el("span", { class: "sev" }, x.severity), el("div", { class: "muted" }, nsName(x.netns) + " " + owners(x.socket))),
      el("div", { class: "arrow" }, "accepts on \u2192"), accepts, shadows));
  }
  $("#exposure-map").replaceWith(box);
}

// ------------------------------------------------------------------ ports
const history = new Map(); // pool key -> last percents
const HISTORY = 24;

async function samplePorts() {
  const ans = await getJSON("/api/ports");
  const seen = new Set();
  for (const ns of ans.json) {
    for (const d of ns.destinations) {
      const key = ns.netns + "|" + d.proto + "|" + d.src + "|" + d.dst;
      seen.add(key);
      const h = history.get(key) || [];
      h.push(d.percent);
      if (h.length > HISTORY) h.shift();
      history.set(key, h);
    }
  }
  for (const [k, h] of history) {
    if (!seen.has(k)) { h.push(0); if (h.length > HISTORY) h.shift(); if (h.every((v) => v === 0)) history.delete(k); }
  }
  return ans;
}

async function loadPorts() {
  const ans = await samplePorts();
  setNamespaces(ans.json.map((n) => n.netns));
  const sum = el("div", { id: "ports-summary" });
  const bars = el("div", { id: "ports-bars" });
  for (const ns of ans.json) {
    if (!nsShown(ns.netns)) continue;
    sum.append(el("p", {}, nsName(ns.netns) + ": range " + ns.port_low + "–" + ns.port_high + ", " +
      ns.reserved_ports.length + " reserved, " + ns.usable + " usable per destination"));
    if (ns.destinations.length === 0) bars.append(el("p", { class: "muted" }, nsName(ns.netns) + ": no connections from ephemeral ports"));
    for (const d of ns.destinations) {
      const key = ns.netns + "|" + d.proto + "|" + d.src + "|" + d.dst;
      const spark = el("div", { class: "spark" });
      for (const v of history.get(key) || []) {
        spark.append(el("i", { class: v >= 80 ? "hot" : "" }));
        spark.lastChild.style.height = Math.max(1, v) + "%";
      }
      const fill = el("div", { class: "fill" + (d.percent >= 80 ? " hot" : "") });
      fill.style.width = Math.min(100, d.percent) + "%";
      bars.append(el("div", { class: "pool", "data-dst": d.dst },
        el("div", { class: "label" }, d.proto + " " + d.src + " \u2192 " + d.dst, el("small", {}, " " + nsName(ns.netns))),
        el("div", { class: "bar" }, fill),
        el("div", { class: "pct" }, d.percent.toFixed(1) + "%  (" + d.in_use + " + " + d.time_wait + " TIME-WAIT of " + d.capacity + ")"),
        spark));
    }
  }
  $("#ports-summary").replaceWith(sum);
  $("#ports-bars").replaceWith(bars);
}

// ------------------------------------------------------------ who / bind
function answerBox(id, ans, summary) {
  const box = el("div", { class: "answer", id: id });
  box.append(el("div", { class: "command" }, "$ " + ans.command));
  for (const s of summary) box.append(s);
  box.append(el("pre", { class: "text" }, ans.text));
  if (ans.notes) box.append(el("pre", { class: "notes" }, ans.notes));
  $("#" + id).replaceWith(box);
}

$("#who-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const q = new URLSearchParams({ proto: f.get("proto"), dst: f.get("dst").trim() });
  if (f.get("from").trim()) q.set("from", f.get("from").trim());
  try {
    const ans = await getJSON("/api/who?" + q);
    showError("");
    answerBox("who-answer", ans, ans.json.map((w) => el("p", { class: "verdict v-" + w.verdict, "data-verdict": w.verdict },
      nsName(w.netns) + ": " + w.verdict + (w.socket ? " \u2192 " + w.socket.proto + " " + w.socket.local + " " + owners(w.socket) : ""))));
  } catch (err) { showError("who: " + err.message); }
});

$("#bind-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const q = new URLSearchParams({ proto: f.get("proto"), addr: f.get("addr").trim() });
  for (const o of ["reuseaddr", "reuseport", "v6only"]) if (f.get(o)) q.set(o, "1");
  if (f.get("uid").trim()) q.set("uid", f.get("uid").trim());
  try {
    const ans = await getJSON("/api/bind?" + q);
    showError("");
    answerBox("bind-answer", ans, ans.json.map((b) => el("p", { class: "verdict " + (b.result === "ok" ? "v-ok" : "v-fail"), "data-result": b.result },
      nsName(b.netns) + ": " + b.result + (b.blocker ? " \u2014 blocked by " + b.blocker.proto + " " + b.blocker.local + " " + owners(b.blocker) : ""))));
  } catch (err) { showError("bind: " + err.message); }
});

// ------------------------------------------------------------------ audit
async function loadAudit() {
  const ans = await getJSON("/api/audit");
  const box = el("div", { id: "audit-list" });
  const list = ans.json.filter((x) => nsShown(x.netns));
  if (list.length === 0) box.append(el("p", { class: "muted" }, "no listeners"));
  for (const x of list) {
    box.append(el("div", { class: "finding sev-" + x.severity, "data-local": x.socket.local },
      el("span", { class: "sev" }, x.severity),
      el("b", {}, " " + x.socket.proto + " " + x.socket.local + " "), el("span", { class: "muted" }, nsName(x.netns) + " " + owners(x.socket)),
      el("div", {}, x.finding),
      x.fix ? el("div", { class: "fix" }, "fix: " + x.fix) : null));
  }
  $("#audit-list").replaceWith(box);
}

// ------------------------------------------------------------------ views
const loaders = { sockets: loadSockets, exposure: loadExposure, ports: loadPorts, audit: loadAudit };
function current() { return (location.hash || "#sockets").slice(1); }

let busy = false;
async function refresh() {
  const v = current();
  if (!loaders[v] || busy) return;
  busy = true;
  try {
    await loaders[v]();
    showError("");
    document.body.dataset.loaded = v;
  } catch (err) {
    showError(v + ": " + err.message);
  } finally {
    busy = false;
  }
}

function show() {
  const v = current();
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + v;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === v);
  delete document.body.dataset.loaded;
  refresh();
}

window.addEventListener("hashchange", show);
nsSel.addEventListener("change", () => { table.offset = 0; refresh(); });
setInterval(() => {
  if (!$("#autorefresh").checked) return;
  if (current() === "ports") refresh();
  else { samplePorts().catch(() => {}); refresh(); }
}, 5000);
show();
