// tetherd console: polls the JSON endpoints under ./api/ and draws the node,
// its sessions and one session's flight recorder.
//
// Every element is built by el() and svg() below, which take text only as
// text nodes and attributes only through setAttribute: nothing a client chose
// is ever parsed as HTML.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const PAGE = 50;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  for (const k of kids.flat(Infinity)) {
    if (k !== null && k !== undefined) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  setAttrs(e, attrs);
  for (const k of kids.flat(Infinity)) {
    if (k !== null && k !== undefined) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== false && v !== null && v !== undefined) e.setAttribute(k, v === true ? "" : String(v));
  }
}

// ---- formatting

function fmtMs(ms) {
  if (!ms) return "–";
  if (ms < 1) return ms.toFixed(2) + " ms";
  if (ms < 1000) return ms.toFixed(ms < 10 ? 1 : 0) + " ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
  if (s < 3600) return Math.floor(s / 60) + "m " + Math.floor(s % 60) + "s";
  return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
}

function ago(t, now) { return t ? fmtMs(Math.max(now - t, 1)) + " ago" : "–"; }
function clock(t) { return t ? new Date(t).toLocaleTimeString([], { hour12: false }) + "." + String(t % 1000).padStart(3, "0") : "–"; }

// ---- API

const api = {
  token: sessionStorage.getItem("tether-console-token") || "",
  csrf: "",
  async call(method, path, body) {
    const headers = {};
    if (this.token) headers.Authorization = "Bearer " + this.token;
    if (method !== "GET") { headers["X-CSRF-Token"] = this.csrf; headers["Content-Type"] = "application/json"; }
    const r = await fetch("api/" + path, { method, headers, body: body ? JSON.stringify(body) : undefined, cache: "no-store" });
    const data = await r.json().catch(() => ({ error: r.status + " " + r.statusText }));
    if (!r.ok) { const e = new Error(data.error || r.statusText); e.status = r.status; throw e; }
    return data;
  },
};

// ---- state and polling

const state = {
  overview: null,
  resumeHistory: [], // {all, failed} per overview poll
  lastResumes: null,
  drainStart: 0,
  query: { client: "", topic: "", principal: "", state: "", sort: "age", desc: false, offset: 0 }, // newest first
  view: null, // the function that redraws the current view
  timer: 0,
};

function schedule(fn, ms) {
  clearTimeout(state.timer);
  state.timer = setTimeout(fn, ms);
}

async function pollOverview() {
  try {
    const o = await api.call("GET", "overview");
    api.csrf = o.csrf;
    noteResumes(o.resumes);
    state.overview = o;
    drawHeader(o);
  } catch (e) {
    if (e.status === 401 || e.status === 403) return showLogin(e.message);
    drawHeaderError(e.message);
  }
  setTimeout(pollOverview, 1000);
}

function noteResumes(r) {
  const sum = (pred) => Object.entries(r).filter(([k]) => pred(k)).reduce((a, [, v]) => a + v, 0);
  const now = { all: sum(() => true), failed: sum((k) => k !== "resumed" && k !== "resumed_with_gap") };
  if (state.lastResumes) {
    state.resumeHistory.push({ all: now.all - state.lastResumes.all, failed: now.failed - state.lastResumes.failed });
    if (state.resumeHistory.length > 120) state.resumeHistory.shift();
  }
  state.lastResumes = now;
}

function drawHeader(o) {
  document.getElementById("server-id").textContent = o.serverId;
  const h = document.getElementById("health");
  h.textContent = o.draining ? "draining" : o.ready ? "ready" : "not ready";
  h.className = "badge " + (o.draining ? "warn" : o.ready ? "ok" : "bad");
  document.getElementById("who").textContent = o.principal ? "signed in as " + o.principal + (o.canAct ? "" : " (read-only)") : "";
}

function drawHeaderError(msg) {
  const h = document.getElementById("health");
  h.textContent = "unreachable: " + msg;
  h.className = "badge bad";
}

// ---- routing

