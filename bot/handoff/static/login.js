// Agent login: posts the credentials, the server sets an HttpOnly session cookie.
"use strict";
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const err = document.getElementById("login-error");
  err.textContent = "";
  const resp = await fetch("/agent/api/login", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({
      username: document.getElementById("username").value,
      password: document.getElementById("password").value,
    }),
    credentials: "same-origin",
  });
  if (resp.ok) { window.location.assign("/agent"); return; }
  const body = await resp.json().catch(() => ({}));
  err.textContent = body.error === "too_many_attempts"
    ? `Too many attempts, try again in ${body.retry_after}s`
    : "Wrong username or password";
});
