// agent-harness dashboard. Every recorded string is put in as text (textContent), never as markup.
"use strict";

const TOKEN = document.querySelector('meta[name="harness-token"]').content;
const FEED_MAX = 300;
let feed = [];          // the newest events, oldest first
let lastId = 0;
let snapshotAt = 0;
let refreshTimer = null;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) tr.append(c instanceof Node ? c : el("td", c));
  return tr;
}

function num(n) {
  return el("td", n === null || n === undefined ? "" : Number(n).toLocaleString("en-US"), "num");
}

function usd(n) {
  return el("td", "$" + Number(n || 0).toFixed(2), "num");
}

function short(id) { return id ? String(id).slice(0, 8) : ""; }

function span(ms) {
  if (ms === null || ms === undefined) return "";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
}

function clock(ms) {
  return ms ? new Date(ms).toLocaleTimeString("en-GB") : "";
}

function fill(id, rows) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren(...rows);
}

function say(text) {
  const m = document.getElementById("message");
  m.textContent = text;
  setTimeout(() => { if (m.textContent === text) m.textContent = ""; }, 4000);
}

// A countdown cell: its text is kept current by the ticker below.
function countdown(tag, untilMs) {
  const e = el(tag, "");
  e.dataset.until = String(untilMs);
  e.classList.add("countdown");
  tick(e);
  return e;
}

function tick(e) {
  e.textContent = span(Number(e.dataset.until) - Date.now());
}

setInterval(() => document.querySelectorAll(".countdown").forEach(tick), 1000);

// ---- Activity ----------------------------------------------------------------------------------

function filters() {
  const v = (id) => document.getElementById(id).value.trim().toLowerCase();
  return { session: v("f-session"), agent: v("f-agent"), event: v("f-event"), tool: v("f-tool"),
    file: v("f-file") };
}

function matches(ev, f) {
  const has = (value, want) => !want || String(value || "").toLowerCase().includes(want);
  return has(ev.session_id, f.session) && has(ev.agent, f.agent) && has(ev.event, f.event)
    && has(ev.tool_name, f.tool) && has(ev.file_path, f.file);
}

function eventRow(ev) {
  const detail = ev.decision ? ev.decision : (ev.summary || "");
  const tr = row([String(ev.id), clock(ev.ts_ms), short(ev.session_id), ev.agent, ev.event,
    ev.tool_name || "", ev.file_path || "", el("td", detail, ev.decision_kind || "")]);
  tr.dataset.id = String(ev.id);
  tr.title = detail;
  return tr;
}

function renderFeed() {
  const f = filters();
  const rows = [];
  for (let i = feed.length - 1; i >= 0; i--) {
    if (matches(feed[i], f)) rows.push(eventRow(feed[i]));
  }
  fill("feed", rows);
}

function addEvents(events) {
  for (const ev of events) {
    if (ev.id <= lastId) continue;
    feed.push(ev);
    lastId = ev.id;
  }
  if (feed.length > FEED_MAX) feed = feed.slice(feed.length - FEED_MAX);
  renderFeed();
}

function renderSessions(list) {
  fill("sessions", list.map((s) => row([short(s.session_id), s.agent,
    el("td", s.health, "health-" + s.health), s.model || "", num(s.events),
    clock(s.last_seen_ms), s.project_root || s.cwd || ""])));
}

// ---- Routing -----------------------------------------------------------------------------------

// `claude: est_tokens 15, type_match 0.95; model: refactor 0.55, edit 0.34, ...`: nulls left
// out, fractions to two places, a long list (the classifier's scores) cut to its top three.
function factorsText(f) {
  if (!f || typeof f !== "object") return "";
  const value = (v) => typeof v === "number" && !Number.isInteger(v) ? v.toFixed(2) : String(v);
  return Object.entries(f).map(([k, v]) => {
    if (!v || typeof v !== "object") return k + ": " + value(v);
    let entries = Object.entries(v).filter(([, x]) => x !== null && typeof x !== "object");
    if (entries.length > 6) {
      entries = entries.filter(([, x]) => typeof x === "number").sort((a, b) => b[1] - a[1]).slice(0, 3);
      entries.push(["…", ""]);
    }
    return k + ": " + entries.map(([n, x]) => (n + " " + value(x)).trim()).join(", ");
  }).join("; ");
}

