/*
 * console.js - the coordinator console's script (index.html).
 *
 * Polls the coordinator that served the page: /status every second (the
 * header, the relays, every group and its partitions) and /history every
 * 5 s (each group's lag over time, as the leader samples it; between two
 * reads the samples of /status are appended, so the plot moves every
 * second). Renders in place: rows, sections and plots are made once per
 * key and then updated, so that nothing flickers and what a reader (or a
 * test) holds stays in the page. Failed requests are shown on the page and
 * the last data stays, marked stale. No framework, nothing loaded from
 * elsewhere; the plot is SVG drawn here.
 *
 * Hooks for tests and scripts: tr[data-group][data-partition] with cells
 * td[data-field=owner|scn|lag|status|snapshot|...] (raw numbers in
 * data-value), tr[data-relay="source/id"], section.group[data-group] with
 * its snapshot line div.snapshot (hidden while the group has none; its
 * cells [data-field=snap_state|snap_parts|snap_rows|snap_rate|snap_eta],
 * and div.bar's data-value the fraction done, 0 to 1), svg[data-group]
 * (its path's data-points is the number of samples drawn), #updated
 * (data-ms: the browser's time of the last good /status), #errors (failed
 * requests), #jserrors (errors of this script).
 */
"use strict";

/* Errors of this script go on the page, not only to the developer tools:
 * an empty #jserrors is what says the page works. */
function reportJsError(text) {
  const box = document.getElementById("jserrors");
  if (!box) return;
  const p = document.createElement("p");
  p.textContent = "console error: " + text;
  box.appendChild(p);
}
window.addEventListener("error", (e) => {
  reportJsError(e.message + " (" + e.filename + ":" + e.lineno + ")");
});
window.addEventListener("unhandledrejection", (e) => {
  const r = e.reason;
  reportJsError(r && r.stack ? r.stack : String(r));
});

const STATUS_EVERY_MS = 1000;
const HISTORY_EVERY_MS = 5000;
const FETCH_TIMEOUT_MS = 4000;
const EXTRA_SAMPLES_MAX = 600; /* appended from /status between /history */
const STATUSES = ["OK", "WARN", "STALL", "STOP", "UNOWNED"];
const SVG = "http://www.w3.org/2000/svg";

const state = {
  status: null, /* the last good /status */
  history: {}, /* group -> [[t_ms, max_lag_seconds|null, status], ...] */
  extra: {}, /* group -> samples taken from /status after history's last */
  errors: {}, /* "/status" | "/history" -> {msg, since, count} */
};

/* ------------------------------------------------------------ formats */

function pad2(n) {
  return String(n).padStart(2, "0");
}

/* Local time, to the second: "2024-12-02 10:00:00". */
function fmtTime(ms) {
  if (ms === null || ms === undefined || !isFinite(ms) || ms <= 0) return "—";
  const d = new Date(ms);
  return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" +
    pad2(d.getDate()) + " " + fmtClock(ms);
}

function fmtClock(ms) {
  const d = new Date(ms);
  return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" +
    pad2(d.getSeconds());
}

/* Seconds as a reader wants them: "0.42", "12.3", "3m 20s", "2h 05m". */
function fmtSecs(v) {
  if (v === null || v === undefined || !isFinite(v)) return "—";
  const a = Math.abs(v);
  if (a < 10) return v.toFixed(2);
  if (a < 120) return v.toFixed(1);
  const s = Math.round(a), sign = v < 0 ? "-" : "";
  if (s < 3600) return sign + Math.floor(s / 60) + "m " + pad2(s % 60) + "s";
  return sign + Math.floor(s / 3600) + "h " + pad2(Math.floor(s / 60) % 60) +
    "m";
}

/* A window's length: "45 s", "12 min", "1.0 h". */
function fmtSpan(ms) {
  const s = Math.round(ms / 1000);
  if (s < 120) return s + " s";
  if (s < 7200) return Math.round(s / 60) + " min";
  return (s / 3600).toFixed(1) + " h";
}

function fmtBytes(n) {
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  if (n < 1073741824) return (n / 1048576).toFixed(1) + " MiB";
  return (n / 1073741824).toFixed(2) + " GiB";
}

