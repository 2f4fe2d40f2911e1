"""`finbot agent`: accounts created from the command line can log in; passwords stored as scrypt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.handoff import auth
from bot.store import handoff as store
from bot.store.db import Database
from tests.support.db import migrate

pytestmark = pytest.mark.timeout(120)


def _agent_cli(db_url: str, tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FINBOT_DATABASE_URL": db_url, "FINBOT_KEYS_FILE": str(tmp_path / "keys.json")}
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli.agent import app; app()", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path,
    )


async def test_agent_add_list_disable(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite'}"
    await migrate(url)
    done = _agent_cli(url, tmp_path, "add", "sue", "--role", "supervisor", "--password-stdin", stdin="a-long-password\n")
    assert done.returncode == 0, done.stderr
    assert "created supervisor sue" in done.stdout
    short = _agent_cli(url, tmp_path, "add", "tom", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "at least" in short.stderr
    bad_role = _agent_cli(url, tmp_path, "add", "tom", "--role", "admin", "--password-stdin", stdin="a-long-password\n")
    assert bad_role.returncode == 2 and "role" in bad_role.stderr
    dup = _agent_cli(url, tmp_path, "add", "sue", "--password-stdin", stdin="a-long-password\n")
    assert dup.returncode == 2 and "exists" in dup.stderr
    # What `finbot demo` runs at every start: the same account, a fresh password.
    demo = _agent_cli(url, tmp_path, "add", "demo", "--role", "supervisor", "--password", "first-password", "--replace")
    again = _agent_cli(url, tmp_path, "add", "demo", "--role", "supervisor", "--password", "second-password", "--replace")
    assert demo.returncode == 0 and again.returncode == 0, demo.stderr + again.stderr

    db = Database(url)
    try:
        async with db.begin() as s:
            creds = await store.credentials(s, "sue")
        assert creds is not None and creds.password_hash.startswith("scrypt$")
        assert "a-long-password" not in creds.password_hash
        with pytest.raises(auth.AuthError):
            await auth.login(db, "demo", "first-password", "127.0.0.1")
        assert (await auth.login(db, "demo", "second-password", "127.0.0.1")).agent.role == "supervisor"
        login = await auth.login(db, "sue", "a-long-password", "127.0.0.1")
        assert login.agent.role == "supervisor"
        listed = _agent_cli(url, tmp_path, "list")
        assert "sue\tsupervisor\tactive" in listed.stdout
        assert _agent_cli(url, tmp_path, "disable", "sue").returncode == 0
        # Disabling ends the session at once and refuses new logins.
        assert await auth.session_agent(db, login.token) is None
        with pytest.raises(auth.AuthError):
            await auth.login(db, "sue", "a-long-password", "127.0.0.1")
    finally:
        await db.close()
