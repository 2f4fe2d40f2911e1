"""`finbot demo` brings up sandbox, NLU server and bot, prints how to start, and stops them all."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT, free_port

pytestmark = [pytest.mark.nlu, pytest.mark.slow, pytest.mark.timeout(420)]


def test_demo_starts_everything_prints_link_codes_and_stops_on_sigterm(tmp_path: Path) -> None:
    ports = {"FINBOT_PORT": free_port(), "FINBOT_NLU_PORT": free_port(), "FINBOT_SANDBOX_PORT": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()},
           "FINBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite'}",
           "FINBOT_SANDBOX_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'sandbox.sqlite'}",
           "FINBOT_KEYS_FILE": str(tmp_path / "keys.json"), "FINBOT_LOG_LEVEL": "WARNING"}
    env.pop("FINBOT_NLU_URL", None)
    env.pop("FINBOT_BACKEND_URL", None)  # derived from the ports, as the contract says
    proc = subprocess.Popen([sys.executable, "-m", "bot", "demo"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 360
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        out = "".join(lines)
        assert "finbot is ready" in out, out[-2000:]
        assert f"http://127.0.0.1:{ports['FINBOT_PORT']}/" in out
        codes = re.findall(r"link code ([A-HJ-NP-Z2-9]{8})", out)
        assert len(codes) == 2, out
        assert "C1" in out and "C3" in out
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['FINBOT_PORT']}/readyz", timeout=5) as resp:
            assert json.loads(resp.read())["status"] == "ready"
        # a printed link code really links a chat
        body = json.dumps({"sender": "demo-test", "message": f"绑定 {codes[1]}"}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{ports['FINBOT_PORT']}/webhooks/rest/webhook",
                                         data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert "绑定成功" in json.loads(resp.read())[0]["text"]
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 3
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(60)
    time.sleep(1)
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left running: {[c.cmdline()[:3] for c in alive]}"