/*
 * An SCN is (binlog file number << 32) | offset in that file, shown also
 * as file:offset. JSON.parse gives a double, which is exact below 2^53:
 * binlog file numbers below 2^21, beyond MariaDB's six digits. JavaScript's
 * shift operators work on 32 bits, so it is a division here; an SCN beyond
 * 2^53 (not a real one) is shown with "≈".
 */
function fmtScnParts(scn) {
  const file = Math.floor(scn / 4294967296);
  const off = scn - file * 4294967296;
  return (Number.isSafeInteger(scn) ? "" : "≈") + file + ":" + off;
}

function fmtScn(scn) {
  if (scn === null || scn === undefined) return "—";
  if (scn === 0) return "none yet";
  return scn + " (" + fmtScnParts(scn) + ")";
}

/* Where http of a coordinator node points: "127.0.0.1:7680" or
 * "[::1]:7680" (an IPv6 address without brackets gets them). */
function httpUrl(hostport) {
  if (!hostport) return null;
  let hp = String(hostport);
  const colon = hp.lastIndexOf(":");
  if (hp[0] !== "[" && colon > 0 && hp.indexOf(":") !== colon)
    hp = "[" + hp.slice(0, colon) + "]" + hp.slice(colon);
  return "http://" + hp + "/";
}

/* --------------------------------------------------------------- DOM */

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

/* Sets a cell's text, its raw value (data-value, for scripts) and its
 * class, touching the DOM only for what changed. */
function setCell(cell, text, value, cls) {
  if (cell.textContent !== text) cell.textContent = text;
  const v = value === null || value === undefined ? "" : String(value);
  if (cell.getAttribute("data-value") !== v) cell.setAttribute("data-value", v);
  const c = cls || "";
  if ((cell.getAttribute("class") || "") !== c) cell.setAttribute("class", c);
}

function field(root, name) {
  return root.querySelector('[data-field="' + name + '"]');
}

function statusClass(st) {
  return STATUSES.includes(st) ? "st st-" + st : "st st-none";
}

/* Keeps the children of parent that keyOf names in keys, in that order,
 * making missing ones with make(key); returns key -> element. */
function syncChildren(parent, keys, keyOf, make) {
  const have = new Map();
  for (const c of Array.from(parent.children)) {
    const k = keyOf(c);
    if (keys.includes(k)) have.set(k, c);
    else c.remove();
  }
  let prev = null;
  for (const k of keys) {
    let c = have.get(k);
    if (!c) {
      c = make(k);
      have.set(k, c);
    }
    const want = prev ? prev.nextSibling : parent.firstChild;
    if (want !== c) parent.insertBefore(c, want);
    prev = c;
  }
  return have;
}

/* ------------------------------------------------------------- errors */

function setError(path, msg) {
  if (msg === null) {
    delete state.errors[path];
  } else {
    const old = state.errors[path];
    state.errors[path] = {
      msg: msg,
      since: old ? old.since : Date.now(),
      count: old ? old.count + 1 : 1,
    };
  }
  const box = document.getElementById("errors");
  box.textContent = "";
  for (const p of Object.keys(state.errors).sort()) {
    const e = state.errors[p];
    box.appendChild(el("p", { "data-path": p },
      e.msg + " (failing since " + fmtClock(e.since) + ", " + e.count +
      (e.count === 1 ? " try)" : " tries)")));
  }
  document.body.classList.toggle("stale", "/status" in state.errors);
}

async function getJSON(path) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    let r;
    try {
      r = await fetch(path, { cache: "no-store", signal: ctl.signal });
    } catch (e) {
      if (e.name === "AbortError")
        throw new Error(path + ": no answer within " +
          FETCH_TIMEOUT_MS / 1000 + " s");
      throw new Error(path + ": " + e.message +
        " (is the coordinator running?)");
    }
    const text = await r.text();
    if (!r.ok)
      throw new Error(path + ": HTTP " + r.status + " " + r.statusText +
        (text ? ": " + text.slice(0, 200).trim() : ""));
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(path + ": not JSON (" + e.message + ")");
    }
  } finally {
    clearTimeout(timer);
  }
}

/* ------------------------------------------------------------- header */

