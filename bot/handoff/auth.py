"""Agent console authentication: scrypt password hashes, session tokens, CSRF, login throttle."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.store import handoff as store
from bot.store.db import Database, utcnow

ROLES = ("agent", "supervisor")
# scrypt cost: n=2**14, r=8, p=1 (~16 MB, tens of ms) — OWASP's minimum for interactive logins.
_N, _R, _P, _DKLEN = 2**14, 8, 1, 32
SESSION_HOURS = 12
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
MIN_PASSWORD = 10


class AuthError(Exception):
    """A refused login or session; ``reason`` is machine-readable, ``retry_after`` in seconds."""

    def __init__(self, reason: str, status: int, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(key).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        got = hashlib.scrypt(
            password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


# Verifying against a dummy hash when the user does not exist keeps the answer time the same,
# so the login form does not reveal which usernames exist.
_DUMMY = hash_password(secrets.token_urlsafe(16))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def csrf_for(token: str) -> str:
    """The CSRF token of a session: derived from the cookie's secret, never stored."""
    return hmac.new(token.encode("ascii", "replace"), b"finbot-agent-csrf", hashlib.sha256).hexdigest()


def check_csrf(token: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_for(token), presented or "")


@dataclass(frozen=True, slots=True)
class Login:
    agent: store.Agent
    token: str  # goes into the HttpOnly cookie; only its hash is stored
    csrf: str


async def add_agent(db: Database, username: str, role: str, password: str, *, replace: bool = False) -> store.Agent:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not username or len(username) > 64 or not username.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise ValueError("username: letters, digits, '.', '-', '_' (at most 64)")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password must have at least {MIN_PASSWORD} characters")
    async with db.begin() as s:
        if await store.credentials(s, username) is not None:
            if not replace:
                raise ValueError(f"agent {username!r} already exists")
            replaced = await store.replace_agent(s, username, role, hash_password(password))
            if replaced is not None:
                return replaced
        return await store.add_agent(s, username, role, hash_password(password))


async def _throttled(db: Database, keys: list[str], now: datetime) -> int | None:
    """Seconds to wait when any key (username, client address) failed too often lately."""
    since = now - FAILURE_WINDOW
    wait = 0
    async with db.begin() as s:
        for key in keys:
            count, oldest = await store.recent_login_failures(s, key, since)
            if count >= MAX_FAILURES and oldest is not None:
                wait = max(wait, int((oldest + FAILURE_WINDOW - now).total_seconds()) + 1)
    return wait or None


async def login(db: Database, username: str, password: str, client: str) -> Login:
    now = utcnow()
    keys = [f"user:{username[:64]}", f"ip:{client[:64]}"]
    wait = await _throttled(db, keys, now)
    if wait:
        raise AuthError("too_many_attempts", 429, retry_after=wait)
    async with db.begin() as s:
        creds = await store.credentials(s, username)
    ok = verify_password(password, creds.password_hash if creds else _DUMMY)
    if not ok or creds is None or not creds.agent.active:
        async with db.begin() as s:
            await store.record_login_failure(s, keys, now, now - FAILURE_WINDOW)
        raise AuthError("invalid_credentials", 401)
    token = secrets.token_urlsafe(32)
    async with db.begin() as s:
        await store.clear_login_failures(s, keys[0])
        await store.create_session(s, token_hash(token), creds.agent.id, now + timedelta(hours=SESSION_HOURS))
    return Login(agent=creds.agent, token=token, csrf=csrf_for(token))


async def session_agent(db: Database, token: str | None) -> store.Agent | None:
    if not token:
        return None
    async with db.begin() as s:
        return await store.session_agent(s, token_hash(token), utcnow())


async def logout(db: Database, token: str) -> None:
    async with db.begin() as s:
        await store.delete_session(s, token_hash(token))