function route() {
  const m = location.hash.match(/^#\/session\/(.+)$/);
  if (m) showSession(decodeURIComponent(m[1]));
  else showNode();
}

function mount(...kids) {
  const app = document.getElementById("app");
  app.replaceChildren(...kids);
}

function showLogin(msg) {
  clearTimeout(state.timer);
  const input = el("input", { type: "password", id: "token", placeholder: "bearer token", autocomplete: "off" });
  mount(el("form", {
    class: "login card", onsubmit: (ev) => {
      ev.preventDefault();
      api.token = input.value.trim();
      sessionStorage.setItem("tether-console-token", api.token);
      location.reload();
    },
  }, el("h3", {}, "Sign in"), el("p", { class: "error" }, msg),
  el("p", { class: "muted" }, "This admin listener needs the bearer token of a principal with the admin permission (or admin_read, to look only). It stays in this tab."),
  input, el("button", { type: "submit", id: "sign-in" }, "Sign in")));
}

// ---- node view: overview and sessions

function showNode() {
  const overview = el("section", { id: "overview" });
  const table = el("section", { id: "sessions" });
  mount(overview, table);
  state.view = async () => {
    if (state.overview) drawOverview(overview, state.overview);
    try {
      const q = state.query;
      const params = new URLSearchParams({ client: q.client, topic: q.topic, principal: q.principal, state: q.state, sort: q.sort, desc: q.desc ? "1" : "0", offset: q.offset, limit: PAGE });
      drawSessions(table, await api.call("GET", "sessions?" + params));
    } catch (e) {
      if (e.status === 401 || e.status === 403) return showLogin(e.message);
      table.replaceChildren(el("p", { class: "error" }, e.message)); // the next answer redraws the table
    }
    schedule(state.view, 500);
  };
  state.view();
}

function card(title, ...kids) { return el("div", { class: "card" }, el("h3", {}, title), ...kids); }
function dl(pairs) { return el("dl", {}, pairs.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])); }

function drawOverview(root, o) {
  const s = o.sessions;
  const p = o.profile;
  const cards = [
    card("Health", el("div", { class: "big", id: "ready" }, o.ready ? "ready" : "not ready"),
      o.readyError ? el("div", { class: "error" }, o.readyError) : el("div", { class: "muted" }, "takes new sessions")),
    card("Sessions", el("div", { class: "big", id: "total" }, s.total || 0),
      dl([["connected", s.connected || 0], ["detached", s.detached || 0], ["suspended", s.suspended || 0], ["closed", s.closed || 0], ["open streams", o.streams]])),
    card("Broker", el("div", { class: "big" }, o.broker.name || "–"),
      el("div", { class: o.broker.ok ? "" : "error" }, o.broker.ok ? "healthy" : o.broker.error)),
    card("Profile", el("div", { class: "big" }, p.name),
      dl([["heartbeat", fmtMs(p.intervalMs) + " × " + p.misses + " + " + fmtMs(p.graceMs)], ["detection", fmtMs(p.detectionMs)],
        ["pings/hour", Math.round(p.heartbeatsPerHour)], ["NAT-safe (30 s)", p.natSafe ? "yes" : "no"]])),
    card("Resumes", sparkline(state.resumeHistory),
      dl(Object.entries(o.resumes).filter(([, v]) => v > 0).map(([k, v]) => [k.replaceAll("_", " "), v])),
      el("div", { class: "muted" }, "per second, last 2 minutes; red: not resumed")),
    drainCard(o),
  ];
  root.replaceChildren(el("div", { class: "cards" }, cards));
}

function drainCard(o) {
  if (o.draining) {
    state.drainStart = Math.max(state.drainStart, o.streams);
    const bar = el("div", {});
    bar.style.width = (state.drainStart ? (100 * o.streams) / state.drainStart : 0).toFixed(1) + "%"; // CSSOM: the CSP allows no style attributes
    return card("Drain", el("div", { class: "big", id: "drain-left" }, o.streams + " streams left"),
      el("div", { class: "progress" }, bar),
      el("div", { class: "muted" }, "go_away sent paced; the node stops when the last stream ends"));
  }
  if (!o.canDrain) return card("Drain", el("div", { class: "muted" }, "not draining"));
  return card("Drain", el("div", { class: "muted" }, "Stop this node gracefully: health goes NOT_SERVING, sessions get go_away and resume elsewhere."),
    el("button", { class: "danger", id: "drain", onclick: () => confirmAction("Drain node " + o.serverId + "? It stops once its sessions have moved.", false, async () => { await api.call("POST", "drain"); }) }, "Drain node…"));
}