function renderHeader(s) {
  const head = document.getElementById("coord");
  document.getElementById("coord-id").textContent = s.id || "?";
  document.title = "herald " + (s.id || "coordinator") + " (" +
    (s.leader ? "leader" : "follower") + ")";
  setCell(field(head, "cluster"), s.cluster || "?");
  let role = s.leader ? "leader" : "follower";
  if (!s.leader) role += s.leader_id ? " (leader: " + s.leader_id + ")" :
    " (no leader known)";
  setCell(field(head, "role"), role, s.leader ? "leader" : "follower",
    s.leader ? "good" : "");
  setCell(field(head, "version"), s.version || "?");
  setCell(field(head, "uptime"), s.uptime_s < 120 ?
    Math.round(s.uptime_s) + " s" : fmtSecs(s.uptime_s), s.uptime_s);
  setCell(field(head, "zookeeper"),
    s.connected ? "connected to " + (s.zookeeper_server || "?") :
      "disconnected", s.connected ? 1 : 0, s.connected ? "good" : "bad");
  setCell(field(head, "lag_sampled"),
    s.lag_sampled_ms ? fmtTime(s.lag_sampled_ms) + " (every " +
      fmtSpan(s.lag_interval_ms || 0) + ")" :
      s.leader ? "not yet" : "— (the leader samples lag)",
    s.lag_sampled_ms);

  /* every coordinator of the cluster, each a link to its own console */
  const coords = Array.isArray(s.coordinators) ? s.coordinators : [];
  const list = field(head, "coordinators");
  list.textContent = "";
  coords.forEach((c, i) => {
    if (i) list.appendChild(document.createTextNode(", "));
    const url = httpUrl(c.http);
    const a = url ? el("a", { href: url }, c.id || c.node) :
      el("span", {}, c.id || c.node);
    list.appendChild(a);
    const tags = [];
    if (c.leader) tags.push("leader");
    if (c.node && c.node === s.election_node) tags.push("this one");
    if (tags.length)
      list.appendChild(document.createTextNode(" (" + tags.join(", ") + ")"));
  });
  if (!coords.length) list.textContent = "—";

  /* a follower computes no lag: say so, and where the leader is */
  const note = document.getElementById("follower");
  if (s.leader) {
    note.hidden = true;
  } else {
    note.hidden = false;
    note.textContent = "This coordinator follows: lag is computed by the " +
      "leader, so this page shows groups, members and owners only. ";
    const leader = coords.find((c) => c.leader);
    const url = leader ? httpUrl(leader.http) : null;
    if (url) {
      note.appendChild(document.createTextNode("The leader's console: "));
      note.appendChild(el("a", { href: url, id: "leader-link" },
        (leader.id || leader.node) + " at " + leader.http));
      note.appendChild(document.createTextNode("."));
    } else {
      note.appendChild(document.createTextNode(s.leader_id ?
        "The leader is " + s.leader_id + "; its address is not known here." :
        "No leader is known now."));
    }
  }
}

/* ------------------------------------------------------------- relays */

function renderRelays(s) {
  const relays = (Array.isArray(s.relays) ? s.relays : []).slice();
  relays.sort((a, b) => String(a.source).localeCompare(String(b.source)) ||
    String(a.id).localeCompare(String(b.id)));
  const body = document.getElementById("relays-body");
  const byKey = new Map(relays.map((r) => [r.source + "/" + r.id, r]));
  const rows = syncChildren(body, Array.from(byKey.keys()),
    (tr) => tr.getAttribute("data-relay"), (k) => {
      const tr = el("tr", { "data-relay": k });
      for (const f of ["source", "id", "advertise", "scn", "newest_ts",
        "behind", "connected"])
        tr.appendChild(el("td", { "data-field": f }));
      return tr;
    });
  for (const [k, r] of byKey) {
    const tr = rows.get(k);
    setCell(field(tr, "source"), String(r.source));
    setCell(field(tr, "id"), String(r.id));
    setCell(field(tr, "advertise"), r.advertise || "—");
    setCell(field(tr, "scn"),
      r.newest_scn ? fmtScnParts(r.oldest_scn || 0) + " … " +
        fmtScnParts(r.newest_scn) : "—", r.newest_scn, "scn");
    setCell(field(tr, "newest_ts"), fmtTime(r.newest_ts_ms), r.newest_ts_ms);
    setCell(field(tr, "behind"), fmtSecs(r.behind_seconds), r.behind_seconds,
      r.behind_seconds > 0 ? "num warn" : "num");
    setCell(field(tr, "connected"), r.connected ? "yes" : "no",
      r.connected ? 1 : 0, r.connected ? "good" : "bad");
    tr.title = "relay " + r.id + ": SCNs " + (r.oldest_scn || 0) + " … " +
      (r.newest_scn || 0) + ", http " + (r.http || "?");
  }
  document.getElementById("relays-none").hidden = relays.length > 0;
}

