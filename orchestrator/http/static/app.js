// The workflow view: sign in once with a token (exchanged for an HttpOnly session cookie), list runs with
// filters and paging, draw the selected run's DAG and keep it current from the event stream, show its audit
// trail; operators also cancel, resume and re-drive dead letters. Every state change sends the session's
// CSRF token. All text goes in through textContent: nothing from the API is parsed as HTML.

import { drawDag, formatDuration } from "./dag.js";

const PAGE_SIZE = 20;
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const RUN_EVENTS = [
  "workflow.started", "workflow.completed", "workflow.failed", "workflow.cancelled", "workflow.resumed",
  "workflow.step.started", "workflow.step.completed", "workflow.step.failed", "workflow.step.retrying",
  "workflow.step.skipped", "workflow.step.denied", "task.completed", "task.failed", "dlq.added",
];
const LIST_EVENTS = RUN_EVENTS.slice(0, 5);
const FALLBACK_POLL_MS = 5000;

const state = {
  session: null, offset: 0, total: 0, runId: null, run: null,
  runStream: null, listStream: null, refreshTimer: null, listTimer: null, pollTimer: null,
};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.session) headers["X-CSRF-Token"] = state.session.csrf_token;
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = (response.headers.get("content-type") || "").includes("json") ? await response.json() : null;
  if (!response.ok) {
    const error = new ApiError(data?.error_code || `HTTP_${response.status}`, data?.error_message || response.statusText, response.status);
    if (response.status === 401 && path !== "/api/session") signedOut("Your session ended: sign in again.");
    throw error;
  }
  return data;
}

function toast(message, isError = false) {
  const box = $("toast");
  box.textContent = message;
  box.classList.toggle("error", isError);
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

function fail(error) {
  toast(error instanceof ApiError ? `${error.code}: ${error.message}` : String(error), true);
}

const canOperate = () => ["operator", "admin"].includes(state.session?.role);
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
const SHORT = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" };
const shortWhen = (iso) => (iso ? new Date(iso).toLocaleString([], SHORT) : "");

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text ?? "";
  if (className) td.className = className;
  return td;
}

function badge(status) {
  const span = document.createElement("span");
  span.className = `badge status-${status}`;
  span.textContent = status;
  return span;
}

// -- session -------------------------------------------------------------------------------------------
async function start() {
  $("login-form").addEventListener("submit", signIn);
  $("logout").addEventListener("click", signOut);
  $("filters").addEventListener("change", () => { state.offset = 0; loadRuns(); });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); loadRuns(); });
  $("next").addEventListener("click", () => { state.offset += PAGE_SIZE; loadRuns(); });
  $("cancel-run").addEventListener("click", () => act("cancel"));
  $("resume-run").addEventListener("click", () => act("resume"));
  window.addEventListener("hashchange", route);
  try {
    signedIn(await api("GET", "/api/session"));
  } catch {
    signedOut("");
  }
}

async function signIn(event) {
  event.preventDefault();
  const input = $("token");
  $("login-error").textContent = "";
  try {
    const session = await api("POST", "/api/session", { token: input.value.trim() });
    input.value = "";
    signedIn(session);
  } catch (error) {
    $("login-error").textContent = error instanceof ApiError ? `${error.code}: ${error.message}` : String(error);
  }
}

async function signOut() {
  try { await api("DELETE", "/api/session"); } catch { /* already gone */ }
  signedOut("Signed out.");
}

function signedIn(session) {
  state.session = session;
  $("who-name").textContent = `${session.principal} (${session.role})`;
  $("who").hidden = false;
  $("tabs").hidden = false;
  $("login-view").hidden = true;
  document.body.dataset.role = session.role;
  loadTemplates();
  route();
}

function signedOut(message) {
  state.session = null;
  closeStreams();
  for (const id of ["who", "tabs", "runs-view", "dlq-view"]) $(id).hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = message;
  $("token").focus();
}

function closeStreams() {
  for (const name of ["runStream", "listStream"]) {
    if (state[name]) state[name].close();
    state[name] = null;
  }
  clearInterval(state.pollTimer);
}

// -- routing -------------------------------------------------------------------------------------------
function route() {
  if (!state.session) return;
  const [, tab = "runs", id] = location.hash.split("/");
  for (const link of document.querySelectorAll("#tabs a")) link.classList.toggle("active", link.dataset.tab === tab);
  $("runs-view").hidden = tab !== "runs";
  $("dlq-view").hidden = tab !== "dlq";
  if (tab === "dlq") {
    loadDeadLetters();
    return;
  }
  if (!state.listStream) watchList();
  loadRuns();
  openRun(id ? decodeURIComponent(id) : null);
}

