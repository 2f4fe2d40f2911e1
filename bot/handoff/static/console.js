// Agent console: live queue over WebSocket, one ticket at a time, every write with a CSRF token.
"use strict";

const state = { me: null, csrf: "", ticket: null, ws: null, snapshotAt: 0, rows: [] };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { "X-CSRF-Token": state.csrf };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (resp.status === 401) { window.location.assign("/agent/login"); throw new Error("login_required"); }
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.error || `HTTP ${resp.status}`);
  return data;
}

function fmtWait(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

const REASONS = { complaint: "投诉 complaint", lockout: "锁定 lockout", customer_request: "转人工 request",
  misunderstanding: "未理解 misunderstood", agent: "坐席接入 takeover" };

function renderQueue() {
  const body = $("queue").querySelector("tbody");
  body.replaceChildren();
  const elapsed = (Date.now() - state.snapshotAt) / 1000;
  for (const t of state.rows) {
    const waited = t.state === "waiting" ? t.waited_s + elapsed : t.waited_s;
    const open = el("button", { type: "button", class: "open", textContent: t.state === "waiting" ? "Open" : "View" });
    open.addEventListener("click", () => openTicket(t.id));
    const tr = el("tr", { class: `prio-${t.priority} ${t.state}${state.ticket && state.ticket.id === t.id ? " selected" : ""}`,
      "data-ticket": String(t.id) },
      el("td", {}, t.id), el("td", {}, REASONS[t.reason] || t.reason), el("td", {}, `${t.channel} · ${t.lang}`),
      el("td", { class: "waited" }, fmtWait(waited)),
      el("td", {}, t.state === "assigned" ? (t.mine ? "mine" : t.agent) : "waiting"), el("td", {}, open));
    body.append(tr);
  }
  $("queue-empty").hidden = state.rows.length > 0;
}

function onQueue(snap) {
  state.rows = snap.tickets;
  state.snapshotAt = Date.now();
  $("waiting-count").textContent = snap.waiting;
  $("alerts").replaceChildren(...(snap.alerts || []).map((a) => el("li", { class: "alert" },
    a.kind === "waiting" ? `SLA: ticket #${a.ticket_id} has waited ${a.minutes} min for an agent`
                         : `SLA: complaint ticket #${a.ticket_id} has no first answer after ${a.minutes} min`)));
  $("online-count").textContent = `${snap.online} agent(s) online`;
  renderQueue();
  if (state.ticket) {
    const row = snap.tickets.find((t) => t.id === state.ticket.id);
    if (row && row.state !== state.ticket.state) openTicket(state.ticket.id);
  }
}

function connect() {
  const proto = window.location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${window.location.host}/agent/ws`);
  state.ws = ws;
  ws.addEventListener("open", () => {
    $("live-state").textContent = "live"; $("live-state").className = "live on";
    if (state.ticket) ws.send(JSON.stringify({ type: "watch", ticket_id: state.ticket.id }));
  });
  ws.addEventListener("message", (ev) => {
    const data = JSON.parse(ev.data);
    if (data.type === "queue") onQueue(data);
    else if (data.type === "message" && state.ticket && data.ticket_id === state.ticket.id) addMessage(data.message);
    else if (data.type === "delivery_failed" && state.ticket && data.ticket_id === state.ticket.id)
      $("ticket-error").textContent = "Delivery to the customer failed; it will not be retried automatically.";
  });
  ws.addEventListener("close", () => {
    $("live-state").textContent = "offline"; $("live-state").className = "live off";
    setTimeout(connect, 1500);
  });
}

function addMessage(m) {
  const list = $("messages");
  if (list.querySelector(`[data-id="${m.id}"]`)) return;
  const who = m.kind === "customer" ? "客户 customer" : m.kind === "note" ? `note · ${m.author}` : m.kind === "agent" ? m.author : "";
  const text = m.kind === "system" ? `${m.author || ""} ${m.text}` : m.text;
  list.append(el("li", { class: m.kind, "data-id": String(m.id) },
    who ? el("b", {}, `${who}: `) : "", text));
  list.scrollTop = list.scrollHeight;
}

async function openTicket(id) {
  $("ticket-error").textContent = "";
  let t;
  try { t = await api(`/agent/api/tickets/${id}`); }
  catch (e) { $("ticket-error").textContent = e.message; return; }
  state.ticket = t;
  $("ticket").hidden = false;
  $("ticket-id").textContent = `#${t.id}`;
  $("ticket-meta").textContent = `${REASONS[t.reason] || t.reason} · ${t.channel} · ${t.lang} · intent ${t.intent || "—"} · ${t.state}${t.agent ? " · " + t.agent : ""}`;
  const s = t.summary || {};
  $("summary").replaceChildren(...(t.summary
    ? [["Name", s.name], ["Phone", s.phone], ["ID", s.id_number], ["Card", `${s.bank || ""} ${s.bank_card || ""}`],
       ["Risk", s.risk_tolerance], ["Verified", s.verified ? "yes" : "no"]].map(([k, v]) => el("span", {}, el("b", {}, `${k}: `), v))
    : [el("span", { class: "muted" }, "Customer not linked: no platform profile.")]));
  $("entities").textContent = Object.keys(t.entities || {}).length ? `Entities: ${JSON.stringify(t.entities)}` : "";
  $("transcript").replaceChildren(...t.transcript.map((l) => el("li", { class: l.role }, el("b", {}, `${l.role}: `), l.text)));
  $("messages").replaceChildren();
  t.messages.forEach(addMessage);
  const mine = t.state === "assigned" && t.mine;
  $("claim").hidden = t.state !== "waiting";
  for (const id of ["send-reply", "transfer", "transfer-to", "resolve"]) $(id).disabled = !mine && !(state.me.role === "supervisor" && t.state === "assigned" && id !== "send-reply");
  $("return").disabled = !(t.state === "waiting" || mine || (state.me.role === "supervisor" && t.state === "assigned"));
  $("send-note").disabled = !["waiting", "assigned"].includes(t.state);
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ type: "watch", ticket_id: t.id }));
  loadCanned(t.lang);
  loadAgents();
  renderQueue();
}