/* ------------------------------------------------------------- groups */

const PART_FIELDS = ["partition", "owner", "scn", "ts", "lag", "lead",
  "status", "snapshot"];

function makeGroup(name) {
  const sec = el("section", { class: "group", "data-group": name });
  const h = el("h3");
  h.appendChild(el("span", { class: "gname" }, name));
  h.appendChild(document.createTextNode(" "));
  h.appendChild(el("span", { "data-field": "status" }));
  sec.appendChild(h);
  const facts = el("dl", { class: "facts" });
  for (const [f, label] of [["source", "source"],
    ["partitions", "partitions"], ["members", "members"],
    ["version", "assignment version"], ["max_lag", "max lag (s)"],
    ["moving", "unowned / pending"], ["source_scn", "source newest SCN"]]) {
    facts.appendChild(el("dt", {}, label));
    facts.appendChild(el("dd", { "data-field": f }));
  }
  sec.appendChild(facts);
  sec.appendChild(el("p", { class: "gerror", "data-field": "error",
    hidden: "" }));
  sec.appendChild(makeSnapshot());
  const plot = el("div", { class: "plot" });
  plot.appendChild(svgEl("svg", { "data-group": name,
    viewBox: "0 0 " + PLOT.w + " " + PLOT.h, role: "img",
    "aria-label": "lag of group " + name + " over time" }));
  sec.appendChild(plot);
  const t = el("table", { class: "partitions" });
  const hr = el("tr");
  for (const label of ["partition", "owner", "checkpoint SCN (file:offset)",
    "checkpoint commit", "lag (s)", "above oldest", "status"])
    hr.appendChild(el("th", {}, label));
  hr.appendChild(el("th", { class: "snapcol" }, "snapshot"));
  t.appendChild(el("thead")).appendChild(hr);
  t.appendChild(el("tbody"));
  sec.appendChild(t);
  return sec;
}

/* The rows of a group: the leader's lag entries; on a follower (lag [])
 * one per partition with the owner /status names and nothing else. */
function partitionRows(g) {
  if (Array.isArray(g.lag) && g.lag.length) return g.lag;
  const rows = [];
  const owners = g.owners || {};
  for (let p = 0; p < (g.partitions || 0); p++)
    rows.push({ partition: p, owner: owners[p] === undefined ? null :
      owners[p], scn: null, lag_seconds: null, status: null });
  return rows;
}

/*
 * Which rows are marked best and worst. The leader names them: its
 * worst_partition is the one furthest behind (the highest lag; an unknown
 * lag counts as the highest while the partition is behind, as the lowest
 * when it is not; ties: the worse status, then the lower number), its
 * best_partition the least behind. The page marks them only when that
 * tells something: the group has at least two partitions and those two
 * differ in lag, ranked that way (a group at rest, every partition at lag
 * 0, has neither a best nor a worst one). Followers compute no lag, so
 * they mark nothing.
 */
function lagRank(g, r) {
  if (r.lag_seconds !== null && r.lag_seconds !== undefined &&
    isFinite(r.lag_seconds))
    return r.lag_seconds;
  const behind = r.scn !== null && r.scn !== undefined &&
    g.relay_newest_scn && r.scn < g.relay_newest_scn;
  return behind ? Infinity : -1;
}

function bestWorst(g, rows) {
  const none = { best: null, worst: null };
  const at = (p) => Number.isInteger(p) ? rows.find((r) => r.partition === p)
    : undefined;
  const worst = at(g.worst_partition), best = at(g.best_partition);
  if (rows.length < 2 || !worst || !best || worst === best ||
    lagRank(g, worst) === lagRank(g, best))
    return none;
  return { worst: worst.partition, best: best.partition };
}

