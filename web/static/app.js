// pg_dispatch's web page.  Everything comes from dispatch-web's /api/v1 with the
// browser's login (HTTP Basic, the database role); /api/v1/events says what changed,
// and only what changed is fetched again: the joblist list, the open joblist, the
// followed job's new output, the nodes, the files of workspaces (rebuilds are joblists).
// Metric charts, alerts and files are also redrawn every CHART_MS (samples, alert
// evaluations and the changes watching agents report are not announced).  Text from the database is only ever set as
// textContent, never parsed as HTML.  The URL's hash (#joblist=7&job=12) says what
// is open.
"use strict";

const CHART_MS = 15000;
const state = { session: null, joblist: null, job: null, logOffset: 0, timers: {}, source: null, sourceJob: null,
                logJob: null };

// Returns the JSON of an API call; throws the API's error object ({sqlstate, message,
// detail, hint, line, column}) when the answer is not 2xx.
async function api(path, options = {}) {
  const response = await fetch(new URL(path, location.origin), options);
  const body = await response.json().catch(() => ({ message: response.statusText }));
  if (!response.ok) throw Object.assign(body, { status: response.status });
  return body;
}

// Returns a new element with attributes and children (strings become text nodes).
function el(tag, attrs = {}, ...children) {
  const svg = ["svg", "polyline", "line", "text"].includes(tag);
  const e = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag)
                : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") e.addEventListener("click", v);
    else if (k === "style") Object.assign(e.style, v);  // CSSOM: the CSP allows no style attributes
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// Returns a state's text in its colour.
function stateCell(s) {
  return el("span", { class: "state state-" + s, "data-state": s }, s);
}

// Formats a timestamp as local time, "" for none.
function when(t) {
  return t ? new Date(t).toLocaleString() : "";
}

// Runs fn at most once per delay ms however often it is asked to (events come in bursts).
function soon(name, fn, delay = 250) {
  if (state.timers[name]) return;
  state.timers[name] = setTimeout(() => { state.timers[name] = null; fn(); }, delay);
}

// Returns a stage progress bar per stage: succeeded, running, failed parts.
function progress(stages) {
  return el("div", { class: "progress" }, (stages || []).map((s) => {
    const part = (n, cls) => el("span", { class: cls, style: { width: `${(100 * n) / s.total}%` } });
    return el("div", { class: "stage", title: `${s.name}: ${s.succeeded}/${s.total} succeeded, ${s.running} running, ${s.failed} failed` },
      part(s.succeeded, "ok"), part(s.running, "run"), part(s.failed, "bad"),
      el("i", {}, `${s.name} ${s.succeeded}/${s.total}`));
  }));
}

// Whether the logged-in role may change what owner owns (cancel the joblists it
// submitted, rebuild the files of its workspaces).
function mayChange(owner) {
  const s = state.session;
  return s && s.user && !s.read_only && (s.admin || s.role === owner);
}

// Returns a button that POSTs body (as JSON, when given) to path and reports in where a
// refusal, and what done says once it was accepted (nothing when done is null).
function actionButton(label, path, where, body = undefined, done = null) {
  return el("button", { type: "button", onclick: async () => {
    try {
      await api(path, { method: "POST", headers: { "Content-Type": "application/json" },
                        body: body === undefined ? undefined : JSON.stringify(body) });
      if (done) where.replaceChildren(done);
    } catch (e) { where.replaceChildren(el("span", { class: "error" }, e.message)); }
  } }, label);
}

