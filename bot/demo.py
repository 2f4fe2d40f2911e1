"""`finbot demo`: supervise sandbox, NLU server and bot; seed demo customers; print how to start."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bot.settings import VAR, Settings, get_settings

READY_TIMEOUT_S = 300  # the NLU server needs ~30-60 s to load its model on 2 cores
DEMO_FILE = VAR / "demo.json"
DEMO_CUSTOMERS: list[dict[str, Any]] = [
    {
        "key": "conservative",
        "name": "张伟",
        "phone": "13800138001",
        "risk_tolerance": "C1",
        "cash": "20000.00",
        "holdings": [{"product": "MMF01", "shares": "5000"}],
    },
    {
        "key": "balanced",
        "name": "李娜",
        "phone": "13900139002",
        "risk_tolerance": "C3",
        "cash": "50000.00",
        "holdings": [
            {"product": "MMF01", "shares": "10000", "acquired_at": "2026-01-05"},
            {"product": "BOND01", "shares": "8000"},
        ],
    },
]


def _say(message: str) -> None:
    print(message, flush=True)


def _http(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 5) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 — loopback only
        raw = resp.read()
    return json.loads(raw) if raw else None


def child_env(settings: Settings) -> dict[str, str]:
    """The children's environment: URLs derived from the ports when only the ports are given."""
    env = dict(os.environ)
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env["FINBOT_NLU_URL"] = settings.resolved_nlu_url()
    env["FINBOT_BACKEND_URL"] = settings.resolved_backend_url()
    env.setdefault("FINBOT_EVENTS_URL", f"http://127.0.0.1:{settings.port}/platform/events")
    env["FINBOT_PLATFORM_SECRET"] = settings.platform_secret
    return env


class Supervisor:
    """Children in their own process groups, stopped together (grandchildren included)."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        out = log.open("ab")
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.children.append((name, proc))

    def dead(self) -> list[str]:
        return [name for name, proc in self.children if proc.poll() is not None]

    def stop(self, grace_s: float = 8.0) -> None:
        for _, proc in self.children:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace_s
        for _, proc in self.children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for _, proc in self.children:
            try:  # the group too: a child that ignored SIGTERM, or one it started
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()


def _ready(url: str) -> bool:
    try:
        _http("GET", f"{url}/readyz", timeout=2)
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def seed_customers(backend_url: str) -> list[dict[str, Any]]:
    """Create the demo customers once (ids kept in var/demo.json); fresh link codes every start."""
    known: dict[str, str] = {}
    if DEMO_FILE.exists():
        try:
            known = json.loads(DEMO_FILE.read_text(encoding="utf-8")).get("customers", {})
        except ValueError:
            known = {}
    seeded = []
    for spec in DEMO_CUSTOMERS:
        body = {k: v for k, v in spec.items() if k != "key"}
        customer_id = known.get(spec["key"])
        answer = None
        if customer_id:
            try:
                answer = _http("POST", f"{backend_url}/sandbox/customers/{customer_id}/link-code", {})
            except (urllib.error.URLError, OSError, ValueError):
                answer = None  # the sandbox database was reset: create the customer again
        if answer is None:
            answer = _http("POST", f"{backend_url}/sandbox/customers", body)
        known[spec["key"]] = answer["customer_id"]
        seeded.append({**spec, "customer_id": answer["customer_id"], "link_code": answer["link_code"]})
    DEMO_FILE.parent.mkdir(parents=True, exist_ok=True)
    DEMO_FILE.write_text(json.dumps({"customers": known}, ensure_ascii=False), encoding="utf-8")
    return seeded


def demo_agent(env: dict[str, str]) -> tuple[str, str] | None:
    """A supervisor account for the console, with a fresh password each start."""
    password = secrets.token_urlsafe(9)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "agent", "add", "demo", "--role", "supervisor",
         "--password", password, "--replace"],
        env=env, capture_output=True, text=True,
    )
    return ("demo", password) if result.returncode == 0 else None


def run() -> int:
    settings = get_settings()
    env = child_env(settings)
    logs = VAR / "logs"
    finbot = [sys.executable, "-m", "bot"]
    bot_url = f"http://127.0.0.1:{settings.port}"
    supervisor = Supervisor()
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    # Train first (only when nlu/ changed; Ctrl-C still interrupts it), so the wait for
    # readiness below is only the model load.
    from bot.nlu_tools import ensure_model

    ensure_model()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        _say("finbot demo: starting the sandbox platform, the NLU server and the bot ...")
        supervisor.start("sandbox", [*finbot, "sandbox", "serve"], env, logs / "sandbox.log")
        supervisor.start("nlu", [*finbot, "nlu", "serve"], env, logs / "nlu.log")
        subprocess.run([*finbot, "db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL)
        supervisor.start("bot", [*finbot, "serve"], env, logs / "bot.log")
        started = time.monotonic()
        last_note = 0.0
        while not _ready(bot_url):
            if stopping:
                return 130
            if supervisor.dead():
                _say(f"error: {', '.join(supervisor.dead())} stopped during start-up; see {logs}/")
                return 1
            waited = time.monotonic() - started
            if waited > READY_TIMEOUT_S:
                _say(f"error: not ready after {READY_TIMEOUT_S} s; see {logs}/ and {bot_url}/readyz")
                return 1
            if waited - last_note >= 10:
                last_note = waited
                _say(f"  waiting for the NLU model to load ... {waited:.0f} s")
            time.sleep(0.5)
        customers = seed_customers(settings.resolved_backend_url())
        agent = demo_agent(env)
        _say("")
        _say(f"✅ finbot is ready ({time.monotonic() - started:.0f} s)")
        _say(f"   Web chat:        {bot_url}/")
        _say(f"   REST channel:    POST {bot_url}/webhooks/rest/webhook")
        _say(f"   Agent console:   {bot_url}/agent" + (f"   (login {agent[0]} / {agent[1]})" if agent else ""))
        _say(f"   Sandbox:         {settings.resolved_backend_url()}/sandbox/products")
        _say("   Demo customers (send the link code in the chat, e.g. 绑定 XXXXXXXX):")
        for c in customers:
            _say(f"     {c['name']}  risk {c['risk_tolerance']}  link code {c['link_code']}  "
                 f"(one-time codes: {settings.resolved_backend_url()}/sandbox/sms?phone={c['phone']})")
        if settings.telegram_token:
            _say("   Telegram:        the bot token is set; the bot answers in Telegram too")
        _say("Press Ctrl-C to stop.")
        while not stopping:
            if supervisor.dead():
                _say(f"error: {', '.join(supervisor.dead())} stopped; see {logs}/")
                return 1
            time.sleep(0.5)
        return 0
    except (urllib.error.URLError, OSError, ValueError, subprocess.CalledProcessError) as exc:
        _say(f"error: the demo could not start ({type(exc).__name__}); see {logs}/")
        return 1
    finally:
        _say("stopping ...")
        supervisor.stop()