function fmtLead(r) {
  if (r.out_of_retention) return "out of retention";
  if (r.lead_files === null || r.lead_files === undefined) return "—";
  if (r.lead_files === 0)
    return r.lead_bytes === null || r.lead_bytes === undefined ? "0 files" :
      fmtBytes(r.lead_bytes);
  return r.lead_files + (r.lead_files === 1 ? " file" : " files");
}

function renderGroupRows(name, g, sec) {
  const rows = partitionRows(g);
  const mark = bestWorst(g, rows);
  const body = sec.querySelector("tbody");
  const byP = new Map(rows.map((r) => [String(r.partition), r]));
  const trs = syncChildren(body, Array.from(byP.keys()),
    (tr) => tr.getAttribute("data-partition"), (p) => {
      const tr = el("tr", { "data-group": name, "data-partition": p });
      for (const f of PART_FIELDS) tr.appendChild(el("td", { "data-field": f }));
      return tr;
    });
  for (const [p, r] of byP) {
    const tr = trs.get(p);
    const cls = [];
    if (r.status) cls.push("row-" + r.status);
    if (mark.worst === r.partition) cls.push("worst");
    if (mark.best === r.partition) cls.push("best");
    const c = cls.join(" ");
    if ((tr.getAttribute("class") || "") !== c) tr.setAttribute("class", c);
    setCell(field(tr, "partition"), p, p, "num");
    setCell(field(tr, "owner"), r.owner === null || r.owner === undefined ?
      "none" : String(r.owner), r.owner, r.owner ? "" : "bad");
    setCell(field(tr, "scn"), fmtScn(r.scn), r.scn, "scn");
    setCell(field(tr, "ts"), fmtTime(r.ts_ms), r.ts_ms);
    setCell(field(tr, "lag"), fmtSecs(r.lag_seconds), r.lag_seconds, "num");
    setCell(field(tr, "lead"), fmtLead(r),
      r.lead_files === null || r.lead_files === undefined ? null :
        r.lead_files + ":" + (r.lead_bytes === null ? "" : r.lead_bytes),
      r.out_of_retention ? "bad" : "");
    setCell(field(tr, "status"), r.status || "—", r.status,
      statusClass(r.status));
    setCell(field(tr, "snapshot"), fmtPartSnap(r.snapshot),
      r.snapshot ? r.snapshot.state : null, "snapcol");
    let tip = "partition " + p;
    if (mark.worst === r.partition) tip += ": the group's worst";
    if (mark.best === r.partition) tip += ": the group's best";
    if (r.written_ms) tip += "; checkpoint written " + fmtTime(r.written_ms);
    if (tr.title !== tip) tr.title = tip;
  }
}

function renderGroups(s) {
  const groups = s.groups && typeof s.groups === "object" ? s.groups : {};
  const names = Object.keys(groups).sort();
  const secs = syncChildren(document.getElementById("groups-body"), names,
    (sec) => sec.getAttribute("data-group"), makeGroup);
  for (const name of names) {
    const g = groups[name] || {};
    const sec = secs.get(name);
    setCell(field(sec, "status"), g.status || (s.leader ? "—" : "follower"),
      g.status, statusClass(g.status));
    setCell(field(sec, "source"), g.source || "—");
    setCell(field(sec, "partitions"), String(g.partitions || 0),
      g.partitions);
    const members = Array.isArray(g.members) ? g.members : [];
    /* a member heraldctl drain emptied holds nothing on purpose */
    const drained = Array.isArray(g.drained) ? g.drained : [];
    setCell(field(sec, "members"), members.length ? members.map((m) =>
      drained.includes(m) ? m + " (drained)" : m).join(", ") : "none",
    members.length, members.length ? "" : "bad");
    const v = g.assignment && g.assignment.version;
    setCell(field(sec, "version"), v ? String(v) : "none yet", v || 0);
    setCell(field(sec, "max_lag"), fmtSecs(g.max_lag_seconds),
      g.max_lag_seconds, "num");
    setCell(field(sec, "moving"), (g.unowned || 0) + " / " + (g.pending || 0),
      null, g.unowned ? "bad" : g.pending ? "warn" : "");
    setCell(field(sec, "source_scn"), g.relay_newest_scn ?
      fmtScn(g.relay_newest_scn) : "—", g.relay_newest_scn, "scn");
    const err = field(sec, "error");
    err.hidden = !g.error;
    setCell(err, g.error ? "error: " + g.error : "", g.error, "gerror");
    renderSnapshot(g, sec);
    renderGroupRows(name, g, sec);
    renderPlot(name, sec.querySelector("svg"), s);
  }
  document.getElementById("groups-none").hidden = names.length > 0;
}