// Redraws the joblist list (queued and running first, then the latest others).
async function loadJoblists() {
  const [active, recent] = await Promise.all([
    api("/api/v1/joblists?state=queued,running&limit=200"),
    api("/api/v1/joblists?limit=50")]);
  const seen = new Set(active.map((l) => l.joblist_id));
  const rows = active.concat(recent.filter((l) => !seen.has(l.joblist_id))).map((l) =>
    el("tr", { class: "selectable" + (l.joblist_id === state.joblist ? " selected" : ""),
               "data-joblist-id": l.joblist_id, onclick: () => show(l.joblist_id, null) },
      el("td", {}, String(l.joblist_id)), el("td", {}, l.name), el("td", {}, stateCell(l.state)),
      el("td", {}, l.submitted_by), el("td", {}, progress(l.stages)), el("td", {}, when(l.submitted_at))));
  document.getElementById("joblist-rows").replaceChildren(...rows);
}

// Hook for the data-flow graph: when jobs name the jobs they come after ("after", added
// by the data-flow work to job_status), draws them as layers of boxes with edges.
// Until then no job has "after" and the graph stays hidden.
function renderGraph(container, jobs) {
  const byName = new Map(jobs.map((j) => [j.name, j]));
  if (!jobs.some((j) => Array.isArray(j.after) && j.after.length)) { container.hidden = true; return; }
  const depth = new Map();
  const level = (j, seen = new Set()) => {
    if (depth.has(j.name)) return depth.get(j.name);
    if (seen.has(j.name)) return 0;                      // a cycle: draw it flat
    seen.add(j.name);
    const d = Math.max(-1, ...(j.after || []).map((a) => byName.has(a) ? level(byName.get(a), seen) : -1)) + 1;
    depth.set(j.name, d);
    return d;
  };
  jobs.forEach((j) => level(j));
  const rows = [];
  jobs.forEach((j) => { const d = depth.get(j.name); (rows[d] = rows[d] || []).push(j); });
  const pos = new Map();
  rows.forEach((row, d) => row.forEach((j, i) => pos.set(j.name, [20 + d * 160, 20 + i * 40])));
  const svg = el("svg", { width: 40 + rows.length * 160, height: 40 + Math.max(...rows.map((r) => r.length)) * 40 });
  jobs.forEach((j) => (j.after || []).forEach((a) => {
    if (!pos.has(a)) return;
    const [x1, y1] = pos.get(a), [x2, y2] = pos.get(j.name);
    svg.append(el("line", { x1: x1 + 120, y1: y1, x2: x2, y2: y2, stroke: "#999" }));
  }));
  jobs.forEach((j) => {
    const [x, y] = pos.get(j.name);
    svg.append(el("text", { x, y: y + 4, class: "state-" + j.state, fill: "currentColor" }, j.name));
  });
  container.replaceChildren(svg);
  container.hidden = false;
}

// Redraws the open joblist: its stages, jobs, and the cancel button when allowed.
async function loadDetail() {
  const section = document.getElementById("detail");
  if (state.joblist === null) { section.hidden = true; return; }
  let l;
  try { l = await api(`/api/v1/joblists/${state.joblist}`); }
  catch (e) { section.hidden = false; document.getElementById("detail-title").textContent = e.message; return; }
  section.hidden = false;
  document.getElementById("detail-title").replaceChildren(
    `Joblist ${l.joblist_id} ${l.name} `, stateCell(l.state));
  document.getElementById("detail-reason").textContent = l.reason || "";
  const actions = document.getElementById("detail-actions");
  actions.replaceChildren(progress(l.stages));
  if (mayChange(l.submitted_by) && ["queued", "running"].includes(l.state))
    actions.append(actionButton("Cancel joblist", `/api/v1/joblists/${l.joblist_id}/cancel`, actions));
  renderGraph(document.getElementById("graph"), l.jobs);
  document.getElementById("job-rows").replaceChildren(...l.jobs.map((j) =>
    el("tr", { class: "selectable" + (j.job_id === state.job ? " selected" : ""), "data-job-id": j.job_id,
               onclick: () => show(state.joblist, j.job_id) },
      el("td", {}, String(j.job_id)), el("td", {}, j.stage), el("td", {}, j.name),
      el("td", {}, stateCell(j.state)), el("td", {}, j.node || ""),
      el("td", {}, j.resources ? Object.entries(j.resources).map(([t, v]) => `${t}=${v}`).join(" ") : ""),
      el("td", {}, j.reason || ""), el("td", {}, j.exit_code === null ? "" : `exit ${j.exit_code}`))));
}