// -- runs list -----------------------------------------------------------------------------------------
async function loadTemplates() {
  try {
    const data = await api("GET", "/api/templates");
    const select = $("f-template");
    const chosen = select.value;
    select.replaceChildren(new Option("any", ""));
    for (const template of data.templates) select.append(new Option(template.template_id, template.template_id));
    select.value = chosen;
  } catch (error) { fail(error); }
}

function listQuery() {
  const params = new URLSearchParams({ offset: state.offset, limit: PAGE_SIZE });
  if ($("f-status").value) params.set("status", $("f-status").value);
  if ($("f-template").value) params.set("template_id", $("f-template").value);
  const seconds = Number($("f-since").value);
  if (seconds) params.set("since", new Date(Date.now() - seconds * 1000).toISOString());
  return params;
}

async function loadRuns() {
  let page;
  try { page = await api("GET", `/api/workflows?${listQuery()}`); } catch (error) { fail(error); return; }
  state.total = page.total;
  const body = $("runs-table").tBodies[0];
  body.replaceChildren();
  for (const run of page.items) {
    const row = body.insertRow();
    row.dataset.runId = run.run_id;
    row.classList.toggle("selected", run.run_id === state.runId);
    const link = document.createElement("a");
    link.href = `#/runs/${encodeURIComponent(run.run_id)}`;
    link.textContent = run.run_id;
    row.insertCell().append(link);
    cell(row, run.template_id || run.name);
    row.insertCell().append(badge(run.status));
    cell(row, `${run.steps_completed.length}/${run.steps.length}`, "num");
    cell(row, shortWhen(run.created_at), "nowrap");
  }
  if (!page.items.length) cell(body.insertRow(), "No runs match.", "muted").colSpan = 5;
  const last = Math.min(state.offset + PAGE_SIZE, state.total);
  $("page-info").textContent = state.total ? `${state.offset + 1}–${last} of ${state.total}` : "";
  $("prev").disabled = state.offset === 0;
  $("next").disabled = last >= state.total;
}

function watchList() {
  const stream = new EventSource(`/api/events?types=${LIST_EVENTS.join(",")}`);
  const refresh = () => { clearTimeout(state.listTimer); state.listTimer = setTimeout(loadRuns, 300); };
  for (const type of LIST_EVENTS) stream.addEventListener(type, refresh);
  state.listStream = stream;
}

// -- one run -------------------------------------------------------------------------------------------
async function openRun(runId) {
  if (runId !== state.runId) {
    if (state.runStream) state.runStream.close();
    state.runStream = null;
    clearInterval(state.pollTimer);
    state.runId = runId;
  }
  $("run-detail").hidden = !runId;
  $("run-empty").hidden = Boolean(runId);
  for (const row of $("runs-table").tBodies[0].rows) row.classList.toggle("selected", row.dataset.runId === runId);
  if (!runId) return;
  await refreshRun();
  if (!state.runStream) watchRun(runId);
}

function watchRun(runId) {
  const stream = new EventSource(`/api/events?run_id=${encodeURIComponent(runId)}`);
  const live = $("live");
  stream.onopen = () => { live.textContent = "live"; live.className = "live on"; scheduleRefresh(); };
  stream.onerror = () => { live.textContent = "reconnecting"; live.className = "live off"; };
  for (const type of RUN_EVENTS) stream.addEventListener(type, scheduleRefresh);
  state.runStream = stream;
  // A safety net for event types this page does not know yet: re-read an unfinished run now and then.
  state.pollTimer = setInterval(() => {
    if (state.run && !TERMINAL.has(state.run.status)) scheduleRefresh();
  }, FALLBACK_POLL_MS);
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refreshRun, 150);
}

async function refreshRun() {
  const runId = state.runId;
  if (!runId) return;
  let run;
  let audit;
  try {
    [run, audit] = await Promise.all([
      api("GET", `/api/workflows/${encodeURIComponent(runId)}`),
      api("GET", `/api/audit?run_id=${encodeURIComponent(runId)}&limit=30`),
    ]);
  } catch (error) { fail(error); return; }
  if (runId !== state.runId) return;
  state.run = run;
  renderRun(run);
  renderAudit(audit.entries);
  updateListRow(run);
}