/* ----------------------------------------------------------- snapshot */

/* A group's snapshot (the leader's "snapshot" of the group, from every
 * partition's checkpoint): state, partitions, rows, rate, time left, and
 * a bar of how far it is. */
function makeSnapshot() {
  const d = el("div", { class: "snapshot", hidden: "" });
  d.appendChild(el("span", { class: "label" }, "snapshot"));
  d.appendChild(el("span", { "data-field": "snap_state" }));
  const bar = el("div", { class: "bar", role: "progressbar",
    "aria-valuemin": "0", "aria-valuemax": "100" });
  bar.appendChild(el("div", { class: "fill" }));
  d.appendChild(bar);
  for (const f of ["snap_parts", "snap_rows", "snap_rate", "snap_eta"])
    d.appendChild(el("span", { "data-field": f }));
  return d;
}

/* How far a partition's snapshot is, 0 to 1: its tables done and the
 * part of the one being read (by the source's estimate of its rows). */
function snapFraction(ps) {
  if (!ps) return null;
  if (ps.state === "done") return 1;
  const total = ps.tables_total || 0;
  if (!total) return 0;
  let part = 0;
  if (ps.table_rows_estimate > 0)
    part = Math.min(1, (ps.table_rows || 0) / ps.table_rows_estimate);
  return Math.min(1, ((ps.tables_done || 0) + part) / total);
}

function fmtCount(n) {
  if (n === null || n === undefined || !isFinite(n)) return "—";
  return Math.round(n).toLocaleString("en-US");
}

function renderSnapshot(g, sec) {
  const d = sec.querySelector("div.snapshot");
  const sn = g.snapshot;
  d.hidden = !sn;
  sec.querySelector("table.partitions").classList.toggle("has-snap", !!sn);
  if (!sn) return;
  const cls = { running: "warn", done: "good", cancelled: "bad" };
  setCell(field(d, "snap_state"), sn.state + (sn.request ?
    " (request " + sn.request + ")" : ""), sn.state,
  "snapstate " + (cls[sn.state] || ""));
  const n = g.partitions || 0;
  const parts = [sn.partitions_done + " of " + n + " done"];
  if (sn.partitions_running) parts.push(sn.partitions_running + " running");
  if (sn.partitions_cancelled)
    parts.push(sn.partitions_cancelled + " cancelled");
  setCell(field(d, "snap_parts"), parts.join(", "), sn.partitions_done);
  setCell(field(d, "snap_rows"), fmtCount(sn.rows) + " rows, " +
    (sn.tables_done || 0) + "/" + (sn.tables_total || 0) + " tables",
  sn.rows);
  setCell(field(d, "snap_rate"), sn.rows_per_s === null ||
    sn.rows_per_s === undefined ? "rate —" : fmtCount(sn.rows_per_s) +
      " rows/s" + (sn.partitions_running ? "" : " (mean)"), sn.rows_per_s);
  let eta = "time left —";
  if (sn.state === "done") eta = "finished " + fmtTime(sn.ended_ms);
  else if (sn.eta_seconds !== null && sn.eta_seconds !== undefined)
    eta = "about " + fmtSecs(sn.eta_seconds) +
      (Math.abs(sn.eta_seconds) < 120 ? " s" : "") + " left";
  setCell(field(d, "snap_eta"), eta, sn.eta_seconds);
  /* the bar: the mean over the partitions with a snapshot */
  let sum = 0, cnt = 0;
  for (const r of Array.isArray(g.lag) ? g.lag : []) {
    const f = snapFraction(r.snapshot);
    if (f === null) continue;
    sum += f;
    cnt++;
  }
  const frac = cnt ? sum / cnt : 0;
  const bar = d.querySelector("div.bar");
  const pct = Math.round(frac * 1000) / 10;
  if (bar.getAttribute("data-value") !== String(frac)) {
    bar.setAttribute("data-value", String(frac));
    bar.setAttribute("aria-valuenow", String(pct));
    bar.title = pct + "% (tables done and the estimate of the one being " +
      "read, per partition)";
    bar.firstChild.style.width = pct + "%";
  }
  bar.setAttribute("class", "bar bar-" + sn.state);
}