async function loadCanned(lang) {
  const items = await api(`/agent/api/canned?lang=${encodeURIComponent(lang)}`).catch(() => []);
  $("canned").replaceChildren(el("option", { value: "" }, "Canned answers (FAQ)…"),
    ...items.map((i) => el("option", { value: i.text }, i.title)));
}

async function loadAgents() {
  const items = await api("/agent/api/agents").catch(() => []);
  $("transfer-to").replaceChildren(el("option", { value: "" }, "Transfer to…"),
    ...items.map((a) => el("option", { value: a.username }, `${a.username}${a.online ? " ●" : ""}`)));
}

async function loadRecent() {
  const items = await api("/agent/api/conversations").catch(() => []);
  const body = $("recent").querySelector("tbody");
  body.replaceChildren(...items.map((c) => {
    const btn = el("button", { type: "button", textContent: c.ticket ? `Ticket #${c.ticket}` : "Take over" });
    btn.addEventListener("click", async () => {
      if (c.ticket) return openTicket(c.ticket);
      try { const t = await api(`/agent/api/conversations/${c.id}/takeover`, { method: "POST", body: {} }); openTicket(t.id); loadRecent(); }
      catch (e) { $("ticket-error").textContent = e.message; }
    });
    return el("tr", {}, el("td", {}, c.id), el("td", {}, c.channel), el("td", {}, c.sender),
      el("td", {}, new Date(c.updated_at).toLocaleTimeString()), el("td", {}, btn));
  }));
}

async function act(path, body) {
  $("ticket-error").textContent = "";
  try { return await api(`/agent/api/tickets/${state.ticket.id}/${path}`, { method: "POST", body: body || {} }); }
  catch (e) { $("ticket-error").textContent = e.message; return null; }
}

function wire() {
  $("claim").addEventListener("click", async () => { if (await act("claim")) openTicket(state.ticket.id); });
  $("reply-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("reply-text").value.trim();
    if (!text) return;
    const m = await act("reply", { text });
    if (m) { $("reply-text").value = ""; addMessage(m); }
  });
  $("send-note").addEventListener("click", async () => {
    const text = $("reply-text").value.trim();
    if (!text) return;
    const m = await act("note", { text });
    if (m) { $("reply-text").value = ""; addMessage(m); }
  });
  $("canned").addEventListener("change", () => { if ($("canned").value) $("reply-text").value = $("canned").value; });
  $("transfer").addEventListener("click", async () => {
    const to = $("transfer-to").value;
    if (to && await act("transfer", { to })) openTicket(state.ticket.id);
  });
  $("resolve").addEventListener("click", async () => { if (await act("resolve")) openTicket(state.ticket.id); });
  $("return").addEventListener("click", async () => { if (await act("return")) openTicket(state.ticket.id); });
  $("refresh-recent").addEventListener("click", loadRecent);
  $("logout").addEventListener("click", async () => {
    await api("/agent/api/logout", { method: "POST", body: {} }).catch(() => null);
    window.location.assign("/agent/login");
  });
}

async function main() {
  state.me = await api("/agent/api/me");
  state.csrf = state.me.csrf;
  $("whoami").textContent = `${state.me.username} (${state.me.role})`;
  $("dashboard-link").hidden = state.me.role !== "supervisor";
  wire();
  connect();
  loadRecent();
  setInterval(renderQueue, 1000);
  setInterval(loadRecent, 10000);
}

main();
