// finbot web chat: vanilla JS, no build step. Text is always set with textContent (no HTML).
"use strict";
(function () {
  const I18N = JSON.parse(document.getElementById("i18n").textContent);
  const $ = (id) => document.getElementById(id);
  const log = $("log"), input = $("input"), status = $("status");
  let lang = localStorage.getItem("finbot.lang") ||
    ((navigator.language || "").toLowerCase().startsWith("zh") ? "zh" : "en");
  let ws = null, backoff = 500, typing = null;
  const outbox = [];  // texts typed while the socket was reconnecting

  function t(key) { return (I18N[lang] || I18N.zh)[key] || key; }

  function chrome() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t("title");
    $("title").textContent = t("title");
    input.placeholder = t("placeholder");
    $("send").textContent = t("send");
    $("lang").textContent = lang === "zh" ? "EN" : "中文";
  }

  function scroll() { log.scrollTop = log.scrollHeight; }

  function bubble(kind, text) {
    const div = document.createElement("div");
    div.className = "msg " + kind;
    div.textContent = text;
    log.appendChild(div);
    scroll();
    return div;
  }

  function showTyping() {
    if (!typing) { typing = bubble("bot typing", "···"); }
  }
  function hideTyping() {
    if (typing) { typing.remove(); typing = null; }
  }

  function render(m) {
    if (m.type === "error") { return; }
    hideTyping();
    const div = bubble("bot" + (m.pushed ? " pushed" : ""), m.text || "");
    if (m.file) {
      const a = document.createElement("a");
      a.className = "file";
      a.href = m.file.url;
      a.download = m.file.filename;
      a.textContent = m.file.filename;  // the icon is CSS: emoji fonts are not everywhere
      div.appendChild(document.createElement("br"));
      div.appendChild(a);
    }
    if (m.buttons && m.buttons.length) {
      const row = document.createElement("div");
      row.className = "buttons";
      for (const b of m.buttons) {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.textContent = b.title;
        btn.addEventListener("click", () => {
          for (const other of row.querySelectorAll("button")) { other.disabled = true; }
          btn.classList.add("chosen");
          send(b.payload, b.title);
        });
        row.appendChild(btn);
      }
      div.appendChild(row);
    }
    scroll();
  }

  async function post(text) {
    try {
      const resp = await fetch("/webchat/message", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ message: text }),
      });
      const replies = await resp.json();
      if (Array.isArray(replies)) { replies.forEach(render); } else { hideTyping(); }
    } catch (e) {
      outbox.push(text);  // neither socket nor fetch: retry when the socket is back
    }
  }

  function send(text, display) {
    if (!text.trim()) { return; }
    bubble("user", display || text);
    showTyping();
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "message", text: text }));
    } else {
      post(text);
    }
  }

  function setStatus(key) {
    if (key) { status.textContent = t(key); status.hidden = false; } else { status.hidden = true; }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + location.host + "/webchat/ws");
    ws.addEventListener("open", () => {
      backoff = 500;
      setStatus(null);
      while (outbox.length) { ws.send(JSON.stringify({ type: "message", text: outbox.shift() })); }
    });
    ws.addEventListener("message", (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; /* ignore a malformed frame */ }
      render(m);
      // A pushed message is kept by the server until the page says it has shown it.
      if (m.id && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify({ type: "ack", id: m.id })); }
    });
    ws.addEventListener("close", () => {
      setStatus("offline");
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10000);
    });
  }

  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value;
    input.value = "";
    send(text);
    input.focus();
  });
  $("lang").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("finbot.lang", lang);
    chrome();
  });

  chrome();
  bubble("bot", t("welcome"));
  setStatus("connecting");
  connect();
})();