function renderRoutes(routes) {
  fill("routes", routes.slice().reverse().map((r) => {
    const tr = row([String(r.id), clock(r.decided_ms), r.task, r.task_type + " / " + r.complexity,
      Number(r.score).toFixed(2) + " / " + Number(r.bar).toFixed(2), r.selected,
      factorsText(r.factors), (r.outcome || "pending") + (r.run_status ? " (" + r.run_status + ")" : "")]);
    tr.title = r.reason;
    return tr;
  }));
}

// ---- Rate limits -------------------------------------------------------------------------------

function renderRateLimits(rl) {
  const box = document.getElementById("gauges");
  const parts = [];
  for (const p of [rl.claude, rl.gemini]) {
    parts.push(el("h3", p.name));
    if (p.windows.length === 0) parts.push(el("p", "no figures yet", "note"));
    for (const w of p.windows) {
      const g = el("div", null, "gauge");
      g.dataset.provider = p.name.toLowerCase();
      const label = el("div", null, "label");
      const pct = w.used_pct === null ? "?" : w.used_pct.toFixed(0) + "%";
      label.append(el("span", w.label + " " + pct + " " + (w.official ? "official" : "estimated")
        + (w.detail ? " · " + w.detail : "")));
      const right = el("span", "");
      if (w.resets_at_ms) { right.append("resets in ", countdown("span", w.resets_at_ms)); }
      if (w.projected_out_ms) { right.append(" · runs out in ", countdown("span", w.projected_out_ms)); }
      label.append(right);
      const m = document.createElement("meter");
      m.min = 0; m.max = 100; m.low = 80; m.high = 95; m.optimum = 0;
      m.value = w.used_pct === null ? 0 : Math.min(100, w.used_pct);
      g.append(label, m);
      parts.push(g);
    }
    if (p.burn.tokens_per_minute !== undefined) {
      parts.push(el("p", "burn: " + Math.round(p.burn.tokens_per_minute).toLocaleString("en-US")
        + " tokens/min over " + p.burn.over, "note"));
    } else {
      parts.push(el("p", "today: " + p.burn.requests_today + " requests, "
        + Number(p.burn.tokens_today).toLocaleString("en-US") + " tokens ("
        + p.burn.requests_per_hour.toFixed(1) + " requests/h)", "note"));
    }
    if (p.exhausted) {
      const e = el("p", p.name + " rate-limited: " + p.exhausted.reason + " · resets in ", "block");
      e.append(countdown("span", p.exhausted.until_ms));
      parts.push(e);
    }
  }
  box.replaceChildren(...parts);
  const ex = document.getElementById("exhaustions");
  ex.replaceChildren(...(rl.exhaustions.length ? rl.exhaustions.map((e) =>
    el("li", e.provider + " at " + clock(e.since_ms) + ", until "
      + new Date(e.until_ms).toLocaleString("en-GB") + " (" + e.until_from + "): " + e.reason))
    : [el("li", "none recorded", "note")]));
}

// ---- Costs -------------------------------------------------------------------------------------

function costRows(id, lines, key, fmtKey) {
  fill(id, lines.map((l) => row([fmtKey ? fmtKey(l[key]) : l[key], num(l.input), num(l.output),
    num(l.cache_write), num(l.cache_read), num(l.total), usd(l.cost_usd)])));
}

function renderCosts(c) {
  document.getElementById("prices").textContent = "API list prices of " + c.prices_date
    + ", last " + c.days + " days, from transcript usage and Gemini runs";
  costRows("cost-provider", c.by_provider, "provider");
  costRows("cost-day", c.by_day.slice(0, 14), "day");
  costRows("cost-model", c.by_model, "model", (m) => m || "(unknown)");
  costRows("cost-session", c.by_session, "session_id", short);
  fill("gemini-runs", c.gemini_runs.map((r) => row([short(r.run_id), short(r.requester), r.status,
    num(r.requests), num(r.total), usd(r.cost_usd)])));
}

// ---- Reviews, plans, locks, problems -----------------------------------------------------------

async function post(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Harness-Token": TOKEN },
    body: JSON.stringify(body),
  });
  const answer = await res.json().catch(() => ({}));
  say(res.ok ? "done" : (answer.error || ("failed: " + res.status)));
  refreshSoon(0);
  return res.ok;
}