function sparkline(hist) {
  const w = 240, h = 48;
  const max = Math.max(1, ...hist.map((x) => x.all));
  const off = 120 - hist.length; // the newest sample at the right edge
  const pts = (key) => hist.map((x, i) => (((off + i) * w) / 119).toFixed(1) + "," + (h - 2 - ((h - 4) * x[key]) / max).toFixed(1)).join(" ");
  return svg("svg", { class: "spark", id: "resume-spark", viewBox: "0 0 " + w + " " + h, preserveAspectRatio: "none" },
    svg("polyline", { class: "all", points: pts("all") }), svg("polyline", { class: "failed", points: pts("failed") }));
}

const columns = [
  ["client id", null], ["session", null], ["state", null], ["principal", null], ["topics", null],
  ["age", "age"], ["RTT", "rtt"], ["unacked", "unacked"], ["queued", null], ["last activity", "activity"],
];

function drawSessions(root, page) {
  const q = state.query;
  const now = Date.now();
  const canAct = state.overview && state.overview.canAct;
  if (!document.getElementById("table")) root.replaceChildren(filters(), el("div", { id: "table" }));
  const head = el("tr", {}, columns.map(([name, key]) => el("th", {
    class: [key ? "sortable" : "", q.sort === key ? "sorted" : "", q.sort === key && q.desc ? "desc" : "", ["RTT", "unacked", "queued"].includes(name) ? "num" : ""].join(" "),
    "data-sort": key, onclick: key ? () => { q.desc = q.sort === key ? !q.desc : true; q.sort = key; q.offset = 0; state.view(); } : null,
  }, name)), canAct ? el("th", {}, "") : null);
  const rows = page.sessions.map((s) => el("tr", { "data-id": s.id },
    el("td", { class: "client wrap" }, el("a", { href: "#/session/" + encodeURIComponent(s.id) }, s.clientId || "(anonymous)")),
    el("td", { class: "mono" }, s.id.slice(0, 10)),
    el("td", { class: "state-" + s.state }, s.state),
    el("td", {}, s.principal),
    el("td", { class: "topics wrap" }, s.topics.join(", ")),
    el("td", {}, fmtMs(now - s.created)),
    el("td", { class: "num" }, fmtMs(s.rttMs)),
    el("td", { class: "num" }, s.unacked),
    el("td", { class: "num" }, s.queued),
    el("td", {}, ago(s.lastActivity, now)),
    canAct ? el("td", {}, kickButton(s)) : null));
  const last = Math.min(page.offset + PAGE, page.matched);
  const pager = el("div", { class: "pager" },
    el("button", { id: "prev", disabled: q.offset === 0, onclick: () => { q.offset = Math.max(0, q.offset - PAGE); state.view(); } }, "‹ prev"),
    el("span", { id: "range" }, page.matched ? (page.offset + 1) + "–" + last + " of " + page.matched + (page.matched !== page.total ? " (of " + page.total + ")" : "") : "no sessions" + (page.total ? " match (of " + page.total + ")" : "")),
    el("button", { id: "next", disabled: last >= page.matched, onclick: () => { q.offset += PAGE; state.view(); } }, "next ›"));
  document.getElementById("table").replaceChildren(el("table", { id: "session-table" }, el("thead", {}, head), el("tbody", {}, rows)), pager);
}

function filters() {
  const q = state.query;
  const input = (key, label) => el("input", { id: "filter-" + key, placeholder: label, value: q[key], oninput: (ev) => { q[key] = ev.target.value; q.offset = 0; state.view(); } });
  const sel = el("select", { id: "filter-state", onchange: (ev) => { q.state = ev.target.value; q.offset = 0; state.view(); } },
    ["", "connected", "detached", "suspended", "closed"].map((v) => el("option", { value: v, selected: q.state === v }, v || "any state")));
  return el("div", {}, el("h2", {}, "Sessions"), el("div", { class: "filters" }, input("client", "client id"), input("topic", "topic"), input("principal", "principal"), sel));
}

function kickButton(s) {
  return el("button", { class: "kick", onclick: () => confirmAction("Kick session " + s.id + " (client " + (s.clientId || "anonymous") + ")? It ends for good: the client gets go_away and cannot resume it.", true, (reason) => api.call("POST", "sessions/" + encodeURIComponent(s.id) + "/kick", { reason })) }, "kick");
}

function confirmAction(text, withReason, act) {
  const d = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-reason-label").hidden = !withReason;
  const reason = document.getElementById("confirm-reason");
  reason.value = "";
  d.onclose = async () => {
    if (d.returnValue !== "ok") return;
    try { await act(reason.value); } catch (e) { alert(e.message); }
    if (state.view) state.view();
  };
  d.returnValue = "";
  d.showModal();
}