// The list refreshes on run-level events; the open run's row follows its step events too.
function updateListRow(run) {
  const row = [...$("runs-table").tBodies[0].rows].find((r) => r.dataset.runId === run.run_id);
  if (!row) return;
  row.cells[2].replaceChildren(badge(run.status));
  row.cells[3].textContent = `${run.steps_completed.length}/${run.steps.length}`;
}

function renderRun(run) {
  $("run-title").textContent = `${run.name} · ${run.run_id}`;
  const status = $("run-status");
  status.textContent = run.status;
  status.className = `badge status-${run.status}`;
  status.dataset.status = run.status;
  const params = Object.entries(run.parameters || {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ");
  $("run-meta").textContent = [
    `by ${run.created_by}`, `created ${when(run.created_at)}`,
    run.finished_at ? `finished ${when(run.finished_at)}` : null,
    `priority ${run.priority}`, run.generation ? `generation ${run.generation}` : null,
    params ? `parameters ${params}` : null,
  ].filter(Boolean).join(" · ");
  $("run-error").textContent = run.error ? `${run.error.code}: ${run.error.message}` : "";
  $("cancel-run").hidden = !canOperate() || TERMINAL.has(run.status);
  $("resume-run").hidden = !canOperate() || !["failed", "cancelled"].includes(run.status);
  drawDag($("dag"), run.steps);
  const body = $("steps-table").tBodies[0];
  body.replaceChildren();
  for (const step of run.steps) {
    const row = body.insertRow();
    row.dataset.stepId = step.step_id;
    row.dataset.status = step.status;
    cell(row, step.step_id);
    cell(row, step.agent_id);
    cell(row, step.action);
    row.insertCell().append(badge(step.status));
    cell(row, step.attempts, "num");
    cell(row, formatDuration(step.duration_ms), "num");
    cell(row, step.error ? `${step.error.code}: ${step.error.message}` : "", "error");
  }
}

function renderAudit(entries) {
  const body = $("audit-table").tBodies[0];
  body.replaceChildren();
  for (const entry of entries) {
    const row = body.insertRow();
    cell(row, when(entry.timestamp));
    cell(row, entry.event_type);
    cell(row, entry.actor);
    cell(row, entry.target);
    cell(row, entry.result, entry.result === "success" ? "" : "error");
  }
  if (!entries.length) cell(body.insertRow(), "No audit entries yet.", "muted").colSpan = 5;
}

async function act(verb) {
  const runId = state.runId;
  const button = $(`${verb}-run`);
  button.disabled = true;
  try {
    const run = await api("POST", `/api/workflows/${encodeURIComponent(runId)}/${verb}`);
    toast(`${verb === "cancel" ? "Cancelled" : "Resumed"} ${runId}: ${run.status}`);
    await refreshRun();
    loadRuns();
  } catch (error) { fail(error); } finally { button.disabled = false; }
}

// -- dead letters --------------------------------------------------------------------------------------
async function loadDeadLetters() {
  const body = $("dlq-table").tBodies[0];
  body.replaceChildren();
  $("dlq-note").textContent = "";
  let data;
  try {
    data = await api("GET", "/api/dlq?limit=100");
  } catch (error) {
    $("dlq-note").textContent = error.status === 403
      ? "Dead letters are visible to operators and admins." : `${error.code}: ${error.message}`;
    return;
  }
  for (const entry of data.entries) {
    const row = body.insertRow();
    row.dataset.dlqId = entry.dlq_id;
    cell(row, entry.dlq_id);
    cell(row, entry.reason);
    const runCell = row.insertCell();
    if (entry.run_id) {
      const link = document.createElement("a");
      link.href = `#/runs/${encodeURIComponent(entry.run_id)}`;
      link.textContent = entry.run_id;
      runCell.append(link);
    }
    cell(row, entry.step_id);
    cell(row, entry.action);
    cell(row, entry.error ? `${entry.error.code || ""} ${entry.error.message || ""}` : "", "error");
    cell(row, when(entry.at));
    const actions = row.insertCell();
    if (canOperate()) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Re-drive";
      button.addEventListener("click", () => redrive(entry.dlq_id, button));
      actions.append(button);
    }
  }
  if (!data.entries.length) $("dlq-note").textContent = "No dead letters.";
}

async function redrive(dlqId, button) {
  button.disabled = true;
  try {
    const outcome = await api("POST", `/api/dlq/${encodeURIComponent(dlqId)}/redrive`);
    toast(`Re-driven ${dlqId}: run ${outcome.run_id} (${outcome.status})`);
    button.textContent = "Re-driven";
  } catch (error) {
    fail(error);
    button.disabled = false;
  }
}

start();