// Appends the followed job's output that is new since the last read.
async function loadLog() {
  const section = document.getElementById("log");
  if (state.job === null) { section.hidden = true; return; }
  section.hidden = false;
  document.getElementById("log-title").textContent = `Output of job ${state.job}`;
  const pre = document.getElementById("log-text");
  try {
    for (;;) {
      const chunk = await api(`/api/v1/jobs/${state.job}/log?offset=${state.logOffset}`);
      if (chunk.job_id !== state.job) return;
      if (chunk.length < state.logOffset) {        // a new attempt: its output starts over
        pre.replaceChildren();
        state.logOffset = 0;
        continue;
      }
      if (state.logJob !== state.job) {            // readable: follow its output from now on
        state.logJob = state.job;
        if (state.source) listen();
      }
      pre.append(chunk.data);
      state.logOffset += chunk.data.length;
      if (chunk.data.length === 0 || state.logOffset >= chunk.length) break;
    }
  } catch (e) { pre.replaceChildren(el("span", { class: "error" }, e.message)); }
  pre.scrollTop = pre.scrollHeight;
}

// Opens a joblist (and a job's log) and records it in the URL's hash.
function show(joblist, job) {
  if (job !== state.job) { state.logOffset = 0; document.getElementById("log-text").replaceChildren(); }
  state.joblist = joblist;
  state.job = job;
  history.replaceState(null, "", "#" + new URLSearchParams(
    Object.entries({ joblist, job }).filter(([, v]) => v !== null)).toString());
  loadJoblists(); loadDetail(); loadLog();
  if (state.source && state.sourceJob !== null && state.job !== state.sourceJob) listen();
}

// Returns the resource board of one node: a square per unit (coloured by the job
// holding it), a bar per amount resource.
function board(resources) {
  const types = new Map();
  for (const r of resources) (types.get(r.type) || types.set(r.type, []).get(r.type)).push(r);
  return el("div", { class: "board" }, [...types].map(([type, rs]) => {
    if (rs.some((r) => r.capacity > 1)) {
      const cap = rs[0].capacity, used = rs.reduce((n, r) => n + (r.job_id ? r.amount : 0), 0);
      return el("div", {}, el("div", { class: "type" }, `${type} ${used}/${cap}`),
        el("div", { class: "amount", title: `${type}: ${used} of ${cap} in use` },
          el("span", { style: { width: `${(100 * used) / cap}%` } })));
    }
    const units = new Map();
    for (const r of rs) if (!units.has(r.ident) || r.job_id) units.set(r.ident, r);
    return el("div", {}, el("div", { class: "type" }, type),
      el("div", { class: "units" }, [...units.values()].map((r) => el("div", {
        class: "unit", "data-busy": r.job_id ? "yes" : "no",
        title: `${type} ${r.ident}` + (r.job_id ? `: job ${r.job_id}` : ": free"),
        style: r.job_id ? { background: `hsl(${(r.job_id * 47) % 360},60%,55%)` } : {} }))));
  }));
}