function fmtPartSnap(ps) {
  if (!ps) return "—";
  if (ps.state === "done") return "done, " + fmtCount(ps.rows) + " rows";
  return ps.state + " " + (ps.tables_done || 0) + "/" +
    (ps.tables_total || 0) + " tables, " + fmtCount(ps.rows) + " rows";
}

/* --------------------------------------------------------------- plot */

const PLOT = { w: 760, h: 190, left: 52, right: 14, top: 12, bottom: 34 };

/* The smallest of 1, 2, 5 x 10^k at or above v (the y axis' top). */
function niceCeil(v) {
  if (!(v > 0)) return 1;
  const e = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * e >= v) return m * e;
  return 10 * e;
}

function samplesOf(name) {
  return (state.history[name] || []).concat(state.extra[name] || []);
}

/* One group's lag over time: the samples /history returns (then those of
 * /status since), x from the first to the last, y from 0 to a round value
 * above the highest lag; a gap where the lag was unknown, and a strip
 * under the axis coloured by each sample's status. */
function renderPlot(name, svg, s) {
  const samples = samplesOf(name);
  while (svg.firstChild) svg.firstChild.remove();
  const P = PLOT, x0 = P.left, x1 = P.w - P.right, y0 = P.h - P.bottom,
    y1 = P.top;
  svg.appendChild(svgEl("rect", { class: "frame", x: x0, y: y1,
    width: x1 - x0, height: y0 - y1 }));
  if (!samples.length) {
    svg.appendChild(svgEl("text", { class: "empty", x: (x0 + x1) / 2,
      y: (y0 + y1) / 2, "text-anchor": "middle" }, s.leader ?
      "no lag samples yet" : "no samples here: lag is computed by the leader"));
    return;
  }
  const t0 = samples[0][0];
  let t1 = samples[samples.length - 1][0];
  if (t1 <= t0) t1 = t0 + (s.lag_interval_ms || 1000);
  let top = 0;
  for (const smp of samples)
    if (smp[1] !== null && isFinite(smp[1])) top = Math.max(top, smp[1]);
  top = niceCeil(Math.max(top, 1)); /* at least 1 s high */
  const X = (t) => x0 + (t - t0) / (t1 - t0) * (x1 - x0);
  const Y = (v) => y0 - Math.min(v, top) / top * (y0 - y1);

  /* grid and y labels: 0, half, top */
  for (const v of [0, top / 2, top]) {
    svg.appendChild(svgEl("line", { class: "grid", x1: x0, x2: x1,
      y1: Y(v), y2: Y(v) }));
    svg.appendChild(svgEl("text", { class: "ylabel", x: x0 - 6, y: Y(v) + 4,
      "text-anchor": "end" }, v >= 120 ? fmtSecs(v) :
      (Number.isInteger(v) ? v : v.toFixed(1)) + " s"));
  }
  /* x labels: the window's ends and its length */
  svg.appendChild(svgEl("text", { class: "xlabel", x: x0, y: P.h - 4,
    "text-anchor": "start" }, fmtClock(t0)));
  svg.appendChild(svgEl("text", { class: "xlabel", x: x1, y: P.h - 4,
    "text-anchor": "end" }, fmtClock(t1)));
  svg.appendChild(svgEl("text", { class: "xlabel", x: (x0 + x1) / 2,
    y: P.h - 4, "text-anchor": "middle" }, "max lag (s), the last " +
    fmtSpan(t1 - t0)));

  /* status strip: one rect per run of samples with the same status */
  const sy = y0 + 4;
  for (let i = 0; i < samples.length;) {
    let j = i;
    while (j + 1 < samples.length && samples[j + 1][2] === samples[i][2]) j++;
    const xa = X(samples[i][0]);
    const xb = j + 1 < samples.length ? X(samples[j + 1][0]) :
      Math.max(X(samples[j][0]), xa + 1);
    const st = samples[i][2];
    svg.appendChild(svgEl("rect", { class: "strip " +
      (STATUSES.includes(st) ? "sf-" + st : "sf-none"), x: xa, y: sy,
      width: Math.max(xb - xa, 1), height: 6 }));
    i = j + 1;
  }

  /* the line: M at the start and after every unknown sample, L else */
  let d = "", pen = false, n = 0;
  for (const smp of samples) {
    if (smp[1] === null || !isFinite(smp[1])) {
      pen = false;
      continue;
    }
    d += (pen ? "L" : "M") + X(smp[0]).toFixed(1) + "," +
      Y(smp[1]).toFixed(1) + " ";
    pen = true;
    n++;
  }
  const path = svgEl("path", { class: "lag", d: d.trim() || "M0,0",
    "data-points": String(n) });
  svg.appendChild(path);
  const last = samples[samples.length - 1];
  svg.appendChild(svgEl("title", {}, "group " + name + ": " +
    samples.length + " samples, last " + fmtClock(last[0]) + " max lag " +
    fmtSecs(last[1]) + " s " + (last[2] || "")));
  svg.setAttribute("data-samples", String(samples.length));
}