// ---- one session

function showSession(id) {
  const root = el("section", { id: "session" });
  mount(el("p", {}, el("a", { href: "#/" }, "‹ all sessions")), root);
  state.view = async () => {
    try {
      drawSession(root, await api.call("GET", "sessions/" + encodeURIComponent(id)));
    } catch (e) {
      if (e.status === 401 || e.status === 403) return showLogin(e.message);
      root.replaceChildren(el("h2", {}, "Session " + id), el("p", { class: "error", id: "gone" }, e.status === 404 ? "This session has ended (or another node holds it)." : e.message));
    }
    schedule(state.view, 1000);
  };
  state.view();
}

function drawSession(root, d) {
  const s = d.session;
  const now = d.now;
  const canAct = state.overview && state.overview.canAct;
  const resumes = d.events.filter((e) => e.resume);
  root.replaceChildren(
    el("h2", {}, "Session ", el("span", { class: "mono" }, s.id), " ", el("span", { class: "badge state-badge " + (s.state === "connected" ? "ok" : "warn") }, s.state), " ",
      canAct && s.state !== "closed" ? kickButton(s) : null),
    el("div", { class: "cards" },
      card("Client", dl([["client id", el("span", { id: "client-id" }, s.clientId || "(anonymous)")], ["principal", s.principal || "–"], ["peer", s.peer],
        ["age", fmtMs(now - s.created)], ["connected", ago(s.connectedAt, now)], ["last frame", ago(s.lastActivity, now)]])),
      card("Heartbeat", dl([["interval", fmtMs(s.intervalMs)], ["RTT", fmtMs(s.rttMs)], ["resumes", s.resumes],
        s.resumeDeadline ? ["resume by", clock(s.resumeDeadline)] : ["", ""]])),
      card("Messages", dl([["unacked", el("span", { id: "unacked" }, s.unacked)], ["queued", s.queued], ["last sent seq", s.lastSentSeq], ["last acked seq", s.lastAckedSeq], ["last received seq", s.lastReceivedSeq]])),
      card("Topics", s.topics.length ? el("ul", { id: "topics" }, s.topics.map((t) => el("li", { class: "mono" }, t))) : el("div", { class: "muted" }, "none")),
      card("Metadata", Object.keys(d.metadata).length ? dl(Object.entries(d.metadata)) : el("div", { class: "muted" }, "none"))),
    el("h2", {}, "RTT"), rttPlot(d.events, now),
    el("h2", {}, "Flight recorder"), legend(), timeline(d.events, now),
    el("h2", {}, "Resume history"),
    resumes.length ? el("ul", { id: "resumes" }, resumes.map((e) => el("li", {}, clock(e.at) + " " + e.resume.replaceAll("_", " ") + (e.detail ? ": " + e.detail : "")))) : el("p", { class: "muted" }, "never resumed"),
    el("h2", {}, "Events"), eventTable(d.events));
}

const kindLabel = {
  connected: "connect", resumed: "resume", detached: "stream broke", heartbeat_missed: "heartbeat missed",
  rtt: "server ping → pong", ping: "client ping → pong",
  go_away: "go_away", error: "error", taken_over: "taken over", closed: "closed", log_overflow: "gap: log overflow",
  suspended: "suspended by the app", heartbeat_changed: "heartbeat interval changed",
};

function legend() {
  const item = (kind) => el("span", {}, svg("svg", { width: 10, height: 10 }, svg("circle", { cx: 5, cy: 5, r: 4, class: "ev-" + kind })), " " + kindLabel[kind]);
  return el("div", { class: "legend" }, ["connected", "resumed", "rtt", "ping", "heartbeat_missed", "heartbeat_changed", "go_away", "suspended", "detached", "log_overflow", "closed"].map(item),
    el("span", {}, svg("svg", { width: 14, height: 10 }, svg("rect", { width: 14, height: 10, class: "gap" })), " detached (gap)"));
}