// Returns an SVG line chart of points [[epoch, avg, min, max], ...] scaled by f.
function chart(title, points, f, max) {
  const w = 200, h = 50, t0 = points.length ? points[0][0] : 0;
  const t1 = points.length ? points[points.length - 1][0] : 1;
  const ys = points.map((p) => f(p[1]));
  const top = max || Math.max(1, ...ys);
  const line = points.map((p, i) => `${((p[0] - t0) / Math.max(1, t1 - t0)) * w},${h - (ys[i] / top) * h}`).join(" ");
  const last = ys.length ? ys[ys.length - 1].toFixed(1) : "-";
  return el("div", { class: "chart" }, `${title} ${last}`,
    el("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}` }, el("polyline", { points: line })));
}

// Returns the charts of a node: cpu, memory, fullest disk, hottest sensor, load.
async function charts(node) {
  const latest = (await api(`/api/v1/nodes/${encodeURIComponent(node)}/metrics`)).metrics;
  const names = Object.keys(latest);
  const fs = names.find((n) => /^fs\..*\.used$/.test(n) && latest[n.replace(/used$/, "size")]);
  const temp = names.find((n) => n.startsWith("temp."));
  const want = [["cpu % (user)", "cpu.user", (v) => v, 100],
    ["memory %", "mem.used", (v) => (100 * v) / latest["mem.total"], 100],
    fs && ["disk % " + fs.slice(3, -5), fs, (v) => (100 * v) / latest[fs.replace(/used$/, "size")], 100],
    temp && ["°C " + temp.slice(5), temp, (v) => v, 0],
    ["load", "load.1", (v) => v, 0]].filter((c) => c && c[1] in latest);
  const series = await Promise.all(want.map(([, m]) =>
    api(`/api/v1/nodes/${encodeURIComponent(node)}/series?metric=${encodeURIComponent(m)}&since=30%20minutes`)));
  return el("div", { class: "charts" }, want.map(([title, , f, max], i) => chart(title, series[i].points, f, max)));
}

// Redraws the nodes: state, load, resource board; charts too when withCharts.
async function loadNodes(withCharts) {
  const [nodes, resources] = await Promise.all([api("/api/v1/nodes"), api("/api/v1/resources")]);
  const list = document.getElementById("node-list");
  const old = new Map([...list.children].map((c) => [c.dataset.node, c.querySelector(".charts")]));
  const cards = await Promise.all(nodes.concat([{ node: null }]).map(async (n) => {
    const rs = resources.filter((r) => r.node === n.node);
    if (n.node === null && rs.length === 0) return null;
    const card = el("div", { class: "node", "data-node": n.node || "" },
      el("header", {}, el("b", {}, n.node || "cluster-wide"), n.state ? stateCell(n.state) : "",
        n.node ? el("span", { class: "muted" }, `${n.running_jobs} running · cpu ${n.cpu_pct ?? "-"}% · mem ${n.mem_pct ?? "-"}% · load ${n.load1 ?? "-"}`) : ""),
      board(rs));
    if (n.node && (withCharts || !old.get(n.node))) card.append(await charts(n.node).catch(() => ""));
    else if (old.get(n.node)) card.append(old.get(n.node));
    return card;
  }));
  list.replaceChildren(...cards.filter(Boolean));
}

// Redraws the files of the workspaces (the section is hidden while there are none), with
// a Rebuild button for each file a rule makes in a workspace the role may change.
async function loadArtefacts() {
  const files = await api("/api/v1/artefacts?limit=1000");
  const result = document.getElementById("artefact-result");
  document.getElementById("artefacts").hidden = files.length === 0;
  document.getElementById("artefact-rows").replaceChildren(...files.map((a) =>
    el("tr", { "data-workspace": a.workspace, "data-path": a.path },
      el("td", {}, a.workspace), el("td", {}, a.path), el("td", {}, stateCell(a.state)),
      el("td", {}, a.rule || ""), el("td", {}, a.reason || ""),
      el("td", { class: "built-in" }, a.built_in === null ? "" : String(a.built_in)),
      el("td", {}, a.rule && mayChange(a.owner)
        ? actionButton("Rebuild", "/api/v1/artefacts/build", result, { workspace: a.workspace, path: a.path },
                       `Requested a rebuild of ${a.path} in workspace ${a.workspace}.`)
        : ""))));
}

// Redraws the alerts now and their history.
async function loadAlerts() {
  const [now, past] = await Promise.all([api("/api/v1/alerts"), api("/api/v1/alerts/history?limit=20")]);
  document.getElementById("alert-rows").replaceChildren(...now.map((a) => el("tr", {},
    el("td", {}, a.rule), el("td", {}, a.node), el("td", {}, stateCell(a.state)), el("td", {}, a.severity),
    el("td", {}, String(a.value)), el("td", {}, when(a.since)))));
  document.getElementById("alert-history").replaceChildren(...past.map((e) => el("tr", {},
    el("td", {}, when(e.at)), el("td", {}, e.rule), el("td", {}, e.node), el("td", {}, stateCell(e.event)),
    el("td", {}, String(e.value)))));
}

// Submits the pasted YAML (or JSON) joblist and opens it, or shows the error and where.
async function submit() {
  const out = document.getElementById("submit-result");
  try {
    const r = await api("/api/v1/joblists", { method: "POST", headers: { "Content-Type": "application/yaml" },
                                              body: document.getElementById("spec").value });
    out.replaceChildren(`Submitted joblist ${r.joblist_id}.`);
    show(r.joblist_id, null);
  } catch (e) {
    out.replaceChildren(el("div", { class: "error" }, [e.message, e.detail, e.hint,
      e.line ? `at line ${e.line}, column ${e.column}` : null].filter(Boolean).join("\n")));
  }
}

// Follows /api/v1/events (and, once its log could be read, the output of the job
// shown: ?follow=): each event refetches only what it concerns.  Opened again when
// the job followed changes.
function listen() {
  const live = document.getElementById("live");
  const url = new URL("/api/v1/events", location.origin);
  if (state.job !== null && state.logJob === state.job) url.searchParams.set("follow", state.job);
  if (state.source) state.source.close();
  const source = state.source = new EventSource(url);
  state.sourceJob = url.searchParams.has("follow") ? state.job : null;
  const all = () => { soon("joblists", loadJoblists); soon("detail", loadDetail); soon("log", loadLog); soon("nodes", () => loadNodes(false)); soon("artefacts", loadArtefacts); };
  source.addEventListener("hello", () => { live.textContent = "live"; live.dataset.live = "yes"; all(); });
  source.addEventListener("resync", all);
  source.addEventListener("joblist", (ev) => {
    soon("joblists", loadJoblists);
    soon("artefacts", loadArtefacts);
    if (JSON.parse(ev.data).joblist_id === state.joblist) soon("detail", loadDetail);
  });
  source.addEventListener("jobs", (ev) => {
    const d = JSON.parse(ev.data);
    soon("joblists", loadJoblists);
    soon("nodes", () => loadNodes(false));
    soon("artefacts", loadArtefacts);
    if (d.more || d.jobs.some((j) => j[1] === state.joblist)) soon("detail", loadDetail);
    if (d.jobs.some((j) => j[0] === state.job)) soon("log", loadLog);
  });
  source.addEventListener("output", (ev) => {
    if (JSON.parse(ev.data).job_id === state.job) soon("log", loadLog, 100);
  });
  source.addEventListener("node", () => soon("nodes", () => loadNodes(false)));
  source.onerror = () => { live.textContent = "reconnecting"; live.dataset.live = "no"; };
}

// Starts the page: who am I, what is open, then everything live.
async function start() {
  state.session = await api("/api/v1/session");
  const s = state.session;
  document.getElementById("who").textContent = `${s.role}${s.admin ? " (admin)" : ""}${s.read_only ? " · read-only" : ""}`;
  document.getElementById("submit").hidden = !(s.user && !s.read_only);
  document.getElementById("submit-button").addEventListener("click", submit);
  const hash = new URLSearchParams(location.hash.slice(1));
  const num = (k) => (hash.get(k) && /^\d+$/.test(hash.get(k)) ? Number(hash.get(k)) : null);
  show(num("joblist"), num("job"));
  loadNodes(true); loadAlerts(); loadArtefacts();
  setInterval(() => { loadNodes(true); loadAlerts(); loadArtefacts(); }, CHART_MS);
  listen();
}

start().catch((e) => document.body.prepend(el("p", { class: "error" }, `Could not start: ${e.message}`)));