function renderReviews(reviews) {
  fill("reviews", reviews.map((r) => {
    const findings = (r.findings || []).map((f) =>
      (f.file ? f.file + ": " : "") + (f.problem || f.issue || JSON.stringify(f))).join(" | ");
    const action = el("td");
    if (r.open) {
      const b = el("button", "waive", "waive");
      b.dataset.session = r.session_id;
      b.addEventListener("click", () => post("/api/reviews/waive",
        { session_id: r.session_id, reason: "waived from the dashboard" }));
      action.append(b);
    }
    const tr = row([String(r.id), short(r.session_id), r.status,
      r.round + " of " + r.max_rounds, findings || r.summary || r.error || "", action]);
    tr.title = r.summary || "";
    return tr;
  }));
}

function renderPlans(plans) {
  const box = document.getElementById("plans");
  box.replaceChildren(...(plans.length ? plans.flatMap((p) => [
    el("div", clock(p.ts_ms) + " · session " + short(p.session_id), "note"),
    el("pre", p.plan, "plan")]) : [el("p", "no plan recorded", "note")]));
}

function renderLocks(locks) {
  fill("locks", locks.map((l) => {
    const b = el("button", "release", "release");
    b.dataset.path = l.path;
    b.addEventListener("click", () => post("/api/locks/release", { path: l.path, session_id: l.session_id }));
    const action = el("td");
    action.append(b);
    return row([l.path, short(l.session_id) + " " + l.agent + " (" + l.holder + ")",
      span(l.age_ms), l.live ? countdown("td", l.expires_ms) : el("td", "lapsed", "note"), action]);
  }));
}

function renderProblems(problems) {
  const ul = document.getElementById("problems");
  ul.replaceChildren(...(problems.length ? problems.slice().reverse().map((p) =>
    el("li", (p.ts_ms ? clock(p.ts_ms) + " " : "") + p.text))
    : [el("li", "none in the last day", "note")]));
}

// ---- Loading -----------------------------------------------------------------------------------

function render(s) {
  document.getElementById("summary").textContent = s.events.toLocaleString("en-US") + " events ("
    + s.events_last_hour + " in the last hour) · " + s.sessions + " sessions · "
    + s.live_sessions.length + " live";
  renderSessions(s.session_list);
  renderRoutes(s.routes);
  renderRateLimits(s.rate_limits);
  renderCosts(s.costs);
  renderReviews(s.reviews);
  renderPlans(s.plans);
  renderLocks(s.locks);
  renderProblems(s.recent_problems);
  document.body.dataset.loaded = "1";
}

async function refresh() {
  refreshTimer = null;
  snapshotAt = Date.now();
  const res = await fetch("/api/snapshot", { headers: { "X-Harness-Token": TOKEN } });
  if (!res.ok) { say("snapshot failed: " + res.status); return; }
  const s = await res.json();
  render(s);
  return s;
}

// The other panels follow changes at most every 2 s, however busy the store is.
function refreshSoon(delay) {
  if (refreshTimer !== null) return;
  const wait = delay !== undefined ? delay : Math.max(0, 2000 - (Date.now() - snapshotAt));
  refreshTimer = setTimeout(refresh, wait);
}

function connect() {
  const live = document.getElementById("live");
  const es = new EventSource("/api/stream?token=" + encodeURIComponent(TOKEN) + "&after=" + lastId);
  es.addEventListener("open", () => { live.textContent = "live"; live.classList.add("on"); });
  es.addEventListener("error", () => {
    live.classList.remove("on");
    // Closed for good (a restarted server has a new token): say so instead of "reconnecting".
    live.textContent = es.readyState === EventSource.CLOSED
      ? "disconnected: open the URL `harness dashboard` printed" : "reconnecting";
  });
  es.addEventListener("events", (m) => addEvents(JSON.parse(m.data)));
  es.addEventListener("changed", () => refreshSoon());
}

async function start() {
  for (const id of ["f-session", "f-agent", "f-event", "f-tool", "f-file"]) {
    document.getElementById(id).addEventListener("input", renderFeed);
  }
  const s = await refresh();
  if (s) {
    feed = s.activity;
    lastId = s.last_event_id;
    renderFeed();
  }
  connect();
}

start();