// timeline draws the flight recorder on a time axis: the stream lane shows
// when a stream carried the session and the gaps between, the event lane one
// mark per event.
function timeline(events, now) {
  const W = 1000, H = 110, L = 10, R = 10;
  const t0 = events.length ? Math.min(events[0].at, now - 1000) : now - 60000;
  const x = (t) => L + ((W - L - R) * (t - t0)) / Math.max(now - t0, 1);
  const g = svg("svg", { class: "timeline", id: "timeline", viewBox: "0 0 " + W + " " + H });
  g.append(svg("rect", { class: "lane", x: L, y: 12, width: W - L - R, height: 22 }), svg("rect", { class: "lane", x: L, y: 44, width: W - L - R, height: 34 }));
  let from = null;
  for (const e of events) {
    if (e.kind === "connected" || e.kind === "resumed") {
      if (from !== null && from.gap) g.append(span(x(from.at), x(e.at), "gap", "detached " + fmtMs(e.at - from.at)));
      from = { at: e.at, gap: false };
    } else if (["detached", "taken_over", "closed"].includes(e.kind) && from && !from.gap) {
      g.append(span(x(from.at), x(e.at), "attached", "stream up " + fmtMs(e.at - from.at)));
      from = { at: e.at, gap: e.kind === "detached" };
    }
  }
  if (from) g.append(span(x(from.at), x(now), from.gap ? "gap" : "attached", from.gap ? "detached" : "stream up"));
  for (const e of events) {
    const cx = x(e.at).toFixed(1);
    const title = svg("title", {}, clock(e.at) + " " + (kindLabel[e.kind] || e.kind) + (e.rttMs ? " " + fmtMs(e.rttMs) : "") + (e.detail ? ": " + e.detail : ""));
    const mark = e.kind === "rtt" || e.kind === "ping"
      ? svg("rect", { class: "ev beat ev-" + e.kind, x: cx - 1, y: e.kind === "rtt" ? 47 : 53, width: 2, height: 22 }, title)
      : svg("circle", { class: "ev ev-" + e.kind, cx, cy: 61, r: 6 }, title);
    g.append(mark);
  }
  g.append(svg("text", { x: L, y: 100 }, clock(t0)), svg("text", { x: W - R, y: 100, "text-anchor": "end" }, "now " + clock(now)),
    svg("text", { x: W / 2, y: 100, "text-anchor": "middle" }, "stream above, events below"));
  return g;
}

function span(x1, x2, cls, label) {
  const min = cls === "gap" ? 3 : 1; // a short gap still shows
  return svg("rect", { class: cls, x: x1.toFixed(1), y: 12, width: Math.max(x2 - x1, min).toFixed(1), height: 22 }, svg("title", {}, label));
}

function rttPlot(events, now) {
  const W = 1000, H = 90, P = 24;
  const pts = events.filter((e) => e.kind === "rtt");
  const g = svg("svg", { class: "rtt", id: "rtt-plot", viewBox: "0 0 " + W + " " + H });
  if (!pts.length) {
    g.append(svg("text", { x: P, y: H / 2 }, events.some((e) => e.kind === "ping")
      ? "no RTT: this client drives the heartbeat (the SDK does); the server measures RTT only on its own pings"
      : "no RTT measured yet"));
    return g;
  }
  const t0 = pts[0].at, max = Math.max(...pts.map((e) => e.rttMs)) * 1.15;
  const x = (t) => P + ((W - 2 * P) * (t - t0)) / Math.max(now - t0, 1);
  const y = (v) => H - P + 10 - ((H - P) * v) / max;
  g.append(svg("polyline", { points: pts.map((e) => x(e.at).toFixed(1) + "," + y(e.rttMs).toFixed(1)).join(" ") }),
    svg("text", { x: 2, y: 12 }, fmtMs(max)), svg("text", { x: 2, y: H - 4 }, "0"),
    svg("text", { x: W - 4, y: H - 4, "text-anchor": "end" }, pts.length + " samples, last " + fmtMs(pts[pts.length - 1].rttMs)));
  return g;
}

function eventTable(events) {
  return el("table", { id: "events" }, el("thead", {}, el("tr", {}, el("th", {}, "time"), el("th", {}, "event"), el("th", {}, "detail"))),
    el("tbody", {}, events.slice().reverse().map((e) => el("tr", { class: "row-" + e.kind },
      el("td", { class: "mono" }, clock(e.at)), el("td", {}, kindLabel[e.kind] || e.kind),
      el("td", { class: "wrap" }, [e.rttMs ? "RTT " + fmtMs(e.rttMs) : "", e.resume ? e.resume.replaceAll("_", " ") : "", e.detail].filter(Boolean).join(" · "))))));
}

window.addEventListener("hashchange", route);
pollOverview();
route();