/* ---------------------------------------------------------------- poll */

/* The leader's sample in /status (lag_sampled_ms), appended to each
 * group's plot until /history has it: the plot moves every second. */
function appendSamples(s) {
  const t = s.lag_sampled_ms;
  if (!t || !s.groups) return;
  for (const name of Object.keys(s.groups)) {
    const g = s.groups[name];
    if (!g || g.status === null || g.status === undefined) continue;
    const all = samplesOf(name);
    if (all.length && all[all.length - 1][0] >= t) continue;
    const ex = state.extra[name] || (state.extra[name] = []);
    ex.push([t, g.max_lag_seconds === undefined ? null : g.max_lag_seconds,
      g.status]);
    if (ex.length > EXTRA_SAMPLES_MAX) ex.splice(0, ex.length -
      EXTRA_SAMPLES_MAX);
  }
}

function render() {
  const s = state.status;
  if (!s) return;
  renderHeader(s);
  renderRelays(s);
  renderGroups(s);
}

function markUpdated() {
  const u = document.getElementById("updated");
  const now = Date.now();
  u.textContent = "updated " + fmtClock(now);
  u.setAttribute("data-ms", String(now));
}

async function pollStatus() {
  try {
    let s;
    try {
      s = await getJSON("/status");
      if (!s || typeof s !== "object" || Array.isArray(s))
        throw new Error("/status: not an object");
    } catch (e) {
      setError("/status", e.message);
      const u = document.getElementById("updated");
      const ms = Number(u.getAttribute("data-ms"));
      u.textContent = ms ? "last updated " + fmtClock(ms) + ", " +
        Math.round((Date.now() - ms) / 1000) + " s ago (stale)" :
        "not updated yet";
      return;
    }
    setError("/status", null);
    state.status = s;
    appendSamples(s);
    render();
    markUpdated();
  } finally {
    setTimeout(pollStatus, STATUS_EVERY_MS);
  }
}

async function pollHistory() {
  try {
    let h;
    try {
      h = await getJSON("/history");
      if (!h || typeof h !== "object" || typeof h.groups !== "object")
        throw new Error("/history: no groups object");
    } catch (e) {
      setError("/history", e.message);
      return;
    }
    setError("/history", null);
    const groups = h.groups || {};
    state.history = {};
    for (const name of Object.keys(groups)) {
      const smp = Array.isArray(groups[name]) ? groups[name].filter(
        (x) => Array.isArray(x) && isFinite(x[0])) : [];
      state.history[name] = smp;
      const last = smp.length ? smp[smp.length - 1][0] : -Infinity;
      state.extra[name] = (state.extra[name] || []).filter((x) =>
        x[0] > last);
    }
    for (const name of Object.keys(state.extra))
      if (!(name in groups)) delete state.extra[name];
    render();
  } finally {
    setTimeout(pollHistory, HISTORY_EVERY_MS);
  }
}

pollStatus();
pollHistory();
